//! [`SaslServerAuthenticator`]: the SASL state of one connection on a SASL_* listener (Kafka's
//! `SaslServerAuthenticator`), as a state machine over decoded requests.
//!
//! The network layer that owns the connection (the broker's client listeners, the controller and
//! learner listeners) asks [`SaslServerAuthenticator::on_request`] about every request before its
//! handler sees it, and does what the [`Decision`] says. Before authentication only ApiVersions
//! (passed on), SaslHandshake and SaslAuthenticate (answered here) are served; anything else
//! closes the connection, as Kafka does (`IllegalSaslStateException`). A failed authentication is
//! answered SASL_AUTHENTICATION_FAILED after `connection.failed.authentication.delay.ms`, then the
//! connection closes. KIP-368: with `connections.max.reauth.ms` (or a credential that expires) the
//! session has a lifetime, told to the client in SaslAuthenticate v1+; the client re-authenticates
//! on the same connection with SaslHandshake + SaslAuthenticate (same principal required), and a
//! connection whose session expired that sends anything else is closed.
//!
//! SaslHandshake v0 is Kafka's oldest form: the tokens that follow are raw size-prefixed bytes,
//! not Kafka requests; [`SaslServerAuthenticator::expects_raw_token`] says when the next frame is
//! one, and [`SaslServerAuthenticator::on_raw_token`] answers it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use rafka_protocol::messages::{
    RequestKind, ResponseKind, SaslAuthenticateResponse, SaslHandshakeResponse,
};
use rafka_protocol::{ErrorCode, RequestFrame, ResponseFrame};

use super::oauthbearer::{OAuthBearerServer, TokenValidator};
use super::plain::{PlainServer, PlainUsers};
use super::scram::{ScramCredentialStore, ScramMechanism, ScramServer};
use super::{SaslError, SaslMechanism, SaslServer, ServerStep};
use crate::KafkaPrincipal;

/// One SASL listener's settings (Kafka's keys, resolved per listener and mechanism).
#[derive(Clone)]
pub struct SaslServerConfig {
    /// `sasl.enabled.mechanisms`, in the order the handshake lists them.
    pub enabled_mechanisms: Vec<SaslMechanism>,
    /// PLAIN's users (`user_<name>` of the listener's PLAIN JAAS configuration).
    pub plain_users: Arc<PlainUsers>,
    /// SCRAM credentials (the metadata image); `None` refuses every SCRAM user.
    pub scram_credentials: Option<Arc<dyn ScramCredentialStore>>,
    /// `connections.max.reauth.ms` per mechanism; 0 (Kafka's default): sessions never expire.
    pub max_reauth_ms: BTreeMap<SaslMechanism, i64>,
    /// `connection.failed.authentication.delay.ms`.
    pub failed_authentication_delay: Duration,
    /// `sasl.server.max.receive.size`: the largest request before authentication.
    pub max_receive_size: usize,
    /// OAUTHBEARER's token validator (unsecured or JWKS); `None` refuses OAUTHBEARER.
    pub oauthbearer: Option<Arc<TokenValidator>>,
}

impl std::fmt::Debug for SaslServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslServerConfig")
            .field("enabled_mechanisms", &self.enabled_mechanisms)
            .field("plain_users", &self.plain_users)
            .field("max_reauth_ms", &self.max_reauth_ms)
            .field(
                "failed_authentication_delay",
                &self.failed_authentication_delay,
            )
            .finish_non_exhaustive()
    }
}

impl SaslServerConfig {
    fn server(&self, mechanism: SaslMechanism) -> Option<Box<dyn SaslServer>> {
        match mechanism {
            SaslMechanism::Plain => Some(Box::new(PlainServer::new(self.plain_users.clone()))),
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                let store = self.scram_credentials.clone()?;
                Some(Box::new(ScramServer::new(
                    ScramMechanism::of(mechanism)?,
                    store,
                )))
            }
            SaslMechanism::OAuthBearer => {
                Some(Box::new(OAuthBearerServer::new(self.oauthbearer.clone()?)))
            }
        }
    }
}

/// What the connection does with a request.
#[derive(Debug)]
pub enum Decision {
    /// Hand the request to the listener's handler as usual.
    Forward,
    /// Send this frame (size prefix included) and read the next request.
    Respond(Bytes),
    /// Authentication failed: wait `delay`, send `response` (if any), close. `reason` is for the
    /// log line (it names no secret).
    Fail {
        response: Option<Bytes>,
        delay: Duration,
        reason: String,
    },
    /// Close at once, answering nothing (a request out of the SASL sequence).
    Close { reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for ApiVersions or SaslHandshake.
    Handshake,
    /// Handshake done; SaslAuthenticate tokens (or raw tokens after a v0 handshake).
    Authenticate { raw: bool },
    /// Authenticated; requests pass.
    Authenticated,
}

/// The SASL state of one connection.
pub struct SaslServerAuthenticator {
    config: Arc<SaslServerConfig>,
    phase: Phase,
    mechanism: Option<SaslMechanism>,
    server: Option<Box<dyn SaslServer>>,
    principal: Option<KafkaPrincipal>,
    /// When the current session ends (KIP-368), if it does.
    session_expiry: Option<Instant>,
    /// The version of the SaslAuthenticate being answered.
    authenticate_version: i16,
    /// Completed authentications on this connection (the first, then each re-authentication).
    authentications: u64,
}

impl SaslServerAuthenticator {
    pub fn new(config: Arc<SaslServerConfig>) -> SaslServerAuthenticator {
        SaslServerAuthenticator {
            config,
            phase: Phase::Handshake,
            mechanism: None,
            server: None,
            principal: None,
            session_expiry: None,
            authenticate_version: 0,
            authentications: 0,
        }
    }

    /// How many times this connection has authenticated (1 after the first authentication, one
    /// more for each KIP-368 re-authentication).
    pub fn authentications(&self) -> u64 {
        self.authentications
    }

    /// The authenticated principal, once there is one (it stays through a re-authentication).
    pub fn principal(&self) -> Option<&KafkaPrincipal> {
        self.principal.as_ref()
    }

    pub fn mechanism(&self) -> Option<SaslMechanism> {
        self.mechanism
    }

    /// Whether the next frame is a raw SASL token (after a SaslHandshake v0), not a request.
    pub fn expects_raw_token(&self) -> bool {
        self.phase == (Phase::Authenticate { raw: true })
    }

    /// Decides what happens to `req`.
    pub fn on_request(&mut self, req: &RequestFrame, now: Instant) -> Decision {
        let correlation_id = req.header.correlation_id;
        let version = req.header.request_api_version;
        match (self.phase, &req.body) {
            (Phase::Handshake, RequestKind::ApiVersions(_)) if self.principal.is_none() => {
                Decision::Forward
            }
            (Phase::Handshake, RequestKind::SaslHandshake(h)) => {
                self.handshake(correlation_id, version, &h.mechanism)
            }
            (Phase::Authenticate { raw: false }, RequestKind::SaslAuthenticate(a)) => {
                self.authenticate_version = version;
                let token = a.auth_bytes.clone();
                self.token(correlation_id, &token, now)
            }
            (Phase::Authenticated, RequestKind::SaslHandshake(h)) => {
                // KIP-368 re-authentication: the same mechanism, then the same principal.
                if Some(h.mechanism.as_str()) != self.mechanism.map(SaslMechanism::name) {
                    return self.fail(
                        handshake_response(
                            correlation_id,
                            version,
                            ErrorCode::IllegalSaslState,
                            &self.config.enabled_mechanisms,
                        ),
                        "re-authentication must use the mechanism of the first authentication"
                            .into(),
                    );
                }
                self.handshake(correlation_id, version, &h.mechanism)
            }
            (Phase::Authenticated, _) => match self.session_expiry {
                Some(expiry) if now >= expiry => Decision::Close {
                    reason: format!(
                        "the session of {} expired and the client did not re-authenticate",
                        self.principal_name()
                    ),
                },
                _ => Decision::Forward,
            },
            (phase, body) => Decision::Close {
                reason: format!(
                    "unexpected {} request in SASL state {phase:?}",
                    body.api_key()
                ),
            },
        }
    }

    /// Answers a raw token (after a SaslHandshake v0): the answer is a raw size-prefixed token.
    pub fn on_raw_token(&mut self, token: &[u8], now: Instant) -> Decision {
        if !self.expects_raw_token() {
            return Decision::Close {
                reason: "a raw SASL token outside the v0 exchange".into(),
            };
        }
        self.token(0, token, now)
    }

    fn principal_name(&self) -> String {
        self.principal
            .as_ref()
            .map_or_else(|| "?".into(), ToString::to_string)
    }

    fn handshake(&mut self, correlation_id: i32, version: i16, name: &str) -> Decision {
        let enabled = &self.config.enabled_mechanisms;
        let server = SaslMechanism::parse(name)
            .filter(|m| enabled.contains(m))
            .and_then(|m| Some((m, self.config.server(m)?)));
        let Some((mechanism, server)) = server else {
            return self.fail(
                handshake_response(
                    correlation_id,
                    version,
                    ErrorCode::UnsupportedSaslMechanism,
                    enabled,
                ),
                format!(
                    "unsupported SASL mechanism {:?} (enabled: {})",
                    name.chars().take(64).collect::<String>(),
                    names(enabled)
                ),
            );
        };
        self.mechanism = Some(mechanism);
        self.server = Some(server);
        self.phase = Phase::Authenticate { raw: version == 0 };
        Decision::Respond(handshake_response(
            correlation_id,
            version,
            ErrorCode::None,
            enabled,
        ))
    }

    fn token(&mut self, correlation_id: i32, token: &[u8], now: Instant) -> Decision {
        let raw = self.expects_raw_token();
        let Some(server) = self.server.as_mut() else {
            return Decision::Close {
                reason: "SaslAuthenticate without a mechanism".into(),
            };
        };
        match server.evaluate(token) {
            Ok(ServerStep::Challenge(bytes)) => Decision::Respond(self.answer(
                raw,
                correlation_id,
                ErrorCode::None,
                None,
                &bytes,
                0,
            )),
            Ok(ServerStep::Complete {
                token,
                authorization_id,
                credential_expiry_ms,
            }) => {
                let principal = KafkaPrincipal::user(authorization_id);
                if let Some(previous) = &self.principal {
                    if *previous != principal {
                        let reason = format!(
                            "re-authentication as {principal} on a connection of {previous}"
                        );
                        let response = self.answer(
                            raw,
                            correlation_id,
                            ErrorCode::SaslAuthenticationFailed,
                            Some("Cannot change principals during re-authentication"),
                            &[],
                            0,
                        );
                        return self.fail(response, reason);
                    }
                }
                let lifetime = self.session_lifetime_ms(credential_expiry_ms);
                self.session_expiry =
                    (lifetime > 0).then(|| now + Duration::from_millis(lifetime as u64));
                self.principal = Some(principal);
                self.authentications += 1;
                self.server = None;
                self.phase = Phase::Authenticated;
                Decision::Respond(self.answer(
                    raw,
                    correlation_id,
                    ErrorCode::None,
                    None,
                    &token,
                    lifetime,
                ))
            }
            Err(e) => {
                let mechanism = self.mechanism.map_or("?", SaslMechanism::name);
                // Kafka's messages: the exception's own for a refused credential, a generic one
                // for a malformed exchange.
                let message = match &e {
                    SaslError::AuthenticationFailed(_) => format!(
                        "Authentication failed during authentication due to invalid \
                         credentials with SASL mechanism {mechanism}"
                    ),
                    _ => format!(
                        "Authentication failed during authentication due to a malformed \
                         message with SASL mechanism {mechanism}"
                    ),
                };
                let response = if raw {
                    // The v0 exchange has no error frame: the connection just closes.
                    None
                } else {
                    Some(self.answer(
                        false,
                        correlation_id,
                        ErrorCode::SaslAuthenticationFailed,
                        Some(&message),
                        &[],
                        0,
                    ))
                };
                Decision::Fail {
                    response,
                    delay: self.config.failed_authentication_delay,
                    reason: format!("{mechanism}: {e}"),
                }
            }
        }
    }

    /// KIP-368: the smaller of `connections.max.reauth.ms` and the time until the credential
    /// expires; 0 when neither applies.
    fn session_lifetime_ms(&self, credential_expiry_ms: Option<i64>) -> i64 {
        let max = self
            .mechanism
            .and_then(|m| self.config.max_reauth_ms.get(&m).copied())
            .unwrap_or(0)
            .max(0);
        let until_expiry = credential_expiry_ms.map(|exp| {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            (exp - now).max(1)
        });
        match (max, until_expiry) {
            (0, None) => 0,
            (0, Some(e)) => e,
            (m, None) => m,
            (m, Some(e)) => m.min(e),
        }
    }

    fn fail(&mut self, response: Bytes, reason: String) -> Decision {
        Decision::Fail {
            response: Some(response),
            delay: self.config.failed_authentication_delay,
            reason,
        }
    }

    fn answer(
        &self,
        raw: bool,
        correlation_id: i32,
        error: ErrorCode,
        message: Option<&str>,
        token: &[u8],
        session_lifetime_ms: i64,
    ) -> Bytes {
        if raw {
            let mut b = BytesMut::with_capacity(4 + token.len());
            b.put_i32(token.len() as i32);
            b.put_slice(token);
            return b.freeze();
        }
        let version = self.authenticate_version;
        encode(
            correlation_id,
            version,
            ResponseKind::SaslAuthenticate(SaslAuthenticateResponse {
                error_code: error.code(),
                error_message: message.map(str::to_owned),
                auth_bytes: Bytes::copy_from_slice(token),
                session_lifetime_ms: if version >= 1 { session_lifetime_ms } else { 0 },
                ..Default::default()
            }),
        )
    }
}

fn names(ms: &[SaslMechanism]) -> String {
    ms.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
}

fn handshake_response(
    correlation_id: i32,
    version: i16,
    error: ErrorCode,
    enabled: &[SaslMechanism],
) -> Bytes {
    encode(
        correlation_id,
        version,
        ResponseKind::SaslHandshake(SaslHandshakeResponse {
            error_code: error.code(),
            mechanisms: enabled.iter().map(|m| m.name().to_owned()).collect(),
        }),
    )
}

fn encode(correlation_id: i32, api_version: i16, body: ResponseKind) -> Bytes {
    match (ResponseFrame {
        correlation_id,
        api_version,
        body,
    })
    .encode()
    {
        Ok(b) => b.freeze(),
        // Our own small bodies at a version the request was decoded at: cannot fail.
        Err(e) => panic!("invariant: a SASL response encodes: {e}"),
    }
}

#[cfg(test)]
mod tests;
