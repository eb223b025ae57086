//! SASL/PLAIN (RFC 4616): the server checks `authzid NUL authcid NUL passwd` against the users
//! of the listener's JAAS configuration (`user_<name>="<password>"`, as Kafka's
//! `PlainLoginModule` and `PlainServerCallbackHandler`); the client sends its one message.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::jaas::JaasConfig;
use super::{ct_eq, SaslClient, SaslError, SaslMechanism, SaslServer, ServerStep};

const M: SaslMechanism = SaslMechanism::Plain;

/// The users PLAIN accepts: name → password. `Debug` shows names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PlainUsers {
    users: BTreeMap<String, String>,
}

impl std::fmt::Debug for PlainUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.users.keys()).finish()
    }
}

impl PlainUsers {
    /// The `user_<name>` options of a JAAS configuration.
    pub fn from_jaas(jaas: &JaasConfig) -> PlainUsers {
        PlainUsers {
            users: jaas
                .options
                .iter()
                .filter_map(|(k, v)| {
                    let name = k.strip_prefix("user_")?;
                    (!name.is_empty()).then(|| (name.to_owned(), v.clone()))
                })
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether `password` is `user`'s. Compared in constant time; an unknown user costs the
    /// same comparison against an empty secret.
    pub fn authenticate(&self, user: &str, password: &str) -> bool {
        match self.users.get(user) {
            Some(expected) => ct_eq(expected.as_bytes(), password.as_bytes()),
            None => {
                let _ = ct_eq(password.as_bytes(), password.as_bytes());
                false
            }
        }
    }
}

/// The server side of one PLAIN exchange.
pub struct PlainServer {
    users: Arc<PlainUsers>,
    complete: bool,
}

impl PlainServer {
    pub fn new(users: Arc<PlainUsers>) -> PlainServer {
        PlainServer {
            users,
            complete: false,
        }
    }
}

impl SaslServer for PlainServer {
    fn mechanism(&self) -> SaslMechanism {
        M
    }

    fn evaluate(&mut self, token: &[u8]) -> Result<ServerStep, SaslError> {
        if self.complete {
            return Err(SaslError::AlreadyComplete(M));
        }
        let text = std::str::from_utf8(token)
            .map_err(|_| SaslError::malformed(M, "the message is not UTF-8"))?;
        let parts: Vec<&str> = text.split('\0').collect();
        let [authzid, user, password] = parts[..] else {
            return Err(SaslError::malformed(
                M,
                "expected authzid NUL authcid NUL passwd",
            ));
        };
        if user.is_empty() {
            return Err(SaslError::AuthenticationFailed(
                "username not specified".into(),
            ));
        }
        if password.is_empty() {
            return Err(SaslError::AuthenticationFailed(
                "password not specified".into(),
            ));
        }
        if !authzid.is_empty() && authzid != user {
            return Err(SaslError::AuthenticationFailed(
                "authorization id differs from the username".into(),
            ));
        }
        if !self.users.authenticate(user, password) {
            return Err(SaslError::AuthenticationFailed(
                "invalid username or password".into(),
            ));
        }
        self.complete = true;
        Ok(ServerStep::Complete {
            token: Vec::new(),
            authorization_id: user.to_owned(),
            credential_expiry_ms: None,
        })
    }
}

/// The client side: one message, no server proof.
pub struct PlainClient {
    username: String,
    password: String,
    sent: bool,
}

impl PlainClient {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> PlainClient {
        PlainClient {
            username: username.into(),
            password: password.into(),
            sent: false,
        }
    }
}

impl SaslClient for PlainClient {
    fn mechanism(&self) -> SaslMechanism {
        M
    }

    fn initial_response(&mut self) -> Result<Vec<u8>, SaslError> {
        self.sent = true;
        let mut v = Vec::with_capacity(2 + self.username.len() + self.password.len());
        v.push(0);
        v.extend_from_slice(self.username.as_bytes());
        v.push(0);
        v.extend_from_slice(self.password.as_bytes());
        Ok(v)
    }

    fn evaluate(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>, SaslError> {
        if challenge.is_empty() {
            Ok(None)
        } else {
            Err(SaslError::malformed(M, "the server sent a challenge"))
        }
    }

    fn is_complete(&self) -> bool {
        self.sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> Arc<PlainUsers> {
        let j = JaasConfig::parse(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required
               username="admin" password="pw" user_admin="pw" user_alice="secret";"#,
        )
        .expect("valid");
        Arc::new(PlainUsers::from_jaas(&j))
    }

    #[test]
    fn accepts_the_right_password_only() {
        let u = users();
        assert_eq!(u.len(), 2);
        let mut c = PlainClient::new("alice", "secret");
        let tok = c.initial_response().expect("token");
        let step = PlainServer::new(u.clone()).evaluate(&tok).expect("ok");
        assert!(
            matches!(step, ServerStep::Complete { ref authorization_id, .. } if authorization_id == "alice")
        );
        assert!(PlainServer::new(u.clone())
            .evaluate(b"alice\0alice\0secret")
            .is_ok());
        for bad in [
            &b"\0alice\0wrong"[..],
            b"\0bob\0secret",
            b"\0alice\0",
            b"\0\0secret",
            b"admin\0alice\0secret",
        ] {
            assert!(
                matches!(
                    PlainServer::new(u.clone()).evaluate(bad),
                    Err(SaslError::AuthenticationFailed(_))
                ),
                "{bad:?}"
            );
        }
        for bad in [&b"alice"[..], b"\0alice", b"\0a\0b\0c", b"\0\xff\0x"] {
            assert!(
                matches!(
                    PlainServer::new(u.clone()).evaluate(bad),
                    Err(SaslError::Malformed { .. })
                ),
                "{bad:?}"
            );
        }
        // The error never quotes the password.
        let e = PlainServer::new(u)
            .evaluate(b"\0alice\0hunter2")
            .expect_err("wrong");
        assert!(!e.to_string().contains("hunter2"));
    }
}
