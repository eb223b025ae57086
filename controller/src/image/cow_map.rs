//! [`CowMap`]: the ordered map the image's large parts are kept in (topics by id and by name,
//! brokers, configs), shared between successive images as Kafka shares its immutable maps.
//!
//! The entries live in sorted chunks of at most [`MAX_CHUNK`] entries, each behind an `Arc`,
//! and the list of chunks is behind an `Arc` too. Cloning the map copies one pointer. Changing
//! an entry of a shared map copies the list of chunk pointers and the one chunk the key falls
//! in, not the other entries: O(n / MAX_CHUNK + MAX_CHUNK) for the first change of a chunk
//! after a clone, a plain `BTreeMap` operation after that (the copies are then unshared). So a
//! batch that changes one partition of a 100,000-partition image copies a few hundred pointers,
//! not the image.
//!
//! Values are cloned when their chunk is copied: keep them small (ids, names) or put them
//! behind an `Arc` (a topic and its partitions).
//!
//! Thread-safety: a plain value (`Send`/`Sync` when its keys and values are); sharing is by
//! `Arc` reference counts, never by interior mutability.

use std::borrow::Borrow;
use std::collections::{btree_map, BTreeMap};
use std::fmt;
use std::sync::Arc;

/// A chunk is split in two when it grows past this many entries.
pub const MAX_CHUNK: usize = 512;

type Chunk<K, V> = Arc<BTreeMap<K, V>>;

/// An ordered map whose clones share their entries; see the module doc.
pub struct CowMap<K, V> {
    /// Non-empty chunks in key order: every key of a chunk is below every key of the next.
    chunks: Arc<Vec<Chunk<K, V>>>,
    len: usize,
}

impl<K, V> Clone for CowMap<K, V> {
    fn clone(&self) -> Self {
        CowMap {
            chunks: Arc::clone(&self.chunks),
            len: self.len,
        }
    }
}

impl<K, V> Default for CowMap<K, V> {
    fn default() -> Self {
        CowMap {
            chunks: Arc::new(Vec::new()),
            len: 0,
        }
    }
}

/// The chunk that holds `key` if any does: the last whose first key is ≤ `key`, else the first.
/// `chunks` must not be empty.
fn chunk_index<K, V, Q>(chunks: &[Chunk<K, V>], key: &Q) -> usize
where
    K: Borrow<Q> + Ord,
    Q: Ord + ?Sized,
{
    chunks
        .partition_point(|c| {
            c.keys()
                .next()
                .expect("invariant: chunks are never empty")
                .borrow()
                <= key
        })
        .saturating_sub(1)
}

impl<K, V> CowMap<K, V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entries in key order.
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter {
            chunks: self.chunks.iter(),
            current: None,
            left: self.len,
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// Whether `other` shares every chunk with `self` (it was cloned from it and neither has
    /// changed since). For tests and benches that check sharing.
    pub fn shares_all_with(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.chunks, &other.chunks)
    }

    /// How many of `self`'s chunks `other` shares (the rest were copied by a change).
    pub fn shared_chunks_with(&self, other: &Self) -> (usize, usize) {
        let shared = self
            .chunks
            .iter()
            .filter(|c| other.chunks.iter().any(|o| Arc::ptr_eq(c, o)))
            .count();
        (shared, self.chunks.len())
    }
}

impl<K: Ord + Clone, V: Clone> CowMap<K, V> {
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        if self.chunks.is_empty() {
            return None;
        }
        self.chunks[chunk_index(&self.chunks, key)].get(key)
    }

    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.get(key).is_some()
    }

    /// The entry to change in place; copies its chunk first if another map shares it. A key
    /// that is absent copies nothing.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        if !self.contains_key(key) {
            return None;
        }
        let i = chunk_index(&self.chunks, key);
        let chunk = Arc::make_mut(&mut Arc::make_mut(&mut self.chunks)[i]);
        chunk.get_mut(key)
    }

    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let chunks = Arc::make_mut(&mut self.chunks);
        if chunks.is_empty() {
            chunks.push(Arc::new(BTreeMap::from([(key, value)])));
            self.len = 1;
            return None;
        }
        let i = chunk_index(chunks, &key);
        let chunk = Arc::make_mut(&mut chunks[i]);
        let old = chunk.insert(key, value);
        if old.is_none() {
            self.len += 1;
        }
        if chunk.len() > MAX_CHUNK {
            let middle = chunk
                .keys()
                .nth(chunk.len() / 2)
                .cloned()
                .expect("invariant: a chunk past MAX_CHUNK has a middle");
            let upper = chunk.split_off(&middle);
            chunks.insert(i + 1, Arc::new(upper));
        }
        old
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        if !self.contains_key(key) {
            return None;
        }
        let chunks = Arc::make_mut(&mut self.chunks);
        let i = chunk_index(chunks, key);
        let chunk = Arc::make_mut(&mut chunks[i]);
        let old = chunk.remove(key);
        if chunk.is_empty() {
            chunks.remove(i);
        }
        self.len -= 1;
        old
    }
}

/// Entries in key order (see [`CowMap::iter`]).
pub struct Iter<'a, K, V> {
    chunks: std::slice::Iter<'a, Chunk<K, V>>,
    current: Option<btree_map::Iter<'a, K, V>>,
    left: usize,
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(entry) = self.current.as_mut().and_then(Iterator::next) {
                self.left -= 1;
                return Some(entry);
            }
            self.current = Some(self.chunks.next()?.iter());
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<K, V> ExactSizeIterator for Iter<'_, K, V> {}

impl<'a, K, V> IntoIterator for &'a CowMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;

    fn into_iter(self) -> Iter<'a, K, V> {
        self.iter()
    }
}

/// Equal when the entries are, however they are chunked.
impl<K: PartialEq, V: PartialEq> PartialEq for CowMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && (Arc::ptr_eq(&self.chunks, &other.chunks) || self.iter().eq(other))
    }
}

impl<K: Eq, V: Eq> Eq for CowMap<K, V> {}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for CowMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Ord + Clone, V: Clone> FromIterator<(K, V)> for CowMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = CowMap::new();
        for (k, v) in iter {
            map.insert(k, v);
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::{CowMap, MAX_CHUNK};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16, u32),
        Remove(u16),
        Change(u16),
        Snapshot,
    }

    fn op() -> impl Strategy<Value = Op> {
        // Keys from a small range so that removes and changes hit; many ops so chunks split.
        prop_oneof![
            6 => (0u16..3000, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            3 => (0u16..3000).prop_map(Op::Remove),
            2 => (0u16..3000).prop_map(Op::Change),
            1 => Just(Op::Snapshot),
        ]
    }

    proptest! {
        /// Against a `BTreeMap` model: same answers, same order; every earlier clone keeps
        /// the entries it had when it was taken.
        #[test]
        fn behaves_as_a_btree_map_and_clones_do_not_change(ops in prop::collection::vec(op(), 1..3000)) {
            let mut map = CowMap::new();
            let mut model = BTreeMap::new();
            let mut snapshots: Vec<(CowMap<u16, u32>, BTreeMap<u16, u32>)> = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => prop_assert_eq!(map.insert(k, v), model.insert(k, v)),
                    Op::Remove(k) => prop_assert_eq!(map.remove(&k), model.remove(&k)),
                    Op::Change(k) => {
                        let got = map.get_mut(&k).map(|v| { *v = v.wrapping_add(1); *v });
                        let want = model.get_mut(&k).map(|v| { *v = v.wrapping_add(1); *v });
                        prop_assert_eq!(got, want);
                    }
                    Op::Snapshot => snapshots.push((map.clone(), model.clone())),
                }
                prop_assert_eq!(map.len(), model.len());
            }
            prop_assert!(map.iter().eq(model.iter()));
            prop_assert_eq!(map.iter().len(), model.len());
            for k in 0..3000u16 {
                prop_assert_eq!(map.get(&k), model.get(&k));
            }
            for (snap, at) in &snapshots {
                prop_assert!(snap.iter().eq(at.iter()));
            }
            prop_assert!(map.chunks.iter().all(|c| !c.is_empty() && c.len() <= MAX_CHUNK));
        }
    }

    #[test]
    fn a_change_copies_one_chunk() {
        let map: CowMap<u32, u32> = (0..100_000).map(|i| (i, i)).collect();
        let mut next = map.clone();
        assert!(next.shares_all_with(&map));
        *next.get_mut(&50_000).expect("present") += 1;
        let (shared, total) = next.shared_chunks_with(&map);
        assert_eq!(shared + 1, total, "only the changed chunk is copied");
        assert_eq!(map.get(&50_000), Some(&50_000));
        assert_eq!(next.get(&50_000), Some(&50_001));
        // A miss copies nothing.
        let mut other = map.clone();
        assert!(other.get_mut(&200_000).is_none());
        assert!(other.remove(&200_000).is_none());
        assert!(other.shares_all_with(&map));
    }

    #[test]
    fn equality_ignores_chunking() {
        let up: CowMap<u32, ()> = (0..5000).map(|i| (i, ())).collect();
        let down: CowMap<u32, ()> = (0..5000).rev().map(|i| (i, ())).collect();
        assert_eq!(up, down);
        assert_ne!(up, CowMap::new());
    }
}
