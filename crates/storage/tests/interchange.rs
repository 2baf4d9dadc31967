//! Interchange with Apache ZooKeeper 3.8 (from Debian), through `tests/zk_side.py`:
//! a dataDir written by ZooKeeper recovers here with every znode, ACL and Stat as a client
//! read them from ZooKeeper; a dataDir written here opens in ZooKeeper with every znode as we
//! built it. Needs ZooKeeper and kazoo, which scripts/test.sh installs.

mod common;

use common::treejson::nodes_json;
use common::{op_strategy, Builder, Op};
use proptest::strategy::{Strategy, ValueTree};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use storage::datadir::{self, recover};
use storage::txnlog::{TxnLog, DEFAULT_PRE_ALLOC_BYTES};
use storage::{inspect, snapshot};

fn zk_side(mode: &str, workdir: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/zk_side.py");
    let out = workdir.join(format!("zk-{mode}.json"));
    let output = Command::new("python3")
        .arg(&script)
        .arg(mode)
        .arg(workdir)
        .arg(&out)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{} {mode} failed (it needs Apache ZooKeeper 3.8 and kazoo: scripts/test.sh installs them)\n\
         stdout: {}\nstderr: {}\nserver output in {}",
        script.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        workdir.display()
    );
    serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap()
}

/// Asserts two `{path: node}` maps are equal, listing the first differences.
fn assert_same_nodes(ours: &Value, theirs: &Value, what: &str) {
    let (ours, theirs) = (ours.as_object().unwrap(), theirs.as_object().unwrap());
    let mut diffs = Vec::new();
    for (path, node) in theirs {
        match ours.get(path) {
            None => diffs.push(format!("{path}: missing here, ZooKeeper has {node}")),
            Some(mine) if mine != node => {
                diffs.push(format!("{path}: here {mine}, ZooKeeper {node}"))
            }
            _ => {}
        }
    }
    for path in ours.keys() {
        if !theirs.contains_key(path) {
            diffs.push(format!("{path}: only here"));
        }
    }
    assert!(
        diffs.is_empty(),
        "{what}: {} of {} znodes differ:\n{}",
        diffs.len(),
        theirs.len(),
        diffs
            .iter()
            .take(15)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn a_zookeeper_datadir_recovers_here() {
    let work = tempfile::tempdir().unwrap();
    let zk = zk_side("write", work.path());
    let data = work.path().join("data");
    let v = data.join("version-2");
    let names: Vec<String> = std::fs::read_dir(&v)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let count = |prefix: &str| names.iter().filter(|n| n.starts_with(prefix)).count();
    assert!(
        count("snapshot.") >= 3 && count("log.") >= 3,
        "ZooKeeper wrote {names:?}"
    );

    // every file is readable by the operators' dump
    for name in &names {
        let path = v.join(name);
        let mut out = Vec::new();
        if name.starts_with("snapshot.") {
            inspect::format_snapshot(&path, &mut out).unwrap();
        } else {
            inspect::format_log(&path, &mut out).unwrap();
        }
        assert!(!out.is_empty());
    }

    let r = recover(&data, &data).unwrap();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert!(r.torn_tail.is_none());
    assert!(r.snapshot.is_some());
    let expected = &zk["nodes"];
    assert!(expected.as_object().unwrap().len() > 300);
    assert_same_nodes(
        &nodes_json(&r.tree),
        expected,
        "ZooKeeper's dataDir recovered by zkrs",
    );
    for (id, timeout) in zk["sessions"].as_object().unwrap() {
        let id: i64 = id.parse().unwrap();
        assert_eq!(
            r.sessions.get(&id).map(|t| *t as i64),
            timeout.as_i64(),
            "session {id:#x}"
        );
    }
    assert_eq!(
        r.sessions.len(),
        2,
        "the closed session is gone: {:?}",
        r.sessions
    );
    // and it snapshots back to something that reads the same
    let bytes = snapshot::serialize(
        &r.tree,
        &r.sessions.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(),
    );
    let again = snapshot::parse(Path::new("snapshot.x"), &bytes).unwrap();
    assert_same_nodes(&nodes_json(&again.tree), expected, "re-serialized");
}

#[test]
fn a_zkrs_datadir_opens_in_zookeeper() {
    let mut b = Builder::new();
    let mut rng = proptest::test_runner::TestRunner::deterministic();
    while b.entries.len() < 500 {
        let op = match op_strategy().new_tree(&mut rng).unwrap().current() {
            // ZooKeeper expires loaded sessions after their timeout: keep them while we read
            Op::OpenSession { .. } => Op::OpenSession { timeout: 120_000 },
            op => op,
        };
        b.apply(&op);
    }
    let work = tempfile::tempdir().unwrap();
    let v = datadir::version_dir(&work.path().join("data")).unwrap();
    // a snapshot in the middle, every txn in the logs (rolled like snapCount would)
    let k = 230;
    let mut tree_k = tree::DataTree::new();
    let mut sessions_k = std::collections::BTreeMap::new();
    for e in &b.entries[..k] {
        tree_k.process_txn(&e.header, &e.txn);
        match &e.txn {
            tree::Txn::CreateSession(t) => {
                sessions_k.insert(e.header.client_id, t.time_out);
            }
            tree::Txn::CloseSession(_) => {
                sessions_k.remove(&e.header.client_id);
            }
            _ => {}
        }
    }
    let sessions_k: Vec<(i64, i32)> = sessions_k.into_iter().collect();
    let mut log = TxnLog::open(&v, DEFAULT_PRE_ALLOC_BYTES).unwrap();
    for (i, e) in b.entries.iter().enumerate() {
        log.append(e).unwrap();
        if i % 4 == 3 {
            log.commit(true).unwrap();
        }
        if i % 120 == 119 {
            log.roll().unwrap();
        }
    }
    log.commit(true).unwrap();
    snapshot::write(
        &v,
        b.entries[k - 1].zxid(),
        &snapshot::serialize(&tree_k, &sessions_k),
    )
    .unwrap();
    // what zkrs itself recovers
    let ours = recover(&work.path().join("data"), &work.path().join("data")).unwrap();
    common::assert_same_tree(&ours.tree, &b.tree);

    let zk = zk_side("read", work.path());
    assert_same_nodes(
        &nodes_json(&b.tree),
        &zk["nodes"],
        "zkrs's dataDir opened by ZooKeeper",
    );
}
