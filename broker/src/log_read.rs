//! What a read of one partition's log answers: a consumer's or a coordinator's read
//! ([`ReadResult`], Kafka's `LogReadResult`), bounded by a [`FetchIsolation`], and a follower's
//! ([`FollowerRead`]). `Partition` makes them; the replica manager and the fetch path use them.

use crate::metrics::topic::TopicMetrics;
use rafka_protocol::ErrorCode;
use rafka_storage::{AbortedTxn, FileSlice};
use std::sync::Arc;

/// The answer to one partition of a fetch.
#[derive(Debug, Clone)]
pub struct ReadResult {
    pub error: ErrorCode,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    pub records: Option<FileSlice>,
    /// The partition's topic metrics, for the bytes the response ends up carrying.
    pub stats: Option<Arc<TopicMetrics>>,
    /// For a read_committed read: the aborted transactions that may hold records in the range
    /// read (`None` for other reads, as Kafka answers read_uncommitted with null).
    pub aborted_transactions: Option<Vec<AbortedTxn>>,
}

/// How far a read may go (Kafka's `FetchIsolation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchIsolation {
    /// The log end: a leader's own reads (a coordinator loading its partition).
    LogEnd,
    /// The high watermark: read_uncommitted consumers.
    HighWatermark,
    /// The last stable offset: read_committed consumers, who also get the aborted transactions.
    TxnCommitted,
}

impl FetchIsolation {
    /// A consumer's `isolation_level` (0 read_uncommitted, 1 read_committed).
    pub fn of_consumer(isolation_level: i8) -> FetchIsolation {
        if isolation_level == 1 {
            FetchIsolation::TxnCommitted
        } else {
            FetchIsolation::HighWatermark
        }
    }
}

/// The most aborted transactions one partition's read_committed fetch answers with. Kafka has no
/// bound; a consumer that gets fewer than its range holds simply fetches again from where it
/// stopped, and the bound keeps a response's memory bounded.
pub const MAX_ABORTED_TXNS_PER_FETCH: usize = 10_000;

impl ReadResult {
    pub(crate) fn error(error: ErrorCode) -> ReadResult {
        ReadResult {
            error,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            records: None,
            stats: None,
            aborted_transactions: None,
        }
    }

    pub fn bytes(&self) -> usize {
        self.records.as_ref().map_or(0, |s| s.len as usize)
    }
}

/// A read by a follower.
#[derive(Debug, Clone)]
pub struct FollowerRead {
    pub error: ErrorCode,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    /// The leader's log end offset when it read (what a delayed follower fetch waits past).
    pub log_end_offset: i64,
    pub records: Option<FileSlice>,
    /// KIP-320: the end of the follower's last fetched epoch on the leader, when the
    /// follower's log goes past it (it must truncate there).
    pub diverging_epoch: Option<(i32, i64)>,
}

impl FollowerRead {
    pub(crate) fn error(error: ErrorCode) -> FollowerRead {
        FollowerRead {
            error,
            high_watermark: -1,
            log_start_offset: -1,
            log_end_offset: -1,
            records: None,
            diverging_epoch: None,
        }
    }
}
