//! Hostile clients against reserved and internal topics and topic configs (issue #12), on the
//! real binary with raw frames:
//!
//! - `__cluster_metadata` (the controller's Raft log) cannot be created (CreateTopics,
//!   validate_only, Metadata auto-creation), grown, produced to, fetched by name or by its
//!   reserved id, or deleted; after all of that and a restart the node registers again and its
//!   topics are still there.
//! - `__consumer_offsets` refuses a client's Produce (a gzip batch of garbage included),
//!   deletion by name or id, and creation by a client; a group's committed offset survives the
//!   attempts and a restart.
//! - Topic configs outside Kafka 4.0's ranges are refused with INVALID_CONFIG at CreateTopics
//!   (validate_only too), AlterConfigs and IncrementalAlterConfigs, and nothing is created or
//!   changed.
//!
//! Each refusal is checked by its Kafka error code, and the broker keeps serving a plain
//! topic throughout.

mod common;

use bytes::Bytes;
use common::{admin, create_topic, metadata, raw_request, Cluster, Node, READY_TIMEOUT};
use rafka_protocol::messages::{
    alter_configs_request as acq, create_partitions_request as cpq, create_topics_request as ctq,
    delete_topics_request as dtq, fetch_request as fq, incremental_alter_configs_request as iacq,
    metadata_request::MetadataRequestTopic, produce_request as pq, AlterConfigsRequest,
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, FetchRequest,
    IncrementalAlterConfigsRequest, MetadataRequest, ProduceRequest, RequestKind, ResponseKind,
};
use rafka_protocol::record_batch::Compression;
use rafka_protocol::record_batch::RecordBatchBuilder;
use rafka_protocol::{ErrorCode, Records, Uuid};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::BaseRecord;
use rdkafka::{Offset, TopicPartitionList};
use std::time::Duration;

const T: Duration = Duration::from_secs(15);
const METADATA_LOG: &str = "__cluster_metadata";
const OFFSETS: &str = "__consumer_offsets";
const TOPIC: &str = "plain";
/// One replica of `__consumer_offsets` on one node, few partitions, no rebalance delay.
const GROUP_CONFIG: [(&str, &str); 3] = [
    ("offsets.topic.replication.factor", "1"),
    ("offsets.topic.num.partitions", "3"),
    ("group.initial.rebalance.delay.ms", "0"),
];

fn request(node: &Node, version: i16, body: RequestKind) -> ResponseKind {
    raw_request(node.addr(), version, body, T).expect("an answer")
}

fn code(c: i16) -> ErrorCode {
    ErrorCode::from_code(c).unwrap_or_else(|| panic!("an unknown error code {c}"))
}

fn create(
    node: &Node,
    name: &str,
    configs: &[(&str, &str)],
    validate_only: bool,
) -> (ErrorCode, Option<String>) {
    let req = CreateTopicsRequest {
        topics: vec![ctq::CreatableTopic {
            name: name.into(),
            num_partitions: 1,
            replication_factor: 1,
            configs: configs
                .iter()
                .map(|(k, v)| ctq::CreatableTopicConfig {
                    name: (*k).into(),
                    value: Some((*v).into()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        timeout_ms: 10_000,
        validate_only,
        ..Default::default()
    };
    match request(node, 7, RequestKind::CreateTopics(req)) {
        ResponseKind::CreateTopics(r) => {
            assert_eq!(r.topics.len(), 1);
            (
                code(r.topics[0].error_code),
                r.topics[0].error_message.clone(),
            )
        }
        other => panic!("not a CreateTopics answer: {other:?}"),
    }
}

/// Metadata for `names` that allows auto-creation.
fn metadata_auto(node: &Node, names: &[&str]) -> Vec<(String, ErrorCode)> {
    let req = MetadataRequest {
        topics: Some(
            names
                .iter()
                .map(|n| MetadataRequestTopic {
                    name: Some((*n).into()),
                    ..Default::default()
                })
                .collect(),
        ),
        allow_auto_topic_creation: true,
        ..Default::default()
    };
    match request(node, 12, RequestKind::Metadata(req)) {
        ResponseKind::Metadata(m) => m
            .topics
            .iter()
            .map(|t| (t.name.clone().unwrap_or_default(), code(t.error_code)))
            .collect(),
        other => panic!("not a Metadata answer: {other:?}"),
    }
}

fn produce(node: &Node, topic: &str, partition: i32, batch: Bytes) -> ErrorCode {
    let req = ProduceRequest {
        acks: -1,
        timeout_ms: 5000,
        topic_data: vec![pq::TopicProduceData {
            name: topic.into(),
            partition_data: vec![pq::PartitionProduceData {
                index: partition,
                records: Some(Records::Bytes(batch)),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    match request(node, 9, RequestKind::Produce(req)) {
        ResponseKind::Produce(r) => code(r.responses[0].partition_responses[0].error_code),
        other => panic!("not a Produce answer: {other:?}"),
    }
}

/// Fetch of partition 0 of `topic` by name (v12) or of `id` (v13).
fn fetch(node: &Node, topic: Option<&str>, id: Uuid) -> ErrorCode {
    let req = FetchRequest {
        max_wait_ms: 0,
        min_bytes: 0,
        topics: vec![fq::FetchTopic {
            topic: topic.unwrap_or_default().into(),
            topic_id: id,
            partitions: vec![fq::FetchPartition {
                partition: 0,
                fetch_offset: 0,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let version = if topic.is_some() { 12 } else { 13 };
    match request(node, version, RequestKind::Fetch(req)) {
        ResponseKind::Fetch(r) => code(r.responses[0].partitions[0].error_code),
        other => panic!("not a Fetch answer: {other:?}"),
    }
}

fn delete(node: &Node, topics: Vec<dtq::DeleteTopicState>) -> Vec<ErrorCode> {
    let req = DeleteTopicsRequest {
        topics,
        timeout_ms: 5000,
        ..Default::default()
    };
    match request(node, 6, RequestKind::DeleteTopics(req)) {
        ResponseKind::DeleteTopics(r) => r.responses.iter().map(|t| code(t.error_code)).collect(),
        other => panic!("not a DeleteTopics answer: {other:?}"),
    }
}

fn by_name(n: &str) -> dtq::DeleteTopicState {
    dtq::DeleteTopicState {
        name: Some(n.into()),
        topic_id: Uuid::ZERO,
        ..Default::default()
    }
}

fn by_id(id: Uuid) -> dtq::DeleteTopicState {
    dtq::DeleteTopicState {
        name: None,
        topic_id: id,
        ..Default::default()
    }
}

/// A batch of records whose keys and values are garbage, `codec`-compressed.
fn garbage_batch(codec: Compression) -> Bytes {
    let mut b = RecordBatchBuilder::new(0);
    for i in 0..3u8 {
        b.append(1, Some(&[0x7f, 0x7f, i][..]), Some(&[0xde, 0xad][..]), &[])
            .expect("fits");
    }
    let plain = b.build().to_vec();
    if codec == Compression::None {
        return Bytes::from(plain);
    }
    // The records region compressed, the header's length, attributes and CRC made to match.
    let compressed = rafka_storage::compression::compress(codec, &plain[61..]).expect("compress");
    let mut out = plain[..61].to_vec();
    out.extend_from_slice(&compressed);
    let len = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&len.to_be_bytes());
    out[22] |= 1; // gzip
    let crc = rafka_protocol::record_batch::crc32c(&[&out[21..]]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(out)
}

/// Appends `batch` to the last segment of `topic`-`partition` of a stopped node, at the log's
/// end offset, and removes the clean-shutdown marker so that recovery reads it.
fn append_to_log_end(node: &Node, topic: &str, partition: i32, batch: Bytes) {
    use std::io::Write;
    let segment = common::segment_files(&node.log_dir(), topic, partition)
        .pop()
        .expect("a segment");
    let bytes = std::fs::read(&segment).expect("read the segment");
    let next = common::batches(&bytes)
        .last()
        .map_or(0, |b| b.base_offset + i64::from(b.records));
    let mut batch = batch.to_vec();
    batch[..8].copy_from_slice(&next.to_be_bytes()); // outside the CRC
    std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .and_then(|mut f| f.write_all(&batch))
        .expect("append");
    let _ = std::fs::remove_file(node.log_dir().join(".kafka_cleanshutdown"));
}

fn topic_id(node: &Node, name: &str) -> Uuid {
    let md = metadata(node.addr(), Some(&[name]), T).expect("metadata");
    assert_eq!(md.topics[0].error_code, 0, "{name} exists");
    md.topics[0].topic_id
}

fn topic_names(node: &Node) -> Vec<String> {
    let md = metadata(node.addr(), None, T).expect("metadata");
    md.topics.iter().filter_map(|t| t.name.clone()).collect()
}

fn group_consumer(bootstrap: &str) -> BaseConsumer {
    common::client_config(
        bootstrap,
        &[
            ("group.id", "hostile"),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
        ],
    )
    .create()
    .expect("consumer")
}

fn committed(bootstrap: &str) -> Option<i64> {
    let c = group_consumer(bootstrap);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(TOPIC, 0);
    // An error (the coordinator still loading past librdkafka's retries) reads as nothing.
    let got = c.committed_offsets(tpl, T).ok()?;
    match got.elements().first()?.offset() {
        Offset::Offset(o) => Some(o),
        _ => None,
    }
}

/// A plain topic keeps taking writes from a real client.
fn still_serving(bootstrap: &str) {
    let p = common::SyncProducer::new(bootstrap, &[("acks", "all")]);
    let d = p.send_record(
        BaseRecord::<(), str>::to(TOPIC)
            .partition(0)
            .payload("alive"),
    );
    assert!(d.is_ok(), "a plain produce after the attempts: {d:?}");
}

#[test]
fn reserved_and_internal_topics_are_not_the_clients() {
    let _one = common::one_cluster_at_a_time();
    let mut cluster = Cluster::start(1, &GROUP_CONFIG);
    let bootstrap = cluster.bootstrap();
    create_topic(&admin(&bootstrap), &cluster.nodes[0], TOPIC, 1, &[]);
    let p = common::producer(&bootstrap, &[]);
    for i in 0..5 {
        let v = format!("record {i}");
        p.send(BaseRecord::<(), str>::to(TOPIC).partition(0).payload(&v))
            .map_err(|(e, _)| e)
            .expect("send");
    }
    common::flush(&p, T);
    // A committed offset (FindCoordinator creates __consumer_offsets).
    let c = group_consumer(&bootstrap);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Offset(3))
        .expect("tpl");
    c.commit(&tpl, CommitMode::Sync).expect("commit");
    drop(c);
    assert_eq!(committed(&bootstrap), Some(3));
    let node = &cluster.nodes[0];
    let offsets_id = topic_id(node, OFFSETS);

    // __cluster_metadata: never created, by CreateTopics or auto-creation.
    for validate_only in [false, true] {
        let (c, m) = create(node, METADATA_LOG, &[], validate_only);
        assert_eq!(c, ErrorCode::InvalidRequest, "{m:?}");
        assert_eq!(
            m.as_deref(),
            Some("Creation of internal topic __cluster_metadata is prohibited.")
        );
    }
    assert_eq!(
        metadata_auto(node, &[METADATA_LOG]),
        vec![(METADATA_LOG.to_owned(), ErrorCode::InvalidTopicException)]
    );
    // Nor grown, produced to, fetched (by name or its reserved id 0:1), or deleted.
    let grow = CreatePartitionsRequest {
        topics: vec![cpq::CreatePartitionsTopic {
            name: METADATA_LOG.into(),
            count: 2,
            ..Default::default()
        }],
        timeout_ms: 5000,
        ..Default::default()
    };
    match request(node, 3, RequestKind::CreatePartitions(grow)) {
        ResponseKind::CreatePartitions(r) => {
            assert_eq!(code(r.results[0].error_code), ErrorCode::InvalidRequest)
        }
        other => panic!("not a CreatePartitions answer: {other:?}"),
    }
    assert_eq!(
        produce(node, METADATA_LOG, 0, garbage_batch(Compression::None)),
        ErrorCode::InvalidTopicException
    );
    assert_eq!(
        fetch(node, Some(METADATA_LOG), Uuid::ZERO),
        ErrorCode::InvalidTopicException
    );
    assert_eq!(
        fetch(node, None, Uuid::from_u128(1)),
        ErrorCode::InvalidTopicException
    );
    assert_eq!(
        delete(node, vec![by_name(METADATA_LOG), by_id(Uuid::from_u128(1))]),
        vec![ErrorCode::InvalidRequest; 2]
    );

    // __consumer_offsets: no client writes (plain or a gzip batch of garbage), no deletion
    // by name or id, no creation of another internal topic by a client.
    for p in 0..3 {
        for codec in [Compression::None, Compression::Gzip] {
            assert_eq!(
                produce(node, OFFSETS, p, garbage_batch(codec)),
                ErrorCode::InvalidTopicException,
                "partition {p}, {codec:?}"
            );
        }
    }
    assert_eq!(
        delete(node, vec![by_name(OFFSETS)]),
        vec![ErrorCode::InvalidTopicException]
    );
    assert_eq!(
        delete(node, vec![by_id(offsets_id)]),
        vec![ErrorCode::InvalidTopicException]
    );
    assert_eq!(
        create(node, OFFSETS, &[], false).0,
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        create(node, "__transaction_state", &[], false).0,
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        metadata_auto(node, &["__transaction_state"]),
        vec![(
            "__transaction_state".to_owned(),
            ErrorCode::UnknownTopicOrPartition
        )]
    );
    // A client may still read it, as in Kafka.
    assert_eq!(fetch(node, Some(OFFSETS), Uuid::ZERO), ErrorCode::None);

    // Nothing changed, and the broker kept serving.
    still_serving(&bootstrap);
    assert_eq!(committed(&bootstrap), Some(3));
    let md = metadata(node.addr(), Some(&[OFFSETS]), T).expect("metadata");
    assert!(md.topics[0].is_internal, "__consumer_offsets is internal");
    let mut names = topic_names(node);
    names.sort();
    assert_eq!(names, vec![OFFSETS.to_owned(), TOPIC.to_owned()]);
    let raft_dir = node.log_dir().join("__cluster_metadata-0");
    assert!(raft_dir.is_dir(), "the metadata log is where it was");

    // A restart: the node registers again, its topics and the group's offset are there. Before
    // it, what an older broker let a client store: a gzip batch of garbage records at the end
    // of every __consumer_offsets partition (it left the groups "loading" forever).
    let status = cluster.nodes[0].terminate();
    assert!(status.success(), "clean shutdown: {status}");
    for p in 0..3 {
        append_to_log_end(
            &cluster.nodes[0],
            OFFSETS,
            p,
            garbage_batch(Compression::Gzip),
        );
    }
    cluster.nodes[0].start();
    cluster.wait_ready(READY_TIMEOUT);
    let node = &cluster.nodes[0];
    let mut names = topic_names(node);
    names.sort();
    assert_eq!(names, vec![OFFSETS.to_owned(), TOPIC.to_owned()]);
    assert_eq!(topic_id(node, OFFSETS), offsets_id);
    let deadline = common::Deadline::after(T);
    loop {
        // The coordinator answers COORDINATOR_LOAD_IN_PROGRESS while it loads (librdkafka
        // retries); it must end with the committed offset.
        if committed(&bootstrap) == Some(3) {
            break;
        }
        deadline.check(|| "the committed offset after the restart".into());
        std::thread::sleep(Duration::from_millis(100));
    }
    still_serving(&bootstrap);
    let log = std::fs::read_to_string(cluster.nodes[0].log_file()).unwrap_or_default();
    assert!(
        !log.contains("cannot load group offsets"),
        "every __consumer_offsets partition loaded"
    );
    assert!(
        log.lines().any(|l| l
            .contains("skipped what could not be read while loading a coordinator partition")
            && l.contains(OFFSETS)),
        "the garbage was read and skipped"
    );
}

#[test]
fn topic_configs_outside_kafkas_ranges_are_refused() {
    let _one = common::one_cluster_at_a_time();
    let cluster = Cluster::single();
    let bootstrap = cluster.bootstrap();
    let node = &cluster.nodes[0];
    create_topic(&admin(&bootstrap), node, TOPIC, 1, &[]);
    let bad: &[(&str, &str)] = &[
        ("segment.bytes", "100"),
        ("segment.index.bytes", "4"),
        ("segment.ms", "0"),
        ("retention.ms", "-2"),
        ("max.message.bytes", "-1"),
        ("min.insync.replicas", "0"),
        ("cleanup.policy", "forever"),
        ("compression.type", "brotli"),
        ("message.timestamp.type", "WallClock"),
        ("message.timestamp.before.max.ms", "-1"),
        ("min.cleanable.dirty.ratio", "2"),
        ("no.such.config", "1"),
    ];
    for (k, v) in bad {
        for validate_only in [true, false] {
            let (c, m) = create(node, "configured", &[(k, v)], validate_only);
            assert_eq!(c, ErrorCode::InvalidConfig, "{k}={v}: {m:?}");
        }
    }
    let (_, m) = create(node, "configured", &[("segment.bytes", "100")], false);
    assert_eq!(
        m.as_deref(),
        Some("Invalid value 100 for configuration segment.bytes: Value must be at least 1048576")
    );
    assert_eq!(topic_names(node), vec![TOPIC.to_owned()], "nothing created");

    // The same rule when altering an existing topic, with both APIs.
    for (k, v) in bad {
        for validate_only in [true, false] {
            let inc = IncrementalAlterConfigsRequest {
                resources: vec![iacq::AlterConfigsResource {
                    resource_type: 2,
                    resource_name: TOPIC.into(),
                    configs: vec![iacq::AlterableConfig {
                        name: (*k).into(),
                        config_operation: 0,
                        value: Some((*v).into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                validate_only,
                ..Default::default()
            };
            match request(node, 1, RequestKind::IncrementalAlterConfigs(inc)) {
                ResponseKind::IncrementalAlterConfigs(r) => assert_eq!(
                    code(r.responses[0].error_code),
                    ErrorCode::InvalidConfig,
                    "incremental {k}={v}"
                ),
                other => panic!("not an IncrementalAlterConfigs answer: {other:?}"),
            }
            let legacy = AlterConfigsRequest {
                resources: vec![acq::AlterConfigsResource {
                    resource_type: 2,
                    resource_name: TOPIC.into(),
                    configs: vec![acq::AlterableConfig {
                        name: (*k).into(),
                        value: Some((*v).into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                validate_only,
                ..Default::default()
            };
            match request(node, 2, RequestKind::AlterConfigs(legacy)) {
                ResponseKind::AlterConfigs(r) => assert_eq!(
                    code(r.responses[0].error_code),
                    ErrorCode::InvalidConfig,
                    "legacy {k}={v}"
                ),
                other => panic!("not an AlterConfigs answer: {other:?}"),
            }
        }
    }
    // The floors themselves are accepted.
    let (c, m) = create(
        node,
        "floors",
        &[
            ("segment.bytes", "1048576"),
            ("segment.index.bytes", "4096"),
        ],
        false,
    );
    assert_eq!(c, ErrorCode::None, "{m:?}");
    still_serving(&bootstrap);
}
