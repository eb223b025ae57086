//! Transactions (KIP-98) against the real binary with librdkafka (the rdkafka crate's
//! transactional API): committed records reach read_committed consumers, aborted ones only
//! read_uncommitted consumers; a new instance of a transactional id fences the old one; a
//! transaction open past its timeout is aborted by the coordinator. The node has a separate
//! inter-broker listener, so that WriteTxnMarkers from a client (on the client listener) can be
//! shown refused.

mod common;

use common::{raw_request, Cluster, NodePorts};
use rafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use rafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use rafka_protocol::messages::{
    EndTxnRequest, FindCoordinatorRequest, InitProducerIdRequest, ProduceRequest, RequestKind,
    ResponseKind, WriteTxnMarkersRequest,
};
use rafka_protocol::{ErrorCode, Records};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::TopicPartitionList;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);

/// One combined node with client listener PLAINTEXT and inter-broker listener INTERNAL;
/// timed-out transactions are looked for every 500 ms. Returns the INTERNAL address too.
fn node() -> (Cluster, SocketAddr) {
    let internal = Mutex::new(0u16);
    let per_node = |n: &NodePorts| {
        let i = common::free_port();
        *internal.lock().unwrap() = i;
        vec![
            (
                "listeners".to_string(),
                format!(
                    "PLAINTEXT://127.0.0.1:{},INTERNAL://127.0.0.1:{i},CONTROLLER://127.0.0.1:{}",
                    n.port, n.controller_port
                ),
            ),
            (
                "advertised.listeners".to_string(),
                format!("PLAINTEXT://127.0.0.1:{},INTERNAL://127.0.0.1:{i}", n.port),
            ),
            (
                "listener.security.protocol.map".to_string(),
                "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT".to_string(),
            ),
            (
                "inter.broker.listener.name".to_string(),
                "INTERNAL".to_string(),
            ),
        ]
    };
    let cluster = Cluster::start_with(
        &["broker,controller"],
        &[
            (
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                "500",
            ),
            ("transaction.state.log.num.partitions", "5"),
            ("transaction.state.log.replication.factor", "1"),
            ("transaction.state.log.min.isr", "1"),
            ("offsets.topic.replication.factor", "1"),
            ("offsets.topic.num.partitions", "5"),
        ],
        &per_node,
    );
    let port = *internal.lock().unwrap();
    (cluster, SocketAddr::from(([127, 0, 0, 1], port)))
}

fn txn_producer(bootstrap: &str, id: &str, timeout_ms: &str) -> BaseProducer {
    common::client_config(
        bootstrap,
        &[
            ("transactional.id", id),
            ("transaction.timeout.ms", timeout_ms),
            ("message.timeout.ms", timeout_ms),
            ("socket.timeout.ms", timeout_ms),
        ],
    )
    .create()
    .expect("transactional producer")
}

fn send(p: &BaseProducer, topic: &str, values: &[&str]) {
    for v in values {
        p.send(BaseRecord::<(), str>::to(topic).payload(*v).partition(0))
            .unwrap_or_else(|(e, _)| panic!("send {v}: {e}"));
    }
    p.flush(T).expect("flush");
}

/// Every value of partition 0 of `topic` a consumer of `isolation` reads before it reaches the
/// end of what it may read (twice in a row, 1 s apart: nothing more arrives).
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
                let _ = c.seek(topic, 0, rdkafka::Offset::Offset(out_next(&c, topic)), T);
            }
            Some(Err(e)) => panic!("consume {topic}: {e}"),
            None => {}
        }
    }
    out
}

/// The consumer's position in partition 0 (to re-arm the EOF signal).
fn out_next(c: &BaseConsumer, topic: &str) -> i64 {
    c.position()
        .ok()
        .and_then(|l| l.find_partition(topic, 0).and_then(|p| p.offset().to_raw()))
        .unwrap_or(0)
}

fn create(cluster: &Cluster, topic: &str) {
    let admin = common::admin(&cluster.bootstrap());
    common::create_topic(&admin, &cluster.nodes[0], topic, 1, &[]);
}

#[test]
fn committed_records_are_read_committed_and_aborted_ones_are_not() {
    let _serial = common::one_cluster_at_a_time();
    let (cluster, _) = node();
    let b = cluster.bootstrap();
    create(&cluster, "t");
    let p = txn_producer(&b, "tx-1", "20000");
    p.init_transactions(T).expect("init_transactions");
    p.begin_transaction().unwrap();
    send(&p, "t", &["c0", "c1", "c2"]);
    p.commit_transaction(T).expect("commit");
    p.begin_transaction().unwrap();
    send(&p, "t", &["a0", "a1"]);
    p.abort_transaction(T).expect("abort");
    p.begin_transaction().unwrap();
    send(&p, "t", &["c3"]);
    p.commit_transaction(T).expect("commit");
    assert_eq!(read(&b, "t", "read_committed"), ["c0", "c1", "c2", "c3"]);
    assert_eq!(
        read(&b, "t", "read_uncommitted"),
        ["c0", "c1", "c2", "a0", "a1", "c3"]
    );

    // An open transaction holds read_committed consumers at its first offset.
    p.begin_transaction().unwrap();
    send(&p, "t", &["open"]);
    assert_eq!(read(&b, "t", "read_committed"), ["c0", "c1", "c2", "c3"]);
    assert_eq!(read(&b, "t", "read_uncommitted").last().unwrap(), "open");
    p.commit_transaction(T).expect("commit");
    assert_eq!(read(&b, "t", "read_committed").last().unwrap(), "open");
}

#[test]
fn a_new_instance_fences_the_old_one() {
    let _serial = common::one_cluster_at_a_time();
    let (cluster, _) = node();
    let b = cluster.bootstrap();
    create(&cluster, "z");
    let old = txn_producer(&b, "tx-z", "20000");
    old.init_transactions(T).expect("init old");
    old.begin_transaction().unwrap();
    send(&old, "z", &["zombie"]);
    // The new instance aborts the old one's transaction and bumps the epoch.
    let new = txn_producer(&b, "tx-z", "20000");
    new.init_transactions(T).expect("init new");
    new.begin_transaction().unwrap();
    send(&new, "z", &["fresh"]);
    new.commit_transaction(T).expect("commit new");
    let err = old
        .commit_transaction(T)
        .expect_err("the fenced instance cannot commit");
    assert!(
        err.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::Fenced)
            || err.to_string().to_lowercase().contains("fenced"),
        "{err}"
    );
    assert_eq!(read(&b, "z", "read_committed"), ["fresh"]);
}

#[test]
fn a_transaction_past_its_timeout_is_aborted() {
    let _serial = common::one_cluster_at_a_time();
    let (cluster, _) = node();
    let b = cluster.bootstrap();
    create(&cluster, "slow");
    let p = txn_producer(&b, "tx-slow", "2000");
    p.init_transactions(T).expect("init");
    p.begin_transaction().unwrap();
    send(&p, "slow", &["late"]);
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        p.commit_transaction(T).is_err(),
        "a timed-out transaction cannot commit"
    );
    // The abort marker is written: the LSO moves past it and later records are readable.
    let other = common::producer(&b, &[]);
    send(&other, "slow", &["after"]);
    assert_eq!(read(&b, "slow", "read_committed"), ["after"]);
    assert_eq!(read(&b, "slow", "read_uncommitted"), ["late", "after"]);
}

#[test]
fn bad_transactional_requests_get_kafkas_errors() {
    let _serial = common::one_cluster_at_a_time();
    let (cluster, internal) = node();
    let addr = cluster.nodes[0].addr();
    create(&cluster, "w");
    let markers = WriteTxnMarkersRequest {
        markers: vec![WritableTxnMarker {
            producer_id: 1,
            producer_epoch: 0,
            transaction_result: true,
            topics: vec![WritableTxnMarkerTopic {
                name: "w".into(),
                partition_indexes: vec![0],
                ..Default::default()
            }],
            coordinator_epoch: 0,
            ..Default::default()
        }],
        ..Default::default()
    };
    // A client on the client listener: the connection is closed, nothing is written.
    assert!(raw_request(addr, 1, RequestKind::WriteTxnMarkers(markers.clone()), T).is_err());
    let leo = |c: &Cluster| {
        let consumer = common::consumer(&c.bootstrap(), &[]);
        consumer.fetch_watermarks("w", 0, T).unwrap().1
    };
    assert_eq!(leo(&cluster), 0);
    // On the inter-broker listener it is served (no authorizer: as Kafka, CLUSTER_ACTION is
    // allowed); an unknown partition gets its error.
    let mut unknown = markers.clone();
    unknown.markers[0].topics[0].name = "nope".into();
    let Ok(ResponseKind::WriteTxnMarkers(r)) =
        raw_request(internal, 1, RequestKind::WriteTxnMarkers(unknown), T)
    else {
        panic!("WriteTxnMarkers on the inter-broker listener");
    };
    assert_eq!(
        r.markers[0].topics[0].partitions[0].error_code,
        ErrorCode::UnknownTopicOrPartition.code()
    );
    // InitProducerId: a transaction timeout above transaction.max.timeout.ms, and an empty id.
    for (id, timeout, want) in [
        ("tx-bad", 900_001, ErrorCode::InvalidTransactionTimeout),
        ("tx-bad", 0, ErrorCode::InvalidTransactionTimeout),
        ("", 1000, ErrorCode::InvalidRequest),
    ] {
        let req = InitProducerIdRequest {
            transactional_id: Some(id.into()),
            transaction_timeout_ms: timeout,
            ..Default::default()
        };
        let r =
            retry_coordinator(|| raw_request(addr, 4, RequestKind::InitProducerId(req.clone()), T));
        let ResponseKind::InitProducerId(r) = r else {
            panic!("InitProducerId")
        };
        assert_eq!(r.error_code, want.code(), "{id:?} {timeout}");
    }
    // EndTxn for an id that was never initialised (once its coordinator exists).
    let find = FindCoordinatorRequest {
        key: "tx-never".into(),
        key_type: 1,
        ..Default::default()
    };
    let deadline = Instant::now() + T;
    loop {
        let Ok(ResponseKind::FindCoordinator(r)) =
            raw_request(addr, 3, RequestKind::FindCoordinator(find.clone()), T)
        else {
            panic!("FindCoordinator")
        };
        if r.error_code == 0 {
            assert_eq!(r.node_id, 1);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no transaction coordinator: {r:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let req = EndTxnRequest {
        transactional_id: "tx-never".into(),
        producer_id: 5,
        producer_epoch: 0,
        committed: true,
        ..Default::default()
    };
    let ResponseKind::EndTxn(r) =
        retry_coordinator(|| raw_request(addr, 3, RequestKind::EndTxn(req.clone()), T))
    else {
        panic!("EndTxn")
    };
    assert_eq!(r.error_code, ErrorCode::InvalidProducerIdMapping.code());

    // KIP-890 part 1: a transactional batch for a partition never added to the producer's
    // transaction is refused and not stored (it would hold read_committed consumers forever).
    let init = InitProducerIdRequest {
        transactional_id: Some("tx-never".into()),
        transaction_timeout_ms: 10_000,
        ..Default::default()
    };
    let ResponseKind::InitProducerId(ids) =
        retry_coordinator(|| raw_request(addr, 4, RequestKind::InitProducerId(init.clone()), T))
    else {
        panic!("InitProducerId")
    };
    assert_eq!(ids.error_code, 0);
    let mut b = rafka_protocol::record::RecordBatchBuilder::new(0)
        .producer(ids.producer_id, ids.producer_epoch, 0)
        .transactional(true);
    b.append(0, Some(b"k"), Some(b"v"), &[]).unwrap();
    for txn_id in [Some("tx-never"), None] {
        let req = ProduceRequest {
            transactional_id: txn_id.map(str::to_owned),
            acks: -1,
            timeout_ms: 10_000,
            topic_data: vec![TopicProduceData {
                name: "w".into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(Records::Bytes(b.build())),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let Ok(ResponseKind::Produce(r)) = raw_request(addr, 9, RequestKind::Produce(req), T)
        else {
            panic!("Produce")
        };
        assert_eq!(
            r.responses[0].partition_responses[0].error_code,
            ErrorCode::InvalidTxnState.code(),
            "{txn_id:?}"
        );
    }
    assert_eq!(leo(&cluster), 0);
}

/// Retries while the coordinator is still loading or not yet elected.
fn retry_coordinator(mut f: impl FnMut() -> std::io::Result<ResponseKind>) -> ResponseKind {
    let deadline = Instant::now() + T;
    loop {
        let r = f().expect("request");
        let code = match &r {
            ResponseKind::InitProducerId(r) => r.error_code,
            ResponseKind::EndTxn(r) => r.error_code,
            _ => 0,
        };
        let retriable = [
            ErrorCode::CoordinatorNotAvailable.code(),
            ErrorCode::CoordinatorLoadInProgress.code(),
            ErrorCode::NotCoordinator.code(),
        ];
        if !retriable.contains(&code) || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// AddPartitionsToTxn v4+ (KIP-890 part 1, partition leader to coordinator): refused on the
/// client listener; on the inter-broker listener VerifyOnly answers, per partition, whether it
/// is in the producer's ongoing transaction, and adds nothing.
#[test]
fn verify_only_add_partitions_is_served_to_brokers_only() {
    use rafka_protocol::messages::add_partitions_to_txn_request::{
        AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction, AddPartitionsToTxnTransactionTopic,
    };
    use rafka_protocol::messages::AddPartitionsToTxnRequest;
    let _serial = common::one_cluster_at_a_time();
    let (cluster, internal) = node();
    let addr = cluster.nodes[0].addr();
    let admin = common::admin(&cluster.bootstrap());
    common::create_topic(&admin, &cluster.nodes[0], "v", 2, &[]);
    // The coordinator (and `__transaction_state`) exists once FindCoordinator asked for it.
    let find = FindCoordinatorRequest {
        key: "tx-v".into(),
        key_type: 1,
        ..Default::default()
    };
    let deadline = Instant::now() + T;
    while !matches!(
        raw_request(addr, 3, RequestKind::FindCoordinator(find.clone()), T),
        Ok(ResponseKind::FindCoordinator(ref r)) if r.error_code == 0
    ) {
        assert!(Instant::now() < deadline, "no transaction coordinator");
        std::thread::sleep(Duration::from_millis(200));
    }
    let init = InitProducerIdRequest {
        transactional_id: Some("tx-v".into()),
        transaction_timeout_ms: 60_000,
        ..Default::default()
    };
    let ResponseKind::InitProducerId(ids) =
        retry_coordinator(|| raw_request(addr, 4, RequestKind::InitProducerId(init.clone()), T))
    else {
        panic!("InitProducerId")
    };
    assert_eq!(ids.error_code, 0);
    let add = AddPartitionsToTxnRequest {
        v3_and_below_transactional_id: "tx-v".into(),
        v3_and_below_producer_id: ids.producer_id,
        v3_and_below_producer_epoch: ids.producer_epoch,
        v3_and_below_topics: vec![AddPartitionsToTxnTopic {
            name: "v".into(),
            partitions: vec![0],
            ..Default::default()
        }],
        ..Default::default()
    };
    let Ok(ResponseKind::AddPartitionsToTxn(r)) =
        raw_request(addr, 3, RequestKind::AddPartitionsToTxn(add), T)
    else {
        panic!("AddPartitionsToTxn v3")
    };
    assert_eq!(
        r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        0
    );
    let verify = |epoch: i16, partitions: Vec<i32>| AddPartitionsToTxnRequest {
        transactions: vec![AddPartitionsToTxnTransaction {
            transactional_id: "tx-v".into(),
            producer_id: ids.producer_id,
            producer_epoch: epoch,
            verify_only: true,
            topics: vec![AddPartitionsToTxnTransactionTopic {
                name: "v".into(),
                partitions,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let codes = |r: ResponseKind| -> (i16, Vec<(i32, i16)>) {
        let ResponseKind::AddPartitionsToTxn(r) = r else {
            panic!("AddPartitionsToTxn v4: {r:?}")
        };
        let parts = r
            .results_by_transaction
            .iter()
            .flat_map(|t| &t.topic_results)
            .flat_map(|t| &t.results_by_partition)
            .map(|p| (p.partition_index, p.partition_error_code))
            .collect();
        (r.error_code, parts)
    };
    // A client cannot ask (CLUSTER_AUTHORIZATION_FAILED for the whole request).
    let r = raw_request(
        addr,
        4,
        RequestKind::AddPartitionsToTxn(verify(ids.producer_epoch, vec![0])),
        T,
    )
    .expect("AddPartitionsToTxn v4 on the client listener");
    assert_eq!(codes(r).0, ErrorCode::ClusterAuthorizationFailed.code());
    // A broker can: partition 0 is in the transaction, 1 is not (and is not added by asking).
    for _ in 0..2 {
        let r = raw_request(
            internal,
            5,
            RequestKind::AddPartitionsToTxn(verify(ids.producer_epoch, vec![0, 1])),
            T,
        )
        .expect("AddPartitionsToTxn v5 on the inter-broker listener");
        assert_eq!(
            codes(r),
            (0, vec![(0, 0), (1, ErrorCode::InvalidTxnState.code())])
        );
    }
    // An older epoch is fenced.
    let r = raw_request(
        internal,
        4,
        RequestKind::AddPartitionsToTxn(verify(ids.producer_epoch - 1, vec![0])),
        T,
    )
    .expect("AddPartitionsToTxn v4");
    assert_eq!(codes(r).1, vec![(0, ErrorCode::ProducerFenced.code())]);
    // Too many partitions in one request: INVALID_REQUEST, nothing looked at.
    let r = raw_request(
        internal,
        4,
        RequestKind::AddPartitionsToTxn(verify(ids.producer_epoch, (0..10_001).collect())),
        T,
    )
    .expect("AddPartitionsToTxn v4");
    assert_eq!(codes(r), (ErrorCode::InvalidRequest.code(), vec![]));
}
