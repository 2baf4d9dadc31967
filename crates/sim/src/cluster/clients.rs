//! Simulated ZooKeeper clients: each keeps one session, connects to a server, pipelines a few
//! requests (register writes and reads, synced reads, ephemeral locks, and some requests no
//! client should send), reads replies as bytes on the wire, and on a lost or silent
//! connection moves to another server with the same session, as ZooKeeper's clients do.

use bytes::{BufMut, Bytes, BytesMut};
use jute::op;
use std::collections::VecDeque;

/// What a request was, to check its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    /// setData(/k<key>) to a value no other write uses.
    Write {
        key: usize,
        value: u64,
    },
    /// getData(/k<key>); `synced`: a sync was sent right before it; `watch`: it sets a data
    /// watch.
    Read {
        key: usize,
        synced: bool,
        watch: bool,
    },
    Sync,
    /// create -e /lock<n>
    Lock(usize),
    /// delete /lock<n>
    Unlock(usize),
    /// Requests no client library sends: a deleteContainer, a malformed write, an unknown
    /// opcode. Any answer will do; a panic or no answer is a failure.
    Hostile(i32),
    Close,
}

#[derive(Debug, Clone)]
pub struct Pending {
    pub xid: i32,
    pub op: OpKind,
    /// Global simulated time it was sent.
    pub invoked: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting to (re)connect.
    Idle,
    /// Connect request sent, no answer yet.
    Connecting,
    Connected,
    /// Closed its session for good.
    Done,
}

#[derive(Debug)]
pub struct Client {
    pub id: usize,
    pub phase: Phase,
    /// The connection in use and its server.
    pub conn: Option<(u64, u64)>,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub timeout_ms: i32,
    pub next_xid: i32,
    pub last_zxid_seen: i64,
    pub pending: VecDeque<Pending>,
    /// When the connection last answered anything (global ms).
    pub last_heard: i64,
    /// The lock the client believes it holds (its create was answered OK).
    pub holds: Option<usize>,
    /// Replies received since the faults stopped.
    pub answered_after_heal: u64,
    /// Bytes of the current connection received and not yet reported written.
    pub unreported: usize,
    /// Gone (a client process paused or cut off) until then.
    pub away_until: i64,
    /// Its watches as it saw them.
    pub watch_log: Vec<WatchEvent>,
}

impl Client {
    pub fn new(id: usize, timeout_ms: i32) -> Client {
        Client {
            id,
            phase: Phase::Idle,
            conn: None,
            session_id: 0,
            passwd: vec![0; 16],
            timeout_ms,
            next_xid: 1,
            last_zxid_seen: 0,
            pending: VecDeque::new(),
            last_heard: 0,
            holds: None,
            answered_after_heal: 0,
            unreported: 0,
            away_until: 0,
            watch_log: Vec::new(),
        }
    }

    pub fn take_xid(&mut self) -> i32 {
        let xid = self.next_xid;
        self.next_xid += 1;
        xid
    }
}

pub fn register_path(key: usize) -> String {
    format!("/k{key}")
}

pub fn lock_path(lock: usize) -> String {
    format!("/lock{lock}")
}

/// The request body (after xid and opcode) of an operation, and its opcode.
pub fn encode(op_kind: &OpKind, garbage: u64) -> (i32, Bytes) {
    let mut b = BytesMut::new();
    let opcode = match op_kind {
        OpKind::Write { key, value } => {
            jute::write_str(&mut b, &register_path(*key));
            jute::write_opt_buffer(&mut b, Some(&value.to_be_bytes()));
            b.put_i32(-1);
            op::SET_DATA
        }
        OpKind::Read { key, watch, .. } => {
            jute::write_str(&mut b, &register_path(*key));
            b.put_u8(u8::from(*watch));
            op::GET_DATA
        }
        OpKind::Sync => {
            jute::write_str(&mut b, "/");
            op::SYNC
        }
        OpKind::Lock(lock) => {
            jute::write_str(&mut b, &lock_path(*lock));
            jute::write_opt_buffer(&mut b, Some(b"holder"));
            // one ACL: world:anyone, all perms
            b.put_i32(1);
            b.put_i32(jute::perms::ALL);
            jute::write_str(&mut b, "world");
            jute::write_str(&mut b, "anyone");
            b.put_i32(1); // EPHEMERAL
            op::CREATE
        }
        OpKind::Unlock(lock) => {
            jute::write_str(&mut b, &lock_path(*lock));
            b.put_i32(-1);
            op::DELETE
        }
        OpKind::Hostile(opcode) => {
            match *opcode {
                op::DELETE_CONTAINER => jute::write_str(&mut b, &register_path(0)),
                // garbage bytes
                _ => {
                    let mut g = garbage;
                    for _ in 0..(garbage % 24) {
                        b.put_u8(g as u8);
                        g = g.rotate_left(7) ^ 0x5bd1_e995;
                    }
                }
            }
            *opcode
        }
        OpKind::Close => op::CLOSE_SESSION,
    };
    (opcode, b.freeze())
}

/// What a client saw of its watches, in the order it saw it (checked at the end against the
/// acknowledged writes: [`super::checks`]).
#[derive(Debug, Clone, Copy)]
pub enum WatchEvent {
    /// A getData with a watch on register `key` answered at `zxid` on connection `conn`.
    Set { conn: u64, key: usize, zxid: i64 },
    /// A NodeDataChanged notification for register `key`.
    Fired { conn: u64, key: usize },
    /// Any reply, with its zxid.
    Reply { conn: u64, zxid: i64 },
}

/// The register a watch notification names: (event type, key).
pub fn parse_notification(body: &[u8]) -> Result<(i32, Option<usize>), String> {
    let mut r = jute::Reader::new(body);
    let event_type = r.read_i32().map_err(|e| e.to_string())?;
    let _state = r.read_i32().map_err(|e| e.to_string())?;
    let path = r
        .read_str_ref()
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    Ok((
        event_type,
        path.strip_prefix("/k").and_then(|k| k.parse().ok()),
    ))
}

/// A reply frame: its header and body.
pub struct Reply<'a> {
    pub xid: i32,
    pub zxid: i64,
    pub err: i32,
    pub body: &'a [u8],
}

pub fn parse_reply(frame: &[u8]) -> Result<Reply<'_>, String> {
    if frame.len() < 4 + 16 {
        return Err(format!("a reply frame of {} bytes", frame.len()));
    }
    let len = i32::from_be_bytes(frame[0..4].try_into().unwrap_or_default()) as usize;
    if len != frame.len() - 4 {
        return Err(format!("frame length {len} for {} bytes", frame.len() - 4));
    }
    let xid = i32::from_be_bytes(frame[4..8].try_into().unwrap_or_default());
    let zxid = i64::from_be_bytes(frame[8..16].try_into().unwrap_or_default());
    let err = i32::from_be_bytes(frame[16..20].try_into().unwrap_or_default());
    Ok(Reply {
        xid,
        zxid,
        err,
        body: &frame[20..],
    })
}

/// The connect response: (timeout, session id, password).
pub fn parse_connect_response(frame: &[u8]) -> Result<(i32, i64, Vec<u8>), String> {
    let mut r = jute::Reader::new(&frame[4.min(frame.len())..]);
    let parse = |r: &mut jute::Reader<'_>| -> Result<(i32, i64, Vec<u8>), jute::JuteError> {
        let _protocol = r.read_i32()?;
        let timeout = r.read_i32()?;
        let session = r.read_i64()?;
        let passwd = r.read_buffer_ref()?.unwrap_or_default().to_vec();
        Ok((timeout, session, passwd))
    };
    parse(&mut r).map_err(|e| format!("connect response does not parse: {e}"))
}

/// getData's reply body: the value (8 bytes) and the Stat's mzxid.
pub fn parse_get_data(body: &[u8]) -> Result<(u64, i64), String> {
    let mut r = jute::Reader::new(body);
    let data = r
        .read_buffer_ref()
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    let value = u64::from_be_bytes(
        data.get(..8)
            .and_then(|d| d.try_into().ok())
            .ok_or_else(|| format!("register value of {} bytes", data.len()))?,
    );
    let _czxid = r.read_i64().map_err(|e| e.to_string())?;
    let mzxid = r.read_i64().map_err(|e| e.to_string())?;
    Ok((value, mzxid))
}
