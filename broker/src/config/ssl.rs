//! A listener's `ssl.*` settings as this broker obeys them: the static keys
//! (`listener.name.<l>.ssl.*`, then `ssl.*`) under the listener-prefixed keys set dynamically
//! on this broker (Kafka's dynamic SSL update: IncrementalAlterConfigs / AlterConfigs on the
//! `BROKER` resource named by this node's id).
//!
//! Only the keystore and truststore keys may be changed dynamically, per broker and per
//! listener (Kafka's `SslConfigs.RECONFIGURABLE_CONFIGS`); everything else about a listener's
//! TLS is read at start.

use std::collections::BTreeMap;
use std::sync::Arc;

use rafka_security::tls::{SslConfig, TlsError, TlsServer};

use super::listener_keys::dynamic_listener_ssl_key;
use super::KafkaConfig;

impl KafkaConfig {
    /// The `ssl.*` settings of `listener` in force (dynamic per-broker values first).
    pub fn ssl_config(&self, listener: &str) -> Result<SslConfig, TlsError> {
        SslConfig::from_keys(listener, |key| self.listener_value(listener, key))
    }
}

/// Applies the dynamic SSL updates the image holds for this broker to its listeners' TLS
/// servers: once a listener's keys change, new connections get the new keystore and truststore.
/// The broker calls [`DynamicListenerSsl::on_config`] with its configuration in force
/// ([`DynamicBrokerConfig`](super::dynamic_broker_config::DynamicBrokerConfig), updated from each new image) before
/// its handlers see the image, so an AlterConfigs that waits for its change to reach the image
/// answers after the listener switched.
pub struct DynamicListenerSsl {
    listeners: Vec<(String, Arc<TlsServer>)>,
    /// The listener-prefixed reconfigurable keys last applied.
    applied: BTreeMap<String, String>,
}

impl DynamicListenerSsl {
    /// `listeners`: the TLS listeners (name, server) of this broker.
    pub fn new(listeners: Vec<(String, Arc<TlsServer>)>) -> DynamicListenerSsl {
        DynamicListenerSsl {
            listeners,
            applied: BTreeMap::new(),
        }
    }

    /// Reconfigures the listeners whose dynamic keys in `config` (the configuration in force)
    /// differ from those last applied.
    pub fn on_config(&mut self, config: &KafkaConfig) {
        if self.listeners.is_empty() {
            return;
        }
        let now: BTreeMap<String, String> = config
            .dynamic()
            .per_broker
            .iter()
            .filter(|(k, _)| dynamic_listener_ssl_key(k).is_some())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if now == self.applied {
            return;
        }
        for (name, tls) in &self.listeners {
            let prefix = format!("listener.name.{}.", name.to_ascii_lowercase());
            let of = |m: &BTreeMap<String, String>| -> Vec<(String, String)> {
                m.iter()
                    .filter(|(k, _)| k.starts_with(&prefix))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            };
            if of(&now) == of(&self.applied) {
                continue;
            }
            match config.ssl_config(name).and_then(|c| tls.reconfigure(c)) {
                Ok(()) => tracing::info!(
                    listener = %name,
                    "TLS keystore/truststore updated by a dynamic broker config"
                ),
                Err(e) => tracing::warn!(
                    listener = %name,
                    error = %e,
                    "dynamic SSL update cannot be applied; keeping the certificates in force"
                ),
            }
        }
        self.applied = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconfigurable_keys() {
        assert_eq!(
            dynamic_listener_ssl_key("listener.name.ssl.ssl.keystore.location"),
            Some(("ssl", "ssl.keystore.location"))
        );
        for no in [
            "ssl.keystore.location",
            "listener.name.ssl.ssl.client.auth",
            "listener.name..ssl.keystore.location",
            "listener.name.ssl.ssl.principal.mapping.rules",
        ] {
            assert_eq!(dynamic_listener_ssl_key(no), None, "{no}");
        }
    }
}
