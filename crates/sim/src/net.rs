//! The simulated network's state: quorum connections (TCP-like) and partitions.
//!
//! A quorum connection runs from a learner (side 0, which opened it) to the server it
//! believes leads (side 1). Each direction is a FIFO queue: packets arrive in order, at most
//! once, and a graceful close (FIN) arrives after the data sent before it. A *broken*
//! connection (crash, partition timeout, random break) loses what is in flight, and each
//! side hears about it on its own schedule. A partition stalls traffic across it; the
//! connection breaks if the partition outlasts its timeout, else the data flows on heal.

use crate::server::Snapshot;
use std::collections::VecDeque;
use std::sync::Arc;
use zab::wire::Packet;

pub type ConnId = u64;

#[derive(Debug)]
pub enum Segment {
    /// A packet, with the snapshot that follows it on the stream (after a SNAP).
    Data(Packet, Option<Arc<Snapshot>>),
    /// The sender closed the connection.
    Fin,
}

#[derive(Debug)]
pub struct Conn {
    /// [learner, leader].
    pub ends: [u64; 2],
    /// The incarnation of each end when the connection was opened.
    pub incarnations: [u32; 2],
    pub established: bool,
    /// Broken by the network: nothing more is delivered.
    pub broken: bool,
    /// Whether each side still considers the connection open.
    pub open: [bool; 2],
    /// In flight from ends[d] to ends[1 - d].
    pub queues: [VecDeque<Segment>; 2],
    /// When the last segment queued in each direction arrives (TCP keeps order).
    pub last_arrival: [u64; 2],
}

impl Conn {
    pub fn new(learner: u64, leader: u64, incarnations: [u32; 2]) -> Conn {
        Conn {
            ends: [learner, leader],
            incarnations,
            established: false,
            broken: false,
            open: [true, true],
            queues: [VecDeque::new(), VecDeque::new()],
            last_arrival: [0, 0],
        }
    }

    pub fn side_of(&self, server: u64) -> usize {
        if self.ends[0] == server {
            0
        } else {
            debug_assert_eq!(self.ends[1], server);
            1
        }
    }
}

/// Servers on `side` (a bit per server id) cannot reach the others until it heals.
#[derive(Debug, Clone)]
pub struct Partition {
    pub id: u64,
    pub side: u64,
}

impl Partition {
    pub fn separates(&self, a: u64, b: u64) -> bool {
        (self.side >> a & 1) != (self.side >> b & 1)
    }
}
