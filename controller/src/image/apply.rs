//! How the image changes: [`MetadataImage::apply`] and [`MetadataImage::apply_batch`] (all or
//! nothing, reporting a [`MetadataDelta`]), each record validated, then applied with every
//! mutation noted first in the batch's [`Journal`] so that a failed batch is undone — and the
//! `restore_*` steps that undo uses.

use super::delta::{Journal, MetadataDelta};
use super::image_error::ImageError;
use super::registration::{BrokerRegistration, ConfigResource, PartitionRegistration, TopicImage};
use super::{acl_binding, MetadataImage, RemovedTopic};
use rafka_protocol::messages::{BrokerRegistrationChangeRecord, MetadataRecord};
use rafka_protocol::Uuid;
use rafka_security::authorizer::AclBinding;
use rafka_security::sasl::scram::{ScramCredential, ScramMechanism};
use std::collections::BTreeMap;
use std::sync::Arc;

impl MetadataImage {
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
                let mechanism = scram_mechanism(r.mechanism)?;
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
                let mechanism = scram_mechanism(r.mechanism)?;
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
    pub(super) fn restore_broker(&mut self, id: i32, old: Option<BrokerRegistration>) {
        match old {
            Some(b) => self.brokers.insert(id, b),
            None => self.brokers.remove(&id),
        };
    }

    pub(super) fn restore_partition(
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

    pub(super) fn restore_topic(&mut self, topic_id: Uuid, old: Option<RemovedTopic>) {
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

    pub(super) fn restore_config(
        &mut self,
        resource: ConfigResource,
        key: String,
        old: Option<String>,
    ) {
        self.set_config(resource, &key, old);
    }

    pub(super) fn restore_scram(
        &mut self,
        key: (String, ScramMechanism),
        old: Option<ScramCredential>,
    ) {
        let scram = Arc::make_mut(&mut self.scram);
        match old {
            Some(c) => scram.insert(key, c),
            None => scram.remove(&key),
        };
    }

    pub(super) fn restore_acl(&mut self, id: u128, old: Option<AclBinding>) {
        let acls = Arc::make_mut(&mut self.acls);
        match old {
            Some(b) => acls.insert(id, b),
            None => acls.remove(id),
        };
    }

    pub(super) fn restore_feature(&mut self, name: String, old: Option<i16>) {
        let features = Arc::make_mut(&mut self.features);
        match old {
            Some(level) => features.insert(name, level),
            None => features.remove(&name),
        };
    }
}

/// The SCRAM mechanism a credential record names by id.
fn scram_mechanism(id: i8) -> Result<ScramMechanism, ImageError> {
    ScramMechanism::from_id(id).ok_or(ImageError::UnknownScramMechanism { mechanism: id })
}
