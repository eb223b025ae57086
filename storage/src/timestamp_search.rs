//! `TimestampSearch`: ListOffsets by time (a timestamp, or MAX_TIMESTAMP) in two halves, so
//! that the reading and decompressing of batches happens without the log's lock.
//!
//! The half under the lock ([`TimestampSearch::step`]) only consults what the log keeps in
//! memory and walks batch headers through the indexes; it ends either with the answer or with
//! one batch to look into ([`BatchRead`]): its file (an open handle, readable whatever the log
//! does meanwhile), position and offsets. The other half ([`TimestampSearch::read`]) reads that
//! batch and decompresses it, without the lock (on a blocking thread, in the broker), then says
//! whether it holds the answer or the search must take another step.
//!
//! A batch read off the lock may have been truncated away meanwhile (a follower's truncation):
//! the read then finds other offsets, or too few bytes, and the search steps again from where
//! it was (at most [`MAX_RETRIES`] times in a row before giving up with the error).
//!
//! [`UnifiedLog::fetch_offset_by_timestamp`] runs both halves in one call, under one lock, for
//! callers that hold the log anyway.

use super::read::TimestampAndOffset;
use super::read::{first_record_at_or_after, max_record_timestamp_from};
use super::UnifiedLog;
use crate::error::{IoContext, Result, StorageError};
use crate::fs::LogFile;
use crate::log_segment::{BatchPosition, NO_TIMESTAMP};
use rafka_protocol::record_batch::RecordBatch;
use std::path::PathBuf;
use std::sync::Arc;

/// How many times in a row a batch may turn out to have changed under the search.
const MAX_RETRIES: u32 = 8;

/// Where a search stands.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// MAX_TIMESTAMP, before its largest timestamp is known.
    FindMax,
    /// MAX_TIMESTAMP, the largest timestamp over the headers known (and the batch holding the
    /// log start being read for its records' timestamps at or above it).
    MaxWithStraddling { header_max: Option<i64> },
    /// The first record at or after `timestamp` at an offset at or above `from_offset`.
    First { timestamp: i64, from_offset: i64 },
    /// No record at or above the log start has a timestamp.
    NotFound,
}

/// One search in progress; see the module docs.
#[derive(Debug)]
pub struct TimestampSearch {
    phase: Phase,
    retries: u32,
}

/// What a step under the lock ended with.
#[derive(Debug)]
pub enum TimestampStep {
    /// The answer (`None`: no such record).
    Done(Option<TimestampAndOffset>),
    /// Read this batch off the lock ([`TimestampSearch::read`]), then step again unless it
    /// answered.
    Read(BatchRead),
}

/// A batch to read and look into without the log's lock.
#[derive(Debug)]
pub struct BatchRead {
    file: Arc<dyn LogFile>,
    batch: BatchPosition,
    /// The log start offset when the step was taken: records below it do not count.
    min_offset: i64,
    /// The most the batch may inflate to.
    limit: usize,
    dir: PathBuf,
}

impl TimestampSearch {
    /// A search for the first record at or after `timestamp` (≥ 0), or for
    /// [`super::MAX_TIMESTAMP`]'s record.
    pub fn new(timestamp: i64) -> TimestampSearch {
        let phase = if timestamp == super::MAX_TIMESTAMP {
            Phase::FindMax
        } else {
            Phase::First {
                timestamp,
                from_offset: i64::MIN,
            }
        };
        TimestampSearch { phase, retries: 0 }
    }

    /// The half under the lock: the answer, or the next batch to read.
    pub fn step(&mut self, log: &mut UnifiedLog) -> Result<TimestampStep> {
        let lso = log.log_start_offset;
        let limit = log.decompression_limit();
        match self.phase {
            Phase::FindMax => {
                let (header_max, straddling) = header_max_timestamp(log)?;
                match straddling {
                    Some(read) => {
                        self.phase = Phase::MaxWithStraddling { header_max };
                        Ok(TimestampStep::Read(read))
                    }
                    None => self.start_first(header_max, log),
                }
            }
            Phase::MaxWithStraddling { .. } => {
                // A read that failed to find its batch: start over.
                self.phase = Phase::FindMax;
                self.step(log)
            }
            Phase::NotFound => Ok(TimestampStep::Done(None)),
            Phase::First {
                timestamp,
                from_offset,
            } => {
                let from = from_offset.max(lso);
                let bases: Vec<i64> = log.segments.keys().copied().collect();
                for (i, &base) in bases.iter().enumerate() {
                    if bases.get(i + 1).is_some_and(|&next| next <= from) {
                        continue; // wholly below where the search stands
                    }
                    let seg = log
                        .segments
                        .get_mut(&base)
                        .expect("invariant: listed segment");
                    if seg.size() == 0
                        || seg.max_timestamp_so_far() < timestamp
                            && seg.max_timestamp_so_far() != NO_TIMESTAMP
                    {
                        continue;
                    }
                    if let Some(b) = seg.find_batch_by_timestamp(timestamp, from)? {
                        return Ok(TimestampStep::Read(BatchRead {
                            file: seg.file()?,
                            batch: b,
                            min_offset: lso,
                            limit,
                            dir: log.dir.to_path_buf(),
                        }));
                    }
                }
                Ok(TimestampStep::Done(None))
            }
        }
    }

    /// MAX_TIMESTAMP: the largest timestamp known, the search goes on for its first record.
    fn start_first(&mut self, max: Option<i64>, log: &mut UnifiedLog) -> Result<TimestampStep> {
        match max {
            Some(timestamp) => {
                self.phase = Phase::First {
                    timestamp,
                    from_offset: i64::MIN,
                };
                self.step(log)
            }
            None => Ok(TimestampStep::Done(None)),
        }
    }

    /// The half off the lock: reads and looks into `read`'s batch. `Some` is the answer;
    /// `None` means step again.
    pub fn read(&mut self, read: BatchRead) -> Result<Option<TimestampAndOffset>> {
        let batch = match read.load() {
            Ok(Some(batch)) => {
                self.retries = 0;
                batch
            }
            Ok(None) => return self.retry(&read, None),
            Err(e) => return self.retry(&read, Some(e)),
        };
        match self.phase {
            Phase::First { timestamp, .. } => {
                let found = first_record_at_or_after(
                    &batch,
                    timestamp,
                    read.min_offset,
                    read.limit,
                    &read.dir,
                )?;
                if found.is_none() {
                    self.phase = Phase::First {
                        timestamp,
                        from_offset: read.batch.last_offset + 1,
                    };
                }
                Ok(found)
            }
            Phase::MaxWithStraddling { header_max } => {
                let m = max_record_timestamp_from(&batch, read.min_offset, read.limit, &read.dir)?;
                match header_max.max(m) {
                    Some(timestamp) => {
                        self.phase = Phase::First {
                            timestamp,
                            from_offset: i64::MIN,
                        };
                        Ok(None)
                    }
                    None => {
                        self.phase = Phase::NotFound;
                        Ok(None)
                    }
                }
            }
            Phase::FindMax | Phase::NotFound => Ok(None),
        }
    }

    /// The batch was not where the step saw it (truncated meanwhile): step again from where the
    /// search stands, a bounded number of times.
    fn retry(
        &mut self,
        read: &BatchRead,
        error: Option<StorageError>,
    ) -> Result<Option<TimestampAndOffset>> {
        self.retries += 1;
        if self.retries > MAX_RETRIES {
            return Err(error.unwrap_or_else(|| StorageError::CorruptFile {
                path: read.file.path().to_path_buf(),
                what: format!(
                    "batch at position {} kept changing during a timestamp search",
                    read.batch.position
                ),
            }));
        }
        Ok(None)
    }
}

impl BatchRead {
    /// The batch, or `None` if the file no longer holds it at that position.
    fn load(&self) -> Result<Option<RecordBatch>> {
        let path = self.file.path();
        let size = self.file.len().at(path)?;
        if self.batch.position + u64::from(self.batch.size) > size {
            return Ok(None);
        }
        let mut buf = vec![0; self.batch.size as usize];
        self.file
            .read_exact_at(&mut buf, self.batch.position)
            .at(path)?;
        let Ok(batch) = RecordBatch::parse(buf.into()) else {
            return Ok(None);
        };
        let same = batch.base_offset() == self.batch.base_offset
            && batch.last_offset() == self.batch.last_offset;
        Ok(same.then_some(batch))
    }
}

/// MAX_TIMESTAMP's first half: the largest timestamp over the batch headers of the segments at
/// or above the log start offset, and the batch holding the log start offset if it begins
/// below it (DeleteRecords moved the start inside it): only its records at or above the start
/// count, so it must be read.
fn header_max_timestamp(log: &mut UnifiedLog) -> Result<(Option<i64>, Option<BatchRead>)> {
    let lso = log.log_start_offset;
    let limit = log.decompression_limit();
    let bases: Vec<i64> = log.segments.keys().copied().collect();
    let mut max: Option<i64> = None;
    let mut straddling = None;
    for (i, &base) in bases.iter().enumerate() {
        if bases.get(i + 1).is_some_and(|&next| next <= lso) {
            continue; // wholly below the log start
        }
        let seg = log
            .segments
            .get_mut(&base)
            .expect("invariant: listed segment");
        if seg.size() == 0 || max.is_some_and(|m| seg.max_timestamp_so_far() <= m) {
            continue;
        }
        if base >= lso {
            max = Some(seg.max_timestamp_so_far());
            continue;
        }
        // The segment holding the log start: its batches from there.
        let Some(first) = seg.translate_offset(lso)? else {
            continue;
        };
        for b in seg.batches_from(first.position)? {
            if b.base_offset >= lso {
                max = max.max(Some(b.max_timestamp));
            } else {
                straddling = Some(BatchRead {
                    file: seg.file()?,
                    batch: b,
                    min_offset: lso,
                    limit,
                    dir: log.dir.to_path_buf(),
                });
            }
        }
    }
    Ok((max, straddling))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LogConfig;
    use crate::fs::DiskFs;
    use crate::unified_log::LogCheckpoints;
    use crate::TopicPartition;
    use bytes::Bytes;
    use rafka_protocol::record_batch::{
        Compression, RecordBatchBuilder, ATTRIBUTES_OFFSET, CRC_OFFSET, LENGTH_OFFSET,
        LOG_OVERHEAD, RECORD_BATCH_OVERHEAD,
    };

    /// A zstd batch of records at `times` (the compressed form a client would send).
    fn zstd_batch(times: &[i64]) -> Bytes {
        let mut b = RecordBatchBuilder::new(0);
        for &t in times {
            b.append(t, Some(b"k"), Some(&[1; 64]), &[]).expect("fits");
        }
        let plain = b.build();
        let payload =
            crate::compression::compress(Compression::Zstd, &plain[RECORD_BATCH_OVERHEAD..])
                .expect("compress");
        let mut out = plain[..RECORD_BATCH_OVERHEAD].to_vec();
        out.extend_from_slice(&payload);
        let length = (out.len() - LOG_OVERHEAD) as i32;
        out[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&length.to_be_bytes());
        let attributes = i16::from(Compression::Zstd.id());
        out[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
        let crc = rafka_protocol::record_batch::crc32c(&[&out[ATTRIBUTES_OFFSET..]]);
        out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(out)
    }

    fn log(dir: &std::path::Path) -> UnifiedLog {
        UnifiedLog::open(
            Arc::new(DiskFs),
            dir,
            TopicPartition::new("t", 0),
            LogConfig::default(),
            LogCheckpoints::default(),
            0,
        )
        .expect("open")
    }

    /// The read half needs no log at all (it cannot take the lock), and finds a record inside
    /// a compressed batch; MAX_TIMESTAMP goes through the same halves.
    #[test]
    fn the_batch_is_read_and_decompressed_apart_from_the_log() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut log = log(dir.path());
        log.append_as_leader(&zstd_batch(&[10, 20, 30]), 0, 0)
            .expect("append");
        log.append_as_leader(&zstd_batch(&[40, 55, 50]), 0, 0)
            .expect("append");
        let mut search = TimestampSearch::new(45);
        let TimestampStep::Read(read) = search.step(&mut log).expect("step") else {
            panic!("a compressed batch must be read");
        };
        assert_eq!(read.batch.base_offset, 3);
        // The log may change meanwhile: appends go on without waiting for the search.
        log.append_as_leader(&zstd_batch(&[60]), 0, 0)
            .expect("append during the search");
        let found = search.read(read).expect("read").expect("found");
        assert_eq!((found.offset, found.timestamp), (4, 55));
        assert_eq!(
            log.fetch_offset_by_timestamp(crate::unified_log::MAX_TIMESTAMP)
                .expect("max")
                .map(|t| (t.offset, t.timestamp)),
            Some((6, 60))
        );
    }

    /// A batch truncated away between the two halves is not answered from: the search steps
    /// again and finds what the log holds now.
    #[test]
    fn a_batch_truncated_between_the_halves_is_searched_again() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut log = log(dir.path());
        log.append_as_leader(&zstd_batch(&[10, 20]), 0, 0)
            .expect("append");
        log.append_as_leader(&zstd_batch(&[30, 40]), 0, 0)
            .expect("append");
        let mut search = TimestampSearch::new(35);
        let TimestampStep::Read(read) = search.step(&mut log).expect("step") else {
            panic!("a compressed batch must be read");
        };
        log.truncate_to(2, 0).expect("truncate");
        assert_eq!(search.read(read).expect("read"), None, "step again");
        // Another batch now lies where the old one was: a different one, not mistaken for it.
        log.append_as_leader(&zstd_batch(&[36, 37, 38]), 0, 0)
            .expect("append");
        let TimestampStep::Read(read) = search.step(&mut log).expect("step") else {
            panic!("the new batch must be read");
        };
        let found = search.read(read).expect("read").expect("found");
        assert_eq!((found.offset, found.timestamp), (2, 36));
    }
}
