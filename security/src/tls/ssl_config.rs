//! [`SslConfig`]: one listener's `ssl.*` keys, read and checked.
//!
//! Values come from a lookup function (the broker passes `KafkaConfig::listener_value` for the
//! listener, so `listener.name.<listener>.ssl.*` overrides the global key), which keeps this crate
//! free of the broker's configuration types. Everything that can be checked without reading
//! files is checked here, so that a bad value stops the start with a message naming the key.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};

use super::principal_mapper::SslPrincipalMapper;
use super::tls_error::TlsError;

/// Where the listener's own certificate chain and private key come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeystoreSource {
    /// `ssl.keystore.location`: one PEM file holding the private key and the certificate chain.
    File(PathBuf),
    /// `ssl.keystore.certificate.chain` and `ssl.keystore.key`: PEM text in the configuration.
    Inline { chain: String, key: String },
}

/// Where the certificates this side trusts come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TruststoreSource {
    /// `ssl.truststore.location`: a PEM file of certificates.
    File(PathBuf),
    /// `ssl.truststore.certificates`: PEM text in the configuration.
    Inline(String),
}

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    #[default]
    None,
    /// A client certificate is asked for; a client without one is `User:ANONYMOUS`.
    Requested,
    /// A client without a trusted certificate is refused during the handshake.
    Required,
}

/// One listener's TLS settings.
#[derive(Clone)]
pub struct SslConfig {
    /// The listener's name, for messages.
    pub listener: String,
    pub keystore: Option<KeystoreSource>,
    /// `ssl.key.password`: the password of an encrypted PKCS#8 key. Never logged.
    pub key_password: Option<String>,
    pub truststore: Option<TruststoreSource>,
    pub client_auth: ClientAuth,
    /// `ssl.enabled.protocols`, those rustls speaks.
    pub protocols: Vec<&'static SupportedProtocolVersion>,
    /// `ssl.cipher.suites`; empty for the provider's defaults.
    pub cipher_suites: Vec<SupportedCipherSuite>,
    /// `ssl.endpoint.identification.algorithm=https`: the client side checks the server's
    /// certificate names the host it connected to.
    pub endpoint_identification: bool,
    /// `ssl.principal.mapping.rules`.
    pub principal_mapper: SslPrincipalMapper,
    /// `ssl.allow.dn.changes`: a dynamic keystore update may change the certificate's subject.
    pub allow_dn_changes: bool,
    /// `ssl.allow.san.changes`: … and its subject alternative names.
    pub allow_san_changes: bool,
}

impl std::fmt::Debug for SslConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SslConfig")
            .field("listener", &self.listener)
            .field(
                "keystore",
                &self.keystore.as_ref().map(|k| match k {
                    KeystoreSource::File(p) => p.display().to_string(),
                    KeystoreSource::Inline { .. } => "<inline PEM>".to_owned(),
                }),
            )
            .field(
                "key_password",
                &self.key_password.as_ref().map(|_| "<hidden>"),
            )
            .field("truststore", &self.truststore)
            .field("client_auth", &self.client_auth)
            .field("protocols", &self.protocols)
            .field("cipher_suites", &self.cipher_suites)
            .field("endpoint_identification", &self.endpoint_identification)
            .field("allow_dn_changes", &self.allow_dn_changes)
            .field("allow_san_changes", &self.allow_san_changes)
            .finish()
    }
}

/// Kafka's defaults of the keys read here.
pub mod defaults {
    pub const KEYSTORE_TYPE: &str = "JKS";
    pub const TRUSTSTORE_TYPE: &str = "JKS";
    pub const CLIENT_AUTH: &str = "none";
    pub const ENABLED_PROTOCOLS: &str = "TLSv1.2,TLSv1.3";
    pub const ENDPOINT_IDENTIFICATION_ALGORITHM: &str = "https";
    pub const PRINCIPAL_MAPPING_RULES: &str = "DEFAULT";
}

/// The provider rafka's TLS uses everywhere: rustls's `ring`. rustls 0.23.48 marks it
/// deprecated because it lacks post-quantum key exchange (aws-lc-rs has it); rafka keeps `ring`
/// so that building needs only the Rust toolchain and gcc (aws-lc needs cmake or more).
///
/// Key exchange prefers X25519, then P-256, then P-384: this rustls release lists P-384 first,
/// and ring's P-384 is the slow one (its ECDH was most of a handshake's server CPU in
/// `cargo bench --bench tls`, ~0.7 ms).
#[allow(deprecated)]
pub fn provider() -> CryptoProvider {
    use rustls::crypto::ring::kx_group;
    let mut provider = rustls::crypto::ring::default_provider();
    provider.kx_groups = vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1];
    provider
}

impl SslConfig {
    /// Reads the listener's keys through `get` (an unset or empty value is Kafka's default).
    pub fn from_keys(
        listener: &str,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<SslConfig, TlsError> {
        let raw = &get;
        let get = |key: &str| {
            raw(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let pem_type = |key: &str, default: &str| -> Result<(), TlsError> {
            let value = get(key).unwrap_or_else(|| default.to_owned());
            if value.eq_ignore_ascii_case("PEM") {
                Ok(())
            } else {
                Err(TlsError::UnsupportedStoreType {
                    key: key.to_owned(),
                    value,
                })
            }
        };

        let location = get("ssl.keystore.location");
        let chain = get("ssl.keystore.certificate.chain");
        let key = get("ssl.keystore.key");
        let keystore = match (location, chain, key) {
            (None, None, None) => None,
            (Some(path), None, None) => Some(KeystoreSource::File(PathBuf::from(path))),
            (None, Some(chain), Some(key)) => Some(KeystoreSource::Inline { chain, key }),
            (Some(_), _, _) => {
                return Err(TlsError::Missing(format!(
                    "listener {listener}: set either ssl.keystore.location or \
                     ssl.keystore.certificate.chain with ssl.keystore.key, not both"
                )))
            }
            (None, _, _) => {
                return Err(TlsError::Missing(format!(
                    "listener {listener}: ssl.keystore.certificate.chain and ssl.keystore.key \
                     must be set together"
                )))
            }
        };
        if keystore.is_some() {
            pem_type("ssl.keystore.type", defaults::KEYSTORE_TYPE)?;
        }

        let truststore = match (
            get("ssl.truststore.location"),
            get("ssl.truststore.certificates"),
        ) {
            (None, None) => None,
            (Some(path), None) => Some(TruststoreSource::File(PathBuf::from(path))),
            (None, Some(pem)) => Some(TruststoreSource::Inline(pem)),
            (Some(_), Some(_)) => {
                return Err(TlsError::Missing(format!(
                    "listener {listener}: set either ssl.truststore.location or \
                     ssl.truststore.certificates, not both"
                )))
            }
        };
        if truststore.is_some() {
            pem_type("ssl.truststore.type", defaults::TRUSTSTORE_TYPE)?;
        }

        let client_auth_raw =
            get("ssl.client.auth").unwrap_or_else(|| defaults::CLIENT_AUTH.to_owned());
        let client_auth = match client_auth_raw.to_ascii_lowercase().as_str() {
            "none" => ClientAuth::None,
            "requested" => ClientAuth::Requested,
            "required" => ClientAuth::Required,
            _ => {
                return Err(TlsError::InvalidValue {
                    key: "ssl.client.auth".into(),
                    value: client_auth_raw,
                    reason: "must be one of none, requested, required".into(),
                })
            }
        };

        let protocols_raw =
            get("ssl.enabled.protocols").unwrap_or_else(|| defaults::ENABLED_PROTOCOLS.to_owned());
        let protocols = parse_protocols(&protocols_raw)?;

        let suites_raw = get("ssl.cipher.suites").unwrap_or_default();
        let cipher_suites = parse_cipher_suites(&suites_raw)?;
        if !cipher_suites.is_empty()
            && !cipher_suites
                .iter()
                .any(|s| protocols.iter().any(|p| s.version() == *p))
        {
            return Err(TlsError::InvalidValue {
                key: "ssl.cipher.suites".into(),
                value: suites_raw,
                reason: format!(
                    "none of these suites is usable with ssl.enabled.protocols={protocols_raw}"
                ),
            });
        }

        // Unset is Kafka's default (https); only an explicit empty value turns the check off.
        let endpoint_identification =
            match raw("ssl.endpoint.identification.algorithm").map(|v| v.trim().to_owned()) {
                None => true,
                Some(v) if v.is_empty() => false,
                Some(v) if v.eq_ignore_ascii_case("https") => true,
                Some(v) => {
                    return Err(TlsError::InvalidValue {
                        key: "ssl.endpoint.identification.algorithm".into(),
                        value: v,
                        reason: "must be https (check the host name) or empty (do not)".into(),
                    })
                }
            };

        let rules = get("ssl.principal.mapping.rules")
            .unwrap_or_else(|| defaults::PRINCIPAL_MAPPING_RULES.to_owned());
        let principal_mapper =
            SslPrincipalMapper::parse(&rules).map_err(|reason| TlsError::InvalidValue {
                key: "ssl.principal.mapping.rules".into(),
                value: rules.clone(),
                reason,
            })?;

        let flag = |key: &str| -> Result<bool, TlsError> {
            match get(key) {
                None => Ok(false),
                Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
                Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
                Some(v) => Err(TlsError::InvalidValue {
                    key: key.into(),
                    value: v,
                    reason: "must be true or false".into(),
                }),
            }
        };
        let allow_dn_changes = flag("ssl.allow.dn.changes")?;
        let allow_san_changes = flag("ssl.allow.san.changes")?;

        Ok(SslConfig {
            listener: listener.to_owned(),
            allow_dn_changes,
            allow_san_changes,
            keystore,
            key_password: get("ssl.key.password"),
            truststore,
            client_auth,
            protocols,
            cipher_suites,
            endpoint_identification,
            principal_mapper,
        })
    }

    /// The provider restricted to `ssl.cipher.suites` (all of its suites when unset).
    pub fn crypto_provider(&self) -> Arc<CryptoProvider> {
        let mut provider = provider();
        if !self.cipher_suites.is_empty() {
            provider.cipher_suites = self.cipher_suites.clone();
        }
        Arc::new(provider)
    }
}

/// `ssl.enabled.protocols`: TLSv1.2 and TLSv1.3. Older versions (which rustls does not speak)
/// are skipped with a warning; anything else is refused, as is a list with nothing usable.
fn parse_protocols(raw: &str) -> Result<Vec<&'static SupportedProtocolVersion>, TlsError> {
    let mut out: Vec<&'static SupportedProtocolVersion> = Vec::new();
    let invalid = |reason: String| TlsError::InvalidValue {
        key: "ssl.enabled.protocols".into(),
        value: raw.to_owned(),
        reason,
    };
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let version = match name {
            "TLSv1.3" => &rustls::version::TLS13,
            "TLSv1.2" => &rustls::version::TLS12,
            "TLSv1.1" | "TLSv1" | "SSLv3" | "SSLv2Hello" => {
                tracing::warn!(
                    protocol = name,
                    "ssl.enabled.protocols: not supported, skipped"
                );
                continue;
            }
            other => return Err(invalid(format!("unknown protocol {other:?}"))),
        };
        if !out.contains(&version) {
            out.push(version);
        }
    }
    if out.is_empty() {
        return Err(invalid(
            "no usable protocol: use TLSv1.2 and/or TLSv1.3".into(),
        ));
    }
    Ok(out)
}

/// The IANA name of a suite (Java's name too): rustls calls TLS 1.3 suites `TLS13_*`.
pub fn iana_name(suite: &SupportedCipherSuite) -> String {
    let name = format!("{:?}", suite.suite());
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name,
    }
}

/// `ssl.cipher.suites`: IANA names of suites the provider has; an unknown one is refused.
fn parse_cipher_suites(raw: &str) -> Result<Vec<SupportedCipherSuite>, TlsError> {
    let available = provider().cipher_suites;
    let mut out = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let found = available
            .iter()
            .find(|s| iana_name(s) == name || format!("{:?}", s.suite()) == name);
        match found {
            Some(s) => out.push(*s),
            None => {
                let known: Vec<String> = available.iter().map(iana_name).collect();
                return Err(TlsError::InvalidValue {
                    key: "ssl.cipher.suites".into(),
                    value: raw.to_owned(),
                    reason: format!(
                        "unknown or unsupported cipher suite {name:?}; supported: {}",
                        known.join(", ")
                    ),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<SslConfig, TlsError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        SslConfig::from_keys("SSL", |k| map.get(k).cloned())
    }

    #[test]
    fn reads_pem_stores_and_refuses_jks() {
        let c = config(&[
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.location", "/k.pem"),
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.certificates", "-----BEGIN CERTIFICATE-----"),
        ])
        .expect("valid");
        assert_eq!(c.keystore, Some(KeystoreSource::File("/k.pem".into())));
        assert!(matches!(c.truststore, Some(TruststoreSource::Inline(_))));
        assert_eq!(c.client_auth, ClientAuth::None);
        assert!(c.endpoint_identification);
        assert_eq!(c.protocols.len(), 2);
        // JKS is Kafka's default type: a location without a type is refused, with the fix.
        let e = config(&[("ssl.keystore.location", "/k.jks")]).expect_err("JKS");
        assert!(e.to_string().contains("PEM"), "{e}");
        let e = config(&[
            ("ssl.keystore.type", "PKCS12"),
            ("ssl.keystore.location", "/k.p12"),
        ])
        .expect_err("PKCS12");
        assert!(matches!(e, TlsError::UnsupportedStoreType { .. }), "{e}");
        assert!(config(&[("ssl.keystore.type", "PEM"), ("ssl.keystore.key", "x")]).is_err());
    }

    #[test]
    fn checks_client_auth_protocols_suites_and_endpoint_identification() {
        assert_eq!(
            config(&[("ssl.client.auth", "required")])
                .expect("ok")
                .client_auth,
            ClientAuth::Required
        );
        assert!(config(&[("ssl.client.auth", "sometimes")]).is_err());
        let c = config(&[("ssl.enabled.protocols", "TLSv1.3,TLSv1.1")]).expect("ok");
        assert_eq!(c.protocols, vec![&rustls::version::TLS13]);
        assert!(config(&[("ssl.enabled.protocols", "TLSv1.1")]).is_err());
        assert!(config(&[("ssl.enabled.protocols", "TLSv9")]).is_err());
        let c = config(&[(
            "ssl.cipher.suites",
            "TLS_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        )])
        .expect("ok");
        assert_eq!(c.cipher_suites.len(), 2);
        let e = config(&[("ssl.cipher.suites", "TLS_RSA_WITH_RC4_128_MD5")]).expect_err("rc4");
        assert!(e.to_string().contains("TLS_RSA_WITH_RC4_128_MD5"), "{e}");
        // A TLS 1.2 suite only, with TLS 1.3 only: nothing usable.
        assert!(config(&[
            ("ssl.enabled.protocols", "TLSv1.3"),
            ("ssl.cipher.suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
        ])
        .is_err());
        assert!(
            !config(&[("ssl.endpoint.identification.algorithm", "")])
                .expect("ok")
                .endpoint_identification
        );
        assert!(config(&[("ssl.endpoint.identification.algorithm", "ldap")]).is_err());
        assert!(config(&[("ssl.principal.mapping.rules", "RULE:[/x/")]).is_err());
    }
}
