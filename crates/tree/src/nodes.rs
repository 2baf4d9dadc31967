//! Znode storage laid out for memory, since a server keeps every znode in RAM.
//!
//! Nodes live in one slab indexed by a 4-byte [`NodeId`]; a node keeps its own name (the last
//! path component), not its path, in one allocation with its data; a parent's children are a
//! hash table of ids hashed by name. A path is found by walking its components from the root.
//! With 1 M znodes of 100 bytes this is about 225 bytes per znode (an 80-byte slot, a
//! 128-byte malloc chunk for the payload, a child table entry) against about 450 for a table
//! of whole paths plus per-parent sets of child names (the first layout).

use std::alloc::{self, Layout};
use std::ptr::NonNull;

use hashbrown::HashTable;
use jute::{ephemeral_owner, Stat, StatPersisted};

/// Index of a node in the slab. Ids of deleted nodes are reused.
pub type NodeId = u32;

pub const ROOT: NodeId = 0;

/// Top bit of the name length in the payload header: the node's data is null (not merely
/// empty).
const NULL_DATA: u32 = 1 << 31;
/// The payload header: name length (with [`NULL_DATA`]), data length, ACL id, 4 bytes each.
const HEADER: usize = 12;
/// OPEN_ACL_UNSAFE's id (-1) as stored in a payload.
const OPEN_UNSAFE_STORED: u32 = u32::MAX;

/// The largest ACL id a znode can refer to. ZooKeeper numbers ACL lists 1, 2, 3...; a tree
/// would need four billion distinct lists in memory to run past it.
pub const MAX_ACL_ID: i64 = u32::MAX as i64 - 1;

/// An ACL id as a payload stores it: -1 (OPEN_ACL_UNSAFE) and 0..=[`MAX_ACL_ID`] fit.
pub fn stored_acl_id(id: i64) -> Option<u32> {
    if id == -1 {
        Some(OPEN_UNSAFE_STORED)
    } else {
        u32::try_from(id).ok().filter(|&s| s != OPEN_UNSAFE_STORED)
    }
}

fn acl_id_of_stored(stored: u32) -> i64 {
    if stored == OPEN_UNSAFE_STORED {
        -1
    } else {
        i64::from(stored)
    }
}

/// A znode's name, data and ACL id in one heap allocation behind a thin pointer: a
/// `Box<[u8]>` would spend 8 more bytes of every slot on its length, and the ACL id fits in
/// the header at no cost for the common sizes (malloc rounds a chunk up to 16 bytes anyway).
///
/// Layout: `[name_len | NULL_DATA: u32 LE][data_len: u32 LE][acl: u32 LE][name][data]`.
struct Payload {
    ptr: NonNull<u8>,
}

// SAFETY: a Payload owns its allocation alone, like a Box<[u8]>, and is only written through
// &mut self.
unsafe impl Send for Payload {}
unsafe impl Sync for Payload {}

impl Payload {
    fn new(name: &[u8], data: Option<&[u8]>, acl: u32) -> Payload {
        // names and data come from jute buffers, whose lengths are non-negative i32s
        let name_len = u32::try_from(name.len())
            .ok()
            .filter(|&n| n & NULL_DATA == 0)
            .expect("a znode name is shorter than 2 GiB");
        let bytes = data.unwrap_or_default();
        let data_len = u32::try_from(bytes.len()).expect("znode data is shorter than 4 GiB");
        let flags = if data.is_none() { NULL_DATA } else { 0 };
        let total = HEADER + name.len() + bytes.len();
        let layout = Self::layout(total);
        // SAFETY: the layout has a non-zero size (the header); every byte is written below
        // before the allocation is read.
        let ptr = unsafe {
            let raw = alloc::alloc(layout);
            let Some(ptr) = NonNull::new(raw) else {
                alloc::handle_alloc_error(layout)
            };
            let out = std::slice::from_raw_parts_mut(ptr.as_ptr(), total);
            out[0..4].copy_from_slice(&(name_len | flags).to_le_bytes());
            out[4..8].copy_from_slice(&data_len.to_le_bytes());
            out[8..12].copy_from_slice(&acl.to_le_bytes());
            out[HEADER..HEADER + name.len()].copy_from_slice(name);
            out[HEADER + name.len()..].copy_from_slice(bytes);
            ptr
        };
        Payload { ptr }
    }

    fn layout(total: usize) -> Layout {
        Layout::from_size_align(total, 4).expect("a payload is far below isize::MAX")
    }

    fn word(&self, at: usize) -> u32 {
        // SAFETY: the allocation starts with the HEADER bytes, always initialized.
        let header = unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), HEADER) };
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    }

    fn name_len(&self) -> usize {
        (self.word(0) & !NULL_DATA) as usize
    }

    fn has_data(&self) -> bool {
        self.word(0) & NULL_DATA == 0
    }

    fn total_len(&self) -> usize {
        HEADER + self.name_len() + self.word(4) as usize
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the header's lengths are those the allocation was made with.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.total_len()) }
    }

    fn name(&self) -> &[u8] {
        &self.bytes()[HEADER..HEADER + self.name_len()]
    }

    fn data(&self) -> Option<&[u8]> {
        self.has_data()
            .then(|| &self.bytes()[HEADER + self.name_len()..])
    }

    fn acl(&self) -> u32 {
        self.word(8)
    }

    fn set_acl(&mut self, acl: u32) {
        // SAFETY: the header is initialized and this Payload is its only owner (&mut self).
        let header = unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), HEADER) };
        header[8..12].copy_from_slice(&acl.to_le_bytes());
    }
}

impl Drop for Payload {
    fn drop(&mut self) {
        let layout = Self::layout(self.total_len());
        // SAFETY: allocated in Payload::new with this same layout (the lengths never change).
        unsafe { alloc::dealloc(self.ptr.as_ptr(), layout) }
    }
}

impl Clone for Payload {
    fn clone(&self) -> Self {
        Payload::new(self.name(), self.data(), self.acl())
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payload")
            .field("name", &String::from_utf8_lossy(self.name()))
            .field("data_len", &self.data().map(<[u8]>::len))
            .field("acl", &acl_id_of_stored(self.acl()))
            .finish()
    }
}

/// A child's id with 32 bits of its name's hash: growing a table of a million children then
/// rehashes from the entries alone instead of reading every child's name from the slab
/// (which was a fifth of a recovery's CPU), and most mismatches are told apart unread.
#[derive(Debug, Clone, Copy)]
struct Child {
    id: NodeId,
    hash: u32,
}

impl Child {
    fn table_hash(self) -> u64 {
        widen(self.hash)
    }
}

/// The table's 64-bit hash from 32 bits: hashbrown takes the bucket from the low bits and a
/// 7-bit tag from the top ones, so both halves carry the same bits.
fn widen(hash: u32) -> u64 {
    (u64::from(hash) << 32) | u64::from(hash)
}

type Children = HashTable<Child>;

/// One znode: 80 bytes in the slab plus its payload.
#[derive(Debug, Clone)]
pub struct DataNode {
    /// The name, the data and the ACL id.
    payload: Payload,
    pub stat: StatPersisted,
    /// None while the node has no child: most znodes are leaves.
    children: Option<Box<Children>>,
}

impl DataNode {
    /// `acl` must be -1 or at most [`MAX_ACL_ID`] (see [`stored_acl_id`]); the ACL cache's ids
    /// are, and a snapshot's are checked when it is read.
    pub(crate) fn new(name: &str, data: Option<&[u8]>, acl: i64, stat: StatPersisted) -> Self {
        DataNode {
            payload: Payload::new(name.as_bytes(), data, Self::stored(acl)),
            stat,
            children: None,
        }
    }

    fn stored(acl: i64) -> u32 {
        debug_assert!(stored_acl_id(acl).is_some(), "ACL id {acl} out of range");
        stored_acl_id(acl).unwrap_or(OPEN_UNSAFE_STORED)
    }

    fn name_bytes(&self) -> &[u8] {
        self.payload.name()
    }

    /// The last component of the node's path ("" for the root).
    pub fn name(&self) -> &str {
        // the payload is only ever built from a &str name
        std::str::from_utf8(self.name_bytes()).unwrap_or_default()
    }

    pub fn data(&self) -> Option<&[u8]> {
        self.payload.data()
    }

    pub(crate) fn set_data(&mut self, data: Option<&[u8]>) {
        self.payload = Payload::new(self.payload.name(), data, self.payload.acl());
    }

    /// The id of the node's ACL list in the tree's ACL cache (-1: OPEN_ACL_UNSAFE).
    pub fn acl(&self) -> i64 {
        acl_id_of_stored(self.payload.acl())
    }

    pub(crate) fn set_acl(&mut self, acl: i64) {
        self.payload.set_acl(Self::stored(acl));
    }

    pub fn num_children(&self) -> usize {
        self.children.as_ref().map_or(0, |c| c.len())
    }

    pub fn stat(&self) -> Stat {
        let s = &self.stat;
        let num_children = self.num_children() as i32;
        Stat {
            czxid: s.czxid,
            mzxid: s.mzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            // stored: the count of child creations; shown: changes, i.e. creations plus
            // deletions (every child not present any more was deleted once)
            cversion: s.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: s.aversion,
            // containers and TTL nodes show no owner to clients
            ephemeral_owner: if ephemeral_owner::is_session(s.ephemeral_owner) {
                s.ephemeral_owner
            } else {
                0
            },
            data_length: self.data().map_or(0, |d| d.len() as i32),
            num_children,
            pzxid: s.pzxid,
        }
    }
}

/// The slab of znodes and the child tables that link them.
#[derive(Debug, Clone)]
pub(crate) struct Nodes {
    slots: Vec<Option<DataNode>>,
    free: Vec<NodeId>,
    len: usize,
    /// Random per tree, as SipHash's keys are: crafted names cannot be made to collide.
    hasher: ahash::RandomState,
}

impl Nodes {
    pub fn with_root(root: DataNode) -> Self {
        Nodes {
            slots: vec![Some(root)],
            free: Vec::new(),
            len: 1,
            hasher: ahash::RandomState::new(),
        }
    }

    /// Drops every node and makes `root` the only one.
    pub fn reset(&mut self, root: DataNode) {
        self.slots = vec![Some(root)];
        self.free = Vec::new();
        self.len = 1;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn get(&self, id: NodeId) -> Option<&DataNode> {
        self.slots.get(id as usize)?.as_ref()
    }

    pub fn get_mut(&mut self, id: NodeId) -> Option<&mut DataNode> {
        self.slots.get_mut(id as usize)?.as_mut()
    }

    fn hash(&self, name: &[u8]) -> u32 {
        self.hasher.hash_one(name) as u32
    }

    /// The child of `parent` called `name`.
    pub fn child(&self, parent: NodeId, name: &str) -> Option<NodeId> {
        let children = self.get(parent)?.children.as_ref()?;
        let name = name.as_bytes();
        let hash = self.hash(name);
        children
            .find(widen(hash), |c| {
                c.hash == hash && self.name_of(c.id) == name
            })
            .map(|c| c.id)
    }

    fn name_of(&self, id: NodeId) -> &[u8] {
        self.get(id).map_or(&[], DataNode::name_bytes)
    }

    /// The node at an absolute path ("/" and "" are the root). A malformed path (empty
    /// component, trailing slash, no leading slash) names no node.
    pub fn lookup(&self, path: &str) -> Option<NodeId> {
        if path.is_empty() || path == "/" {
            return Some(ROOT);
        }
        let rest = path.strip_prefix('/')?;
        let mut id = ROOT;
        for name in rest.split('/') {
            id = self.child(id, name)?;
        }
        Some(id)
    }

    /// Adds `node` as a child of `parent`, which must not have a child of the same name.
    pub fn insert_child(&mut self, parent: NodeId, node: DataNode) -> NodeId {
        debug_assert!(self.get(parent).is_some(), "parent {parent} exists");
        let hash = self.hash(node.name_bytes());
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = Some(node);
                id
            }
            None => {
                let id = NodeId::try_from(self.slots.len()).expect("fewer than 2^32 znodes");
                self.slots.push(Some(node));
                id
            }
        };
        self.len += 1;
        let mut children = self
            .get_mut(parent)
            .and_then(|p| p.children.take())
            .unwrap_or_default();
        children.insert_unique(widen(hash), Child { id, hash }, |c| c.table_hash());
        if let Some(p) = self.get_mut(parent) {
            p.children = Some(children);
        }
        id
    }

    /// Removes the child `name` of `parent` and returns it. Its descendants, which a
    /// consistent history never leaves behind, are freed with it.
    pub fn remove_child(&mut self, parent: NodeId, name: &str) -> Option<DataNode> {
        let hash = self.hash(name.as_bytes());
        let mut children = self.get_mut(parent)?.children.take()?;
        let found = children.find_entry(widen(hash), |c| {
            c.hash == hash && self.name_of(c.id) == name.as_bytes()
        });
        let removed = match found {
            Ok(entry) => Some(entry.remove().0.id),
            Err(_) => None,
        };
        if children.len() * 4 < children.capacity() && children.capacity() > 64 {
            children.shrink_to(children.len() * 2, |c| c.table_hash());
        }
        if let Some(p) = self.get_mut(parent) {
            p.children = (!children.is_empty()).then_some(children);
        }
        let id = removed?;
        let node = self.free_slot(id);
        let mut orphans: Vec<NodeId> = node.as_ref().map_or_else(Vec::new, |n| self.child_ids(n));
        while let Some(orphan) = orphans.pop() {
            if let Some(n) = self.free_slot(orphan) {
                orphans.extend(self.child_ids(&n));
            }
        }
        node
    }

    fn free_slot(&mut self, id: NodeId) -> Option<DataNode> {
        let node = self.slots.get_mut(id as usize)?.take()?;
        self.len -= 1;
        self.free.push(id);
        Some(node)
    }

    /// The ids of a node's children, in no particular order.
    pub fn child_ids(&self, node: &DataNode) -> Vec<NodeId> {
        node.children
            .as_ref()
            .map_or_else(Vec::new, |c| c.iter().map(|c| c.id).collect())
    }

    /// The names of a node's children, in no particular order.
    pub fn child_names<'a>(&'a self, node: &'a DataNode) -> impl Iterator<Item = &'a str> + 'a {
        node.children
            .iter()
            .flat_map(|c| c.iter())
            .filter_map(|c| self.get(c.id).map(DataNode::name))
    }

    /// Every node with its path, parents before children (children in no particular order).
    pub fn walk(&self, mut visit: impl FnMut(&str, &DataNode)) {
        let Some(root) = self.get(ROOT) else {
            return;
        };
        visit("/", root);
        // (id, length of the parent's path in `path`)
        let mut stack: Vec<(NodeId, usize)> =
            self.child_ids(root).into_iter().map(|c| (c, 0)).collect();
        let mut path = String::new();
        while let Some((id, parent_len)) = stack.pop() {
            let Some(node) = self.get(id) else { continue };
            path.truncate(parent_len);
            path.push('/');
            path.push_str(node.name());
            visit(&path, node);
            let len = path.len();
            stack.extend(self.child_ids(node).into_iter().map(|c| (c, len)));
        }
    }

    /// Every node, in slab order (no paths: cheaper than [`Nodes::walk`]).
    pub fn iter(&self) -> impl Iterator<Item = &DataNode> {
        self.slots.iter().flatten()
    }

    /// Number of nodes below `id`.
    pub fn descendants(&self, id: NodeId) -> usize {
        let mut count = 0;
        let mut stack = vec![id];
        while let Some(id) = stack.pop() {
            if let Some(node) = self.get(id) {
                let kids = self.child_ids(node);
                count += kids.len();
                stack.extend(kids);
            }
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, data: Option<&[u8]>) -> DataNode {
        DataNode::new(name, data, -1, StatPersisted::default())
    }

    #[test]
    fn payload_keeps_name_and_null_or_empty_data_apart() {
        let n = node("abc", None);
        assert_eq!((n.name(), n.data()), ("abc", None));
        let mut n = node("", Some(b""));
        assert_eq!((n.name(), n.data()), ("", Some(&b""[..])));
        n.set_data(Some(b"xyz"));
        assert_eq!((n.name(), n.data()), ("", Some(&b"xyz"[..])));
        assert_eq!(std::mem::size_of::<Option<DataNode>>(), 80);
    }

    #[test]
    fn payload_keeps_the_acl_id_through_data_changes_and_clones() {
        for id in [-1, 0, 1, 7, MAX_ACL_ID] {
            let mut n = DataNode::new("name", Some(b"data"), id, StatPersisted::default());
            assert_eq!(n.acl(), id);
            n.set_data(None);
            assert_eq!((n.name(), n.data(), n.acl()), ("name", None, id));
            n.set_acl(3);
            let copy = n.clone();
            drop(n);
            assert_eq!((copy.name(), copy.data(), copy.acl()), ("name", None, 3));
        }
        for out_of_range in [-2, MAX_ACL_ID + 1, i64::MAX, i64::MIN] {
            assert_eq!(stored_acl_id(out_of_range), None, "{out_of_range}");
        }
        let long = vec![b'x'; 70_000];
        let n = DataNode::new(
            std::str::from_utf8(&long).unwrap(),
            Some(&long),
            5,
            Default::default(),
        );
        assert_eq!(
            (n.name().len(), n.data().map(<[u8]>::len), n.acl()),
            (70_000, Some(70_000), 5)
        );
    }

    #[test]
    fn insert_lookup_remove_and_reuse_slots() {
        let mut nodes = Nodes::with_root(node("", Some(b"")));
        let a = nodes.insert_child(ROOT, node("a", None));
        let b = nodes.insert_child(a, node("b", Some(b"1")));
        for i in 0..1000 {
            nodes.insert_child(b, node(&format!("c{i}"), Some(b"x")));
        }
        assert_eq!(nodes.len(), 1003);
        assert_eq!(nodes.lookup("/a/b"), Some(b));
        assert_eq!(
            nodes
                .lookup("/a/b/c999")
                .map(|c| nodes.get(c).unwrap().name()),
            Some("c999")
        );
        for bad in ["/a/", "a/b", "/a//b", "/x", "/a/b/c1000"] {
            assert_eq!(nodes.lookup(bad), None, "{bad}");
        }
        assert_eq!(nodes.descendants(ROOT), 1002);
        let mut paths = 0;
        nodes.walk(|p, n| {
            assert!(p == "/" || p.ends_with(n.name()));
            assert_eq!(
                nodes
                    .lookup(p)
                    .and_then(|id| nodes.get(id))
                    .map(DataNode::name),
                Some(n.name())
            );
            paths += 1;
        });
        assert_eq!(paths, 1003);
        for i in 0..990 {
            assert!(nodes.remove_child(b, &format!("c{i}")).is_some());
        }
        assert!(nodes.remove_child(b, "c0").is_none());
        assert_eq!(nodes.get(b).unwrap().num_children(), 10);
        let mut names: Vec<&str> = nodes.child_names(nodes.get(b).unwrap()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            (990..1000).map(|i| format!("c{i}")).collect::<Vec<_>>()
        );
        // freed slots are reused
        let slots = nodes.slots.len();
        nodes.insert_child(ROOT, node("z", None));
        assert_eq!(nodes.slots.len(), slots);
        // removing a node with children frees the whole subtree
        nodes.remove_child(ROOT, "a");
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes.lookup("/a/b"), None);
    }
}
