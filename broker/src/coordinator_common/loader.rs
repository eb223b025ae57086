//! Reading a coordinator's partition (`__consumer_offsets`, `__transaction_state`) back into memory, one chunk of the log at a time,
//! in a way that cannot leave the partition stuck "loading": compressed batches (any codec) are
//! decompressed into a bounded buffer that is dropped after the batch, and whatever cannot be
//! read — a batch whose CRC fails or that does not decompress, a record cut short, a key or
//! value of a version or shape we do not know — is skipped and counted. The first such problem
//! and the counts are logged once when the partition's load ends ([`PartitionLoad::finish`]),
//! not once per record.
//!
//! Only a chunk whose batch framing itself is broken (a length that runs past the chunk, a
//! wrong magic) ends the load early: past it no batch boundary can be trusted. The log never
//! stores such bytes (appends and recovery check every batch), so this is a last resort, and
//! the partition is still served with what was read before it.
//!
//! Not here: which partitions to load and when (each coordinator), and the record formats (the
//! `decode` each coordinator passes in).

use bytes::Bytes;
use rafka_protocol::control_record::{ControlRecordType, EndTransactionMarker};
use rafka_protocol::record::RecordIter;
use rafka_protocol::record_batch::{Compression, RecordBatch};
use rafka_storage::compression::decompress;
use std::fmt::Display;

/// The most a batch's records may decompress to while loading. The coordinator writes batches
/// far smaller (bounded by `max.message.bytes`); a bigger one is not the coordinator's and is
/// skipped rather than allowed to claim memory.
pub const MAX_DECOMPRESSED_BATCH_BYTES: usize = 16 << 20;

/// How a coordinator reads one record's key and value into its own record type.
pub type DecodeRecord<R, E> = dyn Fn(Option<&Bytes>, Option<&Bytes>) -> Result<R, E>;

/// One thing a load hands the coordinator, in log order (for the group coordinator, whose
/// transactional offsets depend on the batches' producers and on the markers).
#[derive(Debug, Clone, PartialEq)]
pub enum Loaded<R> {
    /// A record; `producer_id` is its batch's producer when the batch is transactional.
    Record {
        record: R,
        transactional_producer: Option<i64>,
    },
    /// A transaction's end marker (a control batch) for `producer_id`.
    Marker { producer_id: i64, commit: bool },
}

/// Where a chunk's reading ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkEnd {
    /// Every batch was read (or skipped); the next batch starts at this offset.
    Next(i64),
    /// The framing broke: nothing after this point can be read.
    Broken,
}

/// One partition's load in progress: counts and the first problem, for one log line.
#[derive(Debug)]
pub struct PartitionLoad {
    topic: &'static str,
    partition: i32,
    records: usize,
    skipped_records: usize,
    skipped_batches: usize,
    first_problem: Option<String>,
}

impl PartitionLoad {
    pub fn new(topic: &'static str, partition: i32) -> PartitionLoad {
        PartitionLoad {
            topic,
            partition,
            records: 0,
            skipped_records: 0,
            skipped_batches: 0,
            first_problem: None,
        }
    }

    /// Records read and applied.
    pub fn records(&self) -> usize {
        self.records
    }

    /// Records (or whole batches, counted once each) that could not be read.
    pub fn skipped(&self) -> usize {
        self.skipped_records + self.skipped_batches
    }

    fn note(&mut self, offset: i64, what: impl Display) {
        if self.first_problem.is_none() {
            self.first_problem = Some(format!("at offset {offset}: {what}"));
        }
    }

    fn skip_batch(&mut self, offset: i64, what: impl Display) {
        self.skipped_batches += 1;
        self.note(offset, what);
    }

    fn skip_record(&mut self, offset: i64, what: impl Display) {
        self.skipped_records += 1;
        self.note(offset, what);
    }

    /// Reads the batches of one chunk of the log starting at `from`, handing each record that
    /// `decode` can read to `apply`, in log order (control batches are passed over).
    pub fn read_chunk<R, E: Display>(
        &mut self,
        bytes: Bytes,
        from: i64,
        decode: &DecodeRecord<R, E>,
        apply: &mut dyn FnMut(R),
    ) -> ChunkEnd {
        self.read_chunk_loaded(bytes, from, decode, &mut |l| {
            if let Loaded::Record { record, .. } = l {
                apply(record)
            }
        })
    }

    /// [`Self::read_chunk`] with each record's transactional producer, and the transaction
    /// markers.
    pub fn read_chunk_loaded<R, E: Display>(
        &mut self,
        bytes: Bytes,
        from: i64,
        decode: &DecodeRecord<R, E>,
        apply: &mut dyn FnMut(Loaded<R>),
    ) -> ChunkEnd {
        let mut next = from;
        for batch in RecordBatch::batches(bytes) {
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    self.note(next, format!("unreadable batch framing: {e}"));
                    return ChunkEnd::Broken;
                }
            };
            // A log serves the batch holding `from`, which may start before it.
            next = next.max(batch.next_offset());
            if batch.is_control() {
                if let Err(e) = batch.ensure_valid() {
                    self.skip_batch(batch.base_offset(), e);
                    continue;
                }
                match EndTransactionMarker::parse(&batch) {
                    Ok(Some(m)) => apply(Loaded::Marker {
                        producer_id: batch.producer_id(),
                        commit: m.control_type == ControlRecordType::Commit,
                    }),
                    Ok(None) => {}
                    Err(e) => self.skip_batch(batch.base_offset(), e),
                }
                continue;
            }
            self.read_batch(&batch, decode, apply);
        }
        ChunkEnd::Next(next)
    }

    fn read_batch<R, E: Display>(
        &mut self,
        batch: &RecordBatch,
        decode: &DecodeRecord<R, E>,
        apply: &mut dyn FnMut(Loaded<R>),
    ) {
        let base = batch.base_offset();
        let transactional_producer = batch
            .is_transactional()
            .then(|| batch.producer_id())
            .filter(|id| *id >= 0);
        if let Err(e) = batch.ensure_valid() {
            return self.skip_batch(base, e);
        }
        let codec = match batch.compression() {
            Ok(c) => c,
            Err(e) => return self.skip_batch(base, e),
        };
        let Ok(count) = usize::try_from(batch.record_count()) else {
            return self.skip_batch(base, "a negative record count");
        };
        let data = if codec == Compression::None {
            batch.records_bytes()
        } else {
            match decompress(codec, &batch.records_bytes(), MAX_DECOMPRESSED_BATCH_BYTES) {
                Ok(d) => d,
                Err(e) => return self.skip_batch(base, e),
            }
        };
        for record in RecordIter::new(data, count) {
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    // The rest of the batch has no trustworthy boundaries.
                    return self.skip_record(base, e);
                }
            };
            let offset = base + i64::from(record.offset_delta);
            match decode(record.key.as_ref(), record.value.as_ref()) {
                Ok(record) => {
                    self.records += 1;
                    apply(Loaded::Record {
                        record,
                        transactional_producer,
                    });
                }
                Err(e) => self.skip_record(offset, e),
            }
        }
    }

    /// Ends the load: one warning if anything was skipped.
    pub fn finish(self) {
        if let Some(first) = &self.first_problem {
            tracing::warn!(
                topic = self.topic,
                partition = self.partition,
                records = self.records,
                skipped_records = self.skipped_records,
                skipped_batches = self.skipped_batches,
                first = %first,
                "skipped what could not be read while loading a coordinator partition"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group_coordinator::records::{self, CoordinatorRecord, OffsetAndMetadata};
    use rafka_protocol::record_batch::RecordBatchBuilder;
    use rafka_protocol::record_batch::RecordBatchMut;
    use rafka_storage::compression::compress;

    fn commit(group: &str, offset: i64) -> (Bytes, Option<Bytes>) {
        records::offset_commit(
            group,
            "t",
            0,
            Some(&OffsetAndMetadata {
                offset,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp: 1,
            }),
        )
    }

    /// A batch at `base` of `records` (key, value), with `codec`.
    fn batch(base: i64, codec: Compression, records: &[(Bytes, Option<Bytes>)]) -> Vec<u8> {
        let mut b = RecordBatchBuilder::new(base);
        for (k, v) in records {
            b.append(1, Some(k), v.as_deref(), &[]).expect("fits");
        }
        let plain = b.build().to_vec();
        if codec == Compression::None {
            return plain;
        }
        // Compress the records region and fix the header: length, attributes, CRC.
        let compressed = compress(codec, &plain[61..]).expect("compress");
        let mut out = plain[..61].to_vec();
        out.extend_from_slice(&compressed);
        let len = (out.len() - 12) as i32;
        out[8..12].copy_from_slice(&len.to_be_bytes());
        let attributes = i16::from_be_bytes([out[21], out[22]]) | codec_bits(codec);
        out[21..23].copy_from_slice(&attributes.to_be_bytes());
        fix_crc(&mut out);
        out
    }

    fn codec_bits(codec: Compression) -> i16 {
        match codec {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    fn fix_crc(b: &mut [u8]) {
        let crc = rafka_protocol::record_batch::crc32c(&[&b[21..]]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(RecordBatchMut::new(b).is_ok());
    }

    fn load(chunk: Vec<u8>) -> (PartitionLoad, Vec<CoordinatorRecord>, ChunkEnd) {
        let mut l = PartitionLoad::new("__consumer_offsets", 0);
        let mut got = Vec::new();
        let end = l.read_chunk(Bytes::from(chunk), 0, &records::read, &mut |r| got.push(r));
        (l, got, end)
    }

    fn offsets(got: &[CoordinatorRecord]) -> Vec<i64> {
        got.iter()
            .filter_map(|r| match r {
                CoordinatorRecord::Offset { value: Some(v), .. } => Some(v.offset),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn compressed_batches_of_every_codec_load() {
        let mut chunk = Vec::new();
        let mut base = 0;
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            chunk.extend(batch(
                base,
                codec,
                &[commit("g", base), commit("g", base + 1)],
            ));
            base += 2;
        }
        let (l, got, end) = load(chunk);
        assert_eq!(offsets(&got), (0..10).collect::<Vec<_>>());
        assert_eq!(end, ChunkEnd::Next(10));
        assert_eq!((l.records(), l.skipped()), (10, 0));
    }

    #[test]
    fn unreadable_records_are_skipped_and_the_rest_loads() {
        let garbage = (
            Bytes::from_static(b"\x7f\x7fgarbage"),
            Some(Bytes::from_static(b"x")),
        );
        let no_key_version = (Bytes::from_static(b"\x00"), None);
        let (key, _) = commit("g", 0);
        let bad_value = (key, Some(Bytes::from_static(b"\x00\x63\x01\x02")));
        let truncated_value = {
            let (k, v) = commit("g", 0);
            let v = v.expect("a value");
            (k, Some(v.slice(..v.len() - 3)))
        };
        let mut chunk = batch(
            0,
            Compression::None,
            &[
                commit("g", 100),
                garbage,
                no_key_version,
                bad_value,
                truncated_value,
                commit("g", 105),
            ],
        );
        chunk.extend(batch(6, Compression::Gzip, &[commit("h", 106)]));
        let (l, got, end) = load(chunk);
        assert_eq!(offsets(&got), vec![100, 105, 106]);
        assert_eq!(end, ChunkEnd::Next(7));
        assert_eq!((l.records(), l.skipped()), (3, 4));
        l.finish();
    }

    #[test]
    fn a_corrupt_batch_is_skipped_whole() {
        // A gzip batch whose payload is not gzip (its CRC made right, as a client could).
        let mut bad = batch(0, Compression::Gzip, &[commit("g", 1), commit("g", 2)]);
        let n = bad.len();
        for b in &mut bad[61..n] {
            *b = 0x5a;
        }
        fix_crc(&mut bad);
        // One whose CRC is wrong.
        let mut crc = batch(2, Compression::None, &[commit("g", 3)]);
        let last = crc.len() - 1;
        crc[last] ^= 0xff;
        let mut chunk = bad;
        chunk.extend(crc);
        chunk.extend(batch(3, Compression::Zstd, &[commit("g", 4)]));
        let (l, got, end) = load(chunk);
        assert_eq!(offsets(&got), vec![4]);
        assert_eq!(end, ChunkEnd::Next(4));
        assert_eq!(l.skipped(), 2);
    }

    #[test]
    fn a_batch_that_decompresses_too_far_is_skipped() {
        // 20 MiB of one value: compresses to little, decompresses past the bound.
        let (k, _) = commit("g", 0);
        let big = (k, Some(Bytes::from(vec![0u8; 20 << 20])));
        let mut chunk = batch(0, Compression::Zstd, &[big]);
        chunk.extend(batch(1, Compression::None, &[commit("g", 7)]));
        let (l, got, end) = load(chunk);
        assert_eq!(offsets(&got), vec![7]);
        assert_eq!(end, ChunkEnd::Next(2));
        assert_eq!(l.skipped(), 1);
    }

    #[test]
    fn broken_framing_ends_the_chunk_with_what_was_read() {
        let mut chunk = batch(0, Compression::None, &[commit("g", 1)]);
        chunk.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff, 0, 0]);
        let (l, got, end) = load(chunk);
        assert_eq!(offsets(&got), vec![1]);
        assert_eq!(end, ChunkEnd::Broken);
        assert_eq!(l.records(), 1);
    }
}
