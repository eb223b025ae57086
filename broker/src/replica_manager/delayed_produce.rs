//! `DelayedProduce`: acks=all waits until the high watermark of every partition it appended to
//! passes its append (Kafka's `DelayedProduce`), woken only by its own partitions' high
//! watermarks and leadership changes, reading the published high watermark without the log's
//! lock. Each partition then answers NONE; NOT_ENOUGH_REPLICAS_AFTER_APPEND if its ISR shrank
//! below `min.insync.replicas` meanwhile; NOT_LEADER_OR_FOLLOWER if leadership moved or the
//! partition went away; REQUEST_TIMED_OUT at the deadline.

use super::ReplicaManager;
use crate::partition::Partition;
use crate::purgatory::{Registrations, Waiter, WatchKey};
use rafka_protocol::ErrorCode;
use rafka_storage::TopicPartition;
use std::sync::Arc;

impl ReplicaManager {
    /// acks=all over several partitions: waits until each `(partition, required)` has its high
    /// watermark at `required` (the offset after its append), at most until `deadline`, and
    /// answers each one's error code in order.
    pub async fn wait_for_high_watermarks(
        &self,
        waits: &[(TopicPartition, i64)],
        deadline: tokio::time::Instant,
    ) -> Vec<ErrorCode> {
        let stats = self.purgatory().produce.clone();
        let mut registrations = Registrations::new(Waiter::new(waits.len(), stats.clone()));
        let mut partitions: Vec<Option<Arc<Partition>>> = Vec::with_capacity(waits.len());
        for (i, (tp, required)) in waits.iter().enumerate() {
            let p = self.partition(tp);
            if let Some(p) = &p {
                // Registered before the first look: a move in between wakes it. Only a high
                // watermark at `required` can decide it (or a leadership change, which wakes
                // everyone).
                registrations.add_at(p.offsets(), WatchKey::HighWatermark, i, *required);
            }
            partitions.push(p);
        }
        let mut out: Vec<Option<ErrorCode>> = vec![None; waits.len()];
        let mut look: Vec<usize> = (0..waits.len()).collect();
        let mut waited = false;
        loop {
            for i in look {
                if out[i].is_none() {
                    out[i] = self.produce_outcome(partitions[i].as_ref(), &waits[i]);
                }
            }
            if out.iter().all(Option::is_some) {
                if waited {
                    stats.count_completed();
                }
                break;
            }
            waited = true;
            let waiter = registrations.waiter().clone();
            // Kafka's delayed-produce purgatory (offset commits and markers wait here too).
            let woken = crate::metrics::request::remote(
                crate::metrics::request::Purgatory::Produce,
                tokio::time::timeout_at(deadline, waiter.woken()),
            );
            if woken.await.is_err() {
                stats.count_expired();
                break;
            }
            look = waiter.take_woken();
        }
        out.into_iter()
            .map(|o| o.unwrap_or(ErrorCode::RequestTimedOut))
            .collect()
    }

    /// acks=all for one partition ([`ReplicaManager::wait_for_high_watermarks`]).
    pub async fn wait_for_high_watermark(
        &self,
        _image: &rafka_controller::image::MetadataImage,
        tp: &TopicPartition,
        required: i64,
        deadline: tokio::time::Instant,
    ) -> ErrorCode {
        self.wait_for_high_watermarks(&[(tp.clone(), required)], deadline)
            .await
            .pop()
            .unwrap_or(ErrorCode::RequestTimedOut)
    }

    /// One partition's answer if it is decided now (`None`: keep waiting).
    fn produce_outcome(
        &self,
        p: Option<&Arc<Partition>>,
        (tp, required): &(TopicPartition, i64),
    ) -> Option<ErrorCode> {
        // Still this partition (not deleted or re-created) and still led here.
        let current = p.filter(|p| {
            p.is_leader() && self.partition(tp).is_some_and(|now| Arc::ptr_eq(&now, p))
        });
        let Some(p) = current else {
            return Some(ErrorCode::NotLeaderOrFollower);
        };
        if p.offsets().high_watermark() < *required {
            return None;
        }
        let isr = p.with_state(|st| st.registration.isr.len()) as i32;
        Some(if isr < p.min_insync_replicas() {
            ErrorCode::NotEnoughReplicasAfterAppend
        } else {
            ErrorCode::None
        })
    }
}
