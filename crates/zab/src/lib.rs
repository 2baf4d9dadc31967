//! ZooKeeper's atomic broadcast (Zab) as sans-IO state machines: events in, actions out.
//! Time and randomness come in as inputs; no sockets, clocks or threads here.
//!
//! - [`wire`]: the byte formats ZooKeeper 3.8 uses between servers (election handshake and
//!   notifications, QuorumPacket types and payloads).
//! - [`election`]: fast leader election.
//! - [`discovery`]: the leader agrees on a new epoch with a quorum.
//! - [`leader`]: discovery, learner synchronization, broadcast.
//! - [`learner`]: a follower's or observer's side: register, sync, log, ack, commit.
//! - [`peer`]: one server's Zab: election, then leading or learning, then election again.
//! - [`sync`]: how a leader brings a learner up to date (DIFF, TRUNC or SNAP).
//! - [`broadcast`]: outstanding proposals, acks, in-order commits under every config in force.
//! - [`reconfig`]: the configuration a reconfig txn carries, request validation, designated leader.

pub mod broadcast;
pub mod discovery;
pub mod election;
pub mod leader;
pub mod learner;
pub mod peer;
pub mod reconfig;
pub mod sync;
pub mod wire;
