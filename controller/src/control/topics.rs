//! Kafka's `ReplicationControlManager`, topic half: CreateTopics (API 19), DeleteTopics
//! (API 20) and CreatePartitions (API 37), with the request-level checks Kafka's
//! `ControllerApis` makes (duplicates, name and id together). Kafka's topic-name rules
//! (`Topic.validate`) are [`super::topic_name`]'s, re-exported here.
//!
//! A new partition's ISR is its active replicas and its leader the first of them, at leader and
//! partition epoch 0. Each topic succeeds or fails on its own; a failed topic writes nothing.

use super::api_error::ApiError;
use super::config::creation_config_records;
use super::controller_config::ControllerConfig;
use super::controller_result::{ControllerResult, MAX_RECORDS_PER_USER_OP};
use super::placement::{StripedReplicaPlacer, UsableBroker};
use super::random_uuid::random_uuid;
pub use super::topic_name::{validate_topic_name, MAX_TOPIC_NAME_LENGTH};
use crate::image::{LeaderRecoveryState, MetadataImage, PartitionRegistration};
use rafka_protocol::messages::{
    create_partitions_response as cpr, create_topics_request as ctq, create_topics_response as ctr,
    delete_topics_response as dtr, CreatePartitionsRequest, CreatePartitionsResponse,
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    MetadataRecord, RemoveTopicRecord, TopicRecord,
};
use rafka_protocol::{ErrorCode, Uuid};
use std::collections::{BTreeMap, BTreeSet};

pub mod internal;

/// '.' and '_' collide in metric names, so Kafka refuses topics that differ only by them.
fn collision_key(name: &str) -> String {
    name.replace('.', "_")
}

/// Kafka's `validateManualPartitionAssignment`.
fn validate_manual_assignment(
    image: &MetadataImage,
    replicas: &[i32],
    expected_rf: Option<usize>,
) -> Result<(), ApiError> {
    let bad = |m: String| Err(ApiError::new(ErrorCode::InvalidReplicaAssignment, m));
    if replicas.is_empty() {
        return bad("The manual partition assignment includes an empty replica list.".into());
    }
    let mut seen = BTreeSet::new();
    for r in replicas {
        if !seen.insert(*r) {
            return bad(format!(
                "The manual partition assignment includes the broker {r} more than once."
            ));
        }
        if image.broker(*r).is_none() {
            return bad(format!(
                "The manual partition assignment includes broker {r}, but no such broker is registered."
            ));
        }
    }
    if let Some(rf) = expected_rf.filter(|rf| *rf != replicas.len()) {
        return bad(format!(
            "The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have {rf} replica(s).",
            replicas.len()
        ));
    }
    Ok(())
}

/// A new partition on `replicas`: ISR = the active ones, leader = the first of those.
fn new_partition(image: &MetadataImage, replicas: Vec<i32>) -> Option<PartitionRegistration> {
    let isr: Vec<i32> = replicas
        .iter()
        .copied()
        .filter(|r| image.is_active(*r))
        .collect();
    let leader = *isr.first()?;
    Some(PartitionRegistration {
        replicas,
        isr,
        removing_replicas: vec![],
        adding_replicas: vec![],
        leader,
        leader_recovery_state: LeaderRecoveryState::Recovered,
        leader_epoch: 0,
        partition_epoch: 0,
    })
}

fn usable_brokers(image: &MetadataImage) -> Vec<UsableBroker> {
    image
        .brokers()
        .values()
        .filter(|b| b.is_active())
        .map(|b| UsableBroker {
            id: b.id,
            rack: b.rack.clone(),
        })
        .collect()
}

fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::PolicyViolation,
        "Unable to perform excessively large batch operation.",
    )
}

/// Placed (or manually assigned) partitions for a new topic, by index.
fn new_topic_partitions(
    image: &MetadataImage,
    config: &ControllerConfig,
    placer: &mut StripedReplicaPlacer,
    topic: &ctq::CreatableTopic,
    room: usize,
) -> Result<BTreeMap<i32, PartitionRegistration>, ApiError> {
    let mut parts = BTreeMap::new();
    if !topic.assignments.is_empty() {
        if topic.replication_factor != -1 {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "A manual partition assignment was specified, but replication factor was not set to -1.",
            ));
        }
        if topic.num_partitions != -1 {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "A manual partition assignment was specified, but numPartitions was not set to -1.",
            ));
        }
        if topic.assignments.len() > room {
            return Err(too_large());
        }
        let mut rf = None;
        for a in &topic.assignments {
            if parts.contains_key(&a.partition_index) {
                return Err(ApiError::new(
                    ErrorCode::InvalidReplicaAssignment,
                    format!(
                        "Found multiple manual partition assignments for partition {}",
                        a.partition_index
                    ),
                ));
            }
            validate_manual_assignment(image, &a.broker_ids, rf)?;
            rf = Some(a.broker_ids.len());
            let p = new_partition(image, a.broker_ids.clone()).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidReplicaAssignment,
                    format!(
                        "All brokers specified in the manual partition assignment for partition {} are fenced or in controlled shutdown.",
                        a.partition_index
                    ),
                )
            })?;
            parts.insert(a.partition_index, p);
        }
        if parts.keys().copied().ne(0..parts.len() as i32) {
            return Err(ApiError::new(
                ErrorCode::InvalidReplicaAssignment,
                "partitions should be a consecutive 0-based integer sequence",
            ));
        }
        return Ok(parts);
    }
    if topic.replication_factor < -1 || topic.replication_factor == 0 {
        return Err(ApiError::new(
            ErrorCode::InvalidReplicationFactor,
            "Replication factor must be larger than 0, or -1 to use the default value.",
        ));
    }
    if topic.num_partitions < -1 || topic.num_partitions == 0 {
        return Err(ApiError::new(
            ErrorCode::InvalidPartitions,
            "Number of partitions was set to an invalid non-positive value.",
        ));
    }
    let num_partitions = if topic.num_partitions == -1 {
        config.num_partitions
    } else {
        topic.num_partitions
    };
    let rf = if topic.replication_factor == -1 {
        config.default_replication_factor
    } else {
        topic.replication_factor
    };
    if num_partitions <= 0 {
        return Err(ApiError::new(
            ErrorCode::InvalidPartitions,
            "num.partitions is not positive.",
        ));
    }
    if num_partitions as usize > room {
        return Err(too_large());
    }
    let placed = placer
        .place(
            &usable_brokers(image),
            num_partitions as usize,
            i32::from(rf),
        )
        .map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidReplicationFactor,
                format!("Unable to replicate the partition {rf} time(s): {e}"),
            )
        })?;
    for (i, replicas) in placed.into_iter().enumerate() {
        let p =
            new_partition(image, replicas).expect("invariant: placement uses active brokers only");
        parts.insert(i as i32, p);
    }
    Ok(parts)
}

fn create_topic(
    image: &MetadataImage,
    config: &ControllerConfig,
    placer: &mut StripedReplicaPlacer,
    topic: &ctq::CreatableTopic,
    new_id: &mut dyn FnMut() -> u128,
    room: usize,
    ids_taken: &BTreeSet<Uuid>,
) -> Result<(Vec<MetadataRecord>, ctr::CreatableTopicResult), ApiError> {
    let name = topic.name.as_str();
    let config_records = creation_config_records(name, &topic.configs)?;
    let room = room.saturating_sub(1 + config_records.len());
    let parts = new_topic_partitions(image, config, placer, topic, room)?;
    let id = loop {
        let id = random_uuid(new_id);
        if image.topic(&id).is_none() && !ids_taken.contains(&id) {
            break id;
        }
    };
    let replication_factor = parts.values().next().map_or(0, |p| p.replicas.len() as i16);
    let configs = topic
        .configs
        .iter()
        .map(|c| ctr::CreatableTopicConfigs {
            name: c.name.clone(),
            value: c.value.clone(),
            read_only: false,
            config_source: 1, // DYNAMIC_TOPIC_CONFIG
            is_sensitive: false,
            ..Default::default()
        })
        .collect();
    let mut records = vec![MetadataRecord::Topic(TopicRecord {
        name: name.to_string(),
        topic_id: id,
        ..Default::default()
    })];
    // Config records go after the topic record and before its partitions, as in Kafka.
    records.extend(config_records);
    records.extend(
        parts
            .iter()
            .map(|(i, p)| MetadataRecord::Partition(p.to_record(id, *i))),
    );
    let result = ctr::CreatableTopicResult {
        name: name.to_string(),
        topic_id: id,
        error_code: 0,
        error_message: None,
        topic_config_error_code: 0,
        num_partitions: parts.len() as i32,
        replication_factor,
        configs: Some(configs),
        ..Default::default()
    };
    Ok((records, result))
}

/// CreateTopics (Kafka's `ReplicationControlManager.createTopics`). `validate_only` checks
/// everything and writes nothing.
pub fn create_topics(
    image: &MetadataImage,
    config: &ControllerConfig,
    placer: &mut StripedReplicaPlacer,
    request: &CreateTopicsRequest,
    new_id: &mut dyn FnMut() -> u128,
) -> ControllerResult<CreateTopicsResponse> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &request.topics {
        *counts.entry(t.name.as_str()).or_default() += 1;
    }
    let mut taken: BTreeMap<String, String> = image
        .topic_names()
        .keys()
        .map(|n| (collision_key(n), n.clone()))
        .collect();
    let mut ids_taken = BTreeSet::new();
    let mut records = Vec::new();
    let mut response = CreateTopicsResponse::default();
    for topic in &request.topics {
        let name = topic.name.as_str();
        let outcome = if counts.get(name).copied().unwrap_or(0) > 1 {
            Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("Duplicate topic name {name} in the request."),
            ))
        } else if let Err(e) = validate_topic_name(name) {
            Err(e)
        } else if let Err(e) = internal::check_create(name) {
            tracing::info!(topic = name, "Rejecting creation of internal topic");
            Err(e)
        } else if image.topic_by_name(name).is_some() {
            Err(ApiError::new(
                ErrorCode::TopicAlreadyExists,
                format!("Topic '{name}' already exists."),
            ))
        } else if let Some(other) = taken.get(&collision_key(name)) {
            Err(ApiError::new(
                ErrorCode::InvalidTopicException,
                format!("Topic '{name}' collides with existing topic: {other}"),
            ))
        } else {
            let room = MAX_RECORDS_PER_USER_OP.saturating_sub(records.len());
            create_topic(image, config, placer, topic, new_id, room, &ids_taken)
        };
        match outcome {
            Ok((topic_records, result)) => {
                taken.insert(collision_key(name), name.to_string());
                ids_taken.insert(result.topic_id);
                records.extend(topic_records);
                response.topics.push(result);
            }
            Err(e) => {
                // An existing topic is the common answer to auto-creation races and to
                // idempotent admin tools: per-request detail, not a lifecycle event.
                if e.code == ErrorCode::TopicAlreadyExists {
                    tracing::debug!(topic = name, "CreateTopics: the topic exists");
                } else {
                    tracing::info!(
                        topic = name,
                        error = e.code.name(),
                        "CreateTopics: topic refused"
                    );
                }
                response.topics.push(ctr::CreatableTopicResult {
                    name: name.to_string(),
                    error_code: e.code.code(),
                    error_message: e.message,
                    configs: Some(Vec::new()),
                    ..Default::default()
                });
            }
        }
    }
    if request.validate_only {
        records.clear();
    }
    ControllerResult::new(records, response)
}

/// A topic a DeleteTopics entry refers to.
enum TopicRef {
    Name(String),
    Id(Uuid),
    Invalid(Option<String>, Uuid, &'static str),
}

/// DeleteTopics when `delete.topic.enable` is false: nothing is deleted, and every entry gets
/// the one error Kafka's `ControllerApis.deleteTopics` raises before it looks at any topic —
/// INVALID_REQUEST before version 3 (which has no other way to say it), TOPIC_DELETION_DISABLED
/// from it. Entries are echoed as given (name, or id from version 6).
pub fn deletion_disabled(
    request: &DeleteTopicsRequest,
    version: i16,
) -> ControllerResult<DeleteTopicsResponse> {
    let (code, message) = if version < 3 {
        (ErrorCode::InvalidRequest, "Topic deletion is disabled.")
    } else {
        (
            ErrorCode::TopicDeletionDisabled,
            "Topic deletion is disabled (delete.topic.enable=false).",
        )
    };
    let entry = |name: Option<String>, topic_id: Uuid| dtr::DeletableTopicResult {
        name,
        topic_id,
        error_code: code.code(),
        error_message: Some(message.to_owned()),
        ..Default::default()
    };
    let mut response = DeleteTopicsResponse::default();
    for n in &request.topic_names {
        response.responses.push(entry(Some(n.clone()), Uuid::ZERO));
    }
    for t in &request.topics {
        response.responses.push(entry(t.name.clone(), t.topic_id));
    }
    ControllerResult::new(Vec::new(), response)
}

/// DeleteTopics by name (versions 1–5, and 6 with a name) or by id (6).
pub fn delete_topics(
    image: &MetadataImage,
    request: &DeleteTopicsRequest,
) -> ControllerResult<DeleteTopicsResponse> {
    let mut refs: Vec<TopicRef> = request
        .topic_names
        .iter()
        .map(|n| TopicRef::Name(n.clone()))
        .collect();
    for t in &request.topics {
        let name = t.name.as_ref().filter(|n| !n.is_empty());
        refs.push(match (name, t.topic_id.is_zero()) {
            (None, true) => TopicRef::Invalid(
                None,
                Uuid::ZERO,
                "Neither topic name nor id were specified.",
            ),
            (None, false) => TopicRef::Id(t.topic_id),
            (Some(n), true) => TopicRef::Name(n.clone()),
            (Some(n), false) => TopicRef::Invalid(
                Some(n.clone()),
                t.topic_id,
                "You may not specify both topic name and topic id.",
            ),
        });
    }
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    let mut ids: BTreeMap<Uuid, usize> = BTreeMap::new();
    let mut resolved: BTreeMap<Uuid, usize> = BTreeMap::new();
    for r in &refs {
        let id = match r {
            TopicRef::Name(n) => {
                *names.entry(n.as_str()).or_default() += 1;
                image.topic_by_name(n).map(|t| t.id)
            }
            TopicRef::Id(id) => {
                *ids.entry(*id).or_default() += 1;
                Some(*id)
            }
            TopicRef::Invalid(..) => None,
        };
        if let Some(id) = id {
            *resolved.entry(id).or_default() += 1;
        }
    }
    let mut records = Vec::new();
    let mut response = DeleteTopicsResponse::default();
    for r in &refs {
        let (name, id, outcome) = match r {
            TopicRef::Invalid(name, id, m) => (
                name.clone(),
                *id,
                Err(ApiError::new(ErrorCode::InvalidRequest, *m)),
            ),
            TopicRef::Name(n) if internal::is_cluster_metadata(n) => {
                (Some(n.clone()), Uuid::ZERO, internal::check_delete(n))
            }
            TopicRef::Id(id) if *id == internal::CLUSTER_METADATA_TOPIC_ID => (
                None,
                *id,
                internal::check_delete(internal::CLUSTER_METADATA_TOPIC_NAME),
            ),
            TopicRef::Name(n) => match image.topic_by_name(n) {
                _ if names[n.as_str()] > 1 => (
                    Some(n.clone()),
                    Uuid::ZERO,
                    Err(ApiError::new(
                        ErrorCode::InvalidRequest,
                        "Duplicate topic name.",
                    )),
                ),
                None => (
                    Some(n.clone()),
                    Uuid::ZERO,
                    Err(ApiError::code(ErrorCode::UnknownTopicOrPartition)),
                ),
                Some(t) if resolved[&t.id] > 1 => (
                    Some(n.clone()),
                    t.id,
                    Err(ApiError::new(
                        ErrorCode::InvalidRequest,
                        "The provided topic name maps to an ID that was already supplied.",
                    )),
                ),
                Some(t) => (Some(n.clone()), t.id, internal::check_delete(&t.name)),
            },
            TopicRef::Id(id) => match image.topic(id) {
                _ if ids[id] > 1 => (
                    None,
                    *id,
                    Err(ApiError::new(
                        ErrorCode::InvalidRequest,
                        "Duplicate topic id.",
                    )),
                ),
                None => (None, *id, Err(ApiError::code(ErrorCode::UnknownTopicId))),
                Some(_) if resolved[id] > 1 => (
                    None,
                    *id,
                    Err(ApiError::new(
                        ErrorCode::InvalidRequest,
                        "Duplicate topic id.",
                    )),
                ),
                Some(t) => (Some(t.name.clone()), *id, internal::check_delete(&t.name)),
            },
        };
        let (error_code, error_message) = match outcome {
            Ok(()) => {
                records.push(MetadataRecord::RemoveTopic(RemoveTopicRecord {
                    topic_id: id,
                    ..Default::default()
                }));
                (0, None)
            }
            Err(e) => (e.code.code(), e.message),
        };
        response.responses.push(dtr::DeletableTopicResult {
            name,
            topic_id: id,
            error_code,
            error_message,
            ..Default::default()
        });
    }
    ControllerResult::new(records, response)
}

fn create_partitions_for(
    image: &MetadataImage,
    placer: &mut StripedReplicaPlacer,
    topic: &rafka_protocol::messages::create_partitions_request::CreatePartitionsTopic,
    room: usize,
) -> Result<Vec<MetadataRecord>, ApiError> {
    internal::check_create_partitions(&topic.name)?;
    let t = image
        .topic_by_name(&topic.name)
        .ok_or_else(|| ApiError::code(ErrorCode::UnknownTopicOrPartition))?;
    let current = t.partitions.len() as i32;
    if topic.count < current {
        return Err(ApiError::new(
            ErrorCode::InvalidPartitions,
            format!(
                "The topic {} currently has {current} partition(s); {} would not be an increase.",
                topic.name, topic.count
            ),
        ));
    }
    if topic.count == current {
        return Err(ApiError::new(
            ErrorCode::InvalidPartitions,
            format!("Topic already has {current} partition(s)."),
        ));
    }
    let additional = (topic.count - current) as usize;
    if additional > room {
        return Err(too_large());
    }
    let rf = t.partitions.values().next().map_or(1, |p| p.replicas.len());
    let replica_lists = match &topic.assignments {
        Some(assignments) => {
            if assignments.len() != additional {
                return Err(ApiError::new(
                    ErrorCode::InvalidReplicaAssignment,
                    format!(
                        "Attempted to add {additional} additional partition(s), but only {} assignment(s) were specified.",
                        assignments.len()
                    ),
                ));
            }
            for a in assignments {
                validate_manual_assignment(image, &a.broker_ids, Some(rf))?;
            }
            assignments.iter().map(|a| a.broker_ids.clone()).collect()
        }
        None => placer
            .place(&usable_brokers(image), additional, rf as i32)
            .map_err(|e| {
                ApiError::new(
                    ErrorCode::InvalidReplicationFactor,
                    format!("Unable to replicate the partition {rf} time(s): {e}"),
                )
            })?,
    };
    let mut records = Vec::with_capacity(additional);
    for (i, replicas) in replica_lists.into_iter().enumerate() {
        let index = current + i as i32;
        let p = new_partition(image, replicas).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidReplicaAssignment,
                format!("All brokers specified in the manual partition assignment for partition {index} are fenced or in controlled shutdown."),
            )
        })?;
        records.push(MetadataRecord::Partition(p.to_record(t.id, index)));
    }
    Ok(records)
}

/// CreatePartitions (Kafka's `ReplicationControlManager.createPartitions`).
pub fn create_partitions(
    image: &MetadataImage,
    placer: &mut StripedReplicaPlacer,
    request: &CreatePartitionsRequest,
) -> ControllerResult<CreatePartitionsResponse> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &request.topics {
        *counts.entry(t.name.as_str()).or_default() += 1;
    }
    let mut records = Vec::new();
    let mut response = CreatePartitionsResponse::default();
    for topic in &request.topics {
        let outcome = if counts[topic.name.as_str()] > 1 {
            Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "Duplicate topic name.",
            ))
        } else {
            create_partitions_for(
                image,
                placer,
                topic,
                MAX_RECORDS_PER_USER_OP.saturating_sub(records.len()),
            )
        };
        let (error_code, error_message) = match outcome {
            Ok(r) => {
                records.extend(r);
                (0, None)
            }
            Err(e) => (e.code.code(), e.message),
        };
        response.results.push(cpr::CreatePartitionsTopicResult {
            name: topic.name.clone(),
            error_code,
            error_message,
            ..Default::default()
        });
    }
    if request.validate_only {
        records.clear();
    }
    ControllerResult::new(records, response)
}

#[cfg(test)]
mod tests;
