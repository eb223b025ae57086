//! Heartbeat: keeps a member's session alive and tells it when to rejoin
//! ([`crate::group_coordinator::membership`]); NOT_COORDINATOR elsewhere.

use super::KafkaApis;
use rafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

pub fn handle(apis: &KafkaApis, version: i16, req: HeartbeatRequest) -> HeartbeatResponse {
    if let Err(code) = apis.groups.check(&req.group_id) {
        return HeartbeatResponse {
            error_code: code.code(),
            ..Default::default()
        };
    }
    apis.groups.membership().heartbeat(version, req)
}
