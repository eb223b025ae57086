//! DescribeQuorum, as a broker serves it: forwarded to the active controller (in-process when
//! this node is the Raft leader), which answers from its quorum state — see
//! [`describe_quorum`]. With no controller reachable the metadata partition
//! gets NOT_LEADER_OR_FOLLOWER, so the client retries.

use super::KafkaApis;
use rafka_controller::describe_quorum;
use rafka_protocol::messages::{
    DescribeQuorumRequest, DescribeQuorumResponse, RequestKind, ResponseKind,
};
use rafka_protocol::ErrorCode;

pub async fn handle(
    apis: &KafkaApis,
    version: i16,
    req: DescribeQuorumRequest,
) -> DescribeQuorumResponse {
    let asked = req.clone();
    match apis
        .controller
        .send(version, RequestKind::DescribeQuorum(req))
        .await
    {
        Some(ResponseKind::DescribeQuorum(r)) => r,
        _ => describe_quorum::refuse(version, asked, ErrorCode::NotLeaderOrFollower),
    }
}
