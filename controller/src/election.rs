//! When this voter campaigns. openraft's own election timer is off (`enable_elect = false`):
//! every election starts here, and only after a pre-vote majority ([`crate::pre_vote`]), so a
//! voter back from a pause or a partition never raises the term of a healthy quorum.
//!
//! The timer. A follower campaigns once it has heard nothing from a leader, and not changed its
//! vote, for its election timeout — read from openraft's own vote timestamp, which every append
//! from the leader refreshes: after the leader lease (`max`; openraft's voters refuse every vote
//! before it) and one heartbeat interval, plus a random part in `[0, max − min)`, if it followed
//! a leader (openraft's own timer adds a whole timeout, `[min, max)`), `[min, max)` if it never did, and `[max, 2·max)` if it
//! has just granted its vote to a candidate that has not yet shown itself as leader (that
//! candidate needs time to save its leadership and send its first append — two fsyncs, which on
//! a busy disk outlasted openraft's timeout and let the voter depose the leader it had just
//! elected). The only voter of a one-voter quorum campaigns at once.
//!
//! Re-randomized retries. openraft 0.9 draws a node's election timeout once, when the `Raft` is
//! built, and checks it on a tick of 1.5 × `heartbeat_interval`: two voters whose elections
//! coincided once (a split vote: with `single-term-leader` neither vote outranks the other)
//! coincided again, term after term — failovers of several seconds. A candidate here retries
//! after a delay drawn afresh for every candidacy (see [`Timing::retry_delay`]), widened for each
//! split in a row; after a refusal that showed a longer log it waits a further
//! `2 × election_timeout_max` (openraft's back-off for that case), so a voter that cannot win
//! leaves the others time to elect.
//!
//! What it learns outside the metrics comes through an [`ElectionObserver`]
//! ([`crate::election_observer`]) that the log store and the network feed: the vote being saved (before its fsync, so earlier than the metrics
//! show it) and the answers to this node's vote requests.
//!
//! Safety. This changes only *when* a voter campaigns, never how votes are granted: a vote is
//! still granted at most once per term and persisted before it is answered, and with
//! `single-term-leader` a term has at most one leader whoever triggers the election. The one
//! race left — a leader's append reaches openraft's queue after our last look but before our
//! trigger — makes this node campaign in a higher term, which can make that leader step down; it
//! cannot make two leaders in one term. The pre-vote keeps that window to one round trip.

use crate::election_observer::ElectionObserver;
use crate::pre_vote::PreVote;
use crate::raft_types::{NodeId, Raft};
use openraft::ServerState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;
use tokio::time::Instant;

/// Starts the task that re-randomizes this node's candidate retries; it ends when Raft shuts
/// down (its metrics channel closes). `observer` must be the one given to this node's log store
/// and network.
pub(crate) fn spawn(
    node_id: NodeId,
    raft: Raft,
    timing: Timing,
    observer: ElectionObserver,
    pre_vote: PreVote,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(node_id, raft, timing, observer, pre_vote))
}

/// The node's Raft timings, in ms (`ControllerNodeConfig`'s).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub heartbeat_interval_ms: u64,
}

impl Timing {
    /// How long a candidate waits before campaigning again after `splits` split votes in a row
    /// (1 for the first): at least one heartbeat interval — with five or more voters another
    /// candidate may have won the split term, and its first append (sent at once, then every
    /// heartbeat) should reach us before we start a term that would depose it — plus a random
    /// part as wide as the election timeout's range, doubled for each further split in a row up
    /// to 8× (Kafka's candidates back off exponentially too). The widening matters when saving
    /// a vote is slow: a candidate's requests leave only once its own vote is durable, so two
    /// candidates collide whenever their retries fall within one fsync of each other.
    pub fn retry_delay(&self, splits: u32) -> Duration {
        let width = self
            .election_timeout_max_ms
            .saturating_sub(self.election_timeout_min_ms)
            .max(1)
            << splits.saturating_sub(1).min(3);
        random_delay(
            self.heartbeat_interval_ms,
            self.heartbeat_interval_ms + width,
        )
    }
}

/// A delay in `[min_ms, max_ms)`, at microsecond resolution (so that two nodes' draws almost
/// never coincide the way whole ticks do). Not for anything that needs unpredictability: the
/// source is std's per-process random SipHash keys, which differ per `RandomState`.
pub(crate) fn random_delay(min_ms: u64, max_ms: u64) -> Duration {
    let span_us = max_ms.saturating_sub(min_ms).saturating_mul(1000).max(1);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(span_us);
    Duration::from_micros(min_ms.saturating_mul(1000) + h.finish() % span_us)
}

/// How a wait for a deadline ended.
enum Waited {
    /// The deadline passed with the node in the same state.
    Expired,
    /// The node's state or vote changed first: decide afresh.
    Changed,
    /// Raft stopped.
    Closed,
}

/// Waits until `deadline` unless `same` stops holding for Raft's metrics first.
async fn wait_until(
    deadline: Instant,
    metrics: &mut tokio::sync::watch::Receiver<openraft::RaftMetrics<NodeId, openraft::BasicNode>>,
    same: impl Fn(&openraft::RaftMetrics<NodeId, openraft::BasicNode>) -> bool,
) -> Waited {
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => return Waited::Expired,
            changed = metrics.changed() => {
                if changed.is_err() {
                    return Waited::Closed;
                }
                if !same(&metrics.borrow()) {
                    return Waited::Changed;
                }
            }
        }
    }
}

async fn run(
    node_id: NodeId,
    raft: Raft,
    timing: Timing,
    observer: ElectionObserver,
    pre_vote: PreVote,
) {
    let mut metrics = raft.metrics();
    // openraft's own election timer is off for good (`enable_elect = false` in the node's
    // config): every campaign starts here, after a pre-vote.
    raft.runtime_config().elect(false);
    let started = Instant::now();
    // Split votes since this node was last anything but a candidate.
    let mut splits = 0;
    loop {
        let (state, term, vote, voters) = {
            let m = metrics.borrow_and_update();
            let voters = m
                .membership_config
                .membership()
                .voter_ids()
                .collect::<Vec<_>>();
            (m.state, m.current_term, m.vote, voters)
        };
        let same = move |m: &openraft::RaftMetrics<NodeId, openraft::BasicNode>| {
            m.state == state && m.vote == vote
        };
        if !voters.contains(&node_id)
            || !matches!(state, ServerState::Follower | ServerState::Candidate)
        {
            // A leader, a learner, or not yet initialized: nothing to time.
            splits = 0;
            if metrics.changed().await.is_err() {
                return;
            }
            continue;
        }
        if state == ServerState::Candidate {
            // A candidate whose election has not ended it: retry after a fresh random delay.
            let delay = timing.retry_delay(splits + 1);
            match wait_until(Instant::now() + delay, &mut metrics, same).await {
                Waited::Closed => return,
                Waited::Changed => continue,
                Waited::Expired => {}
            }
            if observer.split_vote(node_id, term) {
                splits += 1;
                tracing::info!(
                    node_id,
                    epoch = term,
                    ?delay,
                    splits,
                    "split vote: campaigning again"
                );
            } else if observer.saw_longer_log(term) {
                // A voter has more log: this node cannot win; give the others time to elect
                // (openraft's own back-off for this case).
                let back_off = Duration::from_millis(2 * timing.election_timeout_max_ms);
                match wait_until(Instant::now() + back_off, &mut metrics, same).await {
                    Waited::Closed => return,
                    Waited::Changed => continue,
                    Waited::Expired => {}
                }
            }
        } else {
            splits = 0;
            // A follower campaigns once it has heard nothing from a leader (nor changed its
            // vote) for its election timeout: just after the leader lease if it followed a
            // leader, and — if it has just granted its vote to a candidate
            // that has not shown itself as leader yet — not before a random point in
            // [max, 2·max), so that the candidate has time to save its leadership and send its
            // first append (two fsyncs on a busy disk can outlast the timeout).
            let granted =
                !vote.is_committed() && vote.leader_id().voted_for().is_some_and(|v| v != node_id);
            let (min, max) = (
                timing.election_timeout_min_ms,
                timing.election_timeout_max_ms,
            );
            let timeout = if voters.len() == 1 {
                Duration::ZERO // The only voter: nobody else can lead.
            } else if granted {
                random_delay(max, 2 * max)
            } else if vote.is_committed() {
                // openraft's voters refuse any vote until their leader lease (`max`) has passed
                // since the leader's last append to *them*, which may have come one heartbeat
                // after ours; after that, a random part as wide as the timeout range keeps the
                // survivors' campaigns apart.
                Duration::from_millis(max + timing.heartbeat_interval_ms)
                    + random_delay(0, max - min)
            } else {
                random_delay(min, max)
            };
            loop {
                let Ok(last) = raft.with_raft_state(|st| st.vote_last_modified()).await else {
                    return;
                };
                let deadline = last.unwrap_or(started) + timeout;
                if deadline <= Instant::now() {
                    break;
                }
                match wait_until(deadline, &mut metrics, same).await {
                    Waited::Closed => return,
                    Waited::Changed => break,
                    // Heard from the leader meanwhile? Look again.
                    Waited::Expired => {}
                }
            }
            if !same(&metrics.borrow()) {
                continue;
            }
        }
        // Campaign only if a majority would vote for this node (see `pre_vote`).
        if !pre_vote.round().await {
            // Refused: a leader is alive (or this node's log is behind). Look again after a
            // fresh election timeout; the leader's next append resets the follower's timer.
            let retry = random_delay(
                timing.election_timeout_min_ms,
                timing.election_timeout_max_ms,
            );
            match wait_until(Instant::now() + retry, &mut metrics, same).await {
                Waited::Closed => return,
                Waited::Changed | Waited::Expired => continue,
            }
        }
        if !same(&metrics.borrow()) {
            continue;
        }
        if raft.trigger().elect().await.is_err() {
            return; // Raft has stopped.
        }
        // Wait for the election to show in the metrics before deciding again.
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{random_delay, ElectionObserver, Timing};
    use crate::raft_types::{LogId, Vote};
    use openraft::raft::{VoteRequest, VoteResponse};
    use openraft::CommittedLeaderId;
    use std::collections::BTreeSet;
    use std::time::Duration;

    fn log(term: u64, index: u64) -> Option<LogId> {
        Some(LogId::new(CommittedLeaderId::new(term, 0), index))
    }

    fn answer(o: &ElectionObserver, term: u64, voter_vote: Vote, voter_log: Option<LogId>) {
        let req = VoteRequest::new(Vote::new(term, 1), log(1, 10));
        let resp = VoteResponse::new(voter_vote, voter_log, false);
        o.vote_answered(&req, &resp);
    }

    #[test]
    fn only_a_split_vote_is_retried_early() {
        let o = ElectionObserver::default();
        o.saving_vote(&Vote::new(5, 1));
        assert!(!o.split_vote(1, 5), "no answer yet");
        // Node 2 voted for itself in term 5, with the same log: a split.
        answer(&o, 5, Vote::new(5, 2), log(1, 10));
        assert!(o.split_vote(1, 5));
        assert!(!o.split_vote(1, 4));
        // Node 1 then granted node 2 a vote in term 6: no longer its own candidacy.
        o.saving_vote(&Vote::new(6, 2));
        assert!(!o.split_vote(1, 5));
    }

    #[test]
    fn a_longer_log_or_a_leader_is_left_to_openraft() {
        let o = ElectionObserver::default();
        o.saving_vote(&Vote::new(7, 1));
        answer(&o, 7, Vote::new(7, 2), log(1, 10));
        answer(&o, 7, Vote::new(6, 3), log(6, 11));
        assert!(!o.split_vote(1, 7), "a voter has more log than this node");

        let o = ElectionObserver::default();
        o.saving_vote(&Vote::new(7, 1));
        let mut leader = Vote::new(7, 2);
        leader.commit();
        answer(&o, 7, leader, log(1, 10));
        assert!(!o.split_vote(1, 7), "node 2 leads term 7");
        // Answers to an older election change nothing; a newer one starts afresh.
        answer(&o, 6, Vote::new(6, 3), log(1, 10));
        assert!(!o.split_vote(1, 7));
        o.saving_vote(&Vote::new(8, 1));
        answer(&o, 8, Vote::new(8, 3), log(1, 10));
        assert!(o.split_vote(1, 8));
    }

    #[test]
    fn delays_are_in_range_and_spread() {
        let draws: Vec<Duration> = (0..1000).map(|_| random_delay(150, 300)).collect();
        assert!(draws
            .iter()
            .all(|d| *d >= Duration::from_millis(150) && *d < Duration::from_millis(300)));
        // Spread over the range: every 15 ms bucket is hit (1000 draws over 10 buckets).
        let buckets: BTreeSet<u128> = draws
            .iter()
            .map(|d| (d.as_micros() - 150_000) / 15_000)
            .collect();
        assert_eq!(buckets.len(), 10, "{buckets:?}");
        // Fresh draws, not one value repeated.
        let distinct: BTreeSet<Duration> = draws.iter().copied().collect();
        assert!(distinct.len() > 900, "{} distinct of 1000", distinct.len());
    }

    #[test]
    fn retries_start_after_a_heartbeat_and_widen_with_each_split() {
        let t = Timing {
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            heartbeat_interval_ms: 50,
        };
        for (splits, max_ms) in [(1, 200), (2, 350), (3, 650), (4, 1250), (9, 1250)] {
            let draws: Vec<Duration> = (0..500).map(|_| t.retry_delay(splits)).collect();
            assert!(draws.iter().all(|d| *d >= Duration::from_millis(50)));
            assert!(draws.iter().all(|d| *d < Duration::from_millis(max_ms)));
            let top = *draws.iter().max().expect("draws");
            assert!(
                top > Duration::from_millis(max_ms - (max_ms - 50) / 4),
                "{splits} splits: the range is used ({top:?})"
            );
        }
    }

    #[test]
    fn an_empty_range_is_its_minimum() {
        assert_eq!(random_delay(200, 200), Duration::from_millis(200));
    }
}
