//! Seeds on which the simulator found bugs. The seeds of fixed bugs run by default (they
//! passed after the fix and failed before it); the precise regression test of each fix is a
//! unit test beside the fix.
//!
//! Seeds of bugs still open run only with `SIM_KNOWN_BUGS=1` (the tests at the end say what
//! they skip); those inside the default range of `seeds.rs` are also in its KNOWN_OPEN. Replay
//! one with its trace: `SIM_SEED=<seed> cargo test -p zkrs-sim --release --test seeds --
//! --nocapture`.

use sim::{run, SimConfig};

fn passes(seed: u64) {
    if let Err(f) = run(&SimConfig::for_seed(seed)) {
        panic!("{f}");
    }
}

/// Runs an open bug's seeds only when asked to, saying what it skips otherwise.
#[allow(dead_code)] // used while a bug is open (none is now)
fn open_bug(what: &str, seeds: &[u64]) {
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

/// zab::learner, ZOOKEEPER-4643. On NEWLEADER the learner wrote currentEpoch at once and
/// logged the synced txns after; a crash in between left the new epoch beside a shorter log,
/// which then won an election and TRUNCated a committed txn away. Fixed: currentEpoch is
/// written once the synced txns are durable, right before the NEWLEADER ack (unit test
/// `a_follower_registers_syncs_by_diff_and_acks_after_durability`).
#[test]
fn a_learner_writes_current_epoch_only_once_its_synced_txns_are_durable() {
    passes(2895);
}

/// zab::peer. A server left a role while fsyncs of its log were in flight, reported
/// `last_durable` (vote, ACKEPOCH) although its log held more, the leader sent those txns
/// again, and the peer asked to log zxids already in its log (the storage refuses a log that
/// does not ascend). Fixed: a txn at or below the last logged zxid is never logged again.
#[test]
fn a_learner_never_logs_again_a_txn_already_in_its_log() {
    for seed in [127, 130, 4287] {
        passes(seed);
    }
}

// ----- fixed in zab::peer (role changes) -----

/// Fixed (zab::peer): at every role change a server cuts from its log the txns beyond its
/// durable or committed history (no one has its ack for them). Was: `become_(Leading)` commits `last_durable` but hands over (and moves to
/// the committed window) every logged txn, also those not yet durable: the Commit's txns run
/// past its zxid, and a later Commit misses the txns moved earlier (`commits 0x20000004e with
/// txns []`). The runtime applies a different set of txns than the leader's history.
#[test]
fn a_new_leader_commits_exactly_its_history() {
    for seed in [2979, 483] {
        passes(seed);
    }
}

/// Fixed (zab::peer): at every role change a server cuts from its log the txns beyond its
/// durable or committed history (no one has its ack for them). Was: A learner's unsynced log tail of an older epoch stays in its log: the
/// leader synchronized it from `last_durable`, never truncated the tail, and new txns are
/// appended after it (`commits 0x400000001 ... its log holds [0x300000042, ...,
/// 0x400000001]`): after a restart the tail is replayed as if committed.
#[test]
fn a_learner_drops_an_unsynced_tail_of_an_older_epoch() {
    passes(216);
}

/// zab::leader: a learner that had accepted a later epoch (from a leader that never
/// established it) refused the established leader's LEADERINFO, looked again, followed the
/// same leader again, forever: it never rejoined ("no progress: server 3 is not serving").
/// Found by seeds 122408 and 124863 of the simulator at 5648013; fixed in a3f8f44 (the leader
/// looks again, so the next epoch exceeds every accepted one; unit test
/// `a_learner_that_accepted_a_later_epoch_makes_the_leader_look_again`). Later changes to the
/// simulator moved those seeds' runs elsewhere: they pass, proving little.
#[test]
fn a_learner_that_accepted_a_later_epoch_rejoins() {
    for seed in [122408, 124863] {
        passes(seed);
    }
}

/// zab::peer. A follower applies COMMITs ahead of its own fsync, so its last committed zxid
/// passed its last durable one; when it then became leader it kept that committed tail but
/// led with `last_durable` as its summary, and the SNAP it sent said 0x200000076 over a tree
/// at 0x20000007b. Fixed: the summary (vote, ACKEPOCH, leader) is the history the server
/// logged (`last_logged`), and until it is durable the leader neither writes the new
/// currentEpoch nor counts its own NEWLEADER ack (`Leader::with_durable`).
#[test]
fn a_new_leader_summarizes_its_history_as_all_it_logged() {
    for seed in [6939, 6768, 143] {
        passes(seed);
    }
}

/// zab::learner. On NEWLEADER a learner applied the txns the sync said were committed before
/// the epoch was established; the leader paused, the epoch never was, and the learner served
/// 0x100000059, which the ensemble never committed. Fixed: the sync's committed txns are
/// applied at UPTODATE (unit test `a_follower_registers_syncs_by_diff_and_acks_after_durability`).
#[test]
fn a_learner_applies_a_syncs_txns_only_once_the_epoch_is_established() {
    passes(9771);
}

// ----- found with random reconfigurations (SimConfig::for_reconfig_seed) -----

fn passes_with_reconfigurations(seed: u64) {
    if let Err(f) = run(&SimConfig::for_reconfig_seed(seed)) {
        panic!("{f}");
    }
}

/// zab::leader: NEWLEADER carried the configuration of a reconfig the leader had proposed
/// and not yet committed; a learner that synced meanwhile activated it at UPTODATE ("server
/// 6 activates configuration 0x10000001b ... but no reconfig was committed there"). Fixed:
/// NEWLEADER carries a pending configuration only when it comes from the leader's history
/// (unit test `a_learner_synced_during_a_reconfig_gets_the_active_configuration_with_newleader`).
#[test]
fn a_learner_never_activates_a_reconfig_still_in_flight() {
    for seed in [4, 8, 21, 79] {
        passes_with_reconfigurations(seed);
    }
}

/// zab::leader: a leader whose history ended with a reconfig no earlier leader committed
/// committed it with its history but never activated it: it went on requiring both quorums,
/// refused every later reconfig as in progress, and ran an older configuration than its
/// learners (NEWLEADER told them). Fixed: activated once the epoch is established, with a
/// designated leader, as ZooKeeper's Leader.lead does (unit test
/// `a_reconfig_of_the_history_is_activated_once_the_epoch_is_established`).
#[test]
fn a_leader_activates_the_reconfig_its_history_ends_with() {
    for seed in [84, 24, 30, 60, 70, 71, 74] {
        passes_with_reconfigurations(seed);
    }
}

/// zab::learner / zab::peer: a learner took NEWLEADER's configuration (a reconfig ending the
/// leader's history) only at UPTODATE; that leader never established its epoch, the learner
/// later led with the reconfig committed in its history (it came in a SNAP) but not as its
/// last seen configuration, and never activated it: at the end everyone ran an older
/// configuration than the one committed. Fixed: NEWLEADER makes it the last seen one at once
/// (unit test `newleader_makes_a_reconfigs_configuration_the_last_seen_one`).
#[test]
fn a_learner_keeps_newleaders_reconfig_as_its_last_seen_configuration() {
    passes_with_reconfigurations(308);
}

/// zab::leader / zab::broadcast: proposals made while a reconfig was pending waited for a
/// quorum of the old configuration too, even after the reconfig committed; when it had made
/// followers observers (or removed them), those quorums never came and nothing committed
/// again ("the final write was not acknowledged"). Fixed: once the reconfig is active and we
/// still lead, they need the new configuration's quorum only (unit test
/// `after_a_reconfig_commits_the_later_proposals_need_only_the_new_quorum`).
#[test]
fn proposals_after_a_committed_reconfig_need_only_the_new_quorum() {
    for seed in [471, 904, 1178] {
        passes_with_reconfigurations(seed);
    }
}

/// Reconfig seed 68 (22 failed the same way before the fix for 471 moved its run): after a
/// reconfig is proposed and its leader fails before it commits, every server elects with both
/// configurations; a server that votes only in the proposed one backed itself while the
/// others refused it (`total_order` asked the committed configuration alone, as ZooKeeper's
/// totalOrderPredicate does), and the proposed configuration's quorum needed it: nobody was
/// ever elected. Fixed: a candidate is eligible when it votes in any configuration in force.
#[test]
fn an_election_with_a_pending_configuration_elects_someone() {
    passes_with_reconfigurations(68);
}

/// Reconfig seeds 900, 1140, 1569: a server whose log ends with a reconfig the ensemble
/// abandoned (its leader failed before it committed; the others elected without it) kept
/// that configuration as proposed and, looking, needed a quorum of it too to join the
/// established leader, whose voters never provided it: it looked forever. Fixed: a proposed
/// configuration from an epoch before the established leader's counts as abandoned when
/// joining it.
#[test]
fn a_server_with_an_abandoned_reconfig_in_its_log_rejoins() {
    for seed in [900, 1140, 1569] {
        passes_with_reconfigurations(seed);
    }
}

/// Reconfig seeds 35087 and 41689: a learner that received COMMITANDACTIVATE between NEWLEADER
/// and UPTODATE committed more than the 500-txn window at UPTODATE, then looked the reconfig
/// txn up in that window, found it evicted, and never activated the configuration: it
/// followed the leader on an old configuration to the end. Fixed: the last committed reconfig
/// is kept apart (unit test
/// `a_learner_activates_a_reconfig_committed_before_uptodate_behind_many_txns`).
#[test]
fn a_learner_activates_a_reconfig_committed_just_before_a_large_sync() {
    for seed in [35087, 41689] {
        passes_with_reconfigurations(seed);
    }
}
