//! ConsumerGroupHeartbeat (KIP-848): a member of a consumer group joins, heartbeats, receives
//! its assignment and leaves ([`crate::group_coordinator::consumer`]). Needs GROUP READ (else
//! GROUP_AUTHORIZATION_FAILED); then the request is validated (INVALID_REQUEST,
//! UNSUPPORTED_ASSIGNOR, INVALID_REGULAR_EXPRESSION), and only then does a broker that does not
//! coordinate the group answer NOT_COORDINATOR (or COORDINATOR_LOAD_IN_PROGRESS), in Kafka's
//! order.

use super::KafkaApis;
use crate::network::RequestContext;
use rafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use rafka_security::authorizer::AclOperation;

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    client_id: &str,
    version: i16,
    req: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    if let Err(code) = apis.authorize_group(ctx, AclOperation::Read, &req.group_id) {
        return ConsumerGroupHeartbeatResponse {
            error_code: code.code(),
            ..Default::default()
        };
    }
    // Kafka's client host: the peer address with a leading slash (InetAddress.toString).
    let host = format!("/{}", ctx.peer.ip());
    let timeout =
        std::time::Duration::from_millis(apis.config.offsets_commit_timeout_ms().max(1) as u64);
    apis.groups
        .consumer_heartbeat(&apis.image(), version, req, client_id, &host, timeout)
        .await
}
