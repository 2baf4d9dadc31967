//! The zkrs server's edges: sockets, tasks, timers, threads and files around the pure node
//! (`crates/node`). The node decides; this crate only feeds it events and executes its
//! actions ([`driver`]).

mod clock;
mod deliver;
pub mod driver;
mod dynamic_config;
pub mod dynamic_files;
mod ensemble_setup;
pub mod fourlw;
mod inbox;
mod net;
pub mod outbox;
pub mod persist;
pub mod quorum_net;

pub use clock::{mono_ms, now_ms};
pub use net::run;
