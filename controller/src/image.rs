//! The `MetadataImage`: cluster metadata as the fold of the metadata log's records (Kafka's
//! `org.apache.kafka.image.MetadataImage` with its `ClusterImage`, `TopicsImage`,
//! `ConfigurationsImage`, `ProducerIdsImage` and `FeaturesImage` in one value).
//!
//! This module owns the image and the one way it changes: [`MetadataImage::apply`] (and
//! [`MetadataImage::apply_batch`], which also reports a [`MetadataDelta`](delta::MetadataDelta)),
//! written in `image/apply.rs`. Applying a record is pure and deterministic, so every controller
//! and every broker that applies the same records holds the same image — the active controller,
//! a follower replaying the log and a node loading a snapshot all take this one path.
//! [`MetadataImage::to_records`] is the inverse: the records that rebuild the image from empty
//! (what a snapshot holds).
//!
//! Successive images share what did not change (Kafka's images do the same with immutable maps):
//! brokers, topics, topic names and configs are [`CowMap`]s, each topic is behind an `Arc`, so
//! cloning an image copies a few pointers and applying a batch copies only the chunks and
//! topics it touches (a changed partition copies its topic's partition map, as Kafka's
//! `TopicDelta` does), not the image. The state machine clones the image for every batch it
//! applies; at 100,000 partitions that clone used to be the commit's main cost.
//!
//! It does not decide anything: validating requests and generating records is `control`'s job
//! (Kafka's `QuorumController` managers); committing them is the Raft glue's.
//!
//! Record semantics follow Kafka's replay methods: `PartitionChangeRecord` merges as
//! `PartitionRegistration.merge` (leader −2 = unchanged, −1 = none; a null array = unchanged;
//! any leader field other than −2 bumps the leader epoch, every change bumps the partition
//! epoch), `RemoveTopicRecord` also drops the topic's configs, a `ConfigRecord` with a null value
//! deletes the key. Directory assignments (JBOD) and ELR fields are not kept.
//! `AccessControlEntryRecord` adds an ACL under its id (an id in use, or a binding that fails
//! [`AclBinding::validate`], is refused) and `RemoveAccessControlEntryRecord` removes one (an
//! unknown id is refused), as Kafka's `AclControlManager.replay`; the ACLs are kept indexed
//! ([`AclIndex`]) so the broker's authorizer decides from the image without a copy.

mod apply;
mod cow_map;
pub mod delta;
mod image_error;
mod registration;
#[cfg(test)]
mod tests;

pub use cow_map::CowMap;
pub use image_error::ImageError;
pub use registration::{
    BrokerRegistration, ConfigResource, Endpoint, LeaderRecoveryState, PartitionRegistration,
    SupportedFeature, TopicImage,
};
pub use registration::{NO_LEADER, NO_LEADER_CHANGE};

use rafka_protocol::messages::UserScramCredentialRecord;
use rafka_protocol::messages::{
    AccessControlEntryRecord, ClusterIdRecord, ConfigRecord, FeatureLevelRecord, MetadataRecord,
    ProducerIdsRecord, TopicRecord,
};
use rafka_protocol::Uuid;
use rafka_security::authorizer::{
    AccessControlEntry, AclBinding, AclIndex, AclOperation, AclPermissionType, PatternType,
    ResourcePattern, ResourceType,
};
use rafka_security::sasl::scram::{ScramCredential, ScramMechanism};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A removed topic and the configs it had, as a rollback puts them back.
type RemovedTopic = (Arc<TopicImage>, Option<BTreeMap<String, String>>);

/// Cluster metadata as of [`MetadataImage::offset`]. Fields are private: the image changes
/// only by applying records. Cheap to clone: a clone shares every part with the original until
/// one of them changes it (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataImage {
    cluster_id: Option<String>,
    brokers: CowMap<i32, BrokerRegistration>,
    topics: CowMap<Uuid, Arc<TopicImage>>,
    topics_by_name: CowMap<String, Uuid>,
    configs: CowMap<ConfigResource, BTreeMap<String, String>>,
    next_producer_id: i64,
    features: Arc<BTreeMap<String, i16>>,
    /// SCRAM credentials by user and mechanism (`UserScramCredentialRecord`).
    scram: Arc<BTreeMap<(String, ScramMechanism), ScramCredential>>,
    acls: Arc<AclIndex>,
    offset: i64,
}

impl Default for MetadataImage {
    fn default() -> Self {
        MetadataImage {
            cluster_id: None,
            brokers: CowMap::new(),
            topics: CowMap::new(),
            topics_by_name: CowMap::new(),
            configs: CowMap::new(),
            next_producer_id: 0,
            features: Arc::new(BTreeMap::new()),
            scram: Arc::new(BTreeMap::new()),
            acls: Arc::new(AclIndex::new()),
            offset: -1,
        }
    }
}

impl MetadataImage {
    /// The empty image (offset −1: nothing applied).
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds an image from a snapshot's records, as of `offset`.
    pub fn load(records: &[MetadataRecord], offset: i64) -> Result<Self, ImageError> {
        let mut image = MetadataImage::new();
        image.apply_batch(records)?;
        image.offset = offset;
        Ok(image)
    }

    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    /// The metadata offset of the last batch applied (−1 for none).
    pub fn offset(&self) -> i64 {
        self.offset
    }

    pub fn brokers(&self) -> &CowMap<i32, BrokerRegistration> {
        &self.brokers
    }

    pub fn broker(&self, id: i32) -> Option<&BrokerRegistration> {
        self.brokers.get(&id)
    }

    /// Whether `id` is registered, unfenced and not in controlled shutdown.
    pub fn is_active(&self, id: i32) -> bool {
        self.brokers
            .get(&id)
            .is_some_and(BrokerRegistration::is_active)
    }

    /// Every topic by id. A value is an `Arc<TopicImage>`: it derefs to the topic, and is shared
    /// with the images before and after this one while the topic does not change.
    pub fn topics(&self) -> &CowMap<Uuid, Arc<TopicImage>> {
        &self.topics
    }

    pub fn topic(&self, id: &Uuid) -> Option<&TopicImage> {
        self.topics.get(id).map(Arc::as_ref)
    }

    pub fn topic_by_name(&self, name: &str) -> Option<&TopicImage> {
        self.topics_by_name.get(name).and_then(|id| self.topic(id))
    }

    pub fn topic_names(&self) -> &CowMap<String, Uuid> {
        &self.topics_by_name
    }

    pub fn partition(&self, topic_id: &Uuid, partition: i32) -> Option<&PartitionRegistration> {
        self.topic(topic_id)
            .and_then(|t| t.partitions.get(&partition))
    }

    /// Every partition, in topic-id then partition order.
    pub fn partitions(&self) -> impl Iterator<Item = (&TopicImage, i32, &PartitionRegistration)> {
        self.topics.values().flat_map(|t| {
            let t: &TopicImage = t;
            t.partitions.iter().map(move |(p, r)| (t, *p, r))
        })
    }

    pub fn configs(&self) -> &CowMap<ConfigResource, BTreeMap<String, String>> {
        &self.configs
    }

    pub fn config(&self, resource: &ConfigResource, key: &str) -> Option<&str> {
        self.configs
            .get(resource)
            .and_then(|c| c.get(key))
            .map(String::as_str)
    }

    /// The first producer id of the next block to hand out.
    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }

    pub fn features(&self) -> &BTreeMap<String, i16> {
        &self.features
    }

    /// Every ACL, indexed for authorization decisions.
    pub fn acls(&self) -> &AclIndex {
        &self.acls
    }

    /// The ACLs as shared with neighbouring images (unchanged ACLs are the same `Arc`).
    pub fn acls_shared(&self) -> &Arc<AclIndex> {
        &self.acls
    }

    /// Records an offset reached without records to apply (e.g. a Raft entry with none).
    pub fn advance_offset(&mut self, offset: i64) -> Result<(), ImageError> {
        if offset < self.offset {
            return Err(ImageError::OffsetNotIncreasing {
                current: self.offset,
                got: offset,
            });
        }
        self.offset = offset;
        Ok(())
    }

    /// The records that rebuild this image from empty (what a snapshot holds). The offset
    /// travels beside them, in the snapshot's metadata.
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        let mut out = Vec::new();
        if let Some(id) = &self.cluster_id {
            out.push(MetadataRecord::ClusterId(ClusterIdRecord {
                cluster_id: id.clone(),
                ..Default::default()
            }));
        }
        for (name, level) in self.features.iter() {
            out.push(MetadataRecord::FeatureLevel(FeatureLevelRecord {
                name: name.clone(),
                feature_level: *level,
                ..Default::default()
            }));
        }
        for b in self.brokers.values() {
            out.push(MetadataRecord::RegisterBroker(b.to_record()));
        }
        for t in self.topics.values() {
            let t: &TopicImage = t;
            out.push(MetadataRecord::Topic(TopicRecord {
                name: t.name.clone(),
                topic_id: t.id,
                ..Default::default()
            }));
            for (p, reg) in &t.partitions {
                out.push(MetadataRecord::Partition(reg.to_record(t.id, *p)));
            }
        }
        for (resource, entries) in &self.configs {
            for (key, value) in entries {
                out.push(MetadataRecord::Config(ConfigRecord {
                    resource_type: resource.resource_type,
                    resource_name: resource.name.clone(),
                    name: key.clone(),
                    value: Some(value.clone()),
                    ..Default::default()
                }));
            }
        }
        for ((name, mechanism), c) in self.scram.iter() {
            out.push(MetadataRecord::UserScramCredential(
                UserScramCredentialRecord {
                    name: name.clone(),
                    mechanism: mechanism.id(),
                    salt: c.salt.clone().into(),
                    stored_key: c.stored_key.clone().into(),
                    server_key: c.server_key.clone().into(),
                    iterations: c.iterations,
                    ..Default::default()
                },
            ));
        }
        for (id, b) in self.acls.iter() {
            out.push(MetadataRecord::AccessControlEntry(acl_record(
                Uuid::from_u128(id),
                b,
            )));
        }
        if self.next_producer_id > 0 {
            out.push(MetadataRecord::ProducerIds(ProducerIdsRecord {
                broker_id: -1,
                broker_epoch: -1,
                next_producer_id: self.next_producer_id,
                ..Default::default()
            }));
        }
        out
    }

    /// The SCRAM credential of `user` for `mechanism`.
    pub fn scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Option<&ScramCredential> {
        self.scram.get(&(user.to_owned(), mechanism))
    }

    /// Every SCRAM credential, by user and mechanism.
    pub fn scram_credentials(&self) -> &BTreeMap<(String, ScramMechanism), ScramCredential> {
        &self.scram
    }
}

/// The binding an `AccessControlEntryRecord` carries (unknown codes become `Unknown`, which
/// [`AclBinding::validate`] refuses).
pub fn acl_binding(r: &AccessControlEntryRecord) -> AclBinding {
    AclBinding::new(
        ResourcePattern::new(
            ResourceType::from_code(r.resource_type),
            r.resource_name.clone(),
            PatternType::from_code(r.pattern_type),
        ),
        AccessControlEntry {
            principal: r.principal.clone(),
            host: r.host.clone(),
            operation: AclOperation::from_code(r.operation),
            permission_type: AclPermissionType::from_code(r.permission_type),
        },
    )
}

/// The record that adds `binding` under `id`.
pub fn acl_record(id: Uuid, binding: &AclBinding) -> AccessControlEntryRecord {
    AccessControlEntryRecord {
        id,
        resource_type: binding.pattern.resource_type.code(),
        resource_name: binding.pattern.name.clone(),
        pattern_type: binding.pattern.pattern_type.code(),
        principal: binding.entry.principal.clone(),
        host: binding.entry.host.clone(),
        operation: binding.entry.operation.code(),
        permission_type: binding.entry.permission_type.code(),
        ..Default::default()
    }
}
