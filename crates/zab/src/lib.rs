//! ZooKeeper's atomic broadcast (Zab) as sans-IO state machines: events in, actions out.
//! Time and randomness come in as inputs; no sockets, clocks or threads here.
//!
//! - [`wire`]: the byte formats ZooKeeper 3.8 uses between servers (election handshake and
//!   notifications, QuorumPacket types and payloads).
//! - [`election`]: fast leader election.
//! - [`sync`]: how a leader brings a learner up to date (DIFF, TRUNC or SNAP).

pub mod election;
pub mod sync;
pub mod wire;
