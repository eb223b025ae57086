//! Restarts from disk, over real TCP on 127.0.0.1, nodes in-process:
//!
//! - every node stops and starts again on the same directories and ports and comes back with the
//!   same committed image (before any new leader writes: what is on disk is enough);
//! - a voter that was down while the leader wrote hundreds of records, with snapshots every 50
//!   entries so the leader purged the entries it missed, comes back through a snapshot install
//!   and converges.

mod common;

use common::*;
use rafka_controller::image::MetadataImage;
use std::sync::Arc;
use std::time::Duration;

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// Registers brokers 1..=3, heartbeats them until unfenced, creates topics: an image with a bit
/// of everything. Returns the heartbeat tasks and the broker epochs.
async fn populate(c: &Cluster, cluster_id: &str) -> (Vec<Heartbeats>, Vec<i64>) {
    let mut client = c.client();
    let mut hbs = Vec::new();
    let mut epochs = Vec::new();
    for b in 1..=3 {
        let epoch = register(&mut client, cluster_id, b).await;
        hbs.push(Heartbeats::start(
            c.voters.clone(),
            b,
            epoch,
            c.history.max_applied(),
            Duration::from_millis(100),
        ));
        epochs.push(epoch);
    }
    let leader = c.leader(SECS(10)).await;
    wait_until(SECS(10), "brokers unfenced", || {
        let image = c.node(leader).image();
        (1..=3).all(|b| image.is_active(b))
    })
    .await;
    for (i, name) in ["orders", "payments", "audit"].iter().enumerate() {
        let r = as_create_topics(
            client
                .call(
                    CREATE_TOPICS_V,
                    create_topic(name, 3 + i as i32, 3),
                    SECS(10),
                )
                .await,
        );
        assert_eq!(r.topics[0].error_code, 0, "{r:?}");
    }
    (hbs, epochs)
}

fn summary(image: &MetadataImage) -> String {
    format!(
        "offset {} brokers {} topics {} partitions {} next producer id {}",
        image.offset(),
        image.brokers().len(),
        image.topics().len(),
        image.partitions().count(),
        image.next_producer_id()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_node_restarts_from_disk_with_the_same_image() {
    bounded(SECS(60), "restart from disk", async {
        // A snapshot every 20 entries: the restart loads a snapshot and replays the log after it.
        let mut c = Cluster::start_with(
            3,
            Options {
                snapshot_every: 20,
                ..Options::default()
            },
        )
        .await;
        let cluster_id = c.cluster_id(SECS(10)).await;
        let (hbs, epochs) = populate(&c, &cluster_id).await;
        let mut client = c.client();
        for _ in 0..30 {
            let r = as_allocate(
                client
                    .call(ALLOCATE_V, allocate(1, epochs[0]), SECS(10))
                    .await,
            );
            assert_eq!(r.error_code, 0, "{r:?}");
        }
        for hb in hbs {
            hb.stop().await;
        }
        // A closed heartbeat connection makes the active controller move that broker's
        // leaderships and ISR places at once (one write per broker, right after the stop): the
        // image is taken once it has stopped changing for a second, or a node could restart
        // with one of those writes after `before`. (Sessions last 9 s: no fencing comes in this
        // test's time.)
        let mut before = {
            let leader = c.leader(SECS(10)).await;
            c.converged(SECS(10), c.node(leader).image().offset()).await
        };
        let mut still = 0;
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let leader = c.leader(SECS(10)).await;
            let now = c.converged(SECS(10), c.node(leader).image().offset()).await;
            if now.offset() == before.offset() {
                still += 1;
                if still == 4 {
                    break;
                }
            } else {
                still = 0;
                before = now;
            }
        }
        assert_eq!(
            still, 4,
            "the image kept changing after the heartbeats stopped"
        );
        println!("before: {}", summary(&before));
        assert_eq!(before.next_producer_id(), 30_000);
        assert!(
            c.dirs
                .values()
                .all(|d| d.path().join("state/snapshot").exists()),
            "no snapshot was taken"
        );

        for id in c.up() {
            c.stop(id).await;
        }
        // Start them one at a time, each checked alone before the next: with no quorum, no
        // leader can write anything, so each image comes from the node's own disk.
        for id in 1..=3 {
            c.restart(id).await;
            let node = c.node(id);
            wait_until(SECS(10), "replay of the committed log", || {
                node.image().offset() >= before.offset()
            })
            .await;
            let after = node.image();
            if id == 1 {
                // Alone, node 1 cannot have heard of anything newer than what it had.
                assert_eq!(*after, *before, "node {id} restarted with another image");
            } else {
                assert_eq!(
                    after.to_records(),
                    before.to_records(),
                    "node {id} restarted with other metadata"
                );
            }
            println!("node {id} after restart: {}", summary(&after));
        }
        // The quorum serves again and the same metadata is everywhere, plus the new write.
        let r = as_allocate(
            client
                .call(ALLOCATE_V, allocate(2, epochs[1]), SECS(10))
                .await,
        );
        assert_eq!((r.error_code, r.producer_id_start), (0, 30_000), "{r:?}");
        let leader = c.leader(SECS(10)).await;
        let after = c.converged(SECS(10), c.node(leader).image().offset()).await;
        assert_eq!(after.next_producer_id(), 31_000);
        assert_eq!(after.topics(), before.topics());
        assert_eq!(after.brokers().len(), 3);
        c.history.check();
        c.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_voter_down_during_many_writes_catches_up_by_snapshot() {
    bounded(SECS(90), "snapshot catch-up", async {
        let mut c = Cluster::start_with(3, Options { snapshot_every: 50, ..Options::default() }).await;
        let cluster_id = c.cluster_id(SECS(10)).await;
        let (hbs, epochs) = populate(&c, &cluster_id).await;
        let leader = c.leader(SECS(10)).await;
        let lagging = c.up().into_iter().find(|id| *id != leader).expect("a follower");
        c.converged(SECS(10), c.node(leader).image().offset()).await;
        let lagging_end = c.node(lagging).quorum_info().last_log_index.expect("a log");
        c.stop(lagging).await;
        let lagging_dir = c.dirs[&lagging].path().to_path_buf();
        let snapshot_file = lagging_dir.join("state/snapshot");
        let snapshot_before = std::fs::read(&snapshot_file).ok();

        let mut client = c.client();
        const WRITES: usize = 400;
        for _ in 0..WRITES {
            let r = as_allocate(client.call(ALLOCATE_V, allocate(1, epochs[0]), SECS(10)).await);
            assert_eq!(r.error_code, 0, "{r:?}");
        }
        // The leader has snapshotted and purged past the lagging voter's log end: replication
        // alone cannot bring it back.
        let leader = c.leader(SECS(10)).await;
        wait_until(SECS(10), "leader purge", || {
            let m = c.node(leader).raft().metrics().borrow().clone();
            m.purged.map(|p| p.index).unwrap_or(0) > 300
        })
        .await;
        let purged = c.node(leader).raft().metrics().borrow().purged.expect("purged").index;
        println!("leader {leader} purged up to {purged}");

        assert!(
            purged > lagging_end + 1,
            "the leader kept the entries the lagging voter needs (purged {purged}, its log end {lagging_end})"
        );
        c.restart(lagging).await;
        let target = c.node(leader).image().offset();
        let image: Arc<MetadataImage> = c.converged(SECS(30), target).await;
        assert_eq!(image.next_producer_id(), (WRITES as i64) * 1000);
        // It got there by a snapshot: its snapshot is at or past the purge point, and the
        // snapshot file it had before is gone or replaced.
        let m = c.node(lagging).raft().metrics().borrow().clone();
        let snap = m.snapshot.expect("the lagging voter has a snapshot").index;
        assert!(snap >= purged, "its snapshot is at {snap}, before the leader's purge point {purged}");
        let snapshot_after = std::fs::read(&snapshot_file).expect("snapshot file after catch-up");
        assert_ne!(Some(snapshot_after), snapshot_before, "the snapshot file was not replaced");
        println!(
            "lagging voter {lagging} (log end {lagging_end} when stopped) converged at offset {} with a snapshot at {snap}: {}",
            image.offset(),
            summary(&image)
        );
        for hb in hbs {
            hb.stop().await;
        }
        c.history.check();
        c.shutdown().await;
    })
    .await;
}

/// `shutdown()` closes the node's connections, not only its listener: a peer that kept a
/// connection open must see it end, or it goes on talking to a node that is gone (and, once the
/// node restarts on the same port, never reaches the new one).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_closes_the_connections_of_the_node() {
    bounded(SECS(30), "shutdown closes connections", async {
        let mut c = Cluster::start(3).await;
        let cluster_id = c.cluster_id(SECS(10)).await;
        let mut client = c.client();
        let epoch = register(&mut client, &cluster_id, 1).await;
        let leader = c.leader(SECS(10)).await;
        let follower = c
            .up()
            .into_iter()
            .find(|id| *id != leader)
            .expect("a follower");
        // A connection the follower has served a request on.
        let mut conn = Connection::connect(&c.voters[&follower])
            .await
            .expect("connect");
        let r = conn
            .call(ALLOCATE_V, allocate(1, epoch))
            .await
            .expect("call");
        assert_eq!(
            error_code(&r),
            rafka_protocol::ErrorCode::NotController.code()
        );
        c.stop(follower).await;
        // The connection ends: EOF, a reset, or a failed call — not an answer.
        let r = tokio::time::timeout(SECS(5), conn.call(ALLOCATE_V, allocate(1, epoch))).await;
        match r {
            Err(_) => panic!("the connection to stopped node {follower} is still open after 5 s"),
            Ok(Ok(answer)) => panic!("stopped node {follower} still answers: {answer:?}"),
            Ok(Err(_closed)) => {}
        }
        c.restart(follower).await;
        c.converged(SECS(10), c.node(leader).image().offset()).await;
        c.history.check();
        c.shutdown().await;
    })
    .await;
}
