//! What goes into a [`crate::Node`] and what comes out of it: the whole contract between the
//! pure server and whoever drives it (the tokio runtime in `crates/server`, the simulator in
//! `crates/sim`, the stateful fuzzer).
//!
//! The driver feeds one [`Event`] at a time with the current [`Now`], then executes the
//! [`Action`]s the node queued, in order, before the next event. Results of actions come back
//! as events (a write's bytes left the socket, txns are durable, a snapshot buffer is free).

use bytes::Bytes;
use config::QuorumConfig;
use jute::request::Request;
use jute::{ConnectRequest, JuteError};
use std::net::SocketAddr;
use std::sync::Arc;
use tree::{DataTree, Prepared};
use zab::election::Notification;
use zab::wire::{Packet, SnapshotStream};

/// Identifies a client connection within this server process.
pub type ConnId = u64;

/// Identifies one quorum connection, so that news of an old one is not taken for a new one.
pub type LinkId = u64;

/// The time, as the driver reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// A monotonic clock: every timeout (session expiry, Zab's limits) and latency is
    /// measured on it, so that a wall-clock jump cannot expire sessions.
    pub mono_ms: i64,
    /// The wall clock: what txns and znodes record (TxnHeader.time, ctime, TTLs) and what
    /// session ids start from, as in ZooKeeper. Never used to measure a timeout.
    pub wall_ms: i64,
}

/// Something that happened at the edges.
#[derive(Debug)]
pub enum Event {
    /// A client connection was accepted.
    Accepted { conn: ConnId, remote: SocketAddr },
    /// `bytes` of what the node queued on `conn` were written to its socket.
    Written { conn: ConnId, bytes: usize },
    /// The connection's first packet: a session request.
    Connect {
        conn: ConnId,
        request: ConnectRequest,
        old_client: bool,
    },
    /// A request after the handshake.
    Request {
        conn: ConnId,
        xid: i32,
        op_type: i32,
        request: Result<Request, JuteError>,
        /// The request body as received (a follower forwards it to the leader).
        raw: Bytes,
        /// When its bytes arrived (mono ms): its latency is measured from there.
        received_ms: i64,
    },
    /// The connection is gone (closed by either side).
    Closed { conn: ConnId },
    /// A four-letter word instead of a connect request: counted here, answered by the driver
    /// from the node's getters ([`Action::AnswerFourLetter`]), then closed.
    FourLetter {
        conn: ConnId,
        word: String,
        arg: Option<i64>,
    },
    /// The session clock (a tick): expiry, slow consumers.
    Tick,
    /// Time to delete empty containers and expired TTL nodes.
    ReapContainers,
    /// Every txn up to this zxid is on disk, as of the log's `resets`-th truncation or
    /// snapshot load (a report from before one may name a zxid cut and logged again).
    Durable { zxid: i64, resets: u64 },
    /// Serialize the next part of the snapshot in progress ([`Action::ScheduleSnapshotStep`]).
    SnapshotStep,
    /// The snapshot writer has written this part of the snapshot: its buffer, to be reused.
    SnapshotWritten(Vec<u8>),
    /// The state on disk after a truncation below what was applied ([`Action::ReloadFromDisk`]).
    Reloaded {
        tree: Box<DataTree>,
        sessions: Vec<(i64, i32)>,
    },
    /// Election and quorum connections (replicated mode).
    Peer(PeerEvent),
    /// Zab's clock (replicated mode), a few times per tick.
    ZabTick,
}

/// What the election and quorum connections report.
#[derive(Debug)]
pub enum PeerEvent {
    /// A notification, and the configuration text it carried (the sender's active one).
    Notification(Notification, Vec<u8>),
    /// A learner registered on our quorum port (its first packet named it).
    LearnerUp { sid: u64, link: LinkId },
    /// Our connection to the leader is up.
    LeaderUp { sid: u64, link: LinkId },
    Packet {
        sid: u64,
        link: LinkId,
        packet: Packet,
    },
    /// The snapshot that followed a SNAP packet (delivered before that packet).
    Snapshot {
        sid: u64,
        link: LinkId,
        stream: SnapshotStream,
    },
    /// The connection is gone, or could not take what was sent (too far behind).
    LinkDown { sid: u64, link: LinkId },
}

/// Something the driver must do, in the order queued.
#[derive(Debug)]
pub enum Action {
    // ---- client connections ----
    /// Queue a frame on the connection. `reply`: it answers a request (a watch notification
    /// does not); the reader's flow control counts replies.
    Send {
        conn: ConnId,
        frame: Bytes,
        reply: bool,
    },
    /// Flush what was queued, then close.
    Close {
        conn: ConnId,
    },
    /// Close at once without flushing (the connection is over its memory budget).
    Abort {
        conn: ConnId,
    },
    /// The node holds requests of `conn` until its unsent bytes drain: report the next
    /// write on it ([`Event::Written`]) even if it is small.
    ReportWrites {
        conn: ConnId,
    },
    /// Answer the four-letter word (with `stmk`'s argument) from the node's getters; a
    /// [`Action::Close`] follows.
    AnswerFourLetter {
        conn: ConnId,
        word: String,
        arg: Option<i64>,
    },
    /// Listen for clients on this address from now on (a reconfiguration moved our port).
    MoveClientListener(config::HostPort),

    // ---- the txn log and snapshots (one writer, in this order) ----
    /// Log a prepared txn; [`Event::Durable`] reports it.
    Persist(Arc<Prepared>),
    /// Log a txn record already serialized (a proposal's bytes, as received).
    PersistRaw {
        header: jute::TxnHeader,
        body: Bytes,
    },
    /// Start a new log file: a snapshot is starting.
    RollLog,
    /// Remove every logged txn after `zxid` (a learner's TRUNC).
    TruncateLog {
        zxid: i64,
    },
    /// Replace the whole log by a snapshot of these sessions and this serialized tree (a
    /// learner's SNAP).
    ResetLogToSnapshot {
        zxid: i64,
        sessions: Vec<(i64, i32)>,
        serialized_tree: Vec<u8>,
    },
    /// Start writing the snapshot of a fuzzy snapshot started at `zxid`, with these sessions.
    BeginSnapshot {
        zxid: i64,
        sessions: Vec<(i64, i32)>,
    },
    /// The next bytes of the serialized tree of the snapshot begun; the buffer comes back as
    /// [`Event::SnapshotWritten`] once written.
    SnapshotBytes(Vec<u8>),
    /// The snapshot begun is complete (its last bytes sent), or abandoned.
    EndSnapshot {
        complete: bool,
    },
    /// Feed [`Event::SnapshotStep`] back after the events already queued.
    ScheduleSnapshotStep,
    /// Read the state back from disk once the truncation queued before is done, and feed it
    /// as [`Event::Reloaded`] before any other event.
    ReloadFromDisk,
    /// Return freed memory to the system (a large tree was just replaced).
    ReleaseFreeMemory,

    // ---- Zab's connections and files ----
    SendNotification {
        to: u64,
        notification: Notification,
    },
    SendPacket {
        link: LinkId,
        packet: Packet,
    },
    /// Bytes already encoded (a snapshot stream) on a quorum connection.
    SendBytes {
        link: LinkId,
        bytes: Vec<u8>,
    },
    /// Dial the leader's quorum port; [`PeerEvent::LeaderUp`] when connected (give up after
    /// `give_up_ms`).
    ConnectToLeader {
        sid: u64,
        address: String,
        give_up_ms: u64,
    },
    /// Close a quorum connection (flushing what was queued).
    CloseLink {
        link: LinkId,
    },
    /// Write acceptedEpoch/currentEpoch durably before the actions after it.
    StoreEpochs(zab::peer::Persisted),
    /// A reconfiguration was proposed: the election talks to its members too, and the
    /// dynamic file's `.next` holds it.
    ConfigProposed(Arc<QuorumConfig>),
    /// A configuration became active: the election uses it, the dynamic file holds it.
    ConfigActivated {
        my_id: u64,
        config: Arc<QuorumConfig>,
    },
    /// Our quorum and election ports are those of this server line now.
    MovePeerListeners(config::ServerSpec),
    /// Something is broken beyond repair (a txn from the leader that does not decode): the
    /// process must exit. The node stops handling events.
    Fatal(String),
}
