//! InitProducerId for idempotent producers: a new producer id at epoch 0 from the broker's
//! block. As Kafka does without a transactional id, every call gets a fresh id (a producer that
//! asks again with its old id and epoch, KIP-360, starts over with new sequences). Transactional
//! ids need the transaction coordinator, which rafka does not have: they are refused.

use super::KafkaApis;
use crate::network::RequestContext;
use rafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::{AclOperation, ResourceType};

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let fail = |code: ErrorCode| InitProducerIdResponse {
        error_code: code.code(),
        producer_id: -1,
        producer_epoch: -1,
        ..Default::default()
    };
    match req.transactional_id.as_deref() {
        None => {}
        // Kafka's TransactionCoordinator: an empty id is INVALID_REQUEST.
        Some("") => return fail(ErrorCode::InvalidRequest),
        Some(_) => return fail(ErrorCode::TransactionalIdAuthorizationFailed),
    }
    // An idempotent producer: CLUSTER IDEMPOTENT_WRITE, or WRITE on some topic (Kafka 3+).
    let authz = apis.authorizer_for(ctx, &apis.image());
    if !authz.allows_cluster(AclOperation::IdempotentWrite)
        && !authz.allows_any(AclOperation::Write, ResourceType::Topic)
    {
        return fail(ErrorCode::ClusterAuthorizationFailed);
    }
    match apis.producer_ids.generate_producer_id().await {
        Ok(producer_id) => InitProducerIdResponse {
            producer_id,
            producer_epoch: 0,
            ..Default::default()
        },
        Err(code) => fail(code),
    }
}
