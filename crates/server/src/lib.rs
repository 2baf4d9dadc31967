//! The zkrs server runtime: sockets, tasks and timers around the pure cores.

pub mod core;
pub mod fourlw;
mod net;
pub mod persist;
pub mod session;
pub mod stats;

pub use net::run;
