//! CreatePartitions: forwarded to the active controller unchanged (validation, placement and the
//! `PartitionRecord`s are the controller's). Unless `validate_only`, the answer waits (within
//! the request's timeout) until this broker's image has every new partition, so their logs
//! exist here and a client's next Metadata request finds them.

use super::kafka_apis::KafkaApis;
use crate::network::RequestContext;
use rafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use rafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, RequestKind, ResponseKind,
};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::{AclOperation, ResourceType};
use std::collections::BTreeMap;
use std::time::Duration;

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    version: i16,
    mut req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    // TOPIC ALTER on each topic; the refused are answered here, TOPIC_AUTHORIZATION_FAILED.
    let authz = apis.authorizer_for(ctx, &apis.image());
    let mut refused = Vec::new();
    req.topics.retain(|t| {
        let ok = authz.allows(AclOperation::Alter, ResourceType::Topic, &t.name);
        if !ok {
            refused.push(CreatePartitionsTopicResult {
                name: t.name.clone(),
                error_code: ErrorCode::TopicAuthorizationFailed.code(),
                error_message: Some("Authorization failed.".to_owned()),
                ..Default::default()
            });
        }
        ok
    });
    if req.topics.is_empty() {
        return CreatePartitionsResponse {
            results: refused,
            ..Default::default()
        };
    }
    let mut resp = inner(apis, version, req).await;
    resp.results.extend(refused);
    resp
}

async fn inner(
    apis: &KafkaApis,
    version: i16,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let timeout = Duration::from_millis(req.timeout_ms.clamp(0, 60_000) as u64);
    let validate_only = req.validate_only;
    let counts: BTreeMap<String, i32> = req
        .topics
        .iter()
        .map(|t| (t.name.clone(), t.count))
        .collect();
    let fallback = CreatePartitionsResponse {
        results: req
            .topics
            .iter()
            .map(|t| CreatePartitionsTopicResult {
                name: t.name.clone(),
                error_code: ErrorCode::RequestTimedOut.code(),
                error_message: Some("no answer from the active controller".to_owned()),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let resp = match apis
        .controller
        .send(version, RequestKind::CreatePartitions(req))
        .await
    {
        Some(ResponseKind::CreatePartitions(r)) => r,
        _ => return fallback,
    };
    if !validate_only {
        let grown: Vec<(&str, usize)> = resp
            .results
            .iter()
            .filter(|t| t.error_code == 0)
            .filter_map(|t| {
                let count = usize::try_from(*counts.get(&t.name)?).ok()?;
                Some((t.name.as_str(), count))
            })
            .collect();
        if !grown.is_empty() {
            apis.wait_for_image(timeout, |img| {
                grown.iter().all(|(name, count)| {
                    img.topic_by_name(name)
                        .is_some_and(|t| t.partitions.len() >= *count)
                })
            })
            .await;
        }
    }
    resp
}
