//! The simulator proper: the event loop, the runtime side of every peer output, the fault
//! schedule, the client workload and the invariant checks after every step.

use crate::check::{describe_txn, epoch_of, Clients, Committed, Leaders, PendingWrite};
use crate::net::{Conn, ConnId, Partition, Segment};
use crate::rng::Rng;
use crate::server::{Server, Snapshot};
use crate::{Failure, SimConfig, Stats};
use config::{parse_properties, HostPort, LearnerType, QuorumConfig, QuorumSystem, ServerSpec};
use jute::{CreateTxn, ErrorCode, SetDataTxn, TxnHeader};
use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::fmt::Debug;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;
use tree::{DataTree, Txn};
use zab::election::{Notification, ServerState};
use zab::peer::{Input, Output, Peer, Persisted};
use zab::reconfig::{next_config, ReconfigContext, ReconfigRequest};
use zab::wire::{Packet, ProposalData};

/// Every server is ticked this often (the peer keeps its own Zab tick of `tick_ms`).
const TICK_EVERY_MS: u64 = 10;
/// A run that needs more events than this is livelocked.
const EVENT_BUDGET: u64 = 30_000_000;
/// How long the final write gets to commit everywhere.
const FINAL_WRITE_MS: u64 = 10_000;
/// The client id of the register workload's txns.
const CLIENT_ID: i64 = 0x5eed;
/// The client id of the reconfiguration client's txns.
const RECONFIG_CLIENT_ID: i64 = 0xc0f;

type Res = Result<(), String>;

/// How a run's world behaves, drawn from its seed: how often faults strike, how fast the
/// disks and the network are, how busy the clients are.
#[derive(Debug, Clone, Copy)]
struct Profile {
    /// Between two fault draws (ms).
    fault_gap: (u64, u64),
    /// An fsync (ms).
    fsync: (u64, u64),
    /// A message's delay (ms).
    network: (u64, u64),
    /// Between two client operations (ms).
    client_gap: (u64, u64),
}

impl Profile {
    fn draw(rng: &mut Rng) -> Profile {
        let mut pick = |options: &[(u64, u64)]| *rng.pick(options).expect("options");
        Profile {
            fault_gap: pick(&[(100, 800), (200, 2_500), (1_000, 5_000)]),
            fsync: pick(&[(1, 3), (1, 15), (5, 60)]),
            network: pick(&[(1, 5), (1, 10), (2, 30)]),
            client_gap: pick(&[(1, 10), (2, 40), (20, 200)]),
        }
    }
}

#[derive(Debug)]
enum Ev {
    Tick {
        server: u64,
        inc: u32,
    },
    Notification {
        to: u64,
        n: Notification,
        /// The sender's active configuration, which notifications carry (reconfig runs).
        config: Option<Arc<QuorumConfig>>,
    },
    Connect {
        conn: ConnId,
    },
    Deliver {
        conn: ConnId,
        dir: usize,
    },
    ConnNotice {
        conn: ConnId,
        side: usize,
    },
    PartitionTimeout {
        conn: ConnId,
    },
    /// An fsync completes.
    Durable {
        server: u64,
        inc: u32,
        zxid: i64,
        serial: u64,
    },
    /// The log thread's report of it reaches the peer.
    DurableReport {
        server: u64,
        inc: u32,
        resets: u64,
        zxid: i64,
    },
    Fault,
    Heal {
        partition: u64,
    },
    Restart {
        server: u64,
        inc: u32,
    },
    ClientOp,
    /// The reconfiguration client submits a request.
    Reconfig,
}

#[derive(Debug)]
struct Scheduled {
    at: u64,
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
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    /// Reversed: the heap pops the earliest event, ties in scheduling order.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// The trace ring and the clock, shared outside the world so a panic inside the core still
/// leaves them readable.
#[derive(Debug, Default)]
struct Shared {
    now: u64,
    profile: Option<Profile>,
    cap: Option<usize>,
    lines: VecDeque<String>,
}

pub(crate) fn run_once(cfg: &SimConfig, trace: Option<usize>) -> Result<Stats, Failure> {
    let shared = Rc::new(RefCell::new(Shared {
        cap: trace,
        ..Default::default()
    }));
    let fail = |at_ms: u64, message: String, shared: &Rc<RefCell<Shared>>| Failure {
        seed: cfg.seed,
        reconfig: cfg.reconfig,
        setup: match shared.borrow().profile {
            Some(p) => format!("{}; {p:?}", cfg.describe()),
            None => cfg.describe(),
        },
        at_ms,
        message,
        trace: shared.borrow().lines.iter().cloned().collect(),
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut world = World::new(cfg, shared.clone())?;
        world.run().map(|()| world.stats())
    }));
    let now = shared.borrow().now;
    match outcome {
        Ok(Ok(stats)) => Ok(stats),
        Ok(Err(message)) => Err(fail(now, message, &shared)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "(no message)".into());
            Err(fail(now, format!("panic: {what}"), &shared))
        }
    }
}

fn short<T: Debug>(x: &T) -> String {
    let mut s = format!("{x:?}");
    if s.len() > 200 {
        let mut cut = 200;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// A sync then getData at a leader (the server's sync: a read barrier plus everything
/// proposed before it committed).
#[derive(Debug)]
struct PendingSyncRead {
    server: u64,
    role_gen: u64,
    key: usize,
    barrier: u64,
    /// The leader's last proposed zxid when the sync arrived.
    proposed: i64,
    /// The newest write to `key` acknowledged anywhere when the sync was issued.
    floor: i64,
}

struct World {
    cfg: SimConfig,
    rng: Rng,
    profile: Profile,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Scheduled>,
    /// The initial membership.
    quorum: Arc<QuorumConfig>,
    /// The configuration of the last reconfig the ensemble committed (the initial membership
    /// before any): committed txns must stay durable on a quorum of it.
    current: Arc<QuorumConfig>,
    /// Every reconfig the ensemble committed, by zxid (= version), with its configuration.
    reconfigs: BTreeMap<i64, Arc<QuorumConfig>>,
    /// Reconfigs submitted to a leader and not yet acknowledged or abandoned.
    pending_reconfigs: Vec<PendingWrite>,
    /// Reads after a sync, waiting at their leader for its read barrier and commits.
    pending_syncs: Vec<PendingSyncRead>,
    /// Each server's last read barrier passed (ids grow across its terms; cleared by a crash,
    /// which starts a new peer).
    barrier_passed: BTreeMap<u64, u64>,
    /// Acknowledged reconfigs: (request id, zxid).
    acked_reconfigs: Vec<(u64, i64)>,
    /// The next port number a port change hands out.
    next_port: u16,
    genesis: DataTree,
    servers: Vec<Server>,
    conns: BTreeMap<ConnId, Conn>,
    next_conn: ConnId,
    partitions: Vec<Partition>,
    next_partition: u64,
    next_serial: u64,
    faults_on: bool,
    workload_on: bool,
    committed: Committed,
    leaders: Leaders,
    clients: Clients,
    stats: Stats,
    shared: Rc<RefCell<Shared>>,
    tracing: bool,
}

impl World {
    fn new(cfg: &SimConfig, shared: Rc<RefCell<Shared>>) -> Result<World, String> {
        if !(1..=15).contains(&cfg.voters) || cfg.voters + cfg.observers > 60 {
            return Err(format!(
                "unsupported ensemble: {} voters, {} observers",
                cfg.voters, cfg.observers
            ));
        }
        let members = (cfg.voters + cfg.observers) as u64;
        let line = |id: u64, role: &str| {
            // reconfig runs name client ports: incremental joiners need them
            let client = if cfg.reconfig {
                format!(";10.0.0.{id}:2181")
            } else {
                String::new()
            };
            format!("server.{id}=10.0.0.{id}:2888:3888{role}{client}\n")
        };
        let mut text = String::new();
        for id in 1..=members {
            let role = if id as usize > cfg.voters {
                ":observer"
            } else {
                ""
            };
            text.push_str(&line(id, role));
        }
        let parse = |text: &str| -> Result<Arc<QuorumConfig>, String> {
            let props = parse_properties(text, "sim").map_err(|e| e.to_string())?;
            Ok(Arc::new(QuorumConfig::from_properties(&props)?))
        };
        let quorum = parse(&text)?;
        let genesis = genesis_tree(cfg.keys)?;
        let spares = if cfg.reconfig { cfg.spares as u64 } else { 0 };
        let mut servers = Vec::new();
        for id in 1..=members + spares {
            // a joiner starts with the members and itself as an observer (the manual's safe
            // way): it follows without a vote until a reconfig adds it
            let initial = if id <= members {
                quorum.clone()
            } else {
                parse(&(text.clone() + &line(id, ":observer")))?
            };
            let peer = new_peer(cfg, id, &initial, None, Persisted::default(), 0);
            servers.push(Server::new(id, peer, &genesis, initial));
        }
        let tracing = cfg.trace || shared.borrow().cap.is_some();
        let mut rng = Rng::new(cfg.seed);
        let profile = Profile::draw(&mut rng);
        shared.borrow_mut().profile = Some(profile);
        Ok(World {
            rng,
            profile,
            cfg: cfg.clone(),
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            current: quorum.clone(),
            quorum,
            reconfigs: BTreeMap::new(),
            pending_reconfigs: Vec::new(),
            pending_syncs: Vec::new(),
            barrier_passed: BTreeMap::new(),
            acked_reconfigs: Vec::new(),
            next_port: 10_000,
            genesis,
            servers,
            conns: BTreeMap::new(),
            next_conn: 1,
            partitions: Vec::new(),
            next_partition: 1,
            next_serial: 1,
            faults_on: true,
            workload_on: true,
            committed: Committed::default(),
            leaders: Leaders::default(),
            clients: Clients::new(cfg.keys),
            stats: Stats::default(),
            shared,
            tracing,
        })
    }

    fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.sim_ms = self.now;
        s.committed_txns = self.committed.len() as u64;
        s.epochs_established = self.leaders.count() as u64;
        s
    }

    fn trace(&self, line: impl FnOnce() -> String) {
        if self.tracing {
            let mut sh = self.shared.borrow_mut();
            let cap = sh.cap.unwrap_or(usize::MAX);
            let text = format!("{:>7} {}", self.now, line());
            sh.lines.push_back(text);
            while sh.lines.len() > cap {
                sh.lines.pop_front();
            }
        }
    }

    fn at(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at,
            seq: self.seq,
            ev,
        });
    }

    fn server(&mut self, id: u64) -> &mut Server {
        &mut self.servers[(id - 1) as usize]
    }

    fn ids(&self) -> Vec<u64> {
        self.servers.iter().map(|s| s.id).collect()
    }

    fn partitioned(&self, a: u64, b: u64) -> bool {
        self.partitions.iter().any(|p| p.separates(a, b))
    }

    /// A network delay: usually short, sometimes (a spike) long.
    fn delay(&mut self, lo: u64, hi: u64) -> u64 {
        if self.faults_on && self.rng.chance(self.cfg.faults.delay_spikes) {
            self.rng.between(hi, hi * 40)
        } else {
            self.rng.between(lo, hi)
        }
    }

    // ----- the run -----

    fn run(&mut self) -> Res {
        for id in self.ids() {
            let out = self.server(id).peer.start(0);
            self.outputs(id, out)?;
            let first = self.rng.between(1, TICK_EVERY_MS);
            self.at(first, Ev::Tick { server: id, inc: 0 });
        }
        let f = &self.cfg.faults;
        if f.crashes || f.partitions || f.connection_breaks || f.pauses {
            let first = self.rng.between(500, 2_000);
            self.at(first, Ev::Fault);
        }
        self.at(1_000, Ev::ClientOp);
        if self.cfg.reconfig {
            let first = self.rng.between(1_000, 4_000);
            self.at(first, Ev::Reconfig);
        }
        self.run_until(self.cfg.fault_ms)?;
        self.trace(|| "=== faults stop: heal, restart every server ===".into());
        self.heal_everything()?;
        self.run_until(self.cfg.fault_ms + self.cfg.settle_ms)?;
        self.final_checks()
    }

    fn run_until(&mut self, until: u64) -> Res {
        while self.queue.peek().is_some_and(|e| e.at <= until) {
            let Scheduled { at, ev, .. } = self.queue.pop().expect("peeked");
            self.now = at;
            self.shared.borrow_mut().now = at;
            self.stats.events += 1;
            if self.stats.events > EVENT_BUDGET {
                return Err(format!(
                    "more than {EVENT_BUDGET} events: livelock or message storm"
                ));
            }
            self.handle(ev)?;
        }
        self.now = until;
        self.shared.borrow_mut().now = until;
        Ok(())
    }

    /// The server an event is handled by (its process), if any.
    fn target(&self, ev: &Ev) -> Option<u64> {
        let end = |conn: &ConnId, side: usize| self.conns.get(conn).map(|c| c.ends[side]);
        match ev {
            Ev::Tick { server, .. }
            | Ev::Durable { server, .. }
            | Ev::DurableReport { server, .. } => Some(*server),
            Ev::Notification { to, .. } => Some(*to),
            Ev::Connect { conn } => end(conn, 0),
            Ev::Deliver { conn, dir } => end(conn, 1 - dir),
            Ev::ConnNotice { conn, side } => end(conn, *side),
            _ => None,
        }
    }

    fn handle(&mut self, ev: Ev) -> Res {
        if let Some(id) = self.target(&ev) {
            let until = self.server(id).paused_until;
            if until > self.now {
                // a paused process handles its events, in order, when it resumes
                self.at(until, ev);
                return Ok(());
            }
        }
        match ev {
            Ev::Tick { server, inc } => {
                let s = self.server(server);
                if s.up && s.incarnation == inc {
                    self.step(server, Input::Tick)?;
                    self.at(self.now + TICK_EVERY_MS, Ev::Tick { server, inc });
                }
            }
            Ev::Notification { to, n, config } => {
                if self.server(to).up {
                    self.trace(|| format!("s{to} <- notification {}", short(&n)));
                    // as the server runtime: a newer configuration first, then the vote
                    let ours = self.server(to).peer.config().version;
                    if let Some(config) = config.filter(|c| c.version > ours) {
                        let (inc, v) = (self.server(to).incarnation, config.version);
                        self.trace(|| format!("s{to} sees configuration 0x{v:x}"));
                        self.step(to, Input::ConfigSeen((*config).clone()))?;
                        if !self.server(to).up || self.server(to).incarnation != inc {
                            return Ok(());
                        }
                    }
                    self.step(to, Input::Notification(n))?;
                }
            }
            Ev::Connect { conn } => self.on_connect(conn)?,
            Ev::Deliver { conn, dir } => self.on_deliver(conn, dir)?,
            Ev::ConnNotice { conn, side } => self.on_notice(conn, side)?,
            Ev::PartitionTimeout { conn } => {
                let cut = match self.conns.get(&conn) {
                    Some(c) if !c.broken => self.partitioned(c.ends[0], c.ends[1]),
                    _ => false,
                };
                if cut {
                    self.break_conn(conn, 0, 2_000);
                }
            }
            Ev::Durable {
                server,
                inc,
                zxid,
                serial,
            } => {
                let s = self.server(server);
                if !s.up || s.incarnation != inc {
                    return Ok(());
                }
                // an fsync of a txn truncated meanwhile completes nothing (the runtime's
                // truncation flushes and drops it)
                let Some(i) = s.disk.position(zxid) else {
                    return Ok(());
                };
                if s.disk.serials[i] != serial {
                    return Ok(());
                }
                s.disk.durable = s.disk.durable.max(i + 1);
                // the report travels to the peer on its own: it may arrive after a truncation
                // that cut this txn (even after it was logged again); the runtime drops such
                // a stale report and reports again what survived the truncation
                let resets = s.disk.resets;
                let at = self.now + self.rng.between(0, 3);
                self.at(
                    at,
                    Ev::DurableReport {
                        server,
                        inc,
                        resets,
                        zxid,
                    },
                );
            }
            Ev::DurableReport {
                server,
                inc,
                resets,
                zxid,
            } => {
                let s = self.server(server);
                if s.up && s.incarnation == inc && s.disk.resets == resets {
                    self.trace(|| format!("s{server} <- durable 0x{zxid:x}"));
                    self.step(server, Input::Durable { zxid })?;
                }
            }
            Ev::Fault => {
                if self.faults_on {
                    self.inject_fault()?;
                    let (lo, hi) = self.profile.fault_gap;
                    let next = self.now + self.rng.between(lo, hi);
                    self.at(next, Ev::Fault);
                }
            }
            Ev::Heal { partition } => {
                self.partitions.retain(|p| p.id != partition);
                self.trace(|| format!("partition {partition} heals"));
            }
            Ev::Restart { server, inc } => {
                let s = self.server(server);
                if !s.up && s.incarnation == inc {
                    self.restart(server)?;
                }
            }
            Ev::ClientOp => {
                if self.workload_on {
                    self.client_op()?;
                    let (lo, hi) = self.profile.client_gap;
                    let next = self.now + self.rng.between(lo, hi);
                    self.at(next, Ev::ClientOp);
                }
            }
            Ev::Reconfig => {
                if self.workload_on {
                    self.reconfig_op()?;
                    let next = self.now + self.rng.between(300, 4_000);
                    self.at(next, Ev::Reconfig);
                }
            }
        }
        Ok(())
    }

    /// Steps a server's peer and executes its outputs, then checks the invariants.
    fn step(&mut self, id: u64, input: Input) -> Res {
        if self.tracing && !matches!(input, Input::Tick | Input::Notification(_)) {
            self.trace(|| format!("s{id} step {}", short(&input)));
        }
        let now = self.now;
        let out = self.server(id).peer.step(now, input);
        self.outputs(id, out)?;
        self.check_server(id)?;
        while let Some(input) = self.server(id).deferred.pop_front() {
            self.step(id, input)?;
        }
        Ok(())
    }

    // ----- the runtime: executing a peer's outputs -----

    fn outputs(&mut self, id: u64, outputs: Vec<Output>) -> Res {
        for o in outputs {
            if self.tracing {
                self.trace(|| format!("s{id} -> {}", short(&o)));
            }
            match o {
                Output::SendNotification { to, notification } => {
                    self.send_notification(id, to, notification)
                }
                Output::SendPacket { to, packet } => self.send_packet(id, to, packet, None),
                Output::ReplyPing { to, zxid } => {
                    // no sessions in the simulation: nothing touched
                    let packet = Packet::PingReply {
                        zxid,
                        touches: Vec::new(),
                    };
                    self.send_packet(id, to, packet, None)
                }
                Output::ConnectToLeader { leader } => self.connect(id, leader),
                Output::DropQuorumConnections => {
                    let conns: Vec<ConnId> = std::mem::take(&mut self.server(id).conn_of)
                        .into_values()
                        .collect();
                    for c in conns {
                        self.close_by(id, c);
                    }
                }
                Output::DropLearner { peer } => {
                    if let Some(c) = self.server(id).conn_of.remove(&peer) {
                        self.close_by(id, c);
                    }
                }
                Output::SendSnapshot { to } => self.send_snapshot(id, to)?,
                Output::LoadSnapshot { zxid } => self.load_snapshot(id, zxid)?,
                Output::Truncate { zxid } => self.truncate(id, zxid)?,
                Output::Persist { zxid, data } => self.persist(id, zxid, data)?,
                Output::Commit { zxid, txns } => self.commit(id, zxid, txns)?,
                Output::StoreEpochs(p) => {
                    let s = self.server(id);
                    let old = s.disk.epochs;
                    if p.accepted_epoch < old.accepted_epoch || p.current_epoch < old.current_epoch
                    {
                        return Err(format!("server {id} stores epochs {p:?} after {old:?}"));
                    }
                    if p.current_epoch > p.accepted_epoch {
                        return Err(format!(
                            "server {id} stores current epoch {} above accepted epoch {}",
                            p.current_epoch, p.accepted_epoch
                        ));
                    }
                    s.disk.epochs = p;
                }
                Output::Serving(on) => self.serving(id, on)?,
                Output::ReadBarrierPassed(barrier) => {
                    let passed = self.barrier_passed.entry(id).or_default();
                    *passed = (*passed).max(barrier);
                    self.answer_syncs(id)?;
                }
                Output::ConfigActivated(config) => {
                    // the dynamic file: written when activated, read back at restart
                    let s = self.server(id);
                    let before = s.disk.config.as_ref().map_or(0, |c| c.version);
                    if config.version <= before {
                        return Err(format!(
                            "server {id} activates configuration 0x{:x} after 0x{before:x}",
                            config.version
                        ));
                    }
                    s.disk.config = Some(config);
                }
                Output::Role(state) => {
                    let s = self.server(id);
                    s.role = state;
                    s.role_gen += 1;
                    s.leading_epoch = None;
                    if state == ServerState::Leading {
                        // the learners that were early: as if they connected now
                        for (sender, (cid, packets)) in std::mem::take(&mut s.parked) {
                            s.conn_of.insert(sender, cid);
                            s.deferred
                                .extend(packets.into_iter().map(|packet| Input::Packet {
                                    from: sender,
                                    packet,
                                }));
                        }
                    }
                    // a leader's pending writes are indeterminate once its term ends
                    self.clients.abandon(id);
                    self.pending_reconfigs.retain(|w| w.server != id);
                    self.pending_syncs.retain(|r| r.server != id);
                }
                // forwarded requests, revalidations, session touches: no sessions here
                _ => {}
            }
        }
        Ok(())
    }

    fn send_notification(&mut self, from: u64, to: u64, n: Notification) {
        if to == from || to == 0 || to as usize > self.servers.len() {
            return;
        }
        if self.partitioned(from, to) {
            return;
        }
        if self.faults_on && self.rng.chance(self.cfg.faults.drop_notification) {
            self.stats.notifications_dropped += 1;
            return;
        }
        let copies = if self.faults_on && self.rng.chance(self.cfg.faults.duplicate_notification) {
            2
        } else {
            1
        };
        let config = self
            .cfg
            .reconfig
            .then(|| self.server(from).peer.config().clone());
        for _ in 0..copies {
            // each copy on its own delay: notifications reorder freely
            let (lo, hi) = self.profile.network;
            let at = self.now + self.delay(lo, hi * 2);
            self.at(
                at,
                Ev::Notification {
                    to,
                    n: n.clone(),
                    config: config.clone(),
                },
            );
        }
    }

    fn send_packet(&mut self, from: u64, to: u64, packet: Packet, snap: Option<Arc<Snapshot>>) {
        let Some(&cid) = self.server(from).conn_of.get(&to) else {
            return; // no connection: the packet goes nowhere
        };
        let Some(c) = self.conns.get_mut(&cid) else {
            return;
        };
        let side = c.side_of(from);
        if c.broken || !c.open[side] || !c.established {
            return;
        }
        c.queues[side].push_back(Segment::Data(packet, snap));
        self.schedule_delivery(cid, side);
    }

    fn schedule_delivery(&mut self, cid: ConnId, dir: usize) {
        let (lo, hi) = self.profile.network;
        let arrival = self.now + self.delay(lo, hi);
        let c = self.conns.get_mut(&cid).expect("caller checked");
        let at = arrival.max(c.last_arrival[dir]);
        c.last_arrival[dir] = at;
        self.at(at, Ev::Deliver { conn: cid, dir });
    }

    fn connect(&mut self, learner: u64, leader: u64) {
        if let Some(old) = self.server(learner).conn_of.remove(&leader) {
            self.close_by(learner, old);
        }
        let cid = self.next_conn;
        self.next_conn += 1;
        let inc = self.server(learner).incarnation;
        self.conns.insert(cid, Conn::new(learner, leader, [inc, 0]));
        self.server(learner).conn_of.insert(leader, cid);
        let (lo, hi) = self.profile.network;
        let at = self.now + self.delay(lo, hi);
        self.at(at, Ev::Connect { conn: cid });
    }

    fn on_connect(&mut self, cid: ConnId) -> Res {
        let Some(c) = self.conns.get(&cid) else {
            return Ok(());
        };
        if !c.open[0] || c.broken {
            return Ok(());
        }
        let [learner, leader] = c.ends;
        let reachable = leader >= 1
            && leader as usize <= self.servers.len()
            && self.server(leader).up
            && !self.partitioned(learner, leader);
        if reachable {
            let inc = self.server(leader).incarnation;
            let c = self.conns.get_mut(&cid).expect("checked");
            c.established = true;
            c.incarnations[1] = inc;
            self.trace(|| format!("s{learner} connected to s{leader} (conn {cid})"));
            self.step(learner, Input::ConnectedToLeader)
        } else {
            // refused or timed out: the learner hears of it after a while
            let c = self.conns.get_mut(&cid).expect("checked");
            c.broken = true;
            c.open[1] = false;
            let at = self.now + self.rng.between(10, 1_000);
            self.at(at, Ev::ConnNotice { conn: cid, side: 0 });
            Ok(())
        }
    }

    /// `server` closes its side: what it sent is still delivered, then a FIN.
    fn close_by(&mut self, server: u64, cid: ConnId) {
        let Some(c) = self.conns.get_mut(&cid) else {
            return;
        };
        let side = c.side_of(server);
        if !c.open[side] {
            return;
        }
        c.open[side] = false;
        c.queues[1 - side].clear();
        if !c.broken && c.established {
            c.queues[side].push_back(Segment::Fin);
            self.schedule_delivery(cid, side);
        } else if !c.established {
            c.open[1 - side] = false;
        }
        self.gc(cid);
    }

    /// The network breaks the connection: in-flight data is lost and each side notices on
    /// its own schedule (an RST soon, a timeout later).
    fn break_conn(&mut self, cid: ConnId, lo: u64, hi: u64) {
        let Some(c) = self.conns.get_mut(&cid) else {
            return;
        };
        if c.broken {
            return;
        }
        c.broken = true;
        c.queues[0].clear();
        c.queues[1].clear();
        let open = c.open;
        self.trace(|| format!("conn {cid} breaks"));
        for (side, open) in open.into_iter().enumerate() {
            if open {
                let at = self.now + self.rng.between(lo, hi);
                self.at(at, Ev::ConnNotice { conn: cid, side });
            }
        }
    }

    fn gc(&mut self, cid: ConnId) {
        if let Some(c) = self.conns.get(&cid) {
            let drained = c.queues[0].is_empty() && c.queues[1].is_empty();
            if !c.open[0] && !c.open[1] && (c.broken || drained) {
                self.conns.remove(&cid);
            }
        }
    }

    fn on_notice(&mut self, cid: ConnId, side: usize) -> Res {
        let Some(c) = self.conns.get_mut(&cid) else {
            return Ok(());
        };
        if !c.open[side] {
            return Ok(());
        }
        c.open[side] = false;
        let (me, peer, inc) = (c.ends[side], c.ends[1 - side], c.incarnations[side]);
        self.gc(cid);
        self.lost(me, inc, peer, cid)
    }

    /// `me` notices connection `cid` to `peer` is gone. The runtime reports only the loss of
    /// the connection it uses for that peer (a superseded one was reported when replaced).
    fn lost(&mut self, me: u64, inc: u32, peer: u64, cid: ConnId) -> Res {
        let s = self.server(me);
        if s.parked.get(&peer).is_some_and(|(c, _)| *c == cid) {
            s.parked.remove(&peer);
        }
        if !s.up || s.incarnation != inc || s.conn_of.get(&peer) != Some(&cid) {
            return Ok(());
        }
        s.conn_of.remove(&peer);
        self.step(me, Input::Disconnected { peer })
    }

    fn on_deliver(&mut self, cid: ConnId, dir: usize) -> Res {
        let Some(c) = self.conns.get_mut(&cid) else {
            return Ok(());
        };
        if c.broken {
            return Ok(());
        }
        let (sender, receiver) = (c.ends[dir], c.ends[1 - dir]);
        if self.partitioned(sender, receiver) {
            // TCP retransmits until the partition heals or the connection times out
            let at = self.now + 20;
            self.at(at, Ev::Deliver { conn: cid, dir });
            return Ok(());
        }
        let c = self.conns.get_mut(&cid).expect("checked");
        let Some(segment) = c.queues[dir].pop_front() else {
            return Ok(());
        };
        let r = 1 - dir;
        let inc = c.incarnations[r];
        if !c.open[r] {
            self.gc(cid);
            return Ok(());
        }
        match segment {
            Segment::Fin => {
                c.open[r] = false;
                self.gc(cid);
                self.trace(|| format!("s{receiver} <- FIN from s{sender} (conn {cid})"));
                self.lost(receiver, inc, sender, cid)
            }
            Segment::Data(packet, snap) => {
                let s = self.server(receiver);
                if !s.up || s.incarnation != inc {
                    return Ok(());
                }
                let current = s.conn_of.get(&sender).copied();
                if current != Some(cid) {
                    if r == 0 {
                        return Ok(()); // a learner only listens to its current connection
                    }
                    if let Some((_, packets)) = s.parked.get_mut(&sender).filter(|(c, _)| *c == cid)
                    {
                        packets.push(packet);
                        return Ok(());
                    }
                    // a learner's first packet on a new connection: the runtime takes it
                    // according to what we are (ServerCore's LearnerUp)
                    match s.role {
                        ServerState::Leading => {}
                        ServerState::Looking => {
                            self.trace(|| format!("s{receiver} parks conn {cid} from s{sender}"));
                            let old = self
                                .server(receiver)
                                .parked
                                .insert(sender, (cid, vec![packet]));
                            if let Some((old, _)) = old {
                                self.close_by(receiver, old);
                            }
                            return Ok(());
                        }
                        _ => {
                            self.trace(|| format!("s{receiver} refuses conn {cid} from s{sender}"));
                            self.close_by(receiver, cid);
                            return Ok(());
                        }
                    }
                    // a learner's new connection supersedes its old one: report the old
                    // one's loss first, as the runtime would
                    if let Some(old) = current {
                        self.trace(|| {
                            format!("s{receiver}: conn {cid} from s{sender} replaces conn {old}")
                        });
                        let still_open = self.conns.get_mut(&old).is_some_and(|o| {
                            let side = o.side_of(receiver);
                            std::mem::replace(&mut o.open[side], false)
                        });
                        self.gc(old);
                        if still_open {
                            self.server(receiver).conn_of.remove(&sender);
                            self.step(receiver, Input::Disconnected { peer: sender })?;
                        }
                        let s = self.server(receiver);
                        if !s.up || s.incarnation != inc {
                            return Ok(());
                        }
                    }
                    self.server(receiver).conn_of.insert(sender, cid);
                }
                self.trace(|| format!("s{receiver} <- s{sender}: {}", short(&packet)));
                self.server(receiver).pending_snapshot = snap;
                let r = self.step(
                    receiver,
                    Input::Packet {
                        from: sender,
                        packet,
                    },
                );
                self.server(receiver).pending_snapshot = None;
                r
            }
        }
    }

    // ----- the runtime: storage and the tree -----

    fn persist(&mut self, id: u64, zxid: i64, data: ProposalData) -> Res {
        let serial = self.next_serial;
        self.next_serial += 1;
        let (lo, hi) = self.profile.fsync;
        let fsync = self.delay(lo, hi);
        let now = self.now;
        let s = self.server(id);
        let last = s.disk.last_zxid();
        if zxid <= last && !s.disk.log.is_empty() {
            return Err(format!(
                "server {id} logs 0x{zxid:x} after 0x{last:x}: the txn log must ascend"
            ));
        }
        s.disk.log.push((zxid, data));
        s.disk.serials.push(serial);
        // one log, one fsync after another: durability is reported in log order
        let at = (now + fsync).max(s.disk.fsync_done_ms);
        s.disk.fsync_done_ms = at;
        let inc = s.incarnation;
        self.at(
            at,
            Ev::Durable {
                server: id,
                inc,
                zxid,
                serial,
            },
        );
        Ok(())
    }

    fn commit(&mut self, id: u64, zxid: i64, txns: Vec<(i64, ProposalData)>) -> Res {
        let s = self.server(id);
        let Some(pos) = s.disk.position(zxid) else {
            return Err(format!(
                "server {id} commits 0x{zxid:x}, which is not in its log (last 0x{:x})",
                s.disk.last_zxid()
            ));
        };
        if pos < s.applied {
            return Err(format!(
                "server {id} commits 0x{zxid:x} again: it applied its log up to 0x{:x}",
                s.disk.log[s.applied - 1].0
            ));
        }
        let start = s.applied;
        // the txns handed to the runtime are exactly the log entries being applied
        let expected = &s.disk.log[start..=pos];
        if txns.len() != expected.len() || txns.iter().zip(expected).any(|(a, b)| a != b) {
            let theirs: Vec<String> = txns.iter().map(|(z, _)| format!("0x{z:x}")).collect();
            let ours: Vec<String> = expected.iter().map(|(z, _)| format!("0x{z:x}")).collect();
            return Err(format!(
                "server {id} commits 0x{zxid:x} with txns [{}] but its log holds [{}] after the \
                 last applied txn",
                theirs.join(", "),
                ours.join(", ")
            ));
        }
        s.apply_upto(pos + 1)?;
        if s.serving {
            for i in start..=pos {
                self.record_committed(id, i)?;
            }
        }
        let s = &self.servers[(id - 1) as usize];
        if s.role == ServerState::Leading && s.serving {
            let (gen, now) = (s.role_gen, self.now);
            let acked = self.clients.acknowledge(id, gen, zxid, now)?;
            for w in acked {
                let s = &self.servers[(id - 1) as usize];
                let held = s.disk.position(w.zxid).map(|i| &s.disk.log[i].1);
                if held.is_none_or(|d| d.header.cxid as u64 != w.id) {
                    return Err(format!(
                        "write {} acknowledged at 0x{:x}, but server {id} holds {} there",
                        w.id,
                        w.zxid,
                        held.map_or("nothing".into(), describe_txn)
                    ));
                }
                self.stats.writes_acknowledged += 1;
            }
            self.acknowledge_reconfigs(id, gen, zxid)?;
            self.answer_syncs(id)?;
        }
        Ok(())
    }

    /// The leader committed up to `zxid` in term `role_gen`: its reconfigs up to there are
    /// acknowledged to the client.
    fn acknowledge_reconfigs(&mut self, id: u64, role_gen: u64, zxid: i64) -> Res {
        let (done, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_reconfigs)
            .into_iter()
            .partition(|w| w.server == id && w.role_gen == role_gen && w.zxid <= zxid);
        self.pending_reconfigs = rest;
        for w in done {
            let s = &self.servers[(id - 1) as usize];
            let held = s.disk.position(w.zxid).map(|i| &s.disk.log[i].1);
            if held.is_none_or(|d| {
                d.header.client_id != RECONFIG_CLIENT_ID || d.header.cxid as u64 != w.id
            }) {
                return Err(format!(
                    "reconfig {} acknowledged at 0x{:x}, but server {id} holds {} there",
                    w.id,
                    w.zxid,
                    held.map_or("nothing".into(), describe_txn)
                ));
            }
            self.trace(|| format!("reconfig {} at 0x{:x} acknowledged by s{id}", w.id, w.zxid));
            self.stats.reconfigs_acknowledged += 1;
            self.acked_reconfigs.push((w.id, w.zxid));
        }
        Ok(())
    }

    fn truncate(&mut self, id: u64, zxid: i64) -> Res {
        self.stats.truncations += 1;
        let genesis = self.genesis.clone();
        let s = self.server(id);
        let keep = s.disk.count_upto(zxid);
        let dropped = s.disk.log.split_off(keep);
        s.disk.serials.truncate(keep);
        s.disk.durable = s.disk.durable.min(keep);
        s.verified = s.verified.min(keep);
        if s.applied > keep {
            // ZooKeeper reloads its database after a TRUNC
            s.rebuild_tree(&genesis, keep)?;
        }
        self.reset_durability_reports(id);
        self.check_dropped(&dropped, &format!("server {id} truncates to 0x{zxid:x}"))
    }

    /// Txns dropped from a log: the committed ones among them must remain durable on a quorum.
    fn check_dropped(&self, dropped: &[(i64, ProposalData)], when: &str) -> Res {
        for (z, d) in dropped {
            if self.committed.contains(*z) {
                self.check_durable_on_quorum(*z, d, when)?;
            }
        }
        Ok(())
    }

    fn send_snapshot(&mut self, id: u64, to: u64) -> Res {
        self.stats.snapshots_sent += 1;
        let s = &self.servers[(id - 1) as usize];
        let snap = Snapshot {
            zxid: if s.applied == 0 {
                0
            } else {
                s.disk.log[s.applied - 1].0
            },
            log: s.disk.log[..s.applied].to_vec(),
            tree: s.tree.clone(),
        };
        let Some(&cid) = s.conn_of.get(&to) else {
            return Ok(());
        };
        let Some(c) = self.conns.get_mut(&cid) else {
            return Ok(());
        };
        let side = c.side_of(id);
        if c.broken || !c.open[side] || !c.established {
            return Ok(());
        }
        match c.queues[side].back_mut() {
            Some(Segment::Data(Packet::Snap { zxid }, attached @ None)) => {
                if *zxid != snap.zxid {
                    return Err(format!(
                        "server {id} sends SNAP 0x{:x} to {to} but its applied state is at 0x{:x}",
                        *zxid, snap.zxid
                    ));
                }
                *attached = Some(Arc::new(snap));
                Ok(())
            }
            other => Err(format!(
                "server {id} sends a snapshot to {to} not right after a SNAP (last queued: {})",
                short(&other)
            )),
        }
    }

    fn load_snapshot(&mut self, id: u64, zxid: i64) -> Res {
        let s = &self.servers[(id - 1) as usize];
        let Some(snap) = s.pending_snapshot.clone() else {
            return Err(format!(
                "server {id} loads snapshot 0x{zxid:x} but no snapshot came on the connection"
            ));
        };
        if snap.zxid != zxid {
            return Err(format!(
                "server {id} loads snapshot 0x{zxid:x} but the one received is at 0x{:x}",
                snap.zxid
            ));
        }
        let s = self.server(id);
        s.pending_snapshot = None;
        let old = std::mem::replace(&mut s.disk.log, snap.log.clone());
        s.disk.serials = vec![0; s.disk.log.len()];
        s.disk.durable = s.disk.log.len();
        s.tree = snap.tree.clone();
        s.applied = s.disk.log.len();
        s.verified = 0;
        let dropped: Vec<_> = old.into_iter().filter(|(z, _)| *z > zxid).collect();
        self.reset_durability_reports(id);
        self.check_dropped(&dropped, &format!("server {id} loads snapshot 0x{zxid:x}"))
    }

    /// After a truncation or a snapshot load, reports in flight are stale; what is durable
    /// now is reported anew (the server's log thread does the same after it truncates).
    fn reset_durability_reports(&mut self, id: u64) {
        let s = self.server(id);
        s.disk.resets += 1;
        let (inc, resets) = (s.incarnation, s.disk.resets);
        let Some(zxid) = s.disk.durable.checked_sub(1).map(|i| s.disk.log[i].0) else {
            return;
        };
        let at = self.now + self.rng.between(0, 3);
        self.at(
            at,
            Ev::DurableReport {
                server: id,
                inc,
                resets,
                zxid,
            },
        );
    }

    fn serving(&mut self, id: u64, on: bool) -> Res {
        let s = self.server(id);
        s.serving = on;
        if !on || s.role != ServerState::Leading {
            s.leading_epoch = None;
            return Ok(());
        }
        // a leader established its epoch: its history is committed, and must hold everything
        // the ensemble committed before
        let epoch = s.disk.epochs.current_epoch;
        s.leading_epoch = Some(epoch);
        let inc = s.incarnation;
        self.leaders.established(epoch, id, inc)?;
        let s = &self.servers[(id - 1) as usize];
        let history_end = if s.applied == 0 {
            0
        } else {
            s.disk.log[s.applied - 1].0
        };
        // Only earlier epochs count: a leader paused after its NEWLEADER quorum acked may learn
        // that its epoch was established after a later epoch committed more.
        let before = self.committed.last_zxid_below(epoch << 32);
        if before > history_end {
            return Err(format!(
                "server {id} establishes epoch {epoch} with history up to 0x{history_end:x}, \
                 missing 0x{before:x} which the ensemble committed in an earlier epoch"
            ));
        }
        for i in 0..s.applied {
            self.record_committed(id, i)?;
        }
        Ok(())
    }

    /// Server `id` committed its log entry `i`: it joins the ensemble's committed sequence,
    /// and (when new) it must be durable on a quorum of voters.
    fn record_committed(&mut self, id: u64, i: usize) -> Res {
        let s = &self.servers[(id - 1) as usize];
        let (z, d) = &s.disk.log[i];
        if self.committed.record(*z, d, id)? {
            let when = format!("server {id} commits");
            self.check_durable_on_quorum(*z, d, &when)?;
            if d.header.txn_type == jute::op::RECONFIG {
                let (z, d) = (*z, d.clone());
                self.reconfig_committed(z, &d, &when)?;
            }
        }
        Ok(())
    }

    /// A reconfig joined the committed sequence: it needed a quorum of the old configuration
    /// (checked by the caller) and of the new one; from now on committed txns must stay
    /// durable on a quorum of the new one, which must already hold every one of them.
    fn reconfig_committed(&mut self, zxid: i64, data: &ProposalData, when: &str) -> Res {
        let Some(mut next) = zab::reconfig::config_of_txn(data) else {
            return Err(format!(
                "{when} reconfig 0x{zxid:x} ({}), which carries no configuration",
                describe_txn(data)
            ));
        };
        next.version = zxid;
        let next = Arc::new(next);
        self.trace(|| format!("=== configuration 0x{zxid:x} committed ==="));
        self.stats.reconfigs_committed += 1;
        self.reconfigs.insert(zxid, next.clone());
        self.current = next;
        let mut i = 0;
        while let Some((z, d)) = self.committed.get(i) {
            self.check_durable_on_quorum(*z, d, &format!("{when} reconfig 0x{zxid:x}"))?;
            i += 1;
        }
        Ok(())
    }

    /// A committed txn stays durable on a quorum of the voters of the configuration last
    /// committed, whatever crashes, truncations and snapshots happen: otherwise the next
    /// crashes can lose it (a reconfig moves that duty to its configuration's voters only
    /// once it commits, and then they already hold every earlier txn).
    fn check_durable_on_quorum(&self, zxid: i64, data: &ProposalData, when: &str) -> Res {
        let config = &self.current;
        let holders: BTreeSet<u64> = self
            .servers
            .iter()
            .filter(|s| config.is_voter(s.id))
            .filter(|s| {
                s.disk
                    .position(zxid)
                    .is_some_and(|i| i < s.disk.durable && s.disk.log[i].1 == *data)
            })
            .map(|s| s.id)
            .collect();
        if config.contains_quorum(&holders) {
            Ok(())
        } else {
            Err(format!(
                "{when}: committed 0x{zxid:x} ({}) is durable only on {holders:?}, not a quorum \
                 of configuration 0x{:x} (voters {:?})",
                describe_txn(data),
                config.version,
                config.voters().map(|v| v.id).collect::<Vec<_>>()
            ))
        }
    }

    /// A server's active configuration is its initial one, the initial membership versioned
    /// by an established epoch (ZooKeeper versions the first configuration with the NEWLEADER
    /// zxid), or the configuration of a committed reconfig (same members, quorum system and
    /// version); and its version never goes back, crashes included.
    fn check_config(&mut self, id: u64) -> Res {
        let s = &self.servers[(id - 1) as usize];
        let config = s.peer.config();
        if s.config_checked
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, config))
        {
            return Ok(());
        }
        let v = config.version;
        if v < s.config_version {
            return Err(format!(
                "server {id}'s active configuration went back from version 0x{:x} to 0x{v:x}",
                s.config_version
            ));
        }
        let same =
            |a: &QuorumConfig, b: &QuorumConfig| a.members == b.members && a.system == b.system;
        let ok = if let Some(committed) = self.reconfigs.get(&v) {
            same(committed, config)
        } else if **config == *s.initial {
            true
        } else {
            v != 0
                && v & 0xffff_ffff == 0
                && same(config, &self.quorum)
                && self.leaders.has(v >> 32)
        };
        if !ok {
            let where_ = match self.reconfigs.get(&v) {
                Some(c) => format!(
                    "the reconfig committed at 0x{v:x} carries {}",
                    c.to_dynamic_lines().replace('\n', " ")
                ),
                None => "no reconfig was committed there".into(),
            };
            return Err(format!(
                "server {id} activates configuration 0x{v:x} ({}) but {where_}",
                config.to_dynamic_lines().replace('\n', " ")
            ));
        }
        let s = self.server(id);
        s.config_version = v;
        s.config_checked = Some(s.peer.config().clone());
        Ok(())
    }

    // ----- invariants -----

    fn check_server(&mut self, id: u64) -> Res {
        let s = &self.servers[(id - 1) as usize];
        if !s.up {
            return Ok(());
        }
        if s.serving != s.peer.is_serving() {
            return Err(format!(
                "server {id}: Output::Serving said {} but the peer says is_serving() = {}",
                s.serving,
                s.peer.is_serving()
            ));
        }
        if s.role != s.peer.state() {
            return Err(format!(
                "server {id}: Output::Role said {:?} but the peer is {:?}",
                s.role,
                s.peer.state()
            ));
        }
        if self.cfg.reconfig {
            self.check_config(id)?;
        }
        let s = &self.servers[(id - 1) as usize];
        if s.serving && s.verified < s.applied {
            for i in s.verified..s.applied {
                let (z, d) = &s.disk.log[i];
                match self.committed.get(i) {
                    Some((cz, cd)) if cz == z && cd == d => {}
                    Some((cz, cd)) => {
                        return Err(format!(
                            "server {id} serves with 0x{z:x} ({}) applied at position {i}, \
                             where the ensemble committed 0x{cz:x} ({})",
                            describe_txn(d),
                            describe_txn(cd)
                        ))
                    }
                    None => {
                        return Err(format!(
                            "server {id} serves with 0x{z:x} ({}) applied, which the ensemble \
                             never committed (committed up to 0x{:x})",
                            describe_txn(d),
                            self.committed.last_zxid()
                        ))
                    }
                }
            }
            self.server(id).verified = self.servers[(id - 1) as usize].applied;
        }
        Ok(())
    }

    // ----- faults -----

    fn inject_fault(&mut self) -> Res {
        let f = self.cfg.faults.clone();
        let up: Vec<u64> = self.servers.iter().filter(|s| s.up).map(|s| s.id).collect();
        let down: Vec<u64> = self
            .servers
            .iter()
            .filter(|s| !s.up)
            .map(|s| s.id)
            .collect();
        let leaders: Vec<u64> = self
            .servers
            .iter()
            .filter(|s| s.up && s.role == ServerState::Leading)
            .map(|s| s.id)
            .collect();
        match self.rng.below(100) {
            0..=14 if f.crashes => {
                if let Some(&id) = self.rng.pick(&up) {
                    self.crash(id);
                }
            }
            15..=22 if f.crashes => {
                if let Some(&id) = self.rng.pick(&leaders) {
                    self.crash(id);
                }
            }
            23..=34 if f.crashes => {
                if let Some(&id) = self.rng.pick(&down) {
                    self.restart(id)?;
                }
            }
            35..=49 if f.partitions => {
                let n = self.servers.len() as u64;
                let mut side = 0u64;
                for id in 1..=n {
                    if self.rng.chance(0.5) {
                        side |= 1 << id;
                    }
                }
                if side == 0 || side.count_ones() as u64 == n {
                    side = 1 << self.rng.between(1, n);
                }
                self.partition(side);
            }
            50..=57 if f.partitions => {
                if let Some(&id) = self.rng.pick(&leaders) {
                    self.partition(1 << id);
                }
            }
            73..=79 if f.pauses => {
                if let Some(&id) = self.rng.pick(&up) {
                    let until = self.now + self.rng.between(100, 6_000);
                    self.trace(|| format!("s{id} PAUSES until {until}"));
                    self.stats.pauses += 1;
                    self.server(id).paused_until = until;
                }
            }
            58..=72 if f.connection_breaks => {
                let live: Vec<ConnId> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| c.established && !c.broken)
                    .map(|(id, _)| *id)
                    .collect();
                if let Some(&cid) = self.rng.pick(&live) {
                    self.stats.connection_breaks += 1;
                    self.break_conn(cid, 1, 3_000);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn partition(&mut self, side: u64) {
        self.stats.partitions += 1;
        let id = self.next_partition;
        self.next_partition += 1;
        let heal = self.now + self.rng.between(200, 10_000);
        let p = Partition { id, side };
        self.trace(|| format!("partition {id}: {side:#b} cut off until {heal}"));
        let crossing: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.established && !c.broken && p.separates(c.ends[0], c.ends[1]))
            .map(|(id, _)| *id)
            .collect();
        self.partitions.push(p);
        self.at(heal, Ev::Heal { partition: id });
        for cid in crossing {
            // TCP gives up after its retransmission timeout, unless the partition heals first
            let at = self.now + self.rng.between(300, 5_000);
            self.at(at, Ev::PartitionTimeout { conn: cid });
        }
    }

    fn crash(&mut self, id: u64) {
        self.stats.crashes += 1;
        let keep_unsynced = self.cfg.faults.unsynced_may_survive && self.rng.chance(0.3);
        let extra = self.rng.next_u64();
        // a killed process: its kernel flushes what it sent and closes (FIN), or resets the
        // connections (RST); a dead machine says nothing and its peers time out
        let how = self.rng.below(3);
        let s = self.server(id);
        s.up = false;
        s.incarnation += 1;
        s.serving = false;
        s.leading_epoch = None;
        s.pending_snapshot = None;
        s.conn_of.clear();
        s.parked.clear();
        s.deferred.clear();
        // the log keeps what was reported durable, and maybe some of what was only written
        let mut keep = s.disk.durable;
        if keep_unsynced {
            keep += (extra % (s.disk.log.len() - keep + 1) as u64) as usize;
        }
        s.disk.log.truncate(keep);
        s.disk.serials.truncate(keep);
        s.disk.durable = keep;
        s.verified = s.verified.min(keep);
        let inc = s.incarnation;
        self.trace(|| format!("s{id} CRASHES, log kept up to position {keep}"));
        self.clients.abandon(id);
        self.pending_reconfigs.retain(|w| w.server != id);
        self.pending_syncs.retain(|r| r.server != id);
        self.barrier_passed.remove(&id);
        let conns: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.ends.contains(&id))
            .map(|(cid, _)| *cid)
            .collect();
        for cid in conns {
            let c = self.conns.get_mut(&cid).expect("listed");
            let usable = c.established && !c.broken && c.open[c.side_of(id)];
            match how {
                0 if usable => self.close_by(id, cid),
                0 | 1 => {
                    let side = c.side_of(id);
                    c.open[side] = false;
                    self.break_conn(cid, 1, 50);
                }
                _ => {
                    let side = c.side_of(id);
                    c.open[side] = false;
                    self.break_conn(cid, 1_000, 8_000);
                }
            }
            self.gc(cid);
        }
        if self.rng.chance(0.8) {
            let at = self.now + self.rng.between(200, 8_000);
            self.at(at, Ev::Restart { server: id, inc });
        }
    }

    fn restart(&mut self, id: u64) -> Res {
        let (cfg, genesis, now) = (self.cfg.clone(), self.genesis.clone(), self.now);
        let s = self.server(id);
        s.up = true;
        s.paused_until = 0;
        s.disk.fsync_done_ms = now;
        // the peer treats its whole log as its history (ZooKeeper replays the log at start),
        // its configuration is the dynamic file's, and a newer reconfig in its log is proposed
        let (config, last_seen) = s.boot_configs();
        // and, as the server runtime does, the last logged txns as its DIFF window
        let window_from = s
            .disk
            .log
            .len()
            .saturating_sub(zab::leader::COMMITTED_LOG_WINDOW);
        s.peer = new_peer(
            &cfg,
            id,
            &config,
            last_seen,
            s.disk.epochs,
            s.disk.last_zxid(),
        )
        .with_logged_window(s.disk.log[window_from..].to_vec());
        let len = s.disk.log.len();
        s.rebuild_tree(&genesis, len)?;
        s.verified = s.verified.min(len);
        s.serving = false;
        s.role = ServerState::Looking;
        s.role_gen += 1;
        s.leading_epoch = None;
        s.conn_of.clear();
        s.parked.clear();
        s.deferred.clear();
        let inc = s.incarnation;
        self.trace(|| format!("s{id} RESTARTS with its log up to position {len}"));
        let out = self.server(id).peer.start(now);
        self.outputs(id, out)?;
        self.check_server(id)?;
        let first = now + self.rng.between(1, TICK_EVERY_MS);
        self.at(first, Ev::Tick { server: id, inc });
        Ok(())
    }

    fn heal_everything(&mut self) -> Res {
        self.faults_on = false;
        self.workload_on = false;
        self.partitions.clear();
        for id in self.ids() {
            if !self.server(id).up {
                self.restart(id)?;
            }
        }
        Ok(())
    }

    // ----- the client workload -----

    fn serving_leaders(&self) -> Vec<u64> {
        self.servers
            .iter()
            .filter(|s| {
                s.up && s.serving && s.role == ServerState::Leading && s.paused_until <= self.now
            })
            .map(|s| s.id)
            .collect()
    }

    fn client_op(&mut self) -> Res {
        let leaders = self.serving_leaders();
        let Some(&leader) = self.rng.pick(&leaders) else {
            return Ok(()); // no leader to talk to: the client retries later
        };
        let key = self.rng.below(self.cfg.keys as u64) as usize;
        if self.rng.chance(0.7) {
            self.write(leader, key).map(|_| ())
        } else if self.rng.chance(0.5) {
            self.sync_read(leader, key)
        } else {
            self.read(leader, key)
        }
    }

    /// sync + getData of `key` at `leader`: answered once its read barrier passed and what it
    /// had proposed before has committed (as the server does), then checked for
    /// linearizability: a leader deposed without knowing it must not answer.
    fn sync_read(&mut self, leader: u64, key: usize) -> Res {
        let floor = self.clients.latest_acked(key);
        let s = &mut self.servers[(leader - 1) as usize];
        let proposed = s.peer.next_zxid().map_or(0, |z| z - 1);
        let role_gen = s.role_gen;
        let Some((barrier, out)) = s.peer.request_read_barrier() else {
            return Ok(());
        };
        self.trace(|| format!("client syncs key {key} at s{leader}: barrier {barrier}"));
        self.pending_syncs.push(PendingSyncRead {
            server: leader,
            role_gen,
            key,
            barrier,
            proposed,
            floor,
        });
        self.outputs(leader, out)?;
        self.check_server(leader)?;
        self.answer_syncs(leader)
    }

    /// Answers the synced reads at `id` whose barrier passed and whose proposals committed.
    fn answer_syncs(&mut self, id: u64) -> Res {
        let passed = self.barrier_passed.get(&id).copied().unwrap_or(0);
        let s = &self.servers[(id - 1) as usize];
        let applied_upto = s.applied;
        let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_syncs)
            .into_iter()
            .partition(|r| {
                r.server == id
                    && r.role_gen == s.role_gen
                    && r.barrier <= passed
                    && s.disk.log.partition_point(|(z, _)| *z <= r.proposed) <= applied_upto
            });
        self.pending_syncs = waiting;
        for r in due {
            let value = self.value_at(id, r.key)?;
            self.trace(|| format!("synced read of key {} at s{id}: write {value}", r.key));
            self.stats.synced_reads_checked += 1;
            self.clients.check_synced_read(r.key, value, r.floor, id)?;
        }
        Ok(())
    }

    /// Submits a setData of `key` to `leader`; returns the write id and zxid.
    fn write(&mut self, leader: u64, key: usize) -> Result<Option<(u64, i64)>, String> {
        let id = self.clients.next_id();
        let data = set_data(key, id, self.now);
        let Some((zxid, out)) = self.server(leader).peer.propose(data) else {
            return Ok(None);
        };
        self.stats.writes_proposed += 1;
        let s = &self.servers[(leader - 1) as usize];
        if Some(epoch_of(zxid)) != s.leading_epoch {
            return Err(format!(
                "leader {leader} of epoch {:?} proposes 0x{zxid:x}",
                s.leading_epoch
            ));
        }
        let w = PendingWrite {
            id,
            key,
            zxid,
            server: leader,
            role_gen: s.role_gen,
            invoked_ms: self.now,
            floor: self.clients.floor(),
        };
        self.trace(|| format!("client writes {id} to key {key} at s{leader}: 0x{zxid:x}"));
        self.clients.proposed(w);
        self.outputs(leader, out)?;
        self.check_server(leader)?;
        Ok(Some((id, zxid)))
    }

    /// The write id `key` holds in server `id`'s tree.
    fn value_at(&self, id: u64, key: usize) -> Result<u64, String> {
        let path = key_path(key);
        let Some(node) = self.servers[(id - 1) as usize].tree.node(&path) else {
            return Err(format!("server {id} has no {path}"));
        };
        let bytes = node.data().unwrap_or(&[]);
        let Ok(raw) = <[u8; 8]>::try_from(bytes) else {
            return Err(format!("server {id}: {path} holds {bytes:?}"));
        };
        Ok(u64::from_be_bytes(raw))
    }

    fn read(&mut self, leader: u64, key: usize) -> Res {
        let value = self.value_at(leader, key)?;
        let s = &self.servers[(leader - 1) as usize];
        let epoch = s.leading_epoch.expect("serving leaders have an epoch");
        self.trace(|| format!("client reads key {key} at s{leader}: write {value}"));
        self.stats.reads_checked += 1;
        self.clients.check_read(key, value, epoch, leader)
    }

    // ----- the reconfiguration client -----

    /// A server line for `id` in the simulation's address scheme.
    fn spec(id: u64, role: LearnerType, quorum_port: u16, election_port: u16) -> ServerSpec {
        let host = format!("10.0.0.{id}");
        ServerSpec {
            id,
            quorum: HostPort {
                host: host.clone(),
                port: quorum_port,
            },
            election_port,
            role,
            client: Some(HostPort { host, port: 2181 }),
        }
    }

    fn fresh_port(&mut self) -> u16 {
        self.next_port = if self.next_port >= 60_000 {
            10_000
        } else {
            self.next_port + 1
        };
        self.next_port
    }

    /// Draws a request against `base` (the leader's last configuration seen): what it asks
    /// for, and the membership it must produce (None when it must be refused for its
    /// arguments alone).
    fn draw_reconfig(
        &mut self,
        leader: u64,
        base: &QuorumConfig,
        synced: &BTreeSet<u64>,
    ) -> (String, ReconfigRequest, Option<QuorumConfig>) {
        let all = self.ids();
        let members: Vec<u64> = base.members.keys().copied().collect();
        let others: Vec<u64> = members.iter().copied().filter(|m| *m != leader).collect();
        let outsiders: Vec<u64> = all
            .iter()
            .copied()
            .filter(|id| !base.members.contains_key(id))
            .collect();
        let voters = base.voters().count();
        let entry = |rng: &mut Rng, spec: &ServerSpec| {
            if rng.chance(0.5) {
                format!("server.{}={}", spec.id, spec.to_config_value())
            } else {
                format!("{}={}", spec.id, spec.to_config_value())
            }
        };
        let incremental = |joining: Vec<String>, leaving: Vec<u64>| ReconfigRequest {
            joining: (!joining.is_empty()).then(|| joining.join(",")),
            leaving: (!leaving.is_empty()).then(|| {
                leaving
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            }),
            new_members: None,
            from_config: -1,
        };
        let mut next = base.clone();
        next.version = 0;
        match self.rng.below(100) {
            0..=14 if !others.is_empty() => {
                let id = *self.rng.pick(&others).expect("not empty");
                next.members.remove(&id);
                (
                    format!("remove {id}"),
                    incremental(vec![], vec![id]),
                    Some(next),
                )
            }
            15..=24 => {
                next.members.remove(&leader);
                (
                    format!("remove the leader {leader}"),
                    incremental(vec![], vec![leader]),
                    Some(next),
                )
            }
            25..=44 if !outsiders.is_empty() => {
                let id = *self.rng.pick(&outsiders).expect("not empty");
                let role = if voters < 7 && self.rng.chance(0.7) {
                    LearnerType::Participant
                } else {
                    LearnerType::Observer
                };
                let spec = Self::spec(id, role, 2888, 3888);
                let e = entry(&mut self.rng, &spec);
                next.members.insert(id, spec);
                (
                    format!("add {id} as {role:?}"),
                    incremental(vec![e], vec![]),
                    Some(next),
                )
            }
            45..=57 => {
                let id = *self
                    .rng
                    .pick(&members)
                    .expect("a configuration has members");
                let mut spec = base.members[&id].clone();
                spec.role = match spec.role {
                    LearnerType::Participant => LearnerType::Observer,
                    LearnerType::Observer => LearnerType::Participant,
                };
                let e = entry(&mut self.rng, &spec);
                let what = format!("make {id} {:?}", spec.role);
                next.members.insert(id, spec);
                (what, incremental(vec![e], vec![]), Some(next))
            }
            58..=65 => {
                let id = *self
                    .rng
                    .pick(&members)
                    .expect("a configuration has members");
                let mut spec = base.members[&id].clone();
                match self.rng.below(3) {
                    0 => spec.quorum.port = self.fresh_port(),
                    1 => spec.election_port = self.fresh_port(),
                    _ => {
                        spec.quorum.port = self.fresh_port();
                        spec.election_port = self.fresh_port();
                    }
                }
                let e = entry(&mut self.rng, &spec);
                let what = format!(
                    "move {id} to ports {}:{}",
                    spec.quorum.port, spec.election_port
                );
                next.members.insert(id, spec);
                (what, incremental(vec![e], vec![]), Some(next))
            }
            66..=79 => {
                let (what, request, next) = self.draw_bulk(leader, base, None);
                (what, request, Some(next))
            }
            80..=86 => {
                // leaves no participant: refused whatever else holds
                let ids: Vec<u64> = base.voters().map(|s| s.id).collect();
                for id in &ids {
                    next.members.remove(id);
                }
                (
                    format!("remove every voter {ids:?}"),
                    incremental(vec![], ids),
                    Some(next),
                )
            }
            87..=93 => {
                // voters that are not connected and synced: never a quorum of the new config
                let strangers: Vec<u64> = all
                    .iter()
                    .copied()
                    .filter(|id| !synced.contains(id))
                    .collect();
                let (what, request, next) = self.draw_bulk(leader, base, Some(&strangers));
                (format!("{what} (unsynced voters)"), request, Some(next))
            }
            _ => {
                // conditional on a version that is not the last seen
                let id = *self.rng.pick(&members).expect("members");
                next.members.remove(&id);
                let mut request = incremental(vec![], vec![id]);
                request.from_config = base.version + self.rng.between(1, 3) as i64;
                (
                    format!("remove {id} if at version 0x{:x}", request.from_config),
                    request,
                    Some(next),
                )
            }
        }
    }

    /// A bulk request: a random membership over every server (voters only among `voters_from`
    /// when given), majority or hierarchical.
    fn draw_bulk(
        &mut self,
        leader: u64,
        base: &QuorumConfig,
        voters_from: Option<&[u64]>,
    ) -> (String, ReconfigRequest, QuorumConfig) {
        let mut members = BTreeMap::new();
        let mut voters = Vec::new();
        for id in self.ids() {
            let eligible = voters_from.is_none_or(|v| v.contains(&id));
            // the first eligible stranger is always a voter
            let first = voters_from.is_some() && eligible && voters.is_empty();
            let keep = first || self.rng.chance(0.7) || (id == leader && voters_from.is_none());
            if !keep {
                continue;
            }
            let vote = eligible && voters.len() < 7 && (first || self.rng.chance(0.7));
            let role = if vote {
                voters.push(id);
                LearnerType::Participant
            } else {
                LearnerType::Observer
            };
            // keep the ports a member has (or, rarely, move it)
            let (qp, ep) = match base.members.get(&id) {
                Some(s) if !self.rng.chance(0.1) => (s.quorum.port, s.election_port),
                _ => (2888, 3888),
            };
            members.insert(id, Self::spec(id, role, qp, ep));
        }
        if voters.is_empty() {
            // at least one participant
            let pool: Vec<u64> = match voters_from {
                Some(v) if !v.is_empty() => v.to_vec(),
                _ => vec![leader],
            };
            let id = *self.rng.pick(&pool).expect("not empty");
            let spec = members
                .remove(&id)
                .unwrap_or_else(|| Self::spec(id, LearnerType::Participant, 2888, 3888));
            members.insert(
                id,
                ServerSpec {
                    role: LearnerType::Participant,
                    ..spec
                },
            );
            voters.push(id);
        }
        let mut lines: Vec<String> = members
            .values()
            .map(|s| format!("server.{}={}", s.id, s.to_config_value()))
            .collect();
        let system = if self.rng.chance(0.5) {
            let k = self.rng.between(1, 3.min(voters.len() as u64));
            let mut groups: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
            for (i, id) in voters.iter().enumerate() {
                // every group gets a voter, the rest at random
                let g = if (i as u64) < k {
                    i as u64 + 1
                } else {
                    self.rng.between(1, k)
                };
                groups.entry(g).or_default().insert(*id);
            }
            let mut weights = BTreeMap::new();
            for id in &voters {
                let w = if self.rng.chance(0.1) {
                    0
                } else {
                    self.rng.between(1, 3)
                };
                weights.insert(*id, w);
            }
            for (g, ids) in &groups {
                let list: Vec<String> = ids.iter().map(u64::to_string).collect();
                lines.push(format!("group.{g}={}", list.join(":")));
            }
            for (id, w) in &weights {
                lines.push(format!("weight.{id}={w}"));
            }
            QuorumSystem::Hierarchical { groups, weights }
        } else {
            QuorumSystem::Majority
        };
        let what = format!(
            "bulk {} voters {voters:?} of {:?}",
            if system == QuorumSystem::Majority {
                "majority"
            } else {
                "hierarchical"
            },
            members.keys().collect::<Vec<_>>()
        );
        let request = ReconfigRequest {
            joining: None,
            leaving: None,
            new_members: Some(lines.join(",")),
            from_config: if self.rng.chance(0.3) {
                base.version
            } else {
                -1
            },
        };
        let next = QuorumConfig {
            members,
            system,
            version: 0,
        };
        (what, request, next)
    }

    /// The reconfiguration client: submits a random request to a serving leader, checks that
    /// it is accepted or refused as ZooKeeper would, and proposes what is accepted.
    fn reconfig_op(&mut self) -> Res {
        let leaders = self.serving_leaders();
        let Some(&leader) = self.rng.pick(&leaders) else {
            return Ok(());
        };
        let s = &self.servers[(leader - 1) as usize];
        let active = s.peer.config().clone();
        let last_seen = s.peer.last_seen_config().clone();
        let Some(synced) = s.peer.synced_followers() else {
            return Err(format!("serving leader {leader} has no synced followers"));
        };
        let (what, request, membership) = self.draw_reconfig(leader, &last_seen, &synced);
        // what ZooKeeper answers, in its order of checks
        let expected: Result<QuorumConfig, ErrorCode> = match membership {
            _ if last_seen.version != active.version => Err(ErrorCode::ReconfigInProgress),
            _ if request.from_config != -1 && request.from_config != last_seen.version => {
                Err(ErrorCode::BadVersion)
            }
            _ if request.new_members.is_none() && last_seen.system != QuorumSystem::Majority => {
                Err(ErrorCode::BadArguments)
            }
            None => Err(ErrorCode::BadArguments),
            Some(next) if next.voters().count() == 0 => Err(ErrorCode::BadArguments),
            Some(next) if !next.contains_quorum(&synced) => Err(ErrorCode::NewConfigNoQuorum),
            Some(next) => Ok(next),
        };
        let context = ReconfigContext {
            active: &active,
            last_seen: &last_seen,
            standalone_enabled: false,
            synced: &synced,
        };
        let got = next_config(&context, &request);
        let id = self.clients.next_id();
        self.trace(|| {
            format!(
                "client reconfig {id} at s{leader} (config 0x{:x}, synced {synced:?}): {what}: {:?}",
                last_seen.version,
                got.as_ref().map(|_| "accepted").map_err(|e| e.code)
            )
        });
        let next = match (expected, got) {
            (Ok(want), Ok(next)) if want.members == next.members && want.system == next.system => {
                next
            }
            (Err(want), Err(e)) if want == e.code => {
                self.stats.reconfigs_rejected += 1;
                return Ok(());
            }
            (want, got) => {
                return Err(format!(
                    "reconfig {what} ({request:?}) at leader {leader}: expected {}, got {}",
                    match want {
                        Ok(c) => c.to_dynamic_lines().replace('\n', " "),
                        Err(code) => format!("{code:?}"),
                    },
                    match got {
                        Ok(c) => c.to_dynamic_lines().replace('\n', " "),
                        Err(e) => format!("{:?} ({})", e.code, e.reason),
                    }
                ))
            }
        };
        let Some(zxid) = self.server(leader).peer.next_zxid() else {
            return Err(format!("serving leader {leader} has no next zxid"));
        };
        let mut next = next;
        next.version = zxid;
        let data = zab::reconfig::reconfig_proposal(
            TxnHeader {
                client_id: RECONFIG_CLIENT_ID,
                cxid: id as i32,
                zxid,
                time: self.now as i64,
                txn_type: jute::op::RECONFIG,
            },
            &next.to_config_text(),
        );
        let Some((got, out)) = self.server(leader).peer.propose(data) else {
            return Err(format!("established leader {leader} refuses a reconfig"));
        };
        if got != zxid {
            return Err(format!(
                "leader {leader} said the next zxid was 0x{zxid:x} but proposed at 0x{got:x}"
            ));
        }
        self.stats.reconfigs_proposed += 1;
        let s = &self.servers[(leader - 1) as usize];
        self.pending_reconfigs.push(PendingWrite {
            id,
            key: 0,
            zxid,
            server: leader,
            role_gen: s.role_gen,
            invoked_ms: self.now,
            floor: self.clients.floor(),
        });
        self.outputs(leader, out)?;
        self.check_server(leader)
    }

    // ----- after the storm -----

    fn states(&self) -> String {
        self.servers
            .iter()
            .map(|s| {
                format!(
                    "s{}: {}{:?}{} last 0x{:x}",
                    s.id,
                    if s.up { "" } else { "down " },
                    s.peer.state(),
                    if s.serving { " serving" } else { "" },
                    s.disk.last_zxid()
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn final_checks(&mut self) -> Res {
        let leaders = self.serving_leaders();
        if leaders.len() != 1 {
            return Err(format!(
                "no progress: {} ms after healing there are {} established leaders ({})",
                self.cfg.settle_ms,
                leaders.len(),
                self.states()
            ));
        }
        if let Some(s) = self.servers.iter().find(|s| !s.serving) {
            return Err(format!(
                "no progress: {} ms after healing server {} is not serving ({})",
                self.cfg.settle_ms,
                s.id,
                self.states()
            ));
        }
        // the ensemble commits again
        let leader = leaders[0];
        self.trace(|| "=== final write ===".into());
        let Some((id, zxid)) = self.write(leader, 0)? else {
            return Err(format!("established leader {leader} refuses a proposal"));
        };
        self.run_until(self.now + FINAL_WRITE_MS)?;
        if !self.clients.acked.iter().any(|(w, _, _)| *w == id) {
            return Err(format!(
                "no progress: the final write 0x{zxid:x} was not acknowledged within \
                 {FINAL_WRITE_MS} ms ({})",
                self.states()
            ));
        }
        // every server holds the whole committed sequence, every acknowledged write with it
        let total = self.committed.len();
        for s in &self.servers {
            if s.applied != total || s.verified != s.applied {
                return Err(format!(
                    "server {} applied {} txns (verified {}), the ensemble committed {total} ({})",
                    s.id,
                    s.applied,
                    s.verified,
                    self.states()
                ));
            }
        }
        for (w, zxid, _) in &self.clients.acked {
            if !self.committed.contains(*zxid) {
                return Err(format!("acknowledged write {w} at 0x{zxid:x} was lost"));
            }
        }
        for (r, zxid) in &self.acked_reconfigs {
            if !self.reconfigs.contains_key(zxid) {
                return Err(format!("acknowledged reconfig {r} at 0x{zxid:x} was lost"));
            }
        }
        if self.cfg.reconfig {
            // everyone runs the configuration last committed (the initial membership, maybe
            // versioned differently by different epochs, when no reconfig committed)
            let current = &self.current;
            if !current.is_voter(leader) {
                return Err(format!(
                    "server {leader} leads but is no voter of configuration 0x{:x}",
                    current.version
                ));
            }
            for s in &self.servers {
                let c = s.peer.config();
                let agrees = c.members == current.members
                    && c.system == current.system
                    && (self.reconfigs.is_empty() || c.version == current.version);
                if !agrees {
                    return Err(format!(
                        "server {} runs configuration 0x{:x} ({}), the ensemble committed 0x{:x} \
                         ({}) last",
                        s.id,
                        c.version,
                        c.to_dynamic_lines().replace('\n', " "),
                        current.version,
                        current.to_dynamic_lines().replace('\n', " ")
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Builds a peer as the server runtime does (ensemble_setup): reconfigEnabled as the run
/// says, and a proposed configuration from before a restart.
fn new_peer(
    cfg: &SimConfig,
    id: u64,
    config: &Arc<QuorumConfig>,
    last_seen: Option<Arc<QuorumConfig>>,
    persisted: Persisted,
    last_zxid: i64,
) -> Peer {
    let peer = Peer::new(
        id,
        config.clone(),
        persisted,
        last_zxid,
        cfg.tick_ms,
        cfg.init_limit,
        cfg.sync_limit,
    )
    .with_reconfig_enabled(cfg.reconfig);
    match last_seen {
        Some(next) if cfg.reconfig => peer.with_last_seen(next),
        _ => peer,
    }
}

fn key_path(key: usize) -> String {
    format!("/k{key}")
}

/// Every server starts from the same tree: the registers exist, holding write 0.
fn genesis_tree(keys: usize) -> Result<DataTree, String> {
    let mut tree = DataTree::new();
    for key in 0..keys {
        let header = TxnHeader {
            client_id: CLIENT_ID,
            cxid: 0,
            zxid: 0,
            time: 0,
            txn_type: jute::op::CREATE,
        };
        let txn = Txn::Create(CreateTxn {
            path: key_path(key),
            data: Some(0u64.to_be_bytes().to_vec()),
            acl: vec![tree::acl::world_anyone(jute::perms::ALL)],
            ephemeral: false,
            parent_cversion: -1,
        });
        let r = tree.process_txn(&header, &txn);
        if r.err != 0 {
            return Err(format!(
                "genesis create of {} fails: {}",
                key_path(key),
                r.err
            ));
        }
    }
    Ok(tree)
}

/// The register workload's txn: setData(/k<key>, write id). The cxid carries the write id,
/// which makes every txn distinct.
fn set_data(key: usize, id: u64, now: u64) -> ProposalData {
    let txn = Txn::SetData(SetDataTxn {
        path: key_path(key),
        data: Some(id.to_be_bytes().to_vec()),
        version: (id % i32::MAX as u64) as i32,
    });
    ProposalData {
        header: TxnHeader {
            client_id: CLIENT_ID,
            cxid: id as i32,
            zxid: 0,
            time: now as i64,
            txn_type: jute::op::SET_DATA,
        },
        txn: txn.body().into(),
        digest: None,
    }
}
