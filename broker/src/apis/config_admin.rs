//! The broker's half of AlterConfigs and IncrementalAlterConfigs (Kafka's `ConfigAdminManager`
//! preprocessing): what can be refused here is refused here, the rest is forwarded to the
//! active controller, which commits the `ConfigRecord`s. The two answers are reassembled in
//! request order by the handlers.
//!
//! Refused on the broker, each resource on its own: a resource named twice, a config key named
//! twice, a null value (INVALID_REQUEST, Kafka's messages); a `BROKER` resource naming another
//! broker, or a change that cannot be made dynamically (INVALID_REQUEST, as Kafka — KAFKA-13609);
//! a topic config key or value the log would not accept, checked on the topic's whole resulting
//! set (INVALID_CONFIG with the reason); an unknown operation or resource type. A `GROUP`
//! resource (KIP-848's dynamic group configs) is the controller's to check, as in Kafka. A topic that
//! does not exist (or an invalid name) is left to the controller, which names the error.
//!
//! [`applied`] says whether an image already shows a change, so a handler can answer once this
//! broker acts on it (the live logs take topic configs when the image arrives:
//! `ReplicaManager::apply_image`).

use crate::config::listener_keys::dynamic_listener_ssl_key;
use crate::config::{
    broker_config, topic_config, validate_dynamic_broker_config, validate_topic_configs,
    ConfigType, DynamicBrokerConfigs, KafkaConfig,
};
use rafka_controller::control::config::{list_op as controller_list_op, value_in_force};
use rafka_controller::image::{ConfigResource, MetadataImage};
use rafka_protocol::ErrorCode;
use std::collections::{BTreeMap, BTreeSet};

/// An IncrementalAlterConfigs operation (`AlterConfigOp.OpType`); the legacy API only sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Set,
    Delete,
    Append,
    Subtract,
    Unknown(i8),
}

impl Op {
    pub fn from_code(code: i8) -> Op {
        match code {
            0 => Op::Set,
            1 => Op::Delete,
            2 => Op::Append,
            3 => Op::Subtract,
            other => Op::Unknown(other),
        }
    }
}

/// One requested change.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub name: &'a str,
    pub op: Op,
    pub value: Option<&'a str>,
}

/// One resource of either request. `legacy`: AlterConfigs, whose changes replace the whole set.
#[derive(Debug, Clone)]
pub struct Resource<'a> {
    pub resource_type: i8,
    pub name: &'a str,
    pub changes: Vec<Change<'a>>,
    pub legacy: bool,
}

/// Why a resource was refused here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl Refusal {
    fn invalid_request(message: impl Into<String>) -> Refusal {
        Refusal {
            code: ErrorCode::InvalidRequest,
            message: message.into(),
        }
    }

    fn invalid_config(message: impl Into<String>) -> Refusal {
        Refusal {
            code: ErrorCode::InvalidConfig,
            message: message.into(),
        }
    }
}

/// What AlterConfigs and IncrementalAlterConfigs refuse on this broker, per resource in order:
/// ALTER_CONFIGS on the resource (as Kafka, an unauthorized resource is answered so whatever
/// else is wrong with it), then [`preprocess`]'s checks. `None`: forward it to the controller.
pub fn refusals(
    apis: &super::kafka_apis::KafkaApis,
    ctx: &crate::network::RequestContext,
    image: &std::sync::Arc<MetadataImage>,
    resources: &[Resource<'_>],
) -> Vec<Option<Refusal>> {
    let authz = apis.authorizer_for(ctx, image);
    let config = apis.dynamic_config.current_config();
    preprocess(&config, image, apis.broker_id, resources)
        .into_iter()
        .zip(resources)
        .map(|(refusal, r)| {
            match authz.allows_config(
                rafka_security::authorizer::AclOperation::AlterConfigs,
                r.resource_type,
                r.name,
            ) {
                Err(code) => Some(Refusal {
                    code,
                    message: "Authorization failed.".to_owned(),
                }),
                Ok(()) => refusal,
            }
        })
        .collect()
}

/// For each resource, in order: `Some` if it is answered here, `None` to forward it. `config`
/// is this broker's configuration in force (the image's dynamic broker configs installed:
/// [`DynamicBrokerConfig`](crate::config::dynamic_broker_config::DynamicBrokerConfig)).
pub fn preprocess(
    config: &KafkaConfig,
    image: &MetadataImage,
    broker_id: i32,
    resources: &[Resource<'_>],
) -> Vec<Option<Refusal>> {
    let mut counts: BTreeMap<(i8, &str), usize> = BTreeMap::new();
    for r in resources {
        *counts.entry((r.resource_type, r.name)).or_default() += 1;
    }
    resources
        .iter()
        .map(|r| {
            if counts[&(r.resource_type, r.name)] > 1 {
                return Some(Refusal::invalid_request(
                    "Each resource must appear at most once.",
                ));
            }
            check_resource(config, image, broker_id, r).err()
        })
        .collect()
}

fn check_resource(
    config: &KafkaConfig,
    image: &MetadataImage,
    broker_id: i32,
    r: &Resource<'_>,
) -> Result<(), Refusal> {
    let mut seen = BTreeSet::new();
    if !r.changes.iter().all(|c| seen.insert(c.name)) {
        return Err(Refusal::invalid_request(
            "Error due to duplicate config keys",
        ));
    }
    let nulls: Vec<&str> = r
        .changes
        .iter()
        .filter(|c| c.value.is_none() && (r.legacy || c.op != Op::Delete))
        .map(|c| c.name)
        .collect();
    if !nulls.is_empty() {
        return Err(Refusal::invalid_request(format!(
            "Null value not supported for : {}",
            nulls.join(", ")
        )));
    }
    match r.resource_type {
        ConfigResource::BROKER => check_broker(config, image, broker_id, r),
        ConfigResource::TOPIC => check_topic(image, r),
        // Names, values and the broker's bounds are the controller's to check (Kafka's
        // `ControllerConfigurationValidator`), against its own `group.consumer.*` bounds.
        ConfigResource::GROUP => Ok(()),
        t => Err(Refusal::invalid_request(format!(
            "Unknown resource type {t}"
        ))),
    }
}

/// Kafka's `validateResourceNameIsCurrentNodeId` and `validateBrokerConfigChange`.
fn check_broker(
    config: &KafkaConfig,
    image: &MetadataImage,
    broker_id: i32,
    r: &Resource<'_>,
) -> Result<(), Refusal> {
    let per_broker = !r.name.is_empty();
    if per_broker {
        let id: i32 = r.name.parse().map_err(|_| {
            Refusal::invalid_request(format!("Node id must be an integer, but it is: {}", r.name))
        })?;
        if id != broker_id {
            return Err(Refusal::invalid_request(format!(
                "Unexpected broker id, expected {broker_id}, but received {}",
                r.name
            )));
        }
    }
    let current = current_configs(image, r);
    for c in &r.changes {
        let value = match c.op {
            Op::Delete => continue,
            Op::Unknown(op) => {
                return Err(Refusal::invalid_request(format!(
                    "Unknown operations type {op}"
                )))
            }
            Op::Set => c.value.unwrap_or_default().to_owned(),
            Op::Append | Op::Subtract => {
                let verb = if c.op == Op::Append {
                    "append"
                } else {
                    "subtract"
                };
                match broker_config(c.name) {
                    None => {
                        return Err(Refusal::invalid_config(format!(
                            "Unknown config name: {}",
                            c.name
                        )))
                    }
                    Some(def) if def.ty != ConfigType::List => {
                        return Err(Refusal::invalid_config(format!(
                            "Config value {verb} is not allowed for config key: {}",
                            c.name
                        )))
                    }
                    Some(_) => list_op(image, r, current.get(c.name), c),
                }
            }
        };
        validate_dynamic_broker_config(c.name, Some(&value), per_broker)
            .map_err(Refusal::invalid_request)?;
    }
    check_listener_ssl(config, broker_id, r)
}

/// Kafka's dynamic SSL update, checked before anything is committed: each listener whose
/// keystore or truststore keys change must be a TLS listener of this broker, and its settings
/// after the change must load and be compatible with the ones in force
/// ([`validate_reconfiguration`](rafka_security::tls::validate_reconfiguration)). Refused with
/// INVALID_REQUEST, as Kafka (KAFKA-13609); the listener keeps its certificates. `now` is the
/// configuration in force; the proposed one is a one-off copy with the change installed.
fn check_listener_ssl(now: &KafkaConfig, broker_id: i32, r: &Resource<'_>) -> Result<(), Refusal> {
    let listeners: BTreeSet<String> = r
        .changes
        .iter()
        .filter_map(|c| dynamic_listener_ssl_key(c.name))
        .map(|(l, _)| l.to_ascii_uppercase())
        .collect();
    if listeners.is_empty() {
        return Ok(());
    }
    // AlterConfigs replaces the broker's whole dynamic set; IncrementalAlterConfigs edits it.
    let mut per_broker = if r.legacy {
        BTreeMap::new()
    } else {
        now.dynamic().per_broker.clone()
    };
    for c in &r.changes {
        match (c.op, c.value) {
            (Op::Set, Some(v)) => {
                per_broker.insert(c.name.to_owned(), v.to_owned());
            }
            (Op::Delete, _) => {
                per_broker.remove(c.name);
            }
            _ => {}
        }
    }
    let mut next = now.clone();
    next.set_dynamic(DynamicBrokerConfigs {
        per_broker,
        cluster_default: now.dynamic().cluster_default.clone(),
    });
    for listener in listeners {
        let uses_tls = now
            .listener_security_protocol_map()
            .get(&listener)
            .is_some_and(|p| p.uses_tls());
        if !uses_tls {
            return Err(Refusal::invalid_request(format!(
                "Listener {listener} is not an SSL or SASL_SSL listener of broker {broker_id}"
            )));
        }
        let refuse = |e: rafka_security::tls::TlsError| {
            Refusal::invalid_request(format!(
                "Invalid SSL configuration for listener {listener}: {e}"
            ))
        };
        let current = now.ssl_config(&listener).map_err(refuse)?;
        let proposed = next.ssl_config(&listener).map_err(refuse)?;
        rafka_security::tls::validate_reconfiguration(&current, &proposed).map_err(refuse)?;
    }
    Ok(())
}

/// The topic's configs after the change must all be valid together (Kafka's
/// `ControllerConfigurationValidator` → `LogConfig.validate`). A topic the image does not have
/// is the controller's to refuse.
fn check_topic(image: &MetadataImage, r: &Resource<'_>) -> Result<(), Refusal> {
    if r.name.is_empty()
        || super::create_topics::valid_topic_name(r.name).is_err()
        || image.topic_by_name(r.name).is_none()
    {
        return Ok(());
    }
    let mut next = if r.legacy {
        BTreeMap::new()
    } else {
        current_configs(image, r)
    };
    for c in &r.changes {
        match c.op {
            Op::Set => {
                next.insert(c.name.to_owned(), c.value.unwrap_or_default().to_owned());
            }
            Op::Delete => {
                next.remove(c.name);
            }
            Op::Append | Op::Subtract => {
                if topic_config(c.name).is_some_and(|t| t.key.ty != ConfigType::List) {
                    let verb = if c.op == Op::Append {
                        "APPEND"
                    } else {
                        "SUBTRACT"
                    };
                    return Err(Refusal::invalid_config(format!(
                        "Can't {verb} to key {} because its type is not LIST.",
                        c.name
                    )));
                }
                let v = list_op(image, r, next.get(c.name), c);
                next.insert(c.name.to_owned(), v);
            }
            Op::Unknown(op) => {
                return Err(Refusal::invalid_request(format!(
                    "Unknown config operation {op}"
                )))
            }
        }
    }
    validate_topic_configs(&next).map_err(Refusal::invalid_config)
}

fn current_configs(image: &MetadataImage, r: &Resource<'_>) -> BTreeMap<String, String> {
    image
        .configs()
        .get(&ConfigResource {
            resource_type: r.resource_type,
            name: r.name.to_owned(),
        })
        .cloned()
        .unwrap_or_default()
}

/// APPEND or SUBTRACT on a comma-separated value, as the controller computes it: from the
/// resource's own value, else the value in force (the default, or the cluster-wide dynamic
/// broker config).
fn list_op(
    image: &MetadataImage,
    r: &Resource<'_>,
    current: Option<&String>,
    c: &Change<'_>,
) -> String {
    let start = current.cloned().or_else(|| {
        value_in_force(
            image,
            &ConfigResource {
                resource_type: r.resource_type,
                name: r.name.to_owned(),
            },
            c.name,
        )
    });
    controller_list_op(
        start.as_deref(),
        c.op == Op::Append,
        c.value.unwrap_or_default(),
    )
}

/// The controller's answers to the forwarded resources, by (type, name) — unique among them,
/// since a resource named twice is refused here.
pub type Answers = BTreeMap<(i8, String), (i16, Option<String>)>;

/// REQUEST_TIMED_OUT for every forwarded resource: no controller answered.
pub fn no_answer<'a>(forwarded: impl Iterator<Item = (i8, &'a str)>) -> Answers {
    forwarded
        .map(|(t, n)| {
            (
                (t, n.to_owned()),
                (
                    ErrorCode::RequestTimedOut.code(),
                    Some("no answer from the active controller".to_owned()),
                ),
            )
        })
        .collect()
}

/// Each resource's (error code, message), in request order: refused here, or the controller's
/// answer.
pub fn reassemble(
    resources: &[Resource<'_>],
    refused: Vec<Option<Refusal>>,
    answers: &Answers,
) -> Vec<(i16, Option<String>)> {
    resources
        .iter()
        .zip(refused)
        .map(|(r, refusal)| match refusal {
            Some(Refusal { code, message }) => (code.code(), Some(message)),
            None => answers
                .get(&(r.resource_type, r.name.to_owned()))
                .cloned()
                .unwrap_or((
                    ErrorCode::UnknownServerError.code(),
                    Some("the controller did not answer for this resource".to_owned()),
                )),
        })
        .collect()
}

/// How long an alter waits for this broker's image to show what the controller accepted.
const APPLY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The common end of AlterConfigs and IncrementalAlterConfigs: each resource's outcome in
/// request order ([`reassemble`]), after waiting (bounded) until this broker's image shows every
/// accepted change, so the client's next read sees it.
pub async fn settle(
    apis: &super::kafka_apis::KafkaApis,
    resources: &[Resource<'_>],
    refused: Vec<Option<Refusal>>,
    answers: &Answers,
    validate_only: bool,
) -> Vec<(i16, Option<String>)> {
    let outcomes = reassemble(resources, refused, answers);
    let accepted: Vec<&Resource<'_>> = resources
        .iter()
        .zip(&outcomes)
        .filter(|(_, (code, _))| *code == 0)
        .map(|(r, _)| r)
        .collect();
    if !validate_only && !accepted.is_empty() {
        apis.wait_for_image(APPLY_TIMEOUT, |img| {
            accepted.iter().all(|r| applied(img, r))
        })
        .await;
    }
    outcomes
}

/// Whether `image` shows the change to `r` (for a resource the controller accepted).
pub fn applied(image: &MetadataImage, r: &Resource<'_>) -> bool {
    if !matches!(
        r.resource_type,
        ConfigResource::TOPIC | ConfigResource::BROKER | ConfigResource::GROUP
    ) {
        return true;
    }
    let current = current_configs(image, r);
    let items = |c: &Change<'_>| -> Vec<String> {
        c.value
            .unwrap_or_default()
            .split(',')
            .map(str::to_owned)
            .collect()
    };
    let list = |name: &str| -> Vec<String> {
        current
            .get(name)
            .map(|v| v.split(',').map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let changes_shown = r.changes.iter().all(|c| match c.op {
        Op::Set => current.get(c.name).map(String::as_str) == c.value,
        Op::Delete => !current.contains_key(c.name),
        // Both always leave an override (the controller writes the resulting list).
        Op::Append => {
            let have = list(c.name);
            current.contains_key(c.name) && items(c).iter().all(|i| have.contains(i))
        }
        Op::Subtract => {
            let have = list(c.name);
            current.contains_key(c.name) && items(c).iter().all(|i| !have.contains(i))
        }
        Op::Unknown(_) => true,
    });
    let nothing_else = !r.legacy
        || current
            .keys()
            .all(|k| r.changes.iter().any(|c| c.name == k.as_str()));
    changes_shown && nothing_else
}

#[cfg(test)]
mod tests {
    use super::*;
    use rafka_protocol::messages::{ConfigRecord, MetadataRecord, TopicRecord};
    use rafka_protocol::Uuid;

    fn base() -> KafkaConfig {
        KafkaConfig::load_args(None, &[]).expect("the default configuration")
    }

    fn image() -> MetadataImage {
        let mut image = MetadataImage::new();
        let records = [
            MetadataRecord::Topic(TopicRecord {
                name: "t".to_owned(),
                topic_id: Uuid::from_u128(1),
                ..Default::default()
            }),
            MetadataRecord::Config(ConfigRecord {
                resource_type: ConfigResource::TOPIC,
                resource_name: "t".to_owned(),
                name: "max.compaction.lag.ms".to_owned(),
                value: Some("1000".to_owned()),
                ..Default::default()
            }),
        ];
        for r in &records {
            image.apply(r).expect("record applies");
        }
        image
    }

    fn set<'a>(name: &'a str, value: &'a str) -> Change<'a> {
        Change {
            name,
            op: Op::Set,
            value: Some(value),
        }
    }

    fn topic<'a>(name: &'a str, changes: Vec<Change<'a>>) -> Resource<'a> {
        Resource {
            resource_type: ConfigResource::TOPIC,
            name,
            changes,
            legacy: false,
        }
    }

    fn codes(out: &[Option<Refusal>]) -> Vec<Option<ErrorCode>> {
        out.iter().map(|o| o.as_ref().map(|r| r.code)).collect()
    }

    #[test]
    fn topic_configs_are_validated_here() {
        let img = image();
        let out = preprocess(
            &base(),
            &img,
            1,
            &[
                topic("t", vec![set("retention.ms", "60000")]),
                topic("t2", vec![set("retention.ms", "x")]),
            ],
        );
        // The unknown topic is the controller's to answer.
        assert_eq!(codes(&out), [None, None]);
        let bad = preprocess(
            &base(),
            &img,
            1,
            &[topic("t", vec![set("retention.ms", "soon")])],
        );
        assert_eq!(codes(&bad), [Some(ErrorCode::InvalidConfig)]);
        let msg = &bad[0].as_ref().expect("refused").message;
        assert!(msg.contains("retention.ms"), "{msg}");
        let unknown = preprocess(
            &base(),
            &img,
            1,
            &[topic("t", vec![set("no.such.key", "1")])],
        );
        assert_eq!(codes(&unknown), [Some(ErrorCode::InvalidConfig)]);
        // The whole resulting set: min.compaction.lag.ms above the existing max.
        let cross = preprocess(
            &base(),
            &img,
            1,
            &[topic("t", vec![set("min.compaction.lag.ms", "5000")])],
        );
        assert_eq!(codes(&cross), [Some(ErrorCode::InvalidConfig)]);
        // The legacy API replaces the set: the old max is gone, so this is fine.
        let mut legacy = topic("t", vec![set("min.compaction.lag.ms", "5000")]);
        legacy.legacy = true;
        assert_eq!(codes(&preprocess(&base(), &img, 1, &[legacy])), [None]);
        let append = preprocess(
            &base(),
            &img,
            1,
            &[topic(
                "t",
                vec![Change {
                    name: "retention.ms",
                    op: Op::Append,
                    value: Some("1"),
                }],
            )],
        );
        assert_eq!(codes(&append), [Some(ErrorCode::InvalidConfig)]);
    }

    #[test]
    fn request_shape_errors() {
        let img = image();
        let dup = preprocess(
            &base(),
            &img,
            1,
            &[
                topic("t", vec![set("retention.ms", "1")]),
                topic("t", vec![set("retention.ms", "2")]),
            ],
        );
        assert_eq!(
            codes(&dup),
            [
                Some(ErrorCode::InvalidRequest),
                Some(ErrorCode::InvalidRequest)
            ]
        );
        let dup_keys = preprocess(
            &base(),
            &img,
            1,
            &[topic(
                "t",
                vec![set("retention.ms", "1"), set("retention.ms", "2")],
            )],
        );
        assert_eq!(codes(&dup_keys), [Some(ErrorCode::InvalidRequest)]);
        let null = preprocess(
            &base(),
            &img,
            1,
            &[topic(
                "t",
                vec![Change {
                    name: "retention.ms",
                    op: Op::Set,
                    value: None,
                }],
            )],
        );
        assert_eq!(codes(&null), [Some(ErrorCode::InvalidRequest)]);
        let delete_null = preprocess(
            &base(),
            &img,
            1,
            &[topic(
                "t",
                vec![Change {
                    name: "max.compaction.lag.ms",
                    op: Op::Delete,
                    value: None,
                }],
            )],
        );
        assert_eq!(codes(&delete_null), [None]);
        let logger = preprocess(
            &base(),
            &img,
            1,
            &[Resource {
                resource_type: ConfigResource::BROKER_LOGGER,
                name: "1",
                changes: vec![],
                legacy: false,
            }],
        );
        assert_eq!(codes(&logger), [Some(ErrorCode::InvalidRequest)]);
    }

    #[test]
    fn broker_resources() {
        let img = image();
        let broker = |name, changes| Resource {
            resource_type: ConfigResource::BROKER,
            name,
            changes,
            legacy: false,
        };
        let ok = preprocess(
            &base(),
            &img,
            1,
            &[broker("1", vec![set("log.retention.ms", "1000")])],
        );
        assert_eq!(codes(&ok), [None]);
        let other = preprocess(
            &base(),
            &img,
            1,
            &[broker("2", vec![set("log.retention.ms", "1000")])],
        );
        assert_eq!(codes(&other), [Some(ErrorCode::InvalidRequest)]);
        let read_only = preprocess(&base(), &img, 1, &[broker("", vec![set("node.id", "3")])]);
        assert_eq!(codes(&read_only), [Some(ErrorCode::InvalidRequest)]);
        let bad_value = preprocess(
            &base(),
            &img,
            1,
            &[broker("", vec![set("log.retention.ms", "forever")])],
        );
        assert_eq!(codes(&bad_value), [Some(ErrorCode::InvalidRequest)]);
    }

    #[test]
    fn applied_follows_the_image() {
        let img = image();
        let r = topic(
            "t",
            vec![Change {
                name: "max.compaction.lag.ms",
                op: Op::Delete,
                value: None,
            }],
        );
        assert!(!applied(&img, &r));
        assert!(applied(
            &img,
            &topic("t", vec![set("max.compaction.lag.ms", "1000")])
        ));
        let mut legacy = topic("t", vec![set("retention.ms", "5")]);
        legacy.legacy = true;
        assert!(!applied(&img, &legacy));
    }

    #[test]
    fn a_listener_keystore_that_does_not_load_is_refused() {
        let base = KafkaConfig::load_args(
            None,
            &[
                "listeners=PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9093,CONTROLLER://127.0.0.1:9094"
                    .to_owned(),
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT"
                    .to_owned(),
                "listener.name.ssl.ssl.keystore.type=PEM".to_owned(),
                "listener.name.ssl.ssl.keystore.location=/nonexistent/old.pem".to_owned(),
            ],
        )
        .expect("config");
        let img = image();
        let broker = |name, changes| Resource {
            resource_type: ConfigResource::BROKER,
            name,
            changes,
            legacy: false,
        };
        let key = "listener.name.ssl.ssl.keystore.location";
        for legacy in [false, true] {
            let mut r = broker("1", vec![set(key, "/nonexistent/new.pem")]);
            r.legacy = legacy;
            let out = preprocess(&base, &img, 1, &[r]);
            assert_eq!(codes(&out), [Some(ErrorCode::InvalidRequest)], "{out:?}");
        }
        // Not a TLS listener; not at the cluster level.
        let out = preprocess(
            &base,
            &img,
            1,
            &[broker(
                "1",
                vec![set("listener.name.plaintext.ssl.keystore.location", "/x")],
            )],
        );
        assert_eq!(codes(&out), [Some(ErrorCode::InvalidRequest)]);
        let out = preprocess(&base, &img, 1, &[broker("", vec![set(key, "/x")])]);
        assert_eq!(codes(&out), [Some(ErrorCode::InvalidRequest)]);
    }
}
