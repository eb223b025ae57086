//! `AlterPartitionManager`: sends the ISR changes a leader proposes
//! ([`ReplicaManager::isr_changes`]) to the active controller as AlterPartition (version 3, each
//! ISR member with its broker epoch), batched, every `interval`. An ISR is in force only once the
//! controller has committed it and the image brings it back; a refused or unanswered proposal
//! is forgotten so the next round proposes again from the committed state.
//!
//! The same rounds report the replicas this broker cannot host (their log could not be created
//! or opened: [`ReplicaManager::unreported_offline_replicas`]) as AssignReplicasToDirs to
//! Kafka's `DirectoryId.LOST` (KIP-858's message, the one a Kafka broker uses to tell the
//! controller where its replicas are), so the controller moves their leadership away; a report
//! not acknowledged is sent again the next round.

use crate::controller_channel::ControllerChannel;
use crate::lifecycle::BrokerLifecycleManager;
use crate::partition::IsrChange;
use crate::replica_manager::ReplicaManager;
use rafka_controller::image::MetadataImage;
use rafka_protocol::messages::alter_partition_request::{BrokerState, PartitionData, TopicData};
use rafka_protocol::messages::assign_replicas_to_dirs_request as arq;
use rafka_protocol::messages::{
    AlterPartitionRequest, AssignReplicasToDirsRequest, RequestKind, ResponseKind,
};
use rafka_protocol::Uuid;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const ALTER_PARTITION_VERSION: i16 = 3;
const ASSIGN_REPLICAS_TO_DIRS_VERSION: i16 = 0;
/// Kafka's `DirectoryId.LOST`: the directory of a replica its broker cannot host.
pub const LOST_DIRECTORY: Uuid = Uuid(1u128.to_be_bytes());

pub async fn run(
    broker_id: i32,
    interval: Duration,
    replica_manager: Arc<ReplicaManager>,
    channel: Arc<ControllerChannel>,
    lifecycle: Arc<BrokerLifecycleManager>,
    images: watch::Receiver<Arc<MetadataImage>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.changed() => return,
        }
        report_offline_replicas(broker_id, &replica_manager, &channel, &lifecycle).await;
        let image = images.borrow().clone();
        let now = crate::now_ms();
        let rm = replica_manager.clone();
        let img = image.clone();
        let changes = match tokio::task::spawn_blocking(move || rm.isr_changes(&img, now)).await {
            Ok(c) => c,
            Err(_) => continue,
        };
        if changes.is_empty() {
            continue;
        }
        for c in &changes {
            tracing::info!(topic = %c.tp.topic, partition = c.tp.partition, isr = ?c.new_isr, "proposing an ISR change");
        }
        let request =
            alter_partition_request(broker_id, lifecycle.broker_epoch(), &image, &changes);
        let response = channel
            .send(
                ALTER_PARTITION_VERSION,
                RequestKind::AlterPartition(request),
            )
            .await;
        let failed: Vec<&IsrChange> = match &response {
            Some(ResponseKind::AlterPartition(r)) if r.error_code == 0 => changes
                .iter()
                .filter(|c| {
                    !r.topics.iter().any(|t| {
                        t.topic_id == c.topic_id
                            && t.partitions
                                .iter()
                                .any(|p| p.partition_index == c.tp.partition && p.error_code == 0)
                    })
                })
                .collect(),
            _ => changes.iter().collect(),
        };
        for c in failed {
            tracing::info!(topic = %c.tp.topic, partition = c.tp.partition, response = ?response.as_ref().map(|r| r.api_key()), "ISR change not accepted");
            replica_manager.isr_change_failed(&c.tp);
        }
    }
}

/// Sends the offline replicas not yet acknowledged (see the module docs).
async fn report_offline_replicas(
    broker_id: i32,
    replica_manager: &ReplicaManager,
    channel: &ControllerChannel,
    lifecycle: &BrokerLifecycleManager,
) {
    let offline = replica_manager.unreported_offline_replicas();
    if offline.is_empty() {
        return;
    }
    let mut topics: Vec<arq::TopicData> = Vec::new();
    for &(topic_id, partition_index) in &offline {
        let p = arq::PartitionData {
            partition_index,
            ..Default::default()
        };
        match topics.iter_mut().find(|t| t.topic_id == topic_id) {
            Some(t) => t.partitions.push(p),
            None => topics.push(arq::TopicData {
                topic_id,
                partitions: vec![p],
                ..Default::default()
            }),
        }
    }
    let request = AssignReplicasToDirsRequest {
        broker_id,
        broker_epoch: lifecycle.broker_epoch(),
        directories: vec![arq::DirectoryData {
            id: LOST_DIRECTORY,
            topics,
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = channel
        .send(
            ASSIGN_REPLICAS_TO_DIRS_VERSION,
            RequestKind::AssignReplicasToDirs(request),
        )
        .await;
    let Some(ResponseKind::AssignReplicasToDirs(r)) = response else {
        return; // no answer: sent again next round
    };
    if r.error_code != 0 {
        tracing::info!(
            error = r.error_code,
            "offline replicas not acknowledged by the controller"
        );
        return;
    }
    // Acknowledged, or refused for good (the topic is gone, the replica moved): either way the
    // controller needs no more from us about them.
    let done: Vec<(Uuid, i32)> = r
        .directories
        .iter()
        .flat_map(|d| &d.topics)
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic_id, p.partition_index)))
        .collect();
    replica_manager.offline_replicas_reported(&done);
}

fn alter_partition_request(
    broker_id: i32,
    broker_epoch: i64,
    image: &MetadataImage,
    changes: &[IsrChange],
) -> AlterPartitionRequest {
    let mut topics: Vec<TopicData> = Vec::new();
    for c in changes {
        let data = PartitionData {
            partition_index: c.tp.partition,
            leader_epoch: c.leader_epoch,
            new_isr_with_epochs: c
                .new_isr
                .iter()
                .map(|&id| BrokerState {
                    broker_id: id,
                    broker_epoch: image.broker(id).map_or(-1, |b| b.epoch),
                    ..Default::default()
                })
                .collect(),
            partition_epoch: c.partition_epoch,
            ..Default::default()
        };
        match topics.iter_mut().find(|t| t.topic_id == c.topic_id) {
            Some(t) => t.partitions.push(data),
            None => topics.push(TopicData {
                topic_id: c.topic_id,
                partitions: vec![data],
                ..Default::default()
            }),
        }
    }
    AlterPartitionRequest {
        broker_id,
        broker_epoch,
        topics,
        ..Default::default()
    }
}
