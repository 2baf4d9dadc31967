//! The data tree: znodes by path, their ACLs, ephemerals, containers and TTL nodes, watches.
//! Applying a txn is deterministic: the same txns in the same order give the same tree on
//! every server, which is what replication and recovery rely on.

use crate::acl::{self, AclCache, OPEN_UNSAFE_ACL_ID};
pub use crate::nodes::DataNode;
use crate::nodes::{NodeId, Nodes};
use crate::path;
use crate::txn::Txn;
use crate::watch::{WatchEvent, WatchManager, WatchMode, WatcherId};
use crate::HashMap;
use jute::{
    ephemeral_owner, event, perms, Acl, ErrorCode, SetWatches2, Stat, StatPersisted, TxnHeader,
};
use std::collections::BTreeSet;

pub const ZOOKEEPER_PATH: &str = "/zookeeper";
pub const QUOTA_PATH: &str = "/zookeeper/quota";
pub const CONFIG_PATH: &str = "/zookeeper/config";

/// The outcome of applying one txn (ZooKeeper's ProcessTxnResult).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxnResult {
    pub op_type: i32,
    pub err: i32,
    pub path: String,
    pub stat: Option<Stat>,
    pub multi: Vec<TxnResult>,
}

#[derive(Debug, Clone)]
pub struct DataTree {
    pub(crate) nodes: Nodes,
    pub(crate) acls: AclCache,
    pub(crate) ephemerals: HashMap<i64, BTreeSet<String>>,
    pub(crate) containers: BTreeSet<String>,
    pub(crate) ttls: BTreeSet<String>,
    data_watches: WatchManager,
    child_watches: WatchManager,
    events: Vec<WatchEvent>,
    pub last_processed_zxid: i64,
    /// While a fuzzy snapshot is taken: the ACL id each node a setACL changed since its start
    /// had then (the snapshot writes that one; the log replayed after it sets the new one).
    pub(crate) acls_at_snapshot_start: Option<HashMap<NodeId, i64>>,
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// A tree with ZooKeeper's built-in nodes: /, /zookeeper, /zookeeper/quota and
    /// /zookeeper/config (world:anyone:r, aclVersion -1).
    pub fn new() -> Self {
        let mut tree = DataTree {
            nodes: Nodes::with_root(DataNode::new(
                "",
                Some(&[]),
                OPEN_UNSAFE_ACL_ID,
                StatPersisted::default(),
            )),
            acls: AclCache::default(),
            ephemerals: HashMap::default(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            data_watches: WatchManager::default(),
            child_watches: WatchManager::default(),
            events: Vec::new(),
            last_processed_zxid: 0,
            acls_at_snapshot_start: None,
        };
        tree.ensure_builtin_nodes();
        tree
    }

    /// The ACL id node `id` had when the fuzzy snapshot in progress started, if a setACL has
    /// changed it since.
    pub(crate) fn acl_at_snapshot_start(&self, id: NodeId) -> Option<i64> {
        self.acls_at_snapshot_start.as_ref()?.get(&id).copied()
    }

    /// Adds /zookeeper, /zookeeper/quota and /zookeeper/config where missing, as a fresh
    /// ZooKeeper DataTree has them (/zookeeper/config world:anyone:r, aclVersion -1).
    pub(crate) fn ensure_builtin_nodes(&mut self) {
        for p in [ZOOKEEPER_PATH, QUOTA_PATH, CONFIG_PATH] {
            let Some(parent) = path::parent(p).and_then(|parent| self.nodes.lookup(parent)) else {
                continue;
            };
            if self.nodes.child(parent, path::name(p)).is_some() {
                continue;
            }
            let mut node = DataNode::new(
                path::name(p),
                Some(&[]),
                OPEN_UNSAFE_ACL_ID,
                StatPersisted::default(),
            );
            if p == CONFIG_PATH {
                node.set_acl(self.acls.intern(&[acl::world_anyone(perms::READ)]));
                node.stat.aversion = -1;
            }
            self.nodes.insert_child(parent, node);
        }
    }

    /// Sets /zookeeper/config to an activated configuration's text, outside any txn (a first
    /// configuration, or one learned from a leader): mZxid is its version, as in ZooKeeper.
    pub fn set_config_node(&mut self, text: &str, version: i64) {
        if let Some(node) = self.node_mut(CONFIG_PATH) {
            node.set_data(Some(text.as_bytes()));
            node.stat.mzxid = version;
            node.stat.version = -1;
        }
    }

    /// The node at `path`; "" is the root too, as in ZooKeeper's node table.
    pub fn node(&self, path: &str) -> Option<&DataNode> {
        self.nodes.get(self.nodes.lookup(path)?)
    }

    fn node_mut(&mut self, path: &str) -> Option<&mut DataNode> {
        let id = self.nodes.lookup(path)?;
        self.nodes.get_mut(id)
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn acl_of(&self, node: &DataNode) -> Vec<Acl> {
        self.acls.get(node.acl())
    }

    /// [`DataTree::acl_of`] without copying the list.
    pub fn shared_acl_of(&self, node: &DataNode) -> std::sync::Arc<[Acl]> {
        self.acls.shared(node.acl())
    }

    /// Checks `perm` on `node` for a connection authenticated as `auth`.
    pub fn check_acl(&self, node: &DataNode, perm: i32, auth: &[jute::Id]) -> bool {
        match node.acl() {
            OPEN_UNSAFE_ACL_ID => true,
            id => match self.acls.get_ref(id) {
                Some(acl) => acl::check_acl(acl, perm, auth),
                // an id missing from the cache (a damaged snapshot) grants nothing, but to a
                // super user
                None => acl::check_acl(&acl::missing_acl(id), perm, auth),
            },
        }
    }

    pub fn acl_cache(&self) -> &AclCache {
        &self.acls
    }

    /// Watch events produced since the last call, in the order they fired.
    pub fn drain_events(&mut self) -> Vec<WatchEvent> {
        std::mem::take(&mut self.events)
    }

    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    fn fire(
        &mut self,
        kind: WatchKind,
        p: &str,
        event_type: i32,
        suppress: &[WatcherId],
        acl_id: i64,
    ) -> Vec<WatcherId> {
        let manager = match kind {
            WatchKind::Data => &mut self.data_watches,
            WatchKind::Child => &mut self.child_watches,
        };
        if manager.is_empty() {
            return Vec::new();
        }
        let fired = manager.trigger(p, event_type);
        if fired.iter().any(|w| !suppress.contains(w)) {
            let acl = self.acls.get(acl_id);
            for &watcher in &fired {
                if !suppress.contains(&watcher) {
                    self.events.push(WatchEvent {
                        watcher,
                        event_type,
                        path: p.to_owned(),
                        acl: Some(acl.clone()),
                    });
                }
            }
        }
        fired
    }

    // ----- applying txns -----

    /// Applies one txn. Errors inside (e.g. NoNode while replaying a fuzzy snapshot's log)
    /// are reported in the result and leave the tree unchanged.
    pub fn process_txn(&mut self, header: &TxnHeader, txn: &Txn) -> TxnResult {
        let zxid = header.zxid;
        let mut rc = TxnResult {
            op_type: header.txn_type,
            ..Default::default()
        };
        match txn {
            Txn::Create(t) | Txn::Create2(t) => {
                let owner = if t.ephemeral { header.client_id } else { 0 };
                rc.path = t.path.clone();
                self.apply_create(
                    &mut rc,
                    &t.path,
                    &t.data,
                    &t.acl,
                    owner,
                    t.parent_cversion,
                    zxid,
                    header.time,
                );
            }
            Txn::CreateContainer(t) => {
                rc.path = t.path.clone();
                self.apply_create(
                    &mut rc,
                    &t.path,
                    &t.data,
                    &t.acl,
                    ephemeral_owner::CONTAINER,
                    t.parent_cversion,
                    zxid,
                    header.time,
                );
            }
            Txn::CreateTtl(t) => {
                rc.path = t.path.clone();
                let owner = ephemeral_owner::for_ttl(t.ttl);
                self.apply_create(
                    &mut rc,
                    &t.path,
                    &t.data,
                    &t.acl,
                    owner,
                    t.parent_cversion,
                    zxid,
                    header.time,
                );
            }
            Txn::Delete(t) | Txn::DeleteContainer(t) => {
                rc.path = t.path.clone();
                if let Err(code) = self.delete_node(&t.path, zxid) {
                    rc.err = code.code();
                }
            }
            Txn::SetData(t) | Txn::Reconfig(t) => {
                rc.path = t.path.clone();
                match self.node_mut(&t.path) {
                    None => rc.err = ErrorCode::NoNode.code(),
                    Some(node) => {
                        node.set_data(t.data.as_deref());
                        node.stat.mtime = header.time;
                        node.stat.mzxid = zxid;
                        node.stat.version = t.version;
                        rc.stat = Some(node.stat());
                        let acl_id = node.acl();
                        self.fire(
                            WatchKind::Data,
                            &t.path,
                            event::NODE_DATA_CHANGED,
                            &[],
                            acl_id,
                        );
                    }
                }
            }
            Txn::SetAcl(t) => {
                rc.path = t.path.clone();
                if let Some(id) = self.nodes.lookup(&t.path) {
                    let new_id = self.acls.intern(&t.acl);
                    let node = self.nodes.get_mut(id).expect("looked up");
                    let old_id = node.acl();
                    node.set_acl(new_id);
                    if let Some(before) = self.acls_at_snapshot_start.as_mut() {
                        before.entry(id).or_insert(old_id);
                    }
                    node.stat.aversion = t.version;
                    rc.stat = Some(node.stat());
                    self.acls.release(old_id);
                } else {
                    rc.err = ErrorCode::NoNode.code();
                }
            }
            Txn::Check(t) => rc.path = t.path.clone(),
            Txn::CreateSession(_) => {}
            Txn::CloseSession(t) => {
                let session = header.client_id;
                let mut doomed: Vec<String> = t.paths_to_delete.clone();
                if let Some(owned) = self.ephemerals.remove(&session) {
                    // older txns carry no list: delete what the tree knows the session owns
                    if doomed.is_empty() {
                        doomed = owned.into_iter().collect();
                    }
                }
                for p in doomed {
                    let _ = self.delete_node(&p, zxid);
                }
            }
            Txn::Error(t) => rc.err = t.err,
            Txn::Multi(txns) => {
                // a multi with an error txn changes nothing: ops before the failure report Ok,
                // ops after it RuntimeInconsistency (ZooKeeper's DataTree.processTxn)
                let failed = txns.iter().any(|t| matches!(t, Txn::Error(_)));
                let mut after_failure = false;
                for sub in txns {
                    let replaced;
                    let sub_txn = match sub {
                        Txn::Error(_) => {
                            after_failure = true;
                            sub
                        }
                        _ if failed => {
                            replaced = Txn::Error(jute::ErrorTxn {
                                err: if after_failure {
                                    ErrorCode::RuntimeInconsistency.code()
                                } else {
                                    0
                                },
                            });
                            &replaced
                        }
                        // by reference: a multi of many creates is not copied to be applied
                        other => other,
                    };
                    let sub_header = TxnHeader {
                        txn_type: sub_txn.txn_type(),
                        ..header.clone()
                    };
                    let sub_rc = self.process_txn(&sub_header, sub_txn);
                    if sub_rc.err != 0 && rc.err == 0 {
                        rc.err = sub_rc.err;
                    }
                    rc.multi.push(sub_rc);
                }
            }
        }
        if zxid > self.last_processed_zxid {
            self.last_processed_zxid = zxid;
        }
        rc
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_create(
        &mut self,
        rc: &mut TxnResult,
        p: &str,
        data: &Option<Vec<u8>>,
        acl: &[Acl],
        owner: i64,
        parent_cversion: i32,
        zxid: i64,
        time: i64,
    ) {
        let Some(parent_path) = path::parent(p) else {
            rc.err = ErrorCode::NodeExists.code();
            return;
        };
        let child_name = path::name(p);
        let Some(parent_id) = self.nodes.lookup(parent_path) else {
            rc.err = ErrorCode::NoNode.code();
            return;
        };
        if self.nodes.child(parent_id, child_name).is_some() {
            rc.err = ErrorCode::NodeExists.code();
            return;
        }
        let acl_id = self.acls.intern(acl);
        let parent = self.nodes.get_mut(parent_id).expect("looked up");
        let cversion = if parent_cversion == -1 {
            parent.stat.cversion + 1
        } else {
            parent_cversion
        };
        // replaying a fuzzy snapshot's log may see an older cversion: never go back
        if cversion > parent.stat.cversion {
            parent.stat.cversion = cversion;
            parent.stat.pzxid = zxid;
        }
        let parent_acl = parent.acl();
        let stat = StatPersisted {
            czxid: zxid,
            mzxid: zxid,
            ctime: time,
            mtime: time,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: owner,
            pzxid: zxid,
        };
        let node = DataNode::new(child_name, data.as_deref(), acl_id, stat);
        rc.stat = Some(node.stat());
        self.nodes.insert_child(parent_id, node);
        self.track_owner(p, owner);
        self.fire(WatchKind::Data, p, event::NODE_CREATED, &[], acl_id);
        self.fire_children_changed(parent_path, parent_acl);
    }

    fn fire_children_changed(&mut self, parent_path: &str, parent_acl: i64) {
        self.fire(
            WatchKind::Child,
            parent_path,
            event::NODE_CHILDREN_CHANGED,
            &[],
            parent_acl,
        );
    }

    /// Files a new node under the containers, the TTL nodes or its session's ephemerals,
    /// as its ephemeralOwner says.
    pub(crate) fn track_owner(&mut self, p: &str, owner: i64) {
        if ephemeral_owner::is_container(owner) {
            self.containers.insert(p.to_owned());
        } else if ephemeral_owner::ttl(owner).is_some() {
            self.ttls.insert(p.to_owned());
        } else if owner != 0 {
            self.ephemerals
                .entry(owner)
                .or_default()
                .insert(p.to_owned());
        }
    }

    fn delete_node(&mut self, p: &str, zxid: i64) -> Result<(), ErrorCode> {
        let parent_path = path::parent(p).ok_or(ErrorCode::BadArguments)?;
        let parent_id = self.nodes.lookup(parent_path).ok_or(ErrorCode::NoNode)?;
        let node = self.nodes.remove_child(parent_id, path::name(p));
        // pzxid moves even when the child is already gone: a fuzzy snapshot may have missed
        // the node this txn deletes (ZooKeeper's DataTree.deleteNode does the same)
        let parent = self.nodes.get_mut(parent_id).expect("looked up");
        if zxid > parent.stat.pzxid {
            parent.stat.pzxid = zxid;
        }
        let parent_acl = parent.acl();
        let node = node.ok_or(ErrorCode::NoNode)?;
        let owner = node.stat.ephemeral_owner;
        if ephemeral_owner::is_container(owner) {
            self.containers.remove(p);
        } else if ephemeral_owner::ttl(owner).is_some() {
            self.ttls.remove(p);
        } else if owner != 0 {
            if let Some(set) = self.ephemerals.get_mut(&owner) {
                set.remove(p);
                if set.is_empty() {
                    self.ephemerals.remove(&owner);
                }
            }
        }
        let fired = self.fire(WatchKind::Data, p, event::NODE_DELETED, &[], node.acl());
        self.fire(WatchKind::Child, p, event::NODE_DELETED, &fired, node.acl());
        self.fire_children_changed(parent_path, parent_acl);
        // released only now: the events above needed the ACL
        self.acls.release(node.acl());
        Ok(())
    }

    // ----- reads and watch registration -----

    /// exists: registers a data watch whether or not the node exists.
    pub fn exists(&mut self, p: &str, watcher: Option<WatcherId>) -> Option<Stat> {
        if let Some(w) = watcher {
            self.data_watches.add(p, w, WatchMode::Standard);
        }
        self.node(p).map(DataNode::stat)
    }

    pub fn watch_data(&mut self, p: &str, watcher: WatcherId) {
        self.data_watches.add(p, watcher, WatchMode::Standard);
    }

    pub fn watch_children(&mut self, p: &str, watcher: WatcherId) {
        self.child_watches.add(p, watcher, WatchMode::Standard);
    }

    /// addWatch: ZooKeeper 3.8 puts the watch, with its mode, in both tables; a recursive
    /// watch in the child table fires NodeDeleted for descendants, never NodeChildrenChanged.
    pub fn add_watch(&mut self, p: &str, watcher: WatcherId, recursive: bool) {
        let mode = if recursive {
            WatchMode::PersistentRecursive
        } else {
            WatchMode::Persistent
        };
        self.data_watches.add(p, watcher, mode);
        self.child_watches.add(p, watcher, mode);
    }

    /// setWatches after a reconnect: fires at once for what changed after `relative_zxid`,
    /// registers the rest.
    pub fn set_watches(&mut self, w: &SetWatches2, watcher: WatcherId) {
        let emit = |events: &mut Vec<WatchEvent>, event_type, path: &str| {
            // events from setWatches are not filtered by ACL (as in ZooKeeper)
            events.push(WatchEvent {
                watcher,
                event_type,
                path: path.to_owned(),
                acl: None,
            })
        };
        for p in &w.data_watches {
            match self.node(p) {
                None => emit(&mut self.events, event::NODE_DELETED, p),
                Some(n) if n.stat.mzxid > w.relative_zxid => {
                    emit(&mut self.events, event::NODE_DATA_CHANGED, p)
                }
                Some(_) => self.data_watches.add(p, watcher, WatchMode::Standard),
            }
        }
        for p in &w.exist_watches {
            match self.node(p) {
                Some(_) => emit(&mut self.events, event::NODE_CREATED, p),
                None => self.data_watches.add(p, watcher, WatchMode::Standard),
            }
        }
        for p in &w.child_watches {
            match self.node(p) {
                None => emit(&mut self.events, event::NODE_DELETED, p),
                Some(n) if n.stat.pzxid > w.relative_zxid => {
                    emit(&mut self.events, event::NODE_CHILDREN_CHANGED, p)
                }
                Some(_) => self.child_watches.add(p, watcher, WatchMode::Standard),
            }
        }
        for p in &w.persistent_watches {
            self.add_watch(p, watcher, false);
        }
        for p in &w.persistent_recursive_watches {
            self.add_watch(p, watcher, true);
        }
    }

    /// checkWatches, with ZooKeeper 3.8's answer (see [`WatchManager::contains_as_zookeeper`]).
    pub fn contains_watch(&self, p: &str, watcher_type: i32, watcher: WatcherId) -> bool {
        use jute::watcher_type::*;
        let child = || self.child_watches.contains_as_zookeeper(p, watcher);
        let data = || self.data_watches.contains_as_zookeeper(p, watcher);
        match watcher_type {
            CHILDREN => child(),
            DATA => data(),
            ANY => child() || data(),
            _ => false,
        }
    }

    /// removeWatches: whether anything was removed.
    pub fn remove_watch(&mut self, p: &str, watcher_type: i32, watcher: WatcherId) -> bool {
        use jute::watcher_type::*;
        match watcher_type {
            CHILDREN => self.child_watches.remove(p, watcher),
            DATA => self.data_watches.remove(p, watcher),
            ANY => {
                let child = self.child_watches.remove(p, watcher);
                let data = self.data_watches.remove(p, watcher);
                child || data
            }
            _ => false,
        }
    }

    /// Drops every watch of a closed connection.
    pub fn remove_watcher(&mut self, watcher: WatcherId) {
        self.data_watches.remove_watcher(watcher);
        self.child_watches.remove_watcher(watcher);
    }

    pub fn data_watches(&self) -> &WatchManager {
        &self.data_watches
    }

    pub fn child_watches(&self) -> &WatchManager {
        &self.child_watches
    }

    /// All descendants of `p` (for "/": every node but the root).
    pub fn all_children_number(&self, p: &str) -> usize {
        self.nodes
            .lookup(p)
            .map_or(0, |id| self.nodes.descendants(id))
    }

    /// The ephemerals of a session, optionally under a path prefix, sorted.
    pub fn ephemerals_of(&self, session: i64, prefix: &str) -> Vec<String> {
        let Some(set) = self.ephemerals.get(&session) else {
            return Vec::new();
        };
        let all = prefix.trim().is_empty() || prefix.trim() == "/";
        set.iter()
            .filter(|p| all || p.starts_with(prefix))
            .cloned()
            .collect()
    }

    pub fn ephemerals(&self) -> &HashMap<i64, BTreeSet<String>> {
        &self.ephemerals
    }

    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(BTreeSet::len).sum()
    }

    /// Approximate bytes of znode paths and data, as `mntr`'s zk_approximate_data_size.
    pub fn approximate_data_size(&self) -> u64 {
        let mut size = 0;
        self.nodes
            .walk(|p, n| size += (p.len() + n.data().map_or(0, <[u8]>::len)) as u64);
        size
    }

    /// Containers that are empty and have had children, and TTL nodes that are empty and have
    /// not been modified for longer than their ttl, at wall time `now_ms`. Reaped by the
    /// server through deleteContainer requests, like ZooKeeper's ContainerManager.
    pub fn reapable(&self, now_ms: i64) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.containers {
            if let Some(n) = self.node(p) {
                if n.num_children() == 0 && n.stat.cversion > 0 {
                    out.push(p.clone());
                }
            }
        }
        for p in &self.ttls {
            if let Some(n) = self.node(p) {
                let ttl = ephemeral_owner::ttl(n.stat.ephemeral_owner).unwrap_or(0);
                if n.num_children() == 0 && ttl != 0 && now_ms - n.stat.mtime > ttl {
                    out.push(p.clone());
                }
            }
        }
        out
    }

    /// Child names of a node, for getChildren (order unspecified, as in ZooKeeper).
    pub fn children(&self, node: &DataNode) -> Vec<String> {
        self.child_names(node).map(str::to_owned).collect()
    }

    /// Child names of a node, without copying them.
    pub fn child_names<'a>(&'a self, node: &'a DataNode) -> impl Iterator<Item = &'a str> + 'a {
        self.nodes.child_names(node)
    }
}

#[derive(Clone, Copy)]
enum WatchKind {
    Data,
    Child,
}
