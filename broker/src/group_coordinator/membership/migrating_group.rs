//! [`MigratingGroup`]: a classic group as KIP-848's online migration hands it over, in either
//! direction.

/// A classic group as KIP-848's online migration hands it over: read from a classic group that
/// becomes a consumer group (Kafka's `ConsumerGroup.fromClassicGroup`), or built from a consumer
/// group that becomes classic (`ClassicGroup.fromConsumerGroup`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigratingGroup {
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// In state Empty (a conversion then just replaces it).
    pub empty: bool,
    /// In join order.
    pub members: Vec<MigratingMember>,
}

/// One member of a [`MigratingGroup`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigratingMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// Its JoinGroup protocols (name, metadata), in preference order.
    pub protocols: Vec<(String, bytes::Bytes)>,
    /// Its assignment (a ConsumerProtocolAssignment for `consumer` groups; empty if none yet).
    pub assignment: bytes::Bytes,
}
