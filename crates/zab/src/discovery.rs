//! Discovery, on the leader: agree on a new epoch with a quorum (Leader.getEpochToPropose and
//! waitForEpochAck). The new epoch is one more than every accepted epoch the leader has heard
//! of; a learner whose history is more recent than the leader's stops the leader (it cannot
//! lead an ensemble that knows more than it does).

use config::QuorumConfig;
use std::collections::BTreeSet;

/// What a server knows of its history: its current epoch and last logged zxid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateSummary {
    pub current_epoch: i64,
    pub last_zxid: i64,
}

impl StateSummary {
    pub fn is_more_recent_than(&self, other: &StateSummary) -> bool {
        (self.current_epoch, self.last_zxid) > (other.current_epoch, other.last_zxid)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    #[error("follower {sid} is ahead of the leader: its {theirs:?} against our {ours:?}")]
    FollowerAhead {
        sid: u64,
        theirs: StateSummary,
        ours: StateSummary,
    },
}

#[derive(Debug)]
pub struct Discovery {
    my_id: u64,
    config: QuorumConfig,
    ours: StateSummary,
    new_epoch: i64,
    connecting: BTreeSet<u64>,
    epoch_decided: bool,
    acked: BTreeSet<u64>,
    /// Leading by a reconfiguration's hand-off: see [`Discovery::after_hand_off`].
    after_hand_off: bool,
}

impl Discovery {
    /// A leader that has accepted `accepted_epoch` and whose history is `ours`.
    pub fn new(my_id: u64, config: QuorumConfig, accepted_epoch: i64, ours: StateSummary) -> Self {
        let mut d = Discovery {
            my_id,
            config,
            ours,
            new_epoch: accepted_epoch + 1,
            connecting: BTreeSet::new(),
            epoch_decided: false,
            acked: BTreeSet::new(),
            after_hand_off: false,
        };
        d.connecting.insert(my_id);
        d.acked.insert(my_id);
        d
    }

    /// This leader was designated by a reconfiguration, not elected. The designated leader
    /// acknowledged the reconfig, and the old leader committed nothing after it, so whatever
    /// a follower holds beyond our history in our own epoch was never committed (the old
    /// leader's pipelined proposals): the follower is truncated rather than refused. Refusing
    /// it would end the hand-off in a full election.
    pub fn after_hand_off(&mut self) {
        self.after_hand_off = true;
    }

    /// The epoch this leader will propose (final once [`Discovery::on_learner_info`] said so).
    pub fn new_epoch(&self) -> i64 {
        self.new_epoch
    }

    /// A learner's FOLLOWERINFO/OBSERVERINFO with the epoch it has accepted (None: a learner
    /// that is no member of the configurations, whose epoch must not count). Returns the new
    /// epoch once a quorum of voters (the leader included) has connected: send LEADERINFO
    /// with it to every learner from then on.
    pub fn on_learner_info(&mut self, sid: u64, accepted_epoch: Option<i64>) -> Option<i64> {
        if !self.epoch_decided {
            if let Some(accepted) = accepted_epoch.filter(|&e| e >= self.new_epoch) {
                self.new_epoch = accepted + 1;
            }
            if self.config.is_voter(sid) {
                self.connecting.insert(sid);
            }
            if self.config.contains_quorum(&self.connecting) {
                self.epoch_decided = true;
            }
        }
        self.epoch_decided.then_some(self.new_epoch)
    }

    /// A learner's ACKEPOCH: its current epoch (-1 when it had already accepted the new
    /// epoch, which does not count as a vote) and last zxid. Ok(true) once a quorum acked.
    pub fn on_ack_epoch(&mut self, sid: u64, theirs: StateSummary) -> Result<bool, DiscoveryError> {
        if theirs.current_epoch != -1 {
            let uncommitted_tail =
                self.after_hand_off && theirs.current_epoch == self.ours.current_epoch;
            if theirs.is_more_recent_than(&self.ours) && !uncommitted_tail {
                return Err(DiscoveryError::FollowerAhead {
                    sid,
                    theirs,
                    ours: self.ours,
                });
            }
            if self.config.is_voter(sid) {
                self.acked.insert(sid);
            }
        }
        Ok(self.config.contains_quorum(&self.acked))
    }

    pub fn my_id(&self) -> u64 {
        self.my_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::parse_properties;

    fn config() -> QuorumConfig {
        let text = "server.1=h:1:2\nserver.2=h:3:4\nserver.3=h:5:6\nserver.4=h:7:8:observer\n";
        QuorumConfig::from_properties(&parse_properties(text, "t").unwrap()).unwrap()
    }

    const OURS: StateSummary = StateSummary {
        current_epoch: 3,
        last_zxid: (3 << 32) + 9,
    };

    #[test]
    fn the_new_epoch_exceeds_every_accepted_epoch_heard_before_a_quorum() {
        let mut d = Discovery::new(3, config(), 3, OURS);
        assert_eq!(
            d.on_learner_info(4, Some(7)),
            None,
            "an observer does not make a quorum"
        );
        assert_eq!(
            d.on_learner_info(1, Some(5)),
            Some(8),
            "observer's epoch 7 was heard"
        );
        // later learners are told the same epoch
        assert_eq!(d.on_learner_info(2, Some(9)), Some(8));
    }

    #[test]
    fn epoch_acks_from_a_quorum_establish_and_a_follower_ahead_stops_the_leader() {
        let mut d = Discovery::new(3, config(), 3, OURS);
        d.on_learner_info(1, Some(3));
        assert_eq!(
            d.on_ack_epoch(
                1,
                StateSummary {
                    current_epoch: -1,
                    last_zxid: 0
                }
            ),
            Ok(false)
        );
        assert_eq!(
            d.on_ack_epoch(
                2,
                StateSummary {
                    current_epoch: 3,
                    last_zxid: (3 << 32) + 2
                }
            ),
            Ok(true)
        );
        let mut d = Discovery::new(3, config(), 3, OURS);
        let ahead = StateSummary {
            current_epoch: 3,
            last_zxid: (3 << 32) + 10,
        };
        assert!(matches!(
            d.on_ack_epoch(1, ahead),
            Err(DiscoveryError::FollowerAhead { sid: 1, .. })
        ));
    }

    #[test]
    fn after_a_hand_off_a_follower_ahead_in_our_epoch_is_truncated_not_refused() {
        let ahead = StateSummary {
            current_epoch: 3,
            last_zxid: (3 << 32) + 10,
        };
        let mut d = Discovery::new(3, config(), 3, OURS);
        d.after_hand_off();
        assert_eq!(d.on_ack_epoch(1, ahead), Ok(true));
        // a later epoch is still refused: that history is not the old leader's tail
        let mut d = Discovery::new(3, config(), 4, OURS);
        d.after_hand_off();
        let later = StateSummary {
            current_epoch: 4,
            last_zxid: (4 << 32) + 1,
        };
        assert!(matches!(
            d.on_ack_epoch(1, later),
            Err(DiscoveryError::FollowerAhead { sid: 1, .. })
        ));
    }
}
