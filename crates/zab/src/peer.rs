//! One server's Zab: election, then leading or learning, then election again when that ends.
//! Stepped by the runtime (or the simulator) with the current time; every effect is an
//! [`Output`] the runtime executes in order.

use crate::discovery::StateSummary;
use crate::election::{self, Election, Notification, ServerState};
use crate::leader::{Leader, LeaderAction, COMMITTED_LOG_WINDOW};
use crate::learner::{Learner, LearnerAction, LearnerRole};
use crate::wire::{Packet, ProposalData, SessionTouch};
use config::QuorumConfig;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// What a server keeps on disk about Zab, read back at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Persisted {
    pub accepted_epoch: i64,
    pub current_epoch: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Tick,
    Notification(Notification),
    /// A quorum packet from `from` (the leader, or one of our learners).
    Packet {
        from: u64,
        packet: Packet,
    },
    /// Our connection to the leader is up (learners start registering).
    ConnectedToLeader,
    /// A connection to `peer` closed.
    Disconnected {
        peer: u64,
    },
    /// Everything up to `zxid` is in the log.
    Durable {
        zxid: i64,
    },
    /// Another server's election notification carried this configuration (its active one).
    /// While looking, a newer one is adopted: that is how a joiner started with an initial
    /// configuration learns the ensemble's, and how a server that missed a reconfig catches up.
    ConfigSeen(QuorumConfig),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    SendNotification {
        to: u64,
        notification: Notification,
    },
    SendPacket {
        to: u64,
        packet: Packet,
    },
    /// Open the quorum connection to the leader, then step [`Input::ConnectedToLeader`].
    ConnectToLeader {
        leader: u64,
    },
    /// Close every quorum connection (the role ended).
    DropQuorumConnections,
    SendSnapshot {
        to: u64,
    },
    LoadSnapshot {
        zxid: i64,
    },
    Truncate {
        zxid: i64,
    },
    Persist {
        zxid: i64,
        data: ProposalData,
    },
    /// Apply these txns (everything logged up to `zxid`, in order). A server that became
    /// leader commits its whole log; `txns` may then start before anything it proposed.
    Commit {
        zxid: i64,
        txns: Vec<(i64, ProposalData)>,
    },
    /// Leader: a learner forwarded a client's request, or asks to revalidate a session, or
    /// wants a sync. The runtime answers with [`Peer::send_to_learner`]-style SendPacket.
    FromLearner {
        from: u64,
        packet: Packet,
    },
    /// Learner: the leader's answer to a REVALIDATE or a forwarded sync.
    FromLeader {
        packet: Packet,
    },
    /// Learner: answer the leader's PING with the sessions touched since the last reply.
    ReplyPing {
        to: u64,
        zxid: i64,
    },
    /// Leader: a learner reports these sessions as alive.
    TouchSessions(Vec<SessionTouch>),
    /// Leader: syncs waiting for this read barrier or an earlier one may be answered (see
    /// [`Peer::request_read_barrier`]).
    ReadBarrierPassed(u64),
    /// Leader: close the connection of this learner, which was silent beyond syncLimit
    /// (it may connect again).
    DropLearner {
        peer: u64,
    },
    StoreEpochs(Persisted),
    /// A reconfig txn was logged: its configuration is proposed (ZooKeeper writes it to
    /// `<cfg>.dynamic.next` and connects to its new members).
    ConfigProposed(Arc<QuorumConfig>),
    /// This configuration is now the active one (write it to the dynamic file, update
    /// /zookeeper/config, rebind a changed client port).
    ConfigActivated(Arc<QuorumConfig>),
    /// Serve clients (true) or stop serving (false).
    Serving(bool),
    Role(ServerState),
}

#[derive(Debug)]
enum Role {
    Looking(Election),
    Leading(Box<Leader>),
    Learning {
        leader: u64,
        learner: Learner,
        connected: bool,
        since_ms: u64,
        last_heard_ms: u64,
    },
}

#[derive(Debug)]
pub struct Peer {
    my_id: u64,
    /// The active configuration.
    config: Arc<QuorumConfig>,
    /// A configuration proposed by a reconfig we logged and not yet activated.
    last_seen: Option<Arc<QuorumConfig>>,
    reconfig_enabled: bool,
    /// Set while [`Peer::hand_off`] installs the role a reconfiguration designated.
    by_hand_off: bool,
    persisted: Persisted,
    tick_ms: u64,
    init_limit: u64,
    sync_limit: u64,
    role: Role,
    /// Logged txns not known to be committed, and the recent committed ones (for DIFF).
    logged: BTreeMap<i64, ProposalData>,
    committed: VecDeque<(i64, ProposalData)>,
    /// The last reconfig txn committed: the one a COMMITANDACTIVATE activates, even when the
    /// same commit also moved it out of `committed` (a learner committing more than the
    /// window's 500 txns at UPTODATE, reconfig seed 41689).
    committed_reconfig: Option<(i64, ProposalData)>,
    last_logged: i64,
    last_durable: i64,
    last_committed: i64,
    election_timer: Option<u64>,
    now_ms: u64,
    last_tick_ms: u64,
    /// Read barrier ids are the current leader term's own plus this: they grow across terms,
    /// so that a barrier passed in an earlier term never answers a sync of a later one.
    barrier_ids_from: u64,
    /// The highest read barrier id handed out so far.
    barrier_ids_seen: u64,
}

impl Peer {
    pub fn new(
        my_id: u64,
        config: Arc<QuorumConfig>,
        persisted: Persisted,
        last_zxid: i64,
        tick_ms: u64,
        init_limit: u64,
        sync_limit: u64,
    ) -> Self {
        Peer {
            my_id,
            role: Role::Looking(Election::new(my_id, vec![(*config).clone()])),
            config,
            last_seen: None,
            reconfig_enabled: false,
            by_hand_off: false,
            persisted,
            tick_ms,
            init_limit,
            sync_limit,
            logged: BTreeMap::new(),
            committed: VecDeque::new(),
            committed_reconfig: None,
            last_logged: last_zxid,
            last_durable: last_zxid,
            last_committed: last_zxid,
            election_timer: None,
            now_ms: 0,
            last_tick_ms: 0,
            barrier_ids_from: 0,
            barrier_ids_seen: 0,
        }
    }

    /// reconfigEnabled: configurations get versions and follow reconfigs (ZooKeeper keeps
    /// the static configuration as it is otherwise, ZOOKEEPER-3829).
    pub fn with_reconfig_enabled(mut self, enabled: bool) -> Self {
        self.reconfig_enabled = enabled;
        self
    }

    /// The last txns of the log a restarted server replayed, in order and ending at its last
    /// zxid (at most [`COMMITTED_LOG_WINDOW`] are kept). Its whole log is its history (it
    /// leads with all of it), so as a leader it can DIFF a learner from them instead of
    /// sending a SNAP, as ZooKeeper fills its committedLog while loading its database. A window
    /// that does not end at the last zxid or does not ascend is ignored.
    pub fn with_logged_window(mut self, window: Vec<(i64, ProposalData)>) -> Self {
        let ascends = window.windows(2).all(|w| w[0].0 < w[1].0);
        let ends_at_last = window.last().is_some_and(|(z, _)| *z == self.last_logged);
        if ascends && ends_at_last {
            let skip = window.len().saturating_sub(COMMITTED_LOG_WINDOW);
            self.committed = window.into_iter().skip(skip).collect();
        }
        self
    }

    /// A configuration proposed before a restart (`<cfg>.dynamic.next`).
    pub fn with_last_seen(mut self, config: Arc<QuorumConfig>) -> Self {
        if config.version > self.config.version {
            self.last_seen = Some(config);
        }
        self
    }

    /// The last configuration proposed: the pending one during a reconfig, else the active.
    pub fn last_seen_config(&self) -> &Arc<QuorumConfig> {
        self.last_seen.as_ref().unwrap_or(&self.config)
    }

    /// Leader: the servers connected and up to date with us (ourselves included), of
    /// which a new configuration needs a quorum.
    pub fn synced_followers(&self) -> Option<std::collections::BTreeSet<u64>> {
        match &self.role {
            Role::Leading(l) => Some(l.synced_followers()),
            _ => None,
        }
    }

    /// Leader: ZooKeeper's learner gauges (see [`Leader::learner_counts`]).
    pub fn learner_counts(&self) -> Option<crate::leader::LearnerCounts> {
        match &self.role {
            Role::Leading(l) => Some(l.learner_counts()),
            _ => None,
        }
    }

    fn election_configs(&self) -> Vec<QuorumConfig> {
        let mut configs = vec![(*self.config).clone()];
        if let Some(next) = &self.last_seen {
            configs.push((**next).clone());
        }
        configs
    }

    pub fn state(&self) -> ServerState {
        match &self.role {
            Role::Looking(_) => ServerState::Looking,
            Role::Leading(_) => ServerState::Leading,
            Role::Learning { learner, .. } if learner.role() == LearnerRole::Observer => {
                ServerState::Observing
            }
            Role::Learning { .. } => ServerState::Following,
        }
    }

    pub fn is_serving(&self) -> bool {
        match &self.role {
            Role::Leading(l) => l.is_established(),
            Role::Learning { learner, .. } => learner.is_serving(),
            Role::Looking(_) => false,
        }
    }

    pub fn last_committed(&self) -> i64 {
        self.last_committed
    }

    pub fn my_id(&self) -> u64 {
        self.my_id
    }

    pub fn config(&self) -> &Arc<QuorumConfig> {
        &self.config
    }

    /// The leader we follow or observe (or ourselves when leading).
    pub fn leader(&self) -> Option<u64> {
        match &self.role {
            Role::Leading(_) => Some(self.my_id),
            Role::Learning { leader, .. } => Some(*leader),
            Role::Looking(_) => None,
        }
    }

    /// Leader, established: the zxid the next [`Peer::propose`] will assign.
    pub fn next_zxid(&self) -> Option<i64> {
        match &self.role {
            Role::Leading(l) => l.next_zxid(),
            _ => None,
        }
    }

    /// The epoch we are in (the current epoch on disk).
    pub fn current_epoch(&self) -> i64 {
        self.persisted.current_epoch
    }

    /// Starts (or restarts) looking for a leader.
    pub fn start(&mut self, now_ms: u64) -> Vec<Output> {
        self.now_ms = now_ms;
        self.look()
    }

    fn look(&mut self) -> Vec<Output> {
        let mut out = vec![
            Output::DropQuorumConnections,
            Output::Serving(false),
            Output::Role(ServerState::Looking),
        ];
        let configs = self.election_configs();
        let mut election = match std::mem::replace(
            &mut self.role,
            Role::Looking(Election::new(self.my_id, configs.clone())),
        ) {
            Role::Looking(e) if e.configs() == configs.as_slice() => e,
            _ => Election::new(self.my_id, configs),
        };
        // an initial configuration (never versioned by an ensemble) may be a joiner's: see
        // Election::set_bootstrap_guard
        election.set_bootstrap_guard(
            self.reconfig_enabled && self.config.version == 0 && self.last_seen.is_none(),
        );
        let actions = election.start(
            self.now_ms,
            self.last_durable.max(self.last_committed),
            self.persisted.current_epoch,
        );
        self.role = Role::Looking(election);
        self.election_actions(actions, &mut out);
        out
    }

    fn election_actions(&mut self, actions: Vec<election::Action>, out: &mut Vec<Output>) {
        for a in actions {
            match a {
                election::Action::Send { to, notification } => {
                    out.push(Output::SendNotification { to, notification })
                }
                election::Action::SetTimer { at_ms } => self.election_timer = Some(at_ms),
                election::Action::Decided { state, vote } => {
                    self.election_timer = None;
                    self.become_(state, vote.leader, out);
                }
            }
        }
    }

    fn become_(&mut self, state: ServerState, leader: u64, out: &mut Vec<Output>) {
        out.push(Output::Role(state));
        let history = self.last_durable.max(self.last_committed);
        if self.last_logged > history {
            // we voted with our durable (or committed) history; txns still being fsynced are
            // not part of it (no one has our ack for them): cut them, or they would sit in the
            // log beneath the new epoch's txns and be replayed after a restart
            let zxid = history;
            self.logged.retain(|z, _| *z <= zxid);
            self.last_logged = zxid;
            if self.last_seen.as_ref().is_some_and(|c| c.version > zxid) {
                // the reconfig that proposed it is cut with the rest
                self.last_seen = None;
            }
            out.push(Output::Truncate { zxid });
        }
        match state {
            ServerState::Leading => {
                // a new leader's whole log is its history: everything logged is committed
                let logged = std::mem::take(&mut self.logged);
                let txns: Vec<(i64, ProposalData)> = logged.into_iter().collect();
                for (zxid, data) in &txns {
                    self.remember_committed(*zxid, data.clone());
                }
                if self.last_logged > self.last_committed {
                    self.last_committed = self.last_logged;
                    out.push(Output::Commit {
                        zxid: self.last_logged,
                        txns,
                    });
                }
                let ours = StateSummary {
                    current_epoch: self.persisted.current_epoch,
                    last_zxid: self.last_logged,
                };
                let window: Vec<(i64, ProposalData)> = self.committed.iter().cloned().collect();
                let mut leader = Leader::new(
                    self.my_id,
                    self.config.clone(),
                    self.persisted.accepted_epoch,
                    ours,
                    window,
                    self.sync_limit,
                )
                .with_init_limit(self.init_limit)
                .with_durable(self.last_durable)
                .with_reconfig_enabled(self.reconfig_enabled);
                if self.by_hand_off {
                    leader = leader.after_hand_off();
                }
                if let Some(next) = self.last_seen.clone() {
                    // a reconfig in our history that no one activated: we commit it with the
                    // rest, and it becomes active once a quorum of both configurations has
                    // acknowledged our epoch
                    leader = leader.with_pending_reconfig(next.version, next);
                }
                let actions = leader.start();
                self.barrier_ids_from = self.barrier_ids_seen;
                self.role = Role::Leading(Box::new(leader));
                self.leader_actions(actions, out);
            }
            _ => {
                let role = if state == ServerState::Observing {
                    LearnerRole::Observer
                } else {
                    LearnerRole::Follower
                };
                let learner = Learner::new(
                    self.my_id,
                    role,
                    self.persisted.accepted_epoch,
                    self.persisted.current_epoch,
                    self.last_logged,
                    self.config.version,
                )
                .with_durable(self.last_durable);
                self.role = Role::Learning {
                    leader,
                    learner,
                    connected: false,
                    since_ms: self.now_ms,
                    last_heard_ms: self.now_ms,
                };
                out.push(Output::ConnectToLeader { leader });
            }
        }
    }

    /// A logged reconfig txn proposes its configuration.
    fn note_proposed_config(&mut self, data: &ProposalData, out: &mut Vec<Output>) {
        if !self.reconfig_enabled {
            return;
        }
        if let Some(next) = crate::reconfig::config_of_txn(data) {
            if next.version > self.last_seen_config().version {
                let next = Arc::new(next);
                self.last_seen = Some(next.clone());
                out.push(Output::ConfigProposed(next));
            }
        }
    }

    /// Makes `config` the active configuration if it is newer. With a designated leader
    /// (a reconfig's commit), a server whose leader or role changes goes straight to its new
    /// role without an election (ZooKeeper's reconfigFlag); a learner whose role changed
    /// otherwise looks again. Returns true when the role ended (stop executing its actions).
    fn activate(
        &mut self,
        config: Arc<QuorumConfig>,
        designated: Option<u64>,
        out: &mut Vec<Output>,
    ) -> bool {
        if !self.install_config(config, out) {
            return false;
        }
        let role_now = self.state();
        let role_in_config = self.role_in_config();
        let leader_now = self.leader();
        match designated {
            Some(leader) if leader == self.my_id && role_now != ServerState::Leading => {
                self.hand_off(ServerState::Leading, leader, out);
                true
            }
            Some(leader)
                if leader != self.my_id
                    && (Some(leader) != leader_now || role_in_config != role_now) =>
            {
                self.hand_off(role_in_config, leader, out);
                true
            }
            None if role_now != ServerState::Leading
                && role_now != ServerState::Looking
                && role_in_config != role_now =>
            {
                out.extend(self.look());
                true
            }
            _ => false,
        }
    }

    /// Ends the current role and takes `state` under `leader` at once (no election).
    fn hand_off(&mut self, state: ServerState, leader: u64, out: &mut Vec<Output>) {
        out.push(Output::DropQuorumConnections);
        out.push(Output::Serving(false));
        self.election_timer = None;
        self.by_hand_off = true;
        self.become_(state, leader, out);
        self.by_hand_off = false;
    }

    /// Makes `config` the active configuration when reconfig is enabled and it is newer
    /// (dropping a proposed one it supersedes). Returns whether it did.
    fn install_config(&mut self, config: Arc<QuorumConfig>, out: &mut Vec<Output>) -> bool {
        if !self.reconfig_enabled || config.version <= self.config.version {
            return false;
        }
        self.config = config.clone();
        if self
            .last_seen
            .as_ref()
            .is_some_and(|c| c.version <= config.version)
        {
            self.last_seen = None;
        }
        out.push(Output::ConfigActivated(config));
        true
    }

    /// Following or observing, as the active configuration has us (a server absent from it
    /// follows without a vote, as ZooKeeper's removed servers and joiners do).
    fn role_in_config(&self) -> ServerState {
        match self.config.members.get(&self.my_id) {
            Some(s) if !s.is_participant() => ServerState::Observing,
            _ => ServerState::Following,
        }
    }

    fn remember_committed(&mut self, zxid: i64, data: ProposalData) {
        self.committed.push_back((zxid, data));
        while self.committed.len() > COMMITTED_LOG_WINDOW {
            self.committed.pop_front();
        }
    }

    /// Proposes a txn (leader only, once established). Returns its zxid.
    pub fn propose(&mut self, data: ProposalData) -> Option<(i64, Vec<Output>)> {
        let Role::Leading(leader) = &mut self.role else {
            return None;
        };
        let (zxid, actions) = leader.propose(data)?;
        let mut out = Vec::new();
        self.leader_actions(actions, &mut out);
        Some((zxid, out))
    }

    /// Leader: a sync arrived. Returns the read barrier it waits for: answer it once
    /// [`Output::ReadBarrierPassed`] reports that id or a later one (and what was proposed
    /// before it has committed), when a quorum is known to have still followed us after it.
    pub fn request_read_barrier(&mut self) -> Option<(u64, Vec<Output>)> {
        let Role::Leading(leader) = &mut self.role else {
            return None;
        };
        let (id, actions) = leader.request_read_barrier();
        let id = self.barrier_ids_from + id;
        self.barrier_ids_seen = self.barrier_ids_seen.max(id);
        let mut out = Vec::new();
        self.leader_actions(actions, &mut out);
        Some((id, out))
    }

    pub fn step(&mut self, now_ms: u64, input: Input) -> Vec<Output> {
        self.now_ms = now_ms;
        let mut out = Vec::new();
        match input {
            Input::Tick => self.on_tick(&mut out),
            Input::Notification(n) => {
                if let Role::Looking(e) = &mut self.role {
                    let actions = e.on_notification(now_ms, n);
                    self.election_actions(actions, &mut out);
                } else if n.state == ServerState::Looking {
                    // tell a looker whom we follow or that we lead
                    let vote = election::Vote {
                        leader: match &self.role {
                            Role::Leading(_) => self.my_id,
                            Role::Learning { leader, .. } => *leader,
                            Role::Looking(_) => unreachable!("handled above"),
                        },
                        zxid: self.last_logged,
                        election_epoch: n.vote.election_epoch,
                        peer_epoch: self.persisted.current_epoch,
                    };
                    out.push(Output::SendNotification {
                        to: n.sender,
                        notification: Notification {
                            sender: self.my_id,
                            state: self.state(),
                            vote,
                        },
                    });
                }
            }
            Input::ConnectedToLeader => {
                if let Role::Learning {
                    learner, connected, ..
                } = &mut self.role
                {
                    *connected = true;
                    let actions = learner.start();
                    self.learner_actions(actions, &mut out);
                }
            }
            Input::Packet { from, packet } => match &mut self.role {
                Role::Leading(leader)
                    if matches!(packet, Packet::Request(_) | Packet::Revalidate { .. })
                        && !leader.is_learner(from) =>
                {
                    // sent by a learner this leader dropped as silent: stale, not taken
                }
                Role::Leading(_)
                    if matches!(packet, Packet::Request(_) | Packet::Revalidate { .. }) =>
                {
                    out.push(Output::FromLearner { from, packet });
                }
                Role::Leading(leader) => {
                    if let Packet::PingReply { touches, .. } = &packet {
                        if !touches.is_empty() {
                            out.push(Output::TouchSessions(touches.clone()));
                        }
                    }
                    let actions = match packet {
                        Packet::FollowerInfo(h) => {
                            leader.on_learner_info(from, h.zxid >> 32, false)
                        }
                        Packet::ObserverInfo(h) => leader.on_learner_info(from, h.zxid >> 32, true),
                        other => leader.on_packet(from, other),
                    };
                    self.leader_actions(actions, &mut out);
                }
                Role::Learning {
                    leader,
                    last_heard_ms,
                    ..
                } if *leader == from
                    && matches!(packet, Packet::RevalidateReply { .. } | Packet::Sync) =>
                {
                    *last_heard_ms = now_ms;
                    out.push(Output::FromLeader { packet });
                }
                Role::Learning {
                    leader,
                    learner,
                    last_heard_ms,
                    ..
                } if *leader == from => {
                    *last_heard_ms = now_ms;
                    let actions = learner.on_packet(packet);
                    self.learner_actions(actions, &mut out);
                }
                _ => {}
            },
            Input::Disconnected { peer } => match &mut self.role {
                Role::Leading(leader) => {
                    let actions = leader.on_learner_lost(peer);
                    self.leader_actions(actions, &mut out);
                }
                Role::Learning { leader, .. } if *leader == peer => out.extend(self.look()),
                _ => {}
            },
            Input::ConfigSeen(config) => {
                if matches!(self.role, Role::Looking(_))
                    && self.install_config(Arc::new(config), &mut out)
                {
                    out.extend(self.look());
                }
            }
            Input::Durable { zxid } => {
                // a report that crossed a truncation does not cover what was cut
                self.last_durable = self.last_durable.max(zxid.min(self.last_logged));
                match &mut self.role {
                    Role::Leading(leader) => {
                        let actions = leader.on_durable(zxid);
                        self.leader_actions(actions, &mut out);
                    }
                    Role::Learning { learner, .. } => {
                        let actions = learner.on_durable(zxid);
                        self.learner_actions(actions, &mut out);
                    }
                    Role::Looking(_) => {}
                }
            }
        }
        out
    }

    fn on_tick(&mut self, out: &mut Vec<Output>) {
        let now = self.now_ms;
        if let (Role::Looking(e), Some(at)) = (&mut self.role, self.election_timer) {
            if now >= at {
                let actions = e.on_timer(now);
                self.election_actions(actions, out);
            }
            return;
        }
        if now < self.last_tick_ms + self.tick_ms {
            return;
        }
        self.last_tick_ms = now;
        let (init, sync) = (
            self.init_limit * self.tick_ms,
            self.sync_limit * self.tick_ms,
        );
        match &mut self.role {
            Role::Leading(leader) => {
                let actions = leader.on_tick();
                self.leader_actions(actions, out);
            }
            Role::Learning {
                learner,
                since_ms,
                last_heard_ms,
                ..
            } => {
                // give up on a leader that does not sync us within initLimit, or goes silent
                let limit = if learner.is_serving() { sync } else { init };
                if now.saturating_sub(*last_heard_ms) > limit
                    || (!learner.is_serving() && now.saturating_sub(*since_ms) > init)
                {
                    out.extend(self.look());
                }
            }
            Role::Looking(_) => {}
        }
    }

    fn leader_actions(&mut self, actions: Vec<LeaderAction>, out: &mut Vec<Output>) {
        for a in actions {
            match a {
                LeaderAction::Send { to, packet } => out.push(Output::SendPacket { to, packet }),
                LeaderAction::SendSnapshot { to } => out.push(Output::SendSnapshot { to }),
                LeaderAction::StoreAcceptedEpoch(e) => {
                    self.persisted.accepted_epoch = e;
                    out.push(Output::StoreEpochs(self.persisted));
                }
                LeaderAction::StoreCurrentEpoch(e) => {
                    self.persisted.current_epoch = e;
                    out.push(Output::StoreEpochs(self.persisted));
                }
                LeaderAction::Persist(zxid, data) => {
                    self.last_logged = zxid;
                    self.logged.insert(zxid, data.clone());
                    out.push(Output::Persist { zxid, data });
                }
                LeaderAction::Commit(zxid) => self.commit(zxid, out),
                LeaderAction::Established => out.push(Output::Serving(true)),
                LeaderAction::ConfigProposed(next) => {
                    self.last_seen = Some(next.clone());
                    out.push(Output::ConfigProposed(next));
                }
                LeaderAction::Activate { config, designated } => {
                    if self.activate(config, Some(designated), out) {
                        return;
                    }
                }
                LeaderAction::DropLearner(peer) => out.push(Output::DropLearner { peer }),
                LeaderAction::ReadBarrierPassed(id) => {
                    let id = self.barrier_ids_from + id;
                    self.barrier_ids_seen = self.barrier_ids_seen.max(id);
                    out.push(Output::ReadBarrierPassed(id));
                }
                LeaderAction::StepDown(why) => {
                    // (logging is not I/O: the runtime's subscriber decides where it goes)
                    tracing::info!("server {} stops leading: {why}", self.my_id);
                    out.extend(self.look());
                    return;
                }
            }
        }
    }

    fn learner_actions(&mut self, actions: Vec<LearnerAction>, out: &mut Vec<Output>) {
        for a in actions {
            match a {
                LearnerAction::Send(packet) => {
                    if let Role::Learning { leader, .. } = &self.role {
                        out.push(Output::SendPacket {
                            to: *leader,
                            packet,
                        });
                    }
                }
                LearnerAction::StoreAcceptedEpoch(e) => {
                    self.persisted.accepted_epoch = e;
                    out.push(Output::StoreEpochs(self.persisted));
                }
                LearnerAction::StoreCurrentEpoch(e) => {
                    self.persisted.current_epoch = e;
                    out.push(Output::StoreEpochs(self.persisted));
                }
                LearnerAction::Truncate(zxid) => {
                    if self.last_seen.as_ref().is_some_and(|c| c.version > zxid) {
                        self.last_seen = None;
                    }
                    self.logged.retain(|z, _| *z <= zxid);
                    self.committed.retain(|(z, _)| *z <= zxid);
                    self.last_logged = zxid;
                    self.last_durable = self.last_durable.min(zxid);
                    self.last_committed = self.last_committed.min(zxid);
                    out.push(Output::Truncate { zxid });
                }
                LearnerAction::LoadSnapshot { zxid } => {
                    self.last_seen = None;
                    self.logged.clear();
                    self.committed.clear();
                    self.last_logged = zxid;
                    self.last_durable = zxid;
                    self.last_committed = zxid;
                    out.push(Output::LoadSnapshot { zxid });
                }
                LearnerAction::Persist(txns) => {
                    let mut logged_any = false;
                    for (zxid, data) in txns {
                        // already in our log (a zxid names one txn; a TRUNC lowers
                        // last_logged first): the log only ascends
                        if zxid <= self.last_logged {
                            continue;
                        }
                        self.last_logged = self.last_logged.max(zxid);
                        self.note_proposed_config(&data, out);
                        self.logged.insert(zxid, data.clone());
                        out.push(Output::Persist { zxid, data });
                        logged_any = true;
                    }
                    if !logged_any {
                        // all already in our log: no Durable will come for them, so the
                        // acks they are owed are due now
                        if let Role::Learning { learner, .. } = &mut self.role {
                            let actions = learner.on_durable(self.last_durable);
                            self.learner_actions(actions, out);
                        }
                    }
                }
                LearnerAction::Commit(zxid) => self.commit(zxid, out),
                LearnerAction::ReplyPing(zxid) => {
                    if let Role::Learning { leader, .. } = &self.role {
                        out.push(Output::ReplyPing { to: *leader, zxid });
                    }
                }
                LearnerAction::Serving => out.push(Output::Serving(true)),
                LearnerAction::ActivateCommitted { zxid, designated } => {
                    let config = self
                        .committed
                        .iter()
                        .rev()
                        .chain(self.committed_reconfig.as_ref())
                        .find(|(z, _)| *z == zxid)
                        .and_then(|(_, data)| crate::reconfig::config_of_txn(data));
                    if let Some(config) = config {
                        if self.activate(Arc::new(config), Some(designated), out) {
                            return;
                        }
                    }
                }
                LearnerAction::LeaderConfigSeen(config) => {
                    if self.reconfig_enabled && config.version > self.last_seen_config().version {
                        let config = Arc::new(config);
                        self.last_seen = Some(config.clone());
                        out.push(Output::ConfigProposed(config));
                    }
                }
                LearnerAction::ActivateLeaderConfig(config) => {
                    if self.activate(Arc::new(config), None, out) {
                        return;
                    }
                }
                LearnerAction::Fail(why) => {
                    tracing::info!("server {} stops following: {why}", self.my_id);
                    out.extend(self.look());
                    return;
                }
            }
        }
    }

    fn commit(&mut self, zxid: i64, out: &mut Vec<Output>) {
        if zxid <= self.last_committed {
            return;
        }
        let mut txns = Vec::new();
        while let Some(entry) = self.logged.first_entry() {
            if *entry.key() > zxid {
                break;
            }
            let (z, data) = entry.remove_entry();
            if data.header.txn_type == jute::op::RECONFIG {
                self.committed_reconfig = Some((z, data.clone()));
            }
            self.remember_committed(z, data.clone());
            txns.push((z, data));
        }
        self.last_committed = zxid;
        out.push(Output::Commit { zxid, txns });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::election::Vote;
    use config::parse_properties;

    const E1: i64 = 1 << 32;
    const E2: i64 = 2 << 32;
    const THREE: &str = "server.1=h:1:2\nserver.2=h:3:4\nserver.3=h:5:6\n";

    fn reconfig_txn(zxid: i64, text: &str) -> ProposalData {
        crate::reconfig::reconfig_proposal(
            jute::TxnHeader {
                client_id: 1,
                cxid: 1,
                zxid,
                time: 0,
                txn_type: jute::op::RECONFIG,
            },
            text,
        )
    }

    /// Server 3 of THREE at E1, joining leader 1 (epoch 2, server 2 following): it follows,
    /// connected, and has had LEADERINFO, DIFF and NEWLEADER (with no configuration).
    fn follower_synced_to_newleader() -> Peer {
        let config = Arc::new(
            QuorumConfig::from_properties(&parse_properties(THREE, "t").unwrap()).unwrap(),
        );
        let persisted = Persisted {
            accepted_epoch: 1,
            current_epoch: 1,
        };
        let mut peer = Peer::new(3, config, persisted, E1, 100, 10, 5).with_reconfig_enabled(true);
        peer.start(0);
        let vote = Vote {
            leader: 1,
            zxid: E1,
            election_epoch: 1,
            peer_epoch: 1,
        };
        for (sender, state) in [(1, ServerState::Leading), (2, ServerState::Following)] {
            peer.step(
                1,
                Input::Notification(Notification {
                    sender,
                    state,
                    vote,
                }),
            );
        }
        assert_eq!(peer.state(), ServerState::Following);
        peer.step(2, Input::ConnectedToLeader);
        for packet in [
            Packet::LeaderInfo {
                zxid: E2,
                protocol_version: crate::wire::LEARNER_PROTOCOL_VERSION,
            },
            Packet::Diff { zxid: E1 },
            Packet::NewLeader {
                zxid: E2,
                config: None,
            },
        ] {
            peer.step(3, Input::Packet { from: 1, packet });
        }
        peer
    }

    /// Found reading `become_` while diagnosing reconfig seed 84 of the simulator: a follower
    /// logged a reconfig, lost its leader before the txn was durable and won the next
    /// election; becoming leader cut the txn from its log but still took its configuration as
    /// pending, to commit (and, since the fix for seed 84, activate) a configuration no one
    /// had decided.
    #[test]
    fn a_new_leader_that_cuts_an_unsynced_reconfig_forgets_its_configuration() {
        let mut peer = follower_synced_to_newleader();
        peer.step(
            3,
            Input::Packet {
                from: 1,
                packet: Packet::UpToDate,
            },
        );
        assert!(peer.is_serving());
        // a reconfig is logged, not yet durable, when the leader goes away
        let moved = THREE.replace("h:1:2", "h:7:8");
        let out = peer.step(
            4,
            Input::Packet {
                from: 1,
                packet: Packet::Proposal {
                    zxid: E2 + 1,
                    data: reconfig_txn(E2 + 1, &moved),
                },
            },
        );
        assert!(out.iter().any(|o| matches!(o, Output::ConfigProposed(_))));
        assert_eq!(peer.last_seen_config().version, E2 + 1);
        let out = peer.step(5, Input::Disconnected { peer: 1 });
        let mine = out
            .iter()
            .find_map(|o| match o {
                Output::SendNotification { notification, .. } => Some(notification.vote),
                _ => None,
            })
            .expect("looking again");
        // 1 and 2 back us: we lead (at once: every voter agrees, no finalize wait)
        let mut out = Vec::new();
        for sender in [1, 2] {
            out.extend(peer.step(
                6,
                Input::Notification(Notification {
                    sender,
                    state: ServerState::Looking,
                    vote: mine,
                }),
            ));
        }
        out.extend(peer.step(1_000, Input::Tick));
        assert_eq!(peer.state(), ServerState::Leading, "{out:?}");
        assert!(out.contains(&Output::Truncate { zxid: E1 }), "{out:?}");
        assert_eq!(
            peer.last_seen_config().version,
            peer.config().version,
            "the cut reconfig is not pending"
        );
    }

    /// A leader's read barrier ids start again with each term; the ones the peer hands out
    /// must keep growing, or a barrier passed in an earlier term would answer a sync of a
    /// later one at once.
    #[test]
    fn read_barrier_ids_keep_growing_when_the_same_server_leads_again() {
        let config = Arc::new(
            QuorumConfig::from_properties(&parse_properties(THREE, "t").unwrap()).unwrap(),
        );
        let persisted = Persisted {
            accepted_epoch: 1,
            current_epoch: 1,
        };
        let mut peer = Peer::new(3, config, persisted, E1, 100, 10, 5);
        let mut now = 0;
        let mut out = peer.start(now);
        let mut ids = Vec::new();
        for _term in 0..2 {
            let mine = out
                .iter()
                .rev()
                .find_map(|o| match o {
                    Output::SendNotification { notification, .. } => Some(notification.vote),
                    _ => None,
                })
                .expect("looking, our vote announced");
            for sender in [1, 2] {
                let vote = Notification {
                    sender,
                    state: ServerState::Looking,
                    vote: mine,
                };
                peer.step(now + 1, Input::Notification(vote));
            }
            now += 1_000;
            peer.step(now, Input::Tick);
            assert_eq!(peer.state(), ServerState::Leading);
            let (id, _) = peer.request_read_barrier().expect("leading");
            ids.push(id);
            // nobody follows: after initLimit the leader looks again
            out = Vec::new();
            while peer.state() == ServerState::Leading {
                now += 100;
                out.extend(peer.step(now, Input::Tick));
            }
        }
        assert!(ids[1] > ids[0], "{ids:?}");
    }

    /// Reconfig seeds 35087 and 41689: a learner that got COMMITANDACTIVATE between NEWLEADER
    /// and UPTODATE, then commits more than the 500-txn window at UPTODATE, still activates
    /// the configuration (it looked the txn up in the window after the commit had evicted it,
    /// and stayed on the old configuration for good).
    #[test]
    fn a_learner_activates_a_reconfig_committed_before_uptodate_behind_many_txns() {
        let mut peer = follower_synced_to_newleader();
        // proposed after NEWLEADER: a reconfig, then 600 ordinary txns, all committed before
        // UPTODATE
        let moved = THREE.replace("h:1:2", "h:7:8");
        let reconfig_zxid = E2 + 1;
        let mut packets = vec![Packet::Proposal {
            zxid: reconfig_zxid,
            data: reconfig_txn(reconfig_zxid, &moved),
        }];
        for i in 2..602 {
            let mut data = reconfig_txn(E2 + i, THREE);
            data.header.txn_type = jute::op::SET_DATA;
            packets.push(Packet::Proposal { zxid: E2 + i, data });
        }
        packets.push(Packet::CommitAndActivate {
            zxid: reconfig_zxid,
            designated_leader: 1,
        });
        packets.extend((2..602).map(|i| Packet::Commit { zxid: E2 + i }));
        for packet in packets {
            peer.step(4, Input::Packet { from: 1, packet });
        }
        let out = peer.step(
            5,
            Input::Packet {
                from: 1,
                packet: Packet::UpToDate,
            },
        );
        assert!(
            out.iter()
                .any(|o| matches!(o, Output::ConfigActivated(c) if c.version == reconfig_zxid)),
            "{out:?}"
        );
        assert_eq!(peer.config().version, reconfig_zxid);
    }
}
