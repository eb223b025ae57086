//! Storage faults and edge cases through the real binary, checked with raw frames:
//!
//! - a compacted partition with a corrupt closed segment is set aside by the log cleaner (logged
//!   once) while another compacted topic, after it in the cleaner's order, is still compacted;
//! - a topic whose log cannot be created (a file where its partition directory must go) is
//!   answered KAFKA_STORAGE_ERROR by CreateTopics, is never shown with a healthy leader, refuses
//!   produce, and the broker serves other topics meanwhile, deletes it, and restarts cleanly;
//! - a topic with a 249-character name (Kafka's maximum) is created, produced to and deleted;
//! - ListOffsets by time finds records inside zstd and gzip batches.

mod common;

use bytes::Bytes;
use common::{metadata, raw_request, segment_files, Cluster, Deadline, Node};
use rafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use rafka_protocol::messages::delete_topics_request::DeleteTopicState;
use rafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use rafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use rafka_protocol::messages::{
    CreateTopicsRequest, DeleteTopicsRequest, ListOffsetsRequest, ProduceRequest, RequestKind,
    ResponseKind,
};
use rafka_protocol::record_batch::{
    crc32c, Compression, RecordBatch, RecordBatchBuilder, ATTRIBUTES_OFFSET, CRC_OFFSET,
    LENGTH_OFFSET, LOG_OVERHEAD, RECORD_BATCH_OVERHEAD,
};
use rafka_protocol::ErrorCode;
use rafka_protocol::Records;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

/// One batch of `(key, value, timestamp)` records, compressed with `codec` as a client would.
fn batch(codec: Compression, records: &[(String, String, i64)]) -> Bytes {
    let mut b = RecordBatchBuilder::new(0);
    for (k, v, ts) in records {
        b.append(*ts, Some(k.as_bytes()), Some(v.as_bytes()), &[])
            .expect("record fits");
    }
    let plain = b.build();
    if codec == Compression::None {
        return plain;
    }
    let payload = rafka_storage::compression::compress(codec, &plain[RECORD_BATCH_OVERHEAD..])
        .expect("compress");
    let mut out = plain[..RECORD_BATCH_OVERHEAD].to_vec();
    out.extend_from_slice(&payload);
    let length = (out.len() - LOG_OVERHEAD) as i32;
    out[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&length.to_be_bytes());
    let attributes = i16::from(codec.id());
    out[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c(&[&out[ATTRIBUTES_OFFSET..]]);
    out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(out)
}

/// CreateTopics (v7) of one topic with one replica; the topic's result (error, message).
fn create(node: &Node, name: &str, partitions: i32, configs: &[(&str, &str)]) -> (i16, String) {
    let req = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: 1,
            configs: configs
                .iter()
                .map(|(k, v)| CreatableTopicConfig {
                    name: (*k).into(),
                    value: Some((*v).into()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        timeout_ms: 10_000,
        ..Default::default()
    };
    match raw_request(node.addr(), 7, RequestKind::CreateTopics(req), T) {
        Ok(ResponseKind::CreateTopics(r)) => {
            let t = &r.topics[0];
            (t.error_code, t.error_message.clone().unwrap_or_default())
        }
        other => panic!("CreateTopics {name}: {other:?}"),
    }
}

/// Produce (v9, acks=1) of one batch; (error code, base offset).
fn produce(node: &Node, topic: &str, partition: i32, records: Bytes) -> (i16, i64) {
    let req = ProduceRequest {
        acks: 1,
        timeout_ms: 5000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(Records::Bytes(records)),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    match raw_request(node.addr(), 9, RequestKind::Produce(req), T) {
        Ok(ResponseKind::Produce(r)) => {
            let p = &r.responses[0].partition_responses[0];
            (p.error_code, p.base_offset)
        }
        other => panic!("Produce {topic}-{partition}: {other:?}"),
    }
}

/// ListOffsets (v7) of one partition; (error code, timestamp, offset).
fn list_offset(node: &Node, topic: &str, timestamp: i64) -> (i16, i64, i64) {
    let req = ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: topic.into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: 0,
                timestamp,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    match raw_request(node.addr(), 7, RequestKind::ListOffsets(req), T) {
        Ok(ResponseKind::ListOffsets(r)) => {
            let p = &r.topics[0].partitions[0];
            (p.error_code, p.timestamp, p.offset)
        }
        other => panic!("ListOffsets {topic}: {other:?}"),
    }
}

/// DeleteTopics (v6) by name; the error code.
fn delete(node: &Node, name: &str) -> i16 {
    let req = DeleteTopicsRequest {
        topics: vec![DeleteTopicState {
            name: Some(name.into()),
            ..Default::default()
        }],
        timeout_ms: 10_000,
        ..Default::default()
    };
    match raw_request(node.addr(), 6, RequestKind::DeleteTopics(req), T) {
        Ok(ResponseKind::DeleteTopics(r)) => r.responses[0].error_code,
        other => panic!("DeleteTopics {name}: {other:?}"),
    }
}

/// Each partition's leader as Metadata shows it, or `None` while the topic is unknown.
fn leaders(node: &Node, topic: &str) -> Option<Vec<i32>> {
    let md = metadata(node.addr(), Some(&[topic]), T).ok()?;
    let t = md
        .topics
        .iter()
        .find(|t| t.name.as_deref() == Some(topic))?;
    if t.error_code == ErrorCode::UnknownTopicOrPartition.code() {
        return None;
    }
    let mut ps = t.partitions.clone();
    ps.sort_by_key(|p| p.partition_index);
    Some(ps.iter().map(|p| p.leader_id).collect())
}

/// Waits until `check` holds, or panics with what `what` says after `timeout`.
fn wait_until(timeout: Duration, what: impl Fn() -> String, check: impl Fn() -> bool) {
    let deadline = Deadline::after(timeout);
    while !check() {
        deadline.check(&what);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A topic any client can use: created, produced to, read back by offset.
fn assert_serving(node: &Node, topic: &str) {
    if leaders(node, topic).is_none() {
        assert_eq!(create(node, topic, 1, &[]).0, 0, "create {topic}");
    }
    let rec = vec![("k".to_string(), "v".to_string(), common_now_ms())];
    let (code, offset) = produce(node, topic, 0, batch(Compression::None, &rec));
    assert_eq!(code, 0, "produce to {topic}");
    assert!(offset >= 0);
    assert_eq!(list_offset(node, topic, -1), (0, -1, offset + 1));
}

fn common_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Records in `topic`-0's segments below the active one (from the batch headers), and how many
/// such segments there are.
fn records_below_active(node: &Node, topic: &str) -> Option<(i64, usize)> {
    let files = segment_files(&node.log_dir(), topic, 0);
    let (_active, inactive) = files.split_last()?;
    let mut records = 0i64;
    for f in inactive {
        for b in common::batches(&std::fs::read(f).ok()?) {
            records += i64::from(b.records);
        }
    }
    Some((records, inactive.len()))
}

/// (a) The cleaner meets a corrupt batch in one compacted partition (first in its order): that
/// partition is set aside, logged once, and the other compacted topic is compacted all the same.
#[test]
fn a_corrupt_compacted_partition_does_not_stop_the_cleaning_of_the_others() {
    let _serial = common::one_cluster_at_a_time();
    let mut cluster = Cluster::start(
        1,
        &[
            ("log.cleaner.enable", "false"),
            ("log.cleaner.backoff.ms", "100"),
        ],
    );
    let node = &mut cluster.nodes[0];
    // Rolls by record time: each batch below is 2 s after the previous one.
    let configs = [
        ("cleanup.policy", "compact"),
        ("segment.ms", "1000"),
        ("min.cleanable.dirty.ratio", "0.01"),
    ];
    let (bad, good) = ("a-corrupt", "b-healthy");
    for t in [bad, good] {
        assert_eq!(create(node, t, 1, &configs).0, 0, "create {t}");
    }
    let t0 = common_now_ms() - 120_000;
    for round in 0..6i64 {
        let records: Vec<(String, String, i64)> = (0..10)
            .map(|k| (format!("k{k}"), format!("v{round}"), t0 + round * 2000 + k))
            .collect();
        for t in [bad, good] {
            let (code, _) = produce(node, t, 0, batch(Compression::Zstd, &records));
            assert_eq!(code, 0, "produce round {round} to {t}");
        }
    }
    let before = records_below_active(node, good).expect("segments");
    assert_eq!(before, (50, 5), "five closed segments of ten records");

    // Stopped cleanly, the first segment of the first topic gets garbage in its compressed
    // payload (its header, CRC included, untouched: only reading its records finds it).
    assert!(node.terminate().success());
    let first = segment_files(&node.log_dir(), bad, 0)[0].clone();
    let mut bytes = std::fs::read(&first).expect("segment");
    for b in &mut bytes[RECORD_BATCH_OVERHEAD..RECORD_BATCH_OVERHEAD + 16] {
        *b = 0xA5;
    }
    std::fs::write(&first, &bytes).expect("corrupt");
    let props = node.dir.join("server.properties");
    let text = std::fs::read_to_string(&props).expect("properties");
    std::fs::write(
        &props,
        text.replace("log.cleaner.enable=false", "log.cleaner.enable=true"),
    )
    .expect("properties");
    node.start();
    cluster.wait_ready(Duration::from_secs(20));
    let node = &cluster.nodes[0];

    wait_until(
        Duration::from_secs(20),
        || {
            format!(
                "{good} compacted: {:?}\n{}",
                records_below_active(node, good),
                node.log_tail(20)
            )
        },
        || records_below_active(node, good).is_some_and(|(r, _)| r <= 10),
    );
    // The corrupt one is left as it was, and said so once however many passes ran since.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(std::fs::read(&first).expect("segment"), bytes);
    let log = std::fs::read_to_string(node.log_file()).expect("log");
    let warnings = log
        .lines()
        .filter(|l| l.contains("marked uncleanable") && l.contains(bad))
        .count();
    assert_eq!(warnings, 1, "logged once:\n{}", node.log_tail(30));
    assert_serving(node, good);
    assert_serving(node, "other");
}

/// (b) A file where a partition's directory must go: its log cannot be created.
#[test]
fn a_topic_whose_log_cannot_be_created_is_never_reported_healthy() {
    let _serial = common::one_cluster_at_a_time();
    let mut cluster = Cluster::start(1, &[]);
    let node = &cluster.nodes[0];
    assert_serving(node, "before");
    std::fs::write(node.log_dir().join("blocked-1"), b"in the way").expect("file");

    let (code, message) = create(node, "blocked", 2, &[]);
    assert_eq!(
        code,
        ErrorCode::KafkaStorageError.code(),
        "CreateTopics: {message}"
    );
    // The controller is told: the partition is leaderless, not led by a broker without a log.
    wait_until(
        Duration::from_secs(10),
        || {
            format!(
                "leaders {:?}\n{}",
                leaders(node, "blocked"),
                node.log_tail(20)
            )
        },
        || leaders(node, "blocked") == Some(vec![1, -1]),
    );
    let rec = vec![("k".to_string(), "v".to_string(), common_now_ms())];
    let (code, _) = produce(node, "blocked", 1, batch(Compression::None, &rec));
    assert!(
        code == ErrorCode::KafkaStorageError.code()
            || code == ErrorCode::NotLeaderOrFollower.code(),
        "produce to the partition without a log: {code}"
    );
    // Its healthy partition and every other topic are served meanwhile.
    assert_eq!(
        produce(node, "blocked", 0, batch(Compression::None, &rec)).0,
        0
    );
    assert_serving(node, "before");
    assert_serving(node, "after");

    // Deleted, then re-created once the way is clear: healthy.
    assert_eq!(delete(node, "blocked"), 0);
    wait_until(
        Duration::from_secs(10),
        || "blocked deleted".into(),
        || leaders(node, "blocked").is_none(),
    );
    std::fs::remove_file(node.log_dir().join("blocked-1")).expect("clear the way");
    assert_eq!(create(node, "blocked", 2, &[]).0, 0);
    assert_eq!(leaders(node, "blocked"), Some(vec![1, 1]));

    // And the node restarts cleanly with all of it.
    let node = &mut cluster.nodes[0];
    assert!(node.terminate().success());
    node.start();
    cluster.wait_ready(Duration::from_secs(20));
    let node = &cluster.nodes[0];
    common::wait_for_topic(node, "blocked", 2, Duration::from_secs(10));
    assert_serving(node, "after");
}

/// (c) Kafka's longest topic name, 249 characters: created, produced to, and deleted (its
/// directory's name while deleted must still fit 255 bytes).
#[test]
fn a_topic_with_a_249_character_name_is_created_produced_to_and_deleted() {
    let _serial = common::one_cluster_at_a_time();
    let mut cluster = Cluster::start(1, &[]);
    let node = &cluster.nodes[0];
    let name = "n".repeat(249);
    assert_eq!(create(node, &name, 1, &[]).0, 0);
    let rec = vec![("k".to_string(), "v".to_string(), common_now_ms())];
    assert_eq!(
        produce(node, &name, 0, batch(Compression::None, &rec)),
        (0, 0)
    );
    assert_eq!(delete(node, &name), 0);
    wait_until(
        Duration::from_secs(10),
        || {
            let left: Vec<_> = std::fs::read_dir(node.log_dir())
                .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
                .unwrap_or_default();
            format!("{name} gone: {left:?}\n{}", node.log_tail(20))
        },
        || {
            leaders(node, &name).is_none()
                && std::fs::read_dir(node.log_dir()).is_ok_and(|d| {
                    d.filter_map(|e| e.ok())
                        .all(|e| !e.file_name().to_string_lossy().starts_with("nnnn"))
                })
        },
    );
    assert!(
        !node.log_tail(200).contains("cannot delete log"),
        "{}",
        node.log_tail(20)
    );
    assert_serving(node, "other");
    let node = &mut cluster.nodes[0];
    assert!(node.terminate().success());
    node.start();
    cluster.wait_ready(Duration::from_secs(20));
    assert!(leaders(&cluster.nodes[0], &name).is_none());
}

/// (d) ListOffsets by time looks inside zstd and gzip batches: every record's own timestamp
/// finds its own offset (not its batch's), a time past the last finds none, and the max
/// timestamp finds its record.
#[test]
fn list_offsets_by_time_finds_records_inside_compressed_batches() {
    let _serial = common::one_cluster_at_a_time();
    let cluster = Cluster::start(1, &[]);
    let node = &cluster.nodes[0];
    let t0 = common_now_ms() - 60_000;
    for (topic, codec) in [("zstd", Compression::Zstd), ("gzip", Compression::Gzip)] {
        assert_eq!(create(node, topic, 1, &[]).0, 0);
        // Three batches of five records, timestamps 10 ms apart, the largest in the middle one.
        let mut times = Vec::new();
        for b in 0..3i64 {
            let records: Vec<(String, String, i64)> = (0..5)
                .map(|i| {
                    let ts = t0 + (b * 5 + i) * 10 + if b == 1 && i == 2 { 1000 } else { 0 };
                    (format!("k{i}"), format!("v{b}{i}"), ts)
                })
                .collect();
            times.extend(records.iter().map(|r| r.2));
            let (code, base) = produce(node, topic, 0, batch(codec, &records));
            assert_eq!((code, base), (0, b * 5), "{topic} batch {b}");
        }
        for (offset, &ts) in times.iter().enumerate() {
            // The first record at or after ts: the max-timestamp record is later than some that
            // follow it, so the answer is the first at or after, not always this one.
            let want = times.iter().position(|&t| t >= ts).expect("present") as i64;
            assert_eq!(
                list_offset(node, topic, ts),
                (0, times[want as usize], want),
                "{topic}: record {offset} at {ts}"
            );
        }
        let max = *times.iter().max().expect("records");
        assert_eq!(
            list_offset(node, topic, max + 1),
            (0, -1, -1),
            "{topic}: after all"
        );
        assert_eq!(
            list_offset(node, topic, -3),
            (0, max, 7),
            "{topic}: max timestamp"
        );
        // Stored as sent: still compressed on disk.
        let seg = std::fs::read(&segment_files(&node.log_dir(), topic, 0)[0]).expect("segment");
        let stored = RecordBatch::batches(Bytes::from(seg))
            .map(|b| b.expect("batch").compression().expect("codec"))
            .collect::<Vec<_>>();
        assert_eq!(stored, vec![codec; 3]);
    }
}

/// CreateTopics (v7) of one partition on the given replicas (the first preferred); the error.
fn create_on(node: &Node, name: &str, replicas: &[i32]) -> i16 {
    use rafka_protocol::messages::create_topics_request::CreatableReplicaAssignment;
    let req = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: -1,
            replication_factor: -1,
            assignments: vec![CreatableReplicaAssignment {
                partition_index: 0,
                broker_ids: replicas.to_vec(),
                ..Default::default()
            }],
            ..Default::default()
        }],
        timeout_ms: 10_000,
        ..Default::default()
    };
    match raw_request(node.addr(), 7, RequestKind::CreateTopics(req), T) {
        Ok(ResponseKind::CreateTopics(r)) => r.topics[0].error_code,
        other => panic!("CreateTopics {name}: {other:?}"),
    }
}

/// (b, replicated) The preferred leader cannot create its log: the controller, told by that
/// broker, hands leadership to another ISR member and takes the broker out of the ISR, and the
/// partition is served by the new leader.
#[test]
fn leadership_moves_away_from_a_broker_that_cannot_create_its_log() {
    let _serial = common::one_cluster_at_a_time();
    let cluster = Cluster::start(3, &[]);
    let (n1, n2) = (&cluster.nodes[0], &cluster.nodes[1]);
    std::fs::write(n2.log_dir().join("moved-0"), b"in the way").expect("file");
    // Asked of node 1, which hosts its own replica: for it the topic is created.
    assert_eq!(create_on(n1, "moved", &[2, 1, 3]), 0);
    let views = common::wait_for_isrs(n1, "moved", 1, &[1, 3], Deadline::after(T));
    assert_eq!(views[0].leader, 1, "{views:?}");
    let rec = vec![("k".to_string(), "v".to_string(), common_now_ms())];
    assert_eq!(
        produce(n1, "moved", 0, batch(Compression::None, &rec)),
        (0, 0)
    );
    let (code, _) = produce(n2, "moved", 0, batch(Compression::None, &rec));
    assert!(
        code == ErrorCode::KafkaStorageError.code()
            || code == ErrorCode::NotLeaderOrFollower.code(),
        "produce to the broker without the log: {code}"
    );
    // Node 2 leads and serves a topic it can host.
    assert_eq!(create_on(n1, "elsewhere", &[2]), 0);
    wait_until(
        T,
        || format!("elsewhere led by 2: {:?}", leaders(n1, "elsewhere")),
        || leaders(n2, "elsewhere") == Some(vec![2]),
    );
    assert_eq!(
        produce(n2, "elsewhere", 0, batch(Compression::None, &rec)),
        (0, 0)
    );
}
