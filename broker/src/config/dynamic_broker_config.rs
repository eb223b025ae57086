//! `DynamicBrokerConfig`: this broker's configuration in force (Kafka's `DynamicBrokerConfig` and
//! `KafkaConfig.currentConfig`) — the static configuration (file and `--override`s) with the
//! dynamic `BROKER` configs of the metadata image installed: this broker's own (resource named
//! by its id) over the cluster-wide default (resource `""`).
//!
//! It owns one typed snapshot, an `Arc<KafkaConfig>`, rebuilt only when the image's dynamic
//! broker configs change ([`DynamicBrokerConfig::update_from_image`], called by whoever applies
//! metadata images, before anything recomputes from that image) and read everywhere by cloning
//! the `Arc` ([`DynamicBrokerConfig::current_config`]). It also answers the replica manager's
//! per-topic questions (a topic's [`LogConfig`](rafka_storage::LogConfig) and `min.insync.replicas`: its overrides in the
//! image over the snapshot; for a topic without overrides, the snapshot's own, resolved once),
//! so an image change that touches a thousand topics does not rebuild the broker configuration
//! two thousand times.
//!
//! It does not own the image, nor the topic overrides (they stay in the image), nor the
//! validation of a proposed change (`crate::apis::config_admin` builds that one-off from the
//! snapshot with [`KafkaConfig::set_dynamic`]).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use rafka_controller::image::{ConfigResource, MetadataImage};

use super::dynamic_broker_configs::DynamicBrokerConfigs;
use super::KafkaConfig;
use crate::replica_manager::{TopicConfigs, TopicSettings};

/// This broker's configuration in force, replaced when the image's dynamic broker configs
/// change.
///
/// Thread-safety: `Send + Sync`; share it behind an `Arc`. Readers take the snapshot's lock only
/// to clone the `Arc` (or the settings of a topic without overrides); [`DynamicBrokerConfig::update_from_image`] holds it (for writing) only
/// while it compares and, on a change, rebuilds the snapshot — a clone of the static
/// configuration and the validation of the dynamic entries, no I/O.
#[derive(Debug)]
pub struct DynamicBrokerConfig {
    broker_id: i32,
    /// The configuration as loaded (no dynamic configs).
    static_config: Arc<KafkaConfig>,
    /// Why a lock: the image task replaces the snapshot while request handlers and the replica
    /// manager read it. Lock order: a leaf — nothing is locked under it, and it is never held
    /// across I/O or `.await`.
    current: RwLock<Current>,
}

/// The snapshot and the image's dynamic broker configs it was built from.
#[derive(Debug)]
struct Current {
    /// As the image holds them, before [`KafkaConfig::set_dynamic`] drops the entries it cannot
    /// use: compared with each new image's, so an image holding such an entry does not rebuild
    /// the snapshot every time.
    from_image: DynamicBrokerConfigs,
    config: Arc<KafkaConfig>,
    /// The settings of a topic without overrides (most topics), resolved once per snapshot.
    defaults: TopicSettings,
}

impl Current {
    fn new(from_image: DynamicBrokerConfigs, config: Arc<KafkaConfig>) -> Current {
        Current {
            from_image,
            defaults: topic_settings(&config, &BTreeMap::new()),
            config,
        }
    }
}

/// A topic's settings: `overrides` over `config`; `min.insync.replicas` 1 if it cannot be read
/// (it cannot, once validated).
fn topic_settings(config: &KafkaConfig, overrides: &BTreeMap<String, String>) -> TopicSettings {
    TopicSettings {
        log_config: config.topic_log_config(overrides),
        min_insync_replicas: config
            .topic_value("min.insync.replicas", overrides)
            .and_then(|v| v.parse().ok())
            .unwrap_or(1),
    }
}

impl DynamicBrokerConfig {
    /// The configuration in force before any image: `static_config` as it is (its dynamic
    /// configs, normally none, are kept until the first image that has any says otherwise).
    pub fn new(static_config: Arc<KafkaConfig>, broker_id: i32) -> DynamicBrokerConfig {
        DynamicBrokerConfig {
            broker_id,
            current: RwLock::new(Current::new(
                static_config.dynamic().clone(),
                static_config.clone(),
            )),
            static_config,
        }
    }

    /// The node id whose per-broker configs apply.
    pub fn broker_id(&self) -> i32 {
        self.broker_id
    }

    /// The configuration as loaded, without the dynamic configs. For what can only change with
    /// a restart (listeners, directories, thread and coordinator settings).
    pub fn static_config(&self) -> &Arc<KafkaConfig> {
        &self.static_config
    }

    /// The configuration in force now (Kafka's `currentConfig`).
    pub fn current_config(&self) -> Arc<KafkaConfig> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .config
            .clone()
    }

    /// Installs the dynamic broker configs `image` holds, if they differ from those of the
    /// snapshot: then the snapshot is rebuilt and `true` returned. Entries this version cannot
    /// use are left out with a warning ([`KafkaConfig::set_dynamic`]).
    pub fn update_from_image(&self, image: &MetadataImage) -> bool {
        let dynamic = DynamicBrokerConfigs::from_image(image, self.broker_id);
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if current.from_image == dynamic {
            return false;
        }
        let mut config = (*self.static_config).clone();
        for w in config.set_dynamic(dynamic.clone()) {
            tracing::warn!(node_id = self.broker_id, "{w}");
        }
        tracing::info!(
            node_id = self.broker_id,
            per_broker = config.dynamic().per_broker.len(),
            cluster_default = config.dynamic().cluster_default.len(),
            "dynamic broker configs updated"
        );
        *current = Current::new(dynamic, Arc::new(config));
        true
    }
}

impl TopicConfigs for DynamicBrokerConfig {
    /// `topic`'s overrides in `image` over the configuration in force (the snapshot's own
    /// settings, resolved once, for a topic without overrides).
    fn topic_settings(&self, image: &MetadataImage, topic: &str) -> TopicSettings {
        let overrides = image
            .configs()
            .get(&ConfigResource::topic(topic))
            .filter(|o| !o.is_empty());
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        match overrides {
            None => current.defaults.clone(),
            Some(o) => {
                let config = current.config.clone();
                // Resolving ~20 keys: not under the lock.
                drop(current);
                topic_settings(&config, o)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigSource;
    use rafka_protocol::messages::{ConfigRecord, MetadataRecord, TopicRecord};
    use rafka_protocol::Uuid;

    fn config_record(resource: ConfigResource, name: &str, value: Option<&str>) -> MetadataRecord {
        MetadataRecord::Config(ConfigRecord {
            resource_type: resource.resource_type,
            resource_name: resource.name,
            name: name.to_owned(),
            value: value.map(str::to_owned),
            ..Default::default()
        })
    }

    fn apply(image: &MetadataImage, records: &[MetadataRecord]) -> MetadataImage {
        let mut next = image.clone();
        for r in records {
            next.apply(r).expect("record");
        }
        next
    }

    /// A static `log.segment.bytes` and `log.retention.ms`, so each layer can be told apart.
    fn dynamic_config() -> DynamicBrokerConfig {
        let mut props = crate::config::single_node_props();
        props.insert("log.segment.bytes".to_owned(), "5000000".to_owned());
        props.insert("log.retention.ms".to_owned(), "7000".to_owned());
        let config = KafkaConfig::from_props(props).expect("valid config");
        DynamicBrokerConfig::new(Arc::new(config), 1)
    }

    fn segment_bytes(d: &DynamicBrokerConfig) -> u64 {
        d.current_config().log_config().segment_bytes
    }

    #[test]
    fn per_broker_beats_cluster_default_beats_static() {
        let d = dynamic_config();
        let empty = MetadataImage::new();
        assert!(
            !d.update_from_image(&empty),
            "no dynamic configs: nothing to do"
        );
        assert_eq!(segment_bytes(&d), 5_000_000, "static");

        let cluster = apply(
            &empty,
            &[config_record(
                ConfigResource::broker(""),
                "log.segment.bytes",
                Some("4000000"),
            )],
        );
        assert!(d.update_from_image(&cluster));
        assert_eq!(segment_bytes(&d), 4_000_000, "cluster default over static");
        assert_eq!(
            d.current_config().raw("log.segment.bytes"),
            Some(("4000000", ConfigSource::DynamicDefaultBrokerConfig))
        );
        assert_eq!(
            d.current_config().log_config().retention_ms,
            7000,
            "what the cluster default leaves unset stays static"
        );

        let both = apply(
            &cluster,
            &[
                config_record(
                    ConfigResource::broker("1"),
                    "log.segment.bytes",
                    Some("3000000"),
                ),
                // Another broker's configs are not this broker's.
                config_record(
                    ConfigResource::broker("2"),
                    "log.segment.bytes",
                    Some("2000000"),
                ),
            ],
        );
        assert!(d.update_from_image(&both));
        assert_eq!(
            segment_bytes(&d),
            3_000_000,
            "per broker over cluster default"
        );

        // Deleting the per-broker value uncovers the cluster default, then the static value.
        let cluster_again = apply(
            &both,
            &[config_record(
                ConfigResource::broker("1"),
                "log.segment.bytes",
                None,
            )],
        );
        assert!(d.update_from_image(&cluster_again));
        assert_eq!(segment_bytes(&d), 4_000_000);
        let none = apply(
            &cluster_again,
            &[config_record(
                ConfigResource::broker(""),
                "log.segment.bytes",
                None,
            )],
        );
        assert!(d.update_from_image(&none));
        assert_eq!(segment_bytes(&d), 5_000_000);
        assert!(d.static_config().dynamic().cluster_default.is_empty());
    }

    #[test]
    fn the_snapshot_is_rebuilt_only_when_the_broker_configs_change() {
        let d = dynamic_config();
        let image = apply(
            &MetadataImage::new(),
            &[config_record(
                ConfigResource::broker(""),
                "log.retention.ms",
                Some("9000"),
            )],
        );
        assert!(d.update_from_image(&image));
        let before = d.current_config();

        // Topics, topic configs and other brokers' configs leave the snapshot alone.
        let unrelated = apply(
            &image,
            &[
                MetadataRecord::Topic(TopicRecord {
                    name: "t".to_owned(),
                    topic_id: Uuid::from_u128(7),
                    ..Default::default()
                }),
                config_record(ConfigResource::topic("t"), "retention.ms", Some("1")),
                config_record(ConfigResource::broker("2"), "log.retention.ms", Some("1")),
            ],
        );
        assert!(!d.update_from_image(&unrelated));
        assert!(Arc::ptr_eq(&before, &d.current_config()), "same snapshot");

        // An entry this version cannot use is dropped, and does not rebuild every image.
        let unusable = apply(
            &unrelated,
            &[config_record(
                ConfigResource::broker(""),
                "log.retention.hours",
                Some("1"),
            )],
        );
        assert!(d.update_from_image(&unusable));
        let after = d.current_config();
        assert!(!after
            .dynamic()
            .cluster_default
            .contains_key("log.retention.hours"));
        assert_eq!(
            after.log_config().retention_ms,
            9000,
            "the usable cluster default stays in force"
        );
        assert!(!d.update_from_image(&unusable));
        assert!(Arc::ptr_eq(&after, &d.current_config()));
    }

    #[test]
    fn topic_settings_are_the_overrides_over_the_snapshot() {
        let d = dynamic_config();
        let image = apply(
            &MetadataImage::new(),
            &[
                config_record(
                    ConfigResource::broker(""),
                    "log.segment.bytes",
                    Some("4000000"),
                ),
                config_record(ConfigResource::broker(""), "min.insync.replicas", Some("2")),
                config_record(
                    ConfigResource::topic("own"),
                    "segment.bytes",
                    Some("2000000"),
                ),
                config_record(
                    ConfigResource::topic("own"),
                    "min.insync.replicas",
                    Some("3"),
                ),
            ],
        );
        // Before the snapshot takes the image, only the topic's overrides come from it.
        assert_eq!(
            d.topic_settings(&image, "plain").log_config.segment_bytes,
            5_000_000
        );
        assert!(d.update_from_image(&image));
        assert_eq!(
            d.topic_settings(&image, "plain").log_config.segment_bytes,
            4_000_000
        );
        assert_eq!(d.topic_settings(&image, "plain").min_insync_replicas, 2);
        assert_eq!(
            d.topic_settings(&image, "own").log_config.segment_bytes,
            2_000_000
        );
        assert_eq!(d.topic_settings(&image, "own").min_insync_replicas, 3);
        assert_eq!(
            d.topic_settings(&image, "own").log_config.retention_ms,
            7000
        );
    }
}
