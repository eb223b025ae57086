//! Transactions v2 (KIP-890 part 2) against the real binary, in raw frames as the Java client
//! ≥ 4.0 sends them (no Java client can be installed here): the `transaction.version` feature in
//! ApiVersions; Produce v12 without AddPartitionsToTxn (the leader adds the partition); EndTxn v5
//! bumping the epoch at every commit and abort and answering the next epoch; a retried EndTxn;
//! a zombie at the pre-bump epoch fenced; TxnOffsetCommit v5 without AddOffsetsToTxn (the group
//! coordinator adds the offsets partition). A librdkafka transactional producer (transactions
//! v1) works on the same node meanwhile, and read_committed consumers see exactly the committed
//! records of both.

mod common;

use common::txn::{find_coordinator, offset_fetch, wait_offset, wait_transaction_state};
use common::{raw_request, Cluster};
use rafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use rafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use rafka_protocol::messages::{
    ApiVersionsRequest, EndTxnRequest, EndTxnResponse, InitProducerIdRequest, ProduceRequest,
    RequestKind, ResponseKind, TxnOffsetCommitRequest,
};
use rafka_protocol::{ApiKey, ErrorCode, Records};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::TopicPartitionList;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);

fn node() -> Cluster {
    Cluster::start(
        1,
        &[
            ("transaction.state.log.num.partitions", "3"),
            ("transaction.state.log.replication.factor", "1"),
            ("transaction.state.log.min.isr", "1"),
            ("offsets.topic.replication.factor", "1"),
            ("offsets.topic.num.partitions", "3"),
        ],
    )
}

fn create(cluster: &Cluster, topic: &str) {
    let admin = common::admin(&cluster.bootstrap());
    common::create_topic(&admin, &cluster.nodes[0], topic, 1, &[]);
}

/// InitProducerId v4 for `id` (retried while the coordinator loads): (producer id, epoch).
fn init(addr: SocketAddr, id: &str) -> (i64, i16) {
    find_coordinator(addr, id, 1);
    let req = InitProducerIdRequest {
        transactional_id: Some(id.into()),
        transaction_timeout_ms: 60_000,
        ..Default::default()
    };
    let deadline = Instant::now() + T;
    loop {
        let Ok(ResponseKind::InitProducerId(r)) =
            raw_request(addr, 4, RequestKind::InitProducerId(req.clone()), T)
        else {
            panic!("InitProducerId")
        };
        let retriable = [
            ErrorCode::CoordinatorLoadInProgress.code(),
            ErrorCode::NotCoordinator.code(),
            ErrorCode::CoordinatorNotAvailable.code(),
            ErrorCode::ConcurrentTransactions.code(),
        ];
        if r.error_code == 0 {
            return (r.producer_id, r.producer_epoch);
        }
        assert!(
            retriable.contains(&r.error_code) && Instant::now() < deadline,
            "InitProducerId {id}: {r:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One transactional batch of `values` as Produce v`version` (acks=all): the partition's code.
#[allow(clippy::too_many_arguments)]
fn produce(
    addr: SocketAddr,
    version: i16,
    id: &str,
    topic: &str,
    (pid, epoch, seq): (i64, i16, i32),
    values: &[&str],
) -> i16 {
    let mut b = rafka_protocol::record_batch::RecordBatchBuilder::new(0)
        .producer(pid, epoch, seq)
        .transactional(true);
    for v in values {
        b.append(0, None, Some(v.as_bytes()), &[]).unwrap();
    }
    let req = ProduceRequest {
        transactional_id: Some(id.into()),
        acks: -1,
        timeout_ms: 10_000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(Records::Bytes(b.build())),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let Ok(ResponseKind::Produce(r)) = raw_request(addr, version, RequestKind::Produce(req), T)
    else {
        panic!("Produce v{version}")
    };
    r.responses[0].partition_responses[0].error_code
}

/// EndTxn v`version`; retried while the previous one's markers are still being written.
fn end_txn(
    addr: SocketAddr,
    version: i16,
    id: &str,
    (pid, epoch): (i64, i16),
    commit: bool,
) -> EndTxnResponse {
    let req = EndTxnRequest {
        transactional_id: id.into(),
        producer_id: pid,
        producer_epoch: epoch,
        committed: commit,
        ..Default::default()
    };
    let deadline = Instant::now() + T;
    loop {
        let Ok(ResponseKind::EndTxn(r)) =
            raw_request(addr, version, RequestKind::EndTxn(req.clone()), T)
        else {
            panic!("EndTxn v{version}")
        };
        if r.error_code != ErrorCode::ConcurrentTransactions.code() || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every value of partition 0 of `topic` a consumer of `isolation` reads until the end of what
/// it may read (twice in a row, 1 s apart).
fn read(bootstrap: &str, topic: &str, isolation: &str) -> Vec<String> {
    let c: BaseConsumer = common::consumer(
        bootstrap,
        &[
            ("group.id", "reader"),
            ("isolation.level", isolation),
            ("enable.partition.eof", "true"),
            ("fetch.wait.max.ms", "100"),
        ],
    );
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, rdkafka::Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + T;
    let mut eofs = 0;
    while eofs < 2 {
        assert!(Instant::now() < deadline, "reading {topic}: {out:?}");
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
                eofs = 0;
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => {
                eofs += 1;
                std::thread::sleep(Duration::from_millis(500));
                let next = c
                    .position()
                    .ok()
                    .and_then(|l| l.find_partition(topic, 0).and_then(|p| p.offset().to_raw()))
                    .unwrap_or(0);
                let _ = c.seek(topic, 0, rdkafka::Offset::Offset(next), T);
            }
            Some(Err(e)) => panic!("consume {topic}: {e}"),
            None => {}
        }
    }
    out
}

/// A librdkafka transactional producer (transactions v1: AddPartitionsToTxn, EndTxn v1).
fn v1_producer(bootstrap: &str, id: &str) -> BaseProducer {
    let p: BaseProducer = common::client_config(
        bootstrap,
        &[
            ("transactional.id", id),
            ("transaction.timeout.ms", "20000"),
            ("message.timeout.ms", "20000"),
        ],
    )
    .create()
    .expect("transactional producer");
    p.init_transactions(T).expect("init_transactions");
    p
}

fn v1_send(p: &BaseProducer, topic: &str, value: &str) {
    p.send(BaseRecord::<(), str>::to(topic).payload(value).partition(0))
        .unwrap_or_else(|(e, _)| panic!("send {value}: {e}"));
    p.flush(T).expect("flush");
}

/// ApiVersions as the Java client asks it (v4, "apache-kafka-java") finalizes
/// `transaction.version` 2 and serves Produce 12, EndTxn 5, TxnOffsetCommit 5; librdkafka's
/// answer carries no feature tags (old kcat cannot read them).
#[test]
fn api_versions_finalizes_transaction_version_2_for_the_java_client() {
    let _serial = common::one_cluster_at_a_time();
    let cluster = node();
    let addr = cluster.nodes[0].addr();
    let ask = |name: &str| {
        let req = ApiVersionsRequest {
            client_software_name: name.into(),
            client_software_version: "4.0.0".into(),
            ..Default::default()
        };
        let Ok(ResponseKind::ApiVersions(r)) =
            raw_request(addr, 4, RequestKind::ApiVersions(req), T)
        else {
            panic!("ApiVersions")
        };
        r
    };
    let java = ask("apache-kafka-java");
    let tv = java
        .finalized_features
        .iter()
        .find(|f| f.name == "transaction.version")
        .expect("transaction.version finalized");
    assert_eq!(tv.max_version_level, 2);
    assert!(java.finalized_features_epoch >= 0);
    let supported = java
        .supported_features
        .iter()
        .find(|f| f.name == "transaction.version")
        .expect("transaction.version supported");
    assert_eq!((supported.min_version, supported.max_version), (0, 2));
    for (key, v) in [
        (ApiKey::Produce, 12),
        (ApiKey::EndTxn, 5),
        (ApiKey::TxnOffsetCommit, 5),
        (ApiKey::AddPartitionsToTxn, 5),
    ] {
        let r = java
            .api_keys
            .iter()
            .find(|k| k.api_key == key.key())
            .unwrap_or_else(|| panic!("{key:?} advertised"));
        assert!(r.max_version >= v, "{key:?}: {r:?}");
    }
    let rdkafka = ask("librdkafka");
    assert!(rdkafka.finalized_features.is_empty());
    assert!(rdkafka.supported_features.is_empty());
    assert_eq!(rdkafka.api_keys, java.api_keys);
}

/// A transactions v2 producer: no AddPartitionsToTxn, Produce v12 (the leader adds the
/// partition), EndTxn v5 bumping the epoch at every commit and abort; retries, zombies and a
/// librdkafka (v1) producer on the same partition; read_committed sees exactly the committed.
#[test]
fn a_transactions_v2_producer_bumps_its_epoch_at_every_commit_and_abort() {
    let _serial = common::one_cluster_at_a_time();
    let cluster = node();
    let addr = cluster.nodes[0].addr();
    let b = cluster.bootstrap();
    create(&cluster, "tv2");
    let id = "tv2-producer";
    let (pid, e0) = init(addr, id);

    // Transaction 1 at e0: committed. The leader adds the partition itself.
    assert_eq!(produce(addr, 12, id, "tv2", (pid, e0, 0), &["c1", "c2"]), 0);
    let r = end_txn(addr, 5, id, (pid, e0), true);
    assert_eq!(r.error_code, 0, "{r:?}");
    assert_eq!((r.producer_id, r.producer_epoch), (pid, e0 + 1), "bumped");
    // The same EndTxn retried (its answer lost): NONE with the same next epoch.
    let r = end_txn(addr, 5, id, (pid, e0), true);
    assert_eq!(
        (r.error_code, r.producer_id, r.producer_epoch),
        (0, pid, e0 + 1)
    );
    // An abort at the pre-bump epoch is not the retry of a commit.
    let r = end_txn(addr, 5, id, (pid, e0), false);
    assert_eq!(r.error_code, ErrorCode::InvalidTxnState.code());
    assert_eq!((r.producer_id, r.producer_epoch), (-1, -1));

    // Transaction 2 at e0 + 1 (sequences from 0): aborted.
    let e1 = e0 + 1;
    assert_eq!(produce(addr, 12, id, "tv2", (pid, e1, 0), &["a1"]), 0);
    let r = end_txn(addr, 5, id, (pid, e1), false);
    assert_eq!(
        (r.error_code, r.producer_id, r.producer_epoch),
        (0, pid, e1 + 1)
    );
    let e2 = e1 + 1;

    // A zombie still at e0: its writes and its EndTxn are fenced, nothing is stored — also
    // while the abort's markers are still written (the epoch is checked first, as Kafka's).
    let zombie = produce(addr, 12, id, "tv2", (pid, e0, 2), &["zombie"]);
    assert_eq!(zombie, ErrorCode::InvalidProducerEpoch.code());
    let r = end_txn(addr, 5, id, (pid, e0), true);
    assert_eq!(r.error_code, ErrorCode::ProducerFenced.code());
    // An unknown producer id.
    let r = end_txn(addr, 5, id, (pid + 1000, e2), true);
    assert_eq!(r.error_code, ErrorCode::InvalidProducerIdMapping.code());
    // A commit with nothing open at the current epoch is invalid (v2 allows only an abort),
    // once the abort's markers are written: before that the state is PrepareAbort at e2, where
    // Kafka takes only the retry at e1 and fences e2.
    wait_transaction_state(addr, id, "CompleteAbort");
    let r = end_txn(addr, 5, id, (pid, e2), true);
    assert_eq!(r.error_code, ErrorCode::InvalidTxnState.code());

    // Meanwhile a librdkafka producer (transactions v1) commits one and aborts one.
    let v1 = v1_producer(&b, "tv1-producer");
    v1.begin_transaction().unwrap();
    v1_send(&v1, "tv2", "v1-c");
    v1.commit_transaction(T).expect("v1 commit");
    v1.begin_transaction().unwrap();
    v1_send(&v1, "tv2", "v1-a");
    v1.abort_transaction(T).expect("v1 abort");

    // Transaction 3 at e2: committed; a v1 EndTxn (v3) from this producer would not bump.
    assert_eq!(produce(addr, 12, id, "tv2", (pid, e2, 0), &["c3"]), 0);
    let r = end_txn(addr, 5, id, (pid, e2), true);
    assert_eq!(
        (r.error_code, r.producer_id, r.producer_epoch),
        (0, pid, e2 + 1)
    );
    // The v1 producer keeps working after the v2 one.
    v1.begin_transaction().unwrap();
    v1_send(&v1, "tv2", "v1-c2");
    v1.commit_transaction(T).expect("v1 commit");

    assert_eq!(
        read(&b, "tv2", "read_committed"),
        ["c1", "c2", "v1-c", "c3", "v1-c2"]
    );
    assert_eq!(
        read(&b, "tv2", "read_uncommitted"),
        ["c1", "c2", "a1", "v1-c", "v1-a", "c3", "v1-c2"]
    );
}

/// Produce v11 (transactions v1) still only verifies: without AddPartitionsToTxn its
/// transactional write is refused, as before; v12 adds the partition.
#[test]
fn only_produce_v12_adds_the_partition() {
    let _serial = common::one_cluster_at_a_time();
    let cluster = node();
    let addr = cluster.nodes[0].addr();
    create(&cluster, "v11");
    let id = "tv-v11";
    let (pid, e) = init(addr, id);
    assert_eq!(
        produce(addr, 11, id, "v11", (pid, e, 0), &["x"]),
        ErrorCode::InvalidTxnState.code()
    );
    assert_eq!(produce(addr, 12, id, "v11", (pid, e, 0), &["y"]), 0);
    // Once added, a v11 write to the open transaction is accepted too.
    assert_eq!(produce(addr, 11, id, "v11", (pid, e, 1), &["z"]), 0);
    let r = end_txn(addr, 5, id, (pid, e), true);
    assert_eq!((r.error_code, r.producer_epoch), (0, e + 1));
    assert_eq!(
        read(&cluster.bootstrap(), "v11", "read_committed"),
        ["y", "z"]
    );
}

const UNSTABLE: i16 = 88;

/// TxnOffsetCommit v5 without AddOffsetsToTxn: the group coordinator adds the group's
/// `__consumer_offsets` partition to the transaction; the offsets are visible only once it
/// commits, dropped when it aborts, and a zombie's commit at the pre-bump epoch is refused.
#[test]
fn txn_offset_commit_v5_offsets_are_visible_only_after_commit() {
    let _serial = common::one_cluster_at_a_time();
    let cluster = node();
    let addr = cluster.nodes[0].addr();
    create(&cluster, "in5");
    let id = "tv2-offsets";
    let (pid, e0) = init(addr, id);
    find_coordinator(addr, "g5", 0);
    assert_eq!(offset_fetch(addr, "g5", "in5", true), (-1, 0));
    let commit = |version: i16, epoch: i16, offset: i64| -> i16 {
        let req = TxnOffsetCommitRequest {
            transactional_id: id.into(),
            group_id: "g5".into(),
            producer_id: pid,
            producer_epoch: epoch,
            topics: vec![TxnOffsetCommitRequestTopic {
                name: "in5".into(),
                partitions: vec![TxnOffsetCommitRequestPartition {
                    partition_index: 0,
                    committed_offset: offset,
                    committed_metadata: Some("m".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let deadline = Instant::now() + T;
        loop {
            let Ok(ResponseKind::TxnOffsetCommit(r)) =
                raw_request(addr, version, RequestKind::TxnOffsetCommit(req.clone()), T)
            else {
                panic!("TxnOffsetCommit v{version}")
            };
            let code = r.topics[0].partitions[0].error_code;
            if code != ErrorCode::CoordinatorNotAvailable.code() || Instant::now() > deadline {
                return code;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // v3 (transactions v1) without AddOffsetsToTxn: not in the transaction.
    assert_eq!(commit(3, e0, 5), ErrorCode::InvalidTxnState.code());
    // v5: added implicitly; pending until the commit.
    assert_eq!(commit(5, e0, 5), 0);
    assert_eq!(offset_fetch(addr, "g5", "in5", true), (-1, UNSTABLE));
    assert_eq!(offset_fetch(addr, "g5", "in5", false), (-1, 0));
    let r = end_txn(addr, 5, id, (pid, e0), true);
    assert_eq!((r.error_code, r.producer_epoch), (0, e0 + 1));
    wait_offset(addr, "g5", "in5", true, (5, 0));

    // The next transaction at e0 + 1: offsets committed, then aborted — dropped.
    let e1 = e0 + 1;
    assert_eq!(commit(5, e1, 9), 0);
    assert_eq!(offset_fetch(addr, "g5", "in5", true), (-1, UNSTABLE));
    let r = end_txn(addr, 5, id, (pid, e1), false);
    assert_eq!((r.error_code, r.producer_epoch), (0, e1 + 1));
    wait_offset(addr, "g5", "in5", true, (5, 0));

    // A zombie at e0 (or e1) is refused, and nothing becomes pending.
    for stale in [e0, e1] {
        assert_eq!(
            commit(5, stale, 100),
            ErrorCode::InvalidProducerEpoch.code(),
            "epoch {stale}"
        );
    }
    assert_eq!(offset_fetch(addr, "g5", "in5", true), (5, 0));
}
