//! A global allocator that counts the heap a fuzz input makes live, so that every target can
//! assert the decoder's memory bound per input, not only libFuzzer's coarse process-wide
//! `-malloc_limit_mb` / `-rss_limit_mb` (the first works only with a sanitizer's malloc hooks).
//!
//! Counting is per process and the fuzzer runs one input at a time on one thread, so a reset
//! before the input and a read after it measure that input alone.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

pub struct PeakAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// What an allocation really costs in glibc's malloc: a 16-byte aligned chunk with an 8-byte
/// header, 32 bytes at least.
fn charged(size: usize) -> usize {
    ((size + 8 + 15) & !15).max(32)
}

fn add(n: usize) {
    let live = LIVE.fetch_add(n, Relaxed) + n;
    PEAK.fetch_max(live, Relaxed);
}

// SAFETY: every call is forwarded to `System` unchanged; the counters have no effect on memory.
unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(charged(layout.size()));
        // SAFETY: the caller's contract is passed on to System.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(charged(layout.size()));
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(charged(layout.size()), Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Both blocks are live while the data is copied.
        add(charged(new_size));
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        LIVE.fetch_sub(charged(layout.size()), Relaxed);
        p
    }
}

/// Starts measuring: the peak becomes what is live now.
pub fn reset() -> usize {
    let live = LIVE.load(Relaxed);
    PEAK.store(live, Relaxed);
    live
}

/// The most heap that was live at once since `reset`, above `base` (what `reset` returned).
pub fn peak_since(base: usize) -> usize {
    PEAK.load(Relaxed).saturating_sub(base)
}
