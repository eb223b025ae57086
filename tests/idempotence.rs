//! The idempotent producer against a broker behind a TCP proxy that loses the first Produce
//! response (the request was appended; the client never hears so and retries) and then cuts
//! every connection at random moments: with `enable.idempotence=true` every message is in the
//! log exactly once and in order per partition; the same run without idempotence shows the
//! duplicate the lost response causes — so the first half can fail.
//!
//! Also: InitProducerId hands out distinct ids, and DescribeProducers shows the producer.

mod common;

use common::ffi::BEGINNING;
use common::proxy::TcpProxy;
use common::{admin, create_topic, partition_consumer, raw_request, Cluster, Deadline};
use rafka_protocol::messages::describe_producers_request::TopicRequest;
use rafka_protocol::messages::{
    DescribeProducersRequest, InitProducerIdRequest, RequestKind, ResponseKind,
};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PARTITIONS: i32 = 3;
const MESSAGES: u64 = 3_000;
/// Connection cuts during the run.
const CUTS: usize = 8;

#[derive(Default)]
struct Deliveries {
    ok: AtomicU64,
    errors: Mutex<Vec<String>>,
}

#[derive(Clone)]
struct Ctx(Arc<Deliveries>);
impl ClientContext for Ctx {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        if std::env::var_os("RAFKA_IT_RDKAFKA_LOG").is_some() {
            eprintln!("rdkafka {level:?} {fac}: {log_message}");
        }
    }
}
impl ProducerContext for Ctx {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        match r {
            Ok(_) => {
                self.0.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => self.0.errors.lock().unwrap().push(e.to_string()),
        }
    }
}

/// A tiny deterministic generator (xorshift), so a failing run can be replayed.
struct Rng(u64);
impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

/// What one run left in the log: per partition, the message numbers in offset order.
fn run(idempotent: bool, seed: u64) -> BTreeMap<i32, Vec<u64>> {
    let proxy = TcpProxy::start();
    let advertised = format!("PLAINTEXT://{}", proxy.addr());
    let cluster = Cluster::start(1, &[("advertised.listeners", &advertised)]);
    let node = &cluster.nodes[0];
    proxy.set_target(node.addr());
    let topic = "idem";
    create_topic(&admin(&proxy.addr()), node, topic, PARTITIONS, &[]);

    let deliveries = Arc::new(Deliveries::default());
    let mut config = ClientConfig::new();
    if let Ok(debug) = std::env::var("RAFKA_IT_RDKAFKA_LOG") {
        config.set("debug", debug);
    }
    let producer: ThreadedProducer<Ctx> = config
        .set("bootstrap.servers", proxy.addr())
        .set("broker.address.family", "v4")
        .set(
            "enable.idempotence",
            if idempotent { "true" } else { "false" },
        )
        .set("acks", "all")
        .set("linger.ms", "2")
        .set("request.timeout.ms", "2000")
        .set("retry.backoff.ms", "20")
        .set("message.timeout.ms", "30000")
        .set_log_level(rdkafka::config::RDKafkaLogLevel::Debug)
        .create_with_context(Ctx(deliveries.clone()))
        .expect("producer");
    // The first Produce request is appended, its response lost.
    proxy.drop_produce_responses(1);
    // Cuts at random moments while the messages go out (about 3 s).
    let mut rng = Rng(seed);
    let mut cut_at: Vec<u64> = (0..CUTS).map(|_| 100 + rng.next(MESSAGES - 100)).collect();
    cut_at.sort_unstable();
    let deadline = Deadline::after(Duration::from_secs(90));
    for i in 0..MESSAGES {
        let value = i.to_string();
        let partition = (i % PARTITIONS as u64) as i32;
        let mut record = BaseRecord::<(), _>::to(topic)
            .partition(partition)
            .payload(&value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    deadline.check(|| "room in the producer queue".into());
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        while cut_at.first() == Some(&i) {
            cut_at.remove(0);
            proxy.cut_all();
        }
        if i % 10 == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let flushed = producer.flush(Duration::from_secs(60));
    assert!(flushed.is_ok(), "flush: {flushed:?}\n{}", cluster.logs(60));
    let errors = deliveries.errors.lock().unwrap().clone();
    assert!(
        errors.is_empty(),
        "{} delivery errors, the first: {:?}\n{}",
        errors.len(),
        &errors[..errors.len().min(3)],
        cluster.logs(60)
    );
    assert_eq!(deliveries.ok.load(Ordering::Relaxed), MESSAGES);
    assert_eq!(proxy.dropped(), 1, "the first Produce response was dropped");
    drop(producer);

    // Read every partition to its end, from the broker directly.
    let mut c = partition_consumer(&cluster.bootstrap(), &[]);
    let mut log: BTreeMap<i32, Vec<u64>> = BTreeMap::new();
    for p in 0..PARTITIONS {
        c.start(topic, p, BEGINNING);
    }
    let mut read = 0u64;
    let mut quiet = 0;
    while quiet < 20 {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let v: u64 = String::from_utf8(m.payload.unwrap())
                    .unwrap()
                    .parse()
                    .unwrap();
                log.entry(m.partition).or_default().push(v);
                read += 1;
                quiet = 0;
            }
            Some(Err(e)) if e.contains("PARTITION_EOF") => quiet += 1,
            Some(Err(e)) => panic!("consume: {e}"),
            None => quiet += 1,
        }
        deadline.check(|| format!("reading back ({read} read)"));
        if read >= MESSAGES && quiet > 5 {
            break;
        }
    }
    log
}

#[test]
fn an_idempotent_producer_writes_each_message_once_in_order_through_lost_responses() {
    let log = run(true, 0x9e37_79b9_7f4a_7c15);
    for p in 0..PARTITIONS {
        let got = log.get(&p).cloned().unwrap_or_default();
        let want: Vec<u64> = (0..MESSAGES)
            .filter(|i| (i % PARTITIONS as u64) as i32 == p)
            .collect();
        if got != want {
            let dups = got.len() as i64 - want.len() as i64;
            let first_diff = got.iter().zip(&want).position(|(a, b)| a != b);
            panic!(
                "partition {p}: {} messages for {} sent ({dups:+}), first difference at {first_diff:?}",
                got.len(),
                want.len()
            );
        }
    }
}

#[test]
fn without_idempotence_the_lost_response_duplicates_messages() {
    let log = run(false, 0x9e37_79b9_7f4a_7c15);
    let total: usize = log.values().map(Vec::len).sum();
    let mut distinct: Vec<u64> = log.values().flatten().copied().collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len() as u64, MESSAGES, "every message arrived");
    assert!(
        total as u64 > MESSAGES,
        "the retried first request must be a duplicate ({total} records for {MESSAGES} messages)"
    );
}

#[test]
fn init_producer_id_gives_distinct_ids_and_describe_producers_shows_them() {
    let cluster = Cluster::single();
    let node = &cluster.nodes[0];
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = raw_request(
            node.addr(),
            4,
            RequestKind::InitProducerId(InitProducerIdRequest {
                transactional_id: None,
                transaction_timeout_ms: 60_000,
                ..Default::default()
            }),
            Duration::from_secs(10),
        )
        .expect("InitProducerId");
        let ResponseKind::InitProducerId(r) = r else {
            panic!("{r:?}")
        };
        assert_eq!(r.error_code, 0);
        assert_eq!(r.producer_epoch, 0);
        ids.push(r.producer_id);
    }
    let mut distinct = ids.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{ids:?}");
    // A transactional id is the transaction coordinator's: without __transaction_state (no
    // FindCoordinator yet) this broker is not its coordinator.
    let r = raw_request(
        node.addr(),
        4,
        RequestKind::InitProducerId(InitProducerIdRequest {
            transactional_id: Some("tx".into()),
            transaction_timeout_ms: 60_000,
            ..Default::default()
        }),
        Duration::from_secs(10),
    )
    .expect("InitProducerId");
    let ResponseKind::InitProducerId(r) = r else {
        panic!("{r:?}")
    };
    assert_eq!(r.error_code, 16, "NOT_COORDINATOR");

    // An idempotent producer, then DescribeProducers.
    let topic = "described";
    create_topic(&admin(&cluster.bootstrap()), node, topic, 1, &[]);
    let producer = idempotent_producer(&cluster.bootstrap());
    for i in 0..10 {
        let v = i.to_string();
        producer
            .send(BaseRecord::<(), _>::to(topic).partition(0).payload(&v))
            .map_err(|(e, _)| e)
            .expect("send");
    }
    producer.flush(Duration::from_secs(20)).expect("flush");
    let r = describe_producers(node, &[topic, "no-such-topic"]);
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert_eq!(p.active_producers.len(), 1, "{p:?}");
    let s = &p.active_producers[0];
    assert!(
        s.producer_id > ids[2],
        "a fresh id after the three above: {s:?}"
    );
    assert_eq!(s.last_sequence, 9, "{s:?}");
    assert_eq!(
        r.topics[1].partitions[0].error_code, 3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
}

/// A librdkafka producer with `enable.idempotence` and this file's delivery context.
fn idempotent_producer(bootstrap: &str) -> ThreadedProducer<Ctx> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("enable.idempotence", "true")
        .create_with_context(Ctx(Arc::default()))
        .expect("producer")
}

/// DescribeProducers v0 for partition 0 of each of `topics`, asked of `node`.
fn describe_producers(
    node: &common::Node,
    topics: &[&str],
) -> rafka_protocol::messages::DescribeProducersResponse {
    let r = raw_request(
        node.addr(),
        0,
        RequestKind::DescribeProducers(DescribeProducersRequest {
            topics: topics
                .iter()
                .map(|t| TopicRequest {
                    name: (*t).into(),
                    partition_indexes: vec![0],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        Duration::from_secs(10),
    )
    .expect("DescribeProducers");
    let ResponseKind::DescribeProducers(r) = r else {
        panic!("{r:?}")
    };
    r
}

/// The producers DescribeProducers lists for `topic`-0 on `node`.
fn active_producers(node: &common::Node, topic: &str) -> Vec<i64> {
    let r = describe_producers(node, &[topic]);
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, 0, "{p:?}");
    p.active_producers.iter().map(|s| s.producer_id).collect()
}

/// `producer.id.expiration.ms`: an idempotent producer idle that long is forgotten by the next
/// retention pass (Kafka's `removeExpiredProducers`), and DescribeProducers stops listing it.
#[test]
fn an_idle_producers_state_expires_after_producer_id_expiration_ms() {
    let cluster = Cluster::start(
        1,
        &[
            ("producer.id.expiration.ms", "1500"),
            ("log.retention.check.interval.ms", "200"),
        ],
    );
    let node = &cluster.nodes[0];
    let topic = "expiring";
    create_topic(&admin(&cluster.bootstrap()), node, topic, 1, &[]);
    let producer = idempotent_producer(&cluster.bootstrap());
    // Before the send: the record's timestamp, from which the idle time counts, is taken then.
    let sent = std::time::Instant::now();
    producer
        .send(BaseRecord::<(), _>::to(topic).partition(0).payload("x"))
        .map_err(|(e, _)| e)
        .expect("send");
    producer.flush(Duration::from_secs(20)).expect("flush");
    assert_eq!(
        active_producers(node, topic).len(),
        1,
        "listed once it wrote"
    );
    let deadline = Deadline::after(Duration::from_secs(15));
    while !active_producers(node, topic).is_empty() {
        deadline.check(|| "the idle producer is still listed".into());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Not before it was idle for the configured time (its batch's timestamp is the client's).
    assert!(
        sent.elapsed() >= Duration::from_millis(1000),
        "forgotten after {:?}",
        sent.elapsed()
    );
}
