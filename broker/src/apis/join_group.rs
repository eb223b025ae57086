//! JoinGroup: a member joins its group's rebalance at the group's coordinator
//! ([`crate::group_coordinator::membership`]). A broker that does not coordinate the group
//! answers NOT_COORDINATOR (or COORDINATOR_LOAD_IN_PROGRESS while it loads), and the member looks
//! the coordinator up again.
//! Needs GROUP READ (else GROUP_AUTHORIZATION_FAILED).

use super::KafkaApis;
use crate::network::RequestContext;
use rafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use rafka_security::authorizer::AclOperation;

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    client_id: &str,
    version: i16,
    req: JoinGroupRequest,
) -> JoinGroupResponse {
    if let Err(code) = apis
        .authorize_group(ctx, AclOperation::Read, &req.group_id)
        .and_then(|()| apis.groups.check(&req.group_id))
    {
        return JoinGroupResponse {
            error_code: code.code(),
            generation_id: -1,
            protocol_name: if version >= 7 {
                None
            } else {
                Some(String::new())
            },
            member_id: req.member_id,
            ..Default::default()
        };
    }
    // A consumer group: an empty one becomes classic again; one with members refuses
    // classic members (INCONSISTENT_GROUP_PROTOCOL).
    if let Err(code) = apis
        .groups
        .convert_consumer_to_classic(&apis.image(), &req.group_id)
    {
        return JoinGroupResponse {
            error_code: code.code(),
            generation_id: -1,
            protocol_name: if version >= 7 {
                None
            } else {
                Some(String::new())
            },
            member_id: req.member_id,
            ..Default::default()
        };
    }
    // Kafka's client host: the peer address with a leading slash (InetAddress.toString).
    let host = format!("/{}", ctx.peer.ip());
    apis.groups
        .membership()
        .join_group(version, req, client_id, &host)
        .await
}
