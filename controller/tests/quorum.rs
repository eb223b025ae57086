//! The metadata quorum over real TCP on 127.0.0.1, nodes in-process: three voters form a
//! cluster, the first active controller writes the cluster id, every node adopts it (image and
//! `meta.properties`), a controller request is answered through the committed path, and a new
//! leader takes over when the first one stops.

mod common;

use common::*;
use rafka_protocol::messages::ResponseKind;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_elect_a_leader_and_replicate_writes() {
    bounded(Duration::from_secs(60), "three voters", async {
        let mut c = Cluster::start(3).await;
        let leader = c.leader(Duration::from_secs(10)).await;
        // No brokers are registered: a topic cannot be placed, but the answer comes back through
        // the committed path with a Kafka error code.
        let resp = c
            .node(leader)
            .quorum_controller()
            .handle_request(7, create_topic("orders", 1, 1))
            .await;
        let Some(ResponseKind::CreateTopics(r)) = resp else {
            panic!("{resp:?}")
        };
        assert_eq!(r.topics.len(), 1);
        assert_ne!(r.topics[0].error_code, 0, "{r:?}");
        // The cluster id was written, reaches every node and is kept in meta.properties.
        let id = c.cluster_id(Duration::from_secs(10)).await;
        wait_until(Duration::from_secs(5), "cluster id on every node", || {
            c.nodes
                .values()
                .all(|n| n.image().cluster_id() == Some(id.as_str()))
        })
        .await;
        wait_until(
            Duration::from_secs(5),
            "cluster id in meta.properties",
            || {
                c.dirs.values().all(|d| {
                    std::fs::read_to_string(d.path().join("meta.properties"))
                        .is_ok_and(|s| s.lines().any(|l| l == format!("cluster.id={id}")))
                })
            },
        )
        .await;
        // Stop the leader: a new one is elected.
        c.stop(leader).await;
        let t = Instant::now();
        let new_leader = c.leader(Duration::from_secs(10)).await;
        assert_ne!(new_leader, leader);
        println!("failover in {:?}", t.elapsed());
        c.restart(leader).await;
        let _ = c.leader(Duration::from_secs(10)).await;
        c.history.check();
        c.shutdown().await;
    })
    .await;
}
