//! The `MetadataImage`: cluster metadata as the fold of the metadata log's records (Kafka's
//! `org.apache.kafka.image.MetadataImage` with its `ClusterImage`, `TopicsImage`,
//! `ConfigurationsImage`, `ProducerIdsImage` and `FeaturesImage` in one value).
//!
//! This module owns the image and the one way it changes: [`MetadataImage::apply`] (and
//! [`MetadataImage::apply_batch`], which also reports a [`MetadataDelta`]). Applying a record is
//! pure and deterministic, so every controller and every broker that applies the same records
//! holds the same image — the active controller, a follower replaying the log and a node
//! loading a snapshot all take this one path. [`MetadataImage::to_records`] is the inverse: the
//! records that rebuild the image from empty (what a snapshot holds).
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

mod cow_map;
mod delta;
mod image_error;
mod registration;
#[cfg(test)]
mod tests;

pub use cow_map::CowMap;
pub use delta::{LocalChangeKind, LocalPartitionChange, MetadataDelta};
pub use image_error::ImageError;
pub use registration::{
    BrokerRegistration, ConfigResource, Endpoint, LeaderRecoveryState, PartitionRegistration,
    SupportedFeature, TopicImage,
};
pub use registration::{NO_LEADER, NO_LEADER_CHANGE};

use delta::Journal;
use rafka_protocol::messages::UserScramCredentialRecord;
use rafka_protocol::messages::{
    AccessControlEntryRecord, BrokerRegistrationChangeRecord, ClusterIdRecord, ConfigRecord,
    FeatureLevelRecord, MetadataRecord, ProducerIdsRecord, TopicRecord,
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

    /// Applies one record; on error the image is unchanged.
    pub fn apply(&mut self, record: &MetadataRecord) -> Result<(), ImageError> {
        self.apply_record(record, &mut Journal::disabled())
    }

    /// Applies a batch atomically (all or nothing) and reports what changed.
    pub fn apply_batch(&mut self, records: &[MetadataRecord]) -> Result<MetadataDelta, ImageError> {
        let mut journal = Journal::enabled();
        for (index, record) in records.iter().enumerate() {
            if let Err(e) = self.apply_record(record, &mut journal) {
                journal.undo(self);
                return Err(ImageError::InBatch {
                    index,
                    source: Box::new(e),
                });
            }
        }
        Ok(journal.into_delta(records.len()))
    }

    /// Applies the batch committed at metadata offset `offset`, which must be above the
    /// image's: metadata never goes backwards (invariant 5).
    pub fn apply_batch_at(
        &mut self,
        offset: i64,
        records: &[MetadataRecord],
    ) -> Result<MetadataDelta, ImageError> {
        if offset <= self.offset {
            return Err(ImageError::OffsetNotIncreasing {
                current: self.offset,
                got: offset,
            });
        }
        let delta = self.apply_batch(records)?;
        self.offset = offset;
        Ok(delta)
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

    fn broker_with_epoch(
        &self,
        broker_id: i32,
        epoch: i64,
    ) -> Result<&BrokerRegistration, ImageError> {
        let b = self
            .brokers
            .get(&broker_id)
            .ok_or(ImageError::UnknownBroker { broker_id })?;
        if b.epoch != epoch {
            return Err(ImageError::BrokerEpochMismatch {
                broker_id,
                expected: b.epoch,
                got: epoch,
            });
        }
        Ok(b)
    }

    /// Validates `record`, then mutates, noting every mutation in `journal` first.
    fn apply_record(
        &mut self,
        record: &MetadataRecord,
        journal: &mut Journal,
    ) -> Result<(), ImageError> {
        match record {
            MetadataRecord::RegisterBroker(r) => {
                journal.broker(r.broker_id, self.brokers.get(&r.broker_id));
                self.brokers
                    .insert(r.broker_id, BrokerRegistration::from_record(r));
            }
            MetadataRecord::UnregisterBroker(r) => {
                self.broker_with_epoch(r.broker_id, r.broker_epoch)?;
                journal.broker(r.broker_id, self.brokers.get(&r.broker_id));
                self.brokers.remove(&r.broker_id);
            }
            MetadataRecord::FenceBroker(r) => {
                self.set_fencing(r.id, r.epoch, Some(true), None, journal)?
            }
            MetadataRecord::UnfenceBroker(r) => {
                self.set_fencing(r.id, r.epoch, Some(false), None, journal)?
            }
            MetadataRecord::BrokerRegistrationChange(r) => {
                self.apply_registration_change(r, journal)?
            }
            MetadataRecord::Topic(r) => {
                if let Some(existing) = self.topics_by_name.get(&r.name) {
                    return Err(ImageError::TopicNameExists {
                        name: r.name.clone(),
                        existing: *existing,
                    });
                }
                if self.topics.contains_key(&r.topic_id) {
                    return Err(ImageError::TopicIdExists {
                        topic_id: r.topic_id,
                    });
                }
                journal.topic_created(r.topic_id);
                self.topics_by_name.insert(r.name.clone(), r.topic_id);
                let topic = TopicImage {
                    name: r.name.clone(),
                    id: r.topic_id,
                    partitions: BTreeMap::new(),
                };
                self.topics.insert(r.topic_id, Arc::new(topic));
            }
            MetadataRecord::Partition(r) => {
                let reg = PartitionRegistration::from_record(r)?;
                let topic = self.topic(&r.topic_id).ok_or(ImageError::UnknownTopic {
                    topic_id: r.topic_id,
                })?;
                journal.partition(
                    r.topic_id,
                    r.partition_id,
                    topic.partitions.get(&r.partition_id),
                );
                self.topic_mut(&r.topic_id)
                    .partitions
                    .insert(r.partition_id, reg);
            }
            MetadataRecord::PartitionChange(r) => {
                let topic = self.topic(&r.topic_id).ok_or(ImageError::UnknownTopic {
                    topic_id: r.topic_id,
                })?;
                let old =
                    topic
                        .partitions
                        .get(&r.partition_id)
                        .ok_or(ImageError::UnknownPartition {
                            topic_id: r.topic_id,
                            partition: r.partition_id,
                        })?;
                let new = old.merge(r)?;
                journal.partition(r.topic_id, r.partition_id, Some(old));
                self.topic_mut(&r.topic_id)
                    .partitions
                    .insert(r.partition_id, new);
            }
            MetadataRecord::RemoveTopic(r) => {
                let topic = self
                    .topics
                    .remove(&r.topic_id)
                    .ok_or(ImageError::UnknownTopic {
                        topic_id: r.topic_id,
                    })?;
                self.topics_by_name.remove(&topic.name);
                let resource = ConfigResource::topic(&topic.name);
                let configs = self.configs.remove(&resource);
                journal.topic_removed(topic, resource, configs);
            }
            MetadataRecord::Config(r) => {
                let resource = ConfigResource {
                    resource_type: r.resource_type,
                    name: r.resource_name.clone(),
                };
                let old = self.config(&resource, &r.name).map(str::to_owned);
                journal.config(&resource, &r.name, old);
                self.set_config(resource, &r.name, r.value.clone());
            }
            MetadataRecord::ProducerIds(r) => {
                if r.next_producer_id <= self.next_producer_id {
                    return Err(ImageError::ProducerIdNotIncreasing {
                        current: self.next_producer_id,
                        got: r.next_producer_id,
                    });
                }
                journal.producer_ids(self.next_producer_id);
                self.next_producer_id = r.next_producer_id;
            }
            MetadataRecord::FeatureLevel(r) => {
                journal.feature(&r.name, self.features.get(&r.name).copied());
                let features = Arc::make_mut(&mut self.features);
                // Level 0 removes the feature, as in Kafka's FeatureControlManager.
                if r.feature_level == 0 {
                    features.remove(&r.name);
                } else {
                    features.insert(r.name.clone(), r.feature_level);
                }
            }
            MetadataRecord::AccessControlEntry(r) => {
                let id = r.id.as_u128();
                if self.acls.get(id).is_some() {
                    return Err(ImageError::AclIdExists { id: r.id });
                }
                let binding = acl_binding(r);
                binding.validate().map_err(|e| ImageError::InvalidAcl {
                    id: r.id,
                    reason: e.to_string(),
                })?;
                journal.acl(id, None);
                Arc::make_mut(&mut self.acls).insert(id, binding);
            }
            MetadataRecord::RemoveAccessControlEntry(r) => {
                let id = r.id.as_u128();
                let old = self
                    .acls
                    .get(id)
                    .ok_or(ImageError::UnknownAcl { id: r.id })?;
                journal.acl(id, Some(old));
                Arc::make_mut(&mut self.acls).remove(id);
            }
            MetadataRecord::NoOp(_) => {}
            MetadataRecord::UserScramCredential(r) => {
                let mechanism = ScramMechanism::from_id(r.mechanism).ok_or(
                    ImageError::UnknownScramMechanism {
                        mechanism: r.mechanism,
                    },
                )?;
                let key = (r.name.clone(), mechanism);
                journal.scram(&key, self.scram.get(&key).cloned());
                Arc::make_mut(&mut self.scram).insert(
                    key,
                    ScramCredential {
                        salt: r.salt.to_vec(),
                        stored_key: r.stored_key.to_vec(),
                        server_key: r.server_key.to_vec(),
                        iterations: r.iterations,
                    },
                );
            }
            MetadataRecord::RemoveUserScramCredential(r) => {
                let mechanism = ScramMechanism::from_id(r.mechanism).ok_or(
                    ImageError::UnknownScramMechanism {
                        mechanism: r.mechanism,
                    },
                )?;
                let key = (r.name.clone(), mechanism);
                let old = self.scram.get(&key).cloned();
                if old.is_none() {
                    return Err(ImageError::UnknownScramCredential {
                        user: r.name.clone(),
                        mechanism: mechanism.sasl().name(),
                    });
                }
                journal.scram(&key, old);
                Arc::make_mut(&mut self.scram).remove(&key);
            }
            MetadataRecord::ClusterId(r) => match &self.cluster_id {
                Some(current) if *current != r.cluster_id => {
                    return Err(ImageError::ClusterIdChanged {
                        current: current.clone(),
                        got: r.cluster_id.clone(),
                    });
                }
                Some(_) => {}
                None => {
                    journal.cluster_id();
                    self.cluster_id = Some(r.cluster_id.clone());
                }
            },
        }
        Ok(())
    }

    /// The topic to change in place, copied first if an earlier image shares it.
    fn topic_mut(&mut self, id: &Uuid) -> &mut TopicImage {
        Arc::make_mut(
            self.topics
                .get_mut(id)
                .expect("invariant: callers check the topic exists"),
        )
    }

    /// Sets (`Some`) or deletes (`None`) one config key; a resource left with no keys goes.
    fn set_config(&mut self, resource: ConfigResource, key: &str, value: Option<String>) {
        match (self.configs.get_mut(&resource), value) {
            (Some(entries), Some(v)) => {
                entries.insert(key.to_owned(), v);
            }
            (None, Some(v)) => {
                self.configs
                    .insert(resource, BTreeMap::from([(key.to_owned(), v)]));
            }
            (Some(entries), None) => {
                entries.remove(key);
                if entries.is_empty() {
                    self.configs.remove(&resource);
                }
            }
            (None, None) => {}
        }
    }

    fn apply_registration_change(
        &mut self,
        r: &BrokerRegistrationChangeRecord,
        journal: &mut Journal,
    ) -> Result<(), ImageError> {
        // Kafka's BrokerRegistrationFencingChange: 1 fence, 0 none, -1 unfence.
        let fenced = match r.fenced {
            1 => Some(true),
            0 => None,
            -1 => Some(false),
            v => {
                return Err(ImageError::InvalidBrokerChange {
                    broker_id: r.broker_id,
                    field: "fencing",
                    value: v,
                })
            }
        };
        // BrokerRegistrationInControlledShutdownChange: 0 none, 1 enter. Leaving it takes a new
        // registration.
        let shutdown = match r.in_controlled_shutdown {
            0 => None,
            1 => Some(true),
            v => {
                return Err(ImageError::InvalidBrokerChange {
                    broker_id: r.broker_id,
                    field: "controlled shutdown",
                    value: v,
                })
            }
        };
        self.set_fencing(r.broker_id, r.broker_epoch, fenced, shutdown, journal)?;
        if !r.log_dirs.is_empty() {
            if let Some(b) = self.brokers.get_mut(&r.broker_id) {
                b.log_dirs = r.log_dirs.clone();
            }
        }
        Ok(())
    }

    fn set_fencing(
        &mut self,
        broker_id: i32,
        epoch: i64,
        fenced: Option<bool>,
        in_controlled_shutdown: Option<bool>,
        journal: &mut Journal,
    ) -> Result<(), ImageError> {
        let old = self.broker_with_epoch(broker_id, epoch)?;
        journal.broker(broker_id, Some(old));
        let b = self
            .brokers
            .get_mut(&broker_id)
            .expect("invariant: checked just above");
        if let Some(f) = fenced {
            b.fenced = f;
        }
        if let Some(s) = in_controlled_shutdown {
            b.in_controlled_shutdown = s;
        }
        Ok(())
    }

    // Used by the journal to roll a failed batch back.
    fn restore_broker(&mut self, id: i32, old: Option<BrokerRegistration>) {
        match old {
            Some(b) => self.brokers.insert(id, b),
            None => self.brokers.remove(&id),
        };
    }

    fn restore_partition(
        &mut self,
        topic_id: Uuid,
        partition: i32,
        old: Option<PartitionRegistration>,
    ) {
        if let Some(t) = self.topics.get_mut(&topic_id) {
            let t = Arc::make_mut(t);
            match old {
                Some(p) => t.partitions.insert(partition, p),
                None => t.partitions.remove(&partition),
            };
        }
    }

    fn restore_topic(&mut self, topic_id: Uuid, old: Option<RemovedTopic>) {
        if let Some(t) = self.topics.remove(&topic_id) {
            self.topics_by_name.remove(&t.name);
        }
        if let Some((t, configs)) = old {
            if let Some(c) = configs {
                self.configs.insert(ConfigResource::topic(&t.name), c);
            }
            self.topics_by_name.insert(t.name.clone(), t.id);
            self.topics.insert(t.id, t);
        }
    }

    fn restore_config(&mut self, resource: ConfigResource, key: String, old: Option<String>) {
        self.set_config(resource, &key, old);
    }

    fn restore_scram(&mut self, key: (String, ScramMechanism), old: Option<ScramCredential>) {
        let scram = Arc::make_mut(&mut self.scram);
        match old {
            Some(c) => scram.insert(key, c),
            None => scram.remove(&key),
        };
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

    fn restore_acl(&mut self, id: u128, old: Option<AclBinding>) {
        let acls = Arc::make_mut(&mut self.acls);
        match old {
            Some(b) => acls.insert(id, b),
            None => acls.remove(id),
        };
    }

    fn restore_feature(&mut self, name: String, old: Option<i16>) {
        let features = Arc::make_mut(&mut self.features);
        match old {
            Some(level) => features.insert(name, level),
            None => features.remove(&name),
        };
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
