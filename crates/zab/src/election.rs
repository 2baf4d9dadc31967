//! Fast leader election (ZooKeeper's FastLeaderElection) as a state machine.
//!
//! A server that looks for a leader proposes itself, then adopts any better vote it hears:
//! votes are ordered by (peer epoch, last zxid, server id). It decides once a quorum of the
//! voters in every configuration in force proposes the same vote and nothing better arrives
//! within the finalize wait; a server that hears a quorum of FOLLOWING/LEADING peers agree
//! on a leader joins it directly. Servers that are not looking answer lookers with their
//! current vote, which is how a restarted server finds an established leader.
//!
//! Inputs: [`Election::start`], [`Election::on_notification`], [`Election::on_timer`], all
//! with the current time in milliseconds. Outputs: [`Action`]s to execute in order.

use config::QuorumConfig;
use std::collections::{BTreeMap, BTreeSet};

/// How long a server waits, once a quorum agrees, for a better vote before deciding.
pub const FINALIZE_WAIT_MS: u64 = 200;
/// The longest wait between resending notifications when nothing arrives.
pub const MAX_NOTIFICATION_INTERVAL_MS: u64 = 60_000;
/// How long a server holding an initial, unversioned configuration waits to hear from every
/// voter it lists before it lets an election decide (see [`Election::set_bootstrap_guard`]).
/// A running server answers a notification within milliseconds; this only delays the very
/// first election of a new ensemble in which a listed server is down.
pub const BOOTSTRAP_GRACE_MS: u64 = 2_000;

/// A server's role as the election sees it (the `state` of a notification).
pub use crate::wire::ServerState;

/// A vote: whom a server backs, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vote {
    pub leader: u64,
    /// The last zxid the proposed leader logged.
    pub zxid: i64,
    /// The election round (ZooKeeper's logical clock).
    pub election_epoch: i64,
    /// The epoch the proposed leader last accepted (its currentEpoch).
    pub peer_epoch: i64,
}

impl Vote {
    /// Whether two votes back the same outcome, as ZooKeeper's Vote.equals decides it: while
    /// anyone is looking, everything must match; between established servers the leader and
    /// its epoch are enough.
    fn agrees(&self, other: &Vote, either_looking: bool) -> bool {
        if either_looking {
            self == other
        } else {
            self.leader == other.leader && self.peer_epoch == other.peer_epoch
        }
    }
}

/// An election message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub sender: u64,
    pub state: ServerState,
    pub vote: Vote,
}

impl Notification {
    /// The bytes' form: ZooKeeper 3.8's notification, carrying our committed configuration
    /// as text. An observer's "no vote" (leader `u64::MAX`) is Long.MIN_VALUE on the wire.
    pub fn to_wire(&self, config: Vec<u8>) -> crate::wire::Notification {
        let leader = if self.vote.leader == u64::MAX {
            i64::MIN
        } else {
            self.vote.leader as i64
        };
        crate::wire::Notification::new(
            self.state,
            leader,
            self.vote.zxid,
            self.vote.election_epoch,
            self.vote.peer_epoch,
            config,
        )
    }

    /// A notification received on the election connection of server `sender`.
    pub fn from_wire(sender: u64, n: &crate::wire::Notification) -> Notification {
        Notification {
            sender,
            state: n.state,
            vote: Vote {
                leader: if n.leader < 0 {
                    u64::MAX
                } else {
                    n.leader as u64
                },
                zxid: n.zxid,
                election_epoch: n.election_epoch,
                peer_epoch: n.peer_epoch,
            },
        }
    }
}

/// What the runtime must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send our current vote and state to this server.
    Send { to: u64, notification: Notification },
    /// Call [`Election::on_timer`] at this time (replaces any earlier timer).
    SetTimer { at_ms: u64 },
    /// The election is over: lead, follow or observe `vote.leader`.
    Decided { state: ServerState, vote: Vote },
}

/// Which votes order ahead: higher peer epoch, then higher zxid, then higher server id.
/// Only a voter of the committed configuration can be a candidate (ZooKeeper's
/// totalOrderPredicate asks the same of its committed verifier). Every server agrees on
/// that configuration (a newer committed one spreads through notifications), while a
/// proposed one is known only to the servers that logged it: asking the proposed one too
/// splits the votes between servers that know it and servers that do not (reconfig seed 28).
/// A committed reconfig was acknowledged by a quorum of the committed configuration, so one
/// of its voters holds it and wins on its zxid.
pub fn total_order(new: &Vote, current: &Vote, config: &QuorumConfig) -> bool {
    if !config.is_voter(new.leader) {
        return false;
    }
    (new.peer_epoch, new.zxid, new.leader) > (current.peer_epoch, current.zxid, current.leader)
}

#[derive(Debug, Clone)]
pub struct Election {
    my_id: u64,
    /// The configurations in force (the committed one, and a proposed one during a reconfig):
    /// a decision needs a quorum of each.
    configs: Vec<QuorumConfig>,
    /// Our own candidacy: last logged zxid and current epoch.
    my_zxid: i64,
    my_epoch: i64,
    logical_clock: i64,
    proposal: Vote,
    state: ServerState,
    /// Votes of looking servers in the current round.
    received: BTreeMap<u64, Vote>,
    /// Votes of servers that are following or leading.
    established: BTreeMap<u64, (ServerState, Vote)>,
    /// Set once a quorum agrees: decide at this time unless a better vote arrives.
    finalize_at: Option<u64>,
    /// Resend interval, doubling while nothing arrives.
    interval_ms: u64,
    resend_at: u64,
    /// Our configuration is an initial one (no version): do not decide before hearing from
    /// every voter, or until the bootstrap grace has passed.
    bootstrap_guard: bool,
    /// Servers heard from since this round started.
    heard: BTreeSet<u64>,
    started_ms: u64,
}

impl Election {
    pub fn new(my_id: u64, configs: Vec<QuorumConfig>) -> Self {
        assert!(!configs.is_empty(), "an election needs a configuration");
        Election {
            my_id,
            configs,
            my_zxid: 0,
            my_epoch: 0,
            logical_clock: 0,
            proposal: Vote {
                leader: my_id,
                zxid: 0,
                election_epoch: 0,
                peer_epoch: 0,
            },
            state: ServerState::Looking,
            received: BTreeMap::new(),
            established: BTreeMap::new(),
            finalize_at: None,
            interval_ms: FINALIZE_WAIT_MS,
            resend_at: 0,
            bootstrap_guard: false,
            heard: BTreeSet::new(),
            started_ms: 0,
        }
    }

    /// zkrs's guard against the split brain the reconfiguration manual warns of: joiners
    /// started with initial configurations that list several of them as participants could
    /// elect one of themselves before hearing of the running ensemble. A server whose
    /// configuration is initial (unversioned) therefore decides only once it has heard from
    /// every voter it lists — a running server's reply carries its committed, versioned
    /// configuration, which the peer adopts instead of electing — or once
    /// [`BOOTSTRAP_GRACE_MS`] has passed without that (a new ensemble with a server down).
    pub fn set_bootstrap_guard(&mut self, on: bool) {
        self.bootstrap_guard = on;
    }

    /// Whether the bootstrap guard still holds a decision back at `now_ms`.
    fn guard_holds(&self, now_ms: u64) -> bool {
        self.bootstrap_guard
            && now_ms < self.started_ms + BOOTSTRAP_GRACE_MS
            && self
                .voters()
                .iter()
                .any(|v| *v != self.my_id && !self.heard.contains(v))
    }

    pub fn state(&self) -> ServerState {
        self.state
    }

    pub fn configs(&self) -> &[QuorumConfig] {
        &self.configs
    }

    pub fn current_vote(&self) -> Vote {
        self.proposal
    }

    pub fn logical_clock(&self) -> i64 {
        self.logical_clock
    }

    fn voters(&self) -> BTreeSet<u64> {
        self.configs
            .iter()
            .flat_map(|c| c.voters().map(|s| s.id))
            .collect()
    }

    fn is_voter(&self, id: u64) -> bool {
        self.configs.iter().any(|c| c.is_voter(id))
    }

    fn committed(&self) -> &QuorumConfig {
        &self.configs[0]
    }

    /// Our own vote when we start looking: ourselves if we can be a candidate (a voter of the
    /// committed configuration, see [`total_order`]), else nobody: an observer only learns
    /// who leads, and a voter of a proposed configuration only backs the best candidate it
    /// hears (backing itself, which nobody else accepts, deadlocked elections that needed its
    /// vote for the proposed configuration's quorum: reconfig seed 68). On the wire
    /// ZooKeeper's non-voters send leader = zxid = peerEpoch = Long.MIN_VALUE; the runtime
    /// maps that leader to u64::MAX.
    fn initial_vote(&self) -> Vote {
        if self.committed().is_voter(self.my_id) {
            Vote {
                leader: self.my_id,
                zxid: self.my_zxid,
                election_epoch: self.logical_clock,
                peer_epoch: self.my_epoch,
            }
        } else {
            Vote {
                leader: u64::MAX,
                zxid: i64::MIN,
                election_epoch: self.logical_clock,
                peer_epoch: i64::MIN,
            }
        }
    }

    fn notification(&self) -> Notification {
        Notification {
            sender: self.my_id,
            state: self.state,
            vote: self.proposal,
        }
    }

    fn broadcast(&self, out: &mut Vec<Action>) {
        for to in self.voters() {
            if to != self.my_id {
                out.push(Action::Send {
                    to,
                    notification: self.notification(),
                });
            }
        }
    }

    fn timer(&self, out: &mut Vec<Action>) {
        let at = match self.finalize_at {
            Some(f) => f.min(self.resend_at),
            None => self.resend_at,
        };
        out.push(Action::SetTimer { at_ms: at });
    }

    /// Starts a new round: we were following or leading and lost the leader (or just booted).
    pub fn start(&mut self, now_ms: u64, last_zxid: i64, current_epoch: i64) -> Vec<Action> {
        self.my_zxid = last_zxid;
        self.my_epoch = current_epoch;
        self.logical_clock += 1;
        self.state = ServerState::Looking;
        self.received.clear();
        self.established.clear();
        self.heard.clear();
        self.started_ms = now_ms;
        self.finalize_at = None;
        self.proposal = self.initial_vote();
        self.interval_ms = FINALIZE_WAIT_MS;
        self.resend_at = now_ms + self.interval_ms;
        if self.is_voter(self.my_id) && self.quorum_of_all(&BTreeSet::from([self.my_id])) {
            // alone a quorum (one participant): nobody else's vote will come to trigger it
            self.finalize_at = Some(now_ms + FINALIZE_WAIT_MS);
        }
        let mut out = Vec::new();
        self.broadcast(&mut out);
        self.timer(&mut out);
        out
    }

    /// Whether `sids`, agreeing on a vote, are a quorum of every configuration in force.
    fn quorum_of_all(&self, sids: &BTreeSet<u64>) -> bool {
        self.configs.iter().all(|c| c.contains_quorum(sids))
    }

    /// Whether `sids`, backing an established leader of `leader_epoch`, let us join it. A
    /// proposed configuration from an epoch before the leader's was abandoned: that leader
    /// was elected without it (a leader elected with the reconfig in its history activates
    /// it at once, and would show its version), so only the committed configuration counts.
    /// Demanding a quorum of the abandoned one too would keep us looking forever (reconfig
    /// seeds 900, 1140, 1569); the leader's sync truncates the abandoned txn from our log.
    fn joinable_by(&self, sids: &BTreeSet<u64>, leader_epoch: i64) -> bool {
        let abandoned = |c: &QuorumConfig| (c.version >> 32) < leader_epoch;
        self.configs
            .iter()
            .enumerate()
            .all(|(i, c)| (i > 0 && abandoned(c)) || c.contains_quorum(sids))
    }

    fn agreeing(votes: &BTreeMap<u64, Vote>, vote: &Vote, looking: bool) -> BTreeSet<u64> {
        votes
            .iter()
            .filter(|(_, v)| v.agrees(vote, looking))
            .map(|(id, _)| *id)
            .collect()
    }

    /// ZooKeeper's checkLeader: a leader other than us must itself say it leads.
    fn leader_confirmed(&self, leader: u64, election_epoch: i64) -> bool {
        if leader == self.my_id {
            self.logical_clock == election_epoch
        } else {
            self.established
                .get(&leader)
                .is_some_and(|(s, _)| *s == ServerState::Leading)
        }
    }

    fn decide(&mut self, vote: Vote, out: &mut Vec<Action>) {
        // an observer observes; a server absent from the configuration (removed, or a joiner
        // not yet added) follows without a vote, as in ZooKeeper
        let observer = self
            .committed()
            .members
            .get(&self.my_id)
            .is_some_and(|s| !s.is_participant());
        self.state = if vote.leader == self.my_id {
            ServerState::Leading
        } else if observer && !self.is_voter(self.my_id) {
            ServerState::Observing
        } else {
            ServerState::Following
        };
        self.proposal = vote;
        self.finalize_at = None;
        self.received.clear();
        out.push(Action::Decided {
            state: self.state,
            vote,
        });
    }

    /// Handles a notification from another server.
    pub fn on_notification(&mut self, now_ms: u64, n: Notification) -> Vec<Action> {
        let mut out = Vec::new();
        if n.sender == self.my_id {
            return out;
        }
        self.heard.insert(n.sender);
        if self.state != ServerState::Looking {
            // established: tell a looker whom we follow (or that we lead)
            if n.state == ServerState::Looking {
                out.push(Action::Send {
                    to: n.sender,
                    notification: self.notification(),
                });
            }
            return out;
        }
        // progress: a message arrived, so the resend back-off starts over
        self.interval_ms = FINALIZE_WAIT_MS;
        if !self.is_voter(n.sender) {
            // an observer (or a stranger) learns our vote but does not count
            out.push(Action::Send {
                to: n.sender,
                notification: self.notification(),
            });
            return out;
        }
        match n.state {
            ServerState::Looking => {
                if !self.is_voter(n.vote.leader) {
                    return out;
                }
                if n.vote.election_epoch > self.logical_clock {
                    self.logical_clock = n.vote.election_epoch;
                    self.received.clear();
                    self.finalize_at = None;
                    let mine = self.initial_vote();
                    self.proposal = if total_order(&n.vote, &mine, self.committed()) {
                        n.vote
                    } else {
                        mine
                    };
                    self.proposal.election_epoch = self.logical_clock;
                    self.broadcast(&mut out);
                } else if n.vote.election_epoch < self.logical_clock {
                    // a lagging looker: bring it to our round
                    out.push(Action::Send {
                        to: n.sender,
                        notification: self.notification(),
                    });
                    return out;
                } else if total_order(&n.vote, &self.proposal, self.committed()) {
                    self.proposal = n.vote;
                    self.finalize_at = None;
                    self.broadcast(&mut out);
                }
                self.received.insert(n.sender, n.vote);
                let mut agreeing = Self::agreeing(&self.received, &self.proposal, true);
                if self.proposal.leader == self.my_id || self.is_voter(self.my_id) {
                    agreeing.insert(self.my_id);
                }
                if self.quorum_of_all(&agreeing) && self.finalize_at.is_none() {
                    self.finalize_at = Some(now_ms + FINALIZE_WAIT_MS);
                }
                // every voter backs our proposal in this round: a voter only ever moves to a
                // better vote, so none is better than this one and the finalize wait (ZooKeeper
                // waits it out) would change nothing; decide now (a whole ensemble restarting
                // elects 200 ms sooner)
                if self.finalize_at.is_some()
                    && self.voters().iter().all(|v| agreeing.contains(v))
                    && !self.guard_holds(now_ms)
                {
                    let vote = self.proposal;
                    self.decide(vote, &mut out);
                    return out;
                }
            }
            ServerState::Following | ServerState::Leading => {
                self.established.insert(n.sender, (n.state, n.vote));
                if n.vote.election_epoch == self.logical_clock {
                    self.received.insert(n.sender, n.vote);
                    let agreeing = Self::agreeing(&self.received, &n.vote, true);
                    if self.quorum_of_all(&agreeing)
                        && self.leader_confirmed(n.vote.leader, n.vote.election_epoch)
                    {
                        self.decide(n.vote, &mut out);
                        return out;
                    }
                }
                // the ensemble is established: join it once a quorum of it backs this leader
                let established: BTreeMap<u64, Vote> = self
                    .established
                    .iter()
                    .map(|(id, (_, v))| (*id, *v))
                    .collect();
                let mut agreeing = Self::agreeing(&established, &n.vote, false);
                if n.vote.leader == self.my_id {
                    agreeing.insert(self.my_id);
                }
                if self.joinable_by(&agreeing, n.vote.peer_epoch)
                    && self.leader_confirmed(n.vote.leader, n.vote.election_epoch)
                {
                    self.logical_clock = n.vote.election_epoch;
                    self.decide(n.vote, &mut out);
                    return out;
                }
            }
            ServerState::Observing => {}
        }
        self.timer(&mut out);
        out
    }

    /// Handles the timer: decide after the finalize wait, or resend with back-off.
    pub fn on_timer(&mut self, now_ms: u64) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state != ServerState::Looking {
            return out;
        }
        if let Some(at) = self.finalize_at {
            if now_ms >= at && self.guard_holds(now_ms) {
                // decide when the last voter is heard from (checked again on each timer), or
                // at the end of the grace
                self.finalize_at =
                    Some((now_ms + FINALIZE_WAIT_MS).min(self.started_ms + BOOTSTRAP_GRACE_MS));
            } else if now_ms >= at {
                let vote = self.proposal;
                self.decide(vote, &mut out);
                return out;
            }
        }
        if now_ms >= self.resend_at {
            self.broadcast(&mut out);
            self.interval_ms = (self.interval_ms * 2).min(MAX_NOTIFICATION_INTERVAL_MS);
            self.resend_at = now_ms + self.interval_ms;
        }
        self.timer(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::parse_properties;
    use std::collections::VecDeque;

    fn config(n: u64, observers: &[u64]) -> QuorumConfig {
        let mut text = String::new();
        for id in 1..=n {
            let role = if observers.contains(&id) {
                ":observer"
            } else {
                ""
            };
            text.push_str(&format!(
                "server.{id}=127.0.0.1:{}:{}{role}\n",
                2000 + id,
                3000 + id
            ));
        }
        QuorumConfig::from_properties(&parse_properties(&text, "t").unwrap()).unwrap()
    }

    /// A tiny deterministic network: messages delivered in a seeded random order, with some
    /// servers down or partitioned.
    struct Net {
        elections: BTreeMap<u64, Election>,
        queue: VecDeque<(u64, Notification)>,
        timers: BTreeMap<u64, u64>,
        decided: BTreeMap<u64, (ServerState, Vote)>,
        decided_at: BTreeMap<u64, u64>,
        down: BTreeSet<u64>,
        now: u64,
        rng: u64,
    }

    impl Net {
        fn new(cfg: &QuorumConfig, seed: u64) -> Net {
            let elections = cfg
                .members
                .keys()
                .map(|&id| (id, Election::new(id, vec![cfg.clone()])))
                .collect();
            Net {
                elections,
                queue: VecDeque::new(),
                timers: BTreeMap::new(),
                decided: BTreeMap::new(),
                decided_at: BTreeMap::new(),
                down: BTreeSet::new(),
                now: 0,
                rng: seed.wrapping_mul(6364136223846793005).wrapping_add(1),
            }
        }

        fn rand(&mut self, n: usize) -> usize {
            self.rng = self
                .rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.rng >> 33) as usize) % n.max(1)
        }

        fn run_actions(&mut self, id: u64, actions: Vec<Action>) {
            for a in actions {
                match a {
                    Action::Send { to, notification } => self.queue.push_back((to, notification)),
                    Action::SetTimer { at_ms } => {
                        self.timers.insert(id, at_ms);
                    }
                    Action::Decided { state, vote } => {
                        self.decided.insert(id, (state, vote));
                        self.decided_at.insert(id, self.now);
                        self.timers.remove(&id);
                    }
                }
            }
        }

        fn start(&mut self, id: u64, zxid: i64, epoch: i64) {
            let actions = self
                .elections
                .get_mut(&id)
                .unwrap()
                .start(self.now, zxid, epoch);
            self.run_actions(id, actions);
        }

        /// Delivers messages in random order and fires timers until nothing is left or the
        /// time limit passes.
        fn run(&mut self, until_ms: u64) {
            while self.now < until_ms {
                if !self.queue.is_empty() && self.rand(4) != 0 {
                    let i = self.rand(self.queue.len());
                    let (to, n) = self.queue.remove(i).unwrap();
                    if self.down.contains(&to) || self.down.contains(&n.sender) {
                        continue;
                    }
                    let actions = self
                        .elections
                        .get_mut(&to)
                        .unwrap()
                        .on_notification(self.now, n);
                    self.run_actions(to, actions);
                    continue;
                }
                let next = self
                    .timers
                    .iter()
                    .filter(|(id, _)| !self.down.contains(id))
                    .map(|(_, t)| *t)
                    .min();
                match next {
                    Some(t) if self.queue.is_empty() || t <= self.now => {
                        self.now = self.now.max(t);
                        let due: Vec<u64> = self
                            .timers
                            .iter()
                            .filter(|(_, at)| **at <= self.now)
                            .map(|(id, _)| *id)
                            .collect();
                        for id in due {
                            if self.down.contains(&id) {
                                continue;
                            }
                            self.timers.remove(&id);
                            let actions = self.elections.get_mut(&id).unwrap().on_timer(self.now);
                            self.run_actions(id, actions);
                        }
                    }
                    _ if !self.queue.is_empty() => self.now += 1,
                    _ => return,
                }
            }
        }
    }

    #[test]
    fn everyone_elects_the_server_with_the_most_recent_history() {
        for seed in 0..200 {
            let cfg = config(5, &[]);
            let mut net = Net::new(&cfg, seed);
            let zxids = [
                (1, 0x100000005),
                (2, 0x100000009),
                (3, 0x100000009),
                (4, 0x100000002),
                (5, 0x0),
            ];
            for (id, z) in zxids {
                net.start(id, z, 1);
            }
            net.run(120_000);
            assert_eq!(net.decided.len(), 5, "seed {seed}: {:?}", net.decided);
            for (id, (state, vote)) in &net.decided {
                assert_eq!(vote.leader, 3, "seed {seed}: server {id} backs {vote:?}");
                let expected = if *id == 3 {
                    ServerState::Leading
                } else {
                    ServerState::Following
                };
                assert_eq!(*state, expected, "seed {seed}");
            }
        }
    }

    #[test]
    fn a_majority_elects_without_the_missing_servers_and_a_minority_never_does() {
        for seed in 0..100 {
            let cfg = config(5, &[]);
            let mut net = Net::new(&cfg, seed);
            net.down.extend([4, 5]);
            for id in 1..=3 {
                net.start(id, 0x100000001, 1);
            }
            net.run(120_000);
            let leaders: BTreeSet<u64> = net.decided.values().map(|(_, v)| v.leader).collect();
            assert_eq!(leaders, BTreeSet::from([3]), "seed {seed}");
            assert_eq!(net.decided.len(), 3);

            let mut minority = Net::new(&cfg, seed);
            minority.down.extend([3, 4, 5]);
            minority.start(1, 0, 1);
            minority.start(2, 0, 1);
            minority.run(300_000);
            assert!(
                minority.decided.is_empty(),
                "seed {seed}: two of five elected {:?}",
                minority.decided
            );
        }
    }

    #[test]
    fn a_restarted_server_joins_the_established_leader() {
        let cfg = config(3, &[]);
        let mut net = Net::new(&cfg, 7);
        for id in 1..=3 {
            net.start(id, 0x200000010, 2);
        }
        net.run(60_000);
        assert_eq!(net.decided.len(), 3);
        // server 1 restarts with an older history; 2 and 3 stay established
        net.decided.remove(&1);
        net.start(1, 0x100000001, 1);
        net.run(120_000);
        assert_eq!(net.decided[&1].1.leader, 3);
        assert_eq!(net.decided[&1].0, ServerState::Following);
    }

    #[test]
    fn observers_learn_the_leader_but_are_never_elected() {
        let cfg = config(4, &[4]);
        let mut net = Net::new(&cfg, 3);
        for id in 1..=4 {
            // the observer has the newest history, yet cannot lead
            net.start(id, if id == 4 { 0x100000099 } else { 0x100000001 }, 1);
        }
        net.run(120_000);
        assert_eq!(net.decided.len(), 4, "{:?}", net.decided);
        assert_eq!(net.decided[&4].0, ServerState::Observing);
        assert!(net.decided.values().all(|(_, v)| v.leader == 3));
    }

    #[test]
    fn higher_epoch_wins_over_higher_zxid() {
        let cfg = config(3, &[]);
        let a = Vote {
            leader: 1,
            zxid: 0x100000050,
            election_epoch: 1,
            peer_epoch: 1,
        };
        let b = Vote {
            leader: 2,
            zxid: 0x200000001,
            election_epoch: 1,
            peer_epoch: 2,
        };
        assert!(total_order(&b, &a, &cfg));
        assert!(!total_order(&a, &b, &cfg));
        let c = Vote { leader: 3, ..a };
        assert!(total_order(&c, &a, &cfg));
    }

    /// Two joiners whose initial configurations list both of them and the ensemble's leader
    /// as participants: with the guard they do not elect each other while the leader is
    /// silent (in the runtime, its reply would carry the committed configuration they adopt)
    /// until the bootstrap grace is over; without it they would within the finalize wait.
    #[test]
    fn bootstrap_guard_holds_joiners_back_until_every_voter_is_heard_or_the_grace_ends() {
        let text = "server.1=127.0.0.1:2001:3001\nserver.4=127.0.0.1:2004:3004\nserver.5=127.0.0.1:2005:3005\n";
        let cfg = QuorumConfig::from_properties(&parse_properties(text, "t").unwrap()).unwrap();
        for seed in 0..50 {
            for guard in [false, true] {
                let mut net = Net::new(&cfg, seed);
                net.down.insert(1);
                for id in [4, 5] {
                    net.elections
                        .get_mut(&id)
                        .unwrap()
                        .set_bootstrap_guard(guard);
                    net.start(id, 0, 0);
                }
                net.run(120_000);
                assert_eq!(
                    net.decided.len(),
                    2,
                    "seed {seed} guard {guard}: {:?}",
                    net.decided
                );
                let first = *net.decided_at.values().min().unwrap();
                if guard {
                    assert!(
                        first >= BOOTSTRAP_GRACE_MS,
                        "seed {seed}: decided at {first} ms, inside the grace"
                    );
                } else {
                    assert!(
                        first < BOOTSTRAP_GRACE_MS,
                        "seed {seed}: decided at {first} ms"
                    );
                }
            }
        }
    }

    /// A new ensemble with every server up is not slowed down by the guard: everyone hears
    /// everyone at once.
    #[test]
    fn bootstrap_guard_costs_nothing_when_every_voter_answers() {
        for seed in 0..50 {
            let cfg = config(3, &[]);
            let mut net = Net::new(&cfg, seed);
            for id in 1..=3 {
                net.elections
                    .get_mut(&id)
                    .unwrap()
                    .set_bootstrap_guard(true);
                net.start(id, 0, 0);
            }
            net.run(120_000);
            assert_eq!(net.decided.len(), 3, "seed {seed}: {:?}", net.decided);
            assert!(
                net.decided.values().all(|(_, v)| v.leader == 3),
                "seed {seed}: {:?}",
                net.decided
            );
            let last = *net.decided_at.values().max().unwrap();
            assert!(last < 1_000, "seed {seed}: last decision at {last} ms");
        }
    }
}
