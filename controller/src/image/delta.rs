//! What a batch of records changed (Kafka's `MetadataDelta`), and the journal that records it
//! while [`MetadataImage::apply_batch`] runs — the same journal rolls a failed batch back.
//!
//! A broker turns a delta into work for its replica manager with
//! [`MetadataDelta::local_changes`] (Kafka's `TopicsDelta.localChanges`): "you now lead
//! partition p at epoch e", "you follow it from broker b", "you no longer host it".

use super::registration::{BrokerRegistration, ConfigResource, PartitionRegistration, TopicImage};
use super::MetadataImage;
use rafka_protocol::Uuid;
use rafka_security::authorizer::AclBinding;
use rafka_security::sasl::scram::ScramMechanism;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What a broker must do about one of its partitions after a delta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalChangeKind {
    /// The broker leads the partition at this leader epoch. Reported for every change of a
    /// partition it leads (a new ISR too), as Kafka does: the broker compares epochs.
    BecameLeader { leader_epoch: i32 },
    /// The broker is a follower; `leader` may be −1 (no leader for now).
    BecameFollower { leader: i32, leader_epoch: i32 },
    /// The broker no longer hosts a replica (topic deleted or replica moved away).
    Removed,
}

/// One partition change that concerns a given broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPartitionChange {
    pub topic: String,
    pub topic_id: Uuid,
    pub partition: i32,
    pub kind: LocalChangeKind,
}

/// What a batch changed. The prior state of every touched partition is kept, so
/// [`MetadataDelta::local_changes_since`] needs only the new image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataDelta {
    record_count: usize,
    changed_brokers: BTreeSet<i32>,
    /// Touched topics: the name each had before the batch (None: it did not exist).
    topics_before: BTreeMap<Uuid, Option<String>>,
    /// Touched partitions: their registration before the batch.
    partitions_before: BTreeMap<(Uuid, i32), Option<PartitionRegistration>>,
    changed_configs: BTreeSet<ConfigResource>,
    cluster_id_changed: bool,
    producer_ids_changed: bool,
    features_changed: bool,
    /// Users whose SCRAM credentials changed.
    changed_scram_users: BTreeSet<String>,
    acls_changed: bool,
}

impl MetadataDelta {
    /// How many records the batch held.
    pub fn record_count(&self) -> usize {
        self.record_count
    }

    /// Nothing changed (e.g. a batch of NoOp records).
    pub fn is_empty(&self) -> bool {
        self.changed_brokers.is_empty()
            && self.topics_before.is_empty()
            && self.partitions_before.is_empty()
            && self.changed_configs.is_empty()
            && !self.cluster_id_changed
            && !self.producer_ids_changed
            && !self.features_changed
            && self.changed_scram_users.is_empty()
            && !self.acls_changed
    }

    /// Users whose SCRAM credentials were added, changed or removed.
    pub fn changed_scram_users(&self) -> &BTreeSet<String> {
        &self.changed_scram_users
    }

    pub fn changed_brokers(&self) -> &BTreeSet<i32> {
        &self.changed_brokers
    }

    /// Topics that did not exist before the batch and do after it.
    pub fn created_topics(&self, new: &MetadataImage) -> Vec<Uuid> {
        self.topics_before
            .iter()
            .filter(|(id, before)| before.is_none() && new.topic(id).is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Topics that existed before the batch and do not after it, with their names.
    pub fn removed_topics(&self, new: &MetadataImage) -> Vec<(Uuid, String)> {
        self.topics_before
            .iter()
            .filter_map(|(id, before)| match before {
                Some(name) if new.topic(id).is_none() => Some((*id, name.clone())),
                _ => None,
            })
            .collect()
    }

    /// Every partition a record touched (created, changed or removed with its topic).
    pub fn changed_partitions(&self) -> impl Iterator<Item = (Uuid, i32)> + '_ {
        self.partitions_before.keys().copied()
    }

    pub fn changed_configs(&self) -> &BTreeSet<ConfigResource> {
        &self.changed_configs
    }

    pub fn cluster_id_changed(&self) -> bool {
        self.cluster_id_changed
    }

    pub fn producer_ids_changed(&self) -> bool {
        self.producer_ids_changed
    }

    pub fn features_changed(&self) -> bool {
        self.features_changed
    }

    /// Whether an ACL was added or removed.
    pub fn acls_changed(&self) -> bool {
        self.acls_changed
    }

    /// The delta from `old` to `new`, two images of one log (say the image a broker last acted
    /// on and the latest one published, any number of batches later), as if one batch had made
    /// every change. Topics an image shares with the other (the same `Arc`) are skipped
    /// without a look inside. `record_count` is 0: the records themselves are not known here.
    pub fn between(old: &MetadataImage, new: &MetadataImage) -> MetadataDelta {
        let mut d = MetadataDelta::default();
        for (id, b) in new.brokers().iter() {
            if old.broker(*id) != Some(b) {
                d.changed_brokers.insert(*id);
            }
        }
        for id in old.brokers().keys() {
            if new.broker(*id).is_none() {
                d.changed_brokers.insert(*id);
            }
        }
        if !Arc::ptr_eq(&old.scram, &new.scram) {
            for (key, c) in new.scram.iter() {
                if old.scram.get(key) != Some(c) {
                    d.changed_scram_users.insert(key.0.clone());
                }
            }
            for key in old.scram.keys() {
                if !new.scram.contains_key(key) {
                    d.changed_scram_users.insert(key.0.clone());
                }
            }
        }
        for (id, t) in new.topics().iter() {
            match old.topics().get(id) {
                Some(o) if Arc::ptr_eq(o, t) => {}
                Some(o) => {
                    if o.name != t.name {
                        d.topics_before.insert(*id, Some(o.name.clone()));
                    }
                    for (p, reg) in &t.partitions {
                        let before = o.partitions.get(p);
                        if before != Some(reg) {
                            d.partitions_before.insert((*id, *p), before.cloned());
                        }
                    }
                    for (p, reg) in &o.partitions {
                        if !t.partitions.contains_key(p) {
                            d.partitions_before.insert((*id, *p), Some(reg.clone()));
                        }
                    }
                }
                None => {
                    d.topics_before.insert(*id, None);
                    for p in t.partitions.keys() {
                        d.partitions_before.insert((*id, *p), None);
                    }
                }
            }
        }
        for (id, o) in old.topics().iter() {
            if !new.topics().contains_key(id) {
                d.topics_before.insert(*id, Some(o.name.clone()));
                for (p, reg) in &o.partitions {
                    d.partitions_before.insert((*id, *p), Some(reg.clone()));
                }
            }
        }
        for (r, c) in new.configs().iter() {
            if old.configs().get(r) != Some(c) {
                d.changed_configs.insert(r.clone());
            }
        }
        for r in old.configs().keys() {
            if !new.configs().contains_key(r) {
                d.changed_configs.insert(r.clone());
            }
        }
        d.cluster_id_changed = old.cluster_id() != new.cluster_id();
        d.producer_ids_changed = old.next_producer_id() != new.next_producer_id();
        d.features_changed = old.features() != new.features();
        d.acls_changed =
            !Arc::ptr_eq(old.acls_shared(), new.acls_shared()) && old.acls() != new.acls();
        d
    }

    /// The changes that concern `broker_id`, from `old_image` (before the batch) to
    /// `new_image` (after it). Removals come first, then the rest, each in topic and
    /// partition order.
    pub fn local_changes(
        &self,
        broker_id: i32,
        old_image: &MetadataImage,
        new_image: &MetadataImage,
    ) -> Vec<LocalPartitionChange> {
        self.local_changes_with(
            broker_id,
            |id| old_image.topic(id).map(|t| t.name.clone()),
            |id, p| old_image.partition(id, p).cloned(),
            new_image,
        )
    }

    /// As [`Self::local_changes`], from the prior state the delta kept: the caller need not
    /// clone the image before each batch.
    pub fn local_changes_since(
        &self,
        broker_id: i32,
        new_image: &MetadataImage,
    ) -> Vec<LocalPartitionChange> {
        self.local_changes_with(
            broker_id,
            |id| match self.topics_before.get(id) {
                Some(before) => before.clone(),
                None => new_image.topic(id).map(|t| t.name.clone()),
            },
            |id, p| self.partitions_before.get(&(*id, p)).cloned().flatten(),
            new_image,
        )
    }

    fn local_changes_with(
        &self,
        broker_id: i32,
        old_name: impl Fn(&Uuid) -> Option<String>,
        old_partition: impl Fn(&Uuid, i32) -> Option<PartitionRegistration>,
        new_image: &MetadataImage,
    ) -> Vec<LocalPartitionChange> {
        let mut removed = Vec::new();
        let mut changed = Vec::new();
        for &(topic_id, partition) in self.partitions_before.keys() {
            let old = old_partition(&topic_id, partition);
            let was_replica = old
                .as_ref()
                .is_some_and(|o| o.replicas.contains(&broker_id));
            let new_topic = new_image.topic(&topic_id);
            let new = new_topic.and_then(|t| t.partitions.get(&partition));
            let change = |topic: String, kind| LocalPartitionChange {
                topic,
                topic_id,
                partition,
                kind,
            };
            match (new_topic, new) {
                (Some(t), Some(n)) if n.replicas.contains(&broker_id) => {
                    if old
                        .as_ref()
                        .is_some_and(|o| o.partition_epoch == n.partition_epoch)
                    {
                        continue;
                    }
                    let kind = if n.leader == broker_id {
                        LocalChangeKind::BecameLeader {
                            leader_epoch: n.leader_epoch,
                        }
                    } else {
                        LocalChangeKind::BecameFollower {
                            leader: n.leader,
                            leader_epoch: n.leader_epoch,
                        }
                    };
                    changed.push(change(t.name.clone(), kind));
                }
                _ if was_replica => {
                    let name = old_name(&topic_id)
                        .or_else(|| new_topic.map(|t| t.name.clone()))
                        .unwrap_or_default();
                    removed.push(change(name, LocalChangeKind::Removed));
                }
                _ => {}
            }
        }
        let key = |c: &LocalPartitionChange| (c.topic.clone(), c.partition);
        removed.sort_by_key(key);
        changed.sort_by_key(key);
        removed.extend(changed);
        removed
    }
}

/// One mutation's inverse.
enum Undo {
    Broker(i32, Option<BrokerRegistration>),
    TopicCreated(Uuid),
    TopicRemoved(Arc<TopicImage>, Option<BTreeMap<String, String>>),
    Partition(Uuid, i32, Option<PartitionRegistration>),
    Config(ConfigResource, String, Option<String>),
    ProducerIds(i64),
    Feature(String, Option<i16>),
    ClusterId,
    Scram(
        (String, ScramMechanism),
        Option<rafka_security::sasl::scram::ScramCredential>,
    ),
    Acl(u128, Option<AclBinding>),
}

/// Notes every mutation of a batch before it happens: its inverse (to roll back) and what it
/// touched (the delta). Disabled for single-record `apply`, where it costs nothing.
pub(super) struct Journal {
    enabled: bool,
    undo: Vec<Undo>,
    delta: MetadataDelta,
}

impl Journal {
    pub(super) fn disabled() -> Self {
        Journal {
            enabled: false,
            undo: Vec::new(),
            delta: MetadataDelta::default(),
        }
    }

    pub(super) fn enabled() -> Self {
        Journal {
            enabled: true,
            ..Journal::disabled()
        }
    }

    pub(super) fn broker(&mut self, id: i32, old: Option<&BrokerRegistration>) {
        if self.enabled {
            self.undo.push(Undo::Broker(id, old.cloned()));
            self.delta.changed_brokers.insert(id);
        }
    }

    pub(super) fn topic_created(&mut self, id: Uuid) {
        if self.enabled {
            self.undo.push(Undo::TopicCreated(id));
            self.delta.topics_before.entry(id).or_insert(None);
        }
    }

    pub(super) fn topic_removed(
        &mut self,
        topic: Arc<TopicImage>,
        resource: ConfigResource,
        configs: Option<BTreeMap<String, String>>,
    ) {
        if !self.enabled {
            return;
        }
        self.delta
            .topics_before
            .entry(topic.id)
            .or_insert_with(|| Some(topic.name.clone()));
        for (p, reg) in &topic.partitions {
            self.delta
                .partitions_before
                .entry((topic.id, *p))
                .or_insert_with(|| Some(reg.clone()));
        }
        if configs.is_some() {
            self.delta.changed_configs.insert(resource);
        }
        self.undo.push(Undo::TopicRemoved(topic, configs));
    }

    pub(super) fn partition(
        &mut self,
        topic_id: Uuid,
        partition: i32,
        old: Option<&PartitionRegistration>,
    ) {
        if self.enabled {
            self.undo
                .push(Undo::Partition(topic_id, partition, old.cloned()));
            self.delta
                .partitions_before
                .entry((topic_id, partition))
                .or_insert_with(|| old.cloned());
        }
    }

    pub(super) fn config(&mut self, resource: &ConfigResource, key: &str, old: Option<String>) {
        if self.enabled {
            self.undo
                .push(Undo::Config(resource.clone(), key.to_string(), old));
            self.delta.changed_configs.insert(resource.clone());
        }
    }

    pub(super) fn producer_ids(&mut self, old: i64) {
        if self.enabled {
            self.undo.push(Undo::ProducerIds(old));
            self.delta.producer_ids_changed = true;
        }
    }

    pub(super) fn feature(&mut self, name: &str, old: Option<i16>) {
        if self.enabled {
            self.undo.push(Undo::Feature(name.to_string(), old));
            self.delta.features_changed = true;
        }
    }

    pub(super) fn scram(
        &mut self,
        key: &(String, ScramMechanism),
        old: Option<rafka_security::sasl::scram::ScramCredential>,
    ) {
        if self.enabled {
            self.undo.push(Undo::Scram(key.clone(), old));
            self.delta.changed_scram_users.insert(key.0.clone());
        }
    }

    pub(super) fn acl(&mut self, id: u128, old: Option<&AclBinding>) {
        if self.enabled {
            self.undo.push(Undo::Acl(id, old.cloned()));
            self.delta.acls_changed = true;
        }
    }

    pub(super) fn cluster_id(&mut self) {
        if self.enabled {
            self.undo.push(Undo::ClusterId);
            self.delta.cluster_id_changed = true;
        }
    }

    /// Rolls `image` back to where it was before the batch, newest mutation first.
    pub(super) fn undo(self, image: &mut MetadataImage) {
        for u in self.undo.into_iter().rev() {
            match u {
                Undo::Broker(id, old) => image.restore_broker(id, old),
                Undo::TopicCreated(id) => image.restore_topic(id, None),
                Undo::TopicRemoved(topic, configs) => {
                    image.restore_topic(topic.id, Some((topic, configs)))
                }
                Undo::Partition(t, p, old) => image.restore_partition(t, p, old),
                Undo::Config(resource, key, old) => image.restore_config(resource, key, old),
                Undo::ProducerIds(old) => image.next_producer_id = old,
                Undo::Feature(name, old) => image.restore_feature(name, old),
                Undo::ClusterId => image.cluster_id = None,
                Undo::Scram(key, old) => image.restore_scram(key, old),
                Undo::Acl(id, old) => image.restore_acl(id, old),
            }
        }
    }

    pub(super) fn into_delta(mut self, record_count: usize) -> MetadataDelta {
        self.delta.record_count = record_count;
        self.delta
    }
}
