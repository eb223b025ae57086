//! OffsetFetch: a group's committed offsets — those asked for (a partition without one gets
//! offset -1 and no error) or, with null topics (v2+), all of them. v8 asks for many groups at
//! once, each with its own error. A group this broker does not coordinate gets NOT_COORDINATOR
//! (COORDINATOR_LOAD_IN_PROGRESS while loading): per group from v8, at the top from v2, on every
//! partition in v1.
//! Needs GROUP DESCRIBE (else GROUP_AUTHORIZATION_FAILED); a named topic the principal may not
//! DESCRIBE answers TOPIC_AUTHORIZATION_FAILED, and a listing of all the group's offsets
//! leaves such topics out (Kafka's `handleOffsetFetchRequest`).

use super::authorize::RequestAuthorizer;
use super::kafka_apis::KafkaApis;
use crate::group_coordinator::GroupOffsets;
use crate::network::RequestContext;
use rafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use rafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::{AclOperation, ResourceType};
use std::collections::{BTreeMap, BTreeSet};

/// One partition's answer: (partition, offset, leader epoch, metadata, error).
type Answer = (i32, i64, i32, String, ErrorCode);

/// The answer for one group: per topic, its partitions' answers; or the group's error.
fn fetch(
    apis: &KafkaApis,
    authz: &RequestAuthorizer<'_>,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Result<Vec<(String, Vec<Answer>)>, ErrorCode> {
    if !authz.allows(AclOperation::Describe, ResourceType::Group, group) {
        return Err(ErrorCode::GroupAuthorizationFailed);
    }
    let offsets: GroupOffsets = apis.groups.fetch_offsets(group)?;
    // KIP-447: a partition whose offset a transaction has written and not yet ended answers
    // UNSTABLE_OFFSET_COMMIT when the consumer asks for stable offsets (it retries).
    let unstable: BTreeSet<(String, i32)> = if require_stable {
        apis.groups.unstable_partitions(group).into_iter().collect()
    } else {
        BTreeSet::new()
    };
    let allowed = |t: &str| authz.allows(AclOperation::Describe, ResourceType::Topic, t);
    let answer = |t: &str, p: i32| match offsets.get(&(t.to_owned(), p)) {
        _ if unstable.contains(&(t.to_owned(), p)) => {
            (p, -1, -1, String::new(), ErrorCode::UnstableOffsetCommit)
        }
        Some(o) => (
            p,
            o.offset,
            o.leader_epoch,
            o.metadata.clone(),
            ErrorCode::None,
        ),
        None => (p, -1, -1, String::new(), ErrorCode::None),
    };
    Ok(match topics {
        Some(topics) => topics
            .into_iter()
            .map(|(t, parts)| {
                let answers = if allowed(&t) {
                    parts.into_iter().map(|p| answer(&t, p)).collect()
                } else {
                    parts
                        .into_iter()
                        .map(|p| {
                            (
                                p,
                                -1,
                                -1,
                                String::new(),
                                ErrorCode::TopicAuthorizationFailed,
                            )
                        })
                        .collect()
                };
                (t, answers)
            })
            .collect(),
        None => {
            let mut by_topic: BTreeMap<String, Vec<Answer>> = BTreeMap::new();
            for (t, p) in offsets.keys().filter(|(t, _)| allowed(t)) {
                by_topic.entry(t.clone()).or_default().push(answer(t, *p));
            }
            by_topic.into_iter().collect()
        }
    })
}

pub fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    version: i16,
    req: OffsetFetchRequest,
) -> OffsetFetchResponse {
    let authz = apis.authorizer_for(ctx, &apis.image());
    if version >= 8 {
        let groups = req
            .groups
            .into_iter()
            .map(|g| {
                let topics = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name, t.partition_indexes))
                        .collect()
                });
                match fetch(apis, &authz, &g.group_id, topics, req.require_stable) {
                    Ok(answers) => OffsetFetchResponseGroup {
                        group_id: g.group_id,
                        topics: answers
                            .into_iter()
                            .map(|(name, parts)| OffsetFetchResponseTopics {
                                name,
                                partitions: parts
                                    .into_iter()
                                    .map(|(p, offset, epoch, metadata, error)| {
                                        OffsetFetchResponsePartitions {
                                            partition_index: p,
                                            committed_offset: offset,
                                            committed_leader_epoch: epoch,
                                            metadata: Some(metadata),
                                            error_code: error.code(),
                                            ..Default::default()
                                        }
                                    })
                                    .collect(),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    },
                    Err(e) => OffsetFetchResponseGroup {
                        group_id: g.group_id,
                        error_code: e.code(),
                        ..Default::default()
                    },
                }
            })
            .collect();
        return OffsetFetchResponse {
            groups,
            ..Default::default()
        };
    }
    let asked: Option<Vec<(String, Vec<i32>)>> = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name, t.partition_indexes))
            .collect()
    });
    let to_wire = |answers: Vec<(String, Vec<Answer>)>, code: ErrorCode| {
        answers
            .into_iter()
            .map(|(name, parts)| OffsetFetchResponseTopic {
                name,
                partitions: parts
                    .into_iter()
                    .map(
                        |(p, offset, epoch, metadata, error)| OffsetFetchResponsePartition {
                            partition_index: p,
                            committed_offset: offset,
                            committed_leader_epoch: epoch,
                            metadata: Some(metadata),
                            error_code: if error == ErrorCode::None {
                                code.code()
                            } else {
                                error.code()
                            },
                            ..Default::default()
                        },
                    )
                    .collect(),
                ..Default::default()
            })
            .collect()
    };
    match fetch(
        apis,
        &authz,
        &req.group_id,
        asked.clone(),
        req.require_stable,
    ) {
        Ok(answers) => OffsetFetchResponse {
            topics: to_wire(answers, ErrorCode::None),
            ..Default::default()
        },
        Err(e) if version >= 2 => OffsetFetchResponse {
            error_code: e.code(),
            ..Default::default()
        },
        Err(e) => {
            // v1 has no top-level error: every partition asked carries it.
            let answers = asked
                .unwrap_or_default()
                .into_iter()
                .map(|(t, parts)| {
                    (
                        t,
                        parts
                            .into_iter()
                            .map(|p| (p, -1, -1, String::new(), ErrorCode::None))
                            .collect(),
                    )
                })
                .collect();
            OffsetFetchResponse {
                topics: to_wire(answers, e),
                ..Default::default()
            }
        }
    }
}
