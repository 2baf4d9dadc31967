//! A client connection's memory budget, as the node sees it: the bytes it queued on the
//! connection minus those the driver reported written ([`crate::Event::Written`]).
//!
//! Without a bound a client that pipelines reads and never reads the replies makes the server
//! hold every reply (20 such clients x 200 reads of 256 KiB = 1 GB), and one that holds a
//! recursive watch and never reads makes it hold every notification. The node:
//! - stops answering a connection whose unsent bytes exceed [`MAX_UNSENT_BYTES`]: its next
//!   requests wait, in order, until the driver reports it drained;
//! - closes at once a connection whose unsent bytes pass [`MAX_CONNECTION_BYTES`] (only
//!   notifications get there: they cannot be held back nor dropped), or that stays
//!   backlogged longer than its session timeout: its client reconnects and re-registers.
//!
//! The driver's reader applies the other bounds (requests read and not answered, and
//! globalOutstandingLimit) with [`MAX_UNANSWERED_REQUESTS`] and [`MAX_UNANSWERED_BYTES`].

/// Unsent bytes beyond which the node answers nothing more on the connection (and the
/// driver's reader stops). One reply may exceed it (a getData of a 1 MB znode): the bound is
/// checked before answering.
pub const MAX_UNSENT_BYTES: usize = 1 << 20;
/// Unsent bytes beyond which the connection is closed. (At 8 MiB, 20 clients with a
/// recursive watch on / that never read held 156 MB; a reading client's backlog of
/// notifications stays far below this.)
pub const MAX_CONNECTION_BYTES: usize = 2 << 20;
/// Requests read but not answered beyond which the connection is not read.
pub const MAX_UNANSWERED_REQUESTS: usize = 1000;
/// Bytes of requests read but not answered beyond which the connection is not read.
pub const MAX_UNANSWERED_BYTES: usize = 4 << 20;

/// One connection's unsent bytes.
#[derive(Debug, Default)]
pub struct Unsent {
    bytes: usize,
    /// Asked the driver to report the next write (see [`crate::Action::ReportWrites`]).
    waiting_for_writes: bool,
}

impl Unsent {
    pub fn queued(&mut self, bytes: usize) {
        self.bytes += bytes;
    }

    /// The driver wrote `bytes`. A report never exceeds what was queued.
    pub fn written(&mut self, bytes: usize) {
        debug_assert!(bytes <= self.bytes, "wrote more than was queued");
        self.bytes = self.bytes.saturating_sub(bytes);
        self.waiting_for_writes = false;
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Requests wait while this holds.
    pub fn is_backlogged(&self) -> bool {
        self.bytes >= MAX_UNSENT_BYTES
    }

    /// The connection must be closed.
    pub fn is_over_budget(&self) -> bool {
        self.bytes > MAX_CONNECTION_BYTES
    }

    /// Whether the node must ask for the next write report (once per wait).
    pub fn start_waiting(&mut self) -> bool {
        !std::mem::replace(&mut self.waiting_for_writes, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlog_is_over_the_bound_until_writes_drain_it() {
        let mut u = Unsent::default();
        u.queued(MAX_UNSENT_BYTES - 1);
        assert!(!u.is_backlogged());
        u.queued(1);
        assert!(u.is_backlogged());
        assert!(u.start_waiting());
        assert!(!u.start_waiting(), "one report asked per wait");
        u.written(1);
        assert!(!u.is_backlogged());
        assert!(u.start_waiting(), "a report re-arms the wait");
        u.queued(MAX_CONNECTION_BYTES);
        assert!(u.is_over_budget());
    }
}
