//! One simulated server: a Zab peer, its disk (epochs and txn log, with crash semantics) and
//! its data tree.

use crate::net::ConnId;
use config::QuorumConfig;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use tree::{DataTree, Txn};
use zab::election::ServerState;
use zab::peer::{Input, Peer, Persisted};
use zab::wire::{Packet, ProposalData};

/// What survives a crash. The log holds the server's whole history (a loaded snapshot
/// replaces it with the leader's), so a restart rebuilds the tree from it.
#[derive(Debug, Default)]
pub struct Disk {
    pub epochs: Persisted,
    pub log: Vec<(i64, ProposalData)>,
    /// A unique number per append, so that an fsync report never covers a txn that was
    /// truncated and logged again meanwhile.
    pub serials: Vec<u64>,
    /// `log[..durable]` has been reported durable (Input::Durable): it survives a crash.
    pub durable: usize,
    /// When the last fsync queued completes: a log's fsyncs complete in order.
    pub fsync_done_ms: u64,
    /// Truncations and snapshot loads so far: an fsync report from before one is stale
    /// (the zxid it names may have been cut and logged again), as in the server runtime.
    pub resets: u64,
    /// The dynamic configuration file: the configuration last activated (none yet: the
    /// server boots with its initial one). Written when activated, read at restart.
    pub config: Option<Arc<QuorumConfig>>,
}

impl Disk {
    pub fn last_zxid(&self) -> i64 {
        self.log.last().map_or(0, |(z, _)| *z)
    }

    pub fn position(&self, zxid: i64) -> Option<usize> {
        self.log.binary_search_by_key(&zxid, |(z, _)| *z).ok()
    }

    /// How many entries have a zxid at most `zxid`.
    pub fn count_upto(&self, zxid: i64) -> usize {
        self.log.partition_point(|(z, _)| *z <= zxid)
    }
}

/// A SNAP's payload: the leader's applied history and tree.
#[derive(Debug)]
pub struct Snapshot {
    pub zxid: i64,
    pub log: Vec<(i64, ProposalData)>,
    pub tree: DataTree,
}

#[derive(Debug)]
pub struct Server {
    pub id: u64,
    pub up: bool,
    /// Bumped by every crash: events meant for an earlier life are dropped.
    pub incarnation: u32,
    pub peer: Peer,
    pub disk: Disk,
    pub tree: DataTree,
    /// `disk.log[..applied]` is applied to the tree.
    pub applied: usize,
    /// `disk.log[..verified]` was checked equal to the ensemble's committed sequence.
    pub verified: usize,
    /// The runtime's view, from Output::Serving.
    pub serving: bool,
    pub role: ServerState,
    /// Bumped by every Output::Role: a leader's term of leadership.
    pub role_gen: u64,
    /// Established epoch while leading and serving.
    pub leading_epoch: Option<i64>,
    /// The quorum connection this server uses for each peer.
    pub conn_of: BTreeMap<u64, ConnId>,
    /// The snapshot that followed the SNAP packet being delivered.
    pub pending_snapshot: Option<Arc<Snapshot>>,
    /// A paused process (a long GC pause, SIGSTOP) handles nothing before this time.
    pub paused_until: u64,
    /// Learners that connected while we were looking, with what they sent: kept until we
    /// lead (as the server runtime does; ZooKeeper's learners retry until the port opens).
    pub parked: BTreeMap<u64, (ConnId, Vec<Packet>)>,
    /// Inputs produced while executing outputs, stepped right after.
    pub deferred: VecDeque<Input>,
    /// The configuration the server was first started with (its static file).
    pub initial: Arc<QuorumConfig>,
    /// The highest active configuration version seen so far, across crashes (a checker's
    /// record, not the server's).
    pub config_version: i64,
    /// The active configuration last checked (to check each one once).
    pub config_checked: Option<Arc<QuorumConfig>>,
}

impl Server {
    pub fn new(id: u64, peer: Peer, genesis: &DataTree, initial: Arc<QuorumConfig>) -> Server {
        Server {
            id,
            up: true,
            incarnation: 0,
            peer,
            disk: Disk::default(),
            tree: genesis.clone(),
            applied: 0,
            verified: 0,
            serving: false,
            role: ServerState::Looking,
            role_gen: 0,
            leading_epoch: None,
            conn_of: BTreeMap::new(),
            pending_snapshot: None,
            paused_until: 0,
            parked: BTreeMap::new(),
            deferred: VecDeque::new(),
            initial,
            config_version: 0,
            config_checked: None,
        }
    }

    /// The configuration the server boots with: its dynamic file, else its initial one; and
    /// the last reconfig in its log that is newer (proposed, not activated: ZooKeeper's
    /// `.dynamic.next`).
    pub fn boot_configs(&self) -> (Arc<QuorumConfig>, Option<Arc<QuorumConfig>>) {
        let active = self
            .disk
            .config
            .clone()
            .unwrap_or_else(|| self.initial.clone());
        let last_seen = self
            .disk
            .log
            .iter()
            .rev()
            .filter(|(z, _)| *z > active.version)
            .find_map(|(_, d)| zab::reconfig::config_of_txn(d))
            .map(Arc::new);
        (active, last_seen)
    }

    /// Rebuilds the tree from the genesis state and `disk.log[..upto]`.
    pub fn rebuild_tree(&mut self, genesis: &DataTree, upto: usize) -> Result<(), String> {
        let mut t = genesis.clone();
        for (zxid, data) in &self.disk.log[..upto] {
            apply(&mut t, *zxid, data).map_err(|e| format!("server {}: {e}", self.id))?;
        }
        self.tree = t;
        self.applied = upto;
        Ok(())
    }

    /// Applies `disk.log[applied..upto]`.
    pub fn apply_upto(&mut self, upto: usize) -> Result<(), String> {
        while self.applied < upto {
            let (zxid, data) = &self.disk.log[self.applied];
            apply(&mut self.tree, *zxid, data).map_err(|e| format!("server {}: {e}", self.id))?;
            self.applied += 1;
        }
        Ok(())
    }
}

/// Applies one logged txn: the header must carry the zxid it was logged under, and the
/// workload's txns always succeed.
pub fn apply(tree: &mut DataTree, zxid: i64, data: &ProposalData) -> Result<(), String> {
    if data.header.zxid != zxid {
        return Err(format!(
            "txn logged at 0x{zxid:x} carries zxid 0x{:x} in its header",
            data.header.zxid
        ));
    }
    let txn = Txn::decode(data.header.txn_type, &data.txn)
        .map_err(|e| format!("txn 0x{zxid:x} does not decode: {e}"))?;
    let result = tree.process_txn(&data.header, &txn);
    if result.err != 0 {
        return Err(format!(
            "txn 0x{zxid:x} fails to apply: error {}",
            result.err
        ));
    }
    tree.last_processed_zxid = zxid;
    tree.drain_events();
    Ok(())
}
