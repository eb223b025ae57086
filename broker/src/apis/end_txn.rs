//! EndTxn: commit or abort the producer's transaction. Answered once PrepareCommit /
//! PrepareAbort is replicated in `__transaction_state`; the markers follow in the background
//! (the transaction coordinator). Needs TRANSACTIONAL_ID WRITE.
//!
//! v5 is transactions v2 (KIP-890 part 2): the coordinator bumps the producer epoch at every
//! commit and abort, and the response names the producer id and epoch to use next (-1 / -1 on
//! an error, as Kafka).

use super::add_partitions_to_txn::fenced_code;
use super::kafka_apis::KafkaApis;
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
    let mut answer = (-1, -1);
    let code = if !apis.authorize(
        ctx,
        AclOperation::Write,
        ResourceType::TransactionalId,
        &req.transactional_id,
    ) {
        ErrorCode::TransactionalIdAuthorizationFailed
    } else {
        match apis
            .transactions
            .end_txn(
                &req.transactional_id,
                req.producer_id,
                req.producer_epoch,
                req.committed,
                fenced_code(version),
                version >= 5,
            )
            .await
        {
            Ok(next) => {
                answer = next;
                ErrorCode::None
            }
            Err(code) => code,
        }
    };
    EndTxnResponse {
        error_code: code.code(),
        // v5+ only (the fields do not exist before; ignorable, so dropped there).
        producer_id: if version >= 5 { answer.0 } else { -1 },
        producer_epoch: if version >= 5 { answer.1 } else { -1 },
        ..Default::default()
    }
}
