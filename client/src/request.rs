//! [`KafkaRequest`]: ties each request body to its API and its response body, so that
//! `connection.send(MetadataRequest { .. })` returns a `MetadataResponse`.

use rafka_protocol::messages::*;
use rafka_protocol::ApiKey;

/// A request body this client can send, with the response body it gets back.
pub trait KafkaRequest: Sized {
    type Response;
    const API: ApiKey;
    fn into_kind(self) -> RequestKind;
    fn response(kind: ResponseKind) -> Option<Self::Response>;
}

macro_rules! requests {
    ($($variant:ident: $req:ident => $resp:ident),* $(,)?) => {$(
        impl KafkaRequest for $req {
            type Response = $resp;
            const API: ApiKey = ApiKey::$variant;
            fn into_kind(self) -> RequestKind {
                RequestKind::$variant(self)
            }
            fn response(kind: ResponseKind) -> Option<$resp> {
                match kind {
                    ResponseKind::$variant(r) => Some(r),
                    _ => None,
                }
            }
        }
    )*};
}

requests! {
    ApiVersions: ApiVersionsRequest => ApiVersionsResponse,
    Metadata: MetadataRequest => MetadataResponse,
    Produce: ProduceRequest => ProduceResponse,
    Fetch: FetchRequest => FetchResponse,
    ListOffsets: ListOffsetsRequest => ListOffsetsResponse,
    CreateTopics: CreateTopicsRequest => CreateTopicsResponse,
    DeleteTopics: DeleteTopicsRequest => DeleteTopicsResponse,
    CreatePartitions: CreatePartitionsRequest => CreatePartitionsResponse,
    DescribeConfigs: DescribeConfigsRequest => DescribeConfigsResponse,
    IncrementalAlterConfigs: IncrementalAlterConfigsRequest => IncrementalAlterConfigsResponse,
    FindCoordinator: FindCoordinatorRequest => FindCoordinatorResponse,
    ListGroups: ListGroupsRequest => ListGroupsResponse,
    DescribeGroups: DescribeGroupsRequest => DescribeGroupsResponse,
    DeleteGroups: DeleteGroupsRequest => DeleteGroupsResponse,
    OffsetFetch: OffsetFetchRequest => OffsetFetchResponse,
    OffsetCommit: OffsetCommitRequest => OffsetCommitResponse,
    OffsetDelete: OffsetDeleteRequest => OffsetDeleteResponse,
    JoinGroup: JoinGroupRequest => JoinGroupResponse,
    SyncGroup: SyncGroupRequest => SyncGroupResponse,
    Heartbeat: HeartbeatRequest => HeartbeatResponse,
    LeaveGroup: LeaveGroupRequest => LeaveGroupResponse,
    DescribeQuorum: DescribeQuorumRequest => DescribeQuorumResponse,
    DescribeCluster: DescribeClusterRequest => DescribeClusterResponse,
    InitProducerId: InitProducerIdRequest => InitProducerIdResponse,
    DescribeTransactions: DescribeTransactionsRequest => DescribeTransactionsResponse,
    ListTransactions: ListTransactionsRequest => ListTransactionsResponse,
}
