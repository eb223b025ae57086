//! ElectLeaders: forwarded to the active controller (preferred or unclean election; v0 has no
//! election type and means preferred). The answer waits (within the request's timeout) until
//! this broker's image shows a new leader epoch for every partition elected.
//!
//! v0 has no top-level error code: a request-level error (no controller, or the controller's
//! own) is given to every partition the request named instead, so the response still encodes.

use super::kafka_apis::KafkaApis;
use crate::network::RequestContext;
use rafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use rafka_protocol::messages::{
    ElectLeadersRequest, ElectLeadersResponse, RequestKind, ResponseKind,
};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::AclOperation;
use std::time::Duration;

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    version: i16,
    req: ElectLeadersRequest,
) -> ElectLeadersResponse {
    let before = apis.image();
    let timeout = Duration::from_millis(req.timeout_ms.clamp(0, 60_000) as u64);
    let named = req.topic_partitions.clone();
    // CLUSTER ALTER, else CLUSTER_AUTHORIZATION_FAILED (at the top and on every partition).
    let authorized = apis.authorize_cluster(ctx, AclOperation::Alter);
    let mut resp = if !authorized {
        ElectLeadersResponse {
            error_code: ErrorCode::ClusterAuthorizationFailed.code(),
            ..Default::default()
        }
    } else {
        forward(apis, version, req).await
    };
    if resp.error_code != 0 {
        // Kafka's getErrorResponse: the error on every partition named, and at the top (v1+).
        let code = resp.error_code;
        resp.replica_election_results = named
            .unwrap_or_default()
            .into_iter()
            .map(|t| ReplicaElectionResult {
                topic: t.topic,
                partition_result: t
                    .partitions
                    .into_iter()
                    .map(|p| PartitionResult {
                        partition_id: p,
                        error_code: code,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        if version == 0 {
            resp.error_code = 0;
        }
        return resp;
    }
    // Every elected partition: its leader epoch moves past the one the request saw.
    let elected: Vec<(rafka_protocol::Uuid, i32, i32)> = resp
        .replica_election_results
        .iter()
        .flat_map(|t| {
            let topic = before.topic_by_name(&t.topic);
            t.partition_result
                .iter()
                .filter(|p| p.error_code == 0)
                .filter_map(move |p| {
                    let topic = topic?;
                    let epoch = topic.partitions.get(&p.partition_id)?.leader_epoch;
                    Some((topic.id, p.partition_id, epoch))
                })
        })
        .collect();
    if !elected.is_empty() {
        apis.wait_for_image(timeout, |img| {
            elected.iter().all(|(id, p, epoch)| {
                img.partition(id, *p)
                    .is_none_or(|r| r.leader_epoch > *epoch)
            })
        })
        .await;
    }
    resp
}

/// The request as the active controller answers it; REQUEST_TIMED_OUT when none does.
async fn forward(apis: &KafkaApis, version: i16, req: ElectLeadersRequest) -> ElectLeadersResponse {
    match apis
        .controller
        .send(version, RequestKind::ElectLeaders(req))
        .await
    {
        Some(ResponseKind::ElectLeaders(r)) => r,
        _ => ElectLeadersResponse {
            error_code: ErrorCode::RequestTimedOut.code(),
            ..Default::default()
        },
    }
}
