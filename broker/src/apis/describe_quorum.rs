//! DescribeQuorum, as a broker serves it: forwarded to the active controller (in-process when
//! this node is the Raft leader), which answers from its quorum state — see
//! [`describe_quorum`]. With no controller reachable the metadata partition
//! gets NOT_LEADER_OR_FOLLOWER, so the client retries.

use super::kafka_apis::KafkaApis;
use crate::network::RequestContext;
use rafka_controller::describe_quorum;
use rafka_protocol::messages::{
    DescribeQuorumRequest, DescribeQuorumResponse, RequestKind, ResponseKind,
};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::AclOperation;

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    version: i16,
    req: DescribeQuorumRequest,
) -> DescribeQuorumResponse {
    // CLUSTER DESCRIBE, else CLUSTER_AUTHORIZATION_FAILED at the top (Kafka).
    if !apis.authorize_cluster(ctx, AclOperation::Describe) {
        let code = ErrorCode::ClusterAuthorizationFailed;
        let mut resp = describe_quorum::refuse(version, req, code);
        resp.error_code = code.code();
        if version >= 2 {
            resp.error_message = Some(code.message().to_owned());
        }
        return resp;
    }
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
