//! Re-randomized elections: a candidate whose election did not produce a leader tries again
//! after a fresh random delay, so two voters that split the vote once do not keep splitting it.
//!
//! Why this exists. openraft 0.9 draws a node's election timeout once, when the `Raft` is
//! built (`EngineConfig::new`), and checks it only on a tick of 1.5 × `heartbeat_interval`. A
//! candidate that lost (another voter voted for itself in the same term: with
//! `single-term-leader` neither vote outranks the other) starts its next election when that
//! same fixed timeout has passed since its vote changed, on the same tick phase. Two voters
//! whose elections coincided once coincide again, term after term, until the ticks drift apart:
//! failovers of several seconds.
//!
//! What it does. One task per node follows `Raft::metrics()`. While the node is a candidate it
//! turns openraft's own tick-driven elections off (`runtime_config().elect(false)`, which only
//! gates the tick), waits a delay drawn afresh from `[election_timeout_min,
//! election_timeout_max)`, and if the node is still a candidate in the same term, starts the next
//! election with `trigger().elect()`. As soon as the node is anything else (a follower, because
//! it heard from a leader or granted a vote; a leader; a learner) openraft's timer is turned back
//! on: a follower's first election after losing its leader is still openraft's (leader lease,
//! then its timeout), only a candidate's retries are ours.
//!
//! Safety. This changes only *when* a voter campaigns, never how votes are granted: a vote is
//! still granted at most once per term and persisted before it is answered, and with
//! `single-term-leader` a term has at most one leader whoever triggers the election. The one
//! race — the node hears from a new leader between our last look at the metrics and the
//! election starting — makes it campaign in a higher term, which can make that leader step down
//! (as openraft's own timer could); it cannot make two leaders in one term.
//!
//! Not here: the follower's first timeout (openraft's, drawn once), pre-vote (openraft 0.9 has
//! none).

use crate::raft_types::{NodeId, Raft};
use openraft::ServerState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;
use tokio::time::Instant;

/// Starts the task that re-randomizes this node's candidate retries; it ends when Raft shuts
/// down (its metrics channel closes).
pub(crate) fn spawn(
    node_id: NodeId,
    raft: Raft,
    timeout_ms: (u64, u64),
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(node_id, raft, timeout_ms))
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

async fn run(node_id: NodeId, raft: Raft, (min_ms, max_ms): (u64, u64)) {
    let mut metrics = raft.metrics();
    // What we last told openraft, to touch its flag only on a change.
    let mut tick_elections = true;
    loop {
        let (state, term) = {
            let m = metrics.borrow_and_update();
            (m.state, m.current_term)
        };
        let candidate = state == ServerState::Candidate;
        if tick_elections == candidate {
            // Candidate: ours alone decides when to retry. Anything else: openraft's timer.
            raft.runtime_config().elect(!candidate);
            tick_elections = !candidate;
        }
        if !candidate {
            if metrics.changed().await.is_err() {
                return;
            }
            continue;
        }
        let delay = random_delay(min_ms, max_ms);
        let deadline = Instant::now() + delay;
        let still_candidate = |m: &openraft::RaftMetrics<NodeId, openraft::BasicNode>| {
            m.state == ServerState::Candidate && m.current_term == term
        };
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {
                    if still_candidate(&metrics.borrow()) {
                        tracing::info!(node_id, epoch = term, ?delay, "no leader elected in this term: campaigning again");
                        if raft.trigger().elect().await.is_err() {
                            return; // Raft has stopped.
                        }
                    }
                    break;
                }
                changed = metrics.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if !still_candidate(&metrics.borrow()) {
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::random_delay;
    use std::collections::BTreeSet;
    use std::time::Duration;

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
    fn an_empty_range_is_its_minimum() {
        assert_eq!(random_delay(200, 200), Duration::from_millis(200));
    }
}
