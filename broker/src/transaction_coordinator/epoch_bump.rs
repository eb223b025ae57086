//! Transactions v2 (KIP-890 part 2): the coordinator bumps the producer epoch at every commit and
//! abort, so each transaction of a producer has its own epoch and a late write or EndTxn of the
//! previous one is fenced by the partitions and the coordinator alike.
//!
//! Pure decisions over [`TransactionMetadata`], as Kafka's `TransactionCoordinator.endTransaction`
//! (its transactions v2 branch) and `TransactionMetadata.prepareAbortOrCommit` /
//! `prepareComplete` make them; [`super::TransactionCoordinator`] applies them.
//!
//! - EndTxn v5 writes PrepareCommit / PrepareAbort at `epoch + 1` (the markers carry it) and
//!   answers the producer id and epoch the producer uses next. When the epoch is exhausted
//!   (`i16::MAX - 1`, Kafka's `isProducerEpochExhausted`) the Prepare state goes to `i16::MAX`
//!   and names a fresh producer id (`next_producer_id`); the Complete state then holds that id at
//!   epoch 0 and remembers the old one (`prev_producer_id`).
//! - A retried EndTxn — the same request with the epoch before the bump, or the old producer id
//!   at `i16::MAX - 1` after a roll-over — is answered from the completed state (NONE, with the
//!   identity now held); while the markers are still being written it gets
//!   CONCURRENT_TRANSACTIONS; any other epoch is PRODUCER_FENCED.
//! - An abort with no partition added (from Empty, CompleteCommit or CompleteAbort) is allowed,
//!   as Kafka allows it with transactions v2: it still bumps the epoch.
//! - A fencing abort (a timed-out transaction, or InitProducerId while one is open) of a
//!   transactions v2 producer bumps twice, as Kafka's epoch fence followed by its abort does, so
//!   the fenced producer's EndTxn at its old epoch is not mistaken for a retry.

use super::metadata::{
    TransactionMetadata, TransactionState, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, TRANSACTION_VERSION_2,
};
use rafka_protocol::ErrorCode;

/// What an EndTxn v5 does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndTxnV2 {
    /// A retry of an EndTxn already completed: NONE, with the identity the producer uses next.
    Done {
        producer_id: i64,
        producer_epoch: i16,
    },
    /// Write `state` at a bumped epoch; `rotate`: the epoch is exhausted, so a fresh producer id
    /// is needed first.
    Prepare {
        state: TransactionState,
        no_partition_added: bool,
        rotate: bool,
    },
    Refuse(ErrorCode),
}

/// Kafka's checks and transitions for EndTxn with transactions v2, in its order: the producer
/// id, the epoch (by state: the current one, or the one just before a bump for a retry), a change
/// in flight, then the state.
pub fn decide(
    m: Option<&TransactionMetadata>,
    pending: bool,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
) -> EndTxnV2 {
    use EndTxnV2::*;
    use TransactionState::*;
    let Some(m) = m else {
        return Refuse(ErrorCode::InvalidProducerIdMapping);
    };
    let retry_on_overflow = m.prev_producer_id == producer_id
        && producer_epoch == i16::MAX - 1
        && m.producer_epoch == 0;
    let retry_on_epoch_bump = i32::from(m.producer_epoch) == i32::from(producer_epoch) + 1;
    let valid_epoch = match m.state {
        Ongoing | Empty | Dead | PrepareEpochFence => producer_epoch == m.producer_epoch,
        PrepareCommit | PrepareAbort => retry_on_epoch_bump,
        CompleteCommit | CompleteAbort => {
            retry_on_epoch_bump || retry_on_overflow || producer_epoch == m.producer_epoch
        }
    };
    let is_retry = retry_on_epoch_bump || retry_on_overflow;
    if m.producer_id != producer_id && !retry_on_overflow {
        return Refuse(ErrorCode::InvalidProducerIdMapping);
    }
    if !valid_epoch {
        return Refuse(ErrorCode::ProducerFenced);
    }
    if pending {
        return Refuse(ErrorCode::ConcurrentTransactions);
    }
    let prepare = |state, no_partition_added| Prepare {
        state,
        no_partition_added,
        rotate: m.epoch_exhausted(),
    };
    let done = Done {
        producer_id: m.producer_id,
        producer_epoch: m.producer_epoch,
    };
    match (m.state, commit) {
        (Ongoing, true) => prepare(PrepareCommit, false),
        (Ongoing, false) => prepare(PrepareAbort, false),
        (CompleteCommit, true) if is_retry => done,
        (CompleteCommit, true) => Refuse(ErrorCode::InvalidTxnState),
        (CompleteCommit, false) if is_retry => Refuse(ErrorCode::InvalidTxnState),
        (CompleteCommit, false) => prepare(PrepareAbort, true),
        (CompleteAbort, false) if is_retry => done,
        (CompleteAbort, false) => prepare(PrepareAbort, true),
        (CompleteAbort, true) => Refuse(ErrorCode::InvalidTxnState),
        (PrepareCommit, true) | (PrepareAbort, false) => Refuse(ErrorCode::ConcurrentTransactions),
        (PrepareCommit, false) | (PrepareAbort, true) => Refuse(ErrorCode::InvalidTxnState),
        (Empty, false) => prepare(PrepareAbort, true),
        (Empty, true) => Refuse(ErrorCode::InvalidTxnState),
        // Kafka never holds these here (it would stop); refuse rather than guess.
        (Dead | PrepareEpochFence, _) => Refuse(ErrorCode::InvalidTxnState),
    }
}

/// The Prepare state EndTxn v5 writes (Kafka's `prepareAbortOrCommit` with an epoch bump):
/// `epoch + 1`, and `next_producer_id` when the epoch is exhausted.
pub fn prepare(
    m: &TransactionMetadata,
    state: TransactionState,
    no_partition_added: bool,
    next_producer_id: Option<i64>,
    now: i64,
) -> TransactionMetadata {
    let mut next = m.clone();
    next.state = state;
    next.last_producer_epoch = m.producer_epoch;
    next.producer_epoch = m.producer_epoch.saturating_add(1);
    next.next_producer_id = next_producer_id.unwrap_or(NO_PRODUCER_ID);
    next.prev_producer_id = m.producer_id;
    next.client_transaction_version = TRANSACTION_VERSION_2;
    next.txn_last_update_timestamp = now;
    if no_partition_added {
        // No partition joined: nothing to mark, and the start is now (as Kafka).
        next.partitions.clear();
        next.txn_start_timestamp = now;
    }
    next
}

/// The Complete state after the markers (Kafka's `prepareComplete`): a transactions v2 state
/// that named a next producer id rolls to it at epoch 0.
pub fn complete(m: &TransactionMetadata, now: i64) -> TransactionMetadata {
    let mut next = m.clone();
    next.state = if m.state == TransactionState::PrepareCommit {
        TransactionState::CompleteCommit
    } else {
        TransactionState::CompleteAbort
    };
    next.partitions.clear();
    next.txn_last_update_timestamp = now;
    if m.bumps_epoch_on_end() {
        next.prev_producer_id = m.producer_id;
        if m.next_producer_id != NO_PRODUCER_ID {
            next.producer_id = m.next_producer_id;
            next.producer_epoch = 0;
        }
    }
    next.next_producer_id = NO_PRODUCER_ID;
    next
}

/// The identity a Prepare state's producer uses once it completes (what EndTxn v5 answers, as
/// Kafka ≥ 4.0.1 answers it from the pre-send state).
pub fn identity_after(prepared: &TransactionMetadata) -> (i64, i16) {
    if prepared.next_producer_id != NO_PRODUCER_ID {
        (prepared.next_producer_id, 0)
    } else {
        (prepared.producer_id, prepared.producer_epoch)
    }
}

/// The PrepareAbort that fences the producer of an open transaction (its timeout, or a new
/// InitProducerId): one bump for transactions v1 (as before), two for v2 (Kafka's epoch fence,
/// then its abort's bump), so the fenced producer's EndTxn at its epoch is never taken for a
/// retry. A v2 producer at `i16::MAX - 1` (its last usable epoch) is fenced at `i16::MAX`: its
/// InitProducerId then rolls to a fresh producer id.
pub fn fence_abort(m: &TransactionMetadata, now: i64) -> TransactionMetadata {
    let mut next = m.clone();
    let bump = if m.bumps_epoch_on_end() { 2 } else { 1 };
    next.producer_epoch = i16::try_from(i32::from(m.producer_epoch) + bump).unwrap_or(i16::MAX);
    next.last_producer_epoch = if m.bumps_epoch_on_end() {
        next.producer_epoch.saturating_sub(1)
    } else {
        NO_PRODUCER_EPOCH
    };
    next.state = TransactionState::PrepareAbort;
    next.txn_last_update_timestamp = now;
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use EndTxnV2::*;
    use TransactionState::*;

    const PID: i64 = 7;

    fn at(state: TransactionState, epoch: i16) -> TransactionMetadata {
        TransactionMetadata {
            producer_epoch: epoch,
            state,
            prev_producer_id: PID,
            client_transaction_version: TRANSACTION_VERSION_2,
            partitions: if state == Ongoing {
                [("t".to_owned(), 0)].into_iter().collect()
            } else {
                Default::default()
            },
            txn_start_timestamp: 10,
            ..TransactionMetadata::new(PID, 60_000, 0)
        }
    }

    #[test]
    fn a_commit_bumps_the_epoch_and_a_retry_is_answered_from_the_completed_state() {
        let ongoing = at(Ongoing, 4);
        let d = decide(Some(&ongoing), false, PID, 4, true);
        assert_eq!(
            d,
            Prepare {
                state: PrepareCommit,
                no_partition_added: false,
                rotate: false
            }
        );
        let prepared = prepare(&ongoing, PrepareCommit, false, None, 20);
        assert_eq!(prepared.producer_epoch, 5);
        assert_eq!(
            prepared.partitions, ongoing.partitions,
            "markers still to write"
        );
        assert_eq!(identity_after(&prepared), (PID, 5));
        // A retry while the markers are written: CONCURRENT_TRANSACTIONS (pending or not).
        for pending in [false, true] {
            assert_eq!(
                decide(Some(&prepared), pending, PID, 4, true),
                Refuse(ErrorCode::ConcurrentTransactions)
            );
        }
        // The other result for the same transaction: INVALID_TXN_STATE.
        assert_eq!(
            decide(Some(&prepared), false, PID, 4, false),
            Refuse(ErrorCode::InvalidTxnState)
        );
        let done = complete(&prepared, 30);
        assert_eq!(
            (done.state, done.producer_id, done.producer_epoch),
            (CompleteCommit, PID, 5)
        );
        assert!(done.partitions.is_empty());
        // The retry after completion: NONE with the bumped identity.
        assert_eq!(
            decide(Some(&done), false, PID, 4, true),
            Done {
                producer_id: PID,
                producer_epoch: 5
            }
        );
        // An abort retried against a commit: INVALID_TXN_STATE.
        assert_eq!(
            decide(Some(&done), false, PID, 4, false),
            Refuse(ErrorCode::InvalidTxnState)
        );
        // Older epochs are fenced; a commit at the new epoch with nothing open is invalid.
        assert_eq!(
            decide(Some(&done), false, PID, 3, true),
            Refuse(ErrorCode::ProducerFenced)
        );
        assert_eq!(
            decide(Some(&done), false, PID, 5, true),
            Refuse(ErrorCode::InvalidTxnState)
        );
        // An abort at the new epoch with nothing open is allowed (and bumps again).
        assert_eq!(
            decide(Some(&done), false, PID, 5, false),
            Prepare {
                state: PrepareAbort,
                no_partition_added: true,
                rotate: false
            }
        );
    }

    #[test]
    fn stale_epochs_unknown_ids_and_changes_in_flight() {
        let ongoing = at(Ongoing, 4);
        assert_eq!(
            decide(None, false, PID, 4, true),
            Refuse(ErrorCode::InvalidProducerIdMapping)
        );
        assert_eq!(
            decide(Some(&ongoing), false, PID + 1, 4, true),
            Refuse(ErrorCode::InvalidProducerIdMapping)
        );
        for epoch in [3, 5] {
            assert_eq!(
                decide(Some(&ongoing), false, PID, epoch, true),
                Refuse(ErrorCode::ProducerFenced),
                "epoch {epoch}"
            );
        }
        assert_eq!(
            decide(Some(&ongoing), true, PID, 4, true),
            Refuse(ErrorCode::ConcurrentTransactions)
        );
        // Empty: an abort is allowed, a commit is not.
        let empty = at(Empty, 2);
        assert_eq!(
            decide(Some(&empty), false, PID, 2, true),
            Refuse(ErrorCode::InvalidTxnState)
        );
        assert!(matches!(
            decide(Some(&empty), false, PID, 2, false),
            Prepare {
                state: PrepareAbort,
                no_partition_added: true,
                ..
            }
        ));
    }

    #[test]
    fn an_exhausted_epoch_rolls_to_a_new_producer_id() {
        const NEW: i64 = 99;
        let ongoing = at(Ongoing, i16::MAX - 1);
        let d = decide(Some(&ongoing), false, PID, i16::MAX - 1, false);
        assert_eq!(
            d,
            Prepare {
                state: PrepareAbort,
                no_partition_added: false,
                rotate: true
            }
        );
        let prepared = prepare(&ongoing, PrepareAbort, false, Some(NEW), 20);
        // The markers carry the old id at i16::MAX; the producer is told the new id at 0.
        assert_eq!(
            (prepared.producer_id, prepared.producer_epoch),
            (PID, i16::MAX)
        );
        assert_eq!(identity_after(&prepared), (NEW, 0));
        assert_eq!(
            decide(Some(&prepared), false, PID, i16::MAX - 1, false),
            Refuse(ErrorCode::ConcurrentTransactions)
        );
        let done = complete(&prepared, 30);
        assert_eq!((done.producer_id, done.producer_epoch), (NEW, 0));
        assert_eq!(done.prev_producer_id, PID);
        assert_eq!(done.next_producer_id, NO_PRODUCER_ID);
        // The retry names the old id at its last epoch.
        assert_eq!(
            decide(Some(&done), false, PID, i16::MAX - 1, false),
            Done {
                producer_id: NEW,
                producer_epoch: 0
            }
        );
        // Anything else of the old id is not this producer any more.
        assert_eq!(
            decide(Some(&done), false, PID, i16::MAX - 2, false),
            Refuse(ErrorCode::InvalidProducerIdMapping)
        );
    }

    #[test]
    fn a_fence_bumps_twice_for_transactions_v2_and_once_for_v1() {
        let v2 = at(Ongoing, 4);
        let fenced = fence_abort(&v2, 5);
        assert_eq!((fenced.state, fenced.producer_epoch), (PrepareAbort, 6));
        let done = complete(&fenced, 6);
        // The fenced producer's EndTxn at its epoch is no retry: fenced, whatever it asks.
        for commit in [true, false] {
            assert_eq!(
                decide(Some(&done), false, PID, 4, commit),
                Refuse(ErrorCode::ProducerFenced)
            );
        }
        let v1 = TransactionMetadata {
            client_transaction_version: 0,
            ..at(Ongoing, 4)
        };
        assert_eq!(fence_abort(&v1, 5).producer_epoch, 5);
        assert_eq!(
            fence_abort(&at(Ongoing, i16::MAX - 1), 5).producer_epoch,
            i16::MAX
        );
    }
}
