//! The Raft metadata quorum (KRaft, in Rust): metadata records, the `MetadataImage` they fold
//! into, the openraft glue (log store, state machine, network) and the controller logic.
//!
//! - [`raft_types`]: the concrete openraft configuration and the command a log entry carries.
//! - `election`: when this voter campaigns (openraft's timer is off): after its election timeout,
//!   re-randomized for each retry, and only after a pre-vote majority (`pre_vote`).
//!   What it learns from the log store and the network comes through `election_observer`.

pub mod connection_quotas;
pub mod control;
pub mod convert;
pub mod describe_quorum;
mod election;
mod election_observer;
pub mod image;
pub mod log_scan;
pub mod log_store;
pub mod network;
pub mod node;
mod pre_vote;
pub mod quorum_controller;
pub mod raft_types;
pub mod scram_credentials;
pub mod server;
pub mod state_machine;

/// The wall clock in milliseconds since the epoch (0 before it), as Kafka's `Time.milliseconds`.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
