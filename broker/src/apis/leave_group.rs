//! LeaveGroup: members leave (v3+: a batch of them, each with its own result)
//! ([`crate::group_coordinator::membership`]); NOT_COORDINATOR elsewhere.

use super::KafkaApis;
use rafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

pub fn handle(apis: &KafkaApis, version: i16, req: LeaveGroupRequest) -> LeaveGroupResponse {
    if let Err(code) = apis.groups.check(&req.group_id) {
        return LeaveGroupResponse {
            error_code: code.code(),
            ..Default::default()
        };
    }
    apis.groups.membership().leave_group(version, req)
}
