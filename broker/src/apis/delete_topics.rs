//! DeleteTopics: forwarded to the active controller unchanged (by name before v6, by name or id
//! from v6; the checks and the `RemoveTopicRecord`s are the controller's). With this node's
//! `delete.topic.enable=false` every entry is refused before any other check, authorization
//! included, as Kafka's `ControllerApis.deleteTopics` (and its ZooKeeper-era `KafkaApis`) does:
//! an entry the principal may not delete still learns that deletion is off. The answer waits
//! (within the request's timeout) until this broker's image no longer has the deleted topics,
//! so their logs are gone here and a client's next Metadata request does not find them.

use super::kafka_apis::KafkaApis;
use crate::network::RequestContext;
use rafka_controller::control::topics::deletion_disabled;
use rafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use rafka_protocol::messages::{
    DeleteTopicsRequest, DeleteTopicsResponse, RequestKind, ResponseKind,
};
use rafka_protocol::{ErrorCode, Uuid};
use rafka_security::authorizer::{AclOperation, ResourceType};
use std::time::Duration;

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    version: i16,
    mut req: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    if !apis.config.delete_topic_enable() {
        return deletion_disabled(&req, version).response;
    }
    let before = apis.image();
    let timeout = Duration::from_millis(req.timeout_ms.clamp(0, 60_000) as u64);
    // TOPIC DELETE on each topic (named, or resolved from its id); the refused are answered
    // here, TOPIC_AUTHORIZATION_FAILED, and never reach the controller.
    let authz = apis.authorizer_for(ctx, &before);
    let may_delete = |name: &str| authz.allows(AclOperation::Delete, ResourceType::Topic, name);
    let mut refused = Vec::new();
    let denied_result = |name: Option<String>, topic_id: Uuid| DeletableTopicResult {
        name,
        topic_id,
        error_code: ErrorCode::TopicAuthorizationFailed.code(),
        error_message: Some("Authorization failed.".to_owned()),
        ..Default::default()
    };
    req.topic_names.retain(|n| {
        let ok = may_delete(n);
        if !ok {
            refused.push(denied_result(Some(n.clone()), Uuid::default()));
        }
        ok
    });
    req.topics.retain(|t| {
        let name = t
            .name
            .clone()
            .or_else(|| before.topic(&t.topic_id).map(|i| i.name.clone()));
        match name {
            Some(n) if !may_delete(&n) => {
                refused.push(denied_result(t.name.clone(), t.topic_id));
                false
            }
            _ => true,
        }
    });
    if req.topic_names.is_empty() && req.topics.is_empty() {
        return DeleteTopicsResponse {
            responses: refused,
            ..Default::default()
        };
    }
    let fallback = timed_out(&req);
    let mut resp = match apis
        .controller
        .send(version, RequestKind::DeleteTopics(req))
        .await
    {
        Some(ResponseKind::DeleteTopics(r)) => r,
        _ => return fallback,
    };
    resp.responses.extend(refused);
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
