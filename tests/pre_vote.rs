//! Pre-vote: a controller voter back from a pause must not depose a healthy active controller.
//!
//! Three combined nodes (three voters). A voter that is not the active controller is SIGSTOPped
//! well past its election timeout (150–300 ms after the 300 ms leader lease), then SIGCONTed. Its
//! election timer fires the moment it runs again, before the leader's next append arrives; it
//! asks the others for a pre-vote, they refuse (they heard from the leader within the minimum
//! election timeout), and it never raises its term. Throughout and after, every node's
//! DescribeQuorum names the same leader in the same epoch. Without the guard the returning
//! voter campaigned in a higher term, and the leader stepped down on the answer to its next
//! append (`controller/src/pre_vote.rs`).
//!
//! Then the active controller itself is SIGSTOPped: the others do elect a new one (a pre-vote
//! does not stop a real failover), and the old one follows it when it resumes.

mod common;

use common::{active_controller_and_epoch, Cluster, Deadline};
use std::time::{Duration, Instant};

/// (leader, epoch) as node `via` reports it, if it answers.
fn quorum(cluster: &Cluster, via: i32) -> Option<(i32, i32)> {
    active_controller_and_epoch(cluster.node(via).addr(), Duration::from_secs(2)).ok()
}

/// Waits until every node in `nodes` reports the same leader (> 0): that leader and epoch.
fn agreed(cluster: &Cluster, nodes: &[i32]) -> (i32, i32) {
    let deadline = Deadline::after(Duration::from_secs(30));
    loop {
        let seen: Vec<_> = nodes.iter().map(|&n| quorum(cluster, n)).collect();
        if let Some(Some(first)) = seen.first() {
            if first.0 > 0 && seen.iter().all(|s| s == &Some(*first)) {
                return *first;
            }
        }
        deadline.check(|| format!("nodes {nodes:?} agree on a leader: {seen:?}"));
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_paused_voter_does_not_depose_the_active_controller() {
    let _one = common::one_cluster_at_a_time();
    let mut cluster = Cluster::start(3, &[]);
    cluster.wait_ready(Duration::from_secs(60));
    let (leader, epoch) = agreed(&cluster, &[1, 2, 3]);
    // Pauses of about 3 and 6 election timeouts (with the lease), and one past the broker
    // session (the paused node's broker is fenced meanwhile: that is no controller change).
    for pause in [Duration::from_millis(1000), Duration::from_millis(2000)] {
        let voter = (1..=3).find(|&n| n != leader).expect("a follower");
        let watchers: Vec<i32> = (1..=3).filter(|&n| n != voter).collect();
        cluster.node(voter).pause();
        let paused = Instant::now();
        while paused.elapsed() < pause {
            for &w in &watchers {
                let q = quorum(&cluster, w);
                assert!(
                    q.is_none() || q == Some((leader, epoch)),
                    "node {w} saw {q:?} while voter {voter} was paused (was {:?})\n{}",
                    (leader, epoch),
                    cluster.logs(30)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        cluster.node(voter).resume();
        // Watch every node for two seconds after the resume: its timer has fired, and any
        // campaign would have raised the epoch by now.
        let resumed = Instant::now();
        while resumed.elapsed() < Duration::from_secs(2) {
            for w in 1..=3 {
                let q = quorum(&cluster, w);
                assert!(
                    q.is_none()
                        || q == Some((leader, epoch))
                        || (w == voter && q.is_some_and(|q| q.1 <= epoch)),
                    "node {w} saw {q:?} after voter {voter} resumed from {pause:?} (was {:?})\n{}",
                    (leader, epoch),
                    cluster.logs(40)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            agreed(&cluster, &[1, 2, 3]),
            (leader, epoch),
            "voter {voter} back from {pause:?}"
        );
        cluster.wait_ready(Duration::from_secs(60));
    }

    // The active controller itself paused: a real failover still happens.
    let others: Vec<i32> = (1..=3).filter(|&n| n != leader).collect();
    cluster.node(leader).pause();
    let paused = Instant::now();
    let (new_leader, new_epoch) = agreed(&cluster, &others);
    let took = paused.elapsed();
    eprintln!("active controller {leader} paused: node {new_leader} leads epoch {new_epoch} after {took:?}");
    assert_ne!(new_leader, leader);
    assert!(new_epoch > epoch);
    cluster.node(leader).resume();
    assert_eq!(agreed(&cluster, &[1, 2, 3]), (new_leader, new_epoch));
    assert!(took < Duration::from_secs(10), "failover took {took:?}");
}
