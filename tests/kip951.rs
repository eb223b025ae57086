//! KIP-951: a NOT_LEADER_OR_FOLLOWER answer to Produce (v10+) or Fetch (v16+) names the current
//! leader and its epoch on the partition (`CurrentLeader`) and the leader's endpoint on the
//! listener the client used (`NodeEndpoints`), so the client goes there without a metadata
//! refresh. Older versions carry neither (they have no such fields).

mod common;

use common::{metadata, raw_request, Cluster, Deadline};
use rafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use rafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use rafka_protocol::messages::{FetchRequest, ProduceRequest, RequestKind, ResponseKind};
use rafka_protocol::{ErrorCode, Records};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn produce(
    addr: std::net::SocketAddr,
    version: i16,
    topic: &str,
) -> rafka_protocol::messages::ProduceResponse {
    let req = ProduceRequest {
        acks: -1,
        timeout_ms: 5_000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(Records::Bytes(bytes::Bytes::from_static(b"not read"))),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    match raw_request(addr, version, RequestKind::Produce(req), T) {
        Ok(ResponseKind::Produce(r)) => r,
        other => panic!("not a Produce response: {other:?}"),
    }
}

#[test]
fn not_leader_answers_name_the_leader_and_its_endpoint() {
    let _one = common::one_cluster_at_a_time();
    let cluster = Cluster::start(3, &[]);
    let topic = "hints";
    let admin = common::admin(&cluster.bootstrap());
    let nt = rdkafka::admin::NewTopic::new(topic, 1, rdkafka::admin::TopicReplication::Fixed(2));
    for r in common::runtime()
        .block_on(admin.create_topics([&nt], &common::admin_options()))
        .expect("CreateTopics")
    {
        r.expect("created");
    }
    // The leader and a follower, once both are in the ISR.
    let deadline = Deadline::after(T);
    let (leader, epoch, follower, topic_id) = loop {
        let md = metadata(cluster.nodes[0].addr(), Some(&[topic]), T).expect("metadata");
        let t = &md.topics[0];
        if let Some(p) = t
            .partitions
            .first()
            .filter(|p| p.leader_id > 0 && p.isr_nodes.len() == 2)
        {
            let follower = *p
                .replica_nodes
                .iter()
                .find(|r| **r != p.leader_id)
                .expect("two replicas");
            break (p.leader_id, p.leader_epoch, follower, t.topic_id);
        }
        deadline.check(|| format!("{topic}: leader and ISR of two: {md:?}"));
        std::thread::sleep(Duration::from_millis(50));
    };
    // The ISR is full from creation, so node 1's image can show it before the other nodes have
    // applied the topic; a broker that has not yet seen it rightly answers
    // UNKNOWN_TOPIC_OR_PARTITION. Wait until every node's own image names this leader.
    for node in &cluster.nodes {
        let deadline = Deadline::after(T);
        loop {
            let md = metadata(node.addr(), Some(&[topic]), T).expect("metadata");
            let known = md.topics[0]
                .partitions
                .first()
                .is_some_and(|p| (p.leader_id, p.leader_epoch) == (leader, epoch));
            if known {
                break;
            }
            deadline.check(|| format!("{topic} at {}: leader {leader}: {md:?}", node.addr()));
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let leader_port = i32::from(cluster.node(leader).port);
    let at_follower = cluster.node(follower).addr();

    // Produce v11 (and v10) to the follower: NOT_LEADER_OR_FOLLOWER with the hint.
    for v in [10, 11] {
        let r = produce(at_follower, v, topic);
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(
            p.error_code,
            ErrorCode::NotLeaderOrFollower.code(),
            "v{v}: {r:?}"
        );
        assert_eq!(
            (p.current_leader.leader_id, p.current_leader.leader_epoch),
            (leader, epoch),
            "v{v}"
        );
        let eps: Vec<(i32, &str, i32)> = r
            .node_endpoints
            .iter()
            .map(|e| (e.node_id, e.host.as_str(), e.port))
            .collect();
        assert_eq!(eps, vec![(leader, "127.0.0.1", leader_port)], "v{v}");
    }
    // v9 has no such fields: defaults.
    let r = produce(at_follower, 9, topic);
    let p = &r.responses[0].partition_responses[0];
    assert_eq!(p.error_code, ErrorCode::NotLeaderOrFollower.code());
    assert_eq!(p.current_leader.leader_id, -1);
    assert!(r.node_endpoints.is_empty());

    // A consumer's Fetch v16 at the broker that holds no replica (a follower may serve a v11+
    // consumer, as in Kafka).
    let outsider = (1..=3)
        .find(|id| *id != leader && *id != follower)
        .expect("a third broker");
    let req = FetchRequest {
        max_wait_ms: 0,
        min_bytes: 1,
        max_bytes: 1 << 20,
        topics: vec![FetchTopic {
            topic_id,
            partitions: vec![FetchPartition {
                partition: 0,
                fetch_offset: 0,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let r = match raw_request(
        cluster.node(outsider).addr(),
        16,
        RequestKind::Fetch(req),
        T,
    ) {
        Ok(ResponseKind::Fetch(r)) => r,
        other => panic!("not a Fetch response: {other:?}"),
    };
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, ErrorCode::NotLeaderOrFollower.code(), "{r:?}");
    assert_eq!(
        (p.current_leader.leader_id, p.current_leader.leader_epoch),
        (leader, epoch)
    );
    let eps: Vec<(i32, i32)> = r
        .node_endpoints
        .iter()
        .map(|e| (e.node_id, e.port))
        .collect();
    assert_eq!(eps, vec![(leader, leader_port)]);
}
