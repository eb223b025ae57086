//! AddOffsetsToTxn: a consume-transform-produce producer is about to commit a group's offsets
//! in its transaction; the group's `__consumer_offsets` partition joins the transaction (its
//! markers then make the offsets visible). Needs TRANSACTIONAL_ID WRITE and GROUP READ.

use super::add_partitions_to_txn::fenced_code;
use super::kafka_apis::KafkaApis;
use crate::group_coordinator::GROUP_METADATA_TOPIC;
use crate::network::RequestContext;
use rafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::{AclOperation, ResourceType};

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    version: i16,
    req: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let fail = |code: ErrorCode| AddOffsetsToTxnResponse {
        error_code: code.code(),
        ..Default::default()
    };
    if !apis.authorize(
        ctx,
        AclOperation::Write,
        ResourceType::TransactionalId,
        &req.transactional_id,
    ) {
        return fail(ErrorCode::TransactionalIdAuthorizationFailed);
    }
    if !apis.authorize(ctx, AclOperation::Read, ResourceType::Group, &req.group_id) {
        return fail(ErrorCode::GroupAuthorizationFailed);
    }
    if req.group_id.is_empty() {
        return fail(ErrorCode::InvalidGroupId);
    }
    let partition = (
        GROUP_METADATA_TOPIC.to_owned(),
        apis.groups.partition_for(&req.group_id),
    );
    match apis
        .transactions
        .add_partitions(
            &req.transactional_id,
            req.producer_id,
            req.producer_epoch,
            &[partition],
            fenced_code(version),
            0,
        )
        .await
    {
        Ok(()) => AddOffsetsToTxnResponse::default(),
        Err(code) => fail(code),
    }
}
