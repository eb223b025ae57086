//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka speaks them.
//!
//! The exchange: client-first `gs2-header n=<user>,r=<client nonce>[,ext]`, server-first
//! `r=<client nonce><server nonce>,s=<salt>,i=<iterations>`, client-final
//! `c=<base64 gs2-header>,r=<nonce>,p=<proof>`, server-final `v=<server signature>`. The server
//! keeps only a [`ScramCredential`] per user (salt, StoredKey, ServerKey, iterations — what
//! Kafka's `UserScramCredentialRecord` holds), never the password. Channel binding is refused
//! (`p=` flag), as is Kafka's `tokenauth` extension (delegation tokens are not served).

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::{digest, hmac, pbkdf2};

use super::{ct_eq, random_bytes, SaslClient, SaslError, SaslMechanism, SaslServer, ServerStep};

/// The iteration counts Kafka accepts for a credential (`ScramMechanism.minIterations()` and
/// the AlterUserScramCredentials upper bound).
pub const MIN_ITERATIONS: i32 = 4096;
pub const MAX_ITERATIONS: i32 = 16384;
/// Bytes of randomness in a nonce (printed as base64).
const NONCE_BYTES: usize = 24;
/// The longest client message accepted (a user name, a nonce, a proof: far less).
const MAX_MESSAGE: usize = 4096;

/// The SCRAM hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    /// The SCRAM variant of `mechanism`, for the two SCRAM mechanisms.
    pub fn of(mechanism: SaslMechanism) -> Option<ScramMechanism> {
        match mechanism {
            SaslMechanism::ScramSha256 => Some(ScramMechanism::Sha256),
            SaslMechanism::ScramSha512 => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    /// The wire id in AlterUserScramCredentials, DescribeUserScramCredentials and the metadata
    /// records (`ScramMechanism.type()`: 0 is UNKNOWN).
    pub fn id(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn from_id(id: i8) -> Option<ScramMechanism> {
        match id {
            1 => Some(ScramMechanism::Sha256),
            2 => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    pub fn sasl(self) -> SaslMechanism {
        match self {
            ScramMechanism::Sha256 => SaslMechanism::ScramSha256,
            ScramMechanism::Sha512 => SaslMechanism::ScramSha512,
        }
    }

    fn hmac_alg(self) -> hmac::Algorithm {
        match self {
            ScramMechanism::Sha256 => hmac::HMAC_SHA256,
            ScramMechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn digest_alg(self) -> &'static digest::Algorithm {
        match self {
            ScramMechanism::Sha256 => &digest::SHA256,
            ScramMechanism::Sha512 => &digest::SHA512,
        }
    }

    fn pbkdf2_alg(self) -> pbkdf2::Algorithm {
        match self {
            ScramMechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramMechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    /// The hash's output length.
    pub fn hash_len(self) -> usize {
        self.digest_alg().output_len()
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac_alg(), key), data)
            .as_ref()
            .to_vec()
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest_alg(), data).as_ref().to_vec()
    }

    /// `Hi(password, salt, i)`: PBKDF2 with the mechanism's HMAC.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.hash_len()];
        let iterations =
            std::num::NonZeroU32::new(iterations.max(1)).expect("invariant: max(1) is non-zero");
        pbkdf2::derive(self.pbkdf2_alg(), iterations, salt, password, &mut out);
        out
    }
}

/// What the server stores for a user and mechanism.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// From the salted password an admin client sends in AlterUserScramCredentials.
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: Vec<u8>,
        salted_password: &[u8],
        iterations: i32,
    ) -> ScramCredential {
        let client_key = mechanism.hmac(salted_password, b"Client Key");
        ScramCredential {
            salt,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, b"Server Key"),
            iterations,
        }
    }

    /// From a password, with a fresh random salt (tests, bootstrap tools).
    pub fn from_password(
        mechanism: ScramMechanism,
        password: &str,
        iterations: i32,
    ) -> ScramCredential {
        let salt = random_bytes(NONCE_BYTES);
        let salted =
            mechanism.salted_password(password.as_bytes(), &salt, iterations.max(1) as u32);
        ScramCredential::from_salted_password(mechanism, salt, &salted, iterations)
    }
}

/// Where the server finds credentials (the broker's metadata image). Looked up once per
/// exchange, at the client's first message, so a user added or changed is seen by the next
/// connection without a restart.
pub trait ScramCredentialStore: Send + Sync {
    fn credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential>;
}

/// RFC 5802 `saslname`: `=2C` is `,` and `=3D` is `=`; any other `=` is an error.
fn decode_saslname(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

fn encode_saslname(s: &str) -> String {
    s.replace('=', "=3D").replace(',', "=2C")
}

/// A nonce: printable, no commas (base64 has none).
fn new_nonce() -> String {
    B64.encode(random_bytes(NONCE_BYTES))
}

fn valid_nonce(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

enum ServerState {
    /// Waiting for client-first.
    First,
    /// Server-first sent; waiting for client-final.
    Final {
        user: String,
        credential: ScramCredential,
        /// `c=` must be base64 of exactly this.
        gs2_header: String,
        client_first_bare: String,
        server_first: String,
        nonce: String,
    },
    Done,
}

/// The server side of one SCRAM exchange.
pub struct ScramServer {
    mechanism: ScramMechanism,
    store: Arc<dyn ScramCredentialStore>,
    state: ServerState,
}

impl ScramServer {
    pub fn new(mechanism: ScramMechanism, store: Arc<dyn ScramCredentialStore>) -> ScramServer {
        ScramServer {
            mechanism,
            store,
            state: ServerState::First,
        }
    }

    fn malformed(&self, reason: impl Into<String>) -> SaslError {
        SaslError::malformed(self.mechanism.sasl(), reason)
    }

    fn client_first(&mut self, msg: &str) -> Result<ServerStep, SaslError> {
        // gs2-header: cbind-flag "," [authzid] ","
        let mut parts = msg.splitn(3, ',');
        let cbind = parts.next().unwrap_or("");
        let authzid = parts.next();
        let bare = parts.next();
        let (Some(authzid), Some(bare)) = (authzid, bare) else {
            return Err(self.malformed("no gs2 header"));
        };
        match cbind {
            "n" | "y" => {}
            c if c.starts_with("p=") => {
                return Err(self.malformed("channel binding is not supported"))
            }
            _ => return Err(self.malformed("bad channel binding flag")),
        }
        let authzid = match authzid {
            "" => None,
            a => Some(
                a.strip_prefix("a=")
                    .and_then(decode_saslname)
                    .ok_or_else(|| self.malformed("bad authzid"))?,
            ),
        };
        let gs2_header = msg[..msg.len() - bare.len()].to_owned();
        let mut attrs = bare.split(',');
        let user = attrs
            .next()
            .and_then(|a| a.strip_prefix("n="))
            .and_then(decode_saslname)
            .ok_or_else(|| self.malformed("expected n=<user>"))?;
        let client_nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .filter(|n| valid_nonce(n))
            .ok_or_else(|| self.malformed("expected r=<nonce>"))?;
        for ext in attrs {
            let (key, value) = ext
                .split_once('=')
                .ok_or_else(|| self.malformed("bad extension"))?;
            if key == "m" {
                return Err(self.malformed("mandatory extension is not supported"));
            }
            if key == "tokenauth" && value.eq_ignore_ascii_case("true") {
                return Err(SaslError::AuthenticationFailed(
                    "delegation token authentication is not supported".into(),
                ));
            }
        }
        if user.is_empty() {
            return Err(self.malformed("empty user name"));
        }
        if let Some(a) = &authzid {
            if *a != user {
                return Err(SaslError::AuthenticationFailed(
                    "authorization id differs from the user name".into(),
                ));
            }
        }
        let credential = self
            .store
            .credential(&user, self.mechanism)
            .ok_or_else(|| SaslError::AuthenticationFailed("invalid user credentials".into()))?;
        if credential.iterations < MIN_ITERATIONS {
            return Err(SaslError::AuthenticationFailed(
                "the stored credential has too few iterations".into(),
            ));
        }
        let nonce = format!("{client_nonce}{}", new_nonce());
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&credential.salt),
            credential.iterations
        );
        self.state = ServerState::Final {
            user,
            credential,
            gs2_header,
            client_first_bare: bare.to_owned(),
            server_first: server_first.clone(),
            nonce,
        };
        Ok(ServerStep::Challenge(server_first.into_bytes()))
    }

    fn client_final(&mut self, msg: &str) -> Result<ServerStep, SaslError> {
        let ServerState::Final {
            user,
            credential,
            gs2_header,
            client_first_bare,
            server_first,
            nonce,
        } = std::mem::replace(&mut self.state, ServerState::Done)
        else {
            return Err(SaslError::AlreadyComplete(self.mechanism.sasl()));
        };
        let (without_proof, proof) = msg
            .rsplit_once(",p=")
            .ok_or_else(|| self.malformed("expected p=<proof>"))?;
        let mut attrs = without_proof.split(',');
        let channel = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or_else(|| self.malformed("expected c=<channel binding>"))?;
        let got_nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or_else(|| self.malformed("expected r=<nonce>"))?;
        let channel = B64
            .decode(channel)
            .map_err(|_| self.malformed("channel binding is not base64"))?;
        if channel != gs2_header.as_bytes() {
            return Err(SaslError::AuthenticationFailed(
                "channel binding does not match the first message".into(),
            ));
        }
        // RFC 5802: the client echoes the server's nonce (its own, then the server's). librdkafka
        // before 2.6.1 (Debian's kcat links 2.0.2) puts its own nonce in front once more
        // (librdkafka #4895); Kafka 3.8.1–3.9 accept that (`endsWith`), Kafka 4 refuses it again
        // and so locks those clients out. We accept exactly that form and nothing else: the
        // server's fresh part is still there, and the proof covers the message as sent.
        let client_nonce = client_first_bare
            .split(',')
            .nth(1)
            .and_then(|a| a.strip_prefix("r="))
            .unwrap_or_default();
        let doubled = got_nonce
            .strip_prefix(client_nonce)
            .is_some_and(|rest| rest == nonce);
        if got_nonce != nonce && !doubled {
            return Err(SaslError::AuthenticationFailed(
                "nonce does not match".into(),
            ));
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| self.malformed("proof is not base64"))?;
        if proof.len() != self.mechanism.hash_len() {
            return Err(SaslError::AuthenticationFailed(
                "proof has the wrong length".into(),
            ));
        }
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let client_signature = self
            .mechanism
            .hmac(&credential.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        if !ct_eq(&self.mechanism.hash(&client_key), &credential.stored_key) {
            return Err(SaslError::AuthenticationFailed(
                "invalid credentials".into(),
            ));
        }
        let server_signature = self
            .mechanism
            .hmac(&credential.server_key, auth_message.as_bytes());
        Ok(ServerStep::Complete {
            token: format!("v={}", B64.encode(server_signature)).into_bytes(),
            authorization_id: user,
            credential_expiry_ms: None,
        })
    }
}

impl SaslServer for ScramServer {
    fn mechanism(&self) -> SaslMechanism {
        self.mechanism.sasl()
    }

    fn evaluate(&mut self, token: &[u8]) -> Result<ServerStep, SaslError> {
        if token.len() > MAX_MESSAGE {
            return Err(self.malformed("message too long"));
        }
        let msg = std::str::from_utf8(token).map_err(|_| self.malformed("not UTF-8"))?;
        match self.state {
            ServerState::First => self.client_first(msg),
            ServerState::Final { .. } => self.client_final(msg),
            ServerState::Done => Err(SaslError::AlreadyComplete(self.mechanism.sasl())),
        }
    }
}

enum ClientState {
    Initial,
    SentFirst {
        client_first_bare: String,
        client_nonce: String,
    },
    SentFinal {
        server_signature: Vec<u8>,
    },
    Complete,
}

/// The client side of one SCRAM exchange (this node authenticating to another).
pub struct ScramClient {
    mechanism: ScramMechanism,
    username: String,
    password: String,
    state: ClientState,
}

impl ScramClient {
    pub fn new(
        mechanism: ScramMechanism,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> ScramClient {
        ScramClient {
            mechanism,
            username: username.into(),
            password: password.into(),
            state: ClientState::Initial,
        }
    }

    fn malformed(&self, reason: &str) -> SaslError {
        SaslError::malformed(self.mechanism.sasl(), reason)
    }
}

impl SaslClient for ScramClient {
    fn mechanism(&self) -> SaslMechanism {
        self.mechanism.sasl()
    }

    fn initial_response(&mut self) -> Result<Vec<u8>, SaslError> {
        let client_nonce = new_nonce();
        let client_first_bare = format!("n={},r={client_nonce}", encode_saslname(&self.username));
        let msg = format!("n,,{client_first_bare}");
        self.state = ClientState::SentFirst {
            client_first_bare,
            client_nonce,
        };
        Ok(msg.into_bytes())
    }

    fn evaluate(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>, SaslError> {
        let msg = std::str::from_utf8(challenge).map_err(|_| self.malformed("not UTF-8"))?;
        match std::mem::replace(&mut self.state, ClientState::Complete) {
            ClientState::SentFirst {
                client_first_bare,
                client_nonce,
            } => {
                let mut attrs = msg.split(',');
                let nonce = attrs
                    .next()
                    .and_then(|a| a.strip_prefix("r="))
                    .filter(|n| n.starts_with(&client_nonce) && n.len() > client_nonce.len())
                    .ok_or_else(|| self.malformed("server nonce does not extend ours"))?;
                let salt = attrs
                    .next()
                    .and_then(|a| a.strip_prefix("s="))
                    .and_then(|s| B64.decode(s).ok())
                    .ok_or_else(|| self.malformed("expected s=<salt>"))?;
                let iterations: i32 = attrs
                    .next()
                    .and_then(|a| a.strip_prefix("i="))
                    .and_then(|i| i.parse().ok())
                    .ok_or_else(|| self.malformed("expected i=<iterations>"))?;
                if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
                    return Err(self.malformed("iteration count out of range"));
                }
                let salted = self.mechanism.salted_password(
                    self.password.as_bytes(),
                    &salt,
                    iterations as u32,
                );
                let without_proof = format!("c=biws,r={nonce}");
                let auth_message = format!("{client_first_bare},{msg},{without_proof}");
                let client_key = self.mechanism.hmac(&salted, b"Client Key");
                let stored_key = self.mechanism.hash(&client_key);
                let signature = self.mechanism.hmac(&stored_key, auth_message.as_bytes());
                let proof: Vec<u8> = client_key
                    .iter()
                    .zip(&signature)
                    .map(|(a, b)| a ^ b)
                    .collect();
                let server_key = self.mechanism.hmac(&salted, b"Server Key");
                self.state = ClientState::SentFinal {
                    server_signature: self.mechanism.hmac(&server_key, auth_message.as_bytes()),
                };
                Ok(Some(
                    format!("{without_proof},p={}", B64.encode(proof)).into_bytes(),
                ))
            }
            ClientState::SentFinal { server_signature } => {
                if let Some(e) = msg.strip_prefix("e=") {
                    return Err(SaslError::AuthenticationFailed(format!(
                        "server refused: {e}"
                    )));
                }
                let v = msg
                    .strip_prefix("v=")
                    .and_then(|v| B64.decode(v).ok())
                    .ok_or_else(|| self.malformed("expected v=<server signature>"))?;
                if !ct_eq(&v, &server_signature) {
                    return Err(SaslError::AuthenticationFailed(
                        "the server's signature does not verify".into(),
                    ));
                }
                Ok(None)
            }
            ClientState::Initial | ClientState::Complete => {
                Err(SaslError::AlreadyComplete(self.mechanism.sasl()))
            }
        }
    }

    fn is_complete(&self) -> bool {
        matches!(self.state, ClientState::Complete)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Store(HashMap<(String, ScramMechanism), ScramCredential>);
    impl ScramCredentialStore for Store {
        fn credential(&self, user: &str, m: ScramMechanism) -> Option<ScramCredential> {
            self.0.get(&(user.to_owned(), m)).cloned()
        }
    }

    fn store(m: ScramMechanism) -> Arc<dyn ScramCredentialStore> {
        let mut s = HashMap::new();
        s.insert(
            ("alice".to_owned(), m),
            ScramCredential::from_password(m, "secret", 4096),
        );
        s.insert(
            ("we,ird=".to_owned(), m),
            ScramCredential::from_password(m, "pw", 4096),
        );
        Arc::new(Store(s))
    }

    fn run(m: ScramMechanism, user: &str, pw: &str) -> Result<String, SaslError> {
        let mut server = ScramServer::new(m, store(m));
        let mut client = ScramClient::new(m, user, pw);
        let first = client.initial_response()?;
        let ServerStep::Challenge(c) = server.evaluate(&first)? else {
            panic!("expected a challenge");
        };
        let fin = client.evaluate(&c)?.expect("client final");
        match server.evaluate(&fin)? {
            ServerStep::Complete {
                token,
                authorization_id,
                ..
            } => {
                assert_eq!(client.evaluate(&token)?, None);
                assert!(client.is_complete());
                Ok(authorization_id)
            }
            ServerStep::Challenge(_) => panic!("expected completion"),
        }
    }

    /// librdkafka before 2.6.1 (Debian's kcat) sends `r=<client nonce><server-first nonce>`
    /// and computes its proof over that message: accepted, as Kafka 3.8.1–3.9 do.
    #[test]
    fn a_final_nonce_with_the_client_nonce_twice_is_accepted() {
        for m in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
            let mut server = ScramServer::new(m, store(m));
            let client_nonce = "-=abc~XYZ";
            let bare = format!("n=alice,r={client_nonce}");
            let ServerStep::Challenge(c) = server
                .evaluate(format!("n,,{bare}").as_bytes())
                .expect("first")
            else {
                panic!("expected a challenge")
            };
            let server_first = String::from_utf8(c).expect("utf8");
            let mut attrs = server_first.split(',');
            let nonce = attrs.next().and_then(|a| a.strip_prefix("r=")).expect("r");
            let salt = attrs
                .next()
                .and_then(|a| a.strip_prefix("s="))
                .map(|s| B64.decode(s).expect("salt"))
                .expect("s");
            let salted = m.salted_password(b"secret", &salt, 4096);
            let without_proof = format!("c=biws,r={client_nonce}{nonce}");
            let auth = format!("{bare},{server_first},{without_proof}");
            let client_key = m.hmac(&salted, b"Client Key");
            let signature = m.hmac(&m.hash(&client_key), auth.as_bytes());
            let proof: Vec<u8> = client_key
                .iter()
                .zip(&signature)
                .map(|(a, b)| a ^ b)
                .collect();
            let step = server
                .evaluate(format!("{without_proof},p={}", B64.encode(proof)).as_bytes())
                .expect("accepted");
            assert!(matches!(step, ServerStep::Complete { .. }), "{m:?}");
        }
    }

    #[test]
    fn both_hashes_authenticate_and_refuse() {
        for m in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
            assert_eq!(run(m, "alice", "secret").expect("ok"), "alice");
            assert_eq!(run(m, "we,ird=", "pw").expect("ok"), "we,ird=");
            assert!(matches!(
                run(m, "alice", "wrong"),
                Err(SaslError::AuthenticationFailed(_))
            ));
            assert!(matches!(
                run(m, "bob", "secret"),
                Err(SaslError::AuthenticationFailed(_))
            ));
        }
        // The other hash's credential does not exist.
        let mut server = ScramServer::new(ScramMechanism::Sha512, store(ScramMechanism::Sha256));
        assert!(server.evaluate(b"n,,n=alice,r=abc").is_err());
    }

    /// RFC 7677's SCRAM-SHA-256 test vector: user "user", password "pencil".
    #[test]
    fn rfc7677_vector() {
        let m = ScramMechanism::Sha256;
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("b64");
        let salted = m.salted_password(b"pencil", &salt, 4096);
        let cred = ScramCredential::from_salted_password(m, salt, &salted, 4096);
        let client_first_bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        let server_first =
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let without_proof = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let client_key = m.hmac(&salted, b"Client Key");
        let sig = m.hmac(&cred.stored_key, auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        assert_eq!(
            B64.encode(proof),
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(
            B64.encode(m.hmac(&cred.server_key, auth.as_bytes())),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn bad_messages_are_refused() {
        let m = ScramMechanism::Sha256;
        for bad in [
            &b""[..],
            b"n=alice,r=abc",
            b"p=tls-unique,,n=alice,r=abc",
            b"x,,n=alice,r=abc",
            b"n,,r=abc,n=alice",
            b"n,,n=alice",
            b"n,,n=al=ice,r=abc",
            b"n,,n=alice,r=a,bc=1,m=x",
            b"n,,n=alice,r=abc,tokenauth=true",
            b"n,a=bob,n=alice,r=abc",
            b"\xff\xfe",
        ] {
            assert!(
                ScramServer::new(m, store(m)).evaluate(bad).is_err(),
                "{bad:?}"
            );
        }
        assert!(ScramServer::new(m, store(m))
            .evaluate(&vec![b'a'; MAX_MESSAGE + 1])
            .is_err());
        // A final message with a nonce or channel binding that does not match.
        let finals = |f: &dyn Fn(&str) -> String| {
            let mut server = ScramServer::new(m, store(m));
            let mut client = ScramClient::new(m, "alice", "secret");
            let first = client.initial_response().expect("first");
            let ServerStep::Challenge(c) = server.evaluate(&first).expect("ok") else {
                panic!()
            };
            let good =
                String::from_utf8(client.evaluate(&c).expect("ok").expect("final")).expect("utf8");
            server.evaluate(f(&good).as_bytes())
        };
        assert!(finals(&|g| g.to_owned()).is_ok());
        assert!(finals(&|g| g.replacen(",r=", ",r=X", 1)).is_err());
        // Only the client's own nonce may come first once more (librdkafka < 2.6.1), and the
        // proof must then cover that message: here it covers the other one.
        assert!(finals(&|g| {
            let (_, rest) = g.split_once(",r=").expect("r");
            g.replacen(",r=", &format!(",r={}", &rest[..8]), 1)
        })
        .is_err());
        assert!(finals(&|g| g.replacen("c=biws", "c=eSws", 1)).is_err());
        assert!(finals(&|g| {
            let (a, _) = g.rsplit_once(",p=").expect("p");
            format!("{a},p={}", B64.encode([0u8; 32]))
        })
        .is_err());
        assert!(finals(&|g| g.replacen(",p=", ",p=!!", 1)).is_err());
        assert!(finals(&|_| "c=biws".into()).is_err());
        // The client refuses a server nonce that does not extend its own, and low iterations.
        let mut client = ScramClient::new(m, "alice", "secret");
        client.initial_response().expect("first");
        assert!(client.evaluate(b"r=other,s=AAAA,i=4096").is_err());
        let mut client = ScramClient::new(m, "alice", "secret");
        let first = String::from_utf8(client.initial_response().expect("first")).expect("utf8");
        let nonce = first.rsplit_once("r=").expect("r").1;
        assert!(client
            .evaluate(format!("r={nonce}x,s=AAAA,i=1000").as_bytes())
            .is_err());
    }
}
