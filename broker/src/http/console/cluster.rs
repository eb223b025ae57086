//! `GET /api/cluster`: the nodes and their roles, the active controller, the quorum with each
//! voter's lag (from the DescribeQuorum handler, i.e. the active controller's view), and counts
//! of topics, partitions, under-replicated and offline partitions.

use super::api::{blocking, ok, ApiError};
use super::state::{Console, ConsoleState};
use crate::apis::describe_quorum;
use axum::response::Response;
use rafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use rafka_protocol::messages::DescribeQuorumRequest;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The metadata partition DescribeQuorum names.
const METADATA_TOPIC: &str = "__cluster_metadata";

pub async fn get_cluster(State(console): ConsoleState) -> Result<Response, ApiError> {
    let http = &console.http;
    let info = http.controller.quorum_info();
    // The quorum as the active controller reports it (each voter's log end offset).
    let mut quorum = json!({
        "leader": info.leader,
        "term": info.term,
        "voters": info.voters.iter().map(|v| json!({"id": v})).collect::<Vec<_>>(),
        "observers": info.learners.iter().map(|v| json!({"id": v})).collect::<Vec<_>>(),
    });
    if let Ok(apis) = console.apis() {
        let req = DescribeQuorumRequest {
            topics: vec![TopicData {
                topic_name: METADATA_TOPIC.to_owned(),
                partitions: vec![PartitionData {
                    partition_index: 0,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let resp = describe_quorum::handle(apis, &console.context(), 1, req).await;
        if let Some(p) = resp
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .filter(|p| p.error_code == 0 && resp.error_code == 0)
        {
            let leader_end = p
                .current_voters
                .iter()
                .find(|v| v.replica_id == p.leader_id)
                .map_or(p.high_watermark, |v| v.log_end_offset);
            let replica = |v: &rafka_protocol::messages::describe_quorum_response::ReplicaState| {
                json!({
                    "id": v.replica_id,
                    "log_end_offset": v.log_end_offset,
                    "lag": (v.log_end_offset >= 0).then(|| (leader_end - v.log_end_offset).max(0)),
                    "last_fetch_ms": (v.last_fetch_timestamp >= 0).then_some(v.last_fetch_timestamp),
                    "last_caught_up_ms": (v.last_caught_up_timestamp >= 0).then_some(v.last_caught_up_timestamp),
                })
            };
            quorum = json!({
                "leader": p.leader_id,
                "term": p.leader_epoch,
                "high_watermark": p.high_watermark,
                "voters": p.current_voters.iter().map(replica).collect::<Vec<_>>(),
                "observers": p.observers.iter().map(replica).collect::<Vec<_>>(),
            });
        }
    }
    let c = console.clone();
    let rest = blocking(move || Ok(summary(&c))).await?;
    let mut out = json!({
        "node_id": http.node_id,
        "is_controller": http.is_controller,
        "is_broker": http.broker.is_some(),
        "controller_id": quorum["leader"].clone(),
        "quorum": quorum,
        "write_enabled": console.config.write_enable,
        "principal": console.config.principal.to_string(),
        "sample_interval_ms": console.config.sample_interval.as_millis() as u64,
    });
    if let (Value::Object(o), Value::Object(r)) = (&mut out, rest) {
        o.extend(r);
    }
    Ok(ok(out))
}

/// The image's part: nodes with roles, partition counts.
fn summary(console: &Console) -> Value {
    let quorum = console.http.controller.quorum_info();
    let Ok(apis) = console.apis() else {
        return json!({
            "nodes": quorum.voters.iter().map(|v| json!({"id": v, "roles": ["controller"]})).collect::<Vec<_>>(),
        });
    };
    let image = apis.image();
    let mut nodes: BTreeMap<i32, Value> = BTreeMap::new();
    for (id, b) in image.brokers().iter() {
        let endpoint = b.endpoints.first();
        nodes.insert(
            *id,
            json!({
                "id": id,
                "roles": ["broker"],
                "host": endpoint.map(|e| e.host.clone()),
                "port": endpoint.map(|e| e.port),
                "rack": b.rack,
                "fenced": b.fenced,
                "in_controlled_shutdown": b.in_controlled_shutdown,
                "epoch": b.epoch,
            }),
        );
    }
    for v in &quorum.voters {
        let Ok(id) = i32::try_from(*v) else { continue };
        let node = nodes
            .entry(id)
            .or_insert_with(|| json!({"id": id, "roles": []}));
        if let Some(roles) = node["roles"].as_array_mut() {
            roles.push(json!("controller"));
        }
    }
    let (mut partitions, mut under_replicated, mut offline) = (0u64, 0u64, 0u64);
    for (_, _, p) in image.partitions() {
        partitions += 1;
        if p.isr.len() < p.replicas.len() {
            under_replicated += 1;
        }
        if !p.has_leader() {
            offline += 1;
        }
    }
    json!({
        "cluster_id": image.cluster_id(),
        "metadata_offset": image.offset(),
        "nodes": nodes.into_values().collect::<Vec<_>>(),
        "topics": image.topics().len(),
        "partitions": partitions,
        "under_replicated_partitions": under_replicated,
        "offline_partitions": offline,
        "groups": apis.groups.membership().list_groups(&[]).len(),
    })
}

use axum::extract::State;
