//! ConsumerGroupHeartbeat (KIP-848): a member of a consumer group joins, heartbeats, receives
//! its assignment and leaves ([`crate::group_coordinator::consumer`]). Needs GROUP READ (else
//! GROUP_AUTHORIZATION_FAILED) and TOPIC DESCRIBE on every subscribed topic name (else
//! TOPIC_AUTHORIZATION_FAILED for the whole heartbeat); then the request is validated (INVALID_REQUEST,
//! UNSUPPORTED_ASSIGNOR, INVALID_REGULAR_EXPRESSION), and only then does a broker that does not
//! coordinate the group answer NOT_COORDINATOR (or COORDINATOR_LOAD_IN_PROGRESS), in Kafka's
//! order. Before all that, UNSUPPORTED_VERSION if `group.coordinator.rebalance.protocols`
//! leaves out `consumer`.

use super::kafka_apis::KafkaApis;
use crate::network::RequestContext;
use rafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::{AclOperation, ResourceType};

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    client_id: &str,
    version: i16,
    req: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    // Kafka answers this before anything else when `group.coordinator.rebalance.protocols`
    // leaves out `consumer`.
    if !apis.config.consumer_protocol_enabled() {
        return ConsumerGroupHeartbeatResponse {
            error_code: ErrorCode::UnsupportedVersion.code(),
            ..Default::default()
        };
    }
    if let Err(code) = apis.authorize_group(ctx, AclOperation::Read, &req.group_id) {
        return ConsumerGroupHeartbeatResponse {
            error_code: code.code(),
            ..Default::default()
        };
    }
    // Members may not subscribe to topics they cannot see: one subscribed name without TOPIC
    // DESCRIBE fails the whole heartbeat, as Kafka 4.0's KafkaApis checks it.
    if let Some(names) = req
        .subscribed_topic_names
        .as_ref()
        .filter(|n| !n.is_empty())
    {
        let image = apis.image();
        let authz = apis.authorizer_for(ctx, &image);
        if !names
            .iter()
            .all(|n| authz.allows(AclOperation::Describe, ResourceType::Topic, n))
        {
            return ConsumerGroupHeartbeatResponse {
                error_code: ErrorCode::TopicAuthorizationFailed.code(),
                error_message: Some(
                    "The member is not authorized to describe some of its subscribed topics."
                        .to_owned(),
                ),
                ..Default::default()
            };
        }
    }
    // Kafka's client host: the peer address with a leading slash (InetAddress.toString).
    let host = format!("/{}", ctx.peer.ip());
    let timeout =
        std::time::Duration::from_millis(apis.config.offsets_commit_timeout_ms().max(1) as u64);
    apis.groups
        .consumer_heartbeat(&apis.image(), version, req, client_id, &host, timeout)
        .await
}
