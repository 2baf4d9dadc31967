//! The tokio edge: the client port listener, one reader and one writer task per connection,
//! the core task, and the timers that drive session expiry and container reaping.

use crate::clock::mono_ms;
use crate::deliver::Deliver;
use crate::driver::Driver;
use crate::fourlw::is_four_letter_word;
use crate::inbox::CoreMsg;
use crate::outbox::{
    Flow, GlobalOutstanding, Outbox, Outgoing, MAX_UNANSWERED_BYTES, MAX_UNANSWERED_REQUESTS,
    MAX_UNSENT_BYTES,
};
use anyhow::Context;
use bytes::{Bytes, BytesMut};
use config::ZooCfg;
use jute::request::Request;
use jute::{ConnectRequest, Jute};
use node::{ConnId, Event, Node, NodeOptions};
use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tracing::{info, warn};

/// Tests only: the node panics on a create of the path this variable names (proves that a
/// panic anywhere ends the process; see tests/panic_exit.rs).
const PANIC_INJECTION_VAR: &str = "ZKRS_TEST_PANIC_ON_CREATE";

/// Runs a standalone server until `shutdown` completes. Reports the bound address through
/// `on_listening` (useful with clientPort=0).
pub async fn run(
    cfg: ZooCfg,
    shutdown: impl Future<Output = ()>,
    on_listening: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let mut cfg = cfg;
    let ensemble = crate::ensemble_setup::prepare(&mut cfg)?;
    let addr = cfg
        .client_address()
        .context("clientPort is not set (in zoo.cfg or the server line)")?;
    let listener = bind_listener(&addr)
        .await
        .with_context(|| format!("cannot bind the client port {addr}"))?;
    let local = listener.local_addr()?;
    on_listening(local);
    // with clientPort=0 the OS picks the port; report the real one (conf, mntr)
    cfg.client_port = Some(local.port());
    let cfg = Arc::new(cfg);
    let (core_tx, mut core_rx) = mpsc::unbounded_channel::<CoreMsg>();

    let restored = crate::persist::restore(&cfg)?;
    crate::persist::release_free_memory();
    let to_core = |tx: &UnboundedSender<CoreMsg>| {
        let tx = tx.clone();
        move |msg: CoreMsg| tx.send(msg).is_ok()
    };
    let send = to_core(&core_tx);
    let storage_reports: Deliver<Event> = Arc::new(move |ev| send(CoreMsg::Node(ev)));
    let sink =
        crate::persist::DiskSink::start(&cfg, restored.tree.last_processed_zxid, storage_reports)?;
    let send = to_core(&core_tx);
    let zab_reports: Deliver<crate::quorum_net::ZabEvent> =
        Arc::new(move |ev| send(CoreMsg::Zab(ev)));
    let zab = match &ensemble {
        Some(setup) => Some(
            crate::ensemble_setup::start(
                setup,
                &cfg,
                restored.tree.last_processed_zxid,
                restored.recent_txns,
                zab_reports,
            )
            .await?,
        ),
        None => None,
    };
    let options = NodeOptions {
        durable: true,
        seed: crate::clock::now_ms() as u64 ^ u64::from(std::process::id()),
        server_id: ensemble.as_ref().map_or(0, |e| e.my_id),
        replayed_txns: restored.replayed_txns,
        panic_on_create: std::env::var(PANIC_INJECTION_VAR).ok(),
    };
    let core_cfg = cfg.clone();
    let inbox = core_tx.clone();
    let (rebind_tx, mut rebind_rx) = tokio::sync::watch::channel(local.to_string());
    rebind_rx.borrow_and_update();
    let core_task = tokio::spawn(async move {
        let node = Node::with_state(
            core_cfg.clone(),
            restored.tree,
            &restored.sessions,
            options,
            crate::clock::now(),
        );
        let mut driver = Driver::new(node, core_cfg, inbox, sink, rebind_tx);
        if let Some((replica, edges)) = zab {
            driver.start_replica(replica, edges);
        }
        while let Some(msg) = core_rx.recv().await {
            driver.handle(msg);
        }
    });
    let timers = spawn_timers(&cfg, core_tx.clone(), ensemble.is_some());

    let max_buffer = cfg.jute_max_buffer;
    let keep_raw = ensemble.is_some();
    let global = Arc::new(GlobalOutstanding::new(
        cfg.global_outstanding_limit as usize,
    ));
    let mut next_conn: ConnId = 1;
    let mut listener = listener;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = accept_or_move(&mut listener, &mut rebind_rx, "client") => {
                let (stream, remote) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let conn = next_conn;
                next_conn += 1;
                let limits = ConnectionLimits { max_buffer, global: global.clone() };
                tokio::spawn(serve_connection(stream, remote, conn, core_tx.clone(), limits, keep_raw));
            }
        }
    }
    info!("shutting down");
    timers.abort();
    drop(core_tx);
    core_task.abort();
    Ok(())
}

fn spawn_timers(
    cfg: &ZooCfg,
    core_tx: UnboundedSender<CoreMsg>,
    ensemble: bool,
) -> tokio::task::JoinHandle<()> {
    let tick = Duration::from_millis((cfg.tick_time as u64 / 2).max(10));
    let reap = Duration::from_millis(cfg.container_check_interval_ms);
    // Zab's timers (election back-off, pings, limits) are checked this often
    let zab_tick = Duration::from_millis(if ensemble { 20 } else { 3_600_000 });
    tokio::spawn(async move {
        let mut tick_timer = tokio::time::interval(tick);
        let mut reap_timer = tokio::time::interval(reap);
        let mut zab_timer = tokio::time::interval(zab_tick);
        reap_timer.tick().await;
        zab_timer.tick().await;
        loop {
            let msg = tokio::select! {
                _ = tick_timer.tick() => CoreMsg::Node(Event::Tick),
                _ = reap_timer.tick() => CoreMsg::Node(Event::ReapContainers),
                _ = zab_timer.tick() => CoreMsg::Node(Event::ZabTick),
            };
            if core_tx.send(msg).is_err() {
                return;
            }
        }
    })
}

/// The next connection on `listener`, which moves to each address `moves` announces (a
/// reconfiguration changed one of our ports). As ZooKeeper does, only the listening socket
/// moves: connections already accepted stay open. If the new address cannot be bound the old
/// one is kept, with a warning.
pub(crate) async fn accept_or_move(
    listener: &mut TcpListener,
    moves: &mut tokio::sync::watch::Receiver<String>,
    what: &str,
) -> std::io::Result<(TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            changed = moves.changed() => {
                if changed.is_err() {
                    // nobody can move us any more
                    return listener.accept().await;
                }
                let address = moves.borrow_and_update().clone();
                match bind_listener(&address).await {
                    Ok(moved) => {
                        info!("{what} port moved to {address} by a reconfiguration");
                        *listener = moved;
                    }
                    Err(e) => warn!("cannot bind the new {what} address {address}, keeping the old one: {e}"),
                }
            }
            accepted = listener.accept() => return accepted,
        }
    }
}

/// A connection that has not sent its ConnectRequest by then is closed (ZooKeeper's NIO
/// server closes sessionless connections after 10 s too): it holds a socket and a task.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A request buffer grown past this for a large request is freed once that request is read.
const IDLE_BUFFER_BYTES: usize = 64 * 1024;

/// What bounds what one connection may make the server hold.
struct ConnectionLimits {
    /// jute.maxbuffer: the largest request read.
    max_buffer: usize,
    global: Arc<GlobalOutstanding>,
}

async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    conn: ConnId,
    core_tx: UnboundedSender<CoreMsg>,
    limits: ConnectionLimits,
    keep_raw: bool,
) {
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let outbox = Outbox::counted_in(out_tx, limits.global.clone());
    let flow = outbox.flow();
    if core_tx
        .send(CoreMsg::Accepted {
            conn,
            remote,
            outbox,
        })
        .is_err()
    {
        return;
    }
    let writer = tokio::spawn(write_loop(wr, out_rx, flow.clone(), conn, core_tx.clone()));
    let read = read_loop(rd, conn, &core_tx, &flow, limits.max_buffer, keep_raw);
    let ended = tokio::select! {
        ended = read => ended,
        _ = flow.until_aborted() => Err("over its memory budget (it does not read)".to_owned()),
    };
    if let Err(reason) = ended {
        if !reason.is_empty() {
            info!("closing connection from {remote}: {reason}");
        }
    }
    let _ = core_tx.send(CoreMsg::Node(Event::Closed { conn }));
    let _ = writer.await;
    flow.closed();
}

/// `read` within the handshake's deadline, if one applies.
async fn by_deadline<T>(
    deadline: Option<tokio::time::Instant>,
    read: impl Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    match deadline {
        None => read.await,
        Some(at) => tokio::time::timeout_at(at, read).await.unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no ConnectRequest within {HANDSHAKE_TIMEOUT:?}"),
            ))
        }),
    }
}

/// Reads frames until the peer closes or sends something invalid (Err with the reason).
async fn read_loop(
    rd: OwnedReadHalf,
    conn: ConnId,
    core_tx: &UnboundedSender<CoreMsg>,
    flow: &Flow,
    max_buffer: usize,
    keep_raw: bool,
) -> Result<(), String> {
    // small: an idle session costs this much; larger bodies are read past the buffer
    let mut rd = BufReader::with_capacity(8 * 1024, rd);
    let mut body = Vec::new();
    let mut connected = false;
    let handshake_deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    let mut unanswered = Unanswered::default();
    loop {
        // stop reading (the socket pushes back) while too much waits for an answer: this
        // connection's replies and notifications, or the server's outstanding requests
        loop {
            if unanswered.is_over_limit(flow.answered(), flow.unsent()) {
                flow.wait_for_answers().await;
            } else if flow.global().is_over_limit() && flow.outstanding() > 0 {
                // a connection with nothing outstanding may still send one request: clients
                // that do not read their replies cannot stop everyone else
                tokio::select! {
                    _ = flow.global().wait_below_limit() => break,
                    _ = flow.wait_for_answers() => {}
                }
            } else {
                break;
            }
        }
        let deadline = (!connected).then_some(handshake_deadline);
        let mut len_bytes = [0u8; 4];
        match by_deadline(deadline, rd.read_exact(&mut len_bytes)).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.to_string()),
        }
        if !connected {
            if let Some(word) = is_four_letter_word(len_bytes) {
                // stmk carries the new trace mask after the word
                let arg = if word == "stmk" {
                    // ZooKeeper reads the mask only if it came with the word; otherwise the
                    // command fails and the connection closes without an answer
                    match tokio::time::timeout(Duration::from_millis(100), rd.read_i64()).await {
                        Ok(Ok(mask)) => Some(mask),
                        _ => return Ok(()),
                    }
                } else {
                    None
                };
                // the core writes the answer and closes; nothing more is read
                core_tx
                    .send(CoreMsg::Node(Event::FourLetter { conn, word, arg }))
                    .map_err(|_| "server stopping")?;
                return Ok(());
            }
        }
        let len = i32::from_be_bytes(len_bytes);
        if len < 0 || len as usize > max_buffer {
            return Err(format!("Len error {len} (jute.maxbuffer is {max_buffer})"));
        }
        // grown as the bytes arrive, not to the size the client declares
        if body.capacity() > IDLE_BUFFER_BYTES {
            body = Vec::new();
        }
        body.clear();
        let mut limited = (&mut rd).take(len as u64);
        match by_deadline(deadline, limited.read_to_end(&mut body)).await {
            Ok(n) if n == len as usize => {}
            Ok(n) => return Err(format!("truncated packet: {n} of {len} bytes")),
            Err(e) => return Err(format!("truncated packet: {e}")),
        }
        let received_ms = mono_ms();
        if !connected {
            let request = ConnectRequest::decode(&body)
                .map_err(|e| format!("malformed connect request: {e}"))?;
            // clients before 3.4 send no readOnly byte, and must not get one back
            let old_client = body.len() < 45;
            unanswered.read(body.len());
            flow.request_read();
            core_tx
                .send(CoreMsg::Node(Event::Connect {
                    conn,
                    request,
                    old_client,
                }))
                .map_err(|_| "server stopping")?;
            connected = true;
            continue;
        }
        if body.len() < 8 {
            return Err(format!(
                "packet of {} bytes has no request header",
                body.len()
            ));
        }
        let xid = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        let op_type = i32::from_be_bytes([body[4], body[5], body[6], body[7]]);
        let request = Request::decode(op_type, &body[8..]);
        unanswered.read(body.len());
        flow.request_read();
        // a learner forwards writes to its leader as received
        let raw = if keep_raw {
            Bytes::copy_from_slice(&body[8..])
        } else {
            Bytes::new()
        };
        core_tx
            .send(CoreMsg::Node(Event::Request {
                conn,
                xid,
                op_type,
                request,
                raw,
                received_ms,
            }))
            .map_err(|_| "server stopping")?;
    }
}

/// The sizes of the requests read and not yet answered, oldest first (replies come in request
/// order).
#[derive(Default)]
struct Unanswered {
    sizes: VecDeque<usize>,
    bytes: usize,
    answered: u64,
}

impl Unanswered {
    fn read(&mut self, size: usize) {
        self.sizes.push_back(size);
        self.bytes += size;
    }

    /// Forgets the requests answered since the last call (`answered` counts every reply
    /// written), then says whether reading must wait: too much read and not answered (one
    /// request is always let through), or too many bytes not yet sent (replies and
    /// notifications: a client that does not read gets nothing more read either).
    fn is_over_limit(&mut self, answered: u64, unsent: usize) -> bool {
        while self.answered < answered {
            self.answered += 1;
            match self.sizes.pop_front() {
                Some(size) => self.bytes -= size,
                None => break,
            }
        }
        let read_ahead = !self.sizes.is_empty()
            && (self.sizes.len() >= MAX_UNANSWERED_REQUESTS || self.bytes >= MAX_UNANSWERED_BYTES);
        read_ahead || unsent >= MAX_UNSENT_BYTES
    }
}

async fn write_loop(
    mut wr: OwnedWriteHalf,
    mut out_rx: UnboundedReceiver<Outgoing>,
    flow: Arc<Flow>,
    conn: ConnId,
    core_tx: UnboundedSender<CoreMsg>,
) {
    let mut batch = BytesMut::new();
    while let Some(first) = out_rx.recv().await {
        let mut close = false;
        let mut next = Some(first);
        let mut replies = 0;
        let mut queued = 0;
        // coalesce whatever is already queued into one write
        while let Some(item) = next {
            match item {
                Outgoing::Frame { frame, reply } => {
                    batch.extend_from_slice(&frame);
                    queued += frame.len();
                    replies += u64::from(reply);
                }
                Outgoing::Close => {
                    close = true;
                    break;
                }
            }
            if batch.len() > 256 * 1024 {
                break;
            }
            next = out_rx.try_recv().ok();
        }
        if !batch.is_empty() {
            // a client that does not read blocks this write: an abort must still end it
            let written = tokio::select! {
                written = wr.write_all(&batch) => written.is_ok(),
                _ = flow.until_aborted() => false,
            };
            if !written {
                return;
            }
            batch.clear();
            if batch.capacity() > 64 * 1024 {
                // a big reply went out: do not keep its buffer for an idle connection
                batch = BytesMut::new();
            }
        }
        if let Some(bytes) = flow.written(queued, replies) {
            if core_tx
                .send(CoreMsg::Node(Event::Written { conn, bytes }))
                .is_err()
            {
                return;
            }
        }
        if close {
            let _ = wr.shutdown().await;
            return;
        }
    }
}

/// Connections accepted but not yet taken by the accept loop beyond which the kernel drops
/// the handshake's last ACK, and the client waits a second for the retransmitted SYN-ACK:
/// 10,000 sessions connecting at once overflowed tokio's default of 1024 while the one
/// runtime thread was busy with handshakes (the last one connected after 2.3 s instead of
/// 0.9 s). The kernel caps it at net.core.somaxconn.
const LISTEN_BACKLOG: u32 = 65535;

/// Binds a listening socket as `TcpListener::bind` does (SO_REUSEADDR, the first address that
/// binds), with a [`LISTEN_BACKLOG`] queue.
pub(crate) async fn bind_listener(address: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(address).await? {
        let socket = if a.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(a).and_then(|_| socket.listen(LISTEN_BACKLOG)) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{address} resolves to no address"),
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_waits_for_answers_past_the_request_bounds() {
        let mut unanswered = Unanswered::default();
        assert!(!unanswered.is_over_limit(0, 0));
        for _ in 0..MAX_UNANSWERED_REQUESTS {
            unanswered.read(20);
        }
        assert!(unanswered.is_over_limit(0, 0));
        assert!(
            !unanswered.is_over_limit(1, 0),
            "one answer lets one more in"
        );
        unanswered.read(MAX_UNANSWERED_BYTES);
        assert!(unanswered.is_over_limit(1, 0));
        assert!(
            unanswered.is_over_limit(MAX_UNANSWERED_REQUESTS as u64, 0),
            "the big one waits"
        );
        assert!(!unanswered.is_over_limit(MAX_UNANSWERED_REQUESTS as u64 + 1, 0));
        assert!(
            unanswered.is_over_limit(MAX_UNANSWERED_REQUESTS as u64 + 1, MAX_UNSENT_BYTES),
            "replies or notifications the client does not read stop reading too"
        );
        // one request is always let through, however big
        unanswered.read(2 * MAX_UNANSWERED_BYTES);
        assert!(unanswered.is_over_limit(MAX_UNANSWERED_REQUESTS as u64 + 1, 0));
        assert!(!unanswered.is_over_limit(MAX_UNANSWERED_REQUESTS as u64 + 2, 0));
    }
}
