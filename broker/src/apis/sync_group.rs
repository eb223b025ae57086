//! SyncGroup: the leader hands out the assignment, every member receives its own
//! ([`crate::group_coordinator::membership`]); NOT_COORDINATOR elsewhere.

use super::KafkaApis;
use rafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

pub async fn handle(apis: &KafkaApis, version: i16, req: SyncGroupRequest) -> SyncGroupResponse {
    if let Err(code) = apis.groups.check(&req.group_id) {
        return SyncGroupResponse {
            error_code: code.code(),
            ..Default::default()
        };
    }
    apis.groups.membership().sync_group(version, req).await
}
