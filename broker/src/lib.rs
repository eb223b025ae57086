//! The server: what turns the codec, the log and the controller into a broker that unmodified
//! Kafka clients use.
//!
//! - [`network`]: Kafka's SocketServer — framing, per-connection tasks, `sendfile` for records.
//! - [`apis`]: `KafkaApis`, one handler file per API.
//! - [`replica_manager`]: the partitions this broker hosts; produce and fetch over their logs.
//! - [`replica_fetcher`], [`alter_partition_manager`]: a follower's fetchers; a leader's ISR
//!   proposals to the controller.
//! - [`controller_channel`]: reaching the active controller (in-process or over its listener).
//! - [`inter_node_client`]: the connections to the other nodes, shared or dedicated, with
//!   typed errors ([`inter_node_client::InterNodeError`]).
//! - [`producer_id_manager`]: producer ids for InitProducerId, in blocks from the controller.
//! - [`group_coordinator`], [`transaction_coordinator`]: the coordinators of groups and of
//!   transactions, over what they share in [`coordinator_common`].
//! - [`lifecycle`]: registration and heartbeats with the controller; controlled shutdown.
//! - [`server`]: `KafkaServer`, the process put together; start and shutdown order.
//! - [`config`]: `server.properties`, Kafka's keys and defaults.
//! - [`errors`]: crate errors to Kafka error codes.
//! - [`http`]: the HTTP listener (health, metrics, console).
//! - [`metrics`]: the node's metrics, named after Kafka's JMX MBeans (`/metrics`).

pub mod add_partitions_to_txn_manager;
pub mod alter_partition_manager;
pub mod apis;
pub mod config;
pub mod controller_channel;
pub mod coordinator_common;
pub mod errors;
pub mod group_coordinator;
pub mod http;
pub mod inter_node_client;
pub mod lifecycle;
pub mod log_read;
pub mod log_tasks;
pub mod lost_leaders;
pub mod metrics;
pub mod network;
pub mod partition;
pub mod producer_id_manager;
pub mod purgatory;
pub mod replica_fetcher;
pub mod replica_manager;
pub mod server;
pub mod transaction_coordinator;

/// Wall-clock milliseconds since the Unix epoch, as Kafka's timestamps count them.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
