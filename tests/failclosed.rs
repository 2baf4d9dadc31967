//! `zkrs server` refuses to start with a security setting it does not implement (issue 17,
//! "fail closed"), in zoo.cfg and in `SERVER_JVMFLAGS`, instead of serving in plaintext.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

mod common;
use common::wait_for_refusal;

/// A fresh directory with a zoo.cfg of `lines` (after a dataDir line pointing into it).
fn config_with(name: &str, lines: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zkrs-failclosed-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("zoo.cfg");
    let text = format!("dataDir={}\n{lines}", dir.join("data").display());
    std::fs::write(&cfg, text).unwrap();
    cfg
}

/// Runs `zkrs server <cfg>` with `env` and returns its output; a server that is still running
/// after 20 s did not fail closed: it is killed and the test fails.
fn run_server(cfg: &PathBuf, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_zkrs"));
    command
        .arg("server")
        .arg(cfg)
        .env_remove("SERVER_JVMFLAGS")
        .env_remove("JVMFLAGS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    wait_for_refusal(command.spawn().expect("start zkrs"))
}

#[test]
fn secure_client_port_in_zoo_cfg_refuses_to_start() {
    let cfg = config_with(
        "zoo-cfg",
        "clientPort=0\nclientPortAddress=127.0.0.1\nsecureClientPort=2281\n",
    );
    let output = run_server(&cfg, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "exit status {}", output.status);
    let expected = format!(
        "{}:4: secureClientPort is not supported by zkrs yet; refusing to start without it",
        cfg.display()
    );
    assert!(
        stderr.contains(&expected),
        "stderr lacks {expected:?}:\n{stderr}"
    );
    let _ = std::fs::remove_dir_all(cfg.parent().unwrap());
}

#[test]
fn a_security_property_in_server_jvmflags_refuses_to_start() {
    let cfg = config_with("jvmflags", "clientPort=0\nclientPortAddress=127.0.0.1\n");
    let output = run_server(
        &cfg,
        &[(
            "SERVER_JVMFLAGS",
            "-Xmx1g -Dzookeeper.sasl.client=false -Djava.security.auth.login.config=/etc/zk/jaas.conf",
        )],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "exit status {}", output.status);
    let expected = "$SERVER_JVMFLAGS: -Djava.security.auth.login.config is not supported by \
                    zkrs yet; refusing to start without it";
    assert!(
        stderr.contains(expected),
        "stderr lacks {expected:?}:\n{stderr}"
    );
    let _ = std::fs::remove_dir_all(cfg.parent().unwrap());
}
