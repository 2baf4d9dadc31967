//! A snapshot written in parts (as the server writes fuzzy snapshots) is byte for byte the
//! snapshot written whole, and reads back.

use tree::snapshot::FuzzySnapshot;
use tree::DataTree;

#[test]
fn parts_and_whole_give_the_same_file() {
    let mut t = DataTree::new();
    for (i, path) in ["/a", "/a/b", "/c"].iter().enumerate() {
        let header = jute::TxnHeader {
            client_id: 1,
            cxid: i as i32,
            zxid: i as i64 + 1,
            time: 7,
            txn_type: jute::op::CREATE,
        };
        let txn = tree::Txn::Create(jute::CreateTxn {
            path: path.to_string(),
            data: Some(vec![i as u8; 3]),
            acl: vec![tree::acl::world_anyone(jute::perms::READ)],
            ephemeral: false,
            parent_cversion: -1,
        });
        t.process_txn(&header, &txn);
    }
    let sessions = [(5i64, 3000i32)];
    let dir = std::env::temp_dir().join(format!("zkrs-parts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut snap = FuzzySnapshot::start(&mut t);
    while !snap.step(&t, 1) {}
    let [acls, nodes] = snap.finish(&mut t);
    let path = storage::snapshot::write_parts(&dir, 3, &sessions, &[&acls, &nodes]).unwrap();
    let written = std::fs::read(&path).unwrap();
    assert_eq!(written, storage::snapshot::serialize(&t, &sessions));
    let (read, read_sessions) = storage::snapshot::read(&path).unwrap();
    assert_eq!(read_sessions, sessions.to_vec());
    assert_eq!(read.node("/a/b").unwrap().data(), Some(&[1u8, 1, 1][..]));
    std::fs::remove_dir_all(&dir).unwrap();
}
