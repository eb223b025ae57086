//! SASL handshake rate (`cargo bench --bench sasl`): the release `rafka` binary as a process on
//! loopback (started by `benches/e2e/support.rs`) with a SASL_PLAINTEXT listener. One iteration
//! is one new client connection that authenticates completely: TCP connect, SaslHandshake v1,
//! SaslAuthenticate v2 rounds until the mechanism completes (for SCRAM, the server's signature is
//! verified), one ApiVersions on the authenticated connection, close. Throughput in connections.
//!
//! - `handshake/PLAIN`: one round.
//! - `handshake/SCRAM-SHA-256`, `handshake/SCRAM-SHA-512` (4096 iterations, the minimum Kafka
//!   allows): two rounds. The client derives its salted password once per user and reuses it,
//!   as a pool of reconnecting clients can, so what is measured is the broker's side of the
//!   exchange plus the connection, not the client's PBKDF2 (which costs a real client about as
//!   much again per connection).
//!
//! After each group the broker's CPU time per handshake is printed.

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
use std::time::Duration;
use support::Broker;

const ITERATIONS: i32 = 4096;

struct Conn {
    s: TcpStream,
    correlation_id: i32,
}

impl Conn {
    fn connect(addr: &str) -> Conn {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).expect("nodelay");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Conn {
            s,
            correlation_id: 0,
        }
    }

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

    fn exchange(&self, c: &mut Conn) {
        c.handshake(self.m.sasl().name());
        let nonce = format!("{:x}", c.s.local_addr().expect("addr").port() as u64 * 7919);
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
    let sasl_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let broker = Broker::start_with(
        dir.path(),
        &format!(
            "listeners=PLAINTEXT://127.0.0.1:{{port}},CONTROLLER://127.0.0.1:{{controller_port}},SASL_PLAINTEXT://127.0.0.1:{sasl_port}\n\
             advertised.listeners=PLAINTEXT://127.0.0.1:{{port}},SASL_PLAINTEXT://127.0.0.1:{sasl_port}\n\
             listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT\n\
             sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512\n\
             listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_bench=\"bench-pw\";"
        ),
    );
    let sasl = format!("127.0.0.1:{sasl_port}");
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
    for u in &users {
        let name = u.m.sasl().name();
        let mut count = 0u64;
        let before = broker.cpu();
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut conn = Conn::connect(&sasl);
                u.exchange(&mut conn);
                conn.api_versions();
                count += 1;
            })
        });
        report(name, before, count);
    }
    g.finish();
    c.final_summary();
}
