//! The active controller's logic, as Kafka's `QuorumController` managers: each request is
//! validated against the current [`MetadataImage`] and answered with the records that carry it
//! out plus the response — never by mutating the image. The caller commits the records through
//! Raft and replays them into the image on every node (the active controller included), so the
//! leader, the followers and a node reloading from a snapshot share one path: `apply`.
//!
//! - [`acls`] — `AclControlManager`: CreateAcls, DeleteAcls.
//! - [`cluster`] — `ClusterControlManager`: broker registration, broker epochs, the cluster id.
//! - [`heartbeats`] — `BrokerHeartbeatManager`: in-memory broker sessions, heartbeats,
//!   fencing on session expiry, controlled shutdown.
//! - [`heartbeat_tracker`] — `BrokerHeartbeatTracker`: when heartbeats arrived, recorded on
//!   the request path ahead of the event queue, so a busy controller fences no live broker.
//! - [`replication`] — `ReplicationControlManager`: leader and ISR changes when brokers come and
//!   go, AlterPartition, ElectLeaders.
//! - [`topics`] — the rest of `ReplicationControlManager`: CreateTopics, DeleteTopics,
//!   CreatePartitions, Kafka's topic-name rules.
//! - [`config`] — `ConfigurationControlManager`: IncrementalAlterConfigs, AlterConfigs, config
//!   lookups (`unclean.leader.election.enable`).
//! - [`producer_ids`] — `ProducerIdControlManager`: AllocateProducerIds.
//! - [`scram`] — `ScramControlManager`: AlterUserScramCredentials.
//! - [`directories`] — AssignReplicasToDirs: a replica its broker cannot host loses leadership.
//! - [`partition_change`] — `PartitionChangeBuilder`: elections and ISR targets, for all of them.
//! - [`placement`] — `StripedReplicaPlacer`: replicas for new partitions.
//! - [`broker_epoch`], [`topic_name`], [`random_uuid`] — the small checks and ids the managers
//!   share (Kafka's `checkBrokerEpoch`, `Topic.validate`, `Uuid.randomUuid`).
//!
//! Who calls whom, one way only: [`cluster`] registers brokers with [`heartbeats`], which fences
//! and unfences them through [`replication`]; [`replication`] and [`topics`] read topic configs
//! from [`config`]; the shared checks above call none of them.
//!
//! [`ActiveController`] bundles the state that lives only on the active controller (broker
//! sessions, the placer's generator) with the configuration, one method per request.
//!
//! **Ordering contract.** Each call reads the image as it will be once every record generated
//! before it has been applied: the caller applies a result's records (after committing them)
//! before generating the next result, as Kafka's single controller thread does. A request that
//! fails — as a whole or for one topic, partition or resource — yields no records for it.
//!
//! Nothing here is async or touches Raft; time is passed in.

pub mod acls;
pub mod api_error;
pub mod broker_epoch;
pub mod cluster;
pub mod config;
pub mod controller_config;
pub mod controller_result;
pub mod directories;
pub mod heartbeat_tracker;
pub mod heartbeats;
pub mod partition_change;
pub mod placement;
pub mod producer_ids;
pub mod random_uuid;
pub mod replication;
pub mod scram;
pub mod topic_name;
pub mod topics;

#[cfg(test)]
mod invariants;
#[cfg(test)]
mod testkit;

pub use api_error::ApiError;
pub use controller_config::ControllerConfig;
pub use controller_result::{ControllerResult, MAX_RECORDS_PER_USER_OP};
pub use heartbeats::{BrokerControlState, BrokerHeartbeatManager};
pub use partition_change::{Election, PartitionChangeBuilder};
pub use placement::{PlacementError, StripedReplicaPlacer, UsableBroker};

use crate::image::MetadataImage;
use rafka_protocol::messages::{
    AllocateProducerIdsRequest, AllocateProducerIdsResponse, AlterConfigsRequest,
    AlterConfigsResponse, AlterPartitionRequest, AlterPartitionResponse,
    AssignReplicasToDirsRequest, AssignReplicasToDirsResponse, BrokerHeartbeatRequest,
    BrokerHeartbeatResponse, BrokerRegistrationRequest, BrokerRegistrationResponse,
    CreateAclsRequest, CreateAclsResponse, CreatePartitionsRequest, CreatePartitionsResponse,
    CreateTopicsRequest, CreateTopicsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, ElectLeadersRequest, ElectLeadersResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, MetadataRecord,
};
use std::time::Instant;

/// The active controller: one per Raft leadership — built when this node becomes the leader
/// (Kafka's `QuorumController` activation), dropped when it stops being one.
#[derive(Debug, Clone)]
pub struct ActiveController {
    config: ControllerConfig,
    heartbeats: BrokerHeartbeatManager,
    placer: StripedReplicaPlacer,
}

impl ActiveController {
    /// Every broker in `image` starts with a fresh session at `now`; `seed` drives placement.
    pub fn new(config: ControllerConfig, image: &MetadataImage, now: Instant, seed: u64) -> Self {
        let heartbeats = BrokerHeartbeatManager::activate(image, config.session_timeout, now);
        ActiveController {
            config,
            heartbeats,
            placer: StripedReplicaPlacer::new(seed),
        }
    }

    pub fn config(&self) -> &ControllerConfig {
        &self.config
    }

    pub fn heartbeats(&self) -> &BrokerHeartbeatManager {
        &self.heartbeats
    }

    pub fn heartbeats_mut(&mut self) -> &mut BrokerHeartbeatManager {
        &mut self.heartbeats
    }

    /// The records that give a cluster without one its id (see [`cluster::cluster_id_record`]).
    pub fn cluster_id_record(
        &self,
        image: &MetadataImage,
        new_id: &mut dyn FnMut() -> u128,
    ) -> Option<MetadataRecord> {
        cluster::cluster_id_record(image, self.config.cluster_id.as_deref(), new_id)
    }

    /// BrokerRegistration. `next_write_offset` is the metadata offset the records will be
    /// committed at: it becomes the new broker epoch.
    pub fn register_broker(
        &mut self,
        image: &MetadataImage,
        request: &BrokerRegistrationRequest,
        next_write_offset: i64,
        now: Instant,
    ) -> ControllerResult<BrokerRegistrationResponse> {
        cluster::register_broker(
            image,
            &self.config,
            &mut self.heartbeats,
            request,
            next_write_offset,
            now,
        )
    }

    /// BrokerHeartbeat.
    pub fn broker_heartbeat(
        &mut self,
        image: &MetadataImage,
        request: &BrokerHeartbeatRequest,
        next_write_offset: i64,
        now: Instant,
    ) -> ControllerResult<BrokerHeartbeatResponse> {
        heartbeats::process_heartbeat(
            image,
            &self.config,
            &mut self.heartbeats,
            request,
            next_write_offset,
            now,
        )
    }

    /// A broker that has most likely died: its leaderships and ISR places move now, its fencing
    /// waits for its session (see [`heartbeats`]). `true` if it was unfenced.
    pub fn broker_likely_dead(
        &self,
        image: &MetadataImage,
        broker_id: i32,
    ) -> ControllerResult<bool> {
        heartbeats::broker_likely_dead(image, &self.config, &self.heartbeats, broker_id)
    }

    /// Fences every broker whose session has expired at `now`; the response lists them.
    /// Preferred elections for partitions whose preferred replica can lead again, when
    /// `auto.leader.rebalance.enable` is on.
    pub fn balance_partition_leaders(&self, image: &MetadataImage) -> ControllerResult<usize> {
        if !self.config.auto_leader_rebalance_enable {
            return ControllerResult::without_records(0);
        }
        // Kafka's batch size for one round (`maxElectionsPerImbalance`).
        replication::balance_partition_leaders(image, 1000)
    }

    pub fn fence_expired(
        &mut self,
        image: &MetadataImage,
        now: Instant,
    ) -> ControllerResult<Vec<i32>> {
        heartbeats::fence_expired(image, &self.config, &mut self.heartbeats, now)
    }

    /// CreateAcls; `new_id` supplies random bits for ACL ids.
    pub fn create_acls(
        &self,
        image: &MetadataImage,
        request: &CreateAclsRequest,
        new_id: &mut dyn FnMut() -> u128,
    ) -> ControllerResult<CreateAclsResponse> {
        acls::create_acls(image, request, new_id)
    }

    pub fn delete_acls(
        &self,
        image: &MetadataImage,
        request: &DeleteAclsRequest,
    ) -> ControllerResult<DeleteAclsResponse> {
        acls::delete_acls(image, request)
    }

    /// CreateTopics; `new_id` supplies random bits for topic ids.
    pub fn create_topics(
        &mut self,
        image: &MetadataImage,
        request: &CreateTopicsRequest,
        new_id: &mut dyn FnMut() -> u128,
    ) -> ControllerResult<CreateTopicsResponse> {
        topics::create_topics(image, &self.config, &mut self.placer, request, new_id)
    }

    /// DeleteTopics at request `version`; refused whole while `delete.topic.enable` is false.
    pub fn delete_topics(
        &self,
        image: &MetadataImage,
        request: &DeleteTopicsRequest,
        version: i16,
    ) -> ControllerResult<DeleteTopicsResponse> {
        if !self.config.delete_topic_enable {
            return topics::deletion_disabled(request, version);
        }
        topics::delete_topics(image, request)
    }

    pub fn create_partitions(
        &mut self,
        image: &MetadataImage,
        request: &CreatePartitionsRequest,
    ) -> ControllerResult<CreatePartitionsResponse> {
        topics::create_partitions(image, &mut self.placer, request)
    }

    pub fn alter_partition(
        &self,
        image: &MetadataImage,
        request: &AlterPartitionRequest,
    ) -> ControllerResult<AlterPartitionResponse> {
        replication::alter_partition(image, &self.config, request)
    }

    pub fn elect_leaders(
        &self,
        image: &MetadataImage,
        request: &ElectLeadersRequest,
    ) -> ControllerResult<ElectLeadersResponse> {
        replication::elect_leaders(image, request)
    }

    pub fn incremental_alter_configs(
        &self,
        image: &MetadataImage,
        request: &IncrementalAlterConfigsRequest,
    ) -> ControllerResult<IncrementalAlterConfigsResponse> {
        config::incremental_alter_configs(image, &self.config.group_config_bounds, request)
    }

    pub fn alter_configs(
        &self,
        image: &MetadataImage,
        request: &AlterConfigsRequest,
    ) -> ControllerResult<AlterConfigsResponse> {
        config::alter_configs(image, &self.config.group_config_bounds, request)
    }

    pub fn assign_replicas_to_dirs(
        &self,
        image: &MetadataImage,
        request: &AssignReplicasToDirsRequest,
    ) -> ControllerResult<AssignReplicasToDirsResponse> {
        directories::assign_replicas_to_dirs(image, &self.config, request)
    }

    pub fn alter_user_scram_credentials(
        &self,
        image: &MetadataImage,
        request: &rafka_protocol::messages::AlterUserScramCredentialsRequest,
    ) -> ControllerResult<rafka_protocol::messages::AlterUserScramCredentialsResponse> {
        scram::alter_user_scram_credentials(image, request)
    }

    pub fn allocate_producer_ids(
        &self,
        image: &MetadataImage,
        request: &AllocateProducerIdsRequest,
    ) -> ControllerResult<AllocateProducerIdsResponse> {
        producer_ids::allocate_producer_ids(image, request)
    }
}
