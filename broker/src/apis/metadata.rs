//! Metadata: brokers (the endpoint of the listener the client connected to), the cluster id,
//! the controller id, and topics with their ids and partitions (leader, leader epoch, replicas,
//! ISR, offline replicas). Unknown topics are created through the controller when
//! `auto.create.topics.enable` and the request allow it, and answered LEADER_NOT_AVAILABLE
//! meanwhile, as Kafka does — except the topics no client may create: an internal topic not
//! created yet is UNKNOWN_TOPIC_OR_PARTITION (its coordinator creates it, with its own
//! configs), the metadata log INVALID_TOPIC_EXCEPTION (it is not a topic).
//!
//! Authorization, as Kafka's `handleTopicMetadataRequest`: a listing of all topics holds only
//! those the principal may DESCRIBE; a named topic it may not describe is
//! TOPIC_AUTHORIZATION_FAILED (whether it exists or not, so names do not leak); auto-creation
//! needs CLUSTER CREATE or TOPIC CREATE on the name (else TOPIC_AUTHORIZATION_FAILED). With
//! `include_topic_authorized_operations` / `include_cluster_authorized_operations` (v8+) the
//! answer carries Kafka's bit sets.
//!
//! An answer that would name, as a partition's leader, a broker whose connection this broker has
//! just lost waits (at most a second) until the controller has moved that leadership (see
//! [`crate::lost_leaders`]).

use super::kafka_apis::KafkaApis;
use crate::lost_leaders::{names_lost_leader, MAX_HOLD};
use crate::network::RequestContext;
use rafka_controller::control::topics::internal;
use rafka_controller::image::{MetadataImage, TopicImage};
use rafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use rafka_protocol::messages::{MetadataRequest, MetadataResponse};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::{AclOperation, ResourceType, CLUSTER_NAME};
use std::collections::BTreeSet;

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    version: i16,
    req: MetadataRequest,
) -> MetadataResponse {
    let mut image = apis.image();
    let include_topic_ops = version >= 8 && req.include_topic_authorized_operations;
    let include_cluster_ops =
        (8..=10).contains(&version) && req.include_cluster_authorized_operations;
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
    // Named topics the principal may not describe, or may not create when they would be
    // auto-created: TOPIC_AUTHORIZATION_FAILED.
    let mut unauthorized: BTreeSet<String> = BTreeSet::new();
    {
        let authz = apis.authorizer_for(ctx, &image);
        for (name, id) in &wanted {
            let name = match name {
                Some(n) => Some(n.as_str()),
                None => image.topic(id).map(|t| t.name.as_str()),
            };
            if let Some(n) = name {
                if !authz.allows(AclOperation::Describe, ResourceType::Topic, n) {
                    unauthorized.insert(n.to_owned());
                }
            }
        }
    }
    if !all && apis.auto_create_topics && (req.allow_auto_topic_creation || version < 4) {
        let authz = apis.authorizer_for(ctx, &image);
        let mut missing: Vec<String> = wanted
            .iter()
            .filter_map(|(n, _)| n.clone())
            .filter(|n| {
                !unauthorized.contains(n)
                    && image.topic_by_name(n).is_none()
                    && super::create_topics::valid_topic_name(n).is_ok()
                    && internal::check_client_create(n).is_ok()
            })
            .collect();
        if !authz.allows_cluster(AclOperation::Create) {
            missing.retain(|n| {
                let ok = authz.allows(AclOperation::Create, ResourceType::Topic, n);
                if !ok {
                    unauthorized.insert(n.clone());
                }
                ok
            });
        }
        if !missing.is_empty() {
            created = super::create_topics::auto_create(apis, &missing).await;
            image = apis.image();
        }
    }
    // A leader whose connection this broker just lost is most likely dead, and the controller
    // is about to move its partitions: answer with that move rather than before it.
    let lost = apis.lost_leaders.recent();
    if !lost.is_empty() {
        let names: Option<BTreeSet<String>> =
            (!all).then(|| wanted.iter().filter_map(|(n, _)| n.clone()).collect());
        if names_lost_leader(&image, names.as_ref(), &lost) {
            let moved = apis
                .wait_for_image(MAX_HOLD, |i| !names_lost_leader(i, names.as_ref(), &lost))
                .await;
            tracing::debug!(?lost, moved, "metadata answer held for a lost leader");
            image = apis.image();
        }
    }
    let authz = apis.authorizer_for(ctx, &image);
    let describe = |t: &TopicImage| {
        let mut d = describe_topic(&image, t, version);
        if include_topic_ops {
            d.topic_authorized_operations =
                authz.authorized_operations(ResourceType::Topic, &t.name);
        }
        d
    };
    let mut topics = Vec::new();
    if all {
        for t in image.topics().values() {
            if authz.allows(AclOperation::Describe, ResourceType::Topic, &t.name) {
                topics.push(describe(t));
            }
        }
    } else {
        for (name, id) in wanted.drain(..) {
            let topic = match &name {
                Some(n) => image.topic_by_name(n),
                None => image.topic(&id),
            };
            let refused = match (&name, topic) {
                (Some(n), _) => unauthorized.contains(n),
                (None, Some(t)) => unauthorized.contains(&t.name),
                (None, None) => false,
            };
            if refused {
                topics.push(MetadataResponseTopic {
                    error_code: ErrorCode::TopicAuthorizationFailed.code(),
                    name: name.clone().or(Some(String::new())),
                    topic_id: if name.is_some() {
                        Default::default()
                    } else {
                        id
                    },
                    is_internal: name.as_deref().is_some_and(internal::is_internal),
                    ..Default::default()
                });
                continue;
            }
            match topic {
                Some(t) if !created.contains(&t.name) => topics.push(describe(t)),
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
        cluster_authorized_operations: if include_cluster_ops {
            authz.authorized_operations(ResourceType::Cluster, CLUSTER_NAME)
        } else {
            i32::MIN
        },
        ..Default::default()
    }
}

/// The controller id a client is told (Metadata and DescribeCluster): a live broker, never the
/// quorum's controller node. Clients cannot reach the controllers; a broker forwards their
/// metadata writes (CreateTopics, ...) to the active controller, wherever it is. Kafka's KRaft
/// brokers answer a random alive broker (`KRaftMetadataCache.getRandomAliveBrokerId`); of those,
/// this broker answers itself whenever it is alive in the image, the one broker known to be up
/// at that instant — the client has just heard from it. Naming the active controller instead
/// sent admin clients after a dead node for as long as its registration outlived it.
/// -1 when no broker is alive.
pub fn controller_id(apis: &KafkaApis, image: &MetadataImage) -> i32 {
    if image.broker(apis.broker_id).is_some_and(|b| !b.fenced) {
        return apis.broker_id;
    }
    let alive: Vec<i32> = image
        .brokers()
        .values()
        .filter(|b| !b.fenced)
        .map(|b| b.id)
        .collect();
    if alive.is_empty() {
        return -1;
    }
    alive[random_index(alive.len())]
}

/// A random index below `n` (> 0), from the process's random hasher seed and a counter.
fn random_index(n: usize) -> usize {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    (h.finish() % n as u64) as usize
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
