//! The group coordinator (Kafka's `GroupCoordinator`, classic protocol).
//!
//! - [`membership`]: the groups' members and rebalances, in memory (JoinGroup, SyncGroup,
//!   Heartbeat, LeaveGroup, ListGroups, DescribeGroups, DeleteGroups).
//! - [`consumer`]: consumer groups (KIP-848), with classic members inside them and the online
//!   migration between the two kinds; `classic_api` routes the classic APIs to either;
//!   [`consumer_protocol`] reads and writes the consumer protocol classic members embed.
//! - [`records`]: the records of `__consumer_offsets`, in Kafka's format.
//! - loading, appending and waiting for replication are shared with the transaction
//!   coordinator ([`crate::coordinator_common`]).
//! - [`GroupCoordinator`] (here): which groups this broker coordinates, and their committed
//!   offsets, durable in `__consumer_offsets`.
//!
//! A group belongs to partition `(javaStringHash(group) & 0x7fffffff) % offsets.topic.num.partitions`
//! of `__consumer_offsets` (created through the controller on the first FindCoordinator for a
//! group), and its coordinator is that partition's leader. On becoming leader of such a
//! partition the coordinator loads it — every offset commit and tombstone up to the high
//! watermark — and answers COORDINATOR_LOAD_IN_PROGRESS for its groups meanwhile; a broker that
//! does not lead a group's partition answers NOT_COORDINATOR. An offset commit is appended to
//! the partition (acks=all) and only then applied in memory and acknowledged, so an
//! acknowledged commit survives a restart.
//!
//! Losing leadership of a partition unloads its groups: waiting joins and syncs answer
//! NOT_COORDINATOR and their members look the coordinator up again.
//!
//! Group metadata: whenever a group becomes Stable with its assignment, or Empty, its record
//! (`GroupMetadataValue`: generation, protocol, leader, members with their subscriptions and
//! assignments) is appended by [`GroupCoordinator::tick`] on a blocking thread, and a
//! DeleteGroups or an expiry that leaves an Empty group without offsets tombstones it. Loading
//! a partition rebuilds its groups from the latest records: after a restart a group exists with
//! its generation and members, who keep their place if they heartbeat within their session.
//!
//! Offset expiry (`offsets.retention.minutes`, checked every
//! `offsets.retention.check.interval.ms`): see [`GroupCoordinator::expire_offsets`].

mod classic_api;
pub mod consumer;
pub mod consumer_protocol;
pub mod lag;
pub mod membership;
pub mod records;
pub mod txn_offsets;

use crate::coordinator_common::loader::{Loaded, PartitionLoad};
use crate::coordinator_common::{
    append_records, append_transactional_records, not_loaded, read_partition_loaded,
    wait_replicated,
};
use crate::replica_manager::ReplicaManager;
use consumer::records::ConsumerRecord;
use consumer::{ConsumerGroupConfig, ConsumerGroups};
use membership::GroupMembership;
use membership::OffsetExpiry;
use rafka_controller::image::MetadataImage;
use rafka_protocol::messages::GroupMetadataValue;
use rafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use rafka_protocol::ErrorCode;
use rafka_storage::TopicPartition;
use records::{CoordinatorRecord, OffsetAndMetadata};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use txn_offsets::PendingTxnOffsets;

/// The internal topic of group offsets and metadata (one name, kept with the other internal
/// topics).
pub const GROUP_METADATA_TOPIC: &str =
    rafka_controller::control::topics::internal::GROUP_METADATA_TOPIC_NAME;

/// Java's `String.hashCode` (over UTF-16 code units), which places groups.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The `__consumer_offsets` partition of `group` among `partitions`.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    (java_string_hash(group) & 0x7fff_ffff) % partitions.max(1)
}

/// The coordinator's settings (Kafka's names).
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// `offsets.topic.num.partitions`.
    pub num_partitions: i32,
    /// `offsets.topic.replication.factor`.
    pub replication_factor: i16,
    /// `offsets.topic.segment.bytes`.
    pub segment_bytes: i32,
    /// `offset.metadata.max.bytes`: longer commit metadata gets OFFSET_METADATA_TOO_LARGE.
    pub metadata_max_bytes: usize,
    /// `offsets.retention.minutes`, in milliseconds.
    pub retention_ms: i64,
    /// `offsets.retention.check.interval.ms`.
    pub retention_check_interval_ms: i64,
    /// `group.consumer.*`: consumer groups (KIP-848).
    pub consumer: ConsumerGroupConfig,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            num_partitions: 50,
            replication_factor: 3,
            segment_bytes: 104_857_600,
            metadata_max_bytes: 4096,
            retention_ms: 10080 * 60 * 1000,
            retention_check_interval_ms: 600_000,
            consumer: ConsumerGroupConfig::default(),
        }
    }
}

/// Committed offsets of one group: (topic, partition) → offset.
pub type GroupOffsets = BTreeMap<(String, i32), OffsetAndMetadata>;

/// One `__consumer_offsets` partition this broker leads.
#[derive(Debug, Default)]
struct OffsetsPartition {
    loaded: bool,
    groups: HashMap<String, GroupOffsets>,
    /// Offsets of transactions not yet ended ([`txn_offsets`]).
    pending_txn: PendingTxnOffsets,
}

/// Offsets of one group to commit: (topic, partition, value).
pub type OffsetCommits = Vec<(String, i32, OffsetAndMetadata)>;

/// The group coordinator of this broker.
pub struct GroupCoordinator {
    broker_id: i32,
    config: CoordinatorConfig,
    membership: Arc<GroupMembership>,
    /// Consumer groups (KIP-848).
    consumer: ConsumerGroups,
    replica_manager: Arc<ReplicaManager>,
    /// Lock order: `partitions`, then the consumer groups' lock, then the membership's own
    /// lock (never the other way).
    partitions: Mutex<HashMap<i32, OffsetsPartition>>,
    /// The latest image `on_image` saw: the background writes append under it.
    image: Mutex<Arc<MetadataImage>>,
    /// A background write (group metadata records, offset expiry) is running.
    writing: Arc<AtomicBool>,
    /// When offsets were last checked for expiry.
    last_expiry_check: Mutex<Option<Instant>>,
}

impl GroupCoordinator {
    pub fn new(
        broker_id: i32,
        config: CoordinatorConfig,
        membership: Arc<GroupMembership>,
        replica_manager: Arc<ReplicaManager>,
    ) -> Arc<GroupCoordinator> {
        Arc::new(GroupCoordinator {
            broker_id,
            consumer: ConsumerGroups::new(config.consumer.clone()),
            config,
            membership,
            replica_manager,
            partitions: Mutex::new(HashMap::new()),
            image: Mutex::new(Arc::new(MetadataImage::new())),
            writing: Arc::new(AtomicBool::new(false)),
            last_expiry_check: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    pub fn membership(&self) -> &Arc<GroupMembership> {
        &self.membership
    }

    /// The consumer groups (KIP-848).
    pub fn consumer(&self) -> &ConsumerGroups {
        &self.consumer
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<i32, OffsetsPartition>> {
        self.partitions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The `__consumer_offsets` partition of `group`.
    pub fn partition_for(&self, group: &str) -> i32 {
        partition_for(group, self.config.num_partitions)
    }

    /// Whether this broker coordinates `group` now: its partition, or NOT_COORDINATOR /
    /// COORDINATOR_LOAD_IN_PROGRESS.
    pub fn check(&self, group: &str) -> Result<i32, ErrorCode> {
        let p = self.partition_for(group);
        match self.lock().get(&p) {
            Some(s) if s.loaded => Ok(p),
            Some(_) => Err(ErrorCode::CoordinatorLoadInProgress),
            None => Err(not_loaded(&self.replica_manager, GROUP_METADATA_TOPIC, p)),
        }
    }

    /// Follows leadership of `__consumer_offsets`: loads each partition this broker has come
    /// to lead (on a blocking thread) and forgets those it no longer leads.
    pub fn on_image(self: &Arc<Self>, image: &Arc<MetadataImage>) {
        *self.image.lock().unwrap_or_else(|e| e.into_inner()) = image.clone();
        let led: Vec<i32> = image
            .topic_by_name(GROUP_METADATA_TOPIC)
            .map(|t| {
                t.partitions
                    .iter()
                    .filter(|(_, r)| r.leader == self.broker_id)
                    .map(|(p, _)| *p)
                    .collect()
            })
            .unwrap_or_default();
        let to_load: Vec<i32> = {
            let mut parts = self.lock();
            let lost: Vec<i32> = parts.keys().copied().filter(|p| !led.contains(p)).collect();
            if !lost.is_empty() {
                // Their members find the new coordinator (waiters answer NOT_COORDINATOR).
                let n = self.config.num_partitions;
                self.membership
                    .unload(|g| lost.contains(&partition_for(g, n)));
                self.consumer
                    .unload(|g| lost.contains(&partition_for(g, n)));
            }
            parts.retain(|p, _| led.contains(p));
            let new: Vec<i32> = led
                .iter()
                .copied()
                .filter(|p| !parts.contains_key(p))
                .collect();
            for p in &new {
                parts.insert(*p, OffsetsPartition::default());
            }
            new
        };
        for p in to_load {
            let this = self.clone();
            let image = image.clone();
            tokio::task::spawn_blocking(move || {
                let started = std::time::Instant::now();
                match this.load(&image, p) {
                    Ok(n) => tracing::debug!(
                        partition = p,
                        records = n,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "loaded group offsets"
                    ),
                    Err(e) => {
                        // Left "loading": its groups keep answering COORDINATOR_LOAD_IN_PROGRESS
                        // until leadership changes, rather than serving lost offsets.
                        tracing::error!(partition = p, error = %e, "cannot load group offsets");
                    }
                }
            });
        }
    }

    /// Reads partition `p` up to its log end into memory (as Kafka's coordinator does: a new
    /// leader's high watermark may lag behind commits its followers acknowledged); the number of
    /// records read.
    fn load(&self, image: &MetadataImage, p: i32) -> Result<usize, String> {
        let tp = TopicPartition {
            topic: GROUP_METADATA_TOPIC.to_owned(),
            partition: p,
        };
        let mut groups: HashMap<String, GroupOffsets> = HashMap::new();
        let mut metadata: HashMap<String, GroupMetadataValue> = HashMap::new();
        let mut consumer: Vec<(String, ConsumerRecord)> = Vec::new();
        let mut pending = PendingTxnOffsets::default();
        let mut load = PartitionLoad::new(GROUP_METADATA_TOPIC, p);
        read_partition_loaded(
            &self.replica_manager,
            image,
            &tp,
            &mut load,
            &records::read,
            &mut |l| replay(&mut groups, &mut metadata, &mut consumer, &mut pending, l),
        )?;
        let count = load.records();
        load.finish();
        let mut parts = self.lock();
        if let Some(s) = parts.get_mut(&p) {
            // Groups first, then "loaded": no request sees the partition half loaded.
            for (group, value) in metadata {
                self.membership.load_group(&group, value);
            }
            let now = Instant::now();
            let n = self.config.num_partitions;
            self.consumer.unload(|g| partition_for(g, n) == p);
            for (group, rec) in consumer {
                self.consumer.replay(&group, rec, now);
            }
            self.consumer
                .start_sessions(image, |g| partition_for(g, n) == p, now);
            s.groups = groups;
            s.pending_txn = pending;
            s.loaded = true;
        }
        Ok(count)
    }

    /// Appends `records` (key, value) to partition `p` as one batch (acks=all): the offset the
    /// high watermark must reach for them to be replicated, or the error a coordinator answers
    /// when it cannot append (Kafka's mapping in `GroupMetadataManager`).
    fn append(
        &self,
        image: &MetadataImage,
        p: i32,
        records: &[(bytes::Bytes, Option<bytes::Bytes>)],
    ) -> Result<i64, ErrorCode> {
        let tp = TopicPartition {
            topic: GROUP_METADATA_TOPIC.to_owned(),
            partition: p,
        };
        append_records(
            &self.replica_manager,
            image,
            &tp,
            records,
            ErrorCode::InvalidCommitOffsetSize,
        )
    }

    /// Commits offsets of `group` (already checked against its membership): appended first,
    /// applied in memory only once the append succeeded. Returns the offset of `__consumer_offsets`
    /// the high watermark must pass before the commit is acknowledged
    /// ([`GroupCoordinator::wait_for_commit`]), `None` if there was nothing to write.
    pub fn commit_offsets(
        &self,
        image: &MetadataImage,
        group: &str,
        commits: &OffsetCommits,
    ) -> Result<Option<i64>, ErrorCode> {
        let p = self.check(group)?;
        if commits.is_empty() {
            return Ok(None);
        }
        let records: Vec<_> = commits
            .iter()
            .map(|(t, part, v)| records::offset_commit(group, t, *part, Some(v)))
            .collect();
        // Held across the append, so that memory changes in the order the log does.
        let mut parts = self.lock();
        if !parts.get(&p).is_some_and(|s| s.loaded) {
            return Err(ErrorCode::NotCoordinator);
        }
        let required = self.append(image, p, &records)?;
        let Some(s) = parts.get_mut(&p) else {
            return Err(ErrorCode::NotCoordinator);
        };
        let offsets = s.groups.entry(group.to_owned()).or_default();
        for (t, part, v) in commits {
            let key = (t.clone(), *part);
            s.pending_txn.on_plain_commit(group, &key);
            offsets.insert(key, v.clone());
        }
        if let Some(m) = self.replica_manager.metrics() {
            m.offset_commits
                .fetch_add(records.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(Some(required))
    }

    /// TxnOffsetCommit (already checked against the transaction and the membership): the offsets
    /// are appended as one transactional batch of `producer_id` (the log refuses a stale epoch:
    /// INVALID_PRODUCER_EPOCH), then held pending until the transaction's marker
    /// ([`Self::complete_transaction`]). INVALID_COMMIT_OFFSET_SIZE when they would pass the
    /// partition's bound on pending offsets ([`txn_offsets::MAX_PENDING_BYTES`]). Returns what
    /// [`Self::commit_offsets`] does.
    pub fn commit_txn_offsets(
        &self,
        image: &MetadataImage,
        group: &str,
        producer_id: i64,
        producer_epoch: i16,
        guard: Option<rafka_storage::VerificationGuard>,
        commits: &OffsetCommits,
    ) -> Result<Option<i64>, ErrorCode> {
        let p = self.check(group)?;
        if commits.is_empty() {
            return Ok(None);
        }
        let records: Vec<_> = commits
            .iter()
            .map(|(t, part, v)| records::offset_commit(group, t, *part, Some(v)))
            .collect();
        // Held across the append, so that memory changes in the order the log does.
        let mut parts = self.lock();
        match parts.get(&p) {
            Some(s) if s.loaded => {
                if !s.pending_txn.fits(producer_id, group, commits) {
                    tracing::warn!(
                        group,
                        producer_id,
                        pending_bytes = s.pending_txn.bytes(),
                        "pending transactional offsets at their bound; commit refused"
                    );
                    return Err(ErrorCode::InvalidCommitOffsetSize);
                }
            }
            _ => return Err(ErrorCode::NotCoordinator),
        }
        let tp = TopicPartition::new(GROUP_METADATA_TOPIC, p);
        let required = append_transactional_records(
            &self.replica_manager,
            image,
            &tp,
            &records,
            producer_id,
            producer_epoch,
            guard,
            ErrorCode::InvalidCommitOffsetSize,
        )?;
        let Some(s) = parts.get_mut(&p) else {
            return Err(ErrorCode::NotCoordinator);
        };
        for (t, part, v) in commits {
            s.pending_txn
                .add(producer_id, group, (t.clone(), *part), v.clone());
        }
        Ok(Some(required))
    }

    /// A transaction's end marker for partition `p` of `__consumer_offsets` (WriteTxnMarkers):
    /// appended under this coordinator's lock, then the producer's pending offsets there become
    /// the committed offsets (COMMIT) or are dropped (ABORT) — memory changes in the log's order,
    /// as Kafka 4 writes these markers through its group coordinator. While the partition is
    /// loading the marker is refused (COORDINATOR_LOAD_IN_PROGRESS; the transaction coordinator
    /// sends it again), so the load cannot miss it.
    pub fn complete_transaction(
        &self,
        image: &MetadataImage,
        p: i32,
        producer_id: i64,
        producer_epoch: i16,
        marker: &rafka_protocol::control_record::EndTransactionMarker,
    ) -> crate::replica_manager::AppendResult {
        use crate::replica_manager::AppendResult;
        let mut parts = self.lock();
        match parts.get(&p) {
            Some(s) if s.loaded => {}
            Some(_) => return AppendResult::error(ErrorCode::CoordinatorLoadInProgress, None),
            None => return AppendResult::error(ErrorCode::NotLeaderOrFollower, None),
        }
        let tp = TopicPartition::new(GROUP_METADATA_TOPIC, p);
        let r = self.replica_manager.append_end_txn_marker(
            image,
            &tp,
            producer_id,
            producer_epoch,
            marker,
        );
        if r.error != ErrorCode::None {
            return r;
        }
        let commit =
            marker.control_type == rafka_protocol::control_record::ControlRecordType::Commit;
        if let Some(s) = parts.get_mut(&p) {
            let done = s.pending_txn.complete(producer_id, commit);
            tracing::debug!(
                partition = p,
                producer_id,
                commit,
                offsets = done.len(),
                "transactional offsets completed"
            );
            for (group, key, v) in done {
                s.groups.entry(group).or_default().insert(key, v);
            }
        }
        r
    }

    /// The partitions of `group` whose offsets a transaction has written and not yet ended
    /// (OffsetFetch with `require_stable` answers UNSTABLE_OFFSET_COMMIT for them, KIP-447).
    pub fn unstable_partitions(&self, group: &str) -> Vec<(String, i32)> {
        let p = self.partition_for(group);
        self.lock()
            .get(&p)
            .map(|s| s.pending_txn.partitions_of(group))
            .unwrap_or_default()
    }

    /// Waits until a commit of `group` is replicated (the high watermark of its
    /// `__consumer_offsets` partition reaches `required`), at most until `deadline`; Kafka's
    /// mapping of the failures to coordinator errors.
    pub async fn wait_for_commit(
        &self,
        image: &MetadataImage,
        group: &str,
        required: i64,
        deadline: tokio::time::Instant,
    ) -> Result<(), ErrorCode> {
        let tp = TopicPartition {
            topic: GROUP_METADATA_TOPIC.to_owned(),
            partition: self.partition_for(group),
        };
        wait_replicated(&self.replica_manager, image, &tp, required, deadline).await
    }

    /// The committed offsets of `group` (all of them, or those of `wanted`).
    pub fn fetch_offsets(&self, group: &str) -> Result<GroupOffsets, ErrorCode> {
        let p = self.check(group)?;
        Ok(self
            .lock()
            .get(&p)
            .and_then(|s| s.groups.get(group))
            .cloned()
            .unwrap_or_default())
    }

    /// Removes committed offsets (tombstones first, then memory).
    pub fn delete_offsets(
        &self,
        image: &MetadataImage,
        group: &str,
        partitions: &[(String, i32)],
    ) -> Result<(), ErrorCode> {
        let p = self.check(group)?;
        let present: Vec<(String, i32)> = {
            let parts = self.lock();
            let offsets = parts.get(&p).and_then(|s| s.groups.get(group));
            partitions
                .iter()
                .filter(|k| offsets.is_some_and(|o| o.contains_key(*k)))
                .cloned()
                .collect()
        };
        if present.is_empty() {
            return Ok(());
        }
        let records: Vec<_> = present
            .iter()
            .map(|(t, part)| records::offset_commit(group, t, *part, None))
            .collect();
        let mut parts = self.lock();
        self.append(image, p, &records)?;
        if let Some(s) = parts.get_mut(&p) {
            for k in &present {
                s.pending_txn.on_plain_tombstone(group, k);
            }
            if let Some(offsets) = s.groups.get_mut(group) {
                for k in &present {
                    offsets.remove(k);
                }
            }
        }
        Ok(())
    }

    /// DeleteGroups for one group: refused while it has members (NON_EMPTY_GROUP); otherwise
    /// its offsets and metadata are tombstoned and it is gone.
    pub fn delete_group(&self, image: &MetadataImage, group: &str) -> Result<(), ErrorCode> {
        let p = self.check(group)?;
        if self.consumer.is_empty_group(group).is_some() {
            return self.delete_consumer_group(image, p, group);
        }
        let has_offsets = self
            .lock()
            .get(&p)
            .is_some_and(|s| s.groups.contains_key(group) || s.pending_txn.has_group(group));
        match self.membership.delete_group(group) {
            Ok(()) => {}
            Err(ErrorCode::GroupIdNotFound) if has_offsets => {}
            Err(e) => return Err(e),
        }
        let mut parts = self.lock();
        let mut records: Vec<_> = parts
            .get(&p)
            .map(|s| offset_tombstones(s, group))
            .unwrap_or_default();
        records.push(records::group_tombstone(group));
        self.append(image, p, &records)?;
        if let Some(s) = parts.get_mut(&p) {
            s.groups.remove(group);
            s.pending_txn.remove_group(group);
        }
        Ok(())
    }

    /// When the membership's next timer is due ([`GroupMembership::next_deadline`](membership::GroupMembership::next_deadline)): the timer task
    /// sleeps until then (or its periodic tick, whichever is first), so a session expires at its
    /// deadline, not up to a tick later.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (
            self.membership.next_deadline(),
            self.consumer.next_deadline(),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// DeleteGroups for an empty consumer group: its offsets' and records' tombstones.
    fn delete_consumer_group(
        &self,
        image: &MetadataImage,
        p: i32,
        group: &str,
    ) -> Result<(), ErrorCode> {
        let mut parts = self.lock();
        let tombstones = self.consumer.delete_group(group)?;
        let mut records: Vec<_> = parts
            .get(&p)
            .map(|s| offset_tombstones(s, group))
            .unwrap_or_default();
        records.extend(tombstones.iter().map(|r| r.encode(group)));
        self.append(image, p, &records)?;
        if let Some(s) = parts.get_mut(&p) {
            s.groups.remove(group);
            s.pending_txn.remove_group(group);
        }
        Ok(())
    }

    /// An empty consumer group a classic JoinGroup turns back into a classic group (Kafka's
    /// downgrade of an empty group): its records are tombstoned, its offsets stay. Called with
    /// the partitions lock held ([`classic_api`]).
    fn convert_empty_consumer_group(
        &self,
        image: &MetadataImage,
        group: &str,
    ) -> Result<(), ErrorCode> {
        let tombstones = match self.consumer.delete_group(group) {
            Ok(t) => t,
            Err(ErrorCode::NonEmptyGroup) => return Err(ErrorCode::InconsistentGroupProtocol),
            Err(_) => return Ok(()),
        };
        let records: Vec<_> = tombstones.iter().map(|r| r.encode(group)).collect();
        self.append(image, self.partition_for(group), &records)?;
        tracing::info!(
            group,
            "converted an empty consumer group to a classic group"
        );
        Ok(())
    }

    /// ConsumerGroupHeartbeat (KIP-848): the state change is appended to `__consumer_offsets`
    /// before the answer, which goes once it is replicated (as Kafka's coordinator answers
    /// after its write commits). An empty classic group of the same id is converted (its
    /// classic metadata is superseded by the consumer group's records; its offsets stay).
    pub async fn consumer_heartbeat(
        &self,
        image: &MetadataImage,
        version: i16,
        req: ConsumerGroupHeartbeatRequest,
        client_id: &str,
        client_host: &str,
        commit_timeout: std::time::Duration,
    ) -> ConsumerGroupHeartbeatResponse {
        let group = req.group_id.clone();
        let fail = |code: ErrorCode| ConsumerGroupHeartbeatResponse {
            error_code: code.code(),
            ..Default::default()
        };
        // The request is validated before the coordinator is looked for, as Kafka's
        // `GroupCoordinatorService` does: a malformed heartbeat gets its INVALID_REQUEST (or
        // UNSUPPORTED_ASSIGNOR, INVALID_REGULAR_EXPRESSION) from any broker, not NOT_COORDINATOR.
        if let Err((code, message)) = self.consumer.validate(version, &req) {
            return ConsumerGroupHeartbeatResponse {
                error_code: code.code(),
                error_message: Some(message.to_owned()),
                ..Default::default()
            };
        }
        let required = {
            let p = match self.check(&group) {
                Ok(p) => p,
                Err(e) => return fail(e),
            };
            let parts = self.lock();
            // A classic group this heartbeat converts is superseded on reload by the consumer
            // group's records (the later kind wins), so no classic tombstone is written (ours
            // would take the offsets with it).
            let outcome = self.consumer.heartbeat(
                version,
                req,
                client_id,
                client_host,
                image,
                Some(&self.membership),
                Instant::now(),
            );
            if outcome.records.is_empty() && outcome.classic_records.is_empty() {
                return outcome.response;
            }
            let mut records: Vec<_> = outcome.records.iter().map(|(g, r)| r.encode(g)).collect();
            records.extend(
                outcome
                    .classic_records
                    .iter()
                    .map(|(g, v)| records::group_metadata(g, v)),
            );
            if !parts.get(&p).is_some_and(|s| s.loaded) {
                return fail(ErrorCode::NotCoordinator);
            }
            match self.append(image, p, &records) {
                Ok(required) => (required, outcome.response),
                Err(e) => {
                    // The change stays in memory; a reload would not have it. Kafka reverts its
                    // in-memory state here; we make the member rejoin instead.
                    tracing::warn!(group = %group, error = ?e, "cannot write consumer group records");
                    return fail(e);
                }
            }
        };
        let deadline = tokio::time::Instant::now() + commit_timeout;
        match self
            .wait_for_commit(image, &group, required.0, deadline)
            .await
        {
            Ok(()) => required.1,
            Err(e) => fail(e),
        }
    }

    /// Removes consumer group members whose session (or revocation) deadline passed, writing
    /// their tombstones and the new assignment.
    pub fn expire_consumer_members(&self, image: &MetadataImage, now: Instant) -> usize {
        let parts = self.lock();
        let expired = self.consumer.expire(image, Some(&self.membership), now);
        let mut by_partition: BTreeMap<i32, Vec<(bytes::Bytes, Option<bytes::Bytes>)>> =
            BTreeMap::new();
        let encoded = expired.records.iter().map(|(g, r)| (g, r.encode(g))).chain(
            expired
                .classic_records
                .iter()
                .map(|(g, v)| (g, records::group_metadata(g, v))),
        );
        for (g, r) in encoded {
            let p = self.partition_for(g);
            if parts.get(&p).is_some_and(|s| s.loaded) {
                by_partition.entry(p).or_default().push(r);
            }
        }
        for (p, records) in by_partition {
            if let Err(e) = self.append(image, p, &records) {
                tracing::warn!(partition = p, error = ?e, "cannot write consumer group records");
            }
        }
        expired.records.len() + expired.classic_records.len()
    }

    /// The coordinator's periodic work, called every ~100 ms and at each timer's deadline: the
    /// membership's timers, then —
    /// on a blocking thread, never in the caller — the group metadata records the membership
    /// has taken and, every `offsets.retention.check.interval.ms`, the expiry of offsets.
    pub fn tick(self: &Arc<Self>, now: Instant) {
        self.membership.tick(now);
        let expiry_due = {
            let mut last = self
                .last_expiry_check
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let interval = std::time::Duration::from_millis(
                u64::try_from(self.config.retention_check_interval_ms).unwrap_or(0),
            );
            match *last {
                Some(t) if now.saturating_duration_since(t) < interval => false,
                Some(_) => {
                    *last = Some(now);
                    true
                }
                None => {
                    // The first check one interval after start, as Kafka schedules it.
                    *last = Some(now);
                    false
                }
            }
        };
        let consumer_due = self.consumer.next_deadline().is_some_and(|d| d <= now);
        if !expiry_due && !consumer_due && !self.membership.has_pending_records() {
            return;
        }
        if self.writing.swap(true, Ordering::AcqRel) {
            return; // the running one will be followed by the next tick
        }
        let this = self.clone();
        let image = self.image.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let writing = self.writing.clone();
        let now_ms = self.membership.epoch_ms(now);
        tokio::task::spawn_blocking(move || {
            this.write_group_records(&image);
            if consumer_due {
                this.expire_consumer_members(&image, now);
            }
            if expiry_due {
                let n = this.expire_offsets(&image, now_ms);
                if n > 0 {
                    tracing::info!(removed = n, "expired committed offsets");
                }
            }
            writing.store(false, Ordering::Release);
        });
    }

    /// Appends the group metadata records the membership has taken, one batch per partition.
    /// Held under the partitions lock, so that a DeleteGroups tombstone cannot come between
    /// taking a group's record and writing it. A record that cannot be written is logged and
    /// dropped: the group then reloads as its previous record left it, and its members rejoin.
    /// (Kafka answers the leader's SyncGroup only after the record is written and fails the
    /// assignment if it cannot be; we answer first and write within one tick.)
    pub fn write_group_records(&self, image: &MetadataImage) -> usize {
        let parts = self.lock();
        let mut by_partition: BTreeMap<i32, Vec<(bytes::Bytes, Option<bytes::Bytes>)>> =
            BTreeMap::new();
        for (group, value) in self.membership.take_records() {
            let p = self.partition_for(&group);
            if parts.get(&p).is_some_and(|s| s.loaded) {
                by_partition
                    .entry(p)
                    .or_default()
                    .push(records::group_metadata(&group, &value));
            }
        }
        let mut written = 0;
        for (p, records) in by_partition {
            match self.append(image, p, &records) {
                Ok(_) => written += records.len(),
                Err(e) => {
                    tracing::warn!(partition = p, error = ?e, "cannot write group metadata")
                }
            }
        }
        written
    }

    /// Removes the committed offsets that `offsets.retention.minutes` has passed for, as of
    /// wall-clock `now_ms` (KIP-211): those of an Empty group once it has been empty that long;
    /// those committed without group management that long after their commit; those of a
    /// Stable consumer group's topics it no longer subscribes to, likewise. Tombstones first,
    /// then memory. An Empty group left without offsets is deleted (its metadata tombstoned),
    /// as Kafka does. The number of offsets removed.
    pub fn expire_offsets(&self, image: &MetadataImage, now_ms: i64) -> usize {
        let retention = self.config.retention_ms;
        let expired_at = |base: i64| now_ms.saturating_sub(base) >= retention;
        let mut parts = self.lock();
        let led: Vec<i32> = parts
            .iter()
            .filter(|(_, s)| s.loaded)
            .map(|(p, _)| *p)
            .collect();
        let mut removed = 0;
        for p in led {
            let Some(s) = parts.get(&p) else { continue };
            // (group, expired keys, whether the group is then left without offsets)
            let mut expired: Vec<(String, Vec<(String, i32)>, bool)> = Vec::new();
            for (group, offsets) in &s.groups {
                // A consumer group with members keeps its offsets; an empty one expires them
                // by commit time.
                let expiry = match self.consumer.is_empty_group(group) {
                    Some(false) => OffsetExpiry::Never,
                    Some(true) => OffsetExpiry::ByCommitTimestamp,
                    None => self.membership.offset_expiry(group),
                };
                // An offset a transaction is about to replace does not expire (Kafka's
                // `isOffsetInPendingTransaction`).
                let keys: Vec<(String, i32)> = match expiry {
                    OffsetExpiry::Never => Vec::new(),
                    OffsetExpiry::EmptySince(since) => offsets
                        .iter()
                        .filter(|(_, v)| expired_at(since.unwrap_or(v.commit_timestamp)))
                        .map(|(k, _)| k.clone())
                        .collect(),
                    OffsetExpiry::ByCommitTimestamp => offsets
                        .iter()
                        .filter(|(_, v)| expired_at(v.commit_timestamp))
                        .map(|(k, _)| k.clone())
                        .collect(),
                    OffsetExpiry::Unsubscribed(topics) => offsets
                        .iter()
                        .filter(|((t, _), v)| !topics.contains(t) && expired_at(v.commit_timestamp))
                        .map(|(k, _)| k.clone())
                        .collect(),
                };
                let keys: Vec<(String, i32)> = keys
                    .into_iter()
                    .filter(|k| !s.pending_txn.is_pending(group, k))
                    .collect();
                if !keys.is_empty() {
                    let all = keys.len() == offsets.len() && !s.pending_txn.has_group(group);
                    expired.push((group.clone(), keys, all));
                }
            }
            // Empty groups that never committed (or whose offsets went before) are deleted too.
            let n = self.config.num_partitions;
            for group in self.membership.empty_groups(|g| partition_for(g, n) == p) {
                if !s.groups.contains_key(&group) && !s.pending_txn.has_group(&group) {
                    expired.push((group, Vec::new(), true));
                }
            }
            expired.sort();
            for (group, keys, all) in expired {
                let mut records: Vec<_> = keys
                    .iter()
                    .map(|(t, part)| records::offset_commit(&group, t, *part, None))
                    .collect();
                let delete_group = all && self.membership.remove_if_empty(&group);
                if delete_group {
                    records.push(records::group_tombstone(&group));
                }
                if let Err(e) = self.append(image, p, &records) {
                    tracing::warn!(partition = p, group = %group, error = ?e, "cannot expire offsets");
                    continue;
                }
                if delete_group {
                    tracing::info!(group = %group, "empty group without offsets deleted");
                }
                if let Some(s) = parts.get_mut(&p) {
                    if let Some(o) = s.groups.get_mut(&group) {
                        for k in &keys {
                            o.remove(k);
                        }
                        if o.is_empty() {
                            s.groups.remove(&group);
                        }
                    }
                }
                removed += keys.len();
            }
        }
        removed
    }

    /// Groups that exist only through committed offsets (no members ever joined here): Kafka
    /// lists them as Empty groups with no protocol type.
    pub fn groups_with_offsets(&self) -> Vec<String> {
        let parts = self.lock();
        let mut v: Vec<String> = parts
            .values()
            .filter(|s| s.loaded)
            .flat_map(|s| {
                s.groups
                    .iter()
                    .filter(|(_, o)| !o.is_empty())
                    .map(|(g, _)| g.clone())
            })
            .collect();
        v.sort();
        v
    }
}

/// The tombstones of every offset of `group`: committed, and held by pending transactions (so
/// that none comes back when its transaction commits; Kafka 4's `deleteAllOffsets`).
fn offset_tombstones(
    s: &OffsetsPartition,
    group: &str,
) -> Vec<(bytes::Bytes, Option<bytes::Bytes>)> {
    let mut keys: Vec<(String, i32)> = s
        .groups
        .get(group)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    keys.extend(s.pending_txn.partitions_of(group));
    keys.sort();
    keys.dedup();
    keys.iter()
        .map(|(t, part)| records::offset_commit(group, t, *part, None))
        .collect()
}

/// One loaded item of `__consumer_offsets`, in log order: transactional offsets wait for their
/// marker ([`txn_offsets`]); everything else is [`apply`]'d.
fn replay(
    groups: &mut HashMap<String, GroupOffsets>,
    metadata: &mut HashMap<String, GroupMetadataValue>,
    consumer: &mut Vec<(String, ConsumerRecord)>,
    pending: &mut PendingTxnOffsets,
    item: Loaded<CoordinatorRecord>,
) {
    match item {
        Loaded::Marker {
            producer_id,
            commit,
        } => {
            for (group, key, v) in pending.complete(producer_id, commit) {
                groups.entry(group).or_default().insert(key, v);
            }
        }
        Loaded::Record {
            record:
                CoordinatorRecord::Offset {
                    group,
                    topic,
                    partition,
                    value,
                },
            transactional_producer: Some(producer_id),
        } => match value {
            Some(v) => pending.add(producer_id, &group, (topic, partition), v),
            None => pending.remove(producer_id, &group, &(topic, partition)),
        },
        Loaded::Record { record, .. } => {
            match &record {
                CoordinatorRecord::Offset {
                    group,
                    topic,
                    partition,
                    value,
                } => {
                    let key = (topic.clone(), *partition);
                    if value.is_some() {
                        pending.on_plain_commit(group, &key);
                    } else {
                        pending.on_plain_tombstone(group, &key);
                    }
                }
                CoordinatorRecord::Group { group, value: None } => pending.remove_group(group),
                _ => {}
            }
            apply(groups, metadata, consumer, record)
        }
    }
}

fn apply(
    groups: &mut HashMap<String, GroupOffsets>,
    metadata: &mut HashMap<String, GroupMetadataValue>,
    consumer: &mut Vec<(String, ConsumerRecord)>,
    rec: CoordinatorRecord,
) {
    match rec {
        // A group converted from classic to consumer (or back): the later kind wins.
        CoordinatorRecord::Consumer { group, record } => {
            if matches!(record, ConsumerRecord::GroupEpoch(Some(_))) {
                metadata.remove(&group);
            }
            consumer.push((group, record));
        }
        CoordinatorRecord::Offset {
            group,
            topic,
            partition,
            value: Some(v),
        } => {
            groups
                .entry(group)
                .or_default()
                .insert((topic, partition), v);
        }
        CoordinatorRecord::Offset {
            group,
            topic,
            partition,
            value: None,
        } => {
            if let Some(o) = groups.get_mut(&group) {
                o.remove(&(topic, partition));
                if o.is_empty() {
                    groups.remove(&group);
                }
            }
        }
        CoordinatorRecord::Group { group, value: None } => {
            groups.remove(&group);
            metadata.remove(&group);
        }
        CoordinatorRecord::Group {
            group,
            value: Some(v),
        } => {
            consumer.push((group.clone(), ConsumerRecord::GroupEpoch(None)));
            metadata.insert(group, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use membership::MembershipConfig;
    use rafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use rafka_protocol::messages::leave_group_request::MemberIdentity;
    use rafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    use rafka_protocol::messages::{
        HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, MetadataRecord, PartitionRecord,
        SyncGroupRequest, TopicRecord,
    };
    use rafka_protocol::Uuid;
    use rafka_storage::{DiskFs, LogConfig, LogManager};

    fn image() -> Arc<MetadataImage> {
        let mut records = Vec::new();
        for (name, id, parts) in [(GROUP_METADATA_TOPIC, 1, 2), ("t", 2, 2)] {
            records.push(MetadataRecord::Topic(TopicRecord {
                name: name.into(),
                topic_id: Uuid::from_u128(id),
                ..Default::default()
            }));
            for p in 0..parts {
                records.push(MetadataRecord::Partition(PartitionRecord {
                    partition_id: p,
                    topic_id: Uuid::from_u128(id),
                    replicas: vec![1],
                    isr: vec![1],
                    leader: 1,
                    leader_epoch: 0,
                    ..Default::default()
                }));
            }
        }
        let mut image = MetadataImage::new();
        image.apply_batch(&records).expect("records");
        Arc::new(image)
    }

    fn coordinator(rm: &Arc<ReplicaManager>) -> Arc<GroupCoordinator> {
        coordinator_with_clock(rm, Arc::new(Mutex::new(Instant::now())))
    }

    /// A coordinator whose membership reads the manual clock `now`.
    fn coordinator_with_clock(
        rm: &Arc<ReplicaManager>,
        now: Arc<Mutex<Instant>>,
    ) -> Arc<GroupCoordinator> {
        let membership = GroupMembership::with_clock(
            MembershipConfig {
                min_session_timeout_ms: 6000,
                max_session_timeout_ms: 1_800_000,
                initial_rebalance_delay_ms: 0,
                max_size: i32::MAX,
            },
            move || *now.lock().expect("clock"),
        );
        let config = CoordinatorConfig {
            num_partitions: 2,
            retention_ms: 60_000,
            ..CoordinatorConfig::default()
        };
        GroupCoordinator::new(1, config, membership, rm.clone())
    }

    /// A replica manager over a fresh directory, leading every partition of [`image`].
    fn replica_manager(dir: &std::path::Path, image: &Arc<MetadataImage>) -> Arc<ReplicaManager> {
        let lm = Arc::new(
            LogManager::open(
                Arc::new(DiskFs),
                &[dir.to_path_buf()],
                &|_| LogConfig::default(),
                0,
            )
            .expect("log manager"),
        );
        let rm = Arc::new(ReplicaManager::new(
            1,
            lm,
            crate::replica_manager::FixedTopicConfigs::new(1),
        ));
        rm.apply_image(&MetadataImage::new(), image);
        rm
    }

    fn join(group: &str, member: &str) -> JoinGroupRequest {
        JoinGroupRequest {
            group_id: group.into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 20_000,
            member_id: member.into(),
            group_instance_id: None,
            protocol_type: "consumer".into(),
            protocols: vec![JoinGroupRequestProtocol {
                name: "range".into(),
                metadata: Bytes::from_static(b"subscription"),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// Two members (v3 joins: no MEMBER_ID_REQUIRED) join and the leader assigns: the group
    /// is Stable. Returns (generation, leader, follower).
    async fn stable_group(
        c: &Arc<GroupCoordinator>,
        now: &Arc<Mutex<Instant>>,
        group: &str,
    ) -> (i32, String, String) {
        let m = c.membership().clone();
        let joins: Vec<_> = (0..2)
            .map(|i| {
                let m = m.clone();
                let req = join(group, "");
                tokio::spawn(async move {
                    m.join_group(3, req, &format!("client-{i}"), "/10.0.0.1")
                        .await
                })
            })
            .collect();
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        // The initial delay (0 ms, extended once per newcomer) ends at a tick.
        for _ in 0..10 {
            if joins.iter().all(|j| j.is_finished()) {
                break;
            }
            let t = *now.lock().expect("clock");
            c.membership().tick(t);
            for _ in 0..50 {
                tokio::task::yield_now().await;
            }
        }
        let mut answers = Vec::new();
        for j in joins {
            answers.push(j.await.expect("join task"));
        }
        let leader = answers[0].leader.clone();
        let generation = answers[0].generation_id;
        let ids: Vec<String> = answers.iter().map(|a| a.member_id.clone()).collect();
        let follower = ids.iter().find(|id| **id != leader).expect("two").clone();
        let sync = SyncGroupRequest {
            group_id: group.into(),
            generation_id: generation,
            member_id: leader.clone(),
            assignments: ids
                .iter()
                .map(|id| SyncGroupRequestAssignment {
                    member_id: id.clone(),
                    assignment: Bytes::from(format!("assigned to {id}")),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let r = c.membership().sync_group(5, sync).await;
        assert_eq!(r.error_code, 0);
        (generation, leader, follower)
    }

    fn heartbeat(c: &GroupCoordinator, group: &str, member: &str, generation: i32) -> i16 {
        c.membership()
            .heartbeat(
                4,
                HeartbeatRequest {
                    group_id: group.into(),
                    generation_id: generation,
                    member_id: member.into(),
                    ..Default::default()
                },
            )
            .error_code
    }

    /// A group's metadata is written when it becomes Stable and read back by a restarted
    /// coordinator: the group is Stable with its generation, leader, members and assignments;
    /// a member that heartbeats with its old id and generation stays, one that does not is
    /// removed after its session timeout. Once the group is Empty its record says so, and a
    /// DeleteGroups tombstone keeps it deleted across a reload.
    #[tokio::test]
    async fn group_metadata_survives_a_reload_from_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let image = image();
        let rm = replica_manager(dir.path(), &image);
        let now = Arc::new(Mutex::new(Instant::now()));
        let c = coordinator_with_clock(&rm, now.clone());
        let g = "gamma";
        loaded(&c, &image, g).await;
        let (generation, leader, follower) = stable_group(&c, &now, g).await;
        assert!(c.membership().has_pending_records());
        assert_eq!(c.write_group_records(&image), 1);
        assert_eq!(c.write_group_records(&image), 0, "written once");

        // A restart: a new coordinator over the same log.
        let c2 = coordinator_with_clock(&rm, now.clone());
        loaded(&c2, &image, g).await;
        let d = c2.membership().describe_group(g);
        assert_eq!(d.group_state, "Stable");
        assert_eq!(d.protocol_data, "range");
        assert_eq!(d.protocol_type, "consumer");
        let mut members: Vec<(String, String, Bytes)> = d
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.clone(),
                    m.client_host.clone(),
                    m.member_assignment.clone(),
                )
            })
            .collect();
        members.sort();
        let mut want: Vec<(String, String, Bytes)> = [&leader, &follower]
            .iter()
            .map(|id| {
                (
                    (*id).clone(),
                    "/10.0.0.1".to_string(),
                    Bytes::from(format!("assigned to {id}")),
                )
            })
            .collect();
        want.sort();
        assert_eq!(members, want);
        // Both members resume with their old id and generation.
        assert_eq!(heartbeat(&c2, g, &leader, generation), 0);
        assert_eq!(heartbeat(&c2, g, &follower, generation), 0);
        assert_eq!(
            heartbeat(&c2, g, &leader, generation + 1),
            ErrorCode::IllegalGeneration.code()
        );
        // Only the leader keeps heartbeating: the follower's session (10 s) ends, the group
        // rebalances without it.
        for _ in 0..12 {
            let t = {
                let mut n = now.lock().expect("clock");
                *n += std::time::Duration::from_secs(1);
                *n
            };
            assert!(matches!(heartbeat(&c2, g, &leader, generation), 0 | 27));
            c2.membership().tick(t);
        }
        assert_eq!(
            heartbeat(&c2, g, &follower, generation),
            ErrorCode::UnknownMemberId.code()
        );
        assert_eq!(
            heartbeat(&c2, g, &leader, generation),
            ErrorCode::RebalanceInProgress.code()
        );

        // The leader leaves too: the group is Empty, and its record says so.
        let left = c2.membership().leave_group(
            3,
            LeaveGroupRequest {
                group_id: g.into(),
                members: vec![MemberIdentity {
                    member_id: leader.clone(),
                    ..Default::default()
                }],
                ..Default::default()
            },
        );
        assert_eq!(left.members[0].error_code, 0);
        assert_eq!(c2.membership().describe_group(g).group_state, "Empty");
        assert_eq!(c2.write_group_records(&image), 1);
        let c3 = coordinator_with_clock(&rm, now.clone());
        loaded(&c3, &image, g).await;
        let d = c3.membership().describe_group(g);
        assert_eq!((d.group_state.as_str(), d.members.len()), ("Empty", 0));
        assert_eq!(d.protocol_type, "consumer");

        // Deleted: the tombstone wins on the next load.
        c3.delete_group(&image, g).expect("delete");
        let c4 = coordinator_with_clock(&rm, now.clone());
        loaded(&c4, &image, g).await;
        assert_eq!(c4.membership().describe_group(g).group_state, "Dead");
    }

    /// offsets.retention.minutes (here 1 minute) on the manual clock: an Empty group's offsets
    /// expire one retention after the group became empty, however old the commits; simple
    /// commits (no group) expire by their commit time; a Stable group's offsets stay. Expiry
    /// writes tombstones, so a reload does not bring them back, and deletes the Empty group.
    #[tokio::test]
    async fn offsets_expire_after_the_retention() {
        let dir = tempfile::tempdir().expect("tempdir");
        let image = image();
        let rm = replica_manager(dir.path(), &image);
        let now = Arc::new(Mutex::new(Instant::now()));
        let c = coordinator_with_clock(&rm, now.clone());
        let (active, emptied, simple) = ("active", "emptied", "simple");
        for g in [active, emptied, simple] {
            loaded(&c, &image, g).await;
        }
        let clock_ms = |c: &GroupCoordinator| c.membership().now_ms();
        let at = |o: i64, ts: i64| OffsetAndMetadata {
            offset: o,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: ts,
        };
        let t0 = clock_ms(&c);
        let (gen_a, leader_a, follower_a) = stable_group(&c, &now, active).await;
        let (_, leader_e, follower_e) = stable_group(&c, &now, emptied).await;
        // Commits made long ago (two retentions back): only the state time counts for groups.
        let old = t0 - 120_000;
        for g in [active, emptied, simple] {
            c.commit_offsets(
                &image,
                g,
                &vec![("t".into(), 0, at(10, old)), ("t".into(), 1, at(11, old))],
            )
            .expect("commit");
        }
        // "emptied" loses its members now (t0).
        for m in [&leader_e, &follower_e] {
            c.membership().leave_group(
                3,
                LeaveGroupRequest {
                    group_id: emptied.into(),
                    members: vec![MemberIdentity {
                        member_id: m.clone(),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            );
        }
        assert_eq!(c.membership().describe_group(emptied).group_state, "Empty");

        // Half a retention later: only the simple commits (two retentions old) go.
        *now.lock().expect("clock") += std::time::Duration::from_secs(30);
        assert_eq!(c.expire_offsets(&image, clock_ms(&c)), 2);
        assert_eq!(c.fetch_offsets(simple).map(|o| o.len()), Ok(0));
        assert_eq!(c.fetch_offsets(emptied).map(|o| o.len()), Ok(2));
        assert_eq!(c.fetch_offsets(active).map(|o| o.len()), Ok(2));

        // One retention after it became empty: "emptied"'s offsets go, and the group with
        // them; the active group (its members heartbeat) keeps its offsets.
        *now.lock().expect("clock") += std::time::Duration::from_secs(31);
        assert_eq!(heartbeat(&c, active, &leader_a, gen_a), 0);
        assert_eq!(heartbeat(&c, active, &follower_a, gen_a), 0);
        assert_eq!(c.expire_offsets(&image, clock_ms(&c)), 2);
        assert_eq!(c.fetch_offsets(emptied).map(|o| o.len()), Ok(0));
        assert_eq!(c.membership().describe_group(emptied).group_state, "Dead");
        assert_eq!(c.fetch_offsets(active).map(|o| o.len()), Ok(2));
        assert_eq!(
            c.expire_offsets(&image, clock_ms(&c)),
            0,
            "nothing left to expire"
        );

        // The tombstones hold across a reload.
        c.write_group_records(&image);
        let c2 = coordinator_with_clock(&rm, now.clone());
        for g in [active, emptied, simple] {
            loaded(&c2, &image, g).await;
        }
        assert_eq!(c2.fetch_offsets(simple).map(|o| o.len()), Ok(0));
        assert_eq!(c2.fetch_offsets(emptied).map(|o| o.len()), Ok(0));
        assert_eq!(c2.membership().describe_group(emptied).group_state, "Dead");
        assert_eq!(c2.fetch_offsets(active).map(|o| o.len()), Ok(2));
        assert_eq!(c2.membership().describe_group(active).group_state, "Stable");
    }

    /// Between the replica manager becoming leader of a group's partition and the coordinator
    /// starting to load it, the group is "loading", not elsewhere: a client sent here by another
    /// broker retries here rather than looking the coordinator up again (librdkafka does not even
    /// retry an assignment's OffsetFetch after NOT_COORDINATOR). A partition this broker does not
    /// lead stays NOT_COORDINATOR.
    #[tokio::test]
    async fn a_led_partition_not_yet_loaded_is_loading_not_elsewhere() {
        let dir = tempfile::tempdir().expect("dir");
        let image = image();
        let rm = replica_manager(dir.path(), &image);
        let c = coordinator(&rm);
        assert_eq!(c.check("g"), Err(ErrorCode::CoordinatorLoadInProgress));
        loaded(&c, &image, "g").await;
        assert_eq!(c.check("g"), Ok(c.partition_for("g")));

        let elsewhere = tempfile::tempdir().expect("dir");
        let follower = replica_manager(elsewhere.path(), &Arc::new(MetadataImage::new()));
        assert_eq!(
            coordinator(&follower).check("g"),
            Err(ErrorCode::NotCoordinator)
        );
    }

    async fn loaded(c: &Arc<GroupCoordinator>, image: &Arc<MetadataImage>, group: &str) {
        c.on_image(image);
        for _ in 0..500 {
            if c.check(group).is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("{group}'s partition not loaded: {:?}", c.check(group));
    }

    fn offset(o: i64) -> OffsetAndMetadata {
        OffsetAndMetadata {
            offset: o,
            leader_epoch: 0,
            metadata: format!("at {o}"),
            commit_timestamp: 1,
        }
    }

    /// Commits are appended to the group's partition of `__consumer_offsets` and read back by a
    /// new coordinator over the same logs (a restart); deletions are tombstones that also
    /// Lag: the local high watermark minus the committed offset, clamped at 0; unknown for a
    /// partition this broker does not host.
    #[tokio::test]
    async fn lag_is_the_high_watermark_minus_the_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let image = image();
        let rm = replica_manager(dir.path(), &image);
        let c = coordinator(&rm);
        loaded(&c, &image, "g").await;
        c.commit_offsets(
            &image,
            "g",
            &vec![
                ("t".into(), 1, offset(3)),
                ("elsewhere".into(), 0, offset(2)),
            ],
        )
        .expect("commit");
        let lag = c.lag("g").expect("lag");
        assert_eq!(lag.len(), 2);
        assert_eq!(
            (lag[0].topic.as_str(), lag[0].end_offset, lag[0].lag()),
            ("elsewhere", None, None)
        );
        // An empty log's high watermark is 0: a commit ahead of it is no lag.
        assert_eq!(
            (
                lag[1].topic.as_str(),
                lag[1].committed,
                lag[1].end_offset,
                lag[1].lag()
            ),
            ("t", 3, Some(0), Some(0))
        );
        assert_eq!(c.lag("no-commits"), Ok(Vec::new()));
    }

    /// survive; groups on other partitions are not mixed in.
    #[tokio::test]
    async fn offsets_survive_a_reload_from_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let image = image();
        let rm = replica_manager(dir.path(), &image);
        // Two groups on different partitions.
        let (g1, g2) = ("alpha", "beta");
        let (p1, p2) = (partition_for(g1, 2), partition_for(g2, 2));
        let c = coordinator(&rm);
        // This broker leads the partition but has not loaded it: the client waits here rather
        // than look the coordinator up elsewhere.
        assert_eq!(
            c.check(g1),
            Err(ErrorCode::CoordinatorLoadInProgress),
            "before loading"
        );
        loaded(&c, &image, g1).await;
        loaded(&c, &image, g2).await;
        c.commit_offsets(
            &image,
            g1,
            &vec![("t".into(), 0, offset(5)), ("t".into(), 1, offset(7))],
        )
        .expect("commit");
        c.commit_offsets(&image, g1, &vec![("t".into(), 0, offset(6))])
            .expect("commit");
        c.commit_offsets(&image, g2, &vec![("t".into(), 1, offset(9))])
            .expect("commit");
        c.delete_offsets(&image, g1, &[("t".into(), 1)])
            .expect("delete");
        let want1: GroupOffsets = [(("t".to_string(), 0), offset(6))].into();
        assert_eq!(c.fetch_offsets(g1), Ok(want1.clone()));

        // A new coordinator (a restart) loads the same state from the log.
        let c2 = coordinator(&rm);
        loaded(&c2, &image, g1).await;
        loaded(&c2, &image, g2).await;
        assert_eq!(c2.fetch_offsets(g1), Ok(want1));
        assert_eq!(c2.fetch_offsets(g2).map(|o| o.len()), Ok(1));
        assert_eq!(
            c2.groups_with_offsets(),
            vec![g1.to_string(), g2.to_string()]
        );
        println!("alpha on partition {p1}, beta on {p2}");

        // DeleteGroups: tombstones for its offsets and metadata; gone after a reload too.
        c2.delete_group(&image, g2).expect("delete group");
        assert_eq!(c2.fetch_offsets(g2).map(|o| o.len()), Ok(0));
        let c3 = coordinator(&rm);
        loaded(&c3, &image, g2).await;
        assert_eq!(c3.fetch_offsets(g2).map(|o| o.len()), Ok(0));
        assert_eq!(c3.groups_with_offsets(), vec![g1.to_string()]);
        assert_eq!(
            c3.delete_group(&image, "never-seen"),
            Err(ErrorCode::GroupIdNotFound)
        );

        // Leadership of the partitions moves away (the replica manager acts on it first, as
        // the server applies images): NOT_COORDINATOR.
        let gone = Arc::new(MetadataImage::new());
        rm.apply_image(&image, &gone);
        c3.on_image(&gone);
        assert_eq!(c3.check(g1), Err(ErrorCode::NotCoordinator));
    }

    /// Transactional offsets: pending until their marker; COMMIT applies them, ABORT drops
    /// them; a plain commit written after a pending offset wins over it; a new coordinator over
    /// the same log (a restart) rebuilds committed, aborted and pending alike; a marker while the
    /// partition is not loaded is refused so that the load cannot miss it.
    #[tokio::test]
    async fn transactional_offsets_wait_for_their_marker_and_reload_from_the_log() {
        use rafka_protocol::control_record::{ControlRecordType, EndTransactionMarker};
        let dir = tempfile::tempdir().expect("tempdir");
        let image = image();
        let rm = replica_manager(dir.path(), &image);
        let c = coordinator(&rm);
        let g = "txg";
        loaded(&c, &image, g).await;
        let p = c.partition_for(g);
        let marker = |commit: bool| EndTransactionMarker {
            control_type: if commit {
                ControlRecordType::Commit
            } else {
                ControlRecordType::Abort
            },
            coordinator_epoch: 0,
        };
        let commit = |pid: i64, part: i32, o: i64| {
            c.commit_txn_offsets(
                &image,
                g,
                pid,
                0,
                None,
                &vec![("t".into(), part, offset(o))],
            )
            .expect("txn commit")
        };
        // Producer 10 commits offset 5 of t-0; producer 11 aborts offset 9 of t-0.
        commit(10, 0, 5);
        commit(11, 0, 9);
        assert_eq!(c.fetch_offsets(g).map(|o| o.len()), Ok(0));
        assert_eq!(c.unstable_partitions(g), vec![("t".to_string(), 0)]);
        assert_eq!(
            c.complete_transaction(&image, p, 10, 0, &marker(true))
                .error,
            ErrorCode::None
        );
        assert_eq!(
            c.complete_transaction(&image, p, 11, 0, &marker(false))
                .error,
            ErrorCode::None
        );
        let want: GroupOffsets = [(("t".to_string(), 0), offset(5))].into();
        assert_eq!(c.fetch_offsets(g), Ok(want.clone()));
        assert!(c.unstable_partitions(g).is_empty());
        // A stale epoch of producer 10 is refused by the log.
        assert_eq!(
            c.commit_txn_offsets(&image, g, 10, -1, None, &vec![("t".into(), 0, offset(1))]),
            Err(ErrorCode::InvalidProducerEpoch)
        );
        // Producer 12's offset of t-1 is superseded by a plain commit written after it; producer
        // 13's offset of t-0 stays pending.
        commit(12, 1, 20);
        c.commit_offsets(&image, g, &vec![("t".into(), 1, offset(21))])
            .expect("commit");
        assert_eq!(
            c.complete_transaction(&image, p, 12, 0, &marker(true))
                .error,
            ErrorCode::None
        );
        commit(13, 0, 30);
        let want: GroupOffsets = [
            (("t".to_string(), 0), offset(5)),
            (("t".to_string(), 1), offset(21)),
        ]
        .into();
        assert_eq!(c.fetch_offsets(g), Ok(want.clone()));

        // A restart: the same state from the log, 13 still pending, then committed.
        let c2 = coordinator(&rm);
        assert_eq!(
            c2.complete_transaction(&image, p, 13, 0, &marker(true))
                .error,
            ErrorCode::NotLeaderOrFollower,
            "not loaded yet"
        );
        loaded(&c2, &image, g).await;
        assert_eq!(c2.fetch_offsets(g), Ok(want));
        assert_eq!(c2.unstable_partitions(g), vec![("t".to_string(), 0)]);
        assert_eq!(
            c2.complete_transaction(&image, p, 13, 0, &marker(true))
                .error,
            ErrorCode::None
        );
        let c3 = coordinator(&rm);
        loaded(&c3, &image, g).await;
        let want: GroupOffsets = [
            (("t".to_string(), 0), offset(30)),
            (("t".to_string(), 1), offset(21)),
        ]
        .into();
        assert_eq!(c3.fetch_offsets(g), Ok(want));
        assert!(c3.unstable_partitions(g).is_empty());
        // Deleting the group tombstones pending offsets too: none comes back at a COMMIT.
        commit(14, 1, 40);
        c3.delete_group(&image, g).expect("delete");
        assert_eq!(
            c3.complete_transaction(&image, p, 14, 0, &marker(true))
                .error,
            ErrorCode::None
        );
        assert_eq!(c3.fetch_offsets(g).map(|o| o.len()), Ok(0));
    }

    #[test]
    fn groups_land_where_kafka_puts_them() {
        // Values Java's String.hashCode gives.
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("test"), 3_556_498);
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("ab"), 97 * 31 + 98);
        // Overflow wraps as Java's int arithmetic does; a negative hash is masked, not negated.
        let long = "a-group-name-long-enough-to-overflow";
        let h = java_string_hash(long);
        let mut want: i32 = 0;
        for c in long.encode_utf16() {
            want = want.wrapping_mul(31).wrapping_add(c as i32);
        }
        assert_eq!(h, want);
        assert_eq!(partition_for(long, 50), (want & 0x7fff_ffff) % 50);
        // Non-BMP characters count as two UTF-16 units, as in Java.
        assert_eq!(java_string_hash("😀"), 0xD83D * 31 + 0xDE00);
    }
}
