//! Consumer-group lag as this broker sees it: for each partition a group coordinated here has
//! committed, the partition's high watermark minus the committed offset.
//!
//! One place for it: the metrics (`consumer-group lag per group and partition`) and the console
//! read it from here. The end offset is the high watermark of the local replica — the leader's
//! own, or on a follower the last one its leader sent (at most one fetch behind) — so it is
//! known only where this broker hosts the partition; elsewhere it is `None`, and callers that
//! need it ask the partition's leader.

use super::GroupCoordinator;
use rafka_protocol::ErrorCode;
use rafka_storage::log_manager::lock_log;
use rafka_storage::TopicPartition;

/// One committed partition of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    /// The committed offset (the next record the group will read).
    pub committed: i64,
    /// The partition's high watermark on this broker, if it hosts a replica.
    pub end_offset: Option<i64>,
}

impl PartitionLag {
    /// Records between the committed offset and the high watermark (0 when the committed offset
    /// is ahead, as after a truncation), if the end is known.
    pub fn lag(&self) -> Option<i64> {
        self.end_offset.map(|end| (end - self.committed).max(0))
    }
}

impl GroupCoordinator {
    /// The lag of every partition `group` has committed, in (topic, partition) order; errors as
    /// OffsetFetch's (NOT_COORDINATOR where another broker coordinates it).
    pub fn lag(&self, group: &str) -> Result<Vec<PartitionLag>, ErrorCode> {
        let offsets = self.fetch_offsets(group)?;
        Ok(offsets
            .into_iter()
            .map(|((topic, partition), committed)| {
                let tp = TopicPartition::new(topic, partition);
                let end_offset = self
                    .replica_manager
                    .partition(&tp)
                    .map(|p| lock_log(&p.log).high_watermark());
                PartitionLag {
                    topic: tp.topic,
                    partition,
                    committed: committed.offset,
                    end_offset,
                }
            })
            .collect())
    }
}

/// A group's total lag: the sum over the partitions whose end is known, `None` if none is.
pub fn total_lag(partitions: &[PartitionLag]) -> Option<i64> {
    let mut known = partitions.iter().filter_map(PartitionLag::lag).peekable();
    known.peek()?;
    Some(known.sum())
}
