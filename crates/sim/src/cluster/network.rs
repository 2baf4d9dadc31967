//! Quorum connections between simulated servers, as TCP would carry them: each direction is
//! a byte stream (packets encoded as the server encodes them, cut by the server's own
//! decoder), in order; a partition stalls the bytes, which arrive if it heals before either
//! side gives up; a side that closes still delivers what it sent, then the close.

use bytes::BytesMut;
use zab::wire::{Packet, QuorumStreamDecoder, Received, Sender};

#[derive(Debug)]
pub struct Direction {
    pub bytes: BytesMut,
    pub decoder: QuorumStreamDecoder,
    /// Sender closed: after the bytes, the receiver learns the connection is gone.
    pub closed: bool,
    /// The receiver closed: nothing more is taken.
    pub receiver_gone: bool,
    /// A delivery is scheduled.
    pub scheduled: bool,
    /// The receiver was told the connection is down.
    pub down_told: bool,
}

impl Direction {
    fn new(from: Sender) -> Direction {
        Direction {
            bytes: BytesMut::new(),
            decoder: QuorumStreamDecoder::new(from),
            closed: false,
            receiver_gone: false,
            scheduled: false,
            down_told: false,
        }
    }
}

/// One quorum connection: a learner dialed a leader.
#[derive(Debug)]
pub struct Link {
    pub learner: u64,
    pub leader: u64,
    /// The incarnation of each side (a restart ends every connection it had).
    pub learner_life: u32,
    pub leader_life: u32,
    /// [0]: learner to leader, [1]: leader to learner.
    pub dirs: [Direction; 2],
    /// The leader read the learner's hello (its first packet) and knows who it is.
    pub leader_knows: bool,
    /// A SNAP held until the snapshot behind it arrives (the server delivers it after).
    pub held_snap: Option<Packet>,
}

impl Link {
    pub fn new(learner: u64, leader: u64, learner_life: u32, leader_life: u32) -> Link {
        Link {
            learner,
            leader,
            learner_life,
            leader_life,
            dirs: [
                Direction::new(Sender::Learner),
                Direction::new(Sender::Leader),
            ],
            leader_knows: false,
            held_snap: None,
        }
    }

    /// The direction `from` writes into, and the server at its other end.
    pub fn direction_from(&self, from: u64) -> (usize, u64) {
        if from == self.learner {
            (0, self.leader)
        } else {
            (1, self.learner)
        }
    }

    pub fn receiver(&self, dir: usize) -> u64 {
        if dir == 0 {
            self.leader
        } else {
            self.learner
        }
    }

    pub fn sender(&self, dir: usize) -> u64 {
        if dir == 0 {
            self.learner
        } else {
            self.leader
        }
    }
}

/// What the receiving side's reader makes of the bytes that arrived.
pub fn take_received(d: &mut Direction) -> Result<Vec<Received>, String> {
    let mut out = Vec::new();
    loop {
        match d.decoder.next_received(&mut d.bytes) {
            Ok(Some(r)) => out.push(r),
            Ok(None) => return Ok(out),
            Err(e) => return Err(format!("malformed quorum stream: {e}")),
        }
    }
}
