//! Rolling and flushing a [`UnifiedLog`]: the roll that starts a new active segment and the
//! [`PendingFlush`] it leaves for the caller to run without the log's lock, flushes up to an
//! offset and the recovery point they advance, and closing the log. It also owns the flush
//! observer ([`set_flush_observer`]) the broker's log-flush metric installs.

use super::UnifiedLog;
use crate::error::Result;
use crate::log_segment::SegmentFiles;

/// The flush a roll leaves behind (Kafka's `flush-log` task that `roll` schedules): the files of
/// the segments from the recovery point's to the one just closed, to fsync without the log's
/// lock — the log keeps taking appends in its new segment meanwhile — and then the offset the
/// recovery point may advance to ([`UnifiedLog::complete_flush`]).
#[derive(Debug)]
#[must_use = "the recovery point advances only once the flush is run and completed"]
pub struct PendingFlush {
    files: Vec<SegmentFiles>,
    up_to: i64,
    truncations: u64,
}

impl PendingFlush {
    /// The offset the recovery point moves to once the files are durable.
    pub fn up_to(&self) -> i64 {
        self.up_to
    }

    /// fsyncs every file (blocking: on a thread that holds no lock of the log).
    pub fn run(&self) -> Result<()> {
        for f in &self.files {
            f.sync()?;
        }
        Ok(())
    }
}

/// Told how long each [`UnifiedLog::flush`] took (the broker's log-flush metric); set once per
/// process. Storage knows nothing of metrics: it only reports the time.
static FLUSH_OBSERVER: std::sync::OnceLock<fn(std::time::Duration)> = std::sync::OnceLock::new();

/// Installs the flush observer (the first call wins).
pub fn set_flush_observer(observe: fn(std::time::Duration)) {
    let _ = FLUSH_OBSERVER.set(observe);
}

impl UnifiedLog {
    /// Rolls a new active segment at the log end offset (if the active one is not empty).
    pub fn roll(&mut self, now_ms: i64) -> Result<()> {
        let leo = self.log_end_offset;
        self.roll_at(leo, now_ms)
    }

    /// Closes the active segment (its indexes trimmed) and starts one at `base`. The closed
    /// segment is not fsynced here, in the append that rolled, but by the flush the roll leaves
    /// behind ([`UnifiedLog::take_roll_flush`]), as Kafka schedules it; until that completes the
    /// recovery point stays where it was, so a crash rescans the segment.
    pub(super) fn roll_at(&mut self, base: i64, now_ms: i64) -> Result<()> {
        if self.active_segment().size() == 0 {
            return Ok(());
        }
        self.active_segment().on_become_inactive()?;
        tracing::info!(topic = %self.topic_partition.topic, partition = self.topic_partition.partition, offset = base, "rolled a new segment");
        self.add_segment(base, now_ms)?;
        self.roll_flush_up_to = Some(base);
        // Kafka snapshots producer state at every roll, so a restart replays one segment at most.
        self.producer_state.advance_to(base);
        self.producer_state.take_snapshot()?;
        Ok(())
    }

    /// Whether a roll left segments to flush ([`UnifiedLog::take_roll_flush`]).
    pub fn has_roll_flush(&self) -> bool {
        self.roll_flush_up_to
            .is_some_and(|up_to| up_to > self.recovery_point)
    }

    /// The flush the last roll left behind, if it is still needed: the files of every segment
    /// from the recovery point's to the newest closed one. Cheap (no I/O but opening a cold
    /// segment's file), for the caller to run without the log's lock and then hand back to
    /// [`UnifiedLog::complete_flush`].
    pub fn take_roll_flush(&mut self) -> Result<Option<PendingFlush>> {
        let Some(up_to) = self.roll_flush_up_to.take() else {
            return Ok(None);
        };
        if up_to <= self.recovery_point {
            return Ok(None);
        }
        // The epochs the flushed offsets were written in, before the recovery point can pass
        // them (once per new epoch at most; see `crate::leader_epoch`).
        self.leader_epoch_cache
            .flush()
            .inspect_err(|_| self.roll_flush_up_to = Some(up_to))?;
        let from = self.first_unflushed_segment();
        let files = self
            .segments
            .range_mut(from..up_to)
            .map(|(_, seg)| seg.files_to_sync())
            .collect::<Result<Vec<_>>>()
            .inspect_err(|_| self.roll_flush_up_to = Some(up_to))?;
        Ok(Some(PendingFlush {
            files,
            up_to,
            truncations: self.truncations,
        }))
    }

    /// Advances the recovery point to what `flush` made durable — unless the log was truncated
    /// since it was taken (what is below its offset now may be newer than what it synced; the
    /// next flush covers it).
    pub fn complete_flush(&mut self, flush: PendingFlush) {
        if flush.truncations == self.truncations {
            self.recovery_point = self
                .recovery_point
                .max(flush.up_to.min(self.log_end_offset));
        }
    }

    /// Gives a flush that failed back, to be taken again (the recovery point did not move).
    pub fn abandon_flush(&mut self, flush: PendingFlush) {
        if flush.truncations == self.truncations {
            self.roll_flush_up_to = self.roll_flush_up_to.max(Some(flush.up_to));
        }
    }

    /// fsyncs every segment holding offsets below `offset` (from the recovery point on) and
    /// advances the recovery point to it.
    /// The base offset of the segment holding the recovery point: the first that may hold
    /// writes not yet durable (every segment from it on is fsynced by a flush).
    fn first_unflushed_segment(&self) -> i64 {
        self.segments
            .range(..=self.recovery_point)
            .next_back()
            .map(|(b, _)| *b)
            .unwrap_or(i64::MIN)
    }

    pub fn flush(&mut self, offset: i64, now_ms: i64) -> Result<()> {
        let offset = offset.min(self.log_end_offset);
        if offset <= self.recovery_point {
            return Ok(());
        }
        let from = self.first_unflushed_segment();
        let start = std::time::Instant::now();
        for (_, seg) in self.segments.range_mut(from..offset) {
            seg.flush()?;
        }
        // The epochs of what is now below the recovery point (see `crate::leader_epoch`).
        self.leader_epoch_cache.flush()?;
        if let Some(observe) = FLUSH_OBSERVER.get() {
            observe(start.elapsed());
        }
        self.recovery_point = offset;
        self.unflushed_batches = 0;
        self.last_flush_ms = now_ms;
        Ok(())
    }

    /// A clean close: trims the indexes and releases files. The caller flushes first and writes
    /// the checkpoints and the clean-shutdown marker.
    pub fn close(&mut self) -> Result<()> {
        // The state at the log end, so the next start replays nothing.
        self.producer_state.advance_to(self.log_end_offset);
        self.producer_state.take_snapshot()?;
        self.leader_epoch_cache.flush()?;
        for seg in self.segments.values_mut() {
            seg.close()?;
        }
        Ok(())
    }

    /// [`UnifiedLog::close`] without any fsync, for a shutdown that then syncs the whole file
    /// system and calls [`UnifiedLog::mark_flushed`] with the offset returned (the log end at
    /// the close).
    pub fn close_unsynced(&mut self) -> Result<i64> {
        self.producer_state.advance_to(self.log_end_offset);
        self.producer_state.take_snapshot()?;
        self.leader_epoch_cache.flush_unsynced()?;
        for seg in self.segments.values_mut() {
            seg.close_unsynced()?;
        }
        Ok(self.log_end_offset)
    }

    /// Advances the recovery point to `offset` (at most the log end) once the caller has made
    /// everything below it durable by other means: a sync of the whole file system after
    /// [`UnifiedLog::close_unsynced`].
    pub fn mark_flushed(&mut self, offset: i64, now_ms: i64) {
        let offset = offset.min(self.log_end_offset);
        if offset > self.recovery_point {
            self.recovery_point = offset;
            self.unflushed_batches = 0;
            self.last_flush_ms = now_ms;
        }
    }
}
