//! A server's simulated disk: the txn log (what was fsynced survives a crash, the rest is
//! lost, a write being made when the crash comes is torn and dropped on recovery), the epoch
//! files, and the snapshot a learner's SNAP left. Recovery replays it as the server does.

use bytes::Bytes;
use jute::TxnHeader;
use tree::{DataTree, Txn};
use zab::peer::Persisted;
use zab::wire::ProposalData;

#[derive(Debug, Clone)]
pub struct LogEntry {
    pub header: TxnHeader,
    pub body: Bytes,
}

/// The base a SNAP left: the tree as serialized, its sessions, its zxid.
#[derive(Debug, Clone)]
pub struct SnapshotBase {
    pub zxid: i64,
    pub tree: Vec<u8>,
    pub sessions: Vec<(i64, i32)>,
}

#[derive(Debug, Default)]
pub struct Disk {
    pub base: Option<SnapshotBase>,
    pub log: Vec<LogEntry>,
    /// Entries of `log` that are durable.
    pub synced: usize,
    pub epochs: Persisted,
    /// Truncations and snapshot loads since the server started (the log writer's count).
    pub resets: u64,
    /// An fsync is scheduled.
    pub fsync_pending: bool,
}

impl Disk {
    pub fn append(&mut self, header: TxnHeader, body: Bytes) {
        if let Some(last) = self.log.last() {
            assert!(
                header.zxid > last.header.zxid,
                "the log ascends: 0x{:x} after 0x{:x}",
                header.zxid,
                last.header.zxid
            );
        }
        self.log.push(LogEntry { header, body });
    }

    /// Makes everything appended durable; the last zxid to report, if any.
    pub fn fsync(&mut self) -> Option<i64> {
        self.fsync_pending = false;
        if self.synced == self.log.len() {
            return None;
        }
        self.synced = self.log.len();
        self.log.last().map(|e| e.header.zxid)
    }

    /// A TRUNC: everything after `zxid` goes; what stays is durable.
    pub fn truncate(&mut self, zxid: i64) {
        self.log.retain(|e| e.header.zxid <= zxid);
        self.synced = self.log.len();
        self.resets += 1;
    }

    /// A SNAP: this snapshot replaces the log.
    pub fn reset_to_snapshot(&mut self, base: SnapshotBase) {
        self.log.clear();
        self.synced = 0;
        self.base = Some(base);
        self.resets += 1;
    }

    /// A crash: what was not fsynced is lost (a torn last write included).
    pub fn crash(&mut self) {
        self.log.truncate(self.synced);
        self.fsync_pending = false;
        // the log writer's count of resets belongs to the process (the node restarts at 0)
        self.resets = 0;
    }

    /// The tree and sessions recovery builds from the snapshot and the log.
    pub fn recover(&self) -> Result<(DataTree, Vec<(i64, i32)>), String> {
        let (mut tree, mut sessions) = match &self.base {
            Some(base) => {
                let mut r = jute::Reader::new(&base.tree);
                let mut tree = DataTree::deserialize_from(&mut r)
                    .map_err(|e| format!("the snapshot on disk does not decode: {e}"))?;
                tree.last_processed_zxid = base.zxid;
                (tree, base.sessions.clone())
            }
            None => (DataTree::new(), Vec::new()),
        };
        for e in &self.log {
            let txn = Txn::decode(e.header.txn_type, &e.body).map_err(|err| {
                format!("logged txn 0x{:x} does not decode: {err}", e.header.zxid)
            })?;
            match &txn {
                Txn::CreateSession(t) => sessions.push((e.header.client_id, t.time_out)),
                Txn::CloseSession(_) => sessions.retain(|(id, _)| *id != e.header.client_id),
                _ => {}
            }
            tree.process_txn(&e.header, &txn);
            tree.drain_events();
        }
        Ok((tree, sessions))
    }

    pub fn last_zxid(&self) -> i64 {
        self.log
            .last()
            .map(|e| e.header.zxid)
            .or(self.base.as_ref().map(|b| b.zxid))
            .unwrap_or(0)
    }

    /// The logged txns, for the peer's DIFF window.
    pub fn window(&self) -> Vec<(i64, ProposalData)> {
        self.log
            .iter()
            .map(|e| {
                (
                    e.header.zxid,
                    ProposalData {
                        header: e.header.clone(),
                        txn: e.body.clone(),
                        digest: None,
                    },
                )
            })
            .collect()
    }
}
