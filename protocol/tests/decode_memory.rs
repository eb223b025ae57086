//! How much memory decoding a request takes, against the size of its frame.
//!
//! A counting global allocator (this test binary's alone) measures the most heap that is live at
//! once while one frame decodes. The frames are the densest we know how to build: arrays of the
//! smallest elements a message allows (each element a few wire bytes, dozens in memory), and
//! tagged-field buffers full of unknown tags. Every one must stay within
//! [`rafka_protocol::DECODE_MEMORY_PER_BYTE`] times its frame (plus
//! [`rafka_protocol::DECODE_MEMORY_BASE`]), the bound the decoder enforces; the issue measured
//! a DescribeGroups request of 40 MB taking 6.9 GB (about 175x) in the broker.
//!
//! The tests in this file run one at a time (a lock): the allocator's counters are global.

use bytes::{BufMut, Bytes, BytesMut};
use rafka_protocol::{RequestFrame, DECODE_MEMORY_BASE, DECODE_MEMORY_PER_BYTE};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// glibc's real cost of an allocation: 16-byte aligned chunks with an 8-byte header, 32 at least.
fn charged(size: usize) -> usize {
    ((size + 8 + 15) & !15).max(32)
}

fn add(n: usize) {
    let live = LIVE.fetch_add(n, Relaxed) + n;
    PEAK.fetch_max(live, Relaxed);
}

// SAFETY: every call is forwarded to `System` unchanged; the counters do not touch memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(charged(layout.size()));
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(charged(layout.size()), Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Old and new blocks are both live while the data moves.
        add(charged(new_size));
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        LIVE.fetch_sub(charged(layout.size()), Relaxed);
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The peak heap (above what was live before) while `frame` decodes, and whether it decoded.
fn peak_decoding(frame: &Bytes) -> (usize, bool) {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let ok = RequestFrame::decode(frame).is_ok();
    (PEAK.load(Relaxed) - base, ok)
}

fn header(buf: &mut BytesMut, key: i16, version: i16, flexible: bool) {
    buf.put_i16(key);
    buf.put_i16(version);
    buf.put_i32(7); // correlation id
    buf.put_i16(1); // client id "c"
    buf.put_u8(b'c');
    if flexible {
        buf.put_u8(0); // no tagged fields
    }
}

fn uvarint(buf: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// DescribeGroups v5 (flexible): `n` group ids of `len` bytes each.
fn describe_groups_v5(n: u32, len: u8) -> Bytes {
    let mut b = BytesMut::new();
    header(&mut b, 15, 5, true);
    uvarint(&mut b, n + 1);
    for _ in 0..n {
        uvarint(&mut b, u32::from(len) + 1);
        b.put_bytes(b'g', usize::from(len));
    }
    b.put_u8(0); // include_authorized_operations
    b.put_u8(0); // tagged fields
    b.freeze()
}

/// DescribeGroups v0 (classic): `n` empty group ids.
fn describe_groups_v0(n: i32) -> Bytes {
    let mut b = BytesMut::new();
    header(&mut b, 15, 0, false);
    b.put_i32(n);
    for _ in 0..n {
        b.put_i16(0);
    }
    b.freeze()
}

/// DescribeGroups v5 with `n` unknown tagged fields (empty values) on the request.
fn unknown_tags_v5(n: u32) -> Bytes {
    let mut b = BytesMut::new();
    header(&mut b, 15, 5, true);
    b.put_u8(1); // no groups
    b.put_u8(0);
    uvarint(&mut b, n);
    for tag in 0..n {
        uvarint(&mut b, 1000 + tag);
        b.put_u8(0);
    }
    b.freeze()
}

/// OffsetFetch v8 (flexible): `n` groups, each with a null topic list.
fn offset_fetch_v8(n: u32) -> Bytes {
    let mut b = BytesMut::new();
    header(&mut b, 9, 8, true);
    uvarint(&mut b, n + 1);
    for _ in 0..n {
        b.put_u8(1); // group id ""
        b.put_u8(0); // topics: null
        b.put_u8(0); // tagged fields
    }
    b.put_u8(0); // require_stable
    b.put_u8(0);
    b.freeze()
}

/// LeaveGroup v4 (flexible): `n` members with empty member ids and null instance ids, the
/// densest request element the schema has (96 bytes in memory for 3 on the wire).
fn leave_group_v4(n: u32) -> Bytes {
    let mut b = BytesMut::new();
    header(&mut b, 13, 4, true);
    b.put_u8(2); // group id "g"
    b.put_u8(b'g');
    uvarint(&mut b, n + 1);
    for _ in 0..n {
        b.put_u8(1); // member id ""
        b.put_u8(0); // group instance id: null
        b.put_u8(0); // tagged fields
    }
    b.put_u8(0);
    b.freeze()
}

/// OffsetFetch v8 whose nested arrays each claim all the bytes that remain and then run out:
/// groups, then the first group's topics, then its first topic's partitions. Every count passes
/// the check against the remaining bytes, so without a budget for the whole frame each level
/// allocates its elements for the same bytes before the decode fails.
fn offset_fetch_v8_nested_lies(filler: usize) -> Bytes {
    let mut b = BytesMut::new();
    header(&mut b, 9, 8, true);
    let groups = (filler / 3) as u32;
    uvarint(&mut b, groups + 1);
    b.put_u8(1); // group id ""
    let topics = (filler / 3) as u32;
    uvarint(&mut b, topics + 1);
    b.put_u8(1); // topic name ""
    let partitions = (filler / 4) as u32;
    uvarint(&mut b, partitions + 1);
    b.put_bytes(0, filler);
    b.freeze()
}

/// A frame claiming far more elements than it holds: refused before anything is allocated.
fn lying_count() -> Bytes {
    let mut b = BytesMut::new();
    header(&mut b, 15, 0, false);
    b.put_i32(i32::MAX);
    b.put_bytes(0, 64);
    b.freeze()
}

fn check(name: &str, frame: &Bytes, must_decode: bool) -> f64 {
    let (peak, ok) = peak_decoding(frame);
    assert_eq!(ok, must_decode, "{name}: decoded {ok}");
    let ratio = peak as f64 / frame.len() as f64;
    eprintln!(
        "{name}: frame {} bytes, peak {peak} bytes while decoding ({ratio:.1}x)",
        frame.len()
    );
    let bound = DECODE_MEMORY_PER_BYTE * frame.len() + DECODE_MEMORY_BASE;
    assert!(
        peak <= bound,
        "{name}: decoding a {}-byte frame took {peak} bytes, above the bound {bound}",
        frame.len()
    );
    ratio
}

#[test]
fn dense_requests_stay_within_the_bound() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // About 1 MB each: large enough that the fixed part of the bound does not matter.
    check(
        "describe_groups v5, empty ids",
        &describe_groups_v5(1 << 20, 0),
        true,
    );
    check(
        "describe_groups v5, 1-byte ids",
        &describe_groups_v5(1 << 19, 1),
        true,
    );
    check(
        "describe_groups v5, 8-byte ids",
        &describe_groups_v5(1 << 17, 8),
        true,
    );
    check(
        "describe_groups v0, empty ids",
        &describe_groups_v0(1 << 19),
        true,
    );
    check("unknown tagged fields", &unknown_tags_v5(1 << 18), true);
    check(
        "offset_fetch v8, empty groups",
        &offset_fetch_v8(1 << 18),
        true,
    );
    check(
        "leave_group v4, empty members",
        &leave_group_v4(1 << 18),
        true,
    );
}

#[test]
fn a_decode_that_fails_late_stays_within_the_bound() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    check(
        "offset_fetch v8, nested lies",
        &offset_fetch_v8_nested_lies(1 << 20),
        false,
    );
}

#[test]
fn a_count_the_frame_cannot_hold_allocates_nothing() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let frame = lying_count();
    let (peak, ok) = peak_decoding(&frame);
    assert!(!ok);
    assert!(peak < 4096, "refusing a lying count took {peak} bytes");
}

/// The densest element any request can hold: a struct's size in memory over its smallest
/// encoding, at every version that carries it. An array of such elements is what a frame can
/// amplify most, so the budget must leave room for it, or a well-formed request would be refused.
#[test]
fn the_budget_fits_the_densest_request_element() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut worst = (0.0f64, String::new());
    for (kind, _, structs) in rafka_protocol::messages::all_footprints() {
        if kind != "request" && kind != "header" {
            continue;
        }
        // The message's own struct is never an array element; its nested ones may be.
        for &(name, size, min_size, versions) in structs.iter().skip(1) {
            for v in versions.min..=versions.max {
                let ratio = size as f64 / min_size(v).max(1) as f64;
                if ratio > worst.0 {
                    worst = (
                        ratio,
                        format!("{name} v{v}: {size} bytes for {} on the wire", min_size(v)),
                    );
                }
            }
        }
    }
    eprintln!("densest request element: {} ({:.1}x)", worst.1, worst.0);
    assert!(worst.0 <= DECODE_MEMORY_PER_BYTE as f64, "{}", worst.1);
}
