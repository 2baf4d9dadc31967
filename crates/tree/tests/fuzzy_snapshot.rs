//! A fuzzy snapshot taken while txns keep being applied, loaded and replayed from its start
//! zxid, gives exactly the tree the server ended with.

use jute::request::{Create, Request};
use jute::{op, perms, Acl, Id};
use proptest::prelude::*;
use tree::snapshot::FuzzySnapshot;
use tree::{DataTree, Prepared, Preparer, RequestContext};

fn acl(kind: u8) -> Vec<Acl> {
    match kind % 3 {
        0 => vec![tree::acl::world_anyone(perms::ALL)],
        1 => vec![tree::acl::world_anyone(
            perms::READ | perms::WRITE | perms::CREATE | perms::DELETE | perms::ADMIN,
        )],
        _ => vec![
            Acl {
                perms: perms::ALL,
                id: Id {
                    scheme: "digest".into(),
                    id: "u:x".into(),
                },
            },
            tree::acl::world_anyone(perms::READ),
        ],
    }
}

/// One random write against a small path universe.
fn request(choice: u8, a: u8, b: u8) -> Request {
    let paths = ["/a", "/a/b", "/a/c", "/d", "/d/e", "/a/b/f"];
    let p = paths[a as usize % paths.len()].to_string();
    match choice % 5 {
        0 | 1 => Request::Create(Create {
            op_type: op::CREATE,
            path: p,
            data: Some(vec![b; (b % 7) as usize]),
            acl: acl(b),
            flags: (b % 3) as i32 * 2 % 4,
            ttl: -1,
        }),
        2 => Request::SetData(jute::SetDataRequest {
            path: p,
            data: Some(vec![a; 3]),
            version: -1,
        }),
        3 => Request::Delete(jute::DeleteRequest {
            path: p,
            version: -1,
        }),
        _ => Request::SetAcl(jute::SetAclRequest {
            path: p,
            acl: acl(b.wrapping_add(1)),
            version: -1,
        }),
    }
}

struct Server {
    tree: DataTree,
    prep: Preparer,
    zxid: i64,
    log: Vec<Prepared>,
}

impl Server {
    fn write(&mut self, req: &Request) {
        self.zxid += 1;
        let ctx = RequestContext {
            session_id: 5,
            cxid: 0,
            auth: &[],
            time: self.zxid * 10,
            skip_acl: true,
            extended_types_enabled: true,
            reconfig_enabled: false,
        };
        let p = self
            .prep
            .prepare(&self.tree, &ctx, &mut req.clone(), self.zxid);
        self.tree.process_txn(&p.header, &p.txn);
        self.tree.drain_events();
        self.prep.applied(self.zxid);
        self.log.push(p);
    }
}

/// A znode as compared: path, data, ACL, Stat.
type NodeView = (String, Option<Vec<u8>>, Vec<Acl>, jute::Stat);

fn all_nodes(t: &DataTree) -> Vec<NodeView> {
    let mut out = Vec::new();
    let mut stack = vec!["/".to_string()];
    while let Some(p) = stack.pop() {
        let n = t.node(&p).unwrap();
        out.push((
            p.clone(),
            n.data().map(<[u8]>::to_vec),
            t.acl_of(n),
            n.stat(),
        ));
        for c in t.children(n) {
            stack.push(tree::path::join(&p, &c));
        }
    }
    out.sort_by(|x, y| x.0.cmp(&y.0));
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn replaying_after_a_fuzzy_snapshot_reaches_the_same_tree(
        before in proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>()), 0..40),
        during in proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), 1usize..3), 0..40),
    ) {
        let mut s = Server { tree: DataTree::new(), prep: Preparer::new(), zxid: 0, log: Vec::new() };
        for (c, a, b) in &before {
            s.write(&request(*c, *a, *b));
        }
        let mut snap = FuzzySnapshot::start(&mut s.tree);
        let start = snap.start_zxid;
        let mut done = false;
        let mut bytes = Vec::new();
        for (c, a, b, budget) in &during {
            if !done {
                done = snap.step(&s.tree, *budget, &mut bytes);
            }
            s.write(&request(*c, *a, *b));
        }
        while !done {
            done = snap.step(&s.tree, 1, &mut bytes);
        }
        snap.finish(&mut s.tree);
        let mut loaded = DataTree::deserialize_from(&mut jute::Reader::new(&bytes)).unwrap();
        // the ACL cache is written first, yet every node names an id it holds
        prop_assert_eq!(loaded.dangling_acl_paths(), Vec::<String>::new());
        for p in s.log.iter().filter(|p| p.header.zxid > start) {
            loaded.process_txn(&p.header, &p.txn);
        }
        prop_assert_eq!(all_nodes(&loaded), all_nodes(&s.tree));
    }
}
