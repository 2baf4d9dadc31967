//! A panic in the request loop ends `zkrs server` at once with a non-zero status and the panic
//! in its log (issue 17): tokio would otherwise catch it and leave a server that is alive but
//! never serves again. The panic is injected with ZKRS_TEST_PANIC_ON_CREATE (tests only).

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn a_panic_in_the_request_loop_ends_the_process() {
    let dir = std::env::temp_dir().join(format!("zkrs-panic-exit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("zoo.cfg");
    let text = format!(
        "tickTime=200\ndataDir={}\nclientPort=0\nclientPortAddress=127.0.0.1\n",
        dir.join("data").display()
    );
    std::fs::write(&cfg, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_zkrs"))
        .arg("server")
        .arg(&cfg)
        .env("ZKRS_TEST_PANIC_ON_CREATE", "/boom")
        .env_remove("SERVER_JVMFLAGS")
        .env_remove("JVMFLAGS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start zkrs");
    // "zkrs listening on 127.0.0.1:PORT"
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("zkrs listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let c = client::Client::connect(&addr, 10_000).await.unwrap();
        let acl = client::open_acl();
        c.create("/fine", b"", &acl, client::CreateMode::Persistent)
            .await
            .expect("an ordinary create is served");
        // the request loop panics on this one: no answer comes
        let boom = c.create("/boom", b"", &acl, client::CreateMode::Persistent);
        let _ = tokio::time::timeout(Duration::from_secs(5), boom).await;
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(10) {
            child.kill().unwrap();
            panic!("the server is still running 10 s after the panic");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "exit status {status}");
    assert!(
        stderr.contains("panic injected on a create of /boom"),
        "the panic is in the log:\n{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
