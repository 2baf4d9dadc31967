//! The zkrs server runtime: sockets, tasks and timers around the pure cores.

pub mod core;
mod dynamic_config;
pub mod dynamic_files;
pub mod ensemble;
mod ensemble_setup;
pub mod fourlw;
mod net;
pub mod outbox;
pub mod persist;
pub mod quorum_net;
pub mod session;
pub mod stats;

pub use net::run;
