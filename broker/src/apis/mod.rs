//! `KafkaApis`: one handler file per Kafka API; this file only dispatches.
//!
//! Every handler gets the request body and the context it needs (the image the broker acts on,
//! the replica manager, the controller channel) and returns the response body; the dispatcher
//! wraps it in a frame with the request's correlation id. Requests for an API or version we do
//! not serve never reach a handler: the network layer's `handle_frame_error` answers ApiVersions
//! (KIP-511) and closes the connection for the rest.

mod add_offsets_to_txn;
mod add_partitions_to_txn;
mod alter_configs;
mod alter_user_scram_credentials;
mod api_versions;
mod authorize;
mod config_admin;
mod consumer_group_describe;
mod consumer_group_heartbeat;
mod create_acls;
mod create_partitions;
pub(crate) mod create_topics;
mod current_leader;
mod delete_acls;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_acls;
mod describe_cluster;
pub(crate) mod describe_configs;
pub(crate) mod describe_groups;
mod describe_log_dirs;
mod describe_producers;
pub(crate) mod describe_quorum;
mod describe_transactions;
mod describe_user_scram_credentials;
mod elect_leaders;
mod end_txn;
mod fetch;
mod fetch_files;
mod find_coordinator;
mod heartbeat;
pub(crate) mod incremental_alter_configs;
mod init_producer_id;
mod join_group;
mod kafka_apis;
mod leave_group;
mod list_groups;
mod list_offsets;
mod list_transactions;
mod metadata;
pub(crate) mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
mod sync_group;
mod txn_offset_commit;
pub(crate) mod write_txn_markers;

pub use api_versions::{advertised_versions, api_versions_response};
pub use authorize::RequestAuthorizer;
pub use kafka_apis::KafkaApis;

use crate::network::{RequestContext, RequestHandler, Response};
use rafka_protocol::frame::FrameError;
use rafka_protocol::messages::{RequestKind, ResponseKind};
use rafka_protocol::{RequestFrame, ResponseFrame};
use std::future::Future;
use std::pin::Pin;

impl KafkaApis {
    async fn dispatch(&self, ctx: &RequestContext, req: RequestFrame) -> Response {
        let version = req.header.request_api_version;
        let correlation_id = req.header.correlation_id;
        tracing::debug!(
            client_id = req.header.client_id.as_deref().unwrap_or(""),
            correlation_id,
            api_key = req.header.request_api_key,
            api_version = version,
            "request"
        );
        let body = match req.body {
            RequestKind::ApiVersions(r) => {
                ResponseKind::ApiVersions(api_versions::answer(version, &r))
            }
            RequestKind::Metadata(r) => {
                ResponseKind::Metadata(metadata::handle(self, ctx, version, r).await)
            }
            RequestKind::Produce(r) if version < produce::MIN_SERVED_VERSION => {
                match produce::unsupported_version(&r) {
                    produce::Outcome::Respond(b) => ResponseKind::Produce(b),
                    produce::Outcome::Nothing => return Response::None,
                    produce::Outcome::Close => return Response::Close,
                }
            }
            RequestKind::Produce(r) => match produce::handle(self, ctx, version, r).await {
                produce::Outcome::Respond(b) => ResponseKind::Produce(b),
                produce::Outcome::Nothing => return Response::None,
                produce::Outcome::Close => return Response::Close,
            },
            RequestKind::Fetch(r) => {
                let (resp, slices) = fetch::handle(self, ctx, version, r).await;
                let frame = ResponseFrame {
                    correlation_id,
                    api_version: version,
                    body: ResponseKind::Fetch(resp),
                };
                return match frame.encode_chunks() {
                    Ok(chunks) => Response::Chunks { chunks, slices },
                    Err(e) => {
                        tracing::error!(error = %e, "cannot encode a fetch response");
                        Response::Close
                    }
                };
            }
            RequestKind::ListOffsets(r) => {
                ResponseKind::ListOffsets(list_offsets::handle(self, ctx, version, r).await)
            }
            RequestKind::CreateTopics(r) => {
                ResponseKind::CreateTopics(create_topics::handle(self, ctx, version, r).await)
            }
            RequestKind::DeleteTopics(r) => {
                ResponseKind::DeleteTopics(delete_topics::handle(self, ctx, version, r).await)
            }
            RequestKind::CreatePartitions(r) => ResponseKind::CreatePartitions(
                create_partitions::handle(self, ctx, version, r).await,
            ),
            RequestKind::ElectLeaders(r) => {
                ResponseKind::ElectLeaders(elect_leaders::handle(self, ctx, version, r).await)
            }
            RequestKind::DescribeConfigs(r) => {
                ResponseKind::DescribeConfigs(describe_configs::handle(self, ctx, version, r))
            }
            RequestKind::AlterConfigs(r) => {
                ResponseKind::AlterConfigs(alter_configs::handle(self, ctx, version, r).await)
            }
            RequestKind::IncrementalAlterConfigs(r) => ResponseKind::IncrementalAlterConfigs(
                incremental_alter_configs::handle(self, ctx, version, r).await,
            ),
            RequestKind::DescribeCluster(r) => {
                ResponseKind::DescribeCluster(describe_cluster::handle(self, ctx, version, r))
            }
            RequestKind::DescribeLogDirs(r) => {
                ResponseKind::DescribeLogDirs(describe_log_dirs::handle(self, ctx, r).await)
            }
            RequestKind::DeleteRecords(r) => {
                ResponseKind::DeleteRecords(delete_records::handle(self, ctx, r).await)
            }
            RequestKind::OffsetForLeaderEpoch(r) => ResponseKind::OffsetForLeaderEpoch(
                offset_for_leader_epoch::handle(self, ctx, version, r),
            ),
            RequestKind::DescribeQuorum(r) => {
                ResponseKind::DescribeQuorum(describe_quorum::handle(self, ctx, version, r).await)
            }
            RequestKind::FindCoordinator(r) => {
                ResponseKind::FindCoordinator(find_coordinator::handle(self, ctx, version, r).await)
            }
            RequestKind::JoinGroup(r) => {
                let client_id = req.header.client_id.as_deref().unwrap_or("");
                ResponseKind::JoinGroup(join_group::handle(self, ctx, client_id, version, r).await)
            }
            RequestKind::SyncGroup(r) => {
                ResponseKind::SyncGroup(sync_group::handle(self, ctx, version, r).await)
            }
            RequestKind::ConsumerGroupHeartbeat(r) => {
                let client_id = req.header.client_id.as_deref().unwrap_or("");
                ResponseKind::ConsumerGroupHeartbeat(
                    consumer_group_heartbeat::handle(self, ctx, client_id, version, r).await,
                )
            }
            RequestKind::ConsumerGroupDescribe(r) => {
                ResponseKind::ConsumerGroupDescribe(consumer_group_describe::handle(self, ctx, r))
            }
            RequestKind::Heartbeat(r) => {
                ResponseKind::Heartbeat(heartbeat::handle(self, ctx, version, r))
            }
            RequestKind::LeaveGroup(r) => {
                ResponseKind::LeaveGroup(leave_group::handle(self, ctx, version, r).await)
            }
            RequestKind::OffsetCommit(r) => {
                ResponseKind::OffsetCommit(offset_commit::handle(self, ctx, version, r).await)
            }
            RequestKind::OffsetFetch(r) => {
                ResponseKind::OffsetFetch(offset_fetch::handle(self, ctx, version, r))
            }
            RequestKind::ListGroups(r) => {
                ResponseKind::ListGroups(list_groups::handle(self, ctx, r))
            }
            RequestKind::DescribeGroups(r) => {
                ResponseKind::DescribeGroups(describe_groups::handle(self, ctx, r))
            }
            RequestKind::DeleteGroups(r) => {
                ResponseKind::DeleteGroups(delete_groups::handle(self, ctx, r))
            }
            RequestKind::OffsetDelete(r) => {
                ResponseKind::OffsetDelete(offset_delete::handle(self, ctx, r))
            }
            RequestKind::InitProducerId(r) => {
                ResponseKind::InitProducerId(init_producer_id::handle(self, ctx, version, r).await)
            }
            RequestKind::AddPartitionsToTxn(r) => ResponseKind::AddPartitionsToTxn(
                add_partitions_to_txn::handle(self, ctx, version, r).await,
            ),
            RequestKind::AddOffsetsToTxn(r) => ResponseKind::AddOffsetsToTxn(
                add_offsets_to_txn::handle(self, ctx, version, r).await,
            ),
            RequestKind::TxnOffsetCommit(r) => ResponseKind::TxnOffsetCommit(
                txn_offset_commit::handle(self, ctx, version, r).await,
            ),
            RequestKind::EndTxn(r) => {
                ResponseKind::EndTxn(end_txn::handle(self, ctx, version, r).await)
            }
            RequestKind::DescribeAcls(r) => {
                ResponseKind::DescribeAcls(describe_acls::handle(self, ctx, r))
            }
            RequestKind::CreateAcls(r) => {
                ResponseKind::CreateAcls(create_acls::handle(self, ctx, version, r).await)
            }
            RequestKind::DeleteAcls(r) => {
                ResponseKind::DeleteAcls(delete_acls::handle(self, ctx, version, r).await)
            }
            RequestKind::WriteTxnMarkers(r) if write_txn_markers::served_on(self, ctx) => {
                ResponseKind::WriteTxnMarkers(write_txn_markers::handle(self, ctx, r).await)
            }
            RequestKind::DescribeTransactions(r) => {
                ResponseKind::DescribeTransactions(describe_transactions::handle(self, ctx, r))
            }
            RequestKind::ListTransactions(r) => {
                ResponseKind::ListTransactions(list_transactions::handle(self, ctx, r))
            }
            RequestKind::DescribeProducers(r) => {
                ResponseKind::DescribeProducers(describe_producers::handle(self, ctx, r))
            }
            RequestKind::AlterUserScramCredentials(r) => ResponseKind::AlterUserScramCredentials(
                alter_user_scram_credentials::handle(self, ctx, version, r).await,
            ),
            RequestKind::DescribeUserScramCredentials(r) => {
                ResponseKind::DescribeUserScramCredentials(describe_user_scram_credentials::handle(
                    self, ctx, r,
                ))
            }
            // The network layer answers these on SASL listeners until the connection is
            // authenticated (and for re-authentication); here they come after authentication
            // or on a listener without SASL, and Kafka answers ILLEGAL_SASL_STATE.
            RequestKind::SaslHandshake(_) => {
                ResponseKind::SaslHandshake(rafka_protocol::messages::SaslHandshakeResponse {
                    error_code: rafka_protocol::ErrorCode::IllegalSaslState.code(),
                    ..Default::default()
                })
            }
            RequestKind::SaslAuthenticate(_) => {
                ResponseKind::SaslAuthenticate(rafka_protocol::messages::SaslAuthenticateResponse {
                    error_code: rafka_protocol::ErrorCode::IllegalSaslState.code(),
                    error_message: Some(
                        "SaslAuthenticate request received outside a SASL exchange".to_owned(),
                    ),
                    ..Default::default()
                })
            }
            other => {
                // Not a client API of this broker: the controller-listener APIs (Raft's private
                // keys, BrokerRegistration, BrokerHeartbeat, AlterPartition, AllocateProducerIds,
                // …), or one whose handler has not landed and which is therefore not advertised.
                // Kafka's SocketServer throws InvalidRequestException for an API not enabled on
                // the listener and closes the connection; so do we. Raft's RPCs reach a
                // broker-only node on its learner listener (`rafka_controller::server`).
                tracing::info!(
                    api_key = other.api_key().key(),
                    "request for an API this broker does not serve"
                );
                return Response::Close;
            }
        };
        encode(correlation_id, version, body)
    }
}

fn encode(correlation_id: i32, api_version: i16, body: ResponseKind) -> Response {
    match (ResponseFrame {
        correlation_id,
        api_version,
        body,
    })
    .encode()
    {
        Ok(b) => Response::Frame(b.freeze()),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a response");
            Response::Close
        }
    }
}

impl RequestHandler for KafkaApis {
    fn handle(
        &self,
        ctx: &RequestContext,
        request: RequestFrame,
    ) -> Pin<Box<dyn Future<Output = Response> + Send + '_>> {
        let ctx = ctx.clone();
        Box::pin(async move { self.dispatch(&ctx, request).await })
    }

    fn handle_frame_error(
        &self,
        _ctx: &RequestContext,
        error: FrameError,
    ) -> Pin<Box<dyn Future<Output = Response> + Send + '_>> {
        Box::pin(async move {
            match error {
                // KIP-511: an ApiVersions version we do not know gets UNSUPPORTED_VERSION in a v0
                // body that still lists our ranges, so the client can retry lower.
                FrameError::UnsupportedVersion { header }
                    if header.request_api_key == rafka_protocol::ApiKey::ApiVersions.key() =>
                {
                    encode(
                        header.correlation_id,
                        0,
                        ResponseKind::ApiVersions(api_versions_response(
                            rafka_protocol::ErrorCode::UnsupportedVersion.code(),
                        )),
                    )
                }
                _ => Response::Close,
            }
        })
    }
}
