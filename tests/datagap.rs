//! `zkrs server` refuses a dataDir with txns missing from it (issue 17, "fail closed"), naming
//! the files and the zxids, and serves what is there with `--accept-data-loss`.

use jute::{op, CreateTxn, Jute, TxnHeader};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use storage::txnlog::TxnLog;

mod common;
use common::wait_for_refusal;

const E1: i64 = 1 << 32;

/// A fresh directory with a zoo.cfg, and a dataDir whose logs hold creates of /n1../n30 at
/// zxids 0x100000001..=0x10000001e in files of 10 txns; the middle file (/n11../n20) is gone.
/// Returns the zoo.cfg and the dataDir's version-2 directory.
fn datadir_with_a_missing_log(name: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("zkrs-datagap-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("data");
    let v = storage::datadir::version_dir(&data).unwrap();
    let mut log = TxnLog::open(&v, 64 * 1024).unwrap();
    for n in 1..=30 {
        let txn = CreateTxn {
            path: format!("/n{n}"),
            data: Some(format!("value {n}").into_bytes()),
            acl: vec![jute::Acl {
                perms: jute::perms::ALL,
                id: jute::Id {
                    scheme: "world".into(),
                    id: "anyone".into(),
                },
            }],
            ephemeral: false,
            parent_cversion: n,
        };
        let mut body = Vec::new();
        txn.write(&mut body);
        let header = TxnHeader {
            client_id: 0,
            cxid: n,
            zxid: E1 | n as i64,
            time: 1_700_000_000_000 + n as i64,
            txn_type: op::CREATE,
        };
        log.append_raw(&header, &body).unwrap();
        if n % 10 == 0 {
            log.commit(true).unwrap();
            log.roll().unwrap();
        }
    }
    log.commit(true).unwrap();
    drop(log);
    std::fs::remove_file(v.join("log.10000000b")).unwrap();
    let cfg = dir.join("zoo.cfg");
    let text = format!(
        "dataDir={}\nclientPort=0\nclientPortAddress=127.0.0.1\n",
        data.display()
    );
    std::fs::write(&cfg, text).unwrap();
    (cfg, v)
}

fn server(cfg: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_zkrs"))
        .arg("server")
        .args(args)
        .arg(cfg)
        .env_remove("SERVER_JVMFLAGS")
        .env_remove("JVMFLAGS")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start zkrs")
}

#[test]
fn a_missing_log_file_refuses_to_start_unless_the_loss_is_accepted() {
    let (cfg, v) = datadir_with_a_missing_log("middle");
    let output = wait_for_refusal(server(&cfg, &[]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "exit status {}", output.status);
    let expected = format!(
        "{}: txns 0x10000000b..0x100000014 are missing between log.100000001 and \
         log.100000015 (no snapshot); refusing to start. Start with --accept-data-loss to \
         serve the data that is there",
        v.display()
    );
    assert!(
        stderr.contains(&expected),
        "stderr lacks {expected:?}:\n{stderr}"
    );
    // nothing was written: no snapshot of the partial tree
    assert!(!std::fs::read_dir(&v).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with("snapshot.")));

    // the operator accepts the loss: the server serves /n1../n10 and /n21../n30
    let mut child = server(&cfg, &["--accept-data-loss"]);
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let stderr = child.stderr.take().unwrap();
    let stderr_lines = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    let mut addr = None;
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(a) = line.strip_prefix("zkrs listening on ") {
            addr = Some(a.to_owned());
            break;
        }
    }
    let addr = addr.expect("a listening line");
    // the client port is bound before the data is loaded: ask until the tree answers
    let started = Instant::now();
    let listing = loop {
        let out = Command::new(env!("CARGO_BIN_EXE_zkrs"))
            .args(["cli", "-server", &addr, "ls", "/"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && text.contains("n30") {
            break text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no listing from {addr}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(Duration::from_secs(2));
    let still_running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    let log = stderr_lines.join().unwrap().join("\n");
    assert!(still_running, "the server exited:\n{log}");
    let line = listing
        .lines()
        .find(|l| l.starts_with('[') && l.contains("zookeeper"))
        .unwrap_or_else(|| panic!("no listing in {listing}"));
    let names: Vec<&str> = line
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(", ")
        .collect();
    for n in (1..=10).chain(21..=30) {
        assert!(names.contains(&format!("n{n}").as_str()), "{listing}");
    }
    for n in 11..=20 {
        assert!(!names.contains(&format!("n{n}").as_str()), "{listing}");
    }
    assert!(
        log.contains(&format!(
            "DATA LOSS accepted by --accept-data-loss: {}: txns 0x10000000b..0x100000014 are \
             missing between log.100000001 and log.100000015 (no snapshot)",
            v.display()
        )),
        "{log}"
    );

    // accepted once: the snapshot written at that start goes past the gap
    assert!(std::fs::read_dir(&v)
        .unwrap()
        .any(|e| e.unwrap().file_name() == "snapshot.10000001e"));
    let mut child = server(&cfg, &[]);
    std::thread::sleep(Duration::from_secs(3));
    let running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        running
            && stderr.contains("recovered zxid ")
            && stderr.contains("snapshot.10000001e, logs in"),
        "a restart without the flag after the loss was accepted:\n{stderr}"
    );
    let _ = std::fs::remove_dir_all(cfg.parent().unwrap());
}
