//! [`SegmentBatches`]: the whole batches of a segment file, read forward a chunk at a time
//! without the log's lock (a file deleted meanwhile stays readable while open). The log cleaner
//! reads the segments it cleans with it, loading reads an interrupted swap's `.log.swap` file
//! with it ([`crate::log_loader::complete_interrupted_swaps`]), and recovery reads a segment's
//! bytes through it ([`crate::LogSegment::recover`]).
//!
//! It owns no format: each batch is checked by its length field and parsed as a
//! [`RecordBatch`] view; nothing is validated beyond that.

use crate::error::{IoContext, Result, StorageError};
use crate::fs::LogFile;
use bytes::Bytes;
use rafka_protocol::record_batch::{
    RecordBatch, LENGTH_OFFSET, LOG_OVERHEAD, RECORD_BATCH_OVERHEAD,
};
use std::sync::Arc;

/// How much of a segment is read at once.
const READ_CHUNK: u64 = 1 << 20;

/// Whole batches of a segment file read forward a chunk (1 MiB) at a time; each batch a
/// slice of its chunk.
pub(crate) struct SegmentBatches {
    file: Arc<dyn LogFile>,
    size: u64,
    position: u64,
    chunk: Bytes,
    chunk_start: u64,
}

impl SegmentBatches {
    pub(crate) fn of_file(file: Arc<dyn LogFile>, size: u64) -> SegmentBatches {
        SegmentBatches {
            file,
            size,
            position: 0,
            chunk: Bytes::new(),
            chunk_start: 0,
        }
    }

    pub(crate) fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.position + RECORD_BATCH_OVERHEAD as u64 > self.size {
            return Ok(None);
        }
        let head = self.bytes(self.position, LOG_OVERHEAD)?;
        let length = i32::from_be_bytes(
            head[LENGTH_OFFSET..LENGTH_OFFSET + 4]
                .try_into()
                .expect("invariant: 4 bytes"),
        );
        let size = LOG_OVERHEAD as i64 + i64::from(length);
        let path = self.file.path().to_path_buf();
        if size < RECORD_BATCH_OVERHEAD as i64 || self.position + size as u64 > self.size {
            return Err(StorageError::CorruptFile {
                path,
                what: format!(
                    "batch at position {} has invalid length {length}",
                    self.position
                ),
            });
        }
        let bytes = self.bytes(self.position, size as usize)?;
        self.position += size as u64;
        RecordBatch::parse(bytes)
            .map(Some)
            .map_err(|e| StorageError::CorruptFile {
                path,
                what: e.to_string(),
            })
    }

    /// `len` bytes at `at` (within the file's `size`), sliced from the chunk holding them,
    /// which is read when they are not all in the current one (at least 1 MiB, or `len`, up to
    /// the file's end). Recovery reads its batches with it after checking each length itself.
    pub(crate) fn bytes(&mut self, at: u64, len: usize) -> Result<Bytes> {
        let chunk_end = self.chunk_start + self.chunk.len() as u64;
        if at < self.chunk_start || at + len as u64 > chunk_end {
            let want = (len as u64).max(READ_CHUNK).min(self.size - at) as usize;
            let mut buf = vec![0; want];
            self.file.read_exact_at(&mut buf, at).at(self.file.path())?;
            self.chunk = Bytes::from(buf);
            self.chunk_start = at;
        }
        let from = (at - self.chunk_start) as usize;
        Ok(self.chunk.slice(from..from + len))
    }
}
