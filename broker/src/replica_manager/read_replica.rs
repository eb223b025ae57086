//! Fetch from follower (KIP-392), the leader's half: which replica a consumer should read a
//! partition from. With `replica.selector.class` set to Kafka's
//! `org.apache.kafka.common.replica.RackAwareReplicaSelector`, a consumer that names its rack
//! (Fetch v11+ `rack_id`, librdkafka's `client.rack`) is sent to a replica in its rack: the
//! leader if it is there, else the most caught-up follower there that has the fetch offset
//! (Kafka's `ReplicaManager.findPreferredReadReplica` and `RackAwareReplicaSelector`). No rack,
//! no replica in that rack, or no selector: the leader, which answers the fetch itself.
//!
//! The follower's half is [`ReplicaManager::read`] with `any_replica`: a follower serves v11+
//! consumers up to its own high watermark, which it learns from its fetches from the leader.

use super::ReplicaManager;
use rafka_controller::image::MetadataImage;
use rafka_storage::TopicPartition;

/// Kafka's rack-aware selector, the one `replica.selector.class` value rafka implements.
pub const RACK_AWARE_REPLICA_SELECTOR: &str =
    "org.apache.kafka.common.replica.RackAwareReplicaSelector";

/// One replica as the selector sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaView<'a> {
    pub broker_id: i32,
    pub rack: Option<&'a str>,
    pub log_end_offset: i64,
}

/// Kafka's `RackAwareReplicaSelector.select`: the leader unless the client's rack has replicas
/// and the leader is not one of them; then the most caught-up replica of that rack (ties: the
/// lowest id, so the choice is stable).
pub fn select_rack_aware(
    client_rack: &str,
    leader: &ReplicaView<'_>,
    replicas: &[ReplicaView<'_>],
) -> i32 {
    if client_rack.is_empty() || leader.rack == Some(client_rack) {
        return leader.broker_id;
    }
    replicas
        .iter()
        .filter(|r| r.rack == Some(client_rack))
        .max_by_key(|r| (r.log_end_offset, std::cmp::Reverse(r.broker_id)))
        .map_or(leader.broker_id, |r| r.broker_id)
}

impl ReplicaManager {
    /// The replica a consumer in `client_rack` should fetch `tp` from at `fetch_offset`, when it
    /// is not this leader; `None`: read here. Only followers that are registered, unfenced and
    /// whose log has reached `fetch_offset` are candidates.
    pub fn preferred_read_replica(
        &self,
        image: &MetadataImage,
        tp: &TopicPartition,
        fetch_offset: i64,
        client_rack: &str,
    ) -> Option<i32> {
        if client_rack.is_empty() {
            return None;
        }
        let p = self.partition(tp)?;
        let state = p.state();
        if !state.is_leader {
            return None;
        }
        let rack = |id: i32| image.broker(id).and_then(|b| b.rack.as_deref());
        let ends = p.replicas_lock().follower_log_end_offsets();
        let followers: Vec<ReplicaView<'_>> = ends
            .into_iter()
            .filter(|(id, leo)| {
                *id != self.broker_id
                    && *leo >= fetch_offset
                    && state.registration.replicas.contains(id)
                    && image.broker(*id).is_some_and(|b| !b.fenced)
            })
            .map(|(id, leo)| ReplicaView {
                broker_id: id,
                rack: rack(id),
                log_end_offset: leo,
            })
            .collect();
        let leader = ReplicaView {
            broker_id: self.broker_id,
            rack: rack(self.broker_id),
            log_end_offset: i64::MAX,
        };
        let chosen = select_rack_aware(client_rack, &leader, &followers);
        (chosen != self.broker_id).then_some(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(broker_id: i32, rack: Option<&str>, log_end_offset: i64) -> ReplicaView<'_> {
        ReplicaView {
            broker_id,
            rack,
            log_end_offset,
        }
    }

    #[test]
    fn rack_aware_selection() {
        let leader = view(1, Some("a"), i64::MAX);
        let followers = [
            view(2, Some("b"), 10),
            view(3, Some("b"), 12),
            view(4, Some("c"), 5),
        ];
        // (client rack, chosen)
        let cases = [("", 1), ("a", 1), ("b", 3), ("c", 4), ("d", 1)];
        for (rack, want) in cases {
            assert_eq!(
                select_rack_aware(rack, &leader, &followers),
                want,
                "rack {rack:?}"
            );
        }
        // Ties go to the lowest id; no rack on the leader changes nothing.
        let tied = [view(3, Some("b"), 10), view(2, Some("b"), 10)];
        assert_eq!(select_rack_aware("b", &view(1, None, i64::MAX), &tied), 2);
    }
}
