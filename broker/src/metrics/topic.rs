//! Kafka's `BrokerTopicMetrics`: bytes and messages in, bytes out, produce and fetch requests and
//! their failures, per topic and over all topics (`kafka.server:type=BrokerTopicMetrics`).
//!
//! The produce and fetch paths never look a topic up here: each hosted partition holds its
//! topic's [`TopicMetrics`] handle, resolved once when the replica manager creates the partition,
//! and recording is a few relaxed atomic adds (the topic's and the all-topics' counters).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One set of counters (a topic's, or all topics').
#[derive(Debug, Default)]
pub struct TopicCounters {
    pub bytes_in: AtomicU64,
    pub messages_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub bytes_rejected: AtomicU64,
    pub total_produce_requests: AtomicU64,
    pub failed_produce_requests: AtomicU64,
    pub total_fetch_requests: AtomicU64,
    pub failed_fetch_requests: AtomicU64,
}

/// A topic's handle: its counters and the all-topics' counters, both updated by each record.
#[derive(Debug)]
pub struct TopicMetrics {
    pub topic: TopicCounters,
    all: Arc<TopicCounters>,
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl TopicMetrics {
    /// A successful append of a producer's (or the coordinator's) records.
    pub fn produced(&self, bytes: u64, messages: u64) {
        for c in [&self.topic, &*self.all] {
            add(&c.total_produce_requests, 1);
            add(&c.bytes_in, bytes);
            add(&c.messages_in, messages);
        }
    }

    /// A refused append (`bytes` the records refused for their content, else 0).
    pub fn produce_failed(&self, bytes_rejected: u64) {
        for c in [&self.topic, &*self.all] {
            add(&c.total_produce_requests, 1);
            add(&c.failed_produce_requests, 1);
            add(&c.bytes_rejected, bytes_rejected);
        }
    }

    /// One partition read for a fetch.
    pub fn fetched(&self, failed: bool) {
        for c in [&self.topic, &*self.all] {
            add(&c.total_fetch_requests, 1);
            if failed {
                add(&c.failed_fetch_requests, 1);
            }
        }
    }

    /// Record bytes a consumer's fetch response carried.
    pub fn bytes_out(&self, bytes: u64) {
        add(&self.topic.bytes_out, bytes);
        add(&self.all.bytes_out, bytes);
    }
}

/// Every topic's counters on this broker, and the broker-wide ones.
#[derive(Debug, Default)]
pub struct BrokerTopicStats {
    all: Arc<TopicCounters>,
    /// Looked up only when a partition is created (never per request); the lock is held for the
    /// lookup or insert only.
    topics: Mutex<HashMap<String, Arc<TopicMetrics>>>,
    /// Kafka's `ReplicationBytesInPerSec` / `ReplicationBytesOutPerSec` (broker-wide only).
    pub replication_bytes_in: AtomicU64,
    pub replication_bytes_out: AtomicU64,
}

impl BrokerTopicStats {
    /// The handle of `topic`, created on first use.
    pub fn topic(&self, topic: &str) -> Arc<TopicMetrics> {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = topics.get(topic) {
            return t.clone();
        }
        let t = Arc::new(TopicMetrics {
            topic: TopicCounters::default(),
            all: self.all.clone(),
        });
        topics.insert(topic.to_owned(), t.clone());
        t
    }

    /// The all-topics counters, for requests that name no partition this broker hosts.
    pub fn all(&self) -> &TopicCounters {
        &self.all
    }

    /// A failure on a partition this broker does not host (not its leader, unknown topic):
    /// counted over all topics only, as no topic handle exists for it.
    pub fn produce_failed_unhosted(&self) {
        add(&self.all.total_produce_requests, 1);
        add(&self.all.failed_produce_requests, 1);
    }

    /// As [`BrokerTopicStats::produce_failed_unhosted`], for a fetch.
    pub fn fetch_failed_unhosted(&self) {
        add(&self.all.total_fetch_requests, 1);
        add(&self.all.failed_fetch_requests, 1);
    }

    /// Each topic's counters, by name; topics no hosted partition holds any more (deleted, or
    /// moved away — Kafka removes their metrics too) are dropped here.
    pub fn topics(&self) -> Vec<(String, Arc<TopicMetrics>)> {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        topics.retain(|_, t| Arc::strong_count(t) > 1);
        let mut v: Vec<_> = topics.iter().map(|(k, t)| (k.clone(), t.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_records_count_in_the_topic_and_over_all_topics() {
        let stats = BrokerTopicStats::default();
        let a = stats.topic("a");
        let b = stats.topic("b");
        a.produced(100, 3);
        b.produced(10, 1);
        b.produce_failed(0);
        stats.produce_failed_unhosted();
        a.bytes_out(7);
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        assert_eq!(load(&a.topic.bytes_in), 100);
        assert_eq!(load(&stats.all().bytes_in), 110);
        assert_eq!(load(&stats.all().messages_in), 4);
        assert_eq!(load(&stats.all().total_produce_requests), 4);
        assert_eq!(load(&stats.all().failed_produce_requests), 2);
        assert_eq!(load(&b.topic.failed_produce_requests), 1);
        assert_eq!(load(&stats.all().bytes_out), 7);
        assert!(Arc::ptr_eq(&a, &stats.topic("a")));
        // A topic whose handles are all gone is forgotten at the next scrape.
        drop(b);
        let names: Vec<String> = stats.topics().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec!["a".to_owned()]);
    }
}
