//! What [`UnifiedLog`] gives the log cleaner and takes back from it: a [`CleanableView`] of
//! the log, read under its lock and then used without it, and the swap of cleaned segments
//! into the log ([`UnifiedLog::replace_segments`]).
//!
//! The cleaning itself — the offset map, the rewrite, the plan — is [`crate::log_cleaner`]'s,
//! which re-exports the types here; this module owns only the log's side of the exchange.

use super::UnifiedLog;
use crate::config::LogConfig;
use crate::error::Result;
use crate::fs::LogFile;
use crate::log_segment::{LogSegment, SWAP_SUFFIX};
use crate::transaction_index::AbortedTxn;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The most aborted transactions one clean tracks (32 bytes each in memory).
pub const MAX_ABORTED_TXNS_PER_CLEAN: usize = 1_000_000;

/// A non-active segment as the cleaner reads it, without the log's lock: its file stays
/// readable whatever the log does meanwhile (a deleted file stays open).
#[derive(Debug, Clone)]
pub struct InactiveSegment {
    pub base_offset: i64,
    /// The next segment's base offset: where this segment's offsets end.
    pub end_offset: i64,
    pub size: u64,
    /// The largest timestamp in the segment ([`crate::log_segment::NO_TIMESTAMP`] if unknown).
    pub max_timestamp: i64,
    pub file: Arc<dyn LogFile>,
}

/// A log as the cleaner plans a clean of it ([`UnifiedLog::cleanable_view`]).
///
/// [`UnifiedLog::cleanable_view`]: crate::UnifiedLog::cleanable_view
#[derive(Debug, Clone)]
pub struct CleanableView {
    pub dir: PathBuf,
    pub config: LogConfig,
    /// Every segment but the active one, in offset order.
    pub segments: Vec<InactiveSegment>,
    pub log_start_offset: i64,
    pub high_watermark: i64,
    /// The log's truncation counter: a swap is refused if it moved.
    pub truncations: u64,
    /// Each active idempotent producer's last offset: its last batch is kept (emptied if need
    /// be), as Kafka keeps it, so that its state can be rebuilt from the log.
    pub producer_last_offsets: HashMap<i64, i64>,
    /// The first offset of the oldest transaction still open or unreplicated: nothing from it
    /// on is cleaned.
    pub first_unstable_offset: Option<i64>,
    /// The aborted transactions of the whole log (from every `.txnindex`), in marker order;
    /// `None` if there are more than [`MAX_ABORTED_TXNS_PER_CLEAN`].
    pub aborted_txns: Option<Vec<AbortedTxn>>,
}

impl UnifiedLog {
    /// For the log cleaner: every segment but the active one, with its file, and the offsets
    /// that bound a clean — taken under the log's lock, read without it.
    pub fn cleanable_view(&mut self) -> Result<CleanableView> {
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        let mut segments = Vec::with_capacity(bases.len().saturating_sub(1));
        for pair in bases.windows(2) {
            let seg = self
                .segments
                .get_mut(&pair[0])
                .expect("invariant: listed segment");
            segments.push(InactiveSegment {
                base_offset: pair[0],
                end_offset: pair[1],
                size: seg.size(),
                max_timestamp: seg.max_timestamp_so_far(),
                file: seg.file()?,
            });
        }
        Ok(CleanableView {
            dir: self.dir.to_path_buf(),
            config: LogConfig::clone(&self.config),
            segments,
            log_start_offset: self.log_start_offset,
            high_watermark: self.high_watermark,
            truncations: self.truncations,
            producer_last_offsets: self
                .producer_state
                .active_producers()
                .iter()
                .map(|e| (e.producer_id, e.last_offset()))
                .collect(),
            first_unstable_offset: self.producer_state.first_unstable_offset(),
            aborted_txns: {
                let limit = MAX_ABORTED_TXNS_PER_CLEAN;
                let all = self.collect_aborted_txns(self.log_start_offset, i64::MAX, limit + 1)?;
                (all.len() <= limit).then_some(all)
            },
        })
    }

    /// The log cleaner's swap (Kafka's `replaceSegments`): `cleaned` (its files `.cleaned`,
    /// fsynced) takes the place of the segments `old` lists by base offset and size. Refused —
    /// `cleaned` deleted, `false` returned — if the log was truncated since `truncations` was
    /// read or any of those segments is gone, changed size, or is the active one. Otherwise the
    /// files go `.cleaned` → `.swap`, the old segments `.deleted` (removed after
    /// `file.delete.delay.ms`), then `.swap` → final, so that a crash at any point leaves what
    /// [`crate::log_loader::complete_interrupted_swaps`] finishes.
    pub fn replace_segments(
        &mut self,
        mut cleaned: LogSegment,
        old: &[(i64, u64)],
        truncations: u64,
        now_ms: i64,
    ) -> Result<bool> {
        let active = *self
            .segments
            .keys()
            .next_back()
            .expect("invariant: a log has a segment");
        let unchanged = truncations == self.truncations
            && old.iter().all(|&(base, size)| {
                base != active && self.segments.get(&base).map(|s| s.size()) == Some(size)
            });
        if !unchanged {
            cleaned.delete_files()?;
            return Ok(false);
        }
        cleaned.change_suffix(SWAP_SUFFIX)?;
        for &(base, _) in old {
            if let Some(mut seg) = self.segments.remove(&base) {
                seg.mark_deleted()?;
                self.pending_deletes
                    .push((now_ms + self.config.file_delete_delay_ms, *seg));
            }
        }
        cleaned.change_suffix("")?;
        cleaned.set_handles(self.handles.clone());
        self.segments
            .insert(cleaned.base_offset(), Box::new(cleaned));
        Ok(true)
    }
}
