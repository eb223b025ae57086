//! The SASL settings of a listener, from Kafka's keys: `sasl.enabled.mechanisms`, the JAAS
//! configuration per listener and mechanism (`listener.name.<l>.<mechanism>.sasl.jaas.config`,
//! then `listener.name.<l>.sasl.jaas.config`, then `sasl.jaas.config`),
//! `connections.max.reauth.ms` per listener and mechanism, `connection.failed.authentication.
//! delay.ms` and `sasl.server.max.receive.size`; and the credentials this node presents to other
//! nodes' SASL listeners (`sasl.mechanism.inter.broker.protocol`,
//! `sasl.mechanism.controller.protocol`, the listener's JAAS `username`/`password`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rafka_security::sasl::authenticator::SaslServerConfig;
use rafka_security::sasl::client_authenticator::SaslClientConfig;
use rafka_security::sasl::jaas::JaasConfig;
use rafka_security::sasl::oauthbearer::jwks_endpoint::{
    self, JwksEndpoint, RefreshSettings, RefreshingJwks,
};
use rafka_security::sasl::oauthbearer::jwks_validator::{self, ClaimRules, JwksValidator};
use rafka_security::sasl::oauthbearer::{TokenValidator, UnsecuredValidator};
use rafka_security::sasl::plain::PlainUsers;
use rafka_security::sasl::SaslMechanism;
use rafka_security::tls::ssl_config::TruststoreSource;

use super::{ConfigError, KafkaConfig};

/// Kafka's default OAUTHBEARER server callback handler: unsecured JWS tokens.
const UNSECURED_VALIDATOR_CLASS: &str = "org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler";
/// Kafka's handler for signed JWTs checked against a JWKS (KIP-768), under its current and its
/// earlier (3.1–3.x `secured`) package names.
const VALIDATOR_CLASSES: &[&str] = &[
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
    "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerValidatorCallbackHandler",
];

impl KafkaConfig {
    fn listener_mechanism_value(
        &self,
        listener: &str,
        mechanism: SaslMechanism,
        key: &str,
    ) -> Option<String> {
        let scoped = format!(
            "listener.name.{}.{}.{key}",
            listener.to_ascii_lowercase(),
            mechanism.name().to_ascii_lowercase()
        );
        self.raw(&scoped)
            .map(|(v, _)| v.to_owned())
            .or_else(|| self.listener_value(listener, key))
    }

    /// The JAAS configuration of `mechanism` on `listener`, if any.
    pub fn sasl_jaas_config(
        &self,
        listener: &str,
        mechanism: SaslMechanism,
    ) -> Result<Option<JaasConfig>, ConfigError> {
        let Some(text) = self.listener_mechanism_value(listener, mechanism, "sasl.jaas.config")
        else {
            return Ok(None);
        };
        JaasConfig::parse(&text).map(Some).map_err(|e| {
            ConfigError::invalid("sasl.jaas.config", format!("listener {listener}: {e}"))
        })
    }

    /// The SASL settings of `listener` (None unless its protocol is SASL_*). SCRAM credentials
    /// are not here: the server adds its metadata image as their store.
    pub fn sasl_server_config(
        &self,
        listener: &str,
    ) -> Result<Option<SaslServerConfig>, ConfigError> {
        let uses_sasl = self
            .listener_security_protocol_map()
            .get(&listener.to_ascii_uppercase())
            .is_some_and(|p| p.uses_sasl());
        if !uses_sasl {
            return Ok(None);
        }
        let raw = self
            .listener_value(listener, "sasl.enabled.mechanisms")
            .unwrap_or_else(|| "GSSAPI".to_owned());
        let mut enabled = Vec::new();
        for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match SaslMechanism::parse(name) {
                Some(m) if !enabled.contains(&m) => enabled.push(m),
                Some(_) => {}
                None => tracing::warn!(
                    listener,
                    mechanism = name,
                    "sasl.enabled.mechanisms: mechanism not served by rafka; ignored"
                ),
            }
        }
        if enabled.is_empty() {
            return Err(ConfigError::invalid(
                "sasl.enabled.mechanisms",
                format!(
                    "listener {listener} uses SASL but enables none of PLAIN, SCRAM-SHA-256, \
                     SCRAM-SHA-512, OAUTHBEARER ({raw:?})"
                ),
            ));
        }
        let plain_users = if enabled.contains(&SaslMechanism::Plain) {
            let jaas = self
                .sasl_jaas_config(listener, SaslMechanism::Plain)?
                .ok_or_else(|| {
                    ConfigError::invalid(
                        "sasl.jaas.config",
                        format!(
                            "listener {listener} enables PLAIN but has no JAAS configuration \
                             (listener.name.{}.plain.sasl.jaas.config)",
                            listener.to_ascii_lowercase()
                        ),
                    )
                })?;
            if jaas.login_module != JaasConfig::PLAIN_LOGIN_MODULE {
                return Err(ConfigError::invalid(
                    "sasl.jaas.config",
                    format!(
                        "listener {listener}: PLAIN needs {} (got {})",
                        JaasConfig::PLAIN_LOGIN_MODULE,
                        jaas.login_module
                    ),
                ));
            }
            PlainUsers::from_jaas(&jaas)
        } else {
            PlainUsers::default()
        };
        let oauthbearer = if enabled.contains(&SaslMechanism::OAuthBearer) {
            Some(Arc::new(self.oauthbearer_validator(listener)?))
        } else {
            None
        };
        let mut max_reauth_ms = BTreeMap::new();
        for &m in &enabled {
            let v = match self.listener_mechanism_value(listener, m, "connections.max.reauth.ms") {
                Some(raw) => raw.trim().parse::<i64>().map_err(|_| {
                    ConfigError::invalid_value(
                        "connections.max.reauth.ms",
                        &raw,
                        "not a number".to_owned(),
                    )
                })?,
                None => 0,
            };
            max_reauth_ms.insert(m, v.max(0));
        }
        let max_receive_size = self
            .listener_value(listener, "sasl.server.max.receive.size")
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(524_288);
        let delay = self
            .get::<i32>("connection.failed.authentication.delay.ms")
            .unwrap_or(100)
            .max(0);
        Ok(Some(SaslServerConfig {
            enabled_mechanisms: enabled,
            plain_users: Arc::new(plain_users),
            scram_credentials: None,
            max_reauth_ms,
            failed_authentication_delay: Duration::from_millis(delay as u64),
            max_receive_size,
            oauthbearer,
        }))
    }

    /// OAUTHBEARER's token check on `listener`, from its `sasl.server.callback.handler.class`:
    /// Kafka's unsecured validator (the default), or signed JWTs against the JWKS of
    /// `sasl.oauthbearer.jwks.endpoint.url` (retrieved now: a JWKS that cannot be read stops the
    /// start, as in Kafka). Each `sasl.oauthbearer.*` key may be prefixed with
    /// `listener.name.<l>.oauthbearer.` or `listener.name.<l>.`.
    fn oauthbearer_validator(&self, listener: &str) -> Result<TokenValidator, ConfigError> {
        const M: SaslMechanism = SaslMechanism::OAuthBearer;
        let value = |key: &str| {
            self.listener_mechanism_value(listener, M, key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let list = |key: &str| -> Vec<String> {
            value(key)
                .map(|a| {
                    a.split(',')
                        .map(str::trim)
                        .filter(|x| !x.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let number = |key: &str, default: i64, min: i64| -> Result<i64, ConfigError> {
            match value(key) {
                None => Ok(default),
                Some(raw) => match raw.parse::<i64>() {
                    Ok(n) if n >= min => Ok(n),
                    _ => Err(ConfigError::invalid_value(
                        key,
                        &raw,
                        format!("listener {listener}: not a number of at least {min}"),
                    )),
                },
            }
        };
        let jaas = self.sasl_jaas_config(listener, M)?;
        let class = value("sasl.server.callback.handler.class");
        match class.as_deref() {
            None | Some(UNSECURED_VALIDATOR_CLASS) => {
                return Ok(TokenValidator::Unsecured(UnsecuredValidator::from_jaas(
                    jaas.as_ref(),
                    list("sasl.oauthbearer.expected.audience"),
                )))
            }
            Some(c) if VALIDATOR_CLASSES.contains(&c) => {}
            Some(c) => {
                return Err(ConfigError::invalid(
                    "sasl.server.callback.handler.class",
                    format!(
                        "listener {listener}: OAUTHBEARER handler {c} is not supported; rafka \
                         offers {UNSECURED_VALIDATOR_CLASS} (unsecured tokens) and {} (signed \
                         JWTs against a JWKS)",
                        VALIDATOR_CLASSES[0]
                    ),
                ))
            }
        }
        let url_key = "sasl.oauthbearer.jwks.endpoint.url";
        let url = value(url_key).ok_or_else(|| {
            ConfigError::invalid(
                url_key,
                format!(
                    "listener {listener}: {} needs {url_key} (a file: or https: URL of the JWKS)",
                    VALIDATOR_CLASSES[0]
                ),
            )
        })?;
        // The https client's truststore, from the JAAS options as Kafka reads it.
        let truststore = match &jaas {
            Some(j) => {
                let kind = j.option("ssl.truststore.type").unwrap_or("PEM");
                match (
                    j.option("ssl.truststore.location"),
                    j.option("ssl.truststore.certificates"),
                ) {
                    _ if !kind.eq_ignore_ascii_case("PEM") => {
                        return Err(ConfigError::invalid(
                            "sasl.jaas.config",
                            format!(
                                "listener {listener}: the JWKS client's ssl.truststore.type \
                                 must be PEM (got {kind})"
                            ),
                        ))
                    }
                    (Some(path), _) => Some(TruststoreSource::File(path.into())),
                    (None, Some(pem)) => Some(TruststoreSource::Inline(pem.to_owned())),
                    (None, None) => None,
                }
            }
            None => None,
        };
        let endpoint = JwksEndpoint::parse(&url, truststore.as_ref()).map_err(|e| {
            ConfigError::invalid_value(url_key, &url, format!("listener {listener}: {e}"))
        })?;
        let ms = |key: &str, default: u64| -> Result<Duration, ConfigError> {
            number(key, default as i64, 0).map(|n| Duration::from_millis(n as u64))
        };
        let settings = RefreshSettings {
            refresh: ms(
                "sasl.oauthbearer.jwks.endpoint.refresh.ms",
                jwks_endpoint::defaults::REFRESH_MS,
            )?,
            retry_backoff: ms(
                "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms",
                jwks_endpoint::defaults::RETRY_BACKOFF_MS,
            )?,
            retry_backoff_max: ms(
                "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms",
                jwks_endpoint::defaults::RETRY_BACKOFF_MAX_MS,
            )?,
            ..RefreshSettings::default()
        };
        let rules = ClaimRules {
            clock_skew_seconds: number(
                "sasl.oauthbearer.clock.skew.seconds",
                jwks_validator::defaults::CLOCK_SKEW_SECONDS,
                0,
            )?,
            expected_audience: list("sasl.oauthbearer.expected.audience"),
            expected_issuer: value("sasl.oauthbearer.expected.issuer"),
            sub_claim_name: value("sasl.oauthbearer.sub.claim.name")
                .unwrap_or_else(|| jwks_validator::defaults::SUB_CLAIM_NAME.into()),
            scope_claim_name: value("sasl.oauthbearer.scope.claim.name")
                .unwrap_or_else(|| jwks_validator::defaults::SCOPE_CLAIM_NAME.into()),
        };
        let keys = RefreshingJwks::start(endpoint, settings).map_err(|e| {
            ConfigError::invalid(
                url_key,
                format!("listener {listener}: cannot load the JWKS: {e}"),
            )
        })?;
        Ok(TokenValidator::Jwks(JwksValidator::new(keys, rules)))
    }

    /// What this node presents on `listener` of another node when it is SASL_*: the mechanism
    /// `mechanism_key` names (`sasl.mechanism.inter.broker.protocol` or
    /// `sasl.mechanism.controller.protocol`) and the `username`/`password` of the listener's JAAS
    /// configuration for it.
    pub fn sasl_client_credentials(
        &self,
        listener: &str,
        mechanism_key: &str,
    ) -> Result<Option<SaslClientConfig>, ConfigError> {
        let uses_sasl = self
            .listener_security_protocol_map()
            .get(&listener.to_ascii_uppercase())
            .is_some_and(|p| p.uses_sasl());
        if !uses_sasl {
            return Ok(None);
        }
        let name = self
            .get::<String>(mechanism_key)
            .unwrap_or_else(|| "GSSAPI".to_owned());
        let mechanism = SaslMechanism::parse(name.trim())
            .filter(|m| *m != SaslMechanism::OAuthBearer)
            .ok_or_else(|| {
                ConfigError::invalid(
                    mechanism_key,
                    format!(
                        "listener {listener} uses SASL; {mechanism_key} must be PLAIN, \
                         SCRAM-SHA-256 or SCRAM-SHA-512 (got {name:?})"
                    ),
                )
            })?;
        let jaas = self.sasl_jaas_config(listener, mechanism)?.ok_or_else(|| {
            ConfigError::invalid(
                "sasl.jaas.config",
                format!(
                    "listener {listener}: no JAAS configuration for {mechanism} \
                     (listener.name.{}.{}.sasl.jaas.config) to take this node's username and \
                     password from",
                    listener.to_ascii_lowercase(),
                    mechanism.name().to_ascii_lowercase()
                ),
            )
        })?;
        match (jaas.option("username"), jaas.option("password")) {
            (Some(u), Some(p)) => Ok(Some(SaslClientConfig {
                mechanism,
                username: u.to_owned(),
                password: p.to_owned(),
            })),
            _ => Err(ConfigError::invalid(
                "sasl.jaas.config",
                format!(
                    "listener {listener}: the {mechanism} JAAS configuration needs username and \
                     password for this node's own connections"
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(lines: &[(&str, &str)]) -> Result<KafkaConfig, ConfigError> {
        let overrides: Vec<String> = lines.iter().map(|(k, v)| format!("{k}={v}")).collect();
        KafkaConfig::load_args(None, &overrides)
    }

    const BASE: &[(&str, &str)] = &[
        (
            "listeners",
            "SASL_PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
        ),
        (
            "listener.security.protocol.map",
            "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
        ),
        ("inter.broker.listener.name", "SASL_PLAINTEXT"),
    ];

    #[test]
    fn reads_mechanisms_jaas_and_reauth_per_listener() {
        let mut lines = BASE.to_vec();
        lines.extend([
            ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-512,GSSAPI"),
            ("sasl.mechanism.inter.broker.protocol", "PLAIN"),
            (
                "listener.name.sasl_plaintext.plain.sasl.jaas.config",
                r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="a-pw" user_admin="a-pw" user_alice="x";"#,
            ),
            ("listener.name.sasl_plaintext.scram-sha-512.connections.max.reauth.ms", "5000"),
            ("connection.failed.authentication.delay.ms", "250"),
        ]);
        let c = load(&lines).expect("valid");
        assert!(
            c.warnings().iter().all(|w| !w.contains("listener.name.")),
            "{:?}",
            c.warnings()
        );
        let s = c
            .sasl_server_config("SASL_PLAINTEXT")
            .expect("ok")
            .expect("sasl");
        assert_eq!(
            s.enabled_mechanisms,
            vec![SaslMechanism::Plain, SaslMechanism::ScramSha512]
        );
        assert!(s.plain_users.authenticate("alice", "x"));
        assert_eq!(s.max_reauth_ms[&SaslMechanism::ScramSha512], 5000);
        assert_eq!(s.max_reauth_ms[&SaslMechanism::Plain], 0);
        assert_eq!(s.failed_authentication_delay, Duration::from_millis(250));
        assert!(c.sasl_server_config("CONTROLLER").expect("ok").is_none());
        let creds = c
            .sasl_client_credentials("SASL_PLAINTEXT", "sasl.mechanism.inter.broker.protocol")
            .expect("ok")
            .expect("sasl");
        assert_eq!(
            (creds.username.as_str(), creds.password.as_str()),
            ("admin", "a-pw")
        );
        assert!(!format!("{creds:?}").contains("a-pw"));
    }

    #[test]
    fn refuses_what_cannot_work() {
        // PLAIN without a JAAS configuration; only unserved mechanisms.
        let mut lines = BASE.to_vec();
        lines.push(("sasl.enabled.mechanisms", "PLAIN"));
        let c = load(&lines).expect("loads");
        assert!(c.sasl_server_config("SASL_PLAINTEXT").is_err());
        let mut lines = BASE.to_vec();
        lines.push(("sasl.enabled.mechanisms", "GSSAPI"));
        let c = load(&lines).expect("loads");
        assert!(c.sasl_server_config("SASL_PLAINTEXT").is_err());
        // A JAAS value that does not parse.
        let mut lines = BASE.to_vec();
        lines.extend([
            ("sasl.enabled.mechanisms", "PLAIN"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule",
            ),
        ]);
        let c = load(&lines).expect("loads");
        assert!(c.sasl_server_config("SASL_PLAINTEXT").is_err());
        // Signed-JWT validation without a JWKS, or with one that cannot be read, or an unknown
        // handler class: refused, never served unsecured.
        for (class, url) in [
            (VALIDATOR_CLASSES[0], None),
            (VALIDATOR_CLASSES[1], Some("file:/nonexistent/jwks.json")),
            (VALIDATOR_CLASSES[0], Some("ldap://x/")),
            ("com.example.MyHandler", None),
        ] {
            let mut lines = BASE.to_vec();
            lines.extend([
                ("sasl.enabled.mechanisms", "OAUTHBEARER"),
                (
                    "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class",
                    class,
                ),
            ]);
            if let Some(url) = url {
                lines.push(("sasl.oauthbearer.jwks.endpoint.url", url));
            }
            let c = load(&lines).expect("loads");
            assert!(
                c.sasl_server_config("SASL_PLAINTEXT").is_err(),
                "{class} {url:?}"
            );
        }
        let mut lines = BASE.to_vec();
        lines.push(("sasl.enabled.mechanisms", "OAUTHBEARER"));
        let c = load(&lines).expect("loads");
        assert!(c
            .sasl_server_config("SASL_PLAINTEXT")
            .expect("ok")
            .expect("sasl")
            .oauthbearer
            .is_some());
    }

    #[test]
    fn signed_jwts_against_a_jwks_file() {
        use rafka_security::sasl::oauthbearer::jwk::JwkSet;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("jwks.json");
        // One EC P-256 key (the point is the P-256 generator).
        std::fs::write(
            &path,
            r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k",
                "x":"axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY",
                "y":"T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"}]}"#,
        )
        .expect("write");
        assert_eq!(
            JwkSet::parse(&std::fs::read(&path).expect("read"))
                .expect("jwks")
                .keys
                .len(),
            1
        );
        let url = format!("file://{}", path.display());
        let mut lines = BASE.to_vec();
        lines.extend([
            ("sasl.enabled.mechanisms", "OAUTHBEARER"),
            (
                "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class",
                VALIDATOR_CLASSES[1],
            ),
            ("sasl.oauthbearer.jwks.endpoint.url", url.as_str()),
            ("sasl.oauthbearer.expected.audience", "a, b"),
            ("sasl.oauthbearer.expected.issuer", "https://idp"),
            (
                "listener.name.sasl_plaintext.oauthbearer.sasl.oauthbearer.sub.claim.name",
                "azp",
            ),
            ("sasl.oauthbearer.clock.skew.seconds", "5"),
        ]);
        let c = load(&lines).expect("loads");
        assert!(
            c.warnings().iter().all(|w| !w.contains("oauthbearer")),
            "{:?}",
            c.warnings()
        );
        let s = c
            .sasl_server_config("SASL_PLAINTEXT")
            .expect("ok")
            .expect("sasl");
        let Some(TokenValidator::Jwks(v)) = s.oauthbearer.as_deref() else {
            panic!("expected the JWKS validator")
        };
        assert_eq!(
            v.rules(),
            &ClaimRules {
                clock_skew_seconds: 5,
                expected_audience: vec!["a".into(), "b".into()],
                expected_issuer: Some("https://idp".into()),
                sub_claim_name: "azp".into(),
                scope_claim_name: "scope".into(),
            }
        );
        lines.push(("sasl.oauthbearer.clock.skew.seconds", "-1"));
        assert!(
            load(&lines).is_err()
                || load(&lines)
                    .expect("loads")
                    .sasl_server_config("SASL_PLAINTEXT")
                    .is_err()
        );
    }
}
