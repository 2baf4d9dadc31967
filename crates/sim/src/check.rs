//! The global views the invariants are checked against: the ensemble's committed sequence,
//! who established which epoch, and the clients' history of writes and reads.

use std::collections::{BTreeMap, BTreeSet};
use zab::wire::ProposalData;

pub fn epoch_of(zxid: i64) -> i64 {
    zxid >> 32
}

/// The ensemble's committed sequence: every txn a serving server committed (or an
/// established leader's history), in zxid order. It only ever grows at its end: a server
/// committing a zxid below the last one means some server skipped it.
#[derive(Debug, Default)]
pub struct Committed {
    seq: Vec<(i64, ProposalData)>,
}

impl Committed {
    pub fn len(&self) -> usize {
        self.seq.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seq.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&(i64, ProposalData)> {
        self.seq.get(i)
    }

    pub fn last_zxid(&self) -> i64 {
        self.seq.last().map_or(0, |(z, _)| *z)
    }

    /// The last committed zxid below `limit` (0 if none).
    pub fn last_zxid_below(&self, limit: i64) -> i64 {
        let n = self.seq.partition_point(|(z, _)| *z < limit);
        if n == 0 {
            0
        } else {
            self.seq[n - 1].0
        }
    }

    pub fn position(&self, zxid: i64) -> Option<usize> {
        self.seq.binary_search_by_key(&zxid, |(z, _)| *z).ok()
    }

    pub fn contains(&self, zxid: i64) -> bool {
        self.position(zxid).is_some()
    }

    /// `who` committed `data` at `zxid`. Ok(true) if the ensemble had not committed it yet.
    pub fn record(&mut self, zxid: i64, data: &ProposalData, who: u64) -> Result<bool, String> {
        match self.seq.binary_search_by_key(&zxid, |(z, _)| *z) {
            Ok(i) if self.seq[i].1 == *data => Ok(false),
            Ok(i) => Err(format!(
                "server {who} commits 0x{zxid:x} as {}, the ensemble committed {} there",
                describe_txn(data),
                describe_txn(&self.seq[i].1)
            )),
            Err(i) if i == self.seq.len() => {
                self.seq.push((zxid, data.clone()));
                Ok(true)
            }
            Err(_) => Err(format!(
                "server {who} commits 0x{zxid:x} ({}) but the ensemble already committed 0x{:x} \
                 without it: some server's committed sequence skipped it",
                describe_txn(data),
                self.last_zxid()
            )),
        }
    }
}

/// A short name for a txn: its client, cxid and type (the workload makes these unique).
pub fn describe_txn(d: &ProposalData) -> String {
    format!(
        "txn(client {} cxid {} type {})",
        d.header.client_id, d.header.cxid, d.header.txn_type
    )
}

/// Who established each epoch: a second leader for the same epoch is a split brain.
#[derive(Debug, Default)]
pub struct Leaders {
    by_epoch: BTreeMap<i64, (u64, u32)>,
}

impl Leaders {
    pub fn established(&mut self, epoch: i64, server: u64, incarnation: u32) -> Result<(), String> {
        if let Some(&(s, inc)) = self.by_epoch.get(&epoch) {
            return Err(format!(
                "epoch {epoch} established twice: by server {s} (incarnation {inc}) and by \
                 server {server} (incarnation {incarnation})"
            ));
        }
        self.by_epoch.insert(epoch, (server, incarnation));
        Ok(())
    }

    pub fn count(&self) -> usize {
        self.by_epoch.len()
    }

    pub fn has(&self, epoch: i64) -> bool {
        self.by_epoch.contains_key(&epoch)
    }
}

/// A write a client submitted to a leader and has not heard about yet.
#[derive(Debug, Clone)]
pub struct PendingWrite {
    pub id: u64,
    pub key: usize,
    pub zxid: i64,
    pub server: u64,
    /// The leader's role generation: an ack must come from the same term of leadership.
    pub role_gen: u64,
    pub invoked_ms: u64,
    /// The highest zxid acknowledged before this write was invoked.
    pub floor: i64,
}

/// The register workload's history: writes (pending, acknowledged) and their zxids.
#[derive(Debug, Default)]
pub struct Clients {
    next_id: u64,
    pub pending: Vec<PendingWrite>,
    /// zxid of every write ever proposed, by write id (0 is the initial value).
    zxid_of: BTreeMap<u64, i64>,
    /// Acknowledged writes: (write id, zxid, acknowledged at).
    pub acked: Vec<(u64, i64, u64)>,
    acked_by_key: Vec<BTreeSet<i64>>,
    max_acked: i64,
}

impl Clients {
    pub fn new(keys: usize) -> Clients {
        Clients {
            next_id: 1,
            acked_by_key: vec![BTreeSet::new(); keys],
            zxid_of: BTreeMap::from([(0, 0)]),
            ..Default::default()
        }
    }

    pub fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub fn floor(&self) -> i64 {
        self.max_acked
    }

    pub fn proposed(&mut self, w: PendingWrite) {
        self.zxid_of.insert(w.id, w.zxid);
        self.pending.push(w);
    }

    /// The leader's term ended (role change or crash): its pending writes are indeterminate.
    pub fn abandon(&mut self, server: u64) {
        self.pending.retain(|w| w.server != server);
    }

    /// The leader committed up to `zxid` in term `role_gen`: its writes up to there are
    /// acknowledged. Returns them.
    pub fn acknowledge(
        &mut self,
        server: u64,
        role_gen: u64,
        zxid: i64,
        now: u64,
    ) -> Result<Vec<PendingWrite>, String> {
        let (done, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|w| w.server == server && w.role_gen == role_gen && w.zxid <= zxid);
        self.pending = rest;
        for w in &done {
            if w.zxid <= w.floor {
                return Err(format!(
                    "write {} got zxid 0x{:x}, not after 0x{:x} which was acknowledged before \
                     the write was invoked (real-time order broken)",
                    w.id, w.zxid, w.floor
                ));
            }
            self.acked.push((w.id, w.zxid, now));
            self.acked_by_key[w.key].insert(w.zxid);
            self.max_acked = self.max_acked.max(w.zxid);
        }
        Ok(done)
    }

    /// The zxid of the write a read of `key` on `server` returned; it must have been proposed.
    fn proposed_zxid(&self, key: usize, write_id: u64, server: u64) -> Result<i64, String> {
        self.zxid_of.get(&write_id).copied().ok_or_else(|| {
            format!(
                "read of key {key} on server {server} returned write {write_id}, which was never \
                 proposed"
            )
        })
    }

    /// The newest acknowledged write to `key` (0 for none): a read after `sync` issued now
    /// must return it or a later one.
    pub fn latest_acked(&self, key: usize) -> i64 {
        self.acked_by_key[key].last().copied().unwrap_or(0)
    }

    /// A read of `key` after `sync` on `server` returned the value of `write_id`; when the
    /// sync was issued, `floor` was the newest write to `key` acknowledged anywhere. Synced
    /// reads are linearizable: never older than that, whatever leader answered.
    pub fn check_synced_read(
        &self,
        key: usize,
        write_id: u64,
        floor: i64,
        server: u64,
    ) -> Result<(), String> {
        let seen = self.proposed_zxid(key, write_id, server)?;
        if seen < floor {
            return Err(format!(
                "stale read after sync: key {key} on leader {server} returned write {write_id} \
                 (0x{seen:x}), older than the write at 0x{floor:x} acknowledged before the sync"
            ));
        }
        Ok(())
    }

    /// A read of `key` on an established leader of `epoch` returned the value of `write_id`.
    /// It must not be older than any write to that key acknowledged in this epoch or before.
    pub fn check_read(
        &self,
        key: usize,
        write_id: u64,
        epoch: i64,
        server: u64,
    ) -> Result<(), String> {
        let seen = self.proposed_zxid(key, write_id, server)?;
        let limit = (epoch + 1) << 32;
        if let Some(&latest) = self.acked_by_key[key].range(..limit).next_back() {
            if seen < latest {
                return Err(format!(
                    "stale read: key {key} on leader {server} (epoch {epoch}) returned write \
                     {write_id} (0x{seen:x}), older than the acknowledged write at 0x{latest:x}"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jute::TxnHeader;

    fn txn(cxid: i32) -> ProposalData {
        ProposalData {
            header: TxnHeader {
                client_id: 1,
                cxid,
                zxid: 0,
                time: 0,
                txn_type: jute::op::SET_DATA,
            },
            txn: Default::default(),
            digest: None,
        }
    }

    #[test]
    fn the_committed_sequence_grows_only_at_its_end_and_never_changes() {
        let mut c = Committed::default();
        c.record(5, &txn(1), 1).unwrap();
        c.record(7, &txn(2), 1).unwrap();
        c.record(5, &txn(1), 2).unwrap();
        assert!(c.record(7, &txn(3), 2).unwrap_err().contains("commits 0x7"));
        assert!(c.record(6, &txn(4), 3).unwrap_err().contains("skipped"));
        assert_eq!(c.position(7), Some(1));
        assert_eq!(c.last_zxid_below(7), 5);
        assert_eq!(c.last_zxid_below(5), 0);
    }

    #[test]
    fn one_leader_per_epoch() {
        let mut l = Leaders::default();
        l.established(1, 3, 0).unwrap();
        l.established(2, 2, 0).unwrap();
        assert!(l.established(2, 3, 0).is_err());
    }

    #[test]
    fn stale_reads_and_real_time_inversions_are_caught() {
        let mut c = Clients::new(1);
        let w = |id, zxid, floor| PendingWrite {
            id,
            key: 0,
            zxid,
            server: 1,
            role_gen: 1,
            invoked_ms: 0,
            floor,
        };
        c.proposed(w(1, (1 << 32) + 1, 0));
        c.acknowledge(1, 1, (1 << 32) + 1, 10).unwrap();
        assert!(
            c.check_read(0, 0, 1, 1).is_err(),
            "initial value after a write"
        );
        c.check_read(0, 1, 1, 1).unwrap();
        c.check_read(0, 0, 0, 1).unwrap_or_else(|e| panic!("{e}"));
        c.proposed(w(2, 1 << 32, (1 << 32) + 1));
        assert!(c.acknowledge(1, 1, 1 << 32, 20).is_err());
    }
}
