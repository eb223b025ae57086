//! DescribeLogDirs: for each log directory, its partitions (all, or those the request names)
//! with their size in bytes, offset lag (`max(high watermark − log end, 0)`, as Kafka's
//! `getLogEndOffsetLag`: 0 for a leader) and `is_future_key` false (no replica moves between
//! directories); v4 adds the file system's total and usable bytes (`statvfs`). A directory whose
//! file system cannot be read answers KAFKA_STORAGE_ERROR on its own. Directories are reported
//! by absolute path, as Kafka does.
//!
//! Locking every log and `statvfs` can wait on the disk: the work runs on a blocking thread.

use super::kafka_apis::KafkaApis;
use crate::network::RequestContext;
use rafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use rafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::AclOperation;
use rafka_storage::log_manager::lock_log;
use rafka_storage::{LogManager, TopicPartition};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    req: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    // CLUSTER DESCRIBE, else CLUSTER_AUTHORIZATION_FAILED and no directories (Kafka).
    if !apis.authorize_cluster(ctx, AclOperation::Describe) {
        return DescribeLogDirsResponse {
            error_code: rafka_protocol::ErrorCode::ClusterAuthorizationFailed.code(),
            ..Default::default()
        };
    }
    // Null topics: every partition.
    let wanted: Option<BTreeSet<TopicPartition>> = req.topics.map(|topics| {
        topics
            .into_iter()
            .flat_map(|t| {
                t.partitions.into_iter().map(move |p| TopicPartition {
                    topic: t.topic.clone(),
                    partition: p,
                })
            })
            .collect()
    });
    let lm = apis.replica_manager.log_manager().clone();
    let results =
        match tokio::task::spawn_blocking(move || describe_log_dirs(&lm, wanted.as_ref())).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "describing log directories failed");
                return DescribeLogDirsResponse {
                    error_code: ErrorCode::UnknownServerError.code(),
                    ..Default::default()
                };
            }
        };
    DescribeLogDirsResponse {
        results,
        ..Default::default()
    }
}

/// Kafka's `ReplicaManager.describeLogDirs`.
pub fn describe_log_dirs(
    lm: &LogManager,
    wanted: Option<&BTreeSet<TopicPartition>>,
) -> Vec<DescribeLogDirsResult> {
    // Which directory each wanted log lives in.
    let mut by_dir: BTreeMap<&Path, Vec<TopicPartition>> = BTreeMap::new();
    let placed: Vec<(std::path::PathBuf, TopicPartition)> = lm
        .partitions()
        .into_iter()
        .filter(|tp| wanted.is_none_or(|w| w.contains(tp)))
        .filter_map(|tp| Some((lm.log_dir_of(&tp)?, tp)))
        .collect();
    for (dir, tp) in &placed {
        by_dir.entry(dir.as_path()).or_default().push(tp.clone());
    }
    lm.dirs()
        .iter()
        .map(|dir| {
            let log_dir = std::path::absolute(dir)
                .unwrap_or_else(|_| dir.clone())
                .display()
                .to_string();
            let (total_bytes, usable_bytes) = match disk_space(dir) {
                Ok(space) => space,
                Err(e) => {
                    tracing::warn!(dir = %log_dir, error = %e, "cannot read the log directory's file system");
                    return DescribeLogDirsResult {
                        error_code: ErrorCode::KafkaStorageError.code(),
                        log_dir,
                        ..Default::default()
                    };
                }
            };
            let mut topics: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
            for tp in by_dir.get(dir.as_path()).into_iter().flatten() {
                let Some(log) = lm.get_log(tp) else { continue };
                let log = lock_log(&log);
                topics
                    .entry(tp.topic.clone())
                    .or_default()
                    .push(DescribeLogDirsPartition {
                        partition_index: tp.partition,
                        partition_size: i64::try_from(log.size()).unwrap_or(i64::MAX),
                        offset_lag: (log.high_watermark() - log.log_end_offset()).max(0),
                        is_future_key: false,
                        ..Default::default()
                    });
            }
            DescribeLogDirsResult {
                error_code: 0,
                log_dir,
                topics: topics
                    .into_iter()
                    .map(|(name, partitions)| DescribeLogDirsTopic {
                        name,
                        partitions,
                        ..Default::default()
                    })
                    .collect(),
                total_bytes,
                usable_bytes,
                ..Default::default()
            }
        })
        .collect()
}

/// The file system's total and usable bytes (Java's `FileStore.getTotalSpace` /
/// `getUsableSpace`: blocks × fragment size, usable counting what an unprivileged user may use).
fn disk_space(dir: &Path) -> std::io::Result<(i64, i64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string that outlives the call, and `st` points to
    // writable memory the size of a `statvfs`, which the call fills on success.
    let rc = unsafe { libc::statvfs(path.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it initialised `st`.
    let st = unsafe { st.assume_init() };
    let frsize = st.f_frsize as u128;
    let clamp = |blocks: u128| i64::try_from(blocks * frsize).unwrap_or(i64::MAX);
    Ok((clamp(st.f_blocks as u128), clamp(st.f_bavail as u128)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rafka_protocol::record_batch::RecordBatchBuilder;
    use rafka_storage::{DiskFs, LogConfig};
    use std::sync::Arc;

    fn tp(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.to_owned(),
            partition,
        }
    }

    fn batch(records: usize) -> bytes::Bytes {
        let mut b = RecordBatchBuilder::new(0);
        for i in 0..records {
            b.append(1_700_000_000_000 + i as i64, None, Some(&[7u8; 100]), &[])
                .expect("record fits");
        }
        b.build()
    }

    #[test]
    fn sizes_per_directory_and_partition() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dirs = vec![tmp.path().join("a"), tmp.path().join("b")];
        let lm = LogManager::open(Arc::new(DiskFs), &dirs, &|_| LogConfig::default(), 0)
            .expect("log manager");
        let mut appended = BTreeMap::new();
        for (p, batches) in [(tp("t", 0), 3usize), (tp("t", 1), 1), (tp("u", 0), 0)] {
            let log = lm
                .get_or_create_log(&p, LogConfig::default(), 0)
                .expect("log created");
            let mut log = lock_log(&log);
            let mut bytes = 0;
            for _ in 0..batches {
                let b = batch(5);
                bytes += b.len() as i64;
                // Appended "now" for the batch's timestamps (1.7e12): validation checks them.
                log.append_as_leader(&b, 0, 1_700_000_000_000)
                    .expect("append");
            }
            let leo = log.log_end_offset();
            log.set_high_watermark(leo);
            appended.insert(p, bytes);
        }
        let out = describe_log_dirs(&lm, None);
        assert_eq!(out.len(), 2);
        let mut seen = BTreeMap::new();
        for r in &out {
            assert_eq!(r.error_code, 0);
            assert!(Path::new(&r.log_dir).is_absolute(), "{}", r.log_dir);
            assert!(r.total_bytes > 0 && r.usable_bytes >= 0 && r.usable_bytes <= r.total_bytes);
            for t in &r.topics {
                for p in &t.partitions {
                    assert_eq!(p.offset_lag, 0);
                    assert!(!p.is_future_key);
                    seen.insert(tp(&t.name, p.partition_index), p.partition_size);
                }
            }
        }
        assert_eq!(seen, appended);
        assert!(appended[&tp("t", 0)] > 1500, "three batches of 5×100 bytes");
        // Spread over both directories, each partition in the directory the manager chose.
        for r in &out {
            let dir = dirs
                .iter()
                .find(|d| std::path::absolute(d).expect("abs").display().to_string() == r.log_dir)
                .expect("a configured dir");
            for t in &r.topics {
                for p in &t.partitions {
                    assert_eq!(
                        lm.log_dir_of(&tp(&t.name, p.partition_index)).as_ref(),
                        Some(dir)
                    );
                }
            }
        }
        // Only what was asked for; a partition this broker has no log for is left out.
        let wanted: BTreeSet<TopicPartition> = [tp("t", 1), tp("nope", 0)].into_iter().collect();
        let out = describe_log_dirs(&lm, Some(&wanted));
        let listed: Vec<(String, i32, i64)> = out
            .iter()
            .flat_map(|r| &r.topics)
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.clone(), p.partition_index, p.partition_size))
            })
            .collect();
        assert_eq!(listed, [("t".to_owned(), 1, appended[&tp("t", 1)])]);
    }

    #[test]
    fn unreadable_directory_is_a_storage_error() {
        assert!(disk_space(Path::new("/no/such/rafka/dir")).is_err());
    }
}
