//! LeaveGroup: members leave (v3+: a batch of them, each with its own result)
//! ([`crate::group_coordinator::membership`]); NOT_COORDINATOR elsewhere.
//! Needs GROUP READ (else GROUP_AUTHORIZATION_FAILED).

use super::kafka_apis::KafkaApis;
use crate::network::RequestContext;
use rafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use rafka_security::authorizer::AclOperation;

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    version: i16,
    req: LeaveGroupRequest,
) -> LeaveGroupResponse {
    if let Err(code) = apis
        .authorize_group(ctx, AclOperation::Read, &req.group_id)
        .and_then(|()| apis.groups.check(&req.group_id))
    {
        return LeaveGroupResponse {
            error_code: code.code(),
            ..Default::default()
        };
    }
    let timeout =
        std::time::Duration::from_millis(apis.config.offsets_commit_timeout_ms().max(1) as u64);
    apis.groups
        .leave_group(&apis.image(), version, req, timeout)
        .await
}
