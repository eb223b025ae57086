//! Record-batch validation (storage's `LogValidator`, what Produce runs on every batch) on
//! arbitrary bytes. The first input byte picks the topic settings and whether to repair the
//! batch's length and CRC fields first — so that mutations of a valid batch (the corpus holds
//! valid batches of every codec, librdkafka's among them) get past the header to the records
//! and the decompressors, rather than stopping at a CRC mismatch. The rest is the Produce
//! partition's records.
//!
//! Must hold for every input: no panic, no hang, and memory bounded by the codecs' own limits
//! (zstd's window, at most 2^27 bytes; an lz4 frame's blocks, about 12 MiB; a raw snappy block,
//! at most the decompression cap) plus the 64 KiB scratch buffer — never by what the input
//! declares. Run with `-rss_limit_mb=512 -malloc_limit_mb=200`. An accepted batch comes back
//! as the same bytes (validation never rewrites).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rafka_protocol::record_batch::{crc32c, CRC_OFFSET, CRC_START, LENGTH_OFFSET, LOG_OVERHEAD};
use rafka_storage::config::CleanupPolicy;
use rafka_storage::{LogConfig, LogValidator};

/// The clock the validator runs with: around when the corpus's batches were written.
const NOW_MS: i64 = 1_765_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, batch)) = data.split_first() else {
        return;
    };
    let mut batch = batch.to_vec();
    if flags & 1 != 0 {
        repair(&mut batch);
    }
    let config = LogConfig {
        cleanup_policy: if flags & 2 != 0 {
            CleanupPolicy::COMPACT
        } else {
            CleanupPolicy::DELETE
        },
        log_append_time: flags & 4 != 0,
        message_timestamp_before_max_ms: if flags & 8 != 0 { 86_400_000 } else { i64::MAX },
        ..LogConfig::default()
    };
    let mut validator = LogValidator::new(&config, NOW_MS);
    // A smaller cap than the broker's 64 MiB, so that bombs are refused quickly.
    validator.max_decompressed_bytes = 16 << 20;
    let records = Bytes::from(batch);
    if let Ok(validated) = validator.validate(&"fuzz-0", &records) {
        assert_eq!(validated.bytes(), &records, "validation changed the bytes");
    }
});

/// Sets the first batch's batchLength to the bytes present and recomputes its CRC.
fn repair(batch: &mut [u8]) {
    if batch.len() < CRC_START {
        return;
    }
    let length = (batch.len() - LOG_OVERHEAD) as i32;
    batch[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c(&[&batch[CRC_START..]]);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}
