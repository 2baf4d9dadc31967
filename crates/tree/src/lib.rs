//! ZooKeeper's data tree and the pure request logic around it: validation of writes against
//! in-flight changes (Prepare), deterministic txn application, reads, watches and ACLs.
//!
//! No sockets, clocks or threads: time comes in as an argument, events go out through
//! [`DataTree::drain_events`].

/// The tree's hash tables use ahash: SipHash, the standard library's, was 17% of the CPU of a
/// recovery replaying 1 M creates (perf). Its keys are random per process, as SipHash's are,
/// so crafted paths cannot be made to collide.
pub type HashMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;
pub type HashSet<K> = std::collections::HashSet<K, ahash::RandomState>;

pub mod acl;
pub mod data_tree;
pub mod nodes;
pub mod path;
pub mod prep;
pub mod snapshot;
pub mod txn;
pub mod watch;

pub use data_tree::{DataNode, DataTree, TxnResult, CONFIG_PATH, QUOTA_PATH, ZOOKEEPER_PATH};
pub use prep::{Prepared, Preparer, RequestContext};
pub use txn::{Txn, TxnEntry};
pub use watch::{WatchEvent, WatchMode, WatcherId};
