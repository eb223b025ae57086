//! Transactions in a [`UnifiedLog`] (KIP-98, KIP-890): verification before a transactional
//! append, end-transaction markers (COMMIT or ABORT) and the `.txnindex` entries an abort
//! leaves, the last stable offset, and the aborted transactions a read_committed fetch skips.

use super::{LogAppendInfo, UnifiedLog};
use crate::error::{Result, StorageError};
use crate::log_loader::aborted_txn;
use crate::log_segment::{BatchToAppend, NO_TIMESTAMP};
use crate::producer_state::VerificationGuard;
use crate::transaction_index::AbortedTxn;
use rafka_protocol::control_record::EndTransactionMarker;
use rafka_protocol::record_batch::{
    BASE_OFFSET_OFFSET, PARTITION_LEADER_EPOCH_OFFSET, RECORD_BATCH_OVERHEAD,
};

impl UnifiedLog {
    /// The guard a transactional produce of `producer_id` at `producer_epoch` presents with its
    /// append, after asking the coordinator unless it is the sentinel (KIP-890 part 1; see
    /// [`ProducerStateManager::maybe_start_verification`]).
    pub fn maybe_start_txn_verification(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
    ) -> VerificationGuard {
        self.producer_state
            .maybe_start_verification(producer_id, producer_epoch)
    }

    /// Appends an end-of-transaction marker for a producer (WriteTxnMarkers, from the
    /// transaction coordinator; Kafka's `appendAsLeader` with origin COORDINATOR): checked
    /// against the producer's epoch and coordinator epoch, written as a control batch, and the
    /// transaction closed — an aborted one gets its `.txnindex` entry.
    pub fn append_end_txn_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        marker: &EndTransactionMarker,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<LogAppendInfo> {
        self.producer_state
            .check_end_txn(producer_id, producer_epoch, marker.coordinator_epoch)
            .map_err(|source| StorageError::Producer {
                partition: self.name(),
                source,
            })?;
        let bytes = marker
            .batch(producer_id, producer_epoch, now_ms)
            .map_err(|source| StorageError::CorruptBatch {
                partition: self.name(),
                position: 0,
                source,
            })?;
        let offset = self.log_end_offset;
        let mut h = [0u8; RECORD_BATCH_OVERHEAD];
        h.copy_from_slice(&bytes[..RECORD_BATCH_OVERHEAD]);
        h[BASE_OFFSET_OFFSET..BASE_OFFSET_OFFSET + 8].copy_from_slice(&offset.to_be_bytes());
        h[PARTITION_LEADER_EPOCH_OFFSET..PARTITION_LEADER_EPOCH_OFFSET + 4]
            .copy_from_slice(&leader_epoch.to_be_bytes());
        let to_append = [BatchToAppend {
            header: h,
            body: &bytes[RECORD_BATCH_OVERHEAD..],
            last_offset: offset,
            max_timestamp: now_ms,
        }];
        self.check_append_size(bytes.len())?;
        if self
            .leader_epoch_cache
            .latest_epoch()
            .is_none_or(|e| leader_epoch > e)
        {
            self.leader_epoch_cache
                .assign_unflushed(leader_epoch, offset)?;
        }
        self.append_batches(offset, &to_append, bytes.len(), now_ms)?;
        self.record_end_txn(producer_id, producer_epoch, marker, offset, now_ms)?;
        Ok(LogAppendInfo {
            first_offset: offset,
            last_offset: offset,
            max_timestamp: now_ms,
            log_append_time: NO_TIMESTAMP,
            batches: 1,
            bytes: bytes.len(),
            duplicate: false,
        })
    }

    /// A marker at `offset` is in the active segment: the producer's transaction ends, and an
    /// aborted one is indexed there.
    pub(super) fn record_end_txn(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        marker: &EndTransactionMarker,
        offset: i64,
        timestamp: i64,
    ) -> Result<()> {
        let done = self.producer_state.complete_txn(
            producer_id,
            producer_epoch,
            marker,
            offset,
            timestamp,
        );
        if done.is_aborted {
            let lso = self.producer_state.last_stable_offset_after(&done);
            self.active_segment()
                .txn_index()
                .append(&aborted_txn(&done, lso))?;
        }
        Ok(())
    }

    /// The first offset a read_committed consumer may not read: the oldest transaction still
    /// open or not yet replicated, else the high watermark. A transaction whose first records
    /// went with retention or DeleteRecords holds it at the log start (Kafka's
    /// `updateFirstUnstableOffset`: the log start may pass unstable data, the LSO never goes
    /// below the log start).
    pub fn last_stable_offset(&self) -> i64 {
        self.producer_state
            .first_unstable_offset()
            .map_or(self.high_watermark, |f| {
                f.max(self.log_start_offset).min(self.high_watermark)
            })
    }

    /// The aborted transactions that may hold records in `[start_offset, upper_bound)`, for a
    /// read_committed fetch (Kafka's `collectAbortedTransactions`): at most `limit` of them.
    pub fn collect_aborted_txns(
        &self,
        start_offset: i64,
        upper_bound: i64,
        limit: usize,
    ) -> Result<Vec<AbortedTxn>> {
        let mut out = Vec::new();
        let from = self
            .segments
            .range(..=start_offset)
            .next_back()
            .map_or(i64::MIN, |(b, _)| *b);
        for seg in self.segments.range(from..).map(|(_, s)| s) {
            if seg
                .txn_index()
                .collect_aborted(start_offset, upper_bound, &mut out, limit)?
            {
                break;
            }
        }
        Ok(out)
    }
}
