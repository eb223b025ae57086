//! SASL handshake rate (`cargo bench --bench sasl`): the release `rafka` binary as a process on
//! loopback (started by `benches/e2e/support.rs`) with a SASL_PLAINTEXT and a SASL_SSL listener.
//! One iteration is one new client connection that authenticates completely: TCP connect (on
//! SASL_SSL then a TLS handshake), SaslHandshake v1, SaslAuthenticate v2 rounds until the
//! mechanism completes (for SCRAM, the server's signature is verified), one ApiVersions on the
//! authenticated connection, close. Throughput in connections, one client at a time.
//!
//! - `handshake/PLAIN`: one round.
//! - `handshake/SCRAM-SHA-256`, `handshake/SCRAM-SHA-512` (4096 iterations, the minimum Kafka
//!   allows): two rounds. The client derives its salted password once per user and reuses it,
//!   as a pool of reconnecting clients can, so what is measured is the broker's side of the
//!   exchange plus the connection, not the client's PBKDF2 (which costs a real client about as
//!   much again per connection).
//! - `handshake/SASL_SSL/SCRAM-SHA-512/full`: the same SCRAM-SHA-512 exchange inside a full
//!   TLS 1.3 handshake (rustls client, session resumption off: what a new client process does;
//!   certificate verified against the test CA) — the rate of new TLS+SCRAM connections.
//! - `handshake/SASL_SSL/SCRAM-SHA-512/resumed`: the same with TLS session resumption (the
//!   server's ticket), as a client that reconnects does.
//!
//! After each group the broker's CPU time per handshake is printed.

#[path = "../tests/common/certs.rs"]
mod certs;
#[path = "e2e/support.rs"]
#[allow(dead_code)]
mod support;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use criterion::{Criterion, Throughput};
use rafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
use rafka_protocol::messages::{
    AlterUserScramCredentialsRequest, ApiVersionsRequest, RequestHeader, RequestKind, ResponseKind,
    SaslAuthenticateRequest, SaslHandshakeRequest,
};
use rafka_protocol::{ApiKey, RequestFrame, ResponseFrame};
use rafka_security::sasl::scram::ScramMechanism;
use ring::{digest, hmac};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;
use support::Broker;

const ITERATIONS: i32 = 4096;

/// One client connection: plain TCP, or TLS over it (`rustls::StreamOwned`, whose handshake
/// runs on the first write and read).
struct Conn<S = TcpStream> {
    s: S,
    correlation_id: i32,
}

fn tcp(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s
}

impl Conn {
    fn connect(addr: &str) -> Conn {
        Conn {
            s: tcp(addr),
            correlation_id: 0,
        }
    }
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

impl Conn<TlsStream> {
    fn connect_tls(addr: &str, config: &Arc<rustls::ClientConfig>) -> Conn<TlsStream> {
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("server name");
        let tls = rustls::ClientConnection::new(config.clone(), name).expect("TLS client");
        Conn {
            s: rustls::StreamOwned::new(tls, tcp(addr)),
            correlation_id: 0,
        }
    }
}

impl<S: Read + Write> Conn<S> {
    fn call(&mut self, version: i16, body: RequestKind) -> ResponseKind {
        self.correlation_id += 1;
        let api: ApiKey = body.api_key();
        let frame = RequestFrame {
            header: RequestHeader {
                request_api_key: api.key(),
                request_api_version: version,
                correlation_id: self.correlation_id,
                client_id: Some("sasl-bench".into()),
                ..Default::default()
            },
            body,
        }
        .encode()
        .expect("encode");
        self.s.write_all(&frame).expect("write");
        let mut len = [0u8; 4];
        self.s.read_exact(&mut len).expect("response size");
        let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
        self.s.read_exact(&mut buf).expect("response");
        ResponseFrame::decode(api, version, &Bytes::from(buf))
            .expect("decode")
            .body
    }

    fn authenticate(&mut self, token: Vec<u8>) -> Vec<u8> {
        match self.call(
            2,
            RequestKind::SaslAuthenticate(SaslAuthenticateRequest {
                auth_bytes: token.into(),
                ..Default::default()
            }),
        ) {
            ResponseKind::SaslAuthenticate(r) => {
                assert_eq!(r.error_code, 0, "{:?}", r.error_message);
                r.auth_bytes.to_vec()
            }
            other => panic!("{other:?}"),
        }
    }

    fn handshake(&mut self, mechanism: &str) {
        match self.call(
            1,
            RequestKind::SaslHandshake(SaslHandshakeRequest {
                mechanism: mechanism.into(),
                ..Default::default()
            }),
        ) {
            ResponseKind::SaslHandshake(r) => assert_eq!(r.error_code, 0),
            other => panic!("{other:?}"),
        }
    }

    fn api_versions(&mut self) {
        assert!(matches!(
            self.call(3, RequestKind::ApiVersions(ApiVersionsRequest::default())),
            ResponseKind::ApiVersions(_)
        ));
    }
}

/// A SCRAM client that knows its salted password already (RFC 5802's client side, with the
/// PBKDF2 result cached).
struct CachedScram {
    m: ScramMechanism,
    user: String,
    salted: Vec<u8>,
}

impl CachedScram {
    fn hmac(&self, key: &[u8], data: &[u8]) -> Vec<u8> {
        let alg = match self.m {
            ScramMechanism::Sha256 => hmac::HMAC_SHA256,
            ScramMechanism::Sha512 => hmac::HMAC_SHA512,
        };
        hmac::sign(&hmac::Key::new(alg, key), data)
            .as_ref()
            .to_vec()
    }

    /// The client side of one exchange; `nonce` must differ between connections.
    fn exchange<S: Read + Write>(&self, c: &mut Conn<S>, nonce: u64) {
        c.handshake(self.m.sasl().name());
        let nonce = format!("{:x}", nonce.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let bare = format!("n={},r={nonce}", self.user);
        let server_first =
            String::from_utf8(c.authenticate(format!("n,,{bare}").into_bytes())).expect("utf8");
        let full_nonce = server_first
            .split(',')
            .next()
            .and_then(|r| r.strip_prefix("r="))
            .expect("nonce");
        let without_proof = format!("c=biws,r={full_nonce}");
        let auth = format!("{bare},{server_first},{without_proof}");
        let client_key = self.hmac(&self.salted, b"Client Key");
        let alg = match self.m {
            ScramMechanism::Sha256 => &digest::SHA256,
            ScramMechanism::Sha512 => &digest::SHA512,
        };
        let stored = digest::digest(alg, &client_key);
        let sig = self.hmac(stored.as_ref(), auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        let server_final =
            c.authenticate(format!("{without_proof},p={}", B64.encode(proof)).into_bytes());
        let server_key = self.hmac(&self.salted, b"Server Key");
        let expected = format!("v={}", B64.encode(self.hmac(&server_key, auth.as_bytes())));
        assert_eq!(server_final, expected.into_bytes(), "server signature");
    }
}

fn main() {
    let scratch = std::env::current_dir()
        .expect("cwd")
        .join("target")
        .join("tmp");
    std::fs::create_dir_all(&scratch).expect("target/tmp");
    let dir = tempfile::Builder::new()
        .prefix("sasl-bench")
        .tempdir_in(&scratch)
        .expect("scratch dir");
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port()
    };
    let (sasl_port, sasl_ssl_port) = (free_port(), free_port());
    let ca = certs::Ca::new(dir.path(), "bench CA", "ca.pem");
    let server = ca.server(dir.path(), "server", "localhost");
    let broker = Broker::start_with(
        dir.path(),
        &format!(
            "listeners=PLAINTEXT://127.0.0.1:{{port}},CONTROLLER://127.0.0.1:{{controller_port}},SASL_PLAINTEXT://127.0.0.1:{sasl_port},SASL_SSL://127.0.0.1:{sasl_ssl_port}\n\
             advertised.listeners=PLAINTEXT://127.0.0.1:{{port}},SASL_PLAINTEXT://127.0.0.1:{sasl_port},SASL_SSL://127.0.0.1:{sasl_ssl_port}\n\
             listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL\n\
             sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512\n\
             listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_bench=\"bench-pw\";\n\
             listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512\n\
             listener.name.sasl_ssl.ssl.keystore.type=PEM\n\
             listener.name.sasl_ssl.ssl.keystore.location={}",
            server.keystore.display()
        ),
    );
    let sasl = format!("127.0.0.1:{sasl_port}");
    let sasl_ssl = format!("127.0.0.1:{sasl_ssl_port}");
    let ca_path = ca.pem_path.display().to_string();
    let tls = rafka_security::tls::TlsClient::new(
        &rafka_security::tls::SslConfig::from_keys("BENCH", |k| match k {
            "ssl.truststore.type" => Some("PEM".into()),
            "ssl.truststore.location" => Some(ca_path.clone()),
            _ => None,
        })
        .expect("client TLS config"),
    )
    .expect("TLS client");
    // SCRAM users, over the PLAINTEXT listener.
    let salt = b"bench-salt".to_vec();
    let mut users = Vec::new();
    let mut upsertions = Vec::new();
    for m in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
        let salted = m.salted_password(b"bench-pw", &salt, ITERATIONS as u32);
        upsertions.push(ScramCredentialUpsertion {
            name: "bench".into(),
            mechanism: m.id(),
            iterations: ITERATIONS,
            salt: salt.clone().into(),
            salted_password: salted.clone().into(),
            ..Default::default()
        });
        users.push(CachedScram {
            m,
            user: "bench".into(),
            salted,
        });
    }
    let mut admin = Conn::connect(&broker.bootstrap());
    match admin.call(
        0,
        RequestKind::AlterUserScramCredentials(AlterUserScramCredentialsRequest {
            upsertions,
            ..Default::default()
        }),
    ) {
        ResponseKind::AlterUserScramCredentials(r) => {
            assert!(r.results.iter().all(|x| x.error_code == 0), "{r:?}")
        }
        other => panic!("{other:?}"),
    }
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("handshake");
    g.throughput(Throughput::Elements(1));
    let report = |name: &str, before: Duration, n: u64| {
        let cpu = broker.cpu().saturating_sub(before);
        if n > 0 {
            eprintln!(
                "sasl: {name}: broker CPU {:.1} µs per handshake over {n}",
                cpu.as_secs_f64() * 1e6 / n as f64
            );
        }
    };
    let mut count = 0u64;
    let before = broker.cpu();
    g.bench_function("PLAIN", |b| {
        b.iter(|| {
            let mut conn = Conn::connect(&sasl);
            conn.handshake("PLAIN");
            conn.authenticate(b"\0bench\0bench-pw".to_vec());
            conn.api_versions();
            count += 1;
        })
    });
    report("PLAIN", before, count);
    let mut nonce = 0u64;
    for u in &users {
        let name = u.m.sasl().name();
        let mut count = 0u64;
        let before = broker.cpu();
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut conn = Conn::connect(&sasl);
                nonce += 1;
                u.exchange(&mut conn, nonce);
                conn.api_versions();
                count += 1;
            })
        });
        report(name, before, count);
    }
    let sha512 = users
        .iter()
        .find(|u| u.m == ScramMechanism::Sha512)
        .expect("a SCRAM-SHA-512 user");
    for (kind, client) in [
        ("full", tls.with_resumption(false)),
        ("resumed", tls.with_resumption(true)),
    ] {
        let name = format!("SASL_SSL/SCRAM-SHA-512/{kind}");
        let config = client.client_config().clone();
        let mut count = 0u64;
        let before = broker.cpu();
        g.bench_function(&name, |b| {
            b.iter(|| {
                let mut conn = Conn::connect_tls(&sasl_ssl, &config);
                nonce += 1;
                sha512.exchange(&mut conn, nonce);
                conn.api_versions();
                conn.s.conn.send_close_notify();
                let _ = conn.s.flush();
                count += 1;
            })
        });
        report(&name, before, count);
    }
    g.finish();
    c.final_summary();
}
