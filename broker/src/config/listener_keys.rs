//! The keys a listener takes under its own prefix (`listener.name.<l>.<key>`): which SASL keys
//! are read per listener, and which `ssl.*` keys may be changed per listener while it runs.

/// Keys read per listener (`listener.name.<l>.<key>`) or per listener and mechanism
/// (`listener.name.<l>.<mechanism>.<key>`).
pub const LISTENER_SASL_KEYS: &[&str] = &[
    "sasl.enabled.mechanisms",
    "sasl.jaas.config",
    "connections.max.reauth.ms",
    "sasl.server.max.receive.size",
    "sasl.server.callback.handler.class",
    "sasl.oauthbearer.jwks.endpoint.url",
    "sasl.oauthbearer.jwks.endpoint.refresh.ms",
    "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms",
    "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms",
    "sasl.oauthbearer.expected.audience",
    "sasl.oauthbearer.expected.issuer",
    "sasl.oauthbearer.sub.claim.name",
    "sasl.oauthbearer.scope.claim.name",
    "sasl.oauthbearer.clock.skew.seconds",
];

/// Whether `key` (`listener.name.…`) is one of the SASL keys read per listener.
pub fn is_listener_sasl_key(key: &str) -> bool {
    LISTENER_SASL_KEYS
        .iter()
        .any(|k| key.ends_with(&format!(".{k}")))
}

/// The `ssl.*` keys a listener takes dynamically (as `listener.name.<l>.<key>`).
pub const RECONFIGURABLE_SSL_KEYS: &[&str] = &[
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.truststore.certificates",
];

/// `listener.name.<l>.<key>` with a reconfigurable `key`: the listener's name (as written, lower
/// case in Kafka's spelling) and the key.
pub fn dynamic_listener_ssl_key(key: &str) -> Option<(&str, &str)> {
    let (listener, rest) = key.strip_prefix("listener.name.")?.split_once('.')?;
    (!listener.is_empty() && RECONFIGURABLE_SSL_KEYS.contains(&rest)).then_some((listener, rest))
}
