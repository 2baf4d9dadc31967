//! Replicated mode: the node drives a `zab::peer::Peer` and executes its outputs. The leader
//! prepares every write (its clients' and those its learners forward) and proposes it; every
//! server applies txns when Zab commits them; learners forward writes and syncs, create and
//! revalidate sessions through the leader, and serve reads from their own tree.

use crate::io::{Action, ConnId, LinkId, PeerEvent};
use crate::node::{
    begin_frame, error_txn, finish_frame, InFlight, Node, Origin, Queued, RequestMeta,
};
use crate::session::session_password;
use bytes::Bytes;
use config::QuorumConfig;
use jute::request::Request;
use jute::{op, ConnectRequest, ErrorCode, Id};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use tracing::{error, info, warn};
use tree::{DataTree, Prepared, Txn};
use zab::election::ServerState;
use zab::peer::{Input, Output, Peer};
use zab::wire::{LearnerRequest, Packet, ProposalData, SessionTouch, SnapshotStream};

/// What a learner that connected before we lead may send meanwhile (it sends FOLLOWERINFO and
/// waits for LEADERINFO): more is not a learner, and is not held.
const MAX_PARKED_PACKETS: usize = 16;
/// Learners held while we are still looking: an ensemble's worth, not a stranger's flood.
const MAX_PARKED_LEARNERS: usize = 256;

/// A learner's sync forwarded to the leader, answered when the leader's SYNC comes back.
#[derive(Debug)]
struct PendingSync {
    session_id: i64,
    conn: ConnId,
    xid: i32,
    path: String,
}

/// Leader: a sync waiting for what was proposed before it to commit and for a quorum to
/// answer a PING sent after it (its read barrier), then answered.
#[derive(Debug)]
struct LeaderSync {
    to: SyncFrom,
    /// The last zxid proposed when the sync arrived (0: none in flight).
    zxid: i64,
    barrier: u64,
}

#[derive(Debug)]
enum SyncFrom {
    /// Forwarded by this learner: it gets a SYNC packet and answers its client.
    Learner(u64),
    /// A client of ours.
    Client(PendingSync),
}

/// What a server of an ensemble keeps beside the tree: its Zab peer, its quorum connections
/// and the requests waiting for the leader.
pub struct Replica {
    peer: Peer,
    /// The quorum connection in use with each peer (the driver holds the sockets).
    links: BTreeMap<u64, LinkId>,
    state: ServerState,
    serving: bool,
    /// The snapshot that arrived ahead of its SNAP packet.
    pending_snapshot: Option<SnapshotStream>,
    /// Learner: sessions active since the last PING reply.
    touched: BTreeMap<i64, i32>,
    /// Learner: new sessions waiting for their createSession to commit.
    pending_connects: BTreeMap<i64, (ConnId, i32)>,
    /// Learner: reconnects waiting for the leader's REVALIDATE answer.
    pending_revalidations: BTreeMap<i64, (ConnId, u32)>,
    pending_syncs: VecDeque<PendingSync>,
    /// Leader: syncs answered once their zxid has committed and their barrier passed.
    leader_syncs: Vec<LeaderSync>,
    /// Leader: the last read barrier passed.
    barrier_passed: u64,
    /// Inputs produced while executing outputs (a durability report without a disk).
    deferred: Vec<Input>,
    /// Learners that connected while we were still looking (they decided a moment before
    /// us): kept with what they sent until we lead — ZooKeeper's learners retry until the
    /// leader's port opens; closing them would send them back to the election.
    parked: BTreeMap<u64, (LinkId, Vec<Packet>)>,
    /// Truncations and snapshot loads of our log so far: a durability report counted
    /// before the latest one is stale (it may name a zxid cut and logged again since).
    log_resets: u64,
}

impl Replica {
    pub fn new(peer: Peer) -> Self {
        Replica {
            peer,
            links: BTreeMap::new(),
            state: ServerState::Looking,
            serving: false,
            pending_snapshot: None,
            touched: BTreeMap::new(),
            pending_connects: BTreeMap::new(),
            pending_revalidations: BTreeMap::new(),
            pending_syncs: VecDeque::new(),
            leader_syncs: Vec::new(),
            barrier_passed: 0,
            deferred: Vec::new(),
            parked: BTreeMap::new(),
            log_resets: 0,
        }
    }

    /// None unless we lead an established epoch.
    pub fn next_zxid(&self) -> Option<i64> {
        self.peer.next_zxid()
    }

    pub fn state(&self) -> ServerState {
        self.state
    }

    pub fn is_serving(&self) -> bool {
        self.serving
    }

    pub fn my_id(&self) -> u64 {
        self.peer.my_id()
    }

    /// The Zab peer, for read-only questions (mntr, the simulator's checks).
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Leader: learners connected and synced, and syncs waiting (mntr's leader lines).
    pub fn leader_gauges(&self) -> Option<(zab::leader::LearnerCounts, usize)> {
        self.peer
            .learner_counts()
            .map(|c| (c, self.leader_syncs.len()))
    }

    /// The configuration in force (what /zookeeper/config shows).
    pub fn active_config(&self) -> &Arc<QuorumConfig> {
        self.peer.config()
    }

    pub fn leader(&self) -> Option<u64> {
        self.peer.leader()
    }

    /// Learner: remember a session's activity for the next PING reply.
    pub(crate) fn note_touch(
        &mut self,
        session_id: i64,
        sessions: &crate::session::SessionTracker,
    ) {
        if self.state != ServerState::Leading {
            if let Some(s) = sessions.get(session_id) {
                self.touched.insert(session_id, s.timeout_ms as i32);
            }
        }
    }

    fn send_to(&mut self, actions: &mut Vec<Action>, to: u64, packet: Packet) {
        // a link that failed is reported by the driver (PeerEvent::LinkDown)
        if let Some(&link) = self.links.get(&to) {
            actions.push(Action::SendPacket { link, packet });
        }
    }

    fn send_to_leader(&mut self, actions: &mut Vec<Action>, packet: Packet) -> bool {
        match self.peer.leader() {
            Some(l) if l != self.peer.my_id() && self.links.contains_key(&l) => {
                self.send_to(actions, l, packet);
                true
            }
            _ => false,
        }
    }

    /// Forgets the connection with `sid` and has the driver close it.
    fn drop_link(&mut self, actions: &mut Vec<Action>, sid: u64) -> bool {
        match self.links.remove(&sid) {
            Some(link) => {
                actions.push(Action::CloseLink { link });
                true
            }
            None => false,
        }
    }

    /// Closes every quorum connection (in use and parked).
    fn drop_all_links(&mut self, actions: &mut Vec<Action>) {
        for (_, link) in std::mem::take(&mut self.links) {
            actions.push(Action::CloseLink { link });
        }
        self.pending_snapshot = None;
    }
}

/// The configuration a notification carried, when it parses and is newer than `version`.
fn newer_config(text: &[u8], version: i64) -> Option<QuorumConfig> {
    let text = std::str::from_utf8(text).ok()?;
    let config = zab::reconfig::parse_config_text(text).ok()?;
    (config.version > version).then_some(config)
}

fn prepared_from(data: &ProposalData) -> Result<Prepared, String> {
    let txn = Txn::decode(data.header.txn_type, &data.txn)
        .map_err(|e| format!("txn 0x{:x} does not decode: {e}", data.header.zxid))?;
    let error = match &txn {
        Txn::Error(e) => ErrorCode::from_code(e.err),
        _ => None,
    };
    Ok(Prepared {
        header: data.header.clone(),
        txn,
        error,
    })
}

/// Whether a proposal's txn bytes are what ZooKeeper logs for it (it logs the record it
/// decoded, serialized again: the same bytes, jute keeping nulls as they came). Not so for a
/// pre-3.3 create txn without parentCVersion, which is logged with it; and a multi's inner
/// records are checked by decoding them before anything is logged.
fn logs_as_sent(data: &ProposalData) -> bool {
    match data.header.txn_type {
        op::MULTI => false,
        op::CREATE | op::CREATE2 => {
            let mut r = jute::Reader::new(&data.txn);
            <jute::CreateTxn as jute::Jute>::skip(&mut r).is_ok() && r.finish().is_ok()
        }
        _ => true,
    }
}

fn proposal_data(p: &Prepared) -> ProposalData {
    ProposalData {
        header: p.header.clone(),
        txn: p.txn.body().into(),
        digest: None,
    }
}

impl Node {
    /// Starts replicated mode with this Zab peer.
    pub fn start_replica(&mut self, replica: Replica) {
        let mut replica = Box::new(replica);
        let outputs = replica.peer.start(self.zab_now());
        // /zookeeper/config holds the configuration we start with (ZooKeeper sets it at start)
        let config = replica.peer.config().clone();
        self.tree
            .set_config_node(&config.to_config_text(), config.version);
        self.zab = Some(replica);
        self.run_outputs(outputs);
    }

    /// Zab's clock: the monotonic clock (never negative).
    fn zab_now(&self) -> u64 {
        self.now.mono_ms.max(0) as u64
    }

    pub(crate) fn is_leading(&self) -> bool {
        self.zab
            .as_ref()
            .is_some_and(|z| z.state == ServerState::Leading && z.serving)
    }

    fn zab_serving(&self) -> bool {
        self.zab.as_ref().is_some_and(|z| z.serving)
    }

    /// "leader", "follower", "observer", "standalone" (srvr, mntr), or None while looking.
    pub fn mode(&self) -> Option<&'static str> {
        match &self.zab {
            None => Some("standalone"),
            Some(z) if !z.serving => None,
            Some(z) => Some(match z.state {
                ServerState::Leading => "leader",
                ServerState::Following => "follower",
                ServerState::Observing => "observer",
                ServerState::Looking => return None,
            }),
        }
    }

    fn step(&mut self, input: Input) {
        let now = self.zab_now();
        let Some(z) = self.zab.as_mut() else {
            return;
        };
        let outputs = z.peer.step(now, input);
        self.run_outputs(outputs);
    }

    pub(crate) fn zab_tick(&mut self) {
        self.step(Input::Tick);
    }

    pub(crate) fn zab_durable(&mut self, zxid: i64, resets: u64) {
        if self.zab.as_ref().is_some_and(|z| z.log_resets == resets) {
            self.step(Input::Durable { zxid });
        }
    }

    pub(crate) fn on_peer_event(&mut self, ev: PeerEvent) {
        let actions = &mut self.actions;
        let Some(z) = self.zab.as_mut() else {
            // standalone: nothing of a quorum connection is kept
            match ev {
                PeerEvent::LearnerUp { link, .. } | PeerEvent::LeaderUp { link, .. } => {
                    actions.push(Action::CloseLink { link })
                }
                _ => {}
            }
            return;
        };
        match ev {
            PeerEvent::Notification(n, config_text) => {
                if let Some(config) = newer_config(&config_text, z.peer.config().version) {
                    self.step(Input::ConfigSeen(config));
                }
                self.step(Input::Notification(n))
            }
            PeerEvent::LearnerUp { sid, link } => {
                match z.state {
                    ServerState::Looking => {
                        if z.parked.len() < MAX_PARKED_LEARNERS || z.parked.contains_key(&sid) {
                            if let Some((old, _)) = z.parked.insert(sid, (link, Vec::new())) {
                                actions.push(Action::CloseLink { link: old });
                            }
                        } else {
                            actions.push(Action::CloseLink { link });
                        }
                        return;
                    }
                    ServerState::Leading => {}
                    _ => {
                        actions.push(Action::CloseLink { link });
                        return;
                    }
                }
                if let Some(old) = z.links.insert(sid, link) {
                    actions.push(Action::CloseLink { link: old });
                    self.step(Input::Disconnected { peer: sid });
                }
            }
            PeerEvent::LeaderUp { sid, link } => {
                let wanted = z.peer.leader() == Some(sid)
                    && z.state != ServerState::Leading
                    && !z.links.contains_key(&sid);
                if wanted {
                    z.links.insert(sid, link);
                    self.step(Input::ConnectedToLeader);
                } else {
                    actions.push(Action::CloseLink { link });
                }
            }
            PeerEvent::Packet { sid, link, packet } => {
                if z.links.get(&sid) == Some(&link) {
                    self.step(Input::Packet { from: sid, packet });
                } else if let Some((parked, packets)) = z.parked.get_mut(&sid) {
                    if *parked == link && packets.len() < MAX_PARKED_PACKETS {
                        packets.push(packet);
                    } else if *parked == link {
                        warn!("server {sid} sent too much before we lead; closing its connection");
                        z.parked.remove(&sid);
                        actions.push(Action::CloseLink { link });
                    }
                }
            }
            PeerEvent::Snapshot { sid, link, stream } => {
                if z.links.get(&sid) == Some(&link) {
                    z.pending_snapshot = Some(stream);
                }
            }
            PeerEvent::LinkDown { sid, link } => {
                if z.parked.get(&sid).is_some_and(|(l, _)| *l == link) {
                    z.parked.remove(&sid);
                    actions.push(Action::CloseLink { link });
                }
                if z.links.get(&sid) == Some(&link) {
                    z.links.remove(&sid);
                    actions.push(Action::CloseLink { link });
                    self.step(Input::Disconnected { peer: sid });
                }
            }
        }
    }

    fn run_outputs(&mut self, outputs: Vec<Output>) {
        let mut committed_any = false;
        let mut answer_syncs = false;
        for o in outputs {
            if self.failed {
                return;
            }
            let actions = &mut self.actions;
            let Some(z) = self.zab.as_mut() else {
                return;
            };
            match o {
                Output::SendNotification { to, notification } => {
                    actions.push(Action::SendNotification { to, notification })
                }
                Output::SendPacket { to, packet } => z.send_to(actions, to, packet),
                Output::ConnectToLeader { leader } => self.connect_to_leader(leader),
                Output::DropQuorumConnections => z.drop_all_links(actions),
                Output::DropLearner { peer } => {
                    if z.drop_link(actions, peer) {
                        info!("closing the quorum connection of server {peer}");
                    }
                }
                Output::SendSnapshot { to } => self.send_snapshot(to),
                Output::LoadSnapshot { zxid } => self.load_snapshot(zxid),
                Output::Truncate { zxid } => self.truncate(zxid),
                Output::Persist { zxid, data } => self.persist(zxid, &data),
                Output::Commit { txns, .. } => {
                    self.commit(txns);
                    committed_any = true;
                }
                Output::StoreEpochs(epochs) => actions.push(Action::StoreEpochs(epochs)),
                Output::Serving(on) => self.set_serving(on),
                Output::ConfigProposed(config) => {
                    info!("configuration 0x{:x} proposed", config.version);
                    actions.push(Action::ConfigProposed(config));
                }
                Output::ConfigActivated(config) => self.activate_config(config),
                Output::Role(state) => {
                    if z.state != state {
                        info!("server {} is now {state:?}", z.peer.my_id());
                    }
                    z.state = state;
                    if state == ServerState::Leading {
                        // learners that were early: as if they connected now
                        for (sid, (link, packets)) in std::mem::take(&mut z.parked) {
                            if let Some(old) = z.links.insert(sid, link) {
                                actions.push(Action::CloseLink { link: old });
                            }
                            z.deferred.extend(
                                packets
                                    .into_iter()
                                    .map(|packet| Input::Packet { from: sid, packet }),
                            );
                        }
                    } else if state != ServerState::Looking {
                        for (_, (link, _)) in std::mem::take(&mut z.parked) {
                            actions.push(Action::CloseLink { link });
                        }
                    }
                }
                Output::FromLearner { from, packet } => self.on_learner_message(from, packet),
                Output::FromLeader { packet } => self.on_leader_message(packet),
                Output::ReplyPing { to, zxid } => {
                    let touches = std::mem::take(&mut z.touched)
                        .into_iter()
                        .map(|(session_id, timeout)| SessionTouch {
                            session_id,
                            timeout,
                        })
                        .collect();
                    z.send_to(actions, to, Packet::PingReply { zxid, touches });
                }
                Output::ReadBarrierPassed(id) => {
                    z.barrier_passed = z.barrier_passed.max(id);
                    answer_syncs = true;
                }
                Output::TouchSessions(touches) => {
                    let now = self.now.mono_ms;
                    for t in touches {
                        self.sessions.touch(t.session_id, now);
                    }
                }
            }
        }
        if committed_any || answer_syncs {
            self.answer_leader_syncs();
        }
        if committed_any {
            self.maybe_snapshot();
        }
        let deferred = self
            .zab
            .as_mut()
            .map(|z| std::mem::take(&mut z.deferred))
            .unwrap_or_default();
        for input in deferred {
            self.step(input);
        }
    }

    /// A configuration became active: /zookeeper/config, our listeners, the election's
    /// addresses and the dynamic file follow it.
    fn activate_config(&mut self, config: Arc<QuorumConfig>) {
        let text = config.to_config_text();
        info!("configuration 0x{:x} activated:\n{text}", config.version);
        self.tree.set_config_node(&text, config.version);
        let Some(z) = self.zab.as_ref() else {
            return;
        };
        let my_id = z.peer.my_id();
        if let Some(me) = config.members.get(&my_id) {
            self.actions.push(Action::MovePeerListeners(me.clone()));
            if let Some(address) = me.client.clone() {
                self.client_port = Some(address.port);
                self.actions.push(Action::MoveClientListener(address));
            }
        }
        self.actions.push(Action::ConfigActivated { my_id, config });
    }

    fn connect_to_leader(&mut self, leader: u64) {
        let Some(z) = self.zab.as_ref() else {
            return;
        };
        let spec = z
            .peer
            .last_seen_config()
            .members
            .get(&leader)
            .or_else(|| z.peer.config().members.get(&leader));
        let Some(spec) = spec else {
            return;
        };
        let address = format!("{}:{}", spec.quorum.host, spec.quorum.port);
        let give_up_ms = self.cfg.tick_time as u64 * self.cfg.init_limit as u64;
        self.actions.push(Action::ConnectToLeader {
            sid: leader,
            address,
            give_up_ms,
        });
    }

    fn set_serving(&mut self, on: bool) {
        let Some(z) = self.zab.as_mut() else {
            return;
        };
        if z.serving == on {
            return;
        }
        z.serving = on;
        self.sessions.reopen_closing();
        if on {
            let epoch = z.peer.current_epoch();
            info!(
                "serving clients as {} of epoch {epoch}",
                self.mode().unwrap_or("?"),
            );
            if self.is_leading() {
                // owners are learned again from where the clients are now
                self.sessions.forget_owners();
                // the sessions the leader inherits get a full timeout from now
                let now = self.now.mono_ms;
                let ids: Vec<i64> = self.sessions.iter().map(|s| s.id).collect();
                for id in ids {
                    self.sessions.touch(id, now);
                }
            }
            return;
        }
        info!("not serving clients: no quorum");
        z.touched.clear();
        z.pending_connects.clear();
        z.pending_revalidations.clear();
        z.pending_syncs.clear();
        z.leader_syncs.clear();
        // what was in flight is decided by the next leader; clients retry elsewhere
        self.in_flight.clear();
        self.session_queues.clear();
        self.prep = tree::Preparer::new();
        let mut conns: Vec<ConnId> = self.conns.keys().copied().collect();
        conns.sort_unstable();
        for c in conns {
            self.close_conn(c);
        }
    }

    /// Leader: Prepare gave a txn; propose it (the zxid was Zab's next).
    pub(crate) fn propose(&mut self, prepared: Arc<Prepared>) {
        let Some(z) = self.zab.as_mut() else {
            return;
        };
        let data = proposal_data(&prepared);
        match z.peer.propose(data) {
            Some((zxid, outputs)) => {
                debug_assert_eq!(zxid, prepared.header.zxid, "Prepare used Zab's next zxid");
                self.run_outputs(outputs);
            }
            None => {
                warn!("proposal 0x{:x} refused: not leading", prepared.header.zxid);
                self.in_flight.pop_back();
            }
        }
    }

    fn persist(&mut self, zxid: i64, data: &ProposalData) {
        if !self.durable {
            // no disk (tests): durable at once, reported after the outputs at hand
            if let Some(z) = self.zab.as_mut() {
                z.deferred.push(Input::Durable { zxid });
            }
            return;
        }
        if logs_as_sent(data) {
            // the proposal's bytes as they are: no decode, no re-encode, nothing decoded
            // here to be freed on the log writer's thread
            self.actions.push(Action::PersistRaw {
                header: data.header.clone(),
                body: data.txn.clone(),
            });
            return;
        }
        let prepared = match self.in_flight.back() {
            Some(f) if f.prepared.header.zxid == zxid => f.prepared.clone(),
            _ => match prepared_from(data) {
                Ok(p) => Arc::new(p),
                Err(e) => return self.fatal(e),
            },
        };
        self.actions.push(Action::Persist(prepared));
    }

    /// Applies committed txns in order, answering the clients that wait for them here.
    fn commit(&mut self, txns: Vec<(i64, ProposalData)>) {
        for (zxid, data) in txns {
            if zxid <= self.tree.last_processed_zxid {
                continue;
            }
            // a txn prepared here: its origin is known
            while self
                .in_flight
                .front()
                .is_some_and(|f| f.prepared.header.zxid < zxid)
            {
                self.in_flight.pop_front();
            }
            if self
                .in_flight
                .front()
                .is_some_and(|f| f.prepared.header.zxid == zxid)
            {
                if let Some(f) = self.in_flight.pop_front() {
                    self.apply_and_answer(f);
                }
                continue;
            }
            let prepared = match prepared_from(&data) {
                Ok(p) => Arc::new(p),
                Err(e) => return self.fatal(e),
            };
            let origin = self.learner_origin(&prepared);
            self.apply_and_answer(InFlight { prepared, origin });
        }
    }

    /// Who waits here for a txn the leader prepared: a new session's connect, or the session's
    /// oldest forwarded request.
    fn learner_origin(&mut self, prepared: &Prepared) -> Origin {
        let session_id = prepared.header.client_id;
        if let (Txn::CreateSession(_), Some(z)) = (&prepared.txn, self.zab.as_mut()) {
            if let Some((conn, timeout)) = z.pending_connects.remove(&session_id) {
                return Origin::Connect { conn, timeout };
            }
        }
        // the session's forwarded request with this cxid, wherever it waits (a sync forwarded
        // before it may still wait for the leader's answer)
        let forwarded = self.session_queues.get(&session_id).and_then(|q| {
            q.iter().find_map(|entry| match entry {
                Queued::Forwarded(meta)
                    if meta.xid == prepared.header.cxid && meta.op_type != op::SYNC =>
                {
                    Some(*meta)
                }
                _ => None,
            })
        });
        forwarded.map_or(Origin::Internal, Origin::Client)
    }

    fn send_snapshot(&mut self, to: u64) {
        let mut tree_bytes = Vec::new();
        self.tree.serialize_into(&mut tree_bytes);
        let sessions = self
            .sessions
            .iter()
            .filter(|s| !s.creating)
            .map(|s| SessionTouch {
                session_id: s.id,
                timeout: s.timeout_ms as i32,
            })
            .collect();
        let stream = SnapshotStream {
            sessions,
            tree: tree_bytes,
        };
        info!(
            "sending server {to} a snapshot at zxid 0x{:x} ({} bytes)",
            self.tree.last_processed_zxid,
            stream.tree.len()
        );
        if let Some(&link) = self.zab.as_ref().and_then(|z| z.links.get(&to)) {
            self.actions.push(Action::SendBytes {
                link,
                bytes: stream.encode(),
            });
        }
    }

    fn load_snapshot(&mut self, zxid: i64) {
        let actions = &mut self.actions;
        let Some(z) = self.zab.as_mut() else {
            return;
        };
        let Some(stream) = z.pending_snapshot.take() else {
            error!("SNAP at 0x{zxid:x} without its snapshot; looking for a leader again");
            z.drop_all_links(actions);
            return;
        };
        let mut reader = jute::Reader::new(&stream.tree);
        let mut tree = match DataTree::deserialize_from(&mut reader) {
            Ok(t) => t,
            Err(e) => {
                error!("the leader's snapshot does not decode ({e}); looking again");
                z.drop_all_links(actions);
                return;
            }
        };
        tree.last_processed_zxid = zxid;
        let sessions: Vec<(i64, i32)> = stream
            .sessions
            .iter()
            .map(|s| (s.session_id, s.timeout))
            .collect();
        info!(
            "loaded the leader's snapshot at zxid 0x{zxid:x}: {} znodes, {} sessions",
            tree.node_count(),
            sessions.len()
        );
        // the file is written from our own serialization of what we loaded
        let mut serialized_tree = Vec::with_capacity(stream.tree.len());
        tree.serialize_into(&mut serialized_tree);
        drop(stream);
        self.replace_state(tree, &sessions);
        self.actions.push(Action::ReleaseFreeMemory);
        if self.durable {
            self.actions.push(Action::ResetLogToSnapshot {
                zxid,
                sessions,
                serialized_tree,
            });
        }
        self.count_log_reset(zxid);
    }

    /// The log was truncated or replaced: earlier durability reports are stale. Without a
    /// disk (tests) nothing else will report what is kept, so report it here.
    fn count_log_reset(&mut self, zxid: i64) {
        let durable = self.durable;
        if let Some(z) = self.zab.as_mut() {
            z.log_resets += 1;
            if !durable {
                z.deferred.push(Input::Durable { zxid });
            }
        }
    }

    pub(crate) fn replace_state(&mut self, tree: DataTree, sessions: &[(i64, i32)]) {
        self.abandon_snapshot();
        let now = self.now.mono_ms;
        self.tree = tree;
        if let Some(z) = self.zab.as_ref() {
            // a snapshot carries no configuration: /zookeeper/config shows the one in force
            // (found by the whole-server simulation: empty after a SNAP until the next reconfig)
            let config = z.peer.config();
            self.tree
                .set_config_node(&config.to_config_text(), config.version);
        }
        self.zxid = self.tree.last_processed_zxid;
        self.in_flight.clear();
        self.prep = tree::Preparer::new();
        let known: Vec<i64> = self.sessions.iter().map(|s| s.id).collect();
        for id in known {
            self.sessions.remove(id);
        }
        for &(id, timeout) in sessions {
            self.sessions.add(id, timeout.max(0) as u32, now);
        }
    }

    fn truncate(&mut self, zxid: i64) {
        // the snapshot being taken may hold changes from past the cut
        self.abandon_snapshot();
        if self.durable {
            self.actions.push(Action::TruncateLog { zxid });
        }
        self.count_log_reset(zxid);
        if zxid < self.tree.last_processed_zxid {
            // txns past the cut were applied (we once led with them): reload from disk
            info!(
                "truncated to 0x{zxid:x} below the applied 0x{:x}: reloading",
                self.tree.last_processed_zxid
            );
            if self.durable {
                self.actions.push(Action::ReloadFromDisk);
            } else {
                self.fatal(format!(
                    "truncated to 0x{zxid:x} below what was applied, without a disk to reload from"
                ));
            }
        }
    }

    // ---- leader: what learners ask ----

    fn on_learner_message(&mut self, from: u64, packet: Packet) {
        match packet {
            Packet::Revalidate {
                session_id,
                timeout,
            } => {
                let valid = self.sessions.touch(session_id, self.now.mono_ms);
                if valid {
                    if let Some(s) = self.sessions.get_mut(session_id) {
                        s.timeout_ms = timeout.max(0) as u32;
                        s.owner = Some(from);
                    }
                }
                if let Some(z) = self.zab.as_mut() {
                    let reply = Packet::RevalidateReply { session_id, valid };
                    z.send_to(&mut self.actions, from, reply);
                }
            }
            Packet::Request(r) => self.learner_request(from, r),
            _ => {}
        }
    }

    fn learner_request(&mut self, from: u64, r: LearnerRequest) {
        if !self.is_leading() {
            return;
        }
        let now = self.now.wall_ms;
        let mono = self.now.mono_ms;
        let session_id = r.session_id;
        if r.op_type == op::SYNC {
            return self.leader_sync(SyncFrom::Learner(from));
        }
        // every other request takes exactly one zxid: its txn or an error txn
        let Some(zxid) = self.next_zxid() else {
            warn!("request forwarded by server {from} before our epoch is established: dropped");
            return;
        };
        match r.op_type {
            op::CREATE_SESSION => {
                let timeout = r
                    .request
                    .get(..4)
                    .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                    .unwrap_or(0);
                self.sessions.add(session_id, timeout.max(0) as u32, mono);
                if let Some(s) = self.sessions.get_mut(session_id) {
                    s.creating = true;
                    s.owner = Some(from);
                }
                let prepared = self.prep.create_session(session_id, timeout, zxid, now);
                self.submit(prepared, Origin::Internal);
                return;
            }
            op::CLOSE_SESSION => {
                if let Some(s) = self.sessions.get_mut(session_id) {
                    s.closing = true;
                }
                let prepared = self
                    .prep
                    .close_session(&self.tree, session_id, r.cxid, zxid, now);
                self.submit(prepared, Origin::Internal);
                return;
            }
            _ => {}
        }
        let error = |code: ErrorCode, zxid: i64| error_txn(session_id, r.cxid, zxid, now, code);
        if !self.sessions.touch(session_id, mono) {
            self.submit(error(ErrorCode::SessionExpired, zxid), Origin::Internal);
            return;
        }
        if !self.sessions.check_owner(session_id, from) {
            // a write from before the client moved to another server (it sat in a partitioned
            // link, say): applying it now would reorder the session's writes
            warn!("session 0x{session_id:x} moved: refusing a write forwarded by server {from}");
            self.submit(error(ErrorCode::SessionMoved, zxid), Origin::Internal);
            return;
        }
        let mut request = match Request::decode(r.op_type, &r.request) {
            // a lone check (forwarded by a ZooKeeper learner): no txn, see Node::on_request
            Ok(Request::Check(_)) => {
                self.submit(error(ErrorCode::Unimplemented, zxid), Origin::Internal);
                return;
            }
            Ok(req) if req.is_write() && r.op_type != op::DELETE_CONTAINER => req,
            Ok(_) => {
                self.submit(error(ErrorCode::BadArguments, zxid), Origin::Internal);
                return;
            }
            Err(e) => {
                warn!("malformed request forwarded by server {from}: {e}");
                self.submit(error(ErrorCode::MarshallingError, zxid), Origin::Internal);
                return;
            }
        };
        let auth: Vec<Id> = r.authinfo.unwrap_or_default();
        let ctx = self.context(&auth, session_id, r.cxid, now);
        let prepared = self.prepare_write(&ctx, &mut request, zxid);
        self.submit(prepared, Origin::Internal);
    }

    /// Prepares a write; a reconfig is the leader's to validate against the configurations
    /// and the synced followers (ZooKeeper's PrepRequestProcessor, in its order of checks).
    pub(crate) fn prepare_write(
        &mut self,
        ctx: &tree::RequestContext<'_>,
        request: &mut Request,
        zxid: i64,
    ) -> Prepared {
        let (Request::Reconfig(r), Some(z)) = (&*request, self.zab.as_ref()) else {
            return self.prep.prepare(&self.tree, ctx, request, zxid);
        };
        let refuse = |code: ErrorCode| error_txn(ctx.session_id, ctx.cxid, zxid, ctx.time, code);
        if !ctx.reconfig_enabled {
            error!("Reconfig operation requested but reconfig feature is disabled.");
            return refuse(ErrorCode::ReconfigDisabled);
        }
        let Some(synced) = z.peer.synced_followers() else {
            return refuse(ErrorCode::ConnectionLoss);
        };
        let request = zab::reconfig::ReconfigRequest {
            joining: r.joining_servers.clone(),
            leaving: r.leaving_servers.clone(),
            new_members: r.new_members.clone(),
            from_config: r.cur_config_id,
        };
        let context = zab::reconfig::ReconfigContext {
            active: z.peer.config(),
            last_seen: z.peer.last_seen_config(),
            standalone_enabled: self.cfg.standalone_enabled,
            synced: &synced,
        };
        let mut next = match zab::reconfig::next_config(&context, &request) {
            Ok(next) => next,
            Err(e) => {
                warn!("Reconfig failed: {} ({:?})", e.reason, e.code);
                return refuse(e.code);
            }
        };
        let allowed = ctx.skip_acl
            || self
                .tree
                .node(tree::CONFIG_PATH)
                .is_some_and(|n| self.tree.check_acl(n, jute::perms::WRITE, ctx.auth));
        if !allowed {
            return refuse(ErrorCode::NoAuth);
        }
        next.version = zxid;
        Prepared {
            header: jute::TxnHeader {
                client_id: ctx.session_id,
                cxid: ctx.cxid,
                zxid,
                time: ctx.time,
                txn_type: op::RECONFIG,
            },
            txn: Txn::Reconfig(jute::SetDataTxn {
                path: tree::CONFIG_PATH.to_owned(),
                data: Some(next.to_config_text().into_bytes()),
                version: -1,
            }),
            error: None,
        }
    }

    /// Leader: a sync, a learner's or a client's. Answered once everything proposed before it
    /// has committed and a quorum answered a PING sent after it (a read barrier): so a leader
    /// that was deposed without noticing yet never answers from its stale tree.
    fn leader_sync(&mut self, to: SyncFrom) {
        let zxid = self.in_flight.back().map_or(0, |f| f.prepared.header.zxid);
        let Some(z) = self.zab.as_mut() else {
            return;
        };
        let Some((barrier, outputs)) = z.peer.request_read_barrier() else {
            return;
        };
        z.leader_syncs.push(LeaderSync { to, zxid, barrier });
        self.run_outputs(outputs);
        self.answer_leader_syncs();
    }

    /// Holds the session's later reads until this request (answered elsewhere) is answered.
    fn queue_forwarded(&mut self, session_id: i64, meta: RequestMeta) {
        self.session_queues
            .entry(session_id)
            .or_default()
            .push_back(Queued::Forwarded(meta));
    }

    /// Leader: a client's sync, queued in its session like a forwarded request so that its
    /// later reads wait for the answer.
    pub(crate) fn leader_client_sync(&mut self, meta: RequestMeta, session_id: i64, path: String) {
        self.queue_forwarded(session_id, meta);
        self.leader_sync(SyncFrom::Client(PendingSync {
            session_id,
            conn: meta.conn,
            xid: meta.xid,
            path,
        }));
    }

    fn answer_leader_syncs(&mut self) {
        let applied = self.tree.last_processed_zxid;
        let Some(z) = self.zab.as_mut() else {
            return;
        };
        if z.leader_syncs.is_empty() {
            return;
        }
        let passed = z.barrier_passed;
        let (due, waiting): (Vec<_>, Vec<_>) = z
            .leader_syncs
            .drain(..)
            .partition(|s| s.zxid <= applied && s.barrier <= passed);
        z.leader_syncs = waiting;
        for sync in due {
            match sync.to {
                SyncFrom::Learner(learner) => {
                    if let Some(z) = self.zab.as_mut() {
                        z.send_to(&mut self.actions, learner, Packet::Sync);
                    }
                }
                SyncFrom::Client(sync) => self.answer_client_sync(sync),
            }
        }
    }

    /// Answers a client's sync (at the head of its session's queue) and the reads behind it.
    fn answer_client_sync(&mut self, sync: PendingSync) {
        let meta = self
            .session_queues
            .get(&sync.session_id)
            .and_then(|q| {
                q.iter().find_map(|entry| match entry {
                    Queued::Forwarded(m) if m.xid == sync.xid && m.conn == sync.conn => Some(*m),
                    _ => None,
                })
            })
            .unwrap_or(RequestMeta {
                conn: sync.conn,
                xid: sync.xid,
                op_type: op::SYNC,
                received_ms: self.now.mono_ms,
            });
        let mut b = begin_frame(sync.xid, self.tree.last_processed_zxid, 0);
        jute::write_str(&mut b, &sync.path);
        // in the session's order: a write forwarded before the sync may not be answered yet
        self.answer_in_order(sync.session_id, meta, None, finish_frame(b));
    }

    // ---- learner: clients here, decisions at the leader ----

    pub(crate) fn learner_connect(
        &mut self,
        conn: ConnId,
        req: &ConnectRequest,
        timeout: u32,
        now: i64,
    ) {
        if !self.zab_serving() {
            self.close_conn(conn);
            return;
        }
        if req.session_id == 0 {
            let session_id = self.sessions.create(timeout, now);
            if let Some(s) = self.sessions.get_mut(session_id) {
                s.conn = Some(conn);
                s.creating = true;
            }
            if let Some(c) = self.conns.get_mut(&conn) {
                c.session_id = session_id;
                c.stats.session_timeout = timeout;
            }
            let packet = Packet::Request(LearnerRequest {
                session_id,
                cxid: 0,
                op_type: op::CREATE_SESSION,
                request: (timeout as i32).to_be_bytes().to_vec().into(),
                authinfo: None,
            });
            let sent = self.zab.as_mut().is_some_and(|z| {
                z.pending_connects
                    .insert(session_id, (conn, timeout as i32));
                z.send_to_leader(&mut self.actions, packet)
            });
            if !sent {
                self.close_conn(conn);
            }
            return;
        }
        let session_id = req.session_id;
        if req.passwd.as_deref() != Some(&session_password(session_id)[..]) {
            info!("Invalid password for session 0x{session_id:x}");
            return self.reject_session(conn);
        }
        let packet = Packet::Revalidate {
            session_id,
            timeout: timeout as i32,
        };
        let sent = self.zab.as_mut().is_some_and(|z| {
            z.pending_revalidations.insert(session_id, (conn, timeout));
            z.send_to_leader(&mut self.actions, packet)
        });
        if !sent {
            self.close_conn(conn);
        }
    }

    fn on_leader_message(&mut self, packet: Packet) {
        match packet {
            Packet::RevalidateReply { session_id, valid } => {
                let Some((conn, timeout)) = self
                    .zab
                    .as_mut()
                    .and_then(|z| z.pending_revalidations.remove(&session_id))
                else {
                    return;
                };
                if !self.conns.contains_key(&conn) {
                    return;
                }
                if !valid {
                    info!("Invalid session 0x{session_id:x}, probably expired");
                    return self.reject_session(conn);
                }
                let now = self.now.mono_ms;
                if self.sessions.get(session_id).is_none() {
                    self.sessions.add(session_id, timeout, now);
                }
                self.sessions.touch(session_id, now);
                self.attach_session(conn, session_id, timeout);
            }
            Packet::Sync => {
                if let Some(sync) = self.zab.as_mut().and_then(|z| z.pending_syncs.pop_front()) {
                    self.answer_client_sync(sync);
                }
            }
            _ => {}
        }
    }

    /// Learner: a client's write or sync goes to the leader; its answer comes with the commit.
    pub(crate) fn forward(&mut self, meta: RequestMeta, session_id: i64, raw: Bytes) {
        let RequestMeta {
            conn, xid, op_type, ..
        } = meta;
        if op_type == op::CLOSE_SESSION {
            if let Some(s) = self.sessions.get_mut(session_id) {
                s.closing = true;
            }
        }
        let auth = self.conns.get(&conn).map(|c| c.auth.to_vec());
        self.queue_forwarded(session_id, meta);
        let Some(z) = self.zab.as_mut() else {
            return;
        };
        if op_type == op::SYNC {
            let path = Request::decode(op_type, &raw)
                .ok()
                .and_then(|r| match r {
                    Request::Sync(s) => Some(s.path),
                    _ => None,
                })
                .unwrap_or_default();
            z.pending_syncs.push_back(PendingSync {
                session_id,
                conn,
                xid,
                path,
            });
        }
        let packet = Packet::Request(LearnerRequest {
            session_id,
            cxid: xid,
            op_type,
            request: raw,
            authinfo: auth,
        });
        if !z.send_to_leader(&mut self.actions, packet) {
            self.close_conn(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposal(txn_type: i32, txn: Vec<u8>) -> ProposalData {
        let header = jute::TxnHeader {
            client_id: 1,
            cxid: 1,
            zxid: 1,
            time: 0,
            txn_type,
        };
        ProposalData {
            header,
            txn: txn.into(),
            digest: None,
        }
    }

    #[test]
    fn proposals_are_logged_as_sent_unless_zookeeper_would_log_other_bytes() {
        let create = Txn::Create(jute::CreateTxn {
            path: "/a".into(),
            data: Some(b"x".to_vec()),
            acl: vec![],
            ephemeral: false,
            parent_cversion: 3,
        });
        assert!(logs_as_sent(&proposal(op::CREATE, create.body())));
        let set = Txn::SetData(jute::SetDataTxn {
            path: "/a".into(),
            data: None,
            version: 2,
        });
        assert!(logs_as_sent(&proposal(op::SET_DATA, set.body())));
        // a pre-3.3 create (no parentCVersion) is logged as the full CreateTxn
        let mut v0 = Vec::new();
        jute::write_str(&mut v0, "/a");
        jute::write_opt_buffer(&mut v0, Some(b"x"));
        v0.extend_from_slice(&0i32.to_be_bytes());
        v0.push(0);
        assert!(!logs_as_sent(&proposal(op::CREATE, v0)));
        let multi = Txn::Multi(vec![]);
        assert!(!logs_as_sent(&proposal(op::MULTI, multi.body())));
    }
}
