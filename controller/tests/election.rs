//! Leader election and failover over real TCP on 127.0.0.1, nodes in-process: 3 and 5 voters
//! elect one leader; the leader is killed (`shutdown()`), a new one is elected and commits a
//! write; again and again. Every `(term, leader)` any node reports during the whole test is
//! recorded (`common::History`), and no term may have two leaders (invariant 5).

mod common;

use common::*;
use std::time::{Duration, Instant};

/// The tests of this file run one at a time: each runs a cluster that fsyncs every vote and
/// entry, and `failover_takes_under_a_second` measures time, which a neighbour's cluster on
/// the same two cores and disk would stretch.
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A write that commits records: registering a new broker id. Returns the broker epoch (the
/// offset its record was committed at).
async fn write(c: &Cluster, client: &mut LeaderClient, cluster_id: &str, broker_id: i32) -> i64 {
    let epoch = register(client, cluster_id, broker_id).await;
    // The record reached every running node.
    c.converged(Duration::from_secs(10), epoch).await;
    for n in c.nodes.values() {
        assert!(
            n.image().broker(broker_id).is_some(),
            "broker {broker_id} missing on node {}",
            n.node_id()
        );
    }
    epoch
}

/// `rounds` times: kill the leader, wait for a new one, commit a write through it. With 5
/// voters the killed leader stays down for one more round, so two voters are down at once.
/// Returns, for each round, how long the kill took to become a new elected leader and a
/// committed write.
async fn failover_rounds(
    voters: u64,
    rounds: usize,
    options: Options,
) -> Vec<(Duration, Duration)> {
    let mut c = Cluster::start_with(voters, options).await;
    let first = c.leader(ELECTION_WAIT).await;
    let cluster_id = c.cluster_id(Duration::from_secs(10)).await;
    let mut client = c.client();
    let mut broker_id = 1;
    write(&c, &mut client, &cluster_id, broker_id).await;
    let mut leaders = vec![first];
    let mut down: Vec<u64> = Vec::new();
    let mut failovers = Vec::new();
    for round in 0..rounds {
        let old = c.leader(ELECTION_WAIT).await;
        let old_term = c.node(old).quorum_info().term;
        c.stop(old).await;
        down.push(old);
        let t = Instant::now();
        let new = c.leader(ELECTION_WAIT).await;
        let elected = t.elapsed();
        assert_ne!(new, old);
        let new_term = c.node(new).quorum_info().term;
        assert!(
            new_term > old_term,
            "new leader {new} in term {new_term}, old {old} was in {old_term}"
        );
        broker_id += 1;
        let epoch = register(&mut client, &cluster_id, broker_id).await;
        let committed = t.elapsed();
        assert!(epoch > 0);
        failovers.push((elected, committed));
        leaders.push(new);
        println!(
            "round {round}: killed {old} (term {old_term}); {new} leads term {new_term}; elected in {elected:?}, write committed after {committed:?}"
        );
        // Keep a majority of the voters up: bring back the oldest casualty when the next kill
        // would leave too few.
        let majority = (voters / 2 + 1) as usize;
        while c.up().len() - 1 < majority {
            let back = down.remove(0);
            c.restart(back).await;
        }
        let up_offset = c.node(new).image().offset();
        c.converged(Duration::from_secs(20), up_offset).await;
    }
    for id in down.drain(..) {
        c.restart(id).await;
    }
    // Every node, old leaders included, holds every write.
    broker_id += 1;
    let epoch = write(&c, &mut client, &cluster_id, broker_id).await;
    let image = c.converged(Duration::from_secs(20), epoch).await;
    assert_eq!(image.brokers().len(), broker_id as usize);

    c.history.check();
    let terms = c.history.leaders();
    assert!(
        terms.len() > rounds,
        "expected more than {rounds} terms with a leader, saw {terms:?}"
    );
    let (metrics, images, offsets) = c.history.sample_counts();
    println!("{voters} voters: leaders by term {terms:?}; failovers {failovers:?}; {metrics} metrics samples, {images} image samples at {offsets} offsets");
    c.shutdown().await;
    failovers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_voters_fail_over_again_and_again() {
    let _alone = ONE_CLUSTER_AT_A_TIME.lock().await;
    bounded(
        Duration::from_secs(60),
        "3-voter failovers",
        failover_rounds(3, 4, Options::default()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_voters_fail_over_again_and_again() {
    let _alone = ONE_CLUSTER_AT_A_TIME.lock().await;
    bounded(
        Duration::from_secs(90),
        "5-voter failovers",
        failover_rounds(5, 5, Options::default()),
    )
    .await;
}

/// The goal: kill the leader → next committed write in under a second, with election
/// timeouts in 150–300 ms, 15 times in a row. A follower campaigns once the dead leader's lease
/// (300 ms) and its own timeout have passed (450–675 ms with openraft's 75 ms tick); when two
/// followers campaign at once and split the vote, each retries after a delay drawn afresh
/// (`controller/src/election.rs`), so a split costs one retry (50–200 ms, then wider) instead of
/// repeating term after term as it did when openraft's once-drawn timeout alone decided
/// (failovers of up to ~6 s). What remains is the disk: every vote and the new leader's first
/// entry are fsynced, and fsyncs of 100–300 ms (a machine busy with other builds) can still
/// push a failover past a second (allowed twice in 15). `RAFKA_TEST_HEARTBEAT_MS` changes the
/// heartbeat interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failover_takes_under_a_second() {
    let _alone = ONE_CLUSTER_AT_A_TIME.lock().await;
    let heartbeat_interval_ms = std::env::var("RAFKA_TEST_HEARTBEAT_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let options = Options {
        heartbeat_interval_ms,
        ..Options::default()
    };
    let failovers = bounded(
        Duration::from_secs(120),
        "failovers",
        failover_rounds(3, 15, options),
    )
    .await;
    // At most two of the 15 at a second or more, none at two: a repeating split vote (the
    // multi-second tail this test exists for) fails it, a fsync stall of a shared CI disk not.
    // The goal itself is measured by the bench (`cargo bench -p rafka-controller --bench quorum
    // -- failover`), which reports every failover.
    let slow: Vec<_> = failovers
        .iter()
        .filter(|(_, committed)| *committed >= Duration::from_secs(1))
        .collect();
    let very_slow = slow
        .iter()
        .filter(|(_, committed)| *committed >= Duration::from_secs(2))
        .count();
    assert!(
        slow.len() <= 2 && very_slow == 0,
        "{} of {} failovers took a second or more ({very_slow} two or more): {slow:?}",
        slow.len(),
        failovers.len()
    );
}
