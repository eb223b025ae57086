//! `AlterPartitionManager`: sends the ISR changes a leader proposes
//! ([`ReplicaManager::isr_changes`]) to the active controller as AlterPartition (version 3, each
//! ISR member with its broker epoch), batched, every `interval`. An ISR is in force only once the
//! controller has committed it and the image brings it back; a refused or unanswered proposal
//! is forgotten so the next round proposes again from the committed state.

use crate::controller_channel::ControllerChannel;
use crate::lifecycle::BrokerLifecycleManager;
use crate::replica_manager::replication::IsrChange;
use crate::replica_manager::ReplicaManager;
use rafka_controller::image::MetadataImage;
use rafka_protocol::messages::alter_partition_request::{BrokerState, PartitionData, TopicData};
use rafka_protocol::messages::{AlterPartitionRequest, RequestKind, ResponseKind};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const ALTER_PARTITION_VERSION: i16 = 3;

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
