//! The server: one machine owns the data tree, Prepare, sessions and the connections'
//! protocol state, and handles every event in arrival order. That single order is what gives
//! each session FIFO replies and makes a watch event reach a client before any read that
//! could show the new data. Replicated mode (the Zab peer, learner forwarding, syncs) is in
//! [`crate::replica`].

use crate::flow::{Unsent, MAX_CONNECTION_BYTES};
use crate::io::{Action, ConnId, Event, Now};
use crate::replica::Replica;
use crate::rng::SplitMix;
use crate::session::{session_password, SessionTracker};
use crate::stats::{ConnStats, ServerStats};
use bytes::{BufMut, Bytes, BytesMut};
use config::ZooCfg;
use jute::request::{MultiOp, Request};
use jute::{op, perms, xid, ConnectRequest, ErrorCode, Id, Jute, JuteError, ReplyHeader, Stat};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tracing::{debug, info, warn};
use tree::snapshot::FuzzySnapshot;
use tree::{DataTree, Prepared, Preparer, RequestContext, Txn, TxnResult};

/// A client connection as the node sees it.
pub struct Connection {
    /// Bytes queued and not yet reported written.
    pub unsent: Unsent,
    /// Requests held while the connection's unsent replies are over the bound, in order.
    pub(crate) deferred: VecDeque<ClientRequest>,
    pub remote: SocketAddr,
    pub session_id: i64,
    /// Shared with each request's context: a clone per request is a reference count.
    pub auth: Arc<Vec<Id>>,
    pub old_client: bool,
    pub stats: ConnStats,
    pub closing: bool,
    /// Aborted: closed without flushing; nothing more is queued on it.
    pub aborted: bool,
    /// Since when (mono ms) its unsent bytes have been over the bound, if they are.
    pub backlogged_since: Option<i64>,
}

/// A request as read from a client connection (held, in order, while its replies back up).
#[derive(Debug)]
pub(crate) struct ClientRequest {
    pub meta: RequestMeta,
    request: Result<Request, JuteError>,
    raw: Bytes,
}

/// Who asked what, and when: what the reply and the latency statistics need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestMeta {
    pub conn: ConnId,
    pub xid: i32,
    pub op_type: i32,
    /// When its bytes arrived (mono ms).
    pub received_ms: i64,
}

/// Who waits for a txn to be applied.
#[derive(Debug)]
pub(crate) enum Origin {
    Client(RequestMeta),
    Connect {
        conn: ConnId,
        timeout: i32,
    },
    /// Session expiry, container reaping, learners' requests: nobody to answer here.
    Internal,
}

#[derive(Debug)]
pub(crate) struct InFlight {
    pub prepared: Arc<Prepared>,
    pub origin: Origin,
}

/// A session's outstanding requests in arrival order: its writes being persisted, and the
/// reads that arrived after them and must not be answered before them.
#[derive(Debug)]
pub(crate) enum Queued {
    Write(i64),
    /// A follower's write (or sync) forwarded to the leader, answered when its txn commits.
    Forwarded(RequestMeta),
    Read {
        meta: RequestMeta,
        request: Request,
    },
    /// A reply ready before the session's earlier requests were answered: it waits in its
    /// place (a client matches replies to requests in order; ZooKeeper's Java client drops
    /// the connection on an xid out of order).
    Answered {
        meta: RequestMeta,
        frame: Bytes,
    },
}

/// Nodes serialized per step of a snapshot, between two batches of requests.
const SNAPSHOT_STEP_NODES: usize = 2000;
/// Buffers of about a step's size in circulation between the node and the snapshot writer:
/// steps pause while the disk has them all, so a snapshot holds a few MiB of memory whatever
/// the size of the tree (it used to be serialized whole first: a second copy of the tree).
const SNAPSHOT_BUFFERS: usize = 8;

struct SnapshotInProgress {
    snapshot: FuzzySnapshot,
    /// When it started (mono ms).
    started_ms: i64,
    /// Buffers back from the writer, to serialize the next steps into.
    spare: Vec<Vec<u8>>,
    /// An [`Event::SnapshotStep`] is scheduled.
    step_queued: bool,
}

/// How the driver runs the node.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// Txns go to a log ([`Action::Persist`]) and are applied once reported durable; without
    /// one (unit tests) they are applied as soon as they are prepared, and no snapshot is
    /// taken.
    pub durable: bool,
    /// Seeds the node's only randomness (when to snapshot).
    pub seed: u64,
    /// Our myid (0 standalone): the high byte of the session ids we create.
    pub server_id: u64,
    /// Txns replayed at startup after the newest snapshot: they count toward the next one.
    pub replayed_txns: u64,
    /// Tests only: panic on a create of this path (proves that a panic anywhere ends the
    /// process; see tests/panic_exit.rs).
    pub panic_on_create: Option<String>,
}

pub struct Node {
    pub(crate) cfg: Arc<ZooCfg>,
    pub(crate) tree: DataTree,
    pub(crate) prep: Preparer,
    pub(crate) sessions: SessionTracker,
    pub(crate) conns: HashMap<ConnId, Connection>,
    conns_per_ip: HashMap<IpAddr, u32>,
    /// The last zxid handed out.
    pub(crate) zxid: i64,
    pub(crate) stats: ServerStats,
    pub(crate) started_ms: i64,
    /// Prepared txns not yet durable (standalone) or committed (ensemble), in zxid order.
    pub(crate) in_flight: VecDeque<InFlight>,
    pub(crate) session_queues: HashMap<i64, VecDeque<Queued>>,
    pub(crate) durable: bool,
    /// Replicated mode: Zab and what learners and leaders keep. None: standalone.
    pub(crate) zab: Option<Box<Replica>>,
    txns_since_snapshot: u64,
    next_snapshot_after: u64,
    snapshot: Option<SnapshotInProgress>,
    /// The client port in use: clientPort, or the one a reconfiguration gave this server.
    pub(crate) client_port: Option<u16>,
    panic_on_create: Option<String>,
    rng: SplitMix,
    /// The time of the event being handled.
    pub(crate) now: Now,
    /// What the driver must do, in order.
    pub(crate) actions: Vec<Action>,
    /// A fatal error was reported: nothing more is handled.
    pub(crate) failed: bool,
}

/// A request that fails before Prepare: an error txn, which still takes a zxid.
pub(crate) fn error_txn(
    session_id: i64,
    cxid: i32,
    zxid: i64,
    now: i64,
    code: ErrorCode,
) -> Prepared {
    Prepared {
        header: jute::TxnHeader {
            client_id: session_id,
            cxid,
            zxid,
            time: now,
            txn_type: op::ERROR,
        },
        txn: Txn::Error(jute::ErrorTxn { err: code.code() }),
        error: Some(code),
    }
}

/// Starts a reply frame: a length placeholder and the reply header.
pub(crate) fn begin_frame(xid: i32, zxid: i64, err: i32) -> BytesMut {
    let mut b = BytesMut::with_capacity(128);
    b.put_i32(0);
    ReplyHeader { xid, zxid, err }.write(&mut b);
    b
}

/// A reply frame with the zxid of its header replaced (a reply held in its session's order
/// is stamped with the zxid at which it is sent).
fn restamp(frame: Bytes, zxid: i64) -> Bytes {
    // length (4), xid (4), then the zxid
    if frame.len() < 16 {
        return frame;
    }
    let mut b = BytesMut::from(&frame[..]);
    b[8..16].copy_from_slice(&zxid.to_be_bytes());
    b.freeze()
}

pub(crate) fn finish_frame(mut b: BytesMut) -> Bytes {
    let len = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&len.to_be_bytes());
    b.freeze()
}

impl Node {
    /// An in-memory standalone server with an empty tree: txns are applied as soon as they
    /// are prepared.
    pub fn new(cfg: Arc<ZooCfg>, now: Now) -> Self {
        Self::with_state(cfg, DataTree::new(), &[], NodeOptions::default(), now)
    }

    /// A server over a recovered tree and its sessions (which expire unless their clients
    /// come back).
    pub fn with_state(
        cfg: Arc<ZooCfg>,
        tree: DataTree,
        sessions: &[(i64, i32)],
        options: NodeOptions,
        now: Now,
    ) -> Self {
        let mut tracker = SessionTracker::new(options.server_id as i64, now.wall_ms, cfg.tick_time);
        for &(id, timeout) in sessions {
            tracker.add(id, timeout.max(0) as u32, now.mono_ms);
        }
        let zxid = tree.last_processed_zxid;
        let mut node = Node {
            sessions: tracker,
            tree,
            prep: Preparer::new(),
            conns: HashMap::new(),
            conns_per_ip: HashMap::new(),
            zxid,
            stats: ServerStats::default(),
            started_ms: now.wall_ms,
            in_flight: VecDeque::new(),
            session_queues: HashMap::new(),
            durable: options.durable,
            txns_since_snapshot: options.replayed_txns,
            next_snapshot_after: 0,
            snapshot: None,
            zab: None,
            client_port: cfg.client_port,
            panic_on_create: options.panic_on_create,
            rng: SplitMix::new(options.seed),
            now,
            actions: Vec::new(),
            failed: false,
            cfg,
        };
        node.next_snapshot_after = node.snapshot_threshold();
        node
    }

    /// ZooKeeper snapshots after snapCount/2 + random(snapCount/2) txns, so that the servers
    /// of an ensemble do not all snapshot at once.
    fn snapshot_threshold(&mut self) -> u64 {
        let half = (self.cfg.snap_count / 2).max(1);
        half + self.rng.below(half)
    }

    /// The actions queued so far, in order; the driver executes them all before the next
    /// event.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// [`Node::take_actions`] into a buffer the driver reuses.
    pub fn drain_actions_into(&mut self, out: &mut Vec<Action>) {
        out.append(&mut self.actions);
    }

    pub(crate) fn act(&mut self, action: Action) {
        self.actions.push(action);
    }

    /// Stops the node: the driver exits with `message`.
    pub(crate) fn fatal(&mut self, message: String) {
        tracing::error!("{message}; exiting");
        self.failed = true;
        self.actions.push(Action::Fatal(message));
    }

    /// Whether a fatal error stopped the node.
    pub fn has_failed(&self) -> bool {
        self.failed
    }

    /// Prepared txns waiting to become durable or committed.
    pub fn outstanding(&self) -> usize {
        self.in_flight.len()
    }

    pub fn handle(&mut self, now: Now, event: Event) {
        if self.failed {
            return;
        }
        debug_assert!(
            now.mono_ms >= self.now.mono_ms,
            "the monotonic clock went back"
        );
        self.now = now;
        match event {
            Event::Accepted { conn, remote } => self.on_accepted(conn, remote),
            Event::Written { conn, bytes } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.unsent.written(bytes);
                    self.resume_deferred(conn);
                }
            }
            Event::Connect {
                conn,
                request,
                old_client,
            } => self.on_connect(conn, request, old_client),
            Event::Request {
                conn,
                xid,
                op_type,
                request,
                raw,
                received_ms,
            } => {
                let request = ClientRequest {
                    meta: RequestMeta {
                        conn,
                        xid,
                        op_type,
                        received_ms,
                    },
                    request,
                    raw,
                };
                match self.conns.get_mut(&conn) {
                    // the client does not read its replies: its requests wait, in order
                    Some(c) if !c.deferred.is_empty() || c.unsent.is_backlogged() => {
                        c.deferred.push_back(request);
                        self.resume_deferred(conn);
                    }
                    _ => self.on_request(request),
                }
            }
            Event::Closed { conn } => self.on_closed(conn),
            Event::FourLetter { conn, word, arg } => self.on_four_letter(conn, word, arg),
            Event::Tick => {
                self.close_slow_consumers();
                if self.zab.is_none() || self.is_leading() {
                    self.expire_sessions()
                }
            }
            Event::Durable { zxid, resets } => {
                if self.zab.is_some() {
                    self.zab_durable(zxid, resets)
                } else {
                    self.on_durable(zxid)
                }
            }
            Event::SnapshotStep => self.snapshot_step(),
            Event::SnapshotWritten(buffer) => self.snapshot_written(buffer),
            Event::Reloaded { tree, sessions } => self.replace_state(*tree, &sessions),
            Event::ReapContainers => {
                if self.zab.is_none() || self.is_leading() {
                    self.reap_containers()
                }
            }
            Event::Peer(ev) => self.on_peer_event(ev),
            Event::ZabTick => self.zab_tick(),
        }
    }

    /// A four-letter word: counted like a request; the reset words reset here; the driver
    /// answers from the getters.
    fn on_four_letter(&mut self, conn: ConnId, word: String, arg: Option<i64>) {
        self.stats.packets_received += 1;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.stats.received += 1;
        }
        let allowed = self.cfg.four_letter_whitelist.allows(&word);
        if allowed && self.mode().is_some() {
            match word.as_str() {
                "crst" => {
                    for c in self.conns.values_mut() {
                        c.stats.reset();
                    }
                }
                "srst" => self.stats.reset(),
                _ => {}
            }
        }
        self.act(Action::AnswerFourLetter { conn, word, arg });
        self.close_conn(conn);
    }

    pub fn last_zxid(&self) -> i64 {
        self.tree.last_processed_zxid
    }

    // ---- read-only getters (four-letter words, admin, metrics, the simulator's checks) ----

    pub fn config(&self) -> &ZooCfg {
        &self.cfg
    }

    pub fn tree(&self) -> &DataTree {
        &self.tree
    }

    pub fn stats(&self) -> &ServerStats {
        &self.stats
    }

    pub fn sessions(&self) -> &SessionTracker {
        &self.sessions
    }

    pub fn connections(&self) -> &HashMap<ConnId, Connection> {
        &self.conns
    }

    /// Replicated mode's state; None standalone.
    pub fn replica(&self) -> Option<&Replica> {
        self.zab.as_deref()
    }

    /// When the node was created (wall ms).
    pub fn started_ms(&self) -> i64 {
        self.started_ms
    }

    /// The client port in use: clientPort, or the one a reconfiguration gave this server.
    pub fn client_port(&self) -> Option<u16> {
        self.client_port
    }

    /// Our myid in an ensemble: on the leader, the owner of the sessions connected here.
    fn my_server_id(&self) -> Option<u64> {
        self.zab.as_ref().map(|z| z.my_id())
    }

    /// Queues the answer to a request.
    pub(crate) fn send(&mut self, conn: ConnId, frame: Bytes) {
        self.queue_frame(conn, frame, true)
    }

    /// `reply`: the frame answers a request; a watch notification does not.
    fn queue_frame(&mut self, conn: ConnId, frame: Bytes, reply: bool) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.aborted {
            return;
        }
        c.stats.sent += 1;
        self.stats.packets_sent += 1;
        c.unsent.queued(frame.len());
        self.actions.push(Action::Send { conn, frame, reply });
        if c.unsent.is_over_budget() {
            // only notifications get this far (replies wait): they cannot be held back
            // nor dropped, so the connection goes; its client reconnects and sets its
            // watches again
            warn!(
                "closing connection from {} (session 0x{:x}): over {} MiB of notifications and replies it does not read",
                c.remote,
                c.session_id,
                MAX_CONNECTION_BYTES >> 20
            );
            c.closing = true;
            c.aborted = true;
            self.actions.push(Action::Abort { conn });
        }
    }

    /// Closes the connections that stayed backlogged longer than their session timeout
    /// (a client that does not read what it asked for, or is sent).
    fn close_slow_consumers(&mut self) {
        let now = self.now.mono_ms;
        let min_timeout = self.cfg.min_session_timeout as i64;
        // in connection order: the actions of a tick do not depend on hashing
        let mut ids: Vec<ConnId> = self.conns.keys().copied().collect();
        ids.sort_unstable();
        for conn in ids {
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            if !c.unsent.is_backlogged() {
                c.backlogged_since = None;
                continue;
            }
            if c.unsent.start_waiting() {
                // our count may be stale (writes are reported in batches): ask for it
                self.actions.push(Action::ReportWrites { conn });
            }
            let since = *c.backlogged_since.get_or_insert(now);
            let timeout = (c.stats.session_timeout as i64).max(min_timeout);
            if now - since > timeout && !c.aborted {
                warn!(
                    "closing connection from {} (session 0x{:x}): it has not read its replies for {} ms",
                    c.remote,
                    c.session_id,
                    now - since
                );
                c.closing = true;
                c.aborted = true;
                self.actions.push(Action::Abort { conn });
            }
        }
    }

    /// Answers a connection's held requests while its reply backlog stays under the bound.
    fn resume_deferred(&mut self, conn: ConnId) {
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            if c.deferred.is_empty() {
                return;
            }
            if c.unsent.is_backlogged() {
                if c.unsent.start_waiting() {
                    self.actions.push(Action::ReportWrites { conn });
                }
                return;
            }
            let Some(request) = c.deferred.pop_front() else {
                return;
            };
            self.on_request(request);
        }
    }

    pub(crate) fn close_conn(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            if !c.closing {
                c.closing = true;
                self.actions.push(Action::Close { conn });
            }
        }
    }

    fn on_accepted(&mut self, conn: ConnId, remote: SocketAddr) {
        let ip = remote.ip();
        let count = self.conns_per_ip.entry(ip).or_insert(0);
        let max = self.cfg.max_client_cnxns;
        let over_limit = max > 0 && *count >= max;
        *count += 1;
        let previous = self.conns.insert(
            conn,
            Connection {
                unsent: Unsent::default(),
                deferred: VecDeque::new(),
                remote,
                session_id: 0,
                auth: Arc::new(vec![Id {
                    scheme: "ip".into(),
                    id: ip.to_string(),
                }]),
                old_client: false,
                stats: ConnStats::new(self.now.wall_ms),
                closing: false,
                aborted: false,
                backlogged_since: None,
            },
        );
        debug_assert!(previous.is_none(), "connection {conn} accepted twice");
        if over_limit {
            warn!("Too many connections from {ip} - max is {max}");
            self.close_conn(conn);
        }
    }

    fn on_closed(&mut self, conn: ConnId) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        if let Some(n) = self.conns_per_ip.get_mut(&c.remote.ip()) {
            *n -= 1;
            if *n == 0 {
                self.conns_per_ip.remove(&c.remote.ip());
            }
        }
        self.tree.remove_watcher(conn);
        if let Some(s) = self.sessions.get_mut(c.session_id) {
            if s.conn == Some(conn) {
                s.conn = None;
            }
        }
        debug!(
            "closed connection {conn} from {} session 0x{:x}",
            c.remote, c.session_id
        );
    }

    pub(crate) fn connect_response(
        &mut self,
        conn: ConnId,
        timeout: i32,
        session_id: i64,
        passwd: Vec<u8>,
    ) {
        let old_client = self.conns.get(&conn).is_some_and(|c| c.old_client);
        let mut b = BytesMut::with_capacity(64);
        b.put_i32(0);
        b.put_i32(0); // protocolVersion
        b.put_i32(timeout);
        b.put_i64(session_id);
        jute::write_buffer(&mut b, &passwd);
        if !old_client {
            b.put_u8(0); // readOnly: this server is never a read-only server
        }
        self.send(conn, finish_frame(b));
    }

    fn on_connect(&mut self, conn: ConnId, req: ConnectRequest, old_client: bool) {
        let now = self.now.mono_ms;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.closing {
            return;
        }
        c.old_client = old_client;
        if req.last_zxid_seen > self.tree.last_processed_zxid {
            info!(
                "Refusing session request for client {} as it has seen zxid 0x{:x} our last zxid is 0x{:x} client must try another server",
                c.remote, req.last_zxid_seen, self.tree.last_processed_zxid
            );
            self.close_conn(conn);
            return;
        }
        let timeout = (req.time_out.max(0) as u32)
            .clamp(self.cfg.min_session_timeout, self.cfg.max_session_timeout);
        if self.zab.is_some() && !self.is_leading() {
            // a learner: sessions are created and revalidated by the leader
            return self.learner_connect(conn, &req, timeout, now);
        }
        if req.session_id == 0 {
            let Some(zxid) = self.zxid_or_close(conn) else {
                return;
            };
            let session_id = self.sessions.create(timeout, now);
            let me = self.my_server_id();
            if let Some(s) = self.sessions.get_mut(session_id) {
                s.conn = Some(conn);
                s.owner = me;
            }
            if let Some(c) = self.conns.get_mut(&conn) {
                c.session_id = session_id;
                c.stats.session_timeout = timeout;
            }
            let prepared =
                self.prep
                    .create_session(session_id, timeout as i32, zxid, self.now.wall_ms);
            info!(
                "Established session 0x{session_id:x} with negotiated timeout {timeout} for client {}",
                self.conns[&conn].remote
            );
            // the client hears of its session once createSession is durable
            self.submit(
                prepared,
                Origin::Connect {
                    conn,
                    timeout: timeout as i32,
                },
            );
            return;
        }
        let session_id = req.session_id;
        let password_ok = req.passwd.as_deref() == Some(&session_password(session_id)[..]);
        if password_ok && self.sessions.touch(session_id, now) {
            self.attach_session(conn, session_id, timeout);
        } else {
            info!(
                "Invalid session 0x{session_id:x} for client {}, probably expired",
                self.conns[&conn].remote
            );
            self.reject_session(conn);
        }
    }

    /// A live session moves to `conn` (a reconnect): the connect is answered, and the
    /// session's previous connection, now stale, is closed.
    pub(crate) fn attach_session(&mut self, conn: ConnId, session_id: i64, timeout: u32) {
        let me = self.my_server_id();
        let Some(session) = self.sessions.get_mut(session_id) else {
            return self.reject_session(conn);
        };
        let previous = session.conn.replace(conn);
        session.timeout_ms = timeout;
        if me.is_some() {
            // the leader's record of where the session lives now (learners forget theirs
            // when they lead)
            session.owner = me;
        }
        if let Some(old) = previous.filter(|&old| old != conn) {
            self.close_conn(old);
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session_id = session_id;
            c.stats.session_timeout = timeout;
        }
        info!("Re-established session 0x{session_id:x} with negotiated timeout {timeout}");
        self.connect_response(
            conn,
            timeout as i32,
            session_id,
            session_password(session_id),
        );
    }

    /// ZooKeeper's answer to a connect with an unknown, expired or mis-passworded session:
    /// timeout 0, session 0, then close.
    pub(crate) fn reject_session(&mut self, conn: ConnId) {
        self.connect_response(conn, 0, 0, vec![0; 16]);
        self.close_conn(conn);
    }

    /// The zxid the next prepared txn gets. None on a server that cannot propose (a leader
    /// whose epoch is not established, or no longer): the caller answers without a txn.
    pub(crate) fn next_zxid(&mut self) -> Option<i64> {
        if let Some(z) = &self.zab {
            // the leader proposes each prepared txn at once, in order: Zab assigns the zxid
            self.zxid = z.next_zxid()?;
            return Some(self.zxid);
        }
        self.zxid += 1;
        Some(self.zxid)
    }

    /// The next zxid for a client's request; without one the client is disconnected, to retry
    /// elsewhere (ZooKeeper closes connections when its server stops leading).
    fn zxid_or_close(&mut self, conn: ConnId) -> Option<i64> {
        let zxid = self.next_zxid();
        if zxid.is_none() {
            warn!(
                "cannot prepare a txn now (not an established leader): closing connection {conn}"
            );
            self.close_conn(conn);
        }
        zxid
    }

    /// Applies a prepared txn to the tree, retires its change records, updates sessions and
    /// delivers the watch events it fired.
    pub(crate) fn apply(&mut self, prepared: &Prepared) -> TxnResult {
        let rc = self.tree.process_txn(&prepared.header, &prepared.txn);
        self.prep.applied(prepared.header.zxid);
        match prepared.txn {
            Txn::CreateSession(ref t) => {
                let id = prepared.header.client_id;
                match self.sessions.get_mut(id) {
                    Some(s) => s.creating = false,
                    // created through another server of the ensemble
                    None => self
                        .sessions
                        .add(id, t.time_out.max(0) as u32, self.now.mono_ms),
                }
            }
            Txn::CloseSession(_) => {
                self.sessions.remove(prepared.header.client_id);
            }
            _ => {}
        }
        self.deliver_events();
        rc
    }

    /// A request that fails before Prepare still takes a zxid, with an error txn.
    fn submit_error(&mut self, meta: RequestMeta, session_id: i64, code: ErrorCode) {
        let Some(zxid) = self.zxid_or_close(meta.conn) else {
            return;
        };
        let prepared = error_txn(session_id, meta.xid, zxid, self.now.wall_ms, code);
        self.submit(prepared, Origin::Client(meta));
    }

    /// Hands a prepared txn to storage; it is applied and answered once durable.
    pub(crate) fn submit(&mut self, prepared: Prepared, origin: Origin) {
        let prepared = Arc::new(prepared);
        let zxid = prepared.header.zxid;
        if !matches!(origin, Origin::Internal) {
            self.session_queues
                .entry(prepared.header.client_id)
                .or_default()
                .push_back(Queued::Write(zxid));
        }
        self.in_flight.push_back(InFlight {
            prepared: prepared.clone(),
            origin,
        });
        if self.zab.is_some() {
            return self.propose(prepared);
        }
        if self.durable {
            self.act(Action::Persist(prepared));
        } else {
            self.on_durable(zxid);
        }
    }

    /// Applies and answers every in-flight txn up to `zxid`, in zxid order, then the reads
    /// each session queued behind it.
    fn on_durable(&mut self, zxid: i64) {
        while self
            .in_flight
            .front()
            .is_some_and(|f| f.prepared.header.zxid <= zxid)
        {
            let in_flight = self.in_flight.pop_front().expect("non-empty");
            self.apply_and_answer(in_flight);
        }
        if self.txns_since_snapshot >= self.next_snapshot_after && self.durable {
            self.take_snapshot();
        }
    }

    /// Applies a txn, answers whoever waits for it, then the reads queued behind it.
    pub(crate) fn apply_and_answer(&mut self, in_flight: InFlight) {
        let InFlight { prepared, origin } = in_flight;
        {
            let session_id = prepared.header.client_id;
            let closing_conn = match prepared.txn {
                Txn::CloseSession(_) => self.sessions.get(session_id).and_then(|s| s.conn),
                _ => None,
            };
            let rc = self.apply(&prepared);
            match origin {
                Origin::Internal => {}
                Origin::Connect { conn, timeout } => {
                    self.connect_response(conn, timeout, session_id, session_password(session_id));
                    // the createSession heads its session's queue: what follows may go on
                    let zxid = prepared.header.zxid;
                    if let Some(queue) = self.session_queues.get_mut(&session_id) {
                        if let Some(i) = queue
                            .iter()
                            .position(|q| matches!(q, Queued::Write(z) if *z == zxid))
                        {
                            queue.remove(i);
                        }
                    }
                }
                Origin::Client(meta) => {
                    let frame = self.write_reply(meta.xid, session_id, &prepared, &rc);
                    if matches!(prepared.txn, Txn::CloseSession(_)) && prepared.error.is_none() {
                        // the session ends here: nothing of it is answered after this
                        self.send(meta.conn, frame);
                        self.finish_request(meta);
                        self.close_conn(meta.conn);
                    } else {
                        let zxid = prepared.header.zxid;
                        self.answer_in_order(session_id, meta, Some(zxid), frame);
                    }
                }
            }
            if let Some(conn) = closing_conn {
                // the session is gone: so is its connection (after the closeSession reply)
                self.session_queues.remove(&session_id);
                self.close_conn(conn);
            }
            self.drain_session_queue(session_id);
            self.txns_since_snapshot += 1;
        }
    }

    /// Snapshot when enough txns were applied since the last one.
    pub(crate) fn maybe_snapshot(&mut self) {
        if self.txns_since_snapshot >= self.next_snapshot_after && self.durable {
            self.take_snapshot();
        }
    }

    /// Sends the reply to a request in its session's order: at once when nothing of the
    /// session waits ahead of it, else held in the request's place in the session's queue
    /// (found by its zxid for a write prepared here, by its xid for a forwarded one).
    pub(crate) fn answer_in_order(
        &mut self,
        session_id: i64,
        meta: RequestMeta,
        zxid: Option<i64>,
        frame: Bytes,
    ) {
        let Some(queue) = self.session_queues.get_mut(&session_id) else {
            self.send(meta.conn, frame);
            self.finish_request(meta);
            return;
        };
        let place = queue.iter().position(|q| match q {
            Queued::Write(z) => Some(*z) == zxid,
            Queued::Forwarded(m) => m.xid == meta.xid && m.conn == meta.conn,
            _ => false,
        });
        match place {
            Some(0) => {
                queue.pop_front();
                self.send(meta.conn, frame);
                self.finish_request(meta);
                self.drain_session_queue(session_id);
            }
            Some(i) => queue[i] = Queued::Answered { meta, frame },
            None if queue.is_empty() => {
                self.send(meta.conn, frame);
                self.finish_request(meta);
            }
            None => queue.push_back(Queued::Answered { meta, frame }),
        }
    }

    /// Answers what waits at the head of a session's queue, up to its next pending write.
    pub(crate) fn drain_session_queue(&mut self, session_id: i64) {
        loop {
            let Some(queue) = self.session_queues.get_mut(&session_id) else {
                return;
            };
            match queue.front() {
                None => {
                    self.session_queues.remove(&session_id);
                    return;
                }
                Some(Queued::Write(_)) | Some(Queued::Forwarded(_)) => return,
                Some(Queued::Read { .. }) => {
                    let Some(Queued::Read { meta, request }) = queue.pop_front() else {
                        return;
                    };
                    self.handle_read(meta.conn, meta.xid, session_id, request);
                    self.finish_request(meta);
                }
                Some(Queued::Answered { .. }) => {
                    let Some(Queued::Answered { meta, frame }) = queue.pop_front() else {
                        return;
                    };
                    // answered now: the zxid a client sees never goes back
                    let frame = restamp(frame, self.tree.last_processed_zxid);
                    self.send(meta.conn, frame);
                    self.finish_request(meta);
                }
            }
        }
    }

    /// Starts a fuzzy snapshot: the tree is serialized a few thousand nodes at a time between
    /// batches of requests, so writes never stop for it; recovery replays the log from the
    /// zxid it started at.
    fn take_snapshot(&mut self) {
        self.txns_since_snapshot = 0;
        self.next_snapshot_after = self.snapshot_threshold();
        if self.snapshot.is_some() {
            warn!("Too busy to snap, skipping");
            return;
        }
        if !self.durable {
            return;
        }
        self.act(Action::RollLog);
        let sessions: Vec<(i64, i32)> = self
            .sessions
            .iter()
            .filter(|s| !s.creating)
            .map(|s| (s.id, s.timeout_ms as i32))
            .collect();
        let snapshot = FuzzySnapshot::start(&mut self.tree);
        self.act(Action::BeginSnapshot {
            zxid: snapshot.start_zxid,
            sessions,
        });
        let buffer = || Vec::with_capacity(tree::snapshot::STEP_BYTES + (64 << 10));
        self.snapshot = Some(SnapshotInProgress {
            snapshot,
            started_ms: self.now.mono_ms,
            spare: (0..SNAPSHOT_BUFFERS).map(|_| buffer()).collect(),
            step_queued: false,
        });
        self.queue_snapshot_step();
    }

    /// Queues the next step of the snapshot in progress behind the requests already queued
    /// (one at a time: a step queues the next itself).
    fn queue_snapshot_step(&mut self) {
        let Some(s) = self.snapshot.as_mut() else {
            return;
        };
        if !s.step_queued {
            s.step_queued = true;
            self.actions.push(Action::ScheduleSnapshotStep);
        }
    }

    /// Serializes the next part of the snapshot into a spare buffer and hands it to the
    /// writer; without a spare buffer the snapshot waits for the writer to return one.
    fn snapshot_step(&mut self) {
        let Some(s) = self.snapshot.as_mut() else {
            return;
        };
        s.step_queued = false;
        let Some(mut buffer) = s.spare.pop() else {
            return;
        };
        let done = s
            .snapshot
            .step(&self.tree, SNAPSHOT_STEP_NODES, &mut buffer);
        self.actions.push(Action::SnapshotBytes(buffer));
        if !done {
            if !s.spare.is_empty() {
                self.queue_snapshot_step();
            }
            return;
        }
        self.actions.push(Action::EndSnapshot { complete: true });
        let Some(s) = self.snapshot.take() else {
            return;
        };
        debug!(
            "snapshot at 0x{:x} serialized in {} ms",
            s.snapshot.start_zxid,
            self.now.mono_ms - s.started_ms
        );
        s.snapshot.finish(&mut self.tree);
    }

    /// A buffer the snapshot writer is done with: the next step may use it.
    fn snapshot_written(&mut self, mut buffer: Vec<u8>) {
        let Some(s) = self.snapshot.as_mut() else {
            return;
        };
        // (a buffer of an abandoned snapshot may come back during the next one)
        if s.spare.len() < SNAPSHOT_BUFFERS {
            buffer.clear();
            s.spare.push(buffer);
        }
        self.queue_snapshot_step();
    }

    /// Abandons the snapshot in progress: the tree it reads is being replaced (a learner's
    /// SNAP, or a reload after a TRUNC below what was applied).
    pub(crate) fn abandon_snapshot(&mut self) {
        if let Some(s) = self.snapshot.take() {
            warn!(
                "snapshot at 0x{:x} abandoned: the tree is replaced",
                s.snapshot.start_zxid
            );
            s.snapshot.finish(&mut self.tree);
            self.act(Action::EndSnapshot { complete: false });
        }
    }

    pub(crate) fn finish_request(&mut self, meta: RequestMeta) {
        let RequestMeta {
            conn,
            op_type,
            received_ms,
            ..
        } = meta;
        if op_type == op::AUTH {
            return;
        }
        let latency = (self.now.mono_ms - received_ms).max(0);
        self.stats.record_latency(latency);
        let zxid = self.tree.last_processed_zxid;
        if let Some(c) = self.conns.get_mut(&conn) {
            // (cons shows when, as a date)
            c.stats.record(latency, zxid, self.now.wall_ms);
        }
    }

    pub(crate) fn deliver_events(&mut self) {
        for ev in self.tree.drain_events() {
            if let (Some(acl), false) = (&ev.acl, self.cfg.skip_acl) {
                // a watcher that may not read the znode does not hear about it (CVE-2024-23944)
                let allowed = self
                    .conns
                    .get(&ev.watcher)
                    .is_some_and(|c| tree::acl::check_acl(acl, perms::READ, &c.auth));
                if !allowed {
                    continue;
                }
            }
            let mut b = begin_frame(xid::NOTIFICATION, -1, 0);
            jute::WatcherEvent {
                event_type: ev.event_type,
                state: jute::keeper_state::SYNC_CONNECTED,
                path: ev.path,
            }
            .write(&mut b);
            self.queue_frame(ev.watcher, finish_frame(b), false);
        }
    }

    pub(crate) fn context<'a>(
        &self,
        auth: &'a [Id],
        session_id: i64,
        cxid: i32,
        now: i64,
    ) -> RequestContext<'a> {
        RequestContext {
            session_id,
            cxid,
            auth,
            time: now,
            skip_acl: self.cfg.skip_acl,
            extended_types_enabled: self.cfg.extended_types_enabled,
            reconfig_enabled: self.cfg.reconfig_enabled,
        }
    }

    fn on_request(&mut self, r: ClientRequest) {
        let ClientRequest { meta, request, raw } = r;
        let RequestMeta {
            conn, xid, op_type, ..
        } = meta;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.closing {
            return;
        }
        let session_id = c.session_id;
        c.stats.received += 1;
        if xid >= 0 {
            c.stats.last_cxid = xid;
        }
        if op_type != op::AUTH {
            c.stats.last_op = op_type;
        }
        self.stats.packets_received += 1;
        if let Some(z) = self.zab.as_mut() {
            z.note_touch(session_id, &self.sessions);
        }
        if !self.sessions.touch(session_id, self.now.mono_ms) {
            self.reply_error(conn, xid, ErrorCode::SessionExpired);
            self.close_conn(conn);
            return;
        }
        if op_type == op::CHECK {
            // a version check outside a multi (no ZooKeeper client sends one): ZooKeeper 3.8
            // logs and proposes it as a txn of type 13, which its learners cannot take (they
            // drop the leader, so one request moves the leadership) and its own restart
            // cannot read. zkrs answers it without a txn.
            warn!("a check outside a multi from session 0x{session_id:x}: answered Unimplemented");
            self.reply_error_in_order(session_id, meta, ErrorCode::Unimplemented);
            return;
        }
        if self.zab.is_some() && !self.is_leading() && is_forwarded_op(op_type) {
            // a learner forwards every write and sync as received, malformed or not: the
            // leader decides its answer (an error txn for a malformed write or a client's
            // deleteContainer), as ZooKeeper's FollowerRequestProcessor does
            self.forward(meta, session_id, raw);
            return;
        }
        if op_type == op::DELETE_CONTAINER {
            // only the server's container reaper may delete containers; ZooKeeper answers a
            // client's deleteContainer with BadArguments (after spending a zxid on it)
            self.submit_error(meta, session_id, ErrorCode::BadArguments);
            return;
        }
        let mut request = match request {
            Ok(r) => r,
            Err(JuteError::InvalidValue { what: "opcode", .. }) => {
                warn!("Received packet at server of unknown type {op_type} from 0x{session_id:x}");
                self.reply_error_in_order(session_id, meta, ErrorCode::Unimplemented);
                return;
            }
            Err(e) => {
                warn!(
                    "Malformed {} request from session 0x{session_id:x}: {e}",
                    op::name(op_type)
                );
                if is_write_op(op_type) {
                    // ZooKeeper gives a malformed write an error txn, which takes a zxid
                    self.submit_error(meta, session_id, ErrorCode::MarshallingError);
                } else {
                    self.reply_error_in_order(session_id, meta, ErrorCode::MarshallingError);
                }
                return;
            }
        };
        if request.is_write() {
            self.handle_write(meta, session_id, &mut request);
        } else if let (Request::Sync(sync), true) = (&request, self.zab.is_some()) {
            // leading: answered after a read barrier (see Node::leader_sync)
            let path = sync.path.clone();
            self.leader_client_sync(meta, session_id, path);
        } else if matches!(request, Request::Auth(_)) {
            // auth is answered at once, as ZooKeeper does, outside the request order
            self.handle_read(conn, xid, session_id, request);
        } else if let Some(queue) = self.session_queues.get_mut(&session_id) {
            // reads wait behind the session's earlier writes (FIFO per session)
            queue.push_back(Queued::Read { meta, request });
        } else {
            self.handle_read(conn, xid, session_id, request);
            self.finish_request(meta);
        }
    }

    pub(crate) fn reply_error(&mut self, conn: ConnId, xid: i32, code: ErrorCode) {
        let frame = finish_frame(begin_frame(xid, self.tree.last_processed_zxid, code.code()));
        self.send(conn, frame);
    }

    fn handle_write(&mut self, meta: RequestMeta, session_id: i64, request: &mut Request) {
        let Some(auth) = self.conns.get(&meta.conn).map(|c| c.auth.clone()) else {
            return;
        };
        if let Some(me) = self.my_server_id() {
            if !matches!(request, Request::CloseSession)
                && !self.sessions.check_owner(session_id, me)
            {
                // the client moved here from a server whose stale writes may still arrive
                return self.submit_error(meta, session_id, ErrorCode::SessionMoved);
            }
        }
        if let (Some(path), Request::Create(c)) = (&self.panic_on_create, &*request) {
            assert!(c.path != *path, "panic injected on a create of {path}");
        }
        let Some(zxid) = self.zxid_or_close(meta.conn) else {
            return;
        };
        let ctx = self.context(&auth, session_id, meta.xid, self.now.wall_ms);
        if matches!(request, Request::CloseSession) {
            if let Some(s) = self.sessions.get_mut(session_id) {
                s.closing = true;
            }
        }
        let prepared = self.prepare_write(&ctx, request, zxid);
        self.submit(prepared, Origin::Client(meta));
    }

    /// The reply to an applied write.
    fn write_reply(&self, xid: i32, session_id: i64, prepared: &Prepared, rc: &TxnResult) -> Bytes {
        let zxid = self.tree.last_processed_zxid;
        match (&prepared.txn, prepared.error) {
            (Txn::Multi(_), _) => {
                let mut b = begin_frame(xid, zxid, 0);
                write_multi_results(&mut b, &rc.multi);
                finish_frame(b)
            }
            (_, Some(code)) => finish_frame(begin_frame(xid, zxid, code.code())),
            (Txn::CloseSession(_), None) => {
                info!("Closed session 0x{session_id:x}");
                finish_frame(begin_frame(xid, zxid, 0))
            }
            (txn, None) => {
                let mut b = begin_frame(xid, zxid, rc.err);
                if rc.err == 0 {
                    write_txn_response(&mut b, txn, rc);
                }
                finish_frame(b)
            }
        }
    }

    /// An error answered without a txn, in the session's order.
    fn reply_error_in_order(&mut self, session_id: i64, meta: RequestMeta, code: ErrorCode) {
        let frame = finish_frame(begin_frame(
            meta.xid,
            self.tree.last_processed_zxid,
            code.code(),
        ));
        self.answer_in_order(session_id, meta, None, frame);
    }

    fn handle_read(&mut self, conn: ConnId, xid: i32, session_id: i64, request: Request) {
        let zxid = self.tree.last_processed_zxid;
        // a read queued behind a write may outlive its connection
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let auth = c.auth.clone();
        let skip_acl = self.cfg.skip_acl;
        let can = |tree: &DataTree, node: &tree::DataNode, perm: i32| {
            skip_acl || tree.check_acl(node, perm, &auth)
        };
        if let Request::Auth(packet) = request {
            return self.handle_auth(conn, xid, packet);
        }
        let with_stat = matches!(request, Request::GetChildren2(_));
        // a reply no client could read is refused before it is built whole (a multiRead of
        // one 1 MB znode asked 1,000 times would take 1 GB)
        let max_reply = self.cfg.jute_max_buffer;
        let too_large = |b: &BytesMut| -> Result<(), ErrorCode> {
            if b.len() > max_reply {
                warn!("reply to session 0x{session_id:x} exceeds jute.maxbuffer ({max_reply} bytes): refused");
                return Err(ErrorCode::MarshallingError);
            }
            Ok(())
        };
        let mut b = begin_frame(xid, zxid, 0);
        let result: Result<(), ErrorCode> = (|| {
            match request {
                Request::Ping => {}
                Request::Exists(r) => {
                    if r.path.contains('\0') {
                        return Err(ErrorCode::BadArguments);
                    }
                    let stat = self
                        .tree
                        .exists(&r.path, r.watch.then_some(conn))
                        .ok_or(ErrorCode::NoNode)?;
                    stat.write(&mut b);
                }
                Request::GetData(r) => {
                    let node = self.tree.node(&r.path).ok_or(ErrorCode::NoNode)?;
                    if !can(&self.tree, node, perms::READ) {
                        return Err(ErrorCode::NoAuth);
                    }
                    jute::write_opt_buffer(&mut b, node.data());
                    node.stat().write(&mut b);
                    if r.watch {
                        self.tree.watch_data(&r.path, conn);
                    }
                }
                Request::GetChildren(r) | Request::GetChildren2(r) => {
                    let node = self.tree.node(&r.path).ok_or(ErrorCode::NoNode)?;
                    if !can(&self.tree, node, perms::READ) {
                        return Err(ErrorCode::NoAuth);
                    }
                    b.put_i32(node.num_children() as i32);
                    for child in self.tree.child_names(node) {
                        jute::write_str(&mut b, child);
                        too_large(&b)?;
                    }
                    if with_stat {
                        node.stat().write(&mut b);
                    }
                    if r.watch {
                        self.tree.watch_children(&r.path, conn);
                    }
                }
                Request::GetAcl(r) => {
                    let node = self.tree.node(&r.path).ok_or(ErrorCode::NoNode)?;
                    if !can(&self.tree, node, perms::READ | perms::ADMIN) {
                        return Err(ErrorCode::NoAuth);
                    }
                    let acl = self.tree.acl_of(node);
                    let acl = if can(&self.tree, node, perms::ADMIN) {
                        acl
                    } else {
                        tree::acl::redact_digests(&acl)
                    };
                    acl.write(&mut b);
                    node.stat().write(&mut b);
                }
                Request::GetAllChildrenNumber(r) => {
                    let node = self.tree.node(&r.path).ok_or(ErrorCode::NoNode)?;
                    if !can(&self.tree, node, perms::READ) {
                        return Err(ErrorCode::NoAuth);
                    }
                    b.put_i32(self.tree.all_children_number(&r.path) as i32);
                }
                Request::GetEphemerals(r) => {
                    self.tree
                        .ephemerals_of(session_id, &r.prefix_path)
                        .write(&mut b);
                    too_large(&b)?;
                }
                Request::Sync(r) => jute::write_str(&mut b, &r.path),
                Request::SetWatches(w) => {
                    self.tree.set_watches(&w, conn);
                    self.deliver_events();
                }
                Request::AddWatch(r) => {
                    let recursive = match r.mode {
                        jute::add_watch_mode::PERSISTENT => false,
                        jute::add_watch_mode::PERSISTENT_RECURSIVE => true,
                        _ => return Err(ErrorCode::MarshallingError),
                    };
                    self.tree.add_watch(&r.path, conn, recursive);
                    b.put_i32(0); // ErrorResponse(0)
                }
                Request::CheckWatches(r) => {
                    if !self.tree.contains_watch(&r.path, r.watcher_type, conn) {
                        return Err(ErrorCode::NoWatcher);
                    }
                }
                Request::RemoveWatches(r) => {
                    if !self.tree.remove_watch(&r.path, r.watcher_type, conn) {
                        return Err(ErrorCode::NoWatcher);
                    }
                }
                Request::WhoAmI => {
                    let infos: Vec<jute::ClientInfo> = self.conns[&conn]
                        .auth
                        .iter()
                        .map(|id| jute::ClientInfo {
                            auth_scheme: id.scheme.clone(),
                            user: if id.scheme == "digest" {
                                id.id.split(':').next().unwrap_or("").to_owned()
                            } else {
                                id.id.clone()
                            },
                        })
                        .collect();
                    infos.write(&mut b);
                }
                Request::MultiRead(ops) => {
                    for o in &ops {
                        let (path, is_data) = match o {
                            MultiOp::GetData(r) => (&r.path, true),
                            MultiOp::GetChildren(r) => (&r.path, false),
                            _ => return Err(ErrorCode::MarshallingError),
                        };
                        let outcome = match self.tree.node(path) {
                            None => Err(ErrorCode::NoNode),
                            Some(n) if !can(&self.tree, n, perms::READ) => Err(ErrorCode::NoAuth),
                            Some(n) => Ok(n),
                        };
                        match outcome {
                            Err(code) => {
                                jute::MultiHeader {
                                    op_type: op::ERROR,
                                    done: false,
                                    err: code.code(),
                                }
                                .write(&mut b);
                                b.put_i32(code.code());
                            }
                            Ok(n) if is_data => {
                                jute::MultiHeader {
                                    op_type: op::GET_DATA,
                                    done: false,
                                    err: 0,
                                }
                                .write(&mut b);
                                jute::write_opt_buffer(&mut b, n.data());
                                n.stat().write(&mut b);
                            }
                            Ok(n) => {
                                jute::MultiHeader {
                                    op_type: op::GET_CHILDREN,
                                    done: false,
                                    err: 0,
                                }
                                .write(&mut b);
                                b.put_i32(n.num_children() as i32);
                                for child in self.tree.child_names(n) {
                                    jute::write_str(&mut b, child);
                                    too_large(&b)?;
                                }
                            }
                        }
                        too_large(&b)?;
                    }
                    jute::MultiHeader {
                        op_type: -1,
                        done: true,
                        err: -1,
                    }
                    .write(&mut b);
                }
                other => {
                    warn!("unexpected request {other:?} on the read path");
                    return Err(ErrorCode::Unimplemented);
                }
            }
            Ok(())
        })();
        match result {
            Ok(()) => self.send(conn, finish_frame(b)),
            Err(code) => self.reply_error(conn, xid, code),
        }
    }

    fn handle_auth(&mut self, conn: ConnId, xid: i32, packet: jute::AuthPacket) {
        let auth_data = packet.auth.unwrap_or_default();
        let ok = match packet.scheme.as_str() {
            "digest" => {
                let id = tree::acl::generate_digest(&String::from_utf8_lossy(&auth_data));
                let is_super = self.cfg.super_digest.as_deref() == Some(id.as_str());
                let c = self.conns.get_mut(&conn).expect("caller checked");
                let super_id = Id {
                    scheme: "super".into(),
                    id: String::new(),
                };
                if is_super && !c.auth.contains(&super_id) {
                    Arc::make_mut(&mut c.auth).push(super_id);
                }
                let id = Id {
                    scheme: "digest".into(),
                    id,
                };
                if !c.auth.contains(&id) {
                    Arc::make_mut(&mut c.auth).push(id);
                }
                c.auth = Arc::new(tree::acl::in_zookeeper_auth_order(&c.auth));
                true
            }
            "ip" => {
                let c = self.conns.get_mut(&conn).expect("caller checked");
                let id = Id {
                    scheme: "ip".into(),
                    id: c.remote.ip().to_string(),
                };
                if !c.auth.contains(&id) {
                    Arc::make_mut(&mut c.auth).push(id);
                }
                true
            }
            _ => false,
        };
        if ok {
            self.send(conn, finish_frame(begin_frame(xid, 0, 0)));
        } else {
            warn!("Authentication failed for scheme: {}", packet.scheme);
            self.send(
                conn,
                finish_frame(begin_frame(xid, 0, ErrorCode::AuthFailed.code())),
            );
            self.close_conn(conn);
        }
    }

    fn expire_sessions(&mut self) {
        let now = self.now.wall_ms;
        for session_id in self.sessions.expired(self.now.mono_ms) {
            let timeout = self.sessions.get(session_id).map_or(0, |s| s.timeout_ms);
            info!("Expiring session 0x{session_id:x}, timeout of {timeout}ms exceeded");
            let Some(zxid) = self.next_zxid() else {
                return;
            };
            if let Some(s) = self.sessions.get_mut(session_id) {
                s.closing = true;
            }
            let prepared = self
                .prep
                .close_session(&self.tree, session_id, 0, zxid, now);
            // the connection is closed when the txn is applied
            self.submit(prepared, Origin::Internal);
        }
    }

    /// Deletes empty containers and expired TTL nodes with deleteContainer txns.
    fn reap_containers(&mut self) {
        let now = self.now.wall_ms;
        let limit = self.cfg.container_max_per_minute as usize;
        for path in self.tree.reapable(now).into_iter().take(limit) {
            let Some(zxid) = self.next_zxid() else {
                return;
            };
            let ctx = self.context(&[], 0, 0, now);
            let prepared = self.prep.prepare(
                &self.tree,
                &ctx,
                &mut Request::DeleteContainer(path.clone()),
                zxid,
            );
            if prepared.error.is_none() {
                debug!("reaping {path}");
            }
            self.submit(prepared, Origin::Internal);
        }
    }
}

/// What a learner sends to the leader instead of answering: every write, a session's close,
/// and sync.
fn is_forwarded_op(op_type: i32) -> bool {
    is_write_op(op_type) || matches!(op_type, op::DELETE_CONTAINER | op::CLOSE_SESSION | op::SYNC)
}

fn is_write_op(op_type: i32) -> bool {
    matches!(
        op_type,
        op::CREATE
            | op::CREATE2
            | op::CREATE_CONTAINER
            | op::CREATE_TTL
            | op::DELETE
            | op::SET_DATA
            | op::SET_ACL
            | op::CHECK
            | op::MULTI
            | op::RECONFIG
    )
}

/// The reply body of a successful non-multi write.
fn write_txn_response(b: &mut BytesMut, txn: &Txn, rc: &TxnResult) {
    let stat = rc.stat.clone().unwrap_or_default();
    match txn {
        Txn::Create(_) => jute::write_str(b, &rc.path),
        Txn::Create2(_) | Txn::CreateContainer(_) | Txn::CreateTtl(_) => {
            jute::write_str(b, &rc.path);
            stat.write(b);
        }
        Txn::SetData(_) | Txn::SetAcl(_) => stat.write(b),
        // GetDataResponse: the configuration now active, and the znode's Stat
        Txn::Reconfig(t) => {
            jute::write_opt_buffer(b, t.data.as_deref());
            stat.write(b);
        }
        Txn::Check(_) => Stat::default().write(b),
        _ => {}
    }
}

/// MultiResponse: one header and result per op, then the done marker.
fn write_multi_results(b: &mut BytesMut, results: &[TxnResult]) {
    for r in results {
        let stat = r.stat.clone().unwrap_or_default();
        let (op_type, err) = if r.op_type == op::ERROR || r.err != 0 {
            (op::ERROR, r.err)
        } else {
            (r.op_type, 0)
        };
        match op_type {
            op::CREATE => {
                jute::MultiHeader {
                    op_type: op::CREATE,
                    done: false,
                    err,
                }
                .write(b);
                jute::write_str(b, &r.path);
            }
            op::CREATE2 | op::CREATE_TTL | op::CREATE_CONTAINER => {
                jute::MultiHeader {
                    op_type: op::CREATE2,
                    done: false,
                    err,
                }
                .write(b);
                jute::write_str(b, &r.path);
                stat.write(b);
            }
            op::DELETE | op::DELETE_CONTAINER => jute::MultiHeader {
                op_type: op::DELETE,
                done: false,
                err,
            }
            .write(b),
            op::CHECK => jute::MultiHeader {
                op_type: op::CHECK,
                done: false,
                err,
            }
            .write(b),
            op::SET_DATA => {
                jute::MultiHeader {
                    op_type: op::SET_DATA,
                    done: false,
                    err,
                }
                .write(b);
                stat.write(b);
            }
            _ => {
                jute::MultiHeader {
                    op_type: op::ERROR,
                    done: false,
                    err,
                }
                .write(b);
                b.put_i32(err);
            }
        }
    }
    jute::MultiHeader {
        op_type: -1,
        done: true,
        err: -1,
    }
    .write(b);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Now {
        Now {
            mono_ms: 10_000,
            wall_ms: 1_700_000_000_000,
        }
    }

    fn request(conn: ConnId, xid: i32, op_type: i32, body: Vec<u8>) -> Event {
        Event::Request {
            conn,
            xid,
            op_type,
            request: Request::decode(op_type, &body),
            raw: Bytes::from(body),
            received_ms: now().mono_ms,
        }
    }

    fn replied_xids(actions: &[Action]) -> Vec<i32> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send { frame, .. } if frame.len() >= 8 => {
                    Some(i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]))
                }
                _ => None,
            })
            .collect()
    }

    /// Found by the whole-server simulation: an error answered without a txn (a lone check,
    /// an unknown opcode, a malformed read) overtook the session's write still being made
    /// durable; a client matches replies to requests in order.
    #[test]
    fn replies_without_a_txn_wait_for_the_sessions_earlier_write() {
        let cfg = ZooCfg::parse("dataDir=/nonexistent\nclientPort=2181\n", "t.cfg").unwrap();
        let options = NodeOptions {
            durable: true,
            ..NodeOptions::default()
        };
        let mut node = Node::with_state(Arc::new(cfg), DataTree::new(), &[], options, now());
        let remote = "127.0.0.1:5000".parse().unwrap();
        node.handle(now(), Event::Accepted { conn: 1, remote });
        let connect = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: 10_000,
            session_id: 0,
            passwd: Some(vec![0; 16]),
            read_only: false,
        };
        node.handle(
            now(),
            Event::Connect {
                conn: 1,
                request: connect,
                old_client: false,
            },
        );
        node.handle(now(), Event::Durable { zxid: 1, resets: 0 });
        node.take_actions();
        // setData /zookeeper (a write: Persist, no reply until durable)
        let mut body = Vec::new();
        jute::write_str(&mut body, "/zookeeper");
        jute::write_opt_buffer(&mut body, Some(b"x"));
        body.extend_from_slice(&(-1i32).to_be_bytes());
        node.handle(now(), request(1, 1, op::SET_DATA, body));
        // then a lone check, an unknown opcode and a malformed getData
        node.handle(now(), request(1, 2, op::CHECK, vec![0; 8]));
        node.handle(now(), request(1, 3, 999, vec![]));
        node.handle(now(), request(1, 4, op::GET_DATA, vec![0, 0]));
        let early = node.take_actions();
        assert!(
            replied_xids(&early).is_empty(),
            "nothing answered before the write: {early:?}"
        );
        node.handle(now(), Event::Durable { zxid: 2, resets: 0 });
        assert_eq!(replied_xids(&node.take_actions()), vec![1, 2, 3, 4]);
    }
}
