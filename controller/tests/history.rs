//! A committed metadata record is never lost and never applied twice across leader changes: a
//! history checker over many random kills, over real TCP on 127.0.0.1 with 3 voters in-process.
//!
//! A client keeps allocating producer-id blocks (AllocateProducerIds, one `ProducerIdsRecord`
//! each) from whichever node leads, recording every acknowledged block, while the test kills
//! (`shutdown()`) and restarts random voters — the leader half of the time, for long enough to
//! be replaced or not, now and then two voters at once so the quorum is lost for a moment.
//! Snapshots are taken every 64 entries, so restarts load snapshots and lagging voters get them
//! installed. At the end:
//!
//! - no block was acknowledged twice and no two acknowledged blocks overlap (a lost commit would
//!   hand its block out again);
//! - every acknowledged block is below every node's final `next_producer_id`;
//! - every node holds the same image;
//! - every node's published offsets only grew (per incarnation), and the image at each offset
//!   was the same on every node and incarnation that published it (`common::History`);
//! - no term had two leaders.
//!
//! `RAFKA_TEST_SEED` repeats a run; `RAFKA_TEST_KILLS` changes the number of kill cycles.

mod common;

use common::*;
use rafka_protocol::ErrorCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DEFAULT_KILLS: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_committed_record_is_lost_or_applied_twice_across_random_kills() {
    let kills: usize = std::env::var("RAFKA_TEST_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_KILLS);
    bounded(Duration::from_secs(90), "history check", run(kills)).await;
}

async fn run(kills: usize) {
    let mut rng = Rng::from_env();
    let started = Instant::now();
    let mut c = Cluster::start_with(
        3,
        Options {
            snapshot_every: 64,
            ..Options::default()
        },
    )
    .await;
    let cluster_id = c.cluster_id(Duration::from_secs(10)).await;
    let mut client = c.client();
    let epoch = register(&mut client, &cluster_id, 1).await;
    let hb = Heartbeats::start(
        c.voters.clone(),
        1,
        epoch,
        c.history.max_applied(),
        Duration::from_millis(200),
    );

    // The client: allocate, allocate, allocate; keep what was acknowledged.
    let acked: Arc<Mutex<Vec<(i64, i32)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let allocator = {
        let (acked, stop, voters) = (acked.clone(), stop.clone(), c.voters.clone());
        tokio::spawn(async move {
            let mut client = LeaderClient::new(voters);
            client.attempt_timeout = Duration::from_millis(500);
            let mut unanswered = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match client.try_once(ALLOCATE_V, allocate(1, epoch)).await {
                    Ok(r) => {
                        let r = as_allocate(r);
                        assert_eq!(
                            r.error_code,
                            ErrorCode::None.code(),
                            "allocation refused: {r:?}"
                        );
                        acked
                            .lock()
                            .expect("acked")
                            .push((r.producer_id_start, r.producer_id_len));
                    }
                    Err(_) => {
                        unanswered += 1;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
            unanswered
        })
    };

    let mut two_down = 0;
    let mut leader_kills = 0;
    for cycle in 0..kills {
        let up = c.up();
        let victim = match c.current_leader() {
            Some(l) if rng.chance(50) => {
                leader_kills += 1;
                l
            }
            _ => up[rng.below(up.len() as u64) as usize],
        };
        c.stop(victim).await;
        // Short enough for a leader to come back and resume its term, or long enough for the
        // others to elect a new one.
        let down = if rng.chance(50) {
            rng.millis(0, 300)
        } else {
            rng.millis(400, 900)
        };
        tokio::time::sleep(down).await;
        // Now and then a second voter goes down for a moment: no quorum, no commits.
        if rng.chance(15) {
            let others: Vec<u64> = c.up();
            let second = others[rng.below(others.len() as u64) as usize];
            c.stop(second).await;
            two_down += 1;
            tokio::time::sleep(rng.millis(0, 200)).await;
            c.restart(second).await;
        }
        c.restart(victim).await;
        tokio::time::sleep(rng.millis(50, 300)).await;
        if cycle % 10 == 9 {
            let n = acked.lock().expect("acked").len();
            println!(
                "cycle {}: {n} blocks acknowledged after {:?}",
                cycle + 1,
                started.elapsed()
            );
        }
    }
    // Let the quorum settle and the client get a few more answers from a stable leader.
    let before = acked.lock().expect("acked").len();
    wait_until(
        Duration::from_secs(15),
        "allocations after the last kill",
        || acked.lock().expect("acked").len() >= before + 5,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let unanswered = allocator.await.expect("allocator");
    hb.stop().await;

    let leader = c.leader(ELECTION_WAIT).await;
    let target = c.node(leader).image().offset();
    let image = c.converged(Duration::from_secs(20), target).await;

    let mut blocks = acked.lock().expect("acked").clone();
    let n = blocks.len();
    assert!(
        n >= kills,
        "only {n} blocks acknowledged over {kills} kill cycles"
    );
    blocks.sort_unstable();
    for w in blocks.windows(2) {
        assert!(
            w[0].0 + i64::from(w[0].1) <= w[1].0,
            "blocks {:?} and {:?} overlap: a committed allocation was lost",
            w[0],
            w[1]
        );
    }
    for n in c.nodes.values() {
        let next = n.image().next_producer_id();
        let last = blocks.last().expect("blocks");
        assert!(
            last.0 + i64::from(last.1) <= next,
            "node {} has next producer id {next} below block {last:?}",
            n.node_id()
        );
    }
    // Allocations that were committed but not acknowledged (the answer was lost with a node)
    // leave gaps; acknowledged ones can be no more than were committed.
    let committed = image.next_producer_id() / 1000;
    assert!(n as i64 <= committed);
    c.history.check();
    let (metrics, images, offsets) = c.history.sample_counts();
    let terms = c.history.leaders();
    println!(
        "{kills} kill cycles ({leader_kills} of the leader, {two_down} with two voters down) in {:?}: {n} blocks acknowledged, {committed} committed, {unanswered} attempts unanswered; {} terms with a leader; {metrics} metrics samples, {images} image samples at {offsets} offsets; final offset {}",
        started.elapsed(),
        terms.len(),
        image.offset()
    );
    c.shutdown().await;
}
