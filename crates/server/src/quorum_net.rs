//! The ensemble's network edge: election connections (one per pair of servers, kept by the
//! larger id, as ZooKeeper's QuorumCnxManager) and quorum connections (learners dial the
//! leader's quorum port). Bytes in, typed messages to the core; typed messages out, bytes on
//! the socket. Zab itself is in the core (`zab::peer::Peer`).

use crate::deliver::Deliver;
use bytes::BytesMut;
use config::QuorumConfig;
use node::PeerEvent;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::Notify;
use tracing::{debug, info, warn};
use zab::election::Notification;
use zab::wire::{
    accept_decision, decode_election_frame, dialer_keeps_connection, encode_election_frame,
    AcceptDecision, ElectionAddress, InitialMessage, Packet, QuorumStreamDecoder, Received, Sender,
};

/// A quorum connection's receive buffer: packets are cut off it and share it.
const RECEIVE_BUFFER: usize = 64 * 1024;

pub use node::LinkId;

/// What the network tells the node's task about Zab: the node's [`PeerEvent`]s, and the new
/// connections, whose sending half the driver keeps (the node knows them by [`LinkId`]).
#[derive(Debug)]
pub enum ZabEvent {
    /// A learner registered on our quorum port (its first packet named it).
    LearnerUp {
        sid: u64,
        link: QuorumLink,
    },
    /// Our connection to the leader is up.
    LeaderUp {
        sid: u64,
        link: QuorumLink,
    },
    Peer(PeerEvent),
}

/// Bytes queued to a quorum connection beyond which the peer is dropped rather than buffered
/// without bound (a slow follower cannot exhaust the leader's memory; it resyncs later).
pub const MAX_QUEUED_BYTES: usize = 256 << 20;

/// The sending half of a quorum connection. Packets are encoded straight into the bytes
/// waiting for the socket (no buffer per packet); the writer takes them all in one write.
#[derive(Debug, Clone)]
pub struct QuorumLink {
    pub id: LinkId,
    handle: Arc<LinkHandle>,
}

/// What the core's handles and the writer task share.
#[derive(Debug, Default)]
struct LinkShared {
    pending: Mutex<Pending>,
    /// Wakes the writer: something was queued, or the link was closed.
    wake: Notify,
}

#[derive(Debug, Default)]
struct Pending {
    /// Encoded packets not yet taken by the writer.
    bytes: Vec<u8>,
    /// Bytes the writer took and has not finished writing.
    writing: usize,
    /// No handle is left (flush, then close) or the socket failed (nothing more is sent).
    closed: bool,
}

/// The core's side of the link; when its last clone goes, the writer flushes and closes.
#[derive(Debug)]
struct LinkHandle(Arc<LinkShared>);

impl Drop for LinkHandle {
    fn drop(&mut self) {
        lock(&self.0.pending).closed = true;
        self.0.wake.notify_one();
    }
}

fn lock(pending: &Mutex<Pending>) -> std::sync::MutexGuard<'_, Pending> {
    // a panic while holding the lock leaves whole packets or none (encoding cannot fail)
    pending
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl QuorumLink {
    /// Queues a packet; false when the connection is gone or too far behind.
    pub fn send_packet(&self, packet: &Packet) -> bool {
        self.send_with(|out| packet.encode_into(out))
    }

    /// Queues bytes already encoded (a snapshot); false as for [`QuorumLink::send_packet`].
    pub fn send_bytes(&self, bytes: &[u8]) -> bool {
        self.send_with(|out| out.extend_from_slice(bytes))
    }

    fn send_with(&self, encode: impl FnOnce(&mut Vec<u8>)) -> bool {
        let shared = &self.handle.0;
        let mut p = lock(&shared.pending);
        if p.closed {
            return false;
        }
        let before = p.bytes.len();
        encode(&mut p.bytes);
        // one packet larger than the bound still goes when nothing else waits (a snapshot)
        let queued = before + p.writing;
        if queued > 0 && p.bytes.len() + p.writing > MAX_QUEUED_BYTES {
            p.bytes.truncate(before);
            return false;
        }
        drop(p);
        shared.wake.notify_one();
        true
    }
}

static NEXT_LINK: AtomicU64 = AtomicU64::new(1);

/// Buffers above this size are not kept between writes (a snapshot sent once).
const KEPT_WRITE_BUFFER: usize = 4 << 20;

fn new_link(stream: TcpStream) -> (QuorumLink, tokio::net::tcp::OwnedReadHalf) {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let shared = Arc::new(LinkShared::default());
    let writer = shared.clone();
    tokio::spawn(async move {
        // two buffers take turns: the one being written and the one being filled
        let mut out = Vec::with_capacity(64 << 10);
        loop {
            let closed = {
                let mut p = lock(&writer.pending);
                std::mem::swap(&mut p.bytes, &mut out);
                p.writing = out.len();
                p.closed
            };
            if out.is_empty() {
                if closed {
                    break;
                }
                // a packet queued since the swap left a permit: this returns at once
                writer.wake.notified().await;
                continue;
            }
            let result = write.write_all(&out).await;
            if out.capacity() > KEPT_WRITE_BUFFER {
                out = Vec::with_capacity(64 << 10);
            } else {
                out.clear();
            }
            let mut p = lock(&writer.pending);
            p.writing = 0;
            if result.is_err() {
                p.closed = true;
                p.bytes = Vec::new();
                return;
            }
        }
        let _ = write.shutdown().await;
    });
    let link = QuorumLink {
        id: NEXT_LINK.fetch_add(1, Ordering::Relaxed),
        handle: Arc::new(LinkHandle(shared)),
    };
    (link, read)
}

/// Reads a quorum stream and passes its packets to the core. `known_sid` is the leader's id
/// on a learner's connection; on the leader's side the first packet (FOLLOWERINFO or
/// OBSERVERINFO) names the learner.
async fn read_quorum_stream(
    mut read: tokio::net::tcp::OwnedReadHalf,
    link: QuorumLink,
    from: Sender,
    known_sid: Option<u64>,
    core: Deliver<ZabEvent>,
    max_buffer: usize,
    register_within: Option<Duration>,
) {
    let link_id = link.id;
    // a learner that has not sent its FOLLOWERINFO/OBSERVERINFO by then is closed (ZooKeeper's
    // LearnerHandler reads with an initLimit timeout): it holds a socket and a task
    let register_by = register_within.map(|d| tokio::time::Instant::now() + d);
    let mut link = Some(link);
    let mut sid = known_sid;
    let mut decoder = QuorumStreamDecoder::with_max_buffer(from, max_buffer);
    // packets are cut off the front of this buffer and keep sharing it (a proposal's txn is
    // logged and applied from here); a new one is allocated when too little room is left
    let mut buf = BytesMut::with_capacity(RECEIVE_BUFFER);
    let mut held_snap: Option<Packet> = None;
    'read: loop {
        if buf.capacity() - buf.len() < RECEIVE_BUFFER / 16 {
            // doubling while a large packet or a snapshot accumulates
            buf.reserve(RECEIVE_BUFFER.max(buf.len()));
        }
        let received = match register_by.filter(|_| sid.is_none()) {
            Some(at) => match tokio::time::timeout_at(at, read.read_buf(&mut buf)).await {
                Ok(received) => received,
                Err(_) => {
                    warn!("a quorum connection sent no FOLLOWERINFO/OBSERVERINFO in time; closing");
                    break;
                }
            },
            None => read.read_buf(&mut buf).await,
        };
        match received {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        loop {
            let item = match decoder.next_received(&mut buf) {
                Ok(Some(item)) => item,
                Ok(None) => break,
                Err(e) => {
                    warn!("malformed quorum packet from server {sid:?}: {e}; closing");
                    break 'read;
                }
            };
            match item {
                Received::Packet(packet) => {
                    if sid.is_none() {
                        let hello = match &packet {
                            Packet::FollowerInfo(h) | Packet::ObserverInfo(h) => h,
                            other => {
                                warn!("a learner's first packet was {other:?}; closing");
                                break 'read;
                            }
                        };
                        let id = hello.info.serverid as u64;
                        sid = Some(id);
                        let up = ZabEvent::LearnerUp {
                            sid: id,
                            link: link.take().expect("registered once"),
                        };
                        if !core(up) {
                            return;
                        }
                    }
                    let sid = sid.expect("known");
                    if matches!(packet, Packet::Snap { .. }) {
                        // the snapshot follows: the core gets it first, then the SNAP
                        held_snap = Some(packet);
                        continue;
                    }
                    let ev = ZabEvent::Peer(PeerEvent::Packet {
                        sid,
                        link: link_id,
                        packet,
                    });
                    if !core(ev) {
                        return;
                    }
                }
                Received::Snapshot(stream) => {
                    let sid = sid.expect("a snapshot comes from the leader");
                    let _ = core(ZabEvent::Peer(PeerEvent::Snapshot {
                        sid,
                        link: link_id,
                        stream,
                    }));
                    if let Some(packet) = held_snap.take() {
                        let _ = core(ZabEvent::Peer(PeerEvent::Packet {
                            sid,
                            link: link_id,
                            packet,
                        }));
                    }
                }
            }
        }
    }
    if let Some(sid) = sid {
        let _ = core(ZabEvent::Peer(PeerEvent::LinkDown { sid, link: link_id }));
    }
}

/// The leader's side: accepts learners on the quorum port (bound for the server's whole life;
/// the core ignores learners while it does not lead).
pub async fn listen_quorum(
    listener: TcpListener,
    mut moves: tokio::sync::watch::Receiver<String>,
    core: Deliver<ZabEvent>,
    max_buffer: usize,
    register_within: Duration,
) {
    let mut listener = listener;
    loop {
        let (stream, remote) =
            match crate::net::accept_or_move(&mut listener, &mut moves, "quorum").await {
                Ok(a) => a,
                Err(e) => {
                    warn!("quorum accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
        debug!("quorum connection from {remote}");
        let (link, read) = new_link(stream);
        tokio::spawn(read_quorum_stream(
            read,
            link,
            Sender::Learner,
            None,
            core.clone(),
            max_buffer,
            Some(register_within),
        ));
    }
}

/// A learner's side: dials the leader's quorum port until it answers or `give_up` passes.
pub fn connect_to_leader(
    leader: u64,
    address: String,
    give_up: Duration,
    core: Deliver<ZabEvent>,
    max_buffer: usize,
) {
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + give_up;
        let stream = loop {
            match TcpStream::connect(&address).await {
                Ok(s) => break s,
                Err(e) => {
                    if tokio::time::Instant::now() >= deadline {
                        warn!("cannot connect to leader {leader} at {address}: {e}");
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        info!("connected to leader {leader} at {address}");
        let (link, read) = new_link(stream);
        let up = ZabEvent::LeaderUp {
            sid: leader,
            link: link.clone(),
        };
        if !core(up) {
            return;
        }
        read_quorum_stream(
            read,
            link,
            Sender::Leader,
            Some(leader),
            core,
            max_buffer,
            None,
        )
        .await;
    });
}

// ---------------------------------------------------------------------------------------------
// election connections

enum ElectionCmd {
    Send {
        to: u64,
        bytes: Vec<u8>,
    },
    Closed {
        sid: u64,
        conn: u64,
    },
    DialDone {
        sid: u64,
    },
    /// The configuration changed: dial its members at their addresses.
    SetConfig(Arc<QuorumConfig>),
    /// `early`: bytes that followed the handshake (ZooKeeper sends its vote right behind it).
    Accepted {
        sid: u64,
        /// The election address it announced (a joiner we do not know yet is reached there).
        address: Option<String>,
        stream: TcpStream,
        early: Vec<u8>,
    },
    /// We dialed with the larger id: the connection is ours to keep.
    Dialed {
        sid: u64,
        stream: TcpStream,
    },
}

/// Sends election notifications; cheap to clone.
#[derive(Clone)]
pub struct ElectionNet {
    tx: UnboundedSender<ElectionCmd>,
    my_sid: u64,
    /// Our configuration as notifications carry it.
    config_text: Arc<std::sync::RwLock<Vec<u8>>>,
    core: Deliver<ZabEvent>,
}

impl ElectionNet {
    pub fn send(&self, to: u64, notification: &Notification) {
        if to == self.my_sid {
            // our own vote counts like anyone's
            let _ = (self.core)(ZabEvent::Peer(PeerEvent::Notification(
                notification.clone(),
                Vec::new(),
            )));
            return;
        }
        let text = self
            .config_text
            .read()
            .map(|t| t.clone())
            .unwrap_or_default();
        let bytes = notification.to_wire(text).encode();
        let _ = self.tx.send(ElectionCmd::Send { to, bytes });
    }

    /// A configuration was activated: notifications carry it, and its members are dialed
    /// at its addresses.
    pub fn set_config(&self, config: Arc<QuorumConfig>) {
        if let Ok(mut text) = self.config_text.write() {
            *text = config.to_config_text().into_bytes();
        }
        let _ = self.tx.send(ElectionCmd::SetConfig(config));
    }

    /// A configuration was proposed: its new members become reachable too.
    pub fn add_members(&self, config: Arc<QuorumConfig>) {
        let _ = self.tx.send(ElectionCmd::SetConfig(config));
    }
}

fn election_address(cfg: &QuorumConfig, sid: u64) -> Option<String> {
    let m = cfg.members.get(&sid)?;
    Some(format!("{}:{}", m.quorum.host, m.election_port))
}

/// Starts the election listener and the connection manager.
/// Servers outside the configuration (joiners about to be added by a reconfig) whose election
/// connections are kept: the rest are refused, so that made-up ids cannot grow our tables.
const MAX_STRANGERS: usize = 64;

pub async fn start_election(
    my_sid: u64,
    config: Arc<QuorumConfig>,
    bind: String,
    bind_retries: u32,
    mut moves: tokio::sync::watch::Receiver<String>,
    core: Deliver<ZabEvent>,
) -> anyhow::Result<ElectionNet> {
    let mut attempt = 0;
    let listener = loop {
        match TcpListener::bind(&bind).await {
            Ok(l) => break l,
            Err(e) if attempt < bind_retries => {
                attempt += 1;
                warn!("cannot bind the election port {bind} ({e}); retry {attempt}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => anyhow::bail!("cannot bind the election port {bind}: {e}"),
        }
    };
    info!("election port listening on {bind}");
    let (tx, rx) = mpsc::unbounded_channel();
    let accept_tx = tx.clone();
    tokio::spawn(async move {
        let mut listener = listener;
        loop {
            let Ok((stream, _)) =
                crate::net::accept_or_move(&mut listener, &mut moves, "election").await
            else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let tx = accept_tx.clone();
            tokio::spawn(async move {
                if let Some((sid, address, stream, early)) = read_initial_message(stream).await {
                    let _ = tx.send(ElectionCmd::Accepted {
                        sid,
                        address,
                        stream,
                        early,
                    });
                }
            });
        }
    });
    let my_address = election_address(&config, my_sid).unwrap_or_default();
    let manager = ElectionManager {
        my_sid,
        my_address,
        config,
        learned: HashMap::new(),
        conns: HashMap::new(),
        pending: HashMap::new(),
        dialing: HashSet::new(),
        next_conn: 1,
        cmd_tx: tx.clone(),
        core,
    };
    let config_text = Arc::new(std::sync::RwLock::new(
        manager.config.to_config_text().into_bytes(),
    ));
    let core = manager.core.clone();
    tokio::spawn(manager.run(rx));
    Ok(ElectionNet {
        tx,
        my_sid,
        config_text,
        core,
    })
}

async fn read_initial_message(
    mut stream: TcpStream,
) -> Option<(u64, Option<String>, TcpStream, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let read = async {
        loop {
            match InitialMessage::decode_prefix(&buf) {
                Ok(Some((m, used))) => return Some((m, used)),
                Ok(None) => {}
                Err(e) => {
                    warn!("bad election handshake: {e}");
                    return None;
                }
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let (m, used) = tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .ok()??;
    buf.drain(..used);
    let address = m
        .addresses
        .first()
        .map(|a| HostPortText(&a.host, a.port).to_string());
    Some((m.sid as u64, address, stream, buf))
}

/// `host:port`, brackets around an IPv6 host.
struct HostPortText<'a>(&'a str, u16);

impl std::fmt::Display for HostPortText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.contains(':') {
            write!(f, "[{}]:{}", self.0, self.1)
        } else {
            write!(f, "{}:{}", self.0, self.1)
        }
    }
}

struct ElectionManager {
    my_sid: u64,
    my_address: String,
    config: Arc<QuorumConfig>,
    /// Election addresses announced by servers that dialed us (joiners not in our config).
    learned: HashMap<u64, String>,
    conns: HashMap<u64, (u64, UnboundedSender<Vec<u8>>)>,
    /// The newest notification not yet delivered to each peer (ZooKeeper keeps one too).
    pending: HashMap<u64, Vec<u8>>,
    dialing: HashSet<u64>,
    next_conn: u64,
    cmd_tx: UnboundedSender<ElectionCmd>,
    core: Deliver<ZabEvent>,
}

impl ElectionManager {
    async fn run(mut self, mut rx: UnboundedReceiver<ElectionCmd>) {
        while let Some(cmd) = rx.recv().await {
            match cmd {
                ElectionCmd::Send { to, bytes } => self.send(to, bytes),
                ElectionCmd::Closed { sid, conn } => {
                    if self.conns.get(&sid).is_some_and(|(c, _)| *c == conn) {
                        self.conns.remove(&sid);
                    }
                }
                ElectionCmd::DialDone { sid } => {
                    self.dialing.remove(&sid);
                }
                ElectionCmd::Dialed { sid, stream } => {
                    self.start_connection(sid, stream, Vec::new())
                }
                ElectionCmd::SetConfig(config) => {
                    if let Some(address) = election_address(&config, self.my_sid) {
                        self.my_address = address;
                    }
                    self.config = config;
                }
                ElectionCmd::Accepted {
                    sid,
                    address,
                    stream,
                    early,
                } => {
                    let known =
                        self.config.members.contains_key(&sid) || self.learned.contains_key(&sid);
                    if !known && self.strangers() >= MAX_STRANGERS {
                        // servers about to be added are a handful; a flood of ids is not
                        warn!("election connection from unknown server {sid} refused: {MAX_STRANGERS} unknown servers known already");
                        continue;
                    }
                    if let Some(address) = address {
                        self.learned.insert(sid, address);
                    }
                    match accept_decision(self.my_sid as i64, sid as i64) {
                        AcceptDecision::Keep => self.start_connection(sid, stream, early),
                        AcceptDecision::CloseAndDialBack => {
                            drop(stream);
                            self.conns.remove(&sid);
                            self.dial(sid);
                        }
                        AcceptDecision::OwnId => {
                            warn!("an election connection claims our own id {sid}; closed")
                        }
                    }
                }
            }
        }
    }

    /// Servers outside the configuration whose election address we learned.
    fn strangers(&self) -> usize {
        self.learned
            .keys()
            .filter(|sid| !self.config.members.contains_key(sid))
            .count()
    }

    fn send(&mut self, to: u64, bytes: Vec<u8>) {
        if let Some((_, tx)) = self.conns.get(&to) {
            if tx.send(bytes.clone()).is_ok() {
                return;
            }
            self.conns.remove(&to);
        }
        self.pending.insert(to, bytes);
        self.dial(to);
    }

    fn dial(&mut self, to: u64) {
        if self.dialing.contains(&to) || self.conns.contains_key(&to) {
            return;
        }
        let Some(address) =
            election_address(&self.config, to).or_else(|| self.learned.get(&to).cloned())
        else {
            return;
        };
        self.dialing.insert(to);
        let (my_sid, my_address) = (self.my_sid, self.my_address.clone());
        let cmd = self.cmd_tx.clone();
        tokio::spawn(async move {
            let connect =
                tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(address.as_str()));
            if let Ok(Ok(mut stream)) = connect.await {
                let (host, port) = my_address.rsplit_once(':').unwrap_or(("", "0"));
                let hello = InitialMessage::v1(
                    my_sid as i64,
                    ElectionAddress::new(host, port.parse().unwrap_or(0)),
                );
                if stream.write_all(&hello.encode()).await.is_ok()
                    && dialer_keeps_connection(my_sid as i64, to as i64)
                {
                    let _ = cmd.send(ElectionCmd::Dialed { sid: to, stream });
                }
                // with the smaller id we only announce ourselves: the peer dials back
            }
            let _ = cmd.send(ElectionCmd::DialDone { sid: to });
        });
    }

    fn start_connection(&mut self, sid: u64, stream: TcpStream, early: Vec<u8>) {
        let conn = self.next_conn;
        self.next_conn += 1;
        let _ = stream.set_nodelay(true);
        let (mut read, mut write) = stream.into_split();
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        if let Some(bytes) = self.pending.remove(&sid) {
            let _ = tx.send(bytes);
        }
        self.conns.insert(sid, (conn, tx));
        let cmd = self.cmd_tx.clone();
        tokio::spawn(async move {
            while let Some(payload) = rx.recv().await {
                let mut frame = Vec::with_capacity(payload.len() + 4);
                encode_election_frame(&payload, &mut frame);
                if write.write_all(&frame).await.is_err() {
                    break;
                }
            }
        });
        let core = self.core.clone();
        tokio::spawn(async move {
            let mut buf = early;
            let mut chunk = [0u8; 4096];
            let mut first = true;
            'read: loop {
                // bytes that came with the handshake are decoded before reading more
                if !first || buf.is_empty() {
                    match read.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                first = false;
                let mut used = 0;
                loop {
                    match decode_election_frame(&buf[used..]) {
                        Ok(Some((payload, len))) => {
                            match zab::wire::Notification::decode(payload) {
                                Ok(n) => {
                                    let config = n.config.clone();
                                    let n = Notification::from_wire(sid, &n);
                                    let _ =
                                        core(ZabEvent::Peer(PeerEvent::Notification(n, config)));
                                }
                                Err(e) => debug!("notification from {sid} not understood: {e}"),
                            }
                            used += len;
                        }
                        Ok(None) => break,
                        Err(e) => {
                            warn!("bad election frame from server {sid}: {e}; closing");
                            break 'read;
                        }
                    }
                }
                buf.drain(..used);
            }
            let _ = cmd.send(ElectionCmd::Closed { sid, conn });
        });
    }
}
