//! `rafka dump-log --files …`: prints Kafka's on-disk files as `kafka-dump-log` does — a log
//! segment's batches (offsets, epochs, producer ids and sequences, CRC verdict, codec; with
//! `--print-data-log` every record, decompressed whatever the codec), an offset index's and a
//! time index's entries (with `--verify-index`, each checked against the segment beside it),
//! and a producer snapshot's entries.
//!
//! Segments may hold v2 batches and magic-0/1 messages (`legacy_records`), printed as Kafka
//! prints each. Files are read in a stream, an entry at a time. An entry whose CRC does not match
//! is reported and passed (its length is still good); where no entry can be framed (a length
//! that cannot be right, an unknown magic, a file that ends mid-batch) the position is reported
//! and the reader looks for the next whole entry with a good CRC and an offset past the last good
//! one, and carries on there (or says that none follows). Any such finding makes the exit code 1.

use super::legacy_records::{LegacyRecord, MIN_MESSAGE_V0};
use super::shared::ToolResult;
use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Args;
use rafka_protocol::record_batch::{RecordBatch, TimestampType};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// baseOffset and batchLength (a legacy message's offset and size).
const LOG_OVERHEAD: usize = 12;
/// Where the magic byte sits in an entry, batch or legacy message alike.
const MAGIC_AT: usize = LOG_OVERHEAD + 4;
/// The smallest batchLength a v2 batch can have (its header after the length field).
const MIN_BATCH_LENGTH: usize = 49;
/// The largest batch this tool reads into memory.
const MAX_BATCH_BYTES: usize = 256 << 20;
/// How far past the last good entry a resynchronised entry's offset may be.
const RESYNC_OFFSET_SPAN: i64 = 1 << 31;

#[derive(Debug, Args)]
pub struct DumpLogArgs {
    /// Files to print, comma-separated or repeated (.log, .index, .timeindex, .snapshot).
    #[arg(long, required = true, value_delimiter = ',')]
    pub files: Vec<PathBuf>,
    /// Print every record (key, value, headers).
    #[arg(long)]
    pub print_data_log: bool,
    /// Check each index entry against the log segment beside the index.
    #[arg(long)]
    pub verify_index_only: bool,
    /// Same as --verify-index-only but also prints the entries.
    #[arg(long)]
    pub verify_index: bool,
    /// Decode records (implied by --print-data-log).
    #[arg(long)]
    pub deep_iteration: bool,
}

pub fn run(args: DumpLogArgs) -> ToolResult {
    let mut problems = 0usize;
    for f in &args.files {
        println!("Dumping {}", f.display());
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let result = if name.ends_with(".log") {
            dump_segment(f, &args)
        } else if name.ends_with(".index") {
            dump_offset_index(f, &args)
        } else if name.ends_with(".timeindex") {
            dump_time_index(f, &args)
        } else if name.ends_with(".snapshot") {
            dump_snapshot(f)
        } else {
            bail!(
                "{}: not a .log, .index, .timeindex or .snapshot file",
                f.display()
            );
        };
        match result {
            Ok(n) => problems += n,
            Err(e) => {
                println!("Error: {e:#}");
                problems += 1;
            }
        }
    }
    if problems > 0 {
        bail!("{problems} problem(s) found");
    }
    Ok(())
}

/// The base offset in a file name (`00000000000000000123.log` → 123).
fn base_offset(path: &Path) -> anyhow::Result<i64> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    stem.parse::<i64>()
        .with_context(|| format!("{}: the file name is not a base offset", path.display()))
}

/// One entry of a segment: a v2 batch or a magic-0/1 message (plain or a compressed wrapper).
enum Entry {
    V2(RecordBatch),
    Legacy(LegacyRecord),
}

impl Entry {
    fn last_offset(&self) -> i64 {
        match self {
            Entry::V2(b) => b.last_offset(),
            Entry::Legacy(r) => r.offset,
        }
    }
    fn max_timestamp(&self) -> i64 {
        match self {
            Entry::V2(b) => b.max_timestamp(),
            Entry::Legacy(r) => r.timestamp,
        }
    }
    fn is_valid(&self) -> bool {
        match self {
            Entry::V2(b) => b.crc() == b.compute_crc(),
            Entry::Legacy(r) => r.is_valid(),
        }
    }
}

/// What reading the next entry of a segment gave.
enum Next {
    Batch {
        position: u64,
        entry: Entry,
    },
    /// The file ends here.
    End,
    /// No entry can be framed at `position`.
    Broken {
        position: u64,
        why: String,
    },
}

struct SegmentReader {
    file: BufReader<File>,
    position: u64,
    size: u64,
}

impl SegmentReader {
    fn open(path: &Path) -> anyhow::Result<SegmentReader> {
        let file = File::open(path).with_context(|| format!("{}", path.display()))?;
        let size = file.metadata()?.len();
        Ok(SegmentReader {
            file: BufReader::new(file),
            position: 0,
            size,
        })
    }

    fn seek(&mut self, position: u64) -> std::io::Result<()> {
        self.file.seek(SeekFrom::Start(position))?;
        self.position = position;
        Ok(())
    }

    fn next(&mut self) -> std::io::Result<Next> {
        let position = self.position;
        let remaining = self.size.saturating_sub(position);
        if remaining == 0 {
            return Ok(Next::End);
        }
        if remaining < LOG_OVERHEAD as u64 {
            return Ok(Next::Broken {
                position,
                why: format!("{remaining} bytes at the end, less than a batch header"),
            });
        }
        let mut head = [0u8; LOG_OVERHEAD];
        self.file.read_exact(&mut head)?;
        self.position += LOG_OVERHEAD as u64;
        let offset = i64::from_be_bytes(head[..8].try_into().expect("invariant: 8 bytes"));
        let length = i32::from_be_bytes([head[8], head[9], head[10], head[11]]);
        let body = match usize::try_from(length) {
            Ok(l) if (MIN_MESSAGE_V0..=MAX_BATCH_BYTES).contains(&l) => l,
            // A preallocated (zero-filled) tail, as a segment of an unclean shutdown can have.
            _ if head == [0; LOG_OVERHEAD] => {
                return Ok(Next::Broken {
                    position,
                    why: "zero bytes (no batch) from here".into(),
                })
            }
            _ => {
                return Ok(Next::Broken {
                    position,
                    why: format!("batch length {length} cannot be right"),
                })
            }
        };
        if (LOG_OVERHEAD + body) as u64 > remaining {
            return Ok(Next::Broken {
                position,
                why: format!(
                    "batch of {} bytes, but the file ends {remaining} bytes after its start",
                    LOG_OVERHEAD + body
                ),
            });
        }
        let mut buf = vec![0u8; LOG_OVERHEAD + body];
        buf[..LOG_OVERHEAD].copy_from_slice(&head);
        self.file.read_exact(&mut buf[LOG_OVERHEAD..])?;
        self.position += body as u64;
        let magic = buf[MAGIC_AT] as i8;
        let parsed = match magic {
            2 if body < MIN_BATCH_LENGTH => Err(format!(
                "batch length {length} is less than a magic-2 batch header"
            )),
            2 => RecordBatch::parse(Bytes::from(buf))
                .map(Entry::V2)
                .map_err(|e| e.to_string()),
            0 | 1 => LegacyRecord::parse(offset, Bytes::from(buf).slice(LOG_OVERHEAD..))
                .map(Entry::Legacy),
            m => Err(format!("unknown magic {m}")),
        };
        Ok(match parsed {
            Ok(entry) => Next::Batch { position, entry },
            Err(why) => Next::Broken { position, why },
        })
    }

    /// The first position after `from` where a whole entry with a good CRC starts whose offset
    /// lies in `[min_offset, min_offset + 2^31)` (offsets only grow in a segment, so random
    /// bytes rarely pass); `None` when there is none. Leaves the reader anywhere.
    fn resync(&mut self, from: u64, min_offset: i64) -> std::io::Result<Option<u64>> {
        const WINDOW: usize = 1 << 20;
        let head = MAGIC_AT + 1;
        let mut window = vec![0u8; WINDOW + head];
        let mut start = from;
        while start + head as u64 <= self.size {
            let want = (self.size - start).min(window.len() as u64) as usize;
            self.seek(start)?;
            self.file.read_exact(&mut window[..want])?;
            let last = want - head;
            for i in 0..=last {
                let w = &window[i..i + head];
                let offset = i64::from_be_bytes(w[..8].try_into().expect("invariant: 8 bytes"));
                let length = i32::from_be_bytes(w[8..12].try_into().expect("invariant: 4 bytes"));
                let at = start + i as u64;
                let plausible = matches!(w[MAGIC_AT], 0..=2)
                    && offset
                        .checked_sub(min_offset)
                        .is_some_and(|d| (0..RESYNC_OFFSET_SPAN).contains(&d))
                    && usize::try_from(length).is_ok_and(|l| {
                        l >= MIN_MESSAGE_V0 && at + (LOG_OVERHEAD + l) as u64 <= self.size
                    });
                if !plausible {
                    continue;
                }
                self.seek(at)?;
                if let Next::Batch { entry, .. } = self.next()? {
                    if entry.is_valid() {
                        return Ok(Some(at));
                    }
                }
            }
            start += last as u64 + 1;
        }
        Ok(None)
    }
}

fn text(b: &Option<Bytes>) -> String {
    b.as_ref()
        .map_or("null".into(), |b| String::from_utf8_lossy(b).into_owned())
}

fn dump_segment(path: &Path, args: &DumpLogArgs) -> anyhow::Result<usize> {
    let base = base_offset(path)?;
    println!("Log starting offset: {base}");
    let mut reader = SegmentReader::open(path)?;
    let mut problems = 0;
    // The offset the next entry must reach at least (resynchronisation's sanity bound).
    let mut next_offset = base;
    loop {
        match reader.next()? {
            Next::End => break,
            Next::Broken { position, why } => {
                println!("Found corrupt data at position {position}: {why}");
                problems += 1;
                match reader.resync(position + 1, next_offset)? {
                    Some(at) => {
                        println!(
                            "Resuming at position {at}, the next whole batch ({} bytes skipped)",
                            at - position
                        );
                        reader.seek(at)?;
                    }
                    None => {
                        println!("No whole batch after position {position}");
                        break;
                    }
                }
            }
            Next::Batch { position, entry } => {
                if !entry.is_valid() {
                    problems += 1;
                } else {
                    next_offset = next_offset.max(entry.last_offset().saturating_add(1));
                }
                problems += match &entry {
                    Entry::V2(batch) => print_batch(batch, position, args),
                    Entry::Legacy(record) => print_legacy(record, position, args),
                };
            }
        }
    }
    Ok(problems)
}

fn timestamp_type(batch: &RecordBatch) -> &'static str {
    match batch.timestamp_type() {
        TimestampType::CreateTime => "CreateTime",
        TimestampType::LogAppendTime => "LogAppendTime",
    }
}

/// A v2 batch's line and, when asked, its records' lines; the problems found.
fn print_batch(batch: &RecordBatch, position: u64, args: &DumpLogArgs) -> usize {
    let stored = batch.crc();
    let valid = stored == batch.compute_crc();
    let codec = batch
        .compression()
        .map_or("unknown".into(), |c| c.name().to_owned());
    let last_seq = if batch.base_sequence() < 0 {
        -1
    } else {
        batch
            .base_sequence()
            .wrapping_add(batch.last_offset_delta())
    };
    println!(
        "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {} producerId: {} \
         producerEpoch: {} partitionLeaderEpoch: {} isTransactional: {} isControl: {} \
         deleteHorizonMs: {} position: {position} {}: {} size: {} magic: {} compresscodec: {codec} \
         crc: {stored} isvalid: {valid}",
        batch.base_offset(),
        batch.last_offset(),
        batch.record_count(),
        batch.base_sequence(),
        last_seq,
        batch.producer_id(),
        batch.producer_epoch(),
        batch.partition_leader_epoch(),
        batch.is_transactional(),
        batch.is_control(),
        batch
            .delete_horizon_ms()
            .map_or("OptionalLong.empty".into(), |d| format!(
                "OptionalLong[{d}]"
            )),
        timestamp_type(batch),
        batch.max_timestamp(),
        batch.size_in_bytes(),
        batch.magic(),
    );
    if !(args.print_data_log || args.deep_iteration) {
        return 0;
    }
    let records = match rafka_client::records::records(batch) {
        Ok(r) => r,
        Err(e) => {
            println!("| records of the batch at position {position} cannot be read: {e}");
            return 1;
        }
    };
    for r in records {
        let seq = if batch.base_sequence() < 0 {
            -1
        } else {
            batch.base_sequence().wrapping_add(r.offset_delta)
        };
        let mut line = format!(
            "| offset: {} {}: {} keySize: {} valueSize: {} sequence: {seq} headerKeys: [{}]",
            r.offset(batch),
            timestamp_type(batch),
            r.timestamp(batch),
            r.key.as_ref().map_or(-1, |k| k.len() as i64),
            r.value.as_ref().map_or(-1, |v| v.len() as i64),
            r.headers
                .iter()
                .map(|h| String::from_utf8_lossy(&h.key).into_owned())
                .collect::<Vec<_>>()
                .join(","),
        );
        if args.print_data_log {
            if batch.is_control() {
                line.push_str(&format!(" {}", control_record(&r.key)));
            } else {
                line.push_str(&format!(
                    " key: {} payload: {}",
                    text(&r.key),
                    text(&r.value)
                ));
            }
        }
        println!("{line}");
    }
    0
}

/// A magic-0/1 entry's line as Kafka prints a legacy batch (`offset:` its last offset) and,
/// when asked, its messages' lines (with their own CRC verdicts); the problems found.
fn print_legacy(record: &LegacyRecord, position: u64, args: &DumpLogArgs) -> usize {
    let codec = record
        .compression()
        .map_or("unknown".into(), |c| c.name().to_owned());
    println!(
        "offset: {} position: {position} {}: {} size: {} magic: {} compresscodec: {codec} crc: {} isvalid: {}",
        record.offset,
        record.timestamp_type(),
        record.timestamp,
        record.size_in_bytes,
        record.magic,
        record.crc,
        record.is_valid()
    );
    if !(args.print_data_log || args.deep_iteration) {
        return 0;
    }
    let inner = match record.records(rafka_client::records::MAX_DECOMPRESSED_BYTES) {
        Ok(r) => r,
        Err(e) => {
            println!("| messages of the entry at position {position} cannot be read: {e}");
            return 1;
        }
    };
    let mut problems = 0;
    for r in inner {
        if !r.is_valid() {
            problems += 1;
        }
        let mut line = format!(
            "| offset: {} {}: {} keySize: {} valueSize: {} crc: {} isvalid: {}",
            r.offset,
            record.timestamp_type(),
            r.timestamp,
            r.key.as_ref().map_or(-1, |k| k.len() as i64),
            r.value.as_ref().map_or(-1, |v| v.len() as i64),
            r.crc,
            r.is_valid()
        );
        if args.print_data_log {
            line.push_str(&format!(
                " key: {} payload: {}",
                text(&r.key),
                text(&r.value)
            ));
        }
        println!("{line}");
    }
    problems
}

/// A control record's key: version, type (0 abort, 1 commit).
fn control_record(key: &Option<Bytes>) -> String {
    match key.as_deref() {
        Some([_, _, t0, t1, ..]) => match i16::from_be_bytes([*t0, *t1]) {
            0 => "endTxnMarker: ABORT".into(),
            1 => "endTxnMarker: COMMIT".into(),
            t => format!("controlType: {t}"),
        },
        _ => "controlType: unknown".into(),
    }
}

/// Index entries (two big-endian 4- or 8-byte numbers each), stopping at the first zero entry
/// after the first (the preallocated tail), as Kafka's reader does.
fn index_entries(path: &Path, entry: usize) -> anyhow::Result<(Vec<(i64, i64)>, Option<String>)> {
    let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    let mut out = Vec::new();
    let mut problem = None;
    let chunks = bytes.chunks_exact(entry);
    if !chunks.remainder().is_empty() {
        problem = Some(format!(
            "the file's {} bytes are not a whole number of {entry}-byte entries",
            bytes.len()
        ));
    }
    for (i, c) in chunks.enumerate() {
        let (a, b) = if entry == 8 {
            (
                i64::from(i32::from_be_bytes([c[0], c[1], c[2], c[3]])),
                i64::from(i32::from_be_bytes([c[4], c[5], c[6], c[7]])),
            )
        } else {
            (
                i64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
                i64::from(i32::from_be_bytes([c[8], c[9], c[10], c[11]])),
            )
        };
        if i > 0 && c.iter().all(|b| *b == 0) {
            break;
        }
        out.push((a, b));
    }
    Ok((out, problem))
}

fn segment_beside(index: &Path) -> PathBuf {
    index.with_extension("log")
}

fn dump_offset_index(path: &Path, args: &DumpLogArgs) -> anyhow::Result<usize> {
    let base = base_offset(path)?;
    let (entries, shape) = index_entries(path, 8)?;
    let mut problems = 0;
    if let Some(s) = shape {
        println!("Found a bad index file: {s}");
        problems += 1;
    }
    let verify = args.verify_index || args.verify_index_only;
    let mut segment = if verify {
        Some(SegmentReader::open(&segment_beside(path))?)
    } else {
        None
    };
    let mut previous: Option<i64> = None;
    for (i, (relative, position)) in entries.iter().enumerate() {
        let offset = base + relative;
        if !args.verify_index_only {
            println!("offset: {offset} position: {position}");
        }
        if let Some(seg) = segment.as_mut() {
            if previous.is_some_and(|p| offset <= p) {
                println!(
                    "Index offset {offset} (entry {i}) does not increase over {}",
                    previous.unwrap_or(0)
                );
                problems += 1;
            }
            previous = Some(offset);
            let at = u64::try_from(*position).unwrap_or(u64::MAX);
            let found = if at >= seg.size {
                None
            } else {
                seg.seek(at)?;
                match seg.next()? {
                    Next::Batch { entry, .. } => Some(entry.last_offset()),
                    _ => None,
                }
            };
            match found {
                Some(last) if last == offset => {}
                Some(last) => {
                    println!("Index position {position} (entry {i}) points at the batch ending at offset {last}, not {offset}");
                    problems += 1;
                }
                None => {
                    println!("Index position {position} (entry {i}, offset {offset}) is not the start of a batch in the log");
                    problems += 1;
                }
            }
        }
    }
    if verify && problems == 0 {
        println!("The index agrees with the log ({} entries).", entries.len());
    }
    Ok(problems)
}

fn dump_time_index(path: &Path, args: &DumpLogArgs) -> anyhow::Result<usize> {
    let base = base_offset(path)?;
    let (entries, shape) = index_entries(path, 12)?;
    let mut problems = 0;
    if let Some(s) = shape {
        println!("Found a bad time index file: {s}");
        problems += 1;
    }
    let verify = args.verify_index || args.verify_index_only;
    // Verification reads the whole segment's batches once: (last offset, max timestamp).
    let batches: Vec<(i64, i64)> = if verify {
        let mut seg = SegmentReader::open(&segment_beside(path))?;
        let mut out = Vec::new();
        while let Next::Batch { entry, .. } = seg.next()? {
            out.push((entry.last_offset(), entry.max_timestamp()));
        }
        out
    } else {
        Vec::new()
    };
    let mut previous: Option<(i64, i64)> = None;
    for (i, (timestamp, relative)) in entries.iter().enumerate() {
        let offset = base + relative;
        if !args.verify_index_only {
            println!("timestamp: {timestamp} offset: {offset}");
        }
        if !verify {
            continue;
        }
        if let Some((pt, po)) = previous {
            if *timestamp < pt || offset < po {
                println!("Time index entry {i} (timestamp {timestamp}, offset {offset}) goes back from ({pt}, {po})");
                problems += 1;
            }
        }
        previous = Some((*timestamp, offset));
        // Kafka's time index records a batch's max timestamp with the batch's last offset.
        match batches.iter().find(|(last, _)| *last == offset) {
            Some((_, max)) if *max == *timestamp => {}
            Some((_, max)) => {
                println!("Time index entry {i}: timestamp {timestamp} but the batch ending at {offset} has max timestamp {max}");
                problems += 1;
            }
            None => {
                println!("Time index entry {i}: no batch in the log ends at offset {offset}");
                problems += 1;
            }
        }
    }
    if verify && problems == 0 {
        println!(
            "The time index agrees with the log ({} entries).",
            entries.len()
        );
    }
    Ok(problems)
}

fn dump_snapshot(path: &Path) -> anyhow::Result<usize> {
    let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    match rafka_storage::producer_state::decode_snapshot(path, &bytes) {
        Ok(entries) => {
            for e in entries {
                for b in &e.batches {
                    println!(
                        "producerId: {} producerEpoch: {} coordinatorEpoch: {} currentTxnFirstOffset: None \
                         lastTimestamp: {} firstSequence: {} lastSequence: {} lastOffset: {} offsetDelta: {} timestamp: {}",
                        e.producer_id,
                        e.producer_epoch,
                        e.coordinator_epoch,
                        e.last_timestamp,
                        b.first_seq(),
                        b.last_seq,
                        b.last_offset,
                        b.offset_delta,
                        b.timestamp
                    );
                }
            }
            Ok(0)
        }
        Err(e) => {
            println!("Found a corrupt snapshot: {e}");
            Ok(1)
        }
    }
}
