//! What the HTTP handlers may read of this node: [`HttpState`], built by the server.

use crate::apis::KafkaApis;
use crate::lifecycle::BrokerLifecycleManager;
use rafka_controller::node::ControllerNode;
use std::sync::Arc;

/// What the handlers may read: this node's parts.
pub struct HttpState {
    pub node_id: i32,
    pub controller: Arc<ControllerNode>,
    /// The broker's parts (absent on a controller-only node).
    pub broker: Option<BrokerState>,
    /// The configuration as loaded.
    pub config: Arc<crate::config::KafkaConfig>,
    /// Whether this node is a controller (a quorum voter).
    pub is_controller: bool,
    /// What `/metrics` serves (none with `metrics.enable=false`: 404).
    pub metrics: Option<Arc<crate::metrics::NodeMetrics>>,
}

/// A broker's parts, for the handlers: the request handlers (and through them the replica
/// manager, the metadata image, the group coordinator) and the broker's lifecycle.
pub struct BrokerState {
    pub apis: Arc<KafkaApis>,
    pub lifecycle: Arc<BrokerLifecycleManager>,
    /// The client listeners' shared state (connection counts).
    pub sockets: Arc<crate::network::SocketServer>,
    /// The clients to the other nodes (their connection counters).
    pub inter_node: Vec<Arc<crate::inter_node_client::InterNodeClient>>,
}
