//! `ReplicaManager`: the partitions this broker hosts, and the produce and fetch paths over
//! their logs.
//!
//! Leadership comes only from the metadata image: [`ReplicaManager::apply_image`] compares the
//! image it last acted on with a new one and turns what changed for this broker into "become
//! leader" / "become follower" / "remove" for each partition (Kafka's `applyDelta`). A broker
//! that leads a partition appends producers' batches to its log (offsets and leader epoch
//! assigned by the log, payloads untouched) and serves fetches as file slices bounded by the
//! high watermark.
//!
//! Replication ([`replication`]): a leader tracks each follower's log end offset from its
//! fetches, moves the high watermark to the smallest log end offset over the ISR (the ISR the
//! controller committed), and proposes ISR changes through AlterPartition; followers fetch from
//! their leader ([`crate::replica_fetcher`]). With a single replica the high watermark follows
//! the log end at once.
//!
//! A replica whose log cannot be created or opened is never hosted: it answers
//! KAFKA_STORAGE_ERROR, CreateTopics reports it ([`ReplicaManager::offline_topics`]), and the
//! controller is told ([`crate::alter_partition_manager`] sends AssignReplicasToDirs to Kafka's
//! `DirectoryId.LOST`), which moves leadership to another ISR member or leaves the partition
//! leaderless — so no broker is advertised as the leader of a partition it has no log for.
//!
//! Each partition ([`crate::partition::Partition`]) keeps its own state, settings and
//! replication rules. Requests that cannot be answered yet wait in the purgatory keyed by
//! partition ([`crate::purgatory`]): an append wakes only the fetches waiting on that
//! partition's log end, a high watermark's move only the acks=all produces and consumers'
//! fetches waiting on that partition.
//!
//! Thread-safety: the partition map is behind a `RwLock` held only to look up, insert or remove
//! (never during I/O); each log has its own mutex (storage's `SharedLog`). `ReplicaSets` (the
//! partitions followed per leader and led with followers) is kept by `apply_image` as states
//! change; its mutex is a leaf, taken under a partition's state lock at most.

use crate::errors::storage_error_code;
use crate::log_read::{FetchIsolation, ReadResult};
use crate::metrics::NodeMetrics;
use crate::now_ms;
use crate::purgatory::Purgatory;
use bytes::Bytes;
use rafka_controller::image::delta::MetadataDelta;
use rafka_controller::image::{ConfigResource, MetadataImage, PartitionRegistration, TopicImage};
use rafka_protocol::control_record::EndTransactionMarker;
use rafka_protocol::{ErrorCode, Uuid};
use rafka_storage::log_manager::lock_log;
use rafka_storage::unified_log::read::TimestampAndOffset;
use rafka_storage::unified_log::timestamp_search::{TimestampSearch, TimestampStep};
use rafka_storage::unified_log::{LogAppendInfo, UnifiedLog};
use rafka_storage::{
    LogConfig, LogManager, LogValidator, RecordError, StorageError, TopicPartition,
    ValidatedRecords, VerificationGuard,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

pub mod delayed_fetch;
pub mod delayed_produce;
pub mod metrics;
pub mod read_replica;
pub mod replication;

pub use crate::partition::Partition;
use crate::partition::{followed_leader, AppendRefused, Became};

/// The answer to one partition of a produce request.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendResult {
    pub error: ErrorCode,
    pub error_message: Option<String>,
    /// The records the log's validation refused, for Produce's `record_errors`.
    pub record_errors: Vec<RecordError>,
    pub base_offset: i64,
    /// The last offset appended (acks=all waits for the high watermark to pass it).
    pub last_offset: i64,
    /// Whether the high watermark already passed it (a partition alone in its ISR): acks=all
    /// has nothing to wait for.
    pub replicated: bool,
    pub log_append_time: i64,
    pub log_start_offset: i64,
}

impl AppendResult {
    pub fn error(error: ErrorCode, message: Option<String>) -> AppendResult {
        AppendResult {
            error,
            error_message: message,
            record_errors: Vec::new(),
            base_offset: -1,
            last_offset: -1,
            replicated: false,
            log_append_time: -1,
            log_start_offset: -1,
        }
    }
}

/// A refused append: the error code for `e`, its message, and the records it names.
fn refused(tp: &TopicPartition, e: &StorageError) -> AppendResult {
    let code = storage_error_code(e);
    tracing::debug!(topic = %tp.topic, partition = tp.partition, error = %e, "append refused");
    AppendResult {
        record_errors: e.record_errors().to_vec(),
        ..AppendResult::error(code, Some(e.to_string()))
    }
}

/// The partitions whose leader this broker became, or that it now follows under another
/// leader, in one image change: logged one line each (Kafka's state-change log) up to
/// [`RoleChanges::EACH_UP_TO`], above that in one line at INFO and each at DEBUG — a restart of
/// a node leading 100,000 partitions would otherwise write 100,000 lines.
#[derive(Default)]
struct RoleChanges {
    changes: Vec<(TopicPartition, Became)>,
}

impl RoleChanges {
    const EACH_UP_TO: usize = 100;

    fn push(&mut self, tp: &TopicPartition, became: Became) {
        self.changes.push((tp.clone(), became));
    }

    fn log(self) {
        let each = self.changes.len() <= Self::EACH_UP_TO;
        for (tp, became) in &self.changes {
            match (*became, each) {
                (Became::Leader { epoch }, true) => {
                    tracing::info!(topic = %tp.topic, partition = tp.partition, epoch, "became leader")
                }
                (Became::Leader { epoch }, false) => {
                    tracing::debug!(topic = %tp.topic, partition = tp.partition, epoch, "became leader")
                }
                (Became::Follower { leader, epoch }, true) => {
                    tracing::info!(topic = %tp.topic, partition = tp.partition, leader, epoch, "became follower")
                }
                (Became::Follower { leader, epoch }, false) => {
                    tracing::debug!(topic = %tp.topic, partition = tp.partition, leader, epoch, "became follower")
                }
            }
        }
        if !each {
            let leader = self
                .changes
                .iter()
                .filter(|(_, b)| matches!(b, Became::Leader { .. }))
                .count();
            let follower = self.changes.len() - leader;
            tracing::info!(
                "became leader of {leader} partitions and follower of {follower} in one metadata change (each at DEBUG)"
            );
        }
    }
}

/// Where the replica manager takes a topic's settings from when it creates a partition or a
/// topic's configs change: the topic's overrides in the image over the broker's configuration
/// in force (`crate::config::dynamic_broker_config::DynamicBrokerConfig`, updated from an image before the replica
/// manager applies it). Resolved once per topic per image change and cached on the partitions,
/// never per request.
pub trait TopicConfigs: Send + Sync {
    /// `topic`'s settings by `image`.
    fn topic_settings(&self, image: &MetadataImage, topic: &str) -> TopicSettings;
}

/// What a partition takes from its topic's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicSettings {
    /// The storage settings of the topic's logs.
    pub log_config: LogConfig,
    /// `min.insync.replicas`.
    pub min_insync_replicas: i32,
}

/// The same settings for every topic.
#[cfg(test)]
pub(crate) struct FixedTopicConfigs(TopicSettings);

#[cfg(test)]
impl FixedTopicConfigs {
    /// [`LogConfig::default`] and `min_insync_replicas`.
    pub(crate) fn new(min_insync_replicas: i32) -> Arc<FixedTopicConfigs> {
        Arc::new(FixedTopicConfigs(TopicSettings {
            log_config: LogConfig::default(),
            min_insync_replicas,
        }))
    }
}

#[cfg(test)]
impl TopicConfigs for FixedTopicConfigs {
    fn topic_settings(&self, _: &MetadataImage, _: &str) -> TopicSettings {
        self.0.clone()
    }
}

/// The partitions of this broker.
pub struct ReplicaManager {
    broker_id: i32,
    log_manager: Arc<LogManager>,
    /// Topics' log configs and `min.insync.replicas`.
    topic_configs: Arc<dyn TopicConfigs>,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    by_id: RwLock<HashMap<(Uuid, i32), TopicPartition>>,
    /// The delayed produces and fetches: what they were woken by, how they ended.
    purgatory: Purgatory,
    /// `replica.lag.time.max.ms`: a follower not caught up for this long leaves the ISR.
    replica_lag_time_max_ms: AtomicI64,
    /// Replicas this broker cannot host: their log could not be created or opened. They are
    /// answered KAFKA_STORAGE_ERROR and reported to the controller (AssignReplicasToDirs to
    /// Kafka's `DirectoryId.LOST`), which moves leadership away. Cleared when the replica
    /// goes away (topic deleted, replica moved) or its log is created after all.
    offline: Mutex<HashMap<TopicPartition, OfflineReplica>>,
    /// The partitions this broker follows on each leader and those it leads with followers,
    /// kept by `apply_image` as states change, so that a fetcher's round costs O(partitions
    /// followed on its leader) and the ISR checks O(partitions led with followers), not
    /// O(partitions hosted). Lock order: after a partition's state.
    sets: Mutex<ReplicaSets>,
    /// The node's metrics, once set ([`ReplicaManager::set_metrics`]); unset: nothing recorded.
    metrics: OnceLock<Arc<NodeMetrics>>,
}

/// Partitions by role, kept as the image changes.
#[derive(Debug, Default)]
struct ReplicaSets {
    /// Per leader, the partitions this broker follows on it.
    followed: HashMap<i32, BTreeMap<TopicPartition, Arc<Partition>>>,
    /// The partitions this broker leads that have other replicas (an ISR to check).
    led_with_followers: BTreeMap<TopicPartition, Arc<Partition>>,
}

/// Removes `p` from `set` if it is the entry for its name (not a re-created topic's).
fn remove_same(set: &mut BTreeMap<TopicPartition, Arc<Partition>>, p: &Arc<Partition>) {
    if set.get(&p.tp).is_some_and(|e| Arc::ptr_eq(e, p)) {
        set.remove(&p.tp);
    }
}

/// A replica whose log could not be created or opened.
#[derive(Debug, Clone)]
pub struct OfflineReplica {
    pub topic_id: Uuid,
    pub error: String,
    /// Whether the controller has acknowledged it (reported again when the image shows this
    /// broker leading it or in its ISR once more).
    pub reported: bool,
}

impl ReplicaManager {
    pub fn new(
        broker_id: i32,
        log_manager: Arc<LogManager>,
        topic_configs: Arc<dyn TopicConfigs>,
    ) -> ReplicaManager {
        ReplicaManager {
            broker_id,
            log_manager,
            topic_configs,
            partitions: RwLock::new(HashMap::new()),
            by_id: RwLock::new(HashMap::new()),
            sets: Mutex::new(ReplicaSets::default()),
            purgatory: Purgatory::default(),
            replica_lag_time_max_ms: AtomicI64::new(30_000),
            offline: Mutex::new(HashMap::new()),
            metrics: OnceLock::new(),
        }
    }

    pub fn set_replica_lag_time_max_ms(&self, ms: i64) {
        self.replica_lag_time_max_ms.store(ms, Ordering::Relaxed);
    }

    /// The delayed-operation purgatories' counters.
    pub fn purgatory(&self) -> &Purgatory {
        &self.purgatory
    }

    pub fn log_manager(&self) -> &Arc<LogManager> {
        &self.log_manager
    }

    pub fn broker_id(&self) -> i32 {
        self.broker_id
    }

    pub fn partition(&self, tp: &TopicPartition) -> Option<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(tp)
            .cloned()
    }

    pub fn partition_by_id(&self, topic_id: &Uuid, index: i32) -> Option<Arc<Partition>> {
        let tp = self
            .by_id
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(*topic_id, index))
            .cloned()?;
        self.partition(&tp)
    }

    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Acts on what changed for this broker between two images: creates logs for new replicas,
    /// takes or gives up leadership at the image's leader epoch, deletes logs of replicas that
    /// are gone, and applies topic config changes to live logs.
    ///
    /// Only the topics the delta touched are visited (partitions changed, or topic configs), so
    /// a change costs what it changed, not the size of the image — except a change of dynamic
    /// broker configs (this broker's, or the cluster-wide default), which are the defaults of
    /// every topic's configs and so reach every live log. The [`TopicConfigs`] must already
    /// answer with `new`'s dynamic broker configs (the server updates the broker's
    /// configuration in force from `new` first).
    pub fn apply_image(&self, old: &MetadataImage, new: &MetadataImage) {
        let me = self.broker_id;
        let now = now_ms();
        let delta = MetadataDelta::between(old, new);
        let broker_configs_changed = [me.to_string(), String::new()].iter().any(|name| {
            delta
                .changed_configs()
                .contains(&ConfigResource::broker(name))
        });
        let mut touched: BTreeSet<Uuid> = delta.changed_partitions().map(|(t, _)| t).collect();
        touched.extend(
            delta
                .changed_configs()
                .iter()
                .filter(|r| r.resource_type == ConfigResource::TOPIC)
                .filter_map(|r| new.topic_by_name(&r.name).map(|t| t.id)),
        );
        self.create_new_logs(old, new, &touched, now);
        let visit: Box<dyn Iterator<Item = (&TopicImage, i32, &PartitionRegistration)>> =
            if broker_configs_changed {
                Box::new(new.partitions())
            } else {
                Box::new(
                    touched
                        .iter()
                        .filter_map(|id| new.topic(id))
                        .flat_map(|t| t.partitions.iter().map(move |(p, r)| (t, *p, r))),
                )
            };
        // The settings of the topic whose partitions are being visited (they come topic by topic).
        let mut topic_settings: Option<(Uuid, Arc<LogConfig>, i32)> = None;
        let mut roles = RoleChanges::default();
        for (topic, index, reg) in visit {
            if !reg.replicas.contains(&me) {
                continue;
            }
            let tp = TopicPartition {
                topic: topic.name.clone(),
                partition: index,
            };
            let before = old.partition(&topic.id, index);
            let existing = self.partition(&tp);
            let config_changed = broker_configs_changed
                || delta
                    .changed_configs()
                    .contains(&ConfigResource::topic(&topic.name));
            if existing.is_some() && before == Some(reg) && !config_changed {
                continue;
            }
            // The topic's effective settings, resolved here (when a partition is created or its
            // configs changed) once for the topic's partitions in this delta, and cached on the
            // partition, never per request.
            let mut settings = || {
                if let Some((id, config, min_isr)) = &topic_settings {
                    if *id == topic.id {
                        return (config.clone(), *min_isr);
                    }
                }
                let s = self.topic_configs.topic_settings(new, &topic.name);
                let (config, min_isr) = (Arc::new(s.log_config), s.min_insync_replicas);
                topic_settings = Some((topic.id, config.clone(), min_isr));
                (config, min_isr)
            };
            let partition = match existing {
                Some(p) if p.topic_id == topic.id => {
                    if config_changed {
                        let (config, min_isr) = settings();
                        p.update_config(config, min_isr);
                    }
                    p
                }
                stale => {
                    if let Some(stale) = stale {
                        // A topic of the same name was deleted and re-created.
                        let _ = self.log_manager.delete_log(&tp);
                        self.by_id
                            .write()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&(stale.topic_id, index));
                    }
                    let stale_offline = self
                        .offline_map()
                        .get(&tp)
                        .is_some_and(|o| o.topic_id != topic.id);
                    if stale_offline {
                        // A topic whose log was offline was deleted and re-created: its old
                        // log goes, and the new one is created.
                        self.offline_map().remove(&tp);
                        let _ = self.log_manager.delete_log(&tp);
                    }
                    let (config, min_isr) = settings();
                    let log = match self.log_manager.get_or_create_log(&tp, config.clone(), now) {
                        Ok(l) => {
                            self.offline_map().remove(&tp);
                            l
                        }
                        Err(e) => {
                            self.mark_offline(&tp, topic.id, reg, &e.to_string());
                            continue;
                        }
                    };
                    let p = Arc::new(Partition::new(
                        tp.clone(),
                        topic.id,
                        log,
                        me,
                        reg.clone(),
                        config,
                        min_isr,
                        self.topic_metrics(&tp.topic),
                    ));
                    let replaced = self
                        .partitions
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(tp.clone(), p.clone());
                    if let Some(r) = replaced {
                        self.set_change(&r, r.with_state(followed_leader), None, false);
                        r.remove();
                    }
                    self.set_change(&p, None, p.with_state(followed_leader), false);
                    self.by_id
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert((topic.id, index), tp.clone());
                    p
                }
            };
            let (_, change) = partition.set_registration(reg, now);
            if let Some(became) = change.became {
                roles.push(&partition.tp, became);
            }
            // A committed ISR change of a partition this broker kept leading (Kafka's
            // IsrShrinksPerSec / IsrExpandsPerSec).
            if let (Some((before, after)), Some(m)) = (change.isr_sizes, self.metrics.get()) {
                if after < before {
                    m.isr_shrinks.fetch_add(1, Ordering::Relaxed);
                } else if after > before {
                    m.isr_expands.fetch_add(1, Ordering::Relaxed);
                }
            }
            let led_with_followers = reg.leader == me && reg.replicas.len() > 1;
            self.set_change(
                &partition,
                change.followed_before,
                change.followed_after,
                led_with_followers,
            );
        }
        roles.log();
        // Replicas that are gone: the topic was deleted or the replica moved away.
        let gone: Vec<TopicPartition> = {
            let by_id = self.by_id.read().unwrap_or_else(|e| e.into_inner());
            delta
                .changed_partitions()
                .filter(|(id, p)| {
                    new.partition(id, *p)
                        .is_none_or(|reg| !reg.replicas.contains(&me))
                })
                .filter_map(|(id, p)| {
                    // The name may already belong to a re-created topic (handled above).
                    by_id
                        .get(&(id, p))
                        .filter(|tp| self.partition(tp).is_none_or(|h| h.topic_id == id))
                        .cloned()
                })
                .collect()
        };
        // Offline replicas that are gone: their topic was deleted (perhaps re-created: a new
        // id) or the replica moved away. A deleted topic takes its unopenable log with it.
        let offline_gone: Vec<TopicPartition> = self
            .offline_map()
            .iter()
            .filter(|(tp, o)| {
                new.partition(&o.topic_id, tp.partition)
                    .is_none_or(|reg| !reg.replicas.contains(&me))
            })
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in offline_gone {
            self.offline_map().remove(&tp);
            if self.partition(&tp).is_none() {
                if let Err(e) = self.log_manager.delete_log(&tp) {
                    tracing::error!(topic = %tp.topic, partition = tp.partition, error = %e, "cannot delete log");
                }
            }
        }
        for tp in gone {
            if let Some(p) = self
                .partitions
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&tp)
            {
                self.set_change(&p, p.with_state(followed_leader), None, false);
                p.remove();
                self.by_id
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&(p.topic_id, tp.partition));
            }
            if let Err(e) = self.log_manager.delete_log(&tp) {
                tracing::error!(topic = %tp.topic, partition = tp.partition, error = %e, "cannot delete log");
            } else {
                tracing::info!(topic = %tp.topic, partition = tp.partition, "deleted partition");
            }
        }
    }

    /// Creates the logs of this broker's replicas that are new in `new` (their topics among
    /// `touched`) in one batch ([`LogManager::create_logs`]: their directories fsynced together
    /// instead of two fsyncs a log, one log after another), so that `apply_image` finds them. A
    /// log that cannot be created here fails again there, where it is reported.
    fn create_new_logs(
        &self,
        old: &MetadataImage,
        new: &MetadataImage,
        touched: &BTreeSet<Uuid>,
        now: i64,
    ) {
        let me = self.broker_id;
        let mut logs = Vec::new();
        for topic in touched.iter().filter_map(|id| new.topic(id)) {
            let mut config = None;
            for (&index, reg) in &topic.partitions {
                if !reg.replicas.contains(&me) || old.partition(&topic.id, index).is_some() {
                    continue;
                }
                let tp = TopicPartition {
                    topic: topic.name.clone(),
                    partition: index,
                };
                if self.partition(&tp).is_some() || self.offline_map().contains_key(&tp) {
                    continue;
                }
                let config = config
                    .get_or_insert_with(|| {
                        Arc::new(
                            self.topic_configs
                                .topic_settings(new, &topic.name)
                                .log_config,
                        )
                    })
                    .clone();
                logs.push((tp, config));
            }
        }
        if logs.len() > 1 {
            drop(self.log_manager.create_logs(&logs, now));
        }
    }

    /// Keeps the sets in step with `p`'s role: it stopped following `before` and now follows
    /// `after` (either `None`), and leads with followers or not.
    fn set_change(
        &self,
        p: &Arc<Partition>,
        before: Option<i32>,
        after: Option<i32>,
        led_with_followers: bool,
    ) {
        let mut sets = self.sets.lock().unwrap_or_else(|e| e.into_inner());
        if before != after {
            if let Some(b) = before {
                if let Some(set) = sets.followed.get_mut(&b) {
                    remove_same(set, p);
                    if set.is_empty() {
                        sets.followed.remove(&b);
                    }
                }
            }
            if let Some(a) = after {
                sets.followed
                    .entry(a)
                    .or_default()
                    .insert(p.tp.clone(), p.clone());
            }
        }
        if led_with_followers {
            sets.led_with_followers.insert(p.tp.clone(), p.clone());
        } else {
            remove_same(&mut sets.led_with_followers, p);
        }
    }

    fn offline_map(&self) -> std::sync::MutexGuard<'_, HashMap<TopicPartition, OfflineReplica>> {
        self.offline.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that this broker cannot host `tp` (its log could not be created or opened). It
    /// is (re)reported to the controller when the image still has this broker leading it or in
    /// its ISR; otherwise the controller has already moved it out.
    fn mark_offline(
        &self,
        tp: &TopicPartition,
        topic_id: Uuid,
        reg: &PartitionRegistration,
        error: &str,
    ) {
        let me = self.broker_id;
        let needs_report = reg.leader == me || reg.isr.contains(&me);
        let mut offline = self.offline_map();
        let known = offline.get(tp).is_some_and(|o| o.topic_id == topic_id);
        if !known {
            tracing::error!(topic = %tp.topic, partition = tp.partition, error, "cannot create or open log: replica offline, reported to the controller");
        }
        let reported = known && !needs_report && offline.get(tp).is_some_and(|o| o.reported);
        offline.insert(
            tp.clone(),
            OfflineReplica {
                topic_id,
                error: error.to_owned(),
                reported,
            },
        );
    }

    /// The offline replicas the controller has not acknowledged yet: (topic id, partition).
    pub fn unreported_offline_replicas(&self) -> Vec<(Uuid, i32)> {
        let mut v: Vec<(Uuid, i32)> = self
            .offline_map()
            .iter()
            .filter(|(_, o)| !o.reported)
            .map(|(tp, o)| (o.topic_id, tp.partition))
            .collect();
        v.sort();
        v
    }

    /// The controller acknowledged these offline replicas.
    pub fn offline_replicas_reported(&self, replicas: &[(Uuid, i32)]) {
        for o in self.offline_map().iter_mut() {
            if replicas.contains(&(o.1.topic_id, o.0.partition)) {
                o.1.reported = true;
            }
        }
    }

    /// For CreateTopics: each of `topics` with a replica on this broker whose log could not be
    /// created, with the reason (the topic exists, but is not healthy).
    pub fn offline_topics(&self, topics: &[String]) -> Vec<(String, String)> {
        let offline = self.offline_map();
        let mut v: Vec<(String, String)> = topics
            .iter()
            .filter_map(|t| {
                offline
                    .iter()
                    .find(|(tp, _)| &tp.topic == t)
                    .map(|(tp, o)| {
                        (
                            t.clone(),
                            format!("partition {}: {}", tp.partition, o.error),
                        )
                    })
            })
            .collect();
        v.sort();
        v
    }

    /// Looks up a partition this broker leads, with the error a client gets otherwise.
    fn leader_partition(
        &self,
        image: &MetadataImage,
        tp: &TopicPartition,
    ) -> Result<Arc<Partition>, ErrorCode> {
        match self.partition(tp) {
            Some(p) if p.is_leader() => Ok(p),
            Some(_) => Err(ErrorCode::NotLeaderOrFollower),
            // A replica without its log (Kafka's offline partition).
            None if self.offline_map().contains_key(tp) => Err(ErrorCode::KafkaStorageError),
            None => match image.topic_by_name(&tp.topic) {
                Some(t) if t.partitions.contains_key(&tp.partition) => {
                    Err(ErrorCode::NotLeaderOrFollower)
                }
                _ => Err(ErrorCode::UnknownTopicOrPartition),
            },
        }
    }

    /// The idempotent producers of a partition this broker leads (DescribeProducers).
    pub fn describe_producers(
        &self,
        image: &MetadataImage,
        tp: &TopicPartition,
    ) -> Result<Vec<rafka_storage::ProducerStateEntry>, ErrorCode> {
        let p = self.leader_partition(image, tp)?;
        let log = lock_log(&p.log);
        Ok(log
            .producer_state()
            .active_producers()
            .into_iter()
            .cloned()
            .collect())
    }

    /// Validates a producer's records for a partition this broker leads, with its log's
    /// settings, before the log's lock is taken (validation reads every record). Uncompressed
    /// batches are walked inline — a pass over bytes already in memory, cheaper than a hop to
    /// another thread; compressed ones are streamed through their decompressor on a blocking
    /// thread, so a slow or hostile batch never holds an async worker.
    pub async fn validate_for_append(
        &self,
        image: &MetadataImage,
        tp: &TopicPartition,
        records: &Bytes,
    ) -> Result<ValidatedRecords, AppendResult> {
        let p = self.leader_partition(image, tp).map_err(|e| {
            self.produce_failed_unhosted();
            AppendResult::error(e, None)
        })?;
        // The settings as the image last set them (no lock on the log): they may change between
        // here and the append, as they may in Kafka between two produces.
        let config = p.config();
        let validator = LogValidator::new(&config, now_ms());
        let result = if LogValidator::any_compressed(records) {
            let (records, name) = (records.clone(), tp.clone());
            match tokio::task::spawn_blocking(move || validator.validate(&name, &records)).await {
                Ok(result) => result,
                Err(e) => {
                    return Err(AppendResult::error(
                        ErrorCode::UnknownServerError,
                        Some(format!("{tp}: validation task failed: {e}")),
                    ))
                }
            }
        } else {
            validator.validate(tp, records)
        };
        result.map_err(|e| {
            if let Some(stats) = &p.stats {
                stats.produce_failed(records.len() as u64);
            }
            refused(tp, &e)
        })
    }

    fn produce_failed_unhosted(&self) {
        if let Some(m) = self.metrics.get() {
            m.topics.produce_failed_unhosted();
        }
    }

    /// Appends records [`ReplicaManager::validate_for_append`] accepted to a partition this
    /// broker leads. acks=all also needs the ISR to have at least `min.insync.replicas` members.
    /// With `guard` (a produce request with a transactional id), a transactional batch that
    /// would open a transaction needs it to be its producer's current guard (KIP-890 part 1).
    pub fn append_validated(
        &self,
        image: &MetadataImage,
        tp: &TopicPartition,
        validated: &ValidatedRecords,
        acks: i16,
        guard: Option<VerificationGuard>,
    ) -> AppendResult {
        self.append_with(image, tp, acks, |log, epoch| match guard {
            Some(g) => log.append_validated_verified(validated, epoch, now_ms(), g),
            None => log.append_validated(validated, epoch, now_ms()),
        })
    }

    /// The guard a transactional produce of `producer_id` at `producer_epoch` to a partition
    /// this broker leads presents with its append; unless it is the sentinel (the producer's
    /// transaction is already open there) the coordinator must be asked first (KIP-890 part 1).
    pub fn start_txn_verification(
        &self,
        image: &MetadataImage,
        tp: &TopicPartition,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<VerificationGuard, ErrorCode> {
        let p = self.leader_partition(image, tp)?;
        let mut log = lock_log(&p.log);
        Ok(log.maybe_start_txn_verification(producer_id, producer_epoch))
    }

    /// Validates (inline, under the log's lock) and appends a producer's records; the produce
    /// path uses [`ReplicaManager::validate_for_append`] and
    /// [`ReplicaManager::append_validated`] instead.
    pub fn append(
        &self,
        image: &MetadataImage,
        tp: &TopicPartition,
        records: &Bytes,
        acks: i16,
    ) -> AppendResult {
        self.append_with(image, tp, acks, |log, epoch| {
            log.append_as_leader(records, epoch, now_ms())
        })
    }

    /// Appends a coordinator's own records (acks=all): a transactional batch is checked only for its producer's epoch and transaction state (Kafka's origin
    /// COORDINATOR; the group coordinator's TxnOffsetCommit records). `guard`: as
    /// [`Self::append_validated`]'s.
    pub fn append_as_coordinator(
        &self,
        image: &MetadataImage,
        tp: &TopicPartition,
        records: &Bytes,
        guard: Option<VerificationGuard>,
    ) -> AppendResult {
        self.append_with(image, tp, -1, |log, epoch| {
            log.append_as_coordinator(records, epoch, now_ms(), guard)
        })
    }

    /// Appends a transaction's end marker for `producer_id` to a partition this broker leads
    /// (WriteTxnMarkers; acks=all, as Kafka's coordinator-origin append).
    pub fn append_end_txn_marker(
        &self,
        image: &MetadataImage,
        tp: &TopicPartition,
        producer_id: i64,
        producer_epoch: i16,
        marker: &EndTransactionMarker,
    ) -> AppendResult {
        self.append_with(image, tp, -1, |log, epoch| {
            log.append_end_txn_marker(producer_id, producer_epoch, marker, epoch, now_ms())
        })
    }

    fn append_with(
        &self,
        image: &MetadataImage,
        tp: &TopicPartition,
        acks: i16,
        append: impl FnOnce(&mut UnifiedLog, i32) -> rafka_storage::Result<LogAppendInfo>,
    ) -> AppendResult {
        let p = match self.leader_partition(image, tp) {
            Ok(p) => p,
            Err(e) => {
                self.produce_failed_unhosted();
                return AppendResult::error(e, None);
            }
        };
        match p.append_records_to_leader(acks, append) {
            Ok((info, offsets)) => {
                if let Some(stats) = &p.stats {
                    // A producer's retry of a batch already in the log appends nothing.
                    let (bytes, messages) = if info.duplicate {
                        (0, 0)
                    } else {
                        (
                            info.bytes as u64,
                            (info.last_offset - info.first_offset + 1).max(0) as u64,
                        )
                    };
                    stats.produced(bytes, messages);
                }
                AppendResult {
                    error: ErrorCode::None,
                    error_message: None,
                    record_errors: Vec::new(),
                    base_offset: info.first_offset,
                    last_offset: info.last_offset,
                    replicated: offsets.high_watermark > info.last_offset,
                    log_append_time: info.log_append_time,
                    log_start_offset: offsets.log_start_offset,
                }
            }
            Err(refusal) => {
                if let Some(stats) = &p.stats {
                    stats.produce_failed(0);
                }
                match refusal {
                    AppendRefused::NotEnoughReplicas => {
                        AppendResult::error(ErrorCode::NotEnoughReplicas, None)
                    }
                    AppendRefused::Log(e) => refused(tp, &e),
                }
            }
        }
    }

    /// Reads from a partition this broker leads — or, with `any_replica` (a Fetch v11+ consumer,
    /// KIP-392), one it follows: whole batches from `offset`, at most `max_bytes` (the first
    /// batch whole when `min_one`), never above this replica's high watermark.
    pub fn read(
        &self,
        image: &MetadataImage,
        tp: &TopicPartition,
        offset: i64,
        max_bytes: u64,
        min_one: bool,
        current_leader_epoch: i32,
        any_replica: bool,
    ) -> ReadResult {
        self.read_isolated(
            image,
            tp,
            offset,
            max_bytes,
            min_one,
            current_leader_epoch,
            FetchIsolation::HighWatermark,
            any_replica,
        )
    }

    /// A leader's own read of a partition it leads, up to its log end rather than the high
    /// watermark (Kafka's `FetchIsolation.LOG_END`): a new group coordinator loads everything
    /// its log has, which as leader's log is what will be committed.
    pub fn read_to_log_end(
        &self,
        image: &MetadataImage,
        tp: &TopicPartition,
        offset: i64,
        max_bytes: u64,
    ) -> ReadResult {
        self.read_isolated(
            image,
            tp,
            offset,
            max_bytes,
            true,
            -1,
            FetchIsolation::LogEnd,
            false,
        )
    }

    /// [`ReplicaManager::read`] with a consumer's isolation: read_committed stops at the last
    /// stable offset and answers the aborted transactions in range.
    #[allow(clippy::too_many_arguments)]
    pub fn read_isolated(
        &self,
        image: &MetadataImage,
        tp: &TopicPartition,
        offset: i64,
        max_bytes: u64,
        min_one: bool,
        current_leader_epoch: i32,
        isolation: FetchIsolation,
        any_replica: bool,
    ) -> ReadResult {
        let to_log_end = isolation == FetchIsolation::LogEnd;
        // KIP-392: a follower serves consumers that may read from any replica, up to its own
        // high watermark (learned from the leader); its epoch is the leader's it follows.
        let p = match self.partition(tp) {
            Some(p) if any_replica && !to_log_end => p,
            _ => match self.leader_partition(image, tp) {
                Ok(p) => p,
                Err(e) => {
                    if let Some(m) = self.metrics.get() {
                        m.topics.fetch_failed_unhosted();
                    }
                    return ReadResult::error(e);
                }
            },
        };
        let epoch = p.leader_epoch();
        if current_leader_epoch >= 0 {
            if current_leader_epoch < epoch {
                return ReadResult::error(ErrorCode::FencedLeaderEpoch);
            }
            if current_leader_epoch > epoch {
                return ReadResult::error(ErrorCode::UnknownLeaderEpoch);
            }
        }
        let mut out = p.read_records(offset, max_bytes, min_one, isolation);
        // The coordinator's own loading read (to the log end) is no client's fetch.
        if !to_log_end {
            if let Some(stats) = &p.stats {
                stats.fetched(out.error != ErrorCode::None);
            }
            out.stats = p.stats.clone();
        }
        out
    }

    /// ListOffsets for a partition this broker leads (`timestamp` -1 latest = the high
    /// watermark, -2 earliest, -3 max timestamp, else the first record at or after it).
    ///
    /// A search by time may read and decompress batches: that half runs without the log's lock
    /// ([`TimestampSearch`]), so appends and fetches of the partition go on meanwhile; the
    /// caller runs this on a blocking thread ([`ReplicaManager::needs_blocking_search`]).
    pub fn fetch_offset_for_timestamp(
        &self,
        image: &MetadataImage,
        tp: &TopicPartition,
        timestamp: i64,
        current_leader_epoch: i32,
    ) -> Result<Option<TimestampAndOffset>, ErrorCode> {
        self.fetch_offset_for_timestamp_isolated(
            image,
            tp,
            timestamp,
            current_leader_epoch,
            FetchIsolation::HighWatermark,
        )
    }

    /// [`ReplicaManager::fetch_offset_for_timestamp`] for a consumer's isolation: for
    /// read_committed, latest is the last stable offset and nothing above it is answered.
    pub fn fetch_offset_for_timestamp_isolated(
        &self,
        image: &MetadataImage,
        tp: &TopicPartition,
        timestamp: i64,
        current_leader_epoch: i32,
        isolation: FetchIsolation,
    ) -> Result<Option<TimestampAndOffset>, ErrorCode> {
        let p = self.leader_partition(image, tp)?;
        let epoch = p.leader_epoch();
        if current_leader_epoch >= 0 && current_leader_epoch != epoch {
            return Err(if current_leader_epoch < epoch {
                ErrorCode::FencedLeaderEpoch
            } else {
                ErrorCode::UnknownLeaderEpoch
            });
        }
        let mut search = TimestampSearch::new(timestamp);
        loop {
            // Lock held for: the KIP-207 check, in-memory answers, and walking batch headers.
            let (read, high_watermark) = {
                let mut log = lock_log(&p.log);
                let real_hw = log.high_watermark();
                // KIP-207: a new leader answers only once its high watermark has reached the
                // start of its epoch, so no client sees the partition's end move backwards after
                // a failover.
                if timestamp != rafka_storage::unified_log::EARLIEST_TIMESTAMP
                    && crate::partition::epoch_start_offset(&log, epoch) > real_hw
                {
                    return Err(ErrorCode::OffsetNotAvailable);
                }
                // What the consumer may read: the high watermark, or for read_committed the
                // last stable offset.
                let hw = if isolation == FetchIsolation::TxnCommitted {
                    log.last_stable_offset()
                } else {
                    real_hw
                };
                if timestamp == rafka_storage::unified_log::LATEST_TIMESTAMP {
                    return Ok(Some(TimestampAndOffset {
                        timestamp: -1,
                        offset: hw,
                        leader_epoch: epoch,
                    }));
                }
                if !Self::needs_blocking_search(timestamp) {
                    // EARLIEST, or a negative target no record can have: nothing to read.
                    return match log.fetch_offset_by_timestamp(timestamp) {
                        Ok(r) => Ok(r.filter(|t| t.offset <= hw)),
                        Err(e) => Err(storage_error_code(&e)),
                    };
                }
                match search.step(&mut log) {
                    // Never an offset a consumer may not read.
                    Ok(TimestampStep::Done(r)) => return Ok(r.filter(|t| t.offset <= hw)),
                    Ok(TimestampStep::Read(read)) => (read, hw),
                    Err(e) => return Err(storage_error_code(&e)),
                }
            };
            // Off the lock: read the batch and decompress it.
            match search.read(read) {
                // The high watermark never moves back: the one seen under the lock bounds it.
                Ok(Some(found)) => return Ok(Some(found).filter(|t| t.offset <= high_watermark)),
                Ok(None) => continue,
                Err(e) => return Err(storage_error_code(&e)),
            }
        }
    }

    /// Whether ListOffsets for `timestamp` may read and decompress batches (a time, or the max
    /// timestamp), so belongs on a blocking thread rather than an async worker.
    pub fn needs_blocking_search(timestamp: i64) -> bool {
        timestamp >= 0 || timestamp == rafka_storage::unified_log::MAX_TIMESTAMP
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rafka_protocol::messages::{
        MetadataRecord, PartitionChangeRecord, PartitionRecord, RemoveTopicRecord, TopicRecord,
    };
    use rafka_storage::DiskFs;

    fn topic(name: &str, id: u128) -> MetadataRecord {
        MetadataRecord::Topic(TopicRecord {
            name: name.into(),
            topic_id: Uuid::from_u128(id),
            ..Default::default()
        })
    }

    fn partition(id: u128, p: i32, replica: i32) -> MetadataRecord {
        MetadataRecord::Partition(PartitionRecord {
            partition_id: p,
            topic_id: Uuid::from_u128(id),
            replicas: vec![replica],
            isr: vec![replica],
            leader: replica,
            ..Default::default()
        })
    }

    fn next(image: &MetadataImage, records: &[MetadataRecord]) -> MetadataImage {
        let mut image = image.clone();
        image.apply_batch(records).expect("records apply");
        image
    }

    fn hosted(rm: &ReplicaManager) -> Vec<(String, i32, u128)> {
        let mut v: Vec<_> = rm
            .partitions()
            .iter()
            .map(|p| (p.tp.topic.clone(), p.tp.partition, p.topic_id.as_u128()))
            .collect();
        v.sort();
        v
    }

    /// Broker 1 hosting its logs under `dir`, default log configs, min ISR 1.
    fn broker_one(dir: &std::path::Path) -> ReplicaManager {
        let lm = Arc::new(
            LogManager::open(
                Arc::new(DiskFs),
                &[dir.to_path_buf()],
                &|_| LogConfig::default(),
                0,
            )
            .expect("log manager"),
        );
        ReplicaManager::new(1, lm, FixedTopicConfigs::new(1))
    }

    /// `apply_image` visits only what the delta between two images touched, across any number
    /// of batches at once — a topic deleted and re-created under the same name in one jump, a
    /// replica moved away, a partition of another broker's — and hosts exactly what the new
    /// image gives this broker.
    #[test]
    fn apply_image_follows_the_delta_between_images() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rm = broker_one(dir.path());
        let empty = MetadataImage::new();
        let a = next(
            &empty,
            &[
                topic("t", 1),
                partition(1, 0, 1),
                partition(1, 1, 1),
                topic("other", 3),
                partition(3, 0, 2),
            ],
        );
        rm.apply_image(&empty, &a);
        assert_eq!(hosted(&rm), vec![("t".into(), 0, 1), ("t".into(), 1, 1)]);
        assert!(rm
            .partition(&TopicPartition {
                topic: "t".into(),
                partition: 0
            })
            .is_some_and(|p| p.is_leader()));

        // Deleted and re-created with one partition, seen in one jump.
        let b = next(
            &a,
            &[
                MetadataRecord::RemoveTopic(RemoveTopicRecord {
                    topic_id: Uuid::from_u128(1),
                    ..Default::default()
                }),
                topic("t", 2),
                partition(2, 0, 1),
            ],
        );
        rm.apply_image(&a, &b);
        assert_eq!(hosted(&rm), vec![("t".into(), 0, 2)]);
        assert!(!dir.path().join("t-1").exists(), "t-1's log is deleted");

        // The replica moves to broker 2: gone from here.
        let c = next(
            &b,
            &[MetadataRecord::PartitionChange(PartitionChangeRecord {
                topic_id: Uuid::from_u128(2),
                partition_id: 0,
                replicas: Some(vec![2]),
                isr: Some(vec![2]),
                leader: 2,
                ..Default::default()
            })],
        );
        rm.apply_image(&b, &c);
        assert_eq!(hosted(&rm), vec![]);
        // Nothing changed: nothing to do.
        rm.apply_image(&c, &c);
        assert_eq!(hosted(&rm), vec![]);
    }

    /// The leaders followed, as the fetcher manager asks every 100 ms, are kept by
    /// `apply_image` as states change, and match a scan of every hosted partition through
    /// follower, leader and gone transitions and a topic re-created under its name.
    #[test]
    fn followed_leaders_follow_the_images() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rm = broker_one(dir.path());
        let scan = |rm: &ReplicaManager| {
            let mut v: Vec<i32> = rm
                .partitions()
                .iter()
                .filter_map(|p| p.with_state(followed_leader))
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let led_by = |id: u128, p: i32, leader: i32| {
            MetadataRecord::Partition(PartitionRecord {
                partition_id: p,
                topic_id: Uuid::from_u128(id),
                replicas: vec![leader, 1],
                isr: vec![leader, 1],
                leader,
                ..Default::default()
            })
        };
        let change = |id: u128, p: i32, leader: i32, replicas: Vec<i32>| {
            MetadataRecord::PartitionChange(PartitionChangeRecord {
                topic_id: Uuid::from_u128(id),
                partition_id: p,
                replicas: Some(replicas.clone()),
                isr: Some(replicas),
                leader,
                ..Default::default()
            })
        };
        let empty = MetadataImage::new();
        let a = next(
            &empty,
            &[
                topic("t", 1),
                led_by(1, 0, 2),
                led_by(1, 1, 3),
                led_by(1, 2, 2),
                led_by(1, 3, 1),
            ],
        );
        rm.apply_image(&empty, &a);
        assert_eq!(rm.followed_leaders(), vec![2, 3]);
        assert_eq!(rm.followed_leaders(), scan(&rm));
        // 3 → this broker leads; 2 → 3 for one partition; the other of 2 moves away.
        let b = next(
            &a,
            &[
                change(1, 1, 1, vec![1, 3]),
                change(1, 0, 3, vec![3, 1]),
                change(1, 2, 2, vec![2]),
            ],
        );
        rm.apply_image(&a, &b);
        assert_eq!(rm.followed_leaders(), vec![3]);
        assert_eq!(rm.followed_leaders(), scan(&rm));
        // Deleted and re-created under its name, led by 4.
        let c = next(
            &b,
            &[
                MetadataRecord::RemoveTopic(RemoveTopicRecord {
                    topic_id: Uuid::from_u128(1),
                    ..Default::default()
                }),
                topic("t", 2),
                led_by(2, 0, 4),
            ],
        );
        rm.apply_image(&b, &c);
        assert_eq!(rm.followed_leaders(), vec![4]);
        assert_eq!(rm.followed_leaders(), scan(&rm));
    }

    /// A replica whose log cannot be created is never hosted: it answers KAFKA_STORAGE_ERROR,
    /// CreateTopics learns of it, it waits to be reported to the controller (again whenever
    /// the image still shows this broker leading it or in its ISR), and it goes with its topic.
    #[test]
    fn a_replica_whose_log_cannot_be_created_is_offline_and_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rm = broker_one(dir.path());
        // A file where partition "bad"-0's directory must go.
        std::fs::write(dir.path().join("bad-0"), b"not a directory").expect("write");
        let empty = MetadataImage::new();
        let a = next(
            &empty,
            &[
                topic("bad", 1),
                partition(1, 0, 1),
                partition(1, 1, 1),
                topic("good", 2),
                partition(2, 0, 1),
            ],
        );
        rm.apply_image(&empty, &a);
        assert_eq!(
            hosted(&rm),
            vec![("bad".into(), 1, 1), ("good".into(), 0, 2)]
        );
        let bad = TopicPartition::new("bad", 0);
        assert_eq!(
            rm.append(&a, &bad, &Bytes::new(), 1).error,
            ErrorCode::KafkaStorageError
        );
        assert_eq!(
            rm.read(&a, &bad, 0, 1024, true, -1, false).error,
            ErrorCode::KafkaStorageError
        );
        assert_eq!(
            rm.fetch_offset_for_timestamp(&a, &bad, -1, -1),
            Err(ErrorCode::KafkaStorageError)
        );
        let offline = rm.offline_topics(&["bad".into(), "good".into()]);
        assert_eq!(offline.len(), 1);
        assert_eq!(offline[0].0, "bad");
        assert_eq!(
            rm.unreported_offline_replicas(),
            vec![(Uuid::from_u128(1), 0)]
        );
        rm.offline_replicas_reported(&[(Uuid::from_u128(1), 0)]);
        assert!(rm.unreported_offline_replicas().is_empty());

        // The controller left it leaderless (this broker the last ISR member): it is still
        // offline here, and reported again since the image keeps this broker in its ISR.
        let b = next(
            &a,
            &[MetadataRecord::PartitionChange(PartitionChangeRecord {
                topic_id: Uuid::from_u128(1),
                partition_id: 0,
                leader: -1,
                ..Default::default()
            })],
        );
        rm.apply_image(&a, &b);
        assert_eq!(
            rm.unreported_offline_replicas(),
            vec![(Uuid::from_u128(1), 0)]
        );

        // Deleted: nothing offline is left, and the other topic is still served.
        let c = next(
            &b,
            &[MetadataRecord::RemoveTopic(RemoveTopicRecord {
                topic_id: Uuid::from_u128(1),
                ..Default::default()
            })],
        );
        rm.apply_image(&b, &c);
        assert!(rm.unreported_offline_replicas().is_empty());
        assert!(rm.offline_topics(&["bad".into()]).is_empty());
        assert_eq!(hosted(&rm), vec![("good".into(), 0, 2)]);
    }
}
