//! The leader's bookkeeping of atomic broadcast: which proposals are outstanding, who has
//! acknowledged them, and what can be committed. Commits happen strictly in zxid order, and
//! a proposal needs a quorum of every configuration that was in force when it was proposed
//! (two of them while a reconfiguration is pending).

use config::QuorumConfig;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The configurations a proposal needs a quorum of: the active one, and the one a pending
/// reconfiguration proposed (held inline: the leader makes one per proposal).
#[derive(Debug, Clone)]
pub struct ConfigsInForce {
    active: Arc<QuorumConfig>,
    proposed: Option<Arc<QuorumConfig>>,
}

impl ConfigsInForce {
    pub fn new(active: Arc<QuorumConfig>, proposed: Option<Arc<QuorumConfig>>) -> Self {
        ConfigsInForce { active, proposed }
    }

    /// Whether `acks` holds a quorum of every configuration in force.
    pub fn quorum_of_all(&self, acks: &BTreeSet<u64>) -> bool {
        self.active.contains_quorum(acks)
            && self
                .proposed
                .as_ref()
                .is_none_or(|c| c.contains_quorum(acks))
    }
}

#[derive(Debug)]
struct Outstanding {
    configs: ConfigsInForce,
    acks: BTreeSet<u64>,
    /// A reconfig: committing stops after it, so that the leader can activate the new
    /// configuration (and maybe hand off) before anything later commits.
    reconfig: bool,
}

#[derive(Debug, Default)]
pub struct CommitTracker {
    outstanding: BTreeMap<i64, Outstanding>,
    last_committed: i64,
    /// Who acked the last reconfig committed (the designated leader is one of them).
    reconfig_acks: BTreeSet<u64>,
}

impl CommitTracker {
    /// Starts after `last_committed` (the zxid the new epoch's history ends with).
    pub fn new(last_committed: i64) -> Self {
        CommitTracker {
            outstanding: BTreeMap::new(),
            last_committed,
            reconfig_acks: BTreeSet::new(),
        }
    }

    pub fn last_committed(&self) -> i64 {
        self.last_committed
    }

    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// Records a proposal and the configurations whose quorums it needs.
    pub fn propose(&mut self, zxid: i64, configs: ConfigsInForce) {
        self.propose_as(zxid, configs, false);
    }

    /// Records a reconfig proposal: [`CommitTracker::ack`] returns it last of its batch, and
    /// [`CommitTracker::commit_ready`] goes on once its configuration is active.
    pub fn propose_reconfig(&mut self, zxid: i64, configs: ConfigsInForce) {
        self.propose_as(zxid, configs, true);
    }

    fn propose_as(&mut self, zxid: i64, configs: ConfigsInForce, reconfig: bool) {
        assert!(
            zxid > self.last_committed,
            "proposal 0x{zxid:x} is not after the last commit"
        );
        if let Some((&last, _)) = self.outstanding.last_key_value() {
            assert!(zxid > last, "proposals are made in zxid order");
        }
        self.outstanding.insert(
            zxid,
            Outstanding {
                configs,
                acks: BTreeSet::new(),
                reconfig,
            },
        );
    }

    /// Records `sid`'s ACK of `zxid` (which also acknowledges nothing else: each proposal is
    /// acked on its own). Returns the zxids that become committed, in order.
    pub fn ack(&mut self, sid: u64, zxid: i64) -> Vec<i64> {
        if let Some(p) = self.outstanding.get_mut(&zxid) {
            p.acks.insert(sid);
        }
        self.commit_ready()
    }

    /// Records `sid`'s ACK of every outstanding proposal up to `zxid` (the leader's own, once
    /// its log is durable that far). Returns the zxids that become committed, in order.
    pub fn ack_through(&mut self, sid: u64, zxid: i64) -> Vec<i64> {
        for p in self.outstanding.range_mut(..=zxid).map(|(_, p)| p) {
            p.acks.insert(sid);
        }
        self.commit_ready()
    }

    /// Commits what has its quorums, in order, stopping after a reconfig.
    pub fn commit_ready(&mut self) -> Vec<i64> {
        let mut committed = Vec::new();
        // only the oldest outstanding proposal can commit; then maybe the ones after it
        while let Some(entry) = self.outstanding.first_entry() {
            let p = entry.get();
            if !p.configs.quorum_of_all(&p.acks) {
                break;
            }
            let zxid = *entry.key();
            let reconfig = p.reconfig;
            let p = entry.remove();
            if reconfig {
                self.reconfig_acks = p.acks;
            }
            self.last_committed = zxid;
            committed.push(zxid);
            if reconfig {
                break;
            }
        }
        committed
    }

    /// Who acked the last reconfig committed.
    pub fn reconfig_acks(&self) -> &BTreeSet<u64> {
        &self.reconfig_acks
    }

    /// The ack sets of the outstanding proposals after `zxid`, in order.
    pub fn acks_after(&self, zxid: i64) -> Vec<BTreeSet<u64>> {
        self.outstanding
            .range(zxid + 1..)
            .map(|(_, p)| p.acks.clone())
            .collect()
    }

    /// A reconfig committed and its configuration is active, with us still leading: the
    /// proposals that followed it need a quorum of that configuration only. (Proposed while
    /// it was pending, they waited for both; now that it is committed, no leader can be
    /// elected without a quorum of the new configuration, which is what keeps them. Waiting
    /// for the old one could last forever: its voters may be gone, or observers now.)
    pub fn reconfig_activated(&mut self, config: Arc<QuorumConfig>) {
        for p in self.outstanding.values_mut() {
            p.configs = ConfigsInForce::new(config.clone(), None);
        }
    }

    /// Forgets a server's acks (it disconnected); they must be sent again after resync.
    pub fn forget(&mut self, sid: u64) {
        for p in self.outstanding.values_mut() {
            p.acks.remove(&sid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::parse_properties;

    fn config(voters: &[u64], observers: &[u64]) -> Arc<QuorumConfig> {
        let mut text = String::new();
        for id in voters {
            text.push_str(&format!("server.{id}=h:{}:{}\n", 1000 + id, 2000 + id));
        }
        for id in observers {
            text.push_str(&format!(
                "server.{id}=h:{}:{}:observer\n",
                1000 + id,
                2000 + id
            ));
        }
        Arc::new(QuorumConfig::from_properties(&parse_properties(&text, "t").unwrap()).unwrap())
    }

    #[test]
    fn commits_in_order_once_a_quorum_acks() {
        let c = config(&[1, 2, 3], &[4]);
        let mut t = CommitTracker::new(0x100000000);
        for z in 1..=3 {
            t.propose(0x100000000 + z, ConfigsInForce::new(c.clone(), None));
        }
        // the leader acks its own proposals when they are logged
        for z in 1..=3 {
            assert!(t.ack(1, 0x100000000 + z).is_empty());
        }
        // a later proposal reaching quorum first waits for the earlier ones
        assert!(t.ack(2, 0x100000003).is_empty());
        assert!(t.ack(4, 0x100000001).is_empty(), "observers never count");
        assert_eq!(t.ack(3, 0x100000001), vec![0x100000001]);
        assert_eq!(t.ack(2, 0x100000002), vec![0x100000002, 0x100000003]);
        assert_eq!(t.last_committed(), 0x100000003);
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn during_a_reconfiguration_both_quorums_are_needed() {
        let old = config(&[1, 2, 3], &[]);
        let new = config(&[1, 4, 5], &[]);
        let mut t = CommitTracker::new(0);
        t.propose(1, ConfigsInForce::new(old.clone(), Some(new.clone())));
        t.ack(1, 1);
        assert!(
            t.ack(2, 1).is_empty(),
            "a quorum of the old config alone is not enough"
        );
        assert_eq!(t.ack(4, 1), vec![1]);
    }

    #[test]
    fn a_disconnected_servers_acks_are_forgotten() {
        let c = config(&[1, 2, 3], &[]);
        let mut t = CommitTracker::new(0);
        t.propose(1, ConfigsInForce::new(c.clone(), None));
        t.ack(2, 1);
        t.forget(2);
        assert!(t.ack(3, 1).is_empty());
        assert_eq!(t.ack(1, 1), vec![1]);
    }
}
