//! InitProducerId for idempotent producers: a new producer id at epoch 0 from the broker's
//! block. As Kafka does without a transactional id, every call gets a fresh id (a producer that
//! asks again with its old id and epoch, KIP-360, starts over with new sequences). Transactional
//! ids need the transaction coordinator, which rafka does not have: they are refused.

use super::KafkaApis;
use rafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse};
use rafka_protocol::ErrorCode;

pub async fn handle(apis: &KafkaApis, req: InitProducerIdRequest) -> InitProducerIdResponse {
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
    match apis.producer_ids.generate_producer_id().await {
        Ok(producer_id) => InitProducerIdResponse {
            producer_id,
            producer_epoch: 0,
            ..Default::default()
        },
        Err(code) => fail(code),
    }
}
