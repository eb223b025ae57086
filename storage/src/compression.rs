//! Decompressing the records region of a compressed RecordBatch v2, for the places that must
//! read the records themselves: the produce path's validation ([`decompress_stream`], into the
//! caller's bounded buffer, nothing kept — see [`crate::log_validator`]), ListOffsets by
//! timestamp inside a compressed batch, log compaction, and the internal topics ([`decompress`],
//! the whole region). The fetch path never decompresses, and nothing stored is re-encoded.
//!
//! This module owns the codecs' stream formats as Kafka's clients write them, and a bound on
//! what one call may produce; it does not own the batch header (see
//! [`rafka_protocol::record_batch`]) nor reading records out of the result (see
//! [`rafka_protocol::record::RecordIter::new`]). [`compress`] is for the log cleaner alone,
//! which recompresses the records it keeps with their batch's codec; the produce and fetch
//! paths never recompress.
//!
//! | codec  | stream format (what [`decompress`] accepts)                                      |
//! |--------|----------------------------------------------------------------------------------|
//! | gzip   | one or more gzip members (RFC 1952), as Java's `GZIPInputStream` reads them       |
//! | snappy | the Java client's xerial framing (`SnappyOutputStream`, below), or, without its   |
//! |        | magic, one raw snappy block — what librdkafka writes                              |
//! | lz4    | one or more LZ4 frames (magic `04 22 4D 18`), header checksum required            |
//! | zstd   | one or more zstd frames (skippable frames allowed), window up to 2^27 bytes       |
//!
//! ```text
//! xerial snappy stream (snappy-java's SnappyOutputStream, Kafka's Java producer) =>
//!   magic              8 bytes  82 'S' 'N' 'A' 'P' 'P' 'Y' 00
//!   version            int32    1 (not checked)
//!   compatibleVersion  int32    1 (not checked)
//!   chunks =>
//!     length           int32    big-endian, bytes of the raw snappy block that follows
//!     block            bytes    one raw snappy block
//!   (a chunk may instead be another 16-byte header: streams concatenated)
//! ```
//!
//! Bounds: a call produces at most `max_output` bytes and never allocates an output buffer
//! larger than that, whatever sizes the stream declares (decompression bombs); a stream that
//! would produce more fails with [`DecompressError::TooLarge`]. Each codec also keeps a
//! working buffer of its own, bounded by the format rather than by the input: about 12 MiB at
//! most for an lz4 frame (4 MiB blocks, linked); for zstd the frame's window, at most 2^27
//! bytes (128 MiB: zstd's and Java's zstd-jni's default limit — Kafka's Java producer streams
//! without a content size, declaring the window of its level, up to 2^27 at level 22, so a
//! smaller limit would reject batches Kafka accepts).
//!
//! Where we are stricter than Kafka's Java readers, it is on input no encoder writes: bytes
//! after the last gzip member and a partial xerial chunk length at the end are errors here,
//! where Java ignores them; an empty region is an error for every codec (snappy-java reads it
//! as no records).
//!
//! All functions are pure and thread-safe; there is no shared state.

use std::io::{self, Read};

use bytes::Bytes;
use rafka_protocol::record_batch::Compression;

pub use crate::error::DecompressError;

/// Decompresses `data`, the records region of a batch compressed with `codec` (the bytes
/// after the 61-byte header), into the records as [`RecordIter::new`] reads them.
///
/// Fails rather than produce more than `max_output` bytes; pick it from what the caller can
/// afford to hold, e.g. a few times the largest batch the log accepts. `Compression::None`
/// returns a copy of `data`, under the same bound. Never panics on any input.
///
/// [`RecordIter::new`]: rafka_protocol::record::RecordIter::new
pub fn decompress(
    codec: Compression,
    data: &[u8],
    max_output: usize,
) -> Result<Bytes, DecompressError> {
    if codec != Compression::None && data.is_empty() {
        return Err(corrupt(codec, "empty input"));
    }
    let records = match codec {
        Compression::None => {
            if data.len() > max_output {
                return Err(DecompressError::TooLarge { codec, max_output });
            }
            data.to_vec()
        }
        Compression::Gzip => {
            // The bufread decoder reads straight from the slice, with no buffer of its own.
            let reader = flate2::bufread::MultiGzDecoder::new(data);
            let mut out = Vec::new();
            read_bounded(codec, reader, &mut out, data.len(), max_output)?;
            out
        }
        Compression::Snappy => snappy(data, max_output)?,
        Compression::Lz4 => lz4(data, max_output)?,
        Compression::Zstd => zstd(data, max_output)?,
    };
    Ok(Bytes::from(records))
}

/// Compresses a records region with `codec` in a stream that Kafka's Java readers and
/// librdkafka both read: gzip one member; snappy the xerial framing the Java producer writes
/// (32 KiB blocks, as snappy-java's default); lz4 one frame with independent 64 KiB blocks and
/// no content size (what Kafka's `KafkaLZ4BlockOutputStream` accepts); zstd one frame at level
/// 3. `Compression::None` returns a copy.
pub fn compress(codec: Compression, data: &[u8]) -> io::Result<Vec<u8>> {
    use std::io::Write;
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(
                Vec::with_capacity(data.len() / 2),
                flate2::Compression::default(),
            );
            e.write_all(data)?;
            e.finish()
        }
        Compression::Snappy => {
            const BLOCK: usize = 32 << 10;
            let mut out = Vec::with_capacity(XERIAL_HEADER_LEN + data.len() / 2);
            out.extend_from_slice(&XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut encoder = snap::raw::Encoder::new();
            for chunk in data.chunks(BLOCK) {
                let block = encoder.compress_vec(chunk).map_err(io::Error::other)?;
                let len = i32::try_from(block.len()).map_err(io::Error::other)?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&block);
            }
            Ok(out)
        }
        Compression::Lz4 => {
            use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
            let info = FrameInfo::new()
                .block_size(BlockSize::Max64KB)
                .block_mode(BlockMode::Independent);
            let mut e = FrameEncoder::with_frame_info(info, Vec::with_capacity(data.len() / 2));
            e.write_all(data)?;
            e.finish().map_err(io::Error::other)
        }
        Compression::Zstd => zstd::bulk::compress(data, 3),
    }
}

fn corrupt(codec: Compression, what: &str) -> DecompressError {
    DecompressError::Corrupt {
        codec,
        source: io::Error::new(io::ErrorKind::InvalidData, what),
    }
}

/// Output buffer size to start from: a guess at the compression ratio, so that typical
/// batches need no regrowth.
fn initial_capacity(input_len: usize) -> usize {
    input_len.saturating_mul(4).max(4096)
}

/// Reads `reader` to its end, appending to `out` while `out` stays within `max_output`
/// bytes; one byte more is [`DecompressError::TooLarge`]. Any read error is the stream's
/// fault: the reader's input is a slice in memory.
fn read_bounded(
    codec: Compression,
    mut reader: impl Read,
    out: &mut Vec<u8>,
    input_len: usize,
    max_output: usize,
) -> Result<(), DecompressError> {
    let mut filled = out.len();
    let result = loop {
        if filled == out.len() {
            if out.len() >= max_output {
                // The buffer is at the bound: the stream must end here.
                let mut probe = [0u8; 1];
                break match read_retrying(&mut reader, &mut probe) {
                    Ok(0) => Ok(()),
                    Ok(_) => Err(DecompressError::TooLarge { codec, max_output }),
                    Err(source) => Err(DecompressError::Corrupt { codec, source }),
                };
            }
            let grown = out
                .len()
                .saturating_mul(2)
                .max(filled.saturating_add(initial_capacity(input_len)))
                .min(max_output);
            out.resize(grown, 0);
        }
        match read_retrying(&mut reader, &mut out[filled..]) {
            Ok(0) => break Ok(()),
            Ok(n) => filled += n,
            Err(source) => break Err(DecompressError::Corrupt { codec, source }),
        }
    };
    out.truncate(filled);
    result
}

fn read_retrying(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}

/// snappy-java's stream header magic; the 16-byte header adds two int32 versions.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_LEN: usize = 16;

/// A region starting with the xerial magic is xerial-framed (the Java client); anything else
/// is one raw snappy block (librdkafka), as snappy-java's `SnappyInputStream` decides too.
fn snappy(data: &[u8], max_output: usize) -> Result<Vec<u8>, DecompressError> {
    const CODEC: Compression = Compression::Snappy;
    let mut decoder = snap::raw::Decoder::new();
    let mut out = Vec::new();
    if !data.starts_with(&XERIAL_MAGIC) {
        snappy_block(&mut decoder, data, &mut out, max_output)?;
        return Ok(out);
    }
    let mut rest = data;
    while !rest.is_empty() {
        if rest.starts_with(&XERIAL_MAGIC) {
            // The stream's header, or the header of a stream concatenated to it.
            if rest.len() < XERIAL_HEADER_LEN {
                return Err(corrupt(CODEC, "xerial header truncated"));
            }
            rest = &rest[XERIAL_HEADER_LEN..];
            continue;
        }
        let Some((length, after)) = rest.split_first_chunk::<4>() else {
            return Err(corrupt(CODEC, "xerial chunk length truncated"));
        };
        let length = i32::from_be_bytes(*length);
        let block = usize::try_from(length)
            .ok()
            .and_then(|length| after.get(..length))
            .ok_or_else(|| {
                corrupt(
                    CODEC,
                    &format!(
                        "xerial chunk of {length} bytes, {} bytes left in the stream",
                        after.len()
                    ),
                )
            })?;
        snappy_block(&mut decoder, block, &mut out, max_output)?;
        rest = &after[block.len()..];
    }
    Ok(out)
}

/// Appends one raw snappy block's content to `out`, after checking the length the block
/// declares against the bound (the decoder then checks the block produces exactly that).
fn snappy_block(
    decoder: &mut snap::raw::Decoder,
    block: &[u8],
    out: &mut Vec<u8>,
    max_output: usize,
) -> Result<(), DecompressError> {
    const CODEC: Compression = Compression::Snappy;
    let snappy_error = |e: snap::Error| DecompressError::Corrupt {
        codec: CODEC,
        source: io::Error::new(io::ErrorKind::InvalidData, e),
    };
    let length = snap::raw::decompress_len(block).map_err(snappy_error)?;
    if length > max_output - out.len() {
        return Err(DecompressError::TooLarge {
            codec: CODEC,
            max_output,
        });
    }
    let start = out.len();
    out.resize(start + length, 0);
    decoder
        .decompress(block, &mut out[start..])
        .map_err(snappy_error)?;
    Ok(())
}

const LZ4_FRAME_MAGIC: u32 = 0x184D_2204;

/// LZ4 frames: `lz4_flex` decodes one frame and checks its checksums, but ends quietly when
/// the input ends at a block boundary or just after a frame magic, so the frames' structure
/// is walked first, then each frame decoded on its own until it is used up.
fn lz4(data: &[u8], max_output: usize) -> Result<Vec<u8>, DecompressError> {
    const CODEC: Compression = Compression::Lz4;
    let frames = lz4_frames(data).map_err(|what| corrupt(CODEC, &what))?;
    let mut out = Vec::new();
    for frame in frames {
        let mut decoder = lz4_flex::frame::FrameDecoder::new(frame);
        let mut left = frame.len();
        // The decoder also reports the end after a block that decodes to nothing (LZ4's
        // encoding of an empty block is one 0x00 byte): go on until the frame is used up.
        loop {
            read_bounded(CODEC, &mut decoder, &mut out, data.len(), max_output)?;
            let now = decoder.get_ref().len();
            if now == 0 {
                break;
            }
            if now == left {
                return Err(corrupt(
                    CODEC,
                    &format!("frame decoding stopped with {now} of its bytes left"),
                ));
            }
            left = now;
        }
    }
    Ok(out)
}

/// Splits `data` into whole LZ4 frames by their lengths alone: each frame's magic,
/// descriptor length, blocks up to the end mark, and checksum fields, nothing left over.
/// Flags, header checksums and block contents are the decoder's to check.
fn lz4_frames(data: &[u8]) -> Result<Vec<&[u8]>, String> {
    const FLG_BLOCK_CHECKSUM: u8 = 0x10;
    const FLG_CONTENT_SIZE: u8 = 0x08;
    const FLG_CONTENT_CHECKSUM: u8 = 0x04;
    const FLG_DICT_ID: u8 = 0x01;
    const BLOCK_UNCOMPRESSED: u32 = 0x8000_0000;

    let u32_at = |at: usize| -> Result<u32, String> {
        data.get(at..at.saturating_add(4))
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| format!("frame truncated at byte {}", data.len()))
    };
    let mut frames = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let start = at;
        let magic = u32_at(at)?;
        if magic != LZ4_FRAME_MAGIC {
            return Err(format!("bad frame magic {magic:#010x} at byte {at}"));
        }
        let flg = *data
            .get(at + 4)
            .ok_or_else(|| format!("frame truncated at byte {}", data.len()))?;
        let descriptor_len = 3 // FLG, BD, HC
            + if flg & FLG_CONTENT_SIZE != 0 { 8 } else { 0 }
            + if flg & FLG_DICT_ID != 0 { 4 } else { 0 };
        at += 4 + descriptor_len;
        let block_checksum = if flg & FLG_BLOCK_CHECKSUM != 0 { 4 } else { 0 };
        loop {
            let block = u32_at(at)?;
            at += 4;
            if block == 0 {
                break; // the end mark
            }
            let size = (block & !BLOCK_UNCOMPRESSED) as usize;
            at = at.saturating_add(size).saturating_add(block_checksum);
        }
        if flg & FLG_CONTENT_CHECKSUM != 0 {
            u32_at(at)?;
            at += 4;
        }
        // `at` is within `data`: the end mark (and content checksum) before it were read.
        frames.push(
            data.get(start..at)
                .ok_or("frame past the end of the input")?,
        );
    }
    Ok(frames)
}

/// zstd's default window limit (`ZSTD_WINDOWLOG_LIMIT_DEFAULT`), which zstd-jni also keeps.
const ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// zstd frames through the streaming decoder, so the output is bounded by what we read, not
/// by the content size a frame declares. The decoder fails on a truncated frame.
fn zstd(data: &[u8], max_output: usize) -> Result<Vec<u8>, DecompressError> {
    const CODEC: Compression = Compression::Zstd;
    let to_corrupt = |source| DecompressError::Corrupt {
        codec: CODEC,
        source,
    };
    let mut decoder = zstd::stream::read::Decoder::with_buffer(data).map_err(to_corrupt)?;
    decoder
        .window_log_max(ZSTD_WINDOW_LOG_MAX)
        .map_err(to_corrupt)?;
    let mut out = Vec::new();
    read_bounded(CODEC, decoder, &mut out, data.len(), max_output)?;
    Ok(out)
}

/// A records region decompressed as a stream, for the produce path's validation
/// ([`crate::log_validator`]): each [`DecompressStream::read`] hands out the next decompressed
/// bytes into the caller's buffer, so the caller bounds its own memory and nothing holds the
/// whole output. The codecs' own working buffers are bounded as the module says; a raw snappy
/// block (librdkafka's framing), which has no streaming form, is decoded whole into a buffer of
/// the size it declares, checked first against `max_output` and in any case at most about 22
/// times the block's compressed size (snappy's best ratio: 64 bytes from a 3-byte copy).
///
/// More than `max_output` bytes in total is [`DecompressError::TooLarge`], whatever the stream
/// declares. Reading to the end (a read of 0 bytes) also checks what follows the last bytes
/// of content: checksums, end marks, trailing garbage.
pub struct DecompressStream<'a> {
    codec: Compression,
    inner: StreamInner<'a>,
    produced: usize,
    max_output: usize,
}

enum StreamInner<'a> {
    None(&'a [u8]),
    Gzip(Box<flate2::bufread::MultiGzDecoder<&'a [u8]>>),
    Snappy(SnappyStream<'a>),
    Lz4(Lz4Stream<'a>),
    Zstd(Box<zstd::stream::read::Decoder<'static, &'a [u8]>>),
}

impl std::fmt::Debug for DecompressStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecompressStream")
            .field("codec", &self.codec)
            .field("produced", &self.produced)
            .field("max_output", &self.max_output)
            .finish_non_exhaustive()
    }
}

/// Starts decompressing `data`, the records region of a batch compressed with `codec`, as a
/// stream; see [`DecompressStream`]. `Compression::None` streams `data` itself.
pub fn decompress_stream(
    codec: Compression,
    data: &[u8],
    max_output: usize,
) -> Result<DecompressStream<'_>, DecompressError> {
    if codec != Compression::None && data.is_empty() {
        return Err(corrupt(codec, "empty input"));
    }
    let inner = match codec {
        Compression::None => StreamInner::None(data),
        Compression::Gzip => {
            StreamInner::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(data)))
        }
        Compression::Snappy => StreamInner::Snappy(SnappyStream {
            rest: data,
            xerial: data.starts_with(&XERIAL_MAGIC),
            started: false,
            decoder: snap::raw::Decoder::new(),
            block: Vec::new(),
            at: 0,
            max_output,
        }),
        Compression::Lz4 => {
            let frames = lz4_frames(data).map_err(|what| corrupt(codec, &what))?;
            StreamInner::Lz4(Lz4Stream {
                frames: frames.into_iter(),
                current: None,
                left: 0,
            })
        }
        Compression::Zstd => {
            let to_corrupt = |source| DecompressError::Corrupt { codec, source };
            let mut decoder = zstd::stream::read::Decoder::with_buffer(data).map_err(to_corrupt)?;
            decoder
                .window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(to_corrupt)?;
            StreamInner::Zstd(Box::new(decoder))
        }
    };
    Ok(DecompressStream {
        codec,
        inner,
        produced: 0,
        max_output,
    })
}

impl DecompressStream<'_> {
    pub fn codec(&self) -> Compression {
        self.codec
    }

    /// Decompressed bytes handed out so far.
    pub fn produced(&self) -> usize {
        self.produced
    }

    /// Fills the start of `buf` with the next decompressed bytes; 0 at the end of the stream
    /// (or for an empty `buf`).
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, DecompressError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let codec = self.codec;
        let to_corrupt = |source| DecompressError::Corrupt { codec, source };
        let n = match &mut self.inner {
            StreamInner::None(rest) => {
                let n = rest.len().min(buf.len());
                buf[..n].copy_from_slice(&rest[..n]);
                *rest = &rest[n..];
                n
            }
            StreamInner::Gzip(d) => read_retrying(d, buf).map_err(to_corrupt)?,
            StreamInner::Zstd(d) => read_retrying(d, buf).map_err(to_corrupt)?,
            StreamInner::Snappy(s) => s.read(buf)?,
            StreamInner::Lz4(s) => s.read(buf)?,
        };
        self.produced = self.produced.saturating_add(n);
        if self.produced > self.max_output {
            return Err(DecompressError::TooLarge {
                codec,
                max_output: self.max_output,
            });
        }
        Ok(n)
    }
}

/// Snappy, one raw block or xerial chunk at a time (see [`snappy`] for the framing).
struct SnappyStream<'a> {
    rest: &'a [u8],
    xerial: bool,
    /// A raw block has been taken (raw mode holds exactly one).
    started: bool,
    decoder: snap::raw::Decoder,
    /// The current block's content, handed out from `at`.
    block: Vec<u8>,
    at: usize,
    max_output: usize,
}

impl SnappyStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, DecompressError> {
        const CODEC: Compression = Compression::Snappy;
        while self.at == self.block.len() {
            self.block.clear();
            self.at = 0;
            if !self.xerial {
                if self.started {
                    return Ok(0);
                }
                self.started = true;
                snappy_block(
                    &mut self.decoder,
                    self.rest,
                    &mut self.block,
                    self.max_output,
                )?;
                continue;
            }
            if self.rest.is_empty() {
                return Ok(0);
            }
            if self.rest.starts_with(&XERIAL_MAGIC) {
                if self.rest.len() < XERIAL_HEADER_LEN {
                    return Err(corrupt(CODEC, "xerial header truncated"));
                }
                self.rest = &self.rest[XERIAL_HEADER_LEN..];
                continue;
            }
            let Some((length, after)) = self.rest.split_first_chunk::<4>() else {
                return Err(corrupt(CODEC, "xerial chunk length truncated"));
            };
            let length = i32::from_be_bytes(*length);
            let Some(block) = usize::try_from(length).ok().and_then(|l| after.get(..l)) else {
                return Err(corrupt(
                    CODEC,
                    &format!(
                        "xerial chunk of {length} bytes, {} bytes left in the stream",
                        after.len()
                    ),
                ));
            };
            self.rest = &after[block.len()..];
            snappy_block(&mut self.decoder, block, &mut self.block, self.max_output)?;
        }
        let n = (self.block.len() - self.at).min(buf.len());
        buf[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// LZ4 frames one after another, with the same end-of-frame checks as [`lz4`].
struct Lz4Stream<'a> {
    frames: std::vec::IntoIter<&'a [u8]>,
    current: Option<lz4_flex::frame::FrameDecoder<&'a [u8]>>,
    /// The current frame's input left when its decoder last reported an end.
    left: usize,
}

impl Lz4Stream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, DecompressError> {
        const CODEC: Compression = Compression::Lz4;
        loop {
            let decoder = match &mut self.current {
                Some(d) => d,
                None => match self.frames.next() {
                    None => return Ok(0),
                    Some(frame) => {
                        self.left = frame.len();
                        self.current
                            .insert(lz4_flex::frame::FrameDecoder::new(frame))
                    }
                },
            };
            let n = read_retrying(decoder, buf).map_err(|source| DecompressError::Corrupt {
                codec: CODEC,
                source,
            })?;
            if n > 0 {
                return Ok(n);
            }
            // An end: of the frame if its input is used up; after an empty block otherwise
            // (go on), unless the decoder made no progress at all.
            let now = decoder.get_ref().len();
            if now == 0 {
                self.current = None;
            } else if now == self.left {
                return Err(corrupt(
                    CODEC,
                    &format!("frame decoding stopped with {now} of its bytes left"),
                ));
            } else {
                self.left = now;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rafka_protocol::record::RecordIter;
    use rafka_protocol::record_batch::{RecordBatch, RECORDS_OFFSET};
    use std::io::Write;

    const MAX: usize = 1 << 20;

    #[test]
    fn what_compress_writes_decompresses_to_the_input_for_every_codec() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_be_bytes())
            .collect();
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let packed = compress(codec, &data).unwrap();
            if codec != Compression::None {
                assert!(packed.len() < data.len() / 2, "{codec} compresses");
            }
            assert_eq!(
                &decompress(codec, &packed, MAX).unwrap()[..],
                &data[..],
                "{codec}"
            );
        }
    }

    struct Golden {
        name: &'static str,
        bytes: &'static [u8],
    }

    macro_rules! golden {
        ($($name:literal),* $(,)?) => {
            [$(Golden {
                name: $name,
                bytes: include_bytes!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../protocol/tests/data/librdkafka-batches/",
                    $name
                )),
            }),*]
        };
    }

    /// The batches librdkafka 2.16 sent (protocol/tests/data/librdkafka-batches/README.md).
    const GOLDEN: [Golden; 20] = golden![
        "none-1.bin",
        "none-2.bin",
        "none-3.bin",
        "none-4.bin",
        "gzip-1.bin",
        "gzip-2.bin",
        "gzip-3.bin",
        "gzip-4.bin",
        "snappy-1.bin",
        "snappy-2.bin",
        "snappy-3.bin",
        "snappy-4.bin",
        "lz4-1.bin",
        "lz4-2.bin",
        "lz4-3.bin",
        "lz4-4.bin",
        "zstd-1.bin",
        "zstd-2.bin",
        "zstd-3.bin",
        "zstd-4.bin",
    ];

    /// A golden batch's codec, record count and records region (bytes 61 to the end).
    fn region(golden: &Golden) -> (Compression, usize, Bytes) {
        let batch = RecordBatch::parse(Bytes::from_static(golden.bytes)).unwrap();
        let codec = batch.compression().unwrap();
        assert!(golden.name.starts_with(codec.name()), "{}", golden.name);
        let count = usize::try_from(batch.record_count()).unwrap();
        assert_eq!(RECORDS_OFFSET, 61);
        (codec, count, batch.records_bytes())
    }

    /// Every compressed golden batch decompresses to the records the README describes:
    /// key `k<i>`, value `value-<codec>-<i>-` and 50 `x`, header h=v on odd i; each codec's
    /// four batches hold i = 0..50 once each.
    #[test]
    fn golden_batches_decompress_to_their_records() {
        for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
            let mut seen = Vec::new();
            for golden in GOLDEN.iter().filter(|g| g.name.starts_with(codec)) {
                let (compression, count, data) = region(golden);
                let records = decompress(compression, &data, MAX)
                    .unwrap_or_else(|e| panic!("{}: {e}", golden.name));
                if compression != Compression::None {
                    assert!(records.len() > data.len(), "{}", golden.name);
                }
                let records: Vec<_> = RecordIter::new(records, count)
                    .collect::<Result<_, _>>()
                    .unwrap_or_else(|e| panic!("{}: {e}", golden.name));
                assert_eq!(records.len(), count, "{}", golden.name);
                for record in records {
                    let key = record.key.unwrap();
                    let i: usize = std::str::from_utf8(&key)
                        .unwrap()
                        .strip_prefix('k')
                        .unwrap()
                        .parse()
                        .unwrap();
                    let value = format!("value-{codec}-{i}-{}", "x".repeat(50));
                    assert_eq!(record.value.as_deref(), Some(value.as_bytes()), "{i}");
                    let headers: Vec<_> = record
                        .headers
                        .iter()
                        .map(|h| (&h.key[..], h.value.as_deref()))
                        .collect();
                    if i % 2 == 1 {
                        assert_eq!(headers, [(&b"h"[..], Some(&b"v"[..]))], "{i}");
                    } else {
                        assert!(headers.is_empty(), "{i}");
                    }
                    seen.push(i);
                }
            }
            seen.sort_unstable();
            assert_eq!(seen, (0..50).collect::<Vec<_>>(), "{codec}");
        }
    }

    /// librdkafka writes raw snappy, not the Java client's xerial framing.
    #[test]
    fn librdkafka_snappy_is_one_raw_block() {
        for golden in GOLDEN.iter().filter(|g| g.name.starts_with("snappy")) {
            let (_, _, data) = region(golden);
            assert!(!data.starts_with(&XERIAL_MAGIC), "{}", golden.name);
            let raw = snap::raw::Decoder::new().decompress_vec(&data).unwrap();
            let ours = decompress(Compression::Snappy, &data, MAX).unwrap();
            assert_eq!(ours, raw, "{}", golden.name);
        }
    }

    /// The records of none-1.bin, as test content.
    fn plain_records() -> Bytes {
        region(&GOLDEN[0]).2
    }

    fn xerial_header() -> Vec<u8> {
        let mut stream = XERIAL_MAGIC.to_vec();
        stream.extend_from_slice(&1i32.to_be_bytes());
        stream.extend_from_slice(&1i32.to_be_bytes());
        stream
    }

    /// snappy-java's format: a header, then (big-endian length, raw block) chunks.
    fn xerial(chunks: &[&[u8]]) -> Vec<u8> {
        let mut stream = xerial_header();
        for chunk in chunks {
            let block = snap::raw::Encoder::new().compress_vec(chunk).unwrap();
            stream.extend_from_slice(&i32::try_from(block.len()).unwrap().to_be_bytes());
            stream.extend_from_slice(&block);
        }
        stream
    }

    #[test]
    fn snappy_xerial_frames_as_the_java_client_writes_them() {
        let plain = plain_records();
        let (a, b) = plain.split_at(300);
        let (b, c) = b.split_at(200);
        let one = xerial(&[&plain]);
        assert_eq!(decompress(Compression::Snappy, &one, MAX).unwrap(), plain);
        let three = xerial(&[a, b, c]);
        assert_eq!(decompress(Compression::Snappy, &three, MAX).unwrap(), plain);
        // Two streams concatenated: the second header stands where a chunk length would.
        let mut two = xerial(&[a]);
        two.extend_from_slice(&xerial(&[b, c]));
        assert_eq!(decompress(Compression::Snappy, &two, MAX).unwrap(), plain);
        // A header with no chunks is an empty stream.
        assert!(decompress(Compression::Snappy, &xerial_header(), MAX)
            .unwrap()
            .is_empty());
        // A negative chunk length.
        let mut negative = xerial_header();
        negative.extend_from_slice(&(-1i32).to_be_bytes());
        let err = decompress(Compression::Snappy, &negative, MAX).unwrap_err();
        assert!(
            err.to_string().starts_with("snappy: corrupt stream: "),
            "{err}"
        );
    }

    #[test]
    fn lz4_frames_of_every_kind_lz4_flex_writes() {
        let plain = plain_records();
        let big: Vec<u8> = plain.iter().copied().cycle().take(300_000).collect();
        for (content, linked, checksums, size) in [
            (&plain[..], false, false, false),
            (&plain[..], true, true, true),
            (&big[..], true, false, false),
            (&big[..], false, true, true),
        ] {
            let frame = lz4_frame(content, linked, checksums, size);
            assert_eq!(decompress(Compression::Lz4, &frame, MAX).unwrap(), content);
        }
        // Frames concatenated.
        let mut two = lz4_frame(&plain, false, false, false);
        two.extend_from_slice(&lz4_frame(&big, true, true, false));
        let both = [&plain[..], &big[..]].concat();
        assert_eq!(decompress(Compression::Lz4, &two, MAX).unwrap(), both);
    }

    fn lz4_frame(content: &[u8], linked: bool, checksums: bool, size: bool) -> Vec<u8> {
        use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
        let info = FrameInfo::new()
            .block_size(BlockSize::Max64KB)
            .block_mode(if linked {
                BlockMode::Linked
            } else {
                BlockMode::Independent
            })
            .block_checksums(checksums)
            .content_checksum(checksums)
            .content_size(size.then_some(content.len() as u64));
        let mut encoder = FrameEncoder::with_frame_info(info, Vec::new());
        encoder.write_all(content).unwrap();
        encoder.finish().unwrap()
    }

    /// A frame whose first block is LZ4's empty block (one 0x00 byte): the rest still counts.
    #[test]
    fn lz4_empty_block_does_not_end_the_frame() {
        let mut frame = vec![0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82]; // librdkafka's header
        frame.extend_from_slice(&1u32.to_le_bytes()); // a compressed block of 1 byte
        frame.push(0x00);
        frame.extend_from_slice(&(0x8000_0000u32 | 3).to_le_bytes()); // uncompressed, 3 bytes
        frame.extend_from_slice(b"abc");
        frame.extend_from_slice(&0u32.to_le_bytes()); // end mark
        assert_eq!(
            decompress(Compression::Lz4, &frame, MAX).unwrap(),
            &b"abc"[..]
        );
        // Two empty blocks and nothing else.
        let mut empty = frame[..12].to_vec();
        empty.extend_from_slice(&frame[7..12]);
        empty.extend_from_slice(&0u32.to_le_bytes());
        assert!(decompress(Compression::Lz4, &empty, MAX)
            .unwrap()
            .is_empty());
    }

    /// Every proper prefix of every compressed golden region, and of multi-block lz4 frames
    /// (cut inside and between blocks), is an error.
    #[test]
    fn truncated_streams_are_errors() {
        let mut cases: Vec<(Compression, Vec<u8>)> = Vec::new();
        for golden in &GOLDEN[4..] {
            let (codec, _, data) = region(golden);
            cases.push((codec, data.to_vec()));
        }
        let big: Vec<u8> = plain_records()
            .iter()
            .copied()
            .cycle()
            .take(300_000)
            .collect();
        cases.push((Compression::Lz4, lz4_frame(&big, false, false, false)));
        cases.push((Compression::Lz4, lz4_frame(&big, true, true, true)));
        for (codec, data) in cases {
            for cut in 0..data.len() {
                match decompress(codec, &data[..cut], MAX) {
                    Err(DecompressError::Corrupt { .. }) => {}
                    other => panic!("{codec} cut at {cut} of {}: {other:?}", data.len()),
                }
            }
        }
        // xerial framing has no end mark: a cut between chunks is a shorter valid stream.
        let plain = plain_records();
        let (a, b) = plain.split_at(500);
        let stream = xerial(&[a, b]);
        let first_chunk_end = stream.len() - (xerial(&[b]).len() - XERIAL_HEADER_LEN);
        for cut in 0..stream.len() {
            let result = decompress(Compression::Snappy, &stream[..cut], MAX);
            match (cut, result) {
                (XERIAL_HEADER_LEN, Ok(out)) => assert!(out.is_empty()),
                (cut, Ok(out)) if cut == first_chunk_end => assert_eq!(out, a),
                (_, Err(DecompressError::Corrupt { .. })) => {}
                (cut, other) => panic!("xerial cut at {cut} of {}: {other:?}", stream.len()),
            }
        }
    }

    /// A small xorshift generator: deterministic garbage without another dependency.
    struct Garbage(u64);

    impl Garbage {
        fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len)
                .map(|_| {
                    self.0 ^= self.0 << 13;
                    self.0 ^= self.0 >> 7;
                    self.0 ^= self.0 << 17;
                    self.0 as u8
                })
                .collect()
        }
    }

    const CODECS: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn check_bounded(codec: Compression, data: &[u8], max_output: usize) {
        if let Ok(out) = decompress(codec, data, max_output) {
            assert!(out.len() <= max_output, "{codec}");
        }
    }

    /// Random bytes, random bytes behind each codec's magic (to get past the first check),
    /// and every single-bit flip of one golden region per codec: errors or bounded output,
    /// no panic.
    #[test]
    fn garbage_and_corruption_never_panic() {
        let mut garbage = Garbage(0x9E37_79B9_7F4A_7C15);
        let magics: [&[u8]; 6] = [
            &[],
            &[0x1f, 0x8b, 0x08, 0x00],
            &XERIAL_MAGIC,
            &[0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82],
            &[0x28, 0xb5, 0x2f, 0xfd],
            &[0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58],
        ];
        for len in [0, 1, 2, 3, 4, 7, 8, 15, 16, 17, 31, 64, 255, 1000, 5000] {
            for _ in 0..20 {
                for magic in magics {
                    let data = [magic, &garbage.bytes(len)].concat();
                    for codec in CODECS {
                        check_bounded(codec, &data, 64 << 10);
                    }
                }
            }
        }
        for golden in GOLDEN[4..].iter().step_by(4) {
            let (codec, _, data) = region(golden);
            let mut data = data.to_vec();
            for bit in 0..data.len() * 8 {
                data[bit / 8] ^= 1 << (bit % 8);
                check_bounded(codec, &data, 4096);
                data[bit / 8] ^= 1 << (bit % 8);
            }
        }
    }

    #[test]
    fn errors_name_the_codec() {
        for codec in CODECS.into_iter().skip(1) {
            let err = decompress(codec, b"not compressed at all", MAX).unwrap_err();
            let prefix = format!("{}: corrupt stream: ", codec.name());
            assert!(err.to_string().starts_with(&prefix), "{err}");
            let err = decompress(codec, b"", MAX).unwrap_err();
            assert_eq!(err.to_string(), format!("{prefix}empty input"));
        }
        // gzip: bytes after the last member.
        let mut gzip = gzip_member(b"records");
        assert_eq!(
            decompress(Compression::Gzip, &gzip, MAX).unwrap(),
            &b"records"[..]
        );
        gzip.extend_from_slice(b"\0\0\0\0");
        assert!(decompress(Compression::Gzip, &gzip, MAX).is_err());
        let err = decompress(Compression::None, &[0; 10], 9).unwrap_err();
        assert_eq!(err.to_string(), "none: output exceeds 9 bytes");
    }

    fn gzip_member(content: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(content).unwrap();
        encoder.finish().unwrap()
    }

    const MIB: usize = 1 << 20;

    /// `members` copies of one stream of 1 MiB of zeros: a valid stream of that many MiB
    /// for every codec (gzip members, snappy chunks, lz4 and zstd frames concatenate).
    fn zeros(codec: Compression, members: usize) -> Vec<u8> {
        let zeros = vec![0u8; MIB];
        let (head, member) = match codec {
            Compression::None => (Vec::new(), zeros),
            Compression::Gzip => (Vec::new(), gzip_member(&zeros)),
            Compression::Snappy => {
                let stream = xerial(&[&zeros]);
                let (head, chunk) = stream.split_at(XERIAL_HEADER_LEN);
                (head.to_vec(), chunk.to_vec())
            }
            Compression::Lz4 => (Vec::new(), lz4_frame(&zeros, false, false, false)),
            Compression::Zstd => (Vec::new(), zstd::bulk::compress(&zeros, 3).unwrap()),
        };
        let mut stream = head;
        for _ in 0..members {
            stream.extend_from_slice(&member);
        }
        stream
    }

    /// 100 MiB of zeros in each codec, from a few hundred KiB of input, stops at the bound;
    /// at exactly the bound the same stream decodes.
    #[test]
    fn bombs_stop_at_max_output() {
        for codec in CODECS.into_iter().skip(1) {
            let bomb = zeros(codec, 100);
            assert!(bomb.len() < 10 * MIB, "{codec}: {}", bomb.len());
            match decompress(codec, &bomb, 16 * MIB) {
                Err(e @ DecompressError::TooLarge { .. }) => assert_eq!(
                    e.to_string(),
                    format!("{codec}: output exceeds 16777216 bytes")
                ),
                other => panic!("{codec}: {other:?}"),
            }
            let four = zeros(codec, 4);
            let out = decompress(codec, &four, 4 * MIB).unwrap();
            assert!(
                out.len() == 4 * MIB && out.iter().all(|&b| b == 0),
                "{codec}"
            );
            assert!(matches!(
                decompress(codec, &four, 4 * MIB - 1),
                Err(DecompressError::TooLarge { .. })
            ));
        }
    }

    /// Reads `stream` to its end through a small buffer.
    fn drain(mut stream: DecompressStream<'_>) -> Result<Vec<u8>, DecompressError> {
        let mut out = Vec::new();
        let mut buf = [0u8; 1000];
        loop {
            match stream.read(&mut buf)? {
                0 => return Ok(out),
                n => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// The stream gives what `decompress` gives — golden batches, multi-frame and multi-chunk
    /// streams — fails where it fails (every truncation), and stops at the same bound.
    #[test]
    fn the_stream_reads_what_decompress_reads() {
        for golden in &GOLDEN {
            let (codec, _, data) = region(golden);
            let whole = decompress(codec, &data, MAX).unwrap();
            let streamed = drain(decompress_stream(codec, &data, MAX).unwrap()).unwrap();
            assert_eq!(streamed, whole, "{}", golden.name);
            for cut in 0..data.len() {
                let whole = decompress(codec, &data[..cut], MAX);
                let streamed = decompress_stream(codec, &data[..cut], MAX).and_then(|s| drain(s));
                assert_eq!(
                    whole.is_ok(),
                    streamed.is_ok(),
                    "{} cut at {cut}",
                    golden.name
                );
            }
        }
        for codec in CODECS.into_iter().skip(1) {
            let four = zeros(codec, 4);
            let out = drain(decompress_stream(codec, &four, 4 * MIB).unwrap()).unwrap();
            assert!(
                out.len() == 4 * MIB && out.iter().all(|&b| b == 0),
                "{codec}"
            );
            let over = decompress_stream(codec, &four, 4 * MIB - 1).and_then(|s| drain(s));
            assert!(
                matches!(over, Err(DecompressError::TooLarge { .. })),
                "{codec}: {over:?}"
            );
        }
        let mut two = lz4_frame(&plain_records(), false, false, false);
        two.extend_from_slice(&lz4_frame(&plain_records(), true, true, true));
        assert_eq!(
            drain(decompress_stream(Compression::Lz4, &two, MAX).unwrap()).unwrap(),
            decompress(Compression::Lz4, &two, MAX).unwrap()
        );
        let plain = plain_records();
        let chunks = xerial(&[&plain[..100], &plain[100..]]);
        assert_eq!(
            drain(decompress_stream(Compression::Snappy, &chunks, MAX).unwrap()).unwrap(),
            plain
        );
    }

    /// Declared sizes are not trusted: a raw snappy block claiming 4 GiB and a zstd frame
    /// claiming 1 TiB, both with a few bytes of content.
    #[test]
    fn declared_sizes_are_not_trusted() {
        let claim = [0xff, 0xff, 0xff, 0xff, 0x0f];
        let err = decompress(Compression::Snappy, &claim, MAX).unwrap_err();
        assert!(matches!(err, DecompressError::TooLarge { .. }), "{err}");

        let mut frame = zstd::bulk::compress(b"tiny", 3).unwrap();
        // Frame header descriptor: single segment, a 1-byte content size right after it.
        assert_eq!(frame[4], 0x20);
        frame[4] = 0xe0; // single segment, an 8-byte content size
        frame.splice(5..6, (1u64 << 40).to_le_bytes());
        let err = decompress(Compression::Zstd, &frame, MAX).unwrap_err();
        assert!(
            err.to_string().starts_with("zstd: corrupt stream: "),
            "{err}"
        );
    }
}
