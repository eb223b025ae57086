//! ListGroups: the groups this broker coordinates — those with members (from
//! [`crate::group_coordinator::membership`]) and those that exist only through committed offsets
//! (Kafka lists them as Empty, with no protocol type), and the consumer groups of KIP-848
//! (type `consumer`, protocol type `consumer`). v4 filters by state, v5 by type.
//! CLUSTER DESCRIBE lists every group; otherwise only the groups the principal may DESCRIBE.

use super::kafka_apis::KafkaApis;
use crate::network::RequestContext;
use rafka_protocol::messages::list_groups_response::ListedGroup;
use rafka_protocol::messages::{ListGroupsRequest, ListGroupsResponse};
use rafka_security::authorizer::{AclOperation, ResourceType};

pub fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    req: ListGroupsRequest,
) -> ListGroupsResponse {
    let wants = |ty: &str| {
        req.types_filter.is_empty()
            || req
                .types_filter
                .iter()
                .any(|t| t.trim().eq_ignore_ascii_case(ty))
    };
    let consumer = apis.groups.consumer().list_groups(&req.states_filter);
    let mut groups = if wants("classic") {
        apis.groups.membership().list_groups(&req.states_filter)
    } else {
        Vec::new()
    };
    let empty_ok = req.states_filter.is_empty()
        || req
            .states_filter
            .iter()
            .any(|s| s.eq_ignore_ascii_case("Empty"));
    if empty_ok && wants("classic") {
        for g in apis.groups.groups_with_offsets() {
            if !groups.iter().any(|l| l.group_id == g) && !consumer.iter().any(|l| l.group_id == g)
            {
                groups.push(ListedGroup {
                    group_id: g,
                    protocol_type: String::new(),
                    group_state: "Empty".into(),
                    group_type: "classic".into(),
                    ..Default::default()
                });
            }
        }
    }
    for g in &mut groups {
        g.group_type = "classic".into();
    }
    if wants("consumer") {
        groups.extend(consumer);
    }
    let authz = apis.authorizer_for(ctx, &apis.image());
    if !authz.allows_cluster(AclOperation::Describe) {
        groups.retain(|g| authz.allows(AclOperation::Describe, ResourceType::Group, &g.group_id));
    }
    groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    ListGroupsResponse {
        groups,
        ..Default::default()
    }
}
