//! DeleteGroups: a group without members is removed with its committed offsets (tombstones in
//! `__consumer_offsets`); one with members gets NON_EMPTY_GROUP, an unknown one
//! GROUP_ID_NOT_FOUND, an empty id INVALID_GROUP_ID.
//! Needs GROUP DELETE per group (else GROUP_AUTHORIZATION_FAILED).

use super::kafka_apis::KafkaApis;
use crate::network::RequestContext;
use rafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use rafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::AclOperation;

pub fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    req: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let image = apis.image();
    let results = req
        .groups_names
        .into_iter()
        .map(|g| {
            let code = if let Err(e) = apis.authorize_group(ctx, AclOperation::Delete, &g) {
                e
            } else if g.is_empty() {
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
