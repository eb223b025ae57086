//! CreateTopics: forwarded to the active controller unchanged (placement, validation and the
//! records are the controller's); the response waits until this broker's image has the new
//! topics, so a client's next Metadata request finds them. Also auto-creation for Metadata.

use super::KafkaApis;
use rafka_protocol::messages::create_topics_request::CreatableTopic;
use rafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, RequestKind, ResponseKind,
};
use std::time::Duration;

pub use rafka_controller::control::topics::validate_topic_name;

/// Kafka's topic-name rules, as a `Result` with the reason.
pub fn valid_topic_name(name: &str) -> Result<(), String> {
    validate_topic_name(name).map_err(|e| e.message.unwrap_or_default())
}

pub async fn handle(
    apis: &KafkaApis,
    version: i16,
    req: CreateTopicsRequest,
) -> CreateTopicsResponse {
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
                    .map(|name| {
                        rafka_protocol::messages::create_topics_response::CreatableTopicResult {
                            name,
                            error_code: rafka_protocol::ErrorCode::RequestTimedOut.code(),
                            ..Default::default()
                        }
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
/// for a Metadata request; returns the ones created.
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
            let created: Vec<String> = r
                .topics
                .iter()
                .filter(|t| t.error_code == 0)
                .map(|t| t.name.clone())
                .collect();
            for t in r.topics.iter().filter(|t| t.error_code != 0) {
                tracing::info!(topic = %t.name, error = t.error_code, "auto-creation refused");
            }
            created
        }
        _ => Vec::new(),
    }
}
