//! DescribeQuorum, as a broker serves it: forwarded to the active controller (in-process when
//! this node is the Raft leader), which answers from its quorum state — see
//! [`rafka_controller::describe_quorum`]. With no controller reachable the metadata partition
//! gets NOT_LEADER_OR_FOLLOWER, so the client retries.

use super::KafkaApis;
use rafka_protocol::messages::describe_quorum_response::{PartitionData, TopicData};
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
        _ => {
            let code = ErrorCode::NotLeaderOrFollower;
            DescribeQuorumResponse {
                topics: asked
                    .topics
                    .into_iter()
                    .map(|t| TopicData {
                        topic_name: t.topic_name,
                        partitions: t
                            .partitions
                            .into_iter()
                            .map(|p| PartitionData {
                                partition_index: p.partition_index,
                                error_code: code.code(),
                                error_message: (version >= 2)
                                    .then(|| code.message().to_owned()),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }
        }
    }
}
