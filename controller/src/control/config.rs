//! Kafka's `ConfigurationControlManager` (with the checks of `ConfigAdminManager` and
//! `ControllerConfigurationValidator`): IncrementalAlterConfigs (API 44), AlterConfigs (API 33)
//! and topic configs given at creation, for topics and brokers; and the config lookups the
//! other managers need.
//!
//! Topic config names must be Kafka's (`TopicConfig`) and their values pass Kafka 4.0's
//! `LogConfig` definitions — the one table in [`topic_defs`], which the broker reads too;
//! broker configs may be any name, and the broker keys in the table below are type-checked as
//! Kafka's `ConfigDef` parses them (numbers must parse and be in range, booleans are
//! true/false, enumerations from their list): INVALID_CONFIG otherwise. APPEND and SUBTRACT
//! apply to list-typed keys only, and start from the value in force when the resource has no
//! override ([`value_in_force`]): APPEND `compact` to a topic's default `delete` gives
//! `delete,compact`, as Kafka.
//! Broker configs generate a record even when the value is unchanged (KAFKA-14136: brokers
//! reload on it).
//!
//! Group configs (resource type 32, KIP-848's dynamic group configs) must be Kafka's
//! `GroupConfig` keys, and a group's resulting set of overrides must stay within this
//! controller's `group.consumer.min/max.*` bounds ([`group_defs::validate_group_configs`]), as
//! Kafka's `ControllerConfigurationValidator` checks them: INVALID_CONFIG otherwise. A group
//! need not exist to have configs; at most [`MAX_GROUPS_WITH_CONFIGS`] groups have them (a
//! rafka bound; INVALID_REQUEST beyond).

use super::api_error::ApiError;
use super::controller_result::ControllerResult;
use super::topic_name::validate_topic_name;
use crate::image::{ConfigResource, MetadataImage};
use group_defs::GroupConfigBounds;
use rafka_protocol::messages::{
    alter_configs_response as acr, create_topics_request::CreatableTopicConfig,
    incremental_alter_configs_response as iacr, AlterConfigsRequest, AlterConfigsResponse,
    ConfigRecord, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, MetadataRecord,
};
use rafka_protocol::ErrorCode;
use std::collections::{BTreeMap, BTreeSet};

pub mod def;
pub mod group_defs;
pub mod topic_defs;

/// The most groups that may have configs at once (rafka's bound: any group name may get
/// configs, existing or not, and each is kept in every node's metadata image).
pub const MAX_GROUPS_WITH_CONFIGS: usize = 100_000;

/// `unclean.leader.election.enable`.
pub const UNCLEAN_LEADER_ELECTION_ENABLE: &str = "unclean.leader.election.enable";

/// A config value's type (Kafka's `ConfigDef.Type` with its validator).
#[derive(Debug, Clone, Copy)]
enum Kind {
    Int {
        min: i64,
    },
    Long {
        min: i64,
    },
    Bool,
    /// Comma-separated; each item from the list, if it is not empty.
    List(&'static [&'static str]),
    /// One of the list, if it is not empty.
    Str(&'static [&'static str]),
}

const COMPRESSION: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
const CLEANUP: &[&str] = &["delete", "compact"];

/// Broker keys whose values are checked; other broker keys pass as strings.
const BROKER_CONFIGS: &[(&str, Kind)] = &[
    ("auto.create.topics.enable", Kind::Bool),
    ("compression.type", Kind::Str(COMPRESSION)),
    ("default.replication.factor", Kind::Int { min: 1 }),
    ("log.cleanup.policy", Kind::List(CLEANUP)),
    ("log.flush.interval.messages", Kind::Long { min: 1 }),
    ("log.flush.interval.ms", Kind::Long { min: i64::MIN }),
    ("log.retention.bytes", Kind::Long { min: i64::MIN }),
    ("log.retention.ms", Kind::Long { min: i64::MIN }),
    ("log.roll.ms", Kind::Long { min: 1 }),
    (
        "log.segment.bytes",
        Kind::Int {
            min: topic_defs::MIN_SEGMENT_BYTES,
        },
    ),
    ("message.max.bytes", Kind::Int { min: 0 }),
    ("min.insync.replicas", Kind::Int { min: 1 }),
    ("num.partitions", Kind::Int { min: 1 }),
    ("replica.lag.time.max.ms", Kind::Long { min: 0 }),
    (UNCLEAN_LEADER_ELECTION_ENABLE, Kind::Bool),
    ("leader.replication.throttled.rate", Kind::Long { min: 0 }),
    ("follower.replication.throttled.rate", Kind::Long { min: 0 }),
];

/// A broker key's checked type, if it has one.
fn broker_kind(key: &str) -> Option<Kind> {
    BROKER_CONFIGS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, kind)| *kind)
}

/// Whether `key` of a resource of `resource_type` holds a list (APPEND and SUBTRACT apply).
fn is_list(resource_type: i8, key: &str) -> bool {
    if resource_type == ConfigResource::TOPIC {
        topic_defs::topic_config(key).is_some_and(|t| t.key.ty == def::ConfigType::List)
    } else {
        matches!(broker_kind(key), Some(Kind::List(_)))
    }
}

/// Kafka's `ConfigDef.parseType` plus the key's validator (values are trimmed first).
fn validate_value(key: &str, kind: Kind, value: &str) -> Result<(), String> {
    let v = value.trim();
    let bad = |what: &str| {
        Err(format!(
            "Invalid value {value} for configuration {key}: {what}"
        ))
    };
    match kind {
        Kind::Int { min } => match v.parse::<i32>() {
            Ok(n) if i64::from(n) >= min => Ok(()),
            Ok(_) => bad(&format!("Value must be at least {min}")),
            Err(_) => bad("Not a number of type INT"),
        },
        Kind::Long { min } => match v.parse::<i64>() {
            Ok(n) if n >= min => Ok(()),
            Ok(_) => bad(&format!("Value must be at least {min}")),
            Err(_) => bad("Not a number of type LONG"),
        },
        Kind::Bool if v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false") => Ok(()),
        Kind::Bool => bad("Expected value to be either true or false"),
        Kind::List(_) if v.is_empty() => Ok(()),
        Kind::List(allowed) => match v
            .split(',')
            .map(str::trim)
            .find(|i| !allowed.is_empty() && !allowed.contains(i))
        {
            Some(item) => bad(&format!(
                "String must be one of: {} (not {item})",
                allowed.join(", ")
            )),
            None => Ok(()),
        },
        Kind::Str(allowed) if allowed.is_empty() || allowed.contains(&v) => Ok(()),
        Kind::Str(allowed) => bad(&format!("String must be one of: {}", allowed.join(", "))),
    }
}

/// Checks a value about to be set for `resource`: a topic's by the topic config table (the one
/// rule the broker applies too), a broker's by the keys above.
fn validate_setting(resource: &ConfigResource, key: &str, value: &str) -> Result<(), ApiError> {
    let invalid = |m: String| Err(ApiError::new(ErrorCode::InvalidConfig, m));
    if resource.resource_type == ConfigResource::TOPIC {
        return topic_defs::validate_topic_config(key, value).or_else(invalid);
    }
    if resource.resource_type == ConfigResource::GROUP {
        // Names and types here; the bounds on the resulting set in `validate_resulting`.
        return group_defs::validate_group_config(key, value)
            .map(|_| ())
            .or_else(invalid);
    }
    match broker_kind(key) {
        Some(kind) => validate_value(key, kind, value).or_else(invalid),
        None => Ok(()),
    }
}

/// Checks a topic's resulting set of overrides as a whole (`min.compaction.lag.ms` <=
/// `max.compaction.lag.ms`), and a group's against the broker bounds (`GroupConfig.validate`);
/// other resources pass.
fn validate_resulting(
    resource: &ConfigResource,
    configs: &BTreeMap<String, String>,
    bounds: &GroupConfigBounds,
) -> Result<(), ApiError> {
    let pairs = configs.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    match resource.resource_type {
        ConfigResource::TOPIC => topic_defs::validate_topic_configs(pairs),
        ConfigResource::GROUP => group_defs::validate_group_configs(pairs, bounds),
        _ => Ok(()),
    }
    .map_err(|m| ApiError::new(ErrorCode::InvalidConfig, m))
}

/// The overrides `resource` has in `image`.
fn current_configs(image: &MetadataImage, resource: &ConfigResource) -> BTreeMap<String, String> {
    image.configs().get(resource).cloned().unwrap_or_default()
}

/// The resource a request names, if it is one configs may be set on.
fn check_resource(
    image: &MetadataImage,
    resource_type: i8,
    name: &str,
) -> Result<ConfigResource, ApiError> {
    match resource_type {
        ConfigResource::TOPIC => {
            if name.is_empty() {
                return Err(ApiError::new(
                    ErrorCode::InvalidRequest,
                    "Default topic resources are not allowed.",
                ));
            }
            validate_topic_name(name)?;
            if image.topic_by_name(name).is_none() {
                return Err(ApiError::new(
                    ErrorCode::UnknownTopicOrPartition,
                    format!("The topic '{name}' does not exist."),
                ));
            }
            Ok(ConfigResource::topic(name))
        }
        ConfigResource::BROKER => {
            if !name.is_empty() && name.parse::<i32>().map_or(true, |id| id < 0) {
                return Err(ApiError::new(
                    ErrorCode::InvalidRequest,
                    "Unable to parse broker name as a non-negative base 10 number.",
                ));
            }
            Ok(ConfigResource::broker(name))
        }
        ConfigResource::GROUP => {
            if name.is_empty() {
                return Err(ApiError::new(
                    ErrorCode::InvalidRequest,
                    "Default group resources are not allowed.",
                ));
            }
            let resource = ConfigResource::group(name);
            // Any name may get configs (the group need not exist), so their number is bounded.
            if image.configs().get(&resource).is_none()
                && image
                    .configs()
                    .iter()
                    .filter(|(r, _)| r.resource_type == ConfigResource::GROUP)
                    .count()
                    >= MAX_GROUPS_WITH_CONFIGS
            {
                return Err(ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("At most {MAX_GROUPS_WITH_CONFIGS} groups may have configs."),
                ));
            }
            Ok(resource)
        }
        t => Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("Unsupported resource type {t} for the controller."),
        )),
    }
}

fn record(resource: &ConfigResource, key: &str, value: Option<String>) -> MetadataRecord {
    MetadataRecord::Config(ConfigRecord {
        resource_type: resource.resource_type,
        resource_name: resource.name.clone(),
        name: key.to_string(),
        value,
        ..Default::default()
    })
}

fn check_keys<'a>(keys: impl Iterator<Item = (&'a str, bool)>) -> Result<(), ApiError> {
    let mut seen = BTreeSet::new();
    let mut nulls = Vec::new();
    for (key, null_value) in keys {
        if !seen.insert(key) {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "Error due to duplicate config keys",
            ));
        }
        if null_value {
            nulls.push(key);
        }
    }
    if !nulls.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("Null value not supported for : {}", nulls.join(", ")),
        ));
    }
    Ok(())
}

/// The value `key` has for `resource` when the resource has no override of its own: where
/// APPEND and SUBTRACT start (Kafka's `ConfigurationControlManager.getParts` starts from the
/// key's default; rafka starts from the value in force, which is that default unless the
/// cluster-wide dynamic broker config sets it). A topic key: the cluster-wide value of its
/// broker synonyms, in their order, else the topic default; a per-broker key: its cluster-wide
/// value, else the default of the topic key it is the synonym of. `None`: no value.
pub fn value_in_force(
    image: &MetadataImage,
    resource: &ConfigResource,
    key: &str,
) -> Option<String> {
    let cluster = ConfigResource::broker("");
    if resource.resource_type == ConfigResource::TOPIC {
        let def = topic_defs::topic_config(key)?;
        return def
            .synonyms
            .iter()
            .find_map(|(name, conv)| image.config(&cluster, name).map(|v| conv.apply(v)))
            .or_else(|| def.key.default.map(str::to_string));
    }
    if !resource.name.is_empty() {
        if let Some(v) = image.config(&cluster, key) {
            return Some(v.to_string());
        }
    }
    topic_defs::TOPIC_CONFIGS
        .iter()
        .find(|t| t.synonyms.contains(&(key, def::Conversion::Same)))
        .and_then(|t| t.key.default.map(str::to_string))
}

/// APPEND (`append`) or SUBTRACT the comma-separated `items` to or from the list `start`
/// (Kafka's semantics: APPEND adds the items not yet present, in order; SUBTRACT removes every
/// occurrence; empty items are dropped). The result may be empty: Kafka accepts an empty list
/// (for `cleanup.policy`, neither delete nor compact: the log is kept whole).
pub fn list_op(start: Option<&str>, append: bool, items: &str) -> String {
    let mut parts: Vec<&str> = start
        .map(|v| v.split(',').filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    for item in items.split(',') {
        if append && !item.is_empty() && !parts.contains(&item) {
            parts.push(item);
        } else if !append {
            parts.retain(|p| *p != item);
        }
    }
    parts.join(",")
}

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

fn incremental_resource(
    image: &MetadataImage,
    bounds: &GroupConfigBounds,
    r: &rafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource,
) -> Result<Vec<MetadataRecord>, ApiError> {
    let resource = check_resource(image, r.resource_type, &r.resource_name)?;
    check_keys(r.configs.iter().map(|c| {
        (
            c.name.as_str(),
            c.config_operation != DELETE && c.value.is_none(),
        )
    }))?;
    let mut records = Vec::new();
    let mut resulting = current_configs(image, &resource);
    for c in &r.configs {
        let current = image.config(&resource, &c.name).map(str::to_string);
        let new = match c.config_operation {
            SET => c.value.clone(),
            DELETE => None,
            op @ (APPEND | SUBTRACT) => {
                if !is_list(resource.resource_type, &c.name) {
                    let verb = if op == APPEND { "APPEND" } else { "SUBTRACT" };
                    return Err(ApiError::new(
                        ErrorCode::InvalidConfig,
                        format!(
                            "Can't {verb} to key {} because its type is not LIST.",
                            c.name
                        ),
                    ));
                }
                let start = current
                    .clone()
                    .or_else(|| value_in_force(image, &resource, &c.name));
                Some(list_op(
                    start.as_deref(),
                    op == APPEND,
                    c.value.as_deref().unwrap_or_default(),
                ))
            }
            op => {
                return Err(ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("Unknown config operation {op}"),
                ))
            }
        };
        match &new {
            Some(v) => {
                validate_setting(&resource, &c.name, v)?;
                resulting.insert(c.name.clone(), v.clone());
            }
            None => {
                resulting.remove(&c.name);
            }
        }
        if new != current || resource.resource_type == ConfigResource::BROKER {
            records.push(record(&resource, &c.name, new));
        }
    }
    validate_resulting(&resource, &resulting, bounds)?;
    Ok(records)
}

/// Resources named more than once in a request (INVALID_REQUEST for each, as Kafka).
fn duplicated<'a>(resources: impl Iterator<Item = (i8, &'a str)>) -> BTreeSet<(i8, &'a str)> {
    let mut counts: BTreeMap<(i8, &str), usize> = BTreeMap::new();
    for r in resources {
        *counts.entry(r).or_default() += 1;
    }
    counts
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(r, _)| r)
        .collect()
}

fn duplicate_resource() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidRequest,
        "Each resource must appear at most once.",
    )
}

/// IncrementalAlterConfigs: SET, DELETE, APPEND, SUBTRACT per key; each resource all or nothing.
pub fn incremental_alter_configs(
    image: &MetadataImage,
    bounds: &GroupConfigBounds,
    request: &IncrementalAlterConfigsRequest,
) -> ControllerResult<IncrementalAlterConfigsResponse> {
    let dups = duplicated(
        request
            .resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.as_str())),
    );
    let mut records = Vec::new();
    let mut response = IncrementalAlterConfigsResponse::default();
    for r in &request.resources {
        let outcome = if dups.contains(&(r.resource_type, r.resource_name.as_str())) {
            Err(duplicate_resource())
        } else {
            incremental_resource(image, bounds, r)
        };
        let (error_code, error_message) = match outcome {
            Ok(rs) => {
                records.extend(rs);
                (0, None)
            }
            Err(e) => (e.code.code(), e.message),
        };
        response.responses.push(iacr::AlterConfigsResourceResponse {
            error_code,
            error_message,
            resource_type: r.resource_type,
            resource_name: r.resource_name.clone(),
            ..Default::default()
        });
    }
    if request.validate_only {
        records.clear();
    }
    ControllerResult::new(records, response)
}

fn legacy_resource(
    image: &MetadataImage,
    bounds: &GroupConfigBounds,
    r: &rafka_protocol::messages::alter_configs_request::AlterConfigsResource,
) -> Result<Vec<MetadataRecord>, ApiError> {
    let resource = check_resource(image, r.resource_type, &r.resource_name)?;
    check_keys(
        r.configs
            .iter()
            .map(|c| (c.name.as_str(), c.value.is_none())),
    )?;
    let mut records = Vec::new();
    let mut named = BTreeSet::new();
    for c in &r.configs {
        named.insert(c.name.as_str());
        let value = c.value.clone().unwrap_or_default();
        validate_setting(&resource, &c.name, &value)?;
        if image.config(&resource, &c.name) != Some(value.as_str())
            || resource.resource_type == ConfigResource::BROKER
        {
            records.push(record(&resource, &c.name, Some(value)));
        }
    }
    let resulting: BTreeMap<String, String> = r
        .configs
        .iter()
        .map(|c| (c.name.clone(), c.value.clone().unwrap_or_default()))
        .collect();
    validate_resulting(&resource, &resulting, bounds)?;
    // The legacy API replaces the whole set: keys not named are deleted.
    if let Some(current) = image.configs().get(&resource) {
        for key in current.keys().filter(|k| !named.contains(k.as_str())) {
            records.push(record(&resource, key, None));
        }
    }
    Ok(records)
}

/// AlterConfigs (the legacy API): each resource's configs are replaced by the request's.
pub fn alter_configs(
    image: &MetadataImage,
    bounds: &GroupConfigBounds,
    request: &AlterConfigsRequest,
) -> ControllerResult<AlterConfigsResponse> {
    let dups = duplicated(
        request
            .resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.as_str())),
    );
    let mut records = Vec::new();
    let mut response = AlterConfigsResponse::default();
    for r in &request.resources {
        let outcome = if dups.contains(&(r.resource_type, r.resource_name.as_str())) {
            Err(duplicate_resource())
        } else {
            legacy_resource(image, bounds, r)
        };
        let (error_code, error_message) = match outcome {
            Ok(rs) => {
                records.extend(rs);
                (0, None)
            }
            Err(e) => (e.code.code(), e.message),
        };
        response.responses.push(acr::AlterConfigsResourceResponse {
            error_code,
            error_message,
            resource_type: r.resource_type,
            resource_name: r.resource_name.clone(),
            ..Default::default()
        });
    }
    if request.validate_only {
        records.clear();
    }
    ControllerResult::new(records, response)
}

/// The `ConfigRecord`s for a topic being created with `configs`.
pub fn creation_config_records(
    topic: &str,
    configs: &[CreatableTopicConfig],
) -> Result<Vec<MetadataRecord>, ApiError> {
    let mut seen = BTreeSet::new();
    let resource = ConfigResource::topic(topic);
    let mut records = Vec::with_capacity(configs.len());
    for c in configs {
        if !seen.insert(c.name.as_str()) {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("Duplicate config key {}", c.name),
            ));
        }
        let Some(value) = &c.value else {
            return Err(ApiError::new(
                ErrorCode::InvalidConfig,
                format!("Null value not supported for topic configs: {}", c.name),
            ));
        };
        validate_setting(&resource, &c.name, value)?;
        records.push(record(&resource, &c.name, Some(value.clone())));
    }
    topic_defs::validate_topic_configs(
        configs
            .iter()
            .filter_map(|c| Some((c.name.as_str(), c.value.as_deref()?))),
    )
    .map_err(|m| ApiError::new(ErrorCode::InvalidConfig, m))?;
    Ok(records)
}

/// Whether leaders of `topic` may be elected outside the ISR: the topic's config, else the
/// cluster-wide dynamic broker config, else the static one (Kafka's
/// `uncleanLeaderElectionEnabledForTopic`; a value other than "true" is false, as Java's
/// `Boolean.parseBoolean`). `static_default` is `unclean.leader.election.enable` from the
/// controller's own configuration.
pub fn unclean_leader_election_enabled(
    image: &MetadataImage,
    static_default: bool,
    topic: &str,
) -> bool {
    image
        .config(
            &ConfigResource::topic(topic),
            UNCLEAN_LEADER_ELECTION_ENABLE,
        )
        .or_else(|| image.config(&ConfigResource::broker(""), UNCLEAN_LEADER_ELECTION_ENABLE))
        .map_or(static_default, |v| v.trim().eq_ignore_ascii_case("true"))
}

#[cfg(test)]
mod tests;
