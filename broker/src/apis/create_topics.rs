//! CreateTopics: forwarded to the active controller unchanged (placement, validation and the
//! records are the controller's); the response waits until this broker's image has the new
//! topics, so a client's next Metadata request finds them. Also auto-creation for Metadata.
//! Neither creates what no client may: the metadata log or an internal topic (the group
//! coordinator creates `__consumer_offsets` itself, through the controller, with its configs).

use super::kafka_apis::KafkaApis;
use crate::network::RequestContext;
use rafka_controller::control::topics::internal::check_client_create;
use rafka_protocol::messages::create_topics_request::CreatableTopic;
use rafka_protocol::messages::create_topics_response::CreatableTopicResult;
use rafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, RequestKind, ResponseKind,
};
use rafka_security::authorizer::{AclOperation, ResourceType};
use std::time::Duration;

pub use rafka_controller::control::topics::validate_topic_name;

/// Kafka's topic-name rules, as a `Result` with the reason.
pub fn valid_topic_name(name: &str) -> Result<(), String> {
    validate_topic_name(name).map_err(|e| e.message.unwrap_or_default())
}

/// A client's CreateTopics: the topics the principal may not create (CLUSTER CREATE or TOPIC
/// CREATE on the name: else TOPIC_AUTHORIZATION_FAILED) and those no client may create (the
/// metadata log, internal topics: [`check_client_create`]) are answered here, the rest
/// forwarded; the answer keeps the request's order.
pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    version: i16,
    mut req: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let order: Vec<String> = req.topics.iter().map(|t| t.name.clone()).collect();
    let mut refused = Vec::new();
    let authz = apis.authorizer_for(ctx, &apis.image());
    let cluster_create = authz.allows_cluster(AclOperation::Create);
    req.topics.retain(|t| {
        if !cluster_create && !authz.allows(AclOperation::Create, ResourceType::Topic, &t.name) {
            refused.push(CreatableTopicResult {
                name: t.name.clone(),
                error_code: rafka_protocol::ErrorCode::TopicAuthorizationFailed.code(),
                error_message: Some("Authorization failed.".to_owned()),
                configs: Some(Vec::new()),
                ..Default::default()
            });
            return false;
        }
        true
    });
    req.topics.retain(|t| match check_client_create(&t.name) {
        Ok(()) => true,
        Err(e) => {
            tracing::info!(topic = %t.name, "CreateTopics: internal topic refused");
            refused.push(CreatableTopicResult {
                name: t.name.clone(),
                error_code: e.code.code(),
                error_message: e.message,
                configs: Some(Vec::new()),
                ..Default::default()
            });
            false
        }
    });
    let mut resp = if req.topics.is_empty() {
        CreateTopicsResponse::default()
    } else {
        forward(apis, version, req).await
    };
    // Kafka: a created topic's configs are shown only with TOPIC DESCRIBE_CONFIGS; without it
    // they are left out and `topic_config_error_code` says why (v5+).
    for t in &mut resp.topics {
        if t.error_code == 0
            && !authz.allows(AclOperation::DescribeConfigs, ResourceType::Topic, &t.name)
        {
            t.topic_config_error_code = rafka_protocol::ErrorCode::TopicAuthorizationFailed.code();
            t.configs = Some(Vec::new());
        }
    }
    resp.topics.extend(refused);
    // Request order (a name given twice is answered twice, in its places).
    let mut answered = std::mem::take(&mut resp.topics);
    for name in order {
        if let Some(i) = answered.iter().position(|t| t.name == name) {
            resp.topics.push(answered.remove(i));
        }
    }
    resp.topics.extend(answered);
    resp
}

async fn forward(apis: &KafkaApis, version: i16, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let names: Vec<String> = req.topics.iter().map(|t| t.name.clone()).collect();
    let validate_only = req.validate_only;
    let timeout = Duration::from_millis(req.timeout_ms.clamp(0, 60_000) as u64);
    let mut resp = match apis
        .controller
        .send(version, RequestKind::CreateTopics(req))
        .await
    {
        Some(ResponseKind::CreateTopics(r)) => r,
        _ => {
            return CreateTopicsResponse {
                topics: names
                    .into_iter()
                    .map(|name| CreatableTopicResult {
                        name,
                        error_code: rafka_protocol::ErrorCode::RequestTimedOut.code(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }
        }
    };
    if !validate_only {
        let created: Vec<String> = resp
            .topics
            .iter()
            .filter(|t| t.error_code == 0)
            .map(|t| t.name.clone())
            .collect();
        wait_for_topics(apis, &created, timeout).await;
        // A topic whose log this broker could not create exists, but is not healthy.
        for (name, why) in apis.replica_manager.offline_topics(&created) {
            if let Some(t) = resp.topics.iter_mut().find(|t| t.name == name) {
                t.error_code = rafka_protocol::ErrorCode::KafkaStorageError.code();
                t.error_message = Some(why);
            }
        }
    }
    resp
}

/// How long an auto-creation that lost a race waits for this broker's image to show the topic.
const RACE_WAIT: Duration = Duration::from_secs(2);

/// Waits (bounded) until this broker's image has every topic in `names`.
async fn wait_for_topics(apis: &KafkaApis, names: &[String], timeout: Duration) {
    let mut rx = apis.metadata.clone();
    let _ = tokio::time::timeout(timeout, async {
        loop {
            if names
                .iter()
                .all(|n| rx.borrow_and_update().topic_by_name(n).is_some())
            {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
}

/// Creates `names` with the broker defaults (`num.partitions`, `default.replication.factor`)
/// for a Metadata request; returns the ones to answer LEADER_NOT_AVAILABLE: those created, and
/// those another request created first (TOPIC_ALREADY_EXISTS, a race) that this broker's image
/// does not show yet after a short wait — the client retries, as for a new topic, instead of
/// being told UNKNOWN_TOPIC_OR_PARTITION about a topic that exists.
pub async fn auto_create(apis: &KafkaApis, names: &[String]) -> Vec<String> {
    let req = CreateTopicsRequest {
        topics: names
            .iter()
            .map(|n| CreatableTopic {
                name: n.clone(),
                num_partitions: -1,
                replication_factor: -1,
                ..Default::default()
            })
            .collect(),
        timeout_ms: 5000,
        ..Default::default()
    };
    match apis
        .controller
        .send(7, RequestKind::CreateTopics(req))
        .await
    {
        Some(ResponseKind::CreateTopics(r)) => {
            let mut created: Vec<String> = r
                .topics
                .iter()
                .filter(|t| t.error_code == 0)
                .map(|t| t.name.clone())
                .collect();
            let mut raced = Vec::new();
            for t in r.topics.iter().filter(|t| t.error_code != 0) {
                // Another request created it first: a handled race, not news.
                if t.error_code == rafka_protocol::ErrorCode::TopicAlreadyExists.code() {
                    tracing::debug!(topic = %t.name, "auto-creation raced: the topic exists");
                    raced.push(t.name.clone());
                } else {
                    tracing::info!(topic = %t.name, error = t.error_code, "auto-creation refused");
                }
            }
            if !raced.is_empty() {
                wait_for_topics(apis, &raced, RACE_WAIT).await;
                let image = apis.image();
                created.extend(
                    raced
                        .into_iter()
                        .filter(|n| image.topic_by_name(n).is_none()),
                );
            }
            created
        }
        _ => Vec::new(),
    }
}
