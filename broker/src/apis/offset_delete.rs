//! OffsetDelete: removes a group's committed offsets for some partitions (tombstones in
//! `__consumer_offsets`), as Kafka's `validateOffsetDelete`: any offsets of an Empty group; of
//! an active `consumer` group, those of topics its members do not subscribe to (the others get
//! GROUP_SUBSCRIBED_TO_TOPIC); an active group of another protocol type is NON_EMPTY_GROUP. A
//! consumer-protocol group (KIP-848) likewise keeps the offsets of its members' topics.
//! Unknown group: GROUP_ID_NOT_FOUND; unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION.
//! Needs GROUP DELETE (else GROUP_AUTHORIZATION_FAILED) and TOPIC READ on each topic (else
//! TOPIC_AUTHORIZATION_FAILED for its partitions).

use super::kafka_apis::KafkaApis;
use crate::group_coordinator::membership::Subscriptions;
use crate::network::RequestContext;
use rafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use rafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::{AclOperation, ResourceType};

pub fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    req: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let top = |code: ErrorCode| OffsetDeleteResponse {
        error_code: code.code(),
        ..Default::default()
    };
    if let Err(e) = apis.authorize_group(ctx, AclOperation::Delete, &req.group_id) {
        return top(e);
    }
    if req.group_id.is_empty() {
        return top(ErrorCode::InvalidGroupId);
    }
    let offsets = match apis.groups.fetch_offsets(&req.group_id) {
        Ok(o) => o,
        Err(e) => return top(e),
    };
    // A consumer-protocol group (KIP-848) protects the topics its members subscribe to; a group
    // known only by its offsets has no members: nothing is protected.
    let subscriptions = match apis.groups.consumer().offset_delete_check(&req.group_id) {
        Some(s) => s,
        None => match apis.groups.membership().offset_delete_check(&req.group_id) {
            Ok(s) => s,
            Err(ErrorCode::GroupIdNotFound) if !offsets.is_empty() => Subscriptions::Nothing,
            Err(e) => return top(e),
        },
    };
    let image = apis.image();
    let authz = apis.authorizer_for(ctx, &image);
    let mut delete = Vec::new();
    let mut topics: Vec<OffsetDeleteResponseTopic> = req
        .topics
        .iter()
        .map(|t| {
            (
                t,
                authz.allows(AclOperation::Read, ResourceType::Topic, &t.name),
            )
        })
        .map(|(t, topic_allowed)| OffsetDeleteResponseTopic {
            name: t.name.clone(),
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    let known = image
                        .topic_by_name(&t.name)
                        .is_some_and(|tt| tt.partitions.contains_key(&p.partition_index));
                    let code = if !topic_allowed {
                        ErrorCode::TopicAuthorizationFailed
                    } else if !known {
                        ErrorCode::UnknownTopicOrPartition
                    } else if subscriptions.contains(&t.name) {
                        ErrorCode::GroupSubscribedToTopic
                    } else {
                        delete.push((t.name.clone(), p.partition_index));
                        ErrorCode::None
                    };
                    OffsetDeleteResponsePartition {
                        partition_index: p.partition_index,
                        error_code: code.code(),
                        ..Default::default()
                    }
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    if let Err(e) = apis.groups.delete_offsets(&image, &req.group_id, &delete) {
        for t in &mut topics {
            for p in &mut t.partitions {
                if p.error_code == 0 {
                    p.error_code = e.code();
                }
            }
        }
    }
    OffsetDeleteResponse {
        topics,
        ..Default::default()
    }
}
