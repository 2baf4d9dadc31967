//! The learner side of Zab (ZooKeeper's Learner / Follower / Observer) as a state machine:
//! register with the leader, agree on its epoch, synchronize (DIFF, TRUNC or SNAP), then log
//! and acknowledge proposals and apply commits in order.
//!
//! Persistence is asynchronous: [`LearnerAction::Persist`] asks the runtime to log txns, and
//! [`Learner::on_durable`] tells the learner they are on disk, which is when it acknowledges.
//! Only txns the leader committed are applied (never a merely proposed one, ZOOKEEPER-4394).

use crate::wire::{LearnerHello, Packet, ProposalData};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LearnerRole {
    Follower,
    Observer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LearnerAction {
    Send(Packet),
    /// Write the acceptedEpoch file.
    StoreAcceptedEpoch(i64),
    /// Write the currentEpoch file.
    StoreCurrentEpoch(i64),
    /// Drop logged txns after this zxid.
    Truncate(i64),
    /// Replace the tree with the snapshot that follows SNAP on the connection.
    LoadSnapshot {
        zxid: i64,
    },
    /// Log these txns; report with [`Learner::on_durable`].
    Persist(Vec<(i64, ProposalData)>),
    /// Apply the logged txns up to this zxid.
    Commit(i64),
    /// Answer the leader's ping with this zxid and the sessions touched since the last one.
    ReplyPing(i64),
    /// Synchronized: serve clients.
    Serving,
    /// The reconfig txn `zxid` was committed (COMMITANDACTIVATE / INFORMANDACTIVATE): its
    /// configuration is active, and `designated` leads it.
    ActivateCommitted {
        zxid: i64,
        designated: u64,
    },
    /// Up to date with a leader whose last configuration is this one (sent with NEWLEADER):
    /// it is ours too when newer (it completes a reconfig an earlier leader did not finish).
    ActivateLeaderConfig(config::QuorumConfig),
    /// NEWLEADER carried this configuration, proposed by a reconfig of the leader's history
    /// (now in our log too): it is our last seen until UPTODATE activates it (ZooKeeper's
    /// setLastSeenQuorumVerifier at NEWLEADER), so that it survives a leader that never
    /// establishes its epoch.
    LeaderConfigSeen(config::QuorumConfig),
    /// Give up on this leader and look for another.
    Fail(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Registering,
    /// Epoch acknowledged, waiting for DIFF / TRUNC / SNAP.
    AwaitingSync,
    /// Receiving the committed txns that follow the sync packet, until NEWLEADER.
    Syncing,
    /// NEWLEADER received; waiting for the sync txns to be durable, then UPTODATE.
    NewLeader,
    Broadcast,
}

#[derive(Debug)]
pub struct Learner {
    my_id: u64,
    role: LearnerRole,
    accepted_epoch: i64,
    current_epoch: i64,
    last_zxid: i64,
    config_version: i64,
    new_epoch: i64,
    phase: Phase,
    /// Txns received during synchronization: (zxid, txn, committed yet).
    synced: Vec<(i64, ProposalData, bool)>,
    /// The NEWLEADER ack is owed once everything logged so far is durable.
    newleader_ack_after: Option<i64>,
    /// Proposals between NEWLEADER and UPTODATE, logged once UPTODATE arrives.
    early: Vec<(i64, ProposalData)>,
    early_commits: Vec<i64>,
    /// A COMMITANDACTIVATE that arrived before UPTODATE.
    early_activation: Option<(i64, u64)>,
    /// The configuration NEWLEADER carried.
    leader_config: Option<config::QuorumConfig>,
    /// Proposals logged that a follower acknowledges one by one once durable (ZooKeeper's
    /// SendAckRequestProcessor); the leader counts each proposal's acks on their own.
    unacked: std::collections::VecDeque<i64>,
    durable: i64,
}

impl Learner {
    pub fn new(
        my_id: u64,
        role: LearnerRole,
        accepted_epoch: i64,
        current_epoch: i64,
        last_zxid: i64,
        config_version: i64,
    ) -> Self {
        Learner {
            my_id,
            role,
            accepted_epoch,
            current_epoch,
            last_zxid,
            config_version,
            new_epoch: -1,
            phase: Phase::Registering,
            synced: Vec::new(),
            newleader_ack_after: None,
            early: Vec::new(),
            early_commits: Vec::new(),
            early_activation: None,
            leader_config: None,
            unacked: std::collections::VecDeque::new(),
            durable: last_zxid,
        }
    }

    pub fn with_durable(mut self, durable: i64) -> Self {
        self.durable = durable;
        self
    }

    pub fn is_serving(&self) -> bool {
        self.phase == Phase::Broadcast
    }

    pub fn role(&self) -> LearnerRole {
        self.role
    }

    /// The first packet: FOLLOWERINFO or OBSERVERINFO.
    pub fn start(&mut self) -> Vec<LearnerAction> {
        let hello = LearnerHello::new(self.accepted_epoch, self.my_id as i64, self.config_version);
        vec![LearnerAction::Send(match self.role {
            LearnerRole::Follower => Packet::FollowerInfo(hello),
            LearnerRole::Observer => Packet::ObserverInfo(hello),
        })]
    }

    fn fail(&mut self, why: impl Into<String>) -> Vec<LearnerAction> {
        vec![LearnerAction::Fail(why.into())]
    }

    pub fn on_packet(&mut self, packet: Packet) -> Vec<LearnerAction> {
        use LearnerAction::*;
        match (self.phase, packet) {
            (Phase::Registering, Packet::LeaderInfo { zxid, .. }) => {
                let epoch = zxid >> 32;
                let mut out = Vec::new();
                let current = if epoch > self.accepted_epoch {
                    self.accepted_epoch = epoch;
                    out.push(StoreAcceptedEpoch(epoch));
                    self.current_epoch as i32
                } else if epoch == self.accepted_epoch {
                    // we already accepted this epoch (a previous attempt): no vote
                    -1
                } else {
                    return self.fail(format!(
                        "leader's epoch {epoch} is less than our accepted epoch {}",
                        self.accepted_epoch
                    ));
                };
                self.new_epoch = epoch;
                self.phase = Phase::AwaitingSync;
                out.push(Send(Packet::AckEpoch {
                    last_zxid: self.last_zxid,
                    current_epoch: current,
                }));
                out
            }
            (Phase::AwaitingSync, Packet::Diff { .. }) => {
                self.phase = Phase::Syncing;
                Vec::new()
            }
            (Phase::AwaitingSync, Packet::Trunc { zxid }) => {
                self.phase = Phase::Syncing;
                self.last_zxid = zxid;
                self.durable = self.durable.min(zxid);
                vec![Truncate(zxid)]
            }
            (Phase::AwaitingSync, Packet::Snap { zxid }) => {
                self.phase = Phase::Syncing;
                self.last_zxid = zxid;
                self.durable = zxid;
                vec![LoadSnapshot { zxid }]
            }
            (Phase::Syncing, Packet::Proposal { zxid, data }) => {
                self.synced.push((zxid, data, false));
                Vec::new()
            }
            (Phase::Syncing, Packet::Commit { zxid }) => {
                match self.synced.iter_mut().find(|(z, _, _)| *z == zxid) {
                    Some(entry) => {
                        entry.2 = true;
                        Vec::new()
                    }
                    None => self.fail(format!("commit of 0x{zxid:x}, which was never proposed")),
                }
            }
            (Phase::Syncing, Packet::NewLeader { zxid, config }) => {
                self.leader_config = config
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .and_then(|text| crate::reconfig::parse_config_text(&text).ok());
                if zxid >> 32 != self.new_epoch {
                    return self.fail(format!(
                        "NEWLEADER of epoch {} while syncing to epoch {}",
                        zxid >> 32,
                        self.new_epoch
                    ));
                }
                self.current_epoch = self.new_epoch;
                self.phase = Phase::NewLeader;
                // currentEpoch is written once the synced txns are durable, right before the
                // NEWLEADER ack (ZOOKEEPER-4643): a crash in between must not leave the new
                // epoch beside a log that lacks them
                let mut out = Vec::new();
                let txns: Vec<(i64, ProposalData)> = self
                    .synced
                    .iter()
                    .map(|(z, d, _)| (*z, d.clone()))
                    .collect();
                // only what the leader committed is applied
                let committed = self
                    .synced
                    .iter()
                    .filter(|(_, _, c)| *c)
                    .map(|(z, _, _)| *z)
                    .max();
                if let Some(&(last, _, _)) = self.synced.last() {
                    self.last_zxid = last;
                }
                if self.role == LearnerRole::Follower {
                    let outstanding = self.synced.iter().filter(|(_, _, c)| !*c);
                    self.unacked.extend(outstanding.map(|(z, _, _)| *z));
                }
                self.newleader_ack_after = Some(self.last_zxid);
                if !txns.is_empty() {
                    out.push(Persist(txns));
                } else if self.durable >= self.last_zxid {
                    out.push(StoreCurrentEpoch(self.new_epoch));
                    out.push(Send(Packet::Ack {
                        zxid: self.new_epoch << 32,
                    }));
                    self.newleader_ack_after = None;
                }
                // what the sync says is committed is so once the epoch is established
                // (UPTODATE): applied before, it could outlive an epoch that never was
                self.early_commits.extend(committed);
                self.synced.clear();
                // a reconfig's configuration, once the txns that bring it are logged (the
                // first configuration's version has a zero counter: no txn proposed it)
                if let Some(config) = self
                    .leader_config
                    .as_ref()
                    .filter(|c| c.version & 0xffff_ffff != 0)
                {
                    out.push(LeaderConfigSeen(config.clone()));
                }
                out
            }
            (Phase::NewLeader, Packet::Proposal { zxid, data }) => {
                self.early.push((zxid, data));
                Vec::new()
            }
            (Phase::NewLeader, Packet::Commit { zxid }) => {
                self.early_commits.push(zxid);
                Vec::new()
            }
            (Phase::NewLeader, Packet::Inform { zxid, data }) => {
                // an observer's committed txn that arrived before UPTODATE
                self.early.push((zxid, data));
                self.early_commits.push(zxid);
                Vec::new()
            }
            (
                Phase::NewLeader,
                Packet::CommitAndActivate {
                    zxid,
                    designated_leader,
                },
            ) => {
                self.early_commits.push(zxid);
                self.early_activation = Some((zxid, designated_leader as u64));
                Vec::new()
            }
            (
                Phase::NewLeader,
                Packet::InformAndActivate {
                    zxid,
                    designated_leader,
                    data,
                },
            ) => {
                self.early.push((zxid, data));
                self.early_commits.push(zxid);
                self.early_activation = Some((zxid, designated_leader as u64));
                Vec::new()
            }
            (Phase::NewLeader, Packet::UpToDate) => {
                self.phase = Phase::Broadcast;
                let mut out = vec![
                    Serving,
                    Send(Packet::Ack {
                        zxid: self.new_epoch << 32,
                    }),
                ];
                if !self.early.is_empty() {
                    let txns = std::mem::take(&mut self.early);
                    if self.role == LearnerRole::Follower {
                        self.unacked.extend(txns.iter().map(|(z, _)| *z));
                    }
                    self.last_zxid = txns.last().map_or(self.last_zxid, |(z, _)| *z);
                    out.push(Persist(txns));
                }
                if let Some(c) = self.early_commits.drain(..).max() {
                    out.push(Commit(c));
                }
                if let Some(config) = self.leader_config.take() {
                    out.push(ActivateLeaderConfig(config));
                }
                if let Some((zxid, designated)) = self.early_activation.take() {
                    out.push(ActivateCommitted { zxid, designated });
                }
                out
            }
            (Phase::Broadcast, Packet::Proposal { zxid, data })
                if self.role == LearnerRole::Follower =>
            {
                if zxid <= self.last_zxid {
                    return self.fail(format!(
                        "proposal 0x{zxid:x} is not after 0x{:x}",
                        self.last_zxid
                    ));
                }
                self.last_zxid = zxid;
                self.unacked.push_back(zxid);
                vec![Persist(vec![(zxid, data)])]
            }
            (Phase::Broadcast, Packet::Commit { zxid }) => vec![Commit(zxid)],
            (
                Phase::Broadcast,
                Packet::CommitAndActivate {
                    zxid,
                    designated_leader,
                },
            ) => vec![
                Commit(zxid),
                ActivateCommitted {
                    zxid,
                    designated: designated_leader as u64,
                },
            ],
            (
                Phase::Broadcast,
                Packet::InformAndActivate {
                    zxid,
                    designated_leader,
                    data,
                },
            ) if self.role == LearnerRole::Observer => {
                self.last_zxid = zxid;
                vec![
                    Persist(vec![(zxid, data)]),
                    Commit(zxid),
                    ActivateCommitted {
                        zxid,
                        designated: designated_leader as u64,
                    },
                ]
            }
            (Phase::Broadcast, Packet::Inform { zxid, data })
                if self.role == LearnerRole::Observer =>
            {
                self.last_zxid = zxid;
                vec![Persist(vec![(zxid, data)]), Commit(zxid)]
            }
            (_, Packet::Ping { zxid }) => vec![ReplyPing(zxid)],
            (phase, other) => self.fail(format!(
                "unexpected {} while {phase:?}",
                packet_name(&other)
            )),
        }
    }

    /// The runtime logged everything up to `zxid`: the NEWLEADER ack once the sync is
    /// durable, then a follower's ack of each proposal now durable.
    pub fn on_durable(&mut self, zxid: i64) -> Vec<LearnerAction> {
        self.durable = self.durable.max(zxid);
        let mut out = Vec::new();
        if let Some(needed) = self.newleader_ack_after {
            if zxid < needed {
                return out;
            }
            self.newleader_ack_after = None;
            out.push(LearnerAction::StoreCurrentEpoch(self.new_epoch));
            out.push(LearnerAction::Send(Packet::Ack {
                zxid: self.new_epoch << 32,
            }));
        }
        while let Some(&z) = self.unacked.front() {
            if z > zxid {
                break;
            }
            self.unacked.pop_front();
            out.push(LearnerAction::Send(Packet::Ack { zxid: z }));
        }
        out
    }
}

fn packet_name(p: &Packet) -> &'static str {
    match p {
        Packet::Request(_) => "REQUEST",
        Packet::Proposal { .. } => "PROPOSAL",
        Packet::Ack { .. } => "ACK",
        Packet::Commit { .. } => "COMMIT",
        Packet::Ping { .. } => "PING",
        Packet::PingReply { .. } => "PING reply",
        Packet::Revalidate { .. } => "REVALIDATE",
        Packet::RevalidateReply { .. } => "REVALIDATE reply",
        Packet::Sync => "SYNC",
        Packet::Inform { .. } => "INFORM",
        Packet::CommitAndActivate { .. } => "COMMITANDACTIVATE",
        Packet::NewLeader { .. } => "NEWLEADER",
        Packet::FollowerInfo(_) => "FOLLOWERINFO",
        Packet::UpToDate => "UPTODATE",
        Packet::Diff { .. } => "DIFF",
        Packet::Trunc { .. } => "TRUNC",
        Packet::Snap { .. } => "SNAP",
        Packet::ObserverInfo(_) => "OBSERVERINFO",
        Packet::LeaderInfo { .. } => "LEADERINFO",
        Packet::AckEpoch { .. } => "ACKEPOCH",
        Packet::InformAndActivate { .. } => "INFORMANDACTIVATE",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jute::TxnHeader;
    use LearnerAction::*;

    const E2: i64 = 2 << 32;

    fn txn(zxid: i64) -> ProposalData {
        ProposalData {
            header: TxnHeader {
                client_id: 1,
                cxid: 1,
                zxid,
                time: 0,
                txn_type: jute::op::CREATE_SESSION,
            },
            txn: 3000i32.to_be_bytes().to_vec().into(),
            digest: None,
        }
    }

    fn leader_info() -> Packet {
        Packet::LeaderInfo {
            zxid: E2,
            protocol_version: crate::wire::LEARNER_PROTOCOL_VERSION,
        }
    }

    /// Found by the simulator (reconfig seed 308): a learner took NEWLEADER's configuration
    /// (a reconfig ending the leader's history) only at UPTODATE; the leader never
    /// established its epoch, the learner later led with the reconfig in its history but not
    /// as its last seen configuration, committed it and never activated it.
    #[test]
    fn newleader_makes_a_reconfigs_configuration_the_last_seen_one() {
        let newleader = |version: i64| {
            let mut l = Learner::new(2, LearnerRole::Follower, 1, 1, (1 << 32) + 5, 1 << 32);
            l.start();
            l.on_packet(leader_info());
            l.on_packet(Packet::Diff {
                zxid: (1 << 32) + 5,
            });
            let text = format!("server.1=h:1:2\nserver.2=h:3:4\nversion={version:x}");
            l.on_packet(Packet::NewLeader {
                zxid: E2,
                config: Some(text.into_bytes()),
            })
        };
        let out = newleader((1 << 32) + 5);
        assert!(
            matches!(out.last(), Some(LeaderConfigSeen(c)) if c.version == (1 << 32) + 5),
            "{out:?}"
        );
        // a first configuration, versioned by an epoch: no reconfig proposed it
        let out = newleader(E2);
        assert!(
            !out.iter().any(|a| matches!(a, LeaderConfigSeen(_))),
            "{out:?}"
        );
    }

    #[test]
    fn a_follower_registers_syncs_by_diff_and_acks_after_durability() {
        let mut l = Learner::new(2, LearnerRole::Follower, 1, 1, (1 << 32) + 5, 0x100000000);
        assert!(matches!(l.start()[..], [Send(Packet::FollowerInfo(_))]));
        assert_eq!(
            l.on_packet(leader_info()),
            vec![
                StoreAcceptedEpoch(2),
                Send(Packet::AckEpoch {
                    last_zxid: (1 << 32) + 5,
                    current_epoch: 1
                })
            ]
        );
        assert!(l
            .on_packet(Packet::Diff {
                zxid: (1 << 32) + 7
            })
            .is_empty());
        for z in [(1 << 32) + 6, (1 << 32) + 7] {
            l.on_packet(Packet::Proposal {
                zxid: z,
                data: txn(z),
            });
            l.on_packet(Packet::Commit { zxid: z });
        }
        // one more proposal that the leader has not committed yet
        l.on_packet(Packet::Proposal {
            zxid: (1 << 32) + 8,
            data: txn((1 << 32) + 8),
        });
        let out = l.on_packet(Packet::NewLeader {
            zxid: E2,
            config: None,
        });
        assert!(matches!(&out[0], Persist(t) if t.len() == 3));
        assert!(
            !out.iter().any(|a| matches!(a, Commit(_))),
            "nothing is applied before the epoch is established (UPTODATE)"
        );
        assert!(
            !out.contains(&StoreCurrentEpoch(2)),
            "the new epoch is stored only once the synced txns are durable (ZOOKEEPER-4643)"
        );
        // the NEWLEADER ack waits until the synced txns are on disk
        assert!(l.on_durable((1 << 32) + 7).is_empty());
        // ... then currentEpoch, the ack, and the uncommitted proposal's own ack
        assert_eq!(
            l.on_durable((1 << 32) + 8),
            vec![
                StoreCurrentEpoch(2),
                Send(Packet::Ack { zxid: E2 }),
                Send(Packet::Ack {
                    zxid: (1 << 32) + 8
                })
            ]
        );
        assert_eq!(
            l.on_packet(Packet::UpToDate),
            vec![
                Serving,
                Send(Packet::Ack { zxid: E2 }),
                Commit((1 << 32) + 7)
            ],
            "the synced committed txns are applied at UPTODATE; the uncommitted one is not"
        );
        assert!(l.is_serving());
        assert_eq!(
            l.on_packet(Packet::Proposal {
                zxid: E2 + 1,
                data: txn(E2 + 1)
            }),
            vec![Persist(vec![(E2 + 1, txn(E2 + 1))])]
        );
        assert_eq!(
            l.on_durable(E2 + 1),
            vec![Send(Packet::Ack { zxid: E2 + 1 })]
        );
        assert_eq!(
            l.on_packet(Packet::Commit { zxid: E2 + 1 }),
            vec![Commit(E2 + 1)]
        );
        assert_eq!(
            l.on_packet(Packet::Ping { zxid: E2 + 1 }),
            vec![ReplyPing(E2 + 1)]
        );
    }

    #[test]
    fn trunc_and_snap_reset_the_learners_history() {
        let mut l = Learner::new(2, LearnerRole::Follower, 1, 1, (1 << 32) + 9, 0);
        l.start();
        l.on_packet(leader_info());
        assert_eq!(
            l.on_packet(Packet::Trunc {
                zxid: (1 << 32) + 4
            }),
            vec![Truncate((1 << 32) + 4)]
        );
        let mut s = Learner::new(3, LearnerRole::Follower, 0, 0, 0, 0);
        s.start();
        s.on_packet(leader_info());
        assert_eq!(
            s.on_packet(Packet::Snap {
                zxid: (1 << 32) + 40
            }),
            vec![LoadSnapshot {
                zxid: (1 << 32) + 40
            }]
        );
        let out = s.on_packet(Packet::NewLeader {
            zxid: E2,
            config: None,
        });
        assert_eq!(
            out,
            vec![StoreCurrentEpoch(2), Send(Packet::Ack { zxid: E2 })]
        );
    }

    #[test]
    fn an_epoch_already_accepted_is_acked_without_a_vote_and_an_older_one_is_refused() {
        let mut l = Learner::new(2, LearnerRole::Follower, 2, 1, 7, 0);
        l.start();
        assert_eq!(
            l.on_packet(leader_info()),
            vec![Send(Packet::AckEpoch {
                last_zxid: 7,
                current_epoch: -1
            })]
        );
        let mut old = Learner::new(2, LearnerRole::Follower, 3, 3, 7, 0);
        old.start();
        assert!(matches!(old.on_packet(leader_info())[..], [Fail(_)]));
    }

    #[test]
    fn observers_apply_informs_and_never_ack_them() {
        let mut o = Learner::new(4, LearnerRole::Observer, 1, 1, 0, 0);
        assert!(matches!(o.start()[..], [Send(Packet::ObserverInfo(_))]));
        o.on_packet(leader_info());
        o.on_packet(Packet::Diff { zxid: 0 });
        o.on_packet(Packet::NewLeader {
            zxid: E2,
            config: None,
        });
        o.on_packet(Packet::UpToDate);
        assert_eq!(
            o.on_packet(Packet::Inform {
                zxid: E2 + 1,
                data: txn(E2 + 1)
            }),
            vec![Persist(vec![(E2 + 1, txn(E2 + 1))]), Commit(E2 + 1)]
        );
        assert!(o.on_durable(E2 + 1).is_empty());
    }

    #[test]
    fn out_of_order_packets_make_the_learner_give_up() {
        let mut l = Learner::new(2, LearnerRole::Follower, 1, 1, 0, 0);
        l.start();
        assert!(matches!(l.on_packet(Packet::UpToDate)[..], [Fail(_)]));
    }
}
