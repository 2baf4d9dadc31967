//! Deterministic simulation of whole servers: the real [`node::Node`] — sessions, Prepare,
//! forwarding, syncs, flow control, snapshots, Zab — on a simulated clock (each server's
//! drifting from the others'), a simulated disk that loses what was not fsynced and fails
//! (the server then exits, as it does on a write error), a network that delays, stalls and
//! breaks quorum connections and drops election notifications, and simulated clients that
//! speak the client protocol in bytes, pipeline requests, lose connections and move to other
//! servers with their sessions. A seed decides everything; a failing seed replays exactly.
//!
//! Checked while it runs (see [`checks`]): replies on a connection come in request order; a
//! session never sees its zxid go back; acknowledged writes respect real time; a read after a
//! sync sees every write acknowledged before the sync began. Checked at the end, after the
//! faults heal and the clients close their sessions: every server serves the same tree; a
//! session's writes were committed in the order it sent them; no ephemeral node outlives its
//! session and the leader keeps no session; every client was answered after the heal.
//!
//! Driving this needs nothing the production runtime does not do: the node is the one
//! `crates/server` runs; this file only plays its edges (see `crates/server/src/driver.rs`).

pub mod checks;
mod clients;
mod disk;
mod network;
mod script;

use crate::rng::Rng;
use bytes::Bytes;
use checks::History;
use clients::{Client, OpKind, Pending, Phase};
use config::ZooCfg;
use disk::{Disk, SnapshotBase};
use network::Link;
use node::{Action, ConnId, Event, LinkId, Node, NodeOptions, Now, PeerEvent};
use script::{Injection, Script};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use zab::peer::Peer;
use zab::wire::{Packet, Received};

/// One simulated run's shape.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub seed: u64,
    pub voters: u64,
    pub observers: u64,
    pub clients: usize,
    pub registers: usize,
    pub locks: usize,
    /// Simulated ms of faults and load.
    pub fault_ms: i64,
    /// Whether faults are injected at all.
    pub faults: bool,
    /// Probability that a client request is one no client should send.
    pub hostile: f64,
    /// Simulated ms from the heal until the clients close their sessions, and until the end.
    pub settle_ms: i64,
    pub end_ms: i64,
    /// The stateful fuzzer's input: extra injections at each fault ([`script`]).
    pub script: Option<Vec<u8>>,
}

impl ClusterConfig {
    /// The shape a seed gets: 3 or 5 voters, an observer on odd seeds.
    pub fn for_seed(seed: u64) -> ClusterConfig {
        ClusterConfig {
            seed,
            voters: if seed % 4 == 3 { 5 } else { 3 },
            observers: seed % 2,
            clients: 6,
            registers: 3,
            locks: 2,
            fault_ms: 12_000,
            faults: true,
            hostile: 0.02,
            settle_ms: 8_000,
            end_ms: 25_000,
            script: None,
        }
    }

    /// The stateful fuzzer's run: the first 8 bytes seed it, the rest is its script; shorter
    /// than a seed's run (3 s of faults) so that the fuzzer runs many.
    pub fn for_fuzz(data: &[u8]) -> ClusterConfig {
        let mut seed_bytes = [0u8; 8];
        for (i, b) in data.iter().take(8).enumerate() {
            seed_bytes[i] = *b;
        }
        let mut cfg = ClusterConfig::for_seed(u64::from_le_bytes(seed_bytes));
        cfg.fault_ms = 3_000;
        cfg.settle_ms = 3_000;
        cfg.end_ms = 14_000;
        cfg.script = Some(data.get(8..).unwrap_or_default().to_vec());
        cfg
    }
}

/// A connection the fuzzer's script opened.
#[derive(Debug)]
struct FuzzConn {
    server: u64,
    life: u32,
    /// Requests to send once the session is established.
    waiting: Vec<(i32, Vec<u8>)>,
    connected: bool,
    sent: u64,
    replies: u64,
    closed: bool,
    unreported: usize,
    next_xid: i32,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct ClusterStats {
    pub events: u64,
    pub replies: u64,
    pub writes_acked: u64,
    pub synced_reads: u64,
    pub locks_taken: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub client_moves: u64,
    pub sessions_expired: u64,
    pub hostile_requests: u64,
    /// Watch notifications received.
    pub notifications: u64,
    pub last_zxid: i64,
}

const TICK_MS: i64 = 100;
const SESSION_TIMEOUT_MS: i32 = 2_000;

#[derive(Debug)]
enum Ev {
    /// An event for a server, if it is still the same incarnation.
    ToNode {
        id: u64,
        life: u32,
        event: Event,
    },
    LinkDeliver {
        link: LinkId,
        dir: usize,
    },
    Fsync {
        id: u64,
        life: u32,
    },
    Ticks {
        id: u64,
        life: u32,
    },
    /// A frame arrives at a client.
    ToClient {
        client: usize,
        conn: ConnId,
        frame: Bytes,
    },
    /// A client's connection was closed by its server.
    ClientClosed {
        client: usize,
        conn: ConnId,
    },
    ClientStep {
        client: usize,
    },
    Fault,
    Restart {
        id: u64,
    },
    HealAll,
    /// A pause ends: what arrived meanwhile is handled, in its order.
    Resume {
        id: u64,
    },
}

struct Scheduled {
    at: i64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

struct Server {
    node: Option<Node>,
    /// Incarnation: bumped by each crash.
    life: u32,
    disk: Disk,
    /// Clock drift of this server, in parts per million, and its clocks' offsets.
    drift_ppm: i64,
    mono_offset: i64,
    wall_offset: i64,
    /// Stalled in a pause (a long GC): its events wait until then.
    paused_until: i64,
    /// The events that arrived during the pause, in their order (TCP keeps it).
    held: std::collections::VecDeque<Ev>,
}

/// Which client holds each connection, and its server.
struct ConnInfo {
    client: usize,
    server: u64,
    life: u32,
    /// When the last frame each way arrives: TCP keeps them in order.
    to_client_at: i64,
    to_server_at: i64,
}

pub struct Cluster {
    cfg: ClusterConfig,
    zoo: Arc<ZooCfg>,
    quorum: Arc<config::QuorumConfig>,
    rng: Rng,
    now: i64,
    seq: u64,
    queue: BinaryHeap<Reverse<Scheduled>>,
    servers: BTreeMap<u64, Server>,
    links: HashMap<LinkId, Link>,
    next_link: LinkId,
    /// Servers cut off from the others (quorum and election traffic).
    isolated: HashSet<u64>,
    clients: Vec<Client>,
    conns: HashMap<ConnId, ConnInfo>,
    next_conn: ConnId,
    healed: bool,
    history: History,
    stats: ClusterStats,
    script: Option<Script>,
    fuzz_conns: BTreeMap<ConnId, FuzzConn>,
    /// The last lines of what happened, printed with a failure.
    trace: std::collections::VecDeque<String>,
}

type Res = Result<(), String>;

/// Runs one seed; the error names what broke, with the trace's tail.
pub fn run_cluster(cfg: &ClusterConfig) -> Result<ClusterStats, String> {
    let mut c = Cluster::new(cfg.clone())?;
    match c.run() {
        Ok(()) => Ok(c.stats.clone()),
        Err(e) => {
            let tail: Vec<String> = c.trace.iter().cloned().collect();
            Err(format!(
                "seed {} failed at {} ms: {e}\n--- last events ---\n{}",
                cfg.seed,
                c.now,
                tail.join("\n")
            ))
        }
    }
}

impl Cluster {
    fn new(cfg: ClusterConfig) -> Result<Cluster, String> {
        let mut rng = Rng::new(cfg.seed);
        let total = cfg.voters + cfg.observers;
        let mut lines = String::new();
        for id in 1..=total {
            let role = if id > cfg.voters {
                "observer"
            } else {
                "participant"
            };
            lines.push_str(&format!(
                "server.{id}=10.0.0.{id}:2888:3888:{role};10.0.0.{id}:2181\n"
            ));
        }
        let text = format!(
            "tickTime={TICK_MS}\ninitLimit=10\nsyncLimit=5\ndataDir=/sim/data\nclientPort=2181\n\
             snapCount=100\nminSessionTimeout=400\nmaxSessionTimeout=8000\n4lw.commands.whitelist=*\n{lines}"
        );
        let zoo = ZooCfg::parse(&text, "sim.cfg").map_err(|e| e.to_string())?;
        let quorum = zab::reconfig::parse_config_text(&lines)?;
        let mut servers = BTreeMap::new();
        for id in 1..=total {
            servers.insert(
                id,
                Server {
                    node: None,
                    life: 0,
                    disk: Disk::default(),
                    drift_ppm: rng.between(0, 4000) as i64 - 2000,
                    mono_offset: rng.between(1_000, 100_000) as i64,
                    wall_offset: 1_700_000_000_000 + rng.between(0, 10_000) as i64,
                    paused_until: 0,
                    held: Default::default(),
                },
            );
        }
        // short timeouts move clients (and expire sessions) faster than a silent learner is
        // dropped: ZooKeeper's clients give a server 2/3 of the timeout
        let timeouts = [400, 1_000, SESSION_TIMEOUT_MS, 4_000];
        let clients = (0..cfg.clients)
            .map(|i| Client::new(i, timeouts[(i + cfg.seed as usize) % timeouts.len()]))
            .collect();
        let mut c = Cluster {
            zoo: Arc::new(zoo),
            quorum: Arc::new(quorum),
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            servers,
            links: HashMap::new(),
            next_link: 1,
            isolated: HashSet::new(),
            clients,
            conns: HashMap::new(),
            next_conn: 1,
            healed: false,
            history: History::default(),
            stats: ClusterStats::default(),
            script: cfg.script.clone().map(Script::new),
            fuzz_conns: BTreeMap::new(),
            trace: Default::default(),
            cfg,
        };
        c.create_registers();
        let ids: Vec<u64> = c.servers.keys().copied().collect();
        for id in ids {
            c.start(id)?;
        }
        for client in 0..c.clients.len() {
            let at = c.rng.between(200, 1500) as i64;
            c.at(at, Ev::ClientStep { client });
        }
        if c.cfg.faults {
            c.at(1_500, Ev::Fault);
        }
        c.at(c.cfg.fault_ms, Ev::HealAll);
        Ok(c)
    }

    /// Every server starts with the registers in its log (as if created before the run).
    fn create_registers(&mut self) {
        for s in self.servers.values_mut() {
            for key in 0..self.cfg.registers {
                let header = jute::TxnHeader {
                    client_id: 0,
                    cxid: 0,
                    zxid: key as i64 + 1,
                    time: 0,
                    txn_type: jute::op::CREATE,
                };
                let txn = tree::Txn::Create(jute::CreateTxn {
                    path: clients::register_path(key),
                    data: Some(0u64.to_be_bytes().to_vec()),
                    acl: vec![tree::acl::world_anyone(jute::perms::ALL)],
                    ephemeral: false,
                    parent_cversion: -1,
                });
                s.disk.append(header, txn.body().into());
            }
            s.disk.fsync();
        }
    }

    fn trace(&mut self, line: impl FnOnce() -> String) {
        if self.trace.len() >= 4000 {
            self.trace.pop_front();
        }
        let line = line();
        self.trace.push_back(format!("{:>7} {line}", self.now));
    }

    fn at(&mut self, at: i64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at: at.max(self.now),
            seq: self.seq,
            ev,
        }));
    }

    fn delay(&mut self, lo: u64, hi: u64) -> i64 {
        self.now + self.rng.between(lo, hi) as i64
    }

    /// A server's own clocks at the simulated time.
    fn clock(&self, id: u64) -> Now {
        let s = &self.servers[&id];
        let elapsed = self.now + self.now * s.drift_ppm / 1_000_000;
        Now {
            mono_ms: s.mono_offset + elapsed,
            wall_ms: s.wall_offset + elapsed,
        }
    }

    fn start(&mut self, id: u64) -> Res {
        let (tree, sessions) = self.servers[&id].disk.recover()?;
        let last_zxid = self.servers[&id].disk.last_zxid();
        let window = self.servers[&id].disk.window();
        let persisted = self.servers[&id].disk.epochs;
        let options = NodeOptions {
            durable: true,
            seed: self.rng.next_u64(),
            server_id: id,
            replayed_txns: 0,
            panic_on_create: None,
        };
        let now = self.clock(id);
        let mut node = Node::with_state(self.zoo.clone(), tree, &sessions, options, now);
        let peer = Peer::new(
            id,
            self.quorum.clone(),
            persisted,
            last_zxid,
            TICK_MS as u64,
            self.zoo.init_limit as u64,
            self.zoo.sync_limit as u64,
        )
        .with_logged_window(window);
        node.start_replica(node::Replica::new(peer));
        let s = self.servers.get_mut(&id).expect("known server");
        s.node = Some(node);
        let life = s.life;
        self.trace(|| format!("server {id} starts at zxid 0x{last_zxid:x}"));
        self.execute(id)?;
        let at = self.delay(1, 20);
        self.at(at, Ev::Ticks { id, life });
        Ok(())
    }

    fn run(&mut self) -> Res {
        let end = self.cfg.fault_ms + self.cfg.end_ms;
        while let Some(Reverse(s)) = self.queue.pop() {
            if s.at > end {
                break;
            }
            self.now = s.at;
            self.stats.events += 1;
            self.handle(s.ev)?;
        }
        self.final_checks()
    }

    /// Delivers `event` to server `id` at `at`, if it is still that incarnation then.
    fn deliver_to_node(&mut self, at: i64, id: u64, life: u32, event: Event) {
        self.at(at, Ev::ToNode { id, life, event });
    }

    fn alive(&self, id: u64, life: u32) -> bool {
        self.servers
            .get(&id)
            .is_some_and(|s| s.life == life && s.node.is_some())
    }

    /// Feeds one event to a server and executes what it asks.
    fn feed(&mut self, id: u64, event: Event) -> Res {
        let now = self.clock(id);
        let Some(node) = self.servers.get_mut(&id).and_then(|s| s.node.as_mut()) else {
            return Ok(());
        };
        let before = node.mode();
        node.handle(now, event);
        let after = node.mode();
        if before != after {
            let zxid = node.last_zxid();
            self.trace(|| format!("server {id}: {before:?} -> {after:?} at 0x{zxid:x}"));
        }
        self.execute(id)
    }

    fn handle(&mut self, ev: Ev) -> Res {
        // a paused server's events wait, in order, behind those already waiting
        // (a stranger at the other end of a quorum connection is no server of ours)
        if let Some(s) = self.target(&ev).and_then(|id| self.servers.get_mut(&id)) {
            if s.paused_until > self.now || !s.held.is_empty() {
                s.held.push_back(ev);
                return Ok(());
            }
        }
        self.handle_now(ev)
    }

    fn handle_now(&mut self, ev: Ev) -> Res {
        match ev {
            Ev::Resume { id } => {
                if self.servers[&id].paused_until > self.now {
                    return Ok(()); // paused again meanwhile: its own Resume comes later
                }
                while let Some(ev) = self.servers.get_mut(&id).and_then(|s| s.held.pop_front()) {
                    self.handle_now(ev)?;
                }
            }
            Ev::ToNode { id, life, event } => {
                if self.alive(id, life) {
                    self.feed(id, event)?;
                }
            }
            Ev::LinkDeliver { link, dir } => self.deliver_link(link, dir)?,
            Ev::Fsync { id, life } => {
                if self.alive(id, life) {
                    if self.cfg.faults && !self.healed && self.rng.chance(0.002) {
                        // a write error: the server exits rather than serve with a hole
                        self.trace(|| format!("server {id}: fsync fails, it exits"));
                        return self.crash(id);
                    }
                    let s = self.servers.get_mut(&id).expect("known");
                    if let Some(zxid) = s.disk.fsync() {
                        let resets = s.disk.resets;
                        self.feed(id, Event::Durable { zxid, resets })?;
                    }
                }
            }
            Ev::Ticks { id, life } => {
                if self.alive(id, life) {
                    self.feed(id, Event::ZabTick)?;
                    if self.rng.chance(0.4) {
                        self.feed(id, Event::Tick)?;
                    }
                    if self.rng.chance(0.02) {
                        self.feed(id, Event::ReapContainers)?;
                    }
                    let at = self.delay(15, 25);
                    self.at(at, Ev::Ticks { id, life });
                }
            }
            Ev::ToClient {
                client,
                conn,
                frame,
            } => self.client_frame(client, conn, frame)?,
            Ev::ClientClosed { client, conn } => self.client_lost(client, conn, false)?,
            Ev::ClientStep { client } => self.client_step(client)?,
            Ev::Fault => self.inject_fault()?,
            Ev::Restart { id } => {
                if self.servers[&id].node.is_none() {
                    self.start(id)?;
                }
            }
            Ev::HealAll => self.heal_all()?,
        }
        Ok(())
    }

    fn target(&self, ev: &Ev) -> Option<u64> {
        match ev {
            Ev::ToNode { id, .. } | Ev::Fsync { id, .. } | Ev::Ticks { id, .. } => Some(*id),
            Ev::LinkDeliver { link, dir } => self.links.get(link).map(|l| l.receiver(*dir)),
            _ => None,
        }
    }

    // ---- executing a server's actions (its edges, as crates/server/src/driver.rs) ----

    fn execute(&mut self, id: u64) -> Res {
        loop {
            let Some(node) = self.servers.get_mut(&id).and_then(|s| s.node.as_mut()) else {
                return Ok(());
            };
            let actions = node.take_actions();
            if actions.is_empty() {
                return Ok(());
            }
            for action in actions {
                self.run_action(id, action)?;
                if self.servers[&id].node.is_none() {
                    return Ok(());
                }
            }
        }
    }

    fn run_action(&mut self, id: u64, action: Action) -> Res {
        let life = self.servers[&id].life;
        match action {
            Action::Send { conn, frame, .. } if self.fuzz_conns.contains_key(&conn) => {
                self.fuzz_frame(conn, &frame)?;
            }
            Action::Close { conn } | Action::Abort { conn }
                if self.fuzz_conns.contains_key(&conn) =>
            {
                if let Some(f) = self.fuzz_conns.get_mut(&conn) {
                    f.closed = true;
                }
                self.deliver_to_node(self.now + 1, id, life, Event::Closed { conn });
            }
            Action::ReportWrites { conn } if self.fuzz_conns.contains_key(&conn) => {
                let bytes = self
                    .fuzz_conns
                    .get_mut(&conn)
                    .map_or(0, |f| std::mem::take(&mut f.unreported));
                if bytes > 0 {
                    let event = Event::Written { conn, bytes };
                    self.deliver_to_node(self.now + 1, id, life, event);
                }
            }
            Action::Send { conn, frame, .. } => {
                let at = self.delay(0, 3);
                if let Some(info) = self.conns.get_mut(&conn) {
                    let client = info.client;
                    let at = at.max(info.to_client_at);
                    info.to_client_at = at;
                    self.at(
                        at,
                        Ev::ToClient {
                            client,
                            conn,
                            frame,
                        },
                    );
                }
            }
            Action::Close { conn } | Action::Abort { conn } => {
                if let Some(info) = self.conns.get(&conn) {
                    let client = info.client;
                    // after the frames already on their way
                    let at = self.now.max(info.to_client_at) + 1;
                    self.at(at, Ev::ClientClosed { client, conn });
                }
            }
            Action::ReportWrites { conn } => {
                let Some(info) = self.conns.get(&conn) else {
                    return Ok(());
                };
                let client = info.client;
                let bytes = std::mem::take(&mut self.clients[client].unreported);
                if bytes > 0 {
                    let at = self.now + 1;
                    let event = Event::Written { conn, bytes };
                    self.deliver_to_node(at, id, life, event);
                }
            }
            Action::AnswerFourLetter { .. } | Action::MoveClientListener(_) => {}
            Action::Persist(p) => {
                let body: Bytes = p.txn.body().into();
                self.append(id, p.header.clone(), body)?;
            }
            Action::PersistRaw { header, body } => self.append(id, header, body)?,
            Action::RollLog | Action::ReleaseFreeMemory => {}
            Action::TruncateLog { zxid } => {
                let s = self.servers.get_mut(&id).expect("known");
                s.disk.truncate(zxid);
                let resets = s.disk.resets;
                let at = self.delay(1, 10);
                let event = Event::Durable { zxid, resets };
                self.deliver_to_node(at, id, life, event);
            }
            Action::ResetLogToSnapshot {
                zxid,
                sessions,
                serialized_tree,
            } => {
                let s = self.servers.get_mut(&id).expect("known");
                s.disk.reset_to_snapshot(SnapshotBase {
                    zxid,
                    tree: serialized_tree,
                    sessions,
                });
                let resets = s.disk.resets;
                let at = self.delay(1, 10);
                let event = Event::Durable { zxid, resets };
                self.deliver_to_node(at, id, life, event);
            }
            Action::BeginSnapshot { .. } | Action::EndSnapshot { .. } => {}
            Action::SnapshotBytes(buffer) => {
                let at = self.delay(1, 30);
                let event = Event::SnapshotWritten(buffer);
                self.deliver_to_node(at, id, life, event);
            }
            Action::ScheduleSnapshotStep => {
                let at = self.now;
                let event = Event::SnapshotStep;
                self.deliver_to_node(at, id, life, event);
            }
            Action::ReloadFromDisk => {
                let (tree, sessions) = self.servers[&id].disk.recover()?;
                let event = Event::Reloaded {
                    tree: Box::new(tree),
                    sessions,
                };
                let now = self.clock(id);
                if let Some(node) = self.servers.get_mut(&id).and_then(|s| s.node.as_mut()) {
                    node.handle(now, event);
                }
            }
            Action::SendNotification { to, notification } => {
                let reachable = to == id
                    || (self.servers.get(&to).is_some_and(|s| s.node.is_some())
                        && !self.cut(id, to));
                let dropped = to != id && self.cfg.faults && self.rng.chance(0.02);
                if reachable && !dropped {
                    let to_life = self.servers[&to].life;
                    let at = if to == id {
                        self.now
                    } else {
                        self.delay(1, 15)
                    };
                    let event = Event::Peer(PeerEvent::Notification(notification, Vec::new()));
                    self.deliver_to_node(at, to, to_life, event);
                }
            }
            Action::SendPacket { link, packet } => {
                let mut bytes = Vec::new();
                packet.encode_into(&mut bytes);
                self.send_bytes(id, link, &bytes);
            }
            Action::SendBytes { link, bytes } => self.send_bytes(id, link, &bytes),
            Action::ConnectToLeader { sid, .. } => {
                let reachable =
                    self.servers.get(&sid).is_some_and(|s| s.node.is_some()) && !self.cut(id, sid);
                if reachable {
                    let link = self.next_link;
                    self.next_link += 1;
                    let leader_life = self.servers[&sid].life;
                    self.links
                        .insert(link, Link::new(id, sid, life, leader_life));
                    let at = self.delay(1, 10);
                    let event = Event::Peer(PeerEvent::LeaderUp { sid, link });
                    self.deliver_to_node(at, id, life, event);
                }
            }
            Action::CloseLink { link } => self.close_link_side(id, link),
            Action::StoreEpochs(epochs) => {
                self.servers.get_mut(&id).expect("known").disk.epochs = epochs;
            }
            Action::ConfigProposed(_)
            | Action::ConfigActivated { .. }
            | Action::MovePeerListeners(_) => {}
            Action::Fatal(message) => {
                return Err(format!("server {id} stopped on a fatal error: {message}"));
            }
        }
        Ok(())
    }

    fn append(&mut self, id: u64, header: jute::TxnHeader, body: Bytes) -> Res {
        let life = self.servers[&id].life;
        let s = self.servers.get_mut(&id).expect("known");
        s.disk.append(header, body);
        if !s.disk.fsync_pending {
            s.disk.fsync_pending = true;
            let at = self.delay(1, 8) + if self.rng.chance(0.03) { 150 } else { 0 };
            self.at(at, Ev::Fsync { id, life });
        }
        Ok(())
    }

    fn cut(&self, a: u64, b: u64) -> bool {
        self.isolated.contains(&a) != self.isolated.contains(&b)
    }

    // ---- quorum connections ----

    fn send_bytes(&mut self, from: u64, link: LinkId, bytes: &[u8]) {
        let Some(l) = self.links.get_mut(&link) else {
            return;
        };
        let (dir, _) = l.direction_from(from);
        let d = &mut l.dirs[dir];
        if d.closed || d.receiver_gone {
            return;
        }
        d.bytes.extend_from_slice(bytes);
        if !d.scheduled {
            d.scheduled = true;
            let at = self.delay(1, 6);
            self.at(at, Ev::LinkDeliver { link, dir });
        }
    }

    fn close_link_side(&mut self, from: u64, link: LinkId) {
        let Some(l) = self.links.get_mut(&link) else {
            return;
        };
        let (dir, _) = l.direction_from(from);
        // we stop reading what the other side sends, and our bytes go, then our close
        l.dirs[1 - dir].receiver_gone = true;
        l.dirs[1 - dir].bytes.clear();
        l.dirs[dir].closed = true;
        if !l.dirs[dir].scheduled {
            l.dirs[dir].scheduled = true;
            let at = self.delay(1, 6);
            self.at(at, Ev::LinkDeliver { link, dir });
        }
    }

    fn deliver_link(&mut self, link: LinkId, dir: usize) -> Res {
        let Some(l) = self.links.get(&link) else {
            return Ok(());
        };
        let (to, from) = (l.receiver(dir), l.sender(dir));
        let to_life = if dir == 0 {
            l.leader_life
        } else {
            l.learner_life
        };
        let alive = self.alive(to, to_life);
        let stalled = self.cut(to, from);
        let stranger = !self.servers.contains_key(&from);
        let Some(l) = self.links.get_mut(&link) else {
            return Ok(());
        };
        l.dirs[dir].scheduled = false;
        if !alive {
            // the receiver restarted: this connection is gone for it
            l.dirs[dir].bytes.clear();
            return Ok(());
        }
        if stalled {
            // stalled by the partition: retried until it heals
            l.dirs[dir].scheduled = true;
            let at = self.delay(50, 100);
            self.at(at, Ev::LinkDeliver { link, dir });
            return Ok(());
        }
        if l.dirs[dir].receiver_gone {
            l.dirs[dir].bytes.clear();
            return Ok(());
        }
        let received = match network::take_received(&mut l.dirs[dir]) {
            Ok(r) => r,
            // a stranger's garbage: the server's reader closes the connection
            Err(_) if stranger => {
                l.dirs[dir].receiver_gone = true;
                l.dirs[dir].bytes.clear();
                if l.leader_knows {
                    let event = Event::Peer(PeerEvent::LinkDown { sid: from, link });
                    return self.feed(to, event);
                }
                return Ok(());
            }
            Err(e) => return Err(format!("link {link} from {from} to {to}: {e}")),
        };
        let closed_after = l.dirs[dir].closed && l.dirs[dir].bytes.is_empty();
        let mut events = Vec::new();
        for item in received {
            match item {
                Received::Packet(packet) => {
                    if dir == 0 && !l.leader_knows {
                        match &packet {
                            Packet::FollowerInfo(h) | Packet::ObserverInfo(h) => {
                                let sid = h.info.serverid as u64;
                                if sid != from && !stranger {
                                    return Err(format!("server {from} said it is {sid}"));
                                }
                                if sid != from {
                                    // a stranger naming another server: impersonation needs
                                    // quorum authentication to refuse (issue 19); not simulated
                                    l.dirs[dir].receiver_gone = true;
                                    break;
                                }
                                l.leader_knows = true;
                                events.push(PeerEvent::LearnerUp { sid, link });
                            }
                            _ if stranger => {
                                // the server's reader closes such a connection
                                l.dirs[dir].receiver_gone = true;
                                break;
                            }
                            other => {
                                return Err(format!("learner {from}'s first packet was {other:?}"))
                            }
                        }
                    }
                    if dir == 1 && matches!(packet, Packet::Snap { .. }) {
                        l.held_snap = Some(packet);
                        continue;
                    }
                    events.push(PeerEvent::Packet {
                        sid: from,
                        link,
                        packet,
                    });
                }
                Received::Snapshot(stream) => {
                    events.push(PeerEvent::Snapshot {
                        sid: from,
                        link,
                        stream,
                    });
                    if let Some(packet) = l.held_snap.take() {
                        events.push(PeerEvent::Packet {
                            sid: from,
                            link,
                            packet,
                        });
                    }
                }
            }
        }
        let tell_down = closed_after && !l.dirs[dir].down_told && (dir == 1 || l.leader_knows);
        if tell_down {
            l.dirs[dir].down_told = true;
            events.push(PeerEvent::LinkDown { sid: from, link });
        }
        for ev in events {
            self.feed(to, Event::Peer(ev))?;
        }
        Ok(())
    }

    // ---- faults ----

    fn inject_fault(&mut self) -> Res {
        if self.healed {
            return Ok(());
        }
        if let Some(injection) = self.script.as_mut().and_then(Script::next) {
            self.inject(injection)?;
        }
        let ids: Vec<u64> = self.servers.keys().copied().collect();
        let id = *self.rng.pick(&ids).expect("servers");
        match self.rng.below(10) {
            0..=2 => {
                if self.servers[&id].node.is_some() {
                    self.crash(id)?;
                }
            }
            3..=5 => {
                // isolate one server (its links stall), or heal
                if self.isolated.is_empty() {
                    self.stats.partitions += 1;
                    self.isolated.insert(id);
                    self.trace(|| format!("server {id} isolated"));
                } else {
                    self.isolated.clear();
                    self.trace(|| "partition healed".into());
                }
            }
            6 => {
                let until = self.delay(200, 1_500);
                let s = self.servers.get_mut(&id).expect("known");
                s.paused_until = s.paused_until.max(until);
                let until = s.paused_until;
                self.at(until, Ev::Resume { id });
                self.trace(|| format!("server {id} paused until {until}"));
            }
            7 => {
                // a client vanishes for longer than its session timeout (its session expires)
                let client = self.rng.below(self.clients.len() as u64) as usize;
                if let Some((conn, _)) = self.clients[client].conn {
                    self.client_lost(client, conn, true)?;
                }
                let away = self.clients[client].timeout_ms as u64 * 2;
                let back = self.delay(away, away + 1_000);
                self.clients[client].away_until = back;
                self.trace(|| format!("client {client} away until {back}"));
            }
            _ => {
                // a client's connection breaks
                let client = self.rng.below(self.clients.len() as u64) as usize;
                if let Some((conn, _)) = self.clients[client].conn {
                    self.client_lost(client, conn, true)?;
                }
            }
        }
        let at = self.delay(300, 1_500);
        self.at(at, Ev::Fault);
        Ok(())
    }

    fn crash(&mut self, id: u64) -> Res {
        self.stats.crashes += 1;
        self.trace(|| format!("server {id} crashes"));
        let s = self.servers.get_mut(&id).expect("known");
        s.node = None;
        s.life += 1;
        s.disk.crash();
        // its clients' connections break
        let mut lost: Vec<(ConnId, usize)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.server == id)
            .map(|(&conn, c)| (conn, c.client))
            .collect();
        lost.sort_unstable();
        for (conn, client) in lost {
            let at = self.delay(1, 50);
            self.at(at, Ev::ClientClosed { client, conn });
        }
        // its peers see its connections end (a restarted host answers with resets)
        let mut ends: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(_, l)| l.learner == id || l.leader == id)
            .map(|(&k, _)| k)
            .collect();
        ends.sort_unstable();
        for link in ends {
            self.close_link_side(id, link);
        }
        if !self.healed || self.rng.chance(0.5) {
            let at = self.delay(300, 3_000);
            self.at(at, Ev::Restart { id });
        }
        Ok(())
    }

    fn heal_all(&mut self) -> Res {
        self.healed = true;
        self.isolated.clear();
        self.trace(|| "faults stop: everything heals".into());
        let down: Vec<u64> = self
            .servers
            .iter()
            .filter(|(_, s)| s.node.is_none())
            .map(|(&id, _)| id)
            .collect();
        for id in down {
            self.start(id)?;
        }
        Ok(())
    }

    // ---- clients ----

    fn client_step(&mut self, client: usize) -> Res {
        let c = &self.clients[client];
        if c.away_until > self.now {
            let at = c.away_until;
            self.at(at, Ev::ClientStep { client });
            return Ok(());
        }
        match c.phase {
            Phase::Done => return Ok(()),
            Phase::Idle => self.client_connect(client)?,
            Phase::Connecting => {
                if self.now - self.clients[client].last_heard > 2_000 {
                    if let Some((conn, _)) = self.clients[client].conn {
                        self.client_lost(client, conn, true)?;
                    }
                }
            }
            Phase::Connected => {
                let silent = self.now - self.clients[client].last_heard;
                let waiting = !self.clients[client].pending.is_empty();
                let patience = self.clients[client].timeout_ms as i64 * 2 / 3;
                if waiting && silent > patience {
                    // no answer for too long: try another server (ZooKeeper's clients do)
                    if let Some((conn, _)) = self.clients[client].conn {
                        self.client_lost(client, conn, true)?;
                    }
                } else if self.finishing() {
                    self.close_fuzz_conns()?;
                    if self.clients[client].pending.is_empty() {
                        self.send_request(client, OpKind::Close)?;
                    }
                } else if self.clients[client].pending.len() < 3 {
                    let op = self.draw_op(client);
                    if op == OpKind::Sync {
                        self.send_request(client, OpKind::Sync)?;
                        let key = self.rng.below(self.cfg.registers as u64) as usize;
                        let read = OpKind::Read {
                            key,
                            synced: true,
                            watch: false,
                        };
                        self.send_request(client, read)?;
                    } else {
                        self.send_request(client, op)?;
                    }
                }
            }
        }
        let at = self.delay(5, 60);
        self.at(at, Ev::ClientStep { client });
        Ok(())
    }

    /// Clients close their sessions some seconds after the heal.
    fn finishing(&self) -> bool {
        self.now > self.cfg.fault_ms + self.cfg.settle_ms
    }

    fn draw_op(&mut self, client: usize) -> OpKind {
        if self.rng.chance(self.cfg.hostile) {
            self.stats.hostile_requests += 1;
            let opcodes = [
                jute::op::DELETE_CONTAINER,
                jute::op::CREATE,
                jute::op::SET_DATA,
                jute::op::MULTI,
                jute::op::CHECK,
                jute::op::GET_DATA,
                999,
            ];
            return OpKind::Hostile(*self.rng.pick(&opcodes).expect("opcodes"));
        }
        match self.rng.below(10) {
            0..=3 => {
                let key = self.rng.below(self.cfg.registers as u64) as usize;
                let value = self.history.next_value();
                OpKind::Write { key, value }
            }
            4..=5 => {
                let key = self.rng.below(self.cfg.registers as u64) as usize;
                OpKind::Read {
                    key,
                    synced: false,
                    watch: self.rng.chance(0.5),
                }
            }
            6 => OpKind::Sync,
            _ => match self.clients[client].holds {
                Some(lock) => OpKind::Unlock(lock),
                None => OpKind::Lock(self.rng.below(self.cfg.locks as u64) as usize),
            },
        }
    }

    fn client_connect(&mut self, client: usize) -> Res {
        let up: Vec<u64> = self
            .servers
            .iter()
            .filter(|(_, s)| s.node.is_some())
            .map(|(&id, _)| id)
            .collect();
        let Some(&server) = self.rng.pick(&up) else {
            return Ok(());
        };
        let conn = self.next_conn;
        self.next_conn += 1;
        let life = self.servers[&server].life;
        self.conns.insert(
            conn,
            ConnInfo {
                client,
                server,
                life,
                to_client_at: 0,
                to_server_at: 0,
            },
        );
        let c = &mut self.clients[client];
        c.conn = Some((conn, server));
        c.phase = Phase::Connecting;
        c.last_heard = self.now;
        c.unreported = 0;
        let request = jute::ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: c.last_zxid_seen,
            time_out: c.timeout_ms,
            session_id: c.session_id,
            passwd: Some(c.passwd.clone()),
            read_only: false,
        };
        let remote = format!("10.1.0.{}:{}", client + 1, 40_000 + conn % 20_000)
            .parse()
            .map_err(|e| format!("client address: {e}"))?;
        let session = c.session_id;
        self.trace(|| {
            format!(
                "client {client} connects to server {server} (session 0x{session:x}, conn {conn})"
            )
        });
        self.feed(server, Event::Accepted { conn, remote })?;
        self.feed(
            server,
            Event::Connect {
                conn,
                request,
                old_client: false,
            },
        )
    }

    fn send_request(&mut self, client: usize, op: OpKind) -> Res {
        let Some((conn, server)) = self.clients[client].conn else {
            return Ok(());
        };
        let xid = self.clients[client].take_xid();
        let (op_type, raw) = clients::encode(&op, self.rng.next_u64());
        let request = jute::request::Request::decode(op_type, &raw);
        self.trace(|| {
            format!("client {client} sends xid {xid} {op:?} on conn {conn} to server {server}")
        });
        self.clients[client].pending.push_back(Pending {
            xid,
            op: op.clone(),
            invoked: self.now,
        });
        if let OpKind::Write { key, value } = op {
            self.history.invoke_write(key, value, self.now);
        }
        let received_ms = self.clock(server).mono_ms;
        let mut at = self.delay(0, 3);
        let Some(info) = self.conns.get_mut(&conn) else {
            return Ok(());
        };
        at = at.max(info.to_server_at);
        info.to_server_at = at;
        let life = info.life;
        self.deliver_to_node(
            at,
            server,
            life,
            Event::Request {
                conn,
                xid,
                op_type,
                request,
                raw,
                received_ms,
            },
        );
        Ok(())
    }

    fn client_frame(&mut self, client: usize, conn: ConnId, frame: Bytes) -> Res {
        let c = &mut self.clients[client];
        if c.conn.map(|(k, _)| k) != Some(conn) {
            return Ok(());
        }
        c.unreported += frame.len();
        c.last_heard = self.now;
        // the client reads: report the bytes written now and then
        if c.unreported >= 4096 {
            let bytes = std::mem::take(&mut c.unreported);
            if let Some(info) = self.conns.get(&conn) {
                let (id, life) = (info.server, info.life);
                let event = Event::Written { conn, bytes };
                self.deliver_to_node(self.now + 1, id, life, event);
            }
        }
        let c = &mut self.clients[client];
        if c.phase == Phase::Connecting {
            let (timeout, session, passwd) = clients::parse_connect_response(&frame)?;
            if session == 0 || timeout <= 0 {
                // expired: a new session from scratch
                self.stats.sessions_expired += 1;
                let old = c.session_id;
                self.history.session_ended(old);
                c.session_id = 0;
                c.passwd = vec![0; 16];
                c.holds = None;
                self.trace(|| format!("client {client}: session 0x{old:x} expired"));
                return Ok(());
            }
            if c.session_id != 0 && c.session_id != session {
                return Err(format!(
                    "client {client} asked for session 0x{:x} and got 0x{session:x}",
                    c.session_id
                ));
            }
            c.session_id = session;
            c.passwd = passwd;
            c.phase = Phase::Connected;
            return Ok(());
        }
        let reply = clients::parse_reply(&frame)?;
        let (rx, rz, re) = (reply.xid, reply.zxid, reply.err);
        self.trace(|| {
            format!("client {client} gets xid {rx} zxid 0x{rz:x} err {re} on conn {conn}")
        });
        let c = &mut self.clients[client];
        let conn_id = conn;
        if reply.xid == -1 {
            let (event_type, key) = clients::parse_notification(reply.body)?;
            match key {
                Some(key) if event_type == jute::event::NODE_DATA_CHANGED => {
                    c.watch_log.push(clients::WatchEvent::Fired { conn: conn_id, key });
                    self.stats.notifications += 1;
                }
                _ => {
                    return Err(format!(
                        "client {client}: a notification of type {event_type} for {key:?}, which it never watched"
                    ))
                }
            }
            return Ok(());
        }
        c.watch_log.push(clients::WatchEvent::Reply {
            conn: conn_id,
            zxid: reply.zxid,
        });
        let Some(p) = c.pending.pop_front() else {
            return Err(format!(
                "client {client} got a reply to xid {} with nothing pending",
                reply.xid
            ));
        };
        if p.xid != reply.xid {
            let answered = c
                .pending
                .iter()
                .find(|q| q.xid == reply.xid)
                .map(|q| q.op.clone());
            let server = c.conn.map_or(0, |(_, s)| s);
            let mode = self.servers[&server].node.as_ref().and_then(|n| n.mode());
            return Err(format!(
                "client {client} on server {server} ({mode:?}): reply to xid {} ({answered:?}, err {}) while xid {} ({:?}) was first (replies out of order)",
                reply.xid, reply.err, p.xid, p.op
            ));
        }
        if reply.zxid < c.last_zxid_seen && reply.zxid != 0 && !matches!(p.op, OpKind::Hostile(_)) {
            return Err(format!(
                "client {client} (session 0x{:x}) saw zxid 0x{:x} after 0x{:x}: its view went back",
                c.session_id, reply.zxid, c.last_zxid_seen
            ));
        }
        c.last_zxid_seen = c.last_zxid_seen.max(reply.zxid);
        self.stats.replies += 1;
        if self.healed {
            c.answered_after_heal += 1;
        }
        let session = c.session_id;
        match (&p.op, reply.err) {
            (OpKind::Write { key, value }, 0) => {
                self.stats.writes_acked += 1;
                let stat_mzxid = parse_set_data_mzxid(reply.body)?;
                self.history
                    .ack_write(*key, *value, stat_mzxid, p.invoked, self.now)?;
            }
            (OpKind::Read { key, synced, watch }, 0) => {
                let (value, mzxid) = clients::parse_get_data(reply.body)?;
                if *watch {
                    c.watch_log.push(clients::WatchEvent::Set {
                        conn: conn_id,
                        key: *key,
                        zxid: reply.zxid,
                    });
                }
                if *synced {
                    self.stats.synced_reads += 1;
                }
                self.history
                    .check_read(*key, value, mzxid, *synced, p.invoked, client)?;
            }
            (OpKind::Lock(lock), 0) => {
                self.stats.locks_taken += 1;
                c.holds = Some(*lock);
            }
            (OpKind::Unlock(_), _) => {
                c.holds = None;
            }
            (OpKind::Close, _) => {
                c.phase = Phase::Done;
                c.conn = None;
                self.history.session_ended(session);
            }
            // any of ZooKeeper's answers will do (garbage may even decode as a valid
            // request); what matters is that one came, in order
            (OpKind::Hostile(opcode), err)
                if err != 0 && jute::ErrorCode::from_code(err).is_none() =>
            {
                return Err(format!(
                    "client {client}: opcode {opcode} with garbage answered {err}, no ZooKeeper error code"
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// The connection ended: by the server (`by_client` false) or given up by the client.
    fn client_lost(&mut self, client: usize, conn: ConnId, by_client: bool) -> Res {
        let c = &mut self.clients[client];
        if c.conn.map(|(k, _)| k) != Some(conn) {
            if let Some(info) = self.conns.remove(&conn) {
                let (id, life) = (info.server, info.life);
                self.deliver_to_node(self.now + 1, id, life, Event::Closed { conn });
            }
            return Ok(());
        }
        // what was pending has an unknown outcome
        c.pending.clear();
        c.conn = None;
        if c.phase != Phase::Done {
            c.phase = Phase::Idle;
        }
        self.stats.client_moves += 1;
        self.trace(|| {
            format!(
                "client {client} loses conn {conn} ({})",
                if by_client {
                    "gave up"
                } else {
                    "closed by server"
                }
            )
        });
        if let Some(info) = self.conns.remove(&conn) {
            let (id, life) = (info.server, info.life);
            self.deliver_to_node(self.now + 1, id, life, Event::Closed { conn });
        }
        Ok(())
    }

    // ---- the stateful fuzzer's injections ----

    fn inject(&mut self, injection: Injection) -> Res {
        let ids: Vec<u64> = self.servers.keys().copied().collect();
        let pick = |to: u8| ids[to as usize % ids.len()];
        match injection {
            Injection::Client {
                to,
                session_id,
                timeout,
                last_zxid_seen,
                passwd,
                requests,
            } => {
                let server = pick(to);
                if self.servers[&server].node.is_none() {
                    return Ok(());
                }
                let conn = self.next_conn;
                self.next_conn += 1;
                let life = self.servers[&server].life;
                self.fuzz_conns.insert(
                    conn,
                    FuzzConn {
                        server,
                        life,
                        waiting: requests,
                        connected: false,
                        sent: 0,
                        replies: 0,
                        closed: false,
                        unreported: 0,
                        next_xid: 1,
                    },
                );
                let remote = "10.2.0.1:50000".parse().map_err(|e| format!("{e}"))?;
                self.trace(|| format!("fuzz: connection {conn} to server {server}"));
                self.feed(server, Event::Accepted { conn, remote })?;
                let request = jute::ConnectRequest {
                    protocol_version: 0,
                    last_zxid_seen,
                    time_out: timeout,
                    session_id,
                    passwd: Some(passwd),
                    read_only: false,
                };
                let event = Event::Connect {
                    conn,
                    request,
                    old_client: false,
                };
                self.feed(server, event)
            }
            Injection::QuorumBytes { to, sid, bytes } => {
                let server = pick(to);
                if self.servers[&server].node.is_none() {
                    return Ok(());
                }
                let link = self.next_link;
                self.next_link += 1;
                let leader_life = self.servers[&server].life;
                self.links
                    .insert(link, Link::new(sid, server, 0, leader_life));
                self.trace(|| {
                    format!(
                        "fuzz: {} bytes from stranger {sid} to server {server}",
                        bytes.len()
                    )
                });
                self.send_bytes(sid, link, &bytes);
                Ok(())
            }
            Injection::Notification {
                to,
                sid,
                leader,
                zxid,
                election_epoch,
                peer_epoch,
                looking,
            } => {
                let server = pick(to);
                let notification = zab::election::Notification {
                    sender: sid,
                    state: if looking {
                        zab::election::ServerState::Looking
                    } else {
                        zab::election::ServerState::Leading
                    },
                    vote: zab::election::Vote {
                        leader,
                        zxid,
                        election_epoch,
                        peer_epoch,
                    },
                };
                self.feed(
                    server,
                    Event::Peer(PeerEvent::Notification(notification, Vec::new())),
                )
            }
        }
    }

    /// A frame for one of the fuzzer's connections: the connect response releases its
    /// requests; replies are counted.
    fn fuzz_frame(&mut self, conn: ConnId, frame: &[u8]) -> Res {
        let Some(f) = self.fuzz_conns.get_mut(&conn) else {
            return Ok(());
        };
        f.unreported += frame.len();
        if !f.connected {
            f.connected = true;
            let (server, life) = (f.server, f.life);
            let requests = std::mem::take(&mut f.waiting);
            for (op_type, body) in requests {
                let f = self.fuzz_conns.get_mut(&conn).expect("just seen");
                let xid = f.next_xid;
                f.next_xid += 1;
                f.sent += 1;
                let request = jute::request::Request::decode(op_type, &body);
                let received_ms = self.clock(server).mono_ms;
                let event = Event::Request {
                    conn,
                    xid,
                    op_type,
                    request,
                    raw: Bytes::from(body),
                    received_ms,
                };
                self.deliver_to_node(self.now + 1, server, life, event);
            }
            return Ok(());
        }
        let reply = clients::parse_reply(frame)?;
        if reply.xid != -1 {
            f.replies += 1;
        }
        Ok(())
    }

    /// The fuzzer's clients go away: their sessions expire before the end. Before that, each
    /// of their connections still open on a live server has an answer to every request.
    fn close_fuzz_conns(&mut self) -> Res {
        for (conn, f) in &self.fuzz_conns {
            let live = self.alive(f.server, f.life);
            if live && !f.closed && f.connected && f.replies < f.sent {
                return Err(format!(
                    "fuzz connection {conn} to server {}: {} requests, {} answered, still open",
                    f.server, f.sent, f.replies
                ));
            }
        }
        let open: Vec<(ConnId, u64, u32)> = self
            .fuzz_conns
            .iter()
            .filter(|(_, f)| !f.closed)
            .map(|(&c, f)| (c, f.server, f.life))
            .collect();
        for (conn, id, life) in open {
            if let Some(f) = self.fuzz_conns.get_mut(&conn) {
                f.closed = true;
            }
            self.deliver_to_node(self.now + 1, id, life, Event::Closed { conn });
        }
        Ok(())
    }

    // ---- the end ----

    fn final_checks(&mut self) -> Res {
        checks::final_checks(self)
    }
}

/// setData's reply body is a Stat: its mzxid is the write's zxid.
fn parse_set_data_mzxid(body: &[u8]) -> Result<i64, String> {
    let mut r = jute::Reader::new(body);
    let _czxid = r.read_i64().map_err(|e| e.to_string())?;
    r.read_i64().map_err(|e| e.to_string())
}
