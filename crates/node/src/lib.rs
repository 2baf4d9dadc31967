//! The whole zkrs server as a pure state machine.
//!
//! [`Node`] owns what a ZooKeeper server decides: client connections' protocol state and
//! memory budgets, sessions and their expiry, Prepare, the per-session pipeline, forwarding to
//! the leader, the leader's handling of learner requests, syncs and read barriers, the
//! prepare-time reconfig checks and snapshot scheduling; it drives the Zab peer
//! ([`zab::peer::Peer`]). It does no I/O and reads no clock: the driver feeds it
//! [`Event`]s with the time ([`Now`]) and executes the [`Action`]s it queues (see [`io`]).
//! The tokio runtime (`crates/server`) and the simulator (`crates/sim`) are its two drivers.

pub mod flow;
pub mod io;
mod node;
mod replica;
mod rng;
pub mod session;
pub mod stats;

pub use io::{Action, ConnId, Event, LinkId, Now, PeerEvent};
pub use node::{Node, NodeOptions};
pub use replica::Replica;
