//! ListTransactions (KIP-664, `kafka-transactions.sh list`; v1 adds KIP-994's duration filter):
//! the transactional ids this broker coordinates, filtered by state, producer id and how long
//! their transaction has been open, and then to those the principal may DESCRIBE (Kafka drops the
//! others silently). COORDINATOR_LOAD_IN_PROGRESS while a `__transaction_state` partition loads.

use super::kafka_apis::KafkaApis;
use crate::network::RequestContext;
use crate::transaction_coordinator::listing::ListFilter;
use rafka_protocol::messages::list_transactions_response::TransactionState;
use rafka_protocol::messages::{ListTransactionsRequest, ListTransactionsResponse};
use rafka_security::authorizer::{AclOperation, ResourceType};

pub fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    req: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let image = apis.image();
    let authz = apis.authorizer_for(ctx, &image);
    let listing = apis.transactions.list(&ListFilter {
        states: req.state_filters,
        producer_ids: req.producer_id_filters,
        duration_ms: req.duration_filter,
    });
    if let Some(e) = listing.error {
        return ListTransactionsResponse {
            error_code: e.code(),
            ..Default::default()
        };
    }
    ListTransactionsResponse {
        unknown_state_filters: listing.unknown_state_filters,
        transaction_states: listing
            .transactions
            .into_iter()
            .filter(|t| {
                authz.allows(
                    AclOperation::Describe,
                    ResourceType::TransactionalId,
                    &t.transactional_id,
                )
            })
            .map(|t| TransactionState {
                transactional_id: t.transactional_id,
                producer_id: t.producer_id,
                transaction_state: t.state.name().to_owned(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
