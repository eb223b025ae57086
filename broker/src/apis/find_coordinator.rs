//! FindCoordinator: a group's coordinator is the leader of its `__consumer_offsets` partition
//! (see [`crate::group_coordinator`]), a transactional id's the leader of its
//! `__transaction_state` partition (see [`crate::transaction_coordinator`]). The topic is created
//! through the controller on the first request for a key of its type (`offsets.topic.*` /
//! `transaction.state.log.*`, compacted), as Kafka does; until its partition has a leader the
//! answer is COORDINATOR_NOT_AVAILABLE, which clients retry. v4 answers a batch of keys. An
//! unknown key type is INVALID_REQUEST. Needs GROUP DESCRIBE on a group key, TRANSACTIONAL_ID
//! DESCRIBE on a transactional id.

use super::kafka_apis::KafkaApis;
use crate::coordinator_common::{create_internal_topic, InternalTopic};
use crate::group_coordinator::GROUP_METADATA_TOPIC;
use crate::network::RequestContext;
use crate::transaction_coordinator::TRANSACTION_STATE_TOPIC;
use rafka_protocol::messages::find_coordinator_response::Coordinator;
use rafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::{AclOperation, ResourceType};
use std::time::Duration;

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
        GROUP | TRANSACTION => {}
        _ => {
            return Found::error(
                ErrorCode::InvalidRequest,
                Some("unknown coordinator key type"),
            )
        }
    }
    if key.is_empty() {
        return Found::error(ErrorCode::InvalidRequest, Some("empty coordinator key"));
    }
    let (topic, partition) = if key_type == GROUP {
        let c = apis.groups.config();
        (
            InternalTopic {
                name: GROUP_METADATA_TOPIC,
                num_partitions: c.num_partitions,
                replication_factor: c.replication_factor,
                segment_bytes: c.segment_bytes,
                min_insync_replicas: None,
            },
            apis.groups.partition_for(key),
        )
    } else {
        let c = apis.transactions.config();
        (
            InternalTopic {
                name: TRANSACTION_STATE_TOPIC,
                num_partitions: c.num_partitions,
                replication_factor: c.replication_factor,
                segment_bytes: c.segment_bytes,
                min_insync_replicas: Some(c.min_isr),
            },
            apis.transactions.partition_for(key),
        )
    };
    if apis.image().topic_by_name(topic.name).is_none() {
        create_internal_topic(&apis.controller, &topic).await;
        apis.wait_for_image(CREATE_WAIT, |i| {
            i.topic_by_name(topic.name)
                .and_then(|t| t.partitions.get(&partition))
                .is_some_and(|p| p.leader >= 0)
        })
        .await;
    }
    let image = apis.image();
    let leader = image
        .topic_by_name(topic.name)
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
