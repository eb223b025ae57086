//! What tools see of the transactions this broker coordinates (Kafka's
//! `TransactionCoordinator.handleDescribeTransactions` / `handleListTransactions`): one
//! transactional id's state, and the ids filtered by state, producer id and — KIP-994 — how long
//! their transaction has been open. Ids being removed (Dead) are never shown. Authorization is the
//! handlers' (`apis::describe_transactions`, `apis::list_transactions`).

use super::metadata::{TransactionMetadata, TransactionState};
use super::TransactionCoordinator;
use crate::now_ms;
use rafka_protocol::ErrorCode;
use std::collections::BTreeSet;

/// One line of ListTransactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedTransaction {
    pub transactional_id: String,
    pub producer_id: i64,
    pub state: TransactionState,
}

/// ListTransactions' filters (each empty or negative: no filter).
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub states: Vec<String>,
    pub producer_ids: Vec<i64>,
    /// Only transactions open longer than this (ms); < 0: all.
    pub duration_ms: i64,
}

/// ListTransactions' answer before authorization.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub error: Option<ErrorCode>,
    pub unknown_state_filters: Vec<String>,
    pub transactions: Vec<ListedTransaction>,
}

impl TransactionCoordinator {
    /// DescribeTransactions for one id: its state, or NOT_COORDINATOR /
    /// COORDINATOR_LOAD_IN_PROGRESS, INVALID_REQUEST for an empty id, TRANSACTIONAL_ID_NOT_FOUND.
    pub fn describe(&self, id: &str) -> Result<TransactionMetadata, ErrorCode> {
        if id.is_empty() {
            return Err(ErrorCode::InvalidRequest);
        }
        let p = self.partition_for(id);
        let parts = self.lock();
        let s = Self::check_coordinator(&self.replica_manager, &parts, p)?;
        match s.txns.get(id) {
            Some(e) if e.metadata.state != TransactionState::Dead => Ok(e.metadata.clone()),
            _ => Err(ErrorCode::TransactionalIdNotFound),
        }
    }

    /// ListTransactions over the partitions this broker coordinates: COORDINATOR_LOAD_IN_PROGRESS
    /// while any is loading (Kafka answers so rather than a partial list); state names Kafka does
    /// not know are returned as unknown filters. Sorted by transactional id.
    pub fn list(&self, filter: &ListFilter) -> Listing {
        let mut states = BTreeSet::new();
        let mut unknown = Vec::new();
        for name in &filter.states {
            match TransactionState::from_name(name) {
                Some(s) => {
                    states.insert(s.id());
                }
                None => unknown.push(name.clone()),
            }
        }
        unknown.sort();
        unknown.dedup();
        let producer_ids: BTreeSet<i64> = filter.producer_ids.iter().copied().collect();
        let now = now_ms();
        let parts = self.lock();
        if parts.values().any(|s| !s.loaded) {
            return Listing {
                error: Some(ErrorCode::CoordinatorLoadInProgress),
                ..Default::default()
            };
        }
        let mut transactions: Vec<ListedTransaction> = parts
            .values()
            .flat_map(|s| s.txns.iter())
            .filter(|(_, e)| {
                let m = &e.metadata;
                m.state != TransactionState::Dead
                    && (producer_ids.is_empty() || producer_ids.contains(&m.producer_id))
                    && (states.is_empty() || states.contains(&m.state.id()))
                    && (filter.duration_ms < 0
                        || now.saturating_sub(m.txn_start_timestamp) > filter.duration_ms)
            })
            .map(|(id, e)| ListedTransaction {
                transactional_id: id.clone(),
                producer_id: e.metadata.producer_id,
                state: e.metadata.state,
            })
            .collect();
        transactions.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Listing {
            error: None,
            unknown_state_filters: unknown,
            transactions,
        }
    }
}
