use super::*;
use crate::error::StorageError;
use proptest::prelude::*;
use std::fs;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::fs::MetadataExt;

const BASE: i64 = 1000;
/// 64 offset entries, 42 time entries: small enough for proptest to fill.
const SMALL: u64 = 512;

fn offset_index(dir: &Path, max: u64) -> OffsetIndex {
    OffsetIndex::new(dir.join("00000000000000001000.index"), BASE, max, true)
}

fn time_index(dir: &Path, max: u64) -> TimeIndex {
    TimeIndex::new(dir.join("00000000000000001000.timeindex"), BASE, max, true)
}

fn op(offset: i64, position: u32) -> OffsetPosition {
    OffsetPosition { offset, position }
}

fn to(timestamp: i64, offset: i64) -> TimestampOffset {
    TimestampOffset { timestamp, offset }
}

/// Descriptors and mappings this process has on `path`.
fn held(path: &Path) -> (usize, bool) {
    let fds = fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
        .filter(|t| t == path)
        .count();
    let maps = fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
    let mapped = maps.lines().any(|l| l.ends_with(&*path.to_string_lossy()));
    (fds, mapped)
}

fn is_invalid<T: Debug>(r: Result<T>) -> bool {
    matches!(r, Err(StorageError::InvalidArgument { .. }))
}

fn is_corrupt<T: Debug>(r: Result<T>) -> bool {
    matches!(r, Err(StorageError::CorruptFile { .. }))
}

/// What a segment does to an index between uses, applied to both index types.
#[derive(Debug, Clone)]
enum Life {
    Trim,
    Resize,
    Release,
    /// A clean close and reopen (the file trimmed), then made active again or not.
    Reopen {
        active: bool,
    },
    /// The process dies without a trim; the file stays at full size.
    Crash,
}

fn life() -> impl Strategy<Value = Life> {
    prop_oneof![
        Just(Life::Trim),
        Just(Life::Resize),
        Just(Life::Release),
        any::<bool>().prop_map(|active| Life::Reopen { active }),
        Just(Life::Crash),
    ]
}

#[derive(Debug, Clone)]
enum OffsetOp {
    /// Offset: the last one plus `gap` (0: rejected unless empty).
    Append {
        gap: i64,
        position: u32,
    },
    Lookup(i64),
    TruncateTo(i64),
    Life(Life),
}

fn offset_ops() -> impl Strategy<Value = Vec<OffsetOp>> {
    let one = prop_oneof![
        6 => (0i64..4, 1u32..).prop_map(|(gap, position)| OffsetOp::Append { gap, position }),
        3 => (-2i64..200).prop_map(OffsetOp::Lookup),
        1 => (-2i64..200).prop_map(OffsetOp::TruncateTo),
        1 => life().prop_map(OffsetOp::Life),
    ];
    proptest::collection::vec(one, 1..120)
}

/// Applies `life` to `idx` as the segment would; returns the index's capacity afterwards.
macro_rules! live {
    ($idx:ident, $life:expr, $persistent:expr, $make:expr, $len:expr) => {{
        match $life {
            Life::Trim => $idx.trim_to_valid_size().expect("trim"),
            Life::Resize => $idx.resize(SMALL).expect("resize"),
            Life::Release => $idx.release().expect("release"),
            Life::Reopen { active } if $persistent => {
                $idx.close().expect("close");
                $idx = $make;
                if *active {
                    $idx.resize(SMALL).expect("resize");
                }
            }
            Life::Crash if $persistent => {
                drop($idx);
                $idx = $make;
            }
            Life::Reopen { .. } | Life::Crash => $idx.release().expect("release"),
        }
        assert_eq!(
            $idx.entries().expect("entries"),
            $len,
            "entries after {:?}",
            $life
        );
        $idx.max_entries().expect("max")
    }};
}

proptest! {
    #[test]
    fn offset_index_follows_a_vec(ops in offset_ops(), persistent in any::<bool>()) {
        let dir = tempfile::tempdir().expect("tmp");
        let make = || OffsetIndex::new(dir.path().join("i.index"), BASE, SMALL, persistent);
        let mut idx = make();
        let mut model: Vec<OffsetPosition> = Vec::new();
        let mut cap = SMALL as usize / 8;
        for o in &ops {
            match o {
                OffsetOp::Append { gap, position } => {
                    let offset = model.last().map_or(BASE, |e| e.offset) + gap;
                    let ok = (model.is_empty() || *gap > 0) && model.len() < cap;
                    let r = idx.append(offset, *position);
                    prop_assert_eq!(r.is_ok(), ok, "{:?}", r);
                    if ok {
                        model.push(op(offset, *position));
                    }
                }
                OffsetOp::Lookup(t) => {
                    let want = model.iter().rev().find(|e| e.offset <= BASE + t).copied();
                    prop_assert_eq!(idx.lookup(BASE + t).expect("lookup"), want.unwrap_or(op(BASE, 0)));
                }
                OffsetOp::TruncateTo(t) => {
                    idx.truncate_to(BASE + t).expect("truncate");
                    model.retain(|e| e.offset < BASE + t);
                }
                OffsetOp::Life(l) => cap = live!(idx, l, persistent, make(), model.len()),
            }
            prop_assert_eq!(idx.entries().expect("entries"), model.len());
            prop_assert_eq!(idx.last_offset().expect("last"), model.last().map_or(BASE, |e| e.offset));
            prop_assert_eq!(idx.is_full().expect("full"), model.len() >= cap);
        }
        for (n, e) in model.iter().enumerate() {
            prop_assert_eq!(idx.entry(n).expect("entry"), *e);
        }
        idx.sanity_check().expect("sane");
    }
}

#[derive(Debug, Clone)]
enum TimeOp {
    /// Timestamp and offset relative to the last entry's (or 10 and the base offset).
    MaybeAppend {
        dts: i64,
        doff: i64,
    },
    Lookup(i64),
    TruncateTo(i64),
    Life(Life),
}

fn time_ops() -> impl Strategy<Value = Vec<TimeOp>> {
    let one = prop_oneof![
        6 => (-2i64..6, -1i64..5).prop_map(|(dts, doff)| TimeOp::MaybeAppend { dts, doff }),
        3 => (-2i64..300).prop_map(TimeOp::Lookup),
        1 => (-2i64..200).prop_map(TimeOp::TruncateTo),
        1 => life().prop_map(TimeOp::Life),
    ];
    proptest::collection::vec(one, 1..120)
}

proptest! {
    #[test]
    fn time_index_follows_a_vec(ops in time_ops(), persistent in any::<bool>()) {
        let dir = tempfile::tempdir().expect("tmp");
        let make = || TimeIndex::new(dir.path().join("i.timeindex"), BASE, SMALL, persistent);
        let mut idx = make();
        let mut model: Vec<TimestampOffset> = Vec::new();
        let mut cap = SMALL as usize / 12;
        for o in &ops {
            match o {
                TimeOp::MaybeAppend { dts, doff } => {
                    let last = model.last().copied();
                    let (ts, off) = (last.map_or(10, |e| e.timestamp) + dts, last.map_or(BASE, |e| e.offset) + doff);
                    let r = idx.maybe_append(ts, off);
                    let backwards = last.is_some_and(|l| off < l.offset || ts < l.timestamp);
                    let skipped = !backwards && ts <= last.map_or(NO_TIMESTAMP, |e| e.timestamp);
                    let ok = !backwards && (skipped || (off >= BASE && model.len() < cap));
                    prop_assert_eq!(r.is_ok(), ok, "{:?}", r);
                    if ok && !skipped {
                        model.push(to(ts, off));
                    }
                }
                TimeOp::Lookup(t) => {
                    let want = model.iter().rev().find(|e| e.timestamp <= *t).copied();
                    prop_assert_eq!(idx.lookup(*t).expect("lookup"), want.unwrap_or(to(-1, BASE)));
                }
                TimeOp::TruncateTo(t) => {
                    idx.truncate_to(BASE + t).expect("truncate");
                    model.retain(|e| e.offset < BASE + t);
                }
                TimeOp::Life(l) => cap = live!(idx, l, persistent, make(), model.len()),
            }
            prop_assert_eq!(idx.entries().expect("entries"), model.len());
            prop_assert_eq!(idx.last_entry().expect("last"), model.last().copied().unwrap_or(to(-1, BASE)));
            prop_assert_eq!(idx.is_full().expect("full"), model.len() + 1 >= cap);
        }
        for (n, e) in model.iter().enumerate() {
            prop_assert_eq!(idx.entry(n).expect("entry"), *e);
        }
        idx.sanity_check().expect("sane");
    }
}

#[test]
fn trimmed_files_hold_exactly_kafka_entries() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut idx = offset_index(dir.path(), 1 << 20);
    idx.append(BASE, 1).expect("append");
    idx.append(BASE + 5, 4096).expect("append");
    idx.append(BASE + i64::from(i32::MAX), u32::MAX)
        .expect("append");
    let mut tidx = time_index(dir.path(), 1 << 20);
    tidx.maybe_append(0x0102_0304_0506_0708, BASE + 3)
        .expect("append");
    idx.close().expect("close");
    tidx.close().expect("close");
    #[rustfmt::skip]
    let want: [u8; 24] = [
        0, 0, 0, 0, /**/ 0, 0, 0, 1,
        0, 0, 0, 5, /**/ 0, 0, 0x10, 0,
        0x7f, 0xff, 0xff, 0xff, /**/ 0xff, 0xff, 0xff, 0xff,
    ];
    assert_eq!(fs::read(idx.path()).expect("read"), want);
    let want = [1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 3];
    assert_eq!(fs::read(tidx.path()).expect("read"), want);

    // Many entries, parsed independently: 4-byte relative offset, 4-byte position.
    let mut idx = offset_index(dir.path(), 1 << 20);
    idx.truncate().expect("truncate");
    idx.resize(1 << 20).expect("resize");
    let written: Vec<(i64, u32)> = (0..3000).map(|i| (BASE + i * 7, (i * 13) as u32)).collect();
    for (o, p) in &written {
        idx.append(*o, *p).expect("append");
    }
    idx.close().expect("close");
    let bytes = fs::read(idx.path()).expect("read");
    let parsed: Vec<(i64, u32)> = bytes
        .chunks(8)
        .map(|c| {
            let rel = i32::from_be_bytes([c[0], c[1], c[2], c[3]]);
            (
                BASE + i64::from(rel),
                u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
            )
        })
        .collect();
    assert_eq!(parsed, written);
}

#[test]
fn nothing_is_opened_before_first_use() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut all: Vec<(OffsetIndex, TimeIndex)> = (0..1000)
        .map(|i| {
            let base = i * 100;
            (
                OffsetIndex::new(
                    dir.path().join(format!("{base:020}.index")),
                    base,
                    1 << 20,
                    true,
                ),
                TimeIndex::new(
                    dir.path().join(format!("{base:020}.timeindex")),
                    base,
                    1 << 20,
                    true,
                ),
            )
        })
        .collect();
    assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 0);
    assert!(all.iter().all(|(o, t)| !o.is_mapped() && !t.is_mapped()));
    assert_eq!(all[7].0.lookup(750).expect("lookup"), op(700, 0));
    assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 1);
    assert_eq!(held(all[7].0.path()), (1, true));
    all[7].0.release().expect("release");
    assert_eq!(held(all[7].0.path()), (0, false));
}

#[test]
fn release_unmaps_and_the_next_use_maps_again() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut idx = offset_index(dir.path(), 1 << 20);
    for i in 0..10 {
        idx.append(BASE + i * 10, i as u32 * 100).expect("append");
    }
    idx.release().expect("release");
    assert!(!idx.is_mapped());
    assert_eq!(held(idx.path()), (0, false));
    assert_eq!(idx.entries().expect("entries"), 10); // known without mapping
    assert!(!idx.is_mapped());
    assert_eq!(idx.lookup(BASE + 55).expect("lookup"), op(BASE + 50, 500));
    idx.append(BASE + 100, 1000).expect("append");
    assert_eq!(idx.entries().expect("entries"), 11);
}

/// A release does not fsync what the mapping dirtied (recovery releases thousands of indexes);
/// the next flush does, opening the cold file again, and a reset index is likewise owed one.
#[test]
fn a_released_or_reset_index_is_synced_by_the_next_flush() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut idx = offset_index(dir.path(), 1 << 20);
    assert!(idx.file_to_sync().expect("file").is_none(), "never used");
    idx.append(BASE, 0).expect("append");
    idx.release().expect("release");
    assert!(!idx.is_mapped());
    assert_eq!(held(idx.path()), (0, false));
    assert!(
        idx.file_to_sync().expect("file").is_some(),
        "dirty when released: owed an fsync"
    );
    assert_eq!(held(idx.path()), (0, false), "asking opens nothing to keep");
    idx.flush().expect("flush");
    assert!(idx.file_to_sync().expect("file").is_none(), "synced");
    assert!(!idx.is_mapped(), "a cold flush does not map");
    idx.reset().expect("reset");
    assert!(!idx.is_mapped(), "reset leaves it cold");
    assert_eq!(idx.entries().expect("entries"), 0);
    assert!(
        idx.file_to_sync().expect("file").is_some(),
        "zeroed: owed an fsync"
    );
    idx.flush().expect("flush");
    assert!(idx.file_to_sync().expect("file").is_none());
    idx.append(BASE + 1, 10).expect("append after a reset");
    assert_eq!(idx.lookup(BASE + 5).expect("lookup"), op(BASE + 1, 10));
}

#[test]
fn a_trimmed_index_reopens_with_its_entries() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut tidx = time_index(dir.path(), 1 << 20);
    for i in 0..100 {
        tidx.maybe_append(5000 + i * 3, BASE + i * 2)
            .expect("append");
    }
    tidx.close().expect("close");
    assert_eq!(fs::metadata(tidx.path()).expect("stat").len(), 1200);
    let mut tidx = time_index(dir.path(), 1 << 20);
    assert_eq!(tidx.entries().expect("entries"), 100);
    assert_eq!(tidx.max_entries().expect("max"), 100);
    assert!(tidx.is_full().expect("full"));
    assert_eq!(tidx.lookup(5000 + 31).expect("lookup"), to(5030, BASE + 20));
    tidx.resize(1 << 20).expect("resize");
    assert_eq!(tidx.max_entries().expect("max"), (1 << 20) / 12);
    tidx.maybe_append(9999, BASE + 500).expect("append");
    assert_eq!(tidx.entries().expect("entries"), 101);
    tidx.sanity_check().expect("sane");
}

#[test]
fn a_full_size_file_left_by_a_crash_has_its_entries_counted() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut idx = offset_index(dir.path(), 1 << 20);
    let mut tidx = time_index(dir.path(), 1 << 20);
    for i in 0..20 {
        idx.append(BASE + i * 10, 1 + i as u32 * 100)
            .expect("append");
        tidx.maybe_append(100 + i, BASE + i * 10).expect("append");
    }
    idx.truncate_to(BASE + 150).expect("truncate"); // the stale entries are zeroed
    idx.append(BASE + 151, 7).expect("append");
    drop((idx, tidx));
    let mut idx = offset_index(dir.path(), 1 << 20);
    let mut tidx = time_index(dir.path(), 1 << 20);
    assert_eq!(idx.length().expect("len"), 1 << 20);
    assert_eq!(idx.entries().expect("entries"), 16);
    assert_eq!(idx.last_offset().expect("last"), BASE + 151);
    assert_eq!(tidx.entries().expect("entries"), 20);
    assert_eq!(tidx.last_entry().expect("last"), to(119, BASE + 190));
    idx.sanity_check().expect("sane");
    tidx.sanity_check().expect("sane");

    // Trimmed, then truncated, then a crash: the zeroed tail is not counted either.
    idx.trim_to_valid_size().expect("trim");
    idx.truncate_to(BASE + 40).expect("truncate");
    drop(idx);
    assert_eq!(offset_index(dir.path(), 1 << 20).entries().expect("n"), 4);

    // Never an entry: all zeros.
    let mut empty = OffsetIndex::new(dir.path().join("e.index"), BASE, 1 << 20, true);
    empty.truncate().expect("create");
    drop(empty);
    let mut empty = OffsetIndex::new(dir.path().join("e.index"), BASE, 1 << 20, true);
    assert_eq!(empty.entries().expect("entries"), 0);
}

/// A file cut mid-entry (a torn or damaged trimmed index): its partial last entry is no entry,
/// and must not come back as one when the file grows — after the entries only zeros may follow,
/// or the next reader (or a reopen after a crash) takes the bytes for an entry.
#[test]
fn a_partial_entry_at_the_end_is_dropped_when_the_file_grows() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut tidx = time_index(dir.path(), 2048);
    tidx.maybe_append(100, BASE + 3).expect("append");
    tidx.maybe_append(200, BASE + 9).expect("append");
    tidx.close().expect("close");
    let path = tidx.path().to_path_buf();
    let bytes = fs::read(&path).expect("read");
    fs::write(&path, &bytes[..21]).expect("cut 3 bytes");
    let zeros_after = |n: usize| {
        let data = fs::read(&path).expect("read");
        assert_eq!(data.len(), 2040, "full size");
        assert!(
            data[n * 12..].iter().all(|b| *b == 0),
            "stale bytes after {n}"
        );
    };

    // Resized (made active) with its one whole entry kept.
    let mut tidx = time_index(dir.path(), 2048);
    assert!(is_corrupt(tidx.sanity_check()));
    assert_eq!(tidx.entries().expect("entries"), 1);
    tidx.resize(2048).expect("resize");
    zeros_after(1);
    drop(tidx);
    let mut tidx = time_index(dir.path(), 2048);
    assert_eq!(tidx.entries().expect("entries"), 1);
    assert_eq!(tidx.last_entry().expect("last"), to(100, BASE + 3));
    tidx.sanity_check().expect("sane");

    // Truncated, then grown (Kafka's reset as truncate + resize).
    fs::write(&path, &bytes[..21]).expect("cut 3 bytes");
    let mut tidx = time_index(dir.path(), 2048);
    tidx.truncate().expect("truncate");
    tidx.resize(2048).expect("resize");
    zeros_after(0);
    drop(tidx);
    assert_eq!(time_index(dir.path(), 2048).entries().expect("n"), 0);

    // Reset: whatever the file held, nothing is left; the same for an anonymous index.
    fs::write(&path, &bytes[..21]).expect("cut 3 bytes");
    let mut tidx = time_index(dir.path(), 2048);
    tidx.reset().expect("reset");
    assert_eq!(tidx.entries().expect("entries"), 0);
    assert_eq!(tidx.max_entries().expect("max"), 170);
    zeros_after(0);
    tidx.maybe_append(300, BASE + 1).expect("append");
    tidx.close().expect("close");
    assert_eq!(
        fs::read(&path).expect("read"),
        [0, 0, 0, 0, 0, 0, 1, 44, 0, 0, 0, 1]
    );
    let mut anon = TimeIndex::new(dir.path().join("anon"), BASE, 2048, false);
    anon.maybe_append(100, BASE + 3).expect("append");
    anon.trim_to_valid_size().expect("trim");
    anon.reset().expect("reset");
    assert_eq!(anon.entries().expect("entries"), 0);
    assert_eq!(anon.max_entries().expect("max"), 170);
    assert_eq!(anon.lookup(100).expect("lookup"), to(-1, BASE));
}

#[test]
fn sanity_check_rejects_what_kafka_rejects() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("00000000000000001000.index");
    let check = |bytes: &[u8]| {
        fs::write(&path, bytes).expect("write");
        offset_index(dir.path(), 1 << 20).sanity_check()
    };
    assert!(check(&[0, 0, 0, 1, 0, 0, 0, 1]).is_ok());
    assert!(is_corrupt(check(&[0, 0, 0, 1, 0, 0, 0, 1, 0]))); // not whole entries
    assert!(is_corrupt(check(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1]))); // below the base
    assert!(is_corrupt(check(&[
        0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 2
    ]))); // backwards

    let tpath = dir.path().join("00000000000000001000.timeindex");
    let mut bytes = Vec::new();
    for (ts, rel) in [(100i64, 1i32), (50, 2)] {
        bytes.extend_from_slice(&ts.to_be_bytes());
        bytes.extend_from_slice(&rel.to_be_bytes());
    }
    fs::write(&tpath, &bytes).expect("write");
    assert!(is_corrupt(time_index(dir.path(), 1 << 20).sanity_check()));
}

#[test]
fn appends_are_checked() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut idx = offset_index(dir.path(), 16);
    assert!(!idx.can_append_offset(BASE - 1));
    assert!(idx.can_append_offset(BASE + i64::from(i32::MAX)));
    assert!(!idx.can_append_offset(BASE + i64::from(i32::MAX) + 1));
    assert!(is_invalid(idx.append(BASE - 1, 0)));
    idx.append(BASE + 1, 0).expect("append");
    assert!(is_invalid(idx.append(BASE + 1, 0)));
    assert!(is_invalid(idx.append(BASE + i64::from(i32::MAX) + 1, 0)));
    idx.append(BASE + 2, 0).expect("append");
    assert!(idx.is_full().expect("full"));
    assert!(is_invalid(idx.append(BASE + 3, 0)));
    assert!(is_invalid(idx.entry(2)));

    // The time index keeps its last slot for the entry added on roll.
    let mut tidx = time_index(dir.path(), 36);
    tidx.maybe_append(10, BASE).expect("append");
    tidx.maybe_append(10, BASE + 1)
        .expect("same timestamp: skipped");
    assert!(is_invalid(tidx.maybe_append(11, BASE - 1)));
    assert!(is_invalid(tidx.maybe_append(9, BASE + 1)));
    tidx.maybe_append(11, BASE + 1).expect("append");
    assert!(tidx.is_full().expect("full"));
    tidx.maybe_append(12, BASE + 1).expect("the roll's entry");
    assert!(is_invalid(tidx.maybe_append(13, BASE + 2)));
    assert_eq!(tidx.entries().expect("entries"), 3);

    let mut tiny = OffsetIndex::new(dir.path().join("tiny.index"), BASE, 7, true);
    assert!(is_invalid(tiny.entries()));
    assert!(!tiny.path().exists());
}

#[test]
fn lookups_across_the_warm_section() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut idx = offset_index(dir.path(), 1 << 20);
    let mut tidx = time_index(dir.path(), 1 << 20);
    for i in 0..5000 {
        idx.append(BASE + i * 3, i as u32 * 10).expect("append");
        tidx.maybe_append(i * 2, BASE + i * 3).expect("append");
    }
    for t in -3..15_003 {
        let i = (t / 3).min(4999);
        let want = if t < 0 {
            op(BASE, 0)
        } else {
            op(BASE + i * 3, i as u32 * 10)
        };
        assert_eq!(idx.lookup(BASE + t).expect("lookup"), want, "{t}");
    }
    for t in (-3..10_003).step_by(7) {
        let want = if t < 0 {
            to(-1, BASE)
        } else {
            to(t.min(9998) / 2 * 2, BASE + t.min(9998) / 2 * 3)
        };
        assert_eq!(tidx.lookup(t).expect("lookup"), want, "{t}");
    }
    let from = op(BASE + 30, 100);
    assert_eq!(
        idx.fetch_upper_bound_offset(from, 95).expect("ub"),
        Some(op(BASE + 60, 200))
    );
    assert_eq!(
        idx.fetch_upper_bound_offset(from, 100).expect("ub"),
        Some(op(BASE + 60, 200))
    );
    assert_eq!(
        idx.fetch_upper_bound_offset(from, 1 << 20).expect("ub"),
        None
    );
}

#[test]
fn blocks_are_allocated_ahead_of_the_entries() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut idx = offset_index(dir.path(), 10 << 20);
    idx.append(BASE, 1).expect("append");
    let bytes = |p: &Path| fs::metadata(p).expect("stat").blocks() * 512;
    assert_eq!(fs::metadata(idx.path()).expect("stat").len(), 10 << 20);
    assert!(
        bytes(idx.path()) >= PREALLOCATE_STEP,
        "{}",
        bytes(idx.path())
    );
    assert!(bytes(idx.path()) < 1 << 20, "sparse: {}", bytes(idx.path()));
    idx.reserve(20_000).expect("reserve");
    assert!(
        bytes(idx.path()) >= 3 * PREALLOCATE_STEP,
        "{}",
        bytes(idx.path())
    );
}

/// A tmpfs of our own, unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> std::result::Result<Tmpfs, io::Error> {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir()?;
        let target = std::ffi::CString::new(dir.path().as_os_str().as_bytes())?;
        let opts = std::ffi::CString::new(format!("size={size}"))?;
        // SAFETY: NUL-terminated strings that outlive the call.
        let r = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                opts.as_ptr().cast(),
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if let Ok(target) = std::ffi::CString::new(self.0.path().as_os_str().as_encoded_bytes()) {
            // SAFETY: as in `mount`.
            unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

#[test]
fn a_full_disk_is_a_clean_enospc() {
    let fs_ = match Tmpfs::mount("256k") {
        Ok(t) => t,
        Err(e) => {
            eprintln!("skipped: cannot mount a tmpfs ({e}); needs CAP_SYS_ADMIN");
            return;
        }
    };
    let dir = fs_.0.path();
    let filler = dir.join("filler");
    let f = File::create(&filler).expect("filler");
    let mut at = 0;
    while f.write_all_at(&[1; 4096], at).is_ok() {
        at += 4096;
    }
    let mut idx = offset_index(dir, 1 << 20);
    let enospc = |r: Result<()>| match r {
        Err(StorageError::Io { source, .. }) => source.raw_os_error() == Some(libc::ENOSPC),
        _ => false,
    };
    assert!(enospc(idx.append(BASE, 1)));
    assert_eq!(idx.entries().expect("entries"), 0);
    assert!(enospc(idx.reserve(10)));
    drop(f);
    fs::remove_file(&filler).expect("rm");
    idx.append(BASE, 1).expect("append after space came back");
    idx.close().expect("close");
    assert_eq!(
        fs::read(idx.path()).expect("read"),
        [0, 0, 0, 0, 0, 0, 0, 1]
    );
}

#[test]
fn anonymous_indexes_write_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut idx = OffsetIndex::new(dir.path().join("a.index"), BASE, 4096, false);
    let mut tidx = TimeIndex::new(dir.path().join("a.timeindex"), BASE, 4096, false);
    for i in 0..10 {
        idx.append(BASE + i, i as u32).expect("append");
        tidx.maybe_append(i, BASE + i).expect("append");
    }
    idx.release().expect("release"); // keeps the memory: it is the only copy
    tidx.trim_to_valid_size().expect("trim");
    assert_eq!(tidx.max_entries().expect("max"), 10);
    tidx.resize(4096).expect("resize");
    idx.truncate_to(BASE + 5).expect("truncate");
    idx.close().expect("close");
    idx.rename_to(dir.path().join("a.index.deleted"))
        .expect("rename");
    assert_eq!(idx.lookup(BASE + 9).expect("lookup"), op(BASE + 4, 4));
    assert_eq!(tidx.lookup(7).expect("lookup"), to(7, BASE + 7));
    idx.flush().expect("flush");
    assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 0);
    assert!(!idx.delete().expect("delete"));
}

#[test]
fn rename_and_delete() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut idx = offset_index(dir.path(), 1 << 20);
    idx.append(BASE, 1).expect("append");
    let renamed = dir.path().join("00000000000000001000.index.deleted");
    idx.rename_to(&renamed).expect("rename while mapped");
    idx.append(BASE + 1, 2).expect("append");
    idx.close().expect("close");
    assert_eq!(fs::metadata(&renamed).expect("stat").len(), 16);

    // The segment moved the file itself while the index was cold.
    let back = dir.path().join("00000000000000001000.index");
    fs::rename(&renamed, &back).expect("mv");
    idx.rename_to(&back).expect("rename of a moved file");
    assert_eq!(idx.lookup(BASE + 5).expect("lookup"), op(BASE + 1, 2));
    assert!(idx.delete().expect("delete"));
    assert!(!back.exists());
    assert!(!offset_index(dir.path(), 64).delete().expect("delete"));
}

/// A restart trusts an index without mapping it: the sanity check reads it with pread, and the
/// active segment's resize waits for its first append (Kafka's `LazyIndex`); an index closed
/// again without an append is left as it was, with no I/O.
#[test]
fn a_trusted_index_is_checked_unmapped_and_grows_at_its_first_append() {
    let dir = tempfile::tempdir().expect("tmp");
    let max = 1 << 20;
    let mut idx = offset_index(dir.path(), max);
    let mut tidx = time_index(dir.path(), max);
    for i in 0..100 {
        idx.append(BASE + i * 10, i as u32 * 100).expect("append");
        tidx.maybe_append(5000 + i, BASE + i * 10).expect("append");
    }
    idx.close().expect("close");
    tidx.close().expect("close");
    let (ipath, tpath) = (idx.path().to_path_buf(), tidx.path().to_path_buf());
    let len = |p: &Path| fs::metadata(p).expect("stat").len();
    assert_eq!((len(&ipath), len(&tpath)), (800, 1200));

    // Checked, made active, closed: never mapped or held open, the files untouched.
    let mut idx = offset_index(dir.path(), max);
    let mut tidx = time_index(dir.path(), max);
    idx.sanity_check().expect("sane");
    tidx.sanity_check().expect("sane");
    assert_eq!(tidx.last_entry().expect("last"), to(5099, BASE + 990));
    assert_eq!(idx.last_offset().expect("last"), BASE + 990);
    idx.resize(max).expect("resize");
    tidx.resize(max).expect("resize");
    assert_eq!(idx.max_entries().expect("max"), (max / 8) as usize);
    assert!(!tidx.is_full().expect("full"));
    assert_eq!((held(&ipath), held(&tpath)), ((0, false), (0, false)));
    assert_eq!((len(&ipath), len(&tpath)), (800, 1200));
    idx.close_unsynced().expect("close");
    tidx.close_unsynced().expect("close");
    assert_eq!((len(&ipath), len(&tpath)), (800, 1200));

    // Made active again, then appended to: the file grows to its full size when it is mapped.
    let mut idx = offset_index(dir.path(), max);
    let mut tidx = time_index(dir.path(), max);
    idx.sanity_check().expect("sane");
    tidx.sanity_check().expect("sane");
    idx.resize(max).expect("resize");
    tidx.resize(max).expect("resize");
    idx.append(BASE + 1000, 10_000).expect("append");
    tidx.maybe_append(6000, BASE + 1000).expect("append");
    assert!(held(&ipath).1 && held(&tpath).1);
    assert_eq!(len(&ipath), max);
    assert_eq!(len(&tpath), max / 12 * 12);
    assert_eq!(
        idx.lookup(BASE + 995).expect("lookup"),
        op(BASE + 990, 9900)
    );
    assert_eq!(
        idx.lookup(BASE + 1005).expect("lookup"),
        op(BASE + 1000, 10_000)
    );
    idx.close().expect("close");
    tidx.close().expect("close");
    assert_eq!((len(&ipath), len(&tpath)), (808, 1212));
    let mut idx = offset_index(dir.path(), max);
    let mut tidx = time_index(dir.path(), max);
    assert_eq!(idx.entries().expect("n"), 101);
    assert_eq!(tidx.last_entry().expect("last"), to(6000, BASE + 1000));
}

/// The unmapped check finds what the mapped one finds: entries out of order at the end (of a
/// small file read whole, and of a large one read at its ends), a last offset below the base, a
/// last timestamp below the first; a missing index is an error and is not created; a file of
/// zeros after its entries is counted through a mapping.
#[test]
fn an_unmapped_sanity_check_refuses_what_a_mapped_one_refuses() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("00000000000000001000.index");
    let entry = |rel: u32, pos: u32| [rel.to_be_bytes(), pos.to_be_bytes()].concat();
    let write = |entries: &[(u32, u32)]| {
        let bytes: Vec<u8> = entries.iter().flat_map(|&(r, p)| entry(r, p)).collect();
        fs::write(&path, bytes).expect("write");
    };
    let check = || offset_index(dir.path(), 1 << 20).sanity_check();

    write(&[(1, 10), (2, 20), (3, 30)]);
    check().expect("sane");
    write(&[(1, 10), (3, 30), (2, 20)]);
    assert!(is_corrupt(check()), "out of order, small");
    let mut many: Vec<(u32, u32)> = (1..=1000).map(|i| (i, i * 10)).collect();
    write(&many);
    check().expect("sane");
    many.swap(998, 999);
    write(&many);
    assert!(is_corrupt(check()), "out of order, large");

    // A last offset below the base: the relative offset is negative as an i32.
    write(&[(1, 10), (u32::MAX, 20)]);
    assert!(is_corrupt(check()), "below the base");

    // A time index whose last timestamp is below its first.
    let tpath = dir.path().join("00000000000000001000.timeindex");
    let tentry = |ts: i64, rel: u32| [&ts.to_be_bytes()[..], &rel.to_be_bytes()[..]].concat();
    fs::write(&tpath, [tentry(500, 1), tentry(400, 2)].concat()).expect("write");
    assert!(is_corrupt(time_index(dir.path(), 1 << 20).sanity_check()));

    // Missing: an error, and still missing.
    fs::remove_file(&path).expect("rm");
    assert!(check().is_err());
    assert!(!path.exists());

    // Entries, then zeros (a file extended and not trimmed): counted through the mapping.
    let mut bytes: Vec<u8> = [(1, 10), (2, 20)]
        .iter()
        .flat_map(|&(r, p)| entry(r, p))
        .collect();
    bytes.resize(4000, 0);
    fs::write(&path, bytes).expect("write");
    let mut idx = offset_index(dir.path(), 1 << 20);
    idx.sanity_check().expect("sane");
    assert_eq!(idx.entries().expect("n"), 2);
    assert_eq!(idx.last_offset().expect("last"), BASE + 2);
}

/// An index reset by recovery (full size, all zeros) and closed without a use is trimmed on
/// disk, without a mapping: a shrink is never left for later as a growth is.
#[test]
fn a_reset_index_closed_unused_is_trimmed_on_disk() {
    let dir = tempfile::tempdir().expect("tmp");
    let max = 1 << 20;
    let mut idx = offset_index(dir.path(), max);
    for i in 0..3 {
        idx.append(BASE + i, i as u32 * 10).expect("append");
    }
    idx.close().expect("close");
    let path = idx.path().to_path_buf();
    let mut idx = offset_index(dir.path(), max);
    idx.reset().expect("reset");
    assert_eq!(fs::metadata(&path).expect("stat").len(), max);
    idx.close_unsynced().expect("close");
    assert_eq!(held(&path), (0, false));
    assert_eq!(fs::metadata(&path).expect("stat").len(), 0);
    let mut idx = offset_index(dir.path(), max);
    idx.sanity_check().expect("sane");
    assert_eq!(idx.entries().expect("n"), 0);
}

/// The first few entries of a cold index are written with pwrite, not through a mapping —
/// recovery's one or two, the first appends after a restart — after the entries of a reset
/// (full-size) file or past the end of a trimmed one whose growth waits; past them the index is
/// mapped. What was written reads back after a reopen either way.
#[test]
fn a_cold_index_takes_its_first_entries_without_a_mapping() {
    let dir = tempfile::tempdir().expect("tmp");
    let max = 1 << 20;
    let len = |p: &Path| fs::metadata(p).expect("stat").len();

    // Reset (as recovery does): full size, zeros; two entries written in place. The descriptor
    // each write opens is counted while open, and nothing stays counted after.
    let budget = crate::file_budget::FileBudget::new(100);
    let handles = budget.new_log();
    let mut idx = offset_index(dir.path(), max);
    idx.set_handles(handles.clone());
    idx.reset().expect("reset");
    let path = idx.path().to_path_buf();
    idx.append(BASE + 5, 100).expect("append");
    idx.append(BASE + 9, 200).expect("append");
    assert_eq!(held(&path), (0, false));
    assert_eq!((handles.open_files(), budget.open_files()), (0, 0));
    assert_eq!(len(&path), max);
    idx.flush().expect("flush");
    idx.close_unsynced().expect("close");
    assert_eq!(len(&path), 16);

    // Trusted and made active: the file stays trimmed and grows by each written entry.
    let mut idx = offset_index(dir.path(), max);
    idx.sanity_check().expect("sane");
    idx.resize(max).expect("resize");
    idx.append(BASE + 12, 300).expect("append");
    assert_eq!(held(&path), (0, false));
    assert_eq!(len(&path), 24);
    assert_eq!(idx.lookup(BASE + 10).expect("lookup"), op(BASE + 9, 200));
    idx.close_unsynced().expect("close");
    assert_eq!(len(&path), 24);
    let mut idx = offset_index(dir.path(), max);
    assert_eq!(idx.entries().expect("n"), 3);
    assert_eq!(idx.last_offset().expect("last"), BASE + 12);

    // Past the few: mapped, at full size, every entry in place; the mapping counted.
    let mut idx = offset_index(dir.path(), max);
    idx.set_handles(handles.clone());
    idx.sanity_check().expect("sane");
    idx.resize(max).expect("resize");
    for i in 0..6 {
        idx.append(BASE + 20 + i, 400 + i as u32).expect("append");
    }
    assert!(held(&path).1);
    assert_eq!(handles.open_files(), 1);
    assert_eq!(len(&path), max);
    idx.close().expect("close");
    assert_eq!(handles.open_files(), 0);
    assert_eq!(len(&path), 9 * 8);
    let mut idx = offset_index(dir.path(), max);
    assert_eq!(idx.entries().expect("n"), 9);
    assert_eq!(idx.lookup(BASE + 13).expect("lookup"), op(BASE + 12, 300));
    assert_eq!(idx.lookup(BASE + 30).expect("lookup"), op(BASE + 25, 405));
}
