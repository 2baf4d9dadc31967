//! Replicated mode: the core drives a `zab::peer::Peer` and executes its outputs. The leader
//! prepares every write (its clients' and those its learners forward) and proposes it; every
//! server applies txns when Zab commits them; learners forward writes and syncs, create and
//! revalidate sessions through the leader, and serve reads from their own tree.

use crate::core::{
    begin_frame, error_txn, finish_frame, CoreMsg, InFlight, Origin, Queued, ServerCore,
};
use crate::quorum_net::{ElectionNet, QuorumLink, ZabEvent};
use crate::session::{session_password, ConnId};
use bytes::Bytes;
use config::QuorumConfig;
use jute::request::Request;
use jute::{op, ConnectRequest, ErrorCode, Id};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;
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

/// The address a quorum or election port binds: our server line's host, or every interface
/// with quorumListenOnAllIPs (IPv6 in brackets, as HostPort prints it).
pub(crate) fn listen_address(listen_all: bool, host: &str, port: u16) -> String {
    let host = if listen_all { "0.0.0.0" } else { host };
    config::HostPort {
        host: host.to_owned(),
        port,
    }
    .to_string()
}

/// Where our quorum and election ports listen, movable by a reconfiguration.
pub struct PeerListeners {
    pub quorum: tokio::sync::watch::Sender<String>,
    pub election: tokio::sync::watch::Sender<String>,
    pub listen_all: bool,
}

impl PeerListeners {
    /// Moves the listeners to the ports of our line in an activated configuration.
    fn follow(&self, me: &config::ServerSpec) {
        for (listener, port) in [
            (&self.quorum, me.quorum.port),
            (&self.election, me.election_port),
        ] {
            let address = listen_address(self.listen_all, &me.quorum.host, port);
            if *listener.borrow() != address {
                let _ = listener.send(address);
            }
        }
    }
}

pub struct Ensemble {
    peer: Peer,
    started: Instant,
    election: ElectionNet,
    core_tx: UnboundedSender<CoreMsg>,
    links: HashMap<u64, QuorumLink>,
    state: ServerState,
    serving: bool,
    max_buffer: usize,
    /// The snapshot that arrived ahead of its SNAP packet.
    pending_snapshot: Option<SnapshotStream>,
    /// Learner: sessions active since the last PING reply.
    touched: HashMap<i64, i32>,
    /// Learner: new sessions waiting for their createSession to commit.
    pending_connects: HashMap<i64, (ConnId, i32)>,
    /// Learner: reconnects waiting for the leader's REVALIDATE answer.
    pending_revalidations: HashMap<i64, (ConnId, u32)>,
    pending_syncs: VecDeque<PendingSync>,
    /// Leader: syncs answered once their zxid has committed and their barrier passed.
    leader_syncs: Vec<LeaderSync>,
    /// Leader: the last read barrier passed.
    barrier_passed: u64,
    /// Inputs produced while executing outputs (a link found dead).
    deferred: Vec<Input>,
    /// Learners that connected while we were still looking (they decided a moment before
    /// us): kept with what they sent until we lead — ZooKeeper's learners retry until the
    /// leader's port opens; closing them would send them back to the election.
    parked: HashMap<u64, (QuorumLink, Vec<Packet>)>,
    /// Truncations and snapshot loads of our log so far: a durability report counted
    /// before the latest one is stale (it may name a zxid cut and logged again since).
    log_resets: u64,
    listeners: Option<PeerListeners>,
}

impl Ensemble {
    pub fn new(
        peer: Peer,
        election: ElectionNet,
        core_tx: UnboundedSender<CoreMsg>,
        max_buffer: usize,
    ) -> Self {
        Ensemble {
            peer,
            started: Instant::now(),
            election,
            core_tx,
            links: HashMap::new(),
            state: ServerState::Looking,
            serving: false,
            max_buffer,
            pending_snapshot: None,
            touched: HashMap::new(),
            pending_connects: HashMap::new(),
            pending_revalidations: HashMap::new(),
            pending_syncs: VecDeque::new(),
            leader_syncs: Vec::new(),
            barrier_passed: 0,
            deferred: Vec::new(),
            parked: HashMap::new(),
            log_resets: 0,
            listeners: None,
        }
    }

    pub fn with_listeners(mut self, listeners: PeerListeners) -> Self {
        self.listeners = Some(listeners);
        self
    }

    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// None unless we lead an established epoch.
    pub fn next_zxid(&self) -> Option<i64> {
        self.peer.next_zxid()
    }

    pub fn state(&self) -> ServerState {
        self.state
    }

    pub fn my_id(&self) -> u64 {
        self.peer.my_id()
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
    pub fn note_touch(&mut self, session_id: i64, sessions: &crate::session::SessionTracker) {
        if self.state != ServerState::Leading {
            if let Some(s) = sessions.get(session_id) {
                self.touched.insert(session_id, s.timeout_ms as i32);
            }
        }
    }

    fn send_to(&mut self, to: u64, packet: &Packet) {
        let ok = self.links.get(&to).is_some_and(|l| l.send_packet(packet));
        if !ok && self.links.remove(&to).is_some() {
            warn!("quorum connection to server {to} is gone or too far behind; dropping it");
            self.deferred.push(Input::Disconnected { peer: to });
        }
    }

    fn send_to_leader(&mut self, packet: &Packet) -> bool {
        match self.peer.leader() {
            Some(l) if l != self.peer.my_id() && self.links.contains_key(&l) => {
                self.send_to(l, packet);
                true
            }
            _ => false,
        }
    }
}

/// Decodes a txn as it came through Zab.
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

impl ServerCore {
    pub fn start_ensemble(&mut self, ensemble: Ensemble) {
        let mut ensemble = Box::new(ensemble);
        let now = ensemble.now();
        let outputs = ensemble.peer.start(now);
        // /zookeeper/config holds the configuration we start with (ZooKeeper sets it at start)
        let config = ensemble.peer.config().clone();
        self.tree
            .set_config_node(&config.to_config_text(), config.version);
        self.zab = Some(ensemble);
        self.run_outputs(outputs);
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
        let Some(z) = self.zab.as_mut() else {
            return;
        };
        let now = z.now();
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

    pub(crate) fn on_zab_event(&mut self, ev: ZabEvent) {
        let Some(z) = self.zab.as_mut() else {
            return;
        };
        match ev {
            ZabEvent::Notification(n, config_text) => {
                if let Some(config) = newer_config(&config_text, z.peer.config().version) {
                    self.step(Input::ConfigSeen(config));
                }
                self.step(Input::Notification(n))
            }
            ZabEvent::LearnerUp { sid, link } => {
                match z.state {
                    ServerState::Looking => {
                        if z.parked.len() < MAX_PARKED_LEARNERS || z.parked.contains_key(&sid) {
                            z.parked.insert(sid, (link, Vec::new()));
                        }
                        return;
                    }
                    ServerState::Leading => {}
                    _ => return, // dropping the link closes it
                }
                let replaced = z.links.insert(sid, link).is_some();
                if replaced {
                    self.step(Input::Disconnected { peer: sid });
                }
            }
            ZabEvent::LeaderUp { sid, link } => {
                let wanted = z.peer.leader() == Some(sid)
                    && z.state != ServerState::Leading
                    && !z.links.contains_key(&sid);
                if wanted {
                    z.links.insert(sid, link);
                    self.step(Input::ConnectedToLeader);
                }
            }
            ZabEvent::Packet { sid, link, packet } => {
                if z.links.get(&sid).is_some_and(|l| l.id == link) {
                    self.step(Input::Packet { from: sid, packet });
                } else if let Some((parked, packets)) = z.parked.get_mut(&sid) {
                    if parked.id == link && packets.len() < MAX_PARKED_PACKETS {
                        packets.push(packet);
                    } else if parked.id == link {
                        warn!("server {sid} sent too much before we lead; closing its connection");
                        z.parked.remove(&sid);
                    }
                }
            }
            ZabEvent::Snapshot { sid, link, stream } => {
                if z.links.get(&sid).is_some_and(|l| l.id == link) {
                    z.pending_snapshot = Some(stream);
                }
            }
            ZabEvent::LinkDown { sid, link } => {
                if z.parked.get(&sid).is_some_and(|(l, _)| l.id == link) {
                    z.parked.remove(&sid);
                }
                if z.links.get(&sid).is_some_and(|l| l.id == link) {
                    z.links.remove(&sid);
                    self.step(Input::Disconnected { peer: sid });
                }
            }
        }
    }

    fn run_outputs(&mut self, outputs: Vec<Output>) {
        let mut committed_any = false;
        let mut answer_syncs = false;
        for o in outputs {
            if self.zab.is_none() {
                return;
            }
            match o {
                Output::SendNotification { to, notification } => {
                    let z = self.zab.as_ref().expect("checked");
                    z.election.send(to, &notification);
                }
                Output::SendPacket { to, packet } => {
                    self.zab.as_mut().expect("checked").send_to(to, &packet)
                }
                Output::ConnectToLeader { leader } => self.connect_to_leader(leader),
                Output::DropQuorumConnections => {
                    let z = self.zab.as_mut().expect("checked");
                    z.links.clear();
                    z.pending_snapshot = None;
                }
                Output::DropLearner { peer } => {
                    let z = self.zab.as_mut().expect("checked");
                    if z.links.remove(&peer).is_some() {
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
                Output::StoreEpochs(epochs) => {
                    if let Err(e) = crate::persist::write_epochs(&self.cfg.data_dir, epochs) {
                        error!("cannot write the epoch files, exiting: {e}");
                        std::process::exit(2);
                    }
                }
                Output::Serving(on) => self.set_serving(on),
                Output::ConfigProposed(config) => {
                    let z = self.zab.as_ref().expect("checked");
                    info!("configuration 0x{:x} proposed", config.version);
                    z.election.add_members(config.clone());
                    crate::dynamic_config::write_next(&self.cfg, &config);
                }
                Output::ConfigActivated(config) => self.activate_config(config),
                Output::Role(state) => {
                    let z = self.zab.as_mut().expect("checked");
                    if z.state != state {
                        info!("server {} is now {state:?}", z.peer.my_id());
                    }
                    z.state = state;
                    if state == ServerState::Leading {
                        // learners that were early: as if they connected now
                        for (sid, (link, packets)) in std::mem::take(&mut z.parked) {
                            z.links.insert(sid, link);
                            z.deferred.extend(
                                packets
                                    .into_iter()
                                    .map(|packet| Input::Packet { from: sid, packet }),
                            );
                        }
                    } else if state != ServerState::Looking {
                        z.parked.clear();
                    }
                }
                Output::FromLearner { from, packet } => self.on_learner_message(from, packet),
                Output::FromLeader { packet } => self.on_leader_message(packet),
                Output::ReplyPing { to, zxid } => {
                    let z = self.zab.as_mut().expect("checked");
                    let touches = z
                        .touched
                        .drain()
                        .map(|(session_id, timeout)| SessionTouch {
                            session_id,
                            timeout,
                        })
                        .collect();
                    z.send_to(to, &Packet::PingReply { zxid, touches });
                }
                Output::ReadBarrierPassed(id) => {
                    let z = self.zab.as_mut().expect("checked");
                    z.barrier_passed = z.barrier_passed.max(id);
                    answer_syncs = true;
                }
                Output::TouchSessions(touches) => {
                    let now = crate::core::mono_ms();
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

    /// A configuration became active: /zookeeper/config, the election's addresses and the
    /// dynamic file follow it.
    fn activate_config(&mut self, config: Arc<QuorumConfig>) {
        let text = config.to_config_text();
        info!("configuration 0x{:x} activated:\n{text}", config.version);
        self.tree.set_config_node(&text, config.version);
        let Some(z) = self.zab.as_ref() else {
            return;
        };
        let me = config.members.get(&z.peer.my_id());
        if let (Some(me), Some(listeners)) = (me, &z.listeners) {
            listeners.follow(me);
        }
        let my_client = me.and_then(|spec| spec.client.clone());
        if let Some(address) = my_client {
            self.move_client_listener(&address);
        }
        let Some(z) = self.zab.as_ref() else {
            return;
        };
        z.election.set_config(config.clone());
        crate::dynamic_config::write_committed(&self.cfg, z.peer.my_id(), &config);
    }

    fn connect_to_leader(&mut self, leader: u64) {
        let z = self.zab.as_ref().expect("ensemble");
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
        let give_up = Duration::from_millis(self.cfg.tick_time as u64 * self.cfg.init_limit as u64);
        crate::quorum_net::connect_to_leader(
            leader,
            address,
            give_up,
            z.core_tx.clone(),
            z.max_buffer,
        );
    }

    fn set_serving(&mut self, on: bool) {
        let z = self.zab.as_mut().expect("ensemble");
        if z.serving == on {
            return;
        }
        z.serving = on;
        if on {
            info!(
                "serving clients as {} of epoch {}",
                self.mode().unwrap_or("?"),
                self.zab.as_ref().expect("ensemble").peer.current_epoch()
            );
            if self.is_leading() {
                // owners are learned again from where the clients are now
                self.sessions.forget_owners();
                // the sessions the leader inherits get a full timeout from now
                let now = crate::core::mono_ms();
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
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for c in conns {
            self.close_conn(c);
        }
    }

    /// Leader: Prepare gave a txn; propose it (the zxid was Zab's next).
    pub(crate) fn propose(&mut self, prepared: Arc<Prepared>) {
        let z = self.zab.as_mut().expect("ensemble");
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
        match self.sink.as_mut() {
            // the proposal's bytes as they are: no decode, no re-encode, nothing decoded
            // here to be freed on the log writer's thread
            Some(sink) if logs_as_sent(data) => {
                sink.persist_raw(data.header.clone(), data.txn.clone())
            }
            Some(sink) => {
                let prepared = match self.in_flight.back() {
                    Some(f) if f.prepared.header.zxid == zxid => f.prepared.clone(),
                    _ => match prepared_from(data) {
                        Ok(p) => Arc::new(p),
                        Err(e) => fatal(&e),
                    },
                };
                sink.persist(prepared)
            }
            None => {
                let resets = self.zab.as_ref().map_or(0, |z| z.log_resets);
                let _ = self.core_tx().send(CoreMsg::Durable { zxid, resets });
            }
        }
    }

    fn core_tx(&self) -> UnboundedSender<CoreMsg> {
        self.zab.as_ref().expect("ensemble").core_tx.clone()
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
                let f = self.in_flight.pop_front().expect("non-empty");
                self.apply_and_answer(f);
                continue;
            }
            let prepared = match prepared_from(&data) {
                Ok(p) => Arc::new(p),
                Err(e) => fatal(&e),
            };
            let origin = self.learner_origin(&prepared);
            self.apply_and_answer(InFlight { prepared, origin });
        }
    }

    /// Who waits here for a txn the leader prepared: a new session's connect, or the session's
    /// oldest forwarded request.
    fn learner_origin(&mut self, prepared: &Prepared) -> Origin {
        let session_id = prepared.header.client_id;
        let z = self.zab.as_mut().expect("ensemble");
        if let Txn::CreateSession(_) = prepared.txn {
            if let Some((conn, timeout)) = z.pending_connects.remove(&session_id) {
                return Origin::Connect { conn, timeout };
            }
        }
        if let Some(Queued::Forwarded {
            conn,
            xid,
            op_type,
            received_ms,
        }) = self.session_queues.get(&session_id).and_then(|q| q.front())
        {
            if *xid == prepared.header.cxid && *op_type != op::SYNC {
                return Origin::Client {
                    conn: *conn,
                    xid: *xid,
                    op_type: *op_type,
                    received_ms: *received_ms,
                };
            }
        }
        Origin::Internal
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
        let z = self.zab.as_mut().expect("ensemble");
        let ok = z
            .links
            .get(&to)
            .is_some_and(|l| l.send_bytes(&stream.encode()));
        if !ok && z.links.remove(&to).is_some() {
            z.deferred.push(Input::Disconnected { peer: to });
        }
    }

    fn load_snapshot(&mut self, zxid: i64) {
        let z = self.zab.as_mut().expect("ensemble");
        let Some(stream) = z.pending_snapshot.take() else {
            error!("SNAP at 0x{zxid:x} without its snapshot; looking for a leader again");
            z.links.clear();
            return;
        };
        let mut reader = jute::Reader::new(&stream.tree);
        let mut tree = match DataTree::deserialize_from(&mut reader) {
            Ok(t) => t,
            Err(e) => {
                error!("the leader's snapshot does not decode ({e}); looking again");
                z.links.clear();
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
        let bytes = storage::snapshot::serialize(&tree, &sessions);
        self.replace_state(tree, &sessions);
        crate::persist::release_free_memory();
        if let Some(sink) = self.sink.as_mut() {
            sink.reset_to_snapshot(zxid, bytes);
        }
        self.count_log_reset(zxid);
    }

    /// The log was truncated or replaced: earlier durability reports are stale. Without a
    /// disk (tests) nothing else will report what is kept, so report it here.
    fn count_log_reset(&mut self, zxid: i64) {
        if let Some(z) = self.zab.as_mut() {
            z.log_resets += 1;
            if self.sink.is_none() {
                let resets = z.log_resets;
                let _ = self.core_tx().send(CoreMsg::Durable { zxid, resets });
            }
        }
    }

    fn replace_state(&mut self, tree: DataTree, sessions: &[(i64, i32)]) {
        self.abandon_snapshot();
        let now = crate::core::mono_ms();
        self.tree = tree;
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
        if let Some(sink) = self.sink.as_mut() {
            sink.truncate(zxid);
        }
        self.count_log_reset(zxid);
        if zxid < self.tree.last_processed_zxid {
            // txns past the cut were applied (we once led with them): reload from disk
            info!(
                "truncated to 0x{zxid:x} below the applied 0x{:x}: reloading",
                self.tree.last_processed_zxid
            );
            match crate::persist::restore(&self.cfg) {
                Ok(restored) => self.replace_state(restored.tree, &restored.sessions),
                Err(e) => fatal(&format!("cannot reload after truncation: {e}")),
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
                let valid = self.sessions.touch(session_id, crate::core::mono_ms());
                if valid {
                    if let Some(s) = self.sessions.get_mut(session_id) {
                        s.timeout_ms = timeout.max(0) as u32;
                        s.owner = Some(from);
                    }
                }
                let z = self.zab.as_mut().expect("ensemble");
                z.send_to(from, &Packet::RevalidateReply { session_id, valid });
            }
            Packet::Request(r) => self.learner_request(from, r),
            _ => {}
        }
    }

    fn learner_request(&mut self, from: u64, r: LearnerRequest) {
        if !self.is_leading() {
            return;
        }
        let now = crate::core::now_ms();
        let mono = crate::core::mono_ms();
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
            // a lone check (forwarded by a ZooKeeper learner): no txn, see Core::on_request
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
        let z = self.zab.as_mut().expect("ensemble");
        let Some((barrier, outputs)) = z.peer.request_read_barrier() else {
            return;
        };
        z.leader_syncs.push(LeaderSync { to, zxid, barrier });
        self.run_outputs(outputs);
        self.answer_leader_syncs();
    }

    /// Holds the session's later reads until this request (answered elsewhere) is answered.
    fn queue_forwarded(
        &mut self,
        session_id: i64,
        conn: ConnId,
        xid: i32,
        op_type: i32,
        received_ms: i64,
    ) {
        let queued = Queued::Forwarded {
            conn,
            xid,
            op_type,
            received_ms,
        };
        self.session_queues
            .entry(session_id)
            .or_default()
            .push_back(queued);
    }

    /// Leader: a client's sync, queued in its session like a forwarded request so that its
    /// later reads wait for the answer.
    pub(crate) fn leader_client_sync(
        &mut self,
        conn: ConnId,
        xid: i32,
        session_id: i64,
        path: String,
        received_ms: i64,
    ) {
        self.queue_forwarded(session_id, conn, xid, op::SYNC, received_ms);
        self.leader_sync(SyncFrom::Client(PendingSync {
            session_id,
            conn,
            xid,
            path,
        }));
    }

    fn answer_leader_syncs(&mut self) {
        let applied = self.tree.last_processed_zxid;
        let z = self.zab.as_mut().expect("ensemble");
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
                    let z = self.zab.as_mut().expect("ensemble");
                    z.send_to(learner, &Packet::Sync);
                }
                SyncFrom::Client(sync) => self.answer_client_sync(sync),
            }
        }
    }

    /// Answers a client's sync (at the head of its session's queue) and the reads behind it.
    fn answer_client_sync(&mut self, sync: PendingSync) {
        let received_ms = match self.session_queues.get_mut(&sync.session_id) {
            Some(q) => match q.front() {
                Some(&Queued::Forwarded {
                    xid, received_ms, ..
                }) if xid == sync.xid => {
                    q.pop_front();
                    Some(received_ms)
                }
                _ => None,
            },
            None => None,
        };
        let mut b = begin_frame(sync.xid, self.tree.last_processed_zxid, 0);
        jute::write_str(&mut b, &sync.path);
        self.send(sync.conn, finish_frame(b));
        if let Some(received_ms) = received_ms {
            self.finish_request(sync.conn, op::SYNC, received_ms);
        }
        self.drain_session_queue(sync.session_id);
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
            let z = self.zab.as_mut().expect("ensemble");
            z.pending_connects
                .insert(session_id, (conn, timeout as i32));
            let packet = Packet::Request(LearnerRequest {
                session_id,
                cxid: 0,
                op_type: op::CREATE_SESSION,
                request: (timeout as i32).to_be_bytes().to_vec().into(),
                authinfo: None,
            });
            if !z.send_to_leader(&packet) {
                self.close_conn(conn);
            }
            return;
        }
        let session_id = req.session_id;
        if req.passwd.as_deref() != Some(&session_password(session_id)[..]) {
            info!("Invalid password for session 0x{session_id:x}");
            return self.reject_session(conn);
        }
        let z = self.zab.as_mut().expect("ensemble");
        z.pending_revalidations.insert(session_id, (conn, timeout));
        let packet = Packet::Revalidate {
            session_id,
            timeout: timeout as i32,
        };
        if !z.send_to_leader(&packet) {
            self.close_conn(conn);
        }
    }

    fn on_leader_message(&mut self, packet: Packet) {
        match packet {
            Packet::RevalidateReply { session_id, valid } => {
                let z = self.zab.as_mut().expect("ensemble");
                let Some((conn, timeout)) = z.pending_revalidations.remove(&session_id) else {
                    return;
                };
                if !self.conns.contains_key(&conn) {
                    return;
                }
                if !valid {
                    info!("Invalid session 0x{session_id:x}, probably expired");
                    return self.reject_session(conn);
                }
                let now = crate::core::mono_ms();
                if self.sessions.get(session_id).is_none() {
                    self.sessions.add(session_id, timeout, now);
                }
                self.sessions.touch(session_id, now);
                self.attach_session(conn, session_id, timeout);
            }
            Packet::Sync => {
                let z = self.zab.as_mut().expect("ensemble");
                if let Some(sync) = z.pending_syncs.pop_front() {
                    self.answer_client_sync(sync);
                }
            }
            _ => {}
        }
    }

    /// Learner: a client's write or sync goes to the leader; its answer comes with the commit.
    pub(crate) fn forward(
        &mut self,
        conn: ConnId,
        xid: i32,
        op_type: i32,
        session_id: i64,
        raw: Bytes,
        received_ms: i64,
    ) {
        if op_type == op::CLOSE_SESSION {
            if let Some(s) = self.sessions.get_mut(session_id) {
                s.closing = true;
            }
        }
        let auth = self.conns.get(&conn).map(|c| c.auth.to_vec());
        self.queue_forwarded(session_id, conn, xid, op_type, received_ms);
        let z = self.zab.as_mut().expect("ensemble");
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
        if !z.send_to_leader(&packet) {
            self.close_conn(conn);
        }
    }
}

fn fatal(message: &str) -> ! {
    error!("{message}; exiting");
    std::process::exit(3);
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
