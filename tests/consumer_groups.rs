//! KIP-848 consumer groups (`group.protocol=consumer`) with librdkafka 2.12 against the real
//! binary: the broker assigns partitions (uniform assignor), members join and leave
//! incrementally, a SIGKILLed member's partitions move after its session timeout, the group and
//! its offsets survive a broker restart, a regex subscription picks up a new topic, and on a
//! three-node cluster a SIGKILLed coordinator loses no committed offset and no assignment.
//! Hostile ConsumerGroupHeartbeat and ConsumerGroupDescribe frames get Kafka's errors.

mod common;

use common::{admin, create_replicated_topic, create_topic, Cluster, Deadline};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use std::collections::BTreeSet;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);
const TOPIC: &str = "kip848";
const PARTITIONS: i32 = 6;
const CONFIG: [(&str, &str); 4] = common::KIP848_GROUP_CONFIG;

fn member(bootstrap: &str, group: &str) -> BaseConsumer {
    common::kip848_consumer(bootstrap, group)
}

fn produce(bootstrap: &str, topic: &str, round: usize, per_partition: usize) {
    common::produce_round(bootstrap, topic, PARTITIONS, round, per_partition, T);
}

fn assigned(c: &BaseConsumer) -> BTreeSet<(String, i32)> {
    c.assignment()
        .expect("assignment")
        .elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}

/// Polls everyone until their assignments are disjoint, non-empty and cover `TOPIC`.
fn wait_for_split(consumers: &[&BaseConsumer], what: &str) {
    let deadline = Deadline::after(Duration::from_secs(60));
    loop {
        for c in consumers {
            // Polling serves the rebalance callbacks; no records are produced meanwhile.
            match c.poll(Duration::from_millis(20)) {
                Some(Err(e)) if !transient(&e) => panic!("{what}: {e}"),
                _ => {}
            }
        }
        let sets: Vec<_> = consumers.iter().map(|c| assigned(c)).collect();
        let total: usize = sets.iter().map(BTreeSet::len).sum();
        let union: BTreeSet<_> = sets.iter().flatten().cloned().collect();
        if union.len() == PARTITIONS as usize
            && total == union.len()
            && sets.iter().all(|s| !s.is_empty())
        {
            return;
        }
        // Never two owners at once, even while reconciling.
        assert_eq!(
            total,
            union.len(),
            "{what}: a partition owned twice: {sets:?}"
        );
        deadline.check(|| format!("{what}: no split assignment: {sets:?}"));
    }
}

/// Polls until `want` records of round `round` arrived; each (partition, offset) once, each
/// consumer only from its own partitions.
fn consume_round(consumers: &[&BaseConsumer], round: usize, want: usize) {
    let mut seen = BTreeSet::new();
    let deadline = Deadline::after(Duration::from_secs(60));
    while seen.len() < want {
        deadline.check(|| format!("round {round}: consumed {} of {want}", seen.len()));
        for (i, c) in consumers.iter().enumerate() {
            if let Some(m) = c.poll(Duration::from_millis(20)) {
                let m = match m {
                    Ok(m) => m,
                    // The broker restarting: librdkafka reports it and reconnects.
                    Err(e) if transient(&e) => continue,
                    Err(e) => panic!("consumer {i}: {e}"),
                };
                let text = std::str::from_utf8(m.payload().unwrap_or_default()).unwrap_or("");
                assert!(
                    text.starts_with(&format!("round {round} partition {}", m.partition())),
                    "consumer {i} got {text:?} at {}@{}",
                    m.partition(),
                    m.offset()
                );
                assert!(
                    assigned(c).contains(&(m.topic().to_string(), m.partition())),
                    "consumer {i} read partition {} it does not own",
                    m.partition()
                );
                assert!(
                    seen.insert((m.partition(), m.offset())),
                    "read twice: {}@{}",
                    m.partition(),
                    m.offset()
                );
            }
        }
    }
}

fn transient(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode::{AllBrokersDown, BrokerTransportFailure};
    matches!(
        e.rdkafka_error_code(),
        Some(BrokerTransportFailure | AllBrokersDown)
    )
}

fn commit(consumers: &[&BaseConsumer]) {
    for c in consumers {
        c.commit_consumer_state(CommitMode::Sync).expect("commit");
    }
}

/// Run as a child process by the test below (then SIGKILLed): one member that consumes.
#[test]
fn child_member() {
    let Ok(bootstrap) = std::env::var("RAFKA_KIP848_CHILD") else {
        return;
    };
    let c = member(&bootstrap, "g848");
    c.subscribe(&[TOPIC]).expect("subscribe");
    let deadline = Deadline::after(Duration::from_secs(120));
    while !deadline.passed() {
        let _ = c.poll(Duration::from_millis(50));
    }
}

#[test]
fn members_share_partitions_join_leave_die_and_survive_a_restart() {
    let mut cluster = Cluster::start(1, &CONFIG);
    let bootstrap = cluster.bootstrap();
    create_topic(
        &admin(&bootstrap),
        &cluster.nodes[0],
        TOPIC,
        PARTITIONS,
        &[],
    );

    // Two members split the partitions; every record is read once.
    let a = member(&bootstrap, "g848");
    let b = member(&bootstrap, "g848");
    a.subscribe(&[TOPIC]).expect("subscribe");
    b.subscribe(&[TOPIC]).expect("subscribe");
    wait_for_split(&[&a, &b], "two members");
    produce(&bootstrap, TOPIC, 0, 20);
    consume_round(&[&a, &b], 0, 120);
    commit(&[&a, &b]);

    // A third joins: three ways, no partition owned twice on the way.
    let c = member(&bootstrap, "g848");
    c.subscribe(&[TOPIC]).expect("subscribe");
    wait_for_split(&[&a, &b, &c], "three members");
    produce(&bootstrap, TOPIC, 1, 20);
    consume_round(&[&a, &b, &c], 1, 120);
    commit(&[&a, &b, &c]);

    // It leaves (epoch -1): the other two take its partitions.
    c.unsubscribe();
    drop(c);
    wait_for_split(&[&a, &b], "after a leave");
    produce(&bootstrap, TOPIC, 2, 10);
    consume_round(&[&a, &b], 2, 60);
    commit(&[&a, &b]);

    // A member in another process is SIGKILLed: after its session its partitions come back.
    let exe = std::env::current_exe().expect("test binary");
    let mut child = std::process::Command::new(exe)
        .args(["--exact", "child_member", "--nocapture"])
        .env("RAFKA_KIP848_CHILD", &bootstrap)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn child member");
    let deadline = Deadline::after(Duration::from_secs(60));
    loop {
        let _ = a.poll(Duration::from_millis(20));
        let _ = b.poll(Duration::from_millis(20));
        if assigned(&a).len() + assigned(&b).len() < PARTITIONS as usize {
            break; // the child owns some
        }
        if deadline.passed() {
            let _ = child.kill();
            panic!("the child member never got partitions");
        }
    }
    child.kill().expect("SIGKILL the child member");
    let _ = child.wait();
    let killed = std::time::Instant::now();
    wait_for_split(&[&a, &b], "after a SIGKILL");
    // Its partitions came back through its session timeout (6 s), not sooner.
    assert!(
        killed.elapsed() >= Duration::from_secs(4),
        "{:?}",
        killed.elapsed()
    );
    produce(&bootstrap, TOPIC, 3, 10);
    consume_round(&[&a, &b], 3, 60);
    commit(&[&a, &b]);

    // The broker restarts: the group comes back from __consumer_offsets with its offsets;
    // only the new round is read.
    cluster.nodes[0].terminate();
    cluster.nodes[0].start();
    cluster.wait_ready(T);
    produce(&bootstrap, TOPIC, 4, 10);
    consume_round(&[&a, &b], 4, 60);
    let groups = a
        .fetch_group_list(Some("g848"), T)
        .expect("ListGroups/DescribeGroups");
    let g = &groups.groups()[0];
    assert_eq!((g.name(), g.protocol_type()), ("g848", "consumer"));
    // A newcomer after everyone left starts from the committed offsets (round 4 is not
    // committed: it is read again, rounds 0–3 are not).
    drop(a);
    drop(b);
    let d = member(&bootstrap, "g848");
    d.subscribe(&[TOPIC]).expect("subscribe");
    consume_round(&[&d], 4, 60);
}

#[test]
fn a_regex_subscription_picks_up_a_new_topic() {
    let cluster = Cluster::start(1, &CONFIG);
    let bootstrap = cluster.bootstrap();
    let admin = admin(&bootstrap);
    create_topic(&admin, &cluster.nodes[0], "rx-one", PARTITIONS, &[]);
    create_topic(&admin, &cluster.nodes[0], "other", PARTITIONS, &[]);
    let c = member(&bootstrap, "gregex");
    c.subscribe(&["^rx-.*"]).expect("subscribe");
    let deadline = Deadline::after(Duration::from_secs(60));
    let want = |topics: &[&str]| -> BTreeSet<(String, i32)> {
        topics
            .iter()
            .flat_map(|t| (0..PARTITIONS).map(move |p| (t.to_string(), p)))
            .collect()
    };
    while assigned(&c) != want(&["rx-one"]) {
        let _ = c.poll(Duration::from_millis(20));
        deadline.check(|| format!("assignment {:?}", assigned(&c)));
    }
    create_topic(&admin, &cluster.nodes[0], "rx-two", PARTITIONS, &[]);
    while assigned(&c) != want(&["rx-one", "rx-two"]) {
        let _ = c.poll(Duration::from_millis(20));
        deadline.check(|| format!("assignment {:?}", assigned(&c)));
    }
    produce(&bootstrap, "rx-two", 0, 5);
    let mut n = 0;
    while n < 30 {
        if let Some(m) = c.poll(Duration::from_millis(50)) {
            let m = m.expect("message");
            assert_eq!(m.topic(), "rx-two");
            n += 1;
        }
        deadline.check(|| format!("read {n} of 30 from rx-two"));
    }
}

/// KIP-848 on three nodes: the group coordinator is SIGKILLed. Another broker takes over its
/// `__consumer_offsets` partition (replicated three ways) and loads the group from its records:
/// the members keep exactly the partitions they had (no assignment lost or moved while they
/// stay), and only what was produced after the last commit is read again — no committed offset
/// lost.
#[test]
fn a_sigkilled_coordinator_loses_no_offset_and_no_assignment() {
    let _serial = common::one_cluster_at_a_time();
    let mut cluster = Cluster::start(
        3,
        &[
            ("offsets.topic.replication.factor", "3"),
            ("offsets.topic.num.partitions", "3"),
            ("min.insync.replicas", "2"),
            ("group.initial.rebalance.delay.ms", "0"),
            ("group.consumer.session.timeout.ms", "20000"),
            ("group.consumer.heartbeat.interval.ms", "300"),
            ("replica.fetch.wait.max.ms", "200"),
            ("broker.session.timeout.ms", "3000"),
            ("controller.quorum.request.timeout.ms", "1000"),
            ("broker.heartbeat.interval.ms", "500"),
        ],
    );
    let group = "g848-failover";
    // The coordinator is known before anyone joins; the members bootstrap from the others, so
    // losing it is losing only the coordinator (and a third of the partition leaders).
    let deadline = Deadline::after(T);
    let dead = loop {
        if let Some(id) = common::group_coordinator(&cluster.nodes[0], group) {
            break id;
        }
        deadline.check(|| "a coordinator for the group".into());
        std::thread::sleep(Duration::from_millis(100));
    };
    let alive: String = (1..=3)
        .filter(|&id| id != dead)
        .map(|id| cluster.nodes[(id - 1) as usize].bootstrap())
        .collect::<Vec<_>>()
        .join(",");
    create_replicated_topic(&alive, TOPIC, PARTITIONS, 3);
    let a = member(&alive, group);
    let b = member(&alive, group);
    a.subscribe(&[TOPIC]).expect("subscribe");
    b.subscribe(&[TOPIC]).expect("subscribe");
    wait_for_split(&[&a, &b], "two members");
    produce(&alive, TOPIC, 0, 10);
    consume_round(&[&a, &b], 0, 60);
    commit(&[&a, &b]);
    let before = (assigned(&a), assigned(&b));

    cluster.nodes[(dead - 1) as usize].kill();
    let deadline = Deadline::after(Duration::from_secs(40));
    let now = loop {
        let now = (1..=3)
            .filter(|&id| id != dead)
            .find_map(|id| common::group_coordinator(&cluster.nodes[(id - 1) as usize], group));
        if let Some(id) = now.filter(|&id| id != dead) {
            break id;
        }
        let _ = a.poll(Duration::from_millis(20));
        let _ = b.poll(Duration::from_millis(20));
        deadline.check(|| format!("a new coordinator\n{}", cluster.logs(30)));
    };
    assert_ne!(now, dead);
    // Round 1, produced after the failover, is read once, each record by the member that had
    // its partition before: round 0 (committed) is not read again.
    produce(&alive, TOPIC, 1, 10);
    consume_round(&[&a, &b], 1, 60);
    assert_eq!(
        (assigned(&a), assigned(&b)),
        before,
        "the assignment survived the coordinator"
    );
    commit(&[&a, &b]);
    // The new coordinator has the offsets: a newcomer after everyone left starts at the end of
    // round 1, reading only round 2.
    drop(a);
    drop(b);
    produce(&alive, TOPIC, 2, 5);
    let d = member(&alive, group);
    d.subscribe(&[TOPIC]).expect("subscribe");
    consume_round(&[&d], 2, 30);
}

/// Raw ConsumerGroupHeartbeat v1 / ConsumerGroupDescribe v1 frames a client library would never
/// send: each gets Kafka's error code (`throwIfConsumerGroupHeartbeatRequestIsInvalid`, then the
/// coordinator's checks), a truncated frame closes only its connection, and the broker goes on
/// serving the group.
#[test]
fn hostile_heartbeats_and_describes_get_kafkas_errors() {
    use rafka_protocol::messages::consumer_group_heartbeat_request::HeartbeatTopicPartitions;
    use rafka_protocol::messages::{
        ConsumerGroupDescribeRequest, ConsumerGroupHeartbeatRequest,
        ConsumerGroupHeartbeatResponse, RequestKind, ResponseKind,
    };
    use rafka_protocol::{ErrorCode, Uuid};
    use std::io::{Read, Write};

    let cluster = Cluster::start(1, &CONFIG);
    let node = &cluster.nodes[0];
    create_topic(&admin(&node.bootstrap()), node, TOPIC, PARTITIONS, &[]);
    let heartbeat = |req: ConsumerGroupHeartbeatRequest| -> ConsumerGroupHeartbeatResponse {
        match common::raw_request(node.addr(), 1, RequestKind::ConsumerGroupHeartbeat(req), T)
            .expect("ConsumerGroupHeartbeat")
        {
            ResponseKind::ConsumerGroupHeartbeat(r) => r,
            other => panic!("not a ConsumerGroupHeartbeat response: {other:?}"),
        }
    };
    let join = |member: &str| ConsumerGroupHeartbeatRequest {
        group_id: "hostile".into(),
        member_id: member.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(vec![TOPIC.into()]),
        topic_partitions: Some(vec![]),
        ..Default::default()
    };
    // Before this broker coordinates anything (no __consumer_offsets yet), a malformed
    // heartbeat is answered for what it is, and only a well-formed one gets NOT_COORDINATOR:
    // Kafka's `GroupCoordinatorService` validates before it looks for the coordinator.
    let early = heartbeat(join(""));
    assert_eq!(
        early.error_code,
        ErrorCode::InvalidRequest.code(),
        "{:?}",
        early.error_message
    );
    let early = heartbeat(ConsumerGroupHeartbeatRequest {
        member_epoch: -3,
        ..join("m0")
    });
    assert_eq!(early.error_code, ErrorCode::InvalidRequest.code());
    let early = heartbeat(ConsumerGroupHeartbeatRequest {
        server_assignor: Some("no-such-assignor".into()),
        ..join("m0")
    });
    assert_eq!(early.error_code, ErrorCode::UnsupportedAssignor.code());
    assert_eq!(
        heartbeat(join("m0")).error_code,
        ErrorCode::NotCoordinator.code()
    );
    // Once this broker coordinates the group (FindCoordinator creates __consumer_offsets, as
    // Kafka's does, and its partition is loaded), a member joins and leaves.
    let deadline = Deadline::after(T);
    loop {
        if common::group_coordinator(node, "hostile").is_none() {
            deadline.check(|| "a coordinator for the group".into());
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        let r = heartbeat(join("m0"));
        if r.error_code == 0 {
            let left = heartbeat(ConsumerGroupHeartbeatRequest {
                member_epoch: -1,
                topic_partitions: None,
                subscribed_topic_names: None,
                ..join("m0")
            });
            assert_eq!(left.error_code, 0, "{:?}", left.error_message);
            break;
        }
        deadline.check(|| format!("the group's coordinator: {:?}", r.error_message));
        std::thread::sleep(Duration::from_millis(100));
    }
    let code = |r: &ConsumerGroupHeartbeatResponse| {
        ErrorCode::from_code(r.error_code).expect("a known error code")
    };
    let cases: Vec<(&str, ConsumerGroupHeartbeatRequest, ErrorCode)> = vec![
        (
            "empty group id",
            ConsumerGroupHeartbeatRequest {
                group_id: String::new(),
                ..join("m1")
            },
            ErrorCode::InvalidRequest,
        ),
        ("empty member id (v1)", join(""), ErrorCode::InvalidRequest),
        (
            "no rebalance timeout on join",
            ConsumerGroupHeartbeatRequest {
                rebalance_timeout_ms: -1,
                ..join("m1")
            },
            ErrorCode::InvalidRequest,
        ),
        (
            "no subscription on join",
            ConsumerGroupHeartbeatRequest {
                subscribed_topic_names: None,
                ..join("m1")
            },
            ErrorCode::InvalidRequest,
        ),
        (
            "owned partitions on join",
            ConsumerGroupHeartbeatRequest {
                topic_partitions: Some(vec![HeartbeatTopicPartitions {
                    topic_id: Uuid::from_u128(7),
                    partitions: vec![0],
                    ..Default::default()
                }]),
                ..join("m1")
            },
            ErrorCode::InvalidRequest,
        ),
        (
            "epoch -3",
            ConsumerGroupHeartbeatRequest {
                member_epoch: -3,
                ..join("m1")
            },
            ErrorCode::InvalidRequest,
        ),
        (
            "static leave without an instance id",
            ConsumerGroupHeartbeatRequest {
                member_epoch: -2,
                ..join("m1")
            },
            ErrorCode::InvalidRequest,
        ),
        (
            "empty instance id",
            ConsumerGroupHeartbeatRequest {
                instance_id: Some(String::new()),
                ..join("m1")
            },
            ErrorCode::InvalidRequest,
        ),
        (
            "too many subscribed topics",
            ConsumerGroupHeartbeatRequest {
                subscribed_topic_names: Some((0..10_001).map(|i| format!("t{i}")).collect()),
                ..join("m1")
            },
            ErrorCode::InvalidRequest,
        ),
        (
            "a regex that does not compile",
            ConsumerGroupHeartbeatRequest {
                subscribed_topic_names: None,
                subscribed_topic_regex: Some("(unclosed".into()),
                ..join("m1")
            },
            ErrorCode::InvalidRegularExpression,
        ),
        (
            "a huge regex",
            ConsumerGroupHeartbeatRequest {
                subscribed_topic_names: None,
                subscribed_topic_regex: Some("a|".repeat(15_000) + "a"),
                ..join("m1")
            },
            ErrorCode::InvalidRegularExpression,
        ),
        (
            "a regex whose automaton explodes",
            ConsumerGroupHeartbeatRequest {
                subscribed_topic_names: None,
                subscribed_topic_regex: Some("(((a{100}){100}){100})".into()),
                ..join("m1")
            },
            ErrorCode::InvalidRegularExpression,
        ),
        (
            "an unknown server assignor",
            ConsumerGroupHeartbeatRequest {
                server_assignor: Some("sticky-by-vibes".into()),
                ..join("m1")
            },
            ErrorCode::UnsupportedAssignor,
        ),
        (
            "an unknown member with a positive epoch",
            ConsumerGroupHeartbeatRequest {
                member_epoch: 5,
                topic_partitions: None,
                ..join("nobody")
            },
            ErrorCode::UnknownMemberId,
        ),
    ];
    for (what, req, want) in cases {
        let r = heartbeat(req);
        assert_eq!(code(&r), want, "{what}: {:?}", r.error_message);
    }

    // A real member, then heartbeats with a bad epoch and too many owned partitions.
    let r = heartbeat(join("m1"));
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    let epoch = r.member_epoch;
    assert!(epoch > 0);
    let r = heartbeat(ConsumerGroupHeartbeatRequest {
        member_epoch: epoch + 5,
        topic_partitions: None,
        subscribed_topic_names: None,
        ..join("m1")
    });
    assert_eq!(
        code(&r),
        ErrorCode::FencedMemberEpoch,
        "{:?}",
        r.error_message
    );
    let r = heartbeat(join("m2"));
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    let r = heartbeat(ConsumerGroupHeartbeatRequest {
        member_epoch: r.member_epoch,
        topic_partitions: Some(vec![HeartbeatTopicPartitions {
            topic_id: Uuid::from_u128(7),
            partitions: (0..100_001).collect(),
            ..Default::default()
        }]),
        subscribed_topic_names: None,
        ..join("m2")
    });
    assert_eq!(code(&r), ErrorCode::InvalidRequest, "{:?}", r.error_message);

    // ConsumerGroupDescribe: an unknown group is GROUP_ID_NOT_FOUND and an empty name
    // INVALID_GROUP_ID (Kafka's GroupCoordinatorService), beside the real group, which lists
    // its member.
    let describe = ConsumerGroupDescribeRequest {
        group_ids: vec!["hostile".into(), "nope".into(), String::new()],
        ..Default::default()
    };
    let groups = match common::raw_request(
        node.addr(),
        1,
        RequestKind::ConsumerGroupDescribe(describe),
        T,
    )
    .expect("ConsumerGroupDescribe")
    {
        ResponseKind::ConsumerGroupDescribe(r) => r.groups,
        other => panic!("not a ConsumerGroupDescribe response: {other:?}"),
    };
    let got: Vec<(String, ErrorCode)> = groups
        .iter()
        .map(|g| {
            (
                g.group_id.clone(),
                ErrorCode::from_code(g.error_code).expect("a known error code"),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("hostile".to_owned(), ErrorCode::None),
            ("nope".to_owned(), ErrorCode::GroupIdNotFound),
            (String::new(), ErrorCode::InvalidGroupId),
        ]
    );
    assert!(groups[0].members.iter().any(|m| m.member_id == "m1"));

    // A truncated ConsumerGroupHeartbeat frame (header, then a group id that claims more bytes
    // than the frame has) closes that connection and nothing else.
    let mut s = std::net::TcpStream::connect(node.addr()).expect("connect");
    s.set_read_timeout(Some(T)).expect("timeout");
    let mut body = vec![0, 68, 0, 1, 0, 0, 0, 9, 0, 1, b'x', 0];
    body.extend_from_slice(&[0x7f, b'g']);
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    s.write_all(&frame).expect("write");
    let mut buf = [0u8; 1];
    assert!(
        matches!(s.read(&mut buf), Ok(0) | Err(_)),
        "a malformed frame is not answered"
    );
    let r = heartbeat(ConsumerGroupHeartbeatRequest {
        member_epoch: epoch,
        topic_partitions: None,
        subscribed_topic_names: None,
        ..join("m1")
    });
    assert_eq!(
        r.error_code, 0,
        "the group is still served: {:?}",
        r.error_message
    );
}

/// The type ListGroups v5 reports for `group` (`classic` or `consumer`); `None` if not listed.
fn group_type(node: &common::Node, group: &str) -> Option<String> {
    use rafka_protocol::messages::{ListGroupsRequest, RequestKind, ResponseKind};
    match common::raw_request(
        node.addr(),
        5,
        RequestKind::ListGroups(ListGroupsRequest::default()),
        T,
    )
    .expect("ListGroups")
    {
        ResponseKind::ListGroups(r) => r
            .groups
            .into_iter()
            .find(|g| g.group_id == group)
            .map(|g| g.group_type),
        other => panic!("not a ListGroups response: {other:?}"),
    }
}

/// Conversion as Kafka 4 does it for empty groups (`group.consumer.migration.policy`): an empty
/// classic group becomes a consumer group when a `group.protocol=consumer` member joins, and an
/// empty consumer group becomes classic again when a classic member joins; the committed
/// offsets stay through both, so each newcomer reads only what was not committed.
#[test]
fn an_empty_classic_group_converts_to_a_consumer_group_and_back() {
    let cluster = Cluster::start(1, &CONFIG);
    let node = &cluster.nodes[0];
    let bootstrap = cluster.bootstrap();
    create_topic(&admin(&bootstrap), node, TOPIC, PARTITIONS, &[]);
    let group = "converts";
    let wait_type = |want: &str| {
        let deadline = Deadline::after(T);
        while group_type(node, group).as_deref() != Some(want) {
            deadline.check(|| format!("group type {want}: {:?}", group_type(node, group)));
            std::thread::sleep(Duration::from_millis(50));
        }
    };

    // A classic member reads round 0 and commits; it leaves.
    let classic = common::group_consumer(&bootstrap, group);
    classic.subscribe(&[TOPIC]).expect("subscribe");
    produce(&bootstrap, TOPIC, 0, 10);
    consume_round(&[&classic], 0, 60);
    commit(&[&classic]);
    assert_eq!(group_type(node, group).as_deref(), Some("classic"));
    classic.unsubscribe();
    drop(classic);

    // The empty classic group becomes a consumer group: the new member starts at round 1.
    produce(&bootstrap, TOPIC, 1, 10);
    let modern = member(&bootstrap, group);
    modern.subscribe(&[TOPIC]).expect("subscribe");
    consume_round(&[&modern], 1, 60);
    wait_type("consumer");
    // While it has a member, a classic member joins it as a classic member (KIP-848's online
    // migration; `tests/group_migration.rs` covers it in depth): the group stays a consumer
    // group and the two share the topic; the classic member's LeaveGroup leaves it to the other.
    // Round 1 committed first: the classic member starts after it.
    commit(&[&modern]);
    let classic_member = common::group_consumer(&bootstrap, group);
    classic_member.subscribe(&[TOPIC]).expect("subscribe");
    wait_for_split(
        &[&modern, &classic_member],
        "a classic member in the consumer group",
    );
    assert_eq!(group_type(node, group).as_deref(), Some("consumer"));
    classic_member.unsubscribe();
    drop(classic_member);
    modern.unsubscribe();
    drop(modern);

    // Empty again: a classic member turns it back into a classic group, from round 2 on.
    produce(&bootstrap, TOPIC, 2, 10);
    let deadline = Deadline::after(T);
    let back = loop {
        // The consumer member's leave (epoch -1) may still be on its way: a classic join into a
        // consumer group with members would join it as a classic member; a fresh consumer
        // retries until it gets partitions.
        let c = common::group_consumer(&bootstrap, group);
        c.subscribe(&[TOPIC]).expect("subscribe");
        let until = Deadline::after(Duration::from_secs(10));
        let mut ok = true;
        while c.assignment().map(|a| a.count()).unwrap_or(0) == 0 {
            if let Some(Err(e)) = c.poll(Duration::from_millis(50)) {
                if !transient(&e) {
                    ok = false;
                    break;
                }
            }
            if until.passed() {
                ok = false;
                break;
            }
        }
        if ok {
            break c;
        }
        deadline.check(|| "a classic member joins the emptied consumer group".into());
    };
    consume_round(&[&back], 2, 60);
    wait_type("classic");
}

/// `group.coordinator.rebalance.protocols=classic`: the consumer protocol (KIP-848) is off, so
/// ConsumerGroupHeartbeat and ConsumerGroupDescribe are UNSUPPORTED_VERSION, as Kafka answers
/// them, while classic groups work as ever.
#[test]
fn the_consumer_protocol_can_be_turned_off() {
    use rafka_protocol::messages::{
        ConsumerGroupDescribeRequest, ConsumerGroupHeartbeatRequest, RequestKind, ResponseKind,
    };
    use rafka_protocol::ErrorCode;
    let cluster = Cluster::start(
        1,
        &[
            ("group.coordinator.rebalance.protocols", "classic"),
            ("offsets.topic.replication.factor", "1"),
        ],
    );
    let node = &cluster.nodes[0];
    create_topic(&admin(&cluster.bootstrap()), node, "classic-only", 1, &[]);
    let hb = common::raw_request(
        node.addr(),
        0,
        RequestKind::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest {
            group_id: "g848".into(),
            member_id: "m".into(),
            member_epoch: 0,
            rebalance_timeout_ms: 30_000,
            subscribed_topic_names: Some(vec!["classic-only".into()]),
            topic_partitions: Some(vec![]),
            ..Default::default()
        }),
        Duration::from_secs(10),
    )
    .expect("ConsumerGroupHeartbeat");
    let ResponseKind::ConsumerGroupHeartbeat(hb) = hb else {
        panic!("{hb:?}")
    };
    assert_eq!(hb.error_code, ErrorCode::UnsupportedVersion.code());
    let d = common::raw_request(
        node.addr(),
        0,
        RequestKind::ConsumerGroupDescribe(ConsumerGroupDescribeRequest {
            group_ids: vec!["g848".into(), "other".into()],
            ..Default::default()
        }),
        Duration::from_secs(10),
    )
    .expect("ConsumerGroupDescribe");
    let ResponseKind::ConsumerGroupDescribe(d) = d else {
        panic!("{d:?}")
    };
    let codes: Vec<i16> = d.groups.iter().map(|g| g.error_code).collect();
    assert_eq!(codes, vec![ErrorCode::UnsupportedVersion.code(); 2]);
    // A classic group member still joins and reads.
    let p = common::producer(&cluster.bootstrap(), &[]);
    p.send(rdkafka::producer::BaseRecord::<(), str>::to("classic-only").payload("x"))
        .map_err(|(e, _)| e)
        .expect("send");
    common::flush(&p, Duration::from_secs(20));
    let c = common::group_consumer(&cluster.bootstrap(), "classic-group");
    c.subscribe(&["classic-only"]).expect("subscribe");
    let deadline = Deadline::after(Duration::from_secs(30));
    loop {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            assert_eq!(m.payload(), Some(&b"x"[..]));
            break;
        }
        deadline.check(|| {
            format!(
                "the classic member never read the record\n{}",
                node.log_tail(30)
            )
        });
    }
}
