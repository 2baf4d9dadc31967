//! Prepare + apply together, as the server pipeline runs them, including txns still in flight.

use jute::request::{Create, MultiOp, Request};
use jute::{op, perms, Acl, ErrorCode, Id};
use tree::{DataTree, Preparer, RequestContext, Txn};

fn open() -> Vec<Acl> {
    vec![tree::acl::world_anyone(perms::ALL)]
}

fn ctx(auth: &[Id]) -> RequestContext<'_> {
    RequestContext {
        session_id: 0x42,
        cxid: 1,
        auth,
        time: 1000,
        skip_acl: false,
        extended_types_enabled: true,
        reconfig_enabled: false,
    }
}

fn create(path: &str, flags: i32) -> Request {
    Request::Create(Create {
        op_type: op::CREATE2,
        path: path.into(),
        data: Some(b"d".to_vec()),
        acl: open(),
        flags,
        ttl: -1,
    })
}

struct Pipeline {
    tree: DataTree,
    prep: Preparer,
    zxid: i64,
}

impl Pipeline {
    fn new() -> Self {
        Pipeline {
            tree: DataTree::new(),
            prep: Preparer::new(),
            zxid: 0,
        }
    }

    fn prepare(&mut self, req: &Request) -> tree::Prepared {
        self.zxid += 1;
        self.prep
            .prepare(&self.tree, &ctx(&[]), &mut req.clone(), self.zxid)
    }

    fn apply(&mut self, p: &tree::Prepared) -> tree::TxnResult {
        let rc = self.tree.process_txn(&p.header, &p.txn);
        self.prep.applied(p.header.zxid);
        rc
    }

    fn run(&mut self, req: &Request) -> (tree::Prepared, tree::TxnResult) {
        let p = self.prepare(req);
        let rc = self.apply(&p);
        (p, rc)
    }
}

#[test]
fn sequential_names_use_the_parent_cversion() {
    let mut p = Pipeline::new();
    p.run(&create("/q", 0));
    let (_, a) = p.run(&create("/q/n-", 2));
    p.run(&create("/q/x", 0));
    let (_, b) = p.run(&create("/q/n-", 2));
    assert_eq!(a.path, "/q/n-0000000000");
    assert_eq!(b.path, "/q/n-0000000002");
    let q = p.tree.node("/q").unwrap().stat();
    assert_eq!((q.cversion, q.num_children, q.pzxid), (3, 3, 4));
}

#[test]
fn in_flight_create_makes_a_second_create_fail_before_either_is_applied() {
    let mut p = Pipeline::new();
    let first = p.prepare(&create("/a", 0));
    let second = p.prepare(&create("/a", 0));
    assert_eq!(first.error, None);
    assert_eq!(second.error, Some(ErrorCode::NodeExists));
    // and a child of the not-yet-applied node can be prepared
    let child = p.prepare(&create("/a/b", 0));
    assert_eq!(child.error, None);
    p.apply(&first);
    p.apply(&second);
    p.apply(&child);
    assert!(p.tree.node("/a/b").is_some());
    assert_eq!(p.prep.outstanding(), 0);
}

#[test]
fn failed_multi_rolls_back_its_in_flight_changes_and_reports_per_op_results() {
    let mut p = Pipeline::new();
    let multi = Request::Multi(vec![
        MultiOp::Create(Create {
            op_type: op::CREATE,
            path: "/m".into(),
            data: None,
            acl: open(),
            flags: 0,
            ttl: -1,
        }),
        MultiOp::Delete(jute::DeleteRequest {
            path: "/missing".into(),
            version: -1,
        }),
        MultiOp::SetData(jute::SetDataRequest {
            path: "/m".into(),
            data: None,
            version: -1,
        }),
    ]);
    let (prepared, rc) = p.run(&multi);
    assert_eq!(prepared.error, Some(ErrorCode::NoNode));
    let codes: Vec<i32> = rc.multi.iter().map(|r| r.err).collect();
    assert_eq!(
        codes,
        vec![
            0,
            ErrorCode::NoNode.code(),
            ErrorCode::RuntimeInconsistency.code()
        ]
    );
    assert!(p.tree.node("/m").is_none());
    // the rolled-back create does not block a later one
    assert_eq!(p.run(&create("/m", 0)).0.error, None);
}

#[test]
fn versions_acls_and_ephemeral_parents_are_checked() {
    let mut p = Pipeline::new();
    p.run(&create("/v", 0));
    let bad = Request::SetData(jute::SetDataRequest {
        path: "/v".into(),
        data: None,
        version: 5,
    });
    assert_eq!(p.run(&bad).0.error, Some(ErrorCode::BadVersion));
    let good = Request::SetData(jute::SetDataRequest {
        path: "/v".into(),
        data: None,
        version: 0,
    });
    let (_, rc) = p.run(&good);
    assert_eq!(rc.stat.unwrap().version, 1);
    p.run(&create("/e", 1));
    assert_eq!(
        p.run(&create("/e/c", 0)).0.error,
        Some(ErrorCode::NoChildrenForEphemerals)
    );
    let read_only = Request::Create(Create {
        op_type: op::CREATE,
        path: "/ro".into(),
        data: None,
        acl: vec![tree::acl::world_anyone(perms::READ)],
        flags: 0,
        ttl: -1,
    });
    p.run(&read_only);
    assert_eq!(p.run(&create("/ro/c", 0)).0.error, Some(ErrorCode::NoAuth));
    p.run(&create("/v/child", 0));
    let delete_nonempty = Request::Delete(jute::DeleteRequest {
        path: "/v".into(),
        version: -1,
    });
    assert_eq!(p.run(&delete_nonempty).0.error, Some(ErrorCode::NotEmpty));
    // the built-in nodes cannot be deleted; a malformed path is just not there
    for (path, code) in [
        ("/", ErrorCode::BadArguments),
        ("/zookeeper/config", ErrorCode::BadArguments),
        ("//", ErrorCode::NoNode),
    ] {
        let delete = Request::Delete(jute::DeleteRequest {
            path: path.into(),
            version: -1,
        });
        assert_eq!(p.run(&delete).0.error, Some(code), "{path}");
    }
}

#[test]
fn closing_a_session_deletes_its_ephemerals_including_in_flight_ones() {
    let mut p = Pipeline::new();
    p.run(&create("/e1", 1));
    let in_flight = p.prepare(&create("/e2", 1));
    p.zxid += 1;
    let close = p.prep.close_session(&p.tree, 0x42, 0, p.zxid, 2000);
    match &close.txn {
        Txn::CloseSession(t) => assert_eq!(
            t.paths_to_delete,
            vec!["/e1".to_string(), "/e2".to_string()]
        ),
        other => panic!("unexpected {other:?}"),
    }
    p.apply(&in_flight);
    p.apply(&close);
    assert!(p.tree.node("/e1").is_none() && p.tree.node("/e2").is_none());
    assert!(p.tree.ephemerals_of(0x42, "/").is_empty());
}

#[test]
fn watches_fire_once_and_persistent_ones_keep_firing() {
    let mut p = Pipeline::new();
    p.run(&create("/w", 0));
    p.tree.watch_data("/w", 7);
    p.tree.add_watch("/", 8, true);
    let set = Request::SetData(jute::SetDataRequest {
        path: "/w".into(),
        data: None,
        version: -1,
    });
    p.run(&set);
    let events = p.tree.drain_events();
    assert_eq!(events.len(), 2);
    p.run(&set);
    let events = p.tree.drain_events();
    assert_eq!(
        events.iter().map(|e| e.watcher).collect::<Vec<_>>(),
        vec![8]
    );
}

#[test]
fn the_same_txns_give_the_same_tree() {
    // replaying the log of one pipeline into a fresh tree reproduces every node and Stat
    let mut p = Pipeline::new();
    let mut log = Vec::new();
    for req in [
        create("/a", 0),
        create("/a/s-", 2),
        create("/a/s-", 3),
        create("/b", 4),
    ] {
        let (prepared, _) = p.run(&req);
        log.push(prepared);
    }
    let mut replica = DataTree::new();
    for t in &log {
        replica.process_txn(&t.header, &t.txn);
    }
    for path in ["/a", "/a/s-0000000000", "/a/s-0000000001", "/b"] {
        assert_eq!(
            p.tree.node(path).unwrap().stat(),
            replica.node(path).unwrap().stat(),
            "{path}"
        );
    }
}
