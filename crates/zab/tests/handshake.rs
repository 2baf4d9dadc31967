//! A leader and its learners, wired in memory: discovery, DIFF / TRUNC / SNAP sync, the
//! NEWLEADER quorum, then broadcast — every learner ends with the leader's history.

use config::{parse_properties, QuorumConfig};
use jute::TxnHeader;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use zab::discovery::StateSummary;
use zab::leader::{Leader, LeaderAction};
use zab::learner::{Learner, LearnerAction, LearnerRole};
use zab::wire::{Packet, ProposalData};

const E1: i64 = 1 << 32;

fn txn(zxid: i64) -> ProposalData {
    ProposalData {
        header: TxnHeader {
            client_id: 7,
            cxid: 1,
            zxid,
            time: 0,
            txn_type: jute::op::CREATE_SESSION,
        },
        txn: 4000i32.to_be_bytes().to_vec().into(),
        digest: None,
    }
}

fn config() -> Arc<QuorumConfig> {
    let text = "server.1=h:1:2\nserver.2=h:3:4\nserver.3=h:5:6\nserver.4=h:7:8:observer\n";
    Arc::new(QuorumConfig::from_properties(&parse_properties(text, "t").unwrap()).unwrap())
}

struct Node {
    learner: Learner,
    log: Vec<i64>,
    applied: i64,
    serving: bool,
}

struct Cluster {
    leader: Leader,
    leader_log: Vec<i64>,
    leader_applied: i64,
    established: bool,
    nodes: BTreeMap<u64, Node>,
    to_leader: VecDeque<(u64, Packet)>,
    to_learner: VecDeque<(u64, Packet)>,
    snapshots_sent: Vec<u64>,
    barriers_passed: Vec<u64>,
    /// Learners cut off from the leader: what they send or are sent waits in `held`, as
    /// TCP keeps bytes through a partition, and is delivered when they are healed.
    cut: BTreeSet<u64>,
    held: Vec<(bool, u64, Packet)>,
}

impl Cluster {
    fn leader_actions(&mut self, actions: Vec<LeaderAction>) {
        for a in actions {
            match a {
                LeaderAction::Send { to, packet } => self.to_learner.push_back((to, packet)),
                LeaderAction::SendSnapshot { to } => {
                    // the snapshot stream: the learner's state becomes the leader's applied state
                    self.snapshots_sent.push(to);
                    let n = self.nodes.get_mut(&to).unwrap();
                    n.log = self
                        .leader_log
                        .iter()
                        .copied()
                        .filter(|z| *z <= self.leader_applied)
                        .collect();
                    n.applied = self.leader_applied;
                }
                LeaderAction::Persist(z, _) => {
                    self.leader_log.push(z);
                    let more = self.leader.on_durable(z);
                    self.leader_actions(more);
                }
                LeaderAction::Commit(z) => {
                    assert!(z > self.leader_applied, "leader commits in order");
                    self.leader_applied = z;
                }
                LeaderAction::Established => self.established = true,
                LeaderAction::StoreAcceptedEpoch(_) | LeaderAction::StoreCurrentEpoch(_) => {}
                LeaderAction::StepDown(why) => panic!("leader stepped down: {why}"),
                LeaderAction::DropLearner(sid) => panic!("leader dropped learner {sid}"),
                LeaderAction::ReadBarrierPassed(id) => self.barriers_passed.push(id),
                // no reconfiguration here
                LeaderAction::ConfigProposed(_) | LeaderAction::Activate { .. } => {}
            }
        }
    }

    fn learner_actions(&mut self, sid: u64, actions: Vec<LearnerAction>) {
        for a in actions {
            let n = self.nodes.get_mut(&sid).unwrap();
            match a {
                LearnerAction::Send(p) => self.to_leader.push_back((sid, p)),
                LearnerAction::Persist(txns) => {
                    let last = txns.last().unwrap().0;
                    n.log.extend(txns.iter().map(|(z, _)| *z));
                    let more = n.learner.on_durable(last);
                    self.learner_actions(sid, more);
                }
                LearnerAction::Commit(z) => {
                    assert!(z >= n.applied, "learner {sid} commits in order");
                    assert!(
                        n.log.contains(&z) || n.applied == z,
                        "learner {sid} applies only what it logged"
                    );
                    n.applied = z;
                }
                LearnerAction::Truncate(z) => n.log.retain(|x| *x <= z),
                LearnerAction::LoadSnapshot { .. } => {}
                LearnerAction::ReplyPing(z) => self.to_leader.push_back((
                    sid,
                    Packet::PingReply {
                        zxid: z,
                        touches: vec![],
                    },
                )),
                LearnerAction::Serving => n.serving = true,
                LearnerAction::StoreAcceptedEpoch(_) | LearnerAction::StoreCurrentEpoch(_) => {}
                LearnerAction::Fail(why) => panic!("learner {sid} gave up: {why}"),
                LearnerAction::ActivateCommitted { .. }
                | LearnerAction::ActivateLeaderConfig(_)
                | LearnerAction::LeaderConfigSeen(_) => {}
            }
        }
    }

    fn heal(&mut self, sid: u64) {
        self.cut.remove(&sid);
        for (to_leader, from_or_to, p) in std::mem::take(&mut self.held) {
            match (from_or_to == sid, to_leader) {
                (true, true) => self.to_leader.push_back((sid, p)),
                (true, false) => self.to_learner.push_back((sid, p)),
                (false, _) => self.held.push((to_leader, from_or_to, p)),
            }
        }
    }

    fn run(&mut self) {
        loop {
            if let Some((sid, p)) = self.to_leader.pop_front() {
                if self.cut.contains(&sid) {
                    self.held.push((true, sid, p));
                    continue;
                }
                let out = match p {
                    Packet::FollowerInfo(h) => {
                        self.leader.on_learner_info(sid, h.zxid >> 32, false)
                    }
                    Packet::ObserverInfo(h) => self.leader.on_learner_info(sid, h.zxid >> 32, true),
                    other => self.leader.on_packet(sid, other),
                };
                self.leader_actions(out);
            } else if let Some((sid, p)) = self.to_learner.pop_front() {
                if self.cut.contains(&sid) {
                    self.held.push((false, sid, p));
                    continue;
                }
                let out = self.nodes.get_mut(&sid).unwrap().learner.on_packet(p);
                self.learner_actions(sid, out);
            } else {
                return;
            }
        }
    }
}

/// Leader 3 with follower 1 behind (DIFF), follower 2 ahead (TRUNC) and an empty observer 4
/// (SNAP), all synchronized and up to date. Returns the cluster and the committed history.
fn synced_cluster() -> (Cluster, Vec<i64>) {
    let committed: Vec<i64> = (1..=5).map(|c| E1 + c).collect();
    // the leader was a follower established in epoch 2 (it took no txns there); follower 2 is
    // the old epoch-1 leader, back with a txn nobody else logged
    let leader = Leader::new(
        3,
        config(),
        2,
        StateSummary {
            current_epoch: 2,
            last_zxid: E1 + 5,
        },
        committed.iter().map(|z| (*z, txn(*z))).collect(),
        5,
    );
    let mut cluster = Cluster {
        leader,
        leader_log: committed.clone(),
        leader_applied: E1 + 5,
        established: false,
        nodes: BTreeMap::new(),
        to_leader: VecDeque::new(),
        to_learner: VecDeque::new(),
        snapshots_sent: Vec::new(),
        barriers_passed: Vec::new(),
        cut: BTreeSet::new(),
        held: Vec::new(),
    };
    // 1 lags (DIFF), 2 logged an uncommitted txn (TRUNC), observer 4 has nothing (SNAP)
    let setups: [(u64, LearnerRole, Vec<i64>); 3] = [
        (1, LearnerRole::Follower, committed[..3].to_vec()),
        (
            2,
            LearnerRole::Follower,
            [committed.clone(), vec![E1 + 6]].concat(),
        ),
        (4, LearnerRole::Observer, vec![]),
    ];
    for (sid, role, log) in setups {
        let last = log.last().copied().unwrap_or(0);
        let learner = Learner::new(sid, role, 1, 1, last, 0);
        cluster.nodes.insert(
            sid,
            Node {
                learner,
                log,
                applied: 0,
                serving: false,
            },
        );
        let out = cluster.nodes.get_mut(&sid).unwrap().learner.start();
        cluster.learner_actions(sid, out);
    }
    cluster.run();
    (cluster, committed)
}

#[test]
fn learners_behind_ahead_and_empty_all_end_with_the_leaders_history() {
    let (mut cluster, committed) = synced_cluster();
    assert!(cluster.established, "a quorum acked NEWLEADER");
    assert_eq!(cluster.snapshots_sent, vec![4]);
    for (sid, n) in &cluster.nodes {
        assert!(n.serving, "learner {sid} is up to date");
        assert_eq!(n.log, committed, "learner {sid}'s log after sync");
    }
    // broadcast: ten proposals commit everywhere, in order
    let mut proposed = Vec::new();
    for _ in 0..10 {
        let (zxid, out) = cluster.leader.propose(txn(0)).expect("established");
        proposed.push(zxid);
        cluster.leader_actions(out);
        cluster.run();
    }
    assert_eq!(proposed[0], (3 << 32) + 1, "the new epoch's first zxid");
    let history: Vec<i64> = committed
        .iter()
        .copied()
        .chain(proposed.iter().copied())
        .collect();
    assert_eq!(cluster.leader_applied, *proposed.last().unwrap());
    for (sid, n) in &cluster.nodes {
        assert_eq!(n.log, history, "learner {sid}'s log after broadcast");
        assert_eq!(
            n.applied,
            *proposed.last().unwrap(),
            "learner {sid} applied everything"
        );
    }
}

#[test]
fn without_a_quorum_the_epoch_is_never_established_and_nothing_is_proposed() {
    let mut leader = Leader::new(
        3,
        config(),
        1,
        StateSummary {
            current_epoch: 1,
            last_zxid: E1,
        },
        vec![],
        5,
    );
    let out = leader.on_learner_info(4, 1, true);
    assert!(
        out.is_empty(),
        "an observer alone does not decide the epoch: {out:?}"
    );
    assert!(leader.propose(txn(0)).is_none());
    let out = leader.on_learner_info(1, 1, false);
    assert!(out.contains(&LeaderAction::StoreAcceptedEpoch(2)));
    assert!(
        leader.propose(txn(0)).is_none(),
        "not established before the NEWLEADER quorum"
    );
}

#[test]
fn a_silent_follower_is_dropped_and_the_leader_steps_down_without_a_quorum() {
    let mut leader = Leader::new(
        3,
        config(),
        1,
        StateSummary {
            current_epoch: 1,
            last_zxid: E1,
        },
        vec![],
        2,
    );
    leader.on_learner_info(1, 1, false);
    leader.on_packet(
        1,
        Packet::AckEpoch {
            last_zxid: E1,
            current_epoch: 1,
        },
    );
    let out = leader.on_packet(1, Packet::Ack { zxid: 2 << 32 });
    assert!(out.contains(&LeaderAction::Established));
    assert!(leader.is_learner(1), "its requests are taken");
    let (mut stepped_down, mut dropped) = (false, false);
    for _ in 0..4 {
        let out = leader.on_tick();
        dropped |= out.contains(&LeaderAction::DropLearner(1));
        stepped_down |= out.iter().any(|a| matches!(a, LeaderAction::StepDown(_)));
    }
    assert!(
        stepped_down,
        "follower 1 stayed silent longer than syncLimit"
    );
    // its connection is closed, and whatever it sent before is not taken if it arrives late
    assert!(dropped);
    assert!(!leader.is_learner(1));
}

#[test]
fn a_follower_with_a_more_recent_history_makes_the_leader_step_down() {
    let mut leader = Leader::new(
        3,
        config(),
        1,
        StateSummary {
            current_epoch: 1,
            last_zxid: E1 + 5,
        },
        vec![],
        5,
    );
    leader.on_learner_info(1, 1, false);
    let out = leader.on_packet(
        1,
        Packet::AckEpoch {
            last_zxid: E1 + 6,
            current_epoch: 1,
        },
    );
    assert!(matches!(&out[..], [LeaderAction::StepDown(_)]), "{out:?}");
}

#[test]
fn a_sync_barrier_waits_for_a_voter_quorum_to_answer_and_the_observer_does_not_count() {
    let (mut cluster, _) = synced_cluster();
    assert!(cluster.established);
    // the leader and observer 4 can talk; both followers are cut off
    cluster.cut.extend([1, 2]);
    let (first, out) = cluster.leader.request_read_barrier();
    cluster.leader_actions(out);
    cluster.run();
    let (second, out) = cluster.leader.request_read_barrier();
    cluster.leader_actions(out);
    cluster.run();
    assert_eq!(second, first + 1);
    assert!(
        cluster.barriers_passed.is_empty(),
        "no voter answered: nothing passes (the observer answered, it does not count)"
    );
    // follower 2's link delivers what it held: its answer passes the first round, and the
    // second round's PINGs reach it at once
    cluster.heal(2);
    cluster.run();
    assert_eq!(cluster.barriers_passed, vec![first, second]);
}
