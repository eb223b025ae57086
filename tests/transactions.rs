//! Transactions (KIP-98) against the real binary with librdkafka (the rdkafka crate's
//! transactional API): committed records reach read_committed consumers, aborted ones only
//! read_uncommitted consumers; a new instance of a transactional id fences the old one; a
//! transaction open past its timeout is aborted by the coordinator. The node has a separate
//! inter-broker listener, so that WriteTxnMarkers from a client (on the client listener) can be
//! shown refused.

mod common;

use common::txn::{describe_transactions, find_coordinator, offset_fetch, wait_offset};
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
    node_with(&[])
}

/// [`node`] with `extra` settings.
fn node_with(extra: &[(&str, &str)]) -> (Cluster, SocketAddr) {
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
    let mut settings = vec![
        (
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            "500",
        ),
        ("transaction.state.log.num.partitions", "5"),
        ("transaction.state.log.replication.factor", "1"),
        ("transaction.state.log.min.isr", "1"),
        ("offsets.topic.replication.factor", "1"),
        ("offsets.topic.num.partitions", "5"),
    ];
    settings.extend_from_slice(extra);
    let cluster = Cluster::start_with(&["broker,controller"], &settings, &per_node);
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
    let mut b = rafka_protocol::record_batch::RecordBatchBuilder::new(0)
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

// ---- TxnOffsetCommit: offsets committed with the transaction --------------------------------

fn offsets(topic: &str, offset: i64) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, rdkafka::Offset::Offset(offset))
        .unwrap();
    tpl
}

const UNSTABLE: i16 = 88;

/// librdkafka's `send_offsets_to_transaction`: the offsets are invisible (and unstable for a
/// require_stable fetch) until the transaction commits, dropped when it aborts; a restart after
/// SIGKILL rebuilds committed, aborted and still-pending transactional offsets from
/// `__consumer_offsets` (the pending ones stay unstable until the coordinator aborts their
/// timed-out transaction).
#[test]
fn offsets_sent_to_a_transaction_are_visible_only_once_it_commits() {
    let _serial = common::one_cluster_at_a_time();
    let (mut cluster, _) = node();
    let addr = cluster.nodes[0].addr();
    let bootstrap = cluster.bootstrap();
    create(&cluster, "ofs-in");
    create(&cluster, "ofs-out");
    let group: BaseConsumer = common::client_config(&bootstrap, &[("group.id", "ofs-g")])
        .create()
        .unwrap();
    let meta = group.group_metadata().expect("group metadata");
    let p = txn_producer(&bootstrap, "tx-offsets", "10000");
    p.init_transactions(T).expect("init");

    p.begin_transaction().unwrap();
    send(&p, "ofs-out", &["a"]);
    p.send_offsets_to_transaction(&offsets("ofs-in", 5), &meta, T)
        .expect("send offsets");
    assert_eq!(offset_fetch(addr, "ofs-g", "ofs-in", false), (-1, 0));
    assert_eq!(offset_fetch(addr, "ofs-g", "ofs-in", true), (-1, UNSTABLE));
    p.commit_transaction(T).expect("commit");
    wait_offset(addr, "ofs-g", "ofs-in", true, (5, 0));

    p.begin_transaction().unwrap();
    send(&p, "ofs-out", &["b"]);
    p.send_offsets_to_transaction(&offsets("ofs-in", 8), &meta, T)
        .expect("send offsets");
    assert_eq!(offset_fetch(addr, "ofs-g", "ofs-in", true), (-1, UNSTABLE));
    assert_eq!(offset_fetch(addr, "ofs-g", "ofs-in", false), (5, 0));
    p.abort_transaction(T).expect("abort");
    wait_offset(addr, "ofs-g", "ofs-in", true, (5, 0));

    // A transaction left open across a SIGKILL.
    p.begin_transaction().unwrap();
    send(&p, "ofs-out", &["c"]);
    p.send_offsets_to_transaction(&offsets("ofs-in", 9), &meta, T)
        .expect("send offsets");
    // The producer stays alive (not closed: nothing aborts its transaction) across the kill.
    cluster.nodes[0].kill();
    cluster.nodes[0].start();
    cluster.wait_ready(T);
    // Reloaded: 5 committed (a transactional record and its COMMIT marker), 8 aborted, 9
    // pending until the coordinator aborts its transaction (timeout 10 s).
    assert_eq!(offset_fetch(addr, "ofs-g", "ofs-in", false), (5, 0));
    assert_eq!(offset_fetch(addr, "ofs-g", "ofs-in", true), (-1, UNSTABLE));
    wait_offset(addr, "ofs-g", "ofs-in", true, (5, 0));
    assert_eq!(read(&bootstrap, "ofs-out", "read_committed"), vec!["a"]);
    drop(p);
}

/// A consume-transform-produce loop with librdkafka (a subscribed group member, so TxnOffsetCommit
/// v3 carries its generation and member id): 300 input records, transformed in transactions of
/// up to 25, every third transaction aborted and its input consumed again from the committed
/// offset. Every input appears exactly once in the committed output, in order, and the group's
/// committed offset is the input's end.
#[test]
fn a_consume_transform_produce_loop_outputs_each_record_once() {
    let _serial = common::one_cluster_at_a_time();
    let (cluster, _) = node();
    let addr = cluster.nodes[0].addr();
    let bootstrap = cluster.bootstrap();
    create(&cluster, "ctp-in");
    create(&cluster, "ctp-out");
    let input: Vec<String> = (0..300).map(|i| format!("r{i}")).collect();
    let plain = common::producer(&bootstrap, &[]);
    for v in &input {
        plain
            .send(BaseRecord::<(), str>::to("ctp-in").payload(v).partition(0))
            .unwrap();
    }
    plain.flush(T).unwrap();

    let consumer: BaseConsumer = common::client_config(
        &bootstrap,
        &[
            ("group.id", "ctp-g"),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
            ("isolation.level", "read_committed"),
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "500"),
        ],
    )
    .create()
    .unwrap();
    consumer.subscribe(&["ctp-in"]).unwrap();
    let p = txn_producer(&bootstrap, "tx-ctp", "10000");
    p.init_transactions(T).expect("init");

    let mut committed = 0i64;
    let mut transactions = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while committed < input.len() as i64 {
        assert!(Instant::now() < deadline, "stuck at {committed}");
        let mut batch = Vec::new();
        let mut next = committed;
        while batch.len() < 25 {
            match consumer.poll(Duration::from_millis(300)) {
                Some(Ok(m)) => {
                    batch.push(String::from_utf8_lossy(m.payload().unwrap()).into_owned());
                    next = m.offset() + 1;
                }
                Some(Err(e)) => panic!("consume: {e}"),
                None => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        transactions += 1;
        p.begin_transaction().unwrap();
        for v in &batch {
            p.send(
                BaseRecord::<(), str>::to("ctp-out")
                    .payload(&format!("x-{v}"))
                    .partition(0),
            )
            .unwrap();
        }
        // BaseProducer: delivery reports are served by polling (flush polls).
        p.flush(T).expect("flush");
        let meta = consumer.group_metadata().expect("group metadata");
        p.send_offsets_to_transaction(&offsets("ctp-in", next), &meta, T)
            .expect("send offsets");
        if transactions % 3 == 0 {
            p.abort_transaction(T).expect("abort");
            consumer
                .seek("ctp-in", 0, rdkafka::Offset::Offset(committed), T)
                .expect("seek back");
        } else {
            p.commit_transaction(T).expect("commit");
            committed = next;
        }
    }
    let want: Vec<String> = input.iter().map(|v| format!("x-{v}")).collect();
    assert_eq!(read(&bootstrap, "ctp-out", "read_committed"), want);
    wait_offset(addr, "ctp-g", "ctp-in", true, (input.len() as i64, 0));
    assert!(transactions >= 12, "{transactions} transactions");
}

/// TxnOffsetCommit with bad input gets Kafka's codes and leaves no offset behind: a group not
/// added to the transaction (INVALID_TXN_STATE), another epoch (INVALID_PRODUCER_EPOCH), another
/// producer id or an unknown transactional id (INVALID_PRODUCER_ID_MAPPING), a generation for a
/// group without members (ILLEGAL_GENERATION), an unknown partition, metadata too long, an empty
/// group id; a v0 request without member fields is accepted.
#[test]
fn bad_txn_offset_commits_get_kafkas_errors() {
    use rafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    use rafka_protocol::messages::{AddOffsetsToTxnRequest, TxnOffsetCommitRequest};
    let _serial = common::one_cluster_at_a_time();
    let (cluster, _) = node();
    let addr = cluster.nodes[0].addr();
    create(&cluster, "bad-in");
    // FindCoordinator creates __transaction_state (and, for a group, __consumer_offsets).
    find_coordinator(addr, "tx-bad-offsets", 1);
    let init = InitProducerIdRequest {
        transactional_id: Some("tx-bad-offsets".into()),
        transaction_timeout_ms: 60_000,
        ..Default::default()
    };
    let ResponseKind::InitProducerId(ids) =
        retry_coordinator(|| raw_request(addr, 4, RequestKind::InitProducerId(init.clone()), T))
    else {
        panic!("InitProducerId")
    };
    assert_eq!(ids.error_code, 0);
    let (pid, epoch) = (ids.producer_id, ids.producer_epoch);
    // The group's coordinator exists and has loaded its partition.
    find_coordinator(addr, "bad-g", 0);
    assert_eq!(offset_fetch(addr, "bad-g", "bad-in", true), (-1, 0));
    let commit = |version: i16, f: &dyn Fn(&mut TxnOffsetCommitRequest)| -> i16 {
        let mut req = TxnOffsetCommitRequest {
            transactional_id: "tx-bad-offsets".into(),
            group_id: "bad-g".into(),
            producer_id: pid,
            producer_epoch: epoch,
            topics: vec![TxnOffsetCommitRequestTopic {
                name: "bad-in".into(),
                partitions: vec![TxnOffsetCommitRequestPartition {
                    partition_index: 0,
                    committed_offset: 7,
                    committed_metadata: Some("m".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        f(&mut req);
        let Ok(ResponseKind::TxnOffsetCommit(r)) =
            raw_request(addr, version, RequestKind::TxnOffsetCommit(req), T)
        else {
            panic!("TxnOffsetCommit v{version}")
        };
        r.topics[0].partitions[0].error_code
    };
    let none = |_: &mut TxnOffsetCommitRequest| {};
    // Before AddOffsetsToTxn: the group's partition is not in the transaction.
    assert_eq!(commit(3, &none), ErrorCode::InvalidTxnState.code());
    let add = AddOffsetsToTxnRequest {
        transactional_id: "tx-bad-offsets".into(),
        producer_id: pid,
        producer_epoch: epoch,
        group_id: "bad-g".into(),
        ..Default::default()
    };
    let Ok(ResponseKind::AddOffsetsToTxn(r)) =
        raw_request(addr, 3, RequestKind::AddOffsetsToTxn(add), T)
    else {
        panic!("AddOffsetsToTxn")
    };
    assert_eq!(r.error_code, 0);
    let cases: Vec<(
        &str,
        i16,
        Box<dyn Fn(&mut TxnOffsetCommitRequest)>,
        ErrorCode,
    )> = vec![
        (
            "newer epoch",
            3,
            Box::new(move |r: &mut TxnOffsetCommitRequest| r.producer_epoch = epoch + 1),
            ErrorCode::InvalidProducerEpoch,
        ),
        (
            "older epoch",
            0,
            Box::new(move |r: &mut TxnOffsetCommitRequest| r.producer_epoch = epoch - 1),
            ErrorCode::InvalidProducerEpoch,
        ),
        (
            "another producer id",
            3,
            Box::new(move |r: &mut TxnOffsetCommitRequest| r.producer_id = pid + 1000),
            ErrorCode::InvalidProducerIdMapping,
        ),
        (
            "unknown transactional id",
            3,
            Box::new(|r: &mut TxnOffsetCommitRequest| r.transactional_id = "tx-nobody".into()),
            ErrorCode::InvalidProducerIdMapping,
        ),
        (
            "a generation of a group without members",
            3,
            Box::new(|r: &mut TxnOffsetCommitRequest| {
                r.generation_id = 4;
                r.member_id = "m-1".into();
            }),
            ErrorCode::IllegalGeneration,
        ),
        (
            "an unknown partition",
            3,
            Box::new(|r: &mut TxnOffsetCommitRequest| {
                r.topics[0].partitions[0].partition_index = 9
            }),
            ErrorCode::UnknownTopicOrPartition,
        ),
        (
            "an unknown topic",
            3,
            Box::new(|r: &mut TxnOffsetCommitRequest| r.topics[0].name = "nope".into()),
            ErrorCode::UnknownTopicOrPartition,
        ),
        (
            "metadata over offset.metadata.max.bytes",
            3,
            Box::new(|r: &mut TxnOffsetCommitRequest| {
                r.topics[0].partitions[0].committed_metadata = Some("x".repeat(5000))
            }),
            ErrorCode::OffsetMetadataTooLarge,
        ),
        (
            "an empty group id",
            3,
            Box::new(|r: &mut TxnOffsetCommitRequest| r.group_id = String::new()),
            ErrorCode::InvalidGroupId,
        ),
    ];
    for (what, version, f, want) in &cases {
        assert_eq!(commit(*version, f.as_ref()), want.code(), "{what}");
    }
    assert_eq!(
        offset_fetch(addr, "bad-g", "bad-in", true),
        (-1, 0),
        "nothing pending"
    );
    // A v0 commit (no member fields) is accepted, pending until EndTxn; abort drops it.
    assert_eq!(commit(0, &none), 0);
    assert_eq!(offset_fetch(addr, "bad-g", "bad-in", true), (-1, UNSTABLE));
    let end = EndTxnRequest {
        transactional_id: "tx-bad-offsets".into(),
        producer_id: pid,
        producer_epoch: epoch,
        committed: false,
        ..Default::default()
    };
    let ResponseKind::EndTxn(r) =
        retry_coordinator(|| raw_request(addr, 3, RequestKind::EndTxn(end.clone()), T))
    else {
        panic!("EndTxn")
    };
    assert_eq!(r.error_code, 0);
    wait_offset(addr, "bad-g", "bad-in", true, (-1, 0));
}

// ---- DescribeTransactions, ListTransactions, transactional.id.expiration.ms -------------------

fn list_transactions(
    addr: SocketAddr,
    version: i16,
    states: &[&str],
    producer_ids: &[i64],
    duration_ms: i64,
) -> rafka_protocol::messages::ListTransactionsResponse {
    let req = rafka_protocol::messages::ListTransactionsRequest {
        state_filters: states.iter().map(|s| s.to_string()).collect(),
        producer_id_filters: producer_ids.to_vec(),
        duration_filter: duration_ms,
        ..Default::default()
    };
    let deadline = Instant::now() + T;
    loop {
        let Ok(ResponseKind::ListTransactions(r)) =
            raw_request(addr, version, RequestKind::ListTransactions(req.clone()), T)
        else {
            panic!("ListTransactions")
        };
        if r.error_code == ErrorCode::CoordinatorLoadInProgress.code() && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        return r;
    }
}

/// Listed (id, state) pairs of a ListTransactions answer, for the ids starting with `prefix`.
fn listed(
    r: &rafka_protocol::messages::ListTransactionsResponse,
    prefix: &str,
) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = r
        .transaction_states
        .iter()
        .filter(|t| t.transactional_id.starts_with(prefix))
        .map(|t| (t.transactional_id.clone(), t.transaction_state.clone()))
        .collect();
    v.sort();
    v
}

/// DescribeTransactions and ListTransactions (v0 and v1 with KIP-994's duration filter) as
/// `kafka-transactions.sh` uses them: states, partitions, filters by state, producer id and
/// duration, unknown state names returned, unknown and empty ids refused with Kafka's codes.
#[test]
fn transactions_are_described_and_listed_with_filters() {
    let _serial = common::one_cluster_at_a_time();
    let (cluster, _) = node();
    let addr = cluster.nodes[0].addr();
    let bootstrap = cluster.bootstrap();
    create(&cluster, "lt");
    let open = txn_producer(&bootstrap, "lt-open", "60000");
    open.init_transactions(T).expect("init");
    open.begin_transaction().unwrap();
    send(&open, "lt", &["x"]);
    let idle = txn_producer(&bootstrap, "lt-idle", "60000");
    idle.init_transactions(T).expect("init");

    let d = describe_transactions(addr, &["lt-open", "lt-idle", "lt-never", ""]);
    assert_eq!(d.len(), 4);
    assert_eq!(
        (d[0].error_code, d[0].transaction_state.as_str()),
        (0, "Ongoing")
    );
    assert_eq!(d[0].transaction_timeout_ms, 60_000);
    assert!(d[0].transaction_start_time_ms > 0);
    assert_eq!(d[0].topic_partitions.len(), 1);
    assert_eq!(
        (
            d[0].topic_partitions[0].name.as_str(),
            d[0].topic_partitions[0].partition_indexes.clone()
        ),
        ("lt", vec![0])
    );
    assert_eq!(
        (d[1].error_code, d[1].transaction_state.as_str()),
        (0, "Empty")
    );
    assert!(d[1].topic_partitions.is_empty());
    assert_eq!(d[2].error_code, ErrorCode::TransactionalIdNotFound.code());
    assert_eq!(d[3].error_code, ErrorCode::InvalidRequest.code());
    let (open_pid, idle_pid) = (d[0].producer_id, d[1].producer_id);
    assert_ne!(open_pid, idle_pid);

    let all = list_transactions(addr, 0, &[], &[], -1);
    assert_eq!(all.error_code, 0);
    assert_eq!(
        listed(&all, "lt-"),
        vec![
            ("lt-idle".into(), "Empty".into()),
            ("lt-open".into(), "Ongoing".into())
        ]
    );
    let ongoing = list_transactions(addr, 0, &["Ongoing", "Bogus"], &[], -1);
    assert_eq!(
        listed(&ongoing, "lt-"),
        vec![("lt-open".into(), "Ongoing".into())]
    );
    assert_eq!(ongoing.unknown_state_filters, vec!["Bogus".to_string()]);
    let by_pid = list_transactions(addr, 0, &[], &[idle_pid], -1);
    assert_eq!(
        listed(&by_pid, ""),
        vec![("lt-idle".into(), "Empty".into())]
    );
    // KIP-994: only transactions open longer than the duration.
    let long = list_transactions(addr, 1, &["Ongoing"], &[], 3_600_000);
    assert_eq!(listed(&long, "lt-"), vec![]);
    let short = list_transactions(addr, 1, &["Ongoing"], &[], 0);
    assert_eq!(
        listed(&short, "lt-"),
        vec![("lt-open".into(), "Ongoing".into())]
    );
    open.commit_transaction(T).expect("commit");
    let deadline = Instant::now() + T;
    while listed(
        &list_transactions(addr, 0, &["CompleteCommit"], &[], -1),
        "lt-",
    ) != vec![("lt-open".to_string(), "CompleteCommit".to_string())]
    {
        assert!(Instant::now() < deadline, "never CompleteCommit");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `transactional.id.expiration.ms` (here 2 s, checked every 300 ms): an id idle that long after
/// its last transaction is removed with a tombstone — gone for DescribeTransactions, still gone
/// after a restart, and a new InitProducerId gets a new producer id; an id with a transaction open
/// is kept.
#[test]
fn idle_transactional_ids_expire() {
    let _serial = common::one_cluster_at_a_time();
    let (mut cluster, _) = node_with(&[
        ("transactional.id.expiration.ms", "2000"),
        (
            "transaction.remove.expired.transaction.cleanup.interval.ms",
            "300",
        ),
    ]);
    let addr = cluster.nodes[0].addr();
    let bootstrap = cluster.bootstrap();
    create(&cluster, "exp");
    find_coordinator(addr, "exp-idle", 1);
    let init = |id: &str| {
        let req = InitProducerIdRequest {
            transactional_id: Some(id.into()),
            transaction_timeout_ms: 60_000,
            ..Default::default()
        };
        let ResponseKind::InitProducerId(r) =
            retry_coordinator(|| raw_request(addr, 4, RequestKind::InitProducerId(req.clone()), T))
        else {
            panic!("InitProducerId")
        };
        assert_eq!(r.error_code, 0, "{id}");
        r.producer_id
    };
    let first = init("exp-idle");
    let open = txn_producer(&bootstrap, "exp-open", "60000");
    open.init_transactions(T).expect("init");
    open.begin_transaction().unwrap();
    send(&open, "exp", &["x"]);
    assert_eq!(describe_transactions(addr, &["exp-idle"])[0].error_code, 0);
    let deadline = Instant::now() + T;
    while describe_transactions(addr, &["exp-idle"])[0].error_code
        != ErrorCode::TransactionalIdNotFound.code()
    {
        assert!(Instant::now() < deadline, "exp-idle never expired");
        std::thread::sleep(Duration::from_millis(200));
    }
    let d = describe_transactions(addr, &["exp-open"]);
    assert_eq!(
        (d[0].error_code, d[0].transaction_state.as_str()),
        (0, "Ongoing")
    );
    drop(open);
    cluster.nodes[0].kill();
    cluster.nodes[0].start();
    cluster.wait_ready(T);
    let deadline = Instant::now() + T;
    let after = loop {
        let d = describe_transactions(addr, &["exp-idle"]);
        if d[0].error_code != ErrorCode::CoordinatorLoadInProgress.code()
            && d[0].error_code != ErrorCode::NotCoordinator.code()
        {
            break d;
        }
        assert!(Instant::now() < deadline, "coordinator never loaded");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        after[0].error_code,
        ErrorCode::TransactionalIdNotFound.code(),
        "the tombstone holds across a restart"
    );
    assert_ne!(init("exp-idle"), first, "a new producer id");
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
