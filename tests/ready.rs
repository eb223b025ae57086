//! Ready before serving: a client that connects the instant a broker's port opens is answered
//! correctly — a Metadata listing the broker and naming a live controller, a CreateTopics that
//! succeeds — without waiting out a client backoff. The broker binds its client listener at
//! start and accepts from it only once it has caught up with the metadata log and is unfenced;
//! until then clients wait in the accept backlog. `/health/ready` agrees with the listener.
//!
//! Timings are printed (`--nocapture`); the bounds are loose for a shared machine, and far below
//! the 20 s librdkafka's admin client waited when it was answered before the broker was ready.

mod common;

use common::{admin, admin_options, client_config, Cluster, Deadline};
use rafka_protocol::messages::{MetadataRequest, RequestKind, ResponseKind};
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long a created topic may take to be answered once the broker has answered Metadata.
/// librdkafka's backoff after an answer without brokers was 20 s.
const PROMPT: Duration = Duration::from_secs(3);

/// Connects to `addr` as soon as it accepts a TCP connection (tried every millisecond): the
/// stream and the instant it connected. Panics after `within`.
fn connect_at_open(
    addr: SocketAddr,
    within: Duration,
    node: &mut common::Node,
) -> (TcpStream, Instant) {
    let deadline = Deadline::after(within);
    loop {
        if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            return (s, Instant::now());
        }
        if let Some(status) = node.exited() {
            panic!("node exited ({status}):\n{}", node.log_tail(40));
        }
        deadline.check(|| format!("port {addr} never opened"));
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Metadata v12 (all topics) on an already connected stream.
fn metadata_on(s: &mut TcpStream) -> rafka_protocol::messages::MetadataResponse {
    let req = MetadataRequest {
        topics: None,
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    match common::raw_exchange(s, 12, RequestKind::Metadata(req), Duration::from_secs(30))
        .expect("Metadata on the connection opened with the port")
    {
        ResponseKind::Metadata(m) => m,
        other => panic!("not Metadata: {other:?}"),
    }
}

/// CreateTopics through an rdkafka admin client created at `opened`, on a thread: the result and
/// the instant it came back.
fn create_in_background(
    bootstrap: String,
    topic: &'static str,
    replication: i32,
) -> std::thread::JoinHandle<(Result<(), String>, Instant)> {
    let admin = admin(&bootstrap);
    std::thread::spawn(move || {
        let nt = NewTopic::new(topic, 3, TopicReplication::Fixed(replication));
        let r = common::runtime().block_on(admin.create_topics([&nt], &admin_options()));
        let done = Instant::now();
        let r = match r {
            Ok(rs) => rs
                .into_iter()
                .try_for_each(|r| r.map(|_| ()).map_err(|(t, e)| format!("{t}: {e}"))),
            Err(e) => Err(e.to_string()),
        };
        (r, done)
    })
}

#[test]
fn a_client_connecting_as_the_port_opens_is_answered_once_ready() {
    let mut cluster = Cluster::spawn(&["broker,controller"], &[], &|_| Vec::new());
    let addr = cluster.nodes[0].addr();
    let http = cluster.nodes[0].http_addr();
    let bootstrap = cluster.nodes[0].bootstrap();
    let (mut raw, opened) = connect_at_open(addr, Duration::from_secs(30), &mut cluster.nodes[0]);
    // The real clients connect at the same instant: an admin client's CreateTopics and an
    // idempotent producer.
    let create = create_in_background(bootstrap.clone(), "ready-single", 1);
    let producer: FutureProducer = client_config(&bootstrap, &[("enable.idempotence", "true")])
        .create()
        .expect("producer");

    let md = metadata_on(&mut raw);
    let answered = Instant::now();
    let ids: Vec<i32> = md.brokers.iter().map(|b| b.node_id).collect();
    assert_eq!(ids, vec![1], "the first answer lists the broker: {md:?}");
    assert_eq!(md.controller_id, 1, "and names a live broker as controller");
    assert!(md.cluster_id.is_some(), "and the cluster id");
    // Answering means ready: the HTTP readiness says so too.
    let r = common::http::get(http, "/health/ready").expect("/health/ready");
    assert_eq!(r.status, 200, "ready once answering: {}", r.text());

    let (created, created_at) = create.join().expect("create thread");
    created.expect("CreateTopics from an admin client that connected as the port opened");
    let record = FutureRecord::to("ready-single").key("k").payload("v");
    let delivered = common::runtime().block_on(producer.send(record, Duration::from_secs(20)));
    let acked = Instant::now();
    delivered.expect("the producer's first record");
    eprintln!(
        "port open → Metadata answered {:?}, → CreateTopics done {:?}, → first ack {:?}",
        answered - opened,
        created_at - opened,
        acked - opened
    );
    assert!(
        created_at.saturating_duration_since(answered) <= PROMPT,
        "CreateTopics came back {:?} after the broker first answered",
        created_at.saturating_duration_since(answered)
    );
    assert!(
        acked.saturating_duration_since(answered) <= PROMPT * 2,
        "first ack {:?} after the broker first answered",
        acked.saturating_duration_since(answered)
    );
}

#[test]
fn a_cluster_answers_clients_that_connect_as_it_starts() {
    let _one = common::one_cluster_at_a_time();
    let mut cluster = Cluster::spawn(&["broker,controller"; 3], &[], &|_| Vec::new());
    let addr = cluster.nodes[0].addr();
    let bootstrap = cluster.nodes[0].bootstrap();
    let (mut raw, opened) = connect_at_open(addr, Duration::from_secs(30), &mut cluster.nodes[0]);
    let create = create_in_background(bootstrap, "ready-cluster", 1);

    let md = metadata_on(&mut raw);
    let answered = Instant::now();
    assert!(
        md.brokers.iter().any(|b| b.node_id == 1),
        "the first answer lists the broker answering: {md:?}"
    );
    assert!(
        md.brokers.iter().any(|b| b.node_id == md.controller_id),
        "and names a listed broker as controller: {md:?}"
    );
    let (created, created_at) = create.join().expect("create thread");
    created.expect("CreateTopics from an admin client that connected as the port opened");
    eprintln!(
        "3 nodes: port open → Metadata answered {:?}, → CreateTopics done {:?}",
        answered - opened,
        created_at - opened
    );
    assert!(
        created_at.saturating_duration_since(answered) <= PROMPT,
        "CreateTopics came back {:?} after the broker first answered",
        created_at.saturating_duration_since(answered)
    );
    cluster.wait_ready(Duration::from_secs(30));
}
