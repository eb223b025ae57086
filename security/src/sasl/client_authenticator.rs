//! The client side of SASL on a Kafka connection: what [`crate::transport::connect`] does on a
//! SASL_* listener of another node before handing the stream to its caller — SaslHandshake v1
//! with the mechanism, then SaslAuthenticate v2 tokens until the mechanism completes (and, for
//! SCRAM, the server's signature verifies). A refusal is an error that names the mechanism, the
//! user and Kafka's error, never the password.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use rafka_protocol::messages::{
    RequestHeader, RequestKind, ResponseKind, SaslAuthenticateRequest, SaslHandshakeRequest,
};
use rafka_protocol::{ApiKey, ErrorCode, RequestFrame, ResponseFrame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::plain::PlainClient;
use super::scram::{ScramClient, ScramMechanism};
use super::{SaslClient, SaslMechanism};

/// The most rounds an exchange may take (SCRAM needs two).
const MAX_ROUNDS: usize = 8;
/// The largest SASL response accepted.
const MAX_RESPONSE: usize = 64 * 1024;
/// How long the whole exchange may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The credentials a node presents on another node's SASL listener. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslClientConfig {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for SaslClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslClientConfig")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl SaslClientConfig {
    fn client(&self) -> io::Result<Box<dyn SaslClient>> {
        Ok(match self.mechanism {
            SaslMechanism::Plain => Box::new(PlainClient::new(&self.username, &self.password)),
            m => match ScramMechanism::of(m) {
                Some(s) => Box::new(ScramClient::new(s, &self.username, &self.password)),
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        format!("SASL mechanism {m} is not supported for inter-node connections"),
                    ))
                }
            },
        })
    }
}

/// Authenticates `stream` with `config` (first, or again on the same connection: KIP-368); the
/// stream is ready for Kafka requests afterwards. Returns the session's lifetime when the server
/// gave it one (`connections.max.reauth.ms`, or a credential's expiry): past it the server closes
/// the connection on its next request unless the client has authenticated again.
pub async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    config: &SaslClientConfig,
) -> io::Result<Option<Duration>> {
    match tokio::time::timeout(TIMEOUT, exchange(stream, config)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("SASL {} authentication timed out", config.mechanism),
        )),
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    config: &SaslClientConfig,
) -> io::Result<Option<Duration>> {
    let refused = |what: String| {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "SASL {} authentication as {:?} refused: {what}",
                config.mechanism, config.username
            ),
        )
    };
    let mut correlation_id = 0;
    let handshake = call(
        stream,
        &mut correlation_id,
        1,
        RequestKind::SaslHandshake(SaslHandshakeRequest {
            mechanism: config.mechanism.name().to_owned(),
        }),
    )
    .await?;
    let ResponseKind::SaslHandshake(h) = handshake else {
        return Err(io::Error::other("unexpected answer to SaslHandshake"));
    };
    if h.error_code != 0 {
        return Err(refused(format!(
            "{} (the listener enables {})",
            error_name(h.error_code),
            h.mechanisms.join(", ")
        )));
    }
    let mut client = config.client()?;
    let mut token = client
        .initial_response()
        .map_err(|e| io::Error::other(e.to_string()))?;
    for _ in 0..MAX_ROUNDS {
        let answer = call(
            stream,
            &mut correlation_id,
            2,
            RequestKind::SaslAuthenticate(SaslAuthenticateRequest {
                auth_bytes: Bytes::from(token),
                ..Default::default()
            }),
        )
        .await?;
        let ResponseKind::SaslAuthenticate(a) = answer else {
            return Err(io::Error::other("unexpected answer to SaslAuthenticate"));
        };
        if a.error_code != 0 {
            return Err(refused(format!(
                "{}{}",
                error_name(a.error_code),
                a.error_message
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            )));
        }
        match client
            .evaluate(&a.auth_bytes)
            .map_err(|e| refused(e.to_string()))?
        {
            Some(next) => token = next,
            None if client.is_complete() => {
                return Ok(session_lifetime(a.session_lifetime_ms));
            }
            None => return Err(refused("the exchange ended early".into())),
        }
    }
    Err(refused("too many rounds".into()))
}

/// The session lifetime a server announced (`session_lifetime_ms`, KIP-368): none for zero
/// (no limit) and for a negative value, which no server sends (Kafka's clients treat anything
/// not positive as no limit).
fn session_lifetime(ms: i64) -> Option<Duration> {
    u64::try_from(ms)
        .ok()
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis)
}

fn error_name(code: i16) -> String {
    ErrorCode::from_code(code).map_or_else(|| format!("error {code}"), |e| e.name().to_owned())
}

async fn call<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    correlation_id: &mut i32,
    version: i16,
    body: RequestKind,
) -> io::Result<ResponseKind> {
    *correlation_id += 1;
    let api: ApiKey = body.api_key();
    let frame = RequestFrame {
        header: RequestHeader {
            request_api_key: api.key(),
            request_api_version: version,
            correlation_id: *correlation_id,
            client_id: Some("rafka-node".into()),
            ..Default::default()
        },
        body,
    }
    .encode()
    .map_err(|e| io::Error::other(e.to_string()))?;
    stream.write_all(&frame).await?;
    let len = stream.read_i32().await?;
    let len = usize::try_from(len)
        .ok()
        .filter(|l| *l <= MAX_RESPONSE)
        .ok_or_else(|| io::Error::other(format!("SASL response size {len}")))?;
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).await?;
    let r = ResponseFrame::decode(api, version, &Bytes::from(buf))
        .map_err(|e| io::Error::other(e.to_string()))?;
    if r.correlation_id != *correlation_id {
        return Err(io::Error::other(
            "SASL response with the wrong correlation id",
        ));
    }
    Ok(r.body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::authenticator::{Decision, SaslServerAuthenticator, SaslServerConfig};

    #[test]
    fn a_session_lifetime_of_any_value_a_server_sends_is_read_without_panicking() {
        for ms in [i64::MIN, -1, 0] {
            assert_eq!(session_lifetime(ms), None, "{ms}");
        }
        assert_eq!(session_lifetime(1), Some(Duration::from_millis(1)));
        assert_eq!(
            session_lifetime(i64::MAX),
            Some(Duration::from_millis(i64::MAX as u64))
        );
    }
    use crate::sasl::jaas::JaasConfig;
    use crate::sasl::plain::PlainUsers;
    use std::sync::Arc;

    /// A server task that runs the authenticator over a duplex pipe.
    async fn serve(mut s: tokio::io::DuplexStream, config: Arc<SaslServerConfig>) -> bool {
        let mut auth = SaslServerAuthenticator::new(config);
        loop {
            let Ok(len) = s.read_i32().await else {
                return false;
            };
            let mut buf = vec![0u8; len as usize];
            if s.read_exact(&mut buf).await.is_err() {
                return false;
            }
            let req = RequestFrame::decode(&Bytes::from(buf)).expect("decodes");
            match auth.on_request(&req, std::time::Instant::now()) {
                Decision::Respond(b) => {
                    s.write_all(&b).await.expect("write");
                    if auth.principal().is_some() {
                        return true;
                    }
                }
                Decision::Fail { response, .. } => {
                    if let Some(b) = response {
                        s.write_all(&b).await.expect("write");
                    }
                    return false;
                }
                _ => return false,
            }
        }
    }

    #[tokio::test]
    async fn authenticates_against_the_server_authenticator() {
        let jaas = JaasConfig::parse(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_n1="pw";"#,
        )
        .expect("jaas");
        let config = Arc::new(SaslServerConfig {
            enabled_mechanisms: vec![SaslMechanism::Plain],
            plain_users: Arc::new(PlainUsers::from_jaas(&jaas)),
            scram_credentials: None,
            max_reauth_ms: Default::default(),
            failed_authentication_delay: Duration::ZERO,
            max_receive_size: 1 << 20,
            oauthbearer: None,
        });
        for (password, ok) in [("pw", true), ("nope", false)] {
            let (mut a, b) = tokio::io::duplex(4096);
            let server = tokio::spawn(serve(b, config.clone()));
            let r = authenticate(
                &mut a,
                &SaslClientConfig {
                    mechanism: SaslMechanism::Plain,
                    username: "n1".into(),
                    password: password.into(),
                },
            )
            .await;
            assert_eq!(r.is_ok(), ok, "{r:?}");
            if let Err(e) = r {
                assert!(e.to_string().contains("SASL_AUTHENTICATION_FAILED"), "{e}");
                assert!(!e.to_string().contains("nope"));
            }
            assert_eq!(server.await.expect("server"), ok);
        }
        // A mechanism the listener does not enable.
        let (mut a, b) = tokio::io::duplex(4096);
        tokio::spawn(serve(b, config));
        let e = authenticate(
            &mut a,
            &SaslClientConfig {
                mechanism: SaslMechanism::ScramSha256,
                username: "n1".into(),
                password: "pw".into(),
            },
        )
        .await
        .expect_err("refused");
        assert!(e.to_string().contains("UNSUPPORTED_SASL_MECHANISM"), "{e}");
    }
}
