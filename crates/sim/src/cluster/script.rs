//! Input from outside for the stateful fuzzer: bytes that decide, at each fault, extra
//! events no well-behaved peer or client produces — a connection with an arbitrary connect
//! request and arbitrary requests (any opcode, any body) to any server in any role, bytes on
//! a quorum connection from a server that is not a member, election notifications from
//! strangers. Reads past the end give zeros: every input is a valid script.

/// A cursor over the fuzzer's bytes.
#[derive(Debug, Clone)]
pub struct Script {
    bytes: Vec<u8>,
    at: usize,
}

/// One injection.
#[derive(Debug, Clone)]
pub enum Injection {
    /// A client connection to server `to` (index among the servers): a connect request,
    /// then requests as (opcode, body).
    Client {
        to: u8,
        session_id: i64,
        timeout: i32,
        last_zxid_seen: i64,
        passwd: Vec<u8>,
        requests: Vec<(i32, Vec<u8>)>,
    },
    /// A stranger (`sid` not a member) dials server `to`'s quorum port and sends these bytes.
    QuorumBytes { to: u8, sid: u64, bytes: Vec<u8> },
    /// An election notification from a stranger.
    Notification {
        to: u8,
        sid: u64,
        leader: u64,
        zxid: i64,
        election_epoch: i64,
        peer_epoch: i64,
        looking: bool,
    },
}

impl Script {
    pub fn new(bytes: Vec<u8>) -> Script {
        Script { bytes, at: 0 }
    }

    pub fn is_done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn u8(&mut self) -> u8 {
        let b = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn i32(&mut self) -> i32 {
        i32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    fn i64(&mut self) -> i64 {
        ((self.i32() as i64) << 32) | (self.i32() as u32 as i64)
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = (self.u8() as usize).min(max);
        (0..n).map(|_| self.u8()).collect()
    }

    /// The next injection, or None once the bytes are used up.
    pub fn next(&mut self) -> Option<Injection> {
        if self.is_done() {
            return None;
        }
        let kind = self.u8() % 3;
        let to = self.u8();
        Some(match kind {
            0 => {
                let session_id = match self.u8() % 4 {
                    0 => self.i64(),
                    _ => 0,
                };
                let timeout = self.i32();
                let last_zxid_seen = match self.u8() % 4 {
                    0 => self.i64(),
                    _ => 0,
                };
                let passwd = self.bytes(32);
                let count = self.u8() % 6;
                let requests = (0..count)
                    .map(|_| {
                        let opcode = match self.u8() {
                            // mostly real opcodes, with bodies that rarely decode
                            b @ 0..=200 => (b % 24) as i32,
                            b => -(b as i32) + 190,
                        };
                        (opcode, self.bytes(64))
                    })
                    .collect();
                Injection::Client {
                    to,
                    session_id,
                    timeout,
                    last_zxid_seen,
                    passwd,
                    requests,
                }
            }
            1 => Injection::QuorumBytes {
                to,
                sid: 100 + self.u8() as u64,
                bytes: self.bytes(255),
            },
            _ => Injection::Notification {
                to,
                sid: 100 + self.u8() as u64,
                leader: self.u8() as u64,
                zxid: self.i64(),
                election_epoch: self.u8() as i64,
                peer_epoch: self.u8() as i64,
                looking: self.u8().is_multiple_of(2),
            },
        })
    }
}
