//! Kafka's message format v0 and v1 (magic 0 and 1, before KIP-98's record batches), read for
//! `dump-log` only: the broker itself neither accepts nor writes them. A log of a cluster that
//! started before Kafka 0.11 still holds them until retention removes them, which is when an
//! operator reaches for `dump-log`.
//!
//! On disk each entry is `offset int64, size int32` and then the message:
//!
//! ```text
//!   crc         uint32  CRC-32 (IEEE) of everything after it
//!   magic       int8    0 or 1
//!   attributes  int8    bits 0-2 codec (0 none, 1 gzip, 2 snappy, 3 lz4), bit 3 (v1)
//!                       LogAppendTime
//!   timestamp   int64   v1 only
//!   key         int32 length (-1 null), bytes
//!   value       int32 length (-1 null), bytes
//! ```
//!
//! A compressed message (a *wrapper*) carries in its value the compressed entries of its inner
//! messages, same layout, same magic, uncompressed. The wrapper's offset is its last inner
//! message's; v0 inner offsets are absolute, v1 inner offsets relative (the absolute one is the
//! wrapper's offset minus the last inner offset plus the inner offset), as Kafka's
//! `AbstractLegacyRecordBatch` reads them. Under LogAppendTime the inner messages take the
//! wrapper's timestamp. Magic-0 LZ4 was written with a wrong frame header checksum (KAFKA-3160:
//! computed over the frame magic too); Kafka reads it without checking, and so does this.

use bytes::Bytes;
use rafka_protocol::record_batch::Compression;

/// The smallest message after `offset, size`: crc, magic, attributes, two lengths (v0).
pub const MIN_MESSAGE_V0: usize = 4 + 1 + 1 + 4 + 4;
/// v1 adds the timestamp.
pub const MIN_MESSAGE_V1: usize = MIN_MESSAGE_V0 + 8;
/// `offset int64, size int32`.
const LOG_OVERHEAD: usize = 12;
const TIMESTAMP_TYPE_BIT: i8 = 0x08;
const CODEC_MASK: i8 = 0x07;

/// One v0/v1 message as it sits in the log (a plain message or a compressed wrapper).
#[derive(Debug, Clone)]
pub struct LegacyRecord {
    pub offset: i64,
    /// The whole entry, `offset, size` included.
    pub size_in_bytes: usize,
    pub crc: u32,
    pub computed_crc: u32,
    pub magic: i8,
    pub attributes: i8,
    /// -1 in v0.
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
}

impl LegacyRecord {
    /// Parses the message `body` (everything after `offset, size`) found at `offset`.
    pub fn parse(offset: i64, body: Bytes) -> Result<LegacyRecord, String> {
        let magic = *body.get(4).ok_or("message shorter than its header")? as i8;
        let min = match magic {
            0 => MIN_MESSAGE_V0,
            1 => MIN_MESSAGE_V1,
            m => return Err(format!("message magic {m} is not 0 or 1")),
        };
        if body.len() < min {
            return Err(format!(
                "message of {} bytes, less than a magic-{magic} header ({min})",
                body.len()
            ));
        }
        let crc = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        let computed_crc = crc32fast::hash(&body[4..]);
        let attributes = body[5] as i8;
        let mut at = 6;
        let timestamp = if magic == 1 {
            at += 8;
            i64::from_be_bytes(body[6..14].try_into().expect("invariant: 8 bytes"))
        } else {
            -1
        };
        let key = bytes_field(&body, &mut at, "key")?;
        let value = bytes_field(&body, &mut at, "value")?;
        if at != body.len() {
            return Err(format!(
                "message of {} bytes holds {} bytes after its value",
                body.len(),
                body.len() - at
            ));
        }
        Ok(LegacyRecord {
            offset,
            size_in_bytes: LOG_OVERHEAD + body.len(),
            crc,
            computed_crc,
            magic,
            attributes,
            timestamp,
            key,
            value,
        })
    }

    pub fn is_valid(&self) -> bool {
        self.crc == self.computed_crc
    }

    /// The codec in attribute bits 0-2; zstd (4) and above did not exist before magic 2.
    pub fn compression(&self) -> Result<Compression, String> {
        let id = (self.attributes & CODEC_MASK) as u8;
        [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
        ]
        .into_iter()
        .find(|c| c.id() == id)
        .ok_or_else(|| format!("codec id {id} in a magic-{} message", self.magic))
    }

    /// Kafka's name of the timestamp type, as `dump-log` prints it.
    pub fn timestamp_type(&self) -> &'static str {
        if self.magic == 0 {
            "NoTimestampType"
        } else if self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            "LogAppendTime"
        } else {
            "CreateTime"
        }
    }

    /// The messages this entry holds: itself when uncompressed, else the wrapper's inner
    /// messages with absolute offsets. `max_output` bounds the decompressed size.
    pub fn records(&self, max_output: usize) -> Result<Vec<LegacyRecord>, String> {
        let codec = self.compression()?;
        if codec == Compression::None {
            return Ok(vec![self.clone()]);
        }
        let value = self
            .value
            .as_ref()
            .ok_or("a compressed message with a null value")?;
        let fixed;
        let data: &[u8] = if codec == Compression::Lz4 && self.magic == 0 {
            fixed = with_lz4_header_checksum(value);
            &fixed
        } else {
            value
        };
        let inner = rafka_storage::compression::decompress(codec, data, max_output)
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        let mut at = 0;
        while at < inner.len() {
            let head = inner
                .get(at..at + LOG_OVERHEAD)
                .ok_or_else(|| format!("inner message at byte {at} cut in its header"))?;
            let offset = i64::from_be_bytes(head[..8].try_into().expect("invariant: 8 bytes"));
            let size = i32::from_be_bytes(head[8..].try_into().expect("invariant: 4 bytes"));
            let size = usize::try_from(size)
                .ok()
                .filter(|s| *s >= MIN_MESSAGE_V0 && at + LOG_OVERHEAD + s <= inner.len())
                .ok_or_else(|| {
                    format!("inner message at byte {at}: size {size} cannot be right")
                })?;
            let body = inner.slice(at + LOG_OVERHEAD..at + LOG_OVERHEAD + size);
            let mut r = LegacyRecord::parse(offset, body)
                .map_err(|e| format!("inner message at byte {at}: {e}"))?;
            if r.magic != self.magic {
                return Err(format!(
                    "inner message at byte {at} has magic {}, its wrapper {}",
                    r.magic, self.magic
                ));
            }
            if r.compression()? != Compression::None {
                return Err(format!("inner message at byte {at} is compressed again"));
            }
            if self.attributes & TIMESTAMP_TYPE_BIT != 0 {
                r.timestamp = self.timestamp;
            }
            out.push(r);
            at += LOG_OVERHEAD + size;
        }
        if self.magic > 0 {
            let last = out.last().map_or(0, |r| r.offset);
            let base = self.offset - last;
            for r in &mut out {
                r.offset += base;
            }
        }
        Ok(out)
    }
}

/// An int32-length-prefixed byte field (-1: null) at `*at`.
fn bytes_field(body: &Bytes, at: &mut usize, what: &str) -> Result<Option<Bytes>, String> {
    let len = body
        .get(*at..*at + 4)
        .map(|b| i32::from_be_bytes(b.try_into().expect("invariant: 4 bytes")))
        .ok_or_else(|| format!("{what} length cut at byte {at}"))?;
    *at += 4;
    if len == -1 {
        return Ok(None);
    }
    let len = usize::try_from(len)
        .ok()
        .filter(|l| *at + l <= body.len())
        .ok_or_else(|| format!("{what} length {len} does not fit the message"))?;
    let out = body.slice(*at..*at + len);
    *at += len;
    Ok(Some(out))
}

/// A copy of an LZ4 frame whose header checksum is recomputed as the frame format defines it
/// (xxHash32 of the descriptor, second byte): magic-0 writers hashed the frame magic too.
fn with_lz4_header_checksum(frame: &[u8]) -> Vec<u8> {
    const MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];
    let mut out = frame.to_vec();
    if frame.len() < 7 || frame[..4] != MAGIC {
        return out;
    }
    let flg = frame[4];
    let descriptor = 2 + if flg & 0x08 != 0 { 8 } else { 0 } + if flg & 0x01 != 0 { 4 } else { 0 };
    let hc = 4 + descriptor;
    if hc < out.len() {
        out[hc] = (twox_hash::XxHash32::oneshot(0, &frame[4..hc]) >> 8) as u8;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message body (after `offset, size`).
    pub fn message(
        magic: i8,
        attributes: i8,
        ts: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Vec<u8> {
        let mut m = vec![magic as u8, attributes as u8];
        if magic == 1 {
            m.extend_from_slice(&ts.to_be_bytes());
        }
        for f in [key, value] {
            match f {
                None => m.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(b) => {
                    m.extend_from_slice(&(b.len() as i32).to_be_bytes());
                    m.extend_from_slice(b);
                }
            }
        }
        let mut out = crc32fast::hash(&m).to_be_bytes().to_vec();
        out.extend_from_slice(&m);
        out
    }

    fn entry(offset: i64, body: &[u8]) -> Vec<u8> {
        let mut e = offset.to_be_bytes().to_vec();
        e.extend_from_slice(&(body.len() as i32).to_be_bytes());
        e.extend_from_slice(body);
        e
    }

    #[test]
    fn plain_v0_and_v1() {
        let r =
            LegacyRecord::parse(7, message(0, 0, 0, Some(b"k"), Some(b"v")).into()).expect("v0");
        assert!(r.is_valid());
        assert_eq!(
            (r.offset, r.timestamp, r.timestamp_type()),
            (7, -1, "NoTimestampType")
        );
        assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
        let r = LegacyRecord::parse(8, message(1, 0, 1234, None, Some(b"v")).into()).expect("v1");
        assert_eq!(
            (r.timestamp, r.timestamp_type(), r.key.is_none()),
            (1234, "CreateTime", true)
        );
        assert_eq!(r.records(1 << 20).expect("records").len(), 1);
    }

    #[test]
    fn bad_messages_are_errors() {
        let mut m = message(1, 0, 5, Some(b"k"), Some(b"value"));
        assert!(LegacyRecord::parse(0, Bytes::from(m[..10].to_vec())).is_err());
        let n = m.len();
        m[n - 6] = 0x7f; // the value length
        assert!(LegacyRecord::parse(0, m.clone().into()).is_err());
        assert!(LegacyRecord::parse(0, message(3, 0, 0, None, None).into()).is_err());
        let mut flipped = message(0, 0, 0, None, Some(b"abc"));
        let n = flipped.len();
        flipped[n - 1] ^= 1;
        assert!(!LegacyRecord::parse(0, flipped.into())
            .expect("parses")
            .is_valid());
        // zstd did not exist for magic 0/1.
        let z = LegacyRecord::parse(0, message(1, 4, 0, None, Some(b"x")).into()).expect("parses");
        assert!(z.compression().is_err());
    }

    #[test]
    fn compressed_wrappers_in_every_legacy_codec() {
        for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4] {
            for magic in [0i8, 1] {
                // v0 inner offsets absolute (100..103), v1 relative (0..3); wrapper at 103.
                let inner: Vec<u8> = (0..4)
                    .flat_map(|i| {
                        let o = if magic == 0 { 100 + i } else { i };
                        entry(
                            o,
                            &message(magic, 0, 50 + i, None, Some(format!("m{i}").as_bytes())),
                        )
                    })
                    .collect();
                let mut compressed =
                    rafka_storage::compression::compress(codec, &inner).expect("compress");
                if codec == Compression::Lz4 && magic == 0 {
                    // As KAFKA-3160's writers: the header checksum over the frame magic too.
                    let hc = 6;
                    compressed[hc] =
                        (twox_hash::XxHash32::oneshot(0, &compressed[..hc]) >> 8) as u8;
                }
                let w = LegacyRecord::parse(
                    103,
                    message(magic, codec.id() as i8, 99, None, Some(&compressed)).into(),
                )
                .expect("wrapper");
                let rs = w
                    .records(1 << 20)
                    .unwrap_or_else(|e| panic!("{codec} v{magic}: {e}"));
                let offsets: Vec<i64> = rs.iter().map(|r| r.offset).collect();
                assert_eq!(offsets, vec![100, 101, 102, 103], "{codec} v{magic}");
                assert_eq!(rs[2].value.as_deref(), Some(&b"m2"[..]));
            }
        }
    }

    #[test]
    fn log_append_time_wrappers_give_inner_messages_their_timestamp() {
        let inner = entry(0, &message(1, 0, 5, None, Some(b"a")));
        let c = rafka_storage::compression::compress(Compression::Gzip, &inner).expect("gzip");
        let w =
            LegacyRecord::parse(9, message(1, 1 | 0x08, 777, None, Some(&c)).into()).expect("w");
        let rs = w.records(1 << 20).expect("records");
        assert_eq!((rs[0].offset, rs[0].timestamp), (9, 777));
        assert_eq!(w.timestamp_type(), "LogAppendTime");
    }

    #[test]
    fn decompression_is_bounded_and_garbage_is_an_error() {
        let inner: Vec<u8> = (0..100)
            .flat_map(|i| entry(i, &message(1, 0, 0, None, Some(&[b'x'; 1000]))))
            .collect();
        let c = rafka_storage::compression::compress(Compression::Gzip, &inner).expect("gzip");
        let w = LegacyRecord::parse(99, message(1, 1, 0, None, Some(&c)).into()).expect("w");
        assert!(w.records(10_000).is_err());
        let g = LegacyRecord::parse(0, message(1, 2, 0, None, Some(b"not snappy at all")).into())
            .expect("w");
        assert!(g.records(1 << 20).is_err());
    }
}
