//! KIP-848's online migration against the real binary with librdkafka: two classic consumers
//! (`group.protocol=classic`) consume with committed progress; a third with
//! `group.protocol=consumer` joins, and the group becomes a consumer group in place — the classic
//! members keep consuming through JoinGroup/SyncGroup/Heartbeat, every partition has one owner,
//! nothing below the committed offsets is read again; when the consumer-protocol member leaves,
//! the group is classic again and the two classic members share every partition (a broker
//! restart in between brings the classic members back as such). The refusals
//! (`group.consumer.migration.policy`, a non-`consumer` protocol type, `group.consumer.max.size`)
//! and hostile JoinGroup metadata for a classic member of a consumer group get Kafka's errors, in
//! raw frames.

mod common;

use common::{admin, create_topic, Cluster, Deadline};
use rafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use rafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
    DescribeGroupsRequest, JoinGroupRequest, JoinGroupResponse, ListGroupsRequest, RequestKind,
    ResponseKind,
};
use rafka_protocol::ErrorCode;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);
const TOPIC: &str = "migrating";
const PARTITIONS: i32 = 6;
const PER_PARTITION: usize = 10;

fn config<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut c = common::KIP848_GROUP_CONFIG.to_vec();
    c.extend_from_slice(extra);
    c
}

fn modern(bootstrap: &str, group: &str) -> BaseConsumer {
    common::kip848_consumer(bootstrap, group)
}

fn produce(bootstrap: &str, round: usize) {
    common::produce_round(bootstrap, TOPIC, PARTITIONS, round, PER_PARTITION, T);
}

fn assigned(c: &BaseConsumer) -> BTreeSet<i32> {
    c.assignment()
        .map(|a| a.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}

fn transient(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode::{AllBrokersDown, BrokerTransportFailure};
    matches!(
        e.rdkafka_error_code(),
        Some(BrokerTransportFailure | AllBrokersDown)
    )
}

/// What the members read: round → (partition, offset) → times read. The consumers' positions
/// below `committed` (per partition) must never be read again.
#[derive(Default)]
struct Reads {
    seen: BTreeMap<usize, BTreeMap<(i32, i64), usize>>,
    committed: BTreeMap<i32, i64>,
}

impl Reads {
    /// One poll of every consumer: records are checked (each from a partition its reader owns,
    /// none below the last commit) and counted; assignments must never overlap.
    fn poll(&mut self, consumers: &[&BaseConsumer], what: &str) {
        for (i, c) in consumers.iter().enumerate() {
            if let Some(m) = c.poll(Duration::from_millis(20)) {
                let m = match m {
                    Ok(m) => m,
                    Err(e) if transient(&e) => continue,
                    // A rebalance notice surfaces as an error event in some librdkafka paths.
                    Err(e) => {
                        eprintln!("{what}: consumer {i}: {e}");
                        continue;
                    }
                };
                let text = std::str::from_utf8(m.payload().unwrap_or_default()).unwrap_or("");
                let round: usize = text
                    .strip_prefix("round ")
                    .and_then(|r| r.split(' ').next())
                    .and_then(|r| r.parse().ok())
                    .unwrap_or_else(|| panic!("{what}: unexpected record {text:?}"));
                assert!(
                    m.offset() >= self.committed.get(&m.partition()).copied().unwrap_or(0),
                    "{what}: consumer {i} read {}@{} below the committed offset {:?}",
                    m.partition(),
                    m.offset(),
                    self.committed.get(&m.partition())
                );
                *self
                    .seen
                    .entry(round)
                    .or_default()
                    .entry((m.partition(), m.offset()))
                    .or_default() += 1;
            }
        }
        let sets: Vec<_> = consumers.iter().map(|c| assigned(c)).collect();
        let total: usize = sets.iter().map(BTreeSet::len).sum();
        let union: BTreeSet<_> = sets.iter().flatten().collect();
        assert_eq!(
            total,
            union.len(),
            "{what}: a partition owned twice: {sets:?}"
        );
    }

    fn read(&self, round: usize) -> usize {
        self.seen.get(&round).map_or(0, BTreeMap::len)
    }

    /// Polls until every record of `round` was read (at least once) and the assignments split
    /// the topic among all of `consumers`.
    fn until_done(&mut self, consumers: &[&BaseConsumer], round: usize, what: &str) {
        let want = PARTITIONS as usize * PER_PARTITION;
        let deadline = Deadline::after(Duration::from_secs(90));
        loop {
            self.poll(consumers, what);
            let sets: Vec<_> = consumers.iter().map(|c| assigned(c)).collect();
            let covered: BTreeSet<_> = sets.iter().flatten().collect();
            if self.read(round) == want
                && covered.len() == PARTITIONS as usize
                && sets.iter().all(|s| !s.is_empty())
            {
                return;
            }
            deadline.check(|| {
                format!(
                    "{what}: read {} of {want} of round {round}; assignments {sets:?}",
                    self.read(round)
                )
            });
        }
    }

    /// Everyone commits its position; later reads must start there.
    fn commit(&mut self, consumers: &[&BaseConsumer]) {
        for c in consumers {
            c.commit_consumer_state(CommitMode::Sync).expect("commit");
            if let Ok(p) = c.position() {
                for e in p.elements() {
                    if let rdkafka::Offset::Offset(o) = e.offset() {
                        self.committed.insert(e.partition(), o);
                    }
                }
            }
        }
    }
}

fn raw(node: &common::Node, version: i16, body: RequestKind) -> ResponseKind {
    common::raw_request(node.addr(), version, body, T).expect("request")
}

/// The type ListGroups v5 reports for `group`.
fn group_type(node: &common::Node, group: &str) -> Option<String> {
    match raw(
        node,
        5,
        RequestKind::ListGroups(ListGroupsRequest::default()),
    ) {
        ResponseKind::ListGroups(r) => r
            .groups
            .into_iter()
            .find(|g| g.group_id == group)
            .map(|g| g.group_type),
        other => panic!("not a ListGroups response: {other:?}"),
    }
}

/// ConsumerGroupDescribe's members of `group`: (member type, assigned partitions); the error
/// code if it is not a consumer group.
fn consumer_members(node: &common::Node, group: &str) -> Result<Vec<(i8, usize)>, i16> {
    match raw(
        node,
        1,
        RequestKind::ConsumerGroupDescribe(ConsumerGroupDescribeRequest {
            group_ids: vec![group.into()],
            ..Default::default()
        }),
    ) {
        ResponseKind::ConsumerGroupDescribe(r) => {
            let g = &r.groups[0];
            if g.error_code != 0 {
                return Err(g.error_code);
            }
            Ok(g.members
                .iter()
                .map(|m| {
                    let n = m
                        .assignment
                        .topic_partitions
                        .iter()
                        .map(|t| t.partitions.len())
                        .sum();
                    (m.member_type, n)
                })
                .collect())
        }
        other => panic!("not a ConsumerGroupDescribe response: {other:?}"),
    }
}

fn describe_protocol_type(node: &common::Node, group: &str) -> (String, String, usize) {
    match raw(
        node,
        5,
        RequestKind::DescribeGroups(DescribeGroupsRequest {
            groups: vec![group.into()],
            ..Default::default()
        }),
    ) {
        ResponseKind::DescribeGroups(r) => {
            let g = &r.groups[0];
            (
                g.protocol_type.clone(),
                g.group_state.clone(),
                g.members.len(),
            )
        }
        other => panic!("not a DescribeGroups response: {other:?}"),
    }
}

fn wait_type(
    node: &common::Node,
    group: &str,
    want: &str,
    consumers: &[&BaseConsumer],
    reads: &mut Reads,
) {
    let deadline = Deadline::after(T);
    while group_type(node, group).as_deref() != Some(want) {
        reads.poll(consumers, want);
        deadline.check(|| format!("group type {want}: {:?}", group_type(node, group)));
    }
}

#[test]
fn classic_members_upgrade_to_a_consumer_group_and_back_without_losing_progress() {
    let mut cluster = Cluster::start(1, &config(&[]));
    let bootstrap = cluster.bootstrap();
    let node = &cluster.nodes[0];
    create_topic(&admin(&bootstrap), node, TOPIC, PARTITIONS, &[]);
    let group = "migrating-group";
    let mut reads = Reads::default();

    // Two classic members share the topic, read round 0 and commit it.
    let c1 = common::group_consumer(&bootstrap, group);
    let c2 = common::group_consumer(&bootstrap, group);
    c1.subscribe(&[TOPIC]).expect("subscribe");
    c2.subscribe(&[TOPIC]).expect("subscribe");
    produce(&bootstrap, 0);
    reads.until_done(&[&c1, &c2], 0, "classic");
    reads.commit(&[&c1, &c2]);
    assert_eq!(group_type(node, group).as_deref(), Some("classic"));

    // A member of the consumer protocol joins: the group becomes a consumer group with all
    // three; the classic members keep consuming, nobody reads below the commits.
    produce(&bootstrap, 1);
    let m = modern(&bootstrap, group);
    m.subscribe(&[TOPIC]).expect("subscribe");
    wait_type(node, group, "consumer", &[&c1, &c2, &m], &mut reads);
    reads.until_done(&[&c1, &c2, &m], 1, "upgraded");
    let deadline = Deadline::after(T);
    loop {
        reads.poll(&[&c1, &c2, &m], "upgraded");
        let members = consumer_members(node, group).expect("a consumer group");
        let classic = members.iter().filter(|(t, _)| *t == 0).count();
        let owned: usize = members.iter().map(|(_, n)| n).sum();
        if members.len() == 3 && classic == 2 && owned == PARTITIONS as usize {
            break;
        }
        deadline.check(|| format!("three members, two classic, all partitions: {members:?}"));
    }
    let (protocol_type, _, n) = describe_protocol_type(node, group);
    assert_eq!((protocol_type.as_str(), n), ("consumer", 3));
    // Classic members commit with their generation (their member epoch) by OffsetCommit < v9.
    reads.commit(&[&c1, &c2, &m]);

    // The broker restarts: the group comes back from __consumer_offsets with its classic
    // members as such (record 5's ClassicMemberMetadata), and all three stay in it.
    cluster.nodes[0].terminate();
    cluster.nodes[0].start();
    cluster.wait_ready(T);
    let deadline = Deadline::after(T);
    loop {
        reads.poll(&[&c1, &c2, &m], "restarted");
        if let Ok(members) = consumer_members(&cluster.nodes[0], group) {
            let classic = members.iter().filter(|(t, _)| *t == 0).count();
            if members.len() == 3 && classic == 2 {
                break;
            }
        }
        deadline.check(|| "the consumer group and its classic members after a restart".into());
    }
    let node = &cluster.nodes[0];

    // The consumer-protocol member leaves: the group is classic again, the two classic members
    // rejoin it and share every partition, from the commits on.
    produce(&bootstrap, 2);
    m.unsubscribe();
    drop(m);
    wait_type(node, group, "classic", &[&c1, &c2], &mut reads);
    reads.until_done(&[&c1, &c2], 2, "downgraded");
    let deadline = Deadline::after(T);
    loop {
        reads.poll(&[&c1, &c2], "downgraded");
        let (protocol_type, state, n) = describe_protocol_type(node, group);
        if (protocol_type.as_str(), state.as_str(), n) == ("consumer", "Stable", 2) {
            break;
        }
        deadline.check(|| format!("a Stable classic group of two: {state} {n}"));
    }
    assert_eq!(
        consumer_members(node, group),
        Err(ErrorCode::GroupIdNotFound.code())
    );
    assert_eq!(
        assigned(&c1).len() + assigned(&c2).len(),
        PARTITIONS as usize
    );
    // Round 0 was committed before the upgrade, round 1 before the downgrade: neither was read
    // again (checked at every read), and every record was read.
    for round in 0..3 {
        assert_eq!(
            reads.read(round),
            PARTITIONS as usize * PER_PARTITION,
            "round {round}"
        );
    }
}

fn heartbeat(node: &common::Node, group: &str) -> ConsumerGroupHeartbeatResponse {
    let req = ConsumerGroupHeartbeatRequest {
        group_id: group.into(),
        member_id: "modern-member".into(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(vec![TOPIC.into()]),
        topic_partitions: Some(vec![]),
        ..Default::default()
    };
    match raw(node, 1, RequestKind::ConsumerGroupHeartbeat(req)) {
        ResponseKind::ConsumerGroupHeartbeat(r) => r,
        other => panic!("not a ConsumerGroupHeartbeat response: {other:?}"),
    }
}

/// A classic member by raw JoinGroup v5 (member id first, then the join), with `metadata` as its
/// one protocol's subscription.
fn classic_join(
    node: &common::Node,
    group: &str,
    protocol_type: &str,
    metadata: bytes::Bytes,
    member_id: &str,
) -> JoinGroupResponse {
    let req = JoinGroupRequest {
        group_id: group.into(),
        session_timeout_ms: 30_000,
        rebalance_timeout_ms: 30_000,
        member_id: member_id.into(),
        protocol_type: protocol_type.into(),
        protocols: vec![JoinGroupRequestProtocol {
            name: "range".into(),
            metadata,
            ..Default::default()
        }],
        ..Default::default()
    };
    match raw(node, 5, RequestKind::JoinGroup(req)) {
        ResponseKind::JoinGroup(r) => r,
        other => panic!("not a JoinGroup response: {other:?}"),
    }
}

/// Waits until `node` coordinates `group` (the first FindCoordinator creates
/// `__consumer_offsets`).
fn coordinated(node: &common::Node, group: &str) {
    let deadline = Deadline::after(T);
    while common::group_coordinator(node, group).is_none() {
        deadline.check(|| format!("a coordinator for {group}"));
        std::thread::sleep(Duration::from_millis(50));
    }
    // Loaded: a heartbeat without a member id answers for the request, not the coordinator.
    loop {
        let r = classic_join(node, group, "consumer", subscription(), "");
        if r.error_code != ErrorCode::CoordinatorLoadInProgress.code()
            && r.error_code != ErrorCode::NotCoordinator.code()
        {
            return;
        }
        deadline.check(|| format!("{group}'s coordinator loaded"));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A classic member that stays (the join phase completes at once with the initial delay 0).
fn joined(node: &common::Node, group: &str, protocol_type: &str) -> JoinGroupResponse {
    coordinated(node, group);
    let sub = subscription();
    let first = classic_join(node, group, protocol_type, sub.clone(), "");
    assert_eq!(first.error_code, ErrorCode::MemberIdRequired.code());
    let r = classic_join(node, group, protocol_type, sub, &first.member_id);
    assert_eq!(r.error_code, 0, "{r:?}");
    r
}

/// A ConsumerProtocolSubscription v0 of `TOPIC`.
fn subscription() -> bytes::Bytes {
    let mut b = vec![0, 0, 0, 0, 0, 1];
    b.extend_from_slice(&(TOPIC.len() as i16).to_be_bytes());
    b.extend_from_slice(TOPIC.as_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.into()
}

/// Kafka's refusals: the policy forbids upgrades, the group's protocol type is not `consumer`,
/// the group has more members than a consumer group may (GROUP_ID_NOT_FOUND each, the classic
/// group untouched); and a classic member of a consumer group with unreadable metadata gets
/// UNKNOWN_SERVER_ERROR (Kafka's answer to it), one of another protocol type
/// INCONSISTENT_GROUP_PROTOCOL — the broker keeps serving.
#[test]
fn upgrades_are_refused_as_kafka_refuses_them_and_hostile_metadata_gets_kafkas_error() {
    let cluster = Cluster::start(
        1,
        &config(&[
            ("group.consumer.migration.policy", "downgrade"),
            ("group.consumer.max.size", "1"),
        ]),
    );
    let node = &cluster.nodes[0];
    create_topic(&admin(&node.bootstrap()), node, TOPIC, PARTITIONS, &[]);
    // Policy `downgrade`: no upgrade.
    joined(node, "policy", "consumer");
    assert_eq!(
        heartbeat(node, "policy").error_code,
        ErrorCode::GroupIdNotFound.code()
    );
    assert_eq!(group_type(node, "policy").as_deref(), Some("classic"));
    drop(cluster);

    // The first rebalance waits a second for more members: two joining together share it.
    let cluster = Cluster::start(
        1,
        &config(&[
            ("group.consumer.max.size", "1"),
            ("group.initial.rebalance.delay.ms", "1000"),
        ]),
    );
    let node = &cluster.nodes[0];
    create_topic(&admin(&node.bootstrap()), node, TOPIC, PARTITIONS, &[]);
    // Another protocol type (Kafka Connect's): no upgrade.
    joined(node, "connect", "connect");
    assert_eq!(
        heartbeat(node, "connect").error_code,
        ErrorCode::GroupIdNotFound.code()
    );
    assert_eq!(group_type(node, "connect").as_deref(), Some("classic"));
    // Two members, group.consumer.max.size 1: no upgrade.
    coordinated(node, "big");
    std::thread::scope(|s| {
        let a = s.spawn(|| joined(node, "big", "consumer"));
        let b = s.spawn(|| joined(node, "big", "consumer"));
        let (a, b) = (a.join().expect("join"), b.join().expect("join"));
        assert_eq!(a.generation_id, b.generation_id);
    });
    assert_eq!(
        heartbeat(node, "big").error_code,
        ErrorCode::GroupIdNotFound.code()
    );
    assert_eq!(group_type(node, "big").as_deref(), Some("classic"));
    // One member and the joining one would make two: GROUP_MAX_SIZE_REACHED, still classic.
    joined(node, "full", "consumer");
    assert_eq!(
        heartbeat(node, "full").error_code,
        ErrorCode::GroupMaxSizeReached.code()
    );
    assert_eq!(group_type(node, "full").as_deref(), Some("classic"));
    drop(cluster);

    // A consumer group with a member: classic joins with hostile metadata.
    let cluster = Cluster::start(1, &config(&[]));
    let node = &cluster.nodes[0];
    create_topic(&admin(&node.bootstrap()), node, TOPIC, PARTITIONS, &[]);
    coordinated(node, "modern");
    assert_eq!(heartbeat(node, "modern").error_code, 0);
    let hostile: [&[u8]; 5] = [
        &[],
        &[0xff, 0xff],
        &[0, 0, 0x7f, 0xff, 0xff, 0xff],
        &[0, 3, 0, 0, 0, 1, 0x7f, 0xff],
        &[
            0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff,
        ],
    ];
    for bad in hostile {
        let r = classic_join(
            node,
            "modern",
            "consumer",
            bytes::Bytes::from_static(bad),
            "m1",
        );
        assert_eq!(
            r.error_code,
            ErrorCode::UnknownServerError.code(),
            "{bad:?}"
        );
    }
    let r = classic_join(node, "modern", "connect", subscription(), "m1");
    assert_eq!(r.error_code, ErrorCode::InconsistentGroupProtocol.code());
    // Nothing of those joined; a well-formed one does, as a classic member.
    assert_eq!(consumer_members(node, "modern").map(|m| m.len()), Ok(1));
    let r = classic_join(node, "modern", "consumer", subscription(), "m1");
    assert_eq!(r.error_code, 0, "{r:?}");
    assert!(r.leader.is_empty() && r.members.is_empty(), "{r:?}");
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    let members = consumer_members(node, "modern").expect("consumer group");
    assert_eq!(
        members.iter().filter(|(t, _)| *t == 0).count(),
        1,
        "{members:?}"
    );
}
