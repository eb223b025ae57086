//! [`Console`]: the console's state — the node's parts, its configuration ([`ConsoleConfig`],
//! from `http.console.*`) and the sampled [`History`] — and the extractor its handlers take.

use super::api::ApiError;
use super::history::History;
use crate::apis::KafkaApis;
use crate::http::state::HttpState;
use crate::network::RequestContext;
use axum::extract::State;
use axum::http::StatusCode;
use rafka_security::{KafkaPrincipal, SecurityProtocol};
use std::sync::Arc;
use std::time::Duration;

/// The console's configuration, from `http.console.*`.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// `http.console.enable`: serve the console at all.
    pub enable: bool,
    /// `http.console.write.enable`: allow the write actions.
    pub write_enable: bool,
    /// `http.console.principal`: whom the console acts as.
    pub principal: KafkaPrincipal,
    /// `http.console.sample.interval.ms`: how often the charts' samples are taken.
    pub sample_interval: Duration,
}

impl ConsoleConfig {
    pub fn from_kafka_config(config: &crate::config::KafkaConfig) -> ConsoleConfig {
        let principal = config
            .get::<String>("http.console.principal")
            .and_then(|p| {
                let (t, n) = p.split_once(':')?;
                (!t.is_empty() && !n.is_empty()).then(|| KafkaPrincipal::new(t, n))
            })
            .unwrap_or_else(KafkaPrincipal::anonymous);
        ConsoleConfig {
            enable: config.get::<bool>("http.console.enable").unwrap_or(true),
            write_enable: config
                .get::<bool>("http.console.write.enable")
                .unwrap_or(false),
            principal,
            sample_interval: Duration::from_millis(
                config
                    .get::<i64>("http.console.sample.interval.ms")
                    .unwrap_or(5000)
                    .clamp(100, 3_600_000) as u64,
            ),
        }
    }
}

/// The console's state: the node's parts, its configuration, the sampled histories.
pub struct Console {
    pub(crate) http: Arc<HttpState>,
    pub(crate) config: ConsoleConfig,
    pub(crate) history: History,
}

impl Console {
    /// The broker's request handlers, or 503 on a controller-only node.
    pub(super) fn apis(&self) -> Result<&Arc<KafkaApis>, ApiError> {
        self.http.broker.as_ref().map(|b| &b.apis).ok_or_else(|| {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "this node is not a broker")
        })
    }

    /// The request context the console's calls to the Kafka API handlers carry.
    pub(super) fn context(&self) -> RequestContext {
        RequestContext {
            connection_id: u64::MAX,
            peer: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            listener: "HTTP".to_owned(),
            security_protocol: SecurityProtocol::Plaintext,
            principal: self.config.principal.clone(),
        }
    }
}

/// The state extractor every console handler takes.
pub type ConsoleState = State<Arc<Console>>;
