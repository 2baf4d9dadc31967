//! Seeds on which the simulator found bugs. The seeds of fixed bugs run by default (they
//! passed after the fix and failed before it); the precise regression test of each fix is a
//! unit test beside the fix.
//!
//! The seeds of bugs still open in `zab::peer` / `zab::learner` run only with
//! `SIM_KNOWN_BUGS=1`; each says what it shows. Replay one with its trace:
//! `SIM_SEED=<seed> cargo test -p zkrs-sim --release --test seeds -- --nocapture`.

use sim::{run, SimConfig};

fn passes(seed: u64) {
    if let Err(f) = run(&SimConfig::for_seed(seed)) {
        panic!("{f}");
    }
}

/// Runs an open bug's seeds only when asked to, saying what it skips otherwise.
fn known_bug(what: &str, seeds: &[u64]) {
    if std::env::var("SIM_KNOWN_BUGS").is_err() {
        eprintln!("skipping seeds {seeds:?} of an open bug ({what}); SIM_KNOWN_BUGS=1 runs them");
        return;
    }
    for &seed in seeds {
        passes(seed);
    }
}

// ----- fixed -----

/// zab::leader: a leader that never gathered its quorum stayed LEADING forever (no initLimit
/// for discovery and synchronization), so the servers that had voted for it could never
/// elect another: "no progress" after healing. Fixed by `Leader::with_init_limit` (unit test
/// `a_leader_without_a_quorum_within_init_limit_steps_down`).
#[test]
fn a_leader_without_a_quorum_gives_up_after_init_limit() {
    for seed in [1, 3, 5] {
        passes(seed);
    }
}

/// zab::leader: an established leader stepped down when a late follower's ACKEPOCH showed a
/// longer log of an older epoch (never committed; the sync truncates it), and did so again at
/// every attempt of that follower to join. Fixed in `Leader::on_packet` (unit test
/// `a_late_follower_with_a_longer_old_log_is_truncated_not_a_reason_to_step_down`).
#[test]
fn an_established_leader_keeps_leading_when_a_late_follower_has_a_longer_old_log() {
    for seed in [66, 130, 262] {
        passes(seed);
    }
}

/// The simulator's own check: a leader paused right after its NEWLEADER quorum acked learns
/// that its epoch was established after a later epoch committed more; only earlier epochs'
/// commits must be in its history.
#[test]
fn a_paused_leader_learns_late_that_its_epoch_was_established() {
    passes(663);
}

// ----- open: in zab::peer and zab::learner -----

/// OPEN (zab::peer). A server leaves a role while fsyncs of its log are still in flight. It
/// then reports `last_durable` (vote, ACKEPOCH) although its log holds more, the leader
/// sends it those txns again, and the peer asks to log zxids already in the log
/// (`Persist` 0x100000003 after 0x100000009): the storage refuses non-ascending zxids.
///
/// What passed 21,000 seeds in a prototype: the peer's history is what it logged
/// (`last_logged`: vote, ACKEPOCH, the leader's summary and its Commit on becoming leader);
/// a learner skips txns at or below `last_logged` (already in the log); the leader is built
/// `.with_durable(last_durable)`; and a learner also knows what is durable
/// (`Learner::with_durable`, lowered by TRUNC, set by SNAP, raised by `on_durable`) so that
/// it writes currentEpoch and acks NEWLEADER only once its log is durable up to its last
/// zxid, even when the sync sent no txn (its own unsynced tail must be durable first).
#[test]
fn open_a_learner_logs_again_txns_already_in_its_log() {
    known_bug(
        "peer reports last_durable while its log holds more: Persist of logged zxids",
        &[4287, 127],
    );
}

/// OPEN (zab::peer). `become_(Leading)` commits `last_durable` but hands over (and moves to
/// the committed window) every logged txn, also those not yet durable: the Commit's txns run
/// past its zxid, and a later Commit misses the txns moved earlier (`commits 0x20000004e with
/// txns []`). The runtime applies a different set of txns than the leader's history.
#[test]
fn open_a_new_leader_commits_txns_beyond_its_zxid() {
    known_bug(
        "become_(Leading) commits last_durable with every logged txn",
        &[2979, 483],
    );
}

/// OPEN (zab::peer). A learner's unsynced log tail of an older epoch stays in its log: the
/// leader synchronized it from `last_durable`, never truncated the tail, and new txns are
/// appended after it (`commits 0x400000001 ... its log holds [0x300000042, ...,
/// 0x400000001]`): after a restart the tail is replayed as if committed.
#[test]
fn open_a_learner_keeps_an_unsynced_tail_of_an_older_epoch() {
    known_bug(
        "a learner's unsynced tail survives the sync below new txns",
        &[216],
    );
}

/// OPEN (zab::learner), ZOOKEEPER-4643. On NEWLEADER the learner writes currentEpoch at once
/// and logs the synced txns after. It crashes before they are durable, restarts with the new
/// currentEpoch and a shorter log, wins the election on that epoch and TRUNCs the others,
/// dropping a committed txn (`committed 0x300000010 is durable only on {2}, not a quorum`).
/// currentEpoch must be written once the synced txns are durable, before the NEWLEADER ack.
#[test]
fn open_a_learner_writes_current_epoch_before_its_synced_txns_are_durable() {
    known_bug(
        "learner stores currentEpoch on NEWLEADER before the synced txns are durable",
        &[2895],
    );
}
