//! A client connection's outgoing side and its flow control: one memory budget per
//! connection, and the server-wide bound on outstanding requests.
//!
//! Without them a client that pipelines reads and never reads the replies makes the server
//! hold every reply (20 such clients x 200 reads of 256 KiB = 1 GB), and one that holds a
//! recursive watch and never reads makes it hold every notification. The bounds:
//! - the core stops answering a connection whose unsent bytes (replies and notifications)
//!   exceed [`MAX_UNSENT_BYTES`]: its next requests wait, in order, until the writer has
//!   drained it ([`Outbox::is_backlogged`]);
//! - the reader stops reading a connection with [`MAX_UNANSWERED_REQUESTS`] requests or
//!   [`MAX_UNANSWERED_BYTES`] of them not yet answered, or [`MAX_UNSENT_BYTES`] unsent (as
//!   ZooKeeper's outstanding-request throttle stops reading), so the socket pushes back;
//! - notifications cannot wait (a watch event is never dropped), so a connection whose unsent
//!   bytes pass [`MAX_CONNECTION_BYTES`], or that stays backlogged longer than its session
//!   timeout, is closed at once: its client reconnects and re-registers its watches;
//! - every reader waits while the server as a whole has more than globalOutstandingLimit
//!   requests read and not answered ([`GlobalOutstanding`]).

use crate::core::Outgoing;
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Notify;

/// Unsent bytes beyond which the core answers nothing more on the connection and its reader
/// stops. One reply may exceed it (a getData of a 1 MB znode): the bound is checked before
/// answering.
pub const MAX_UNSENT_BYTES: usize = 1 << 20;
/// Unsent bytes beyond which the connection is closed: only notifications, which the core
/// cannot hold back, take a connection this far past [`MAX_UNSENT_BYTES`]. (At 8 MiB, 20
/// clients with a recursive watch on / that never read held 156 MB; a reading client's
/// backlog of notifications stays far below this.)
pub const MAX_CONNECTION_BYTES: usize = 2 << 20;
/// Requests read but not answered beyond which the connection is not read.
pub const MAX_UNANSWERED_REQUESTS: usize = 1000;
/// Bytes of requests read but not answered beyond which the connection is not read.
pub const MAX_UNANSWERED_BYTES: usize = 4 << 20;

/// Requests read and not yet answered on all connections (ZooKeeper's
/// globalOutstandingLimit): while there are more than the limit, no connection is read.
#[derive(Debug)]
pub struct GlobalOutstanding {
    count: AtomicUsize,
    /// 0: no limit.
    limit: usize,
    wake: Notify,
}

impl GlobalOutstanding {
    pub fn new(limit: usize) -> Self {
        GlobalOutstanding {
            count: AtomicUsize::new(0),
            limit,
            wake: Notify::new(),
        }
    }

    pub fn unlimited() -> Arc<Self> {
        Arc::new(Self::new(0))
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    pub fn is_over_limit(&self) -> bool {
        self.limit > 0 && self.count() >= self.limit
    }

    fn add(&self, n: usize) {
        self.count.fetch_add(n, Ordering::SeqCst);
    }

    fn answered(&self, n: usize) {
        if n > 0 {
            let before = self.count.fetch_sub(n, Ordering::SeqCst);
            debug_assert!(before >= n, "more answers than requests");
            self.wake.notify_waiters();
        }
    }

    /// Resolves once fewer requests than the limit are outstanding.
    pub async fn wait_below_limit(&self) {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            // registered before the check: an answer in between is not missed
            notified.as_mut().enable();
            if !self.is_over_limit() {
                return;
            }
            notified.await;
        }
    }
}

/// What the core, the reader and the writer of one connection share.
#[derive(Debug)]
pub struct Flow {
    /// Bytes queued for the writer and not yet written to the socket.
    unsent: AtomicUsize,
    /// Replies written (notifications excluded): the reader's measure of answered requests.
    answered: AtomicU64,
    /// Requests read and not answered, as counted in `global` (each is taken off once).
    outstanding: AtomicUsize,
    global: Arc<GlobalOutstanding>,
    /// The core holds requests until `unsent` falls below the bound.
    core_waiting: AtomicBool,
    /// Wakes the reader when bytes were written.
    reader_wake: Notify,
    /// The connection is being closed without flushing (over its budget).
    aborted: AtomicBool,
    abort_wake: Notify,
}

impl Flow {
    fn new(global: Arc<GlobalOutstanding>) -> Self {
        Flow {
            unsent: AtomicUsize::new(0),
            answered: AtomicU64::new(0),
            outstanding: AtomicUsize::new(0),
            global,
            core_waiting: AtomicBool::new(false),
            reader_wake: Notify::new(),
            aborted: AtomicBool::new(false),
            abort_wake: Notify::new(),
        }
    }

    /// The writer wrote `bytes`, of which `replies` replies. Returns whether the core waits
    /// for this connection to drain and must now be told.
    pub fn written(&self, bytes: usize, replies: u64) -> bool {
        let before = self.unsent.fetch_sub(bytes, Ordering::SeqCst);
        debug_assert!(before >= bytes, "wrote more than was queued");
        if replies > 0 {
            self.answered.fetch_add(replies, Ordering::SeqCst);
            self.take_outstanding(replies as usize);
        }
        if bytes > 0 || replies > 0 {
            self.reader_wake.notify_one();
        }
        before - bytes < MAX_UNSENT_BYTES && self.core_waiting.swap(false, Ordering::SeqCst)
    }

    /// Takes up to `n` answered requests off this connection's and the server's counts.
    fn take_outstanding(&self, n: usize) {
        let taken = self
            .outstanding
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |o| Some(o - o.min(n)))
            .map_or(0, |before| before.min(n));
        self.global.answered(taken);
    }

    /// The reader read a request (a connect request included: it gets an answer too).
    pub fn request_read(&self) {
        self.outstanding.fetch_add(1, Ordering::SeqCst);
        self.global.add(1);
    }

    /// The connection is gone: what it left unanswered no longer counts.
    pub fn closed(&self) {
        self.take_outstanding(usize::MAX);
    }

    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::SeqCst)
    }

    /// Requests read on this connection and not answered yet.
    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::SeqCst)
    }

    pub fn unsent(&self) -> usize {
        self.unsent.load(Ordering::SeqCst)
    }

    pub fn global(&self) -> &GlobalOutstanding {
        &self.global
    }

    /// Resolves after the next [`Flow::written`] (or at once if one came since the last wait).
    pub async fn wait_for_answers(&self) {
        self.reader_wake.notified().await
    }

    /// Closes the connection without writing what is queued.
    pub fn abort(&self) {
        self.aborted.store(true, Ordering::SeqCst);
        self.abort_wake.notify_waiters();
    }

    /// Resolves once [`Flow::abort`] was called.
    pub async fn until_aborted(&self) {
        loop {
            let notified = self.abort_wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.aborted.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }
}

/// The core's handle on a connection's writer.
#[derive(Debug, Clone)]
pub struct Outbox {
    tx: UnboundedSender<Outgoing>,
    flow: Arc<Flow>,
}

impl Outbox {
    /// A connection that counts in no server-wide limit (tests).
    pub fn new(tx: UnboundedSender<Outgoing>) -> Self {
        Self::counted_in(tx, GlobalOutstanding::unlimited())
    }

    pub fn counted_in(tx: UnboundedSender<Outgoing>, global: Arc<GlobalOutstanding>) -> Self {
        Outbox {
            tx,
            flow: Arc::new(Flow::new(global)),
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

    /// Close now, dropping what is queued (the client does not read it).
    pub fn abort(&self) {
        self.flow.abort();
    }

    pub fn is_aborted(&self) -> bool {
        self.flow.aborted.load(Ordering::SeqCst)
    }

    /// Too many bytes wait for the socket: answer nothing more for now.
    pub fn is_backlogged(&self) -> bool {
        self.flow.unsent() >= MAX_UNSENT_BYTES
    }

    /// So many bytes wait for the socket that the connection must be closed.
    pub fn is_over_budget(&self) -> bool {
        self.flow.unsent() > MAX_CONNECTION_BYTES
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

    #[test]
    fn outstanding_requests_count_until_answered_or_closed_and_never_twice() {
        let global = Arc::new(GlobalOutstanding::new(3));
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let a = Outbox::counted_in(tx.clone(), global.clone()).flow();
        let b = Outbox::counted_in(tx, global.clone()).flow();
        for _ in 0..2 {
            a.request_read();
        }
        b.request_read();
        assert_eq!(global.count(), 3);
        assert!(global.is_over_limit());
        // a notification answers nothing; a reply answers one
        a.written(0, 0);
        assert_eq!(global.count(), 3);
        a.written(0, 1);
        assert_eq!((global.count(), a.outstanding()), (2, 1));
        assert!(!global.is_over_limit());
        // replies beyond the requests read (a connect response to a closed reader) do not
        // take others' requests off the count
        a.written(0, 5);
        assert_eq!(global.count(), 1);
        b.closed();
        b.written(0, 1);
        assert_eq!(global.count(), 0);
    }

    #[tokio::test]
    async fn a_reader_waiting_for_the_global_limit_is_woken_by_an_answer() {
        let global = Arc::new(GlobalOutstanding::new(1));
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let flow = Outbox::counted_in(tx, global.clone()).flow();
        flow.request_read();
        let waiter = {
            let global = global.clone();
            tokio::spawn(async move { global.wait_below_limit().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        flow.written(0, 1);
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("woken")
            .unwrap();
    }

    #[tokio::test]
    async fn an_abort_reaches_whoever_waits_for_it() {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let outbox = Outbox::new(tx);
        let flow = outbox.flow();
        let waiter = tokio::spawn(async move { flow.until_aborted().await });
        tokio::task::yield_now().await;
        outbox.notify(frame(MAX_CONNECTION_BYTES + 1));
        assert!(outbox.is_over_budget());
        outbox.abort();
        assert!(outbox.is_aborted());
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("woken")
            .unwrap();
    }
}
