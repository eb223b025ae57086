//! The raw check of the metadata log's segments that runs before the log is opened: it walks
//! every `.log` file of `__cluster_metadata-0` batch by batch and reports the first batch that
//! is not intact (a header that does not fit, a size out of bounds, a CRC that fails, an offset
//! that does not follow the previous batch's).
//!
//! Why before: the partition log's own recovery truncates at the first invalid batch, which is
//! right for a torn tail after a crash but silently drops committed metadata when the damage is
//! in the middle. The log store ([`crate::log_store`]) compares what this scan finds with the
//! committed point it knows and refuses to open when the damage lies inside the committed part;
//! only damage past it — a torn tail, entries never acknowledged — is left to recovery. It owns
//! no state and writes nothing.

use rafka_protocol::record_batch::{RecordBatch, LENGTH_OFFSET};
use rafka_storage::FileSystem;
use std::path::{Path, PathBuf};

/// The 8-byte base offset and the 4-byte length before every batch.
const LOG_OVERHEAD: usize = 12;
/// The smallest RecordBatch v2: its header with no records.
const MIN_BATCH_BYTES: usize = 61;

/// The first batch that is not intact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidBatch {
    /// The segment file.
    pub path: PathBuf,
    /// Its byte position in the file.
    pub position: u64,
    /// The log offset the batch holds (or, if its header cannot be trusted, the offset that
    /// should follow the previous batch).
    pub offset: i64,
    pub what: String,
}

/// The segment files under `dir`, by base offset.
fn segments(fs: &dyn FileSystem, dir: &Path) -> std::io::Result<Vec<(i64, PathBuf)>> {
    let mut out: Vec<(i64, PathBuf)> = fs
        .list_dir(dir)?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .filter_map(|p| {
            let base = p.file_stem()?.to_str()?.parse::<i64>().ok()?;
            Some((base, p))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Walks the segments under `dir` (the partition directory) and returns the first batch that is
/// not intact, if any. A batch larger than `max_batch` bytes counts as damaged.
pub fn first_invalid_batch(
    fs: &dyn FileSystem,
    dir: &Path,
    max_batch: usize,
) -> std::io::Result<Option<InvalidBatch>> {
    let mut prev_last: Option<i64> = None;
    for (base, path) in segments(fs, dir)? {
        let file = fs.open(&path, false)?;
        let len = file.len()?;
        let mut pos = 0u64;
        let mut next = prev_last.map_or(base, |p| p + 1).max(base);
        let invalid = |position: u64, offset: i64, what: String| {
            Ok(Some(InvalidBatch {
                path: path.clone(),
                position,
                offset,
                what,
            }))
        };
        while pos < len {
            let left = len - pos;
            if left < MIN_BATCH_BYTES as u64 {
                return invalid(
                    pos,
                    next,
                    format!("{left} bytes where a batch should start"),
                );
            }
            let mut head = [0u8; LOG_OVERHEAD];
            file.read_exact_at(&mut head, pos)?;
            let length = i32::from_be_bytes(
                head[LENGTH_OFFSET..LENGTH_OFFSET + 4]
                    .try_into()
                    .expect("invariant: 4 bytes"),
            );
            let size = LOG_OVERHEAD as i64 + i64::from(length);
            if size < MIN_BATCH_BYTES as i64 || size as u64 > left || size as usize > max_batch {
                return invalid(pos, next, format!("batch size {size} does not fit"));
            }
            let mut buf = vec![0u8; size as usize];
            file.read_exact_at(&mut buf, pos)?;
            let batch = match RecordBatch::parse(bytes::Bytes::from(buf)) {
                Ok(b) => b,
                Err(e) => return invalid(pos, next, e.to_string()),
            };
            if let Err(e) = batch.ensure_valid() {
                return invalid(pos, next, e.to_string());
            }
            if batch.base_offset() < next || batch.last_offset() < batch.base_offset() {
                return invalid(
                    pos,
                    next,
                    format!(
                        "batch offsets {}..={} where {next} was expected",
                        batch.base_offset(),
                        batch.last_offset()
                    ),
                );
            }
            prev_last = Some(batch.last_offset());
            next = batch.last_offset() + 1;
            pos += size as u64;
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rafka_protocol::record_batch::RecordBatchBuilder;
    use rafka_storage::DiskFs;

    fn batch(offset: i64) -> bytes::Bytes {
        let mut b = RecordBatchBuilder::new(offset).partition_leader_epoch(1);
        b.append(0, None, Some(b"entry"), &[]).expect("record");
        b.build()
    }

    fn write_segment(dir: &Path, base: i64, offsets: std::ops::Range<i64>) -> PathBuf {
        let path = dir.join(format!("{base:020}.log"));
        let mut bytes = Vec::new();
        for o in offsets {
            bytes.extend_from_slice(&batch(o));
        }
        std::fs::write(&path, bytes).expect("write");
        path
    }

    #[test]
    fn an_intact_log_has_no_invalid_batch() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_segment(dir.path(), 0, 0..5);
        write_segment(dir.path(), 5, 5..9);
        assert_eq!(
            first_invalid_batch(&DiskFs, dir.path(), 1 << 20).expect("scan"),
            None
        );
    }

    #[test]
    fn a_flipped_byte_is_found_with_its_file_position_and_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_segment(dir.path(), 0, 0..5);
        let path = write_segment(dir.path(), 5, 5..9);
        let one = batch(0).len();
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[2 * one + 40] ^= 0x01;
        std::fs::write(&path, bytes).expect("write");
        let found = first_invalid_batch(&DiskFs, dir.path(), 1 << 20)
            .expect("scan")
            .expect("found");
        assert_eq!(found.path, path);
        assert_eq!(found.position, 2 * one as u64);
        assert_eq!(found.offset, 7);
    }

    #[test]
    fn a_torn_tail_and_an_offset_going_back_are_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_segment(dir.path(), 0, 0..3);
        let mut bytes = std::fs::read(&path).expect("read");
        let full = bytes.len();
        bytes.extend_from_slice(&batch(3)[..30]);
        std::fs::write(&path, &bytes).expect("write");
        let found = first_invalid_batch(&DiskFs, dir.path(), 1 << 20)
            .expect("scan")
            .expect("torn");
        assert_eq!((found.position, found.offset), (full as u64, 3));

        bytes.truncate(full);
        bytes.extend_from_slice(&batch(1));
        std::fs::write(&path, &bytes).expect("write");
        let found = first_invalid_batch(&DiskFs, dir.path(), 1 << 20)
            .expect("scan")
            .expect("offset back");
        assert_eq!(found.offset, 3);
    }
}
