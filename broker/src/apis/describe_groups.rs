//! DescribeGroups: each group's state, protocol and members (with their metadata and
//! assignment), from [`crate::group_coordinator::membership`]. A group with only committed
//! offsets is Empty; an unknown one is Dead, without an error (as Kafka answers). A group this
//! broker does not coordinate gets NOT_COORDINATOR (COORDINATOR_LOAD_IN_PROGRESS while loading).

use super::KafkaApis;
use rafka_protocol::messages::describe_groups_response::DescribedGroup;
use rafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

pub fn handle(apis: &KafkaApis, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let with_offsets = apis.groups.groups_with_offsets();
    let groups = req
        .groups
        .into_iter()
        .map(|g| {
            if let Err(code) = apis.groups.check(&g) {
                return DescribedGroup {
                    error_code: code.code(),
                    group_id: g,
                    ..Default::default()
                };
            }
            let mut d = apis.groups.membership().describe_group(&g);
            if d.group_state == "Dead" && with_offsets.contains(&g) {
                d.group_state = "Empty".into();
            }
            d
        })
        .collect();
    DescribeGroupsResponse {
        groups,
        ..Default::default()
    }
}
