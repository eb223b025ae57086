//! Transactional offsets (KIP-98's TxnOffsetCommit, KIP-447's stable offsets): the offsets a
//! transaction has written to a `__consumer_offsets` partition and not yet ended, per producer
//! id. They are kept apart from the committed offsets until the transaction's marker lands on
//! the partition: a COMMIT moves them in, an ABORT drops them (Kafka's
//! `OffsetMetadataManager.replayEndTransactionMarker`). The same rules replay the log at load, so
//! a new coordinator finds what was committed, aborted or still pending.
//!
//! The later record wins, as in Kafka (which compares the records' offsets): a plain commit of a
//! partition that a pending transaction also holds supersedes the pending offset (it was written
//! after it), so the transaction's COMMIT does not bring the older value back; a plain tombstone
//! of the partition removes it from every pending transaction (Kafka 4 does the same).
//!
//! Memory is bounded: every pending offset is charged its key and metadata bytes (plus a fixed
//! overhead) against [`MAX_PENDING_BYTES`] per `__consumer_offsets` partition, and a
//! TxnOffsetCommit that would pass it is refused (INVALID_COMMIT_OFFSET_SIZE) before anything is
//! written. The charge is returned when the transaction ends (or the partition is unloaded), and
//! every transaction ends: the transaction coordinator aborts it at its timeout at the latest.
//!
//! Not here: the checks of a TxnOffsetCommit (the handler and [`super::GroupCoordinator`]) or the
//! log itself.

use super::records::OffsetAndMetadata;
use std::collections::{BTreeMap, HashMap};

/// The most bytes of pending transactional offsets one `__consumer_offsets` partition holds.
/// At 4 KiB of metadata each (`offset.metadata.max.bytes`' default) that is ~8,000 offsets; at the
/// usual handful of bytes, ~200,000.
pub const MAX_PENDING_BYTES: usize = 32 << 20;

/// The fixed memory charged per pending offset besides its strings (map nodes, the value).
const ENTRY_OVERHEAD: usize = 96;

/// (topic, partition).
pub type TopicPartitionKey = (String, i32);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pending {
    value: OffsetAndMetadata,
    /// A plain commit of the partition was written after this offset: a COMMIT does not apply it.
    superseded: bool,
}

/// The pending transactional offsets of one `__consumer_offsets` partition.
#[derive(Debug, Default)]
pub struct PendingTxnOffsets {
    /// producer id → group → partition → offset.
    by_producer: HashMap<i64, HashMap<String, BTreeMap<TopicPartitionKey, Pending>>>,
    bytes: usize,
}

fn charge(group: &str, key: &TopicPartitionKey, value: &OffsetAndMetadata) -> usize {
    ENTRY_OVERHEAD + group.len() + key.0.len() + value.metadata.len()
}

impl PendingTxnOffsets {
    /// The bytes charged now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether `offsets` of `group` would fit under [`MAX_PENDING_BYTES`] (replacing what the
    /// producer already holds for the same partitions is not counted twice).
    pub fn fits(
        &self,
        producer_id: i64,
        group: &str,
        offsets: &[(String, i32, OffsetAndMetadata)],
    ) -> bool {
        let held = self
            .by_producer
            .get(&producer_id)
            .and_then(|g| g.get(group));
        let mut extra = 0usize;
        for (t, p, v) in offsets {
            let key = (t.clone(), *p);
            let old = held
                .and_then(|h| h.get(&key))
                .map_or(0, |o| charge(group, &key, &o.value));
            extra = extra.saturating_add(charge(group, &key, v).saturating_sub(old));
        }
        self.bytes.saturating_add(extra) <= MAX_PENDING_BYTES
    }

    /// A transactional offset of `producer_id` written (or replayed).
    pub fn add(
        &mut self,
        producer_id: i64,
        group: &str,
        key: TopicPartitionKey,
        value: OffsetAndMetadata,
    ) {
        let c = charge(group, &key, &value);
        let held = self
            .by_producer
            .entry(producer_id)
            .or_default()
            .entry(group.to_owned())
            .or_default();
        if let Some(old) = held.insert(
            key.clone(),
            Pending {
                value,
                superseded: false,
            },
        ) {
            self.bytes = self.bytes.saturating_sub(charge(group, &key, &old.value));
        }
        self.bytes += c;
    }

    /// A transactional tombstone of `producer_id` (replayed): the pending offset goes.
    pub fn remove(&mut self, producer_id: i64, group: &str, key: &TopicPartitionKey) {
        let Some(groups) = self.by_producer.get_mut(&producer_id) else {
            return;
        };
        if let Some(held) = groups.get_mut(group) {
            if let Some(old) = held.remove(key) {
                self.bytes = self.bytes.saturating_sub(charge(group, key, &old.value));
            }
            if held.is_empty() {
                groups.remove(group);
            }
        }
        if groups.is_empty() {
            self.by_producer.remove(&producer_id);
        }
    }

    /// A plain (non-transactional) commit of `key` in `group`: every pending offset of it is now
    /// older than the committed one.
    pub fn on_plain_commit(&mut self, group: &str, key: &TopicPartitionKey) {
        for groups in self.by_producer.values_mut() {
            if let Some(p) = groups.get_mut(group).and_then(|h| h.get_mut(key)) {
                p.superseded = true;
            }
        }
    }

    /// A plain tombstone of `key` in `group` (OffsetDelete, DeleteGroups, expiry): the pending
    /// offsets of it go too.
    pub fn on_plain_tombstone(&mut self, group: &str, key: &TopicPartitionKey) {
        let producers: Vec<i64> = self
            .by_producer
            .iter()
            .filter(|(_, g)| g.get(group).is_some_and(|h| h.contains_key(key)))
            .map(|(p, _)| *p)
            .collect();
        for p in producers {
            self.remove(p, group, key);
        }
    }

    /// A group's metadata tombstone: its pending offsets go.
    pub fn remove_group(&mut self, group: &str) {
        let mut freed = 0usize;
        self.by_producer.retain(|_, groups| {
            if let Some(held) = groups.remove(group) {
                freed += held
                    .iter()
                    .map(|(k, p)| charge(group, k, &p.value))
                    .sum::<usize>();
            }
            !groups.is_empty()
        });
        self.bytes = self.bytes.saturating_sub(freed);
    }

    /// The marker of `producer_id`'s transaction: its offsets leave the pending set; on a COMMIT
    /// those not superseded are returned, to become the committed offsets.
    pub fn complete(
        &mut self,
        producer_id: i64,
        commit: bool,
    ) -> Vec<(String, TopicPartitionKey, OffsetAndMetadata)> {
        let Some(groups) = self.by_producer.remove(&producer_id) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (group, held) in groups {
            for (key, p) in held {
                self.bytes = self.bytes.saturating_sub(charge(&group, &key, &p.value));
                if commit && !p.superseded {
                    out.push((group.clone(), key, p.value));
                }
            }
        }
        out
    }

    /// Whether a transaction has an offset of `key` in `group` not yet ended (OffsetFetch with
    /// `require_stable` answers UNSTABLE_OFFSET_COMMIT for it).
    pub fn is_pending(&self, group: &str, key: &TopicPartitionKey) -> bool {
        self.by_producer
            .values()
            .any(|g| g.get(group).is_some_and(|h| h.contains_key(key)))
    }

    /// Whether any transaction has offsets of `group` not yet ended.
    pub fn has_group(&self, group: &str) -> bool {
        self.by_producer.values().any(|g| g.contains_key(group))
    }

    /// The partitions of `group` that transactions hold offsets of.
    pub fn partitions_of(&self, group: &str) -> Vec<TopicPartitionKey> {
        let mut v: Vec<TopicPartitionKey> = self
            .by_producer
            .values()
            .filter_map(|g| g.get(group))
            .flat_map(|h| h.keys().cloned())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// How many producers have offsets pending.
    pub fn producers(&self) -> usize {
        self.by_producer.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(o: i64) -> OffsetAndMetadata {
        OffsetAndMetadata {
            offset: o,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: 1,
        }
    }

    fn k(p: i32) -> TopicPartitionKey {
        ("t".into(), p)
    }

    #[test]
    fn commit_applies_abort_drops_and_the_charge_returns() {
        let mut s = PendingTxnOffsets::default();
        s.add(7, "g", k(0), at(5));
        s.add(7, "g", k(1), at(6));
        s.add(8, "g", k(0), at(9));
        assert!(s.is_pending("g", &k(0)) && s.is_pending("g", &k(1)));
        assert!(!s.is_pending("g", &k(2)) && !s.is_pending("h", &k(0)));
        assert_eq!(s.producers(), 2);
        let mut got = s.complete(7, true);
        got.sort_by_key(|(_, k, _)| k.1);
        assert_eq!(
            got,
            vec![("g".into(), k(0), at(5)), ("g".into(), k(1), at(6))]
        );
        assert!(s.is_pending("g", &k(0)), "producer 8 still holds it");
        assert!(!s.is_pending("g", &k(1)));
        assert_eq!(s.complete(8, false), vec![]);
        assert_eq!((s.bytes(), s.producers()), (0, 0));
        assert_eq!(s.complete(9, true), vec![], "unknown producer");
    }

    #[test]
    fn a_later_plain_commit_wins_and_a_tombstone_removes() {
        let mut s = PendingTxnOffsets::default();
        s.add(7, "g", k(0), at(5));
        s.add(7, "g", k(1), at(6));
        s.on_plain_commit("g", &k(0));
        s.on_plain_tombstone("g", &k(1));
        assert!(s.is_pending("g", &k(0)), "still unstable until the marker");
        assert!(!s.is_pending("g", &k(1)));
        assert_eq!(s.complete(7, true), vec![]);
        assert_eq!(s.bytes(), 0);
        // A transactional offset written after a plain commit is not superseded by it.
        s.on_plain_commit("g", &k(0));
        s.add(7, "g", k(0), at(8));
        assert_eq!(s.complete(7, true), vec![("g".into(), k(0), at(8))]);
    }

    #[test]
    fn the_bound_holds_and_rewrites_are_not_charged_twice() {
        let mut s = PendingTxnOffsets::default();
        let big = OffsetAndMetadata {
            metadata: "m".repeat(4096),
            ..at(1)
        };
        let one = charge("g", &k(0), &big);
        let fit = MAX_PENDING_BYTES / one;
        for p in 0..fit {
            let v = vec![("t".to_string(), p as i32, big.clone())];
            assert!(s.fits(1, "g", &v));
            s.add(1, "g", k(p as i32), big.clone());
        }
        let next = vec![("t".to_string(), fit as i32, big.clone())];
        assert!(!s.fits(1, "g", &next), "over the bound");
        assert!(!s.fits(2, "g", &next), "for every producer");
        // Rewriting a partition already held costs nothing more.
        let again = vec![("t".to_string(), 0, big.clone())];
        assert!(s.fits(1, "g", &again));
        s.remove_group("g");
        assert_eq!((s.bytes(), s.producers()), (0, 0));
    }
}
