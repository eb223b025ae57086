//! [`ClientConfig`]: a client's settings from Kafka's client keys (a `--command-config`
//! properties file, as Kafka's tools read one): the security protocol with its TLS and SASL
//! settings, and the bounds on every wait.
//!
//! Keys read: `security.protocol`; `ssl.truststore.location` / `ssl.truststore.certificates`
//! (PEM), `ssl.keystore.*` for a client certificate, `ssl.endpoint.identification.algorithm`;
//! `sasl.mechanism` (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) with `sasl.jaas.config` (its
//! `username` and `password` options) or librdkafka's `sasl.username` / `sasl.password`;
//! `client.id`; `socket.connection.setup.timeout.ms` (10 s), `request.timeout.ms` (30 s),
//! `default.api.timeout.ms` (60 s), `retry.backoff.ms` (100 ms). Other keys are kept for the
//! caller (`acks`, `batch.size`, …) and otherwise ignored.

use crate::error::ClientError;
use crate::properties;
use rafka_security::sasl::client_authenticator::SaslClientConfig;
use rafka_security::sasl::jaas::JaasConfig;
use rafka_security::sasl::SaslMechanism;
use rafka_security::tls::{SslConfig, TlsClient};
use rafka_security::transport::ClientSecurity;
use rafka_security::SecurityProtocol;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Every key given, for settings the caller reads itself.
    pub properties: BTreeMap<String, String>,
    pub security: ClientSecurity,
    pub client_id: String,
    /// `socket.connection.setup.timeout.ms`: one connection attempt (TCP, TLS, SASL, ApiVersions).
    pub connect_timeout: Duration,
    /// `request.timeout.ms`: one request's wait for its response.
    pub request_timeout: Duration,
    /// `default.api.timeout.ms`: an operation with its retries.
    pub api_timeout: Duration,
    /// `retry.backoff.ms`: the first wait between retries (doubling up to a second).
    pub retry_backoff: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            properties: BTreeMap::new(),
            security: ClientSecurity::default(),
            client_id: "rafka-tools".to_owned(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            api_timeout: Duration::from_secs(60),
            retry_backoff: Duration::from_millis(100),
        }
    }
}

impl ClientConfig {
    /// Reads a properties file.
    pub fn load(path: &Path) -> Result<ClientConfig, ClientError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ClientError::Config(format!("{}: {e}", path.display())))?;
        let entries = properties::parse(&text).map_err(|e| {
            ClientError::Config(format!("{}:{}: {}", path.display(), e.line, e.reason))
        })?;
        ClientConfig::from_properties(entries.into_iter().map(|e| (e.key, e.value)).collect())
            .map_err(|e| match e {
                ClientError::Config(m) => ClientError::Config(format!("{}: {m}", path.display())),
                e => e,
            })
    }

    /// Builds the configuration from client keys.
    pub fn from_properties(props: BTreeMap<String, String>) -> Result<ClientConfig, ClientError> {
        let get = |k: &str| {
            props
                .get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let ms = |k: &str, default: Duration| -> Result<Duration, ClientError> {
            match get(k) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .map(Duration::from_millis)
                    .map_err(|_| ClientError::Config(format!("{k}: not a number of ms: {v:?}"))),
            }
        };
        let protocol = match get("security.protocol") {
            None => SecurityProtocol::Plaintext,
            Some(p) => SecurityProtocol::parse(&p.to_ascii_uppercase()).ok_or_else(|| {
                ClientError::Config(format!(
                    "security.protocol: {p:?} is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
                ))
            })?,
        };
        let tls = if protocol.uses_tls() {
            let ssl = SslConfig::from_keys("client", |k| get(k))
                .map_err(|e| ClientError::Config(e.to_string()))?;
            Some(TlsClient::new(&ssl).map_err(|e| ClientError::Config(e.to_string()))?)
        } else {
            None
        };
        let sasl = if protocol.uses_sasl() {
            Some(sasl_config(&get)?)
        } else {
            None
        };
        let defaults = ClientConfig::default();
        Ok(ClientConfig {
            security: ClientSecurity {
                protocol,
                tls,
                sasl,
            },
            client_id: get("client.id").unwrap_or(defaults.client_id),
            connect_timeout: ms(
                "socket.connection.setup.timeout.ms",
                defaults.connect_timeout,
            )?,
            request_timeout: ms("request.timeout.ms", defaults.request_timeout)?,
            api_timeout: ms("default.api.timeout.ms", defaults.api_timeout)?,
            retry_backoff: ms("retry.backoff.ms", defaults.retry_backoff)?,
            properties: props,
        })
    }

    /// A key the caller reads itself.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.properties
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }
}

fn sasl_config(get: &impl Fn(&str) -> Option<String>) -> Result<SaslClientConfig, ClientError> {
    let name = get("sasl.mechanism").unwrap_or_else(|| "GSSAPI".to_owned());
    let mechanism = SaslMechanism::parse(&name.to_ascii_uppercase())
        .filter(|m| *m != SaslMechanism::OAuthBearer)
        .ok_or_else(|| {
            ClientError::Config(format!(
                "sasl.mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (got {name:?})"
            ))
        })?;
    let (username, password) = match get("sasl.jaas.config") {
        Some(text) => {
            let jaas = JaasConfig::parse(&text)
                .map_err(|e| ClientError::Config(format!("sasl.jaas.config: {e}")))?;
            match (jaas.option("username"), jaas.option("password")) {
                (Some(u), Some(p)) => (u.to_owned(), p.to_owned()),
                _ => {
                    return Err(ClientError::Config(
                        "sasl.jaas.config needs username and password options".into(),
                    ))
                }
            }
        }
        None => match (get("sasl.username"), get("sasl.password")) {
            (Some(u), Some(p)) => (u, p),
            _ => {
                return Err(ClientError::Config(
                    "SASL needs sasl.jaas.config (or sasl.username and sasl.password)".into(),
                ))
            }
        },
    };
    Ok(SaslClientConfig {
        mechanism,
        username,
        password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sasl_from_jaas_or_librdkafka_keys() {
        let c = ClientConfig::from_properties(props(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required \
                 username=\"alice\" password=\"secret\";",
            ),
        ]))
        .expect("config");
        let s = c.security.sasl.expect("sasl");
        assert_eq!(
            (s.username.as_str(), s.password.as_str()),
            ("alice", "secret")
        );
        let c = ClientConfig::from_properties(props(&[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "bob"),
            ("sasl.password", "pw"),
        ]))
        .expect("config");
        assert_eq!(c.security.sasl.expect("sasl").username, "bob");
    }

    #[test]
    fn bad_keys_are_named() {
        let e = ClientConfig::from_properties(props(&[("security.protocol", "TLS")]))
            .expect_err("bad protocol");
        assert!(e.to_string().contains("security.protocol"), "{e}");
        let e = ClientConfig::from_properties(props(&[("request.timeout.ms", "soon")]))
            .expect_err("bad number");
        assert!(e.to_string().contains("request.timeout.ms"), "{e}");
        let e = ClientConfig::from_properties(props(&[("security.protocol", "SASL_PLAINTEXT")]))
            .expect_err("no mechanism");
        assert!(e.to_string().contains("sasl.mechanism"), "{e}");
        let e = ClientConfig::from_properties(props(&[("security.protocol", "SSL")]))
            .expect_err("no truststore");
        assert!(e.to_string().contains("truststore"), "{e}");
    }
}
