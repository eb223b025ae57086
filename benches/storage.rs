//! Storage benches (`cargo bench --bench storage`), on the real disk under `target/tmp`.
//!
//! - `append/{16KiB,1MiB}`: `UnifiedLog::append_as_leader` of one batch of that size (validation
//!   with the CRC, offset assignment, header rewrite, `pwritev`, index upkeep), against a plain
//!   `write(2)` of the same bytes (`File::write_all`) in the same run; both as bytes per second,
//!   so the log's overhead is their ratio. Both write to the page cache (no fsync). Every 256 MiB
//!   the log is truncated (and the file cut to 0), outside the timing, so the disk does not fill;
//!   segments are 1 GiB, so no roll happens in the timing (a roll no longer fsyncs inline, but
//!   still creates three files and trims two indexes). The leader epoch is recorded outside the
//!   timing too (after the open and after each cut, which empties the epoch cache): that is a
//!   once-per-leadership checkpoint write with fsync, which on a busy disk made the first append
//!   after each cut take up to a tenth of a second, and the 1 MiB figure swing with it.
//! - `append_paired/{16KiB,1MiB}`: the same two writes alternating inside one timed loop; the
//!   ratio of the two over the same iterations is printed (the figure for the 0.9 goal).
//! - `offset_index_lookup/1M_entries`: `OffsetIndex::lookup` of random offsets in an index of 1M
//!   entries (8 MB, memory-mapped).
//! - `read/{one_batch,1MiB}`: `UnifiedLog::read` from random offsets of a 100-segment log
//!   (1 KiB batches): the time per call to find the position and size the slice (the data is
//!   not copied: the slice is for `sendfile`). `one_batch` asks for 1 byte (the first batch
//!   whole), `1MiB` for Kafka's default `max.partition.fetch.bytes`.
//! - `validate/{none,gzip,snappy,lz4,zstd}/{100B,1KiB,16KiB}/{header,records}`: the produce path's
//!   validation of one 1 MiB batch (librdkafka's `batch.size` is 1000000) of records with values
//!   of that size, text-like so that they compress 3-4x: `header` is what Produce checked before
//!   record validation (magic, CRC, counts: `RecordBatch::validate_header`), `records` the
//!   `LogValidator` in full (header, then every record walked, a compressed batch streamed
//!   through its decompressor into the 64 KiB scratch buffer). Throughput is in uncompressed
//!   record bytes, so figures compare across codecs.
//! - `decompress_stream/{gzip,snappy,lz4,zstd}/{1KiB,16KiB}`: the floor for the compressed
//!   `records` rows — the same payload streamed through the same decompressor into a 64 KiB
//!   buffer, the bytes discarded (`compression::decompress_stream`), nothing else.
//! - `recovery/1GiB`: `UnifiedLog::open` after an unclean shutdown with recovery point 0 on a
//!   1 GiB log of 16 KiB batches, written once: every batch is read, CRC-checked and indexed.
//!   The log was just written, so it is read from the page cache: this is the CPU cost, not the
//!   disk's.

#[path = "common/text.rs"]
mod text;
use text::text;

use bytes::Bytes;
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use rafka_protocol::record_batch::{
    crc32c, Compression, RecordBatch, RecordBatchBuilder, ATTRIBUTES_OFFSET, CRC_OFFSET, CRC_START,
    LENGTH_OFFSET, LOG_OVERHEAD, RECORDS_OFFSET,
};
use rafka_storage::compression;
use rafka_storage::log_validator::SCRATCH_BYTES as LOG_VALIDATOR_SCRATCH;
use rafka_storage::{
    DiskFs, LogCheckpoints, LogConfig, LogValidator, OffsetIndex, TopicPartition, UnifiedLog,
};
use std::hint::black_box;
use std::io::{Seek, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const NOW_MS: i64 = 1_700_000_000_000;
const LEADER_EPOCH: i32 = 1;
/// Written before the log (or file) is cut back to empty.
const WRAP_BYTES: u64 = 256 << 20;

/// A scratch directory on the disk `target/` is on (not a tmpfs).
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("rafka-bench-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("scratch dir")
}

/// One uncompressed batch of about `size` bytes (records of 1000-byte values).
fn batch_of(size: usize) -> Bytes {
    let mut b = RecordBatchBuilder::new(0);
    let value = vec![0x5a; 1000];
    let mut ts = NOW_MS;
    loop {
        b.append(ts, Some(b"key"), Some(&value), &[])
            .expect("record fits");
        ts += 1;
        if b.build().len() + 1020 > size {
            return b.build();
        }
    }
}

fn open_log(dir: &Path, config: LogConfig, checkpoints: LogCheckpoints) -> UnifiedLog {
    UnifiedLog::open(
        Arc::new(DiskFs),
        dir,
        TopicPartition::new("bench", 0),
        config,
        checkpoints,
        NOW_MS,
    )
    .expect("open log")
}

/// Kafka's defaults (1 GiB segments) but batches up to 2 MiB. The append bench wraps at 256 MiB,
/// so it never rolls (see `append`).
fn big_batches() -> LogConfig {
    LogConfig {
        max_message_bytes: 2 << 20,
        ..LogConfig::default()
    }
}

/// The log under the append benches: a new epoch recorded outside the timing, and cut back to
/// empty every [`WRAP_BYTES`] (outside the timing too).
struct LogTarget {
    log: UnifiedLog,
    written: u64,
}

impl LogTarget {
    fn open(dir: &Path) -> LogTarget {
        let mut t = LogTarget {
            log: open_log(dir, big_batches(), LogCheckpoints::default()),
            written: 0,
        };
        t.new_epoch();
        t
    }

    fn new_epoch(&mut self) {
        let leo = self.log.log_end_offset();
        self.log
            .leader_epoch_cache_mut()
            .assign(LEADER_EPOCH, leo)
            .expect("epoch")
    }

    /// One timed append.
    fn append(&mut self, batch: &Bytes) -> Duration {
        if self.written >= WRAP_BYTES {
            self.log
                .truncate_fully_and_start_at(0, NOW_MS)
                .expect("truncate");
            self.new_epoch();
            self.written = 0;
        }
        let start = Instant::now();
        black_box(
            self.log
                .append_as_leader(batch, LEADER_EPOCH, NOW_MS)
                .expect("append"),
        );
        let spent = start.elapsed();
        self.written += batch.len() as u64;
        spent
    }
}

/// The reference: a plain file written with `write(2)`, cut to 0 every [`WRAP_BYTES`] (outside
/// the timing).
struct FileTarget {
    file: std::fs::File,
    written: u64,
}

impl FileTarget {
    fn create(path: &Path) -> FileTarget {
        FileTarget {
            file: std::fs::File::create(path).expect("file"),
            written: 0,
        }
    }

    /// One timed write.
    fn write(&mut self, batch: &Bytes) -> Duration {
        if self.written >= WRAP_BYTES {
            self.file.set_len(0).expect("truncate");
            self.file.rewind().expect("rewind");
            self.written = 0;
        }
        let start = Instant::now();
        self.file.write_all(batch).expect("write");
        let spent = start.elapsed();
        self.written += batch.len() as u64;
        spent
    }
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    for (name, size) in [("16KiB", 16 << 10), ("1MiB", 1 << 20)] {
        let batch = batch_of(size);
        g.throughput(Throughput::Bytes(batch.len() as u64));
        let tmp = scratch();
        let mut log = LogTarget::open(&tmp.path().join("bench-0"));
        g.bench_with_input(BenchmarkId::new("unified_log", name), &batch, |b, batch| {
            b.iter_custom(|iters| (0..iters).map(|_| log.append(batch)).sum())
        });
        drop(log);
        let mut file = FileTarget::create(&tmp.path().join("plain"));
        g.bench_with_input(BenchmarkId::new("write_all", name), &batch, |b, batch| {
            b.iter_custom(|iters| (0..iters).map(|_| file.write(batch)).sum())
        });
    }
    g.finish();
}

/// The same two writes as `append`, paired: every iteration appends the batch to the log and
/// writes it to the plain file, the order alternating, so that both see the same moment of the
/// machine (page cache, writeback, other load) — two criterion benches run one after the other
/// drift apart by ±5–10% on a shared VM. Criterion times the log's half; the ratio over every
/// iteration (warm-up included, the same for both) is printed after each size.
fn append_paired(c: &mut Criterion) {
    let mut g = c.benchmark_group("append_paired");
    for (name, size) in [("16KiB", 16 << 10), ("1MiB", 1 << 20)] {
        let batch = batch_of(size);
        g.throughput(Throughput::Bytes(batch.len() as u64));
        let tmp = scratch();
        let mut log = LogTarget::open(&tmp.path().join("bench-0"));
        let mut file = FileTarget::create(&tmp.path().join("plain"));
        let (mut log_time, mut write_time, mut pairs) = (Duration::ZERO, Duration::ZERO, 0u64);
        g.bench_with_input(BenchmarkId::new("unified_log", name), &batch, |b, batch| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for i in 0..iters {
                    let (l, w) = if i % 2 == 0 {
                        let l = log.append(batch);
                        (l, file.write(batch))
                    } else {
                        let w = file.write(batch);
                        (log.append(batch), w)
                    };
                    spent += l;
                    log_time += l;
                    write_time += w;
                    pairs += 1;
                }
                spent
            })
        });
        let gib = |t: Duration| {
            (pairs * batch.len() as u64) as f64 / t.as_secs_f64().max(1e-9) / f64::from(1 << 30)
        };
        println!(
            "append_paired/{name}: {pairs} pairs: log {:.2} GiB/s, plain write {:.2} GiB/s, ratio {:.3}",
            gib(log_time),
            gib(write_time),
            write_time.as_secs_f64() / log_time.as_secs_f64().max(1e-9)
        );
    }
    g.finish();
}

/// A small xorshift: the same random targets every run.
fn randoms(n: usize, below: u64) -> Vec<u64> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % below
        })
        .collect()
}

fn offset_index_lookup(c: &mut Criterion) {
    const ENTRIES: u64 = 1 << 20;
    let tmp = scratch();
    let mut index = OffsetIndex::new(
        tmp.path().join("00000000000000000000.index"),
        0,
        ENTRIES * 8,
        true,
    );
    for i in 0..ENTRIES {
        // An entry every 10 offsets, every 4000 bytes.
        index
            .append(i as i64 * 10, (i * 4000) as u32)
            .expect("append");
    }
    let targets = randoms(1 << 16, ENTRIES * 10);
    let mut g = c.benchmark_group("offset_index_lookup");
    g.throughput(Throughput::Elements(1));
    g.bench_function("1M_entries", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) & (targets.len() - 1);
            black_box(index.lookup(targets[i] as i64).expect("lookup"))
        })
    });
    g.finish();
}

fn read(c: &mut Criterion) {
    const SEGMENTS: u64 = 100;
    let tmp = scratch();
    let config = LogConfig {
        segment_bytes: 1 << 20,
        ..LogConfig::default()
    };
    let mut log = open_log(
        &tmp.path().join("bench-0"),
        config,
        LogCheckpoints::default(),
    );
    let batch = batch_of(1 << 10);
    while (log.number_of_segments() as u64) <= SEGMENTS {
        log.append_as_leader(&batch, 1, NOW_MS).expect("append");
    }
    let leo = log.log_end_offset();
    let targets = randoms(1 << 16, leo as u64);
    let mut g = c.benchmark_group("read");
    g.throughput(Throughput::Elements(1));
    for (name, max_bytes) in [("one_batch", 1u64), ("1MiB", 1 << 20)] {
        g.bench_function(
            BenchmarkId::new(format!("{SEGMENTS}_segments"), name),
            |b| {
                let mut i = 0;
                b.iter(|| {
                    i = (i + 1) & (targets.len() - 1);
                    let info = log
                        .read(targets[i] as i64, max_bytes, leo, true)
                        .expect("read");
                    black_box(info.len())
                })
            },
        );
    }
    g.finish();
}

fn recovery(c: &mut Criterion) {
    const LOG_BYTES: u64 = 1 << 30;
    let tmp = scratch();
    let dir = tmp.path().join("bench-0");
    let batch = batch_of(16 << 10);
    {
        let mut log = open_log(&dir, big_batches(), LogCheckpoints::default());
        let mut written = 0;
        while written < LOG_BYTES {
            log.append_as_leader(&batch, 1, NOW_MS).expect("append");
            written += batch.len() as u64;
        }
        // Dropped without close: an unclean shutdown.
    }
    let unclean = LogCheckpoints {
        recovery_point: 0,
        clean_shutdown: false,
        ..LogCheckpoints::default()
    };
    let mut g = c.benchmark_group("recovery");
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Bytes(LOG_BYTES));
    g.bench_function("1GiB", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let log = open_log(&dir, big_batches(), unclean);
                spent += start.elapsed();
                assert!(log.size() >= LOG_BYTES, "recovery kept the whole log");
                drop(log);
            }
            spent
        })
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// Validation.

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// A batch of about 1 MiB of uncompressed records with `value_len`-byte values, compressed
/// with `codec` as a producer would send it; and its uncompressed size.
fn produced_batch(codec: Compression, value_len: usize) -> (Bytes, u64) {
    let mut b = RecordBatchBuilder::new(0);
    let mut i = 0u64;
    // Each record is at most its value, a key of up to 24 bytes and 16 bytes of varints and
    // attributes: the batch stays under 1 MiB without building it at every step.
    while RECORDS_OFFSET + (i as usize + 1) * (value_len + 40) <= 1 << 20 {
        let key = format!("key-{i}");
        b.append(
            NOW_MS,
            Some(key.as_bytes()),
            Some(&text(value_len, i + 1)),
            &[],
        )
        .expect("record fits");
        i += 1;
    }
    let plain = b.build();
    let raw = plain.len() as u64;
    if codec == Compression::None {
        return (plain, raw);
    }
    let payload = compression::compress(codec, &plain[RECORDS_OFFSET..]).expect("compress");
    let mut out = plain[..RECORDS_OFFSET].to_vec();
    out.extend_from_slice(&payload);
    let length = (out.len() - LOG_OVERHEAD) as i32;
    out[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&length.to_be_bytes());
    out[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2]
        .copy_from_slice(&i16::from(codec.id()).to_be_bytes());
    let crc = crc32c(&[&out[CRC_START..]]);
    out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    (Bytes::from(out), raw)
}

fn validate(c: &mut Criterion) {
    let mut g = c.benchmark_group("validate");
    let config = LogConfig {
        max_message_bytes: 2 << 20,
        ..LogConfig::default()
    };
    let validator = LogValidator::new(&config, NOW_MS);
    for codec in CODECS {
        for (size_name, value_len) in [("100B", 100), ("1KiB", 1 << 10), ("16KiB", 16 << 10)] {
            let (batch, raw) = produced_batch(codec, value_len);
            validator
                .validate(&"bench-0", &batch)
                .expect("the bench batch is valid");
            g.throughput(Throughput::Bytes(raw));
            g.bench_function(format!("{codec}/{size_name}/header"), |b| {
                b.iter(|| {
                    let view = RecordBatch::parse(batch.clone()).expect("batch");
                    view.validate_header().expect("valid");
                })
            });
            g.bench_function(format!("{codec}/{size_name}/records"), |b| {
                b.iter(|| {
                    validator
                        .validate(&"bench-0", black_box(&batch))
                        .expect("valid")
                })
            });
        }
    }
    g.finish();

    let mut g = c.benchmark_group("decompress_stream");
    for codec in CODECS.into_iter().skip(1) {
        for (size_name, value_len) in [("1KiB", 1 << 10), ("16KiB", 16 << 10)] {
            let (batch, raw) = produced_batch(codec, value_len);
            let payload = batch.slice(RECORDS_OFFSET..);
            let mut scratch = vec![0u8; LOG_VALIDATOR_SCRATCH];
            g.throughput(Throughput::Bytes(raw));
            g.bench_function(format!("{codec}/{size_name}"), |b| {
                b.iter(|| {
                    let mut s =
                        compression::decompress_stream(codec, &payload, 64 << 20).expect("stream");
                    while s.read(&mut scratch).expect("decompresses") > 0 {}
                    black_box(s.produced())
                })
            });
        }
    }
    g.finish();
}

criterion_group!(
    benches,
    validate,
    append,
    append_paired,
    offset_index_lookup,
    read,
    recovery
);
criterion_main!(benches);
