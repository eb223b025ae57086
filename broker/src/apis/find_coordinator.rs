//! FindCoordinator: the group coordinator lands with the consumer-groups issue; until then every
//! key is answered COORDINATOR_NOT_AVAILABLE at once (a retriable error), so a client that only
//! uses `assign` keeps working and a group consumer retries instead of hanging.

use rafka_protocol::messages::find_coordinator_response::Coordinator;
use rafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
use rafka_protocol::ErrorCode;

const MESSAGE: &str = "the group and transaction coordinators are not available on this broker yet";

pub fn handle(version: i16, req: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let code = ErrorCode::CoordinatorNotAvailable.code();
    if version >= 4 {
        FindCoordinatorResponse {
            coordinators: req
                .coordinator_keys
                .into_iter()
                .map(|key| Coordinator {
                    key,
                    node_id: -1,
                    port: -1,
                    error_code: code,
                    error_message: Some(MESSAGE.into()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    } else {
        FindCoordinatorResponse {
            error_code: code,
            error_message: if version >= 1 {
                Some(MESSAGE.into())
            } else {
                None
            },
            node_id: -1,
            port: -1,
            ..Default::default()
        }
    }
}
