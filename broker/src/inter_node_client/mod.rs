//! The broker's client for the other nodes of its cluster (Kafka's `NetworkClient` as the
//! broker uses it: `NodeToControllerChannelManager`, `InterBrokerSendThread`,
//! `TransactionMarkerChannelManager`, `ReplicaFetcherBlockingSend`).
//!
//! - [`NodeConnection`] (`connection.rs`): one persistent connection to one node — reconnect
//!   backoff, a deadline per request, correlation ids checked, frames bounded, the listener's
//!   security applied. The replica fetchers and the heartbeat own theirs directly: each needs a
//!   dedicated connection with a cadence of its own, whose closure means something.
//! - [`InterNodeClient`] (here): the shared ones, one per (destination node, [`Purpose`]), each
//!   used by one request at a time. Separate purposes keep a slow request of one kind (a
//!   CreateTopics the controller commits, markers waiting for replication) from delaying another
//!   (an ISR change), as Kafka gives each its own channel.
//! - [`InterNodeError`] (`error.rs`): why a request got no usable answer, naming the node.
//!
//! Connections are counted ([`InterNodeStats`], Kafka's `connection-creation-total` /
//! `connection-close-total`), and served at `/metrics` per client.
//!
//! Lock order: `connections` (a std mutex, never held across an await) first — under it the
//! other connections are only `try_lock`ed (to close idle ones), never waited for; then, with
//! it released, one connection's async mutex, held for that one exchange.

mod connection;
mod error;
mod stats;
#[cfg(test)]
mod tests;

pub use connection::{
    Connected, ConnectionConfig, NodeConnection, CONNECTION_SETUP_TIMEOUT, RECONNECT_BACKOFF,
    RECONNECT_BACKOFF_MAX,
};
pub use error::InterNodeError;
pub use stats::InterNodeStats;

use rafka_protocol::messages::{RequestKind, ResponseKind};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a shared connection carries (Kafka's channel names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Purpose {
    /// Requests a broker sends the controller on its own or a client's behalf: CreateTopics,
    /// DeleteTopics, configs, ElectLeaders, AllocateProducerIds, BrokerRegistration
    /// (Kafka's `forwarding` channel).
    Forwarding,
    /// AlterPartition: a leader's ISR changes (Kafka's `alter-partition` channel).
    AlterPartition,
    /// WriteTxnMarkers to the partition leaders (Kafka's `TxnMarkerSenderThread`).
    TransactionMarkers,
    /// KIP-890 verification with transaction coordinators (Kafka's `AddPartitionsToTxnSenderThread`).
    AddPartitionsToTxn,
}

impl Purpose {
    pub fn name(self) -> &'static str {
        match self {
            Purpose::Forwarding => "forwarding",
            Purpose::AlterPartition => "alter-partition",
            Purpose::TransactionMarkers => "transaction-marker",
            Purpose::AddPartitionsToTxn => "add-partitions-to-txn",
        }
    }
}

/// The shared connections to the nodes of one listener (the controller listener, or the
/// inter-broker listener): one [`NodeConnection`] per (node, [`Purpose`]), opened on first use
/// and kept. Thread-safe; requests on one connection take turns.
pub struct InterNodeClient {
    /// `broker-to-controller` or `inter-broker`: for logs and metrics.
    name: &'static str,
    config: Arc<ConnectionConfig>,
    stats: Arc<InterNodeStats>,
    /// Why a std mutex: only looked up and inserted into, never held across an await. The
    /// entries are bounded by the cluster's nodes times the purposes.
    connections: Mutex<HashMap<(i32, Purpose), SharedConnection>>,
}

/// A connection requests take turns on: the async mutex is held for one whole exchange.
type SharedConnection = Arc<tokio::sync::Mutex<NodeConnection>>;

impl InterNodeClient {
    pub fn new(name: &'static str, config: ConnectionConfig) -> InterNodeClient {
        InterNodeClient {
            name,
            config: Arc::new(config),
            stats: Arc::new(InterNodeStats::default()),
            connections: Mutex::new(HashMap::new()),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// This client's counters (also those of the dedicated connections made by
    /// [`InterNodeClient::dedicated`]).
    pub fn stats(&self) -> &Arc<InterNodeStats> {
        &self.stats
    }

    /// A connection to `node_id` owned by the caller (a replica fetcher, the heartbeat), with
    /// this client's configuration and counters.
    pub fn dedicated(&self, node_id: i32) -> NodeConnection {
        NodeConnection::new(node_id, self.config.clone(), self.stats.clone())
    }

    /// This client's connection settings.
    pub fn config(&self) -> &ConnectionConfig {
        &self.config
    }

    /// Like [`InterNodeClient::dedicated`] with other settings (a replica fetcher's client id
    /// and setup timeout), still counted with this client's connections.
    pub fn dedicated_with(&self, node_id: i32, config: ConnectionConfig) -> NodeConnection {
        NodeConnection::new(node_id, Arc::new(config), self.stats.clone())
    }

    /// Sends `body` at `version` to node `node_id` at `addr` over the connection kept for
    /// `purpose`, and returns its answer — all within `timeout`, the wait for a request ahead on
    /// that connection included.
    pub async fn send(
        &self,
        node_id: i32,
        addr: &str,
        purpose: Purpose,
        version: i16,
        body: RequestKind,
        timeout: Duration,
    ) -> Result<ResponseKind, InterNodeError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let api = body.api_key();
        let connection = {
            let mut all = self.connections.lock().unwrap_or_else(|e| e.into_inner());
            // The others unused for `connections.max.idle.ms` are closed on the way (a few
            // entries: the cluster's nodes times the purposes; one busy is skipped).
            let now = tokio::time::Instant::now();
            for (key, c) in all.iter() {
                if *key != (node_id, purpose) {
                    if let Ok(mut c) = c.try_lock() {
                        c.close_if_idle(now);
                    }
                }
            }
            all.entry((node_id, purpose))
                .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(self.dedicated(node_id))))
                .clone()
        };
        let Ok(mut connection) = tokio::time::timeout_at(deadline, connection.lock()).await else {
            return Err(InterNodeError::Timeout {
                node_id,
                addr: addr.to_owned(),
                api,
                after: timeout,
            });
        };
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let r = connection.send(addr, version, body, left).await;
        if let Err(e) = &r {
            tracing::debug!(client = self.name, purpose = purpose.name(), node_id, error = %e, "inter-node request failed");
        }
        r
    }
}
