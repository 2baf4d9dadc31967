//! Stateful fuzzing of whole servers: the input scripts injections (a connection with any
//! connect request and any requests, to any server in whatever role it has at that moment —
//! leader, follower, observer, or looking; bytes from a stranger on a quorum port; election
//! notifications from strangers) into a simulated ensemble of real nodes that also suffers
//! crashes, partitions and pauses (`sim::cluster`). Zero panics; every request answered (or
//! its connection closed); after the heal every server serves the same tree and every
//! session's writes are committed in order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sim::cluster::{run_cluster, ClusterConfig};

fuzz_target!(|data: &[u8]| {
    if let Err(failure) = run_cluster(&ClusterConfig::for_fuzz(data)) {
        panic!("{failure}");
    }
});
