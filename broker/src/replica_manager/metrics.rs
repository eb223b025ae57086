//! What the replica manager tells the metrics: its partitions' health, read at scrape time (on
//! a blocking thread), and the per-topic handles its produce and fetch paths record through.

use super::{Partition, ReplicaManager};
use crate::metrics::topic::TopicMetrics;
use crate::metrics::NodeMetrics;
use rafka_controller::image::MetadataImage;
use rafka_storage::log_manager::lock_log;
use std::sync::Arc;

/// One partition's log, for the per-partition series.
#[derive(Debug, Clone)]
pub struct LogStats {
    pub topic: String,
    pub partition: i32,
    pub size: u64,
    pub segments: usize,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// The hosted partitions' health (Kafka's `ReplicaManager` gauges).
#[derive(Debug, Default)]
pub struct PartitionSummary {
    pub partitions: usize,
    pub leaders: usize,
    pub under_replicated: usize,
    pub under_min_isr: usize,
    pub at_min_isr: usize,
    pub offline_replicas: usize,
    /// Each log, when the per-partition series are on.
    pub logs: Option<Vec<LogStats>>,
}

impl ReplicaManager {
    /// Turns recording on: partitions created from now on get their topic's handle. Called once,
    /// before the first image is applied.
    pub fn set_metrics(&self, metrics: Arc<NodeMetrics>) {
        let _ = self.metrics.set(metrics);
    }

    pub fn metrics(&self) -> Option<&Arc<NodeMetrics>> {
        self.metrics.get()
    }

    /// The handle a new partition of `topic` records through (none with metrics off).
    pub(super) fn topic_metrics(&self, topic: &str) -> Option<Arc<TopicMetrics>> {
        self.metrics.get().map(|m| m.topics.topic(topic))
    }

    /// Scans the hosted partitions: reads each one's registration in place (no clone) and, with
    /// `with_logs`, takes each log's lock briefly for its size and offsets.
    pub fn partition_summary(&self, _image: &MetadataImage, with_logs: bool) -> PartitionSummary {
        let partitions: Vec<Arc<Partition>> = self.partitions();
        let mut s = PartitionSummary {
            partitions: partitions.len(),
            offline_replicas: self.offline_map().len(),
            ..Default::default()
        };
        for p in &partitions {
            let (leader, replicas, isr) = p.with_state(|st| {
                (
                    st.is_leader,
                    st.registration.replicas.len(),
                    st.registration.isr.len(),
                )
            });
            if !leader {
                continue;
            }
            s.leaders += 1;
            if isr < replicas {
                s.under_replicated += 1;
            }
            // As the image last set it on the partition.
            let min = p.min_insync_replicas();
            let isr = i32::try_from(isr).unwrap_or(i32::MAX);
            if isr < min {
                s.under_min_isr += 1;
            } else if isr == min {
                s.at_min_isr += 1;
            }
        }
        if with_logs {
            let mut logs: Vec<LogStats> = partitions
                .iter()
                .map(|p| {
                    let log = lock_log(&p.log);
                    LogStats {
                        topic: p.tp.topic.clone(),
                        partition: p.tp.partition,
                        size: log.size(),
                        segments: log.number_of_segments(),
                        log_start_offset: log.log_start_offset(),
                        log_end_offset: log.log_end_offset(),
                    }
                })
                .collect();
            logs.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
            s.logs = Some(logs);
        }
        s
    }
}
