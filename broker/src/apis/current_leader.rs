//! KIP-951: where a partition's leader went, for the NOT_LEADER_OR_FOLLOWER (and, in Fetch,
//! FENCED_LEADER_EPOCH) answers of Produce v10+ and Fetch v16+. The partition carries the leader's
//! id and epoch (`CurrentLeader`), the response the leaders' endpoints on the listener the client
//! used (`NodeEndpoints`), so librdkafka ≥ 2.4 and the Java client redirect at once instead of
//! refreshing their metadata first. As Kafka's `KafkaApis.getCurrentLeader`: the leader as this
//! broker's metadata image has it (-1/-1 for a partition it does not know), its endpoint only if
//! it is alive (registered and unfenced) and has that listener.

use super::kafka_apis::KafkaApis;
use rafka_controller::image::MetadataImage;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How long an answer waits for the handlers' image to catch up with the replica manager's.
const CATCH_UP: Duration = Duration::from_millis(500);

/// The image to name current leaders from when this broker answers NOT_LEADER_OR_FOLLOWER for
/// `partitions` (topic, partition). The replica manager acts on a new image before the handlers
/// see it (`server`), so for a moment the handlers' image may still name this very broker as the
/// leader it has just stopped being — a broker that resumes after a pause gets there at once.
/// Naming itself would send the client straight back; so wait (at most 500 ms) for the image in
/// which it is not.
pub async fn image_for_hints(apis: &KafkaApis, partitions: &[(&str, i32)]) -> Arc<MetadataImage> {
    let names_me = |image: &MetadataImage| {
        partitions.iter().any(|(topic, partition)| {
            image
                .topic_by_name(topic)
                .and_then(|t| t.partitions.get(partition))
                .is_some_and(|p| p.leader == apis.broker_id)
        })
    };
    if names_me(&apis.image()) {
        apis.wait_for_image(CATCH_UP, |i| !names_me(i)).await;
    }
    apis.image()
}

/// A partition's leader as this broker knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentLeader {
    pub leader_id: i32,
    pub leader_epoch: i32,
}

/// A live broker's endpoint on one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderEndpoint {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// The leaders named so far in one response, by id (each endpoint listed once, in id order).
#[derive(Debug, Default)]
pub struct LeaderHints {
    endpoints: BTreeMap<i32, LeaderEndpoint>,
}

impl LeaderHints {
    /// The current leader of `topic`-`partition` in `image`, remembering its endpoint on
    /// `listener` for [`LeaderHints::endpoints`].
    pub fn current_leader(
        &mut self,
        image: &MetadataImage,
        topic: &str,
        partition: i32,
        listener: &str,
    ) -> CurrentLeader {
        let Some(p) = image
            .topic_by_name(topic)
            .and_then(|t| t.partitions.get(&partition))
        else {
            return CurrentLeader {
                leader_id: -1,
                leader_epoch: -1,
            };
        };
        if let Some(b) = image.broker(p.leader).filter(|b| !b.fenced) {
            if let Some(ep) = b.endpoints.iter().find(|e| e.name == listener) {
                self.endpoints
                    .entry(b.id)
                    .or_insert_with(|| LeaderEndpoint {
                        node_id: b.id,
                        host: ep.host.clone(),
                        port: i32::from(ep.port),
                        rack: b.rack.clone(),
                    });
            }
        }
        CurrentLeader {
            leader_id: p.leader,
            leader_epoch: p.leader_epoch,
        }
    }

    /// The endpoints of the leaders named, in id order.
    pub fn endpoints(self) -> impl Iterator<Item = LeaderEndpoint> {
        self.endpoints.into_values()
    }
}
