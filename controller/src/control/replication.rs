//! Kafka's `ReplicationControlManager`, leadership half: the partition changes when brokers are
//! fenced, unfenced or shut down (`generateLeaderAndIsrUpdates`), AlterPartition (API 56: ISR
//! changes from partition leaders) and ElectLeaders (API 43). Topic creation and deletion are
//! in [`super::topics`].
//!
//! Leaders are elected from the ISR only, unless `unclean.leader.election.enable` is set for
//! the topic (see [`super::config::unclean_leader_election_enabled`]); an ISR is never emptied.

use super::api_error::ApiError;
use super::broker_epoch::check_broker_epoch;
use super::config::unclean_leader_election_enabled;
use super::controller_config::ControllerConfig;
use super::controller_result::ControllerResult;
use super::partition_change::{Election, PartitionChangeBuilder};
use crate::image::{
    LeaderRecoveryState, MetadataImage, PartitionRegistration, TopicImage, NO_LEADER,
};
use rafka_protocol::messages::{
    alter_partition_response as apr, elect_leaders_response as elr, AlterPartitionRequest,
    AlterPartitionResponse, ElectLeadersRequest, ElectLeadersResponse, MetadataRecord,
};
use rafka_protocol::ErrorCode;
use std::collections::{BTreeMap, BTreeSet};

/// Whether `broker_id` leads any partition.
pub fn has_leaderships(image: &MetadataImage, broker_id: i32) -> bool {
    image.partitions().any(|(_, _, p)| p.leader == broker_id)
}

/// Kafka's `generateLeaderAndIsrUpdates` for the given partitions: `removed` brokers leave the
/// ISR and may not lead; `added` may lead although the image still shows it fenced (it is being
/// unfenced by the same records).
///
/// The ISR is never emptied. Kafka removes one broker at a time, so when all of an ISR goes,
/// the member removed last stays; `removed` is in that order.
fn leader_and_isr_updates<'a>(
    image: &MetadataImage,
    config: &ControllerConfig,
    partitions: impl Iterator<Item = (&'a TopicImage, i32, &'a PartitionRegistration)>,
    removed: &[i32],
    added: Option<i32>,
) -> Vec<MetadataRecord> {
    // The broker being unfenced may lead although the image still shows it fenced — unless it
    // is in controlled shutdown (Kafka would let it; a shutting-down broker never leads here).
    let acceptable = |r: i32| {
        !removed.contains(&r)
            && (image.is_active(r)
                || (Some(r) == added && image.broker(r).is_some_and(|b| !b.in_controlled_shutdown)))
    };
    let mut records = Vec::new();
    let mut unclean_by_topic: BTreeMap<&str, bool> = BTreeMap::new();
    for (topic, p, reg) in partitions {
        let unclean = *unclean_by_topic
            .entry(topic.name.as_str())
            .or_insert_with(|| {
                unclean_leader_election_enabled(
                    image,
                    config.unclean_leader_election_enable,
                    &topic.name,
                )
            });
        let mut target_isr: Vec<i32> = reg
            .isr
            .iter()
            .copied()
            .filter(|r| !removed.contains(r))
            .collect();
        if target_isr.is_empty() {
            if let Some(last) = removed.iter().rev().find(|r| reg.isr.contains(r)) {
                target_isr.push(*last);
            }
        }
        let builder = PartitionChangeBuilder::new(reg, topic.id, p, &acceptable)
            .set_election(if unclean {
                Election::Unclean
            } else {
                Election::Online
            })
            .set_target_isr(target_isr);
        if let Some(r) = builder.build() {
            records.push(MetadataRecord::PartitionChange(r));
        }
    }
    records
}

/// The partition changes when `brokers` go away (fenced, shutting down, or replaced by a new
/// incarnation), as if one at a time in the order given: each leaves every ISR it is in — the
/// last member stays — and every partition one of them led gets a new leader from the rest of
/// its ISR, or none.
pub fn brokers_removed_changes(
    image: &MetadataImage,
    config: &ControllerConfig,
    brokers: &[i32],
) -> Vec<MetadataRecord> {
    let affected = image.partitions().filter(|(_, _, p)| {
        p.isr.iter().any(|r| brokers.contains(r)) || brokers.contains(&p.leader)
    });
    leader_and_isr_updates(image, config, affected, brokers, None)
}

/// The partition changes when `broker_id` is unfenced: every leaderless partition it can lead
/// (it is in the ISR, or unclean election is on) gets it as leader.
pub fn broker_unfenced_changes(
    image: &MetadataImage,
    config: &ControllerConfig,
    broker_id: i32,
) -> Vec<MetadataRecord> {
    let leaderless = image.partitions().filter(|(_, _, p)| p.leader == NO_LEADER);
    leader_and_isr_updates(image, config, leaderless, &[], Some(broker_id))
}

/// The change when `broker` cannot host its replica of one partition (its log is lost, see
/// [`super::directories`]): it leaves the ISR — the last member stays — and leadership moves
/// to another ISR member, or to none.
pub fn replica_offline_changes(
    image: &MetadataImage,
    config: &ControllerConfig,
    topic: &TopicImage,
    partition: i32,
    registration: &PartitionRegistration,
    broker: i32,
) -> Vec<MetadataRecord> {
    leader_and_isr_updates(
        image,
        config,
        std::iter::once((topic, partition, registration)),
        &[broker],
        None,
    )
}

fn partition_error(index: i32, code: ErrorCode) -> apr::PartitionData {
    apr::PartitionData {
        partition_index: index,
        error_code: code.code(),
        ..Default::default()
    }
}

/// Kafka's `validateAlterPartitionData`, in its order.
fn validate_alter_partition(
    image: &MetadataImage,
    broker_id: i32,
    partition: Option<&PartitionRegistration>,
    data: &rafka_protocol::messages::alter_partition_request::PartitionData,
    new_isr: &[i32],
    isr_epochs: &[(i32, i64)],
) -> Result<LeaderRecoveryState, ErrorCode> {
    let p = partition.ok_or(ErrorCode::UnknownTopicOrPartition)?;
    // A leader ahead of us: this controller is probably no longer the active one.
    if data.leader_epoch > p.leader_epoch || data.partition_epoch > p.partition_epoch {
        return Err(ErrorCode::NotController);
    }
    if data.leader_epoch < p.leader_epoch {
        return Err(ErrorCode::FencedLeaderEpoch);
    }
    // Kafka answers a request from a broker that is not the leader with INVALID_REQUEST.
    if broker_id != p.leader {
        return Err(ErrorCode::InvalidRequest);
    }
    if data.partition_epoch < p.partition_epoch {
        return Err(ErrorCode::InvalidUpdateVersion);
    }
    let distinct: BTreeSet<i32> = new_isr.iter().copied().collect();
    if distinct.len() != new_isr.len() || !new_isr.iter().all(|r| p.replicas.contains(r)) {
        return Err(ErrorCode::InvalidRequest);
    }
    if !new_isr.contains(&p.leader) {
        return Err(ErrorCode::InvalidRequest);
    }
    let state = LeaderRecoveryState::from_value(data.leader_recovery_state)
        .ok_or(ErrorCode::InvalidRequest)?;
    if state == LeaderRecoveryState::Recovering && new_isr.len() > 1 {
        return Err(ErrorCode::InvalidRequest);
    }
    if p.leader_recovery_state == LeaderRecoveryState::Recovered
        && state == LeaderRecoveryState::Recovering
    {
        return Err(ErrorCode::InvalidRequest);
    }
    let ineligible = isr_epochs
        .iter()
        .any(|(id, epoch)| match image.broker(*id) {
            None => true,
            Some(b) => b.in_controlled_shutdown || b.fenced || (*epoch != -1 && b.epoch != *epoch),
        });
    if ineligible {
        return Err(ErrorCode::IneligibleReplica);
    }
    Ok(state)
}

/// AlterPartition (Kafka's `ReplicationControlManager.alterPartition`), versions 2+ (topic
/// ids). Version 3's `new_isr_with_epochs` is used when present, else version 2's `new_isr`.
pub fn alter_partition(
    image: &MetadataImage,
    config: &ControllerConfig,
    request: &AlterPartitionRequest,
) -> ControllerResult<AlterPartitionResponse> {
    if let Err(e) = check_broker_epoch(image, request.broker_id, request.broker_epoch) {
        return ControllerResult::without_records(AlterPartitionResponse {
            error_code: e.code.code(),
            ..Default::default()
        });
    }
    let mut records = Vec::new();
    let mut response = AlterPartitionResponse::default();
    for topic_data in &request.topics {
        let mut out = apr::TopicData {
            topic_id: topic_data.topic_id,
            ..Default::default()
        };
        let Some(topic) = image.topic(&topic_data.topic_id) else {
            out.partitions = topic_data
                .partitions
                .iter()
                .map(|p| partition_error(p.partition_index, ErrorCode::UnknownTopicId))
                .collect();
            response.topics.push(out);
            continue;
        };
        let unclean = unclean_leader_election_enabled(
            image,
            config.unclean_leader_election_enable,
            &topic.name,
        );
        for data in &topic_data.partitions {
            let isr_epochs: Vec<(i32, i64)> = if data.new_isr_with_epochs.is_empty() {
                data.new_isr.iter().map(|r| (*r, -1)).collect()
            } else {
                data.new_isr_with_epochs
                    .iter()
                    .map(|b| (b.broker_id, b.broker_epoch))
                    .collect()
            };
            let new_isr: Vec<i32> = isr_epochs.iter().map(|(r, _)| *r).collect();
            let index = data.partition_index;
            let current = topic.partitions.get(&index);
            let state = match validate_alter_partition(
                image,
                request.broker_id,
                current,
                data,
                &new_isr,
                &isr_epochs,
            ) {
                Ok(s) => s,
                Err(code) => {
                    tracing::info!(topic = %topic.name, partition = index, node_id = request.broker_id, error = code.name(), "AlterPartition rejected");
                    out.partitions.push(partition_error(index, code));
                    continue;
                }
            };
            let mut reg = current.expect("invariant: validated above").clone();
            let acceptable = |r: i32| image.is_active(r);
            let change = PartitionChangeBuilder::new(&reg, topic.id, index, &acceptable)
                .set_election(if unclean {
                    Election::Unclean
                } else {
                    Election::Online
                })
                .set_target_isr(new_isr)
                .set_target_leader_recovery_state(state)
                .build();
            if let Some(change) = change {
                let merged = reg
                    .merge(&change)
                    .expect("invariant: the builder writes valid records");
                if merged.leader != request.broker_id {
                    // Only a reassignment could move the leader here (Kafka: NEW_LEADER_ELECTED);
                    // rafka has none, so refuse rather than answer with a changed leader.
                    out.partitions
                        .push(partition_error(index, ErrorCode::NewLeaderElected));
                    continue;
                }
                records.push(MetadataRecord::PartitionChange(change));
                reg = merged;
            }
            out.partitions.push(apr::PartitionData {
                partition_index: index,
                error_code: 0,
                leader_id: reg.leader,
                leader_epoch: reg.leader_epoch,
                isr: reg.isr.clone(),
                leader_recovery_state: reg.leader_recovery_state.value(),
                partition_epoch: reg.partition_epoch,
                ..Default::default()
            });
        }
        response.topics.push(out);
    }
    ControllerResult::new(records, response)
}

/// Kafka's `electLeader` for one partition.
fn elect_leader(
    image: &MetadataImage,
    topic_name: &str,
    partition: i32,
    election: Election,
) -> Result<MetadataRecord, ApiError> {
    let topic = image.topic_by_name(topic_name).ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnknownTopicOrPartition,
            format!("no such topic as {topic_name}"),
        )
    })?;
    let reg = topic.partitions.get(&partition).ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnknownTopicOrPartition,
            format!("no such partition as {topic_name}-{partition}"),
        )
    })?;
    let not_needed = match election {
        Election::Unclean => reg.has_leader(),
        _ => reg.has_preferred_leader(),
    };
    if not_needed {
        return Err(ApiError::code(ErrorCode::ElectionNotNeeded));
    }
    let acceptable = |r: i32| image.is_active(r);
    match PartitionChangeBuilder::new(reg, topic.id, partition, &acceptable)
        .set_election(election)
        .build()
    {
        Some(r) => Ok(MetadataRecord::PartitionChange(r)),
        None if election == Election::Preferred => {
            Err(ApiError::code(ErrorCode::PreferredLeaderNotAvailable))
        }
        None => Err(ApiError::code(ErrorCode::EligibleLeadersNotAvailable)),
    }
}

/// Kafka's `maybeBalancePartitionLeaders` (auto.leader.rebalance.enable): a preferred election
/// for each partition not led by its preferred replica (the first) while that replica is
/// active and in the ISR, at most `max` per call. Returns how many were moved.
pub fn balance_partition_leaders(image: &MetadataImage, max: usize) -> ControllerResult<usize> {
    let mut records = Vec::new();
    for (topic, index, reg) in image.partitions() {
        if records.len() >= max {
            break;
        }
        let preferred = reg.preferred_replica();
        if reg.has_preferred_leader()
            || !reg.isr.contains(&preferred)
            || !image.is_active(preferred)
        {
            continue;
        }
        if let Ok(r) = elect_leader(image, &topic.name, index, Election::Preferred) {
            records.push(r);
        }
    }
    let n = records.len();
    ControllerResult::new(records, n)
}

/// ElectLeaders (Kafka's `ReplicationControlManager.electLeaders`): type 0 preferred, 1 unclean.
/// Without a partition list every partition is tried and those already led as wanted are left
/// out of the response.
pub fn elect_leaders(
    image: &MetadataImage,
    request: &ElectLeadersRequest,
) -> ControllerResult<ElectLeadersResponse> {
    let election = match request.election_type {
        0 => Election::Preferred,
        1 => Election::Unclean,
        _ => {
            return ControllerResult::without_records(ElectLeadersResponse {
                error_code: ErrorCode::InvalidRequest.code(),
                ..Default::default()
            })
        }
    };
    let mut records = Vec::new();
    let mut response = ElectLeadersResponse::default();
    let result = |partition: i32, e: &ApiError| elr::PartitionResult {
        partition_id: partition,
        error_code: e.code.code(),
        error_message: e.message.clone(),
        ..Default::default()
    };
    let mut done: BTreeMap<(String, i32), ApiError> = BTreeMap::new();
    match &request.topic_partitions {
        None => {
            for (name, id) in image.topic_names() {
                let mut out = elr::ReplicaElectionResult {
                    topic: name.clone(),
                    ..Default::default()
                };
                let Some(topic) = image.topic(id) else {
                    continue;
                };
                for p in topic.partitions.keys() {
                    let e = match elect_leader(image, name, *p, election) {
                        Ok(r) => {
                            records.push(r);
                            ApiError::code(ErrorCode::None)
                        }
                        Err(e) if e.code == ErrorCode::ElectionNotNeeded => continue,
                        Err(e) => e,
                    };
                    out.partition_result.push(result(*p, &e));
                }
                response.replica_election_results.push(out);
            }
        }
        Some(topics) => {
            for t in topics {
                let mut out = elr::ReplicaElectionResult {
                    topic: t.topic.clone(),
                    ..Default::default()
                };
                for p in &t.partitions {
                    // A partition named twice is elected once and reported alike.
                    let e = done
                        .entry((t.topic.clone(), *p))
                        .or_insert_with(|| match elect_leader(image, &t.topic, *p, election) {
                            Ok(r) => {
                                records.push(r);
                                ApiError::code(ErrorCode::None)
                            }
                            Err(e) => e,
                        })
                        .clone();
                    out.partition_result.push(result(*p, &e));
                }
                response.replica_election_results.push(out);
            }
        }
    }
    ControllerResult::new(records, response)
}

#[cfg(test)]
mod tests;
