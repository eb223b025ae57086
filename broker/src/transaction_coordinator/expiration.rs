//! `transactional.id.expiration.ms` (Kafka's `TransactionStateManager.removeExpiredTransactionalIds`):
//! a transactional id whose last transaction ended (Empty, CompleteCommit, CompleteAbort) and that
//! has not been used for longer than the expiration is removed — a tombstone in
//! `__transaction_state` (so neither compaction nor a reload brings it back), then gone from
//! memory. Checked every `transaction.remove.expired.transaction.cleanup.interval.ms`. A producer
//! that comes back later with the same id starts afresh (a new producer id).
//!
//! While its tombstone is written the id is pending (requests for it answer
//! CONCURRENT_TRANSACTIONS); if the write fails it stays as it was and the next check tries again.

use super::metadata::{tombstone, TransactionState};
use super::{TransactionCoordinator, WRITE_TIMEOUT};
use crate::coordinator_common::{append_records, wait_replicated};
use rafka_protocol::ErrorCode;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The most ids one tombstone batch carries (a batch stays far below `max.message.bytes`).
const MAX_TOMBSTONES_PER_BATCH: usize = 1000;

impl TransactionCoordinator {
    /// Removes the transactional ids idle for longer than `transactional.id.expiration.ms` as of
    /// `now_ms`; the number removed.
    pub async fn remove_expired_transactional_ids(self: &Arc<Self>, now_ms: i64) -> usize {
        let expiration = self.config.transactional_id_expiration_ms;
        // (partition, coordinator epoch) → ids, each marked pending here.
        let expired: BTreeMap<(i32, i32), Vec<String>> = {
            let mut parts = self.lock();
            let mut out: BTreeMap<(i32, i32), Vec<String>> = BTreeMap::new();
            for (p, s) in parts.iter_mut().filter(|(_, s)| s.loaded) {
                for (id, e) in s.txns.iter_mut() {
                    let m = &e.metadata;
                    let ended = matches!(
                        m.state,
                        TransactionState::Empty
                            | TransactionState::CompleteCommit
                            | TransactionState::CompleteAbort
                    );
                    if ended
                        && !e.pending
                        && now_ms.saturating_sub(m.txn_last_update_timestamp) > expiration
                    {
                        e.pending = true;
                        out.entry((*p, s.coordinator_epoch))
                            .or_default()
                            .push(id.clone());
                    }
                }
            }
            out
        };
        let image = self.image();
        let mut removed = 0;
        for ((p, coordinator_epoch), ids) in expired {
            for chunk in ids.chunks(MAX_TOMBSTONES_PER_BATCH) {
                let records: Vec<_> = chunk.iter().map(|id| tombstone(id)).collect();
                let tp = Self::tp(p);
                let written = {
                    let parts = self.lock();
                    if parts
                        .get(&p)
                        .is_some_and(|s| s.coordinator_epoch == coordinator_epoch)
                    {
                        append_records(
                            &self.replica_manager,
                            &image,
                            &tp,
                            &records,
                            ErrorCode::UnknownServerError,
                        )
                    } else {
                        Err(ErrorCode::NotCoordinator)
                    }
                };
                let result = match written {
                    Ok(required) => {
                        let deadline = tokio::time::Instant::now() + WRITE_TIMEOUT;
                        wait_replicated(&self.replica_manager, &image, &tp, required, deadline)
                            .await
                    }
                    Err(e) => Err(e),
                };
                let mut parts = self.lock();
                let Some(s) = parts
                    .get_mut(&p)
                    .filter(|s| s.coordinator_epoch == coordinator_epoch)
                else {
                    continue;
                };
                for id in chunk {
                    if result.is_ok() {
                        s.txns.remove(id);
                        removed += 1;
                    } else if let Some(e) = s.txns.get_mut(id) {
                        e.pending = false;
                    }
                }
                match &result {
                    Ok(()) => tracing::info!(
                        partition = p,
                        removed = chunk.len(),
                        "expired transactional ids removed"
                    ),
                    Err(e) => {
                        tracing::warn!(partition = p, error = ?e, "cannot remove expired transactional ids")
                    }
                }
            }
        }
        removed
    }
}
