//! A snapshot streamed to disk as a fuzzy snapshot's steps make it (as the server writes them)
//! is byte for byte the snapshot written whole, and reads back; one abandoned leaves nothing.

use tree::snapshot::FuzzySnapshot;
use tree::DataTree;

/// Applies a create txn of `path` at `zxid`.
fn create(t: &mut DataTree, zxid: i64, path: String, data: Vec<u8>, perms: i32) {
    let header = jute::TxnHeader {
        client_id: 1,
        cxid: zxid as i32 - 1,
        zxid,
        time: 7,
        txn_type: jute::op::CREATE,
    };
    let txn = tree::Txn::Create(jute::CreateTxn {
        path,
        data: Some(data),
        acl: vec![tree::acl::world_anyone(perms)],
        ephemeral: false,
        parent_cversion: -1,
    });
    t.process_txn(&header, &txn);
}

/// Writes a snapshot of `t` at `zxid` in steps of `nodes_per_step`, as the server does;
/// returns the writer (to finish or drop) and the number of steps.
fn stream(
    t: &mut DataTree,
    dir: &std::path::Path,
    zxid: i64,
    sessions: &[(i64, i32)],
    nodes_per_step: usize,
) -> (storage::snapshot::SnapshotWriter, usize) {
    let mut snap = FuzzySnapshot::start(t);
    let mut writer = storage::snapshot::SnapshotWriter::create(dir, zxid, sessions).unwrap();
    let mut steps = 0;
    loop {
        let mut chunk = Vec::new();
        let done = snap.step(t, nodes_per_step, &mut chunk);
        writer.write(&chunk).unwrap();
        steps += 1;
        if done {
            break;
        }
    }
    snap.finish(t);
    (writer, steps)
}

#[test]
fn parts_and_whole_give_the_same_file() {
    let mut t = DataTree::new();
    for (i, path) in ["/a", "/a/b", "/c"].iter().enumerate() {
        create(
            &mut t,
            i as i64 + 1,
            path.to_string(),
            vec![i as u8; 3],
            jute::perms::READ,
        );
    }
    let sessions = [(5i64, 3000i32)];
    let dir = std::env::temp_dir().join(format!("zkrs-parts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (writer, steps) = stream(&mut t, &dir, 3, &sessions, 1);
    assert!(steps > 3, "one node per step: {steps} steps");
    let path = writer.finish().unwrap();
    assert_eq!(path, dir.join("snapshot.3"));
    let written = std::fs::read(&path).unwrap();
    assert_eq!(written, storage::snapshot::serialize(&t, &sessions));
    let (read, read_sessions) = storage::snapshot::read(&path).unwrap();
    assert_eq!(read_sessions, sessions.to_vec());
    assert_eq!(read.node("/a/b").unwrap().data(), Some(&[1u8, 1, 1][..]));

    // abandoned half way: no snapshot.4, no temp file
    let mut snap = FuzzySnapshot::start(&mut t);
    let mut writer = storage::snapshot::SnapshotWriter::create(&dir, 4, &sessions).unwrap();
    let mut chunk = Vec::new();
    assert!(!snap.step(&t, 1, &mut chunk));
    writer.write(&chunk).unwrap();
    assert!(dir.join("snapshot.4.tmp").exists());
    drop(writer);
    snap.finish(&mut t);
    let mut left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    left.sort();
    assert_eq!(left, vec![std::ffi::OsString::from("snapshot.3")]);

    // a newer snapshot completed: the older one (its cached pages dropped) is still whole
    let mut writer = storage::snapshot::SnapshotWriter::create(&dir, 5, &sessions).unwrap();
    writer.write(&FuzzySnapshot::write_all(&mut t)).unwrap();
    writer.finish().unwrap();
    assert_eq!(std::fs::read(dir.join("snapshot.3")).unwrap(), written);
    assert_eq!(std::fs::read(dir.join("snapshot.5")).unwrap(), written);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Several MiB in parts of odd sizes: whole chunks go out directly, the unaligned tail after
/// them through the page cache, and the file is still the snapshot written whole.
#[test]
fn a_snapshot_larger_than_a_chunk_is_the_same_file() {
    let mut t = DataTree::new();
    for i in 0..3000 {
        let data = vec![i as u8; 997 + (i as usize % 13)];
        create(
            &mut t,
            i as i64 + 1,
            format!("/n{i}"),
            data,
            jute::perms::ALL,
        );
    }
    let sessions = [(9i64, 4000i32)];
    let dir = std::env::temp_dir().join(format!("zkrs-chunks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (writer, _) = stream(&mut t, &dir, 3000, &sessions, 7);
    let path = writer.finish().unwrap();
    let written = std::fs::read(&path).unwrap();
    assert!(written.len() > 2 << 20, "{} bytes", written.len());
    assert_eq!(written, storage::snapshot::serialize(&t, &sessions));
    assert!(storage::snapshot::read(&path).is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}
