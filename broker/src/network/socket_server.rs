//! [`SocketServer`]: the state every client listener of one broker shares — its settings
//! ([`NetworkConfig`], from Kafka's keys), the connection quotas and the request memory pools.

use std::sync::Arc;
use std::time::Duration;

use tracing::warn;

use super::memory_pool::MemoryPool;
use crate::config::KafkaConfig;
use rafka_controller::connection_quotas::{
    parse_overrides, resolve_overrides, ConnectionLimits, ConnectionQuotas, OverridesError,
};

/// `queued.max.request.bytes` when it is not set (or set to Kafka's -1, "unbounded"): 512 MiB.
///
/// Kafka leaves the request pool unbounded by default; rafka always bounds it. The bound cannot
/// hurt a normal client: it only makes a connection *wait* before reading a body that does not
/// fit, never fail; it holds five Produce requests of the largest size
/// (`socket.request.max.bytes`, 100 MiB) at once, and other requests — whose decoded form and
/// response are counted in a second pool of the same size, at `memory_pool::DECODE_AMPLIFICATION`
/// times their bytes — are a few KiB each; and the bytes a broker really has in flight are the requests being handled
/// right now — a few MiB at a GB/s of produce traffic with millisecond handling, hundreds of
/// MiB only when hundreds of producers each have a 1 MiB batch parked in acks=all purgatory at
/// the same moment, and even then they only queue for their turn.
pub const DEFAULT_QUEUED_MAX_REQUEST_BYTES: usize = 512 * 1024 * 1024;

/// The socket server's settings (Kafka's names and defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// `socket.request.max.bytes`: the largest request frame accepted (size prefix excluded);
    /// a larger or negative size closes the connection before anything is allocated.
    pub max_request_bytes: usize,
    /// `connections.max.idle.ms`: a connection that neither sends a byte nor accepts a byte of
    /// its response for this long is closed. Time spent in the handler, or waiting for room in
    /// the request memory pool, does not count.
    pub idle_timeout: Duration,
    /// `queued.max.request.bytes`: the bytes of requests read and not yet answered, over every
    /// connection of every client listener.
    pub queued_max_request_bytes: usize,
    /// `max.connections`, `listener.name.<name>.max.connections`, `max.connections.per.ip` and
    /// its overrides.
    pub limits: ConnectionLimits,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            max_request_bytes: 104_857_600,
            idle_timeout: Duration::from_millis(600_000),
            queued_max_request_bytes: DEFAULT_QUEUED_MAX_REQUEST_BYTES,
            limits: ConnectionLimits::default(),
        }
    }
}

impl NetworkConfig {
    /// The socket server's settings from the broker's configuration. Fails when
    /// `max.connections.per.ip.overrides` is malformed or names a host that does not resolve
    /// (Kafka refuses such a configuration at start too).
    pub fn from_kafka_config(c: &KafkaConfig) -> Result<NetworkConfig, OverridesError> {
        let count = |v: i32| usize::try_from(v).unwrap_or(0);
        let overrides = c
            .get::<String>("max.connections.per.ip.overrides")
            .unwrap_or_default();
        let listeners = c.broker_listeners();
        // Kafka's per-listener settings: `listener.name.<lower-cased name>.max.connections`.
        let max_connections_per_listener = listeners
            .iter()
            .filter_map(|l| {
                let key = listener_max_connections_key(&l.listener_name);
                let (raw, _) = c.raw(&key)?;
                match raw.trim().parse::<i32>() {
                    Ok(v) if v > 0 => Some((l.listener_name.clone(), count(v))),
                    _ => {
                        warn!(key, value = raw, "ignored: not a positive number");
                        None
                    }
                }
            })
            .collect();
        let queued = c.get::<i64>("queued.max.request.bytes").unwrap_or(-1);
        Ok(NetworkConfig {
            max_request_bytes: c.socket_request_max_bytes().max(1) as usize,
            idle_timeout: Duration::from_millis(c.connections_max_idle_ms().max(1) as u64),
            queued_max_request_bytes: if queued > 0 {
                usize::try_from(queued).unwrap_or(usize::MAX)
            } else {
                DEFAULT_QUEUED_MAX_REQUEST_BYTES
            },
            limits: ConnectionLimits {
                max_connections: count(c.max_connections()),
                max_connections_per_listener,
                max_connections_per_ip: count(c.max_connections_per_ip()),
                max_connections_per_ip_overrides: resolve_overrides(&parse_overrides(&overrides)?)?,
                // Kafka's `protectedListener`: the inter-broker listener, when there are others.
                protected_listener: (listeners.len() > 1)
                    .then(|| c.inter_broker_listener_name().to_owned()),
            },
        })
    }
}

/// `listener.name.<name>.max.connections`, with the name lower-cased as Kafka's
/// `ListenerName.configPrefix` does.
pub fn listener_max_connections_key(listener: &str) -> String {
    format!("listener.name.{}.max.connections", listener.to_lowercase())
}

/// The state shared by every client listener of one broker: its settings, the connection counts
/// and the request memory pool.
#[derive(Debug)]
pub struct SocketServer {
    config: NetworkConfig,
    quotas: Arc<ConnectionQuotas>,
    /// The bytes of requests read and not yet answered (`queued.max.request.bytes`)...
    pool: Arc<MemoryPool>,
    /// ... and, as much again, what decoding and answering them costs (see `memory_pool`).
    decode_pool: Arc<MemoryPool>,
    /// Where each request's times are recorded (Kafka's RequestMetrics); none: not recorded.
    metrics: Option<Arc<crate::metrics::NodeMetrics>>,
}

impl SocketServer {
    pub fn new(config: NetworkConfig) -> Arc<SocketServer> {
        SocketServer::with_metrics(config, None)
    }

    /// As [`SocketServer::new`], recording each request's times in `metrics`.
    pub fn with_metrics(
        config: NetworkConfig,
        metrics: Option<Arc<crate::metrics::NodeMetrics>>,
    ) -> Arc<SocketServer> {
        Arc::new(SocketServer {
            quotas: ConnectionQuotas::new(config.limits.clone()),
            pool: Arc::new(MemoryPool::new(config.queued_max_request_bytes)),
            decode_pool: Arc::new(MemoryPool::new(config.queued_max_request_bytes)),
            config,
            metrics,
        })
    }

    pub fn metrics(&self) -> Option<&Arc<crate::metrics::NodeMetrics>> {
        self.metrics.as_ref()
    }

    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    pub fn quotas(&self) -> &Arc<ConnectionQuotas> {
        &self.quotas
    }

    pub fn pool(&self) -> &Arc<MemoryPool> {
        &self.pool
    }

    pub fn decode_pool(&self) -> &Arc<MemoryPool> {
        &self.decode_pool
    }
}
