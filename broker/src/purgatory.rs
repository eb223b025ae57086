//! The delayed-operation purgatory, keyed by partition (Kafka's `DelayedOperationPurgatory` with
//! one `TopicPartitionOperationKey` per partition): a request that cannot be answered yet waits
//! on the partitions it is about, and a change of a partition wakes only what waits on that
//! partition — and on that offset of it.
//!
//! Each [`crate::partition::Partition`] carries an [`OffsetsWatch`]: its log end offset, high
//! watermark and last stable offset as atomics (published under the log's lock after every
//! change, read without it), a generation bumped on every leadership change, and one watch list
//! per offset. A delayed operation registers a [`Waiter`] on the lists of its partitions once,
//! for as long as it waits, each registration with the offset it waits for (`at`); a publish
//! that moves an offset wakes the waiters on that offset's list whose `at` it reached, each told
//! *which* of its partitions moved, so a woken operation looks at that partition alone:
//!
//! - [`crate::replica_manager::delayed_fetch::DelayedFetch`] waits on its partitions' log ends (a follower), high
//!   watermarks (read_uncommitted) or last stable offsets (read_committed: a transaction's
//!   marker, once replicated, wakes it);
//! - [`crate::replica_manager::delayed_produce`] (acks=all) waits on its partitions' high
//!   watermarks, each until it reaches the offset after the produce's append. Woken on any move,
//!   every acks=all produce in flight on a partition looked again at every high-watermark
//!   step though at most the oldest could complete (librdkafka pipelines: with 16 KiB batches,
//!   a dozen in flight), and the walk held the list's lock while it woke them, so that the
//!   produces completing on the other worker waited for it to deregister.
//!
//! A leadership change (or the partition going away) wakes every waiter, whatever its `at`.
//!
//! [`PurgatoryStats`] counts, per purgatory, the wake-ups delivered and how operations ended.
//!
//! Thread-safety: a watch list's mutex is held only to add, remove or walk its entries, never
//! while waking (the walk collects whom to wake and wakes them after); waking takes each woken
//! waiter's mutex (a leaf). Neither is ever held across an `.await`, nor while taking a log's
//! lock.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Which offset of a partition an operation waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchKey {
    /// The log end offset: a follower's fetch.
    LogEnd,
    /// The high watermark: read_uncommitted fetches, acks=all produces.
    HighWatermark,
    /// The last stable offset: read_committed fetches.
    LastStable,
}

impl WatchKey {
    fn index(self) -> usize {
        match self {
            WatchKey::LogEnd => 0,
            WatchKey::HighWatermark => 1,
            WatchKey::LastStable => 2,
        }
    }
}

/// A partition's offsets, as published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offsets {
    pub log_end_offset: i64,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
}

/// Which offsets a publish moved (to wake their lists once the log's lock is let go).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[must_use = "wake the lists of the offsets that moved"]
pub struct Moved([bool; 3]);

impl Moved {
    pub fn any(self) -> bool {
        self.0.iter().any(|m| *m)
    }

    pub fn contains(self, key: WatchKey) -> bool {
        self.0[key.index()]
    }
}

/// A partition's offsets watch: what waiting operations read without the log's lock, and the
/// lists they wait on.
#[derive(Debug)]
pub struct OffsetsWatch {
    offsets: [AtomicI64; 3],
    generation: AtomicU64,
    lists: [WatchList; 3],
}

impl OffsetsWatch {
    pub fn new(o: Offsets) -> OffsetsWatch {
        OffsetsWatch {
            offsets: [
                AtomicI64::new(o.log_end_offset),
                AtomicI64::new(o.high_watermark),
                AtomicI64::new(o.last_stable_offset),
            ],
            generation: AtomicU64::new(0),
            lists: Default::default(),
        }
    }

    /// The offset `key` as last published.
    pub fn get(&self, key: WatchKey) -> i64 {
        // SeqCst pairs with the list length in `register`/`wake`: a waiter that registered
        // after this store sees the new value; one that registered before is woken.
        self.offsets[key.index()].load(Ordering::SeqCst)
    }

    pub fn high_watermark(&self) -> i64 {
        self.get(WatchKey::HighWatermark)
    }

    /// Bumped on every leadership or epoch change and when the partition goes away.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Publishes `o` (call it under the log's lock, so values are published in the log's order)
    /// and answers which offsets moved; [`OffsetsWatch::wake`] them after the lock is let go.
    pub fn publish(&self, o: Offsets) -> Moved {
        let mut moved = Moved::default();
        for (i, v) in [o.log_end_offset, o.high_watermark, o.last_stable_offset]
            .into_iter()
            .enumerate()
        {
            if self.offsets[i].swap(v, Ordering::SeqCst) != v {
                moved.0[i] = true;
            }
        }
        moved
    }

    /// Wakes the waiters on the offsets in `moved` whose offset is reached: read now, not as
    /// published, so a later publish's value counts (that publish wakes too; a second wake-up
    /// costs a look, a missed one a whole wait).
    pub fn wake(&self, moved: Moved) {
        for (i, list) in self.lists.iter().enumerate() {
            if moved.0[i] {
                list.wake(Some(self.offsets[i].load(Ordering::SeqCst)));
            }
        }
    }

    /// Leadership changed, or the partition goes away: every waiter looks again.
    pub fn wake_everyone(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        for list in &self.lists {
            list.wake(None);
        }
    }

    /// Registers `waiter` (its operation's partition number `index`) on `key`'s list, to be
    /// woken once the offset is at least `at` (`i64::MIN`: on any move). Check the offset after
    /// registering, never before: a change in between wakes the waiter.
    pub fn register(&self, key: WatchKey, waiter: &Arc<Waiter>, index: usize, at: i64) {
        self.lists[key.index()].add(waiter, index, at);
    }

    pub fn deregister(&self, key: WatchKey, waiter: &Arc<Waiter>) {
        self.lists[key.index()].remove(waiter);
    }

    /// How many waiters wait on `key` (tests and metrics).
    pub fn waiting(&self, key: WatchKey) -> usize {
        self.lists[key.index()].len.load(Ordering::SeqCst)
    }
}

/// The waiters on one offset of one partition.
#[derive(Debug, Default)]
struct WatchList {
    /// The entries' count, read without the lock so that a publish nobody waits for costs one
    /// load.
    len: AtomicUsize,
    entries: Mutex<Vec<Entry>>,
}

/// A registration: the waiter, its partition number in the operation, the offset it waits for.
#[derive(Debug)]
struct Entry {
    waiter: Arc<Waiter>,
    index: usize,
    at: i64,
}

impl WatchList {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, waiter: &Arc<Waiter>, index: usize, at: i64) {
        let mut entries = self.lock();
        entries.push(Entry {
            waiter: waiter.clone(),
            index,
            at,
        });
        self.len.store(entries.len(), Ordering::SeqCst);
    }

    fn remove(&self, waiter: &Arc<Waiter>) {
        let mut entries = self.lock();
        entries.retain(|e| !Arc::ptr_eq(&e.waiter, waiter));
        self.len.store(entries.len(), Ordering::SeqCst);
    }

    /// Wakes the entries whose offset `reached` is at (all of them for `None`), after letting
    /// the list's lock go.
    fn wake(&self, reached: Option<i64>) {
        if self.len.load(Ordering::SeqCst) == 0 {
            return;
        }
        let due: Vec<(Arc<Waiter>, usize)> = self
            .lock()
            .iter()
            .filter(|e| reached.is_none_or(|offset| offset >= e.at))
            .map(|e| (e.waiter.clone(), e.index))
            .collect();
        for (waiter, index) in due {
            waiter.wake(index);
        }
    }
}

/// One delayed operation's wake-up: which of its partitions moved since it last looked.
#[derive(Debug)]
pub struct Waiter {
    notify: Notify,
    woken: Mutex<Woken>,
    stats: Arc<PurgatoryStats>,
}

#[derive(Debug)]
struct Woken {
    /// Per partition of the operation: whether it is in `list` already (so `list` never holds
    /// more entries than the operation has partitions).
    flags: Vec<bool>,
    list: Vec<usize>,
}

impl Waiter {
    /// A waiter for an operation over `partitions` partitions, counted in `stats`.
    pub fn new(partitions: usize, stats: Arc<PurgatoryStats>) -> Arc<Waiter> {
        Arc::new(Waiter {
            notify: Notify::new(),
            woken: Mutex::new(Woken {
                flags: vec![false; partitions],
                list: Vec::new(),
            }),
            stats,
        })
    }

    fn wake(&self, index: usize) {
        self.stats.wakeups.fetch_add(1, Ordering::Relaxed);
        {
            let mut w = self.woken.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(flag) = w.flags.get_mut(index) {
                if !*flag {
                    *flag = true;
                    w.list.push(index);
                }
            }
        }
        // A permit is kept if the operation is not waiting right now: no wake-up is lost.
        self.notify.notify_one();
    }

    /// Waits for the next wake-up.
    pub async fn woken(&self) {
        self.notify.notified().await;
    }

    /// The partitions (numbers in the operation) that moved since the last call.
    pub fn take_woken(&self) -> Vec<usize> {
        let mut w = self.woken.lock().unwrap_or_else(|e| e.into_inner());
        let list = std::mem::take(&mut w.list);
        for &i in &list {
            w.flags[i] = false;
        }
        list
    }
}

/// What one purgatory did.
#[derive(Debug, Default)]
pub struct PurgatoryStats {
    /// Wake-ups delivered to waiting operations: one per (operation, moved partition).
    wakeups: AtomicU64,
    /// Operations that waited and were completed by a change (not by their deadline).
    completed: AtomicU64,
    /// Operations whose deadline came first.
    expired: AtomicU64,
}

impl PurgatoryStats {
    pub fn wakeups(&self) -> u64 {
        self.wakeups.load(Ordering::Relaxed)
    }

    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    pub fn expired(&self) -> u64 {
        self.expired.load(Ordering::Relaxed)
    }

    pub(crate) fn count_completed(&self) {
        self.completed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_expired(&self) {
        self.expired.fetch_add(1, Ordering::Relaxed);
    }
}

/// The broker's two purgatories.
#[derive(Debug, Default)]
pub struct Purgatory {
    pub fetch: Arc<PurgatoryStats>,
    pub produce: Arc<PurgatoryStats>,
}

/// An operation's registrations, taken back when it ends (however it ends: a cancelled request
/// drops it).
pub(crate) struct Registrations {
    waiter: Arc<Waiter>,
    on: Vec<(Arc<OffsetsWatch>, WatchKey)>,
}

impl Registrations {
    pub(crate) fn new(waiter: Arc<Waiter>) -> Registrations {
        Registrations {
            waiter,
            on: Vec::new(),
        }
    }

    pub(crate) fn waiter(&self) -> &Arc<Waiter> {
        &self.waiter
    }

    /// Registers the operation's partition number `index` on `key` of its partition's
    /// `offsets`, woken by any move of it.
    pub(crate) fn add(&mut self, offsets: &Arc<OffsetsWatch>, key: WatchKey, index: usize) {
        self.add_at(offsets, key, index, i64::MIN);
    }

    /// [`Registrations::add`], woken only once the offset reaches `at` (or leadership changes).
    pub(crate) fn add_at(
        &mut self,
        offsets: &Arc<OffsetsWatch>,
        key: WatchKey,
        index: usize,
        at: i64,
    ) {
        offsets.register(key, &self.waiter, index, at);
        self.on.push((offsets.clone(), key));
    }
}

impl Drop for Registrations {
    fn drop(&mut self) {
        for (offsets, key) in &self.on {
            offsets.deregister(*key, &self.waiter);
        }
    }
}

#[cfg(test)]
mod watch_tests {
    use super::*;

    #[test]
    fn a_publish_wakes_only_the_lists_of_the_offsets_it_moved() {
        let w = OffsetsWatch::new(Offsets {
            log_end_offset: 5,
            high_watermark: 3,
            last_stable_offset: 3,
        });
        let stats = Arc::new(PurgatoryStats::default());
        let on_hw = Waiter::new(1, stats.clone());
        let on_leo = Waiter::new(2, stats.clone());
        w.register(WatchKey::HighWatermark, &on_hw, 0, i64::MIN);
        w.register(WatchKey::LogEnd, &on_leo, 1, i64::MIN);
        // The log end moves, the high watermark does not.
        let moved = w.publish(Offsets {
            log_end_offset: 6,
            high_watermark: 3,
            last_stable_offset: 3,
        });
        assert!(moved.contains(WatchKey::LogEnd) && !moved.contains(WatchKey::HighWatermark));
        w.wake(moved);
        assert_eq!(on_hw.take_woken(), Vec::<usize>::new());
        assert_eq!(on_leo.take_woken(), vec![1]);
        assert_eq!(stats.wakeups(), 1);
        // Woken twice before it looks: listed once.
        w.wake(moved);
        w.wake(moved);
        assert_eq!(on_leo.take_woken(), vec![1]);
        // Nothing moved: nothing woken.
        let same = w.publish(Offsets {
            log_end_offset: 6,
            high_watermark: 3,
            last_stable_offset: 3,
        });
        assert!(!same.any());
        w.deregister(WatchKey::LogEnd, &on_leo);
        assert_eq!(w.waiting(WatchKey::LogEnd), 0);
        w.wake_everyone();
        assert_eq!(on_hw.take_woken(), vec![0]);
        assert_eq!(w.generation(), 1);
    }

    #[test]
    fn a_waiter_with_an_offset_is_woken_once_it_is_reached_or_by_a_leadership_change() {
        let at = |hw| Offsets {
            log_end_offset: 20,
            high_watermark: hw,
            last_stable_offset: hw,
        };
        let w = OffsetsWatch::new(at(3));
        let stats = Arc::new(PurgatoryStats::default());
        let waiter = Waiter::new(1, stats.clone());
        w.register(WatchKey::HighWatermark, &waiter, 0, 10);
        // Moves short of 10 wake nobody.
        for hw in [4, 9] {
            let moved = w.publish(at(hw));
            assert!(moved.contains(WatchKey::HighWatermark));
            w.wake(moved);
            assert_eq!(waiter.take_woken(), Vec::<usize>::new(), "woken at {hw}");
        }
        // 10 and past it do.
        for hw in [10, 12] {
            w.wake(w.publish(at(hw)));
            assert_eq!(waiter.take_woken(), vec![0], "not woken at {hw}");
        }
        // The offset as it is when the wake runs counts, not as the publish saw it: a publish
        // short of 10 whose wake runs after a later one reached it still wakes.
        let fresh = Waiter::new(1, stats.clone());
        w.register(WatchKey::HighWatermark, &fresh, 0, 30);
        let early = w.publish(at(25));
        w.wake(w.publish(at(30)));
        assert_eq!(fresh.take_woken(), vec![0]);
        w.wake(early);
        assert_eq!(fresh.take_woken(), vec![0]);
        // A leadership change wakes it whatever its offset.
        let far = Waiter::new(1, stats);
        w.register(WatchKey::HighWatermark, &far, 0, i64::MAX);
        w.wake(w.publish(at(31)));
        assert_eq!(far.take_woken(), Vec::<usize>::new());
        w.wake_everyone();
        assert_eq!(far.take_woken(), vec![0]);
    }
}

#[cfg(test)]
mod tests;
