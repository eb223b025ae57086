//! Moving a [`UnifiedLog`]'s bounds: retention by time and size, removing deleted segments
//! once `file.delete.delay.ms` has passed, forgetting idle producers, DeleteRecords' log start offset, and truncation (a
//! follower whose log diverged, or one that starts again elsewhere).

use super::UnifiedLog;
use crate::error::{Result, StorageError};
use crate::log_segment::NO_TIMESTAMP;

impl UnifiedLog {
    /// Retention: deletes whole segments older than `retention.ms` (by their largest timestamp),
    /// beyond `retention.bytes`, or wholly below the log start offset — never at or above the
    /// high watermark. Deleted segments are renamed to `.deleted` and removed later
    /// ([`UnifiedLog::remove_deleted_segments`]). The log start offset advances. Returns how many
    /// segments were deleted.
    pub fn delete_old_segments(&mut self, now_ms: i64) -> Result<usize> {
        // A compacted log without `delete` in its policy keeps its segments whatever their age
        // or size (only the log start offset removes them), as Kafka's `deleteOldSegments`.
        let (retention_ms, retention_bytes) = if self.config.cleanup_policy.delete {
            (self.config.retention_ms, self.config.retention_bytes)
        } else {
            (-1, -1)
        };
        let mut excess = if retention_bytes >= 0 {
            self.size() as i64 - retention_bytes
        } else {
            0
        };
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        let mut to_delete = Vec::new();
        for (i, &base) in bases.iter().enumerate() {
            let next = bases.get(i + 1).copied().unwrap_or(self.log_end_offset);
            let seg = self
                .segments
                .get_mut(&base)
                .expect("invariant: listed segment");
            if seg.size() == 0 || next > self.high_watermark {
                break;
            }
            let by_start = next <= self.log_start_offset;
            let by_time = retention_ms >= 0
                && seg.max_timestamp_so_far() != NO_TIMESTAMP
                && now_ms - seg.max_timestamp_so_far() > retention_ms;
            let by_size = excess >= seg.size() as i64;
            if !(by_start || by_time || by_size) {
                break;
            }
            excess -= seg.size() as i64;
            to_delete.push((base, next));
        }
        if to_delete.len() == bases.len() {
            // Every segment goes: roll first so the log keeps an active segment.
            self.roll(now_ms)?;
        }
        let count = to_delete.len();
        for (base, next) in to_delete {
            if let Some(mut seg) = self.segments.remove(&base) {
                seg.mark_deleted()?;
                self.pending_deletes
                    .push((now_ms + self.config.file_delete_delay_ms, *seg));
            }
            self.log_start_offset = self.log_start_offset.max(next);
        }
        if count > 0 {
            self.leader_epoch_cache
                .truncate_from_start(self.log_start_offset)?;
            self.recovery_point = self.recovery_point.max(self.log_start_offset);
            self.producer_state.truncate_head(self.log_start_offset)?;
            tracing::info!(topic = %self.topic_partition.topic, partition = self.topic_partition.partition, offset = self.log_start_offset, segments = count, "deleted segments by retention");
        }
        Ok(count)
    }

    /// Forgets the producers idle for `expiration_ms` (`producer.id.expiration.ms`) without an
    /// open transaction, as Kafka's periodic `removeExpiredProducers`; how many went.
    pub fn remove_expired_producers(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        self.producer_state.remove_expired(now_ms, expiration_ms)
    }

    /// Removes `.deleted` segment files whose delay has passed.
    pub fn remove_deleted_segments(&mut self, now_ms: i64) -> Result<usize> {
        let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_deletes)
            .into_iter()
            .partition(|(at, _)| *at <= now_ms);
        self.pending_deletes = keep;
        let n = due.len();
        for (_, seg) in due {
            seg.delete_files()?;
        }
        Ok(n)
    }

    /// DeleteRecords: moves the log start offset forward (never past the high watermark);
    /// segments wholly below it go at the next retention pass.
    pub fn increment_log_start_offset(&mut self, offset: i64) -> Result<()> {
        if offset > self.high_watermark {
            return Err(StorageError::OffsetOutOfRange {
                partition: self.name(),
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.high_watermark,
            });
        }
        if offset > self.log_start_offset {
            self.log_start_offset = offset;
            self.leader_epoch_cache.truncate_from_start(offset)?;
            self.recovery_point = self.recovery_point.max(offset);
            self.producer_state.truncate_head(offset)?;
        }
        Ok(())
    }

    /// Removes every batch at or above `offset` (a follower whose log diverged). Returns whether
    /// anything was removed.
    pub fn truncate_to(&mut self, offset: i64, now_ms: i64) -> Result<bool> {
        if offset < 0 {
            return Err(StorageError::InvalidArgument {
                partition: self.name(),
                what: format!("cannot truncate to negative offset {offset}"),
            });
        }
        if offset >= self.log_end_offset {
            return Ok(false);
        }
        if offset < self.log_start_offset {
            self.truncate_fully_and_start_at(offset, now_ms)?;
            return Ok(true);
        }
        let doomed: Vec<i64> = self.segments.range(offset + 1..).map(|(b, _)| *b).collect();
        for base in doomed {
            if let Some(seg) = self.segments.remove(&base) {
                seg.delete_files()?;
            }
        }
        if self.segments.is_empty() {
            self.add_segment(offset, now_ms)?;
        }
        let max = self.config.segment_index_bytes;
        let active = self.active_segment();
        active.make_active(max)?;
        active.truncate_to(offset)?;
        self.log_end_offset = self.active_segment().read_next_offset()?;
        // The batch holding `offset` goes whole, so the log end can fall below the log start
        // (DeleteRecords moved it inside that batch): the start follows it down, as Kafka's
        // `logStartOffset = min(targetOffset, logStartOffset)`, never above the end.
        self.log_start_offset = self.log_start_offset.min(self.log_end_offset);
        self.high_watermark = self.high_watermark.min(self.log_end_offset);
        self.recovery_point = self.recovery_point.min(self.log_end_offset);
        self.truncations += 1;
        if self.roll_flush_up_to.is_some() {
            // The segments a roll closed above the new active one are gone; those below it are
            // still to be flushed.
            let active = self.active_segment().base_offset();
            self.roll_flush_up_to = Some(active);
        }
        self.leader_epoch_cache
            .truncate_from_end(self.log_end_offset)?;
        self.rebuild_producer_state()?;
        Ok(true)
    }

    /// Deletes everything and starts again, empty, at `offset`.
    pub fn truncate_fully_and_start_at(&mut self, offset: i64, now_ms: i64) -> Result<()> {
        for (_, seg) in std::mem::take(&mut self.segments) {
            seg.delete_files()?;
        }
        self.add_segment(offset, now_ms)?;
        self.log_start_offset = offset;
        self.log_end_offset = offset;
        self.high_watermark = offset;
        self.recovery_point = offset;
        self.truncations += 1;
        self.roll_flush_up_to = None;
        self.leader_epoch_cache.clear_and_flush()?;
        self.producer_state.truncate_fully(offset)?;
        Ok(())
    }
}
