//! Metadata: brokers (the endpoint of the listener the client connected to), the cluster id,
//! the controller id, and topics with their ids and partitions (leader, leader epoch, replicas,
//! ISR, offline replicas). Unknown topics are created through the controller when
//! `auto.create.topics.enable` and the request allow it, and answered LEADER_NOT_AVAILABLE
//! meanwhile, as Kafka does — except the topics no client may create: an internal topic not
//! created yet is UNKNOWN_TOPIC_OR_PARTITION (its coordinator creates it, with its own
//! configs), the metadata log INVALID_TOPIC_EXCEPTION (it is not a topic).

use super::KafkaApis;
use crate::network::RequestContext;
use rafka_controller::control::topics::internal;
use rafka_controller::image::{MetadataImage, TopicImage};
use rafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use rafka_protocol::messages::{MetadataRequest, MetadataResponse};
use rafka_protocol::ErrorCode;

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    version: i16,
    req: MetadataRequest,
) -> MetadataResponse {
    let mut image = apis.image();
    // Which topics: null (or, before v1, empty) means all of them.
    let all =
        req.topics.is_none() || (version == 0 && req.topics.as_ref().is_some_and(Vec::is_empty));
    let mut wanted: Vec<(Option<String>, rafka_protocol::Uuid)> = req
        .topics
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.name, t.topic_id))
        .collect();
    let mut created = Vec::new();
    if !all && apis.auto_create_topics && (req.allow_auto_topic_creation || version < 4) {
        let missing: Vec<String> = wanted
            .iter()
            .filter_map(|(n, _)| n.clone())
            .filter(|n| {
                image.topic_by_name(n).is_none()
                    && super::create_topics::valid_topic_name(n).is_ok()
                    && internal::check_client_create(n).is_ok()
            })
            .collect();
        if !missing.is_empty() {
            created = super::create_topics::auto_create(apis, &missing).await;
            image = apis.image();
        }
    }
    let mut topics = Vec::new();
    if all {
        for t in image.topics().values() {
            topics.push(describe_topic(&image, t, version));
        }
    } else {
        for (name, id) in wanted.drain(..) {
            let topic = match &name {
                Some(n) => image.topic_by_name(n),
                None => image.topic(&id),
            };
            match topic {
                Some(t) if !created.contains(&t.name) => {
                    topics.push(describe_topic(&image, t, version))
                }
                _ => {
                    let error = match &name {
                        Some(n)
                            if super::create_topics::valid_topic_name(n).is_err()
                                || internal::is_cluster_metadata(n) =>
                        {
                            ErrorCode::InvalidTopicException
                        }
                        Some(n) if created.contains(n) => ErrorCode::LeaderNotAvailable,
                        Some(_) => ErrorCode::UnknownTopicOrPartition,
                        None => ErrorCode::UnknownTopicId,
                    };
                    topics.push(MetadataResponseTopic {
                        error_code: error.code(),
                        name: name.or(Some(String::new())),
                        topic_id: id,
                        ..Default::default()
                    });
                }
            }
        }
    }
    let brokers = image
        .brokers()
        .values()
        .filter(|b| !b.fenced)
        .filter_map(|b| {
            let ep = b.endpoints.iter().find(|e| e.name == ctx.listener)?;
            Some(MetadataResponseBroker {
                node_id: b.id,
                host: ep.host.clone(),
                port: i32::from(ep.port),
                rack: b.rack.clone(),
                ..Default::default()
            })
        })
        .collect();
    MetadataResponse {
        brokers,
        cluster_id: image.cluster_id().map(str::to_owned),
        controller_id: controller_id(apis, &image),
        topics,
        ..Default::default()
    }
}

/// The active controller when it is also a broker, otherwise a live broker (as Kafka does).
pub fn controller_id(apis: &KafkaApis, image: &MetadataImage) -> i32 {
    if let Some(leader) = apis.controller.active_controller() {
        if image.broker(leader).is_some_and(|b| !b.fenced) {
            return leader;
        }
    }
    image
        .brokers()
        .values()
        .find(|b| !b.fenced)
        .map_or(-1, |b| b.id)
}

fn describe_topic(image: &MetadataImage, t: &TopicImage, version: i16) -> MetadataResponseTopic {
    let partitions = t
        .partitions
        .iter()
        .map(|(&index, p)| {
            let offline: Vec<i32> = p
                .replicas
                .iter()
                .copied()
                .filter(|r| image.broker(*r).is_none_or(|b| b.fenced))
                .collect();
            MetadataResponsePartition {
                error_code: if p.leader < 0 {
                    ErrorCode::LeaderNotAvailable.code()
                } else {
                    0
                },
                partition_index: index,
                leader_id: p.leader,
                leader_epoch: if version >= 7 { p.leader_epoch } else { -1 },
                replica_nodes: p.replicas.clone(),
                isr_nodes: p.isr.clone(),
                offline_replicas: if version >= 5 { offline } else { Vec::new() },
                ..Default::default()
            }
        })
        .collect();
    MetadataResponseTopic {
        error_code: 0,
        name: Some(t.name.clone()),
        topic_id: t.id,
        is_internal: internal::is_internal(&t.name),
        partitions,
        ..Default::default()
    }
}
