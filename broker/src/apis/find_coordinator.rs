//! FindCoordinator: a group's coordinator is the leader of its `__consumer_offsets` partition
//! (see [`crate::group_coordinator`]). The topic is created through the controller on the first
//! request for a group (`offsets.topic.num.partitions`, `offsets.topic.replication.factor`,
//! compacted), as Kafka does; until its partition has a leader the answer is
//! COORDINATOR_NOT_AVAILABLE, which clients retry. v4 answers a batch of keys.
//!
//! Transaction coordinators (key type 1) are not served yet (#15): TRANSACTIONAL_ID_AUTHORIZATION_FAILED
//! with a message that says so — librdkafka (and so the rdkafka crate, confluent-kafka, kcat)
//! treats that answer as fatal and fails `init_transactions()` at once with the message,
//! where the retriable COORDINATOR_NOT_AVAILABLE made it spin until its timeout. InitProducerId
//! with a transactional id answers the same code. An unknown key type is INVALID_REQUEST.
//! Needs GROUP DESCRIBE on a group key, TRANSACTIONAL_ID DESCRIBE on a transactional id.

use super::KafkaApis;
use crate::group_coordinator::GROUP_METADATA_TOPIC;
use crate::network::RequestContext;
use rafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use rafka_protocol::messages::find_coordinator_response::Coordinator;
use rafka_protocol::messages::{
    CreateTopicsRequest, FindCoordinatorRequest, FindCoordinatorResponse, RequestKind,
};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::{AclOperation, ResourceType};
use std::time::Duration;

/// Why a transactional id is refused (the client shows it).
pub const TRANSACTIONS_UNSUPPORTED: &str =
    "rafka does not support transactions yet; unset transactional.id (an idempotent producer \
     still writes each partition exactly once)";

const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;

/// How long a request waits for a just-created `__consumer_offsets` partition to get a leader
/// before answering COORDINATOR_NOT_AVAILABLE.
const CREATE_WAIT: Duration = Duration::from_secs(2);

struct Found {
    error: ErrorCode,
    message: Option<String>,
    node_id: i32,
    host: String,
    port: i32,
}

impl Found {
    fn error(error: ErrorCode, message: Option<&str>) -> Found {
        Found {
            error,
            message: message.map(str::to_owned),
            node_id: -1,
            host: String::new(),
            port: -1,
        }
    }
}

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    version: i16,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    if version >= 4 {
        let mut coordinators = Vec::with_capacity(req.coordinator_keys.len());
        for key in req.coordinator_keys {
            let f = find(apis, ctx, req.key_type, &key).await;
            coordinators.push(Coordinator {
                key,
                node_id: f.node_id,
                host: f.host,
                port: f.port,
                error_code: f.error.code(),
                error_message: f.message,
                ..Default::default()
            });
        }
        FindCoordinatorResponse {
            coordinators,
            ..Default::default()
        }
    } else {
        let f = find(apis, ctx, req.key_type, &req.key).await;
        FindCoordinatorResponse {
            error_code: f.error.code(),
            error_message: if version >= 1 { f.message } else { None },
            node_id: f.node_id,
            host: f.host,
            port: f.port,
            ..Default::default()
        }
    }
}

async fn find(apis: &KafkaApis, ctx: &RequestContext, key_type: i8, key: &str) -> Found {
    // Kafka: GROUP DESCRIBE on the group, TRANSACTIONAL_ID DESCRIBE on the transactional id.
    match key_type {
        GROUP if !apis.authorize(ctx, AclOperation::Describe, ResourceType::Group, key) => {
            return Found::error(ErrorCode::GroupAuthorizationFailed, None)
        }
        TRANSACTION
            if !apis.authorize(
                ctx,
                AclOperation::Describe,
                ResourceType::TransactionalId,
                key,
            ) =>
        {
            return Found::error(ErrorCode::TransactionalIdAuthorizationFailed, None)
        }
        GROUP => {}
        TRANSACTION => {
            return Found::error(
                ErrorCode::TransactionalIdAuthorizationFailed,
                Some(TRANSACTIONS_UNSUPPORTED),
            )
        }
        _ => {
            return Found::error(
                ErrorCode::InvalidRequest,
                Some("unknown coordinator key type"),
            )
        }
    }
    if key.is_empty() {
        return Found::error(ErrorCode::InvalidRequest, Some("empty group id"));
    }
    let partition = apis.groups.partition_for(key);
    if apis.image().topic_by_name(GROUP_METADATA_TOPIC).is_none() {
        create_offsets_topic(apis).await;
        apis.wait_for_image(CREATE_WAIT, |i| {
            i.topic_by_name(GROUP_METADATA_TOPIC)
                .and_then(|t| t.partitions.get(&partition))
                .is_some_and(|p| p.leader >= 0)
        })
        .await;
    }
    let image = apis.image();
    let leader = image
        .topic_by_name(GROUP_METADATA_TOPIC)
        .and_then(|t| t.partitions.get(&partition))
        .map_or(-1, |p| p.leader);
    let endpoint = image
        .broker(leader)
        .filter(|b| !b.fenced)
        .and_then(|b| b.endpoints.iter().find(|e| e.name == ctx.listener));
    match endpoint {
        Some(e) => Found {
            error: ErrorCode::None,
            message: None,
            node_id: leader,
            host: e.host.clone(),
            port: i32::from(e.port),
        },
        None => Found::error(ErrorCode::CoordinatorNotAvailable, None),
    }
}

/// Creates `__consumer_offsets` through the controller (another request may have won the race:
/// TOPIC_ALREADY_EXISTS is fine).
async fn create_offsets_topic(apis: &KafkaApis) {
    let c = apis.groups.config();
    let config = |name: &str, value: String| CreatableTopicConfig {
        name: name.to_owned(),
        value: Some(value),
        ..Default::default()
    };
    let req = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: GROUP_METADATA_TOPIC.to_owned(),
            num_partitions: c.num_partitions,
            replication_factor: c.replication_factor,
            configs: vec![
                config("cleanup.policy", "compact".into()),
                config("compression.type", "producer".into()),
                config("segment.bytes", c.segment_bytes.to_string()),
            ],
            ..Default::default()
        }],
        timeout_ms: 5000,
        ..Default::default()
    };
    match apis
        .controller
        .send(7, RequestKind::CreateTopics(req))
        .await
    {
        Some(rafka_protocol::messages::ResponseKind::CreateTopics(r)) => {
            for t in &r.topics {
                if t.error_code != 0 && t.error_code != ErrorCode::TopicAlreadyExists.code() {
                    tracing::warn!(error = t.error_code, message = ?t.error_message, "cannot create {GROUP_METADATA_TOPIC}");
                } else if t.error_code == 0 {
                    tracing::info!(
                        partitions = c.num_partitions,
                        "created {GROUP_METADATA_TOPIC}"
                    );
                }
            }
        }
        _ => tracing::warn!("no controller answered the creation of {GROUP_METADATA_TOPIC}"),
    }
}
