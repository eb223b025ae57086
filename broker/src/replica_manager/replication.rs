//! Replication inside the `ReplicaManager`, Kafka's `Partition` bookkeeping:
//!
//! - **Leader:** each follower's Fetch (with its replica id) tells its log end offset; the high
//!   watermark is the smallest log end offset over the ISR the controller committed, and never
//!   goes backwards. A follower is *caught up* when it fetched from the leader's log end — or
//!   from the end the leader had at its previous fetch, the time of which then counts (Kafka's
//!   `lastCaughtUpTime`), so a follower keeping pace under load is caught up too. One not caught
//!   up for `replica.lag.time.max.ms` is proposed out of the ISR; one that reaches the high
//!   watermark and the start of the leader's epoch is proposed back in — always through
//!   AlterPartition ([`crate::alter_partition_manager`]), in force only once the controller has
//!   committed it and the image brings it back.
//! - **acks=all** waits in [`ReplicaManager::wait_for_high_watermark`] until the high watermark
//!   passes the append (NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank below
//!   `min.insync.replicas` meanwhile, REQUEST_TIMED_OUT at the request's timeout,
//!   NOT_LEADER_OR_FOLLOWER if leadership moved).
//! - **Follower:** [`ReplicaManager::process_fetched`] applies what a fetch from the leader
//!   brought: a diverging epoch (KIP-320) truncates the log to where it agrees with the leader's
//!   (so a former leader's unreplicated tail goes, KIP-101), records are appended with the
//!   leader's offsets after their CRCs are checked, the high watermark follows the leader's.

use super::{now_ms, Partition, ReplicaManager};
use bytes::Bytes;
use rafka_controller::image::{MetadataImage, PartitionRegistration};
use rafka_protocol::{ErrorCode, Uuid};
use rafka_storage::log_manager::lock_log;
use rafka_storage::{FileSlice, StorageError, TopicPartition, UnifiedLog};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

/// What the leader knows of one follower.
#[derive(Debug, Clone, Copy)]
pub struct FollowerState {
    /// Its log end offset (the offset of its last fetch), -1 until it has fetched.
    pub log_end_offset: i64,
    pub last_caught_up_ms: i64,
    last_fetch_ms: i64,
    /// The leader's log end offset at that fetch.
    last_fetch_leader_leo: i64,
}

/// A leader's view of its followers, and the ISR change it has proposed.
#[derive(Debug, Default)]
pub struct ReplicaStates {
    followers: HashMap<i32, FollowerState>,
    /// The ISR sent to the controller, with the partition epoch it was proposed at.
    pending_isr: Option<(i32, Vec<i32>)>,
}

impl ReplicaStates {
    /// Each follower's log end offset as its last fetch showed it (-1 before any fetch).
    pub fn follower_log_end_offsets(&self) -> Vec<(i32, i64)> {
        self.followers
            .iter()
            .map(|(id, f)| (*id, f.log_end_offset))
            .collect()
    }
}

/// An ISR change to propose to the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrChange {
    pub tp: TopicPartition,
    pub topic_id: Uuid,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub new_isr: Vec<i32>,
}

/// A read by a follower.
#[derive(Debug, Clone)]
pub struct FollowerRead {
    pub error: ErrorCode,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub records: Option<FileSlice>,
    /// KIP-320: the end of the follower's last fetched epoch on the leader, when the
    /// follower's log goes past it (it must truncate there).
    pub diverging_epoch: Option<(i32, i64)>,
}

impl FollowerRead {
    fn error(error: ErrorCode) -> FollowerRead {
        FollowerRead {
            error,
            high_watermark: -1,
            log_start_offset: -1,
            records: None,
            diverging_epoch: None,
        }
    }
}

/// A partition this broker follows: what a fetch from its leader needs.
#[derive(Debug, Clone)]
pub struct FollowedPartition {
    pub tp: TopicPartition,
    pub topic_id: Uuid,
    pub leader_epoch: i32,
    pub fetch_offset: i64,
    pub last_fetched_epoch: i32,
    pub log_start_offset: i64,
}

/// What a follower's fetch brought for one partition.
#[derive(Debug, Clone)]
pub struct FetchedPartition {
    pub error: ErrorCode,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub diverging_epoch: Option<(i32, i64)>,
    pub records: Bytes,
}

impl Partition {
    /// Keeps the replica bookkeeping in step with a new registration: a new leadership starts
    /// with every follower unknown but counted as caught up now (as Kafka does, so an ISR member
    /// is not dropped before it could fetch); a decided ISR proposal is forgotten.
    pub(super) fn on_registration(
        &self,
        reg: &PartitionRegistration,
        me: i32,
        is_leader: bool,
        new_leadership: bool,
        now: i64,
    ) {
        let mut r = self.replicas.lock().unwrap_or_else(|e| e.into_inner());
        if !is_leader {
            r.followers.clear();
            r.pending_isr = None;
            return;
        }
        if new_leadership {
            r.followers.clear();
        }
        for &id in reg.replicas.iter().filter(|&&id| id != me) {
            r.followers.entry(id).or_insert(FollowerState {
                log_end_offset: -1,
                last_caught_up_ms: now,
                last_fetch_ms: now,
                last_fetch_leader_leo: -1,
            });
        }
        r.followers.retain(|id, _| reg.replicas.contains(id));
        if r.pending_isr
            .as_ref()
            .is_some_and(|(epoch, _)| *epoch != reg.partition_epoch)
        {
            r.pending_isr = None;
        }
    }

    /// The followers' states (tests, DescribeTopicPartitions-like views).
    pub fn follower_states(&self) -> HashMap<i32, FollowerState> {
        self.replicas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .followers
            .clone()
    }
}

/// The offset the current leader epoch starts at in `log` (its log end if it has not
/// appended yet).
pub(super) fn epoch_start_offset(log: &UnifiedLog, leader_epoch: i32) -> i64 {
    log.leader_epoch_cache()
        .epoch_entries()
        .iter()
        .rev()
        .find(|e| e.epoch == leader_epoch)
        .map_or(log.log_end_offset(), |e| e.start_offset)
}

impl ReplicaManager {
    /// A follower's fetch from this leader: checks the replica and epochs, finds a divergence,
    /// reads up to the log end (not the high watermark), records the follower's progress and
    /// moves the high watermark.
    #[allow(clippy::too_many_arguments)]
    pub fn read_for_follower(
        &self,
        image: &MetadataImage,
        tp: &TopicPartition,
        replica_id: i32,
        fetch_offset: i64,
        last_fetched_epoch: i32,
        max_bytes: u64,
        current_leader_epoch: i32,
    ) -> FollowerRead {
        let p = match self.leader_partition(image, tp) {
            Ok(p) => p,
            Err(e) => return FollowerRead::error(e),
        };
        let st = p.state();
        let reg = &st.registration;
        if current_leader_epoch >= 0 {
            if current_leader_epoch < reg.leader_epoch {
                return FollowerRead::error(ErrorCode::FencedLeaderEpoch);
            }
            if current_leader_epoch > reg.leader_epoch {
                return FollowerRead::error(ErrorCode::UnknownLeaderEpoch);
            }
        }
        if replica_id == self.broker_id || !reg.replicas.contains(&replica_id) {
            // Not a replica of this partition: an error, never data.
            return FollowerRead::error(ErrorCode::NotLeaderOrFollower);
        }
        let now = now_ms();
        let mut log = lock_log(&p.log);
        let leo = log.log_end_offset();
        let mut out = FollowerRead {
            error: ErrorCode::None,
            high_watermark: log.high_watermark(),
            log_start_offset: log.log_start_offset(),
            records: None,
            diverging_epoch: None,
        };
        if last_fetched_epoch >= 0 {
            let (epoch, end) = log
                .leader_epoch_cache()
                .end_offset_for(last_fetched_epoch, leo);
            if epoch < 0 || end < 0 {
                // Kafka: the end of the last fetched epoch cannot be determined.
                out.error = ErrorCode::OffsetOutOfRange;
                return out;
            }
            if epoch < last_fetched_epoch || end < fetch_offset {
                out.diverging_epoch = Some((epoch, end));
                return out;
            }
        }
        match log.read(fetch_offset, max_bytes, leo, true) {
            Ok(info) => out.records = info.slice,
            Err(e) => {
                out.error = crate::errors::storage_error_code(&e);
                return out;
            }
        }
        {
            let mut r = p.replicas.lock().unwrap_or_else(|e| e.into_inner());
            let f = r.followers.entry(replica_id).or_insert(FollowerState {
                log_end_offset: -1,
                last_caught_up_ms: now,
                last_fetch_ms: now,
                last_fetch_leader_leo: -1,
            });
            if fetch_offset >= leo {
                f.last_caught_up_ms = now;
            } else if fetch_offset >= f.last_fetch_leader_leo && f.last_fetch_leader_leo >= 0 {
                f.last_caught_up_ms = f.last_caught_up_ms.max(f.last_fetch_ms);
            }
            f.last_fetch_leader_leo = leo;
            f.last_fetch_ms = now;
            f.log_end_offset = fetch_offset;
        }
        self.maybe_increment_high_watermark(&p, reg, &mut log);
        out.high_watermark = log.high_watermark();
        out
    }

    /// Moves the high watermark to the smallest log end offset over the ISR, if that is higher;
    /// wakes acks=all produces and consumers' fetches when it moves.
    pub(super) fn maybe_increment_high_watermark(
        &self,
        p: &Partition,
        reg: &PartitionRegistration,
        log: &mut UnifiedLog,
    ) {
        if reg.leader != self.broker_id {
            return;
        }
        let mut hw = log.log_end_offset();
        {
            let r = p.replicas.lock().unwrap_or_else(|e| e.into_inner());
            for id in reg.isr.iter().filter(|&&id| id != self.broker_id) {
                match r.followers.get(id) {
                    Some(f) if f.log_end_offset >= 0 => hw = hw.min(f.log_end_offset),
                    // An ISR member not heard from yet: the high watermark waits for it.
                    _ => return,
                }
            }
        }
        if hw > log.high_watermark() {
            log.set_high_watermark(hw);
            self.hw_advanced.notify_waiters();
            self.appended.notify_waiters();
        }
    }

    /// acks=all: waits until the high watermark of `tp` reaches `required` (the offset after
    /// the append), at most until `deadline`.
    pub async fn wait_for_high_watermark(
        &self,
        image: &MetadataImage,
        tp: &TopicPartition,
        required: i64,
        deadline: tokio::time::Instant,
    ) -> ErrorCode {
        loop {
            let notified = self.hw_advanced.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let Some(p) = self.partition(tp).filter(|p| p.is_leader()) else {
                return ErrorCode::NotLeaderOrFollower;
            };
            let hw = lock_log(&p.log).high_watermark();
            if hw >= required {
                let isr = p.state().registration.isr.len() as i32;
                return if isr < (self.min_insync_replicas)(image, &tp.topic) {
                    ErrorCode::NotEnoughReplicasAfterAppend
                } else {
                    ErrorCode::None
                };
            }
            // Kafka's delayed-produce purgatory (offset commits wait here too).
            let waited = crate::metrics::request::remote(
                crate::metrics::request::Purgatory::Produce,
                tokio::time::timeout_at(deadline, notified),
            );
            if waited.await.is_err() {
                return ErrorCode::RequestTimedOut;
            }
        }
    }

    /// The ISR changes this leader should propose now: followers not caught up for
    /// `replica.lag.time.max.ms` out, caught-up active replicas in. One proposal per partition
    /// at a time.
    pub fn isr_changes(&self, image: &MetadataImage, now: i64) -> Vec<IsrChange> {
        let lag = self.replica_lag_time_max_ms.load(Ordering::Relaxed);
        let me = self.broker_id;
        let mut out = Vec::new();
        for p in self.partitions() {
            // A partition this broker does not lead, or whose only replica is this broker, has
            // no ISR to change: skipped without cloning its state or locking its log.
            if !p.with_state(|st| st.is_leader && st.registration.replicas.len() > 1) {
                continue;
            }
            let st = p.state();
            if !st.is_leader {
                continue;
            }
            let reg = &st.registration;
            let (hw, epoch_start) = {
                let log = lock_log(&p.log);
                (
                    log.high_watermark(),
                    epoch_start_offset(&log, reg.leader_epoch),
                )
            };
            let mut r = p.replicas.lock().unwrap_or_else(|e| e.into_inner());
            if r.pending_isr.is_some() {
                continue;
            }
            let mut isr: Vec<i32> = reg
                .isr
                .iter()
                .copied()
                .filter(|&id| {
                    id == me
                        || r.followers
                            .get(&id)
                            .is_some_and(|f| now - f.last_caught_up_ms <= lag)
                })
                .collect();
            for &id in &reg.replicas {
                if isr.contains(&id) || !image.is_active(id) {
                    continue;
                }
                if r.followers.get(&id).is_some_and(|f| {
                    f.log_end_offset >= hw
                        && f.log_end_offset >= epoch_start
                        && now - f.last_caught_up_ms <= lag
                }) {
                    isr.push(id);
                }
            }
            if isr != reg.isr {
                r.pending_isr = Some((reg.partition_epoch, isr.clone()));
                out.push(IsrChange {
                    tp: p.tp.clone(),
                    topic_id: p.topic_id,
                    leader_epoch: reg.leader_epoch,
                    partition_epoch: reg.partition_epoch,
                    new_isr: isr,
                });
            }
        }
        out
    }

    /// The controller refused (or never answered) a proposal: forget it, to propose again.
    pub fn isr_change_failed(&self, tp: &TopicPartition) {
        if let Some(p) = self.partition(tp) {
            p.replicas
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pending_isr = None;
        }
    }

    /// The leaders this broker follows partitions of.
    pub fn followed_leaders(&self) -> Vec<i32> {
        // Run every 100 ms and on every image change: the counts `apply_image` keeps, O(leaders).
        let mut leaders: Vec<i32> = self
            .followed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect();
        leaders.sort_unstable();
        leaders
    }

    /// The partitions this broker follows on `leader`, with what to fetch next.
    pub fn followed_from(&self, leader: i32) -> Vec<FollowedPartition> {
        let mut out = Vec::new();
        for p in self.partitions() {
            let st = p.state();
            if st.is_leader || st.registration.leader != leader {
                continue;
            }
            let log = lock_log(&p.log);
            out.push(FollowedPartition {
                tp: p.tp.clone(),
                topic_id: p.topic_id,
                leader_epoch: st.registration.leader_epoch,
                fetch_offset: log.log_end_offset(),
                last_fetched_epoch: log.leader_epoch_cache().latest_epoch().unwrap_or(-1),
                log_start_offset: log.log_start_offset(),
            });
        }
        out.sort_by(|a, b| a.tp.cmp(&b.tp));
        out
    }

    /// Applies what a fetch from the leader brought for one followed partition (blocking I/O:
    /// call it off the async threads). `leader_epoch` is the epoch the fetch was made at: a
    /// partition whose leadership changed since ignores it. Returns the partition's error, if
    /// the fetcher should back off.
    pub fn process_fetched(
        &self,
        tp: &TopicPartition,
        leader_epoch: i32,
        data: &FetchedPartition,
    ) -> ErrorCode {
        let Some(p) = self.partition(tp) else {
            return ErrorCode::UnknownTopicOrPartition;
        };
        let st = p.state();
        if st.is_leader || st.registration.leader_epoch != leader_epoch {
            return ErrorCode::None;
        }
        let now = now_ms();
        let mut log = lock_log(&p.log);
        let leo = log.log_end_offset();
        let result: Result<(), StorageError> = (|| {
            match data.error {
                ErrorCode::None => {}
                ErrorCode::OffsetOutOfRange => {
                    if data.log_start_offset > leo {
                        tracing::info!(topic = %tp.topic, partition = tp.partition, offset = data.log_start_offset, "follower behind the leader's log start: starting over there");
                        log.truncate_fully_and_start_at(data.log_start_offset, now)?;
                    } else if data.high_watermark >= 0 && data.high_watermark < leo {
                        tracing::info!(topic = %tp.topic, partition = tp.partition, offset = data.high_watermark, "follower out of range: truncating to the leader's high watermark");
                        log.truncate_to(data.high_watermark, now)?;
                    }
                    return Ok(());
                }
                _ => return Ok(()),
            }
            if let Some((epoch, end)) = data.diverging_epoch {
                let target = end.min(leo);
                tracing::info!(topic = %tp.topic, partition = tp.partition, epoch, offset = target, "log diverged from the leader's: truncating");
                log.truncate_to(target, now)?;
                return Ok(());
            }
            if !data.records.is_empty() {
                log.append_as_follower(&data.records, now)?;
                if let Some(m) = self.metrics() {
                    m.topics
                        .replication_bytes_in
                        .fetch_add(data.records.len() as u64, Ordering::Relaxed);
                }
            }
            let hw = data.high_watermark.min(log.log_end_offset());
            if hw > log.high_watermark() {
                log.set_high_watermark(hw);
            }
            Ok(())
        })();
        match result {
            Ok(()) => data.error,
            Err(e) => {
                // A corrupt batch is refused, never appended: the next fetch asks again.
                tracing::warn!(topic = %tp.topic, partition = tp.partition, error = %e, "follower could not apply a fetch");
                ErrorCode::CorruptMessage
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ReplicaManager;
    use super::*;
    use rafka_protocol::messages::{
        MetadataRecord, PartitionChangeRecord, PartitionRecord, RegisterBrokerRecord, TopicRecord,
    };
    use rafka_protocol::record_batch::RecordBatchBuilder;
    use rafka_storage::{DiskFs, LogConfig, LogManager};
    use std::sync::Arc;

    const ID: u128 = 7;

    fn tp() -> TopicPartition {
        TopicPartition::new("r", 0)
    }

    fn next(image: &MetadataImage, records: &[MetadataRecord]) -> MetadataImage {
        let mut image = image.clone();
        image.apply_batch(records).expect("records apply");
        image
    }

    fn leader_change(leader: i32) -> MetadataRecord {
        MetadataRecord::PartitionChange(PartitionChangeRecord {
            topic_id: Uuid::from_u128(ID),
            partition_id: 0,
            leader,
            ..Default::default()
        })
    }

    fn records(n: usize) -> Bytes {
        let mut b = RecordBatchBuilder::new(0);
        for i in 0..n {
            b.append(i as i64, None, Some(b"v"), &[]).unwrap();
        }
        b.build()
    }

    /// Broker 1 leading `r-0` with replicas [1, 2], both in sync.
    fn setup(dir: &std::path::Path) -> (ReplicaManager, MetadataImage) {
        let lm = Arc::new(
            LogManager::open(
                Arc::new(DiskFs),
                &[dir.to_path_buf()],
                &|_| LogConfig::default(),
                0,
            )
            .unwrap(),
        );
        let rm = ReplicaManager::new(
            1,
            lm,
            Arc::new(|_: &MetadataImage, _: &str| LogConfig::default()),
            Arc::new(|_: &MetadataImage, _: &str| 2),
        );
        let empty = MetadataImage::new();
        let broker = |id: i32| {
            MetadataRecord::RegisterBroker(RegisterBrokerRecord {
                broker_id: id,
                broker_epoch: 10 + i64::from(id),
                fenced: false,
                ..Default::default()
            })
        };
        let image = next(
            &empty,
            &[
                broker(1),
                broker(2),
                MetadataRecord::Topic(TopicRecord {
                    name: "r".into(),
                    topic_id: Uuid::from_u128(ID),
                    ..Default::default()
                }),
                MetadataRecord::Partition(PartitionRecord {
                    partition_id: 0,
                    topic_id: Uuid::from_u128(ID),
                    replicas: vec![1, 2],
                    isr: vec![1, 2],
                    leader: 1,
                    leader_epoch: 0,
                    partition_epoch: 0,
                    ..Default::default()
                }),
            ],
        );
        rm.apply_image(&empty, &image);
        (rm, image)
    }

    fn hw(rm: &ReplicaManager) -> i64 {
        lock_log(&rm.partition(&tp()).unwrap().log).high_watermark()
    }

    #[test]
    fn the_high_watermark_follows_the_slowest_in_sync_follower() {
        let dir = tempfile::tempdir().unwrap();
        let (rm, image) = setup(dir.path());
        let r = rm.append(&image, &tp(), &records(5), -1);
        assert_eq!(
            (r.error, r.last_offset),
            (ErrorCode::None, 4),
            "{:?}",
            r.error_message
        );
        assert_eq!(hw(&rm), 0, "follower 2 has not fetched");
        let read = rm.read_for_follower(&image, &tp(), 2, 0, -1, 1 << 20, 0);
        assert_eq!(read.error, ErrorCode::None);
        assert!(
            read.records.is_some_and(|s| s.len > 0),
            "followers read above the HW"
        );
        assert_eq!(hw(&rm), 0);
        let read = rm.read_for_follower(&image, &tp(), 2, 5, 0, 1 << 20, 0);
        assert_eq!((read.error, read.high_watermark), (ErrorCode::None, 5));
        assert_eq!(hw(&rm), 5);
        // Not a replica: an error, not data.
        let read = rm.read_for_follower(&image, &tp(), 3, 0, -1, 1 << 20, 0);
        assert_eq!(read.error, ErrorCode::NotLeaderOrFollower);
        assert!(read.records.is_none());
        // Stale and future epochs.
        let stale = rm.read_for_follower(&image, &tp(), 2, 5, 0, 1 << 20, -5);
        assert_eq!(
            stale.error,
            ErrorCode::None,
            "no epoch given (-5 < 0) is not checked"
        );
        let future = rm.read_for_follower(&image, &tp(), 2, 5, 0, 1 << 20, 9);
        assert_eq!(future.error, ErrorCode::UnknownLeaderEpoch);
        // A follower past the leader's end of its epoch diverged (KIP-320).
        let read = rm.read_for_follower(&image, &tp(), 2, 7, 0, 1 << 20, 0);
        assert_eq!(read.diverging_epoch, Some((0, 5)));
    }

    #[test]
    fn a_new_leader_answers_offset_not_available_until_its_high_watermark_reaches_its_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let (rm, image) = setup(dir.path());
        rm.append(&image, &tp(), &records(5), 1);
        rm.read_for_follower(&image, &tp(), 2, 5, 0, 1 << 20, 0);
        rm.append(&image, &tp(), &records(3), 1);
        assert_eq!(
            (hw(&rm), rm.partition(&tp()).unwrap().leader_epoch()),
            (5, 0)
        );
        // Leadership goes to 2 and comes back: epoch 2 starts at 8, above the HW of 5.
        let away = next(&image, &[leader_change(2)]);
        rm.apply_image(&image, &away);
        let back = next(&away, &[leader_change(1)]);
        rm.apply_image(&away, &back);
        let epoch = rm.partition(&tp()).unwrap().leader_epoch();
        assert_eq!(epoch, 2);
        assert_eq!(
            rm.fetch_offset_for_timestamp(&back, &tp(), -1, epoch),
            Err(ErrorCode::OffsetNotAvailable)
        );
        // EARLIEST is still answered.
        assert!(rm
            .fetch_offset_for_timestamp(&back, &tp(), -2, epoch)
            .is_ok());
        // The follower catches up: the HW reaches the epoch's start.
        rm.read_for_follower(&back, &tp(), 2, 8, 0, 1 << 20, epoch);
        assert_eq!(
            rm.fetch_offset_for_timestamp(&back, &tp(), -1, epoch)
                .unwrap()
                .map(|t| t.offset),
            Some(8)
        );
    }

    #[test]
    fn isr_changes_propose_shrinks_and_expansions_once() {
        let dir = tempfile::tempdir().unwrap();
        let (rm, image) = setup(dir.path());
        rm.set_replica_lag_time_max_ms(1000);
        let now = now_ms();
        assert_eq!(
            rm.isr_changes(&image, now),
            vec![],
            "caught up at leadership"
        );
        let shrink = rm.isr_changes(&image, now + 5000);
        assert_eq!(shrink.len(), 1);
        assert_eq!(shrink[0].new_isr, vec![1]);
        assert_eq!(
            rm.isr_changes(&image, now + 6000),
            vec![],
            "one proposal in flight at a time"
        );
        // Refused: proposed again.
        rm.isr_change_failed(&tp());
        assert_eq!(rm.isr_changes(&image, now + 6000).len(), 1);
        // Committed: the image has ISR [1]. The follower fetches up to the HW: back in.
        let shrunk = next(
            &image,
            &[MetadataRecord::PartitionChange(PartitionChangeRecord {
                topic_id: Uuid::from_u128(ID),
                partition_id: 0,
                isr: Some(vec![1]),
                leader: -2,
                ..Default::default()
            })],
        );
        rm.apply_image(&image, &shrunk);
        rm.append(&shrunk, &tp(), &records(2), 1);
        rm.read_for_follower(&shrunk, &tp(), 2, 2, 0, 1 << 20, -1);
        let grow = rm.isr_changes(&shrunk, now_ms());
        assert_eq!(grow.len(), 1, "{grow:?}");
        assert_eq!(grow[0].new_isr, vec![1, 2]);
    }

    /// Broker 1 following `r-0`, led by 2 at epoch 1.
    fn follower_setup(dir: &std::path::Path) -> (ReplicaManager, MetadataImage) {
        let (rm, image) = setup(dir);
        let moved = next(&image, &[leader_change(2)]);
        rm.apply_image(&image, &moved);
        (rm, moved)
    }

    fn leader_batch(offset: i64, epoch: i32, n: usize) -> Bytes {
        let mut b = RecordBatchBuilder::new(offset).partition_leader_epoch(epoch);
        for i in 0..n {
            b.append(i as i64, None, Some(b"v"), &[]).unwrap();
        }
        b.build()
    }

    #[test]
    fn a_follower_refuses_corrupt_data_and_keeps_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let (rm, image) = follower_setup(dir.path());
        assert!(!rm.partition(&tp()).unwrap().is_leader());
        let epoch = rm.partition(&tp()).unwrap().leader_epoch();
        let fetched = |records: Bytes| FetchedPartition {
            error: ErrorCode::None,
            high_watermark: 3,
            log_start_offset: 0,
            diverging_epoch: None,
            records,
        };
        let good = leader_batch(0, epoch, 3);
        let mut bad = good.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 0x55; // the CRC no longer matches
        assert_eq!(
            rm.process_fetched(&tp(), epoch, &fetched(Bytes::from(bad))),
            ErrorCode::CorruptMessage
        );
        let leo =
            |rm: &ReplicaManager| lock_log(&rm.partition(&tp()).unwrap().log).log_end_offset();
        assert_eq!(leo(&rm), 0, "nothing of a corrupt batch is appended");
        // The refetch brings it whole: appended with the leader's offsets, HW taken.
        assert_eq!(
            rm.process_fetched(&tp(), epoch, &fetched(good)),
            ErrorCode::None
        );
        assert_eq!((leo(&rm), hw(&rm)), (3, 3));
        // A fetch made at an older epoch is ignored.
        assert_eq!(
            rm.process_fetched(&tp(), epoch - 1, &fetched(leader_batch(3, epoch, 2))),
            ErrorCode::None
        );
        assert_eq!(leo(&rm), 3);
        // A diverging epoch truncates where the logs agree.
        rm.process_fetched(&tp(), epoch, &fetched(leader_batch(3, epoch, 2)));
        assert_eq!(leo(&rm), 5);
        let diverged = FetchedPartition {
            diverging_epoch: Some((epoch, 3)),
            ..fetched(Bytes::new())
        };
        rm.process_fetched(&tp(), epoch, &diverged);
        assert_eq!(leo(&rm), 3);
        let _ = image;
    }

    #[test]
    fn acks_all_waits_for_the_high_watermark() {
        let dir = tempfile::tempdir().unwrap();
        let (rm, image) = setup(dir.path());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let r = rm.append(&image, &tp(), &records(3), -1);
        let soon = tokio::time::Instant::now() + std::time::Duration::from_millis(50);
        let timed_out =
            rt.block_on(rm.wait_for_high_watermark(&image, &tp(), r.last_offset + 1, soon));
        assert_eq!(timed_out, ErrorCode::RequestTimedOut);
        rm.read_for_follower(&image, &tp(), 2, 3, 0, 1 << 20, 0);
        let later = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        let done = rt.block_on(rm.wait_for_high_watermark(&image, &tp(), r.last_offset + 1, later));
        assert_eq!(done, ErrorCode::None);
    }
}
