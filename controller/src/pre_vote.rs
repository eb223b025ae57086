//! Pre-vote (Raft thesis §9.6), which openraft 0.9 lacks: a voter asks the others whether they
//! would vote for it before it starts an election, and starts one only on a majority.
//!
//! Why. An election raises the candidate's term whether it wins or not, and a leader that meets
//! a higher term steps down. A voter that was paused (SIGSTOP, a long stall) or cut off misses
//! the leader's heartbeats, so its election timer fires; without this guard it campaigns at
//! once, and even though the others refuse it (their leader lease has not expired), its raised
//! term reaches the healthy leader through the next append's answer and deposes it. With it, the
//! others refuse the *pre*-vote — they heard from a leader within the minimum election timeout —
//! so the returning voter's term never moves and it simply follows the leader again.
//!
//! How. openraft's own election timer is off for good (`Config::enable_elect = false`); the
//! election task ([`crate::election`]) runs the timer and calls [`PreVote::round`] before every
//! campaign, then `Raft::trigger().elect()` on a majority. A voter answers with
//! [`PreVote::grant`]: yes only if it is not the leader, has not heard from a leader within the
//! minimum election timeout (openraft refreshes the vote's timestamp on every append from the
//! leader it follows), and the candidate's last log id is at least its own. Answering changes
//! nothing on the voter: no term, no vote, nothing persisted.
//!
//! Safety is untouched: pre-vote only decides *whether* a node campaigns; votes are granted by
//! openraft as before (once per term, persisted before the answer).

use crate::log_store::LogStore;
use crate::network::Network;
use crate::raft_types::{LogId, NodeId, Raft};
use openraft::{RaftNetworkFactory, ServerState};
use std::collections::BTreeSet;
use std::time::Duration;

/// One node's pre-vote: asking (the election task) and answering (the controller listener).
#[derive(Clone)]
pub(crate) struct PreVote {
    node_id: NodeId,
    raft: Raft,
    log: LogStore,
    network: Network,
    /// The minimum election timeout: a voter that heard from a leader more recently refuses.
    quiet: Duration,
}

impl std::fmt::Debug for PreVote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreVote")
            .field("node_id", &self.node_id)
            .field("quiet", &self.quiet)
            .finish_non_exhaustive()
    }
}

/// What a voter knows when it answers a pre-vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VoterView {
    pub is_leader: bool,
    /// How long ago this voter last heard from the leader it follows (`None`: it follows none —
    /// its vote is not a leader's).
    pub since_leader: Option<Duration>,
    pub last_log_id: Option<LogId>,
}

/// The pre-vote rule: whether a voter in `view` grants a candidate whose last log id is
/// `candidate_log`.
pub(crate) fn grants(view: &VoterView, quiet: Duration, candidate_log: Option<&LogId>) -> bool {
    !view.is_leader
        && view.since_leader.is_none_or(|d| d >= quiet)
        && candidate_log >= view.last_log_id.as_ref()
}

/// Whether `granted` holds a majority of every configuration of `configs` (joint consensus has
/// two).
pub(crate) fn majority(configs: &[BTreeSet<NodeId>], granted: &BTreeSet<NodeId>) -> bool {
    !configs.is_empty()
        && configs
            .iter()
            .all(|c| c.iter().filter(|n| granted.contains(n)).count() * 2 > c.len())
}

impl PreVote {
    pub(crate) fn new(
        node_id: NodeId,
        raft: Raft,
        log: LogStore,
        network: Network,
        quiet: Duration,
    ) -> PreVote {
        PreVote {
            node_id,
            raft,
            log,
            network,
            quiet,
        }
    }

    /// This node as a voter sees itself now.
    async fn view(&self) -> Option<VoterView> {
        let (is_leader, since_leader) = self
            .raft
            .with_raft_state(|st| {
                let since = if st.vote_ref().is_committed() {
                    Some(
                        st.vote_last_modified()
                            .map_or(Duration::MAX, |t| tokio::time::Instant::now() - t),
                    )
                } else {
                    None
                };
                (st.server_state == ServerState::Leader, since)
            })
            .await
            .ok()?;
        Some(VoterView {
            is_leader,
            since_leader,
            last_log_id: self.log.last_log_id().await.ok()?,
        })
    }

    /// The answer to `candidate`'s pre-vote with its last log id `candidate_log`.
    pub(crate) async fn grant(&self, candidate: NodeId, candidate_log: Option<LogId>) -> bool {
        let Some(view) = self.view().await else {
            return false;
        };
        let granted = grants(&view, self.quiet, candidate_log.as_ref());
        tracing::debug!(
            node_id = self.node_id,
            candidate,
            granted,
            ?view,
            "pre-vote"
        );
        granted
    }

    /// Asks every other voter (each within the minimum election timeout): true if this node and
    /// the voters that granted make a majority of every configuration.
    pub(crate) async fn round(&self) -> bool {
        let (configs, nodes, vote) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            let membership = m.membership_config.membership();
            (
                membership.get_joint_config().clone(),
                membership
                    .nodes()
                    .map(|(id, n)| (*id, n.clone()))
                    .collect::<Vec<_>>(),
                m.vote,
            )
        };
        if !configs.iter().any(|c| c.contains(&self.node_id)) {
            return false;
        }
        let Ok(last_log_id) = self.log.last_log_id().await else {
            return false;
        };
        let term = vote.leader_id().term + 1;
        let voters: BTreeSet<NodeId> = configs.iter().flatten().copied().collect();
        let mut asks = tokio::task::JoinSet::new();
        for (id, node) in nodes {
            if id == self.node_id || !voters.contains(&id) {
                continue;
            }
            let mut network = self.network.clone();
            let (me, quiet) = (self.node_id, self.quiet);
            asks.spawn(async move {
                let mut client = network.new_client(id, &node).await;
                let answer =
                    tokio::time::timeout(quiet, client.pre_vote(term, me, last_log_id.as_ref()))
                        .await;
                (id, matches!(answer, Ok(Ok(true))))
            });
        }
        let mut granted = BTreeSet::from([self.node_id]);
        while let Some(r) = asks.join_next().await {
            if let Ok((id, true)) = r {
                granted.insert(id);
            }
            if majority(&configs, &granted) {
                break; // The rest are dropped with the set.
            }
        }
        let won = majority(&configs, &granted);
        tracing::info!(
            node_id = self.node_id,
            epoch = term,
            ?granted,
            won,
            "pre-vote round"
        );
        won
    }
}

#[cfg(test)]
mod tests {
    use super::{grants, majority, VoterView};
    use crate::raft_types::LogId;
    use openraft::CommittedLeaderId;
    use std::collections::BTreeSet;
    use std::time::Duration;

    fn log(term: u64, index: u64) -> Option<LogId> {
        Some(LogId::new(CommittedLeaderId::new(term, 0), index))
    }

    #[test]
    fn a_voter_grants_only_without_a_recent_leader_and_with_no_more_log() {
        let quiet = Duration::from_millis(150);
        let base = VoterView {
            is_leader: false,
            since_leader: Some(Duration::from_millis(400)),
            last_log_id: log(3, 10),
        };
        // (case, view, candidate's log, granted)
        let cases = [
            ("leader long gone, same log", base, log(3, 10), true),
            ("longer candidate log", base, log(3, 11), true),
            ("higher last term", base, log(4, 2), true),
            ("shorter candidate log", base, log(3, 9), false),
            ("older last term", base, log(2, 50), false),
            ("empty candidate log", base, None, false),
            (
                "heard from the leader 20 ms ago",
                VoterView {
                    since_leader: Some(Duration::from_millis(20)),
                    ..base
                },
                log(3, 10),
                false,
            ),
            (
                "exactly the quiet time",
                VoterView {
                    since_leader: Some(quiet),
                    ..base
                },
                log(3, 10),
                true,
            ),
            (
                "follows no leader",
                VoterView {
                    since_leader: None,
                    ..base
                },
                log(3, 10),
                true,
            ),
            (
                "is the leader",
                VoterView {
                    is_leader: true,
                    ..base
                },
                log(9, 99),
                false,
            ),
            (
                "both empty",
                VoterView {
                    last_log_id: None,
                    ..base
                },
                None,
                true,
            ),
        ];
        for (name, view, candidate, want) in cases {
            assert_eq!(grants(&view, quiet, candidate.as_ref()), want, "{name}");
        }
    }

    #[test]
    fn a_majority_of_every_configuration() {
        let set = |v: &[u64]| v.iter().copied().collect::<BTreeSet<_>>();
        let three = vec![set(&[1, 2, 3])];
        assert!(!majority(&three, &set(&[1])));
        assert!(majority(&three, &set(&[1, 3])));
        assert!(!majority(&[set(&[1, 2, 3, 4])], &set(&[1, 2])));
        assert!(majority(&[set(&[1])], &set(&[1])));
        // Joint: {1,2,3} and {3,4,5}.
        let joint = vec![set(&[1, 2, 3]), set(&[3, 4, 5])];
        assert!(!majority(&joint, &set(&[1, 2])));
        assert!(majority(&joint, &set(&[1, 3, 4])));
        assert!(!majority(&[], &set(&[1])));
    }
}
