//! EndTxn: commit or abort the producer's transaction. Answered once PrepareCommit /
//! PrepareAbort is replicated in `__transaction_state`; the markers follow in the background
//! (the transaction coordinator). Needs TRANSACTIONAL_ID WRITE.

use super::add_partitions_to_txn::fenced_code;
use super::KafkaApis;
use crate::network::RequestContext;
use rafka_protocol::messages::{EndTxnRequest, EndTxnResponse};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::{AclOperation, ResourceType};

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    version: i16,
    req: EndTxnRequest,
) -> EndTxnResponse {
    let code = if !apis.authorize(
        ctx,
        AclOperation::Write,
        ResourceType::TransactionalId,
        &req.transactional_id,
    ) {
        ErrorCode::TransactionalIdAuthorizationFailed
    } else {
        apis.transactions
            .end_txn(
                &req.transactional_id,
                req.producer_id,
                req.producer_epoch,
                req.committed,
                fenced_code(version),
            )
            .await
            .err()
            .unwrap_or(ErrorCode::None)
    };
    EndTxnResponse {
        error_code: code.code(),
        ..Default::default()
    }
}
