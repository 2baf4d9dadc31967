//! Seeds of the whole-server simulation ([`sim::cluster`]): real nodes, simulated clients,
//! crashes, fsync failures, partitions, pauses, clock drift, broken client connections and
//! requests no client should send, clients away longer than their session timeout.
//!
//! - `CLUSTER_SEEDS=n`: how many seeds (default [`DEFAULT_SEEDS`]);
//! - `CLUSTER_FIRST_SEED=f`: start there (CI passes a time-derived one, printed);
//! - `CLUSTER_SEED=s`: run only seed `s` (a failure prints the events before it).

use sim::cluster::{run_cluster, ClusterConfig, ClusterStats};
use std::time::Instant;

/// Seeds of the default run (part of `cargo test --workspace`): about 1.5 s in release.
const DEFAULT_SEEDS: u64 = 40;

/// Seeds that fail on something not yet understood (reported in the closing note of issue
/// 18): they run and their failure is printed, without failing the test; any other failing
/// seed fails it, and a known seed that passes is reported so it can be removed.
const KNOWN_OPEN: &[(u64, &str)] = &[];

/// Seeds that found bugs (each fixed; docs/RELIABILITY.md): they run every time.
const REGRESSIONS: &[(u64, &str)] = &[
    (
        1765000000266,
        "/zookeeper/config empty on a follower after a SNAP",
    ),
    (
        1765000000545,
        "a session whose closeSession was lost with its leader never expired",
    ),
    (1765000000806, "the same: its ephemeral outlived it"),
    (
        1766000000278,
        "(the oracle) a garbage create may be answered SessionMoved",
    ),
    (
        1796700869303,
        "(the simulator) a pause reordered a connection's requests",
    ),
];

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}"))
    })
}

#[test]
fn whole_servers_keep_their_promises_on_every_seed() {
    let (first, count) = match env_u64("CLUSTER_SEED") {
        Some(seed) => (seed, 1),
        None => (
            env_u64("CLUSTER_FIRST_SEED").unwrap_or(1),
            env_u64("CLUSTER_SEEDS").unwrap_or(DEFAULT_SEEDS),
        ),
    };
    let started = Instant::now();
    let mut total = ClusterStats::default();
    let mut failures = Vec::new();
    let regressions = if env_u64("CLUSTER_SEED").is_some() {
        Vec::new()
    } else {
        REGRESSIONS.iter().map(|(s, _)| *s).collect()
    };
    for seed in (first..first + count).chain(regressions) {
        // a panic of a server is a failure of its seed (reported as such, the run goes on)
        let outcome = std::panic::catch_unwind(|| run_cluster(&ClusterConfig::for_seed(seed)))
            .unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Err(format!("seed {seed}: a server panicked: {what}"))
            });
        match outcome {
            Ok(s) => {
                if KNOWN_OPEN.iter().any(|(k, _)| *k == seed) {
                    eprintln!("known open seed {seed} passes now: remove it from KNOWN_OPEN");
                }
                total.events += s.events;
                total.replies += s.replies;
                total.writes_acked += s.writes_acked;
                total.synced_reads += s.synced_reads;
                total.locks_taken += s.locks_taken;
                total.crashes += s.crashes;
                total.partitions += s.partitions;
                total.client_moves += s.client_moves;
                total.sessions_expired += s.sessions_expired;
                total.hostile_requests += s.hostile_requests;
                total.notifications += s.notifications;
            }
            Err(e) => {
                let known = KNOWN_OPEN.iter().find(|(s, _)| *s == seed);
                eprintln!("{e}\n(replay: CLUSTER_SEED={seed} cargo test --release -p zkrs-sim --test cluster_seeds -- --nocapture)\n");
                match known {
                    Some((_, why)) => eprintln!("seed {seed} is a known open failure: {why}"),
                    None => failures.push(seed),
                }
            }
        }
    }
    eprintln!(
        "cluster seeds {first}..{}: {} failed, in {:.1} s; {total:?}",
        first + count,
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "failing seeds: {failures:?}");
    // the runs did what they are for
    if count >= 10 {
        assert!(total.writes_acked > 0 && total.synced_reads > 0 && total.locks_taken > 0);
        assert!(total.crashes > 0 && total.partitions > 0 && total.hostile_requests > 0);
        assert!(total.notifications > 0 && total.sessions_expired > 0);
    }
}

/// The stateful fuzzer's path (fuzz/fuzz_targets/node_roles.rs) on inputs drawn from a seeded
/// generator, so that `cargo test` runs it without the fuzzer: hostile connections, requests
/// and strangers' quorum bytes and notifications into every role.
#[test]
fn scripted_injections_into_every_role() {
    let runs = env_u64("CLUSTER_SCRIPTS").unwrap_or(30);
    let mut state = 0x5eed_u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u8
    };
    for run in 0..runs {
        let len = 8 + (run as usize * 37) % 600;
        let data: Vec<u8> = (0..len).map(|_| next()).collect();
        if let Err(e) = run_cluster(&ClusterConfig::for_fuzz(&data)) {
            panic!("scripted run {run} failed: {e}\ninput: {data:?}");
        }
    }
}
