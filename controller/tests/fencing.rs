//! Broker sessions end to end, over real TCP on 127.0.0.1 with a 3-voter quorum in-process:
//! registration → heartbeats → unfenced → a topic with RF 3 → a partition leader stops
//! heartbeating → its session (600 ms) expires → it is fenced, leaves every ISR, and each
//! partition it led gets a new leader from its ISR with a bumped leader epoch. Then the rest of
//! the ISR goes too: the last member stays in the ISR, the partition goes leaderless (no unclean
//! election, even when a broker outside the ISR is back), and when that last member heartbeats
//! again it is the leader again.

mod common;

use common::*;
use rafka_controller::image::{MetadataImage, PartitionRegistration, NO_LEADER};
use rafka_protocol::Uuid;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SESSION: Duration = Duration::from_millis(600);
const HEARTBEAT_EVERY: Duration = Duration::from_millis(100);
const PARTITIONS: i32 = 6;

type Partitions = BTreeMap<i32, PartitionRegistration>;

fn partitions(image: &MetadataImage, topic: &Uuid) -> Partitions {
    image.topic(topic).expect("topic").partitions.clone()
}

/// Waits until the leader's image satisfies `cond`; returns it and how long it took.
async fn wait_image(
    c: &Cluster,
    limit: Duration,
    what: &str,
    mut cond: impl FnMut(&MetadataImage) -> bool,
) -> (Arc<MetadataImage>, Duration) {
    let start = Instant::now();
    loop {
        let image = c.leader_image().await;
        if cond(&image) {
            return (image, start.elapsed());
        }
        assert!(
            start.elapsed() < limit,
            "{what}: not within {limit:?}; image: {image:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn session_expiry_fences_and_moves_leaders_inside_the_isr() {
    bounded(Duration::from_secs(60), "fencing", async {
        let c = Cluster::start_with(
            3,
            Options {
                session_timeout: SESSION,
                ..Options::default()
            },
        )
        .await;
        let cluster_id = c.cluster_id(Duration::from_secs(10)).await;
        let mut client = c.client();
        let mut hbs = BTreeMap::new();
        for b in [1, 2, 3] {
            let epoch = register(&mut client, &cluster_id, b).await;
            // Registered, not yet heard from: fenced.
            let (image, _) = wait_image(&c, Duration::from_secs(5), "registration", |i| {
                i.broker(b).is_some()
            })
            .await;
            assert!(image
                .broker(b)
                .is_some_and(|r| r.fenced && r.epoch == epoch));
            hbs.insert(
                b,
                Heartbeats::start(
                    c.voters.clone(),
                    b,
                    epoch,
                    c.history.max_applied(),
                    HEARTBEAT_EVERY,
                ),
            );
        }
        wait_image(&c, Duration::from_secs(10), "brokers unfenced", |i| {
            (1..=3).all(|b| i.is_active(b))
        })
        .await;

        let r = as_create_topics(
            client
                .call(
                    CREATE_TOPICS_V,
                    create_topic("t", PARTITIONS, 3),
                    Duration::from_secs(10),
                )
                .await,
        );
        assert_eq!(r.topics[0].error_code, 0, "{r:?}");
        let (image, _) = wait_image(&c, Duration::from_secs(5), "topic", |i| {
            i.topic_by_name("t").is_some()
        })
        .await;
        let topic = image.topic_by_name("t").expect("topic").id;
        let before = partitions(&image, &topic);
        assert_eq!(before.len(), PARTITIONS as usize);
        for p in before.values() {
            assert_eq!(p.isr.len(), 3, "{p:?}");
            assert!(p.isr.contains(&p.leader), "{p:?}");
        }

        // 1. The leader of partition 0 goes silent.
        let l = before[&0].leader;
        hbs[&l].set_alive(false);
        let (image, took) = wait_image(
            &c,
            Duration::from_secs(5),
            "fencing the silent leader",
            |i| i.broker(l).is_some_and(|b| b.fenced),
        )
        .await;
        println!("broker {l} fenced {took:?} after its heartbeats stopped (session {SESSION:?})");
        assert!(
            took + HEARTBEAT_EVERY * 2 >= SESSION,
            "fenced after {took:?}, before its session could expire"
        );
        let after = partitions(&image, &topic);
        for (i, p) in &after {
            let old = &before[i];
            assert!(
                !p.isr.contains(&l),
                "partition {i}: fenced broker {l} still in the ISR {:?}",
                p.isr
            );
            assert_eq!(p.isr.len(), 2, "partition {i}: {p:?}");
            assert!(
                p.isr.contains(&p.leader),
                "partition {i}: leader {} outside the ISR {:?}",
                p.leader,
                p.isr
            );
            if old.leader == l {
                assert!(
                    p.leader_epoch > old.leader_epoch,
                    "partition {i}: leader epoch not bumped: {old:?} → {p:?}"
                );
            } else {
                assert_eq!(
                    (p.leader, p.leader_epoch),
                    (old.leader, old.leader_epoch),
                    "partition {i}"
                );
            }
            assert!(p.partition_epoch > old.partition_epoch, "partition {i}");
        }

        // 2. A second broker goes silent: one ISR member is left, and it leads everywhere.
        let m = *[1, 2, 3]
            .iter()
            .find(|b| **b != l && **b != after[&0].leader)
            .expect("a third broker");
        let k = after[&0].leader;
        hbs[&m].set_alive(false);
        let (image, _) = wait_image(
            &c,
            Duration::from_secs(5),
            "fencing the second broker",
            |i| i.broker(m).is_some_and(|b| b.fenced),
        )
        .await;
        let one_left = partitions(&image, &topic);
        for (i, p) in &one_left {
            assert_eq!(
                (p.leader, p.isr.as_slice()),
                (k, &[k][..]),
                "partition {i}: {p:?}"
            );
        }

        // 3. The last ISR member goes silent too: it stays in the ISR, nobody leads.
        hbs[&k].set_alive(false);
        let (image, _) = wait_image(
            &c,
            Duration::from_secs(5),
            "fencing the last ISR member",
            |i| i.broker(k).is_some_and(|b| b.fenced),
        )
        .await;
        let leaderless = partitions(&image, &topic);
        for (i, p) in &leaderless {
            assert_eq!(
                (p.leader, p.isr.as_slice()),
                (NO_LEADER, &[k][..]),
                "partition {i}: {p:?}"
            );
            assert!(
                p.leader_epoch > one_left[i].leader_epoch,
                "partition {i}: leader epoch not bumped"
            );
        }

        // 4. A broker outside the ISR comes back: it is unfenced, but leads nothing (no unclean
        // election).
        hbs[&l].set_alive(true);
        wait_image(
            &c,
            Duration::from_secs(5),
            "unfencing a broker outside the ISR",
            |i| i.is_active(l),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let image = c.leader_image().await;
        assert_eq!(
            partitions(&image, &topic),
            leaderless,
            "a partition changed while its ISR was gone"
        );

        // 5. The last ISR member comes back: it leads again.
        hbs[&k].set_alive(true);
        let (image, took) = wait_image(&c, Duration::from_secs(5), "the old leader back", |i| {
            i.topic(&topic)
                .is_some_and(|t| t.partitions.values().all(|p| p.leader == k))
        })
        .await;
        println!("broker {k} leads again {took:?} after its heartbeats resumed");
        for (i, p) in partitions(&image, &topic) {
            assert_eq!(p.isr, vec![k], "partition {i}");
            assert!(
                p.leader_epoch > leaderless[&i].leader_epoch,
                "partition {i}: leader epoch not bumped"
            );
        }
        // Every node applied the same.
        c.converged(Duration::from_secs(10), image.offset()).await;
        for (_, hb) in hbs {
            hb.stop().await;
        }
        c.history.check();
        c.shutdown().await;
    })
    .await;
}
