//! Three combined broker+controller nodes, one quorum (voters 1, 2, 3). A topic with six
//! single-replica partitions is spread over all three brokers; librdkafka clients bootstrapped
//! from one broker find each partition's leader, and every record lands in its leader's log
//! directory only. A broker asked for a partition it does not lead says NOT_LEADER_OR_FOLLOWER.
//! And split roles: a controller-only node with two broker-only nodes.

mod common;

use common::ffi::BEGINNING;
use common::{admin, metadata, Cluster, Deadline};
use rafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use rafka_protocol::messages::{ListOffsetsRequest, RequestKind, ResponseKind};
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::producer::BaseRecord;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);
const PARTITIONS: i32 = 6;
const PER_PARTITION: usize = 500;

fn value(p: i32, i: usize) -> String {
    format!("partition {p} record {i}")
}

/// DescribeQuorum v2 at `addr`: (leader, voters with their log end offsets > 0, observers,
/// voters' endpoint ports).
fn describe_quorum(addr: std::net::SocketAddr) -> (i32, Vec<i32>, Vec<i32>, Vec<(i32, u16)>) {
    use rafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
    use rafka_protocol::messages::DescribeQuorumRequest;
    let req = DescribeQuorumRequest {
        topics: vec![TopicData {
            topic_name: "__cluster_metadata".into(),
            partitions: vec![PartitionData {
                partition_index: 0,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let r = match common::raw_request(addr, 2, RequestKind::DescribeQuorum(req), T)
        .expect("DescribeQuorum")
    {
        ResponseKind::DescribeQuorum(r) => r,
        other => panic!("not DescribeQuorum: {other:?}"),
    };
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, 0, "DescribeQuorum at {addr}: {r:?}");
    let ids = |v: &[rafka_protocol::messages::describe_quorum_response::ReplicaState]| {
        v.iter()
            .filter(|r| r.log_end_offset > 0)
            .map(|r| r.replica_id)
            .collect::<Vec<i32>>()
    };
    let ports = r
        .nodes
        .iter()
        .map(|n| (n.node_id, n.listeners[0].port))
        .collect();
    (
        p.leader_id,
        ids(&p.current_voters),
        ids(&p.observers),
        ports,
    )
}

#[test]
fn three_brokers_clients_find_each_partition_leader() {
    let cluster = Cluster::start(3, &[]);
    let (first, second) = (&cluster.nodes[0], &cluster.nodes[1]);

    // Every node sees the same three brokers and names itself as the controller (a live broker,
    // as Kafka's KRaft brokers do: the broker forwards metadata writes to the quorum).
    let mut controllers = Vec::new();
    for n in &cluster.nodes {
        let md = metadata(n.addr(), None, T).expect("metadata");
        let brokers: BTreeMap<i32, i32> = md.brokers.iter().map(|b| (b.node_id, b.port)).collect();
        let want: BTreeMap<i32, i32> = cluster
            .nodes
            .iter()
            .map(|n| (n.node_id, n.port as i32))
            .collect();
        assert_eq!(brokers, want, "brokers seen by node {}", n.node_id);
        assert_eq!(
            md.controller_id, n.node_id,
            "controller id from node {}",
            n.node_id
        );
        controllers.push(common::active_controller(n.addr(), T).expect("DescribeQuorum"));
    }
    assert!(
        controllers.windows(2).all(|w| w[0] == w[1]) && controllers[0] > 0,
        "active controllers {controllers:?}"
    );
    // Every broker answers DescribeQuorum with the active controller's view (forwarded).
    for n in &cluster.nodes {
        let (leader, voters, observers, ports) = describe_quorum(n.addr());
        assert_eq!(
            leader, controllers[0],
            "quorum leader seen through node {}",
            n.node_id
        );
        assert_eq!(
            voters,
            vec![1, 2, 3],
            "voters with log, through node {}",
            n.node_id
        );
        assert!(observers.is_empty());
        let want: Vec<(i32, u16)> = cluster
            .nodes
            .iter()
            .map(|n| (n.node_id, n.controller_port))
            .collect();
        assert_eq!(ports, want, "voters' controller endpoints");
    }

    // Created through the first broker only.
    let admin = admin(&first.bootstrap());
    let t = NewTopic::new("spread", PARTITIONS, TopicReplication::Fixed(1));
    let res = common::runtime()
        .block_on(admin.create_topics([&t], &common::admin_options()))
        .expect("CreateTopics");
    assert_eq!(res, vec![Ok("spread".to_string())]);
    // Every node learns the placement; all agree on it.
    let leaders = common::wait_for_topic(first, "spread", PARTITIONS as usize, T);
    for n in &cluster.nodes[1..] {
        assert_eq!(
            common::wait_for_topic(n, "spread", PARTITIONS as usize, T),
            leaders,
            "node {}",
            n.node_id
        );
    }
    for id in 1..=3 {
        let led = leaders.iter().filter(|&&l| l == id).count();
        assert!(led >= 1, "broker {id} leads none of {leaders:?}");
    }
    println!("leaders of spread-0..5: {leaders:?}");

    // A producer bootstrapped from the first broker sends to every partition.
    let p = common::producer(&first.bootstrap(), &[("acks", "all"), ("linger.ms", "5")]);
    for i in 0..PER_PARTITION {
        for part in 0..PARTITIONS {
            let v = value(part, i);
            p.send(
                BaseRecord::<(), str>::to("spread")
                    .partition(part)
                    .payload(v.as_str()),
            )
            .map_err(|(e, _)| e)
            .expect("send");
        }
    }
    common::flush(&p, Duration::from_secs(60));

    // Each partition's data is on its leader's disk, and nowhere else.
    for part in 0..PARTITIONS {
        for n in &cluster.nodes {
            let has = n.log_dir().join(format!("spread-{part}")).is_dir();
            assert_eq!(
                has,
                n.node_id == leaders[part as usize],
                "spread-{part} on node {}",
                n.node_id
            );
        }
        let leader = cluster.node(leaders[part as usize]);
        let bytes: u64 = common::segment_files(&leader.log_dir(), "spread", part)
            .iter()
            .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
            .sum();
        assert!(
            bytes > (PER_PARTITION * 10) as u64,
            "spread-{part}: {bytes} bytes on its leader"
        );
    }

    // A consumer bootstrapped from the second broker reads every partition from its leader.
    let mut c = common::partition_consumer(&second.bootstrap(), &[]);
    for part in 0..PARTITIONS {
        c.start("spread", part, BEGINNING);
    }
    let mut next = vec![0usize; PARTITIONS as usize];
    let deadline = Deadline::after(Duration::from_secs(60));
    while next.iter().sum::<usize>() < PER_PARTITION * PARTITIONS as usize {
        deadline.check(|| format!("read {next:?}"));
        let Some(m) = c.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.unwrap_or_else(|e| panic!("consume: {e}"));
        let i = next[m.partition as usize];
        assert_eq!(m.offset, i as i64, "offset in spread-{}", m.partition);
        assert_eq!(m.payload.as_deref(), Some(value(m.partition, i).as_bytes()));
        next[m.partition as usize] += 1;
    }

    // A broker asked for a partition it does not lead answers NOT_LEADER_OR_FOLLOWER (6).
    let (part, leader) = leaders
        .iter()
        .enumerate()
        .map(|(p, l)| (p as i32, *l))
        .next()
        .expect("a partition");
    let other = cluster
        .nodes
        .iter()
        .find(|n| n.node_id != leader)
        .expect("another node");
    let req = ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: "spread".into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: part,
                timestamp: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let code = match common::raw_request(other.addr(), 7, RequestKind::ListOffsets(req.clone()), T)
        .expect("ListOffsets")
    {
        ResponseKind::ListOffsets(r) => r.topics[0].partitions[0].error_code,
        other => panic!("not ListOffsets: {other:?}"),
    };
    assert_eq!(
        code, 6,
        "ListOffsets for spread-{part} at node {} (leader {leader})",
        other.node_id
    );
    let code = match common::raw_request(
        cluster.node(leader).addr(),
        7,
        RequestKind::ListOffsets(req),
        T,
    )
    .expect("ListOffsets")
    {
        ResponseKind::ListOffsets(r) => {
            let p = &r.topics[0].partitions[0];
            assert_eq!(
                p.offset, PER_PARTITION as i64,
                "latest offset of spread-{part}"
            );
            p.error_code
        }
        other => panic!("not ListOffsets: {other:?}"),
    };
    assert_eq!(code, 0, "ListOffsets at the leader");
}

/// Split roles, as an operator's Kafka KRaft files set them: node 1 is a controller only (the
/// one voter), nodes 2 and 3 are brokers only, following the metadata log as Raft learners.
/// Clients see the two brokers, partitions spread over them, and a broker killed with SIGKILL
/// comes back, catches up with the log it missed, and serves its partitions again.
#[test]
fn controller_only_and_broker_only_nodes() {
    let mut cluster = Cluster::start_roles(&["controller", "broker", "broker"], &[]);
    let md = metadata(cluster.node(2).addr(), None, T).expect("metadata");
    let mut brokers: Vec<i32> = md.brokers.iter().map(|b| b.node_id).collect();
    brokers.sort_unstable();
    assert_eq!(
        brokers,
        vec![2, 3],
        "the brokers; the controller is not one"
    );
    // The active controller is not a broker: Metadata names a live broker, as Kafka does.
    assert!(
        [2, 3].contains(&md.controller_id),
        "controller id {}",
        md.controller_id
    );

    let admin = admin(&cluster.bootstrap());
    let t = NewTopic::new("split", 4, TopicReplication::Fixed(1));
    let res = common::runtime()
        .block_on(admin.create_topics([&t], &common::admin_options()))
        .expect("CreateTopics");
    assert_eq!(res, vec![Ok("split".to_string())]);
    let leaders = common::wait_for_topic(cluster.node(2), "split", 4, T);
    assert_eq!(
        common::wait_for_topic(cluster.node(3), "split", 4, T),
        leaders,
        "both brokers follow the same log"
    );
    assert!(
        leaders.contains(&2) && leaders.contains(&3),
        "partitions spread over both brokers: {leaders:?}"
    );

    let bootstrap = cluster.bootstrap();
    let produce = |round: usize| {
        let p = common::producer(&bootstrap, &[("acks", "all")]);
        for i in 0..100 {
            for part in 0..4 {
                let v = value(part, round * 100 + i);
                p.send(
                    BaseRecord::<(), str>::to("split")
                        .partition(part)
                        .payload(v.as_str()),
                )
                .map_err(|(e, _)| e)
                .expect("send");
            }
        }
        common::flush(&p, Duration::from_secs(30));
    };
    produce(0);

    // Broker 3 dies; a topic is created while it is away, then it returns.
    cluster.nodes[2].kill();
    let t = NewTopic::new("while-away", 1, TopicReplication::Fixed(1));
    // Metadata names a live broker as the controller (as Kafka's KRaft brokers do); until the
    // admin client's metadata drops broker 3, it may send there and get a transport failure,
    // which a user retries. A retry after a request that did land finds the topic existing.
    let deadline = Instant::now() + T;
    let mut retried = false;
    let res = loop {
        match common::runtime().block_on(admin.create_topics([&t], &common::admin_options())) {
            Err(rdkafka::error::KafkaError::AdminOp(
                rdkafka::types::RDKafkaErrorCode::BrokerTransportFailure,
            )) if Instant::now() < deadline => {
                retried = true;
                std::thread::sleep(Duration::from_millis(200));
            }
            other => break other.expect("CreateTopics"),
        }
    };
    let exists = Err((
        "while-away".to_string(),
        rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists,
    ));
    assert!(
        res == vec![Ok("while-away".to_string())] || (retried && res == vec![exists]),
        "{res:?}"
    );
    cluster.nodes[2].start();
    cluster.wait_ready(T);
    common::wait_for_topic(cluster.node(3), "while-away", 1, T);
    produce(1);

    // Everything, from both rounds, reads back in order from each partition's leader.
    let mut c = common::partition_consumer(&cluster.bootstrap(), &[]);
    for part in 0..4 {
        c.start("split", part, BEGINNING);
    }
    let mut next = [0usize; 4];
    let deadline = Deadline::after(Duration::from_secs(60));
    while next.iter().sum::<usize>() < 800 {
        deadline.check(|| format!("read {next:?}"));
        let Some(m) = c.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.unwrap_or_else(|e| panic!("consume: {e}"));
        let i = next[m.partition as usize];
        assert_eq!(m.offset, i as i64, "offset in split-{}", m.partition);
        assert_eq!(m.payload.as_deref(), Some(value(m.partition, i).as_bytes()));
        next[m.partition as usize] += 1;
    }
    // Both brokers answer DescribeQuorum (forwarded to node 1): one voter, two observers.
    for id in [2, 3] {
        let (leader, voters, mut observers, _) = describe_quorum(cluster.node(id).addr());
        observers.sort_unstable();
        assert_eq!(
            (leader, voters, observers),
            (1, vec![1], vec![2, 3]),
            "through node {id}"
        );
    }
    // The controller-only node keeps no partition data.
    assert!(
        !cluster.node(1).log_dir().join("split-0").exists(),
        "no partition directory on the controller-only node"
    );
}

/// `initial.broker.registration.timeout.ms`: a broker-only node that cannot reach the controller
/// quorum gives up once that long has passed since it started — one line, a non-zero exit, as
/// Kafka's broker — and registers as usual once the controller is there.
#[test]
fn a_broker_not_registered_in_time_stops() {
    let mut cluster = Cluster::start_roles(&["controller", "broker"], &[]);
    cluster.nodes[0].kill();
    cluster.nodes[1].kill();
    // Short for this start of the broker alone (the cluster's first start, in a debug build,
    // can take longer than that to elect its controller).
    let properties = cluster.nodes[1].dir.join("server.properties");
    let original = std::fs::read_to_string(&properties).expect("server.properties");
    std::fs::write(
        &properties,
        format!("{original}\ninitial.broker.registration.timeout.ms=1500\n"),
    )
    .expect("write server.properties");
    let started = Instant::now();
    cluster.nodes[1].start();
    let deadline = Deadline::after(Duration::from_secs(20));
    let status = loop {
        if let Some(status) = cluster.nodes[1].exited() {
            break status;
        }
        deadline.check(|| {
            format!(
                "the unregistered broker kept running\n{}",
                cluster.nodes[1].log_tail(20)
            )
        });
        std::thread::sleep(Duration::from_millis(50));
    };
    let waited = started.elapsed();
    cluster.nodes[1].kill(); // reaps it
    let line = cluster.nodes[1].log_tail(1);
    assert!(!status.success(), "{line}");
    assert!(
        line.starts_with("rafka: ") && line.contains("initial.broker.registration.timeout.ms"),
        "{line}"
    );
    assert!(
        waited >= Duration::from_millis(1500),
        "gave up after {waited:?}"
    );
    // It stopped in order (as Kafka's broker shuts down before it exits 1): the next start
    // need not recover its logs.
    assert!(
        cluster.nodes[1]
            .log_dir()
            .join(".kafka_cleanshutdown")
            .is_file(),
        "no clean-shutdown marker: {}",
        cluster.nodes[1].log_tail(20)
    );
    std::fs::write(&properties, original).expect("restore server.properties");
    cluster.nodes[0].start();
    cluster.nodes[1].start();
    cluster.wait_ready(Duration::from_secs(30));
}
