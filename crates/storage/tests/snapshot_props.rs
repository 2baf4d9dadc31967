//! Property tests of snapshots: random trees (built by applying random txns) round trip, and
//! random damage is always rejected, never read as a different tree.

mod common;

use common::{assert_same_tree, op_strategy, Builder, Op};
use proptest::prelude::*;
use std::path::Path;
use storage::snapshot;

fn build(ops: &[Op]) -> Builder {
    let mut b = Builder::new();
    for op in ops {
        b.apply(op);
    }
    b
}

fn tree_bytes(t: &tree::DataTree) -> Vec<u8> {
    let mut out = Vec::new();
    t.serialize_into(&mut out);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn snapshots_round_trip(ops in proptest::collection::vec(op_strategy(), 0..80)) {
        let b = build(&ops);
        let bytes = snapshot::serialize(&b.tree, &b.sessions);
        let snap = snapshot::parse(Path::new("snapshot.1"), &bytes).unwrap();
        assert_same_tree(&snap.tree, &b.tree);
        prop_assert_eq!(&snap.sessions, &b.sessions);
        prop_assert_eq!(snap.digest, None);
        // byte-stable
        prop_assert_eq!(snapshot::serialize(&snap.tree, &snap.sessions), bytes);
        // the loaded tree keeps working: the same next txns give the same trees
        let mut loaded = snap.tree;
        let mut direct = b.tree.clone();
        let extra = tree::Txn::Create(jute::CreateTxn {
            path: "/extra".into(),
            data: None,
            acl: common::acl_choice(2),
            ephemeral: false,
            parent_cversion: direct.node("/").unwrap().stat.cversion + 1,
        });
        let e = common::entry(b.zxid + 1, 1, extra);
        loaded.process_txn(&e.header, &e.txn);
        direct.process_txn(&e.header, &e.txn);
        let _ = (loaded.drain_events(), direct.drain_events());
        assert_same_tree(&loaded, &direct);
    }

    #[test]
    fn damaged_snapshots_are_rejected(
        ops in proptest::collection::vec(op_strategy(), 0..40),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..4),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        prop_assume!(!flips.is_empty() || cut.is_some());
        let b = build(&ops);
        let good = snapshot::serialize(&b.tree, &b.sessions);
        let mut bytes = good.clone();
        for (at, x) in &flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        if let Ok(snap) = snapshot::parse(Path::new("snapshot.1"), &bytes) {
            // only possible if the damage undid itself
            prop_assert_eq!(tree_bytes(&snap.tree), tree_bytes(&b.tree));
            prop_assert_eq!(snap.sessions, b.sessions);
        }
    }
}
