//! InitProducerId. For idempotent producers: a new producer id at epoch 0 from the broker's
//! block; as Kafka does without a transactional id, every call gets a fresh id (a producer that
//! asks again with its old id and epoch, KIP-360, starts over with new sequences). With a
//! transactional id the transaction coordinator answers (TRANSACTIONAL_ID WRITE needed): the id's
//! producer id with its epoch bumped, which fences every older instance.

use super::kafka_apis::KafkaApis;
use crate::network::RequestContext;
use rafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::{AclOperation, ResourceType};

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    version: i16,
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
        Some(id) => {
            if !apis.authorize(ctx, AclOperation::Write, ResourceType::TransactionalId, id) {
                return fail(ErrorCode::TransactionalIdAuthorizationFailed);
            }
            let (pid, epoch) = if version >= 3 {
                (req.producer_id, req.producer_epoch)
            } else {
                (-1, -1)
            };
            return match apis
                .transactions
                .init_producer_id(id, req.transaction_timeout_ms, pid, epoch)
                .await
            {
                Ok((producer_id, producer_epoch)) => InitProducerIdResponse {
                    producer_id,
                    producer_epoch,
                    ..Default::default()
                },
                Err(code) => fail(code),
            };
        }
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
