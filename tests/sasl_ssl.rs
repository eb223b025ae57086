//! SASL_SSL: the SASL layer over the TLS transport, against the real binary — on the client
//! listener (librdkafka with SCRAM-SHA-512 and with PLAIN) and between the nodes (a three-node
//! cluster whose inter-broker and controller listeners are SASL_SSL), as the issue's "securing a
//! cluster" example runs it.

mod common;

use common::certs::Ca;
use common::scram::{alter_scram, upsert};
use common::{one_cluster_at_a_time, Cluster, Deadline, NodePorts};
use rafka_security::sasl::scram::ScramMechanism;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::Duration;

/// The nodes' own PLAIN credentials on the inter-broker and controller listeners.
const NODE_JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="node" password="node-pw" user_node="node-pw";"#;
/// Client PLAIN users on the EXTERNAL listener.
const CLIENT_JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret";"#;

/// Three nodes: EXTERNAL (clients), INTERNAL (inter-broker) and CONTROLLER are SASL_SSL, each
/// node with its own certificate from one CA; a PLAINTEXT listener on localhost is kept for the
/// test harness and for creating the first SCRAM user (the bootstrap the README documents).
/// `extra` properties go to every node. Returns the cluster, the EXTERNAL ports and the CA.
fn sasl_ssl_cluster(
    dir: &std::path::Path,
    extra: &[(&str, &str)],
) -> (Cluster, BTreeMap<i32, u16>, Ca) {
    let ca = Ca::new(dir, "rafka test CA", "ca.pem");
    let keystores: Vec<String> = (1..=3)
        .map(|i| {
            ca.server(dir, &format!("node{i}"), &format!("node{i}"))
                .keystore
                .display()
                .to_string()
        })
        .collect();
    let truststore = ca.pem_path.display().to_string();
    let external = Mutex::new(BTreeMap::new());
    let per_node = |p: &NodePorts| {
        let (ext, internal) = (common::free_port(), common::free_port());
        external.lock().expect("lock").insert(p.node_id, ext);
        vec![
            (
                "listeners".to_owned(),
                format!(
                    "PLAINTEXT://127.0.0.1:{},EXTERNAL://127.0.0.1:{ext},\
                     INTERNAL://127.0.0.1:{internal},CONTROLLER://127.0.0.1:{}",
                    p.port, p.controller_port
                ),
            ),
            (
                "advertised.listeners".to_owned(),
                format!(
                    "PLAINTEXT://127.0.0.1:{},EXTERNAL://127.0.0.1:{ext},\
                     INTERNAL://127.0.0.1:{internal}",
                    p.port
                ),
            ),
            (
                "ssl.keystore.location".to_owned(),
                keystores[(p.node_id - 1) as usize].clone(),
            ),
            ("ssl.truststore.location".to_owned(), truststore.clone()),
        ]
    };
    let mut properties = vec![
        (
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,EXTERNAL:SASL_SSL,INTERNAL:SASL_SSL,CONTROLLER:SASL_SSL",
        ),
        ("inter.broker.listener.name", "INTERNAL"),
        ("ssl.keystore.type", "PEM"),
        ("ssl.truststore.type", "PEM"),
        ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-512"),
        ("sasl.mechanism.inter.broker.protocol", "PLAIN"),
        ("sasl.mechanism.controller.protocol", "PLAIN"),
        ("listener.name.internal.plain.sasl.jaas.config", NODE_JAAS),
        ("listener.name.controller.plain.sasl.jaas.config", NODE_JAAS),
        ("listener.name.external.plain.sasl.jaas.config", CLIENT_JAAS),
    ];
    properties.extend_from_slice(extra);
    let cluster = Cluster::start_with(&["broker,controller"; 3], &properties, &per_node);
    (cluster, external.into_inner().expect("lock"), ca)
}

fn client(bootstrap: &str, ca: &Ca, mechanism: &str, user: &str, password: &str) -> ClientConfig {
    common::client_config(
        bootstrap,
        &[
            ("security.protocol", "SASL_SSL"),
            ("ssl.ca.location", &ca.pem_path.display().to_string()),
            ("sasl.mechanisms", mechanism),
            ("sasl.username", user),
            ("sasl.password", password),
        ],
    )
}

#[test]
fn three_nodes_over_sasl_ssl_serve_scram_and_plain_clients_over_sasl_ssl() {
    let _serial = one_cluster_at_a_time();
    let dir = tempfile::tempdir().expect("dir");
    let (cluster, external, ca) = sasl_ssl_cluster(dir.path(), &[]);
    // The cluster is ready: every node registered, which it did over SASL_SSL to the
    // controllers, and the quorum formed over SASL_SSL.
    let bootstrap: String = external
        .values()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");

    // A SCRAM user, created once through one node, works on every node.
    let results = alter_scram(
        cluster.node(1).addr(),
        vec![upsert(
            "carol",
            ScramMechanism::Sha512,
            "carol-secret",
            4096,
        )],
        vec![],
    );
    assert_eq!(results, vec![("carol".to_owned(), 0)]);

    // An admin over SASL_SSL + PLAIN creates a topic every node replicates over INTERNAL.
    let rt = common::runtime();
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        client(&bootstrap, &ca, "PLAIN", "admin", "admin-secret")
            .create()
            .expect("admin");
    common::create_replicated_topic_with(&admin, "sasl-ssl", 1, 3);

    // carol produces with acks=all over SASL_SSL + SCRAM-SHA-512: each acknowledgement needs the
    // followers to have fetched over the SASL_SSL inter-broker listener.
    let producer: FutureProducer =
        client(&bootstrap, &ca, "SCRAM-SHA-512", "carol", "carol-secret")
            .set("acks", "all")
            .set("message.timeout.ms", "30000")
            .create()
            .expect("producer");
    let mut first = None;
    for i in 0..20 {
        let d = rt
            .block_on(
                producer.send(
                    FutureRecord::to("sasl-ssl")
                        .key("k")
                        .payload(&format!("m{i}")),
                    Duration::from_secs(30),
                ),
            )
            .unwrap_or_else(|(e, _)| {
                panic!("produce {i} over SASL_SSL: {e}\n{}", cluster.logs(30))
            });
        first.get_or_insert(d.offset);
    }
    let deadline = Deadline::after(Duration::from_secs(30));
    loop {
        if let Some(views) = common::partition_views(cluster.node(1), "sasl-ssl", 1) {
            if views[0].isr == vec![1, 2, 3] {
                break;
            }
        }
        deadline.check(|| format!("ISR never had all three replicas\n{}", cluster.logs(30)));
        std::thread::sleep(Duration::from_millis(100));
    }

    // ... and reads every record back.
    let consumer: BaseConsumer = client(&bootstrap, &ca, "SCRAM-SHA-512", "carol", "carol-secret")
        .set("group.id", "sasl-ssl-it")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("sasl-ssl", 0, Offset::Offset(first.expect("produced")))
        .expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let mut got = Vec::new();
    let deadline = Deadline::after(Duration::from_secs(30));
    while got.len() < 20 {
        deadline.check(|| format!("consumed only {got:?}"));
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                got.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned())
            }
            Some(Err(e)) => panic!("consume over SASL_SSL: {e}"),
            None => {}
        }
    }
    assert_eq!(got, (0..20).map(|i| format!("m{i}")).collect::<Vec<_>>());

    // A wrong password over SASL_SSL gets no metadata.
    let intruder: BaseConsumer = client(&bootstrap, &ca, "SCRAM-SHA-512", "carol", "wrong")
        .create()
        .expect("consumer");
    assert!(intruder
        .fetch_metadata(None, Duration::from_secs(5))
        .is_err());

    // Bytes that are not a TLS handshake on the SASL_SSL listener: the connection is closed.
    let port = external[&2];
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(&[0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0, 0])
        .expect("write");
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    // rustls may answer with a TLS alert record (content type 21) before closing; never with a
    // Kafka response.
    assert!(n == 0 || buf[0] == 21, "got {n} bytes: {:?}", &buf[..n]);
}

/// KIP-368 between the nodes: with `connections.max.reauth.ms` set, every SASL session on the
/// INTERNAL and CONTROLLER listeners ends after it, and a peer closes a connection whose next
/// request comes later. The nodes' own connections — replica fetchers, the controller channel
/// that carries heartbeats, the Raft RPCs — authenticate again on the same connection before
/// that. Before they did, the controller saw the heartbeat connection close every session, took
/// the live broker for dead and moved its leaderships.
#[test]
fn the_nodes_authenticate_their_own_connections_again_before_their_sessions_end() {
    let _serial = one_cluster_at_a_time();
    let dir = tempfile::tempdir().expect("dir");
    let session_ms = 2_000;
    let (cluster, _, _) = sasl_ssl_cluster(
        dir.path(),
        &[("connections.max.reauth.ms", &session_ms.to_string())],
    );
    // A topic on all three, so that two followers fetch over INTERNAL the whole time.
    common::create_replicated_topic(&cluster.bootstrap(), "reauth", 1, 3);
    // Four sessions' worth of heartbeats, fetches and Raft traffic.
    std::thread::sleep(Duration::from_millis(4 * session_ms));
    let logs = cluster.logs(100_000);
    assert!(
        !logs.contains("did not re-authenticate"),
        "a node let its own session expire:\n{}",
        cluster.logs(40)
    );
    assert!(
        logs.lines()
            .any(|l| l.contains("re-authenticated") && l.contains("User:node")),
        "no replica fetcher authenticated again on INTERNAL:\n{}",
        cluster.logs(40)
    );
    assert!(
        !logs.contains("broker most likely dead"),
        "the controller took a live broker for dead:\n{}",
        cluster.logs(40)
    );
}
