//! Reading a [`UnifiedLog`]: fetches as file slices ([`FetchDataInfo`]), ListOffsets by
//! timestamp ([`TimestampAndOffset`], inside compressed batches too), and the records of a
//! stored batch where records must be read ([`records_of`], which the log cleaner uses too).

use super::timestamp_search::{TimestampSearch, TimestampStep};
use super::{UnifiedLog, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, MAX_TIMESTAMP};
use crate::compression;
use crate::error::{Result, StorageError};
use crate::log_segment::{FileSlice, NO_TIMESTAMP};
use rafka_protocol::record::RecordIter;
use rafka_protocol::record_batch::{Compression, RecordBatch, TimestampType};
use std::path::Path;

/// What a read found: the batches as one file slice (empty when there is nothing to read yet).
#[derive(Debug, Clone)]
pub struct FetchDataInfo {
    /// The first batch's base offset (at or below the offset asked for).
    pub first_batch_offset: i64,
    pub slice: Option<FileSlice>,
}

impl FetchDataInfo {
    fn empty(offset: i64) -> FetchDataInfo {
        FetchDataInfo {
            first_batch_offset: offset,
            slice: None,
        }
    }

    pub fn len(&self) -> usize {
        self.slice.as_ref().map_or(0, |s| s.len as usize)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A timestamp lookup's answer: the record's timestamp and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampAndOffset {
    pub timestamp: i64,
    pub offset: i64,
    /// The leader epoch of the batch holding it (-1 when unknown).
    pub leader_epoch: i32,
}

/// The records of a stored batch, decompressed if need be (only where records must be read).
pub(crate) fn records_of(batch: &RecordBatch, limit: usize, dir: &Path) -> Result<RecordIter> {
    let corrupt = |what: String| StorageError::CorruptFile {
        path: dir.to_path_buf(),
        what: format!("batch at offset {}: {what}", batch.base_offset()),
    };
    let codec = batch.compression().map_err(|e| corrupt(e.to_string()))?;
    let count = usize::try_from(batch.record_count())
        .map_err(|_| corrupt("negative record count".into()))?;
    let data = if codec == Compression::None {
        batch.records_bytes()
    } else {
        compression::decompress(codec, &batch.records_bytes(), limit)
            .map_err(|e| corrupt(e.to_string()))?
    };
    Ok(RecordIter::new(data, count))
}

/// The largest timestamp of the records of `batch` with an offset at or above `min_offset`.
pub(super) fn max_record_timestamp_from(
    batch: &RecordBatch,
    min_offset: i64,
    limit: usize,
    dir: &Path,
) -> Result<Option<i64>> {
    if batch.last_offset() < min_offset {
        return Ok(None);
    }
    if batch.timestamp_type() == TimestampType::LogAppendTime {
        // Every record carries the batch's append time.
        return Ok(Some(batch.max_timestamp()));
    }
    let mut max = None;
    for r in records_of(batch, limit, dir)? {
        let r = r.map_err(|e| StorageError::CorruptFile {
            path: dir.to_path_buf(),
            what: e.to_string(),
        })?;
        if batch.base_offset() + i64::from(r.offset_delta) >= min_offset {
            max = max.max(Some(batch.base_timestamp() + r.timestamp_delta));
        }
    }
    Ok(max)
}

/// The first record of `batch` at or after `timestamp` with an offset at or above `min_offset`.
pub(super) fn first_record_at_or_after(
    batch: &RecordBatch,
    timestamp: i64,
    min_offset: i64,
    limit: usize,
    dir: &Path,
) -> Result<Option<TimestampAndOffset>> {
    let epoch = batch.partition_leader_epoch();
    if batch.timestamp_type() == TimestampType::LogAppendTime {
        // Every record carries the batch's append time.
        let offset = batch.base_offset().max(min_offset);
        return Ok(
            (batch.max_timestamp() >= timestamp && offset <= batch.last_offset()).then_some(
                TimestampAndOffset {
                    timestamp: batch.max_timestamp(),
                    offset,
                    leader_epoch: epoch,
                },
            ),
        );
    }
    for r in records_of(batch, limit, dir)? {
        let r = r.map_err(|e| StorageError::CorruptFile {
            path: dir.to_path_buf(),
            what: e.to_string(),
        })?;
        let ts = batch.base_timestamp() + r.timestamp_delta;
        let offset = batch.base_offset() + i64::from(r.offset_delta);
        if ts >= timestamp && offset >= min_offset {
            return Ok(Some(TimestampAndOffset {
                timestamp: ts,
                offset,
                leader_epoch: epoch,
            }));
        }
    }
    Ok(None)
}

impl UnifiedLog {
    /// Reads whole batches from `start_offset`: at most `max_bytes` (the first batch whole when
    /// `min_one_batch`), none at or above `max_offset` (the high watermark for consumers, the log
    /// end for followers). Offsets outside [log start, log end] are OFFSET_OUT_OF_RANGE.
    pub fn read(
        &mut self,
        start_offset: i64,
        max_bytes: u64,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<FetchDataInfo> {
        if start_offset < self.log_start_offset || start_offset > self.log_end_offset {
            return Err(StorageError::OffsetOutOfRange {
                partition: self.name(),
                offset: start_offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset,
            });
        }
        let max_offset = max_offset.min(self.log_end_offset);
        if start_offset >= max_offset {
            return Ok(FetchDataInfo::empty(start_offset));
        }
        let from = self
            .segments
            .range(..=start_offset)
            .next_back()
            .map(|(b, _)| *b)
            .unwrap_or(i64::MIN);
        for (_, seg) in self.segments.range_mut(from..) {
            if let Some((first, slice)) =
                seg.read(start_offset, max_bytes, max_offset, min_one_batch)?
            {
                if slice.len == 0 {
                    return Ok(FetchDataInfo::empty(start_offset));
                }
                return Ok(FetchDataInfo {
                    first_batch_offset: first.base_offset,
                    slice: Some(slice),
                });
            }
        }
        Ok(FetchDataInfo::empty(start_offset))
    }

    /// ListOffsets: `EARLIEST_TIMESTAMP` → the log start offset, `LATEST_TIMESTAMP` → the log end
    /// offset (the broker answers consumers with the high watermark), `MAX_TIMESTAMP` → the
    /// record with the largest timestamp, otherwise the first record (not batch) whose timestamp
    /// is at or above `timestamp` — inside compressed batches too — or `None`.
    pub fn fetch_offset_by_timestamp(
        &mut self,
        timestamp: i64,
    ) -> Result<Option<TimestampAndOffset>> {
        match timestamp {
            EARLIEST_TIMESTAMP => {
                let epoch = self
                    .leader_epoch_cache
                    .epoch_for_offset(self.log_start_offset)
                    .unwrap_or(-1);
                return Ok(Some(TimestampAndOffset {
                    timestamp: NO_TIMESTAMP,
                    offset: self.log_start_offset,
                    leader_epoch: epoch,
                }));
            }
            LATEST_TIMESTAMP => {
                let epoch = self.leader_epoch_cache.latest_epoch().unwrap_or(-1);
                return Ok(Some(TimestampAndOffset {
                    timestamp: NO_TIMESTAMP,
                    offset: self.log_end_offset,
                    leader_epoch: epoch,
                }));
            }
            t if t < 0 && t != MAX_TIMESTAMP => return Ok(None),
            _ => {}
        }
        // Both halves of the search here, under the caller's hold of the log.
        let mut search = TimestampSearch::new(timestamp);
        loop {
            match search.step(self)? {
                TimestampStep::Done(found) => return Ok(found),
                TimestampStep::Read(read) => {
                    if let Some(found) = search.read(read)? {
                        return Ok(Some(found));
                    }
                }
            }
        }
    }

    /// The most a compressed batch may inflate to when its records must be read.
    pub(super) fn decompression_limit(&self) -> usize {
        self.config.max_message_bytes.max(1 << 20) * 64
    }
}
