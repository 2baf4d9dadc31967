//! The data tree in ZooKeeper's snapshot layout (DataTree.serialize / deserialize).
//!
//! Layout, all jute:
//! - the ACL cache: `int count`, then per entry `long id` and `vector<ACL>`;
//! - the znodes depth-first from the root, each as `ustring path` (the root is written as the
//!   empty path), `buffer data`, `long acl` (an id of the cache, -1 for world:anyone:cdrwa) and a
//!   `StatPersisted`;
//! - the path "/" as terminator.
//!
//! The sessions, file header and checksum seal around it belong to the `storage` crate.

use crate::acl::{AclCache, OPEN_UNSAFE_ACL_ID};
use crate::data_tree::{DataNode, DataTree};
use crate::nodes::{stored_acl_id, NodeId, MAX_ACL_ID, ROOT};
use crate::path;
use crate::HashMap;
use jute::{write_opt_buffer, write_str, Acl, Jute, Reader, StatPersisted};
use std::collections::BTreeSet;

/// A snapshot written a few nodes at a time between requests, so that writes never stop
/// for it: ZooKeeper's fuzzy snapshot. Nodes may change while it is taken; replaying the log
/// from `start_zxid` (the zxid applied when it started) brings the loaded tree to the same
/// state, because every txn after it is idempotent on a tree that may already contain it.
///
/// The bytes come out in file order as they are made ([`FuzzySnapshot::step`] appends to a
/// buffer the caller hands on to the disk), so a snapshot never has to fit in memory: the ACL
/// cache as it was at the start, the nodes, the terminator. The cache is pinned meanwhile (no
/// id it wrote is dropped or reused), and a node whose ACL a setACL changed since the start is
/// written with the id it had then (the tree remembers it): every id in the file is in the
/// cache written before it. ZooKeeper writes the current id, which its cache may not hold.
#[derive(Debug)]
pub struct FuzzySnapshot {
    pub start_zxid: i64,
    /// The ACL cache as of the start, until the first step hands it out.
    acl_section: Vec<u8>,
    /// Whether the root is still to be written.
    root_pending: bool,
    /// The nodes whose children are being written, innermost last.
    stack: Vec<Children>,
    /// The path of the node being written (one buffer, not a string per node).
    path: String,
}

/// A written node's children still to be written, as slab ids in id order: gathering them
/// reads the parent's child table alone (names would mean a slab read per child, and sorting
/// a million names held the request loop for a tenth of a second).
#[derive(Debug)]
struct Children {
    parent: String,
    ids: Vec<NodeId>,
    next: usize,
}

/// A step ends after writing about this many bytes, however few nodes that is: the requests
/// waiting behind it see at most a fraction of a millisecond of copying.
pub const STEP_BYTES: usize = 256 << 10;

impl FuzzySnapshot {
    /// Starts a snapshot of `tree`; the ACL cache keeps its entries, and the tree the ACL ids
    /// its nodes had, until [`FuzzySnapshot::finish`].
    pub fn start(tree: &mut DataTree) -> FuzzySnapshot {
        tree.acls.pin();
        tree.acls_at_snapshot_start = Some(HashMap::default());
        let mut acl_section = Vec::with_capacity(1024);
        write_acl_cache(&mut acl_section, &tree.acls);
        FuzzySnapshot {
            start_zxid: tree.last_processed_zxid,
            acl_section,
            root_pending: true,
            stack: Vec::new(),
            path: String::new(),
        }
    }

    /// The next node to visit, its id and its path: parents before children, children in id
    /// order. A child is visited only if its slot still holds a node created before the
    /// snapshot started. That is the child gathered: a slot freed since holds nothing, and one
    /// reused holds a node created since (a later zxid), which the log replayed from
    /// `start_zxid` creates anyway (written now, it would lack its parent's change: the parent
    /// was written already). So no lookup of the parent or of the name is needed (they were
    /// a hash probe per node, half the cost of a step on a 300 k-child node).
    /// Its path is left in `self.path`.
    fn next_node<'t>(&mut self, tree: &'t DataTree) -> Option<Option<(NodeId, &'t DataNode)>> {
        if std::mem::take(&mut self.root_pending) {
            self.path.clear();
            self.path.push('/');
            return Some(tree.nodes.get(ROOT).map(|n| (ROOT, n)));
        }
        loop {
            let top = self.stack.last_mut()?;
            let Some(&id) = top.ids.get(top.next) else {
                self.stack.pop();
                continue;
            };
            top.next += 1;
            let start_zxid = self.start_zxid;
            let current = tree
                .nodes
                .get(id)
                .filter(|node| node.stat.czxid <= start_zxid);
            if let Some(node) = current {
                self.path.clear();
                if top.parent != "/" {
                    self.path.push_str(&top.parent);
                }
                self.path.push('/');
                self.path.push_str(node.name());
                debug_assert_eq!(tree.nodes.lookup(&self.path), Some(id));
            }
            return Some(current.map(|node| (id, node)));
        }
    }

    /// Appends the next part of the snapshot to `out`: the ACL cache first, then up to
    /// `budget` nodes (and about [`STEP_BYTES`] at most), and once every node has been
    /// visited the terminator. True when that last part has been appended.
    pub fn step(&mut self, tree: &DataTree, budget: usize, out: &mut Vec<u8>) -> bool {
        out.append(&mut self.acl_section);
        let written_before = out.len();
        let mut work = 0;
        while work < budget && out.len() - written_before < STEP_BYTES {
            let Some(next) = self.next_node(tree) else {
                write_str(out, "/");
                return true;
            };
            work += 1;
            // a node deleted since its parent was written is simply not in the snapshot
            let Some((id, node)) = next else { continue };
            let acl = tree.acl_at_snapshot_start(id).unwrap_or_else(|| node.acl());
            write_node(out, &self.path, node, acl);
            if node.num_children() == 0 {
                continue;
            }
            let mut ids = tree.nodes.child_ids(node);
            ids.sort_unstable();
            work += ids.len() / 256;
            self.stack.push(Children {
                parent: self.path.clone(),
                ids,
                next: 0,
            });
        }
        false
    }

    /// Ends the snapshot, complete or abandoned: the ACL cache drops the entries nobody uses
    /// any more and the tree forgets the ACL ids of the start.
    pub fn finish(self, tree: &mut DataTree) {
        tree.acls_at_snapshot_start = None;
        tree.acls.unpin();
    }

    /// Takes the whole snapshot at once (tests; the server steps it between requests).
    pub fn write_all(tree: &mut DataTree) -> Vec<u8> {
        let mut snap = FuzzySnapshot::start(tree);
        let mut out = Vec::new();
        while !snap.step(tree, usize::MAX, &mut out) {}
        snap.finish(tree);
        out
    }
}

fn write_acl_cache(out: &mut Vec<u8>, acls: &AclCache) {
    let entries = acls.entries();
    (entries.len() as i32).write(out);
    for (id, list) in entries {
        id.write(out);
        (list.len() as i32).write(out);
        for a in list {
            a.write(out);
        }
    }
}

fn write_node(out: &mut Vec<u8>, p: &str, node: &DataNode, acl: i64) {
    write_str(out, if p == "/" { "" } else { p });
    write_opt_buffer(out, node.data());
    acl.write(out);
    node.stat.write(out);
}

impl DataTree {
    /// ZooKeeper's DataTree.serialize: ACL cache (int count; per entry long id + vector<ACL>),
    /// then nodes depth-first from the root written as path "" (path ustring, DataNode = buffer
    /// data, long acl, StatPersisted), terminated by the path "/".
    ///
    /// Children are written in id order (a loaded tree numbers its nodes in file order).
    pub fn serialize_into(&self, out: &mut Vec<u8>) {
        write_acl_cache(out, &self.acls);
        // iterative depth-first walk: trees can be deeper than the native stack is comfortable
        // with; (node, length of its parent's path in `p`)
        let mut stack: Vec<(NodeId, usize)> = vec![(ROOT, 0)];
        let mut p = String::new();
        while let Some((id, parent_len)) = stack.pop() {
            let Some(node) = self.nodes.get(id) else {
                continue;
            };
            p.truncate(parent_len);
            if id != ROOT {
                p.push('/');
                p.push_str(node.name());
            }
            write_node(out, if id == ROOT { "/" } else { &p }, node, node.acl());
            // children in id order, as FuzzySnapshot writes them (a loaded tree numbers its
            // nodes in file order, so a snapshot written after loading one keeps its order)
            let mut children = self.nodes.child_ids(node);
            children.sort_unstable();
            let len = p.len();
            stack.extend(children.into_iter().rev().map(|c| (c, len)));
        }
        write_str(out, "/");
    }

    /// Reads what [`DataTree::serialize_into`] writes, and what ZooKeeper writes: rebuilds the
    /// children sets, the ephemerals/containers/ttls bookkeeping and the ACL reference counts
    /// (entries no node uses are dropped, as ZooKeeper's purgeUnused does). The built-in nodes
    /// (/zookeeper, /zookeeper/quota, /zookeeper/config) are present afterwards even if absent.
    ///
    /// A node may name an ACL id the cache lacks: ZooKeeper's snapshots are fuzzy (a setACL may
    /// land between writing the cache and writing the node) and replaying the log repairs it;
    /// [`DataTree::dangling_acl_paths`] lists such nodes. `last_processed_zxid` is left at 0:
    /// the caller knows the snapshot's zxid (file name or SNAP packet).
    ///
    /// Errors name the offset in the reader's buffer.
    pub fn deserialize_from(r: &mut Reader<'_>) -> Result<DataTree, String> {
        let mut tree = DataTree::new();
        tree.acls = AclCache::default();
        tree.ephemerals = HashMap::default();
        tree.containers = BTreeSet::new();
        tree.ttls = BTreeSet::new();
        tree.last_processed_zxid = 0;

        let at = |r: &Reader<'_>, what: &str| format!("{what} at offset {}", r.position());
        let jerr = |e: jute::JuteError| format!("malformed snapshot: {e}");

        let count_at = r.position();
        let count = r.read_i32().map_err(jerr)?;
        if count < 0 {
            return Err(format!(
                "negative ACL cache size {count} at offset {count_at}"
            ));
        }
        for _ in 0..count {
            let id_at = r.position();
            let id = r.read_i64().map_err(jerr)?;
            if stored_acl_id(id).is_none() {
                return Err(format!(
                    "ACL id {id} at offset {id_at} is out of range (-1 or 0..={MAX_ACL_ID})"
                ));
            }
            let list_at = r.position();
            let Some(n) = r.read_count().map_err(jerr)? else {
                return Err(format!(
                    "null ACL list in the ACL cache at offset {list_at}"
                ));
            };
            let mut list = Vec::with_capacity(n);
            for _ in 0..n {
                list.push(Acl::read(r).map_err(jerr)?);
            }
            tree.acls.restore(id, list);
        }

        let mut first = true;
        // nodes come parents first: the last parent looked up serves its siblings
        let mut last_parent: Option<(String, NodeId)> = None;
        loop {
            let path_at = r.position();
            let Some(p) = r.read_str_ref().map_err(jerr)? else {
                return Err(format!("null znode path at offset {path_at}"));
            };
            if p == "/" {
                break;
            }
            if p.is_empty() {
                if !first {
                    return Err(format!("second root node at offset {path_at}"));
                }
            } else {
                if first {
                    return Err(format!(
                        "first znode is {p:?}, not the root, at offset {path_at}"
                    ));
                }
                if !p.starts_with('/') || p.ends_with('/') || p.contains("//") {
                    return Err(format!("invalid znode path {p:?} at offset {path_at}"));
                }
            }
            first = false;
            let data = r.read_buffer_ref().map_err(jerr)?;
            let acl_at = r.position();
            let acl_id = r.read_i64().map_err(jerr)?;
            if stored_acl_id(acl_id).is_none() {
                return Err(format!(
                    "znode {p:?} has ACL id {acl_id} at offset {acl_at}, out of range \
                     (-1 or 0..={MAX_ACL_ID})"
                ));
            }
            let stat = StatPersisted::read(r).map_err(jerr)?;
            // unknown ids are kept (fuzzy snapshots); see dangling_acl_paths
            tree.acls.add_usage(acl_id);
            let Some(parent) = path::parent(p) else {
                tree.nodes.reset(DataNode::new("", data, acl_id, stat));
                continue;
            };
            let parent_id = match &last_parent {
                Some((cached, id)) if cached == parent => *id,
                _ => {
                    let Some(id) = tree.nodes.lookup(parent) else {
                        return Err(format!(
                            "znode {p} at offset {path_at} comes before its parent {parent}"
                        ));
                    };
                    last_parent = Some((parent.to_owned(), id));
                    id
                }
            };
            let name = path::name(p);
            if tree.nodes.child(parent_id, name).is_some() {
                return Err(format!("duplicate znode {p} at offset {path_at}"));
            }
            tree.track_owner(p, stat.ephemeral_owner);
            tree.nodes
                .insert_child(parent_id, DataNode::new(name, data, acl_id, stat));
        }
        if first {
            return Err(at(r, "snapshot has no root node before the terminator"));
        }
        tree.ensure_builtin_nodes();
        tree.acls.purge_unused();
        Ok(tree)
    }

    /// Paths whose ACL id is neither -1 nor in the ACL cache (sorted). Empty for a consistent
    /// tree; after replaying the log of a fuzzy ZooKeeper snapshot it should be empty again.
    pub fn dangling_acl_paths(&self) -> Vec<String> {
        let dangling =
            |n: &DataNode| n.acl() != OPEN_UNSAFE_ACL_ID && self.acls.get_ref(n.acl()).is_none();
        let mut out: Vec<String> = Vec::new();
        // paths are built only when there is something to name
        if self.nodes.iter().any(dangling) {
            self.nodes.walk(|p, n| {
                if dangling(n) {
                    out.push(p.to_owned());
                }
            });
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::Txn;
    use crate::{acl, CONFIG_PATH, QUOTA_PATH, ZOOKEEPER_PATH};
    use jute::{perms, CreateTxn, SetAclTxn, TxnHeader};

    fn header(zxid: i64, txn: &Txn) -> TxnHeader {
        TxnHeader {
            client_id: 7,
            cxid: zxid as i32,
            zxid,
            time: 1000 + zxid,
            txn_type: txn.txn_type(),
        }
    }

    fn apply(tree: &mut DataTree, zxid: i64, txn: Txn) {
        let rc = tree.process_txn(&header(zxid, &txn), &txn);
        assert_eq!(rc.err, 0, "{rc:?}");
    }

    fn create(p: &str, data: Option<&[u8]>, acl: Vec<Acl>, ephemeral: bool) -> Txn {
        Txn::Create(CreateTxn {
            path: p.into(),
            data: data.map(<[u8]>::to_vec),
            acl,
            ephemeral,
            parent_cversion: -1,
        })
    }

    fn digest_acl() -> Vec<Acl> {
        vec![Acl {
            perms: perms::ALL,
            id: jute::Id {
                scheme: "digest".into(),
                id: "u:abc".into(),
            },
        }]
    }

    fn round_trip(tree: &DataTree) -> DataTree {
        let mut out = Vec::new();
        tree.serialize_into(&mut out);
        let mut r = Reader::new(&out);
        let back = DataTree::deserialize_from(&mut r).unwrap();
        r.finish().unwrap();
        let mut again = Vec::new();
        back.serialize_into(&mut again);
        assert_eq!(out, again, "serialization is stable");
        back
    }

    #[test]
    fn empty_tree_round_trips() {
        let tree = DataTree::new();
        let back = round_trip(&tree);
        assert_eq!(back.node_count(), 4);
        let config = back.node(CONFIG_PATH).unwrap();
        assert_eq!(back.acl_of(config), vec![acl::world_anyone(perms::READ)]);
        assert_eq!(config.stat.aversion, -1);
    }

    #[test]
    fn nodes_acls_and_ephemerals_round_trip() {
        let mut tree = DataTree::new();
        apply(&mut tree, 1, create("/a", Some(b"x"), digest_acl(), false));
        apply(&mut tree, 2, create("/a/b", None, digest_acl(), true));
        apply(
            &mut tree,
            3,
            create("/c", Some(b""), vec![acl::world_anyone(31)], false),
        );
        apply(
            &mut tree,
            4,
            Txn::SetAcl(SetAclTxn {
                path: "/c".into(),
                acl: vec![acl::world_anyone(1)],
                version: 1,
            }),
        );
        let back = round_trip(&tree);
        assert_eq!(back.node_count(), tree.node_count());
        for p in [
            "/",
            "/a",
            "/a/b",
            "/c",
            "/zookeeper",
            CONFIG_PATH,
            QUOTA_PATH,
        ] {
            let (x, y) = (tree.node(p).unwrap(), back.node(p).unwrap());
            assert_eq!(x.stat(), y.stat(), "{p}");
            assert_eq!(x.data(), y.data(), "{p}");
            assert_eq!(tree.acl_of(x), back.acl_of(y), "{p}");
        }
        assert_eq!(back.node("/a/b").unwrap().data(), None);
        assert_eq!(back.node("/c").unwrap().data(), Some(&b""[..]));
        assert_eq!(back.ephemerals_of(7, "/"), vec!["/a/b".to_string()]);
        // a new ACL after loading gets a fresh id, shared lists share one
        let mut back = back;
        apply(&mut back, 5, create("/d", None, digest_acl(), false));
        assert_eq!(
            back.node("/d").unwrap().acl(),
            back.node("/a").unwrap().acl()
        );
        assert!(back.dangling_acl_paths().is_empty());
    }

    /// A damaged snapshot: /a names ACL id 7, which its ACL cache lacks. ZooKeeper gives
    /// such a node an empty ACL (open to everyone); here it denies everyone but a super user.
    #[test]
    fn a_node_whose_acl_id_is_missing_from_the_cache_denies_everything() {
        use crate::prep::{Preparer, RequestContext};
        use jute::request::{Create, Request};
        use jute::{op, DeleteRequest, ErrorCode, Id, SetAclRequest, SetDataRequest};

        let open = vec![acl::world_anyone(perms::ALL)];
        let mut out = Vec::new();
        1i32.write(&mut out);
        1i64.write(&mut out);
        (open.len() as i32).write(&mut out);
        for a in &open {
            a.write(&mut out);
        }
        for (p, acl_id, zxid) in [("", -1i64, 0), ("/a", 7, 1), ("/a/b", 1, 2), ("/c", 1, 3)] {
            write_str(&mut out, p);
            write_opt_buffer(&mut out, Some(b"secret"));
            acl_id.write(&mut out);
            StatPersisted {
                czxid: zxid,
                mzxid: zxid,
                pzxid: zxid,
                ..Default::default()
            }
            .write(&mut out);
        }
        write_str(&mut out, "/");
        let mut r = Reader::new(&out);
        let mut tree = DataTree::deserialize_from(&mut r).unwrap();
        r.finish().unwrap();
        tree.last_processed_zxid = 3;
        assert_eq!(tree.dangling_acl_paths(), vec!["/a".to_string()]);
        let a = tree.node("/a").unwrap();
        assert_eq!(a.acl(), 7, "the id is kept as it is");
        assert!(acl::is_missing_acl(&tree.acl_of(a)));

        // getData (the server's read path) and every other permission, anonymously or not
        let someone = [Id {
            scheme: "digest".into(),
            id: "u:abc".into(),
        }];
        let superuser = [Id {
            scheme: "super".into(),
            id: "".into(),
        }];
        for perm in [
            perms::READ,
            perms::WRITE,
            perms::CREATE,
            perms::DELETE,
            perms::ADMIN,
        ] {
            assert!(!tree.check_acl(a, perm, &[]), "perm {perm}");
            assert!(!tree.check_acl(a, perm, &someone), "perm {perm}");
            assert!(tree.check_acl(a, perm, &superuser), "perm {perm}");
        }
        let c = tree.node("/c").unwrap();
        assert!(
            tree.check_acl(c, perms::WRITE, &[]),
            "a known id still applies"
        );

        // writes by an anonymous session: setData, delete of its child, create under it,
        // setACL; a super user and skipACL pass
        let ctx = |auth, skip_acl| RequestContext {
            session_id: 0x42,
            cxid: 1,
            auth,
            time: 1000,
            skip_acl,
            extended_types_enabled: true,
            reconfig_enabled: false,
        };
        let set_data = |p: &str| {
            Request::SetData(SetDataRequest {
                path: p.into(),
                data: Some(b"mine".to_vec()),
                version: -1,
            })
        };
        let requests = [
            set_data("/a"),
            Request::Delete(DeleteRequest {
                path: "/a/b".into(),
                version: -1,
            }),
            Request::Create(Create {
                op_type: op::CREATE,
                path: "/a/new".into(),
                data: None,
                acl: open.clone(),
                flags: 0,
                ttl: -1,
            }),
            Request::SetAcl(SetAclRequest {
                path: "/a".into(),
                acl: open.clone(),
                version: -1,
            }),
        ];
        for request in &requests {
            for (auth, skip, allowed) in [
                (&[][..], false, false),
                (&someone[..], false, false),
                (&superuser[..], false, true),
                (&[][..], true, true),
            ] {
                let prepared =
                    Preparer::new().prepare(&tree, &ctx(auth, skip), &mut request.clone(), 4);
                let error = prepared.error;
                if allowed {
                    assert_eq!(error, None, "{request:?} by {auth:?}, skipACL {skip}");
                } else {
                    assert_eq!(
                        error,
                        Some(ErrorCode::NoAuth),
                        "{request:?} by {auth:?}, skipACL {skip}"
                    );
                }
            }
        }
        let prepared = Preparer::new().prepare(&tree, &ctx(&[], false), &mut set_data("/c"), 4);
        assert_eq!(prepared.error, None);

        // a watcher of /a hears of a change only if it may read /a
        tree.watch_data("/a", 9);
        apply(
            &mut tree,
            4,
            Txn::SetData(jute::SetDataTxn {
                path: "/a".into(),
                data: Some(b"x".to_vec()),
                version: 1,
            }),
        );
        let events = tree.drain_events();
        assert_eq!(events.len(), 1);
        let event_acl = events[0].acl.as_ref().unwrap();
        assert!(!acl::check_acl(event_acl, perms::READ, &[]));
        assert!(acl::check_acl(event_acl, perms::READ, &superuser));

        // written again, the node keeps naming id 7 and reads back the same
        let mut again = Vec::new();
        tree.serialize_into(&mut again);
        let back = DataTree::deserialize_from(&mut Reader::new(&again)).unwrap();
        assert_eq!(back.node("/a").unwrap().acl(), 7);
        assert_eq!(back.dangling_acl_paths(), vec!["/a".to_string()]);
        let mut third = Vec::new();
        back.serialize_into(&mut third);
        assert_eq!(again, third);
    }

    #[test]
    fn a_fuzzy_snapshot_of_a_quiet_tree_is_the_plain_serialization() {
        let mut tree = DataTree::new();
        let mut zxid = 0;
        let mut add = |tree: &mut DataTree, p: &str, size: usize| {
            zxid += 1;
            let data = vec![b'd'; size];
            apply(tree, zxid, create(p, Some(&data), digest_acl(), false));
        };
        add(&mut tree, "/wide", 0);
        for i in (0..3000).rev() {
            add(&mut tree, &format!("/wide/c{i}"), i % 700);
        }
        add(&mut tree, "/wide/c7/deep", 300_000);
        add(&mut tree, "/wide/c7/deep/er", 5);
        add(&mut tree, "/a", 1);
        let mut plain = Vec::new();
        tree.serialize_into(&mut plain);
        for budget in [1, 7, 2000] {
            let mut snap = FuzzySnapshot::start(&mut tree);
            let mut steps = 0;
            let mut out = Vec::new();
            while !snap.step(&tree, budget, &mut out) {
                steps += 1;
            }
            snap.finish(&mut tree);
            assert_eq!(out, plain, "budget {budget}");
            // the byte limit splits even the largest budget into several steps
            assert!(steps > 3, "budget {budget}: {steps} steps");
        }
    }

    #[test]
    fn builtins_are_added_when_missing() {
        // ACL cache empty, root only, terminator
        let mut out = Vec::new();
        0i32.write(&mut out);
        write_str(&mut out, "");
        write_opt_buffer(&mut out, Some(b""));
        (-1i64).write(&mut out);
        StatPersisted::default().write(&mut out);
        write_str(&mut out, "/");
        let tree = DataTree::deserialize_from(&mut Reader::new(&out)).unwrap();
        assert!(tree.node(ZOOKEEPER_PATH).is_some());
        assert!(tree.node(QUOTA_PATH).is_some());
        assert_eq!(tree.node(CONFIG_PATH).unwrap().stat.aversion, -1);
        assert_eq!(tree.node("/").unwrap().num_children(), 1);
    }

    #[test]
    fn malformed_trees_are_rejected() {
        let node = |out: &mut Vec<u8>, p: &str| {
            write_str(out, p);
            write_opt_buffer(out, None);
            (-1i64).write(out);
            StatPersisted::default().write(out);
        };
        let cases: Vec<(Vec<&str>, &str)> = vec![
            (vec!["/a"], "not the root"),
            (vec!["", "/a/b"], "before its parent"),
            (vec!["", "/a", "/a"], "duplicate"),
            (vec!["", ""], "second root"),
            (vec!["", "a"], "invalid znode path"),
            (vec![], "no root"),
        ];
        for (paths, expect) in cases {
            let mut out = Vec::new();
            0i32.write(&mut out);
            for p in &paths {
                node(&mut out, p);
            }
            write_str(&mut out, "/");
            let err = DataTree::deserialize_from(&mut Reader::new(&out)).unwrap_err();
            assert!(err.contains(expect), "{paths:?}: {err}");
        }
        // ACL ids a znode cannot store, in the ACL cache or on a znode
        for id in [-2i64, MAX_ACL_ID + 1, i64::MAX] {
            let mut out = Vec::new();
            1i32.write(&mut out);
            id.write(&mut out);
            1i32.write(&mut out);
            acl::world_anyone(perms::ALL).write(&mut out);
            let err = DataTree::deserialize_from(&mut Reader::new(&out)).unwrap_err();
            assert!(err.contains("out of range"), "{id}: {err}");
            let mut out = Vec::new();
            0i32.write(&mut out);
            write_str(&mut out, "");
            write_opt_buffer(&mut out, None);
            id.write(&mut out);
            StatPersisted::default().write(&mut out);
            write_str(&mut out, "/");
            let err = DataTree::deserialize_from(&mut Reader::new(&out)).unwrap_err();
            assert!(err.contains("out of range"), "{id}: {err}");
        }
        // truncated
        let mut out = Vec::new();
        DataTree::new().serialize_into(&mut out);
        for cut in 0..out.len() {
            assert!(DataTree::deserialize_from(&mut Reader::new(&out[..cut])).is_err());
        }
    }
}
