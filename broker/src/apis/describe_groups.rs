//! DescribeGroups: each group's state, protocol and members (with their metadata and
//! assignment), from [`crate::group_coordinator::membership`]. A group with only committed
//! offsets is Empty; an unknown one is Dead, without an error (as Kafka answers). A group this
//! broker does not coordinate gets NOT_COORDINATOR. A consumer group (KIP-848) is described as
//! Kafka's `ConsumerGroup.asDescribedGroup` does: protocol type `consumer`, the assignor as the
//! protocol, and each member's subscription and assignment in the consumer protocol's encoding. A group that (COORDINATOR_LOAD_IN_PROGRESS while loading).
//! Needs GROUP DESCRIBE per group (else GROUP_AUTHORIZATION_FAILED); with
//! `include_authorized_operations` (v3+) each group carries Kafka's operations bit set.

use super::kafka_apis::KafkaApis;
use crate::network::RequestContext;
use rafka_protocol::messages::describe_groups_response::DescribedGroup;
use rafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::{AclOperation, ResourceType};

pub fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    req: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let authz = apis.authorizer_for(ctx, &apis.image());
    let include_ops = req.include_authorized_operations;
    let with_offsets = apis.groups.groups_with_offsets();
    let groups = req
        .groups
        .into_iter()
        .map(|g| {
            if !authz.allows(AclOperation::Describe, ResourceType::Group, &g) {
                return DescribedGroup {
                    error_code: ErrorCode::GroupAuthorizationFailed.code(),
                    group_id: g,
                    ..Default::default()
                };
            }
            if let Err(code) = apis.groups.check(&g) {
                return DescribedGroup {
                    error_code: code.code(),
                    group_id: g,
                    ..Default::default()
                };
            }
            let mut d = match apis.groups.consumer().describe_classic(&g, &apis.image()) {
                Some(d) => d,
                None => apis.groups.membership().describe_group(&g),
            };
            if d.group_state == "Dead" && with_offsets.contains(&g) {
                d.group_state = "Empty".into();
            }
            if include_ops {
                d.authorized_operations = authz.authorized_operations(ResourceType::Group, &g);
            }
            d
        })
        .collect();
    DescribeGroupsResponse {
        groups,
        ..Default::default()
    }
}
