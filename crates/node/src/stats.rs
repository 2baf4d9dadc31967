//! Counters behind srvr, stat, cons and mntr.

/// Server-wide request statistics (ZooKeeper's ServerStats).
#[derive(Debug, Default, Clone)]
pub struct ServerStats {
    pub packets_received: u64,
    pub packets_sent: u64,
    pub min_latency: Option<i64>,
    pub max_latency: i64,
    pub total_latency: i64,
    pub count: u64,
}

impl ServerStats {
    pub fn record_latency(&mut self, ms: i64) {
        self.min_latency = Some(self.min_latency.map_or(ms, |m| m.min(ms)));
        self.max_latency = self.max_latency.max(ms);
        self.total_latency += ms;
        self.count += 1;
    }

    /// The smallest latency seen, 0 before the first request (as ZooKeeper prints it).
    pub fn min(&self) -> i64 {
        self.min_latency.unwrap_or(0)
    }

    /// The largest latency seen, 0 before the first request.
    pub fn max(&self) -> i64 {
        self.max_latency
    }

    /// The mean latency rounded half-up to 4 decimals, as `srvr` and `mntr` print it.
    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            let mean = self.total_latency as f64 / self.count as f64;
            (mean * 10_000.0).round() / 10_000.0
        }
    }

    /// The mean latency in whole milliseconds (truncated), as `cons` prints it per connection.
    pub fn avg_whole(&self) -> i64 {
        if self.count == 0 {
            0
        } else {
            self.total_latency / self.count as i64
        }
    }

    pub fn reset(&mut self) {
        *self = ServerStats::default();
    }
}

/// Per-connection statistics, printed by `cons`.
#[derive(Debug, Clone)]
pub struct ConnStats {
    pub received: u64,
    pub sent: u64,
    pub established_ms: i64,
    pub session_timeout: u32,
    /// The opcode of the last request, -99 when none (printed as `NA`).
    pub last_op: i32,
    pub last_cxid: i32,
    pub last_zxid: i64,
    pub last_response_ms: i64,
    pub last_latency: i64,
    pub latency: ServerStats,
}

impl ConnStats {
    pub fn new(now_ms: i64) -> Self {
        ConnStats {
            received: 0,
            sent: 0,
            established_ms: now_ms,
            session_timeout: 0,
            last_op: -99,
            last_cxid: -1,
            last_zxid: -1,
            last_response_ms: 0,
            last_latency: 0,
            latency: ServerStats::default(),
        }
    }

    pub fn record(&mut self, latency: i64, zxid: i64, now_ms: i64) {
        self.last_latency = latency;
        self.last_zxid = zxid;
        self.last_response_ms = now_ms;
        self.latency.record_latency(latency);
    }

    pub fn reset(&mut self) {
        self.received = 0;
        self.sent = 0;
        self.last_op = -99;
        self.last_cxid = -1;
        self.last_zxid = -1;
        self.last_response_ms = 0;
        self.last_latency = 0;
        self.latency.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_round_like_zookeeper() {
        let mut s = ServerStats::default();
        assert_eq!((s.min(), s.avg(), s.max(), s.avg_whole()), (0, 0.0, 0, 0));
        for ms in [0, 1, 1, 2, 5, 0, 0] {
            s.record_latency(ms);
        }
        // 9 / 7 = 1.285714...
        assert_eq!(s.avg(), 1.2857);
        assert_eq!(s.avg_whole(), 1);
        assert_eq!((s.min(), s.max()), (0, 5));
        s.reset();
        assert_eq!(
            (s.min(), s.avg(), s.max(), s.packets_received),
            (0, 0.0, 0, 0)
        );
    }
}
