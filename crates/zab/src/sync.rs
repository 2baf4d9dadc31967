//! How a leader brings a learner up to date (ZooKeeper's LearnerHandler.syncFollower and
//! queueCommittedProposals): from the learner's last logged zxid and the leader's window of
//! recently committed txns, choose DIFF (send what it lacks), TRUNC (drop what it has that
//! was never committed, then send what it lacks) or SNAP (send the whole tree).

/// The first packet of the synchronization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStart {
    /// Keep your log; the committed txns that follow take you to this zxid.
    Diff(i64),
    /// Truncate your log to this zxid first.
    Trunc(i64),
    /// Replace your state with the snapshot that follows.
    Snap,
}

/// What to send: the first packet, then (for DIFF and TRUNC) the committed txns from
/// `committed[send_from..]` as PROPOSAL + COMMIT pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPlan {
    pub start: SyncStart,
    pub send_from: usize,
}

impl SyncPlan {
    fn snap(committed: &[i64]) -> SyncPlan {
        SyncPlan {
            start: SyncStart::Snap,
            send_from: committed.len(),
        }
    }
}

fn epoch(zxid: i64) -> i64 {
    zxid >> 32
}

/// Chooses the synchronization of a learner whose last logged zxid is `peer_last`.
/// `committed` holds the zxids of the leader's in-memory committed log, ascending;
/// `last_processed` is the leader's last applied zxid.
pub fn plan_sync(peer_last: i64, last_processed: i64, committed: &[i64]) -> SyncPlan {
    assert!(
        committed.windows(2).all(|w| w[0] < w[1]),
        "committed zxids ascend"
    );
    let (min, max) = match (committed.first(), committed.last()) {
        (Some(&min), Some(&max)) => (min, max),
        _ => (last_processed, last_processed),
    };
    // a learner that only saw a NEWLEADER of its epoch (counter 0) has nothing to drop
    let peer_at_new_epoch = peer_last & 0xffff_ffff == 0;
    if peer_last == last_processed {
        return SyncPlan {
            start: SyncStart::Diff(peer_last),
            send_from: committed.len(),
        };
    }
    if peer_last > max && !peer_at_new_epoch {
        return SyncPlan {
            start: SyncStart::Trunc(max),
            send_from: committed.len(),
        };
    }
    if !(min <= peer_last && peer_last <= max) {
        // older than the window (a txn-log walk is a later optimisation): send the tree
        return SyncPlan::snap(committed);
    }
    let mut previous = -1;
    for (i, &zxid) in committed.iter().enumerate() {
        if zxid < peer_last {
            previous = zxid;
            continue;
        }
        if zxid == peer_last {
            // the learner has exactly our prefix up to here
            return SyncPlan {
                start: SyncStart::Diff(max),
                send_from: i + 1,
            };
        }
        if peer_at_new_epoch {
            return SyncPlan {
                start: SyncStart::Diff(max),
                send_from: i,
            };
        }
        // the learner logged txns we never committed: it must drop them, but never across an
        // epoch boundary
        if epoch(zxid) != epoch(peer_last) {
            return SyncPlan::snap(committed);
        }
        return SyncPlan {
            start: SyncStart::Trunc(previous),
            send_from: i,
        };
    }
    if peer_at_new_epoch {
        SyncPlan {
            start: SyncStart::Diff(max),
            send_from: committed.len(),
        }
    } else {
        // nothing in the window reaches the learner's zxid: ZooKeeper falls back to SNAP
        SyncPlan::snap(committed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const E1: i64 = 1 << 32;
    const E2: i64 = 2 << 32;

    use proptest::prelude::*;

    proptest! {
        /// Whatever the learner logged (a prefix of the committed history, maybe followed by
        /// txns that were never committed), following the plan leaves it with exactly the
        /// leader's committed history.
        #[test]
        fn following_the_plan_always_converges(
            epochs in proptest::collection::vec(1usize..5, 1..4),
            prefix in 0usize..12,
            window_start in 0usize..12,
            uncommitted in 0usize..3,
        ) {
            let mut history = Vec::new();
            for (e, &n) in epochs.iter().enumerate() {
                for c in 1..=n {
                    // committed counters leave gaps where a learner may hold uncommitted txns
                    history.push(((e as i64 + 1) << 32) + 10 * c as i64);
                }
            }
            let k = prefix.min(history.len());
            let mut learner: Vec<i64> = history[..k].to_vec();
            let base = learner.last().copied().unwrap_or(1 << 32);
            for u in 1..=uncommitted as i64 {
                learner.push(base + u); // same epoch, between committed zxids
            }
            let peer_last = learner.last().copied().unwrap_or(0);
            let w = window_start.min(history.len());
            let window = &history[w..];
            let last = *history.last().unwrap();
            let plan = plan_sync(peer_last, last, window);
            let result: Vec<i64> = match plan.start {
                SyncStart::Snap => history.clone(),
                SyncStart::Diff(_) => {
                    let mut l = learner.clone();
                    l.extend_from_slice(&window[plan.send_from..]);
                    l
                }
                SyncStart::Trunc(z) => {
                    let mut l: Vec<i64> = learner.iter().copied().filter(|&x| x <= z).collect();
                    l.extend_from_slice(&window[plan.send_from..]);
                    l
                }
            };
            prop_assert_eq!(result, history, "plan {:?} for learner {:x?}", plan, learner);
        }
    }

    #[test]
    fn an_up_to_date_learner_gets_an_empty_diff() {
        let log = [E1 + 1, E1 + 2, E1 + 3];
        assert_eq!(
            plan_sync(E1 + 3, E1 + 3, &log),
            SyncPlan {
                start: SyncStart::Diff(E1 + 3),
                send_from: 3
            }
        );
    }

    #[test]
    fn a_lagging_learner_gets_the_txns_it_lacks() {
        let log = [E1 + 1, E1 + 2, E1 + 3, E1 + 4];
        assert_eq!(
            plan_sync(E1 + 2, E1 + 4, &log),
            SyncPlan {
                start: SyncStart::Diff(E1 + 4),
                send_from: 2
            }
        );
    }

    #[test]
    fn a_learner_ahead_of_the_leader_truncates() {
        let log = [E1 + 1, E1 + 2];
        // it logged E1+3, which was never committed
        assert_eq!(
            plan_sync(E1 + 3, E1 + 2, &log),
            SyncPlan {
                start: SyncStart::Trunc(E1 + 2),
                send_from: 2
            }
        );
    }

    #[test]
    fn an_uncommitted_txn_inside_the_window_is_truncated_then_the_rest_is_sent() {
        // the learner logged E1+5 (never committed); the leader committed E1+4 then E2+1
        let log = [E1 + 3, E1 + 4, E1 + 6];
        assert_eq!(
            plan_sync(E1 + 5, E1 + 6, &log),
            SyncPlan {
                start: SyncStart::Trunc(E1 + 4),
                send_from: 2
            }
        );
        // across an epoch boundary a TRUNC is never sent: SNAP instead
        let log = [E1 + 3, E1 + 4, E2 + 1];
        assert_eq!(plan_sync(E1 + 5, E2 + 1, &log).start, SyncStart::Snap);
    }

    #[test]
    fn a_learner_older_than_the_window_gets_a_snapshot() {
        let log = [E2 + 10, E2 + 11];
        assert_eq!(plan_sync(E1 + 7, E2 + 11, &log).start, SyncStart::Snap);
    }

    #[test]
    fn a_learner_at_a_new_epoch_boundary_gets_a_diff() {
        let log = [E1 + 1, E2 + 1, E2 + 2];
        assert_eq!(
            plan_sync(E2, E2 + 2, &log),
            SyncPlan {
                start: SyncStart::Diff(E2 + 2),
                send_from: 1
            }
        );
    }

    #[test]
    fn an_empty_window_diffs_an_equal_learner_and_truncates_a_longer_one() {
        assert_eq!(
            plan_sync(E1 + 4, E1 + 4, &[]).start,
            SyncStart::Diff(E1 + 4)
        );
        assert_eq!(
            plan_sync(E1 + 9, E1 + 4, &[]).start,
            SyncStart::Trunc(E1 + 4)
        );
        assert_eq!(plan_sync(E1 + 1, E1 + 4, &[]).start, SyncStart::Snap);
    }
}
