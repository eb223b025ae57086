//! TLS against the real binary (issue #14): librdkafka producing and consuming over an SSL
//! listener (fetches large enough to take the chunked user-space path that replaces
//! `sendfile`), mTLS with `ssl.client.auth=required` and the principal from the client
//! certificate, plaintext bytes on an SSL listener, a silent client holding a handshake open
//! while others connect, certificate reload without restart, and a three-node cluster whose
//! inter-broker and controller listeners are SSL. Every certificate is made by the test.

mod common;

use common::certs::{Ca, Leaf};
use common::*;
use rafka_security::tls::{distinguished_name::subject_rfc2253, SslConfig, TlsClient};
use rafka_security::transport::Stream;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Properties giving every node an SSL client listener `SSL` on a fresh port next to its
/// PLAINTEXT one (readiness probes and admin stay on PLAINTEXT), with `ssl` extra keys.
fn ssl_listener_props(
    ssl_ports: &std::sync::Mutex<HashMap<i32, u16>>,
    p: &NodePorts,
    keystore: &Path,
    ssl: &[(String, String)],
) -> Vec<(String, String)> {
    let ssl_port = free_port();
    ssl_ports
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(p.node_id, ssl_port);
    let mut props = vec![
        (
            "listeners".to_owned(),
            format!(
                "PLAINTEXT://127.0.0.1:{},SSL://127.0.0.1:{ssl_port},CONTROLLER://127.0.0.1:{}",
                p.port, p.controller_port
            ),
        ),
        (
            "advertised.listeners".to_owned(),
            format!(
                "PLAINTEXT://127.0.0.1:{},SSL://127.0.0.1:{ssl_port}",
                p.port
            ),
        ),
        (
            "listener.security.protocol.map".to_owned(),
            "PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT".to_owned(),
        ),
        (
            "inter.broker.listener.name".to_owned(),
            "PLAINTEXT".to_owned(),
        ),
        (
            "listener.name.ssl.ssl.keystore.type".to_owned(),
            "PEM".to_owned(),
        ),
        (
            "listener.name.ssl.ssl.keystore.location".to_owned(),
            keystore.display().to_string(),
        ),
    ];
    props.extend(ssl.iter().cloned());
    props
}

/// One node with an SSL listener; returns it and the SSL port.
fn single_with_ssl(keystore: &Path, ssl: &[(&str, &str)]) -> (Cluster, u16) {
    let ports = std::sync::Mutex::new(HashMap::new());
    let ssl: Vec<(String, String)> = ssl
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let cluster = Cluster::start_with(&["broker,controller"], &[], &|p| {
        ssl_listener_props(&ports, p, keystore, &ssl)
    });
    let port = ports.lock().unwrap_or_else(|e| e.into_inner())[&1];
    (cluster, port)
}

fn ssl_client(ssl_port: u16, ca: &Ca, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut c = vec![
        (
            "bootstrap.servers".to_owned(),
            format!("127.0.0.1:{ssl_port}"),
        ),
        ("security.protocol".to_owned(), "SSL".to_owned()),
        (
            "ssl.ca.location".to_owned(),
            ca.pem_path.display().to_string(),
        ),
    ];
    c.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    c
}

fn with_cert(leaf: &Leaf) -> [(&str, String); 2] {
    [
        ("ssl.certificate.location", leaf.cert.display().to_string()),
        ("ssl.key.location", leaf.key.display().to_string()),
    ]
}

fn rd_config(settings: &[(String, String)]) -> rdkafka::ClientConfig {
    let bootstrap = settings
        .iter()
        .find(|(k, _)| k == "bootstrap.servers")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let mut c = client_config(&bootstrap, &[]);
    for (k, v) in settings {
        c.set(k, v);
    }
    c
}

/// Whether a librdkafka client with `settings` gets Metadata within `timeout`.
fn metadata_ok(settings: &[(String, String)], timeout: Duration) -> Result<usize, String> {
    let consumer: BaseConsumer = rd_config(settings).create().map_err(|e| e.to_string())?;
    consumer
        .fetch_metadata(None, timeout)
        .map(|m| m.brokers().len())
        .map_err(|e| e.to_string())
}

/// A rustls client trusting `ca` (the same code the nodes use to reach each other).
fn tls_client(ca: &Ca) -> TlsClient {
    let ca_path = ca.pem_path.display().to_string();
    let config = SslConfig::from_keys("TEST", |k| match k {
        "ssl.truststore.type" => Some("PEM".into()),
        "ssl.truststore.location" => Some(ca_path.clone()),
        _ => None,
    })
    .expect("client ssl config");
    TlsClient::new(&config).expect("tls client")
}

/// The subject of the certificate the server at `port` presents now.
fn server_subject(rt: &tokio::runtime::Runtime, client: &TlsClient, port: u16) -> String {
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let stream =
            tokio::time::timeout(Duration::from_secs(10), client.connect(tcp, "localhost"))
                .await
                .expect("handshake in time")
                .expect("handshake");
        let Stream::TlsClient(tls) = stream else {
            panic!("not a TLS stream")
        };
        let certs = tls
            .get_ref()
            .1
            .peer_certificates()
            .expect("server certificate");
        subject_rfc2253(&certs[0]).expect("subject")
    })
}

#[test]
fn produce_and_consume_over_ssl() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = Ca::new(dir.path(), "rafka test CA", "ca.pem");
    let server = ca.server(dir.path(), "server", "localhost");
    let (_cluster, ssl_port) = single_with_ssl(&server.keystore, &[]);
    let settings = ssl_client(ssl_port, &ca, &[]);
    assert_eq!(metadata_ok(&settings, Duration::from_secs(10)), Ok(1));

    // Records of 1 KiB and of 300 KiB: a fetch of the large ones is bigger than one copy
    // chunk (256 KiB), so it crosses chunk boundaries on the TLS copy path.
    let topic = "tls-produce-consume";
    let mut producer_cfg = rd_config(&settings);
    producer_cfg
        .set("message.timeout.ms", "30000")
        .set("message.max.bytes", "1000000")
        .set("linger.ms", "5");
    let producer: rdkafka::producer::BaseProducer = producer_cfg.create().expect("producer");
    let payload = |i: usize| -> Vec<u8> {
        let len = if i % 10 == 9 { 300 * 1024 } else { 1024 };
        (0..len).map(|j| ((i * 31 + j) % 251) as u8).collect()
    };
    const N: usize = 200;
    for i in 0..N {
        let p = payload(i);
        let key = i.to_string();
        loop {
            match producer.send(BaseRecord::to(topic).key(&key).payload(&p)) {
                Ok(()) => break,
                Err((e, _)) => {
                    assert!(
                        e.to_string().contains("Queue full"),
                        "produce over SSL: {e}"
                    );
                    producer.poll(Duration::from_millis(50));
                }
            }
        }
    }
    producer
        .flush(Duration::from_secs(60))
        .expect("every record delivered over SSL");

    let mut consumer_cfg = rd_config(&settings);
    consumer_cfg
        .set("group.id", "tls-test")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("check.crcs", "true")
        .set("fetch.max.bytes", "4000000")
        .set("max.partition.fetch.bytes", "4000000");
    let consumer: BaseConsumer = consumer_cfg.create().expect("consumer");
    assign(&consumer, topic, &[(0, rdkafka::Offset::Beginning)]);
    let deadline = Deadline::after(Duration::from_secs(60));
    let mut got = 0usize;
    while got < N {
        deadline.check(|| format!("consumed {got} of {N} over SSL"));
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.unwrap_or_else(|e| panic!("consume over SSL: {e}"));
        assert_eq!(m.offset(), got as i64);
        let key: usize = std::str::from_utf8(m.key().expect("key"))
            .expect("utf8")
            .parse()
            .expect("number");
        assert_eq!(key, got);
        assert_eq!(
            m.payload().expect("payload"),
            &payload(got)[..],
            "record {got}"
        );
        got += 1;
    }
}

#[test]
fn mtls_required_refuses_a_client_without_a_certificate_and_maps_the_principal() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = Ca::new(dir.path(), "rafka test CA", "ca.pem");
    let server = ca.server(dir.path(), "server", "localhost");
    let client = ca.leaf(dir.path(), "client", "Client-A", &[]);
    // A certificate from another CA is not trusted either.
    let other_ca = Ca::new(dir.path(), "another CA", "other-ca.pem");
    let stranger = other_ca.leaf(dir.path(), "stranger", "Stranger", &[]);
    let truststore = ca.pem_path.display().to_string();
    // The principal line is logged at debug by the socket server.
    std::env::set_var(
        "RAFKA_TEST_LOG",
        "info,openraft=warn,rafka_broker::network=debug",
    );
    let (cluster, ssl_port) = single_with_ssl(
        &server.keystore,
        &[
            ("listener.name.ssl.ssl.client.auth", "required"),
            ("listener.name.ssl.ssl.truststore.type", "PEM"),
            ("listener.name.ssl.ssl.truststore.location", &truststore),
            (
                "listener.name.ssl.ssl.principal.mapping.rules",
                "RULE:^CN=([^,]*),O=rafka tests$/$1/L,DEFAULT",
            ),
        ],
    );
    let timeout = Duration::from_secs(5);
    let without = metadata_ok(&ssl_client(ssl_port, &ca, &[]), timeout);
    assert!(without.is_err(), "no client certificate: {without:?}");
    let cert = with_cert(&client);
    let with = ssl_client(
        ssl_port,
        &ca,
        &[
            (cert[0].0, cert[0].1.as_str()),
            (cert[1].0, cert[1].1.as_str()),
        ],
    );
    assert_eq!(metadata_ok(&with, Duration::from_secs(10)), Ok(1));
    let cert = with_cert(&stranger);
    let wrong = ssl_client(
        ssl_port,
        &ca,
        &[
            (cert[0].0, cert[0].1.as_str()),
            (cert[1].0, cert[1].1.as_str()),
        ],
    );
    assert!(
        metadata_ok(&wrong, timeout).is_err(),
        "untrusted client certificate"
    );

    // The client certificate's subject CN=Client-A,O=rafka tests, mapped by the rule.
    let node = cluster.node(1);
    let deadline = Deadline::after(Duration::from_secs(10));
    loop {
        let log = strip_ansi(&std::fs::read_to_string(node.log_file()).unwrap_or_default());
        if log.contains("principal=User:client-a") {
            break;
        }
        deadline.check(|| format!("no principal line in the log:\n{log}"));
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn plaintext_on_an_ssl_listener_is_closed_and_a_silent_handshake_delays_nobody() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = Ca::new(dir.path(), "rafka test CA", "ca.pem");
    let server = ca.server(dir.path(), "server", "localhost");
    let (_cluster, ssl_port) = single_with_ssl(&server.keystore, &[]);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], ssl_port));

    // A Kafka request in clear: the first byte is not a TLS handshake record.
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let request = [
        0u8, 0, 0, 14, 0, 18, 0, 3, 0, 0, 0, 1, 0, 4, b't', b'e', b's', b't',
    ];
    s.write_all(&request).expect("send");
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the connection closed, got {other:?}"),
    }

    // Ten clients that connect and say nothing hold handshakes open; a real client still
    // gets through at once.
    let silent: Vec<std::net::TcpStream> = (0..10)
        .map(|_| std::net::TcpStream::connect(addr).expect("connect"))
        .collect();
    let rt = runtime();
    let client = tls_client(&ca);
    let start = Instant::now();
    assert_eq!(
        server_subject(&rt, &client, ssl_port),
        "CN=localhost,O=rafka tests"
    );
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "handshake took {took:?} behind silent clients"
    );
    let settings = ssl_client(ssl_port, &ca, &[]);
    assert_eq!(metadata_ok(&settings, Duration::from_secs(5)), Ok(1));
    drop(silent);
}

#[test]
fn a_new_certificate_in_the_keystore_file_reaches_new_connections() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = Ca::new(dir.path(), "rafka test CA", "ca.pem");
    let first = ca.server(dir.path(), "first", "first");
    let second = ca.server(dir.path(), "second", "second");
    let keystore = dir.path().join("keystore.pem");
    std::fs::copy(&first.keystore, &keystore).expect("copy");
    let (cluster, ssl_port) = single_with_ssl(&keystore, &[]);
    let rt = runtime();
    let client = tls_client(&ca);
    assert_eq!(
        server_subject(&rt, &client, ssl_port),
        "CN=first,O=rafka tests"
    );

    // A broken file keeps the old certificate (and says so in the log).
    std::fs::write(&keystore, "-----BEGIN CERTIFICATE-----\nnot base64\n").expect("write");
    let node = cluster.node(1);
    let deadline = Deadline::after(Duration::from_secs(20));
    loop {
        let log = std::fs::read_to_string(node.log_file()).unwrap_or_default();
        if log.contains("keeping the previous certificates") {
            break;
        }
        deadline.check(|| {
            format!(
                "no warning about the broken keystore:\n{}",
                node.log_tail(20)
            )
        });
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        server_subject(&rt, &client, ssl_port),
        "CN=first,O=rafka tests"
    );

    // Replaced by a good one (written aside and renamed, as tools do): new connections see it.
    let tmp = dir.path().join("keystore.pem.tmp");
    std::fs::copy(&second.keystore, &tmp).expect("copy");
    std::fs::rename(&tmp, &keystore).expect("rename");
    let deadline = Deadline::after(Duration::from_secs(20));
    loop {
        let subject = server_subject(&rt, &client, ssl_port);
        if subject == "CN=second,O=rafka tests" {
            break;
        }
        deadline.check(|| format!("still {subject} after the keystore changed"));
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn three_nodes_replicate_over_ssl_inter_broker_and_controller_listeners() {
    let _serial = one_cluster_at_a_time();
    let dir = tempfile::tempdir().expect("dir");
    let ca = Ca::new(dir.path(), "rafka test CA", "ca.pem");
    // One certificate per node, each with the loopback names; mTLS between the nodes.
    let leaves: Vec<Leaf> = (1..=3)
        .map(|i| ca.server(dir.path(), &format!("node{i}"), &format!("node{i}")))
        .collect();
    let truststore = ca.pem_path.display().to_string();
    let keystores: Vec<String> = leaves
        .iter()
        .map(|l| l.keystore.display().to_string())
        .collect();
    let cluster = Cluster::start_with(&["broker,controller"; 3], &[], &|p| {
        let internal = free_port();
        let keystore = &keystores[(p.node_id - 1) as usize];
        vec![
            (
                "listeners".into(),
                format!(
                    "PLAINTEXT://127.0.0.1:{},INTERNAL://127.0.0.1:{internal},CONTROLLER://127.0.0.1:{}",
                    p.port, p.controller_port
                ),
            ),
            (
                "advertised.listeners".into(),
                format!("PLAINTEXT://127.0.0.1:{},INTERNAL://127.0.0.1:{internal}", p.port),
            ),
            (
                "listener.security.protocol.map".into(),
                "PLAINTEXT:PLAINTEXT,INTERNAL:SSL,CONTROLLER:SSL".into(),
            ),
            ("inter.broker.listener.name".into(), "INTERNAL".into()),
            ("ssl.keystore.type".into(), "PEM".into()),
            ("ssl.keystore.location".into(), keystore.clone()),
            ("ssl.truststore.type".into(), "PEM".into()),
            ("ssl.truststore.location".into(), truststore.clone()),
            ("ssl.client.auth".into(), "required".into()),
        ]
    });
    // The quorum formed over SSL (the cluster is ready: every broker registered).
    let topic = "tls-replicated";
    create_replicated_topic(&cluster.bootstrap(), topic, 2, 3);
    wait_for_isrs(
        cluster.node(1),
        topic,
        2,
        &[1, 2, 3],
        Deadline::after(Duration::from_secs(30)),
    );
    let producer = SyncProducer::new(&cluster.bootstrap(), &[]);
    for i in 0..20 {
        let p = i % 2;
        producer
            .send(topic, p, format!("record {i}").as_bytes())
            .unwrap_or_else(|e| panic!("acks=all produce over SSL replication: {e:?}"));
    }
    // Every node's log of each partition holds the last record: the followers fetched it from
    // the leader over the SSL inter-broker listener (records are not compressed).
    let deadline = Deadline::after(Duration::from_secs(30));
    for node in &cluster.nodes {
        for (p, last) in [(0, "record 18"), (1, "record 19")] {
            loop {
                let bytes: Vec<u8> = segment_files(&node.log_dir(), topic, p)
                    .iter()
                    .flat_map(|f| std::fs::read(f).unwrap_or_default())
                    .collect();
                if bytes.windows(last.len()).any(|w| w == last.as_bytes()) {
                    break;
                }
                deadline.check(|| {
                    format!(
                        "node {} has no {last:?} in {topic}-{p}\n{}",
                        node.node_id,
                        cluster.logs(30)
                    )
                });
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Kafka's dynamic SSL update on this broker's resource with the listener-prefixed keystore key,
/// through both alter APIs. A keystore that does not load, or whose subject differs (without
/// `ssl.allow.dn.changes`), is refused with INVALID_REQUEST and the listener keeps its
/// certificate; a good one reaches new connections — a client that trusts only the new CA
/// connects after the alter and not before. (The rdkafka crate's `alter_configs` drops each
/// resource's error — 0.39 reports `Ok` for every resource — so IncrementalAlterConfigs goes
/// through librdkafka's C API and AlterConfigs in raw frames.)
#[test]
fn alter_configs_switches_the_listener_keystore() {
    const KEY: &str = "listener.name.ssl.ssl.keystore.location";
    const BROKER: i8 = 4;
    const INVALID_REQUEST: i16 = 42;
    let t = Duration::from_secs(20);

    let dir = tempfile::tempdir().expect("dir");
    let old_ca = Ca::new(dir.path(), "old CA", "old-ca.pem");
    let new_ca = Ca::new(dir.path(), "new CA", "new-ca.pem");
    let old = old_ca.server(dir.path(), "old", "broker");
    let new = new_ca.server(dir.path(), "new", "broker");
    let renamed = new_ca.server(dir.path(), "renamed", "someone-else");
    let (cluster, ssl_port) = single_with_ssl(&old.keystore, &[]);
    let node = cluster.node(1);
    let admin = admin(&node.bootstrap());
    let incremental = |location: &Path| {
        ffi::incremental_alter_configs(
            admin.inner(),
            ffi::Resource::Broker(1),
            &[ffi::Op::Set(KEY, &location.display().to_string())],
            t,
        )
        .expect("IncrementalAlterConfigs request")
        .map_err(|(name, _)| name)
    };
    let legacy = |location: &Path| {
        legacy_alter_configs(
            node.addr(),
            BROKER,
            "1",
            &[
                (KEY, &location.display().to_string()),
                ("listener.name.ssl.ssl.keystore.type", "PEM"),
            ],
            t,
        )
    };
    let trusts_new = ssl_client(ssl_port, &new_ca, &[]);
    let trusts_old = ssl_client(ssl_port, &old_ca, &[]);
    assert!(metadata_ok(&trusts_old, Duration::from_secs(10)).is_ok());
    assert!(metadata_ok(&trusts_new, Duration::from_secs(3)).is_err());

    // Refused by both APIs: a file that is not there, one that is not a keystore, another
    // subject.
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a keystore").expect("write");
    for bad in [
        dir.path().join("missing.pem"),
        garbage,
        renamed.keystore.clone(),
    ] {
        assert_eq!(
            incremental(&bad),
            Err("INVALID_REQUEST".to_owned()),
            "IncrementalAlterConfigs {}: {}",
            bad.display(),
            node.log_tail(30)
        );
        let (code, message) = legacy(&bad);
        assert_eq!(
            code,
            INVALID_REQUEST,
            "AlterConfigs {}: {message:?}",
            bad.display()
        );
        assert!(
            message.as_deref().unwrap_or("").contains("listener SSL"),
            "{message:?}"
        );
        assert!(
            metadata_ok(&trusts_old, Duration::from_secs(10)).is_ok(),
            "the old certificate is still served after refusing {}",
            bad.display()
        );
    }

    // Accepted: new connections get the new CA's certificate (the broker answers once its
    // listener switched).
    assert_eq!(incremental(&new.keystore), Ok(()));
    metadata_ok(&trusts_new, Duration::from_secs(10))
        .expect("a client trusting only the new CA connects after the alter");
    assert!(metadata_ok(&trusts_old, Duration::from_secs(3)).is_err());
    // And back through the legacy API.
    assert_eq!(legacy(&old.keystore), (0, None));
    metadata_ok(&trusts_old, Duration::from_secs(10))
        .expect("a client trusting only the old CA connects after switching back");
    assert!(metadata_ok(&trusts_new, Duration::from_secs(3)).is_err());
    let log = strip_ansi(&std::fs::read_to_string(node.log_file()).unwrap_or_default());
    assert_eq!(
        log.matches("TLS keystore/truststore updated by a dynamic broker config")
            .count(),
        2,
        "one switch per accepted alter, none for the refused ones"
    );
}
