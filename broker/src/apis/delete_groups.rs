//! DeleteGroups: a group without members is removed with its committed offsets (tombstones in
//! `__consumer_offsets`); one with members gets NON_EMPTY_GROUP, an unknown one
//! GROUP_ID_NOT_FOUND, an empty id INVALID_GROUP_ID.

use super::KafkaApis;
use rafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use rafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use rafka_protocol::ErrorCode;

pub fn handle(apis: &KafkaApis, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let image = apis.image();
    let results = req
        .groups_names
        .into_iter()
        .map(|g| {
            let code = if g.is_empty() {
                ErrorCode::InvalidGroupId
            } else {
                match apis.groups.delete_group(&image, &g) {
                    Ok(()) => ErrorCode::None,
                    Err(e) => e,
                }
            };
            DeletableGroupResult {
                group_id: g,
                error_code: code.code(),
                ..Default::default()
            }
        })
        .collect();
    DeleteGroupsResponse {
        results,
        ..Default::default()
    }
}
