//! Shared by the storage tests: txn builders, random trees and txn streams, tree comparison.

#![allow(dead_code)]

pub mod treejson;

use jute::{
    perms, Acl, CheckVersionTxn, CloseSessionTxn, CreateContainerTxn, CreateSessionTxn,
    CreateTtlTxn, CreateTxn, DeleteTxn, ErrorTxn, Id, SetAclTxn, SetDataTxn, TxnHeader,
};
use proptest::prelude::*;
use tree::{DataTree, Txn, TxnEntry};

pub fn entry(zxid: i64, session: i64, txn: Txn) -> TxnEntry {
    TxnEntry {
        header: TxnHeader {
            client_id: session,
            cxid: (zxid & 0xffff) as i32,
            zxid,
            time: 1_700_000_000_000 + zxid,
            txn_type: txn.txn_type(),
        },
        txn,
    }
}

pub fn acl_choice(i: usize) -> Vec<Acl> {
    let id = |scheme: &str, id: &str| Id {
        scheme: scheme.into(),
        id: id.into(),
    };
    match i % 5 {
        0 => vec![tree::acl::world_anyone(perms::ALL)],
        1 => vec![tree::acl::world_anyone(perms::READ)],
        2 => vec![Acl {
            perms: perms::ALL,
            id: id("digest", "user:Jq7wMyA/w2Vd5WIDAKdu4OIIFEQ="),
        }],
        3 => vec![
            Acl {
                perms: perms::READ | perms::WRITE,
                id: id("ip", "127.0.0.1"),
            },
            tree::acl::world_anyone(perms::READ),
        ],
        _ => vec![Acl {
            perms: perms::ADMIN,
            id: id("digest", "other:abc="),
        }],
    }
}

/// An abstract operation, resolved against the tree when applied, so that every generated
/// stream is meaningful (creates under existing nodes, deletes of leaves).
#[derive(Debug, Clone)]
pub enum Op {
    /// kind: 0 persistent, 1 ephemeral, 2 container, 3 ttl, 4 create2
    Create {
        parent: usize,
        name: u8,
        kind: u8,
        data: Option<Vec<u8>>,
        acl: usize,
    },
    SetData {
        node: usize,
        data: Option<Vec<u8>>,
    },
    SetAcl {
        node: usize,
        acl: usize,
    },
    Delete {
        node: usize,
    },
    OpenSession {
        timeout: i32,
    },
    CloseSession {
        which: usize,
    },
    Multi {
        parent: usize,
        name: u8,
        fail: bool,
    },
    Error,
}

pub fn op_strategy() -> impl Strategy<Value = Op> {
    let data = proptest::option::weighted(0.9, proptest::collection::vec(any::<u8>(), 0..24));
    prop_oneof![
        6 => (any::<usize>(), 0u8..12, 0u8..5, data.clone(), any::<usize>()).prop_map(
            |(parent, name, kind, data, acl)| Op::Create { parent, name, kind, data, acl }
        ),
        3 => (any::<usize>(), data).prop_map(|(node, data)| Op::SetData { node, data }),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(node, acl)| Op::SetAcl { node, acl }),
        2 => any::<usize>().prop_map(|node| Op::Delete { node }),
        1 => (1000i32..60000).prop_map(|timeout| Op::OpenSession { timeout }),
        1 => any::<usize>().prop_map(|which| Op::CloseSession { which }),
        1 => (any::<usize>(), 0u8..12, any::<bool>()).prop_map(|(parent, name, fail)| Op::Multi { parent, name, fail }),
        1 => Just(Op::Error),
    ]
}

fn user_paths(tree: &DataTree) -> Vec<String> {
    storage::inspect::node_paths(tree)
        .into_iter()
        .filter(|p| p != "/zookeeper" && !p.starts_with("/zookeeper/"))
        .collect()
}

/// A stream of txns and the tree and sessions they produce, driven by abstract ops.
pub struct Builder {
    pub tree: DataTree,
    pub sessions: Vec<(i64, i32)>,
    pub entries: Vec<TxnEntry>,
    pub zxid: i64,
    next_session: i64,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    pub fn new() -> Self {
        Builder {
            tree: DataTree::new(),
            sessions: Vec::new(),
            entries: Vec::new(),
            zxid: 0,
            next_session: 0x100_0000_0000_0001,
        }
    }

    fn push(&mut self, session: i64, txn: Txn) {
        self.zxid += 1;
        let e = entry(self.zxid, session, txn);
        self.tree.process_txn(&e.header, &e.txn);
        let _ = self.tree.drain_events();
        match &e.txn {
            Txn::CreateSession(t) => self.sessions.push((session, t.time_out)),
            Txn::CloseSession(_) => self.sessions.retain(|(s, _)| *s != session),
            _ => {}
        }
        self.entries.push(e);
    }

    fn session_or_open(&mut self) -> i64 {
        if self.sessions.is_empty() {
            self.apply(&Op::OpenSession { timeout: 30000 });
        }
        self.sessions[self.zxid as usize % self.sessions.len()].0
    }

    pub fn apply(&mut self, op: &Op) {
        let paths = user_paths(&self.tree);
        let pick = |i: usize| paths[i % paths.len()].clone();
        match op {
            Op::Create {
                parent,
                name,
                kind,
                data,
                acl,
            } => {
                let parent = pick(*parent);
                let pnode = self.tree.node(&parent).expect("exists");
                if pnode.stat.ephemeral_owner != 0
                    && !jute::ephemeral_owner::is_container(pnode.stat.ephemeral_owner)
                    && jute::ephemeral_owner::ttl(pnode.stat.ephemeral_owner).is_none()
                {
                    return; // no children for ephemerals
                }
                let cversion = pnode.stat.cversion + 1;
                let path = tree::path::join(&parent, &format!("n{name}"));
                if self.tree.node(&path).is_some() {
                    return;
                }
                let acl = acl_choice(*acl);
                let (session, txn) = match kind {
                    1 => {
                        let s = self.session_or_open();
                        let cversion = self.tree.node(&parent).expect("exists").stat.cversion + 1;
                        (
                            s,
                            Txn::Create(CreateTxn {
                                path,
                                data: data.clone(),
                                acl,
                                ephemeral: true,
                                parent_cversion: cversion,
                            }),
                        )
                    }
                    2 => (
                        1,
                        Txn::CreateContainer(CreateContainerTxn {
                            path,
                            data: data.clone(),
                            acl,
                            parent_cversion: cversion,
                        }),
                    ),
                    3 => (
                        1,
                        Txn::CreateTtl(CreateTtlTxn {
                            path,
                            data: data.clone(),
                            acl,
                            parent_cversion: cversion,
                            ttl: 3_600_000,
                        }),
                    ),
                    4 => (
                        1,
                        Txn::Create2(CreateTxn {
                            path,
                            data: data.clone(),
                            acl,
                            ephemeral: false,
                            parent_cversion: cversion,
                        }),
                    ),
                    _ => (
                        1,
                        Txn::Create(CreateTxn {
                            path,
                            data: data.clone(),
                            acl,
                            ephemeral: false,
                            parent_cversion: cversion,
                        }),
                    ),
                };
                self.push(session, txn);
            }
            Op::SetData { node, data } => {
                let path = pick(*node);
                let version = self.tree.node(&path).expect("exists").stat.version + 1;
                self.push(
                    1,
                    Txn::SetData(SetDataTxn {
                        path,
                        data: data.clone(),
                        version,
                    }),
                );
            }
            Op::SetAcl { node, acl } => {
                let path = pick(*node);
                let version = self.tree.node(&path).expect("exists").stat.aversion + 1;
                self.push(
                    1,
                    Txn::SetAcl(SetAclTxn {
                        path,
                        acl: acl_choice(*acl),
                        version,
                    }),
                );
            }
            Op::Delete { node } => {
                let path = pick(*node);
                if path == "/" || self.tree.node(&path).expect("exists").num_children() > 0 {
                    return;
                }
                self.push(1, Txn::Delete(DeleteTxn { path }));
            }
            Op::OpenSession { timeout } => {
                let s = self.next_session;
                self.next_session += 1;
                self.push(
                    s,
                    Txn::CreateSession(CreateSessionTxn { time_out: *timeout }),
                );
            }
            Op::CloseSession { which } => {
                if self.sessions.is_empty() {
                    return;
                }
                let s = self.sessions[which % self.sessions.len()].0;
                let paths = self.tree.ephemerals_of(s, "/");
                self.push(
                    s,
                    Txn::CloseSession(CloseSessionTxn {
                        paths_to_delete: paths,
                    }),
                );
            }
            Op::Multi { parent, name, fail } => {
                let parent = pick(*parent);
                let pnode = self.tree.node(&parent).expect("exists");
                if pnode.stat.ephemeral_owner != 0 {
                    return;
                }
                let path = tree::path::join(&parent, &format!("m{name}"));
                if self.tree.node(&path).is_some() {
                    return;
                }
                let create = Txn::Create(CreateTxn {
                    path: path.clone(),
                    data: Some(b"multi".to_vec()),
                    acl: acl_choice(0),
                    ephemeral: false,
                    parent_cversion: pnode.stat.cversion + 1,
                });
                let txn = if *fail {
                    Txn::Multi(vec![
                        Txn::Error(ErrorTxn { err: 0 }),
                        Txn::Error(ErrorTxn { err: -101 }),
                    ])
                } else {
                    Txn::Multi(vec![
                        create,
                        Txn::Check(CheckVersionTxn {
                            path: parent,
                            version: pnode.stat.version,
                        }),
                        Txn::SetData(SetDataTxn {
                            path,
                            data: None,
                            version: 1,
                        }),
                    ])
                };
                self.push(1, txn);
            }
            Op::Error => self.push(1, Txn::Error(ErrorTxn { err: -110 })),
        }
    }
}

/// Every node with its data, resolved ACL and Stat; and the ephemerals of every owner.
pub fn assert_same_tree(a: &DataTree, b: &DataTree) {
    assert_eq!(treejson::nodes_json(a), treejson::nodes_json(b));
    // the Stat clients see is derived: compare what is stored too
    for p in storage::inspect::node_paths(a) {
        assert_eq!(a.node(&p).unwrap().stat, b.node(&p).unwrap().stat, "{p}");
    }
    let owners = |t: &DataTree| {
        let mut v: Vec<(i64, Vec<String>)> = t
            .ephemerals()
            .iter()
            .map(|(o, s)| (*o, s.iter().cloned().collect()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(owners(a), owners(b));
}
