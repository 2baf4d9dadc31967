//! The leader side of Zab (ZooKeeper's Leader / LearnerHandler) as a state machine:
//! discovery (a new epoch agreed with a quorum), synchronization of each learner (DIFF, TRUNC
//! or SNAP, then NEWLEADER; the epoch is established by a quorum of NEWLEADER acks), then
//! broadcast (PROPOSAL, ACK quorum, COMMIT in zxid order; INFORM to observers).
//!
//! The leader logs its own proposals like a follower: [`LeaderAction::Persist`], then
//! [`Leader::on_durable`] counts as its ACK.

use crate::broadcast::{CommitTracker, ConfigsInForce};
use crate::discovery::{Discovery, StateSummary};
use crate::sync::{plan_sync, SyncStart};
use crate::wire::{Packet, ProposalData, LEARNER_PROTOCOL_VERSION};
use config::QuorumConfig;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// How many committed txns the leader keeps in memory to DIFF learners (ZooKeeper: 500).
pub const COMMITTED_LOG_WINDOW: usize = 500;

/// The largest accepted epoch a learner may claim: the epoch after it must still make
/// positive zxids (`epoch << 32` with epoch < 2^31).
pub const MAX_ACCEPTED_EPOCH: i64 = i32::MAX as i64 - 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderAction {
    Send {
        to: u64,
        packet: Packet,
    },
    /// Send this learner a snapshot of the applied tree (it follows the SNAP packet).
    SendSnapshot {
        to: u64,
    },
    StoreAcceptedEpoch(i64),
    StoreCurrentEpoch(i64),
    /// Log this txn; report with [`Leader::on_durable`].
    Persist(i64, ProposalData),
    /// Apply the logged txns up to this zxid.
    Commit(i64),
    /// The epoch is established: serve clients.
    Established,
    /// Stop leading (a follower is ahead, or the quorum is lost) and look again.
    StepDown(String),
    /// This learner was silent beyond syncLimit and is forgotten: close its connection, so
    /// that nothing it sent before (requests held up in a partitioned link) arrives later.
    DropLearner(u64),
    /// A configuration is proposed (a reconfig txn was logged): count its quorum too.
    ConfigProposed(Arc<QuorumConfig>),
    /// Every sync waiting for this read barrier (or an earlier one) may be answered: a quorum
    /// still followed us after it was requested. See [`Leader::request_read_barrier`].
    ReadBarrierPassed(u64),
    /// This configuration is now active; `designated` leads it. When that is not us, we
    /// commit nothing more and hand off: follow `designated` without an election.
    Activate {
        config: Arc<QuorumConfig>,
        designated: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LearnerState {
    /// FOLLOWERINFO received; LEADERINFO sent once the epoch is decided.
    Registered,
    /// ACKEPOCH received; synchronized once a quorum has acked the epoch.
    EpochAcked,
    /// Sync packets and NEWLEADER sent; waiting for the NEWLEADER ack.
    Syncing,
    /// NEWLEADER acked; gets UPTODATE once the epoch is established.
    Synced,
    /// Up to date: receives every proposal (or inform) and commit.
    Active,
}

#[derive(Debug)]
struct LearnerInfo {
    observer: bool,
    state: LearnerState,
    last_zxid: i64,
    last_heard_tick: u64,
    /// PINGs sent since UPTODATE, and the replies to them. A learner ignores PINGs until
    /// UPTODATE (ZooKeeper's syncWithLeader does) and answers each one after it, in order, so
    /// the n-th reply counted is the answer to the n-th PING. Replies count only once the
    /// learner's ACK of UPTODATE has arrived: a zkrs learner answers earlier PINGs too.
    pings_sent: u64,
    pings_answered: u64,
    uptodate_acked: bool,
}

/// A round of PINGs that syncs wait for: it passes when a quorum has answered the PING each
/// member was sent when the round started (or was retargeted).
#[derive(Debug)]
struct BarrierRound {
    id: u64,
    started_tick: u64,
    /// For each voter that was up to date: the PING count its answers must reach.
    targets: BTreeMap<u64, u64>,
}

/// Read barriers (Raft's ReadIndex): a leader that was cut off or paused may not know yet
/// that the others elected a new leader, which may have committed writes since; answering a
/// sync from its own state then returns stale data (ZooKeeper does: Leader.processSync). So a
/// sync is answered only after a quorum answered a PING sent after the sync arrived. At most
/// one round is in flight; requests arriving meanwhile share the next one.
#[derive(Debug, Default)]
struct ReadBarriers {
    in_flight: Option<BarrierRound>,
    /// A request arrived after the round in flight sent its PINGs.
    next_wanted: bool,
    passed: u64,
}

/// See [`Leader::learner_counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LearnerCounts {
    pub learners: usize,
    pub synced_followers: usize,
    pub synced_non_voting_followers: usize,
    pub synced_observers: usize,
}

#[derive(Debug)]
pub struct Leader {
    my_id: u64,
    /// The active configuration.
    config: Arc<QuorumConfig>,
    /// A reconfig proposed and not yet committed, its zxid and configuration: while it is
    /// pending every proposal needs a quorum of both.
    pending_reconfig: Option<(i64, Arc<QuorumConfig>)>,
    /// False once a reconfig designated another leader: we commit nothing more.
    allowed_to_commit: bool,
    /// Give a first, unversioned configuration the NEWLEADER zxid as its version (ZooKeeper
    /// does when reconfigEnabled; ZOOKEEPER-1783).
    version_initial_config: bool,
    discovery: Discovery,
    new_epoch: Option<i64>,
    epoch_acked: bool,
    established: bool,
    learners: BTreeMap<u64, LearnerInfo>,
    newleader_acks: BTreeSet<u64>,
    last_processed: i64,
    committed: VecDeque<(i64, ProposalData)>,
    outstanding: BTreeMap<i64, ProposalData>,
    tracker: CommitTracker,
    next_counter: i64,
    tick: u64,
    sync_limit_ticks: u64,
    /// How many ticks each step of establishing the epoch (a quorum of FOLLOWERINFO, of
    /// ACKEPOCH, of NEWLEADER acks) may take before the leader gives up and looks again.
    init_limit_ticks: u64,
    /// When the current establishment step began.
    phase_started_tick: u64,
    /// Set while our own history (up to this zxid) is logged but not yet durable: until it is,
    /// we neither write the new current epoch nor count ourselves in the NEWLEADER quorum.
    history_pending: Option<i64>,
    /// The last zxid of the history we lead with (committed once the epoch is established).
    history_end: i64,
    barriers: ReadBarriers,
}

impl Leader {
    /// A server that won the election. `ours` is its history (current epoch, last zxid);
    /// `committed` its most recent committed txns (for DIFF), oldest first.
    pub fn new(
        my_id: u64,
        config: Arc<QuorumConfig>,
        accepted_epoch: i64,
        ours: StateSummary,
        committed: Vec<(i64, ProposalData)>,
        sync_limit_ticks: u64,
    ) -> Self {
        let mut committed: VecDeque<_> = committed.into();
        while committed.len() > COMMITTED_LOG_WINDOW {
            committed.pop_front();
        }
        Leader {
            my_id,
            discovery: Discovery::new(my_id, (*config).clone(), accepted_epoch, ours),
            config,
            pending_reconfig: None,
            allowed_to_commit: true,
            version_initial_config: false,
            new_epoch: None,
            epoch_acked: false,
            established: false,
            learners: BTreeMap::new(),
            newleader_acks: BTreeSet::from([my_id]),
            last_processed: ours.last_zxid,
            committed,
            outstanding: BTreeMap::new(),
            tracker: CommitTracker::new(ours.last_zxid),
            next_counter: 1,
            tick: 0,
            sync_limit_ticks,
            // ZooKeeper's sample configuration: initLimit=10, syncLimit=5
            init_limit_ticks: 2 * sync_limit_ticks,
            phase_started_tick: 0,
            history_pending: None,
            history_end: ours.last_zxid,
            barriers: ReadBarriers::default(),
        }
    }

    /// Our log is durable only up to `durable` (the history we lead with may end later: what
    /// is logged counts, ZooKeeper's lastLoggedZxid). Until the rest is durable we do not
    /// write currentEpoch (a crash would leave the new epoch beside a shorter log, which then
    /// wins elections it must lose: ZOOKEEPER-4643) nor count our own NEWLEADER ack (the
    /// epoch's history must be durable on a quorum). Call before [`Leader::start`].
    pub fn with_durable(mut self, durable: i64) -> Self {
        if durable < self.last_processed {
            self.history_pending = Some(self.last_processed);
            self.newleader_acks.remove(&self.my_id);
        }
        self
    }

    /// Called once after [`Leader::new`]: when the leader alone is a quorum (an ensemble of
    /// one participant, standaloneEnabled=false) it decides, acknowledges and establishes its
    /// epoch by itself; otherwise nothing happens until learners register.
    pub fn start(&mut self) -> Vec<LeaderAction> {
        let mut out = Vec::new();
        if !self.quorum_of_all(&BTreeSet::from([self.my_id])) {
            return out;
        }
        let epoch = self.discovery.new_epoch();
        self.new_epoch = Some(epoch);
        self.epoch_acked = true;
        out.push(LeaderAction::StoreAcceptedEpoch(epoch));
        if self.history_pending.is_none() {
            self.established = true;
            out.push(LeaderAction::StoreCurrentEpoch(epoch));
            self.activate_initial_version(&mut out);
            out.push(LeaderAction::Established);
            self.activate_history_reconfig(&mut out);
        }
        out
    }

    /// With reconfigEnabled, a configuration still at version 0 gets the version of the
    /// NEWLEADER zxid once the epoch is established, as in ZooKeeper. Call before start.
    pub fn with_reconfig_enabled(mut self, enabled: bool) -> Self {
        self.version_initial_config = enabled && self.config.version == 0;
        self
    }

    /// A reconfig proposed by an earlier leader and never committed is part of our history
    /// (we commit it when we establish): its configuration counts from the start.
    pub fn with_pending_reconfig(mut self, zxid: i64, config: Arc<QuorumConfig>) -> Self {
        if config.version > self.config.version {
            self.pending_reconfig = Some((zxid, config));
        }
        self
    }

    /// The configurations whose quorums a decision needs now.
    fn configs_in_force(&self) -> ConfigsInForce {
        let proposed = self.pending_reconfig.as_ref().map(|(_, next)| next.clone());
        ConfigsInForce::new(self.config.clone(), proposed)
    }

    fn quorum_of_all(&self, ids: &BTreeSet<u64>) -> bool {
        self.configs_in_force().quorum_of_all(ids)
    }

    /// The configuration NEWLEADER carries, which the learner activates at UPTODATE: the one
    /// a reconfig of our history proposed (committed with that history once the epoch is
    /// established, before any UPTODATE), else the active one (versioned with the NEWLEADER
    /// zxid if it has no version yet). Not one we proposed since and is still in flight: it
    /// may never commit, and the learner receives it among the outstanding proposals and
    /// activates it at its COMMITANDACTIVATE like everyone else.
    fn last_seen_config(&self) -> QuorumConfig {
        if let Some((zxid, next)) = &self.pending_reconfig {
            if *zxid <= self.history_end {
                return (**next).clone();
            }
        }
        let mut config = (*self.config).clone();
        if self.version_initial_config {
            if let Some(epoch) = self.new_epoch {
                config.version = epoch << 32;
            }
        }
        config
    }

    /// The active configuration and a proposed one, if a reconfig is in flight.
    pub fn configs(&self) -> (&Arc<QuorumConfig>, Option<&Arc<QuorumConfig>>) {
        (&self.config, self.pending_reconfig.as_ref().map(|(_, c)| c))
    }

    /// Followers (voters or not) connected and up to date, and ourselves: ZooKeeper's
    /// isQuorumSynced set, which a new configuration must contain a quorum of.
    pub fn synced_followers(&self) -> BTreeSet<u64> {
        let mut synced: BTreeSet<u64> = self
            .learners
            .iter()
            .filter(|(_, l)| !l.observer && l.state == LearnerState::Active)
            .map(|(id, _)| *id)
            .collect();
        synced.insert(self.my_id);
        synced
    }

    /// ZooKeeper's leader gauges (mntr): learners connected; of the synced ones, followers
    /// (voting or not), followers that do not vote in the active configuration, observers.
    pub fn learner_counts(&self) -> LearnerCounts {
        let mut counts = LearnerCounts {
            learners: self.learners.len(),
            ..LearnerCounts::default()
        };
        for (id, l) in &self.learners {
            if l.state != LearnerState::Active {
                continue;
            }
            if l.observer {
                counts.synced_observers += 1;
            } else {
                counts.synced_followers += 1;
                if !self.config.is_voter(*id) {
                    counts.synced_non_voting_followers += 1;
                }
            }
        }
        counts
    }

    /// Leading because a reconfiguration designated us (see [`Discovery::after_hand_off`]).
    pub fn after_hand_off(mut self) -> Self {
        self.discovery.after_hand_off();
        self
    }

    /// Sets initLimit (in ticks): without a quorum for the epoch within it, the leader steps
    /// down, as ZooKeeper's getEpochToPropose / waitForEpochAck / waitForNewLeaderAck time out.
    pub fn with_init_limit(mut self, init_limit_ticks: u64) -> Self {
        self.init_limit_ticks = init_limit_ticks;
        self
    }

    pub fn is_established(&self) -> bool {
        self.established
    }

    pub fn epoch(&self) -> Option<i64> {
        self.new_epoch
    }

    fn send(out: &mut Vec<LeaderAction>, to: u64, packet: Packet) {
        out.push(LeaderAction::Send { to, packet });
    }

    fn leader_info(epoch: i64) -> Packet {
        Packet::LeaderInfo {
            zxid: epoch << 32,
            protocol_version: LEARNER_PROTOCOL_VERSION,
        }
    }

    /// Whether `sid` is a voter or an observer of the active or the proposed configuration.
    /// Anyone else (a server about to be added, or a stranger) is served as a learner but
    /// cannot influence the epoch or the leadership.
    fn is_member(&self, sid: u64) -> bool {
        let (active, proposed) = self.configs();
        active.members.contains_key(&sid) || proposed.is_some_and(|c| c.members.contains_key(&sid))
    }

    fn is_voter_in_force(&self, sid: u64) -> bool {
        let (active, proposed) = self.configs();
        active.is_voter(sid) || proposed.is_some_and(|c| c.is_voter(sid))
    }

    /// Closes a learner's connection for what it sent; our term goes on.
    fn drop_learner(&mut self, sid: u64, why: &str, out: &mut Vec<LeaderAction>) {
        tracing::warn!("dropping learner {sid}: {why}");
        out.push(LeaderAction::DropLearner(sid));
        out.extend(self.on_learner_lost(sid));
    }

    /// A learner connected and sent FOLLOWERINFO or OBSERVERINFO.
    pub fn on_learner_info(
        &mut self,
        sid: u64,
        accepted_epoch: i64,
        observer: bool,
    ) -> Vec<LeaderAction> {
        let mut out = Vec::new();
        if self.learners.contains_key(&sid) {
            // registered already on this connection (a reconnect replaces the link first)
            self.drop_learner(sid, "a second FOLLOWERINFO/OBSERVERINFO", &mut out);
            return out;
        }
        if !(0..=MAX_ACCEPTED_EPOCH).contains(&accepted_epoch) {
            // its next epoch would overflow into a negative zxid: no real server has it
            self.drop_learner(
                sid,
                &format!("impossible accepted epoch {accepted_epoch}"),
                &mut out,
            );
            return out;
        }
        let member = self.is_member(sid);
        self.learners.insert(
            sid,
            LearnerInfo {
                observer,
                state: LearnerState::Registered,
                last_zxid: 0,
                last_heard_tick: self.tick,
                pings_sent: 0,
                pings_answered: 0,
                uptodate_acked: false,
            },
        );
        match (
            self.new_epoch,
            self.discovery
                .on_learner_info(sid, member.then_some(accepted_epoch)),
        ) {
            (Some(epoch), _) if accepted_epoch > epoch && self.is_voter_in_force(sid) => {
                // It promised a later epoch (to a leader that never established it) and will
                // refuse ours, again at every attempt: it could never rejoin. Looking again
                // makes the next epoch exceed every accepted one, its own included.
                out.push(LeaderAction::StepDown(format!(
                    "learner {sid} accepted epoch {accepted_epoch}, later than our {epoch}"
                )));
            }
            (Some(epoch), _) if accepted_epoch > epoch => {
                // not a voter: it may not move the leadership (it rejoins after an election)
                let why = format!("accepted epoch {accepted_epoch}, later than our {epoch}");
                self.drop_learner(sid, &why, &mut out);
            }
            (Some(epoch), _) => Self::send(&mut out, sid, Self::leader_info(epoch)),
            (None, Some(epoch)) => {
                // the epoch is decided: tell every learner that registered so far
                self.new_epoch = Some(epoch);
                self.phase_started_tick = self.tick;
                out.push(LeaderAction::StoreAcceptedEpoch(epoch));
                for (&id, l) in &self.learners {
                    if l.state == LearnerState::Registered {
                        Self::send(&mut out, id, Self::leader_info(epoch));
                    }
                }
            }
            (None, None) => {}
        }
        out
    }

    /// Handles a packet from a learner.
    pub fn on_packet(&mut self, sid: u64, packet: Packet) -> Vec<LeaderAction> {
        let mut out = Vec::new();
        let tick = self.tick;
        let Some(l) = self.learners.get_mut(&sid) else {
            // nothing before FOLLOWERINFO/OBSERVERINFO: a stranger, or garbage
            out.push(LeaderAction::DropLearner(sid));
            return out;
        };
        l.last_heard_tick = tick;
        let acks_epoch_once = l.state == LearnerState::Registered && self.new_epoch.is_some();
        match packet {
            Packet::AckEpoch { .. } if !acks_epoch_once => {
                // before our LEADERINFO, or a second time: not what a learner does
                self.drop_learner(sid, "unexpected ACKEPOCH", &mut out);
            }
            Packet::AckEpoch {
                last_zxid,
                current_epoch,
            } => {
                l.state = LearnerState::EpochAcked;
                l.last_zxid = last_zxid;
                let theirs = StateSummary {
                    current_epoch: current_epoch as i64,
                    last_zxid,
                };
                if self.epoch_acked {
                    // the epoch is agreed (ZooKeeper's waitForEpochAck returns at once once the
                    // election is finished): a late learner is synchronized whatever its
                    // history. A longer log of an older epoch holds nothing committed that we
                    // lack, and the sync truncates it; stepping down for it would depose an
                    // established leader again at every attempt of that learner to join.
                    self.synchronize(sid, &mut out);
                    return out;
                }
                match self.discovery.on_ack_epoch(sid, theirs) {
                    Err(e) if self.is_voter_in_force(sid) => {
                        out.push(LeaderAction::StepDown(e.to_string()))
                    }
                    // a non-voter's history does not decide who leads
                    Err(e) => self.drop_learner(sid, &e.to_string(), &mut out),
                    Ok(true) if !self.epoch_acked => {
                        self.epoch_acked = true;
                        self.phase_started_tick = self.tick;
                        if self.history_pending.is_none() {
                            out.push(LeaderAction::StoreCurrentEpoch(
                                self.new_epoch.expect("decided before acks"),
                            ));
                        }
                        for id in self.learners_in(LearnerState::EpochAcked) {
                            self.synchronize(id, &mut out);
                        }
                    }
                    Ok(_) if self.epoch_acked => self.synchronize(sid, &mut out),
                    Ok(_) => {}
                }
            }
            Packet::Ack { zxid } => {
                let epoch = self.new_epoch.unwrap_or(-1);
                if l.state == LearnerState::Syncing && zxid == epoch << 32 {
                    l.state = LearnerState::Synced;
                    if !l.observer {
                        self.newleader_acks.insert(sid);
                    }
                    if self.established {
                        self.activate(sid, &mut out);
                    } else {
                        self.establish_if_quorum(&mut out);
                    }
                } else if zxid == epoch << 32 && l.state == LearnerState::Active {
                    // the ACK of UPTODATE: from here on it answers every PING
                    l.uptodate_acked = true;
                } else if zxid != epoch << 32 && !l.observer {
                    // an ack of a proposal
                    let ready = self.tracker.ack(sid, zxid);
                    self.commit_all(ready, &mut out);
                }
            }
            Packet::PingReply { .. } => {
                if l.state == LearnerState::Active && l.uptodate_acked {
                    l.pings_answered = (l.pings_answered + 1).min(l.pings_sent);
                    self.check_read_barrier(&mut out);
                }
            }
            other => {
                // a learner sends nothing else: close its connection, never our term
                let kind = other.packet_type();
                let name = crate::wire::packet_type::name(kind).unwrap_or("?");
                let why = format!("unexpected packet {name} ({kind})");
                self.drop_learner(sid, &why, &mut out);
            }
        }
        out
    }

    /// Queues DIFF/TRUNC/SNAP, the committed txns the learner lacks, every outstanding
    /// proposal, and NEWLEADER. From then on the learner receives live proposals too.
    fn synchronize(&mut self, sid: u64, out: &mut Vec<LeaderAction>) {
        let epoch = self.new_epoch.expect("decided");
        let peer_last = self.learners[&sid].last_zxid;
        let zxids: Vec<i64> = self.committed.iter().map(|(z, _)| *z).collect();
        let plan = plan_sync(peer_last, self.last_processed, &zxids);
        match plan.start {
            SyncStart::Diff(z) => Self::send(out, sid, Packet::Diff { zxid: z }),
            SyncStart::Trunc(z) => Self::send(out, sid, Packet::Trunc { zxid: z }),
            SyncStart::Snap => {
                Self::send(
                    out,
                    sid,
                    Packet::Snap {
                        zxid: self.last_processed,
                    },
                );
                out.push(LeaderAction::SendSnapshot { to: sid });
            }
        }
        if plan.start != SyncStart::Snap {
            for (zxid, data) in self.committed.iter().skip(plan.send_from) {
                Self::send(
                    out,
                    sid,
                    Packet::Proposal {
                        zxid: *zxid,
                        data: data.clone(),
                    },
                );
                Self::send(out, sid, Packet::Commit { zxid: *zxid });
            }
        }
        for (zxid, data) in &self.outstanding {
            Self::send(
                out,
                sid,
                Packet::Proposal {
                    zxid: *zxid,
                    data: data.clone(),
                },
            );
        }
        Self::send(
            out,
            sid,
            Packet::NewLeader {
                zxid: epoch << 32,
                config: Some(self.last_seen_config().to_config_text().into_bytes()),
            },
        );
        if let Some(l) = self.learners.get_mut(&sid) {
            l.state = LearnerState::Syncing;
        }
    }

    /// The epoch is established once a quorum acked NEWLEADER, our own history durable.
    fn establish_if_quorum(&mut self, out: &mut Vec<LeaderAction>) {
        if self.established
            || !self.epoch_acked
            || self.history_pending.is_some()
            || !self.quorum_of_all(&self.newleader_acks)
        {
            return;
        }
        self.established = true;
        self.activate_initial_version(out);
        out.push(LeaderAction::Established);
        for id in self.learners_in(LearnerState::Synced) {
            self.activate(id, out);
        }
        self.activate_history_reconfig(out);
    }

    /// The epoch is established: a reconfig of our history, committed with it, is activated
    /// now (ZooKeeper's Leader.lead after waitForNewLeaderAck), with a designated leader among
    /// the voters of its configuration that acked NEWLEADER. When that is not us, we commit
    /// nothing more and hand off. (The learners activate it at UPTODATE: NEWLEADER carried it.)
    fn activate_history_reconfig(&mut self, out: &mut Vec<LeaderAction>) {
        let next = match &self.pending_reconfig {
            Some((zxid, next)) if *zxid <= self.history_end => next.clone(),
            _ => return,
        };
        self.pending_reconfig = None;
        let designated = crate::reconfig::designated_leader(
            self.my_id,
            &self.config,
            &next,
            &self.newleader_acks,
            &[],
        );
        self.config = next.clone();
        if designated != self.my_id {
            self.allowed_to_commit = false;
        }
        out.push(LeaderAction::Activate {
            config: next,
            designated,
        });
    }

    /// The epoch is established: a first configuration becomes version NEWLEADER's zxid.
    fn activate_initial_version(&mut self, out: &mut Vec<LeaderAction>) {
        if !self.version_initial_config || self.pending_reconfig.is_some() {
            return;
        }
        let config = Arc::new(self.last_seen_config());
        self.version_initial_config = false;
        self.config = config.clone();
        out.push(LeaderAction::Activate {
            config,
            designated: self.my_id,
        });
    }

    fn learners_in(&self, state: LearnerState) -> Vec<u64> {
        self.learners
            .iter()
            .filter(|(_, l)| l.state == state)
            .map(|(id, _)| *id)
            .collect()
    }

    fn activate(&mut self, sid: u64, out: &mut Vec<LeaderAction>) {
        if let Some(l) = self.learners.get_mut(&sid) {
            l.state = LearnerState::Active;
            l.pings_sent = 0;
            l.pings_answered = 0;
            l.uptodate_acked = false;
        }
        Self::send(out, sid, Packet::UpToDate);
    }

    /// Receivers of live traffic: learners being synchronized or up to date.
    /// Whether requests and revalidations from `sid` are taken: only from a learner this
    /// leader tracks (one dropped as silent may still have packets in flight).
    pub fn is_learner(&self, sid: u64) -> bool {
        self.learners.contains_key(&sid)
    }

    fn live(&self) -> impl Iterator<Item = (u64, &LearnerInfo)> {
        self.learners
            .iter()
            .filter(|(_, l)| {
                matches!(
                    l.state,
                    LearnerState::Syncing | LearnerState::Synced | LearnerState::Active
                )
            })
            .map(|(id, l)| (*id, l))
    }

    /// The zxid the next proposal will get (once established): Prepare needs it first.
    pub fn next_zxid(&self) -> Option<i64> {
        let epoch = self.new_epoch.filter(|_| self.established)?;
        Some((epoch << 32) | self.next_counter)
    }

    /// Proposes a txn (its header's zxid is assigned here). None until the epoch is established.
    pub fn propose(&mut self, mut data: ProposalData) -> Option<(i64, Vec<LeaderAction>)> {
        let epoch = self.new_epoch.filter(|_| self.established)?;
        let zxid = (epoch << 32) | self.next_counter;
        self.next_counter += 1;
        data.header.zxid = zxid;
        let mut out = Vec::with_capacity(2 + self.learners.len());
        out.push(LeaderAction::Persist(zxid, data.clone()));
        match crate::reconfig::config_of_txn(&data) {
            Some(next) if self.pending_reconfig.is_none() => {
                let next = Arc::new(next);
                self.pending_reconfig = Some((zxid, next.clone()));
                self.tracker.propose_reconfig(zxid, self.configs_in_force());
                out.push(LeaderAction::ConfigProposed(next));
            }
            _ => self.tracker.propose(zxid, self.configs_in_force()),
        }
        for (id, _) in self.live().filter(|(_, l)| !l.observer) {
            Self::send(
                &mut out,
                id,
                Packet::Proposal {
                    zxid,
                    data: data.clone(),
                },
            );
        }
        self.outstanding.insert(zxid, data);
        Some((zxid, out))
    }

    /// The leader's own log is durable up to `zxid`: that is its ACK.
    pub fn on_durable(&mut self, zxid: i64) -> Vec<LeaderAction> {
        let mut out = Vec::new();
        if self.history_pending.is_some_and(|end| zxid >= end) {
            self.history_pending = None;
            if self.epoch_acked {
                out.push(LeaderAction::StoreCurrentEpoch(
                    self.new_epoch.expect("decided before acks"),
                ));
            }
            self.newleader_acks.insert(self.my_id);
            self.establish_if_quorum(&mut out);
        }
        let ready = self.tracker.ack_through(self.my_id, zxid);
        self.commit_all(ready, &mut out);
        out
    }

    /// Commits what the tracker found ready; after a reconfig, goes on under the new
    /// configuration unless it designated another leader.
    fn commit_all(&mut self, mut ready: Vec<i64>, out: &mut Vec<LeaderAction>) {
        while self.allowed_to_commit && !ready.is_empty() {
            for z in ready {
                self.commit(z, out);
            }
            ready = if self.allowed_to_commit {
                self.tracker.commit_ready()
            } else {
                Vec::new()
            };
        }
    }

    fn commit(&mut self, zxid: i64, out: &mut Vec<LeaderAction>) {
        let data = self
            .outstanding
            .remove(&zxid)
            .expect("committed proposals are outstanding");
        out.push(LeaderAction::Commit(zxid));
        // a reconfig's commit activates its configuration everywhere at once
        let activation = match self.pending_reconfig.take() {
            Some((z, next)) if z == zxid => {
                let designated = crate::reconfig::designated_leader(
                    self.my_id,
                    &self.config,
                    &next,
                    self.tracker.reconfig_acks(),
                    &self.tracker.acks_after(zxid),
                );
                Some((next, designated))
            }
            other => {
                self.pending_reconfig = other;
                None
            }
        };
        for (id, observer) in self.live().map(|(id, l)| (id, l.observer)) {
            let packet = match (&activation, observer) {
                (None, true) => Packet::Inform {
                    zxid,
                    data: data.clone(),
                },
                (None, false) => Packet::Commit { zxid },
                (Some((_, designated)), true) => Packet::InformAndActivate {
                    zxid,
                    designated_leader: *designated as i64,
                    data: data.clone(),
                },
                (Some((_, designated)), false) => Packet::CommitAndActivate {
                    zxid,
                    designated_leader: *designated as i64,
                },
            };
            Self::send(out, id, packet);
        }
        if let Some((next, designated)) = activation {
            self.config = next.clone();
            if designated != self.my_id {
                // ZooKeeper's allowedToCommit = false: the designated leader takes over
                self.allowed_to_commit = false;
            } else {
                self.tracker.reconfig_activated(next.clone());
            }
            out.push(LeaderAction::Activate {
                config: next,
                designated,
            });
        }
        self.last_processed = zxid;
        self.committed.push_back((zxid, data));
        if self.committed.len() > COMMITTED_LOG_WINDOW {
            self.committed.pop_front();
        }
    }

    /// A learner's connection closed.
    pub fn on_learner_lost(&mut self, sid: u64) -> Vec<LeaderAction> {
        self.learners.remove(&sid);
        self.tracker.forget(sid);
        self.newleader_acks.remove(&sid);
        self.check_quorum()
    }

    /// Every tick: ping learners, drop the silent ones, step down without a quorum.
    pub fn on_tick(&mut self) -> Vec<LeaderAction> {
        self.tick += 1;
        let mut out = Vec::new();
        if !self.established && self.tick - self.phase_started_tick > self.init_limit_ticks {
            // without this a leader that lost its would-be quorum waits forever, and the
            // servers that voted for it can never elect anyone else
            let step = match (self.new_epoch, self.epoch_acked) {
                (None, _) => "a quorum of FOLLOWERINFO",
                (Some(_), false) => "a quorum of ACKEPOCH",
                (Some(_), true) => "a quorum of NEWLEADER acks",
            };
            out.push(LeaderAction::StepDown(format!(
                "no {step} within initLimit ({} ticks)",
                self.init_limit_ticks
            )));
            return out;
        }
        let silent: Vec<u64> = self
            .learners
            .iter()
            .filter(|(_, l)| self.tick.saturating_sub(l.last_heard_tick) > self.sync_limit_ticks)
            .map(|(id, _)| *id)
            .collect();
        for id in silent {
            out.push(LeaderAction::DropLearner(id));
            out.extend(self.on_learner_lost(id));
        }
        self.ping_learners(&mut out);
        if let Some(round) = &self.barriers.in_flight {
            if round.started_tick < self.tick {
                // still short of a quorum a tick later (a voter rejoined, or a reconfig
                // changed the voters): these PINGs went out after every request so far
                self.start_barrier_round(&mut out, false);
            }
        }
        out
    }

    /// PINGs every learner being synchronized or up to date.
    fn ping_learners(&mut self, out: &mut Vec<LeaderAction>) {
        let last = self
            .tracker
            .last_committed()
            .max(self.outstanding.keys().next_back().copied().unwrap_or(0));
        for (&id, l) in self.learners.iter_mut() {
            match l.state {
                LearnerState::Active => l.pings_sent += 1,
                LearnerState::Syncing | LearnerState::Synced => {}
                LearnerState::Registered | LearnerState::EpochAcked => continue,
            }
            Self::send(out, id, Packet::Ping { zxid: last });
        }
    }

    /// A sync arrived: it may be answered once [`LeaderAction::ReadBarrierPassed`] reports
    /// the returned id (or a later one), and what was proposed before it has committed.
    pub fn request_read_barrier(&mut self) -> (u64, Vec<LeaderAction>) {
        let mut out = Vec::new();
        if let Some(round) = &self.barriers.in_flight {
            self.barriers.next_wanted = true;
            return (round.id + 1, out);
        }
        let id = self.barriers.passed + 1;
        self.start_barrier_round(&mut out, true);
        (id, out)
    }

    /// Starts a round with fresh PINGs (or, on a tick, with the PINGs just sent). Its id
    /// covers every request so far.
    fn start_barrier_round(&mut self, out: &mut Vec<LeaderAction>, send_pings: bool) {
        if send_pings {
            self.ping_learners(out);
        }
        let id = match &self.barriers.in_flight {
            Some(round) if self.barriers.next_wanted => round.id + 1,
            Some(round) => round.id,
            None => self.barriers.passed + 1,
        };
        self.barriers.next_wanted = false;
        let targets = self
            .learners
            .iter()
            .filter(|(_, l)| l.state == LearnerState::Active && !l.observer)
            .map(|(&sid, l)| (sid, l.pings_sent))
            .collect();
        self.barriers.in_flight = Some(BarrierRound {
            id,
            started_tick: self.tick,
            targets,
        });
        self.check_read_barrier(out);
    }

    fn check_read_barrier(&mut self, out: &mut Vec<LeaderAction>) {
        let Some(round) = &self.barriers.in_flight else {
            return;
        };
        let mut answered: BTreeSet<u64> = round
            .targets
            .iter()
            .filter(|(sid, target)| {
                self.learners.get(sid).is_some_and(|l| {
                    l.state == LearnerState::Active && l.pings_answered >= **target
                })
            })
            .map(|(sid, _)| *sid)
            .collect();
        answered.insert(self.my_id);
        if !self.quorum_of_all(&answered) {
            return;
        }
        let id = round.id;
        self.barriers.passed = id;
        self.barriers.in_flight = None;
        out.push(LeaderAction::ReadBarrierPassed(id));
        if std::mem::take(&mut self.barriers.next_wanted) {
            self.start_barrier_round(out, true);
        }
    }

    fn check_quorum(&self) -> Vec<LeaderAction> {
        if !self.established {
            return Vec::new();
        }
        let mut synced: BTreeSet<u64> = self
            .live()
            .filter(|(_, l)| !l.observer)
            .map(|(id, _)| id)
            .collect();
        synced.insert(self.my_id);
        if self.quorum_of_all(&synced) {
            Vec::new()
        } else {
            vec![LeaderAction::StepDown(
                "lost the quorum of synced followers".into(),
            )]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::parse_properties;

    fn config() -> Arc<QuorumConfig> {
        let text = "server.1=h:1:2\nserver.2=h:3:4\nserver.3=h:5:6\n";
        Arc::new(QuorumConfig::from_properties(&parse_properties(text, "t").unwrap()).unwrap())
    }

    fn steps_down(leader: &mut Leader, ticks: u64) -> bool {
        (0..ticks).any(|_| {
            leader
                .on_tick()
                .iter()
                .any(|a| matches!(a, LeaderAction::StepDown(_)))
        })
    }

    #[test]
    fn a_leader_without_a_quorum_within_init_limit_steps_down() {
        let ours = StateSummary {
            current_epoch: 1,
            last_zxid: 1 << 32,
        };
        // nobody follows
        let mut alone = Leader::new(3, config(), 1, ours, vec![], 5).with_init_limit(10);
        assert!(!steps_down(&mut alone, 10), "initLimit not yet over");
        assert!(steps_down(&mut alone, 1));

        // a follower registers (the epoch is decided) but never acks it
        let mut stuck = Leader::new(3, config(), 1, ours, vec![], 5).with_init_limit(10);
        assert!(!steps_down(&mut stuck, 8));
        stuck.on_learner_info(1, 1, false);
        assert!(
            !steps_down(&mut stuck, 10),
            "each step of the establishment gets its own initLimit"
        );
        assert!(steps_down(&mut stuck, 1));
    }

    #[test]
    fn a_leader_whose_history_is_not_yet_durable_waits_for_it_before_the_new_epoch() {
        const E1: i64 = 1 << 32;
        const E2: i64 = 2 << 32;
        let ours = StateSummary {
            current_epoch: 1,
            last_zxid: E1 + 5,
        };
        // E1+4 and E1+5 are logged but their fsync has not completed
        let mut leader = Leader::new(3, config(), 1, ours, vec![], 5).with_durable(E1 + 3);
        assert!(leader.start().is_empty());
        leader.on_learner_info(1, 1, false);
        let out = leader.on_packet(
            1,
            Packet::AckEpoch {
                last_zxid: E1 + 5,
                current_epoch: 1,
            },
        );
        assert!(
            !out.iter()
                .any(|a| matches!(a, LeaderAction::StoreCurrentEpoch(_))),
            "currentEpoch beside a log that may still lose its tail: {out:?}"
        );
        assert!(out.contains(&LeaderAction::Send {
            to: 1,
            packet: Packet::NewLeader {
                zxid: E2,
                config: Some(config().to_config_text().into_bytes())
            }
        }));
        let out = leader.on_packet(1, Packet::Ack { zxid: E2 });
        assert!(out.is_empty(), "our own ack is not due yet: {out:?}");
        assert!(!leader.is_established());
        assert!(leader.on_durable(E1 + 4).is_empty());
        assert_eq!(
            leader.on_durable(E1 + 5),
            vec![
                LeaderAction::StoreCurrentEpoch(2),
                LeaderAction::Established,
                LeaderAction::Send {
                    to: 1,
                    packet: Packet::UpToDate
                }
            ]
        );
    }

    /// A reconfig txn proposing `text` as the next configuration.
    fn reconfig_txn(text: &str) -> ProposalData {
        crate::reconfig::reconfig_proposal(
            jute::TxnHeader {
                client_id: 1,
                cxid: 1,
                zxid: 0,
                time: 0,
                txn_type: jute::op::RECONFIG,
            },
            text,
        )
    }

    fn plain_txn() -> ProposalData {
        ProposalData {
            header: jute::TxnHeader {
                client_id: 1,
                cxid: 2,
                zxid: 0,
                time: 0,
                txn_type: jute::op::ERROR,
            },
            txn: jute::Jute::encode(&jute::ErrorTxn { err: -101 }).into(),
            digest: None,
        }
    }

    /// Leader 3 of {1,2,3} with followers 1 and 2 up to date, epoch 2.
    fn established_leader() -> Leader {
        let ours = StateSummary {
            current_epoch: 1,
            last_zxid: 1 << 32,
        };
        let mut leader = Leader::new(3, config(), 1, ours, vec![], 5);
        for sid in [1, 2] {
            leader.on_learner_info(sid, 1, false);
        }
        for sid in [1, 2] {
            leader.on_packet(
                sid,
                Packet::AckEpoch {
                    last_zxid: 1 << 32,
                    current_epoch: 1,
                },
            );
            leader.on_packet(sid, Packet::Ack { zxid: 2 << 32 });
        }
        assert!(leader.is_established());
        leader
    }

    #[test]
    fn removing_the_leader_needs_both_quorums_then_hands_off_to_a_voter_that_acked() {
        const E2: i64 = 2 << 32;
        let mut leader = established_leader();
        assert_eq!(leader.synced_followers(), BTreeSet::from([1, 2, 3]));
        let (z1, out) = leader
            .propose(reconfig_txn("server.1=h:1:2\nserver.2=h:3:4\n"))
            .unwrap();
        assert_eq!(z1, E2 + 1);
        let proposed = out
            .iter()
            .find_map(|a| match a {
                LeaderAction::ConfigProposed(c) => Some(c.clone()),
                _ => None,
            })
            .expect("the new configuration is proposed");
        assert_eq!(proposed.version, z1);
        assert_eq!(leader.configs().1.map(|c| c.version), Some(z1));
        // a write proposed after the reconfig, before it commits
        let (z2, _) = leader.propose(plain_txn()).unwrap();
        leader.on_durable(z2);
        // 3 and 1 are a quorum of {1,2,3} but not of {1,2}
        let out = leader.on_packet(1, Packet::Ack { zxid: z1 });
        assert!(
            !out.iter().any(|a| matches!(a, LeaderAction::Commit(_))),
            "needs a quorum of the new configuration too: {out:?}"
        );
        leader.on_packet(1, Packet::Ack { zxid: z2 });
        let out = leader.on_packet(2, Packet::Ack { zxid: z1 });
        assert!(out.contains(&LeaderAction::Commit(z1)));
        // 1 acked the later proposal too: it is designated
        for to in [1, 2] {
            assert!(out.contains(&LeaderAction::Send {
                to,
                packet: Packet::CommitAndActivate {
                    zxid: z1,
                    designated_leader: 1
                }
            }));
        }
        assert!(out.iter().any(|a| matches!(
            a,
            LeaderAction::Activate { designated: 1, config } if config.version == z1
        )));
        assert!(
            !out.contains(&LeaderAction::Commit(z2)),
            "a leader that handed off commits nothing more: {out:?}"
        );
        assert!(leader.on_packet(2, Packet::Ack { zxid: z2 }).is_empty());
    }

    /// Found by the simulator (reconfig seed 4): NEWLEADER carried the configuration of a
    /// reconfig still in flight, and the learner activated it at UPTODATE, before (and even
    /// without) its commit.
    #[test]
    fn a_learner_synced_during_a_reconfig_gets_the_active_configuration_with_newleader() {
        let mut leader = established_leader();
        let next = "server.1=h:1:2\nserver.2=h:3:4\nserver.3=h:5:6\nserver.4=h:7:8\n";
        let (z1, _) = leader.propose(reconfig_txn(next)).unwrap();
        // server 4, a joiner following without a vote, syncs while the reconfig is pending
        leader.on_learner_info(4, 1, false);
        let out = leader.on_packet(
            4,
            Packet::AckEpoch {
                last_zxid: 1 << 32,
                current_epoch: 1,
            },
        );
        let newleader = out
            .iter()
            .find_map(|a| match a {
                LeaderAction::Send {
                    to: 4,
                    packet: Packet::NewLeader { config, .. },
                } => Some(String::from_utf8(config.clone().unwrap()).unwrap()),
                _ => None,
            })
            .expect("NEWLEADER");
        assert_eq!(newleader, config().to_config_text(), "not the proposed one");
        assert!(
            out.contains(&LeaderAction::Send {
                to: 4,
                packet: Packet::Proposal {
                    zxid: z1,
                    data: {
                        let mut d = reconfig_txn(next);
                        d.header.zxid = z1;
                        d
                    }
                }
            }),
            "the reconfig comes among the outstanding proposals: {out:?}"
        );
    }

    /// Found by the simulator (reconfig seed 471): a reconfig left a single voter, the leader,
    /// and made a follower an observer; the proposals made while it was pending still waited
    /// for a quorum of the old configuration, which the new observer no longer acks: nothing
    /// committed again.
    #[test]
    fn after_a_reconfig_commits_the_later_proposals_need_only_the_new_quorum() {
        let mut leader = established_leader();
        let (z1, _) = leader
            .propose(reconfig_txn(
                "server.1=h:1:2:observer\nserver.2=h:3:4:observer\nserver.3=h:5:6\n",
            ))
            .unwrap();
        let (z2, _) = leader.propose(plain_txn()).unwrap();
        leader.on_durable(z2);
        let out = leader.on_packet(1, Packet::Ack { zxid: z1 });
        assert!(out.contains(&LeaderAction::Commit(z1)), "{out:?}");
        assert!(
            out.contains(&LeaderAction::Commit(z2)),
            "the leader alone is a quorum of the new configuration: {out:?}"
        );
    }

    /// Found by the simulator (reconfig seed 84): a leader whose history ended with a reconfig
    /// that no one committed committed it with its history but never activated it, so it
    /// kept needing both quorums and refused every later reconfig as in progress, while its
    /// learners (told by NEWLEADER) ran the new configuration.
    #[test]
    fn a_reconfig_of_the_history_is_activated_once_the_epoch_is_established() {
        const E1: i64 = 1 << 32;
        let ours = StateSummary {
            current_epoch: 1,
            last_zxid: E1 + 5,
        };
        let establish = |next_text: &str| {
            let mut next = crate::reconfig::parse_config_text(next_text).unwrap();
            next.version = E1 + 5;
            let mut leader = Leader::new(3, config(), 1, ours, vec![], 5)
                .with_reconfig_enabled(true)
                .with_pending_reconfig(E1 + 5, Arc::new(next));
            let mut all = leader.start();
            for sid in [1, 2] {
                all.extend(leader.on_learner_info(sid, 1, false));
            }
            for sid in [1, 2] {
                all.extend(leader.on_packet(
                    sid,
                    Packet::AckEpoch {
                        last_zxid: E1 + 5,
                        current_epoch: 1,
                    },
                ));
                all.extend(leader.on_packet(sid, Packet::Ack { zxid: 2 << 32 }));
            }
            assert!(leader.is_established());
            (leader, all)
        };
        let grown = "server.1=h:1:2\nserver.2=h:3:4\nserver.3=h:5:6\nserver.4=h:7:8:observer\n";
        let (mut leader, all) = establish(grown);
        assert!(
            all.iter().any(|a| matches!(
                a,
                LeaderAction::Activate { config, designated: 3 } if config.version == E1 + 5
            )),
            "{all:?}"
        );
        assert_eq!(leader.configs().0.version, E1 + 5);
        assert!(leader.configs().1.is_none(), "nothing pending any more");
        let (z, _) = leader.propose(plain_txn()).unwrap();
        leader.on_durable(z);
        let out = leader.on_packet(1, Packet::Ack { zxid: z });
        assert!(out.contains(&LeaderAction::Commit(z)), "{out:?}");
        // a history that removes the leader: it hands off to a voter that acked NEWLEADER
        let (_, all) = establish("server.1=h:1:2\nserver.2=h:3:4\n");
        assert!(
            all.iter().any(|a| matches!(
                a,
                LeaderAction::Activate {
                    designated: 1 | 2,
                    ..
                }
            )),
            "{all:?}"
        );
    }

    #[test]
    fn a_reconfig_that_keeps_the_leader_commits_on_under_the_new_configuration() {
        let mut leader = established_leader();
        let (z1, _) = leader
            .propose(reconfig_txn(
                "server.1=h:1:2\nserver.2=h:3:4\nserver.3=h:5:6\nserver.4=h:7:8:observer\n",
            ))
            .unwrap();
        let (z2, _) = leader.propose(plain_txn()).unwrap();
        leader.on_durable(z2);
        let out = leader.on_packet(1, Packet::Ack { zxid: z1 });
        assert!(out
            .iter()
            .any(|a| matches!(a, LeaderAction::Activate { designated: 3, .. })));
        let out = leader.on_packet(1, Packet::Ack { zxid: z2 });
        assert!(out.contains(&LeaderAction::Commit(z2)));
        assert_eq!(leader.configs().0.version, z1);
        assert!(leader.configs().1.is_none());
    }

    #[test]
    fn a_single_participant_establishes_once_its_history_is_durable() {
        let one = Arc::new(
            QuorumConfig::from_properties(&parse_properties("server.1=h:1:2\n", "t").unwrap())
                .unwrap(),
        );
        let ours = StateSummary {
            current_epoch: 1,
            last_zxid: (1 << 32) + 2,
        };
        let mut leader = Leader::new(1, one, 1, ours, vec![], 5).with_durable((1 << 32) + 1);
        assert_eq!(leader.start(), vec![LeaderAction::StoreAcceptedEpoch(2)]);
        assert_eq!(
            leader.on_durable((1 << 32) + 2),
            vec![
                LeaderAction::StoreCurrentEpoch(2),
                LeaderAction::Established
            ]
        );
    }

    #[test]
    fn a_learner_that_accepted_a_later_epoch_makes_the_leader_look_again() {
        let ours = StateSummary {
            current_epoch: 1,
            last_zxid: 1 << 32,
        };
        let mut leader = Leader::new(3, config(), 1, ours, vec![], 5);
        leader.on_learner_info(1, 1, false);
        assert_eq!(leader.epoch(), Some(2));
        // server 2 accepted epoch 3 from a leader that never established it
        let out = leader.on_learner_info(2, 3, false);
        assert!(
            matches!(out[..], [LeaderAction::StepDown(_)]),
            "it would refuse LEADERINFO(2) forever: {out:?}"
        );
        // an equal epoch is acked without a vote, no reason to stop
        let mut leader = Leader::new(3, config(), 1, ours, vec![], 5);
        leader.on_learner_info(1, 1, false);
        let out = leader.on_learner_info(2, 2, false);
        assert!(
            matches!(out[..], [LeaderAction::Send { to: 2, .. }]),
            "{out:?}"
        );
    }

    #[test]
    fn a_late_follower_with_a_longer_old_log_is_truncated_not_a_reason_to_step_down() {
        const E1: i64 = 1 << 32;
        let ours = StateSummary {
            current_epoch: 1,
            last_zxid: E1 + 5,
        };
        let mut leader = Leader::new(3, config(), 1, ours, vec![], 5);
        leader.on_learner_info(1, 1, false);
        let out = leader.on_packet(
            1,
            Packet::AckEpoch {
                last_zxid: E1 + 5,
                current_epoch: 1,
            },
        );
        assert!(out.contains(&LeaderAction::StoreCurrentEpoch(2)), "{out:?}");
        // server 2 logged E1+6..E1+9 that were never committed, and joins late
        leader.on_learner_info(2, 1, false);
        let out = leader.on_packet(
            2,
            Packet::AckEpoch {
                last_zxid: E1 + 9,
                current_epoch: 1,
            },
        );
        assert!(
            !out.iter().any(|a| matches!(a, LeaderAction::StepDown(_))),
            "{out:?}"
        );
        assert!(out.contains(&LeaderAction::Send {
            to: 2,
            packet: Packet::Trunc { zxid: E1 + 5 }
        }));
    }
    fn reply(leader: &mut Leader, sid: u64) -> Vec<LeaderAction> {
        let ping_reply = Packet::PingReply {
            zxid: 0,
            touches: vec![],
        };
        leader.on_packet(sid, ping_reply)
    }

    fn passed(out: &[LeaderAction]) -> Vec<u64> {
        out.iter()
            .filter_map(|a| match a {
                LeaderAction::ReadBarrierPassed(id) => Some(*id),
                _ => None,
            })
            .collect()
    }

    fn pinged(out: &[LeaderAction]) -> Vec<u64> {
        out.iter()
            .filter_map(|a| match a {
                LeaderAction::Send {
                    to,
                    packet: Packet::Ping { .. },
                } => Some(*to),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_sync_barrier_passes_once_a_quorum_answered_a_ping_sent_after_it() {
        let mut leader = established_leader();
        let (first, out) = leader.request_read_barrier();
        assert_eq!(pinged(&out), vec![1, 2], "the barrier's own PINGs");
        assert!(passed(&out).is_empty(), "the leader alone is no quorum");
        assert!(
            passed(&reply(&mut leader, 1)).is_empty(),
            "a reply before the ACK of UPTODATE answers a PING sent before it"
        );
        leader.on_packet(1, Packet::Ack { zxid: 2 << 32 });
        assert_eq!(passed(&reply(&mut leader, 1)), vec![first]);

        // two syncs while a round is in flight share the next round
        let (second, out) = leader.request_read_barrier();
        assert_eq!((second, pinged(&out)), (first + 1, vec![1, 2]));
        let (third, out) = leader.request_read_barrier();
        assert_eq!((third, pinged(&out)), (first + 2, vec![]));
        leader.on_packet(2, Packet::Ack { zxid: 2 << 32 });
        assert!(
            passed(&reply(&mut leader, 2)).is_empty(),
            "follower 2's first reply answers the first round's PING, sent before the second"
        );
        let out = reply(&mut leader, 2);
        assert_eq!(passed(&out), vec![second]);
        assert_eq!(pinged(&out), vec![1, 2], "the waiting round starts at once");
        assert!(
            passed(&reply(&mut leader, 1)).is_empty(),
            "1 answered round 2's PING"
        );
        assert_eq!(passed(&reply(&mut leader, 1)), vec![third]);
    }

    #[test]
    fn a_cut_off_leader_never_passes_a_sync_barrier_and_a_tick_pings_again() {
        let mut leader = established_leader();
        for sid in [1, 2] {
            leader.on_packet(sid, Packet::Ack { zxid: 2 << 32 });
        }
        let (id, _) = leader.request_read_barrier();
        for _ in 0..3 {
            let out = leader.on_tick();
            assert_eq!(pinged(&out), vec![1, 2]);
            assert!(passed(&out).is_empty());
        }
        // the round now waits for the last tick's PINGs: four were sent
        for _ in 0..3 {
            assert!(passed(&reply(&mut leader, 2)).is_empty());
        }
        assert_eq!(passed(&reply(&mut leader, 2)), vec![id]);
        assert!(
            steps_down(&mut leader, 10),
            "and without a quorum it steps down"
        );
    }

    #[test]
    fn a_single_voter_passes_a_sync_barrier_at_once() {
        let one = Arc::new(
            QuorumConfig::from_properties(&parse_properties("server.1=h:1:2\n", "t").unwrap())
                .unwrap(),
        );
        let ours = StateSummary {
            current_epoch: 1,
            last_zxid: 1 << 32,
        };
        let mut leader = Leader::new(1, one, 1, ours, vec![], 5);
        leader.start();
        let (id, out) = leader.request_read_barrier();
        assert_eq!(out, vec![LeaderAction::ReadBarrierPassed(id)]);
    }

    fn dropped_not_deposed(out: &[LeaderAction], sid: u64) {
        assert!(
            !out.iter().any(|a| matches!(a, LeaderAction::StepDown(_))),
            "{out:?}"
        );
        assert!(out.contains(&LeaderAction::DropLearner(sid)), "{out:?}");
    }

    #[test]
    fn a_stranger_that_registers_with_a_later_epoch_is_dropped_not_followed() {
        let mut leader = established_leader();
        let out = leader.on_learner_info(99, 7, false);
        dropped_not_deposed(&out, 99);
        assert!(!leader.is_learner(99));
        // an observer-to-be (no member yet) with an ordinary epoch is served
        let out = leader.on_learner_info(98, 1, true);
        assert!(
            matches!(out[..], [LeaderAction::Send { to: 98, .. }]),
            "{out:?}"
        );
    }

    #[test]
    fn an_impossible_epoch_is_refused_before_it_can_overflow_a_zxid() {
        let mut leader = established_leader();
        for epoch in [MAX_ACCEPTED_EPOCH + 1, i32::MAX as i64, -1, i64::MAX >> 32] {
            let out = leader.on_learner_info(1, epoch, false);
            // server 1 registered already: a second FOLLOWERINFO is refused too
            dropped_not_deposed(&out, 1);
        }
        let mut leader = Leader::new(3, config(), 1, ours_epoch_1(), vec![], 5);
        let out = leader.on_learner_info(2, i32::MAX as i64, false);
        dropped_not_deposed(&out, 2);
        leader.on_learner_info(1, 1, false);
        assert_eq!(
            leader.epoch(),
            Some(2),
            "the impossible epoch did not count"
        );
    }

    fn ours_epoch_1() -> StateSummary {
        StateSummary {
            current_epoch: 1,
            last_zxid: 1 << 32,
        }
    }

    #[test]
    fn a_non_member_does_not_raise_the_epoch_being_decided() {
        let mut leader = Leader::new(3, config(), 1, ours_epoch_1(), vec![], 5);
        leader.on_learner_info(99, 1000, false);
        leader.on_learner_info(1, 1, false);
        assert_eq!(leader.epoch(), Some(2));
        // a member's later epoch does count, as in ZooKeeper
        let mut leader = Leader::new(3, config(), 1, ours_epoch_1(), vec![], 5);
        leader.on_learner_info(2, 6, false);
        leader.on_learner_info(1, 1, false);
        assert_eq!(leader.epoch(), Some(7));
    }

    #[test]
    fn an_unexpected_packet_from_a_learner_closes_that_learner_only() {
        for packet in [
            Packet::Commit { zxid: 2 << 32 | 1 },
            Packet::Proposal {
                zxid: 2 << 32 | 1,
                data: plain_txn(),
            },
            Packet::NewLeader {
                zxid: 9 << 32,
                config: None,
            },
            Packet::UpToDate,
            Packet::AckEpoch {
                last_zxid: 0,
                current_epoch: 0,
            },
        ] {
            let mut leader = established_leader();
            let out = leader.on_packet(1, packet.clone());
            dropped_not_deposed(&out, 1);
            assert!(!leader.is_learner(1), "{packet:?}");
            assert!(leader.is_learner(2));
        }
        // a stranger's ACK of a proposal does not commit it
        let mut leader = established_leader();
        leader.on_learner_info(99, 1, false);
        let (zxid, _) = leader.propose(plain_txn()).unwrap();
        let out = leader.on_packet(99, Packet::Ack { zxid });
        assert!(
            !out.iter().any(|a| matches!(a, LeaderAction::Commit(_))),
            "{out:?}"
        );
    }

    fn any_learner_packet() -> impl proptest::strategy::Strategy<Value = Packet> {
        use proptest::prelude::*;
        let zxid = prop_oneof![
            any::<i64>(),
            (0i64..4, 0i64..8).prop_map(|(e, c)| e << 32 | c)
        ];
        let epoch = prop_oneof![any::<i64>(), 0i64..6, Just(i32::MAX as i64)];
        prop_oneof![
            zxid.clone().prop_map(|zxid| Packet::Ack { zxid }),
            zxid.clone().prop_map(|zxid| Packet::Commit { zxid }),
            zxid.clone().prop_map(|zxid| Packet::Ping { zxid }),
            zxid.clone().prop_map(|zxid| Packet::PingReply {
                zxid,
                touches: vec![]
            }),
            zxid.clone().prop_map(|zxid| Packet::Proposal {
                zxid,
                data: plain_txn()
            }),
            zxid.clone()
                .prop_map(|zxid| Packet::NewLeader { zxid, config: None }),
            (zxid.clone(), any::<i32>()).prop_map(|(last_zxid, current_epoch)| {
                Packet::AckEpoch {
                    last_zxid,
                    current_epoch,
                }
            }),
            epoch
                .clone()
                .prop_map(|e| Packet::FollowerInfo(crate::wire::LearnerHello::new(e, 99, 0))),
            epoch.prop_map(|e| Packet::ObserverInfo(crate::wire::LearnerHello::new(e, 99, 0))),
            Just(Packet::UpToDate),
            Just(Packet::Sync),
            zxid.prop_map(|zxid| Packet::Trunc { zxid }),
        ]
    }

    proptest::proptest! {
        /// Whatever learners that are no members send, in any order, an established leader
        /// keeps its term and epoch and commits nothing they acknowledge; no input panics it.
        #[test]
        fn strangers_cannot_depose_or_commit_through_an_established_leader(
            packets in proptest::collection::vec(
                (proptest::sample::select(vec![99u64, 100, 101]), any_learner_packet()),
                1..40,
            )
        ) {
            let mut leader = established_leader();
            let epoch = leader.epoch();
            let (proposed, _) = leader.propose(plain_txn()).unwrap();
            for (sid, packet) in packets {
                let out = match packet {
                    Packet::FollowerInfo(h) => leader.on_learner_info(sid, h.zxid >> 32, false),
                    Packet::ObserverInfo(h) => leader.on_learner_info(sid, h.zxid >> 32, true),
                    other => leader.on_packet(sid, other),
                };
                proptest::prop_assert!(
                    !out.iter().any(|a| matches!(
                        a,
                        LeaderAction::StepDown(_) | LeaderAction::Commit(_)
                    )),
                    "{out:?}"
                );
                proptest::prop_assert_eq!(leader.epoch(), epoch);
            }
            // the voters still commit what they acknowledge
            let out = leader.on_packet(1, Packet::Ack { zxid: proposed });
            proptest::prop_assert!(
                out.iter().any(|a| matches!(a, LeaderAction::Commit(z) if *z == proposed))
                    || leader.on_durable(proposed).iter().any(|a| matches!(a, LeaderAction::Commit(z) if *z == proposed)),
                "{out:?}"
            );
        }

        /// Voters misbehaving may lose the leader its quorum, never panic it.
        #[test]
        fn no_learner_input_panics_the_leader(
            packets in proptest::collection::vec(
                (proptest::sample::select(vec![1u64, 2, 3, 99]), any_learner_packet()),
                1..40,
            )
        ) {
            let mut leader = established_leader();
            for (sid, packet) in packets {
                let _ = match packet {
                    Packet::FollowerInfo(h) => leader.on_learner_info(sid, h.zxid >> 32, false),
                    Packet::ObserverInfo(h) => leader.on_learner_info(sid, h.zxid >> 32, true),
                    other => leader.on_packet(sid, other),
                };
                let _ = leader.on_tick();
            }
        }
    }
}

#[cfg(test)]
mod initial_version_tests {
    use super::*;
    use config::parse_properties;

    #[test]
    fn the_first_configuration_gets_the_newleader_zxid_as_its_version() {
        let text = "server.1=h:1:2\nserver.2=h:3:4\nserver.3=h:5:6\n";
        let config =
            Arc::new(QuorumConfig::from_properties(&parse_properties(text, "t").unwrap()).unwrap());
        let ours = StateSummary {
            current_epoch: 0,
            last_zxid: 0,
        };
        let mut leader = Leader::new(3, config, 0, ours, vec![], 5).with_reconfig_enabled(true);
        leader.start();
        let mut all = Vec::new();
        for sid in [1, 2] {
            all.extend(leader.on_learner_info(sid, 0, false));
        }
        for sid in [1, 2] {
            all.extend(leader.on_packet(
                sid,
                Packet::AckEpoch {
                    last_zxid: 0,
                    current_epoch: 0,
                },
            ));
            all.extend(leader.on_packet(sid, Packet::Ack { zxid: 1 << 32 }));
        }
        assert!(leader.is_established());
        assert!(
            all.iter().any(|a| matches!(
                a,
                LeaderAction::Activate { config, designated: 3 } if config.version == 1 << 32
            )),
            "{all:?}"
        );
        let newleaders: Vec<_> = all
            .iter()
            .filter_map(|a| match a {
                LeaderAction::Send {
                    packet: Packet::NewLeader { config, .. },
                    ..
                } => Some(String::from_utf8(config.clone().unwrap()).unwrap()),
                _ => None,
            })
            .collect();
        assert_eq!(newleaders.len(), 2);
        assert!(newleaders.iter().all(|t| t.ends_with("version=100000000")));
    }
}
