//! The server's clocks, read at the edge and handed to the node as [`node::Now`].

/// Milliseconds on a monotonic clock (since the first call): every timeout (session
/// expiry) and latency is measured on it, so that a wall-clock jump cannot expire sessions or
/// keep dead ones alive. ZooKeeper does the same with Time.currentElapsedTime.
pub fn mono_ms() -> i64 {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    // starts at 1 s so that 0 never means "now"
    ORIGIN
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as i64
        + 1_000
}

/// Wall-clock milliseconds: what txns and znodes record (TxnHeader.time, ctime/mtime, TTLs)
/// and what session ids start from, as in ZooKeeper. Never used to measure a timeout.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Both clocks, now.
pub fn now() -> node::Now {
    node::Now {
        mono_ms: mono_ms(),
        wall_ms: now_ms(),
    }
}
