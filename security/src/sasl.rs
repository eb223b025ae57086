//! SASL mechanisms: the server and client sides of PLAIN and SCRAM-SHA-256/512 as
//! pure state machines (bytes in, bytes out), and the JAAS configuration they read.
//!
//! A [`SaslServer`] is fed each token a client sends (the `auth_bytes` of SaslAuthenticate) and
//! answers with the next challenge or with the outcome; a [`SaslClient`] does the reverse for
//! this node's own connections to other nodes. Neither knows of sockets, Kafka frames or the
//! metadata log: credentials come in through [`plain::PlainUsers`], the
//! and the [`scram::ScramCredentialStore`] the broker implements over its metadata image. The per-connection state machine of Kafka's
//! `SaslServerAuthenticator` (handshake, then tokens, failure delay, re-authentication) lives in
//! the network layer that owns the connection.
//!
//! Errors never carry a password, a salted password or a token: only what went wrong.

pub mod authenticator;
pub mod client_authenticator;
pub mod jaas;
pub mod oauthbearer;
pub mod plain;
pub mod scram;

use std::fmt;

/// The SASL mechanisms rafka implements (Kafka's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
    OAuthBearer,
}

impl SaslMechanism {
    pub const ALL: [SaslMechanism; 4] = [
        SaslMechanism::Plain,
        SaslMechanism::ScramSha256,
        SaslMechanism::ScramSha512,
        SaslMechanism::OAuthBearer,
    ];

    /// The mechanism's IANA name, as in `sasl.enabled.mechanisms` and SaslHandshake. Mechanism
    /// names are case-sensitive in Kafka (`SaslHandshake` compares them exactly).
    pub fn parse(name: &str) -> Option<SaslMechanism> {
        SaslMechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a server answers to one client token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerStep {
    /// Send these bytes to the client and wait for its next token.
    Challenge(Vec<u8>),
    /// The client is authenticated: send `token` (possibly empty) as the last server message.
    Complete {
        token: Vec<u8>,
        /// The authenticated user (the principal's name).
        authorization_id: String,
        /// When the credential itself stops being valid (a JWT's `exp`), in milliseconds since
        /// the Unix epoch; KIP-368 caps the session there.
        credential_expiry_ms: Option<i64>,
    },
}

/// Why an exchange failed. The message names what went wrong and never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// Well-formed, but the credentials do not check out (unknown user, wrong password, bad
    /// proof, invalid token).
    #[error("authentication failed: {0}")]
    AuthenticationFailed(String),
    /// A message that is not what the mechanism allows at this step.
    #[error("malformed {mechanism} message: {reason}")]
    Malformed {
        mechanism: SaslMechanism,
        reason: String,
    },
    /// A token after the exchange ended.
    #[error("{0} exchange already complete")]
    AlreadyComplete(SaslMechanism),
}

impl SaslError {
    pub(crate) fn malformed(mechanism: SaslMechanism, reason: impl Into<String>) -> SaslError {
        SaslError::Malformed {
            mechanism,
            reason: reason.into(),
        }
    }
}

/// The server side of one mechanism's exchange on one connection.
pub trait SaslServer: Send + Sync {
    fn mechanism(&self) -> SaslMechanism;
    /// Evaluates the client's next token.
    fn evaluate(&mut self, token: &[u8]) -> Result<ServerStep, SaslError>;
}

/// The client side of one mechanism's exchange.
pub trait SaslClient: Send {
    fn mechanism(&self) -> SaslMechanism;
    /// The first token, sent before any challenge.
    fn initial_response(&mut self) -> Result<Vec<u8>, SaslError>;
    /// Evaluates the server's next message; `Ok(None)` when the client has nothing more to send
    /// (the server's last message verified).
    fn evaluate(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>, SaslError>;
    /// Whether the exchange completed and the server proved itself (where the mechanism can).
    fn is_complete(&self) -> bool;
}

/// Fills `n` bytes from the system's secure random source.
pub(crate) fn random_bytes(n: usize) -> Vec<u8> {
    use ring::rand::SecureRandom;
    let mut v = vec![0u8; n];
    // SystemRandom reads getrandom(2); it fails only if the kernel has no entropy source at all,
    // in which case nothing secure can be done.
    ring::rand::SystemRandom::new()
        .fill(&mut v)
        .expect("invariant: the system's secure random source works");
    v
}

/// Constant-time equality (for passwords and keys: no early exit that leaks a prefix length).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
