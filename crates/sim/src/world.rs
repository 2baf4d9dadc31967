//! The simulator proper: the event loop, the runtime side of every peer output, the fault
//! schedule, the client workload and the invariant checks after every step.

use crate::check::{describe_txn, epoch_of, Clients, Committed, Leaders, PendingWrite};
use crate::net::{Conn, ConnId, Partition, Segment};
use crate::rng::Rng;
use crate::server::{Server, Snapshot};
use crate::{Failure, SimConfig, Stats};
use config::{parse_properties, QuorumConfig};
use jute::{CreateTxn, SetDataTxn, TxnHeader};
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
use zab::wire::{Packet, ProposalData};

/// Every server is ticked this often (the peer keeps its own Zab tick of `tick_ms`).
const TICK_EVERY_MS: u64 = 10;
/// A run that needs more events than this is livelocked.
const EVENT_BUDGET: u64 = 30_000_000;
/// How long the final write gets to commit everywhere.
const FINAL_WRITE_MS: u64 = 10_000;
/// The client id of the register workload's txns.
const CLIENT_ID: i64 = 0x5eed;

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

struct World {
    cfg: SimConfig,
    rng: Rng,
    profile: Profile,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Scheduled>,
    quorum: Arc<QuorumConfig>,
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
        let mut text = String::new();
        for id in 1..=(cfg.voters + cfg.observers) as u64 {
            let role = if id as usize > cfg.voters {
                ":observer"
            } else {
                ""
            };
            text.push_str(&format!(
                "server.{id}=10.0.0.{id}:{}:{}{role}\n",
                2888, 3888
            ));
        }
        let props = parse_properties(&text, "sim").map_err(|e| e.to_string())?;
        let quorum = Arc::new(QuorumConfig::from_properties(&props)?);
        let genesis = genesis_tree(cfg.keys)?;
        let servers = (1..=(cfg.voters + cfg.observers) as u64)
            .map(|id| {
                let peer = new_peer(cfg, id, &quorum, Persisted::default(), 0);
                Server::new(id, peer, &genesis)
            })
            .collect();
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
            quorum,
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
            Ev::Notification { to, n } => {
                if self.server(to).up {
                    self.trace(|| format!("s{to} <- notification {}", short(&n)));
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
        for _ in 0..copies {
            // each copy on its own delay: notifications reorder freely
            let (lo, hi) = self.profile.network;
            let at = self.now + self.delay(lo, hi * 2);
            self.at(at, Ev::Notification { to, n: n.clone() });
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
            self.check_durable_on_quorum(*z, d, &format!("server {id} commits"))?;
        }
        Ok(())
    }

    /// A committed txn stays durable on a quorum of voters, whatever crashes, truncations and
    /// snapshots happen: otherwise the next crashes can lose it.
    fn check_durable_on_quorum(&self, zxid: i64, data: &ProposalData, when: &str) -> Res {
        let holders: BTreeSet<u64> = self
            .servers
            .iter()
            .filter(|s| self.quorum.is_voter(s.id))
            .filter(|s| {
                s.disk
                    .position(zxid)
                    .is_some_and(|i| i < s.disk.durable && s.disk.log[i].1 == *data)
            })
            .map(|s| s.id)
            .collect();
        if self.quorum.contains_quorum(&holders) {
            Ok(())
        } else {
            Err(format!(
                "{when}: committed 0x{zxid:x} ({}) is durable only on {holders:?}, not a quorum",
                describe_txn(data)
            ))
        }
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
        let (cfg, quorum, genesis, now) = (
            self.cfg.clone(),
            self.quorum.clone(),
            self.genesis.clone(),
            self.now,
        );
        let s = self.server(id);
        s.up = true;
        s.paused_until = 0;
        s.disk.fsync_done_ms = now;
        // the peer treats its whole log as its history (ZooKeeper replays the log at start)
        s.peer = new_peer(&cfg, id, &quorum, s.disk.epochs, s.disk.last_zxid());
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
        } else {
            self.read(leader, key)
        }
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

    fn read(&mut self, leader: u64, key: usize) -> Res {
        let s = &self.servers[(leader - 1) as usize];
        let path = key_path(key);
        let Some(node) = s.tree.node(&path) else {
            return Err(format!("server {leader} has no {path}"));
        };
        let bytes = node.data().unwrap_or(&[]);
        let Ok(raw) = <[u8; 8]>::try_from(bytes) else {
            return Err(format!("server {leader}: {path} holds {bytes:?}"));
        };
        let value = u64::from_be_bytes(raw);
        let epoch = s.leading_epoch.expect("serving leaders have an epoch");
        self.trace(|| format!("client reads key {key} at s{leader}: write {value}"));
        self.stats.reads_checked += 1;
        self.clients.check_read(key, value, epoch, leader)
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
        Ok(())
    }
}

fn new_peer(
    cfg: &SimConfig,
    id: u64,
    quorum: &Arc<QuorumConfig>,
    persisted: Persisted,
    last_zxid: i64,
) -> Peer {
    Peer::new(
        id,
        quorum.clone(),
        persisted,
        last_zxid,
        cfg.tick_ms,
        cfg.init_limit,
        cfg.sync_limit,
    )
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
        txn: txn.body(),
        digest: None,
    }
}
