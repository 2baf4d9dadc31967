//! A client connection's outgoing side and its flow control.
//!
//! Without it a client that pipelines reads and never reads the replies makes the server hold
//! every reply (20 such clients x 200 reads of 256 KiB = 1 GB). Two bounds keep each
//! connection's memory small while never failing a request:
//! - the core stops answering a connection whose unsent replies exceed [`MAX_UNSENT_BYTES`]:
//!   its next requests wait, in order, until the writer has drained it ([`Outbox::is_backlogged`]);
//! - the reader stops reading a connection with [`MAX_UNANSWERED_REQUESTS`] requests or
//!   [`MAX_UNANSWERED_BYTES`] of them not yet answered (as ZooKeeper's outstanding-request
//!   throttle stops reading), so the socket pushes back on the client.

use crate::core::Outgoing;
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Notify;

/// Unsent reply bytes beyond which the core answers nothing more on the connection. One
/// reply may exceed it (a getData of a 1 MB znode): the bound is checked before answering.
pub const MAX_UNSENT_BYTES: usize = 1 << 20;
/// Requests read but not answered beyond which the connection is not read.
pub const MAX_UNANSWERED_REQUESTS: usize = 1000;
/// Bytes of requests read but not answered beyond which the connection is not read.
pub const MAX_UNANSWERED_BYTES: usize = 4 << 20;

/// What the core, the reader and the writer of one connection share.
#[derive(Debug, Default)]
pub struct Flow {
    /// Bytes queued for the writer and not yet written to the socket.
    unsent: AtomicUsize,
    /// Replies written (notifications excluded): the reader's measure of answered requests.
    answered: AtomicU64,
    /// The core holds requests until `unsent` falls below the bound.
    core_waiting: AtomicBool,
    /// Wakes the reader when replies were written.
    reader_wake: Notify,
}

impl Flow {
    /// The writer wrote `bytes`, of which `replies` replies. Returns whether the core waits
    /// for this connection to drain and must now be told.
    pub fn written(&self, bytes: usize, replies: u64) -> bool {
        let before = self.unsent.fetch_sub(bytes, Ordering::SeqCst);
        debug_assert!(before >= bytes, "wrote more than was queued");
        if replies > 0 {
            self.answered.fetch_add(replies, Ordering::SeqCst);
            self.reader_wake.notify_one();
        }
        before - bytes < MAX_UNSENT_BYTES && self.core_waiting.swap(false, Ordering::SeqCst)
    }

    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::SeqCst)
    }

    /// Resolves after the next [`Flow::written`] with replies (or at once if one came since
    /// the last wait).
    pub async fn wait_for_answers(&self) {
        self.reader_wake.notified().await
    }
}

/// The core's handle on a connection's writer.
#[derive(Debug, Clone)]
pub struct Outbox {
    tx: UnboundedSender<Outgoing>,
    flow: Arc<Flow>,
}

impl Outbox {
    pub fn new(tx: UnboundedSender<Outgoing>) -> Self {
        Outbox {
            tx,
            flow: Arc::new(Flow::default()),
        }
    }

    pub fn flow(&self) -> Arc<Flow> {
        self.flow.clone()
    }

    /// Queues the answer to a request (or a connect response).
    pub fn reply(&self, frame: Bytes) {
        self.queue(frame, true)
    }

    /// Queues a watch notification, which answers no request.
    pub fn notify(&self, frame: Bytes) {
        self.queue(frame, false)
    }

    fn queue(&self, frame: Bytes, reply: bool) {
        self.flow.unsent.fetch_add(frame.len(), Ordering::SeqCst);
        if self.tx.send(Outgoing::Frame { frame, reply }).is_err() {
            // the writer is gone: nothing will be written, keep the count true
            self.flow.unsent.store(0, Ordering::SeqCst);
        }
    }

    /// Flush what was queued, then close.
    pub fn close(&self) {
        let _ = self.tx.send(Outgoing::Close);
    }

    /// Too many reply bytes wait for the socket: answer nothing more for now.
    pub fn is_backlogged(&self) -> bool {
        self.flow.unsent.load(Ordering::SeqCst) >= MAX_UNSENT_BYTES
    }

    /// Asks the writer to send [`crate::core::CoreMsg::Writable`] once the backlog is drained. Returns true
    /// if it already is (the caller goes on at once and no message will come).
    pub fn wake_core_when_drained(&self) -> bool {
        self.flow.core_waiting.store(true, Ordering::SeqCst);
        // the writer may have drained between the caller's check and the store above
        !self.is_backlogged() && self.flow.core_waiting.swap(false, Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: usize) -> Bytes {
        Bytes::from(vec![0u8; len])
    }

    #[test]
    fn backlog_over_the_bound_holds_the_core_until_the_writer_drains_it() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let outbox = Outbox::new(tx);
        let flow = outbox.flow();
        outbox.reply(frame(MAX_UNSENT_BYTES / 2));
        assert!(!outbox.is_backlogged());
        outbox.notify(frame(MAX_UNSENT_BYTES / 2 + 10));
        assert!(outbox.is_backlogged());
        // the core waits: no wake while still over the bound
        assert!(!outbox.wake_core_when_drained());
        assert!(!flow.written(1, 0), "still over the bound");
        assert!(
            flow.written(MAX_UNSENT_BYTES / 2, 1),
            "drained: wake the core"
        );
        assert!(!flow.written(0, 0), "woken once");
        assert_eq!(flow.answered(), 1, "the notification answers nothing");
        assert!(!outbox.is_backlogged());
        assert!(matches!(
            rx.try_recv(),
            Ok(Outgoing::Frame { reply: true, .. })
        ));
        assert!(matches!(
            rx.try_recv(),
            Ok(Outgoing::Frame { reply: false, .. })
        ));
    }

    #[test]
    fn a_drain_between_check_and_wait_is_not_lost() {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let outbox = Outbox::new(tx);
        let flow = outbox.flow();
        outbox.reply(frame(MAX_UNSENT_BYTES));
        assert!(outbox.is_backlogged());
        // the writer drains before the core asks to be woken: the core is told to go on
        assert!(!flow.written(MAX_UNSENT_BYTES, 1));
        assert!(outbox.wake_core_when_drained());
        assert!(!flow.written(0, 0), "and no message follows");
    }

    #[test]
    fn a_closed_writer_leaves_no_backlog() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        drop(rx);
        let outbox = Outbox::new(tx);
        outbox.reply(frame(2 * MAX_UNSENT_BYTES));
        assert!(!outbox.is_backlogged());
    }
}
