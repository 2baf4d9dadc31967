//! The session task: one per handle. It owns the connection, chooses servers through the
//! HostProvider, reconnects with the same session id and password when a connection is lost,
//! re-sends auth and re-registers watches (SetWatches2) after a reconnect, pings, and moves
//! the connection when update_server_list says so (as ClientCnxn's SendThread does).
//!
//! Replies are matched in FIFO order by a reader task per connection, which completes each
//! request's oneshot directly; a caller that drops its future only drops the receiver, so
//! cancelling never disturbs the order of the others (cancel-safe).

use crate::error::{Error, Result};
use crate::host_provider::HostProvider;
use crate::types::{EventType, KeeperState, WatchedEvent};
use bytes::{BufMut, Bytes, BytesMut};
use jute::{op, xid, ConnectRequest, Jute, ReplyHeader, WatcherEvent};
use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};

/// The path of the configuration znode (never under a chroot).
pub const CONFIG_NODE: &str = "/zookeeper/config";

/// A reply: header fields and the body after the header.
#[derive(Debug)]
pub struct Reply {
    pub zxid: i64,
    pub err: i32,
    pub body: Bytes,
}

/// What to register once a request's reply arrives (ZooKeeper's WatchRegistration).
#[derive(Debug, Clone)]
pub enum WatchRegistration {
    Data(String),
    /// exists: a data watch if the node exists, an exist watch on NoNode
    Exists(String),
    Child(String),
    Persistent(String),
    PersistentRecursive(String),
    /// getConfig with a watch, on behalf of the user (true) or of auto-rebalance (false)
    Config {
        user: bool,
    },
}

pub struct Request {
    pub op: i32,
    pub body: Bytes,
    pub reply: Option<oneshot::Sender<Result<Reply>>>,
    pub watch: Option<WatchRegistration>,
}

pub enum Control {
    UpdateServerList(Vec<String>, oneshot::Sender<bool>),
    Close(oneshot::Sender<()>),
}

/// Watches this session holds, by server path, for SetWatches2 after a reconnect.
#[derive(Debug, Default, Clone)]
pub struct WatchManager {
    pub data: BTreeSet<String>,
    pub exist: BTreeSet<String>,
    pub child: BTreeSet<String>,
    pub persistent: BTreeSet<String>,
    pub persistent_recursive: BTreeSet<String>,
    pub config_user: bool,
    pub config_internal: bool,
}

impl WatchManager {
    fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.exist.is_empty()
            && self.child.is_empty()
            && self.persistent.is_empty()
            && self.persistent_recursive.is_empty()
            && !self.config_user
            && !self.config_internal
    }

    fn register(&mut self, reg: &WatchRegistration, err: i32) {
        let ok = err == 0;
        match reg {
            WatchRegistration::Data(p) if ok => {
                self.data.insert(p.clone());
            }
            WatchRegistration::Exists(p) if ok => {
                self.data.insert(p.clone());
            }
            WatchRegistration::Exists(p) if err == jute::ErrorCode::NoNode.code() => {
                self.exist.insert(p.clone());
            }
            WatchRegistration::Child(p) if ok => {
                self.child.insert(p.clone());
            }
            WatchRegistration::Persistent(p) if ok => {
                self.persistent.insert(p.clone());
            }
            WatchRegistration::PersistentRecursive(p) if ok => {
                self.persistent_recursive.insert(p.clone());
            }
            WatchRegistration::Config { user } if ok => {
                if *user {
                    self.config_user = true;
                } else {
                    self.config_internal = true;
                }
            }
            _ => {}
        }
    }

    /// Consumes the one-shot watches an event triggers; returns (deliver to the user,
    /// deliver to auto-rebalance). As in Java's client, an event no watch of this session
    /// asked for (e.g. one removed locally) is not delivered.
    fn trigger(&mut self, event_type: EventType, path: &str) -> (bool, bool) {
        if path == CONFIG_NODE && event_type == EventType::NodeDataChanged {
            let r = (
                self.config_user
                    || self.data.contains(path)
                    || self.persistent.contains(path)
                    || self.recursive_covers(path),
                self.config_internal,
            );
            self.config_user = false;
            self.config_internal = false;
            self.data.remove(path);
            return r;
        }
        let persistent = self.persistent.contains(path);
        let wanted = match event_type {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                let a = self.data.remove(path);
                let b = self.exist.remove(path);
                a || b || persistent || self.recursive_covers(path)
            }
            EventType::NodeDeleted => {
                let a = self.data.remove(path);
                let b = self.exist.remove(path);
                let c = self.child.remove(path);
                a || b || c || persistent || self.recursive_covers(path)
            }
            // recursive watches are not told about children changes (their own events say it)
            EventType::NodeChildrenChanged => self.child.remove(path) || persistent,
            _ => true,
        };
        (wanted, false)
    }

    fn recursive_covers(&self, path: &str) -> bool {
        self.persistent_recursive.iter().any(|w| {
            w == path
                || w == "/"
                || (path.starts_with(w.as_str()) && path.as_bytes().get(w.len()) == Some(&b'/'))
        })
    }

    pub fn to_set_watches(&self, relative_zxid: i64) -> jute::SetWatches2 {
        let mut data: Vec<String> = self.data.iter().cloned().collect();
        if (self.config_user || self.config_internal) && !self.data.contains(CONFIG_NODE) {
            data.push(CONFIG_NODE.to_owned());
        }
        jute::SetWatches2 {
            relative_zxid,
            data_watches: data,
            exist_watches: self.exist.iter().cloned().collect(),
            child_watches: self.child.iter().cloned().collect(),
            persistent_watches: self.persistent.iter().cloned().collect(),
            persistent_recursive_watches: self.persistent_recursive.iter().cloned().collect(),
        }
    }
}

pub struct SessionInfo {
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub negotiated_timeout: i32,
    pub connected_to: Option<String>,
}

/// State shared by the handle, the session task and the reader tasks.
pub struct Shared {
    pub chroot: Option<String>,
    pub requested_timeout: i32,
    pub last_zxid: AtomicI64,
    pub session: Mutex<SessionInfo>,
    pub watches: Mutex<WatchManager>,
    pub auth_infos: Mutex<Vec<(String, Vec<u8>)>>,
    pub state: watch::Sender<KeeperState>,
    pub events: mpsc::UnboundedSender<WatchedEvent>,
    pub internal_events: Mutex<Option<mpsc::UnboundedSender<WatchedEvent>>>,
    /// How many times the client connected (tests observe moves and reconnects).
    pub connects: AtomicU64,
    /// Failed connection attempts (connect gives up after two rounds by default).
    pub failed_attempts: AtomicU64,
    /// The server rejected our auth: the session is dead (Java's AUTH_FAILED state).
    pub auth_failed: std::sync::atomic::AtomicBool,
}

impl Shared {
    fn emit_state(&self, state: KeeperState) {
        self.state.send_replace(state);
        let ev = WatchedEvent {
            event_type: EventType::None,
            state,
            path: None,
        };
        if let Some(tx) = self.internal_events.lock().expect("lock").as_ref() {
            let _ = tx.send(ev.clone());
        }
        let _ = self.events.send(ev);
    }

    fn strip_chroot(&self, path: String) -> String {
        match &self.chroot {
            Some(c) if path == *c => "/".to_owned(),
            Some(c) if path.starts_with(c.as_str()) && path.as_bytes()[c.len()] == b'/' => {
                path[c.len()..].to_owned()
            }
            _ => path,
        }
    }
}

pub fn frame(xid: i32, op_type: i32, body: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(12 + body.len());
    b.put_i32((8 + body.len()) as i32);
    jute::RequestHeader { xid, op_type }.write(&mut b);
    b.extend_from_slice(body);
    b.freeze()
}

async fn read_frame<R: AsyncReadExt + Unpin>(r: &mut R) -> std::io::Result<Vec<u8>> {
    let len = r.read_i32().await?;
    if !(0..=64 * 1024 * 1024).contains(&len) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("bad frame length {len}"),
        ));
    }
    let mut buf = vec![0; len as usize];
    r.read_exact(&mut buf).await?;
    Ok(buf)
}

struct Pending {
    xid: i32,
    reply: Option<oneshot::Sender<Result<Reply>>>,
    watch: Option<WatchRegistration>,
}

#[derive(Default)]
struct Queues {
    pending: VecDeque<Pending>,
    auth: VecDeque<Option<oneshot::Sender<Result<Reply>>>>,
}

enum Outcome {
    Lost,
    Moved,
    Closed,
}

pub struct SessionTask {
    pub shared: Arc<Shared>,
    pub requests: mpsc::UnboundedReceiver<Request>,
    pub control: mpsc::UnboundedReceiver<Control>,
    pub hosts: HostProvider,
    pub next_xid: i32,
}

impl SessionTask {
    pub async fn run(mut self) {
        let terminal = loop {
            match self.connect().await {
                Err(state) => break state,
                Ok((stream, addr)) => match self.serve(stream, &addr).await {
                    Outcome::Closed => break KeeperState::Closed,
                    _ if self.shared.auth_failed.load(Ordering::SeqCst) => {
                        break KeeperState::AuthFailed
                    }
                    Outcome::Lost | Outcome::Moved => {
                        self.shared.session.lock().expect("lock").connected_to = None;
                        self.shared.emit_state(KeeperState::Disconnected);
                    }
                },
            }
        };
        if matches!(terminal, KeeperState::Closed | KeeperState::AuthFailed) {
            // already told (close and the auth reply emit their own event)
            self.shared.state.send_replace(terminal);
        } else {
            self.shared.emit_state(terminal);
        }
        // requests queued behind the end of the session
        self.requests.close();
        let err = match terminal {
            KeeperState::AuthFailed => Error::AuthFailed,
            _ => Error::SessionExpired,
        };
        while let Ok(r) = self.requests.try_recv() {
            if let Some(tx) = r.reply {
                let _ = tx.send(Err(err.clone()));
            }
        }
        while let Ok(c) = self.control.try_recv() {
            match c {
                Control::Close(tx) => {
                    let _ = tx.send(());
                }
                Control::UpdateServerList(_, tx) => {
                    let _ = tx.send(false);
                }
            }
        }
    }

    fn connect_timeout(&self) -> Duration {
        let n = self.hosts.servers().len().max(1) as u64;
        Duration::from_millis((self.shared.requested_timeout.max(1000) as u64 / n).max(500))
    }

    /// Tries servers until one accepts the session; Err(terminal state) when the session
    /// expired or the handle was closed meanwhile.
    async fn connect(&mut self) -> std::result::Result<(TcpStream, String), KeeperState> {
        let mut tried = 0usize;
        loop {
            while let Ok(c) = self.control.try_recv() {
                match c {
                    Control::Close(tx) => {
                        self.shared.emit_state(KeeperState::Closed);
                        let _ = tx.send(());
                        return Err(KeeperState::Closed);
                    }
                    Control::UpdateServerList(list, tx) => {
                        self.hosts.update_server_list(list, None);
                        let _ = tx.send(false);
                    }
                }
            }
            if self.requests.is_closed() && self.requests.is_empty() {
                // every handle is gone
                return Err(KeeperState::Closed);
            }
            if tried >= self.hosts.servers().len() {
                // a whole round failed: back off up to a second, as Java's client does
                tried = 0;
                let ms = rand::random::<u64>() % 1000;
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            tried += 1;
            let addr = self.hosts.next_server().to_owned();
            match self.handshake(&addr).await {
                Ok(Some(stream)) => {
                    self.hosts.on_connected();
                    return Ok((stream, addr));
                }
                Ok(None) => return Err(KeeperState::Expired),
                Err(_) => {
                    self.shared.failed_attempts.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
            }
        }
    }

    /// Ok(None): the server says the session expired.
    async fn handshake(&mut self, addr: &str) -> std::io::Result<Option<TcpStream>> {
        let to = self.connect_timeout();
        let timeout_err = || std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timeout");
        let mut stream = tokio::time::timeout(to, TcpStream::connect(addr))
            .await
            .map_err(|_| timeout_err())??;
        stream.set_nodelay(true)?;
        let (session_id, passwd) = {
            let s = self.shared.session.lock().expect("lock");
            (s.session_id, s.passwd.clone())
        };
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.shared.last_zxid.load(Ordering::SeqCst),
            time_out: self.shared.requested_timeout,
            session_id,
            passwd: Some(passwd),
            read_only: false,
        };
        let mut b = BytesMut::new();
        b.put_i32(0);
        req.write(&mut b);
        let len = (b.len() - 4) as i32;
        b[..4].copy_from_slice(&len.to_be_bytes());
        stream.write_all(&b).await?;
        let body = tokio::time::timeout(to, read_frame(&mut stream))
            .await
            .map_err(|_| timeout_err())??;
        let resp = jute::ConnectResponse::decode(&body).or_else(|_| {
            // a server answering a pre-3.4 client omits readOnly
            let mut padded = body.clone();
            padded.push(0);
            jute::ConnectResponse::decode(&padded)
        });
        let resp = resp.map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        if resp.time_out <= 0 {
            return Ok(None);
        }
        {
            let mut s = self.shared.session.lock().expect("lock");
            s.session_id = resp.session_id;
            s.passwd = resp.passwd.unwrap_or_default();
            s.negotiated_timeout = resp.time_out;
            s.connected_to = Some(addr.to_owned());
        }
        self.shared.connects.fetch_add(1, Ordering::SeqCst);
        Ok(Some(stream))
    }

    fn next_xid(&mut self) -> i32 {
        let x = self.next_xid;
        self.next_xid = self.next_xid.wrapping_add(1).max(1);
        x
    }

    async fn serve(&mut self, stream: TcpStream, addr: &str) -> Outcome {
        let negotiated = self.shared.session.lock().expect("lock").negotiated_timeout;
        let read_timeout = Duration::from_millis((negotiated as u64 * 2 / 3).max(1));
        let ping_every = read_timeout / 2;
        let (rd, mut wr) = stream.into_split();
        let queues = Arc::new(Mutex::new(Queues::default()));
        let started = Instant::now();
        let last_recv = Arc::new(AtomicU64::new(0));
        let (done_tx, mut done_rx) = oneshot::channel::<()>();
        let reader = tokio::spawn(read_loop(
            rd,
            queues.clone(),
            self.shared.clone(),
            started,
            last_recv.clone(),
            done_tx,
        ));
        // session priming: watches, then auth, before anything the user queued
        let mut prime = BytesMut::new();
        let set_watches = {
            let w = self.shared.watches.lock().expect("lock");
            (!w.is_empty()).then(|| w.to_set_watches(self.shared.last_zxid.load(Ordering::SeqCst)))
        };
        if let Some(sw) = set_watches {
            prime.extend_from_slice(&frame(xid::SET_WATCHES, op::SET_WATCHES2, &sw.encode()));
        }
        for (scheme, auth) in self.shared.auth_infos.lock().expect("lock").iter() {
            let p = jute::AuthPacket {
                auth_type: 0,
                scheme: scheme.clone(),
                auth: Some(auth.clone()),
            };
            queues.lock().expect("lock").auth.push_back(None);
            prime.extend_from_slice(&frame(xid::AUTH, op::AUTH, &p.encode()));
        }
        self.shared.emit_state(KeeperState::SyncConnected);
        let mut last_send = Instant::now();
        if !prime.is_empty() && wr.write_all(&prime).await.is_err() {
            return self.lost(reader, &queues).await;
        }
        let mut tick = tokio::time::interval(Duration::from_millis(
            (ping_every.as_millis() as u64 / 4).clamp(10, 1000),
        ));
        let mut batch = BytesMut::with_capacity(64 * 1024);
        loop {
            tokio::select! {
                biased;
                _ = &mut done_rx => return self.lost(reader, &queues).await,
                c = self.control.recv() => match c {
                    Some(Control::Close(tx)) => {
                        self.close_session(&mut wr, &queues).await;
                        // Java's client tells the default watcher too
                        self.shared.emit_state(KeeperState::Closed);
                        let _ = tx.send(());
                        reader.abort();
                        fail_all(&queues, Error::ConnectionLoss);
                        return Outcome::Closed;
                    }
                    Some(Control::UpdateServerList(list, tx)) => {
                        let moving = self.hosts.update_server_list(list, Some(addr));
                        let _ = tx.send(moving);
                        if moving {
                            let _ = wr.shutdown().await;
                            reader.abort();
                            fail_all(&queues, Error::ConnectionLoss);
                            return Outcome::Moved;
                        }
                    }
                    None => {}
                },
                r = self.requests.recv() => {
                    let Some(first) = r else {
                        // every handle was dropped: close the session politely
                        self.close_session(&mut wr, &queues).await;
                        reader.abort();
                        return Outcome::Closed;
                    };
                    let mut next = Some(first);
                    while let Some(req) = next {
                        self.encode(req, &queues, &mut batch);
                        next = if batch.len() < 256 * 1024 { self.requests.try_recv().ok() } else { None };
                    }
                    if wr.write_all(&batch).await.is_err() {
                        batch.clear();
                        return self.lost(reader, &queues).await;
                    }
                    batch.clear();
                    last_send = Instant::now();
                }
                _ = tick.tick() => {
                    let since_recv = started.elapsed().saturating_sub(Duration::from_millis(last_recv.load(Ordering::Relaxed)));
                    if since_recv > read_timeout {
                        // "Client session timed out, have not heard from server"
                        return self.lost(reader, &queues).await;
                    }
                    if last_send.elapsed() >= ping_every {
                        if wr.write_all(&frame(xid::PING, op::PING, &[])).await.is_err() {
                            return self.lost(reader, &queues).await;
                        }
                        last_send = Instant::now();
                    }
                }
            }
        }
    }

    fn encode(&mut self, req: Request, queues: &Mutex<Queues>, out: &mut BytesMut) {
        if req.op == op::AUTH {
            queues.lock().expect("lock").auth.push_back(req.reply);
            out.extend_from_slice(&frame(xid::AUTH, op::AUTH, &req.body));
            return;
        }
        let x = self.next_xid();
        queues.lock().expect("lock").pending.push_back(Pending {
            xid: x,
            reply: req.reply,
            watch: req.watch,
        });
        out.extend_from_slice(&frame(x, req.op, &req.body));
    }

    async fn close_session(&mut self, wr: &mut OwnedWriteHalf, queues: &Mutex<Queues>) {
        let (tx, rx) = oneshot::channel();
        let x = self.next_xid();
        queues.lock().expect("lock").pending.push_back(Pending {
            xid: x,
            reply: Some(tx),
            watch: None,
        });
        if wr
            .write_all(&frame(x, op::CLOSE_SESSION, &[]))
            .await
            .is_ok()
        {
            let wait = Duration::from_millis(self.shared.requested_timeout.max(2000) as u64);
            let _ = tokio::time::timeout(wait, rx).await;
        }
        let _ = wr.shutdown().await;
    }

    async fn lost(
        &mut self,
        reader: tokio::task::JoinHandle<()>,
        queues: &Mutex<Queues>,
    ) -> Outcome {
        reader.abort();
        let _ = reader.await;
        fail_all(queues, Error::ConnectionLoss);
        Outcome::Lost
    }
}

fn fail_all(queues: &Mutex<Queues>, err: Error) {
    let mut q = queues.lock().expect("lock");
    for p in q.pending.drain(..) {
        if let Some(tx) = p.reply {
            let _ = tx.send(Err(err.clone()));
        }
    }
    for tx in q.auth.drain(..).flatten() {
        let _ = tx.send(Err(err.clone()));
    }
}

async fn read_loop(
    rd: tokio::net::tcp::OwnedReadHalf,
    queues: Arc<Mutex<Queues>>,
    shared: Arc<Shared>,
    started: Instant,
    last_recv: Arc<AtomicU64>,
    done: oneshot::Sender<()>,
) {
    let mut rd = BufReader::with_capacity(64 * 1024, rd);
    while let Ok(body) = read_frame(&mut rd).await {
        last_recv.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        let mut r = jute::Reader::new(&body);
        let Ok(h) = ReplyHeader::read(&mut r) else {
            break;
        };
        if h.zxid > 0 {
            shared.last_zxid.fetch_max(h.zxid, Ordering::SeqCst);
        }
        match h.xid {
            xid::NOTIFICATION => {
                let Ok(ev) = WatcherEvent::read(&mut r) else {
                    break;
                };
                deliver(&shared, ev);
            }
            xid::PING | xid::SET_WATCHES => {}
            xid::AUTH => {
                let tx = queues.lock().expect("lock").auth.pop_front().flatten();
                let failed = h.err == jute::ErrorCode::AuthFailed.code();
                if let Some(tx) = tx {
                    let _ = tx.send(if h.err == 0 {
                        Ok(Reply {
                            zxid: h.zxid,
                            err: 0,
                            body: Bytes::new(),
                        })
                    } else {
                        Err(Error::from_code(h.err))
                    });
                }
                if failed {
                    shared.auth_failed.store(true, Ordering::SeqCst);
                    shared.emit_state(KeeperState::AuthFailed);
                }
            }
            _ => {
                let Some(p) = queues.lock().expect("lock").pending.pop_front() else {
                    break;
                };
                if p.xid != h.xid {
                    // out of order: the connection is unusable
                    if let Some(tx) = p.reply {
                        let _ = tx.send(Err(Error::ConnectionLoss));
                    }
                    break;
                }
                if let Some(w) = &p.watch {
                    shared.watches.lock().expect("lock").register(w, h.err);
                }
                if let Some(tx) = p.reply {
                    let _ = tx.send(Ok(Reply {
                        zxid: h.zxid,
                        err: h.err,
                        body: Bytes::copy_from_slice(r.rest()),
                    }));
                }
            }
        }
    }
    let _ = done.send(());
}

fn deliver(shared: &Shared, ev: WatcherEvent) {
    let Some(event_type) = EventType::from_code(ev.event_type) else {
        return;
    };
    let state = KeeperState::from_code(ev.state).unwrap_or(KeeperState::SyncConnected);
    let (to_user, to_internal) = shared
        .watches
        .lock()
        .expect("lock")
        .trigger(event_type, &ev.path);
    let path = if ev.path == CONFIG_NODE {
        ev.path
    } else {
        shared.strip_chroot(ev.path)
    };
    let event = WatchedEvent {
        event_type,
        state,
        path: Some(path),
    };
    if to_internal {
        if let Some(tx) = shared.internal_events.lock().expect("lock").as_ref() {
            let _ = tx.send(event.clone());
        }
    }
    if to_user {
        let _ = shared.events.send(event);
    }
}
