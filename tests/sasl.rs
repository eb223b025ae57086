//! SASL on a SASL_PLAINTEXT listener, against the real binary: librdkafka with PLAIN,
//! SCRAM-SHA-256 and SCRAM-SHA-512 (credentials created with AlterUserScramCredentials over the
//! node's PLAINTEXT listener on localhost — the bootstrap path the README documents), every bad
//! input the issue names answered with Kafka's error or a closed connection, the failure delay
//! that delays no one else, KIP-368 re-authentication, a user added through one broker
//! authenticating on another without a restart, and OAUTHBEARER with unsecured tokens and with
//! signed JWTs checked against a JWKS file.

mod common;

use common::scram::{alter_scram, upsert};
use common::{Cluster, Deadline, NodePorts};
use rafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialDeletion;
use rafka_protocol::messages::{
    ApiVersionsRequest, DescribeUserScramCredentialsRequest, MetadataRequest, RequestHeader,
    RequestKind, ResponseKind, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest,
};
use rafka_protocol::{ApiKey, ErrorCode, RequestFrame, ResponseFrame};
use rafka_security::sasl::scram::{ScramClient, ScramMechanism};
use rafka_security::sasl::SaslClient;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const PLAIN_JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";"#;

/// A cluster whose brokers have a SASL_PLAINTEXT listener beside the PLAINTEXT one (on
/// localhost, for the harness and for creating the first SCRAM users).
struct SaslCluster {
    cluster: Cluster,
    sasl_ports: BTreeMap<i32, u16>,
}

impl SaslCluster {
    fn start(n: usize, extra: &[(&str, &str)]) -> SaslCluster {
        let ports = Mutex::new(BTreeMap::new());
        let per_node = |p: &NodePorts| {
            let sp = common::free_port();
            ports.lock().expect("lock").insert(p.node_id, sp);
            vec![
                (
                    "listeners".to_owned(),
                    format!(
                        "PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{},SASL_PLAINTEXT://127.0.0.1:{sp}",
                        p.port, p.controller_port
                    ),
                ),
                (
                    "advertised.listeners".to_owned(),
                    format!(
                        "PLAINTEXT://127.0.0.1:{},SASL_PLAINTEXT://127.0.0.1:{sp}",
                        p.port
                    ),
                ),
            ]
        };
        let mut props: Vec<(&str, &str)> = vec![
            (
                "listener.security.protocol.map",
                "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
            ),
            (
                "sasl.enabled.mechanisms",
                "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
            ),
            (
                "listener.name.sasl_plaintext.plain.sasl.jaas.config",
                PLAIN_JAAS,
            ),
        ];
        props.extend_from_slice(extra);
        let cluster = Cluster::start_with(&vec!["broker,controller"; n], &props, &per_node);
        let sasl_ports = ports.into_inner().expect("lock");
        SaslCluster {
            cluster,
            sasl_ports,
        }
    }

    fn sasl_addr(&self, node_id: i32) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.sasl_ports[&node_id]))
    }

    fn sasl_bootstrap(&self, node_id: i32) -> String {
        self.sasl_addr(node_id).to_string()
    }

    fn plaintext(&self, node_id: i32) -> SocketAddr {
        self.cluster.node(node_id).addr()
    }
}

/// A raw client connection speaking our own codec, one request at a time.
struct Raw {
    s: TcpStream,
    correlation_id: i32,
}

impl Raw {
    fn connect(addr: SocketAddr) -> Raw {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.set_nodelay(true).expect("nodelay");
        Raw {
            s,
            correlation_id: 0,
        }
    }

    fn send(&mut self, version: i16, body: RequestKind) {
        self.correlation_id += 1;
        let frame = RequestFrame {
            header: RequestHeader {
                request_api_key: body.api_key().key(),
                request_api_version: version,
                correlation_id: self.correlation_id,
                client_id: Some("sasl-it".into()),
                ..Default::default()
            },
            body,
        }
        .encode()
        .expect("encode");
        self.s.write_all(&frame).expect("write");
    }

    /// The next response, or None when the broker closed the connection.
    fn recv(&mut self, api: ApiKey, version: i16) -> Option<ResponseKind> {
        let mut len = [0u8; 4];
        match self.s.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
            Err(e) => panic!("read: {e}"),
        }
        let len = i32::from_be_bytes(len);
        assert!((0..=1 << 20).contains(&len), "response size {len}");
        let mut buf = vec![0u8; len as usize];
        self.s.read_exact(&mut buf).expect("body");
        let r = ResponseFrame::decode(api, version, &bytes::Bytes::from(buf)).expect("decodes");
        assert_eq!(r.correlation_id, self.correlation_id);
        Some(r.body)
    }

    fn call(&mut self, version: i16, body: RequestKind) -> Option<ResponseKind> {
        let api = body.api_key();
        self.send(version, body);
        self.recv(api, version)
    }

    /// Whether the broker closed the connection (EOF or reset) within the read timeout.
    fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.s.read(&mut b), Ok(0))
            || matches!(self.s.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
    }

    fn handshake(&mut self, mechanism: &str) -> (i16, Vec<String>) {
        match self.call(
            1,
            RequestKind::SaslHandshake(SaslHandshakeRequest {
                mechanism: mechanism.into(),
                ..Default::default()
            }),
        ) {
            Some(ResponseKind::SaslHandshake(r)) => (r.error_code, r.mechanisms),
            other => panic!("handshake answer: {other:?}"),
        }
    }

    fn authenticate(&mut self, token: &[u8]) -> Option<SaslAuthenticateResponse> {
        match self.call(
            2,
            RequestKind::SaslAuthenticate(SaslAuthenticateRequest {
                auth_bytes: bytes::Bytes::copy_from_slice(token),
                ..Default::default()
            }),
        )? {
            ResponseKind::SaslAuthenticate(r) => Some(r),
            other => panic!("authenticate answer: {other:?}"),
        }
    }

    fn metadata_ok(&mut self) -> bool {
        matches!(
            self.call(12, RequestKind::Metadata(MetadataRequest::default())),
            Some(ResponseKind::Metadata(_))
        )
    }

    /// A whole SCRAM exchange; the server's final response.
    fn scram(
        &mut self,
        m: ScramMechanism,
        user: &str,
        password: &str,
    ) -> Option<SaslAuthenticateResponse> {
        let (code, _) = self.handshake(m.sasl().name());
        assert_eq!(code, 0);
        let mut c = ScramClient::new(m, user, password);
        let first = self.authenticate(&c.initial_response().expect("first"))?;
        if first.error_code != 0 {
            return Some(first);
        }
        let fin = c
            .evaluate(&first.auth_bytes)
            .expect("server-first")
            .expect("final");
        let last = self.authenticate(&fin)?;
        if last.error_code == 0 {
            assert_eq!(
                c.evaluate(&last.auth_bytes).expect("server signature"),
                None
            );
        }
        Some(last)
    }
}

fn sasl_client(bootstrap: &str, mechanism: &str, user: &str, password: &str) -> ClientConfig {
    common::client_config(
        bootstrap,
        &[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanisms", mechanism),
            ("sasl.username", user),
            ("sasl.password", password),
        ],
    )
}

/// Produces `value` and reads it back, both over SASL with these credentials.
fn round_trip(
    bootstrap: &str,
    topic: &str,
    mechanism: &str,
    user: &str,
    password: &str,
    value: &str,
) {
    let rt = common::runtime();
    let producer: FutureProducer = sasl_client(bootstrap, mechanism, user, password)
        .set("message.timeout.ms", "20000")
        .create()
        .expect("producer");
    let delivery = rt
        .block_on(producer.send(
            FutureRecord::to(topic).key("k").payload(value),
            Duration::from_secs(20),
        ))
        .unwrap_or_else(|(e, _)| panic!("{mechanism} {user}: produce failed: {e}"));
    let (partition, offset) = (delivery.partition, delivery.offset);
    let consumer: BaseConsumer = sasl_client(bootstrap, mechanism, user, password)
        .set("group.id", "sasl-it")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
        .expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let deadline = Deadline::after(Duration::from_secs(20));
    loop {
        deadline.check(|| format!("{mechanism} {user}: nothing consumed"));
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                assert_eq!(m.payload(), Some(value.as_bytes()));
                return;
            }
            Some(Err(e)) => panic!("{mechanism} {user}: consume failed: {e}"),
            None => {}
        }
    }
}

#[test]
fn librdkafka_with_plain_and_scram() {
    let c = SaslCluster::start(1, &[]);
    let admin = common::admin(&c.cluster.node(1).bootstrap());
    common::create_topic(&admin, c.cluster.node(1), "secured", 1, &[]);
    // The first SCRAM users, over the PLAINTEXT listener on localhost.
    let results = alter_scram(
        c.plaintext(1),
        vec![
            upsert("alice", ScramMechanism::Sha256, "alice-256", 4096),
            upsert("bob", ScramMechanism::Sha512, "bob-512", 8192),
        ],
        vec![],
    );
    assert_eq!(results, vec![("alice".into(), 0), ("bob".into(), 0)]);
    // Described from the broker's image: mechanisms and iterations, nothing secret.
    match common::raw_request(
        c.sasl_addr(1),
        0,
        RequestKind::ApiVersions(ApiVersionsRequest::default()),
        Duration::from_secs(5),
    )
    .expect("ApiVersions before authentication")
    {
        ResponseKind::ApiVersions(v) => {
            for key in [17, 36, 50, 51] {
                assert!(
                    v.api_keys.iter().any(|k| k.api_key == key),
                    "api {key} advertised"
                );
            }
        }
        other => panic!("{other:?}"),
    }
    match common::raw_request(
        c.plaintext(1),
        0,
        RequestKind::DescribeUserScramCredentials(DescribeUserScramCredentialsRequest::default()),
        Duration::from_secs(5),
    )
    .expect("describe")
    {
        ResponseKind::DescribeUserScramCredentials(r) => {
            let got: Vec<(String, Vec<(i8, i32)>)> = r
                .results
                .iter()
                .map(|u| {
                    (
                        u.user.clone(),
                        u.credential_infos
                            .iter()
                            .map(|i| (i.mechanism, i.iterations))
                            .collect(),
                    )
                })
                .collect();
            assert_eq!(
                got,
                vec![
                    ("alice".into(), vec![(1, 4096)]),
                    ("bob".into(), vec![(2, 8192)])
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    let b = c.sasl_bootstrap(1);
    round_trip(&b, "secured", "PLAIN", "alice", "alice-secret", "via plain");
    round_trip(
        &b,
        "secured",
        "SCRAM-SHA-256",
        "alice",
        "alice-256",
        "via scram-256",
    );
    round_trip(
        &b,
        "secured",
        "SCRAM-SHA-512",
        "bob",
        "bob-512",
        "via scram-512",
    );
    let log = node_log(&c, 1);
    assert!(
        log.contains("principal=User:alice"),
        "authentication logged"
    );
    assert!(log.contains("principal=User:bob"));
    // librdkafka with a wrong password never gets metadata.
    let consumer: BaseConsumer = sasl_client(&b, "SCRAM-SHA-512", "bob", "wrong")
        .create()
        .expect("consumer");
    assert!(consumer
        .fetch_metadata(Some("secured"), Duration::from_secs(3))
        .is_err());
    let log = node_log(&c, 1);
    assert!(log.contains("failed authentication"));
    for secret in ["alice-secret", "alice-256", "bob-512", "wrong\"", "=wrong"] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
}

#[test]
fn bad_input_gets_kafkas_error_or_a_close() {
    let c = SaslCluster::start(1, &[("connection.failed.authentication.delay.ms", "300")]);
    alter_scram(
        c.plaintext(1),
        vec![upsert("carol", ScramMechanism::Sha256, "carol-pw", 4096)],
        vec![],
    );
    let addr = c.sasl_addr(1);
    // Anything but ApiVersions and the SASL requests before authentication: closed.
    let mut r = Raw::connect(addr);
    assert!(matches!(
        r.call(3, RequestKind::ApiVersions(ApiVersionsRequest::default())),
        Some(ResponseKind::ApiVersions(_))
    ));
    r.send(12, RequestKind::Metadata(MetadataRequest::default()));
    assert!(r.closed(), "Metadata before authentication closes");
    // SaslAuthenticate with no handshake: closed.
    let mut r = Raw::connect(addr);
    r.send(
        2,
        RequestKind::SaslAuthenticate(SaslAuthenticateRequest {
            auth_bytes: bytes::Bytes::from_static(b"\0alice\0alice-secret"),
            ..Default::default()
        }),
    );
    assert!(r.closed(), "authenticate before handshake closes");
    // A disabled mechanism: UNSUPPORTED_SASL_MECHANISM with the enabled list, then closed.
    let mut r = Raw::connect(addr);
    let (code, mechanisms) = r.handshake("GSSAPI");
    assert_eq!(code, ErrorCode::UnsupportedSaslMechanism.code());
    assert_eq!(mechanisms, vec!["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]);
    assert!(r.closed());
    // Wrong password, unknown user, malformed token: SASL_AUTHENTICATION_FAILED after the
    // delay, then closed.
    for token in [
        &b"\0alice\0not-it"[..],
        b"\0mallory\0alice-secret",
        b"no separators at all",
        b"\0\0",
    ] {
        let mut r = Raw::connect(addr);
        assert_eq!(r.handshake("PLAIN").0, 0);
        let t = Instant::now();
        let resp = r.authenticate(token).expect("an answer before the close");
        assert!(
            t.elapsed() >= Duration::from_millis(290),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(resp.error_code, ErrorCode::SaslAuthenticationFailed.code());
        assert!(resp.error_message.is_some());
        assert!(r.closed(), "closed after a failed authentication");
    }
    // SCRAM: wrong password (proof), tampered nonce, bad channel binding, garbage.
    let mut r = Raw::connect(addr);
    let resp = r
        .scram(ScramMechanism::Sha256, "carol", "nope")
        .expect("answer");
    assert_eq!(resp.error_code, ErrorCode::SaslAuthenticationFailed.code());
    assert!(r.closed());
    for tamper in [
        |s: &str| s.replacen(",r=", ",r=x", 1),
        |s: &str| s.replacen("c=biws", "c=eSws", 1),
        |s: &str| s.replacen(",p=", ",p=%%", 1),
    ] {
        let mut r = Raw::connect(addr);
        assert_eq!(r.handshake("SCRAM-SHA-256").0, 0);
        let mut cl = ScramClient::new(ScramMechanism::Sha256, "carol", "carol-pw");
        let first = r
            .authenticate(&cl.initial_response().expect("first"))
            .expect("server-first");
        assert_eq!(first.error_code, 0);
        let fin = String::from_utf8(cl.evaluate(&first.auth_bytes).expect("ok").expect("final"))
            .expect("utf8");
        let resp = r.authenticate(tamper(&fin).as_bytes()).expect("answer");
        assert_eq!(resp.error_code, ErrorCode::SaslAuthenticationFailed.code());
        assert!(r.closed());
    }
    let mut r = Raw::connect(addr);
    assert_eq!(r.handshake("SCRAM-SHA-256").0, 0);
    let resp = r.authenticate(b"\xff\xfe garbage").expect("answer");
    assert_eq!(resp.error_code, ErrorCode::SaslAuthenticationFailed.code());
    // A frame far above sasl.server.max.receive.size before authentication: closed unread.
    let mut r = Raw::connect(addr);
    r.s.write_all(&(8_i32 << 20).to_be_bytes()).expect("write");
    assert!(r.closed());
    // The right credentials still work, and then requests pass.
    let mut r = Raw::connect(addr);
    assert_eq!(
        r.scram(ScramMechanism::Sha256, "carol", "carol-pw")
            .expect("ok")
            .error_code,
        0
    );
    assert!(r.metadata_ok());
    // After authentication a SaslAuthenticate outside re-authentication is ILLEGAL_SASL_STATE,
    // as Kafka's KafkaApis answers it.
    let resp = r.authenticate(b"").expect("answer");
    assert_eq!(resp.error_code, ErrorCode::IllegalSaslState.code());
    let log = node_log(&c, 1);
    assert!(log.contains("failed authentication"));
    assert!(log.contains("peer=127.0.0.1:"));
    assert!(!log.contains("not-it") && !log.contains("carol-pw"));
}

#[test]
fn a_slow_or_failing_handshake_delays_no_one() {
    let c = SaslCluster::start(1, &[("connection.failed.authentication.delay.ms", "3000")]);
    let addr = c.sasl_addr(1);
    // A client that fails and waits out the delay, and one that stalls mid-handshake.
    let mut failing = Raw::connect(addr);
    assert_eq!(failing.handshake("PLAIN").0, 0);
    let t = Instant::now();
    failing.send(
        2,
        RequestKind::SaslAuthenticate(SaslAuthenticateRequest {
            auth_bytes: bytes::Bytes::from_static(b"\0alice\0wrong"),
            ..Default::default()
        }),
    );
    let mut stalled = Raw::connect(addr);
    assert_eq!(stalled.handshake("SCRAM-SHA-256").0, 0);
    // Meanwhile another client authenticates at once.
    let mut ok = Raw::connect(addr);
    assert_eq!(ok.handshake("PLAIN").0, 0);
    let resp = ok.authenticate(b"\0alice\0alice-secret").expect("answer");
    assert_eq!(resp.error_code, 0);
    assert!(ok.metadata_ok());
    assert!(
        t.elapsed() < Duration::from_millis(2000),
        "{:?}",
        t.elapsed()
    );
    // The failing one is answered after its delay.
    let resp = failing.recv(ApiKey::SaslAuthenticate, 2).expect("answer");
    assert_eq!(resp_code(&resp), ErrorCode::SaslAuthenticationFailed.code());
    assert!(t.elapsed() >= Duration::from_millis(2900));
    drop(stalled);
}

/// A node's log without ANSI colour codes.
fn node_log(c: &SaslCluster, node_id: i32) -> String {
    node_log_at(&c.cluster.node(node_id).log_file())
}

fn resp_code(r: &ResponseKind) -> i16 {
    match r {
        ResponseKind::SaslAuthenticate(a) => a.error_code,
        other => panic!("{other:?}"),
    }
}

#[test]
fn reauthentication_kip_368() {
    let c = SaslCluster::start(
        1,
        &[(
            "listener.name.sasl_plaintext.connections.max.reauth.ms",
            "1500",
        )],
    );
    let admin = common::admin(&c.cluster.node(1).bootstrap());
    common::create_topic(&admin, c.cluster.node(1), "reauth", 1, &[]);
    let addr = c.sasl_addr(1);
    let mut r = Raw::connect(addr);
    assert_eq!(r.handshake("PLAIN").0, 0);
    let resp = r.authenticate(b"\0alice\0alice-secret").expect("answer");
    assert_eq!((resp.error_code, resp.session_lifetime_ms), (0, 1500));
    assert!(r.metadata_ok());
    // Re-authenticated in time: the session goes on.
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(r.handshake("PLAIN").0, 0);
    let resp = r.authenticate(b"\0alice\0alice-secret").expect("answer");
    assert_eq!((resp.error_code, resp.session_lifetime_ms), (0, 1500));
    std::thread::sleep(Duration::from_millis(1000));
    assert!(r.metadata_ok(), "within the renewed session");
    // Re-authentication as someone else fails.
    let mut r2 = Raw::connect(addr);
    assert_eq!(r2.handshake("PLAIN").0, 0);
    assert_eq!(
        r2.authenticate(b"\0alice\0alice-secret")
            .expect("ok")
            .error_code,
        0
    );
    assert_eq!(r2.handshake("PLAIN").0, 0);
    let resp = r2.authenticate(b"\0admin\0admin-secret").expect("answer");
    assert_eq!(resp.error_code, ErrorCode::SaslAuthenticationFailed.code());
    assert!(r2.closed());
    // Expired: the next request closes the connection.
    std::thread::sleep(Duration::from_millis(1000));
    r.send(12, RequestKind::Metadata(MetadataRequest::default()));
    assert!(r.closed(), "an expired session is closed");
    // librdkafka re-authenticates on its own and keeps producing across several lifetimes.
    let rt = common::runtime();
    let producer: FutureProducer =
        sasl_client(&c.sasl_bootstrap(1), "PLAIN", "alice", "alice-secret")
            .set("message.timeout.ms", "10000")
            .create()
            .expect("producer");
    let start = Instant::now();
    let mut sent = 0;
    while start.elapsed() < Duration::from_secs(5) {
        rt.block_on(producer.send(
            FutureRecord::to("reauth").key("k").payload("v"),
            Duration::from_secs(10),
        ))
        .unwrap_or_else(|(e, _)| panic!("produce {sent} failed: {e}"));
        sent += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = node_log(&c, 1);
    // One by the raw client above, the rest by librdkafka (a lifetime of 1.5 s over 5 s).
    let reauths = log.matches("re-authenticated").count();
    assert!(
        reauths >= 3,
        "librdkafka re-authenticated ({reauths} re-authentications)"
    );
}

#[test]
fn a_user_added_on_one_broker_authenticates_on_another() {
    let _one = common::one_cluster_at_a_time();
    let c = SaslCluster::start(3, &[]);
    let results = alter_scram(
        c.plaintext(1),
        vec![upsert("dora", ScramMechanism::Sha512, "dora-pw", 4096)],
        vec![],
    );
    assert_eq!(results, vec![("dora".into(), 0)]);
    let deadline = Deadline::after(Duration::from_secs(10));
    loop {
        let mut r = Raw::connect(c.sasl_addr(3));
        match r.scram(ScramMechanism::Sha512, "dora", "dora-pw") {
            Some(resp) if resp.error_code == 0 => {
                assert!(r.metadata_ok());
                break;
            }
            _ => deadline.check(|| "dora never authenticated on node 3".into()),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    round_trip_metadata(&c.sasl_bootstrap(2), "dora", "dora-pw");
    // Removed through node 2: refused on node 3 once its image has it.
    let results = alter_scram(
        c.plaintext(2),
        vec![],
        vec![ScramCredentialDeletion {
            name: "dora".into(),
            mechanism: ScramMechanism::Sha512.id(),
            ..Default::default()
        }],
    );
    assert_eq!(results, vec![("dora".into(), 0)]);
    let deadline = Deadline::after(Duration::from_secs(10));
    loop {
        let mut r = Raw::connect(c.sasl_addr(3));
        let (code, _) = r.handshake("SCRAM-SHA-512");
        assert_eq!(code, 0);
        let mut cl = ScramClient::new(ScramMechanism::Sha512, "dora", "dora-pw");
        let first = r
            .authenticate(&cl.initial_response().expect("first"))
            .expect("answer");
        if first.error_code == ErrorCode::SaslAuthenticationFailed.code() {
            break;
        }
        deadline.check(|| "dora still accepted on node 3".into());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// librdkafka fetches metadata over SCRAM-SHA-512 with these credentials.
fn round_trip_metadata(bootstrap: &str, user: &str, password: &str) {
    let consumer: BaseConsumer = sasl_client(bootstrap, "SCRAM-SHA-512", user, password)
        .create()
        .expect("consumer");
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata over SCRAM");
    assert_eq!(md.brokers().len(), 3);
}

const NODE_JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="node" password="node-pw" user_node="node-pw";"#;

/// Nodes whose controller and inter-broker listeners are SASL_PLAINTEXT with PLAIN (clients
/// keep a PLAINTEXT listener, which the harness probes).
fn internal_sasl_cluster() -> Cluster {
    let per_node = |p: &NodePorts| {
        let internal = common::free_port();
        vec![
            (
                "listeners".to_owned(),
                format!(
                    "PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{},INTERNAL://127.0.0.1:{internal}",
                    p.port, p.controller_port
                ),
            ),
            (
                "advertised.listeners".to_owned(),
                format!(
                    "PLAINTEXT://127.0.0.1:{},INTERNAL://127.0.0.1:{internal}",
                    p.port
                ),
            ),
        ]
    };
    Cluster::start_with(
        &["broker,controller"; 3],
        &[
            (
                "listener.security.protocol.map",
                "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_PLAINTEXT,INTERNAL:SASL_PLAINTEXT",
            ),
            ("inter.broker.listener.name", "INTERNAL"),
            ("sasl.enabled.mechanisms", "PLAIN"),
            ("sasl.mechanism.inter.broker.protocol", "PLAIN"),
            ("sasl.mechanism.controller.protocol", "PLAIN"),
            ("listener.name.internal.plain.sasl.jaas.config", NODE_JAAS),
            ("listener.name.controller.plain.sasl.jaas.config", NODE_JAAS),
        ],
        &per_node,
    )
}

#[test]
fn nodes_authenticate_to_each_other_and_replicate() {
    let _one = common::one_cluster_at_a_time();
    let mut c = internal_sasl_cluster();
    common::create_replicated_topic(&c.bootstrap(), "replicated", 1, 3);
    let rt = common::runtime();
    // acks=all needs every in-sync follower to have fetched over the SASL inter-broker listener.
    let producer: FutureProducer = common::client_config(&c.bootstrap(), &[("acks", "all")])
        .set("message.timeout.ms", "30000")
        .create()
        .expect("producer");
    for i in 0..20 {
        rt.block_on(
            producer.send(
                FutureRecord::to("replicated")
                    .key("k")
                    .payload(&format!("m{i}")),
                Duration::from_secs(30),
            ),
        )
        .unwrap_or_else(|(e, _)| panic!("produce {i}: {e}"));
    }
    let deadline = Deadline::after(Duration::from_secs(20));
    loop {
        if let Some(views) = common::partition_views(c.node(1), "replicated", 1) {
            if views[0].isr == vec![1, 2, 3] {
                break;
            }
        }
        deadline.check(|| "ISR never had all three replicas".into());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Node 3 restarted with a wrong password stays out, and says why.
    c.nodes[2].terminate();
    let file = c.nodes[2].dir.join("server.properties");
    let props = std::fs::read_to_string(&file).expect("props");
    std::fs::write(
        &file,
        props.replace(
            r#"password="node-pw" user_node"#,
            r#"password="wrong-pw" user_node"#,
        ),
    )
    .expect("rewrite");
    c.nodes[2].start();
    let deadline = Deadline::after(Duration::from_secs(20));
    loop {
        let log = node_log_at(&c.nodes[2].log_file());
        if log.contains("SASL PLAIN authentication as \"node\" refused") {
            assert!(!log.contains("wrong-pw"));
            break;
        }
        deadline.check(|| format!("node 3 never said why it is out:\n{log}"));
        std::thread::sleep(Duration::from_millis(200));
    }
    let others = node_log_at(&c.nodes[0].log_file()) + &node_log_at(&c.nodes[1].log_file());
    assert!(others.contains("failed authentication"));
    // The others never list node 3 as a live broker again.
    let md = common::metadata(c.node(1).addr(), None, Duration::from_secs(5)).expect("md");
    assert!(
        md.brokers.iter().all(|b| b.node_id != 3),
        "{:?}",
        md.brokers
    );
}

fn node_log_at(path: &std::path::Path) -> String {
    let raw = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(ch) = chars.next() {
        if ch == '\u{1b}' {
            for n in chars.by_ref() {
                if n.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(ch);
        }
    }
    out
}

#[test]
fn oauthbearer_unsecured_tokens() {
    let c = SaslCluster::start(1, &[("sasl.enabled.mechanisms", "PLAIN,OAUTHBEARER")]);
    let admin = common::admin(&c.cluster.node(1).bootstrap());
    common::create_topic(&admin, c.cluster.node(1), "oauth", 1, &[]);
    // librdkafka's own unsecured JWT (alg none, sub=carol, an hour's lifetime).
    let rt = common::runtime();
    let producer: FutureProducer = common::client_config(
        &c.sasl_bootstrap(1),
        &[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanisms", "OAUTHBEARER"),
            ("enable.sasl.oauthbearer.unsecure.jwt", "true"),
            ("sasl.oauthbearer.config", "principal=carol"),
            ("message.timeout.ms", "20000"),
        ],
    )
    .create()
    .expect("producer");
    rt.block_on(producer.send(
        FutureRecord::to("oauth").key("k").payload("bearer"),
        Duration::from_secs(20),
    ))
    .unwrap_or_else(|(e, _)| panic!("produce over OAUTHBEARER: {e}"));
    assert!(node_log(&c, 1).contains("principal=User:carol"));
    // An expired token and a signed one (where only unsecured are served): the RFC 7628 error
    // challenge, then SASL_AUTHENTICATION_FAILED and a close.
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    for token in [
        format!(
            "{}.{}.",
            b64(r#"{"alg":"none"}"#),
            b64(&format!(r#"{{"sub":"carol","exp":{}}}"#, now - 60))
        ),
        format!(
            "{}.{}.c2lnbmF0dXJl",
            b64(r#"{"alg":"RS256"}"#),
            b64(&format!(r#"{{"sub":"carol","exp":{}}}"#, now + 600))
        ),
    ] {
        let mut r = Raw::connect(c.sasl_addr(1));
        assert_eq!(r.handshake("OAUTHBEARER").0, 0);
        let challenge = r
            .authenticate(format!("n,,\u{1}auth=Bearer {token}\u{1}\u{1}").as_bytes())
            .expect("challenge");
        assert_eq!(challenge.error_code, 0);
        assert_eq!(&challenge.auth_bytes[..], br#"{"status":"invalid_token"}"#);
        let resp = r.authenticate(b"\x01").expect("answer");
        assert_eq!(resp.error_code, ErrorCode::SaslAuthenticationFailed.code());
        assert!(r.closed());
    }
}

/// A librdkafka client context that hands librdkafka a JWT signed in the test (librdkafka's own
/// unsecured builder cannot sign).
struct SignedJwt {
    token: String,
    principal: String,
    exp_ms: i64,
}

impl rdkafka::ClientContext for SignedJwt {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _config: Option<&str>,
    ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        Ok(rdkafka::client::OAuthToken {
            token: self.token.clone(),
            principal_name: self.principal.clone(),
            lifetime_ms: self.exp_ms,
        })
    }
}

impl rdkafka::consumer::ConsumerContext for SignedJwt {}

#[test]
fn oauthbearer_signed_tokens_against_a_jwks_file() {
    use rafka_security::sasl::oauthbearer::jwk::JwsAlgorithm;
    use rafka_security::sasl::oauthbearer::test_signer::TestSigner;
    use serde_json::json;

    let rsa = TestSigner::new(JwsAlgorithm::Rs256, Some("rsa-1"));
    let ec = TestSigner::new(JwsAlgorithm::Es256, Some("ec-1"));
    let stranger = TestSigner::new(JwsAlgorithm::Es256, Some("ec-1"));
    let dir = tempfile::tempdir().expect("tempdir");
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, TestSigner::jwks(&[&rsa, &ec])).expect("write jwks");
    let url = format!("file://{}", jwks.display());
    let c = SaslCluster::start(
        1,
        &[
            ("sasl.enabled.mechanisms", "PLAIN,OAUTHBEARER"),
            (
                "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class",
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
            ),
            ("sasl.oauthbearer.jwks.endpoint.url", &url),
            ("sasl.oauthbearer.expected.audience", "rafka"),
            ("sasl.oauthbearer.expected.issuer", "https://idp.test"),
        ],
    );
    let admin = common::admin(&c.cluster.node(1).bootstrap());
    common::create_topic(&admin, c.cluster.node(1), "signed", 1, &[]);

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let claims = |sub: &str, iat: i64, exp: i64, aud: &str, iss: &str| json!({"sub": sub, "iat": iat, "exp": exp, "aud": aud, "iss": iss, "scope": "kafka"});
    let context = |signer: &TestSigner, sub: &str| SignedJwt {
        token: signer.token(&claims(sub, now, now + 600, "rafka", "https://idp.test")),
        principal: sub.to_owned(),
        exp_ms: (now + 600) * 1000,
    };
    let settings = [
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanisms", "OAUTHBEARER"),
        ("message.timeout.ms", "20000"),
    ];
    // Produce with an RS256 token, consume with an ES256 one.
    let rt = common::runtime();
    let producer: FutureProducer<SignedJwt> =
        common::client_config(&c.sasl_bootstrap(1), &settings)
            .create_with_context(context(&rsa, "dave"))
            .expect("producer");
    rt.block_on(producer.send(
        FutureRecord::to("signed").key("k").payload("jwks"),
        Duration::from_secs(20),
    ))
    .unwrap_or_else(|(e, _)| panic!("produce with a signed JWT: {e}"));
    let consumer: BaseConsumer<SignedJwt> = common::client_config(
        &c.sasl_bootstrap(1),
        &[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanisms", "OAUTHBEARER"),
            ("group.id", "jwks-readers"),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
        ],
    )
    .create_with_context(context(&ec, "erin"))
    .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("signed", 0, Offset::Beginning)
        .expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let deadline = Deadline::after(Duration::from_secs(20));
    let payload = loop {
        assert!(!deadline.passed(), "nothing consumed with a signed JWT");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => break m.payload().map(<[u8]>::to_vec),
            Some(Err(e)) => panic!("consume with a signed JWT: {e}"),
            None => {}
        }
    };
    assert_eq!(payload.as_deref(), Some(&b"jwks"[..]));
    let log = node_log(&c, 1);
    assert!(log.contains("principal=User:dave"), "dave not logged in");
    assert!(log.contains("principal=User:erin"), "erin not logged in");

    // What a JWKS listener refuses: the RFC 7628 error challenge Kafka sends, then
    // SASL_AUTHENTICATION_FAILED and a closed connection.
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let good = claims("mallory", now, now + 600, "rafka", "https://idp.test");
    let unsecured = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","kid":"rsa-1"}"#),
        b64(&good.to_string())
    );
    for (token, why) in [
        (
            rsa.token(&claims(
                "m",
                now - 600,
                now - 60,
                "rafka",
                "https://idp.test",
            )),
            "expired",
        ),
        (
            rsa.token(&claims("m", now, now + 600, "other", "https://idp.test")),
            "audience",
        ),
        (
            ec.token(&claims("m", now, now + 600, "rafka", "https://evil.test")),
            "issuer",
        ),
        (stranger.token(&good), "signed by a key not in the set"),
        (
            TestSigner::new(JwsAlgorithm::Es256, Some("nope")).token(&good),
            "unknown kid",
        ),
        (unsecured, "alg none"),
        ("not.a.jwt".to_owned(), "malformed"),
    ] {
        let mut r = Raw::connect(c.sasl_addr(1));
        assert_eq!(r.handshake("OAUTHBEARER").0, 0, "{why}");
        let challenge = r
            .authenticate(format!("n,,\u{1}auth=Bearer {token}\u{1}\u{1}").as_bytes())
            .expect("challenge");
        assert_eq!(challenge.error_code, 0, "{why}");
        assert_eq!(
            &challenge.auth_bytes[..],
            br#"{"status":"invalid_token"}"#,
            "{why}"
        );
        let resp = r.authenticate(b"\x01").expect("answer");
        assert_eq!(
            resp.error_code,
            ErrorCode::SaslAuthenticationFailed.code(),
            "{why}"
        );
        assert!(r.closed(), "{why}");
    }
    assert!(!node_log(&c, 1).contains("principal=User:mallory"));
}
