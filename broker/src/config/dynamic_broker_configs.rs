//! [`DynamicBrokerConfigs`]: the dynamic `BROKER` configs of the metadata image that apply to
//! one broker — its own and the cluster-wide default — as the values
//! [`KafkaConfig`](super::KafkaConfig) layers over its static ones.

use std::collections::BTreeMap;

use rafka_controller::image::{ConfigResource, MetadataImage};

/// The dynamic broker configurations in force (from the metadata log's `ConfigRecord`s for
/// `BROKER` resources), as set by IncrementalAlterConfigs / AlterConfigs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DynamicBrokerConfigs {
    /// Resource `BROKER` named by this node's id (source `DYNAMIC_BROKER_CONFIG`).
    pub per_broker: BTreeMap<String, String>,
    /// Resource `BROKER` with the empty name: the cluster-wide default (source
    /// `DYNAMIC_DEFAULT_BROKER_CONFIG`).
    pub cluster_default: BTreeMap<String, String>,
}

impl DynamicBrokerConfigs {
    /// The dynamic broker configurations `image` holds for `broker_id`: its own (`BROKER`
    /// resource named by its id) and the cluster-wide default (`BROKER` "").
    pub fn from_image(image: &MetadataImage, broker_id: i32) -> DynamicBrokerConfigs {
        let get = |name: &str| {
            image
                .configs()
                .get(&ConfigResource::broker(name))
                .cloned()
                .unwrap_or_default()
        };
        DynamicBrokerConfigs {
            per_broker: get(&broker_id.to_string()),
            cluster_default: get(""),
        }
    }
}
