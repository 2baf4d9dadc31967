//! Recovery of a dataDir: snapshot + log replay, torn tails, corruption, snapshot fallback,
//! purge.

mod common;

use common::{assert_same_tree, op_strategy, Builder};
use proptest::strategy::{Strategy, ValueTree};
use std::path::{Path, PathBuf};
use storage::datadir::{self, recover, RecoverError};
use storage::txnlog::{self, TxnLog};
use storage::{snapshot, StorageError};
use tree::{DataTree, TxnEntry};

const PRE_ALLOC: u64 = 16 * 1024;

fn random_builder(ops: usize, seed: u8) -> Builder {
    let mut b = Builder::new();
    let mut rng = proptest::test_runner::TestRunner::new_with_rng(
        Default::default(),
        proptest::test_runner::TestRng::from_seed(
            proptest::test_runner::RngAlgorithm::ChaCha,
            &[seed; 32],
        ),
    );
    while b.entries.len() < ops {
        let op = op_strategy().new_tree(&mut rng).unwrap().current();
        b.apply(&op);
    }
    b
}

fn tree_at(entries: &[TxnEntry]) -> DataTree {
    let mut t = DataTree::new();
    for e in entries {
        t.process_txn(&e.header, &e.txn);
    }
    let _ = t.drain_events();
    t
}

fn sessions_at(entries: &[TxnEntry]) -> Vec<(i64, i32)> {
    let mut m = std::collections::BTreeMap::new();
    for e in entries {
        match &e.txn {
            tree::Txn::CreateSession(t) => {
                m.insert(e.header.client_id, t.time_out);
            }
            tree::Txn::CloseSession(_) => {
                m.remove(&e.header.client_id);
            }
            _ => {}
        }
    }
    m.into_iter().collect()
}

/// Writes `entries` to logs in `dir/version-2` rolling every `roll` txns, committing in
/// batches of 3, and a snapshot after each zxid in `snaps`.
fn write_datadir(dir: &Path, entries: &[TxnEntry], roll: usize, snaps: &[usize]) -> PathBuf {
    let v = datadir::version_dir(dir).unwrap();
    let mut log = TxnLog::open(&v, PRE_ALLOC).unwrap();
    for (i, e) in entries.iter().enumerate() {
        log.append(e).unwrap();
        if i % 3 == 2 {
            log.commit(true).unwrap();
        }
        if (i + 1) % roll == 0 {
            log.roll().unwrap();
        }
        if snaps.contains(&(i + 1)) {
            let bytes = snapshot::serialize(&tree_at(&entries[..=i]), &sessions_at(&entries[..=i]));
            snapshot::write(&v, e.zxid(), &bytes).unwrap();
        }
    }
    log.commit(true).unwrap();
    v
}

fn logs(v: &Path) -> Vec<PathBuf> {
    let mut out: Vec<(i64, PathBuf)> = std::fs::read_dir(v)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| storage::zxid_from_name(p.file_name()?.to_str()?, "log").map(|z| (z, p)))
        .collect();
    out.sort();
    out.into_iter().map(|(_, p)| p).collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The file problem a recovery of `data`/`log` fails with.
fn file_error(data: &Path, log: &Path) -> StorageError {
    match recover(data, log) {
        Err(RecoverError::Storage(e)) => e,
        other => panic!("expected a file error, got {other:?}"),
    }
}

fn assert_recovered(dir: &Path, entries: &[TxnEntry]) -> datadir::Recovered {
    let r = recover(dir, dir).unwrap();
    assert_same_tree(&r.tree, &tree_at(entries));
    assert_eq!(
        r.sessions.clone().into_iter().collect::<Vec<_>>(),
        sessions_at(entries)
    );
    assert_eq!(r.last_zxid, entries.last().map_or(0, |e| e.zxid()));
    assert_eq!(r.tree.last_processed_zxid, r.last_zxid);
    r
}

#[test]
fn random_trees_have_every_kind_of_node() {
    let b = random_builder(300, 1);
    let t = &b.tree;
    let paths = storage::inspect::node_paths(t);
    assert!(paths.len() > 40, "{}", paths.len());
    let owners: Vec<i64> = paths
        .iter()
        .map(|p| t.node(p).unwrap().stat.ephemeral_owner)
        .collect();
    assert!(owners.contains(&i64::MIN), "a container");
    assert!(
        owners
            .iter()
            .any(|&o| jute::ephemeral_owner::ttl(o).is_some()),
        "a TTL node"
    );
    assert!(
        owners.iter().any(|&o| jute::ephemeral_owner::is_session(o)),
        "an ephemeral"
    );
    assert!(
        paths.iter().any(|p| t.node(p).unwrap().data().is_none()),
        "null data"
    );
    assert!(t.acl_cache().len() >= 3);
    assert!(b
        .entries
        .iter()
        .any(|e| matches!(e.txn, tree::Txn::Multi(_))));
    assert!(b
        .entries
        .iter()
        .any(|e| matches!(e.txn, tree::Txn::CloseSession(_))));
}

#[test]
fn snapshot_plus_logs_recover_everything() {
    let b = random_builder(400, 2);
    let dir = tempfile::tempdir().unwrap();
    let v = write_datadir(dir.path(), &b.entries, 70, &[100, 250]);
    assert!(logs(&v).len() >= 5);
    let r = assert_recovered(dir.path(), &b.entries);
    assert_eq!(
        r.snapshot.unwrap().file_name().unwrap().to_str().unwrap(),
        snapshot::snapshot_name(b.entries[249].zxid())
    );
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert!(r.torn_tail.is_none());
    assert_eq!(b.sessions, r.sessions.into_iter().collect::<Vec<_>>());
}

#[test]
fn separate_log_dir_and_swapped_dirs() {
    let b = random_builder(100, 3);
    let data = tempfile::tempdir().unwrap();
    let logdir = tempfile::tempdir().unwrap();
    let lv = write_datadir(logdir.path(), &b.entries, 40, &[]);
    let dv = datadir::version_dir(data.path()).unwrap();
    assert!(logs(&lv).len() >= 2);
    // the snapshot goes to the data dir
    let bytes = snapshot::serialize(&tree_at(&b.entries[..50]), &sessions_at(&b.entries[..50]));
    snapshot::write(&dv, b.entries[49].zxid(), &bytes).unwrap();
    let r = recover(data.path(), logdir.path()).unwrap();
    assert_same_tree(&r.tree, &b.tree);
    assert!(r.snapshot.is_some());
    let err = file_error(logdir.path(), data.path());
    assert!(err.message.contains("dataLogDir"), "{err}");
}

#[test]
fn fuzzy_snapshot_converges_after_replay() {
    // a snapshot named at zxid k holding the state of k+5, as ZooKeeper's fuzzy snapshots can
    let b = random_builder(200, 4);
    let dir = tempfile::tempdir().unwrap();
    let v = write_datadir(dir.path(), &b.entries, 1000, &[]);
    let bytes = snapshot::serialize(&tree_at(&b.entries[..105]), &sessions_at(&b.entries[..105]));
    snapshot::write(&v, b.entries[99].zxid(), &bytes).unwrap();
    assert_recovered(dir.path(), &b.entries);
}

#[test]
fn logs_without_snapshot_replay_from_the_start() {
    let b = random_builder(50, 5);
    let dir = tempfile::tempdir().unwrap();
    write_datadir(dir.path(), &b.entries, 20, &[]);
    let r = assert_recovered(dir.path(), &b.entries);
    assert!(r.snapshot.is_none());
    assert!(r.warnings[0].contains("no snapshot"), "{:?}", r.warnings);
}

#[test]
fn empty_datadir() {
    let dir = tempfile::tempdir().unwrap();
    let r = recover(dir.path(), dir.path()).unwrap();
    assert_eq!(r.last_zxid, 0);
    assert_eq!(r.tree.node_count(), 4);
    assert!(dir.path().join("version-2").is_dir());
}

/// Truncate (or zero-fill, as a crash inside preallocated space leaves it) the last log at
/// every offset of its last record: recovery returns exactly the intact prefix, cuts the
/// file, and later appends and recoveries see a clean log.
#[test]
fn torn_last_record_at_every_offset() {
    let b = random_builder(60, 6);
    let n = b.entries.len();
    let base = tempfile::tempdir().unwrap();
    let v = write_datadir(base.path(), &b.entries, 25, &[30]);
    let last = logs(&v).pop().unwrap();
    let file = txnlog::read_log(&last).unwrap();
    let start = *file.offsets.last().unwrap();
    let end = file.valid_len;
    assert!(end - start > 40);
    for cut in start..end {
        for zero_fill in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            copy_dir(base.path(), dir.path());
            let path = dir.path().join("version-2").join(last.file_name().unwrap());
            let mut bytes = std::fs::read(&path).unwrap();
            if zero_fill {
                bytes[cut as usize..].fill(0);
            } else {
                bytes.truncate(cut as usize);
            }
            std::fs::write(&path, &bytes).unwrap();
            let r = assert_recovered(dir.path(), &b.entries[..n - 1]);
            // only zeros after the last complete record is a clean end, not a torn tail
            let torn = bytes[start as usize..].iter().any(|&x| x != 0);
            assert_eq!(
                r.torn_tail.is_some(),
                torn,
                "cut {cut} zero_fill {zero_fill}"
            );
            if torn {
                assert!(r
                    .torn_tail
                    .as_ref()
                    .unwrap()
                    .contains(&format!("offset {start}")));
                assert_eq!(std::fs::metadata(&path).unwrap().len(), start);
            }
            // idempotent
            let again = assert_recovered(dir.path(), &b.entries[..n - 1]);
            assert!(again.torn_tail.is_none());
            // the lost txn can be logged again, in a new file
            let mut log = TxnLog::open(&dir.path().join("version-2"), PRE_ALLOC).unwrap();
            log.set_last_zxid(again.last_zxid);
            log.append(&b.entries[n - 1]).unwrap();
            log.commit(true).unwrap();
            assert_recovered(dir.path(), &b.entries);
        }
    }
}

#[test]
fn torn_header_of_a_new_log_file() {
    let b = random_builder(30, 7);
    let dir = tempfile::tempdir().unwrap();
    let v = write_datadir(dir.path(), &b.entries, 1000, &[10]);
    // a crash right after creating the next file
    let next = v.join(txnlog::log_name(b.entries.last().unwrap().zxid() + 1));
    std::fs::write(&next, b"ZKL").unwrap();
    let r = assert_recovered(dir.path(), &b.entries);
    assert!(r.torn_tail.unwrap().contains("header"));
    assert!(!next.exists(), "an incomplete header is removed");
}

#[test]
fn corrupt_middle_record_is_an_error_naming_file_and_offset() {
    let b = random_builder(60, 8);
    let base = tempfile::tempdir().unwrap();
    let v = write_datadir(base.path(), &b.entries, 25, &[]);
    let all = logs(&v);
    // a record in the middle of the last file, and the last record of an earlier file
    let last = txnlog::read_log(all.last().unwrap()).unwrap();
    let first = txnlog::read_log(&all[0]).unwrap();
    let cases = [
        (
            all.last().unwrap().clone(),
            last.offsets[1],
            last.offsets[1] + 20,
        ),
        (
            all[0].clone(),
            *first.offsets.last().unwrap(),
            *first.offsets.last().unwrap() + 14,
        ),
        (all[0].clone(), first.offsets[3], first.offsets[3] + 2), // the checksum
        (all[0].clone(), first.offsets[4], first.offsets[4] + 9), // the length
    ];
    for (file, record, byte) in cases {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(base.path(), dir.path());
        let path = dir.path().join("version-2").join(file.file_name().unwrap());
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[byte as usize] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let err: StorageError = file_error(dir.path(), dir.path());
        assert_eq!(err.file, path, "{err}");
        assert_eq!(err.offset, record, "{err}");
        assert!(err
            .to_string()
            .starts_with(&format!("{} @{record}: ", path.display())));
        // nothing was truncated
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }
}

#[test]
fn zxids_must_increase_across_files() {
    let b = random_builder(20, 9);
    let dir = tempfile::tempdir().unwrap();
    let v = write_datadir(dir.path(), &b.entries, 10, &[]);
    // a later file that repeats an old txn
    let mut log = TxnLog::open(&v, PRE_ALLOC).unwrap();
    let mut stale = b.entries[3].clone();
    stale.header.zxid = b.entries.last().unwrap().zxid() + 1;
    log.append(&stale).unwrap();
    log.commit(true).unwrap();
    drop(log);
    let mut log = TxnLog::open(&v, PRE_ALLOC).unwrap();
    let mut older = b.entries[4].clone();
    older.header.zxid = b.entries.last().unwrap().zxid() + 2;
    log.append(&older).unwrap();
    log.commit(true).unwrap();
    assert!(recover(dir.path(), dir.path()).is_ok());
    // now rename a file so that its name claims a later start than its content
    let files = logs(&v);
    let bytes = std::fs::read(&files[0]).unwrap();
    std::fs::write(v.join(txnlog::log_name(0x7fff_0000)), bytes).unwrap();
    let err = file_error(dir.path(), dir.path());
    assert!(err.message.contains("must increase"), "{err}");
}

#[test]
fn corrupt_newest_snapshot_falls_back_to_an_older_one() {
    let b = random_builder(120, 10);
    let dir = tempfile::tempdir().unwrap();
    let v = write_datadir(dir.path(), &b.entries, 50, &[40, 80, 110]);
    let newest = v.join(snapshot::snapshot_name(b.entries[109].zxid()));
    let middle = v.join(snapshot::snapshot_name(b.entries[79].zxid()));
    let mut bytes = std::fs::read(&newest).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    std::fs::write(&newest, &bytes).unwrap();
    // a truncated one too, and a leftover temp file
    let mid = std::fs::read(&middle).unwrap();
    std::fs::write(&middle, &mid[..mid.len() - 3]).unwrap();
    std::fs::write(
        v.join(format!(
            "{}.tmp",
            snapshot::snapshot_name(b.entries[119].zxid())
        )),
        b"junk",
    )
    .unwrap();
    let r = assert_recovered(dir.path(), &b.entries);
    assert_eq!(
        r.snapshot.unwrap().file_name().unwrap().to_str().unwrap(),
        snapshot::snapshot_name(b.entries[39].zxid())
    );
    assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
    assert!(r.warnings[0].contains(newest.to_str().unwrap()));
    // every snapshot bad: an error, not an empty tree
    let oldest = v.join(snapshot::snapshot_name(b.entries[39].zxid()));
    std::fs::write(&oldest, b"ZKSN").unwrap();
    let err = file_error(dir.path(), dir.path());
    assert!(err.message.contains("no valid snapshot"), "{err}");
    // a compressed snapshot is a snapshot we cannot read, not a missing one
    for (_, p) in [(40, oldest), (80, middle), (110, newest)] {
        std::fs::remove_file(p).unwrap();
    }
    std::fs::write(
        v.join(format!(
            "{}.gz",
            snapshot::snapshot_name(b.entries[99].zxid())
        )),
        b"\x1f\x8b",
    )
    .unwrap();
    let err = file_error(dir.path(), dir.path());
    assert!(err.message.contains("compression"), "{err}");
}

#[test]
fn foreign_files_are_rejected_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let v = datadir::version_dir(dir.path()).unwrap();
    std::fs::write(v.join("log.1"), b"this is not a ZooKeeper log at all").unwrap();
    let err = file_error(dir.path(), dir.path());
    assert_eq!(err.offset, 0);
    assert!(err.message.contains("magic"), "{err}");
}

#[test]
fn purge_keeps_what_replay_needs() {
    let dir = tempfile::tempdir().unwrap();
    let v = datadir::version_dir(dir.path()).unwrap();
    let snap = snapshot::serialize(&DataTree::new(), &[]);
    for z in [0x10, 0x20, 0x30, 0x40, 0x50] {
        snapshot::write(&v, z, &snap).unwrap();
    }
    // a snapshot that fails the quick validity check is not counted as kept
    std::fs::write(v.join("snapshot.60"), b"partial").unwrap();
    for z in [0x1, 0x15, 0x25, 0x35, 0x45] {
        std::fs::write(
            v.join(txnlog::log_name(z)),
            b"ZKLG\0\0\0\x02\0\0\0\0\0\0\0\0",
        )
        .unwrap();
    }
    let mut removed = datadir::purge(dir.path(), dir.path(), 1).unwrap();
    removed.sort();
    let names: Vec<String> = removed
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, vec!["log.1", "log.15", "snapshot.10", "snapshot.20"]);
    let mut left: Vec<String> = std::fs::read_dir(&v)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        vec![
            "log.25",
            "log.35",
            "log.45",
            "snapshot.30",
            "snapshot.40",
            "snapshot.50",
            "snapshot.60"
        ]
    );
    assert!(datadir::purge(dir.path(), dir.path(), 3)
        .unwrap()
        .is_empty());
}

#[test]
fn truncate_after_keeps_exactly_the_prefix() {
    // a learner told to TRUNC: every cut point, across file boundaries and past snapshots
    let b = random_builder(200, 7);
    for cut in [0usize, 1, 69, 70, 71, 120, 150, 199, 200] {
        let dir = tempfile::tempdir().unwrap();
        let v = write_datadir(dir.path(), &b.entries, 70, &[100, 150]);
        let zxid = if cut == 0 {
            0
        } else {
            b.entries[cut - 1].zxid()
        };
        datadir::truncate_after(dir.path(), dir.path(), zxid).unwrap();
        let r = assert_recovered(dir.path(), &b.entries[..cut]);
        assert!(r.snapshot.as_ref().is_none_or(|p| {
            storage::zxid_from_name(p.file_name().unwrap().to_str().unwrap(), "snapshot").unwrap()
                <= zxid
        }));
        // the log accepts appends after the cut again
        let mut log = TxnLog::open(&v, PRE_ALLOC).unwrap();
        log.set_last_zxid(zxid);
        if cut < b.entries.len() {
            log.append(&b.entries[cut]).unwrap();
            log.commit(true).unwrap();
            assert_recovered(dir.path(), &b.entries[..=cut]);
        }
    }
}

#[test]
fn truncate_with_the_writers_index_cuts_where_reading_would() {
    // the log thread's fast path: the file being appended to is cut from the writer's index
    let b = random_builder(200, 11);
    for cut in [0usize, 140, 141, 150, 199, 200] {
        let dir = tempfile::tempdir().unwrap();
        let v = datadir::version_dir(dir.path()).unwrap();
        let mut log = TxnLog::open(&v, PRE_ALLOC).unwrap();
        for (i, e) in b.entries.iter().enumerate() {
            log.append(e).unwrap();
            if (i + 1) % 140 == 0 {
                log.commit(true).unwrap();
                log.roll().unwrap();
            }
        }
        let index = log.current_index().expect("appending to a file");
        assert_eq!(index.records.len(), 60);
        log.commit(true).unwrap();
        log.roll().unwrap();
        let zxid = if cut == 0 {
            0
        } else {
            b.entries[cut - 1].zxid()
        };
        datadir::truncate_after_with_index(dir.path(), dir.path(), zxid, Some(&index)).unwrap();
        assert_recovered(dir.path(), &b.entries[..cut]);
    }
}

#[test]
fn remove_logs_leaves_snapshots() {
    let b = random_builder(100, 9);
    let dir = tempfile::tempdir().unwrap();
    let v = write_datadir(dir.path(), &b.entries, 30, &[100]);
    assert!(!logs(&v).is_empty());
    datadir::remove_logs(dir.path()).unwrap();
    assert!(logs(&v).is_empty());
    assert_recovered(dir.path(), &b.entries);
}

// ---- gaps in the data ----

/// `entries` renumbered with `zxids` (same length), as another epoch's leader would have
/// numbered them.
fn renumber(entries: &[TxnEntry], zxids: &[i64]) -> Vec<TxnEntry> {
    assert_eq!(entries.len(), zxids.len());
    entries
        .iter()
        .zip(zxids)
        .map(|(e, z)| {
            let mut e = e.clone();
            e.header.zxid = *z;
            e
        })
        .collect()
}

/// The tree and sessions of the txns that are left, applied in order.
fn assert_recovered_from(r: &datadir::Recovered, left: &[TxnEntry]) {
    assert_same_tree(&r.tree, &tree_at(left));
    assert_eq!(
        r.sessions.clone().into_iter().collect::<Vec<_>>(),
        sessions_at(left)
    );
}

fn data_loss(dir: &Path) -> Vec<datadir::DataGap> {
    match recover(dir, dir) {
        Err(RecoverError::DataLoss(gaps)) => gaps,
        other => panic!("expected missing txns, got {other:?}"),
    }
}

fn damage(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    std::fs::write(path, &bytes).unwrap();
}

fn accepting() -> datadir::RecoverOptions {
    datadir::RecoverOptions {
        accept_data_loss: true,
    }
}

/// The hostile tester's dataDir: the newest snapshot is damaged, so recovery falls back to an
/// older one, and a log file between them is gone.
#[test]
fn missing_middle_log_file_refuses_naming_files_and_range() {
    let b = random_builder(300, 12);
    let dir = tempfile::tempdir().unwrap();
    let v = write_datadir(dir.path(), &b.entries, 100, &[50, 250]);
    let names: Vec<String> = logs(&v)
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, vec!["log.1", "log.65", "log.c9"]);
    damage(&v.join("snapshot.fa"));
    // with every log there, the older snapshot and the logs give everything
    assert_recovered(dir.path(), &b.entries);
    std::fs::remove_file(v.join("log.65")).unwrap();

    let gaps = data_loss(dir.path());
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    let gap = &gaps[0];
    assert_eq!((gap.first, gap.last), (0x65, 0xc8));
    assert_eq!(gap.after, datadir::GapStart::Log(v.join("log.1")));
    assert_eq!(gap.before, v.join("log.c9"));
    assert_eq!(gap.snapshot, Some(v.join("snapshot.32")));
    let err = recover(dir.path(), dir.path()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: txns 0x65..0xc8 are missing between log.1 and log.c9 (snapshot.32 used)",
            v.display()
        )
    );
    assert!(err.storage().is_none());

    // the operator accepts the loss: what is there is served
    let r = datadir::recover_with(dir.path(), dir.path(), accepting()).unwrap();
    assert_eq!(r.data_loss, gaps);
    let left: Vec<TxnEntry> = b.entries[..100]
        .iter()
        .chain(&b.entries[200..])
        .cloned()
        .collect();
    assert_recovered_from(&r, &left);
    assert_eq!(r.last_zxid, 300);
    assert_eq!(r.snapshot, Some(v.join("snapshot.32")));
}

#[test]
fn first_log_after_the_snapshot_starting_late_refuses() {
    let b = random_builder(300, 13);
    let dir = tempfile::tempdir().unwrap();
    let v = write_datadir(dir.path(), &b.entries, 100, &[100]);
    // the snapshot holds 1..=100; 101..=200 are gone
    std::fs::remove_file(v.join("log.65")).unwrap();
    let gaps = data_loss(dir.path());
    assert_eq!(
        gaps[0].to_string(),
        format!(
            "{}: txns 0x65..0xc8 are missing between log.1 and log.c9 (snapshot.64 used)",
            v.display()
        )
    );
    // and without the file that ends at the snapshot: nothing covers 101..=200
    std::fs::remove_file(v.join("log.1")).unwrap();
    let gaps = data_loss(dir.path());
    assert_eq!(gaps.len(), 1);
    assert_eq!(
        gaps[0].after,
        datadir::GapStart::Snapshot(v.join("snapshot.64"))
    );
    assert_eq!(
        gaps[0].to_string(),
        format!(
            "{}: txns 0x65..0xc8 are missing between snapshot.64 and log.c9",
            v.display()
        )
    );
    let r = datadir::recover_with(dir.path(), dir.path(), accepting()).unwrap();
    let left: Vec<TxnEntry> = b.entries[..100]
        .iter()
        .chain(&b.entries[200..])
        .cloned()
        .collect();
    assert_recovered_from(&r, &left);

    // no snapshot at all, and the logs do not start at the first txn
    let dir = tempfile::tempdir().unwrap();
    let v = write_datadir(dir.path(), &b.entries, 100, &[]);
    std::fs::remove_file(v.join("log.1")).unwrap();
    assert_eq!(
        data_loss(dir.path())[0].to_string(),
        format!(
            "{}: txns 0x1..0x64 are missing before log.65 (no snapshot)",
            v.display()
        )
    );
}

#[test]
fn a_gap_inside_one_log_file_refuses() {
    let b = random_builder(60, 14);
    let dir = tempfile::tempdir().unwrap();
    let v = datadir::version_dir(dir.path()).unwrap();
    let snap = snapshot::serialize(&tree_at(&b.entries[..10]), &sessions_at(&b.entries[..10]));
    snapshot::write(&v, 10, &snap).unwrap();
    let mut log = TxnLog::open(&v, PRE_ALLOC).unwrap();
    // txn 0x15 was never written, and 0x20..=0x22 neither
    for e in b
        .entries
        .iter()
        .filter(|e| ![0x15, 0x20, 0x21, 0x22].contains(&e.zxid()))
    {
        log.append(e).unwrap();
    }
    log.commit(true).unwrap();
    let gaps = data_loss(dir.path());
    let shown: Vec<String> = gaps.iter().map(|g| g.to_string()).collect();
    assert_eq!(
        shown,
        vec![
            format!(
                "{}: txn 0x15 is missing inside log.1 (snapshot.a used)",
                v.display()
            ),
            format!(
                "{}: txns 0x20..0x22 are missing inside log.1 (snapshot.a used)",
                v.display()
            ),
        ]
    );
    let err = recover(dir.path(), dir.path()).unwrap_err();
    assert_eq!(err.to_string(), shown.join("; "));
    // before the snapshot, a hole does not matter: it holds those txns
    let dir = tempfile::tempdir().unwrap();
    let v = datadir::version_dir(dir.path()).unwrap();
    let snap = snapshot::serialize(&tree_at(&b.entries[..30]), &sessions_at(&b.entries[..30]));
    snapshot::write(&v, 30, &snap).unwrap();
    let mut log = TxnLog::open(&v, PRE_ALLOC).unwrap();
    for e in b.entries.iter().filter(|e| e.zxid() != 0x15) {
        log.append(e).unwrap();
    }
    log.commit(true).unwrap();
    assert_recovered(dir.path(), &b.entries);
}

/// A new leader's epoch starts over at counter 1, epochs may be skipped (an election whose
/// epoch never got established), and its NEWLEADER zxid `epoch << 32` is no txn: none of
/// that is a gap, whether the epoch changes inside a file, between files, or right after the
/// snapshot.
#[test]
fn epoch_changes_are_not_gaps() {
    let b = random_builder(90, 15);
    const E1: i64 = 1 << 32;
    const E2: i64 = 2 << 32;
    const E5: i64 = 5 << 32;
    let zxids: Vec<i64> = (1..=30)
        .map(|c| E1 | c)
        .chain((1..=30).map(|c| E2 | c))
        .chain((1..=30).map(|c| E5 | c))
        .collect();
    let entries = renumber(&b.entries, &zxids);
    // files rolled at every epoch change (a restart), inside epochs, and one that spans one
    for (roll, snaps) in [
        (30, vec![]),
        (30, vec![30, 60]),
        (20, vec![25]),
        (45, vec![30]),
        (1000, vec![60]),
        (7, vec![29, 31]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write_datadir(dir.path(), &entries, roll, &snaps);
        let r = assert_recovered(dir.path(), &entries);
        assert!(r.data_loss.is_empty());
        assert_eq!(r.last_zxid, E5 | 30);
    }
    // a learner that received a SNAP at the end of epoch 2: the snapshot replaces its logs,
    // and the next leader's txns start a new file at counter 1
    let dir = tempfile::tempdir().unwrap();
    let v = datadir::version_dir(dir.path()).unwrap();
    let snap = snapshot::serialize(&tree_at(&entries[..60]), &sessions_at(&entries[..60]));
    snapshot::write(&v, E2 | 30, &snap).unwrap();
    let mut log = TxnLog::open(&v, PRE_ALLOC).unwrap();
    for e in &entries[60..] {
        log.append(e).unwrap();
    }
    log.commit(true).unwrap();
    assert_eq!(
        logs(&v),
        vec![v.join(txnlog::log_name(E5 | 1))],
        "one file, of epoch 5"
    );
    assert_recovered(dir.path(), &entries);
    // a snapshot named at a NEWLEADER zxid (counter 0)
    std::fs::remove_file(v.join(snapshot::snapshot_name(E2 | 30))).unwrap();
    snapshot::write(&v, E5, &snap).unwrap();
    assert_recovered(dir.path(), &entries);
}

#[test]
fn a_new_epoch_that_does_not_start_at_counter_one_is_a_gap() {
    let b = random_builder(40, 16);
    const E1: i64 = 1 << 32;
    const E3: i64 = 3 << 32;
    let zxids: Vec<i64> = (1..=20)
        .map(|c| E1 | c)
        .chain((4..=23).map(|c| E3 | c))
        .collect();
    let entries = renumber(&b.entries, &zxids);
    let dir = tempfile::tempdir().unwrap();
    let v = write_datadir(dir.path(), &entries, 20, &[10]);
    let gaps = data_loss(dir.path());
    assert_eq!(
        gaps[0].to_string(),
        format!(
            "{}: txns 0x300000001..0x300000003 are missing between log.100000001 and \
             log.300000004 (snapshot.10000000a used)",
            v.display()
        )
    );
    // the same inside one file
    let dir = tempfile::tempdir().unwrap();
    write_datadir(dir.path(), &entries, 1000, &[]);
    let gaps = data_loss(dir.path());
    assert_eq!((gaps[0].first, gaps[0].last), (E3 | 1, E3 | 3));
    assert!(gaps[0]
        .to_string()
        .contains("inside log.100000001 (no snapshot)"));
    // and a snapshot at the end of epoch 1 followed by epoch 3's fourth txn
    let dir = tempfile::tempdir().unwrap();
    let v = datadir::version_dir(dir.path()).unwrap();
    let snap = snapshot::serialize(&tree_at(&entries[..20]), &sessions_at(&entries[..20]));
    snapshot::write(&v, E1 | 20, &snap).unwrap();
    let mut log = TxnLog::open(&v, PRE_ALLOC).unwrap();
    for e in &entries[20..] {
        log.append(e).unwrap();
    }
    log.commit(true).unwrap();
    assert_eq!(
        data_loss(dir.path())[0].to_string(),
        format!(
            "{}: txns 0x300000001..0x300000003 are missing between snapshot.100000014 and \
             log.300000004",
            v.display()
        )
    );
}
