//! Leaders this broker's replica fetchers lost their connection to, and how Metadata uses that.
//!
//! A leader's death closes its sockets: its followers' fetch connections fail at the instant the
//! client's produce connection does. The controller moves the dead broker's leaderships a few
//! milliseconds later (its heartbeat connection closed too) or, if the dead broker was the
//! active controller, after an election (under half a second). A client refreshes its metadata
//! at once when its connection fails — librdkafka does (`rd_kafka_broker_fail` →
//! `rd_kafka_metadata_refresh_known_topics`) — and an answer that still names the dead leader
//! sends it back to waiting: librdkafka asks again only at its next 1 s topic scan (the
//! partition's broker is down: `rd_kafka_toppar_needs_query`).
//!
//! So a Metadata request that would name, as a partition's leader, a broker whose connection
//! this broker lost within the last `broker.session.timeout.ms` (and has not re-established) is
//! answered once this broker's image no longer does, or after at most [`MAX_HOLD`]: the answer
//! is the same Kafka would give a moment later, given when it is most useful. A Metadata answer
//! is a snapshot of one moment either way; nothing else waits.
//!
//! Thread-safety: a std `Mutex` around a small map, held for a few map operations, never across
//! `.await`.

use rafka_controller::image::MetadataImage;
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest a Metadata answer is held: an election of a new active controller (350–500 ms
/// with the default Raft timings, more after a split vote) plus the commit of the partition
/// changes.
pub const MAX_HOLD: Duration = Duration::from_secs(1);

/// Brokers whose connection this broker lost, and when.
#[derive(Debug)]
pub struct LostLeaders {
    /// How long a loss counts (`broker.session.timeout.ms`: by then the controller has fenced
    /// a broker that did not come back, and its partitions have moved).
    window: Duration,
    lost: Mutex<HashMap<i32, Instant>>,
}

impl LostLeaders {
    pub fn new(window: Duration) -> LostLeaders {
        LostLeaders {
            window,
            lost: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Instant>> {
        self.lost.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fetch connection to `broker` closed or failed (not a timeout: a paused peer closes
    /// nothing, and the session timeout covers it).
    pub fn connection_lost(&self, broker: i32) {
        self.map().insert(broker, Instant::now());
    }

    /// A connection to `broker` was established again: it is alive.
    pub fn connected(&self, broker: i32) {
        let mut m = self.map();
        if !m.is_empty() {
            m.remove(&broker);
        }
    }

    /// The brokers lost within the window, dropping older entries.
    pub fn recent(&self) -> BTreeSet<i32> {
        let mut m = self.map();
        if m.is_empty() {
            return BTreeSet::new();
        }
        let now = Instant::now();
        m.retain(|_, at| now.duration_since(*at) < self.window);
        m.keys().copied().collect()
    }
}

/// Whether `image` names one of `lost` as the leader of a partition of the topics described
/// (`None`: all topics).
pub fn names_lost_leader(
    image: &MetadataImage,
    topics: Option<&BTreeSet<String>>,
    lost: &BTreeSet<i32>,
) -> bool {
    image.topics().values().any(|t| {
        topics.is_none_or(|names| names.contains(&t.name))
            && t.partitions.values().any(|p| lost.contains(&p.leader))
    })
}

#[cfg(test)]
mod tests {
    use super::LostLeaders;
    use std::collections::BTreeSet;
    use std::time::Duration;

    #[test]
    fn a_loss_counts_until_the_window_ends_or_the_broker_is_back() {
        let l = LostLeaders::new(Duration::from_millis(200));
        assert!(l.recent().is_empty());
        l.connection_lost(1);
        l.connection_lost(2);
        assert_eq!(l.recent(), BTreeSet::from([1, 2]));
        l.connected(2);
        assert_eq!(l.recent(), BTreeSet::from([1]));
        std::thread::sleep(Duration::from_millis(250));
        assert!(l.recent().is_empty(), "outside the window");
    }
}
