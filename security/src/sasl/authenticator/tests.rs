use super::*;
use crate::sasl::jaas::JaasConfig;
use crate::sasl::scram::{ScramClient, ScramCredential, ScramMechanism};
use crate::sasl::SaslClient;
use rafka_protocol::messages::{
    ApiVersionsRequest, MetadataRequest, RequestHeader, SaslAuthenticateRequest,
    SaslHandshakeRequest,
};
use rafka_protocol::ApiKey;

struct OneUser(ScramCredential);
impl ScramCredentialStore for OneUser {
    fn credential(&self, user: &str, m: ScramMechanism) -> Option<ScramCredential> {
        (user == "alice" && m == ScramMechanism::Sha256).then(|| self.0.clone())
    }
}

fn config(reauth_ms: i64) -> Arc<SaslServerConfig> {
    let jaas = JaasConfig::parse(
        r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="secret" user_bob="pw";"#,
    )
    .expect("jaas");
    Arc::new(SaslServerConfig {
        enabled_mechanisms: vec![SaslMechanism::Plain, SaslMechanism::ScramSha256],
        plain_users: Arc::new(PlainUsers::from_jaas(&jaas)),
        scram_credentials: Some(Arc::new(OneUser(ScramCredential::from_password(
            ScramMechanism::Sha256,
            "secret",
            4096,
        )))),
        max_reauth_ms: [(SaslMechanism::Plain, reauth_ms)].into_iter().collect(),
        failed_authentication_delay: Duration::from_millis(100),
        max_receive_size: 524_288,
        oauthbearer: None,
    })
}

fn frame(key: ApiKey, version: i16, body: RequestKind) -> RequestFrame {
    RequestFrame {
        header: RequestHeader {
            request_api_key: key.key(),
            request_api_version: version,
            correlation_id: 7,
            client_id: Some("t".into()),
            ..Default::default()
        },
        body,
    }
}

fn handshake(mechanism: &str) -> RequestFrame {
    frame(
        ApiKey::SaslHandshake,
        1,
        RequestKind::SaslHandshake(SaslHandshakeRequest {
            mechanism: mechanism.into(),
            ..Default::default()
        }),
    )
}

fn authenticate(token: &[u8]) -> RequestFrame {
    frame(
        ApiKey::SaslAuthenticate,
        2,
        RequestKind::SaslAuthenticate(SaslAuthenticateRequest {
            auth_bytes: Bytes::copy_from_slice(token),
            ..Default::default()
        }),
    )
}

fn metadata() -> RequestFrame {
    frame(
        ApiKey::Metadata,
        12,
        RequestKind::Metadata(MetadataRequest::default()),
    )
}

fn respond(d: Decision) -> SaslAuthenticateResponse {
    let Decision::Respond(b) = d else {
        panic!("expected a response, got {d:?}")
    };
    let f = ResponseFrame::decode(ApiKey::SaslAuthenticate, 2, &b.slice(4..)).expect("decodes");
    let ResponseKind::SaslAuthenticate(r) = f.body else {
        panic!()
    };
    r
}

#[test]
fn plain_then_requests_pass() {
    let now = Instant::now();
    let mut a = SaslServerAuthenticator::new(config(0));
    let api_versions = frame(
        ApiKey::ApiVersions,
        3,
        RequestKind::ApiVersions(ApiVersionsRequest::default()),
    );
    assert!(matches!(
        a.on_request(&api_versions, now),
        Decision::Forward
    ));
    assert!(matches!(
        a.on_request(&handshake("PLAIN"), now),
        Decision::Respond(_)
    ));
    let r = respond(a.on_request(&authenticate(b"\0alice\0secret"), now));
    assert_eq!(r.error_code, 0);
    assert_eq!(r.session_lifetime_ms, 0);
    assert_eq!(a.principal(), Some(&KafkaPrincipal::user("alice")));
    assert!(matches!(a.on_request(&metadata(), now), Decision::Forward));
}

#[test]
fn out_of_sequence_requests_close() {
    let now = Instant::now();
    // Anything but ApiVersions/handshake before authentication.
    let mut a = SaslServerAuthenticator::new(config(0));
    assert!(matches!(
        a.on_request(&metadata(), now),
        Decision::Close { .. }
    ));
    // SaslAuthenticate before the handshake.
    let mut a = SaslServerAuthenticator::new(config(0));
    assert!(matches!(
        a.on_request(&authenticate(b"\0alice\0secret"), now),
        Decision::Close { .. }
    ));
    // A second handshake, or another request, between handshake and authenticate.
    let mut a = SaslServerAuthenticator::new(config(0));
    a.on_request(&handshake("PLAIN"), now);
    assert!(matches!(
        a.on_request(&metadata(), now),
        Decision::Close { .. }
    ));
}

#[test]
fn disabled_mechanism_lists_the_enabled_ones() {
    let mut a = SaslServerAuthenticator::new(config(0));
    let Decision::Fail {
        response: Some(b),
        delay,
        ..
    } = a.on_request(&handshake("SCRAM-SHA-512"), Instant::now())
    else {
        panic!("expected a failure")
    };
    assert_eq!(delay, Duration::from_millis(100));
    let f = ResponseFrame::decode(ApiKey::SaslHandshake, 1, &b.slice(4..)).expect("decodes");
    let ResponseKind::SaslHandshake(r) = f.body else {
        panic!()
    };
    assert_eq!(r.error_code, ErrorCode::UnsupportedSaslMechanism.code());
    assert_eq!(r.mechanisms, vec!["PLAIN", "SCRAM-SHA-256"]);
}

#[test]
fn wrong_password_fails_with_the_delay_and_no_secret() {
    let mut a = SaslServerAuthenticator::new(config(0));
    a.on_request(&handshake("PLAIN"), Instant::now());
    let Decision::Fail {
        response: Some(b),
        reason,
        ..
    } = a.on_request(&authenticate(b"\0alice\0hunter2"), Instant::now())
    else {
        panic!()
    };
    assert!(!reason.contains("hunter2"));
    let f = ResponseFrame::decode(ApiKey::SaslAuthenticate, 2, &b.slice(4..)).expect("decodes");
    let ResponseKind::SaslAuthenticate(r) = f.body else {
        panic!()
    };
    assert_eq!(r.error_code, ErrorCode::SaslAuthenticationFailed.code());
    assert!(a.principal().is_none());
}

#[test]
fn scram_through_the_authenticator() {
    let now = Instant::now();
    let mut a = SaslServerAuthenticator::new(config(0));
    a.on_request(&handshake("SCRAM-SHA-256"), now);
    let mut c = ScramClient::new(ScramMechanism::Sha256, "alice", "secret");
    let r = respond(a.on_request(&authenticate(&c.initial_response().expect("first")), now));
    let fin = c.evaluate(&r.auth_bytes).expect("ok").expect("final");
    let r = respond(a.on_request(&authenticate(&fin), now));
    assert_eq!(r.error_code, 0);
    assert_eq!(c.evaluate(&r.auth_bytes).expect("verifies"), None);
    assert_eq!(a.principal(), Some(&KafkaPrincipal::user("alice")));
}

#[test]
fn reauthentication_and_session_expiry() {
    let t0 = Instant::now();
    let mut a = SaslServerAuthenticator::new(config(1000));
    a.on_request(&handshake("PLAIN"), t0);
    let r = respond(a.on_request(&authenticate(b"\0alice\0secret"), t0));
    assert_eq!(r.session_lifetime_ms, 1000);
    assert!(matches!(a.on_request(&metadata(), t0), Decision::Forward));
    // Re-authenticated before expiry: a new session.
    let t1 = t0 + Duration::from_millis(900);
    assert!(matches!(
        a.on_request(&handshake("PLAIN"), t1),
        Decision::Respond(_)
    ));
    let r = respond(a.on_request(&authenticate(b"\0alice\0secret"), t1));
    assert_eq!((r.error_code, r.session_lifetime_ms), (0, 1000));
    assert!(matches!(
        a.on_request(&metadata(), t1 + Duration::from_millis(500)),
        Decision::Forward
    ));
    // Expired: anything but a handshake closes.
    assert!(matches!(
        a.on_request(&metadata(), t1 + Duration::from_millis(1000)),
        Decision::Close { .. }
    ));
    // Another principal on re-authentication fails; so does another mechanism.
    assert!(matches!(
        a.on_request(&handshake("PLAIN"), t1),
        Decision::Respond(_)
    ));
    assert!(matches!(
        a.on_request(&authenticate(b"\0bob\0pw"), t1),
        Decision::Fail { .. }
    ));
    let mut a = SaslServerAuthenticator::new(config(1000));
    a.on_request(&handshake("PLAIN"), t0);
    a.on_request(&authenticate(b"\0alice\0secret"), t0);
    assert!(matches!(
        a.on_request(&handshake("SCRAM-SHA-256"), t1),
        Decision::Fail { .. }
    ));
}

#[test]
fn v0_handshake_takes_raw_tokens() {
    let now = Instant::now();
    let mut a = SaslServerAuthenticator::new(config(0));
    let mut h = handshake("PLAIN");
    h.header.request_api_version = 0;
    assert!(matches!(a.on_request(&h, now), Decision::Respond(_)));
    assert!(a.expects_raw_token());
    let Decision::Respond(b) = a.on_raw_token(b"\0alice\0secret", now) else {
        panic!()
    };
    assert_eq!(&b[..], &[0, 0, 0, 0]);
    assert!(!a.expects_raw_token());
    assert_eq!(a.principal(), Some(&KafkaPrincipal::user("alice")));
}
