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
//! - **acks=all** waits in the produce purgatory ([`super::delayed_produce`]) until
//!   the high watermark passes the append (NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank
//!   below `min.insync.replicas` meanwhile, REQUEST_TIMED_OUT at the request's timeout,
//!   NOT_LEADER_OR_FOLLOWER if leadership moved).
//! - **Follower:** [`ReplicaManager::process_fetched`] applies what a fetch from the leader
//!   brought: a diverging epoch (KIP-320) truncates the log to where it agrees with the leader's
//!   (so a former leader's unreplicated tail goes, KIP-101), records are appended with the
//!   leader's offsets after their CRCs are checked, the high watermark follows the leader's.
//!
//! The per-partition rules (the high watermark, follower states, the ISR check) are
//! [`crate::partition::Partition`]'s; this file finds the partitions and checks the requests.

use super::{now_ms, ReplicaManager};
use bytes::Bytes;
use rafka_controller::image::MetadataImage;
use rafka_protocol::{ErrorCode, Uuid};
use rafka_storage::log_manager::lock_log;
use rafka_storage::{StorageError, TopicPartition};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::log_read::FollowerRead;
use crate::partition::{IsrChange, Partition};

pub use crate::partition::{FollowerState, ReplicaStates};

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

/// What a follower's fetch asks of one partition.
#[derive(Debug, Clone, Copy)]
pub struct FollowerFetch {
    pub replica_id: i32,
    pub fetch_offset: i64,
    pub last_fetched_epoch: i32,
    pub current_leader_epoch: i32,
}

/// Whether a follower read records the follower's progress (its first read) or not (a re-read
/// of a fetch parked in the purgatory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FollowerProgress {
    Record,
    AlreadyRecorded,
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
        self.follower_read(
            image,
            tp,
            FollowerFetch {
                replica_id,
                fetch_offset,
                last_fetched_epoch,
                current_leader_epoch,
            },
            max_bytes,
            FollowerProgress::Record,
        )
    }

    /// [`Self::read_for_follower`] for a fetch read before and parked in the purgatory: the
    /// follower's progress was recorded at that first read and is not recorded again, as
    /// Kafka's `DelayedFetch` reads without updating the follower's state. (A fetch the follower
    /// sent before it died, completed after the controller took it out of the ISR, would
    /// otherwise count the dead process as caught up.)
    pub fn reread_for_follower(
        &self,
        image: &MetadataImage,
        tp: &TopicPartition,
        fetch: FollowerFetch,
        max_bytes: u64,
    ) -> FollowerRead {
        self.follower_read(
            image,
            tp,
            fetch,
            max_bytes,
            FollowerProgress::AlreadyRecorded,
        )
    }

    fn follower_read(
        &self,
        image: &MetadataImage,
        tp: &TopicPartition,
        fetch: FollowerFetch,
        max_bytes: u64,
        progress: FollowerProgress,
    ) -> FollowerRead {
        let FollowerFetch {
            replica_id,
            fetch_offset,
            last_fetched_epoch,
            current_leader_epoch,
        } = fetch;
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
        p.read_for_follower(
            reg,
            replica_id,
            fetch_offset,
            last_fetched_epoch,
            max_bytes,
            (progress == FollowerProgress::Record).then(now_ms),
        )
    }

    /// The ISR changes this leader should propose now: followers not caught up for
    /// `replica.lag.time.max.ms` out, caught-up active replicas in. One proposal per partition
    /// at a time.
    pub fn isr_changes(&self, image: &MetadataImage, now: i64) -> Vec<IsrChange> {
        let lag = self.replica_lag_time_max_ms.load(Ordering::Relaxed);
        // Only the partitions led with followers (kept by `apply_image`), not every one hosted.
        let led: Vec<Arc<Partition>> = self
            .sets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .led_with_followers
            .values()
            .cloned()
            .collect();
        led.iter()
            .filter_map(|p| p.isr_change(image, lag, now))
            .collect()
    }

    /// The controller refused (or never answered) a proposal: forget it, to propose again.
    pub fn isr_change_failed(&self, tp: &TopicPartition) {
        if let Some(p) = self.partition(tp) {
            p.isr_change_failed();
        }
    }

    /// The leaders this broker follows partitions of.
    pub fn followed_leaders(&self) -> Vec<i32> {
        // Run every 100 ms and on every image change: the sets `apply_image` keeps, O(leaders).
        let mut leaders: Vec<i32> = self
            .sets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .followed
            .keys()
            .copied()
            .collect();
        leaders.sort_unstable();
        leaders
    }

    /// The partitions this broker follows on `leader`, with what to fetch next.
    pub fn followed_from(&self, leader: i32) -> Vec<FollowedPartition> {
        // The set `apply_image` keeps for this leader, in name order: O(partitions followed
        // on it), not O(partitions hosted).
        let followed: Vec<Arc<Partition>> = self
            .sets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .followed
            .get(&leader)
            .map(|set| set.values().cloned().collect())
            .unwrap_or_default();
        let mut out = Vec::with_capacity(followed.len());
        for p in followed {
            let Some(leader_epoch) = p.with_state(|st| {
                (!st.is_leader && st.registration.leader == leader)
                    .then_some(st.registration.leader_epoch)
            }) else {
                continue;
            };
            let log = lock_log(&p.log);
            out.push(FollowedPartition {
                tp: p.tp.clone(),
                topic_id: p.topic_id,
                leader_epoch,
                fetch_offset: log.log_end_offset(),
                last_fetched_epoch: log.leader_epoch_cache().latest_epoch().unwrap_or(-1),
                log_start_offset: log.log_start_offset(),
            });
        }
        out
    }

    /// Applies what a fetch from the leader brought for one followed partition. Appending is
    /// what a produce does on its worker; a truncation or a reset deletes files, so a round that
    /// carries one runs on a blocking thread (`replica_fetcher`). `leader_epoch` is the epoch
    /// the fetch was made at: a partition whose leadership changed since ignores it. Returns the
    /// partition's error, if the fetcher should back off.
    ///
    /// The partition's state is read-held until the log is let go (state before log, as
    /// `Partition` orders them), so the leadership checked is the one the log is changed under:
    /// a broker made leader in between can no longer have this round truncate or append over
    /// the records it took as leader.
    pub fn process_fetched(
        &self,
        tp: &TopicPartition,
        leader_epoch: i32,
        data: &FetchedPartition,
    ) -> ErrorCode {
        let Some(p) = self.partition(tp) else {
            return ErrorCode::UnknownTopicOrPartition;
        };
        p.with_state(|st| {
            if st.is_leader || st.registration.leader_epoch != leader_epoch {
                return ErrorCode::None;
            }
            self.apply_fetched(&p, tp, data)
        })
    }

    /// [`ReplicaManager::process_fetched`] once the leadership is checked (its state held).
    fn apply_fetched(
        &self,
        p: &Partition,
        tp: &TopicPartition,
        data: &FetchedPartition,
    ) -> ErrorCode {
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
        // Consumers reading from this follower (KIP-392) wait on its offsets.
        p.release(log);
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
        let rm = ReplicaManager::new(1, lm, crate::replica_manager::FixedTopicConfigs::new(2));
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

    /// The controller takes a follower out of the ISR (its heartbeat connection closed: the
    /// process most likely died) while the image still shows it unfenced: the leader must not
    /// add it back from the fetch state the dead process left, only after a new fetch.
    #[test]
    fn a_follower_the_controller_took_out_is_added_back_only_after_it_fetches_again() {
        let dir = tempfile::tempdir().unwrap();
        let (rm, image) = setup(dir.path());
        rm.set_replica_lag_time_max_ms(30_000);
        rm.append(&image, &tp(), &records(3), 1);
        rm.read_for_follower(&image, &tp(), 2, 3, 0, 1 << 20, 0);
        assert_eq!(hw(&rm), 3);
        let taken_out = next(
            &image,
            &[MetadataRecord::PartitionChange(PartitionChangeRecord {
                topic_id: Uuid::from_u128(ID),
                partition_id: 0,
                isr: Some(vec![1]),
                leader: -2,
                ..Default::default()
            })],
        );
        rm.apply_image(&image, &taken_out);
        assert!(taken_out.is_active(2), "not fenced yet");
        // A fetch the process sent before it died, parked, completes now.
        let parked = FollowerFetch {
            replica_id: 2,
            fetch_offset: 3,
            last_fetched_epoch: 0,
            current_leader_epoch: 0,
        };
        rm.reread_for_follower(&taken_out, &tp(), parked, 1 << 20);
        assert_eq!(
            rm.isr_changes(&taken_out, now_ms()),
            vec![],
            "the dead process's caught-up fetch does not count"
        );
        rm.read_for_follower(&taken_out, &tp(), 2, 3, 0, 1 << 20, 0);
        let grow = rm.isr_changes(&taken_out, now_ms());
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
