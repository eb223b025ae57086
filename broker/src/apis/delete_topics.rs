//! DeleteTopics: forwarded to the active controller unchanged (by name before v6, by name or id
//! from v6; the checks and the `RemoveTopicRecord`s are the controller's). The answer waits
//! (within the request's timeout) until this broker's image no longer has the deleted topics,
//! so their logs are gone here and a client's next Metadata request does not find them.

use super::KafkaApis;
use rafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use rafka_protocol::messages::{
    DeleteTopicsRequest, DeleteTopicsResponse, RequestKind, ResponseKind,
};
use rafka_protocol::{ErrorCode, Uuid};
use std::time::Duration;

pub async fn handle(
    apis: &KafkaApis,
    version: i16,
    req: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let before = apis.image();
    let timeout = Duration::from_millis(req.timeout_ms.clamp(0, 60_000) as u64);
    let fallback = timed_out(&req);
    let resp = match apis
        .controller
        .send(version, RequestKind::DeleteTopics(req))
        .await
    {
        Some(ResponseKind::DeleteTopics(r)) => r,
        _ => return fallback,
    };
    // The ids of the deleted topics: the answer's (v6), else the name's in the image the
    // request was checked against (a topic re-created under the same name is another id).
    let deleted: Vec<Uuid> = resp
        .responses
        .iter()
        .filter(|t| t.error_code == 0)
        .filter_map(|t| {
            if t.topic_id != Uuid::default() {
                Some(t.topic_id)
            } else {
                t.name
                    .as_deref()
                    .and_then(|n| before.topic_by_name(n))
                    .map(|t| t.id)
            }
        })
        .collect();
    if !deleted.is_empty() {
        apis.wait_for_image(timeout, |img| {
            deleted.iter().all(|id| img.topic(id).is_none())
        })
        .await;
    }
    resp
}

/// REQUEST_TIMED_OUT for every topic: no controller answered.
fn timed_out(req: &DeleteTopicsRequest) -> DeleteTopicsResponse {
    let code = ErrorCode::RequestTimedOut.code();
    DeleteTopicsResponse {
        responses: req
            .topics
            .iter()
            .map(|t| DeletableTopicResult {
                name: t.name.clone(),
                topic_id: t.topic_id,
                error_code: code,
                ..Default::default()
            })
            .chain(req.topic_names.iter().map(|n| DeletableTopicResult {
                name: Some(n.clone()),
                error_code: code,
                ..Default::default()
            }))
            .collect(),
        ..Default::default()
    }
}
