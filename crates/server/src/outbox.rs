//! A client connection's outgoing side and the reader's flow control, shared between the
//! node's task (which queues frames), the connection's writer task and its reader task.
//!
//! The node decides what a connection may hold ([`node::flow`]); here the reader stops reading
//! a connection with [`MAX_UNANSWERED_REQUESTS`] requests or [`MAX_UNANSWERED_BYTES`] of them
//! not yet answered, or [`MAX_UNSENT_BYTES`] unsent (as ZooKeeper's outstanding-request
//! throttle stops reading), so the socket pushes back; and every reader waits while the server
//! as a whole has more than globalOutstandingLimit requests read and not answered
//! ([`GlobalOutstanding`]). The writer reports what it wrote to the node in batches of
//! [`REPORT_WRITES_EVERY`] bytes, and at once when the node waits for it.

use bytes::Bytes;
pub use node::flow::{MAX_UNANSWERED_BYTES, MAX_UNANSWERED_REQUESTS, MAX_UNSENT_BYTES};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Notify;

/// Bytes written between two reports to the node (when it does not wait for one): its view
/// of a connection's unsent bytes is at most this much too high.
pub const REPORT_WRITES_EVERY: usize = 64 << 10;

/// What a connection's writer task is told to do.
#[derive(Debug)]
pub enum Outgoing {
    /// `reply`: it answers a request (the reader's flow control counts those).
    Frame { frame: Bytes, reply: bool },
    /// Flush what was queued, then close the socket.
    Close,
}

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
    /// Written bytes not yet reported to the node.
    unreported: AtomicUsize,
    /// The node waits for the next report (it holds requests of this connection).
    node_waiting: AtomicBool,
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
            unreported: AtomicUsize::new(0),
            node_waiting: AtomicBool::new(false),
            reader_wake: Notify::new(),
            aborted: AtomicBool::new(false),
            abort_wake: Notify::new(),
        }
    }

    /// The writer wrote `bytes`, of which `replies` replies. Returns the bytes to report to
    /// the node now, if it is time.
    pub fn written(&self, bytes: usize, replies: u64) -> Option<usize> {
        let before = self.unsent.fetch_sub(bytes, Ordering::SeqCst);
        debug_assert!(before >= bytes, "wrote more than was queued");
        if replies > 0 {
            self.answered.fetch_add(replies, Ordering::SeqCst);
            self.take_outstanding(replies as usize);
        }
        if bytes > 0 || replies > 0 {
            self.reader_wake.notify_one();
        }
        let unreported = self.unreported.fetch_add(bytes, Ordering::SeqCst) + bytes;
        let due = unreported >= REPORT_WRITES_EVERY || self.node_waiting.load(Ordering::SeqCst);
        if !due {
            return None;
        }
        self.node_waiting.store(false, Ordering::SeqCst);
        self.take_unreported()
    }

    fn take_unreported(&self) -> Option<usize> {
        Some(self.unreported.swap(0, Ordering::SeqCst)).filter(|&n| n > 0)
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

    /// Queues a frame; `reply`: it answers a request (a notification does not).
    pub fn queue(&self, frame: Bytes, reply: bool) {
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

    /// The node waits for the next report of written bytes: the writer reports its next
    /// write at once. Returns the bytes written and not yet reported, if any: the caller
    /// reports them now (the wait may be over already).
    pub fn report_writes(&self) -> Option<usize> {
        // set before taking: a write in between is reported by one side or the other
        self.flow.node_waiting.store(true, Ordering::SeqCst);
        let taken = self.flow.take_unreported();
        if taken.is_some() {
            self.flow.node_waiting.store(false, Ordering::SeqCst);
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: usize) -> Bytes {
        Bytes::from(vec![0u8; len])
    }

    #[test]
    fn writes_are_reported_in_batches_and_at_once_when_the_node_waits() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let outbox = Outbox::new(tx);
        let flow = outbox.flow();
        outbox.queue(frame(REPORT_WRITES_EVERY * 2), true);
        outbox.queue(frame(10), false);
        assert_eq!(flow.unsent(), REPORT_WRITES_EVERY * 2 + 10);
        assert_eq!(flow.written(10, 0), None, "small writes wait for a batch");
        assert_eq!(
            flow.written(REPORT_WRITES_EVERY, 1),
            Some(REPORT_WRITES_EVERY + 10)
        );
        assert_eq!(flow.answered(), 1, "the notification answers nothing");
        // the node waits: the next write is reported however small
        assert_eq!(outbox.report_writes(), None, "nothing unreported yet");
        assert_eq!(flow.written(1, 0), Some(1));
        assert_eq!(flow.written(1, 0), None, "reported once per wait");
        // unreported bytes at the moment the node starts waiting come back at once
        assert_eq!(outbox.report_writes(), Some(1));
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
    fn every_written_byte_is_reported_exactly_once_whatever_the_interleaving() {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let outbox = Outbox::new(tx);
        let flow = outbox.flow();
        outbox.queue(frame(1 << 20), true);
        let mut reported = 0;
        for i in 0..1000usize {
            if i % 7 == 0 {
                reported += outbox.report_writes().unwrap_or(0);
            }
            reported += flow.written(1000, 0).unwrap_or(0);
        }
        reported += outbox.report_writes().unwrap_or(0);
        assert_eq!(reported, 1_000_000);
    }

    #[test]
    fn a_closed_writer_leaves_no_backlog() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        drop(rx);
        let outbox = Outbox::new(tx);
        outbox.queue(frame(2 * MAX_UNSENT_BYTES), true);
        assert_eq!(outbox.flow().unsent(), 0);
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
        outbox.queue(frame(node::flow::MAX_CONNECTION_BYTES + 1), false);
        outbox.abort();
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("woken")
            .unwrap();
    }
}
