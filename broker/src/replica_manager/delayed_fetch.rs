//! `DelayedFetch`: a fetch that found fewer than `min_bytes` waits for its partitions, each on
//! the offset its read stops at — the log end for a follower, the high watermark for a
//! read_uncommitted consumer, the last stable offset for a read_committed one — until
//! `max_wait_ms` (Kafka's `DelayedFetch`). The fetch handler reads, and parks here only when
//! the read was not enough; a woken fetch looks at the partitions that moved, not all of them:
//!
//! - `min_bytes` ≤ 1 (every follower, librdkafka's default): any of them whose bound passed the
//!   fetch offset completes it, read from the published offsets without the log's lock;
//! - a larger `min_bytes`: the partition that moved is measured (a read of its slice, no data
//!   copied) and the fetch completes once the bytes over all its partitions reach `min_bytes`;
//! - a leadership change of one of them, or its going away, completes it (the read answers the
//!   error).
//!
//! Completing means: the handler reads every partition again and answers — or, if that read
//! still falls short, parks again.

use super::ReplicaManager;
use crate::log_read::FetchIsolation;
use crate::partition::{watch_key, Partition};
use crate::purgatory::{Registrations, Waiter};
use rafka_storage::TopicPartition;
use std::sync::Arc;

/// One partition of a fetch, as its last read left it.
#[derive(Debug, Clone)]
pub struct FetchWatch {
    pub tp: TopicPartition,
    pub fetch_offset: i64,
    /// What bounds the read: [`FetchIsolation::LogEnd`] for a follower.
    pub isolation: FetchIsolation,
    /// The bound the read stopped at (its high watermark, last stable offset or log end).
    pub read_bound: i64,
    /// The bytes the read answered for it.
    pub bytes: u64,
    /// Its `partition_max_bytes`.
    pub max_bytes: u64,
}

struct Item {
    partition: Option<Arc<Partition>>,
    watch: FetchWatch,
    generation: u64,
}

/// A parked fetch; dropping it takes its registrations back.
pub struct DelayedFetch<'a> {
    rm: &'a ReplicaManager,
    registrations: Registrations,
    items: Vec<Item>,
    min_bytes: u64,
    /// Whether every partition is still to be looked at (once, after registering).
    first: bool,
}

impl ReplicaManager {
    /// Parks a fetch over `watches` that needs `min_bytes`: registered on each partition's
    /// bound until the returned value is dropped.
    pub fn delayed_fetch(&self, watches: Vec<FetchWatch>, min_bytes: u64) -> DelayedFetch<'_> {
        let waiter = Waiter::new(watches.len(), self.purgatory().fetch.clone());
        let mut registrations = Registrations::new(waiter);
        let items = watches
            .into_iter()
            .enumerate()
            .map(|(i, watch)| {
                let partition = self.partition(&watch.tp);
                let mut generation = 0;
                if let Some(p) = &partition {
                    registrations.add(p.offsets(), watch_key(watch.isolation), i);
                    generation = p.offsets().generation();
                }
                Item {
                    partition,
                    watch,
                    generation,
                }
            })
            .collect();
        DelayedFetch {
            rm: self,
            registrations,
            items,
            min_bytes,
            first: true,
        }
    }
}

impl DelayedFetch<'_> {
    /// Waits until the fetch may complete (true: read again) or `deadline` (false).
    pub async fn wait(&mut self, deadline: tokio::time::Instant) -> bool {
        let stats = self.rm.purgatory().fetch.clone();
        let mut look: Vec<usize> = if std::mem::take(&mut self.first) {
            // Once, everything: what moved between the read and the registration.
            (0..self.items.len()).collect()
        } else {
            Vec::new()
        };
        loop {
            if self.may_complete(&look) {
                stats.count_completed();
                return true;
            }
            let waiter = self.registrations.waiter().clone();
            if tokio::time::timeout_at(deadline, waiter.woken())
                .await
                .is_err()
            {
                stats.count_expired();
                return false;
            }
            look = waiter.take_woken();
        }
    }

    /// Whether the partitions numbered `look` moved enough to complete the fetch.
    fn may_complete(&mut self, look: &[usize]) -> bool {
        let mut measured = false;
        for &i in look {
            let Some(item) = self.items.get_mut(i) else {
                continue;
            };
            let Some(p) = &item.partition else {
                // Gone between the read and the registration: the read answers why.
                return true;
            };
            if p.offsets().generation() != item.generation {
                return true;
            }
            let w = &mut item.watch;
            let bound = p.published_bound(w.isolation);
            if bound == w.read_bound {
                continue;
            }
            w.read_bound = bound;
            if bound <= w.fetch_offset {
                // Moved, but still nothing at the fetch offset.
                continue;
            }
            if self.min_bytes <= 1 {
                return true;
            }
            w.bytes = p.available_bytes(w.fetch_offset, w.max_bytes, w.isolation);
            measured = true;
        }
        measured
            && self
                .items
                .iter()
                .map(|i| i.watch.bytes.min(i.watch.max_bytes))
                .fold(0u64, u64::saturating_add)
                >= self.min_bytes
    }
}
