//! SyncGroup: the leader hands out the assignment, every member receives its own
//! ([`crate::group_coordinator::membership`]); NOT_COORDINATOR elsewhere.
//! Needs GROUP READ (else GROUP_AUTHORIZATION_FAILED).

use super::kafka_apis::KafkaApis;
use crate::network::RequestContext;
use rafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use rafka_security::authorizer::AclOperation;

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    version: i16,
    req: SyncGroupRequest,
) -> SyncGroupResponse {
    if let Err(code) = apis
        .authorize_group(ctx, AclOperation::Read, &req.group_id)
        .and_then(|()| apis.groups.check(&req.group_id))
    {
        return SyncGroupResponse {
            error_code: code.code(),
            ..Default::default()
        };
    }
    apis.groups.sync_group(&apis.image(), version, req).await
}
