//! Wire formats between servers, byte for byte as ZooKeeper 3.8 writes them.
//!
//! Two connections join every pair of servers (see docs/ZAB-WIRE.md for the message order):
//!
//! - **Election port.** The dialing server first sends an [`InitialMessage`] (its protocol
//!   version, server id and election address); after that both directions carry frames of
//!   `int length` + payload ([`encode_election_frame`], [`decode_election_frame`]), each payload
//!   a [`Notification`]. Only one connection per pair survives: the one dialed by the larger
//!   server id ([`dialer_keeps_connection`], [`accept_decision`]).
//! - **Quorum port** (learner to leader). A bare stream of jute `QuorumPacket` records with no
//!   length prefix ([`RawPacket`]), typed as [`Packet`]; right after a SNAP packet the leader
//!   writes the snapshot itself ([`SnapshotStream`]) into the same stream.
//!   [`QuorumStreamDecoder`] cuts a received byte stream into these items.
//!
//! Decoding never panics: truncated or malformed input is a [`WireError`], and the streaming
//! decoders answer `Ok(None)` while a complete item has not arrived yet. Lengths are checked
//! against ZooKeeper's limits before anything is allocated.

use bytes::BufMut;
use jute::{op, Id, Jute, JuteError, LearnerInfo, QuorumPacket, Reader, TxnDigest, TxnHeader};

/// Why bytes are not a valid server-to-server message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error(transparent)]
    Jute(#[from] JuteError),
    #[error("unrecognized election protocol version {0}")]
    UnknownProtocolVersion(i64),
    #[error("unreasonable length {length} for {what} (allowed up to {limit})")]
    BadLength {
        what: &'static str,
        length: i64,
        limit: usize,
    },
    #[error("badly formed address {0:?}")]
    BadAddress(String),
    #[error("notification of {0} bytes is shorter than any known format")]
    ShortNotification(usize),
    #[error("unknown server state {0}")]
    UnknownServerState(i32),
    #[error("unknown quorum packet type {0}")]
    UnknownPacketType(i32),
    #[error("{what}: payload of {got} bytes, expected {expected}")]
    BadPayload {
        what: &'static str,
        expected: &'static str,
        got: usize,
    },
    #[error("{0} packet without data")]
    MissingData(&'static str),
    #[error("txn type {0} cannot travel in a proposal")]
    UnsupportedTxn(i32),
    #[error("snapshot stream ends with signature {0:?}, expected \"BenWasHere\"")]
    BadSignature(String),
}

pub type Result<T> = std::result::Result<T, WireError>;

/// Turns "ran out of bytes" into "incomplete" for the streaming decoders.
fn incomplete_as_none<T>(r: Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(WireError::Jute(JuteError::UnexpectedEof { .. })) => Ok(None),
        Err(e) => Err(e),
    }
}

fn payload_err(what: &'static str, expected: &'static str, got: usize) -> WireError {
    WireError::BadPayload {
        what,
        expected,
        got,
    }
}

/// The zxid `epoch << 32 | counter` (ZooKeeper's ZxidUtils.makeZxid).
pub fn make_zxid(epoch: i64, counter: i64) -> i64 {
    (epoch << 32) | (counter & 0xffff_ffff)
}

/// The epoch half of a zxid (arithmetic shift, so -1 stays -1).
pub fn epoch_of(zxid: i64) -> i64 {
    zxid >> 32
}

/// The counter half of a zxid.
pub fn counter_of(zxid: i64) -> i64 {
    zxid & 0xffff_ffff
}

// ---------------------------------------------------------------------------------------------
// Election connection handshake (QuorumCnxManager)
// ---------------------------------------------------------------------------------------------

/// First long of an initial message in the single-address format (3.5+, the 3.8 default).
pub const PROTOCOL_VERSION_V1: i64 = -65536;
/// First long of an initial message in the multi-address format (3.6+, sent only when
/// `multiAddress.enabled=true`).
pub const PROTOCOL_VERSION_V2: i64 = -65535;
/// Largest address text a receiver accepts in an initial message (`maxBuffer`).
pub const MAX_INITIAL_ADDRESS_BYTES: usize = 2048;
/// The sid pre-3.3 observers announced themselves with; the receiver replaces it by a fresh
/// negative id per connection.
pub const OBSERVER_ID: i64 = i64::MAX;

/// Which of the three initial-message formats a connecting server used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandshakeVersion {
    /// Before 3.5: the message is only the sid (a non-negative long).
    Legacy,
    /// [`PROTOCOL_VERSION_V1`]: sid and one `host:port`.
    V1,
    /// [`PROTOCOL_VERSION_V2`]: sid and `host:port|host:port|...`.
    V2,
}

/// An election address as it travels in an initial message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ElectionAddress {
    /// Host name or IP literal, IPv6 without brackets.
    pub host: String,
    pub port: u16,
}

impl ElectionAddress {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        ElectionAddress {
            host: host.into(),
            port,
        }
    }

    /// Parses `host:port` or `[ipv6]:port` the way ZooKeeper's receiver does
    /// (ConfigUtils.getHostAndPort + Integer.parseInt), except that an empty host or a port
    /// outside 0..=65535 is an error here.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || WireError::BadAddress(s.to_owned());
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            // ZooKeeper skips the character after ']' without checking that it is ':'
            let close = rest.find(']').ok_or_else(bad)?;
            let host = &rest[..close];
            let after = rest
                .get(close + 2..)
                .filter(|p| !p.is_empty())
                .ok_or_else(bad)?;
            (host, after)
        } else {
            let mut parts = s.split(':');
            let host = parts.next().ok_or_else(bad)?;
            let port = parts.next().ok_or_else(bad)?;
            if parts.next().is_some() {
                return Err(bad());
            }
            (host, port)
        };
        if host.is_empty() || port.contains(':') {
            return Err(bad());
        }
        let digits = port.strip_prefix('+').unwrap_or(port);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let port: u16 = digits.parse().map_err(|_| bad())?;
        Ok(ElectionAddress::new(host, port))
    }

    /// `host:port`, or `[host]:port` for an IPv6 literal (NetUtils.formatInetAddr).
    pub fn format(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// A wildcard (any-local) address: the receiver ignores it and dials the address from its
    /// own configuration instead.
    pub fn is_wildcard(&self) -> bool {
        match self.host.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.is_unspecified(),
            Err(_) => false,
        }
    }
}

/// The first bytes a server sends on an election connection it dialed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialMessage {
    pub version: HandshakeVersion,
    /// The dialing server's id.
    pub sid: i64,
    /// Its election address(es); empty for [`HandshakeVersion::Legacy`]. A V1 message has
    /// exactly one, a V2 message one or more.
    pub addresses: Vec<ElectionAddress>,
}

impl InitialMessage {
    /// What a 3.8 server sends by default.
    pub fn v1(sid: i64, address: ElectionAddress) -> Self {
        InitialMessage {
            version: HandshakeVersion::V1,
            sid,
            addresses: vec![address],
        }
    }

    /// What a 3.8 server sends with `multiAddress.enabled=true`.
    pub fn v2(sid: i64, addresses: Vec<ElectionAddress>) -> Self {
        InitialMessage {
            version: HandshakeVersion::V2,
            sid,
            addresses,
        }
    }

    /// The addresses a receiver would dial back (wildcards dropped); empty means "use the
    /// address from the configuration".
    pub fn dial_back_addresses(&self) -> Vec<&ElectionAddress> {
        self.addresses.iter().filter(|a| !a.is_wildcard()).collect()
    }

    /// Legacy: `long sid`. V1/V2: `long version, long sid, int n, n bytes of address text`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self.version {
            HandshakeVersion::Legacy => out.put_i64(self.sid),
            HandshakeVersion::V1 | HandshakeVersion::V2 => {
                out.put_i64(if self.version == HandshakeVersion::V1 {
                    PROTOCOL_VERSION_V1
                } else {
                    PROTOCOL_VERSION_V2
                });
                out.put_i64(self.sid);
                let text = self
                    .addresses
                    .iter()
                    .map(ElectionAddress::format)
                    .collect::<Vec<_>>()
                    .join("|");
                out.put_i32(text.len() as i32);
                out.put_slice(text.as_bytes());
            }
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Reads an initial message from the start of `buf`: `Ok(None)` until it is complete, then
    /// the message and the number of bytes it used (election frames follow it directly).
    ///
    /// As ZooKeeper's receiver does: a non-negative first long is a legacy sid; a negative one
    /// must be V1 or V2; the address length must be 1..=2048; the text is split on `|`
    /// (trailing empty pieces dropped) and every piece must be a valid address.
    pub fn decode_prefix(buf: &[u8]) -> Result<Option<(InitialMessage, usize)>> {
        let mut r = Reader::new(buf);
        let parsed = incomplete_as_none(Self::read(&mut r))?;
        Ok(parsed.map(|m| (m, r.position())))
    }

    /// Decodes a buffer holding exactly one initial message.
    pub fn decode(buf: &[u8]) -> Result<InitialMessage> {
        let mut r = Reader::new(buf);
        let m = Self::read(&mut r)?;
        r.finish()?;
        Ok(m)
    }

    fn read(r: &mut Reader<'_>) -> Result<InitialMessage> {
        let first = r.read_i64()?;
        if first >= 0 {
            return Ok(InitialMessage {
                version: HandshakeVersion::Legacy,
                sid: first,
                addresses: Vec::new(),
            });
        }
        let version = match first {
            PROTOCOL_VERSION_V1 => HandshakeVersion::V1,
            PROTOCOL_VERSION_V2 => HandshakeVersion::V2,
            other => return Err(WireError::UnknownProtocolVersion(other)),
        };
        let sid = r.read_i64()?;
        let len = r.read_i32()?;
        if len <= 0 || len as usize > MAX_INITIAL_ADDRESS_BYTES {
            return Err(WireError::BadLength {
                what: "initial message address",
                length: len as i64,
                limit: MAX_INITIAL_ADDRESS_BYTES,
            });
        }
        let bytes = r.take(len as usize)?;
        let text = String::from_utf8_lossy(bytes);
        let mut pieces: Vec<&str> = text.split('|').collect();
        while pieces.last() == Some(&"") {
            pieces.pop();
        }
        let addresses = pieces
            .into_iter()
            .map(ElectionAddress::parse)
            .collect::<Result<Vec<_>>>()?;
        Ok(InitialMessage {
            version,
            sid,
            addresses,
        })
    }
}

/// Whether the server that dialed an election connection keeps it after sending its initial
/// message: only if its id is larger than the peer's. Otherwise it closes the socket and waits
/// for the peer to dial back.
pub fn dialer_keeps_connection(my_sid: i64, remote_sid: i64) -> bool {
    my_sid > remote_sid
}

/// What the accepting side of an election connection does once it has read the initial message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptDecision {
    /// The dialer has the larger id: use this connection (replacing any older one to that peer).
    Keep,
    /// The dialer has the smaller id: close this socket, drop any existing connection to that
    /// peer, and dial it ourselves (the larger id always owns the connection).
    CloseAndDialBack,
    /// The dialer claims our own id: a configuration error. ZooKeeper logs a warning and
    /// neither uses nor closes the socket; close it.
    OwnId,
}

pub fn accept_decision(my_sid: i64, remote_sid: i64) -> AcceptDecision {
    use std::cmp::Ordering::*;
    match remote_sid.cmp(&my_sid) {
        Less => AcceptDecision::CloseAndDialBack,
        Equal => AcceptDecision::OwnId,
        Greater => AcceptDecision::Keep,
    }
}

// ---------------------------------------------------------------------------------------------
// Election messages (FastLeaderElection)
// ---------------------------------------------------------------------------------------------

/// Frames longer than this (or of length <= 0) make the receiver drop the connection
/// (QuorumCnxManager.PACKETMAXSIZE, 512 KiB).
pub const MAX_ELECTION_FRAME: usize = 512 * 1024;

/// `int length` + payload.
pub fn encode_election_frame(payload: &[u8], out: &mut Vec<u8>) {
    out.put_i32(payload.len() as i32);
    out.put_slice(payload);
}

/// Reads one frame from the start of `buf`: `Ok(None)` until complete, then the payload and the
/// number of bytes consumed. A length <= 0 or above [`MAX_ELECTION_FRAME`] is an error (the
/// connection must be closed).
pub fn decode_election_frame(buf: &[u8]) -> Result<Option<(&[u8], usize)>> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if len <= 0 || len as usize > MAX_ELECTION_FRAME {
        return Err(WireError::BadLength {
            what: "election frame",
            length: len as i64,
            limit: MAX_ELECTION_FRAME,
        });
    }
    let end = 4 + len as usize;
    if buf.len() < end {
        return Ok(None);
    }
    Ok(Some((&buf[4..end], end)))
}

/// A server's state as written in a notification (ordinal of QuorumPeer.ServerState).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerState {
    Looking = 0,
    Following = 1,
    Leading = 2,
    Observing = 3,
}

impl ServerState {
    pub fn from_i32(v: i32) -> Option<ServerState> {
        Some(match v {
            0 => ServerState::Looking,
            1 => ServerState::Following,
            2 => ServerState::Leading,
            3 => ServerState::Observing,
            _ => return None,
        })
    }

    pub fn as_i32(self) -> i32 {
        self as i32
    }
}

/// The notification format 3.8 writes (FastLeaderElection.Notification.CURRENTVERSION).
pub const NOTIFICATION_VERSION: i32 = 2;
/// Bytes before the config in a current notification: 4+8+8+8+8+4+4.
pub const NOTIFICATION_HEADER_LEN: usize = 44;

/// An election notification: the sender's state and the vote it currently backs.
///
/// Layout (3.5+): `int state, long leader, long zxid, long electionEpoch, long peerEpoch,
/// int version (2), int configLength, configLength bytes` — the config is the sender's
/// committed QuorumVerifier as text (`server.N=...` lines then `version=<hex>`, no final
/// newline); 44 + configLength bytes in all. Older formats: exactly 28 bytes (no peerEpoch, no
/// version) and exactly 40 bytes (peerEpoch, then 4 bytes the receiver ignores, no version).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Notification {
    pub state: ServerState,
    /// The proposed leader's id (`i64::MIN` from an observer that has no vote).
    pub leader: i64,
    /// The proposed leader's last logged zxid (`i64::MIN` from an observer).
    pub zxid: i64,
    /// The sender's election round (logical clock).
    pub election_epoch: i64,
    /// The proposed leader's current epoch; for a 28-byte message, the epoch of `zxid`.
    pub peer_epoch: i64,
    /// Format version: 2 for 3.5+ (with config); 0 for the 28 and 40 byte formats. A message
    /// longer than 40 bytes with version 1 or less has no config.
    pub version: i32,
    /// The sender's configuration text; only meaningful when `version > 1`.
    pub config: Vec<u8>,
}

impl Notification {
    /// A notification in the current format.
    pub fn new(
        state: ServerState,
        leader: i64,
        zxid: i64,
        election_epoch: i64,
        peer_epoch: i64,
        config: Vec<u8>,
    ) -> Self {
        Notification {
            state,
            leader,
            zxid,
            election_epoch,
            peer_epoch,
            version: NOTIFICATION_VERSION,
            config,
        }
    }

    /// The payload (without the frame length). Writes `configLength` and the config only when
    /// `version > 1`; otherwise the result is 40 bytes, which receivers read as the old
    /// 40-byte format (version 0).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.put_i32(self.state.as_i32());
        out.put_i64(self.leader);
        out.put_i64(self.zxid);
        out.put_i64(self.election_epoch);
        out.put_i64(self.peer_epoch);
        out.put_i32(self.version);
        if self.version > 1 {
            out.put_i32(self.config.len() as i32);
            out.put_slice(&self.config);
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(NOTIFICATION_HEADER_LEN + self.config.len());
        self.encode_into(&mut out);
        out
    }

    /// The payload inside an election frame.
    pub fn encode_frame(&self) -> Vec<u8> {
        let payload = self.encode();
        let mut out = Vec::with_capacity(4 + payload.len());
        encode_election_frame(&payload, &mut out);
        out
    }

    /// Decodes a frame payload as 3.8's receiver does: fewer than 28 bytes is rejected; exactly
    /// 28 bytes has no peer epoch (taken from the zxid); exactly 40 bytes has a peer epoch and
    /// no version; any other size needs the version int at bytes 36..40, and when the version is above 1 a config length in
    /// 0..=payload size followed by that many bytes. Bytes after what the format needs are
    /// ignored, as ZooKeeper ignores them. A state outside 0..=3 is an error (ZooKeeper drops
    /// such a message).
    pub fn decode(payload: &[u8]) -> Result<Notification> {
        let capacity = payload.len();
        if capacity < 28 {
            return Err(WireError::ShortNotification(capacity));
        }
        let mut r = Reader::new(payload);
        let raw_state = r.read_i32()?;
        let leader = r.read_i64()?;
        let zxid = r.read_i64()?;
        let election_epoch = r.read_i64()?;
        let (peer_epoch, version) = if capacity == 28 {
            (epoch_of(zxid), 0)
        } else if capacity == 40 {
            (r.read_i64()?, 0)
        } else {
            (r.read_i64()?, r.read_i32()?)
        };
        let mut config = Vec::new();
        if version > 1 {
            let len = r.read_i32()?;
            if len < 0 || len as usize > capacity {
                return Err(WireError::BadLength {
                    what: "notification config",
                    length: len as i64,
                    limit: capacity,
                });
            }
            config = r.take(len as usize)?.to_vec();
        }
        let state =
            ServerState::from_i32(raw_state).ok_or(WireError::UnknownServerState(raw_state))?;
        Ok(Notification {
            state,
            leader,
            zxid,
            election_epoch,
            peer_epoch,
            version,
            config,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Quorum packets (Leader, Learner, LearnerHandler)
// ---------------------------------------------------------------------------------------------

/// QuorumPacket.type values (constants of ZooKeeper's Leader class).
pub mod packet_type {
    pub const REQUEST: i32 = 1;
    pub const PROPOSAL: i32 = 2;
    pub const ACK: i32 = 3;
    pub const COMMIT: i32 = 4;
    pub const PING: i32 = 5;
    pub const REVALIDATE: i32 = 6;
    pub const SYNC: i32 = 7;
    pub const INFORM: i32 = 8;
    pub const COMMITANDACTIVATE: i32 = 9;
    pub const NEWLEADER: i32 = 10;
    pub const FOLLOWERINFO: i32 = 11;
    pub const UPTODATE: i32 = 12;
    pub const DIFF: i32 = 13;
    pub const TRUNC: i32 = 14;
    pub const SNAP: i32 = 15;
    pub const OBSERVERINFO: i32 = 16;
    pub const LEADERINFO: i32 = 17;
    pub const ACKEPOCH: i32 = 18;
    pub const INFORMANDACTIVATE: i32 = 19;

    /// ZooKeeper's name for a packet type (as in its logs), or None if unknown.
    pub fn name(t: i32) -> Option<&'static str> {
        Some(match t {
            REQUEST => "REQUEST",
            PROPOSAL => "PROPOSAL",
            ACK => "ACK",
            COMMIT => "COMMIT",
            PING => "PING",
            REVALIDATE => "REVALIDATE",
            SYNC => "SYNC",
            INFORM => "INFORM",
            COMMITANDACTIVATE => "COMMITANDACTIVATE",
            NEWLEADER => "NEWLEADER",
            FOLLOWERINFO => "FOLLOWERINFO",
            UPTODATE => "UPTODATE",
            DIFF => "DIFF",
            TRUNC => "TRUNC",
            SNAP => "SNAP",
            OBSERVERINFO => "OBSERVERINFO",
            LEADERINFO => "LEADERINFO",
            ACKEPOCH => "ACKEPOCH",
            INFORMANDACTIVATE => "INFORMANDACTIVATE",
            _ => return None,
        })
    }
}

/// The learner protocol version 3.4+ learners and leaders announce (Zab 1.0).
pub const LEARNER_PROTOCOL_VERSION: i32 = 0x10000;
/// The string that ends a snapshot sent after SNAP.
pub const SNAP_SIGNATURE: &str = "BenWasHere";
/// The largest buffer or string a 3.8 server reads from a quorum connection with default
/// settings: `jute.maxbuffer` (0xfffff) plus `zookeeper.jute.maxbuffer.extrasize`, which
/// defaults to `jute.maxbuffer` too.
pub const DEFAULT_MAX_BUFFER: usize = 0xfffff * 2;

/// Reads a jute length (-1 = null), refusing lengths ZooKeeper's BinaryInputArchive refuses.
fn read_len(r: &mut Reader<'_>, what: &'static str, max: usize) -> Result<Option<usize>> {
    let len = r.read_i32()?;
    if len == -1 {
        return Ok(None);
    }
    if len < 0 || len as usize > max {
        return Err(WireError::BadLength {
            what,
            length: len as i64,
            limit: max,
        });
    }
    Ok(Some(len as usize))
}

/// A ustring; null reads as "" (ZooKeeper never writes a null scheme or id).
fn read_ustring(r: &mut Reader<'_>, what: &'static str, max: usize) -> Result<String> {
    let offset = r.position();
    match read_len(r, what, max)? {
        None => Ok(String::new()),
        Some(n) => String::from_utf8(r.take(n)?.to_vec())
            .map_err(|_| WireError::Jute(JuteError::InvalidUtf8 { offset })),
    }
}

/// A QuorumPacket exactly as on the wire: `int type, long zxid, buffer data, vector<Id>
/// authinfo`, where a null buffer and a null vector (length -1) differ from empty ones.
/// ZooKeeper writes null data for packets without payload and a null authinfo on every packet
/// except a forwarded client REQUEST.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawPacket {
    pub packet_type: i32,
    pub zxid: i64,
    pub data: Option<Vec<u8>>,
    pub authinfo: Option<Vec<Id>>,
}

impl RawPacket {
    pub fn new(packet_type: i32, zxid: i64, data: Option<Vec<u8>>) -> Self {
        RawPacket {
            packet_type,
            zxid,
            data,
            authinfo: None,
        }
    }

    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.put_i32(self.packet_type);
        out.put_i64(self.zxid);
        jute::write_opt_buffer(out, self.data.as_deref());
        match &self.authinfo {
            None => out.put_i32(-1),
            Some(ids) => ids.write(out),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(20 + self.data.as_ref().map_or(0, Vec::len));
        self.encode_into(&mut out);
        out
    }

    /// Reads one packet from the start of a quorum stream: `Ok(None)` until it is complete, then
    /// the packet and its length. Buffers and strings longer than `max_buffer` (use
    /// [`DEFAULT_MAX_BUFFER`]) are rejected as soon as their length is read.
    pub fn decode_prefix(buf: &[u8], max_buffer: usize) -> Result<Option<(RawPacket, usize)>> {
        let mut r = Reader::new(buf);
        let parsed = incomplete_as_none(Self::read(&mut r, max_buffer))?;
        Ok(parsed.map(|p| (p, r.position())))
    }

    /// Decodes a buffer holding exactly one packet.
    pub fn decode(buf: &[u8]) -> Result<RawPacket> {
        let mut r = Reader::new(buf);
        let p = Self::read(&mut r, DEFAULT_MAX_BUFFER)?;
        r.finish()?;
        Ok(p)
    }

    fn read(r: &mut Reader<'_>, max: usize) -> Result<RawPacket> {
        let parts = Self::read_parts(r, max)?;
        Ok(RawPacket {
            packet_type: parts.packet_type,
            zxid: parts.zxid,
            data: parts.data.map(<[u8]>::to_vec),
            authinfo: parts.authinfo,
        })
    }

    /// [`RawPacket::read`] leaving the data where it lies.
    fn read_parts<'a>(r: &mut Reader<'a>, max: usize) -> Result<PacketParts<'a>> {
        let packet_type = r.read_i32()?;
        let zxid = r.read_i64()?;
        let data = match read_len(r, "packet data", max)? {
            None => None,
            Some(n) => Some(r.take(n)?),
        };
        let offset = r.position();
        let count = r.read_i32()?;
        let authinfo = match count {
            -1 => None,
            n if n < 0 => {
                return Err(WireError::Jute(JuteError::InvalidLength {
                    offset,
                    length: n,
                }));
            }
            n => {
                // an Id is at least 8 bytes: don't trust the count for the allocation
                let mut ids = Vec::with_capacity((n as usize).min(r.remaining() / 8));
                for _ in 0..n {
                    let scheme = read_ustring(r, "auth scheme", max)?;
                    let id = read_ustring(r, "auth id", max)?;
                    ids.push(Id { scheme, id });
                }
                Some(ids)
            }
        };
        Ok(PacketParts {
            packet_type,
            zxid,
            data,
            authinfo,
        })
    }
}

/// A packet read in place: its data is still a slice of the bytes received.
struct PacketParts<'a> {
    packet_type: i32,
    zxid: i64,
    data: Option<&'a [u8]>,
    authinfo: Option<Vec<Id>>,
}

/// The jute record loses the null/empty distinction of authinfo (null becomes empty).
impl From<RawPacket> for QuorumPacket {
    fn from(p: RawPacket) -> Self {
        QuorumPacket {
            packet_type: p.packet_type,
            zxid: p.zxid,
            data: p.data,
            authinfo: p.authinfo.unwrap_or_default(),
        }
    }
}

/// An empty authinfo becomes null, as ZooKeeper writes it on every packet but REQUEST.
impl From<QuorumPacket> for RawPacket {
    fn from(p: QuorumPacket) -> Self {
        RawPacket {
            packet_type: p.packet_type,
            zxid: p.zxid,
            data: p.data,
            authinfo: if p.authinfo.is_empty() && p.packet_type != packet_type::REQUEST {
                None
            } else {
                Some(p.authinfo)
            },
        }
    }
}

/// Which side wrote a packet: PING and REVALIDATE carry different payloads each way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sender {
    /// The leader (or a follower acting as ObserverMaster) writing to a learner.
    Leader,
    /// A follower or observer writing to its leader.
    Learner,
}

/// A session id with its timeout in ms: the entries of a learner's PING reply and of the
/// session table at the start of a snapshot (`long id, int timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionTouch {
    pub session_id: i64,
    pub timeout: i32,
}

/// The data of PROPOSAL and INFORM (and INFORMANDACTIVATE after its leader id): a TxnHeader,
/// the txn record of that type, then a TxnDigest when the leader has digests enabled (the 3.8
/// default; error txns carry none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalData {
    pub header: TxnHeader,
    /// The txn record's bytes; decode with the tree crate's `Txn::decode(header.txn_type, ..)`.
    /// Empty for a close-session txn from a server that predates CloseSessionTxn.
    pub txn: bytes::Bytes,
    pub digest: Option<TxnDigest>,
}

impl ProposalData {
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        self.header.write(out);
        out.put_slice(&self.txn);
        if let Some(d) = &self.digest {
            d.write(out);
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.txn.len() + 12);
        self.encode_into(&mut out);
        out
    }

    /// Splits header, txn and digest. The txn record is parsed by its type to find where it
    /// ends (as SerializeUtils.deserializeTxn does, including the pre-3.3 create txn without
    /// parentCVersion); what follows must be nothing or exactly one TxnDigest.
    /// [`ProposalData::decode`] of a buffer it may keep: the txn bytes are a slice of it,
    /// not a copy (a follower decodes every proposal).
    pub fn decode_owned(buf: Vec<u8>) -> Result<ProposalData> {
        let decoded = Self::decode_parts(&buf)?;
        let (header, range, digest) = decoded;
        Ok(ProposalData {
            header,
            txn: bytes::Bytes::from(buf).slice(range),
            digest,
        })
    }

    /// [`ProposalData::decode`] of received bytes that stay shared: the txn is a slice of them.
    pub fn decode_shared(buf: bytes::Bytes) -> Result<ProposalData> {
        let (header, range, digest) = Self::decode_parts(&buf)?;
        Ok(ProposalData {
            header,
            txn: buf.slice(range),
            digest,
        })
    }

    pub fn decode(buf: &[u8]) -> Result<ProposalData> {
        let (header, range, digest) = Self::decode_parts(buf)?;
        Ok(ProposalData {
            header,
            txn: bytes::Bytes::copy_from_slice(&buf[range]),
            digest,
        })
    }

    /// The header, where the txn record lies in `buf`, and the digest after it.
    fn decode_parts(buf: &[u8]) -> Result<(TxnHeader, std::ops::Range<usize>, Option<TxnDigest>)> {
        let mut r = Reader::new(buf);
        let header = TxnHeader::read(&mut r)?;
        let body = r.rest();
        let txn_len = txn_record_len(header.txn_type, body)?;
        let (_, tail) = body.split_at(txn_len);
        let digest = match tail.len() {
            0 => None,
            12 => Some(TxnDigest::decode(tail)?),
            n => return Err(payload_err("txn digest", "0 or 12", n)),
        };
        let start = buf.len() - body.len();
        Ok((header, start..start + txn_len, digest))
    }
}

/// How many bytes at the start of `body` the txn record of `txn_type` occupies.
fn txn_record_len(txn_type: i32, body: &[u8]) -> Result<usize> {
    use jute::{
        CloseSessionTxn, CreateContainerTxn, CreateSessionTxn, CreateTtlTxn, CreateTxn, DeleteTxn,
        ErrorTxn, MultiTxn, SetAclTxn, SetDataTxn,
    };
    let mut r = Reader::new(body);
    match txn_type {
        op::CREATE_SESSION => {
            CreateSessionTxn::skip(&mut r)?;
        }
        op::CLOSE_SESSION => {
            if !body.is_empty() {
                CloseSessionTxn::skip(&mut r)?;
            }
        }
        op::CREATE | op::CREATE2 => {
            if let Err(e) = CreateTxn::skip(&mut r) {
                if !matches!(e, JuteError::UnexpectedEof { .. }) {
                    return Err(e.into());
                }
                // CreateTxnV0: path, data, acl, ephemeral
                r = Reader::new(body);
                String::skip(&mut r)?;
                Option::<Vec<u8>>::skip(&mut r)?;
                Vec::<jute::Acl>::skip(&mut r)?;
                bool::skip(&mut r)?;
            }
        }
        op::CREATE_TTL => {
            CreateTtlTxn::skip(&mut r)?;
        }
        op::CREATE_CONTAINER => {
            CreateContainerTxn::skip(&mut r)?;
        }
        op::DELETE | op::DELETE_CONTAINER => {
            DeleteTxn::skip(&mut r)?;
        }
        op::SET_DATA | op::RECONFIG => {
            SetDataTxn::skip(&mut r)?;
        }
        op::SET_ACL => {
            SetAclTxn::skip(&mut r)?;
        }
        op::ERROR => {
            ErrorTxn::skip(&mut r)?;
        }
        op::MULTI => {
            MultiTxn::skip(&mut r)?;
        }
        other => return Err(WireError::UnsupportedTxn(other)),
    }
    Ok(r.position())
}

/// FOLLOWERINFO / OBSERVERINFO: the learner's accepted epoch and its LearnerInfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnerHello {
    /// `acceptedEpoch << 32` (counter 0).
    pub zxid: i64,
    /// serverid, protocolVersion ([`LEARNER_PROTOCOL_VERSION`]) and the version (zxid) of the
    /// learner's committed configuration.
    pub info: LearnerInfo,
}

impl LearnerHello {
    pub fn new(accepted_epoch: i64, sid: i64, config_version: i64) -> Self {
        LearnerHello {
            zxid: make_zxid(accepted_epoch, 0),
            info: LearnerInfo {
                serverid: sid,
                protocol_version: LEARNER_PROTOCOL_VERSION,
                config_version,
            },
        }
    }

    pub fn accepted_epoch(&self) -> i64 {
        epoch_of(self.zxid)
    }
}

/// A client request a learner forwards to the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnerRequest {
    pub session_id: i64,
    pub cxid: i32,
    /// The request's opcode (e.g. `op::CREATE`, `op::SYNC`, `op::CREATE_SESSION`).
    pub op_type: i32,
    /// The request record as the client sent it, after its RequestHeader; for createSession
    /// the 4-byte session timeout; empty for closeSession. (Shared: the received bytes.)
    pub request: bytes::Bytes,
    /// The client connection's auth ids (e.g. `ip:127.0.0.1`); null for createSession.
    pub authinfo: Option<Vec<Id>>,
}

/// One packet of the learner protocol, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// Learner → leader: a forwarded client request. Packet zxid -1.
    Request(LearnerRequest),
    /// Leader → followers: a txn to log and acknowledge; zxid = the txn's zxid.
    Proposal {
        zxid: i64,
        data: ProposalData,
    },
    /// Learner → leader: the txn `zxid` is logged; also acknowledges NEWLEADER and UPTODATE
    /// with `zxid = newEpoch << 32`.
    Ack {
        zxid: i64,
    },
    /// Leader → followers: everything up to `zxid` is committed.
    Commit {
        zxid: i64,
    },
    /// Leader → learner, every half tick: zxid = the leader's last proposed zxid.
    Ping {
        zxid: i64,
    },
    /// Learner → leader, answering a Ping: echoes its zxid, carries the sessions touched since
    /// the last reply (possibly none; never null).
    PingReply {
        zxid: i64,
        touches: Vec<SessionTouch>,
    },
    /// Learner → leader: may this session (re)attach here? Packet zxid -1.
    Revalidate {
        session_id: i64,
        timeout: i32,
    },
    /// Leader → learner: the answer (the leader reuses the request packet, so zxid is -1).
    RevalidateReply {
        session_id: i64,
        valid: bool,
    },
    /// Leader → learner: answers the learner's oldest forwarded sync request. Packet zxid 0.
    Sync,
    /// Leader → observers: a committed txn; zxid = the txn's zxid.
    Inform {
        zxid: i64,
        data: ProposalData,
    },
    /// Leader → followers: commit the reconfig txn `zxid` and activate its configuration;
    /// `designated_leader` is the server that leads the new configuration.
    CommitAndActivate {
        zxid: i64,
        designated_leader: i64,
    },
    /// Leader → learner, end of sync: zxid = `newEpoch << 32`, data = the leader's last-seen
    /// configuration as text (null only towards pre-3.4 learners).
    NewLeader {
        zxid: i64,
        config: Option<Vec<u8>>,
    },
    FollowerInfo(LearnerHello),
    /// Leader → learner: synced, start serving. Packet zxid -1.
    UpToDate,
    /// Leader → learner: the PROPOSAL/COMMIT pairs that follow bring you up to `zxid`.
    Diff {
        zxid: i64,
    },
    /// Leader → learner: truncate your log to `zxid`.
    Trunc {
        zxid: i64,
    },
    /// Leader → learner: a snapshot of the leader's tree at `zxid` follows in the stream.
    Snap {
        zxid: i64,
    },
    ObserverInfo(LearnerHello),
    /// Leader → learner: zxid = `newEpoch << 32`, data = the leader's protocol version.
    LeaderInfo {
        zxid: i64,
        protocol_version: i32,
    },
    /// Learner → leader: `last_zxid` = its last logged zxid; `current_epoch` = its current
    /// epoch, or -1 if it had already accepted the proposed epoch (then this is no vote).
    AckEpoch {
        last_zxid: i64,
        current_epoch: i32,
    },
    /// Leader → observers: a committed reconfig txn plus the designated leader.
    InformAndActivate {
        zxid: i64,
        designated_leader: i64,
        data: ProposalData,
    },
}

fn exact<'a>(data: &'a Option<Vec<u8>>, what: &'static str, len: usize) -> Result<&'a [u8]> {
    let d = data.as_deref().ok_or(WireError::MissingData(what))?;
    if d.len() != len {
        return Err(WireError::BadPayload {
            what,
            expected: match len {
                4 => "4",
                8 => "8",
                9 => "9",
                12 => "12",
                20 => "20",
                _ => "a fixed size",
            },
            got: d.len(),
        });
    }
    Ok(d)
}

fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_be_bytes(a)
}

impl Packet {
    pub fn packet_type(&self) -> i32 {
        use packet_type::*;
        match self {
            Packet::Request(_) => REQUEST,
            Packet::Proposal { .. } => PROPOSAL,
            Packet::Ack { .. } => ACK,
            Packet::Commit { .. } => COMMIT,
            Packet::Ping { .. } | Packet::PingReply { .. } => PING,
            Packet::Revalidate { .. } | Packet::RevalidateReply { .. } => REVALIDATE,
            Packet::Sync => SYNC,
            Packet::Inform { .. } => INFORM,
            Packet::CommitAndActivate { .. } => COMMITANDACTIVATE,
            Packet::NewLeader { .. } => NEWLEADER,
            Packet::FollowerInfo(_) => FOLLOWERINFO,
            Packet::UpToDate => UPTODATE,
            Packet::Diff { .. } => DIFF,
            Packet::Trunc { .. } => TRUNC,
            Packet::Snap { .. } => SNAP,
            Packet::ObserverInfo(_) => OBSERVERINFO,
            Packet::LeaderInfo { .. } => LEADERINFO,
            Packet::AckEpoch { .. } => ACKEPOCH,
            Packet::InformAndActivate { .. } => INFORMANDACTIVATE,
        }
    }

    /// The packet as ZooKeeper writes it.
    pub fn to_raw(&self) -> RawPacket {
        use packet_type::*;
        let simple = |t: i32, zxid: i64| RawPacket::new(t, zxid, None);
        match self {
            Packet::Request(q) => {
                let mut data = Vec::with_capacity(16 + q.request.len());
                data.put_i64(q.session_id);
                data.put_i32(q.cxid);
                data.put_i32(q.op_type);
                data.put_slice(&q.request);
                RawPacket {
                    packet_type: REQUEST,
                    zxid: -1,
                    data: Some(data),
                    authinfo: q.authinfo.clone(),
                }
            }
            Packet::Proposal { zxid, data } => RawPacket::new(PROPOSAL, *zxid, Some(data.encode())),
            Packet::Ack { zxid } => simple(ACK, *zxid),
            Packet::Commit { zxid } => simple(COMMIT, *zxid),
            Packet::Ping { zxid } => simple(PING, *zxid),
            Packet::PingReply { zxid, touches } => {
                let mut data = Vec::with_capacity(12 * touches.len());
                for t in touches {
                    data.put_i64(t.session_id);
                    data.put_i32(t.timeout);
                }
                RawPacket::new(PING, *zxid, Some(data))
            }
            Packet::Revalidate {
                session_id,
                timeout,
            } => {
                let mut data = Vec::with_capacity(12);
                data.put_i64(*session_id);
                data.put_i32(*timeout);
                RawPacket::new(REVALIDATE, -1, Some(data))
            }
            Packet::RevalidateReply { session_id, valid } => {
                let mut data = Vec::with_capacity(9);
                data.put_i64(*session_id);
                data.put_u8(*valid as u8);
                RawPacket::new(REVALIDATE, -1, Some(data))
            }
            Packet::Sync => simple(SYNC, 0),
            Packet::Inform { zxid, data } => RawPacket::new(INFORM, *zxid, Some(data.encode())),
            Packet::CommitAndActivate {
                zxid,
                designated_leader,
            } => RawPacket::new(
                COMMITANDACTIVATE,
                *zxid,
                Some(designated_leader.to_be_bytes().to_vec()),
            ),
            Packet::NewLeader { zxid, config } => RawPacket::new(NEWLEADER, *zxid, config.clone()),
            Packet::FollowerInfo(h) => RawPacket::new(FOLLOWERINFO, h.zxid, Some(h.info.encode())),
            Packet::UpToDate => simple(UPTODATE, -1),
            Packet::Diff { zxid } => simple(DIFF, *zxid),
            Packet::Trunc { zxid } => simple(TRUNC, *zxid),
            Packet::Snap { zxid } => simple(SNAP, *zxid),
            Packet::ObserverInfo(h) => RawPacket::new(OBSERVERINFO, h.zxid, Some(h.info.encode())),
            Packet::LeaderInfo {
                zxid,
                protocol_version,
            } => RawPacket::new(
                LEADERINFO,
                *zxid,
                Some(protocol_version.to_be_bytes().to_vec()),
            ),
            Packet::AckEpoch {
                last_zxid,
                current_epoch,
            } => RawPacket::new(
                ACKEPOCH,
                *last_zxid,
                Some(current_epoch.to_be_bytes().to_vec()),
            ),
            Packet::InformAndActivate {
                zxid,
                designated_leader,
                data,
            } => {
                let mut bytes = designated_leader.to_be_bytes().to_vec();
                data.encode_into(&mut bytes);
                RawPacket::new(INFORMANDACTIVATE, *zxid, Some(bytes))
            }
        }
    }

    /// Appends the packet as ZooKeeper writes it. The packets of every write (requests,
    /// proposals, acks, commits, pings) are written directly, without the [`RawPacket`] and
    /// its buffers that [`Packet::to_raw`] builds.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        use packet_type::*;
        let simple = |out: &mut Vec<u8>, t: i32, zxid: i64| {
            out.put_i32(t);
            out.put_i64(zxid);
            out.put_i32(-1); // no data
            out.put_i32(-1); // no authinfo
        };
        // the data buffer's length is known once it is written
        let with_data = |out: &mut Vec<u8>, t: i32, zxid: i64, data: &dyn Fn(&mut Vec<u8>)| {
            out.put_i32(t);
            out.put_i64(zxid);
            let at = out.len();
            out.put_i32(0);
            data(out);
            let len = (out.len() - at - 4) as i32;
            out[at..at + 4].copy_from_slice(&len.to_be_bytes());
        };
        match self {
            Packet::Ack { zxid } => simple(out, ACK, *zxid),
            Packet::Commit { zxid } => simple(out, COMMIT, *zxid),
            Packet::Ping { zxid } => simple(out, PING, *zxid),
            Packet::Proposal { zxid, data } => {
                with_data(out, PROPOSAL, *zxid, &|out| data.encode_into(out));
                out.put_i32(-1);
            }
            Packet::Request(q) => {
                with_data(out, REQUEST, -1, &|out| {
                    out.put_i64(q.session_id);
                    out.put_i32(q.cxid);
                    out.put_i32(q.op_type);
                    out.put_slice(&q.request);
                });
                match &q.authinfo {
                    None => out.put_i32(-1),
                    Some(ids) => ids.write(out),
                }
            }
            _ => self.to_raw().encode_into(out),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// [`Packet::from_raw`] of a packet it may take apart: a REQUEST's body and auth ids and
    /// a PROPOSAL's txn are moved out rather than copied.
    pub fn from_raw_owned(p: RawPacket, from: Sender) -> Result<Packet> {
        use packet_type::*;
        match (p.packet_type, p.data) {
            (REQUEST, Some(mut d)) if d.len() >= 16 => {
                let (session_id, cxid, op_type) =
                    (be_i64(&d[0..8]), be_i32(&d[8..12]), be_i32(&d[12..16]));
                d.drain(..16);
                Ok(Packet::Request(LearnerRequest {
                    session_id,
                    cxid,
                    op_type,
                    request: d.into(),
                    authinfo: p.authinfo,
                }))
            }
            (PROPOSAL, Some(d)) => Ok(Packet::Proposal {
                zxid: p.zxid,
                data: ProposalData::decode_owned(d)?,
            }),
            (packet_type, data) => Packet::from_raw(
                &RawPacket {
                    packet_type,
                    zxid: p.zxid,
                    data,
                    authinfo: p.authinfo,
                },
                from,
            ),
        }
    }

    /// Types a raw packet written by `from`. Payloads ZooKeeper parses must have exactly the
    /// layout it writes; fields its reader ignores (the data of ACK or COMMIT, the zxid of
    /// REQUEST, SYNC, UPTODATE...) are ignored here too.
    pub fn from_raw(p: &RawPacket, from: Sender) -> Result<Packet> {
        use packet_type::*;
        let zxid = p.zxid;
        Ok(match p.packet_type {
            REQUEST => {
                let d = p.data.as_deref().ok_or(WireError::MissingData("REQUEST"))?;
                if d.len() < 16 {
                    return Err(payload_err("REQUEST", "at least 16", d.len()));
                }
                Packet::Request(LearnerRequest {
                    session_id: be_i64(&d[0..8]),
                    cxid: be_i32(&d[8..12]),
                    op_type: be_i32(&d[12..16]),
                    request: bytes::Bytes::copy_from_slice(&d[16..]),
                    authinfo: p.authinfo.clone(),
                })
            }
            PROPOSAL => Packet::Proposal {
                zxid,
                data: proposal_data(p, "PROPOSAL")?,
            },
            ACK => Packet::Ack { zxid },
            COMMIT => Packet::Commit { zxid },
            PING => match from {
                Sender::Leader => Packet::Ping { zxid },
                Sender::Learner => {
                    let d = p
                        .data
                        .as_deref()
                        .ok_or(WireError::MissingData("PING reply"))?;
                    if d.len() % 12 != 0 {
                        return Err(payload_err("PING reply", "a multiple of 12", d.len()));
                    }
                    let touches = d
                        .chunks_exact(12)
                        .map(|c| SessionTouch {
                            session_id: be_i64(&c[0..8]),
                            timeout: be_i32(&c[8..12]),
                        })
                        .collect();
                    Packet::PingReply { zxid, touches }
                }
            },
            REVALIDATE => match from {
                Sender::Learner => {
                    let d = exact(&p.data, "REVALIDATE", 12)?;
                    Packet::Revalidate {
                        session_id: be_i64(&d[0..8]),
                        timeout: be_i32(&d[8..12]),
                    }
                }
                Sender::Leader => {
                    let d = exact(&p.data, "REVALIDATE reply", 9)?;
                    Packet::RevalidateReply {
                        session_id: be_i64(&d[0..8]),
                        valid: d[8] != 0,
                    }
                }
            },
            SYNC => Packet::Sync,
            INFORM => Packet::Inform {
                zxid,
                data: proposal_data(p, "INFORM")?,
            },
            COMMITANDACTIVATE => Packet::CommitAndActivate {
                zxid,
                designated_leader: be_i64(exact(&p.data, "COMMITANDACTIVATE", 8)?),
            },
            NEWLEADER => Packet::NewLeader {
                zxid,
                config: p.data.clone(),
            },
            FOLLOWERINFO => Packet::FollowerInfo(learner_hello(p, "FOLLOWERINFO")?),
            UPTODATE => Packet::UpToDate,
            DIFF => Packet::Diff { zxid },
            TRUNC => Packet::Trunc { zxid },
            SNAP => Packet::Snap { zxid },
            OBSERVERINFO => Packet::ObserverInfo(learner_hello(p, "OBSERVERINFO")?),
            LEADERINFO => Packet::LeaderInfo {
                zxid,
                protocol_version: be_i32(exact(&p.data, "LEADERINFO", 4)?),
            },
            ACKEPOCH => Packet::AckEpoch {
                last_zxid: zxid,
                current_epoch: be_i32(exact(&p.data, "ACKEPOCH", 4)?),
            },
            INFORMANDACTIVATE => {
                let d = p
                    .data
                    .as_deref()
                    .ok_or(WireError::MissingData("INFORMANDACTIVATE"))?;
                if d.len() < 8 {
                    return Err(payload_err("INFORMANDACTIVATE", "at least 8", d.len()));
                }
                Packet::InformAndActivate {
                    zxid,
                    designated_leader: be_i64(&d[..8]),
                    data: ProposalData::decode(&d[8..])?,
                }
            }
            other => return Err(WireError::UnknownPacketType(other)),
        })
    }

    /// Decodes a buffer holding exactly one packet written by `from`.
    pub fn decode(buf: &[u8], from: Sender) -> Result<Packet> {
        Packet::from_raw(&RawPacket::decode(buf)?, from)
    }
}

fn proposal_data(p: &RawPacket, what: &'static str) -> Result<ProposalData> {
    ProposalData::decode(p.data.as_deref().ok_or(WireError::MissingData(what))?)
}

fn learner_hello(p: &RawPacket, what: &'static str) -> Result<LearnerHello> {
    // 3.5+ learners always send the full 20-byte LearnerInfo; ZooKeeper's leader also accepts
    // the shorter forms of older learners (null, sid only, sid + version), zkrs does not.
    let d = exact(&p.data, what, 20)?;
    Ok(LearnerHello {
        zxid: p.zxid,
        info: LearnerInfo::decode(d)?,
    })
}

impl From<&Packet> for RawPacket {
    fn from(p: &Packet) -> Self {
        p.to_raw()
    }
}

// ---------------------------------------------------------------------------------------------
// The snapshot that follows SNAP
// ---------------------------------------------------------------------------------------------

/// What the leader writes into the quorum stream right after a SNAP packet (ZKDatabase
/// .serializeSnapshot, then the signature): `int count` + count × (`long sessionId, int
/// timeout`), the DataTree (ACL cache: `int n` + n × (`long id, vector<ACL>`); then nodes
/// depth-first as `ustring path` ("" for the root) + DataNode (`buffer data, long acl,
/// StatPersisted`), ended by the path "/"), then the ustring "BenWasHere". Unlike a snapshot
/// file there is no file header, checksum or digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotStream {
    pub sessions: Vec<SessionTouch>,
    /// The serialized DataTree, ACL cache through the "/" terminator: parse it with the tree
    /// crate's `DataTree::deserialize_from`.
    pub tree: Vec<u8>,
}

impl SnapshotStream {
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.put_i32(self.sessions.len() as i32);
        for s in &self.sessions {
            out.put_i64(s.session_id);
            out.put_i32(s.timeout);
        }
        out.put_slice(&self.tree);
        jute::write_str(out, SNAP_SIGNATURE);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Decodes a buffer holding exactly one snapshot stream (sessions, tree, signature).
    pub fn decode(buf: &[u8]) -> Result<SnapshotStream> {
        let mut scanner = SnapshotScanner::new(DEFAULT_MAX_BUFFER);
        match scanner.scan(buf)? {
            Some(len) if len == buf.len() => Ok(scanner.take_stream(buf)),
            Some(len) => Err(WireError::Jute(JuteError::TrailingBytes {
                count: buf.len() - len,
            })),
            None => Err(WireError::Jute(JuteError::UnexpectedEof {
                offset: buf.len(),
                needed: 1,
            })),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScanPhase {
    SessionCount,
    Sessions { left: usize },
    AclCount,
    Acls { left: usize },
    Nodes,
    Signature,
    Done,
}

/// Finds the end of a [`SnapshotStream`] in a growing buffer without rescanning: each call
/// resumes where the previous one stopped, so a snapshot arriving in many reads costs one
/// pass. Give it the same buffer every time (bytes only appended).
#[derive(Debug, Clone)]
pub struct SnapshotScanner {
    max_buffer: usize,
    pos: usize,
    phase: ScanPhase,
    sessions: Vec<SessionTouch>,
    tree_start: usize,
    tree_end: usize,
}

/// A StatPersisted: czxid, mzxid, ctime, mtime (longs), version, cversion, aversion (ints),
/// ephemeralOwner, pzxid (longs).
const STAT_PERSISTED_LEN: usize = 8 * 4 + 4 * 3 + 8 * 2;

impl SnapshotScanner {
    pub fn new(max_buffer: usize) -> Self {
        SnapshotScanner {
            max_buffer,
            pos: 0,
            phase: ScanPhase::SessionCount,
            sessions: Vec::new(),
            tree_start: 0,
            tree_end: 0,
        }
    }

    /// `Ok(Some(len))` once `buf[..len]` holds the whole stream, signature included.
    pub fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>> {
        while self.phase != ScanPhase::Done {
            let mut r = Reader::new(buf);
            r.take(self.pos)?;
            match incomplete_as_none(self.step(&mut r))? {
                None => return Ok(None),
                Some(next) => {
                    self.phase = next;
                    self.pos = r.position();
                }
            }
        }
        Ok(Some(self.pos))
    }

    /// One atomic element: a count, a session, an ACL cache entry, a node, the signature.
    fn step(&mut self, r: &mut Reader<'_>) -> Result<ScanPhase> {
        let max = self.max_buffer;
        // ZooKeeper's loops treat a negative count as zero; it never writes one
        let count = |r: &mut Reader<'_>| -> Result<usize> {
            let offset = r.position();
            let n = r.read_i32()?;
            if n < 0 {
                return Err(WireError::Jute(JuteError::InvalidLength {
                    offset,
                    length: n,
                }));
            }
            Ok(n as usize)
        };
        Ok(match self.phase {
            ScanPhase::SessionCount => match count(r)? {
                0 => ScanPhase::AclCount,
                n => ScanPhase::Sessions { left: n },
            },
            ScanPhase::Sessions { left } => {
                let session_id = r.read_i64()?;
                let timeout = r.read_i32()?;
                self.sessions.push(SessionTouch {
                    session_id,
                    timeout,
                });
                if left == 1 {
                    ScanPhase::AclCount
                } else {
                    ScanPhase::Sessions { left: left - 1 }
                }
            }
            ScanPhase::AclCount => {
                self.tree_start = r.position();
                match count(r)? {
                    0 => ScanPhase::Nodes,
                    n => ScanPhase::Acls { left: n },
                }
            }
            ScanPhase::Acls { left } => {
                r.read_i64()?;
                let offset = r.position();
                let n = r.read_i32()?;
                if n < 0 {
                    // ZooKeeper refuses a null ACL list here ("missing acls")
                    return Err(WireError::Jute(JuteError::InvalidLength {
                        offset,
                        length: n,
                    }));
                }
                for _ in 0..n {
                    r.read_i32()?;
                    read_ustring(r, "acl scheme", max)?;
                    read_ustring(r, "acl id", max)?;
                }
                if left == 1 {
                    ScanPhase::Nodes
                } else {
                    ScanPhase::Acls { left: left - 1 }
                }
            }
            ScanPhase::Nodes => {
                let path_len = read_len(r, "node path", max)?.unwrap_or(0);
                let path = r.take(path_len)?;
                if path == b"/" {
                    self.tree_end = r.position();
                    ScanPhase::Signature
                } else {
                    if let Some(n) = read_len(r, "node data", max)? {
                        r.take(n)?;
                    }
                    r.take(8 + STAT_PERSISTED_LEN)?;
                    ScanPhase::Nodes
                }
            }
            ScanPhase::Signature => {
                let sig = read_ustring(r, "signature", max)?;
                if sig != SNAP_SIGNATURE {
                    return Err(WireError::BadSignature(sig));
                }
                ScanPhase::Done
            }
            ScanPhase::Done => ScanPhase::Done,
        })
    }

    /// After [`SnapshotScanner::scan`] returned `Some`, the decoded stream.
    pub fn take_stream(&mut self, buf: &[u8]) -> SnapshotStream {
        SnapshotStream {
            sessions: std::mem::take(&mut self.sessions),
            tree: buf[self.tree_start..self.tree_end].to_vec(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cutting a quorum connection's byte stream into items
// ---------------------------------------------------------------------------------------------

/// One item of a quorum stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    Packet(RawPacket),
    /// The snapshot the leader writes right after a SNAP packet.
    Snapshot(SnapshotStream),
}

/// What [`QuorumStreamDecoder::next_received`] takes off a receive buffer.
#[derive(Debug)]
pub enum Received {
    Packet(Packet),
    /// The snapshot the leader writes right after a SNAP packet.
    Snapshot(SnapshotStream),
}

/// Cuts the bytes received on a quorum connection into packets (and, after a SNAP from the
/// leader, the snapshot). Sans-IO: feed it the unconsumed bytes, drain what it says it used.
#[derive(Debug, Clone)]
pub struct QuorumStreamDecoder {
    from: Sender,
    max_buffer: usize,
    snapshot: Option<SnapshotScanner>,
}

impl QuorumStreamDecoder {
    /// A decoder for bytes written by `from`, with ZooKeeper's default size limit.
    pub fn new(from: Sender) -> Self {
        Self::with_max_buffer(from, DEFAULT_MAX_BUFFER)
    }

    pub fn with_max_buffer(from: Sender, max_buffer: usize) -> Self {
        QuorumStreamDecoder {
            from,
            max_buffer,
            snapshot: None,
        }
    }

    /// The next item at the start of `buf` and how many bytes it used, or `Ok(None)` if it has
    /// not fully arrived. Until an item is returned, call again with the same bytes plus more.
    pub fn next_item(&mut self, buf: &[u8]) -> Result<Option<(StreamItem, usize)>> {
        if let Some(scanner) = &mut self.snapshot {
            return match scanner.scan(buf)? {
                None => Ok(None),
                Some(len) => {
                    let stream = scanner.take_stream(buf);
                    self.snapshot = None;
                    Ok(Some((StreamItem::Snapshot(stream), len)))
                }
            };
        }
        match RawPacket::decode_prefix(buf, self.max_buffer)? {
            None => Ok(None),
            Some((p, len)) => {
                if self.from == Sender::Leader && p.packet_type == packet_type::SNAP {
                    self.snapshot = Some(SnapshotScanner::new(self.max_buffer));
                }
                Ok(Some((StreamItem::Packet(p), len)))
            }
        }
    }

    /// Takes the next packet (decoded) or snapshot off the front of a receive buffer, or
    /// `Ok(None)` until it has fully arrived. A proposal's txn stays in the received bytes
    /// (shared, not copied): a follower logs and applies it from there.
    pub fn next_received(&mut self, buf: &mut bytes::BytesMut) -> Result<Option<Received>> {
        use bytes::Buf;
        if self.snapshot.is_some() {
            let Some((item, len)) = self.next_item(buf)? else {
                return Ok(None);
            };
            buf.advance(len);
            return Ok(Some(match item {
                StreamItem::Snapshot(stream) => Received::Snapshot(stream),
                StreamItem::Packet(raw) => {
                    Received::Packet(Packet::from_raw_owned(raw, self.from)?)
                }
            }));
        }
        let mut r = Reader::new(buf);
        let Some(parts) = incomplete_as_none(RawPacket::read_parts(&mut r, self.max_buffer))?
        else {
            return Ok(None);
        };
        let len = r.position();
        let start = buf.as_ptr() as usize;
        let data = parts.data.map(|d| {
            let at = d.as_ptr() as usize - start;
            at..at + d.len()
        });
        let (packet_type, zxid, authinfo) = (parts.packet_type, parts.zxid, parts.authinfo);
        let frame = buf.split_to(len).freeze();
        if self.from == Sender::Leader && packet_type == packet_type::SNAP {
            self.snapshot = Some(SnapshotScanner::new(self.max_buffer));
        }
        let packet = match (packet_type, data) {
            (packet_type::PROPOSAL, Some(range)) => Packet::Proposal {
                zxid,
                data: ProposalData::decode_shared(frame.slice(range))?,
            },
            // a forwarded client request: its record stays in the received bytes too
            (packet_type::REQUEST, Some(range)) if range.len() >= 16 => {
                let d = &frame[range.clone()];
                Packet::Request(LearnerRequest {
                    session_id: be_i64(&d[0..8]),
                    cxid: be_i32(&d[8..12]),
                    op_type: be_i32(&d[12..16]),
                    request: frame.slice(range.start + 16..range.end),
                    authinfo,
                })
            }
            (packet_type, data) => {
                let raw = RawPacket {
                    packet_type,
                    zxid,
                    data: data.map(|range| frame[range].to_vec()),
                    authinfo,
                };
                Packet::from_raw_owned(raw, self.from)?
            }
        };
        Ok(Some(Received::Packet(packet)))
    }

    /// Whether the next item is the snapshot that follows a SNAP.
    pub fn expecting_snapshot(&self) -> bool {
        self.snapshot.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // ---- handshake ----

    #[test]
    fn initial_message_v1_golden() {
        // what server 2 (election 127.0.0.1:12742) sent when dialing server 1, captured from a
        // 3.8.0 ensemble
        let bytes =
            hex("ffffffffffff0000 0000000000000002 0000000f 3132372e302e302e313a3132373432");
        let m = InitialMessage::decode(&bytes).unwrap();
        assert_eq!(
            m,
            InitialMessage::v1(2, ElectionAddress::new("127.0.0.1", 12742))
        );
        assert_eq!(m.encode(), bytes);
    }

    #[test]
    fn initial_message_all_versions() {
        let legacy = InitialMessage {
            version: HandshakeVersion::Legacy,
            sid: 7,
            addresses: vec![],
        };
        assert_eq!(legacy.encode(), 7i64.to_be_bytes());
        assert_eq!(InitialMessage::decode(&legacy.encode()).unwrap(), legacy);

        let v2 = InitialMessage::v2(
            3,
            vec![
                ElectionAddress::new("10.0.0.1", 3888),
                ElectionAddress::new("fe80::1", 3889),
            ],
        );
        let bytes = v2.encode();
        assert_eq!(&bytes[..8], &PROTOCOL_VERSION_V2.to_be_bytes());
        assert_eq!(&bytes[20..], b"10.0.0.1:3888|[fe80::1]:3889");
        assert_eq!(InitialMessage::decode(&bytes).unwrap(), v2);
    }

    #[test]
    fn initial_message_prefix_and_rejects() {
        let m = InitialMessage::v1(5, ElectionAddress::new("h", 1)).encode();
        for cut in 0..m.len() {
            assert_eq!(InitialMessage::decode_prefix(&m[..cut]).unwrap(), None);
        }
        let mut more = m.clone();
        more.extend_from_slice(&[0, 0, 0, 44]);
        assert_eq!(
            InitialMessage::decode_prefix(&more).unwrap().unwrap().1,
            m.len()
        );

        let with = |version: i64, text: &[u8], len: i32| {
            let mut b = Vec::new();
            b.put_i64(version);
            b.put_i64(1);
            b.put_i32(len);
            b.put_slice(text);
            InitialMessage::decode(&b)
        };
        assert!(matches!(
            with(-3, b"h:1", 3),
            Err(WireError::UnknownProtocolVersion(-3))
        ));
        assert!(matches!(
            with(PROTOCOL_VERSION_V1, b"", 0),
            Err(WireError::BadLength { .. })
        ));
        assert!(matches!(
            with(PROTOCOL_VERSION_V1, b"h:1", 2049),
            Err(WireError::BadLength { .. })
        ));
        for bad in [
            &b"nocolon"[..],
            b"h:",
            b"h:1:2",
            b"h:port",
            b"h:70000",
            b"[::1]",
            b"[::1",
            b":12",
            b"::1:5",
        ] {
            assert!(
                matches!(
                    with(PROTOCOL_VERSION_V1, bad, bad.len() as i32),
                    Err(WireError::BadAddress(_))
                ),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // trailing empty pieces are dropped, as Java's split does
        let m = with(PROTOCOL_VERSION_V2, b"a:1|b:2||", 9).unwrap();
        assert_eq!(m.addresses.len(), 2);
        let m = with(PROTOCOL_VERSION_V1, b"0.0.0.0:3888", 12).unwrap();
        assert!(m.dial_back_addresses().is_empty());
        let m = with(PROTOCOL_VERSION_V1, b"[::1]:+3888", 11).unwrap();
        assert_eq!(m.addresses[0], ElectionAddress::new("::1", 3888));
    }

    #[test]
    fn connection_rule() {
        assert!(dialer_keeps_connection(3, 1));
        assert!(!dialer_keeps_connection(1, 3));
        assert_eq!(accept_decision(3, 1), AcceptDecision::CloseAndDialBack);
        assert_eq!(accept_decision(1, 3), AcceptDecision::Keep);
        assert_eq!(accept_decision(2, 2), AcceptDecision::OwnId);
    }

    // ---- notifications ----

    #[test]
    fn notification_golden_layout() {
        let config = b"server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\nversion=0".to_vec();
        let n = Notification::new(ServerState::Looking, 2, 0x1_0000_0005, 3, 1, config.clone());
        let bytes = n.encode();
        // 36 bytes of fields, the version int, the config length, the config (FastLeaderElection
        // allocates 44 + config length)
        assert_eq!(bytes.len(), 44 + config.len());
        let mut want = hex(
            "00000000 0000000000000002 0000000100000005 0000000000000003 0000000000000001
             00000002",
        );
        want.put_i32(config.len() as i32);
        want.extend_from_slice(&config);
        assert_eq!(bytes, want);
        let frame = n.encode_frame();
        assert_eq!(&frame[..4], &(bytes.len() as i32).to_be_bytes());
        let (payload, used) = decode_election_frame(&frame).unwrap().unwrap();
        assert_eq!(used, frame.len());
        assert_eq!(Notification::decode(payload).unwrap(), n);
    }

    #[test]
    fn notification_old_formats() {
        let mut b28 = Vec::new();
        b28.put_i32(1);
        b28.put_i64(3);
        b28.put_i64(0x5_0000_0007);
        b28.put_i64(9);
        let n = Notification::decode(&b28).unwrap();
        assert_eq!(
            (n.state, n.peer_epoch, n.version),
            (ServerState::Following, 5, 0)
        );

        // 36 bytes (peer epoch, no version) is no known format: the version int is missing
        let mut b36 = b28.clone();
        b36.put_i64(4);
        assert!(Notification::decode(&b36).is_err());
        // exactly 40 bytes: the pre-3.4.6 format, peer epoch then 4 bytes the receiver ignores
        let mut b40 = b36.clone();
        b40.put_i32(1);
        let n = Notification::decode(&b40).unwrap();
        assert_eq!((n.peer_epoch, n.version), (4, 0));
        assert!(n.config.is_empty());
        // a version-1 notification encodes to that 40-byte form
        let v1 = Notification {
            version: 1,
            ..n.clone()
        };
        assert_eq!(v1.encode(), b40);
        // 41+ bytes: the version is read; version 1 has no config
        let mut b41 = b40.clone();
        b41.put_u8(0);
        assert_eq!(Notification::decode(&b41).unwrap().version, 1);
        // version 2 needs the config length
        let mut b42 = b36.clone();
        b42.put_i32(2);
        b42.put_u16(0);
        assert!(Notification::decode(&b42).is_err());
        assert!(Notification::decode(&b28[..27]).is_err());
        // trailing bytes after the config are ignored
        let mut cur = Notification::new(ServerState::Leading, 1, 2, 3, 4, b"x".to_vec()).encode();
        let len = cur.len();
        cur.extend_from_slice(b"junk");
        assert_eq!(Notification::decode(&cur).unwrap().config, b"x");
        // config longer than the message, negative config length, unknown state
        let mut bad = cur[..len].to_vec();
        bad[40..44].copy_from_slice(&100i32.to_be_bytes());
        assert!(Notification::decode(&bad).is_err());
        bad[40..44].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(matches!(
            Notification::decode(&bad),
            Err(WireError::BadLength { .. })
        ));
        let mut st = cur.clone();
        st[..4].copy_from_slice(&7i32.to_be_bytes());
        assert!(matches!(
            Notification::decode(&st),
            Err(WireError::UnknownServerState(7))
        ));
    }

    #[test]
    fn election_frame_limits() {
        assert_eq!(decode_election_frame(&[0, 0]).unwrap(), None);
        assert_eq!(decode_election_frame(&[0, 0, 0, 2, 1]).unwrap(), None);
        assert!(decode_election_frame(&[0, 0, 0, 0]).is_err());
        assert!(decode_election_frame(&[0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode_election_frame(&(512 * 1024 + 1i32).to_be_bytes()).is_err());
        let mut ok = (512 * 1024i32).to_be_bytes().to_vec();
        assert_eq!(decode_election_frame(&ok).unwrap(), None);
        ok.resize(4 + 512 * 1024, 0);
        assert_eq!(decode_election_frame(&ok).unwrap().unwrap().1, ok.len());
    }

    // ---- quorum packets ----

    fn proposal_data() -> ProposalData {
        // a CreateTxn for "/a" with data "hello", open ACL, digest version 2
        let mut txn = Vec::new();
        jute::CreateTxn {
            path: "/a".into(),
            data: Some(b"hello".to_vec()),
            acl: vec![jute::Acl {
                perms: 31,
                id: Id {
                    scheme: "world".into(),
                    id: "anyone".into(),
                },
            }],
            ephemeral: false,
            parent_cversion: 1,
        }
        .write(&mut txn);
        ProposalData {
            header: TxnHeader {
                client_id: 0x0100_003d_b455_0000,
                cxid: 1,
                zxid: 0x1_0000_0002,
                time: 1_700_000_000_000,
                txn_type: op::CREATE,
            },
            txn: txn.into(),
            digest: Some(TxnDigest {
                version: 2,
                tree_digest: 0x1234,
            }),
        }
    }

    fn all_packets() -> Vec<(Packet, Sender)> {
        let hello = LearnerHello::new(1, 3, 0x1_0000_0000);
        vec![
            (
                Packet::Request(LearnerRequest {
                    session_id: 9,
                    cxid: 4,
                    op_type: op::SYNC,
                    request: vec![0, 0, 0, 2, b'/', b'a'].into(),
                    authinfo: Some(vec![Id {
                        scheme: "ip".into(),
                        id: "127.0.0.1".into(),
                    }]),
                }),
                Sender::Learner,
            ),
            (
                Packet::Request(LearnerRequest {
                    session_id: 9,
                    cxid: 0,
                    op_type: op::CREATE_SESSION,
                    request: 10000i32.to_be_bytes().to_vec().into(),
                    authinfo: None,
                }),
                Sender::Learner,
            ),
            (
                Packet::Proposal {
                    zxid: 0x1_0000_0002,
                    data: proposal_data(),
                },
                Sender::Leader,
            ),
            (Packet::Ack { zxid: 5 }, Sender::Learner),
            (Packet::Commit { zxid: 5 }, Sender::Leader),
            (Packet::Ping { zxid: 5 }, Sender::Leader),
            (
                Packet::PingReply {
                    zxid: 5,
                    touches: vec![SessionTouch {
                        session_id: 77,
                        timeout: 10000,
                    }],
                },
                Sender::Learner,
            ),
            (
                Packet::PingReply {
                    zxid: 5,
                    touches: vec![],
                },
                Sender::Learner,
            ),
            (
                Packet::Revalidate {
                    session_id: 77,
                    timeout: 30000,
                },
                Sender::Learner,
            ),
            (
                Packet::RevalidateReply {
                    session_id: 77,
                    valid: true,
                },
                Sender::Leader,
            ),
            (Packet::Sync, Sender::Leader),
            (
                Packet::Inform {
                    zxid: 0x1_0000_0002,
                    data: proposal_data(),
                },
                Sender::Leader,
            ),
            (
                Packet::CommitAndActivate {
                    zxid: 8,
                    designated_leader: 2,
                },
                Sender::Leader,
            ),
            (
                Packet::NewLeader {
                    zxid: 0x2_0000_0000,
                    config: Some(b"server.1=a:1:2:participant\nversion=200000000".to_vec()),
                },
                Sender::Leader,
            ),
            (Packet::FollowerInfo(hello.clone()), Sender::Learner),
            (Packet::UpToDate, Sender::Leader),
            (Packet::Diff { zxid: 6 }, Sender::Leader),
            (Packet::Trunc { zxid: 6 }, Sender::Leader),
            (Packet::Snap { zxid: 6 }, Sender::Leader),
            (Packet::ObserverInfo(hello), Sender::Learner),
            (
                Packet::LeaderInfo {
                    zxid: 0x2_0000_0000,
                    protocol_version: LEARNER_PROTOCOL_VERSION,
                },
                Sender::Leader,
            ),
            (
                Packet::AckEpoch {
                    last_zxid: 0x1_0000_0013,
                    current_epoch: -1,
                },
                Sender::Learner,
            ),
            (
                Packet::InformAndActivate {
                    zxid: 0x1_0000_0002,
                    designated_leader: 2,
                    data: proposal_data(),
                },
                Sender::Leader,
            ),
        ]
    }

    #[test]
    fn every_packet_round_trips() {
        let mut seen = std::collections::BTreeSet::new();
        for (p, from) in all_packets() {
            seen.insert(p.packet_type());
            let bytes = p.encode();
            assert_eq!(bytes, p.to_raw().encode(), "direct encoding of {p:?}");
            assert_eq!(Packet::decode(&bytes, from).unwrap(), p, "{p:?}");
            let raw = RawPacket::decode(&bytes).unwrap();
            assert_eq!(raw.encode(), bytes);
            assert!(packet_type::name(raw.packet_type).is_some());
            // through the jute record and back
            let q: QuorumPacket = raw.clone().into();
            assert_eq!(QuorumPacket::decode(&q.encode()).unwrap(), q);
            let back = RawPacket::from(q);
            if raw.authinfo.is_some() || p.packet_type() != packet_type::REQUEST {
                assert_eq!(back, raw);
            }
            // every strict prefix is incomplete, never an error
            for cut in 0..bytes.len() {
                assert_eq!(
                    RawPacket::decode_prefix(&bytes[..cut], DEFAULT_MAX_BUFFER).unwrap(),
                    None
                );
            }
        }
        assert_eq!(seen, (1..=19).collect());
    }

    #[test]
    fn followerinfo_golden() {
        // captured: server 3 (accepted epoch 1, config version 0x100000012) to its leader
        let bytes = hex("0000000b 0000000100000000 00000014
             0000000000000003 00010000 0000000100000012 ffffffff");
        let p = Packet::decode(&bytes, Sender::Learner).unwrap();
        assert_eq!(
            p,
            Packet::FollowerInfo(LearnerHello::new(1, 3, 0x1_0000_0012))
        );
        assert_eq!(p.encode(), bytes);
    }

    #[test]
    fn small_packets_golden() {
        // LEADERINFO, DIFF, UPTODATE, ACKEPOCH(-1), ACK, PING and its reply, REVALIDATE both
        // ways, COMMITANDACTIVATE, SYNC: all captured from 3.8.0
        let cases: &[(&str, Sender, Packet)] = &[
            (
                "00000011 0000000100000000 00000004 00010000 ffffffff",
                Sender::Leader,
                Packet::LeaderInfo {
                    zxid: 0x1_0000_0000,
                    protocol_version: 0x10000,
                },
            ),
            (
                "0000000d 0000000100000015 ffffffff ffffffff",
                Sender::Leader,
                Packet::Diff {
                    zxid: 0x1_0000_0015,
                },
            ),
            (
                "0000000c ffffffffffffffff ffffffff ffffffff",
                Sender::Leader,
                Packet::UpToDate,
            ),
            (
                "00000012 0000000100000013 00000004 ffffffff ffffffff",
                Sender::Learner,
                Packet::AckEpoch {
                    last_zxid: 0x1_0000_0013,
                    current_epoch: -1,
                },
            ),
            (
                "00000003 0000000100000000 ffffffff ffffffff",
                Sender::Learner,
                Packet::Ack {
                    zxid: 0x1_0000_0000,
                },
            ),
            (
                "00000005 0000000100000007 ffffffff ffffffff",
                Sender::Leader,
                Packet::Ping {
                    zxid: 0x1_0000_0007,
                },
            ),
            (
                "00000005 0000000100000007 0000000c 0100003db4550000 00002710 ffffffff",
                Sender::Learner,
                Packet::PingReply {
                    zxid: 0x1_0000_0007,
                    touches: vec![SessionTouch {
                        session_id: 0x0100_003d_b455_0000,
                        timeout: 10000,
                    }],
                },
            ),
            (
                "00000005 0000000100000007 00000000 ffffffff",
                Sender::Learner,
                Packet::PingReply {
                    zxid: 0x1_0000_0007,
                    touches: vec![],
                },
            ),
            (
                "00000006 ffffffffffffffff 0000000c 0100004004290000 00002710 ffffffff",
                Sender::Learner,
                Packet::Revalidate {
                    session_id: 0x0100_0040_0429_0000,
                    timeout: 10000,
                },
            ),
            (
                "00000006 ffffffffffffffff 00000009 0100004004290000 01 ffffffff",
                Sender::Leader,
                Packet::RevalidateReply {
                    session_id: 0x0100_0040_0429_0000,
                    valid: true,
                },
            ),
            (
                "00000009 0000000100000012 00000008 0000000000000002 ffffffff",
                Sender::Leader,
                Packet::CommitAndActivate {
                    zxid: 0x1_0000_0012,
                    designated_leader: 2,
                },
            ),
            (
                "00000007 0000000000000000 ffffffff ffffffff",
                Sender::Leader,
                Packet::Sync,
            ),
        ];
        for (h, from, want) in cases {
            let bytes = hex(h);
            assert_eq!(&Packet::decode(&bytes, *from).unwrap(), want);
            assert_eq!(want.encode(), bytes, "{want:?}");
        }
    }

    #[test]
    fn request_golden() {
        // captured: a follower forwarding create("/a", "hello") of session 0x100003db4550000
        let bytes = hex(
            "00000001 ffffffffffffffff 0000003e
             0100003db4550000 00000001 00000001
             000000022f61 0000000568656c6c6f 00000001 0000001f 00000005776f726c64 00000006616e796f6e65 00000000
             00000001 000000026970 000000093132372e302e302e31",
        );
        let p = Packet::decode(&bytes, Sender::Learner).unwrap();
        let Packet::Request(q) = &p else {
            panic!("{p:?}")
        };
        assert_eq!(
            (q.session_id, q.cxid, q.op_type),
            (0x0100_003d_b455_0000, 1, op::CREATE)
        );
        let create = jute::CreateRequest::decode(&q.request).unwrap();
        assert_eq!(create.path, "/a");
        assert_eq!(
            q.authinfo.as_deref(),
            Some(
                &[Id {
                    scheme: "ip".into(),
                    id: "127.0.0.1".into()
                }][..]
            )
        );
        assert_eq!(p.encode(), bytes);
    }

    #[test]
    fn proposal_golden_create_session_and_error() {
        // captured PROPOSALs: a createSession txn (timeout 10000) with digest, and an error txn
        // (NodeExists, -110), which carries no digest
        let cs = hex(
            "0100003db4550000 00000000 0000000100000001 000001a2101fbe05 fffffff6
             00002710 00000002 0000000051c6d660",
        );
        let d = ProposalData::decode(&cs).unwrap();
        assert_eq!(d.header.txn_type, op::CREATE_SESSION);
        assert_eq!(d.txn[..], 10000i32.to_be_bytes());
        assert_eq!(
            d.digest,
            Some(TxnDigest {
                version: 2,
                tree_digest: 0x51c6_d660
            })
        );
        assert_eq!(d.encode(), cs);
        let err =
            hex("0100003db4550003 00000001 0000000100000015 000001a2101ffd1c ffffffff ffffff92");
        let d = ProposalData::decode(&err).unwrap();
        assert_eq!((d.txn.len(), d.digest.is_none()), (4, true));
        assert_eq!(d.encode(), err);
        // garbage after the txn that is not a digest
        let mut bad = err.clone();
        bad.extend_from_slice(&[1, 2, 3]);
        assert!(ProposalData::decode(&bad).is_err());
        // a check txn cannot be a top-level txn
        let mut chk = err.clone();
        chk[28..32].copy_from_slice(&op::CHECK.to_be_bytes());
        assert!(matches!(
            ProposalData::decode(&chk),
            Err(WireError::UnsupportedTxn(13))
        ));
    }

    #[test]
    fn create_v0_txn_is_understood() {
        let mut txn = Vec::new();
        jute::write_str(&mut txn, "/old");
        jute::write_buffer(&mut txn, b"d");
        txn.put_i32(0);
        txn.put_u8(1);
        let data = ProposalData {
            header: TxnHeader {
                txn_type: op::CREATE,
                ..Default::default()
            },
            txn: txn.into(),
            digest: None,
        };
        assert_eq!(ProposalData::decode(&data.encode()).unwrap(), data);
    }

    #[test]
    fn malformed_payloads_are_errors() {
        let raw = |t: i32, data: Option<&[u8]>| RawPacket::new(t, 1, data.map(<[u8]>::to_vec));
        use packet_type::*;
        let bad = [
            (raw(REQUEST, None), Sender::Learner),
            (raw(REQUEST, Some(&[0; 15])), Sender::Learner),
            (raw(PROPOSAL, None), Sender::Leader),
            (raw(PROPOSAL, Some(&[0; 31])), Sender::Leader),
            (raw(PING, None), Sender::Learner),
            (raw(PING, Some(&[0; 13])), Sender::Learner),
            (raw(REVALIDATE, Some(&[0; 9])), Sender::Learner),
            (raw(REVALIDATE, Some(&[0; 12])), Sender::Leader),
            (raw(COMMITANDACTIVATE, Some(&[0; 4])), Sender::Leader),
            (raw(FOLLOWERINFO, Some(&[0; 12])), Sender::Learner),
            (raw(OBSERVERINFO, None), Sender::Learner),
            (raw(LEADERINFO, Some(&[0; 8])), Sender::Leader),
            (raw(ACKEPOCH, None), Sender::Learner),
            (raw(INFORMANDACTIVATE, Some(&[0; 7])), Sender::Leader),
            (raw(0, None), Sender::Leader),
            (raw(20, None), Sender::Leader),
        ];
        for (p, from) in bad {
            assert!(Packet::from_raw(&p, from).is_err(), "{p:?}");
        }
        // ignored fields really are ignored
        let p = RawPacket {
            packet_type: ACK,
            zxid: 3,
            data: Some(vec![1, 2]),
            authinfo: Some(vec![]),
        };
        assert_eq!(
            Packet::from_raw(&p, Sender::Learner).unwrap(),
            Packet::Ack { zxid: 3 }
        );
    }

    #[test]
    fn raw_packet_limits() {
        let mut b = Vec::new();
        b.put_i32(2);
        b.put_i64(0);
        b.put_i32(DEFAULT_MAX_BUFFER as i32 + 1);
        // rejected from the length alone, before the data arrives
        assert!(matches!(
            RawPacket::decode_prefix(&b, DEFAULT_MAX_BUFFER),
            Err(WireError::BadLength { .. })
        ));
        let mut b = Vec::new();
        b.put_i32(2);
        b.put_i64(0);
        b.put_i32(-2);
        assert!(RawPacket::decode_prefix(&b, DEFAULT_MAX_BUFFER).is_err());
        let mut b = RawPacket::new(3, 0, None).encode();
        let n = b.len();
        b[n - 4..].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(RawPacket::decode(&b).is_err());
        // a huge authinfo count with no bytes behind it is just incomplete
        b[n - 4..].copy_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(
            RawPacket::decode_prefix(&b, DEFAULT_MAX_BUFFER).unwrap(),
            None
        );
    }

    // ---- snapshot ----

    fn tree_bytes() -> Vec<u8> {
        // ACL cache with one entry (id 1 -> world:anyone ALL), root "" and "/zookeeper", end "/"
        let mut t = Vec::new();
        t.put_i32(1);
        t.put_i64(1);
        t.put_i32(1);
        t.put_i32(31);
        jute::write_str(&mut t, "world");
        jute::write_str(&mut t, "anyone");
        for (path, data) in [("", None), ("/zookeeper", Some(&b""[..]))] {
            jute::write_str(&mut t, path);
            jute::write_opt_buffer(&mut t, data);
            t.put_i64(1);
            t.extend_from_slice(&[0u8; STAT_PERSISTED_LEN]);
        }
        jute::write_str(&mut t, "/");
        t
    }

    #[test]
    fn snapshot_stream_round_trip_and_incremental_scan() {
        let s = SnapshotStream {
            sessions: vec![SessionTouch {
                session_id: 0x0100_0040_0429_0000,
                timeout: 10000,
            }],
            tree: tree_bytes(),
        };
        let bytes = s.encode();
        assert!(bytes.ends_with(b"\0\0\0\x0aBenWasHere"));
        assert_eq!(SnapshotStream::decode(&bytes).unwrap(), s);
        // byte by byte through one scanner
        let mut sc = SnapshotScanner::new(DEFAULT_MAX_BUFFER);
        for cut in 0..bytes.len() {
            assert_eq!(sc.scan(&bytes[..cut]).unwrap(), None);
        }
        assert_eq!(sc.scan(&bytes).unwrap(), Some(bytes.len()));
        assert_eq!(sc.take_stream(&bytes), s);
        // a wrong signature
        let mut bad = bytes.clone();
        let n = bad.len();
        bad[n - 1] = b'X';
        assert!(matches!(
            SnapshotStream::decode(&bad),
            Err(WireError::BadSignature(_))
        ));
    }

    #[test]
    fn stream_decoder_handles_snap() {
        let snap = SnapshotStream {
            sessions: vec![],
            tree: tree_bytes(),
        };
        let mut bytes = Packet::LeaderInfo {
            zxid: 1 << 32,
            protocol_version: LEARNER_PROTOCOL_VERSION,
        }
        .encode();
        Packet::Snap { zxid: 0 }.encode_into(&mut bytes);
        snap.encode_into(&mut bytes);
        Packet::NewLeader {
            zxid: 1 << 32,
            config: Some(b"version=100000000".to_vec()),
        }
        .encode_into(&mut bytes);
        Packet::UpToDate.encode_into(&mut bytes);

        // feed the stream in 7-byte slices
        let mut dec = QuorumStreamDecoder::new(Sender::Leader);
        let (mut buf, mut items) = (Vec::new(), Vec::new());
        for chunk in bytes.chunks(7) {
            buf.extend_from_slice(chunk);
            while let Some((item, used)) = dec.next_item(&buf).unwrap() {
                buf.drain(..used);
                items.push(item);
            }
        }
        assert!(buf.is_empty());
        assert_eq!(items.len(), 5);
        assert_eq!(items[2], StreamItem::Snapshot(snap));
        let StreamItem::Packet(p) = &items[4] else {
            panic!()
        };
        assert_eq!(
            Packet::from_raw(p, Sender::Leader).unwrap(),
            Packet::UpToDate
        );
    }

    // ---- property tests ----

    fn arb_id() -> impl Strategy<Value = Id> {
        ("[a-z]{0,8}", "[ -~]{0,16}").prop_map(|(scheme, id)| Id { scheme, id })
    }

    fn arb_raw() -> impl Strategy<Value = RawPacket> {
        (
            any::<i32>(),
            any::<i64>(),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
            proptest::option::of(proptest::collection::vec(arb_id(), 0..4)),
        )
            .prop_map(|(packet_type, zxid, data, authinfo)| RawPacket {
                packet_type,
                zxid,
                data,
                authinfo,
            })
    }

    fn arb_state() -> impl Strategy<Value = ServerState> {
        prop_oneof![
            Just(ServerState::Looking),
            Just(ServerState::Following),
            Just(ServerState::Leading),
            Just(ServerState::Observing),
        ]
    }

    fn arb_address() -> impl Strategy<Value = ElectionAddress> {
        prop_oneof![
            ("[a-z][a-z0-9.-]{0,20}", any::<u16>()).prop_map(|(h, p)| ElectionAddress::new(h, p)),
            (any::<[u16; 8]>(), any::<u16>()).prop_map(|(seg, p)| {
                ElectionAddress::new(std::net::Ipv6Addr::from(seg).to_string(), p)
            }),
        ]
    }

    proptest! {
        #[test]
        fn raw_packets_round_trip(p in arb_raw()) {
            let bytes = p.encode();
            prop_assert_eq!(RawPacket::decode(&bytes).unwrap(), p.clone());
            let (q, used) = RawPacket::decode_prefix(&bytes, DEFAULT_MAX_BUFFER).unwrap().unwrap();
            prop_assert_eq!((q, used), (p, bytes.len()));
        }

        #[test]
        fn notifications_round_trip(
            state in arb_state(), leader in any::<i64>(), zxid in any::<i64>(),
            ee in any::<i64>(), pe in any::<i64>(),
            config in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let n = Notification::new(state, leader, zxid, ee, pe, config);
            let frame = n.encode_frame();
            let (payload, used) = decode_election_frame(&frame).unwrap().unwrap();
            prop_assert_eq!(used, frame.len());
            prop_assert_eq!(Notification::decode(payload).unwrap(), n);
        }

        #[test]
        fn initial_messages_round_trip(
            sid in any::<i64>(), v2 in any::<bool>(),
            addrs in proptest::collection::vec(arb_address(), 1..4),
        ) {
            let m = if v2 { InitialMessage::v2(sid, addrs) }
                    else { InitialMessage::v1(sid, addrs[0].clone()) };
            prop_assert_eq!(InitialMessage::decode(&m.encode()).unwrap(), m);
        }

        #[test]
        fn ping_replies_round_trip(
            zxid in any::<i64>(),
            touches in proptest::collection::vec((any::<i64>(), any::<i32>()), 0..20),
        ) {
            let p = Packet::PingReply {
                zxid,
                touches: touches.into_iter()
                    .map(|(session_id, timeout)| SessionTouch { session_id, timeout }).collect(),
            };
            prop_assert_eq!(Packet::decode(&p.encode(), Sender::Learner).unwrap(), p);
        }

        #[test]
        fn requests_round_trip(
            session_id in any::<i64>(), cxid in any::<i32>(), op_type in any::<i32>(),
            request in proptest::collection::vec(any::<u8>(), 0..64),
            authinfo in proptest::option::of(proptest::collection::vec(arb_id(), 0..3)),
        ) {
            let p = Packet::Request(LearnerRequest { session_id, cxid, op_type, request: request.into(), authinfo });
            prop_assert_eq!(p.encode(), p.to_raw().encode());
            prop_assert_eq!(Packet::decode(&p.encode(), Sender::Learner).unwrap(), p);
        }

        #[test]
        fn proposals_round_trip(
            path in "/[a-z]{1,10}", data in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
            version in any::<i32>(), digest in proptest::option::of((any::<i32>(), any::<i64>())),
            zxid in any::<i64>(), dl in any::<i64>(),
        ) {
            let mut txn = Vec::new();
            jute::SetDataTxn { path, data, version }.write(&mut txn);
            let data = ProposalData {
                header: TxnHeader { client_id: 1, cxid: 2, zxid, time: 3, txn_type: op::SET_DATA },
                txn: txn.into(),
                digest: digest.map(|(version, tree_digest)| TxnDigest { version, tree_digest }),
            };
            for p in [
                Packet::Proposal { zxid, data: data.clone() },
                Packet::Inform { zxid, data: data.clone() },
                Packet::InformAndActivate { zxid, designated_leader: dl, data: data.clone() },
            ] {
                prop_assert_eq!(p.encode(), p.to_raw().encode());
                prop_assert_eq!(Packet::decode(&p.encode(), Sender::Leader).unwrap(), p);
            }
        }

        #[test]
        fn snapshots_round_trip(
            sessions in proptest::collection::vec((any::<i64>(), any::<i32>()), 0..10),
        ) {
            let s = SnapshotStream {
                sessions: sessions.into_iter()
                    .map(|(session_id, timeout)| SessionTouch { session_id, timeout }).collect(),
                tree: tree_bytes(),
            };
            prop_assert_eq!(SnapshotStream::decode(&s.encode()).unwrap(), s);
        }

        // garbage never panics, whichever decoder it reaches
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = InitialMessage::decode(&bytes);
            let _ = InitialMessage::decode_prefix(&bytes);
            let _ = decode_election_frame(&bytes);
            let _ = Notification::decode(&bytes);
            let _ = RawPacket::decode_prefix(&bytes, DEFAULT_MAX_BUFFER);
            let _ = ProposalData::decode(&bytes);
            let _ = SnapshotStream::decode(&bytes);
            for from in [Sender::Leader, Sender::Learner] {
                let _ = Packet::decode(&bytes, from);
                let mut d = QuorumStreamDecoder::new(from);
                let mut rest = &bytes[..];
                while let Ok(Some((_, used))) = d.next_item(rest) {
                    rest = &rest[used..];
                }
                let mut d = QuorumStreamDecoder::new(from);
                let mut buf = bytes::BytesMut::from(&bytes[..]);
                while let Ok(Some(_)) = d.next_received(&mut buf) {}
            }
        }

        // a valid packet type with garbage payload never panics either
        #[test]
        fn garbage_payloads_never_panic(
            t in 1..=19i32, data in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..80)),
        ) {
            let p = RawPacket::new(t, 0, data);
            for from in [Sender::Leader, Sender::Learner] {
                // taking a packet apart decodes exactly as reading it does
                let owned = Packet::from_raw_owned(p.clone(), from);
                match Packet::from_raw(&p, from) {
                    Ok(packet) => prop_assert_eq!(owned.unwrap(), packet),
                    Err(_) => prop_assert!(owned.is_err()),
                }
            }
        }

        #[test]
        fn requests_and_proposals_taken_apart_are_the_packets_read(
            session_id in any::<i64>(), cxid in any::<i32>(), body in proptest::collection::vec(any::<u8>(), 0..64),
            auth in proptest::option::of(proptest::collection::vec(("[a-z]{0,6}", "[a-z0-9:]{0,12}"), 0..3)),
            data in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
        ) {
            let request = Packet::Request(LearnerRequest {
                session_id,
                cxid,
                op_type: jute::op::SET_DATA,
                request: body.into(),
                authinfo: auth.map(|ids| ids.into_iter().map(|(scheme, id)| Id { scheme, id }).collect()),
            });
            let mut txn = Vec::new();
            jute::SetDataTxn { path: "/p".into(), data, version: cxid }.write(&mut txn);
            let proposal = Packet::Proposal {
                zxid: session_id,
                data: ProposalData {
                    header: TxnHeader { zxid: session_id, txn_type: jute::op::SET_DATA, ..Default::default() },
                    txn: txn.into(),
                    digest: None,
                },
            };
            for (packet, from) in [(request, Sender::Learner), (proposal, Sender::Leader)] {
                let raw = RawPacket::decode(&packet.encode()).unwrap();
                prop_assert_eq!(&Packet::from_raw(&raw, from).unwrap(), &packet);
                prop_assert_eq!(Packet::from_raw_owned(raw, from).unwrap(), packet);
            }
        }
    }
}
