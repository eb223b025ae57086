//! Config administration as librdkafka's own suite drives it (0081, 0092), in raw frames so that
//! every operation and resource is reachable: IncrementalAlterConfigs APPEND and SUBTRACT start
//! from the value in force, and every key DescribeConfigs lists is accepted back by
//! AlterConfigs and IncrementalAlterConfigs (describe-then-alter).

mod common;

use common::{create_topic, legacy_alter_configs, raw_request, Cluster, SyncProducer};
use rafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use rafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use rafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;
use rafka_protocol::messages::incremental_alter_configs_request as iacq;
use rafka_protocol::messages::{
    DeleteRecordsRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest, RequestKind,
    ResponseKind,
};
use std::net::SocketAddr;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);
const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

fn describe(addr: SocketAddr, resource_type: i8, name: &str) -> Vec<DescribeConfigsResourceResult> {
    let req = DescribeConfigsRequest {
        resources: vec![DescribeConfigsResource {
            resource_type,
            resource_name: name.into(),
            configuration_keys: None,
            ..Default::default()
        }],
        ..Default::default()
    };
    match raw_request(addr, 4, RequestKind::DescribeConfigs(req), T).expect("DescribeConfigs") {
        ResponseKind::DescribeConfigs(r) => {
            let res = r.results.into_iter().next().expect("one result");
            assert_eq!(res.error_code, 0, "{name}: {:?}", res.error_message);
            res.configs
        }
        other => panic!("not a DescribeConfigs response: {other:?}"),
    }
}

fn value(configs: &[DescribeConfigsResourceResult], key: &str) -> Option<String> {
    configs
        .iter()
        .find(|c| c.name == key)
        .unwrap_or_else(|| panic!("no {key} described"))
        .value
        .clone()
}

/// One IncrementalAlterConfigs resource: its (error code, message).
fn incremental(
    addr: SocketAddr,
    resource_type: i8,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
) -> (i16, Option<String>) {
    let req = IncrementalAlterConfigsRequest {
        resources: vec![iacq::AlterConfigsResource {
            resource_type,
            resource_name: name.into(),
            configs: ops
                .iter()
                .map(|(k, op, v)| iacq::AlterableConfig {
                    name: (*k).into(),
                    config_operation: *op,
                    value: v.map(str::to_owned),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    match raw_request(addr, 1, RequestKind::IncrementalAlterConfigs(req), T)
        .expect("IncrementalAlterConfigs")
    {
        ResponseKind::IncrementalAlterConfigs(r) => {
            let r = r.responses.into_iter().next().expect("one response");
            (r.error_code, r.error_message)
        }
        other => panic!("not an IncrementalAlterConfigs response: {other:?}"),
    }
}

fn delete_records(addr: SocketAddr, topic: &str, offset: i64) -> i16 {
    let req = DeleteRecordsRequest {
        topics: vec![DeleteRecordsTopic {
            name: topic.into(),
            partitions: vec![DeleteRecordsPartition {
                partition_index: 0,
                offset,
                ..Default::default()
            }],
            ..Default::default()
        }],
        timeout_ms: 10_000,
        ..Default::default()
    };
    match raw_request(addr, 2, RequestKind::DeleteRecords(req), T).expect("DeleteRecords") {
        ResponseKind::DeleteRecords(r) => r.topics[0].partitions[0].error_code,
        other => panic!("not a DeleteRecords response: {other:?}"),
    }
}

#[test]
fn append_and_subtract_start_from_the_value_in_force() {
    let cluster = Cluster::single();
    let n = &cluster.nodes[0];
    let addr = n.addr();
    let admin = common::admin(&n.bootstrap());
    create_topic(&admin, n, "plain", 1, &[]);

    // A topic with the default `delete`: APPEND compact gives Kafka's `delete,compact`.
    assert_eq!(
        incremental(
            addr,
            TOPIC,
            "plain",
            &[("cleanup.policy", APPEND, Some("compact"))]
        ),
        (0, None)
    );
    assert_eq!(
        value(&describe(addr, TOPIC, "plain"), "cleanup.policy").as_deref(),
        Some("delete,compact")
    );

    // The broker resource (librdkafka 0081): APPEND then SUBTRACT compact gives back `delete`.
    let me = n.node_id.to_string();
    assert_eq!(
        incremental(
            addr,
            BROKER,
            &me,
            &[("log.cleanup.policy", APPEND, Some("compact"))]
        ),
        (0, None)
    );
    assert_eq!(
        value(&describe(addr, BROKER, &me), "log.cleanup.policy").as_deref(),
        Some("delete,compact")
    );
    assert_eq!(
        incremental(
            addr,
            BROKER,
            &me,
            &[("log.cleanup.policy", SUBTRACT, Some("compact"))]
        ),
        (0, None)
    );
    assert_eq!(
        value(&describe(addr, BROKER, &me), "log.cleanup.policy").as_deref(),
        Some("delete")
    );
    // The same on the cluster-wide resource.
    assert_eq!(
        incremental(
            addr,
            BROKER,
            "",
            &[("log.cleanup.policy", APPEND, Some("compact"))]
        ),
        (0, None)
    );
    assert_eq!(
        incremental(
            addr,
            BROKER,
            "",
            &[("log.cleanup.policy", SUBTRACT, Some("compact"))]
        ),
        (0, None)
    );
    assert_eq!(
        value(&describe(addr, BROKER, ""), "log.cleanup.policy").as_deref(),
        Some("delete")
    );

    // A new topic reports `delete`, and DeleteRecords works on it.
    create_topic(&admin, n, "after", 1, &[]);
    assert_eq!(
        value(&describe(addr, TOPIC, "after"), "cleanup.policy").as_deref(),
        Some("delete")
    );
    let p = SyncProducer::new(&n.bootstrap(), &[]);
    for i in 0..3 {
        assert_eq!(p.send("after", 0, b"x"), Ok(i));
    }
    assert_eq!(
        delete_records(addr, "after", 2),
        0,
        "DeleteRecords on a delete topic"
    );

    // Subtracting every policy leaves Kafka's empty list: the log is kept whole, so
    // DeleteRecords is a POLICY_VIOLATION there (44), as in Kafka — and only there.
    assert_eq!(
        incremental(
            addr,
            TOPIC,
            "after",
            &[("cleanup.policy", SUBTRACT, Some("delete"))]
        ),
        (0, None)
    );
    let after = describe(addr, TOPIC, "after");
    assert_eq!(value(&after, "cleanup.policy").as_deref(), Some(""));
    assert_eq!(delete_records(addr, "after", 3), 44);
    create_topic(&admin, n, "other", 1, &[]);
    assert_eq!(
        value(&describe(addr, TOPIC, "other"), "cleanup.policy").as_deref(),
        Some("delete")
    );
}

/// librdkafka 0092: what DescribeConfigs lists, AlterConfigs and IncrementalAlterConfigs take
/// back unchanged — every topic key, and every broker key that is not read-only (those answer
/// Kafka's INVALID_REQUEST for a config that cannot be updated dynamically, never an unknown
/// key).
#[test]
fn every_described_key_is_accepted_back() {
    let cluster = Cluster::single();
    let n = &cluster.nodes[0];
    let addr = n.addr();
    let admin = common::admin(&n.bootstrap());
    create_topic(&admin, n, "roundtrip", 1, &[("retention.ms", "3600000")]);

    let topic = describe(addr, TOPIC, "roundtrip");
    assert!(topic.len() > 30, "{} topic configs", topic.len());
    let settable: Vec<(&str, &str)> = topic
        .iter()
        .filter_map(|c| Some((c.name.as_str(), c.value.as_deref()?)))
        .collect();
    for k in ["remote.log.copy.disable", "remote.log.delete.on.disable"] {
        assert!(settable.iter().any(|(n, _)| *n == k), "{k} described");
    }
    // Each key alone, so that a refusal names it; then all at once.
    for (k, v) in &settable {
        let ops = [(*k, 0, Some(*v))];
        assert_eq!(
            incremental(addr, TOPIC, "roundtrip", &ops),
            (0, None),
            "{k}={v}"
        );
        assert_eq!(
            legacy_alter_configs(addr, TOPIC, "roundtrip", &[(*k, *v)], T),
            (0, None),
            "{k}={v}"
        );
    }
    assert_eq!(
        legacy_alter_configs(addr, TOPIC, "roundtrip", &settable, T),
        (0, None)
    );
    let after = describe(addr, TOPIC, "roundtrip");
    for (k, v) in &settable {
        assert_eq!(
            value(&after, k).as_deref(),
            Some(*v),
            "{k} after the round trip"
        );
    }

    let me = n.node_id.to_string();
    let broker = describe(addr, BROKER, &me);
    assert!(broker.len() > 100, "{} broker configs", broker.len());
    let mut refused = Vec::new();
    for c in &broker {
        let Some(v) = c.value.as_deref() else {
            continue;
        };
        let got = incremental(addr, BROKER, &me, &[(&c.name, 0, Some(v))]);
        let want = if c.read_only { 42 } else { 0 };
        if got.0 != want {
            refused.push(format!(
                "{}={v} (read_only {}): {got:?}",
                c.name, c.read_only
            ));
        }
    }
    assert!(
        refused.is_empty(),
        "broker keys not taken back:\n{}",
        refused.join("\n")
    );
    // The legacy API takes the whole dynamic set back at once.
    let dynamic: Vec<(&str, &str)> = broker
        .iter()
        .filter(|c| !c.read_only)
        .filter_map(|c| Some((c.name.as_str(), c.value.as_deref()?)))
        .collect();
    assert!(
        dynamic.len() > 20,
        "{} dynamic broker configs",
        dynamic.len()
    );
    assert_eq!(
        legacy_alter_configs(addr, BROKER, &me, &dynamic, T),
        (0, None)
    );
    // Kafka's known broker keys are accepted, e.g. the Kerberos relogin settings (0081).
    assert_eq!(
        incremental(
            addr,
            BROKER,
            &me,
            &[("sasl.kerberos.min.time.before.relogin", 0, Some("60000"))]
        ),
        (0, None)
    );
}

/// The same round trip through librdkafka's admin client (DescribeConfigs, then AlterConfigs
/// with every described topic entry), as describe-then-alter tools do.
#[test]
fn librdkafka_describe_then_alter_a_topic() {
    use rdkafka::admin::{AlterConfig, ResourceSpecifier};
    let cluster = Cluster::single();
    let n = &cluster.nodes[0];
    let admin = common::admin(&n.bootstrap());
    create_topic(&admin, n, "described", 1, &[]);
    let spec = ResourceSpecifier::Topic("described");
    let described = common::runtime()
        .block_on(admin.describe_configs([&spec], &common::admin_options()))
        .expect("DescribeConfigs");
    let config = described
        .into_iter()
        .next()
        .expect("one result")
        .expect("described");
    let mut alter = AlterConfig::new(ResourceSpecifier::Topic("described"));
    let mut count = 0;
    for e in &config.entries {
        if let Some(v) = e.value.as_deref() {
            alter = alter.set(&e.name, v);
            count += 1;
        }
    }
    assert!(count > 30, "{count} entries");
    assert!(config
        .entries
        .iter()
        .any(|e| e.name == "remote.log.copy.disable"));
    common::runtime()
        .block_on(admin.alter_configs([&alter], &common::admin_options()))
        .expect("AlterConfigs");
    // rdkafka's `alter_configs` reports `Ok` for every resource whatever the broker answered
    // (0.39 drops the per-resource error): what shows the change was accepted is a describe
    // listing every entry as a topic override with the value sent.
    let after = common::runtime()
        .block_on(admin.describe_configs([&spec], &common::admin_options()))
        .expect("DescribeConfigs")
        .into_iter()
        .next()
        .expect("one result")
        .expect("described");
    for e in config.entries.iter().filter(|e| e.value.is_some()) {
        let now = after
            .entries
            .iter()
            .find(|a| a.name == e.name)
            .unwrap_or_else(|| panic!("{} no longer described", e.name));
        assert_eq!(
            (now.value.as_deref(), &now.source),
            (
                e.value.as_deref(),
                &rdkafka::admin::ConfigSource::DynamicTopic
            ),
            "{} after AlterConfigs with every described entry",
            e.name
        );
    }
}

/// KIP-848's dynamic group configs (resource type 32), as librdkafka 4.0's 0081 uses them:
/// described for any group name (existing or not) with the broker's defaults; set, deleted and
/// refused as Kafka's `GroupConfig.validate` does (names, types, the broker's
/// `group.consumer.min/max.*` bounds, session above heartbeat; INVALID_CONFIG); persisted in the
/// metadata log (they survive a restart); by the legacy AlterConfigs too; and applied by the
/// group coordinator: a member is told the group's heartbeat interval and expires after the
/// group's session timeout.
#[test]
fn group_configs_are_validated_persisted_and_applied() {
    use rafka_protocol::messages::{
        ConsumerGroupDescribeRequest, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
    };
    const GROUP: i8 = 32;
    const SESSION: &str = "consumer.session.timeout.ms";
    const HEARTBEAT: &str = "consumer.heartbeat.interval.ms";
    let mut cluster = Cluster::start(
        1,
        &[
            ("group.consumer.min.session.timeout.ms", "1000"),
            ("group.consumer.min.heartbeat.interval.ms", "100"),
            ("offsets.topic.replication.factor", "1"),
        ],
    );
    let addr = cluster.nodes[0].addr();
    let source = |configs: &[DescribeConfigsResourceResult], key: &str| {
        configs
            .iter()
            .find(|c| c.name == key)
            .map(|c| c.config_source)
    };

    // Any group, existing or not: Kafka's six keys, the consumer ones from the broker's keys.
    let fresh = describe(addr, GROUP, "no-such-group");
    let names: Vec<&str> = fresh.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            SESSION,
            HEARTBEAT,
            "share.session.timeout.ms",
            "share.heartbeat.interval.ms",
            "share.record.lock.duration.ms",
            "share.auto.offset.reset"
        ]
    );
    assert_eq!(value(&fresh, SESSION).as_deref(), Some("45000"));
    assert_eq!(source(&fresh, SESSION), Some(5), "DEFAULT_CONFIG");
    assert_eq!(fresh[0].config_type, 3, "INT");
    // Every described value is accepted back (describe-then-alter).
    for c in &fresh {
        let v = c.value.as_deref().expect("a value");
        assert_eq!(
            incremental(addr, GROUP, "no-such-group", &[(&c.name, 0, Some(v))]),
            (0, None),
            "{}={v}",
            c.name
        );
    }
    assert_eq!(
        incremental(addr, GROUP, "no-such-group", &[(SESSION, 1, None)]).0,
        0
    );

    // Set, then refused: below and above the bounds, unknown key, bad type, APPEND, empty name.
    assert_eq!(
        incremental(addr, GROUP, "g", &[(SESSION, 0, Some("50000"))]),
        (0, None)
    );
    let described = describe(addr, GROUP, "g");
    assert_eq!(value(&described, SESSION).as_deref(), Some("50000"));
    assert_eq!(source(&described, SESSION), Some(8), "GROUP_CONFIG");
    let refused = [
        (
            SESSION,
            0,
            Some("999"),
            40,
            "greater than or equal to group.consumer.min.session.timeout.ms",
        ),
        (
            SESSION,
            0,
            Some("60001"),
            40,
            "less than or equal to group.consumer.max.session.timeout.ms",
        ),
        (
            HEARTBEAT,
            0,
            Some("50000"),
            40,
            "less than or equal to group.consumer.max.heartbeat.interval.ms",
        ),
        (
            "session.timeout.ms",
            0,
            Some("50000"),
            40,
            "Unknown group config name",
        ),
        (SESSION, 0, Some("soon"), 40, "INT"),
        (SESSION, APPEND, Some("1"), 40, "LIST"),
    ];
    for (k, op, v, code, says) in refused {
        let (got, msg) = incremental(addr, GROUP, "g", &[(k, op, v)]);
        assert_eq!(got, code, "{k} {op} {v:?}: {msg:?}");
        let msg = msg.unwrap_or_default();
        assert!(msg.contains(says), "{k} {op} {v:?}: {msg}");
    }
    // Session at or below the heartbeat interval, in one request.
    let (got, msg) = incremental(
        addr,
        GROUP,
        "g",
        &[(SESSION, 0, Some("2000")), (HEARTBEAT, 0, Some("2000"))],
    );
    assert_eq!(got, 40, "{msg:?}");
    assert_eq!(
        incremental(addr, GROUP, "", &[(SESSION, 0, Some("50000"))]).0,
        42
    );
    // Nothing refused was applied.
    assert_eq!(
        value(&describe(addr, GROUP, "g"), SESSION).as_deref(),
        Some("50000")
    );
    // The legacy API replaces the group's set.
    assert_eq!(
        legacy_alter_configs(addr, GROUP, "legacy", &[(SESSION, "55000")], T),
        (0, None)
    );
    assert_eq!(
        legacy_alter_configs(addr, GROUP, "legacy", &[(SESSION, "5")], T).0,
        40
    );
    assert_eq!(
        value(&describe(addr, GROUP, "legacy"), SESSION).as_deref(),
        Some("55000")
    );

    // Persisted through the metadata log: a restarted node still has them.
    cluster.nodes[0].terminate();
    cluster.nodes[0].start();
    cluster.wait_ready(T);
    let addr = cluster.nodes[0].addr();
    assert_eq!(
        value(&describe(addr, GROUP, "g"), SESSION).as_deref(),
        Some("50000")
    );
    assert_eq!(
        incremental(addr, GROUP, "g", &[(SESSION, 1, None)]),
        (0, None)
    );
    let deleted = describe(addr, GROUP, "g");
    assert_eq!(value(&deleted, SESSION).as_deref(), Some("45000"));
    assert_eq!(source(&deleted, SESSION), Some(5));

    // Applied by the coordinator: the heartbeat interval members are told, and the session
    // after which a silent member is removed.
    let n = &cluster.nodes[0];
    let admin = common::admin(&n.bootstrap());
    create_topic(&admin, n, "grouped", 2, &[]);
    assert_eq!(
        incremental(
            addr,
            GROUP,
            "applied",
            &[(SESSION, 0, Some("1500")), (HEARTBEAT, 0, Some("300"))]
        ),
        (0, None)
    );
    let heartbeat = |req: ConsumerGroupHeartbeatRequest| -> ConsumerGroupHeartbeatResponse {
        match raw_request(addr, 1, RequestKind::ConsumerGroupHeartbeat(req), T)
            .expect("ConsumerGroupHeartbeat")
        {
            ResponseKind::ConsumerGroupHeartbeat(r) => r,
            other => panic!("not a ConsumerGroupHeartbeat response: {other:?}"),
        }
    };
    let join = ConsumerGroupHeartbeatRequest {
        group_id: "applied".into(),
        member_id: "member-1".into(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(vec!["grouped".into()]),
        topic_partitions: Some(vec![]),
        ..Default::default()
    };
    let deadline = common::Deadline::after(T);
    let joined = loop {
        if common::group_coordinator(n, "applied").is_some() {
            let r = heartbeat(join.clone());
            if r.error_code == 0 {
                break r;
            }
            deadline.check(|| format!("the group's coordinator: {:?}", r.error_message));
        }
        deadline.check(|| "a coordinator for the group".into());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(joined.heartbeat_interval_ms, 300);
    let members = || -> usize {
        let req = ConsumerGroupDescribeRequest {
            group_ids: vec!["applied".into()],
            ..Default::default()
        };
        match raw_request(addr, 0, RequestKind::ConsumerGroupDescribe(req), T)
            .expect("ConsumerGroupDescribe")
        {
            ResponseKind::ConsumerGroupDescribe(r) => r.groups[0].members.len(),
            other => panic!("not a ConsumerGroupDescribe response: {other:?}"),
        }
    };
    assert_eq!(members(), 1);
    // Silent for longer than the group's 1.5 s session (the broker's is 45 s): removed.
    let deadline = common::Deadline::after(Duration::from_secs(10));
    let started = std::time::Instant::now();
    while members() != 0 {
        deadline.check(|| "the silent member removed after the group's session timeout".into());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "removed after {:?}",
        started.elapsed()
    );
}

/// The offsets `file` (a checkpoint at the top of a log directory) holds for `topic`-0, if any:
/// Kafka's text format, a version line, a count line, then `topic partition offset` lines.
fn checkpointed(log_dir: &std::path::Path, file: &str, topic: &str) -> Option<i64> {
    let text = std::fs::read_to_string(log_dir.join(file)).ok()?;
    text.lines().skip(2).find_map(|l| {
        let mut f = l.split(' ');
        (f.next()? == topic && f.next()? == "0").then(|| f.next()?.parse().ok())?
    })
}

/// The three checkpoints each on its own interval, as in Kafka: with the high watermarks' and
/// log start offsets' every 200 ms and the recovery points' every 10 minutes, a new partition's
/// high watermark and log start offset reach their files within a second of a DeleteRecords,
/// while the recovery-point file — written once at start — never names it.
#[test]
fn each_checkpoint_is_written_on_its_own_interval() {
    let cluster = Cluster::start(
        1,
        &[
            ("replica.high.watermark.checkpoint.interval.ms", "200"),
            ("log.flush.start.offset.checkpoint.interval.ms", "200"),
            ("log.flush.offset.checkpoint.interval.ms", "600000"),
        ],
    );
    let node = &cluster.nodes[0];
    create_topic(&common::admin(&cluster.bootstrap()), node, "ticks", 1, &[]);
    let p = SyncProducer::new(&cluster.bootstrap(), &[]);
    for i in 0..5u8 {
        p.send("ticks", 0, &[i]).expect("record");
    }
    assert_eq!(
        delete_records(node.addr(), "ticks", 2),
        0,
        "DeleteRecords to 2"
    );
    let dir = node.log_dir();
    let deadline = common::Deadline::after(Duration::from_secs(10));
    while checkpointed(&dir, "replication-offset-checkpoint", "ticks") != Some(5)
        || checkpointed(&dir, "log-start-offset-checkpoint", "ticks") != Some(2)
    {
        deadline.check(|| "the high watermark 5 and log start 2 of ticks-0 checkpointed".into());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        checkpointed(&dir, "recovery-point-offset-checkpoint", "ticks"),
        None,
        "the recovery points waited for their own interval"
    );
    assert!(dir.join("recovery-point-offset-checkpoint").exists());
}
