//! Heartbeat: keeps a member's session alive and tells it when to rejoin
//! ([`crate::group_coordinator::membership`]); NOT_COORDINATOR elsewhere.
//! Needs GROUP READ (else GROUP_AUTHORIZATION_FAILED).

use super::kafka_apis::KafkaApis;
use crate::network::RequestContext;
use rafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use rafka_security::authorizer::AclOperation;

pub fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    version: i16,
    req: HeartbeatRequest,
) -> HeartbeatResponse {
    if let Err(code) = apis
        .authorize_group(ctx, AclOperation::Read, &req.group_id)
        .and_then(|()| apis.groups.check(&req.group_id))
    {
        return HeartbeatResponse {
            error_code: code.code(),
            ..Default::default()
        };
    }
    apis.groups.heartbeat(&apis.image(), version, req)
}
