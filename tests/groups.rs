//! Consumer groups with librdkafka against the real binary: FindCoordinator creates
//! `__consumer_offsets`, members join and split the partitions, offsets are committed, survive a
//! restart of the broker, and the group shows in ListGroups / DescribeGroups; a simple
//! (assign-only) consumer commits and fetches offsets without joining.

mod common;

use common::{admin, create_topic, Cluster, Deadline};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::BaseRecord;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);
const TOPIC: &str = "grouped";
const PARTITIONS: i32 = 4;
/// For groups on one node (the test files start from Kafka's defaults, where `__consumer_offsets`
/// has 3 replicas and a group's first rebalance waits 3 s): one replica, as Kafka's single-node
/// example config has, and no initial delay, as its ZooKeeper-era example had.
const GROUP_CONFIG: [(&str, &str); 2] = [
    ("offsets.topic.replication.factor", "1"),
    ("group.initial.rebalance.delay.ms", "0"),
];

fn group_consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    common::client_config(
        bootstrap,
        &[
            ("group.id", group),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "500"),
        ],
    )
    .create()
    .expect("create consumer")
}

fn produce(bootstrap: &str, round: usize, per_partition: usize) {
    let p = common::producer(bootstrap, &[("acks", "all")]);
    for i in 0..per_partition {
        for part in 0..PARTITIONS {
            let v = format!("round {round} partition {part} record {i}");
            p.send(
                BaseRecord::<(), str>::to(TOPIC)
                    .partition(part)
                    .payload(v.as_str()),
            )
            .map_err(|(e, _)| e)
            .expect("send");
        }
    }
    common::flush(&p, T);
}

/// Polls `consumers` in turn until `want` distinct (partition, offset) pairs of round `round`
/// arrived; returns what each consumer got.
fn consume(consumers: &[&BaseConsumer], round: usize, want: usize) -> Vec<BTreeSet<(i32, i64)>> {
    let mut got = vec![BTreeSet::new(); consumers.len()];
    let deadline = Deadline::after(Duration::from_secs(60));
    let total = |got: &Vec<BTreeSet<(i32, i64)>>| got.iter().map(BTreeSet::len).sum::<usize>();
    while total(&got) < want {
        deadline.check(|| {
            format!(
                "consumed {:?} of {want}",
                got.iter().map(BTreeSet::len).collect::<Vec<_>>()
            )
        });
        for (i, c) in consumers.iter().enumerate() {
            if let Some(m) = c.poll(Duration::from_millis(50)) {
                let m = m.unwrap_or_else(|e| panic!("consumer {i}: {e}"));
                let text = std::str::from_utf8(m.payload().unwrap_or_default()).unwrap_or("");
                assert!(
                    text.starts_with(&format!("round {round} partition {}", m.partition())),
                    "consumer {i} got {text:?} at {}-{}@{}",
                    m.topic(),
                    m.partition(),
                    m.offset()
                );
                got[i].insert((m.partition(), m.offset()));
            }
        }
    }
    got
}

fn assigned(c: &BaseConsumer) -> BTreeSet<i32> {
    c.assignment()
        .expect("assignment")
        .elements()
        .iter()
        .map(|e| e.partition())
        .collect()
}

fn committed(c: &BaseConsumer) -> BTreeMap<i32, i64> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(TOPIC, p);
    }
    c.committed_offsets(tpl, T)
        .expect("committed offsets (OffsetFetch)")
        .elements()
        .iter()
        .map(|e| {
            let o = match e.offset() {
                Offset::Offset(o) => o,
                _ => -1,
            };
            (e.partition(), o)
        })
        .collect()
}

#[test]
fn group_members_split_partitions_and_offsets_survive_a_restart() {
    let mut cluster = Cluster::start(1, &GROUP_CONFIG);
    let bootstrap = cluster.bootstrap();
    {
        let admin = admin(&bootstrap);
        create_topic(&admin, &cluster.nodes[0], TOPIC, PARTITIONS, &[]);
    }
    produce(&bootstrap, 0, 50);

    // One member: it gets every partition, reads round 0, commits.
    let a = group_consumer(&bootstrap, "g1");
    a.subscribe(&[TOPIC]).expect("subscribe");
    let got = consume(&[&a], 0, 200);
    assert_eq!(got[0].len(), 200);
    assert_eq!(assigned(&a), (0..PARTITIONS).collect());
    a.commit_consumer_state(CommitMode::Sync).expect("commit");
    assert_eq!(committed(&a), (0..PARTITIONS).map(|p| (p, 50)).collect());

    // A second member joins: the partitions are split between them, each read by one.
    let b = group_consumer(&bootstrap, "g1");
    b.subscribe(&[TOPIC]).expect("subscribe");
    let deadline = Deadline::after(T);
    loop {
        let _ = a.poll(Duration::from_millis(50));
        let _ = b.poll(Duration::from_millis(50));
        let (pa, pb) = (assigned(&a), assigned(&b));
        if !pa.is_empty() && !pb.is_empty() && pa.len() + pb.len() == PARTITIONS as usize {
            assert!(pa.is_disjoint(&pb), "{pa:?} and {pb:?}");
            break;
        }
        deadline.check(|| format!("no split assignment: {pa:?} / {pb:?}"));
    }
    produce(&bootstrap, 1, 50);
    let got = consume(&[&a, &b], 1, 200);
    let (pa, pb) = (assigned(&a), assigned(&b));
    for (who, parts, got) in [("a", &pa, &got[0]), ("b", &pb, &got[1])] {
        assert!(
            got.iter().all(|(p, _)| parts.contains(p)),
            "{who} read only its partitions {parts:?}"
        );
    }
    a.commit_consumer_state(CommitMode::Sync).expect("commit a");
    b.commit_consumer_state(CommitMode::Sync).expect("commit b");

    // The group as tools see it: Stable, two members.
    let groups = a
        .fetch_group_list(Some("g1"), T)
        .expect("ListGroups/DescribeGroups");
    let g = &groups.groups()[0];
    assert_eq!(
        (g.name(), g.state(), g.protocol_type()),
        ("g1", "Stable", "consumer")
    );
    assert_eq!(g.members().len(), 2);
    drop(a);
    drop(b);

    // The broker restarts; the committed offsets were in __consumer_offsets.
    cluster.nodes[0].terminate();
    cluster.nodes[0].start();
    cluster.wait_ready(T);
    produce(&bootstrap, 2, 10);
    let c = group_consumer(&bootstrap, "g1");
    c.subscribe(&[TOPIC]).expect("subscribe");
    // Only round 2 arrives: rounds 0 and 1 were committed before the restart.
    let got = consume(&[&c], 2, 40);
    assert_eq!(
        got[0],
        (0..PARTITIONS)
            .flat_map(|p| (100..110).map(move |o| (p, o)))
            .collect(),
        "round 2 only, from the committed offsets"
    );
}

#[test]
fn a_simple_consumer_commits_without_joining() {
    let cluster = Cluster::start(1, &GROUP_CONFIG);
    let bootstrap = cluster.bootstrap();
    let admin = admin(&bootstrap);
    create_topic(&admin, &cluster.nodes[0], TOPIC, PARTITIONS, &[]);
    produce(&bootstrap, 0, 5);
    // assign() with a group.id: offset commits with generation -1, no membership.
    let c = group_consumer(&bootstrap, "simple");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Beginning)
        .expect("tpl");
    c.assign(&tpl).expect("assign");
    let got = consume(&[&c], 0, 5);
    assert_eq!(got[0].len(), 5);
    let mut commit = TopicPartitionList::new();
    commit
        .add_partition_offset(TOPIC, 0, Offset::Offset(3))
        .expect("tpl");
    c.commit(&commit, CommitMode::Sync).expect("commit");
    assert_eq!(committed(&c).get(&0), Some(&3));
    assert_eq!(committed(&c).get(&1), Some(&-1), "nothing committed there");

    // Committing to a topic that does not exist is refused for that partition.
    let mut bad = TopicPartitionList::new();
    bad.add_partition_offset("no-such-topic", 0, Offset::Offset(1))
        .expect("tpl");
    assert!(c.commit(&bad, CommitMode::Sync).is_err());

    // The group exists through its offsets: Empty, no protocol type.
    let groups = c.fetch_group_list(Some("simple"), T).expect("group list");
    let g = &groups.groups()[0];
    assert_eq!(
        (g.name(), g.state(), g.protocol_type()),
        ("simple", "Empty", "")
    );
    // OffsetDelete (no members: allowed), then DeleteGroups removes what is left.
    use rafka_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };
    use rafka_protocol::messages::{
        DeleteGroupsRequest, OffsetDeleteRequest, RequestKind, ResponseKind,
    };
    let addr = cluster.nodes[0].addr();
    let req = OffsetDeleteRequest {
        group_id: "simple".into(),
        topics: vec![OffsetDeleteRequestTopic {
            name: TOPIC.into(),
            partitions: vec![OffsetDeleteRequestPartition {
                partition_index: 0,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    match common::raw_request(addr, 0, RequestKind::OffsetDelete(req), T).expect("OffsetDelete") {
        ResponseKind::OffsetDelete(r) => {
            assert_eq!(r.error_code, 0, "{r:?}");
            assert_eq!(r.topics[0].partitions[0].error_code, 0, "{r:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(committed(&c).get(&0), Some(&-1), "deleted by OffsetDelete");
    c.commit(&commit, CommitMode::Sync).expect("commit again");
    let req = DeleteGroupsRequest {
        groups_names: vec!["simple".into(), "unknown".into()],
        ..Default::default()
    };
    match common::raw_request(addr, 2, RequestKind::DeleteGroups(req), T).expect("DeleteGroups") {
        ResponseKind::DeleteGroups(r) => {
            let codes: Vec<(String, i16)> = r
                .results
                .into_iter()
                .map(|g| (g.group_id, g.error_code))
                .collect();
            // GROUP_ID_NOT_FOUND (69) for a group that never existed.
            assert_eq!(codes, vec![("simple".into(), 0), ("unknown".into(), 69)]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(committed(&c).get(&0), Some(&-1), "gone with the group");

    // __consumer_offsets was created with offsets.topic.num.partitions (Kafka's 50).
    let md = common::metadata(cluster.nodes[0].addr(), Some(&["__consumer_offsets"]), T)
        .expect("metadata");
    assert_eq!(md.topics[0].partitions.len(), 50);
}
