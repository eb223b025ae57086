//! Reading the records of a batch, whatever its codec: a compressed batch is decompressed (by
//! the storage crate's bounded decompressors) before its records are iterated.

use rafka_protocol::record::{Record, RecordIter};
use rafka_protocol::record_batch::{Compression, RecordBatch};

/// The most a batch may decompress to here.
pub const MAX_DECOMPRESSED_BYTES: usize = 64 << 20;

/// The records of `batch`.
pub fn records(batch: &RecordBatch) -> Result<Vec<Record>, String> {
    let codec = batch.compression().map_err(|e| e.to_string())?;
    if codec == Compression::None {
        return batch
            .records()
            .map_err(|e| e.to_string())?
            .map(|r| r.map_err(|e| e.to_string()))
            .collect();
    }
    let data = rafka_storage::compression::decompress(
        codec,
        &batch.records_bytes(),
        MAX_DECOMPRESSED_BYTES,
    )
    .map_err(|e| format!("batch at offset {}: {e}", batch.base_offset()))?;
    let count = usize::try_from(batch.record_count()).map_err(|_| {
        format!(
            "batch at offset {}: negative record count {}",
            batch.base_offset(),
            batch.record_count()
        )
    })?;
    RecordIter::new(data, count)
        .map(|r| r.map_err(|e| format!("batch at offset {}: {e}", batch.base_offset())))
        .collect()
}
