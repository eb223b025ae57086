//! Administration through librdkafka's admin client against one broker: CreateTopics (and its
//! refusals), DescribeConfigs (topic and broker, every config with its source, as Kafka lists
//! them), IncrementalAlterConfigs (changing the live log), AlterConfigs, DeleteTopics,
//! CreatePartitions, DescribeCluster.
//!
//! Each test starts its own node; every admin call has a 20 s timeout.

mod common;

use common::ffi::{self, Op, Resource};
use common::{
    admin, admin_options, create_topic, metadata, runtime, Cluster, Deadline, SyncProducer,
};
use rafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use rafka_protocol::messages::{
    DeleteTopicsRequest, DescribeClusterRequest, DescribeConfigsRequest, RequestKind, ResponseKind,
};
use rafka_protocol::ErrorCode;
use rdkafka::admin::{
    AlterConfig, ConfigEntry, ConfigSource, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::BaseRecord;
use std::collections::HashMap;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

/// The node's static `log.retention.ms`, so that the topic configs show a STATIC_BROKER source.
const STATIC_RETENTION_MS: &str = "86400000";

fn node() -> Cluster {
    Cluster::start(1, &[("log.retention.ms", STATIC_RETENTION_MS)])
}

fn describe(
    admin: &rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext>,
    spec: ResourceSpecifier<'_>,
) -> HashMap<String, ConfigEntry> {
    let res = runtime()
        .block_on(admin.describe_configs([&spec], &admin_options()))
        .unwrap_or_else(|e| {
            panic!("DescribeConfigs {spec:?}: {e} (a transport failure here means the broker closed the connection: is the DescribeConfigs handler in place?)")
        });
    assert_eq!(res.len(), 1);
    let r = res
        .into_iter()
        .next()
        .expect("one result")
        .unwrap_or_else(|e| panic!("DescribeConfigs {spec:?}: {e:?}"));
    r.entries.into_iter().map(|e| (e.name.clone(), e)).collect()
}

fn entry<'a>(m: &'a HashMap<String, ConfigEntry>, name: &str) -> &'a ConfigEntry {
    m.get(name).unwrap_or_else(|| {
        let mut names: Vec<&String> = m.keys().collect();
        names.sort();
        panic!("no config {name} among {} described: {names:?}", m.len())
    })
}

fn topic_names(node: &common::Node) -> Vec<String> {
    let md = metadata(node.addr(), None, Duration::from_secs(5)).expect("metadata");
    md.topics.into_iter().filter_map(|t| t.name).collect()
}

#[test]
fn create_topics_and_the_refusals() {
    let cluster = node();
    let n = &cluster.nodes[0];
    let admin = admin(&n.bootstrap());
    let rt = runtime();

    let ok = NewTopic::new("orders", 3, TopicReplication::Fixed(1)).set("retention.ms", "3600000");
    let dup = NewTopic::new("orders", 3, TopicReplication::Fixed(1));
    let res = rt
        .block_on(admin.create_topics([&ok], &admin_options()))
        .expect("CreateTopics");
    assert_eq!(res, vec![Ok("orders".to_string())]);
    let leaders = common::wait_for_topic(n, "orders", 3, T);
    assert_eq!(leaders, vec![1, 1, 1]);
    // On disk: one directory per partition under log.dirs.
    for p in 0..3 {
        assert!(
            n.log_dir().join(format!("orders-{p}")).is_dir(),
            "orders-{p} on disk"
        );
    }

    let res = rt
        .block_on(admin.create_topics([&dup], &admin_options()))
        .expect("CreateTopics");
    assert_eq!(
        res,
        vec![Err((
            "orders".to_string(),
            RDKafkaErrorCode::TopicAlreadyExists
        ))]
    );

    let long = "x".repeat(250);
    for bad in ["bad name", "..", ".", "a/b", "ünïcode", long.as_str()] {
        let t = NewTopic::new(bad, 1, TopicReplication::Fixed(1));
        let res = rt
            .block_on(admin.create_topics([&t], &admin_options()))
            .expect("CreateTopics");
        assert_eq!(
            res,
            vec![Err((bad.to_string(), RDKafkaErrorCode::InvalidTopic))],
            "topic name {bad:?}"
        );
    }
    // A replication factor above the number of brokers.
    let t = NewTopic::new("too-many-replicas", 1, TopicReplication::Fixed(3));
    let res = rt
        .block_on(admin.create_topics([&t], &admin_options()))
        .expect("CreateTopics");
    assert_eq!(
        res,
        vec![Err((
            "too-many-replicas".to_string(),
            RDKafkaErrorCode::InvalidReplicationFactor
        ))]
    );
    // An unknown topic config.
    let t = NewTopic::new("bad-config", 1, TopicReplication::Fixed(1)).set("no.such.config", "1");
    let res = rt
        .block_on(admin.create_topics([&t], &admin_options()))
        .expect("CreateTopics");
    assert_eq!(
        res,
        vec![Err((
            "bad-config".to_string(),
            RDKafkaErrorCode::InvalidConfig
        ))]
    );
    // validate_only creates nothing.
    let t = NewTopic::new("dry-run", 2, TopicReplication::Fixed(1));
    let res = rt
        .block_on(admin.create_topics([&t], &admin_options().validate_only(true)))
        .expect("CreateTopics");
    assert_eq!(res, vec![Ok("dry-run".to_string())]);

    let names = topic_names(n);
    assert_eq!(
        names,
        vec!["orders".to_string()],
        "only the valid topic exists"
    );
}

#[test]
fn describe_configs_lists_every_topic_config_with_its_source() {
    let cluster = node();
    let n = &cluster.nodes[0];
    let admin = admin(&n.bootstrap());
    create_topic(&admin, n, "described", 1, &[("cleanup.policy", "compact")]);
    let cfg = describe(&admin, ResourceSpecifier::Topic("described"));

    // Set on the topic.
    let e = entry(&cfg, "cleanup.policy");
    assert_eq!(e.value.as_deref(), Some("compact"));
    assert_eq!(e.source, ConfigSource::DynamicTopic);
    assert!(!e.is_default);
    // From the node's properties file.
    let e = entry(&cfg, "retention.ms");
    assert_eq!(e.value.as_deref(), Some(STATIC_RETENTION_MS));
    assert_eq!(e.source, ConfigSource::StaticBroker);
    // Kafka's defaults, listed although nobody set them.
    for (name, value) in [
        ("segment.bytes", "1073741824"),
        ("max.message.bytes", "1048588"),
        ("retention.bytes", "-1"),
        ("min.insync.replicas", "1"),
        ("compression.type", "producer"),
        ("message.timestamp.type", "CreateTime"),
        ("segment.ms", "604800000"),
        ("unclean.leader.election.enable", "false"),
    ] {
        let e = entry(&cfg, name);
        assert_eq!(e.value.as_deref(), Some(value), "{name}");
        assert_eq!(e.source, ConfigSource::Default, "source of {name}");
        assert!(e.is_default, "{name} is default");
    }
    assert!(
        cfg.len() >= 25,
        "every topic config is listed, got {}",
        cfg.len()
    );

    // The broker's own configs.
    let cfg = describe(&admin, ResourceSpecifier::Broker(1));
    let e = entry(&cfg, "log.retention.ms");
    assert_eq!(e.value.as_deref(), Some(STATIC_RETENTION_MS));
    assert_eq!(e.source, ConfigSource::StaticBroker);
    let e = entry(&cfg, "num.partitions");
    assert_eq!(e.value.as_deref(), Some("1"));
    assert_eq!(e.source, ConfigSource::Default);
    let e = entry(&cfg, "node.id");
    assert_eq!(e.value.as_deref(), Some("1"));
    assert!(
        cfg.len() >= 100,
        "every broker config is listed, got {}",
        cfg.len()
    );

    // Per-resource errors, with raw requests: the rdkafka crate drops a resource's error code
    // (it returns an empty entry list instead).
    for (resource_type, name, want) in [
        (2i8, "nope", 3i16),  // an unknown topic: UNKNOWN_TOPIC_OR_PARTITION
        (2, "bad name!", 17), // INVALID_TOPIC_EXCEPTION
        (4, "2", 42),         // another broker's configs: INVALID_REQUEST
        (2, "described", 0),
    ] {
        let req = DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type,
                resource_name: name.into(),
                configuration_keys: None,
                ..Default::default()
            }],
            ..Default::default()
        };
        let r = match common::raw_request(n.addr(), 4, RequestKind::DescribeConfigs(req), T) {
            Ok(ResponseKind::DescribeConfigs(r)) => r,
            other => panic!("DescribeConfigs v4: {other:?}"),
        };
        assert_eq!(
            r.results[0].error_code, want,
            "DescribeConfigs of ({resource_type}, {name:?})"
        );
    }
}

#[test]
fn incremental_alter_configs_change_the_live_log() {
    let cluster = node();
    let n = &cluster.nodes[0];
    let admin = admin(&n.bootstrap());
    create_topic(&admin, n, "tuned", 1, &[]);
    let client = admin.inner();
    let alter = |ops: &[Op<'_>]| {
        ffi::incremental_alter_configs(client, Resource::Topic("tuned"), ops, T)
            .expect("IncrementalAlterConfigs request")
            .map_err(|e| e.0)
    };

    let r = alter(&[
        Op::Set("max.message.bytes", "2048"),
        Op::Set("retention.ms", "123456789"),
    ]);
    assert_eq!(r, Ok(()));
    // The live log obeys max.message.bytes: a 4 KiB record is refused, a small one is not.
    let p = SyncProducer::new(&n.bootstrap(), &[]);
    let (big, small) = (vec![b'x'; 4096], vec![b'y'; 100]);
    assert_eq!(
        p.send("tuned", 0, &big),
        Err(RDKafkaErrorCode::MessageSizeTooLarge),
        "a 4 KiB record under max.message.bytes=2048"
    );
    assert_eq!(
        p.send("tuned", 0, &small),
        Ok(0),
        "a small record, the first in the log"
    );
    let cfg = describe(&admin, ResourceSpecifier::Topic("tuned"));
    let e = entry(&cfg, "max.message.bytes");
    assert_eq!(e.value.as_deref(), Some("2048"));
    assert_eq!(e.source, ConfigSource::DynamicTopic);
    assert_eq!(
        entry(&cfg, "retention.ms").value.as_deref(),
        Some("123456789")
    );

    // DELETE goes back to the default; other keys stay.
    assert_eq!(alter(&[Op::Delete("max.message.bytes")]), Ok(()));
    assert_eq!(p.send("tuned", 0, &big), Ok(1), "4 KiB fits again");
    let cfg = describe(&admin, ResourceSpecifier::Topic("tuned"));
    let e = entry(&cfg, "max.message.bytes");
    assert_eq!(e.value.as_deref(), Some("1048588"));
    assert_eq!(e.source, ConfigSource::Default);
    assert_eq!(
        entry(&cfg, "retention.ms").value.as_deref(),
        Some("123456789")
    );

    // Refusals: an unknown key, a bad value, a topic that does not exist.
    assert_eq!(
        alter(&[Op::Set("no.such.config", "1")]),
        Err("INVALID_CONFIG".to_string())
    );
    assert_eq!(
        alter(&[Op::Set("retention.ms", "soon")]),
        Err("INVALID_CONFIG".to_string())
    );
    let r = ffi::incremental_alter_configs(
        client,
        Resource::Topic("missing"),
        &[Op::Set("retention.ms", "1")],
        T,
    )
    .expect("IncrementalAlterConfigs request");
    assert_eq!(r.map_err(|e| e.0), Err("UNKNOWN_TOPIC_OR_PART".to_string()));
}

#[test]
fn dynamic_broker_configs_change_the_live_logs() {
    let cluster = node();
    let n = &cluster.nodes[0];
    let admin = admin(&n.bootstrap());
    create_topic(&admin, n, "plain", 1, &[]);
    create_topic(&admin, n, "own", 1, &[("max.message.bytes", "100000")]);
    let p = SyncProducer::new(&n.bootstrap(), &[]);
    let big = vec![b'x'; 4096];
    assert_eq!(
        p.send("plain", 0, &big),
        Ok(0),
        "4 KiB under the static default"
    );

    // This broker's message.max.bytes is every topic's default max.message.bytes.
    let r = ffi::incremental_alter_configs(
        admin.inner(),
        Resource::Broker(1),
        &[Op::Set("message.max.bytes", "2048")],
        T,
    )
    .expect("IncrementalAlterConfigs request");
    assert_eq!(r.map_err(|e| e.0), Ok(()));
    let deadline = Deadline::after(T);
    loop {
        match p.send("plain", 0, &big) {
            Err(RDKafkaErrorCode::MessageSizeTooLarge) => break,
            other => {
                deadline.check(|| {
                    format!("4 KiB still accepted after message.max.bytes=2048: {other:?}")
                });
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    // A topic with its own override keeps it.
    assert!(p.send("own", 0, &big).is_ok(), "the topic override wins");
    let cfg = describe(&admin, ResourceSpecifier::Topic("plain"));
    let e = entry(&cfg, "max.message.bytes");
    assert_eq!(e.value.as_deref(), Some("2048"));
    assert_eq!(e.source, ConfigSource::DynamicBroker);

    // Deleting it restores the static default on the live log.
    let r = ffi::incremental_alter_configs(
        admin.inner(),
        Resource::Broker(1),
        &[Op::Delete("message.max.bytes")],
        T,
    )
    .expect("IncrementalAlterConfigs request");
    assert_eq!(r.map_err(|e| e.0), Ok(()));
    let deadline = Deadline::after(T);
    while p.send("plain", 0, &big).is_err() {
        deadline.check(|| "4 KiB still refused after deleting message.max.bytes".into());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A cluster-wide dynamic default (`BROKER` resource ""), set with AlterConfigs as rdkafka's
/// `alter_configs` sends it, reaches the live log of a topic without an override: the segments of
/// `plain` roll at the new `log.segment.bytes` (1 MiB, the least allowed), while `own`, whose
/// `segment.bytes` override is 100 MiB, keeps one segment.
#[test]
fn a_cluster_default_broker_config_rolls_the_live_segments() {
    const BROKER: i8 = 4;
    const MIB: usize = 1 << 20;
    let cluster = node();
    let n = &cluster.nodes[0];
    let admin = admin(&n.bootstrap());
    create_topic(&admin, n, "plain", 1, &[]);
    create_topic(&admin, n, "own", 1, &[("segment.bytes", "104857600")]);
    let p = SyncProducer::new(&n.bootstrap(), &[]);
    let record = vec![b'x'; 100 * 1024];
    assert_eq!(p.send("plain", 0, &record), Ok(0), "before the change");

    let (code, message) =
        common::legacy_alter_configs(n.addr(), BROKER, "", &[("log.segment.bytes", "1048576")], T);
    assert_eq!(code, 0, "AlterConfigs BROKER \"\": {message:?}");
    // DescribeConfigs shows it as the cluster default (once this broker has the image).
    let deadline = Deadline::after(T);
    loop {
        let cfg = describe(&admin, ResourceSpecifier::Topic("plain"));
        let e = entry(&cfg, "segment.bytes");
        if e.value.as_deref() == Some("1048576") {
            assert_eq!(e.source, ConfigSource::DynamicDefaultBroker);
            break;
        }
        deadline.check(|| format!("segment.bytes of plain still {:?}", e.value));
        std::thread::sleep(Duration::from_millis(50));
    }

    // 4 MiB in 100 KiB records: at 1 MiB a segment, `plain` rolls at least three times (its
    // first record is in the first segment); under the static 1 GiB it would not roll at all.
    let records = 4 * MIB / record.len();
    for _ in 0..records {
        assert!(p.send("plain", 0, &record).is_ok(), "produce to plain");
        assert!(p.send("own", 0, &record).is_ok(), "produce to own");
    }
    let plain = common::segment_files(&n.log_dir(), "plain", 0);
    assert!(
        plain.len() >= 4,
        "plain has {} segments after 4 MiB under log.segment.bytes=1048576: {plain:?}",
        plain.len()
    );
    for f in &plain {
        let len = std::fs::metadata(f).map(|m| m.len()).unwrap_or(u64::MAX);
        assert!(len <= MIB as u64, "{f:?} is {len} bytes, over 1 MiB");
    }
    // The topic's own segment.bytes wins over the cluster default.
    let own = common::segment_files(&n.log_dir(), "own", 0);
    assert_eq!(own.len(), 1, "own keeps one segment: {own:?}");
}

#[test]
fn alter_configs_replaces_the_topic_overrides() {
    let cluster = node();
    let n = &cluster.nodes[0];
    let admin = admin(&n.bootstrap());
    create_topic(&admin, n, "legacy", 1, &[("cleanup.policy", "compact")]);
    let alter = AlterConfig::new(ResourceSpecifier::Topic("legacy")).set("retention.ms", "999");
    let res = runtime()
        .block_on(admin.alter_configs([&alter], &admin_options()))
        .expect("AlterConfigs");
    assert!(res[0].is_ok(), "AlterConfigs: {:?}", res[0]);
    let cfg = describe(&admin, ResourceSpecifier::Topic("legacy"));
    assert_eq!(entry(&cfg, "retention.ms").value.as_deref(), Some("999"));
    assert_eq!(
        entry(&cfg, "retention.ms").source,
        ConfigSource::DynamicTopic
    );
    // AlterConfigs sets the whole set: cleanup.policy, not named, is back to its default.
    let e = entry(&cfg, "cleanup.policy");
    assert_eq!(e.value.as_deref(), Some("delete"));
    assert_eq!(e.source, ConfigSource::Default);
}

/// `delete.topic.enable=false` (Kafka's switch against deleting topics by mistake): librdkafka's
/// DeleteTopics (v1 here: INVALID_REQUEST, as Kafka answers before v3) and a v6 request by name
/// are both refused for every topic, and nothing is deleted.
#[test]
fn topic_deletion_disabled_refuses_and_deletes_nothing() {
    let cluster = Cluster::start(1, &[("delete.topic.enable", "false")]);
    let n = &cluster.nodes[0];
    let admin = admin(&n.bootstrap());
    let rt = runtime();
    create_topic(&admin, n, "precious", 1, &[]);
    let res = rt
        .block_on(admin.delete_topics(&["precious"], &admin_options()))
        .expect("DeleteTopics");
    assert!(
        matches!(
            res.as_slice(),
            [Err((t, RDKafkaErrorCode::InvalidRequest | RDKafkaErrorCode::TopicDeletionDisabled))]
                if t == "precious"
        ),
        "{res:?}"
    );
    let v6 = common::raw_request(
        n.addr(),
        6,
        RequestKind::DeleteTopics(DeleteTopicsRequest {
            topics: vec![
                rafka_protocol::messages::delete_topics_request::DeleteTopicState {
                    name: Some("precious".into()),
                    ..Default::default()
                },
            ],
            timeout_ms: 5_000,
            ..Default::default()
        }),
        T,
    )
    .expect("DeleteTopics v6");
    let ResponseKind::DeleteTopics(v6) = v6 else {
        panic!("not a DeleteTopics answer: {v6:?}")
    };
    let codes: Vec<(Option<String>, i16)> = v6
        .responses
        .iter()
        .map(|r| (r.name.clone(), r.error_code))
        .collect();
    assert_eq!(
        codes,
        vec![(
            Some("precious".into()),
            ErrorCode::TopicDeletionDisabled.code()
        )]
    );
    assert_eq!(topic_names(n), vec!["precious".to_string()]);
    assert!(n.log_dir().join("precious-0").exists());
}

#[test]
fn delete_topics_removes_them_everywhere() {
    let cluster = node();
    let n = &cluster.nodes[0];
    let admin = admin(&n.bootstrap());
    let rt = runtime();
    create_topic(&admin, n, "doomed", 2, &[]);
    create_topic(&admin, n, "kept", 1, &[]);
    let p = common::producer(&n.bootstrap(), &[("acks", "all")]);
    for i in 0..10 {
        p.send(
            BaseRecord::<(), str>::to("doomed")
                .partition(i % 2)
                .payload("gone soon"),
        )
        .map_err(|(e, _)| e)
        .expect("send");
    }
    common::flush(&p, T);

    let res = rt
        .block_on(admin.delete_topics(&["doomed"], &admin_options()))
        .expect("DeleteTopics");
    assert_eq!(res, vec![Ok("doomed".to_string())]);
    // Kafka propagates the deletion to brokers asynchronously: allow a moment.
    let deadline = Deadline::after(Duration::from_secs(5));
    while topic_names(n) != vec!["kept".to_string()] {
        deadline.check(|| {
            format!(
                "Metadata still lists {:?} after DeleteTopics",
                topic_names(n)
            )
        });
        std::thread::sleep(Duration::from_millis(20));
    }
    // Its partitions leave the log directory (renamed for deletion, then removed).
    let deadline = Deadline::after(T);
    while (0..2).any(|p| n.log_dir().join(format!("doomed-{p}")).exists()) {
        deadline.check(|| "doomed-0/1 still in the log directory".into());
        std::thread::sleep(Duration::from_millis(50));
    }

    let res = rt
        .block_on(admin.delete_topics(&["doomed"], &admin_options()))
        .expect("DeleteTopics");
    assert_eq!(
        res,
        vec![Err((
            "doomed".to_string(),
            RDKafkaErrorCode::UnknownTopicOrPartition
        ))]
    );

    // The name can be used again, and the new topic starts empty.
    create_topic(&admin, n, "doomed", 1, &[]);
    let c = common::consumer(&n.bootstrap(), &[]);
    use rdkafka::consumer::Consumer;
    assert_eq!(
        c.fetch_watermarks("doomed", 0, T).expect("watermarks"),
        (0, 0)
    );
}

#[test]
fn create_partitions_grows_a_topic() {
    let cluster = node();
    let n = &cluster.nodes[0];
    let admin = admin(&n.bootstrap());
    let rt = runtime();
    create_topic(&admin, n, "growing", 2, &[]);
    let res = rt
        .block_on(admin.create_partitions([&NewPartitions::new("growing", 5)], &admin_options()))
        .expect("CreatePartitions");
    assert_eq!(res, vec![Ok("growing".to_string())]);
    common::wait_for_topic(n, "growing", 5, T);
    assert!(
        n.log_dir().join("growing-4").is_dir(),
        "new partition on disk"
    );
    // A new partition takes records.
    let p = common::producer(&n.bootstrap(), &[("acks", "all")]);
    p.send(
        BaseRecord::<(), str>::to("growing")
            .partition(4)
            .payload("in a new partition"),
    )
    .map_err(|(e, _)| e)
    .expect("send");
    common::flush(&p, T);

    for (count, code) in [
        (3, RDKafkaErrorCode::InvalidPartitions),
        (5, RDKafkaErrorCode::InvalidPartitions),
    ] {
        let res = rt
            .block_on(
                admin.create_partitions([&NewPartitions::new("growing", count)], &admin_options()),
            )
            .expect("CreatePartitions");
        assert_eq!(
            res,
            vec![Err(("growing".to_string(), code))],
            "to {count} partitions"
        );
    }
    let res = rt
        .block_on(admin.create_partitions([&NewPartitions::new("absent", 3)], &admin_options()))
        .expect("CreatePartitions");
    assert_eq!(
        res,
        vec![Err((
            "absent".to_string(),
            RDKafkaErrorCode::UnknownTopicOrPartition
        ))]
    );
}

/// librdkafka's DescribeCluster is built on Metadata, so the DescribeCluster API (60) itself is
/// checked with a raw request too.
#[test]
fn describe_cluster_names_the_broker_and_controller() {
    let cluster = node();
    let n = &cluster.nodes[0];
    let admin = admin(&n.bootstrap());
    let d = ffi::describe_cluster(admin.inner(), T).expect("DescribeCluster (librdkafka)");
    assert_eq!(d.nodes, vec![(1, "127.0.0.1".to_string(), n.port)]);
    assert_eq!(d.controller, Some(1));
    let md = metadata(n.addr(), None, T).expect("metadata");
    assert_eq!(
        Some(d.cluster_id.clone()),
        md.cluster_id,
        "the cluster id Metadata names"
    );

    for version in [0, 1] {
        let req = DescribeClusterRequest::default();
        let resp =
            match common::raw_request(n.addr(), version, RequestKind::DescribeCluster(req), T) {
                Ok(ResponseKind::DescribeCluster(r)) => r,
                Ok(other) => panic!("DescribeCluster v{version}: {other:?}"),
                Err(e) => panic!(
                    "DescribeCluster v{version}: {e} (is the DescribeCluster handler in place?)"
                ),
            };
        assert_eq!(resp.error_code, 0, "DescribeCluster v{version}");
        assert_eq!(resp.cluster_id, d.cluster_id, "DescribeCluster v{version}");
        assert_eq!(resp.controller_id, 1, "DescribeCluster v{version}");
        let brokers: Vec<(i32, String, i32)> = resp
            .brokers
            .iter()
            .map(|b| (b.broker_id, b.host.clone(), b.port))
            .collect();
        assert_eq!(
            brokers,
            vec![(1, "127.0.0.1".to_string(), n.port as i32)],
            "v{version}"
        );
    }
}
