//! ConsumerGroupDescribe (KIP-848): a consumer group's epochs, assignor and members with their
//! current and target assignments ([`crate::group_coordinator::consumer`]). A group that is not
//! a consumer group gets GROUP_ID_NOT_FOUND; an empty id INVALID_GROUP_ID; NOT_COORDINATOR from
//! a broker that does not coordinate it.
//! Needs GROUP DESCRIBE per group (else GROUP_AUTHORIZATION_FAILED).

use super::kafka_apis::KafkaApis;
use crate::network::RequestContext;
use rafka_protocol::messages::consumer_group_describe_response::DescribedConsumerGroup;
use rafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::{AclOperation, ResourceType};

pub fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    req: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let image = apis.image();
    let authz = apis.authorizer_for(ctx, &image);
    let consumer_protocol = apis.config.consumer_protocol_enabled();
    let groups = req
        .group_ids
        .into_iter()
        .map(|g| {
            let err = |code: ErrorCode, g: String| DescribedConsumerGroup {
                error_code: code.code(),
                group_id: g,
                ..Default::default()
            };
            // Kafka answers every group so when `group.coordinator.rebalance.protocols` leaves
            // out `consumer`, before any other check.
            if !consumer_protocol {
                return err(ErrorCode::UnsupportedVersion, g);
            }
            if !authz.allows(AclOperation::Describe, ResourceType::Group, &g) {
                return err(ErrorCode::GroupAuthorizationFailed, g);
            }
            if g.is_empty() {
                return err(ErrorCode::InvalidGroupId, g);
            }
            if let Err(code) = apis.groups.check(&g) {
                return err(code, g);
            }
            let mut d = apis.groups.consumer().describe(&g, &image);
            if req.include_authorized_operations && d.error_code == 0 {
                d.authorized_operations = authz.authorized_operations(ResourceType::Group, &g);
            }
            d
        })
        .collect();
    ConsumerGroupDescribeResponse {
        groups,
        ..Default::default()
    }
}
