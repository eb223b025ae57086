//! The purgatory with a real `ReplicaManager` over real logs: an operation is woken by its own
//! partitions only, and completes on the offset it waits for.

use crate::log_read::FetchIsolation;
use crate::replica_manager::delayed_fetch::FetchWatch;
use crate::replica_manager::ReplicaManager;
use bytes::Bytes;
use rafka_controller::image::MetadataImage;
use rafka_protocol::control_record::{ControlRecordType, EndTransactionMarker};
use rafka_protocol::messages::{
    MetadataRecord, PartitionRecord, RegisterBrokerRecord, TopicRecord,
};
use rafka_protocol::record_batch::RecordBatchBuilder;
use rafka_protocol::{ErrorCode, Uuid};
use rafka_storage::{DiskFs, LogConfig, LogManager, TopicPartition};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Broker 1 hosting topic "t" with `partitions` partitions on `replicas` (broker 1 leads),
/// `min.insync.replicas` = the replica count.
fn broker(
    dir: &std::path::Path,
    partitions: i32,
    replicas: &[i32],
) -> (Arc<ReplicaManager>, MetadataImage) {
    let lm = Arc::new(
        LogManager::open(
            Arc::new(DiskFs),
            &[dir.to_path_buf()],
            &|_| LogConfig::default(),
            0,
        )
        .expect("log manager"),
    );
    let min_isr = replicas.len() as i32;
    let rm = Arc::new(ReplicaManager::new(
        1,
        lm,
        crate::replica_manager::FixedTopicConfigs::new(min_isr),
    ));
    let mut records: Vec<MetadataRecord> = replicas
        .iter()
        .map(|&id| {
            MetadataRecord::RegisterBroker(RegisterBrokerRecord {
                broker_id: id,
                broker_epoch: 10 + i64::from(id),
                fenced: false,
                ..Default::default()
            })
        })
        .collect();
    records.push(MetadataRecord::Topic(TopicRecord {
        name: "t".into(),
        topic_id: Uuid::from_u128(9),
        ..Default::default()
    }));
    for p in 0..partitions {
        records.push(MetadataRecord::Partition(PartitionRecord {
            partition_id: p,
            topic_id: Uuid::from_u128(9),
            replicas: replicas.to_vec(),
            isr: replicas.to_vec(),
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
            ..Default::default()
        }));
    }
    let empty = MetadataImage::new();
    let mut image = empty.clone();
    image.apply_batch(&records).expect("records apply");
    rm.apply_image(&empty, &image);
    (rm, image)
}

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

fn records(n: usize) -> Bytes {
    let mut b = RecordBatchBuilder::new(0);
    for i in 0..n {
        b.append(i as i64, None, Some(b"v"), &[]).expect("record");
    }
    b.build()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A consumer's fetch parked at the end of partition `p`.
fn caught_up(rm: &ReplicaManager, p: i32, isolation: FetchIsolation) -> FetchWatch {
    let part = rm.partition(&tp(p)).expect("hosted");
    let bound = part.published_bound(isolation);
    FetchWatch {
        tp: tp(p),
        fetch_offset: bound,
        isolation,
        read_bound: bound,
        bytes: 0,
        max_bytes: 1 << 20,
    }
}

/// Lets spawned tasks run until they wait.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(30)).await;
}

#[test]
fn a_fetch_waiting_on_one_partition_is_not_woken_by_appends_to_another() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rm, image) = broker(dir.path(), 2, &[1]);
    let stats = rm.purgatory().fetch.clone();
    runtime().block_on(async {
        let watch = caught_up(&rm, 0, FetchIsolation::HighWatermark);
        let waiting = {
            let rm = rm.clone();
            tokio::spawn(async move {
                let mut delayed = rm.delayed_fetch(vec![watch], 1);
                delayed.wait(Instant::now() + Duration::from_secs(10)).await
            })
        };
        settle().await;
        for _ in 0..20 {
            let r = rm.append(&image, &tp(1), &records(2), 1);
            assert_eq!(r.error, ErrorCode::None);
        }
        settle().await;
        assert_eq!(stats.wakeups(), 0, "appends to t-1 woke a fetch of t-0");
        assert!(!waiting.is_finished());
        let r = rm.append(&image, &tp(0), &records(1), 1);
        assert_eq!(r.error, ErrorCode::None);
        let completed = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("completed in time")
            .expect("task");
        assert!(
            completed,
            "completed by its partition's append, not its deadline"
        );
        assert_eq!(stats.wakeups(), 1);
        assert_eq!((stats.completed(), stats.expired()), (1, 0));
        // Nothing waits any more: the registration went with the fetch.
        let p0 = rm.partition(&tp(0)).expect("hosted");
        assert_eq!(p0.offsets().waiting(super::WatchKey::HighWatermark), 0);
    });
}

#[test]
fn a_fetch_with_min_bytes_completes_once_its_partitions_hold_enough() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rm, image) = broker(dir.path(), 2, &[1]);
    let stats = rm.purgatory().fetch.clone();
    runtime().block_on(async {
        let one_batch = records(1).len() as u64;
        let watches = vec![
            caught_up(&rm, 0, FetchIsolation::HighWatermark),
            caught_up(&rm, 1, FetchIsolation::HighWatermark),
        ];
        // Three batches' worth, over both partitions.
        let waiting = {
            let rm = rm.clone();
            tokio::spawn(async move {
                let mut delayed = rm.delayed_fetch(watches, 3 * one_batch);
                delayed.wait(Instant::now() + Duration::from_secs(10)).await
            })
        };
        settle().await;
        rm.append(&image, &tp(0), &records(1), 1);
        rm.append(&image, &tp(1), &records(1), 1);
        settle().await;
        assert!(!waiting.is_finished(), "two batches are not three");
        rm.append(&image, &tp(1), &records(1), 1);
        let completed = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("completed in time")
            .expect("task");
        assert!(completed);
        assert_eq!(stats.wakeups(), 3);
    });
    // A deadline with nothing appended: expired.
    runtime().block_on(async {
        let mut delayed =
            rm.delayed_fetch(vec![caught_up(&rm, 0, FetchIsolation::HighWatermark)], 1);
        let soon = Instant::now() + Duration::from_millis(20);
        assert!(!delayed.wait(soon).await);
        assert_eq!(stats.expired(), 1);
    });
}

#[test]
fn a_read_committed_fetch_is_woken_by_the_transaction_marker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rm, image) = broker(dir.path(), 1, &[1]);
    let stats = rm.purgatory().fetch.clone();
    let (producer_id, producer_epoch) = (5, 0);
    let mut txn = RecordBatchBuilder::new(0)
        .producer(producer_id, producer_epoch, 0)
        .transactional(true);
    txn.append(0, None, Some(b"in a transaction"), &[])
        .expect("record");
    let r = rm.append(&image, &tp(0), &txn.build(), 1);
    assert_eq!(r.error, ErrorCode::None, "{:?}", r.error_message);
    let p = rm.partition(&tp(0)).expect("hosted");
    assert_eq!(p.published_bound(FetchIsolation::TxnCommitted), 0);
    runtime().block_on(async {
        let watch = caught_up(&rm, 0, FetchIsolation::TxnCommitted);
        let waiting = {
            let rm = rm.clone();
            tokio::spawn(async move {
                let mut delayed = rm.delayed_fetch(vec![watch], 1);
                delayed.wait(Instant::now() + Duration::from_secs(10)).await
            })
        };
        settle().await;
        // Records after the open transaction move the high watermark, not the last stable
        // offset: a read_committed fetch has nothing new.
        rm.append(&image, &tp(0), &records(3), 1);
        settle().await;
        assert!(!waiting.is_finished());
        assert_eq!(stats.wakeups(), 0);
        let marker = EndTransactionMarker {
            control_type: ControlRecordType::Commit,
            coordinator_epoch: 0,
        };
        let r = rm.append_end_txn_marker(&image, &tp(0), producer_id, producer_epoch, &marker);
        assert_eq!(r.error, ErrorCode::None, "{:?}", r.error_message);
        let completed = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("completed in time")
            .expect("task");
        assert!(completed, "the commit marker completes it");
        assert_eq!(stats.wakeups(), 1);
    });
}

#[test]
fn a_delayed_produce_completes_on_its_own_partitions_high_watermark_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rm, image) = broker(dir.path(), 2, &[1, 2]);
    let stats = rm.purgatory().produce.clone();
    runtime().block_on(async {
        let a = rm.append(&image, &tp(0), &records(3), -1);
        let b = rm.append(&image, &tp(1), &records(3), -1);
        assert_eq!((a.error, b.error), (ErrorCode::None, ErrorCode::None));
        assert!(!a.replicated && !b.replicated);
        let waiting = {
            let rm = rm.clone();
            let required = a.last_offset + 1;
            tokio::spawn(async move {
                rm.wait_for_high_watermarks(
                    &[(tp(0), required)],
                    Instant::now() + Duration::from_secs(10),
                )
                .await
            })
        };
        settle().await;
        // Follower 2 catches up on t-1: its high watermark moves, t-0's does not.
        let read = rm.read_for_follower(&image, &tp(1), 2, b.last_offset + 1, 0, 1 << 20, -1);
        assert_eq!(read.error, ErrorCode::None);
        assert_eq!(
            rm.partition(&tp(1))
                .expect("hosted")
                .offsets()
                .high_watermark(),
            3
        );
        settle().await;
        assert_eq!(
            stats.wakeups(),
            0,
            "t-1's high watermark woke a produce to t-0"
        );
        assert!(!waiting.is_finished());
        // Then on t-0.
        rm.read_for_follower(&image, &tp(0), 2, a.last_offset + 1, 0, 1 << 20, -1);
        let codes = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("completed in time")
            .expect("task");
        assert_eq!(codes, vec![ErrorCode::None]);
        assert_eq!(stats.wakeups(), 1);
        assert_eq!((stats.completed(), stats.expired()), (1, 0));
        // Nothing replicates the next one: it times out.
        let c = rm.append(&image, &tp(0), &records(1), -1);
        let codes = rm
            .wait_for_high_watermarks(
                &[(tp(0), c.last_offset + 1)],
                Instant::now() + Duration::from_millis(20),
            )
            .await;
        assert_eq!(codes, vec![ErrorCode::RequestTimedOut]);
        assert_eq!(stats.expired(), 1);
    });
}

/// Pipelined acks=all produces on one partition: each high-watermark step wakes only the
/// produces it completes, not every one still waiting behind it.
#[test]
fn a_high_watermark_step_wakes_only_the_produces_it_reaches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rm, image) = broker(dir.path(), 1, &[1, 2]);
    let stats = rm.purgatory().produce.clone();
    runtime().block_on(async {
        let mut waiting = Vec::new();
        let mut ends = Vec::new();
        for _ in 0..3 {
            let a = rm.append(&image, &tp(0), &records(3), -1);
            assert_eq!(a.error, ErrorCode::None);
            ends.push(a.last_offset + 1);
            let rm = rm.clone();
            let required = a.last_offset + 1;
            waiting.push(tokio::spawn(async move {
                rm.wait_for_high_watermarks(
                    &[(tp(0), required)],
                    Instant::now() + Duration::from_secs(10),
                )
                .await
            }));
        }
        settle().await;
        assert_eq!(ends, vec![3, 6, 9]);
        // Follower 2 reaches offset 1, then 3: the first step completes nothing and wakes
        // nobody, the second wakes and completes the first produce alone.
        for (step, (offset, woken, done)) in [(1, 0, 0), (3, 1, 1), (6, 2, 2), (9, 3, 3)]
            .into_iter()
            .enumerate()
        {
            let read = rm.read_for_follower(&image, &tp(0), 2, offset, 0, 1 << 20, -1);
            assert_eq!(read.error, ErrorCode::None);
            settle().await;
            assert_eq!(
                (
                    stats.wakeups(),
                    waiting.iter().filter(|w| w.is_finished()).count()
                ),
                (woken, done),
                "after step {step} (high watermark {offset}): wake-ups and produces completed",
            );
        }
        for w in waiting {
            assert_eq!(w.await.expect("task"), vec![ErrorCode::None]);
        }
        assert_eq!((stats.completed(), stats.expired()), (3, 0));
    });
}
