//! [`IndexEntry`]: what an index file's entry format must say — its size, its search key, and
//! how it is read and written — so that the mapped file ([`super::mapped`]) is written once for
//! both `.index` and `.timeindex`.

use std::fmt::Debug;

/// One entry format.
pub(super) trait IndexEntry: Copy + Debug {
    const SIZE: usize;
    /// What a lookup searches by: the offset in `.index`, the timestamp in `.timeindex`.
    fn key(&self) -> i64;
    fn offset(&self) -> i64;
    fn decode(bytes: &[u8], base_offset: i64) -> Self;
    /// Writes the entry; its offset was checked to fit 31 bits above `base_offset`.
    fn encode(&self, base_offset: i64, out: &mut [u8]);
    /// Whether `next` may follow `self` in an index (for counting and checking entries).
    fn may_precede(&self, next: &Self) -> bool;
}
