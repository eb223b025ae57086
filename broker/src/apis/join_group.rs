//! JoinGroup: a member joins its group's rebalance at the group's coordinator
//! ([`crate::group_coordinator::membership`]). A broker that does not coordinate the group
//! answers NOT_COORDINATOR (or COORDINATOR_LOAD_IN_PROGRESS while it loads), and the member looks
//! the coordinator up again.
//! Needs GROUP READ (else GROUP_AUTHORIZATION_FAILED).

use super::kafka_apis::KafkaApis;
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
    // Kafka's client host: the peer address with a leading slash (InetAddress.toString).
    let host = format!("/{}", ctx.peer.ip());
    // A classic group, or a consumer group whose classic members speak JoinGroup (KIP-848's
    // online migration); an empty consumer group becomes classic again.
    let timeout =
        std::time::Duration::from_millis(apis.config.offsets_commit_timeout_ms().max(1) as u64);
    apis.groups
        .join_group(&apis.image(), version, req, client_id, &host, timeout)
        .await
}
