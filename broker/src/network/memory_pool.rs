//! The request memory pool: Kafka's `SimpleMemoryPool` behind `queued.max.request.bytes` — the
//! bytes of requests read from the sockets and not yet answered, over every connection of every
//! client listener, never exceed the pool's capacity.
//!
//! A connection that has read a frame's size prefix takes the frame's size from the pool before
//! it reads the body, and gives it back once the response has been written (the decoded request
//! borrows the frame's bytes — record data stays a slice of it — so they live that long). When
//! the pool has no room the connection *waits*, it does not fail: its unread bytes stay in the
//! kernel's socket buffer and TCP holds the client back. Waiters are served in order (the
//! semaphore is fair), so a large request is not starved by small ones.
//!
//! What a request costs is more than its frame: decoding turns each element into a Rust value
//! (a one-byte group id becomes a 24-byte `String` plus its allocation), and the handler builds a
//! response of the same shape. So the socket server keeps a second pool of the same capacity for
//! that cost, [`decode_charge`]: nothing for Produce, whose bulk — the record batches — stays a
//! slice of the frame, and [`DECODE_AMPLIFICATION`] times the frame's size for every other API,
//! which covers the worst measured (a DescribeGroups of one-byte group ids: +105 bytes of peak
//! memory per frame byte, request and response together). It is taken once the whole frame has
//! arrived, after the frame's own room and never the other way round (so the two pools cannot
//! deadlock), and held until the response is written. Taking it only then keeps a client that
//! announces a large frame and trickles it from holding more than Kafka's pool would let it hold.
//! Normal non-Produce requests are a few KiB, so the factor costs them nothing; a large one only
//! waits longer for its turn.
//!
//! A frame larger than the whole byte pool (possible only when `queued.max.request.bytes` is set
//! below `socket.request.max.bytes`) takes the whole pool: it waits until nothing else is in
//! flight and is then served alone, rather than never — its bytes are real and bounded by
//! `socket.request.max.bytes`. A request whose *decoded cost* exceeds the whole decode pool is
//! different: serving it alone would still let one frame of `socket.request.max.bytes` cost a
//! hundred times that in memory, so it is refused and its connection closed ([`fits`]). With the
//! default pool (512 MiB) that is a non-Produce request above 4 MiB (a Fetch above 16 MiB — about
//! 500,000 partitions): far above what clients send, and raised with `queued.max.request.bytes`.
//!
//! Thread-safety: a tokio semaphore counting bytes; leases are RAII.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The bytes of memory one byte of a non-Produce request may cost once decoded and answered:
/// measured at 105 for a DescribeGroups of one-byte ids (4 MiB frame, +420 MiB VmHWM), rounded
/// up. The decoder's own bound (an array claims no more elements than its bytes can hold) keeps
/// the per-byte cost finite; this makes the pool count it.
pub const DECODE_AMPLIFICATION: usize = 128;

/// The same for Fetch, whose elements are fixed-size partition entries (33 bytes or more on the
/// wire each; about 72 bytes decoded, about 260 in the response, plus the de-duplication map):
/// a quarter of the general factor, so a follower's fetch of hundreds of thousands of
/// partitions still fits the default pool.
pub const FETCH_DECODE_AMPLIFICATION: usize = 32;

/// What decoding and answering a request frame of `len` bytes takes from the decode pool, given
/// its API key (the frame's first two bytes; `None` for a frame too short to hold one).
pub fn decode_charge(api_key: Option<i16>, len: usize) -> usize {
    use rafka_protocol::ApiKey;
    match api_key {
        Some(k) if k == ApiKey::Produce as i16 => 0,
        Some(k) if k == ApiKey::Fetch as i16 => len.saturating_mul(FETCH_DECODE_AMPLIFICATION),
        _ => len.saturating_mul(DECODE_AMPLIFICATION),
    }
}

/// A pool of `capacity` bytes.
#[derive(Debug)]
pub struct MemoryPool {
    capacity: usize,
    bytes: Arc<Semaphore>,
}

/// Bytes taken from the pool; given back when dropped.
#[derive(Debug)]
pub struct MemoryLease {
    _permit: OwnedSemaphorePermit,
}

impl MemoryPool {
    /// A pool of `capacity` bytes (at least 1, at most what a semaphore counts).
    pub fn new(capacity: usize) -> MemoryPool {
        let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS);
        MemoryPool {
            capacity,
            bytes: Arc::new(Semaphore::new(capacity)),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether a charge of `bytes` can ever be granted (it is not larger than the whole pool).
    pub fn fits(&self, bytes: usize) -> bool {
        bytes <= self.capacity
    }

    /// Bytes free now.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }

    /// What a request of `bytes` takes: itself, or the whole pool when it is larger. Also bounded
    /// by `u32` (a frame size is an `i32`).
    fn charge(&self, bytes: usize) -> u32 {
        u32::try_from(bytes.min(self.capacity)).unwrap_or(u32::MAX)
    }

    /// Waits for `bytes` of room and takes them. Cancel-safe: a cancelled wait takes nothing.
    pub async fn acquire(&self, bytes: usize) -> MemoryLease {
        let permit = self
            .bytes
            .clone()
            .acquire_many_owned(self.charge(bytes))
            .await
            .expect("invariant: the memory pool's semaphore is never closed");
        MemoryLease { _permit: permit }
    }

    /// Takes `bytes` if there is room now.
    pub fn try_acquire(&self, bytes: usize) -> Option<MemoryLease> {
        self.bytes
            .clone()
            .try_acquire_many_owned(self.charge(bytes))
            .ok()
            .map(|permit| MemoryLease { _permit: permit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn produce_costs_no_decode_room_other_requests_their_decoded_cost() {
        let produce = rafka_protocol::ApiKey::Produce as i16;
        let describe_groups = rafka_protocol::ApiKey::DescribeGroups as i16;
        assert_eq!(decode_charge(Some(produce), 1000), 0);
        assert_eq!(
            decode_charge(Some(describe_groups), 1000),
            1000 * DECODE_AMPLIFICATION
        );
        assert_eq!(
            decode_charge(Some(rafka_protocol::ApiKey::Fetch as i16), 1000),
            1000 * FETCH_DECODE_AMPLIFICATION
        );
        assert_eq!(decode_charge(None, 1), DECODE_AMPLIFICATION);
        let pool = MemoryPool::new(1000);
        assert!(pool.fits(1000) && !pool.fits(1001));
        assert_eq!(decode_charge(None, usize::MAX), usize::MAX);
    }

    #[test]
    fn leases_take_and_give_back() {
        let pool = MemoryPool::new(100);
        let a = pool.try_acquire(60).expect("room");
        assert_eq!(pool.available(), 40);
        assert!(pool.try_acquire(41).is_none());
        let b = pool.try_acquire(40).expect("exactly the rest");
        assert_eq!(pool.available(), 0);
        drop(a);
        assert_eq!(pool.available(), 60);
        drop(b);
        assert_eq!(pool.available(), 100);
    }

    #[test]
    fn a_request_larger_than_the_pool_takes_the_whole_pool() {
        let pool = MemoryPool::new(100);
        let small = pool.try_acquire(1).expect("room");
        assert!(pool.try_acquire(1000).is_none(), "waits for everything");
        drop(small);
        let big = pool.try_acquire(1000).expect("alone");
        assert_eq!(pool.available(), 0);
        drop(big);
        assert_eq!(pool.available(), 100);
    }

    #[tokio::test]
    async fn a_waiter_gets_its_room_when_a_lease_is_dropped_and_order_is_kept() {
        let pool = Arc::new(MemoryPool::new(100));
        let held = pool.acquire(90).await;
        let big = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.acquire(50).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Fair: a later small request does not overtake the waiting large one.
        assert!(pool.try_acquire(5).is_none());
        assert!(!big.is_finished());
        drop(held);
        let lease = tokio::time::timeout(Duration::from_secs(5), big)
            .await
            .expect("woken")
            .expect("task");
        assert_eq!(pool.available(), 50);
        drop(lease);
        assert_eq!(pool.available(), 100);
    }
}
