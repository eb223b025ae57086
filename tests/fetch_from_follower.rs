//! Fetch from follower (KIP-392) on a 3-node cluster with racks and Kafka's
//! `RackAwareReplicaSelector`: the leader answers a consumer in a follower's rack with that
//! follower as `preferred_read_replica` (and no records); the follower serves consumer fetches
//! up to its high watermark; a librdkafka consumer with `client.rack` reads every record and
//! its statistics show it fetching from the follower. Without the selector, the leader serves.

mod common;

use common::{raw_request, wait_for_isrs, Cluster, Deadline, NodePorts};
use rafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use rafka_protocol::messages::{FetchRequest, FetchResponse, RequestKind, ResponseKind};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientContext, Message, Statistics};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TOPIC: &str = "racked";
const MESSAGES: i64 = 50;

fn rack(id: i32) -> String {
    format!("rack-{id}")
}

fn cluster(selector: bool) -> Cluster {
    let extra: Vec<(&str, &str)> = if selector {
        vec![(
            "replica.selector.class",
            "org.apache.kafka.common.replica.RackAwareReplicaSelector",
        )]
    } else {
        Vec::new()
    };
    Cluster::start_with(&["broker,controller"; 3], &extra, &|n: &NodePorts| {
        vec![("broker.rack".to_string(), rack(n.node_id))]
    })
}

/// A consumer's Fetch v11 (rack id, no topic ids) for partition 0 from `offset`.
fn fetch(addr: SocketAddr, rack_id: &str, offset: i64) -> FetchResponse {
    let req = FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        min_bytes: 0,
        max_bytes: 1 << 20,
        topics: vec![FetchTopic {
            topic: TOPIC.into(),
            partitions: vec![FetchPartition {
                partition: 0,
                fetch_offset: offset,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        rack_id: rack_id.into(),
        ..Default::default()
    };
    match raw_request(addr, 11, RequestKind::Fetch(req), Duration::from_secs(10)).expect("Fetch") {
        ResponseKind::Fetch(r) => r,
        other => panic!("not a Fetch response: {other:?}"),
    }
}

/// Produces MESSAGES records and waits until all three replicas are in the ISR and the
/// followers' high watermark has caught up; returns (leader, a follower).
fn setup(cluster: &Cluster) -> (i32, i32) {
    let n1 = &cluster.nodes[0];
    common::create_replicated_topic(&cluster.bootstrap(), TOPIC, 1, 3);
    let views = wait_for_isrs(
        n1,
        TOPIC,
        1,
        &[1, 2, 3],
        Deadline::after(Duration::from_secs(30)),
    );
    let leader = views[0].leader;
    let follower = views[0]
        .replicas
        .iter()
        .copied()
        .find(|&r| r != leader)
        .expect("a follower");
    let p = common::SyncProducer::new(&cluster.bootstrap(), &[("acks", "all")]);
    for i in 0..MESSAGES {
        assert_eq!(p.send(TOPIC, 0, format!("m{i}").as_bytes()), Ok(i));
    }
    // The follower learns the high watermark with its next fetch from the leader.
    let deadline = Deadline::after(Duration::from_secs(20));
    let f_addr = cluster.node(follower).addr();
    loop {
        let r = fetch(f_addr, "", MESSAGES);
        let p = &r.responses[0].partitions[0];
        if p.error_code == 0 && p.high_watermark == MESSAGES {
            break;
        }
        deadline.check(|| format!("follower {follower} high watermark: {p:?}"));
        std::thread::sleep(Duration::from_millis(50));
    }
    (leader, follower)
}

#[derive(Clone, Default)]
struct Stats(Arc<Mutex<Option<Statistics>>>);

impl ClientContext for Stats {
    fn stats(&self, statistics: Statistics) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(statistics);
    }
}
impl rdkafka::consumer::ConsumerContext for Stats {}

#[test]
fn a_consumer_reads_from_the_follower_in_its_rack() {
    let cluster = cluster(true);
    let (leader, follower) = setup(&cluster);
    let leader_addr = cluster.node(leader).addr();

    // The leader names the follower for a consumer in the follower's rack, without records…
    let r = fetch(leader_addr, &rack(follower), 0);
    let p = &r.responses[0].partitions[0];
    assert_eq!(
        (p.error_code, p.preferred_read_replica),
        (0, follower),
        "{p:?}"
    );
    assert!(
        p.records.as_ref().is_none_or(|r| r.is_empty()),
        "no records with a preferred replica"
    );
    assert_eq!(p.high_watermark, MESSAGES);
    // …serves its own rack, and a consumer without a rack, itself.
    for client_rack in [rack(leader), String::new(), "elsewhere".to_string()] {
        let r = fetch(leader_addr, &client_rack, 0);
        let p = &r.responses[0].partitions[0];
        assert_eq!(
            (p.error_code, p.preferred_read_replica),
            (0, -1),
            "rack {client_rack:?}"
        );
        assert!(
            p.records.as_ref().is_some_and(|r| !r.is_empty()),
            "rack {client_rack:?}"
        );
    }
    // The follower serves a v11 consumer up to its high watermark.
    let r = fetch(cluster.node(follower).addr(), &rack(follower), 0);
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, 0, "{p:?}");
    assert!(
        p.records.as_ref().is_some_and(|r| !r.is_empty()),
        "follower records"
    );

    // librdkafka with client.rack: every record, fetched from the follower.
    let stats = Stats::default();
    let consumer: BaseConsumer<Stats> = common::client_config(
        &cluster.bootstrap(),
        &[
            ("group.id", "fff"),
            ("client.rack", &rack(follower)),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "false"),
            ("statistics.interval.ms", "100"),
        ],
    )
    .create_with_context(stats.clone())
    .expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, rdkafka::Offset::Beginning)
        .expect("tpl offset");
    consumer.assign(&tpl).expect("assign");
    let mut seen = Vec::new();
    let deadline = Deadline::after(Duration::from_secs(30));
    while (seen.len() as i64) < MESSAGES {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m.expect("message");
            seen.push(m.offset());
        }
        deadline.check(|| format!("{} of {MESSAGES} consumed", seen.len()));
    }
    assert_eq!(seen, (0..MESSAGES).collect::<Vec<_>>());
    // The statistics name the broker the partition is fetched from.
    let deadline = Deadline::after(Duration::from_secs(10));
    loop {
        let _ = consumer.poll(Duration::from_millis(100));
        let from = stats
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(|s| {
                s.topics
                    .get(TOPIC)
                    .and_then(|t| t.partitions.get(&0))
                    .map(|p| (p.broker, p.leader))
            });
        if from == Some((follower, leader)) {
            break;
        }
        deadline.check(|| {
            format!("partition fetched from (broker, leader) {from:?}, want ({follower}, {leader})")
        });
    }
}

#[test]
fn without_a_selector_the_leader_serves() {
    let cluster = cluster(false);
    let (leader, follower) = setup(&cluster);
    let r = fetch(cluster.node(leader).addr(), &rack(follower), 0);
    let p = &r.responses[0].partitions[0];
    assert_eq!((p.error_code, p.preferred_read_replica), (0, -1), "{p:?}");
    assert!(p.records.as_ref().is_some_and(|r| !r.is_empty()));
}
