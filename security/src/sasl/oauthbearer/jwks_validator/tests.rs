use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::super::jwks_endpoint::{JwksEndpoint, RefreshSettings};
use super::super::test_signer::TestSigner;
use super::super::{OAuthBearerServer, TokenValidator};
use super::*;
use crate::sasl::{SaslError, SaslServer, ServerStep};
use crate::tls::ssl_config::TruststoreSource;

const NOW_S: i64 = 1_800_000_000;
const NOW_MS: i64 = NOW_S * 1000;

fn claims() -> Value {
    json!({"sub": "alice", "iat": NOW_S - 10, "exp": NOW_S + 600, "aud": ["other", "rafka"],
           "iss": "https://issuer.test", "scope": "kafka read"})
}

fn rules() -> ClaimRules {
    ClaimRules {
        expected_audience: vec!["rafka".into()],
        expected_issuer: Some("https://issuer.test".into()),
        ..Default::default()
    }
}

fn file_jwks(dir: &Path, document: &str) -> Arc<RefreshingJwks> {
    let path = dir.join("jwks.json");
    std::fs::write(&path, document).expect("write jwks");
    let url = format!("file://{}", path.display());
    RefreshingJwks::start(
        JwksEndpoint::parse(&url, None).expect("url"),
        RefreshSettings::default(),
    )
    .expect("jwks")
}

fn validator(signers: &[&TestSigner], rules: ClaimRules) -> (tempfile::TempDir, JwksValidator) {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = file_jwks(dir.path(), &TestSigner::jwks(signers));
    (dir, JwksValidator::new(keys, rules))
}

#[test]
fn every_algorithm_verifies_by_kid() {
    use JwsAlgorithm as A;
    let signers: Vec<TestSigner> = [
        A::Rs256,
        A::Rs384,
        A::Rs512,
        A::Ps256,
        A::Ps384,
        A::Ps512,
        A::Es256,
        A::Es384,
        A::EdDsa,
    ]
    .into_iter()
    .map(|a| TestSigner::new(a, Some(a.name())))
    .collect();
    let refs: Vec<&TestSigner> = signers.iter().collect();
    let (_dir, v) = validator(&refs, rules());
    for s in &signers {
        let (principal, exp) = v.validate(&s.token(&claims()), NOW_MS).expect(s.alg.name());
        assert_eq!((principal.as_str(), exp), ("alice", (NOW_S + 600) * 1000));
        // The same key under another algorithm of its family: the key's kid exists, but a
        // different alg in the header makes the signature (made for s.alg) fail.
        let mut header = json!({"alg": "RS256", "kid": s.kid});
        if s.alg == A::Rs256 {
            header["alg"] = json!("PS256");
        }
        assert!(v
            .validate(&s.sign_with_header(&header, &claims()), NOW_MS)
            .is_err());
    }
    // A token signed by one key but naming another's kid.
    let forged = signers[0].sign_with_header(&json!({"alg": "RS256", "kid": "ES256"}), &claims());
    assert!(v.validate(&forged, NOW_MS).is_err());
}

#[test]
fn a_key_without_kid_when_the_set_has_one_key() {
    let one = TestSigner::new(JwsAlgorithm::Es256, None);
    let (_dir, v) = validator(&[&one], rules());
    assert!(v.validate(&one.token(&claims()), NOW_MS).is_ok());
    // A header kid that the (kid-less) key does not have.
    let named = one.sign_with_header(&json!({"alg": "ES256", "kid": "x"}), &claims());
    assert!(v.validate(&named, NOW_MS).is_err());
    // Two keys: a header without kid is refused (which key?).
    let two = TestSigner::new(JwsAlgorithm::Es256, None);
    let (_dir2, v2) = validator(&[&one, &two], rules());
    assert!(v2.validate(&one.token(&claims()), NOW_MS).is_err());
}

#[test]
fn claims_as_kafka_checks_them() {
    let s = TestSigner::new(JwsAlgorithm::Rs256, Some("k1"));
    let (_dir, v) = validator(&[&s], rules());
    let with = |patch: Value| {
        let mut c = claims();
        for (k, val) in patch.as_object().expect("object") {
            if val.is_null() {
                c.as_object_mut().expect("object").remove(k);
            } else {
                c[k] = val.clone();
            }
        }
        v.validate(&s.token(&c), NOW_MS)
    };
    // Within the default 30 s clock skew.
    assert!(with(json!({"exp": NOW_S - 20})).is_ok());
    assert!(with(json!({"iat": NOW_S + 20, "nbf": NOW_S + 20})).is_ok());
    assert!(with(json!({"aud": "rafka", "scope": ["a", "b"]})).is_ok());
    assert!(with(json!({"exp": (NOW_S + 600) as f64 + 0.5})).is_ok());
    for (patch, why) in [
        (json!({"exp": NOW_S - 31}), "expired"),
        (json!({"exp": null}), "no exp"),
        (json!({"exp": "tomorrow"}), "exp not a number"),
        (json!({"iat": null}), "no iat"),
        (json!({"iat": NOW_S + 60}), "issued in the future"),
        (json!({"nbf": NOW_S + 60}), "not before"),
        (json!({"aud": "else"}), "audience"),
        (json!({"aud": null}), "no audience"),
        (json!({"aud": ["x", "y"]}), "audience list"),
        (json!({"iss": "https://evil.test"}), "issuer"),
        (json!({"iss": null}), "no issuer"),
        (json!({"sub": null}), "no sub"),
        (json!({"sub": "  "}), "blank sub"),
        (json!({"sub": 7}), "sub not a string"),
        (json!({"scope": 7}), "scope not a string"),
        (
            json!({"exp": 1e300}),
            "absurd exp is fine but iat check still runs",
        ),
    ] {
        if why.starts_with("absurd") {
            assert!(with(patch).is_ok(), "{why}");
            continue;
        }
        assert!(with(patch).is_err(), "{why}");
    }
    // No expected audience/issuer: neither claim is needed. Other claim names and skew.
    let loose = ClaimRules {
        clock_skew_seconds: 0,
        sub_claim_name: "client_id".into(),
        scope_claim_name: "scp".into(),
        ..Default::default()
    };
    let (_dir2, v2) = validator(&[&s], loose);
    let c = json!({"client_id": "svc", "iat": NOW_S, "exp": NOW_S + 1, "scp": 3});
    assert!(
        v2.validate(&s.token(&c), NOW_MS).is_err(),
        "scp not a string"
    );
    let c = json!({"client_id": "svc", "iat": NOW_S, "exp": NOW_S + 1});
    assert_eq!(v2.validate(&s.token(&c), NOW_MS).expect("ok").0, "svc");
    let c = json!({"client_id": "svc", "iat": NOW_S, "exp": NOW_S});
    assert!(v2.validate(&s.token(&c), NOW_MS).is_err(), "no skew");
}

#[test]
fn forged_and_malformed_tokens() {
    let s = TestSigner::new(JwsAlgorithm::Rs256, Some("k1"));
    let (_dir, v) = validator(&[&s], rules());
    let good = s.token(&claims());
    let parts: Vec<&str> = good.split('.').collect();
    let b64 = |v: &str| B64URL.encode(v);
    // alg none with an empty signature, and with the real signature attached.
    let none_header = b64(r#"{"alg":"none","kid":"k1"}"#);
    for t in [
        format!("{none_header}.{}.", parts[1]),
        format!("{none_header}.{}.{}", parts[1], parts[2]),
        // HS256 with the public key's bytes as the secret: the classic confusion.
        format!(
            "{}.{}.{}",
            b64(r#"{"alg":"HS256","kid":"k1"}"#),
            parts[1],
            parts[2]
        ),
    ] {
        assert!(v.validate(&t, NOW_MS).is_err(), "{t}");
    }
    // Claims changed after signing.
    let tampered = b64(&claims().to_string().replace("alice", "admin"));
    assert!(v
        .validate(&format!("{}.{tampered}.{}", parts[0], parts[2]), NOW_MS)
        .is_err());
    // A flipped signature bit.
    let mut sig = B64URL.decode(parts[2]).expect("sig");
    sig[7] ^= 1;
    let flipped = format!("{}.{}.{}", parts[0], parts[1], B64URL.encode(&sig));
    assert!(v.validate(&flipped, NOW_MS).is_err());
    // Unknown kid, crit, kid not a string, header not JSON, payload not JSON (signed), shapes.
    let other = TestSigner::new(JwsAlgorithm::Rs256, Some("k2"));
    let header_crit = json!({"alg": "RS256", "kid": "k1", "crit": ["exp"]});
    let header_kid_num = json!({"alg": "RS256", "kid": 1});
    let not_json = {
        let input = format!("{}.{}", parts[0], b64("not json"));
        format!("{input}.{}", B64URL.encode(s.sign_bytes(input.as_bytes())))
    };
    for t in [
        other.token(&claims()),
        s.sign_with_header(&header_crit, &claims()),
        s.sign_with_header(&header_kid_num, &claims()),
        format!("{}.{}.{}", b64("{"), parts[1], parts[2]),
        not_json,
        format!("{}.{}", parts[0], parts[1]),
        format!("{good}.x"),
        format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
        format!("{}.{}.!!", parts[0], parts[1]),
        format!("{}!.{}.{}", parts[0], parts[1], parts[2]),
        String::new(),
        "..".into(),
    ] {
        assert!(v.validate(&t, NOW_MS).is_err(), "{t}");
    }
}

fn sasl_message(token: &str) -> Vec<u8> {
    format!("n,,\u{1}auth=Bearer {token}\u{1}\u{1}").into_bytes()
}

#[test]
fn the_sasl_exchange_answers_kafkas_error_json() {
    let s = TestSigner::new(JwsAlgorithm::Es256, Some("k"));
    let (_dir, v) = validator(&[&s], ClaimRules::default());
    let v = Arc::new(TokenValidator::Jwks(v));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let c = json!({"sub": "bob", "iat": now, "exp": now + 60});
    let step = OAuthBearerServer::new(v.clone())
        .evaluate(&sasl_message(&s.token(&c)))
        .expect("ok");
    assert!(
        matches!(step, ServerStep::Complete { ref authorization_id, credential_expiry_ms: Some(e), .. }
            if authorization_id == "bob" && e == (now + 60) * 1000),
        "{step:?}"
    );
    let expired = json!({"sub": "bob", "iat": now - 120, "exp": now - 60});
    let mut server = OAuthBearerServer::new(v.clone());
    assert_eq!(
        server.evaluate(&sasl_message(&s.token(&expired))),
        Ok(ServerStep::Challenge(
            br#"{"status":"invalid_token"}"#.to_vec()
        ))
    );
    assert!(matches!(
        server.evaluate(b"\x01"),
        Err(SaslError::AuthenticationFailed(_))
    ));
    // A huge token: the message bound refuses it before any parsing.
    let huge = "a".repeat(70 * 1024);
    assert!(matches!(
        OAuthBearerServer::new(v).evaluate(&sasl_message(&huge)),
        Err(SaslError::Malformed { .. })
    ));
}

/// Serves `documents()` over HTTP (TLS when `tls` is set), one answer per connection, on a
/// thread that stops after `max` connections or when the test ends (the listener is dropped).
fn serve(
    tls: Option<Arc<rustls::ServerConfig>>,
    documents: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
    max: usize,
) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(max) {
            let Ok(mut tcp) = conn else { continue };
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
            hits.fetch_add(1, Ordering::SeqCst);
            let body = documents.lock().expect("lock").clone();
            // Chunked, to exercise the client's decoding.
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: \
                 chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                body.len()
            );
            let mut request = [0u8; 4096];
            match &tls {
                Some(config) => {
                    let conn = rustls::ServerConnection::new(config.clone()).expect("conn");
                    let mut stream = rustls::StreamOwned::new(conn, tcp);
                    let _ = stream.read(&mut request);
                    let _ = stream.write_all(answer.as_bytes());
                    stream.conn.send_close_notify();
                    let _ = stream.flush();
                }
                None => {
                    let _ = tcp.read(&mut request);
                    let _ = tcp.write_all(answer.as_bytes());
                }
            }
        }
    });
    port
}

#[test]
fn http_endpoint_refreshes_on_an_unknown_kid() {
    let old = TestSigner::new(JwsAlgorithm::Es256, Some("old"));
    let new = TestSigner::new(JwsAlgorithm::Rs256, Some("new"));
    let document = Arc::new(Mutex::new(TestSigner::jwks(&[&old])));
    let hits = Arc::new(AtomicUsize::new(0));
    let port = serve(None, document.clone(), hits.clone(), 20);
    let url = format!("http://127.0.0.1:{port}/jwks");
    let keys = RefreshingJwks::start(
        JwksEndpoint::parse(&url, None).expect("url"),
        RefreshSettings::default(),
    )
    .expect("first retrieval");
    let v = JwksValidator::new(keys, rules());
    assert!(v.validate(&old.token(&claims()), NOW_MS).is_ok());
    // The issuer rotates: the new kid is unknown until the (expedited) refresh.
    *document.lock().expect("lock") = TestSigner::jwks(&[&new]);
    let token = new.token(&claims());
    assert!(v.validate(&token, NOW_MS).is_err());
    let deadline = Instant::now() + Duration::from_secs(10);
    while v.validate(&token, NOW_MS).is_err() {
        assert!(Instant::now() < deadline, "no refresh after an unknown kid");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The rotated-out kid is unknown now (it expedites one more refresh; let it finish).
    assert!(v.validate(&old.token(&claims()), NOW_MS).is_err());
    std::thread::sleep(Duration::from_millis(300));
    // Unknown kids do not hammer the endpoint: each expedites one refresh a minute.
    let before = hits.load(Ordering::SeqCst);
    let stranger = TestSigner::new(JwsAlgorithm::Es256, Some("stranger"));
    for _ in 0..50 {
        assert!(v.validate(&stranger.token(&claims()), NOW_MS).is_err());
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(hits.load(Ordering::SeqCst) <= before + 1);
}

#[test]
fn https_endpoint_with_a_truststore_from_the_jaas_options() {
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.clone().self_signed(&ca_key).expect("ca");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".into()])
        .expect("params")
        .signed_by(&key, &ca, &ca_key)
        .expect("cert");
    let server =
        rustls::ServerConfig::builder_with_provider(Arc::new(crate::tls::ssl_config::provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .expect("server config");
    let s = TestSigner::new(JwsAlgorithm::Ps256, Some("p"));
    let document = Arc::new(Mutex::new(TestSigner::jwks(&[&s])));
    let port = serve(
        Some(Arc::new(server)),
        document,
        Arc::new(AtomicUsize::new(0)),
        2,
    );
    let url = format!("https://127.0.0.1:{port}/.well-known/jwks.json");
    let trust = TruststoreSource::Inline(ca.pem());
    let keys = RefreshingJwks::start(
        JwksEndpoint::parse(&url, Some(&trust)).expect("url"),
        RefreshSettings::default(),
    )
    .expect("https retrieval");
    let v = JwksValidator::new(keys, rules());
    assert_eq!(
        v.validate(&s.token(&claims()), NOW_MS).expect("ok").0,
        "alice"
    );
    // A server whose certificate is not trusted: the retrieval fails (quickly: no retries).
    let other_ca_key = rcgen::KeyPair::generate().expect("key");
    let other_ca = ca_params.self_signed(&other_ca_key).expect("ca");
    let distrust = TruststoreSource::Inline(other_ca.pem());
    let quick = RefreshSettings {
        retry_backoff_max: Duration::ZERO,
        ..Default::default()
    };
    assert!(RefreshingJwks::start(
        JwksEndpoint::parse(&url, Some(&distrust)).expect("url"),
        quick
    )
    .is_err());
}

#[test]
fn endpoint_failures_stop_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let quick = RefreshSettings {
        retry_backoff: Duration::from_millis(5),
        retry_backoff_max: Duration::from_millis(20),
        ..Default::default()
    };
    let missing = format!("file://{}/none.json", dir.path().display());
    assert!(
        RefreshingJwks::start(JwksEndpoint::parse(&missing, None).expect("url"), quick).is_err()
    );
    let big = dir.path().join("big.json");
    std::fs::write(
        &big,
        vec![b' '; super::super::jwks_endpoint::MAX_DOCUMENT + 1],
    )
    .expect("write");
    let url = format!("file:{}", big.display());
    assert!(RefreshingJwks::start(JwksEndpoint::parse(&url, None).expect("url"), quick).is_err());
    // Nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!("http://127.0.0.1:{port}/");
    let started = Instant::now();
    assert!(RefreshingJwks::start(JwksEndpoint::parse(&url, None).expect("url"), quick).is_err());
    assert!(started.elapsed() < Duration::from_secs(5));
    // A server that accepts and never answers: bounded by the request timeout.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/", silent.local_addr().expect("addr"));
    let zero = RefreshSettings {
        retry_backoff_max: Duration::ZERO,
        request_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let started = Instant::now();
    assert!(RefreshingJwks::start(JwksEndpoint::parse(&url, None).expect("url"), zero).is_err());
    assert!(started.elapsed() < Duration::from_secs(3));
}
