//! The group coordinator (Kafka's `GroupCoordinator`, classic protocol).
//!
//! - [`membership`]: the groups' members and rebalances, in memory (JoinGroup, SyncGroup,
//!   Heartbeat, LeaveGroup, ListGroups, DescribeGroups, DeleteGroups).
//! - [`records`]: the records of `__consumer_offsets`, in Kafka's format.
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
//! Not yet (issue #6): group metadata records (a restarted coordinator's members rejoin, as
//! after any coordinator move), expiry of old offsets (`offsets.retention.minutes`), and the
//! compaction of `__consumer_offsets` (the log cleaner).

pub mod membership;
pub mod records;

use crate::replica_manager::ReplicaManager;
use membership::GroupMembership;
use rafka_controller::image::MetadataImage;
use rafka_protocol::record::RecordBatchBuilder;
use rafka_protocol::record_batch::RecordBatch;
use rafka_protocol::ErrorCode;
use rafka_storage::TopicPartition;
use records::{CoordinatorRecord, OffsetAndMetadata};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

/// The internal topic of group offsets and metadata.
pub const GROUP_METADATA_TOPIC: &str = "__consumer_offsets";

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
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            num_partitions: 50,
            replication_factor: 3,
            segment_bytes: 104_857_600,
            metadata_max_bytes: 4096,
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
}

/// Offsets of one group to commit: (topic, partition, value).
pub type OffsetCommits = Vec<(String, i32, OffsetAndMetadata)>;

/// The group coordinator of this broker.
pub struct GroupCoordinator {
    broker_id: i32,
    config: CoordinatorConfig,
    membership: Arc<GroupMembership>,
    replica_manager: Arc<ReplicaManager>,
    partitions: Mutex<HashMap<i32, OffsetsPartition>>,
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
            config,
            membership,
            replica_manager,
            partitions: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    pub fn membership(&self) -> &Arc<GroupMembership> {
        &self.membership
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
            None => Err(ErrorCode::NotCoordinator),
        }
    }

    /// Follows leadership of `__consumer_offsets`: loads each partition this broker has come
    /// to lead (on a blocking thread) and forgets those it no longer leads.
    pub fn on_image(self: &Arc<Self>, image: &Arc<MetadataImage>) {
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

    /// Reads partition `p` up to its high watermark into memory; the number of records read.
    fn load(&self, image: &MetadataImage, p: i32) -> Result<usize, String> {
        let tp = TopicPartition {
            topic: GROUP_METADATA_TOPIC.to_owned(),
            partition: p,
        };
        let mut groups: HashMap<String, GroupOffsets> = HashMap::new();
        let mut offset = {
            let r = self.replica_manager.read(image, &tp, 0, 0, false, -1);
            if r.error != ErrorCode::None {
                return Err(format!("{:?}", r.error));
            }
            r.log_start_offset
        };
        let mut count = 0;
        loop {
            let r = self
                .replica_manager
                .read(image, &tp, offset, 1 << 20, true, -1);
            if r.error != ErrorCode::None {
                return Err(format!("read at {offset}: {:?}", r.error));
            }
            let Some(slice) = r.records else { break };
            let bytes = bytes::Bytes::from(slice.read_to_vec().map_err(|e| e.to_string())?);
            let before = offset;
            for batch in RecordBatch::batches(bytes) {
                let batch = batch.map_err(|e| e.to_string())?;
                offset = batch.next_offset();
                if batch.is_control() {
                    continue;
                }
                for record in batch.records().map_err(|e| e.to_string())? {
                    let record = record.map_err(|e| e.to_string())?;
                    count += 1;
                    match records::read(record.key.as_ref(), record.value.as_ref()) {
                        Ok(rec) => apply(&mut groups, rec),
                        Err(e) => tracing::warn!(partition = p, error = %e, "skipping a record"),
                    }
                }
            }
            if offset == before {
                break;
            }
        }
        if let Some(s) = self.lock().get_mut(&p) {
            s.groups = groups;
            s.loaded = true;
        }
        Ok(count)
    }

    /// Appends `records` (key, value) to partition `p` as one batch (acks=all): the error a
    /// coordinator answers when it cannot (Kafka's mapping in `GroupMetadataManager`).
    fn append(
        &self,
        image: &MetadataImage,
        p: i32,
        records: &[(bytes::Bytes, Option<bytes::Bytes>)],
    ) -> Result<(), ErrorCode> {
        let now = now_ms();
        let mut builder = RecordBatchBuilder::new(0);
        for (k, v) in records {
            builder
                .append(now, Some(k), v.as_deref(), &[])
                .map_err(|_| ErrorCode::InvalidCommitOffsetSize)?;
        }
        let tp = TopicPartition {
            topic: GROUP_METADATA_TOPIC.to_owned(),
            partition: p,
        };
        let r = self
            .replica_manager
            .append(image, &tp, &builder.build(), -1);
        match r.error {
            ErrorCode::None => Ok(()),
            ErrorCode::UnknownTopicOrPartition
            | ErrorCode::NotEnoughReplicas
            | ErrorCode::NotEnoughReplicasAfterAppend
            | ErrorCode::RequestTimedOut => Err(ErrorCode::CoordinatorNotAvailable),
            ErrorCode::NotLeaderOrFollower | ErrorCode::KafkaStorageError => {
                Err(ErrorCode::NotCoordinator)
            }
            ErrorCode::MessageTooLarge | ErrorCode::RecordListTooLarge => {
                Err(ErrorCode::InvalidCommitOffsetSize)
            }
            other => {
                tracing::warn!(partition = p, error = ?other, "cannot append to __consumer_offsets");
                Err(ErrorCode::UnknownServerError)
            }
        }
    }

    /// Commits offsets of `group` (already checked against its membership): appended first,
    /// applied in memory only once the append succeeded.
    pub fn commit_offsets(
        &self,
        image: &MetadataImage,
        group: &str,
        commits: &OffsetCommits,
    ) -> Result<(), ErrorCode> {
        let p = self.check(group)?;
        if commits.is_empty() {
            return Ok(());
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
        self.append(image, p, &records)?;
        let Some(s) = parts.get_mut(&p) else {
            return Err(ErrorCode::NotCoordinator);
        };
        let offsets = s.groups.entry(group.to_owned()).or_default();
        for (t, part, v) in commits {
            offsets.insert((t.clone(), *part), v.clone());
        }
        Ok(())
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
        if let Some(offsets) = parts.get_mut(&p).and_then(|s| s.groups.get_mut(group)) {
            for k in &present {
                offsets.remove(k);
            }
        }
        Ok(())
    }

    /// DeleteGroups for one group: refused while it has members (NON_EMPTY_GROUP); otherwise
    /// its offsets and metadata are tombstoned and it is gone.
    pub fn delete_group(&self, image: &MetadataImage, group: &str) -> Result<(), ErrorCode> {
        let p = self.check(group)?;
        let has_offsets = self
            .lock()
            .get(&p)
            .is_some_and(|s| s.groups.contains_key(group));
        match self.membership.delete_group(group) {
            Ok(()) => {}
            Err(ErrorCode::GroupIdNotFound) if has_offsets => {}
            Err(e) => return Err(e),
        }
        let mut parts = self.lock();
        let mut records: Vec<_> = parts
            .get(&p)
            .and_then(|s| s.groups.get(group))
            .map(|o| {
                o.keys()
                    .map(|(t, part)| records::offset_commit(group, t, *part, None))
                    .collect()
            })
            .unwrap_or_default();
        records.push(records::group_tombstone(group));
        self.append(image, p, &records)?;
        if let Some(s) = parts.get_mut(&p) {
            s.groups.remove(group);
        }
        Ok(())
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

fn apply(groups: &mut HashMap<String, GroupOffsets>, rec: CoordinatorRecord) {
    match rec {
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
        }
        CoordinatorRecord::Group { value: Some(_), .. } => {}
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use membership::MembershipConfig;
    use rafka_protocol::messages::{MetadataRecord, PartitionRecord, TopicRecord};
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
        let membership = GroupMembership::new(MembershipConfig {
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 0,
            max_size: i32::MAX,
        });
        let config = CoordinatorConfig {
            num_partitions: 2,
            ..CoordinatorConfig::default()
        };
        GroupCoordinator::new(1, config, membership, rm.clone())
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
    /// survive; groups on other partitions are not mixed in.
    #[tokio::test]
    async fn offsets_survive_a_reload_from_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lm = Arc::new(
            LogManager::open(
                Arc::new(DiskFs),
                &[dir.path().to_path_buf()],
                &|_| LogConfig::default(),
                0,
            )
            .expect("log manager"),
        );
        let rm = Arc::new(ReplicaManager::new(
            1,
            lm,
            Arc::new(|_: &MetadataImage, _: &str| LogConfig::default()),
            Arc::new(|_: &MetadataImage, _: &str| 1),
        ));
        let image = image();
        rm.apply_image(&MetadataImage::new(), &image);
        // Two groups on different partitions.
        let (g1, g2) = ("alpha", "beta");
        let (p1, p2) = (partition_for(g1, 2), partition_for(g2, 2));
        let c = coordinator(&rm);
        assert_eq!(
            c.check(g1),
            Err(ErrorCode::NotCoordinator),
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

        // Leadership of the partitions moves away: NOT_COORDINATOR.
        c3.on_image(&Arc::new(MetadataImage::new()));
        assert_eq!(c3.check(g1), Err(ErrorCode::NotCoordinator));
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
