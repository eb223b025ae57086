//! Kafka's checkpoint files, byte for byte, and [`TopicPartition`].
//!
//! Owns the text format every checkpoint shares ([`CheckpointFile`], with one
//! [`CheckpointEntry`] implementation per kind of line) and the offset checkpoints at the top of a
//! log directory ([`OffsetCheckpointFile`]: `recovery-point-offset-checkpoint`,
//! `log-start-offset-checkpoint`, `replication-offset-checkpoint`). The `leader-epoch-checkpoint`
//! entry format and its cache live in [`crate::leader_epoch`]; deciding *when* to checkpoint is
//! the log manager's business, not this module's.
//!
//! # Format
//!
//! UTF-8 text, `\n` after every line (including the last):
//!
//! ```text
//! 0                 <- version (every checkpoint kind Kafka has is at version 0)
//! 2                 <- number of entries that follow
//! my-topic 0 1200   <- one entry per line, its fields separated by one space
//! my-topic 1 977
//! ```
//!
//! A file is replaced as a whole through [`FileSystem::write_atomic`] (temporary file, fsync,
//! rename, fsync of the directory), so after a crash it holds the old or the new contents, never a
//! mix; a left-over `<name>.tmp` is never read.
//!
//! Reading follows Kafka's `CheckpointFile.CheckpointReadBuffer`: a missing or empty file, or one
//! with only the version line, has no entries (Kafka creates checkpoint files empty); `\r\n` line
//! endings and runs of whitespace between fields are accepted; anything else that does not parse
//! — another version, a count that does not match the entries, a field that is not a number, a
//! field too many or too few, a blank line — is [`StorageError::CorruptFile`] naming the file and
//! the line.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{IoContext, Result, StorageError};
use crate::fs::FileSystem;

/// The recovery-point checkpoint at the top of a log directory.
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
/// The log-start-offset checkpoint at the top of a log directory.
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
/// The high-watermark checkpoint at the top of a log directory.
pub const REPLICATION_OFFSET_CHECKPOINT: &str = "replication-offset-checkpoint";

/// One of the three offset checkpoints at the top of a log directory, each written on its own
/// interval as in Kafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointKind {
    /// High watermarks (`replica.high.watermark.checkpoint.interval.ms`).
    HighWatermarks,
    /// Recovery points (`log.flush.offset.checkpoint.interval.ms`).
    RecoveryPoints,
    /// Log start offsets (`log.flush.start.offset.checkpoint.interval.ms`).
    LogStartOffsets,
}

impl CheckpointKind {
    pub const ALL: [CheckpointKind; 3] = [
        CheckpointKind::HighWatermarks,
        CheckpointKind::RecoveryPoints,
        CheckpointKind::LogStartOffsets,
    ];

    /// The file's name in its log directory.
    pub fn file_name(self) -> &'static str {
        match self {
            CheckpointKind::HighWatermarks => REPLICATION_OFFSET_CHECKPOINT,
            CheckpointKind::RecoveryPoints => RECOVERY_POINT_CHECKPOINT,
            CheckpointKind::LogStartOffsets => LOG_START_OFFSET_CHECKPOINT,
        }
    }
}

/// A partition of a topic, as Kafka names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    /// The name of the partition's directory in a log directory: `<topic>-<partition>`.
    pub fn dir_name(&self) -> String {
        self.to_string()
    }

    /// The partition a directory name stands for: the name is split at its *last* `-` (topic
    /// names may contain `-`); the topic must not be empty and the partition must be a
    /// non-negative `i32` written as [`TopicPartition::dir_name`] writes it (digits only, no sign,
    /// no leading zero), so that `parse_dir_name(n)?.dir_name() == n`. Names with a suffix
    /// (`.delete`, `-future`, `-stray`) are not partitions and give `None`.
    pub fn parse_dir_name(name: &str) -> Option<TopicPartition> {
        let (topic, partition) = name.rsplit_once('-')?;
        if topic.is_empty()
            || partition.is_empty()
            || !partition.bytes().all(|b| b.is_ascii_digit())
            || (partition.len() > 1 && partition.starts_with('0'))
        {
            return None;
        }
        Some(TopicPartition::new(topic, partition.parse().ok()?))
    }
}

/// As Kafka prints it: `topic-partition`.
impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// One kind of checkpoint line: how an entry is written and read back.
pub trait CheckpointEntry: Sized {
    /// The version on the first line of files of this kind.
    const VERSION: i32;
    /// Appends this entry's line, without the line ending.
    fn format(&self, line: &mut String);
    /// Parses one line (without its line ending); `Err` says what is wrong with it.
    fn parse(line: &str) -> std::result::Result<Self, String>;
}

/// A checkpoint file holding a list of `T`, replaced as a whole on every write.
///
/// Thread-safe: writes are serialised by a mutex, as they share one temporary file; reads need no
/// lock, as a file is only ever replaced by a rename.
#[derive(Debug)]
pub struct CheckpointFile<T> {
    fs: Arc<dyn FileSystem>,
    path: PathBuf,
    /// Serialises writers: two of them would otherwise interleave in `<path>.tmp`.
    write_lock: Mutex<()>,
    _entry: PhantomData<fn() -> T>,
}

impl<T: CheckpointEntry> CheckpointFile<T> {
    /// A checkpoint at `path`; nothing is read or created until [`read`](Self::read) or
    /// [`write`](Self::write).
    pub fn new(fs: Arc<dyn FileSystem>, path: PathBuf) -> CheckpointFile<T> {
        CheckpointFile {
            fs,
            path,
            write_lock: Mutex::new(()),
            _entry: PhantomData,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file with `entries`, atomically and durably: when this returns `Ok` the new
    /// contents survive a crash; when it fails the file holds the old or the new contents.
    pub fn write<I>(&self, entries: I) -> Result<()>
    where
        I: IntoIterator,
        I::Item: Borrow<T>,
    {
        let bytes = encode(entries);
        // A writer that panicked left nothing shared behind but the temporary file, which the
        // next write truncates: the lock stays usable.
        let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.fs.write_atomic(&self.path, &bytes).at(&self.path)
    }

    /// [`CheckpointFile::write`] without the fsyncs, for a shutdown that syncs the whole file
    /// system afterwards ([`FileSystem::write_atomic_unsynced`]).
    pub fn write_unsynced<I>(&self, entries: I) -> Result<()>
    where
        I: IntoIterator,
        I::Item: Borrow<T>,
    {
        let bytes = encode(entries);
        let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.fs
            .write_atomic_unsynced(&self.path, &bytes)
            .at(&self.path)
    }

    /// The entries in file order; none if the file does not exist.
    pub fn read(&self) -> Result<Vec<T>> {
        if !self.fs.exists(&self.path) {
            return Ok(Vec::new());
        }
        let bytes = self.fs.read(&self.path).at(&self.path)?;
        decode(&bytes).map_err(|m| StorageError::CorruptFile {
            path: self.path.clone(),
            what: format!("line {}: {}", m.line, m.what),
        })
    }
}

/// The bytes of a checkpoint file holding `entries`.
pub fn encode<T, I>(entries: I) -> Vec<u8>
where
    T: CheckpointEntry,
    I: IntoIterator,
    I::Item: Borrow<T>,
{
    let mut body = String::new();
    let mut count: usize = 0;
    for entry in entries {
        entry.borrow().format(&mut body);
        body.push('\n');
        count += 1;
    }
    let mut out = String::with_capacity(body.len() + 16);
    // Writing into a String cannot fail.
    let _ = write!(out, "{}\n{}\n", T::VERSION, count);
    out.push_str(&body);
    out.into_bytes()
}

/// Where and why a checkpoint file does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Malformed {
    /// 1-based.
    line: usize,
    what: String,
}

/// The entries of a checkpoint file's bytes.
fn decode<T: CheckpointEntry>(bytes: &[u8]) -> std::result::Result<Vec<T>, Malformed> {
    let text = std::str::from_utf8(bytes).map_err(|e| Malformed {
        line: 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count(),
        what: "not UTF-8 text".to_string(),
    })?;
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));

    let Some((n, line)) = lines.next() else {
        return Ok(Vec::new());
    };
    let version: i32 = line.parse().map_err(|_| Malformed {
        line: n,
        what: format!("expected the version, found {}", quoted(line)),
    })?;
    if version != T::VERSION {
        return Err(Malformed {
            line: n,
            what: format!("unsupported version {version}, expected {}", T::VERSION),
        });
    }

    let Some((count_line, line)) = lines.next() else {
        return Ok(Vec::new());
    };
    let count: i32 = line.parse().map_err(|_| Malformed {
        line: count_line,
        what: format!("expected the number of entries, found {}", quoted(line)),
    })?;

    // The count is only a hint until the entries are there: do not trust it for the allocation.
    let mut entries = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(4096));
    for (n, line) in lines {
        let entry = T::parse(line).map_err(|what| Malformed {
            line: n,
            what: format!("{what}, found {}", quoted(line)),
        })?;
        entries.push(entry);
    }
    if i64::from(count) != entries.len() as i64 {
        return Err(Malformed {
            line: count_line,
            what: format!("expected {count} entries, found {}", entries.len()),
        });
    }
    Ok(entries)
}

/// A line for an error message: quoted, escaped, and cut short if long (the file may be garbage).
fn quoted(line: &str) -> String {
    const MAX: usize = 80;
    match line.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}...", &line[..cut]),
        None => format!("{line:?}"),
    }
}

/// The whitespace-separated fields of a line, exactly `N` of them.
pub(crate) fn fields<const N: usize>(line: &str) -> Option<[&str; N]> {
    let mut it = line.split_whitespace();
    let mut out = [""; N];
    for slot in &mut out {
        *slot = it.next()?;
    }
    it.next().is_none().then_some(out)
}

/// One line of an offset checkpoint: `<topic> <partition> <offset>`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TopicPartitionOffset {
    tp: TopicPartition,
    offset: i64,
}

impl CheckpointEntry for TopicPartitionOffset {
    const VERSION: i32 = 0;

    fn format(&self, line: &mut String) {
        let _ = write!(
            line,
            "{} {} {}",
            self.tp.topic, self.tp.partition, self.offset
        );
    }

    fn parse(line: &str) -> std::result::Result<Self, String> {
        let [topic, partition, offset] =
            fields(line).ok_or("expected `<topic> <partition> <offset>`")?;
        let partition: i32 = partition
            .parse()
            .ok()
            .filter(|p| *p >= 0)
            .ok_or("the partition is not a non-negative 32-bit integer")?;
        let offset: i64 = offset
            .parse()
            .map_err(|_| "the offset is not a 64-bit integer")?;
        Ok(TopicPartitionOffset {
            tp: TopicPartition::new(topic, partition),
            offset,
        })
    }
}

/// An offset per partition, at the top of a log directory: the recovery points
/// ([`RECOVERY_POINT_CHECKPOINT`]), the log start offsets ([`LOG_START_OFFSET_CHECKPOINT`]) or
/// the high watermarks ([`REPLICATION_OFFSET_CHECKPOINT`]).
///
/// The file holds version `0`, the number of partitions, then `<topic> <partition> <offset>` per
/// partition (written in `TopicPartition` order; Kafka reads any order). Thread-safe: `&self`
/// throughout, writes serialised (see [`CheckpointFile`]).
#[derive(Debug)]
pub struct OffsetCheckpointFile {
    file: CheckpointFile<TopicPartitionOffset>,
}

impl OffsetCheckpointFile {
    pub fn new(fs: Arc<dyn FileSystem>, path: PathBuf) -> OffsetCheckpointFile {
        OffsetCheckpointFile {
            file: CheckpointFile::new(fs, path),
        }
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Replaces the file with `offsets`, atomically and durably.
    pub fn write(&self, offsets: &BTreeMap<TopicPartition, i64>) -> Result<()> {
        self.file
            .write(offsets.iter().map(|(tp, &offset)| TopicPartitionOffset {
                tp: tp.clone(),
                offset,
            }))
    }

    /// The offsets in the file; empty if there is no file. A partition listed twice keeps its
    /// last offset, as in Kafka.
    pub fn read(&self) -> Result<BTreeMap<TopicPartition, i64>> {
        Ok(self
            .file
            .read()?
            .into_iter()
            .map(|e| (e.tp, e.offset))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::SimFs;

    const DIR: &str = "/data/kafka-logs";

    fn setup(name: &str) -> (SimFs, OffsetCheckpointFile, PathBuf) {
        let sim = SimFs::new();
        sim.create_dir_all(Path::new(DIR)).expect("dir");
        let path = Path::new(DIR).join(name);
        let file = OffsetCheckpointFile::new(Arc::new(sim.clone()), path.clone());
        (sim, file, path)
    }

    fn offsets(entries: &[(&str, i32, i64)]) -> BTreeMap<TopicPartition, i64> {
        entries
            .iter()
            .map(|&(t, p, o)| (TopicPartition::new(t, p), o))
            .collect()
    }

    /// An independent reading of the format, as strict as our writer: every line ends in `\n`,
    /// fields are separated by exactly one space.
    fn parse_strictly(bytes: &[u8]) -> (String, usize, Vec<Vec<String>>) {
        let text = std::str::from_utf8(bytes).expect("utf-8");
        assert!(text.ends_with('\n'), "no final newline: {text:?}");
        assert!(!text.contains('\r'), "carriage return: {text:?}");
        let lines: Vec<&str> = text[..text.len() - 1].split('\n').collect();
        let count: usize = lines[1].parse().expect("count");
        assert_eq!(lines.len(), 2 + count, "{text:?}");
        let entries = lines[2..]
            .iter()
            .map(|l| l.split(' ').map(str::to_string).collect())
            .collect();
        (lines[0].to_string(), count, entries)
    }

    #[test]
    fn writes_kafkas_bytes_exactly() {
        let (sim, file, path) = setup(RECOVERY_POINT_CHECKPOINT);
        let map = offsets(&[("my-topic", 12, 977), ("a", 0, 5), ("my-topic", 2, 0)]);
        file.write(&map).expect("write");
        let bytes = sim.contents(&path).expect("file");
        assert_eq!(
            bytes,
            b"0\n3\na 0 5\nmy-topic 2 0\nmy-topic 12 977\n".as_slice()
        );
        let (version, count, entries) = parse_strictly(&bytes);
        assert_eq!((version.as_str(), count), ("0", 3));
        let parsed: BTreeMap<TopicPartition, i64> = entries
            .iter()
            .map(|e| {
                assert_eq!(e.len(), 3, "{e:?}");
                let tp = TopicPartition::new(e[0].clone(), e[1].parse().expect("partition"));
                (tp, e[2].parse().expect("offset"))
            })
            .collect();
        assert_eq!(parsed, map);
    }

    #[test]
    fn an_empty_map_is_a_header_only() {
        let (sim, file, path) = setup(LOG_START_OFFSET_CHECKPOINT);
        file.write(&BTreeMap::new()).expect("write");
        assert_eq!(sim.contents(&path).expect("file"), b"0\n0\n");
        assert!(file.read().expect("read").is_empty());
    }

    #[test]
    fn round_trips_extreme_values() {
        let (_sim, file, _path) = setup(REPLICATION_OFFSET_CHECKPOINT);
        let map = offsets(&[
            ("t", i32::MAX, i64::MAX),
            ("t", 0, i64::MIN),
            ("__consumer_offsets", 49, -1),
            ("a.b_c-d", 7, 0),
        ]);
        file.write(&map).expect("write");
        assert_eq!(file.read().expect("read"), map);
        // A second write replaces the first entirely.
        let map2 = offsets(&[("t", 1, 1)]);
        file.write(&map2).expect("write");
        assert_eq!(file.read().expect("read"), map2);
    }

    #[test]
    fn a_missing_file_has_no_entries() {
        let (sim, file, path) = setup(RECOVERY_POINT_CHECKPOINT);
        assert!(file.read().expect("read").is_empty());
        assert!(!sim.exists(&path), "reading must not create the file");
    }

    #[test]
    fn reads_what_kafka_accepts() {
        type Case<'a> = (&'a [u8], &'a [(&'a str, i32, i64)]);
        let cases: &[Case] = &[
            // Kafka's CheckpointFile constructor creates the file empty.
            (b"", &[]),
            (b"0\n", &[]),
            (b"0", &[]),
            (b"0\n0\n", &[]),
            (b"0\n1\nfoo 3 42", &[("foo", 3, 42)]),
            (b"0\r\n1\r\nfoo 3 42\r\n", &[("foo", 3, 42)]),
            (b"0\n1\nfoo  3\t42 \n", &[("foo", 3, 42)]),
            (b"0\n2\nfoo 3 1\nfoo 3 2\n", &[("foo", 3, 2)]),
        ];
        for (bytes, want) in cases {
            let (sim, file, path) = setup(RECOVERY_POINT_CHECKPOINT);
            sim.open(&path, true).expect("create");
            sim.overwrite(&path, bytes);
            let got = file
                .read()
                .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(bytes)));
            assert_eq!(got, offsets(want), "{:?}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn rejects_malformed_files_naming_path_and_line() {
        let cases: &[(&[u8], usize, &str)] = &[
            (b"1\n0\n", 1, "unsupported version 1"),
            (b"x\n0\n", 1, "expected the version"),
            (b" 0\n0\n", 1, "expected the version"),
            (b"\n", 1, "expected the version"),
            (b"0\nz\n", 2, "expected the number of entries"),
            (b"0\n2\na 0 5\n", 2, "expected 2 entries, found 1"),
            (b"0\n0\na 0 5\n", 2, "expected 0 entries, found 1"),
            (b"0\n-1\n", 2, "expected -1 entries, found 0"),
            (b"0\n1\na x 5\n", 3, "partition is not"),
            (b"0\n1\na -1 5\n", 3, "partition is not"),
            (b"0\n1\na 99999999999 5\n", 3, "partition is not"),
            (b"0\n1\na 0 5x\n", 3, "offset is not"),
            (b"0\n1\na 0 99999999999999999999\n", 3, "offset is not"),
            (
                b"0\n1\na 0 5 7\n",
                3,
                "expected `<topic> <partition> <offset>`",
            ),
            (b"0\n1\na 0\n", 3, "expected `<topic> <partition> <offset>`"),
            (
                b"0\n2\na 0 5\n\n",
                4,
                "expected `<topic> <partition> <offset>`",
            ),
            (b"0\n1\na 0 5\nb 0 6\n", 2, "expected 1 entries, found 2"),
            (b"0\n1\n\xff\xfe 0 5\n", 3, "not UTF-8"),
        ];
        for (bytes, line, what) in cases {
            let (sim, file, path) = setup(RECOVERY_POINT_CHECKPOINT);
            sim.open(&path, true).expect("create");
            sim.overwrite(&path, bytes);
            let shown = String::from_utf8_lossy(bytes);
            let err = file.read().expect_err(&shown);
            let msg = err.to_string();
            match &err {
                StorageError::CorruptFile { path: p, .. } => assert_eq!(p, &path, "{shown:?}"),
                other => panic!("{shown:?}: not CorruptFile: {other:?}"),
            }
            assert!(
                msg.contains(&path.display().to_string()),
                "{shown:?}: {msg}"
            );
            assert!(msg.contains(&format!("line {line}: ")), "{shown:?}: {msg}");
            assert!(msg.contains(what), "{shown:?}: {msg}");
        }
    }

    #[test]
    fn a_long_garbage_line_is_cut_short_in_the_message() {
        let (sim, file, path) = setup(RECOVERY_POINT_CHECKPOINT);
        sim.open(&path, true).expect("create");
        sim.overwrite(&path, format!("0\n1\n{}\n", "é".repeat(10_000)).as_bytes());
        let msg = file.read().expect_err("garbage").to_string();
        assert!(msg.len() < 400, "{msg}");
    }

    #[test]
    fn a_completed_write_survives_a_power_cut() {
        let (sim, file, path) = setup(RECOVERY_POINT_CHECKPOINT);
        let old = offsets(&[("t", 0, 10)]);
        file.write(&old).expect("write");
        sim.power_cut(None);
        assert_eq!(file.read().expect("read"), old);

        let new = offsets(&[("t", 0, 20), ("t", 1, 5)]);
        file.write(&new).expect("write");
        sim.power_cut(None);
        assert_eq!(file.read().expect("read"), new);

        // A crash after the temporary file was written and synced but before the rename: the
        // temporary file is left over and ignored, and the next write replaces it.
        let tmp = path.with_extension("tmp");
        let f = sim.open(&tmp, true).expect("tmp");
        f.write_all_at(&[b"0\n1\nt 0 30\n"], 0).expect("write tmp");
        f.sync().expect("sync tmp");
        sim.sync_dir(Path::new(DIR)).expect("sync dir");
        sim.power_cut(Some(7));
        assert!(sim.exists(&tmp));
        assert_eq!(file.read().expect("read"), new);
        let newer = offsets(&[("t", 0, 40)]);
        file.write(&newer)
            .expect("write over a left-over temporary file");
        sim.power_cut(None);
        assert_eq!(file.read().expect("read"), newer);
    }

    #[test]
    fn a_failed_write_leaves_the_old_contents() {
        let (sim, file, path) = setup(RECOVERY_POINT_CHECKPOINT);
        let old = offsets(&[("t", 0, 10)]);
        file.write(&old).expect("write");
        sim.set_fail_sync(true);
        let err = file
            .write(&offsets(&[("t", 0, 20)]))
            .expect_err("fsync fails");
        assert!(matches!(err, StorageError::Io { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        sim.set_fail_sync(false);
        for seed in [None, Some(1), Some(2), Some(3)] {
            sim.power_cut(seed);
            assert_eq!(file.read().expect("read"), old, "seed {seed:?}");
        }
    }

    #[test]
    fn concurrent_writes_never_mix() {
        let (_sim, file, _path) = setup(RECOVERY_POINT_CHECKPOINT);
        let file = Arc::new(file);
        let maps: Vec<_> = (0..4)
            .map(|i| {
                // Different lengths, so that interleaved writes would show.
                (0..(1 + 40 * i))
                    .map(|p| (TopicPartition::new(format!("topic{i}"), p), i64::from(p)))
                    .collect::<BTreeMap<_, _>>()
            })
            .collect();
        std::thread::scope(|s| {
            for map in &maps {
                let file = file.clone();
                s.spawn(move || {
                    for _ in 0..200 {
                        file.write(map).expect("write");
                    }
                });
            }
        });
        let got = file.read().expect("read");
        assert!(maps.contains(&got), "a mix of writes: {got:?}");
    }

    #[test]
    fn topic_partition_names() {
        let tp = TopicPartition::new("my-topic", 3);
        assert_eq!(tp.to_string(), "my-topic-3");
        assert_eq!(tp.dir_name(), "my-topic-3");
        let cases: &[(&str, Option<(&str, i32)>)] = &[
            ("foo-0", Some(("foo", 0))),
            ("my-topic-12", Some(("my-topic", 12))),
            ("a.b_c-2147483647", Some(("a.b_c", i32::MAX))),
            ("foo--1", Some(("foo-", 1))),
            ("__consumer_offsets-49", Some(("__consumer_offsets", 49))),
            ("foo", None),
            ("-0", None),
            ("foo-", None),
            ("foo-+1", None),
            ("foo-01", None),
            ("foo-x", None),
            ("foo-2147483648", None),
            ("foo-1.9b2e3f.delete", None),
            ("foo-1.9b2e3f-future", None),
            ("foo-1.9b2e3f-stray", None),
        ];
        for &(name, want) in cases {
            let got = TopicPartition::parse_dir_name(name);
            assert_eq!(got, want.map(|(t, p)| TopicPartition::new(t, p)), "{name}");
            if let Some(tp) = got {
                assert_eq!(tp.dir_name(), name);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn any_offsets_round_trip(
            entries in proptest::collection::btree_map(
                ("[a-zA-Z0-9._-]{1,40}", 0..=i32::MAX),
                proptest::num::i64::ANY,
                0..20,
            )
        ) {
            let (sim, file, path) = setup(RECOVERY_POINT_CHECKPOINT);
            let map: BTreeMap<TopicPartition, i64> = entries
                .into_iter()
                .map(|((t, p), o)| (TopicPartition::new(t, p), o))
                .collect();
            file.write(&map).expect("write");
            let (_, count, _) = parse_strictly(&sim.contents(&path).expect("file"));
            proptest::prop_assert_eq!(count, map.len());
            proptest::prop_assert_eq!(file.read().expect("read"), map);
        }
    }
}
