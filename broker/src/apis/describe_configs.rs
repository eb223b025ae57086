//! DescribeConfigs: every configuration of a topic or of this broker, as Kafka's `ConfigHelper`
//! lists them — value in force by precedence, source, read-only and sensitive flags, the synonym
//! chain (`include_synonyms`), the type and documentation (v3+, `include_documentation`).
//!
//! The listing itself is [`KafkaConfig`]'s ([`KafkaConfig::describe_topic`],
//! [`KafkaConfig::describe_broker`], [`KafkaConfig::describe_broker_defaults`]); this file picks
//! the resource over this broker's configuration in force (the dynamic broker configs from the
//! image installed: [`DynamicBrokerConfig`](crate::config::dynamic_broker_config::DynamicBrokerConfig)), filters by
//! `configuration_keys` and maps to the wire.
//!
//! Resources: a topic (unknown → UNKNOWN_TOPIC_OR_PARTITION, an invalid name →
//! INVALID_TOPIC_EXCEPTION); a broker named by this node's id, or "" for the cluster-wide
//! dynamic defaults (another id or a name that is not a number → INVALID_REQUEST, as Kafka
//! answers only for itself); a broker logger of this node (rafka has no log4j loggers: an empty
//! list); a group (KIP-848's dynamic group configs, DESCRIBE_CONFIGS on the group; the group
//! need not exist; an empty name → INVALID_REQUEST). Each resource gets its own error.

use super::kafka_apis::KafkaApis;
use crate::config::{DescribedConfig, KafkaConfig};
use crate::network::RequestContext;
use rafka_controller::image::{ConfigResource, MetadataImage};
use rafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use rafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use rafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::AclOperation;

pub fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    version: i16,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let image = apis.image();
    let authz = apis.authorizer_for(ctx, &image);
    let config = apis.dynamic_config.current_config();
    let options = Options {
        include_synonyms: req.include_synonyms,
        include_documentation: version >= 3 && req.include_documentation,
    };
    let results = req
        .resources
        .iter()
        .map(|r| {
            // DESCRIBE_CONFIGS on the resource (topic, or the cluster for a broker).
            let described = authz
                .allows_config(
                    AclOperation::DescribeConfigs,
                    r.resource_type,
                    &r.resource_name,
                )
                .map_err(|code| (code, Some("Authorization failed.".to_owned())))
                .and_then(|()| describe(&config, &image, apis.broker_id, r));
            let (error_code, error_message, configs) = match described {
                Ok(configs) => (
                    0,
                    None,
                    configs
                        .into_iter()
                        .filter(|c| wanted(r, &c.name))
                        .map(|c| to_wire(c, options))
                        .collect(),
                ),
                Err((code, message)) => (code.code(), message, Vec::new()),
            };
            DescribeConfigsResult {
                error_code,
                error_message,
                resource_type: r.resource_type,
                resource_name: r.resource_name.clone(),
                configs,
                ..Default::default()
            }
        })
        .collect();
    DescribeConfigsResponse {
        results,
        ..Default::default()
    }
}

#[derive(Debug, Clone, Copy)]
struct Options {
    include_synonyms: bool,
    include_documentation: bool,
}

type Failure = (ErrorCode, Option<String>);

fn invalid_request(message: String) -> Failure {
    (ErrorCode::InvalidRequest, Some(message))
}

/// Every configuration of one resource, unfiltered.
fn describe(
    config: &KafkaConfig,
    image: &MetadataImage,
    broker_id: i32,
    r: &DescribeConfigsResource,
) -> Result<Vec<DescribedConfig>, Failure> {
    let name = r.resource_name.as_str();
    match r.resource_type {
        ConfigResource::TOPIC => {
            super::create_topics::valid_topic_name(name)
                .map_err(|m| (ErrorCode::InvalidTopicException, Some(m)))?;
            if image.topic_by_name(name).is_none() {
                return Err((ErrorCode::UnknownTopicOrPartition, None));
            }
            let overrides = image
                .configs()
                .get(&ConfigResource::topic(name))
                .cloned()
                .unwrap_or_default();
            Ok(config.describe_topic(&overrides))
        }
        ConfigResource::BROKER if name.is_empty() => Ok(config.describe_broker_defaults()),
        ConfigResource::BROKER => {
            let id = parse_broker_id(name)?;
            if id != broker_id {
                return Err(invalid_request(format!(
                    "Unexpected broker id, expected {broker_id} or empty string, but received {name}"
                )));
            }
            Ok(config.describe_broker(&Default::default()))
        }
        ConfigResource::BROKER_LOGGER => {
            if name.is_empty() {
                return Err(invalid_request("Broker id must not be empty".to_owned()));
            }
            let id = parse_broker_id(name)?;
            if id != broker_id {
                return Err(invalid_request(format!(
                    "Unexpected broker id, expected {broker_id} but received {name}"
                )));
            }
            // Log levels come from RUST_LOG: there are no log4j loggers to list.
            Ok(Vec::new())
        }
        ConfigResource::GROUP => {
            // A group need not exist to have (or show) configs, as Kafka.
            if name.is_empty() {
                return Err(invalid_request("Group name must not be empty".to_owned()));
            }
            let overrides = image
                .configs()
                .get(&ConfigResource::group(name))
                .cloned()
                .unwrap_or_default();
            Ok(config.describe_group(&overrides))
        }
        t => Err(invalid_request(format!("Unsupported resource type: {t}"))),
    }
}

fn parse_broker_id(name: &str) -> Result<i32, Failure> {
    name.parse::<i32>()
        .map_err(|_| invalid_request(format!("Broker id must be an integer, but it is: {name}")))
}

/// `configuration_keys`: null or empty means every key.
fn wanted(r: &DescribeConfigsResource, name: &str) -> bool {
    match &r.configuration_keys {
        Some(keys) if !keys.is_empty() => keys.iter().any(|k| k == name),
        _ => true,
    }
}

fn to_wire(c: DescribedConfig, options: Options) -> DescribeConfigsResourceResult {
    DescribeConfigsResourceResult {
        name: c.name,
        value: c.value,
        read_only: c.read_only,
        config_source: c.source.code(),
        is_sensitive: c.is_sensitive,
        synonyms: if options.include_synonyms {
            c.synonyms
                .into_iter()
                .map(|s| DescribeConfigsSynonym {
                    name: s.name,
                    value: s.value,
                    source: s.source.code(),
                    ..Default::default()
                })
                .collect()
        } else {
            Vec::new()
        },
        config_type: c.config_type.code(),
        documentation: if options.include_documentation {
            c.documentation
        } else {
            None
        },
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigSource;
    use rafka_protocol::messages::{ConfigRecord, MetadataRecord, TopicRecord};
    use rafka_protocol::Uuid;

    fn config_record(resource: ConfigResource, name: &str, value: &str) -> MetadataRecord {
        MetadataRecord::Config(ConfigRecord {
            resource_type: resource.resource_type,
            resource_name: resource.name,
            name: name.to_owned(),
            value: Some(value.to_owned()),
            ..Default::default()
        })
    }

    fn image(records: &[MetadataRecord]) -> MetadataImage {
        let mut image = MetadataImage::new();
        image
            .apply(&MetadataRecord::Topic(TopicRecord {
                name: "t".to_owned(),
                topic_id: Uuid::from_u128(7),
                ..Default::default()
            }))
            .expect("topic record");
        for r in records {
            image.apply(r).expect("record");
        }
        image
    }

    fn base() -> KafkaConfig {
        let mut props = crate::config::single_node_props();
        props.insert("log.retention.hours".to_owned(), "24".to_owned());
        KafkaConfig::from_props(props).expect("valid config")
    }

    /// `base()` with `img`'s dynamic broker configs installed, as the broker holds it.
    fn in_force(img: &MetadataImage) -> std::sync::Arc<KafkaConfig> {
        let d = crate::config::dynamic_broker_config::DynamicBrokerConfig::new(
            std::sync::Arc::new(base()),
            1,
        );
        d.update_from_image(img);
        d.current_config()
    }

    fn resource(ty: i8, name: &str, keys: Option<Vec<&str>>) -> DescribeConfigsResource {
        DescribeConfigsResource {
            resource_type: ty,
            resource_name: name.to_owned(),
            configuration_keys: keys.map(|k| k.into_iter().map(str::to_owned).collect()),
            ..Default::default()
        }
    }

    fn find<'a>(configs: &'a [DescribedConfig], name: &str) -> &'a DescribedConfig {
        configs
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("{name} is listed"))
    }

    #[test]
    fn topic_values_follow_precedence() {
        let img = image(&[
            config_record(ConfigResource::topic("t"), "segment.bytes", "2097152"),
            config_record(ConfigResource::broker(""), "log.retention.ms", "5000"),
        ]);
        let config = in_force(&img);
        let configs = describe(
            &config,
            &img,
            1,
            &resource(ConfigResource::TOPIC, "t", None),
        )
        .expect("topic described");
        // Every topic config is listed, not only the overridden ones.
        assert!(configs.len() > 20, "{} configs", configs.len());
        let seg = find(&configs, "segment.bytes");
        assert_eq!(seg.value.as_deref(), Some("2097152"));
        assert_eq!(seg.source, ConfigSource::DynamicTopicConfig);
        // The cluster-wide dynamic default beats the static log.retention.hours.
        let ret = find(&configs, "retention.ms");
        assert_eq!(ret.value.as_deref(), Some("5000"));
        assert_eq!(ret.source, ConfigSource::DynamicDefaultBrokerConfig);
        let chain: Vec<(&str, ConfigSource)> = ret
            .synonyms
            .iter()
            .map(|s| (s.name.as_str(), s.source))
            .collect();
        assert_eq!(
            chain,
            [
                ("log.retention.ms", ConfigSource::DynamicDefaultBrokerConfig),
                ("log.retention.hours", ConfigSource::StaticBrokerConfig),
                ("log.retention.hours", ConfigSource::DefaultConfig),
            ]
        );
        // A default nobody set.
        let idx = find(&configs, "index.interval.bytes");
        assert_eq!(idx.source, ConfigSource::DefaultConfig);
        assert_eq!(idx.value.as_deref(), Some("4096"));
    }

    #[test]
    fn group_values_follow_precedence() {
        let img = image(&[config_record(
            ConfigResource::group("g"),
            "consumer.session.timeout.ms",
            "50000",
        )]);
        let mut props = crate::config::single_node_props();
        props.insert(
            "group.consumer.heartbeat.interval.ms".to_owned(),
            "6000".to_owned(),
        );
        let config = KafkaConfig::from_props(props).expect("valid config");
        let configs = describe(
            &config,
            &img,
            1,
            &resource(ConfigResource::GROUP, "g", None),
        )
        .expect("group described");
        assert_eq!(configs.len(), 6);
        let s = find(&configs, "consumer.session.timeout.ms");
        assert_eq!(s.value.as_deref(), Some("50000"));
        assert_eq!(s.source, ConfigSource::GroupConfig);
        let chain: Vec<(&str, ConfigSource)> = s
            .synonyms
            .iter()
            .map(|s| (s.name.as_str(), s.source))
            .collect();
        assert_eq!(
            chain,
            [
                ("consumer.session.timeout.ms", ConfigSource::GroupConfig),
                (
                    "group.consumer.session.timeout.ms",
                    ConfigSource::DefaultConfig
                ),
            ]
        );
        // The broker key it defaults from, as set in the file.
        let h = find(&configs, "consumer.heartbeat.interval.ms");
        assert_eq!(h.value.as_deref(), Some("6000"));
        assert_eq!(h.source, ConfigSource::StaticBrokerConfig);
        // No broker key: the group config's own default.
        let r = find(&configs, "share.auto.offset.reset");
        assert_eq!(r.value.as_deref(), Some("latest"));
        assert_eq!(r.source, ConfigSource::DefaultConfig);
        // Any group, existing or not; but not the empty name.
        assert!(describe(
            &config,
            &img,
            1,
            &resource(ConfigResource::GROUP, "nope", None)
        )
        .is_ok());
        let empty = describe(&config, &img, 1, &resource(ConfigResource::GROUP, "", None));
        assert_eq!(empty.err().map(|e| e.0), Some(ErrorCode::InvalidRequest));
    }

    #[test]
    fn static_broker_synonym_without_dynamic_config() {
        let img = image(&[]);
        let config = in_force(&img);
        let configs = describe(
            &config,
            &img,
            1,
            &resource(ConfigResource::TOPIC, "t", None),
        )
        .expect("topic described");
        let ret = find(&configs, "retention.ms");
        assert_eq!(ret.value.as_deref(), Some("86400000"));
        assert_eq!(ret.source, ConfigSource::StaticBrokerConfig);
    }

    #[test]
    fn broker_resources() {
        let img = image(&[
            config_record(ConfigResource::broker("1"), "log.retention.ms", "1000"),
            config_record(ConfigResource::broker(""), "min.insync.replicas", "2"),
        ]);
        let config = in_force(&img);
        let own = describe(
            &config,
            &img,
            1,
            &resource(ConfigResource::BROKER, "1", None),
        )
        .expect("own broker");
        assert!(own.len() > 100, "{} broker configs", own.len());
        let r = find(&own, "log.retention.ms");
        assert_eq!(r.value.as_deref(), Some("1000"));
        assert_eq!(r.source, ConfigSource::DynamicBrokerConfig);
        let n = find(&own, "min.insync.replicas");
        assert_eq!(n.value.as_deref(), Some("2"));
        assert_eq!(n.source, ConfigSource::DynamicDefaultBrokerConfig);
        let defaults = describe(
            &config,
            &img,
            1,
            &resource(ConfigResource::BROKER, "", None),
        )
        .expect("cluster defaults");
        let names: Vec<&str> = defaults.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["min.insync.replicas"]);
        let other = describe(
            &config,
            &img,
            1,
            &resource(ConfigResource::BROKER, "2", None),
        );
        assert_eq!(other.err().map(|e| e.0), Some(ErrorCode::InvalidRequest));
        let junk = describe(
            &config,
            &img,
            1,
            &resource(ConfigResource::BROKER, "x", None),
        );
        assert_eq!(junk.err().map(|e| e.0), Some(ErrorCode::InvalidRequest));
    }

    #[test]
    fn topic_errors() {
        let img = image(&[]);
        let config = in_force(&img);
        let unknown = describe(
            &config,
            &img,
            1,
            &resource(ConfigResource::TOPIC, "nope", None),
        );
        assert_eq!(
            unknown.err().map(|e| e.0),
            Some(ErrorCode::UnknownTopicOrPartition)
        );
        let invalid = describe(
            &config,
            &img,
            1,
            &resource(ConfigResource::TOPIC, "a/b", None),
        );
        assert_eq!(
            invalid.err().map(|e| e.0),
            Some(ErrorCode::InvalidTopicException)
        );
        let weird = describe(&config, &img, 1, &resource(3, "x", None));
        assert_eq!(weird.err().map(|e| e.0), Some(ErrorCode::InvalidRequest));
    }

    #[test]
    fn keys_filter_synonyms_and_documentation() {
        let r = resource(ConfigResource::TOPIC, "t", Some(vec!["retention.ms"]));
        assert!(wanted(&r, "retention.ms"));
        assert!(!wanted(&r, "segment.bytes"));
        let all = resource(ConfigResource::TOPIC, "t", Some(vec![]));
        assert!(wanted(&all, "segment.bytes"));

        let img = image(&[]);
        let config = in_force(&img);
        let configs = describe(&config, &img, 1, &r).expect("topic described");
        let ret = find(&configs, "retention.ms").clone();
        let bare = to_wire(
            ret.clone(),
            Options {
                include_synonyms: false,
                include_documentation: false,
            },
        );
        assert!(bare.synonyms.is_empty());
        assert_eq!(bare.documentation, None);
        assert_eq!(bare.config_source, ConfigSource::StaticBrokerConfig.code());
        assert_eq!(bare.config_type, 5); // LONG
        let full = to_wire(
            ret,
            Options {
                include_synonyms: true,
                include_documentation: true,
            },
        );
        assert_eq!(full.synonyms[0].name, "log.retention.hours");
        assert!(full.documentation.is_some());
    }
}
