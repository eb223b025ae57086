//! The group configuration table (Kafka 4.0's `GroupConfig`, KIP-848's dynamic group configs):
//! the keys IncrementalAlterConfigs and AlterConfigs may set on a `GROUP` resource (type 32),
//! each with the broker key it defaults from (`group.` + the key, as Kafka's
//! `GroupCoordinatorConfig.GROUP_PREFIX`) and the broker's bounds it must stay within.
//!
//! This table is the one rule for group configs: the controller checks the changes (names, types,
//! and the resulting set against its `group.consumer.min/max.*` bounds, as Kafka's
//! `ControllerConfigurationValidator` calls `GroupConfig.validate`), and the broker's
//! DescribeConfigs and its group coordinator read the same table through re-exports.
//!
//! rafka has no share groups (KIP-932): the `share.*` keys are accepted, validated against
//! Kafka's default share bounds and described, as Kafka 4.0 does, but nothing reads them.

use super::def::{one_line, ConfigKey, ConfigType as T, Importance as I, Validator as V, Value};

/// `consumer.session.timeout.ms`.
pub const CONSUMER_SESSION_TIMEOUT_MS: &str = "consumer.session.timeout.ms";
/// `consumer.heartbeat.interval.ms`.
pub const CONSUMER_HEARTBEAT_INTERVAL_MS: &str = "consumer.heartbeat.interval.ms";
/// `share.session.timeout.ms`.
pub const SHARE_SESSION_TIMEOUT_MS: &str = "share.session.timeout.ms";
/// `share.heartbeat.interval.ms`.
pub const SHARE_HEARTBEAT_INTERVAL_MS: &str = "share.heartbeat.interval.ms";
/// `share.record.lock.duration.ms`.
pub const SHARE_RECORD_LOCK_DURATION_MS: &str = "share.record.lock.duration.ms";
/// `share.auto.offset.reset`.
pub const SHARE_AUTO_OFFSET_RESET: &str = "share.auto.offset.reset";

/// A group configuration and the broker key it defaults from.
#[derive(Debug, Clone, Copy)]
pub struct GroupKey {
    /// The definition (its `default` is Kafka's `GroupConfig` default).
    pub key: ConfigKey,
    /// The broker key whose value is the group's unless the group overrides it (`None`: the
    /// key's own default).
    pub broker_synonym: Option<&'static str>,
}

const fn g(
    name: &'static str,
    ty: T,
    default: &'static str,
    validator: V,
    broker_synonym: Option<&'static str>,
    doc: &'static str,
) -> GroupKey {
    GroupKey {
        key: ConfigKey::new(name, ty, Some(default), I::Medium, doc).check(validator),
        broker_synonym,
    }
}

/// The note every `share.*` key carries.
const NO_SHARE_GROUPS: &str =
    "accepted and ignored: rafka has no share groups (KIP-932); the value is validated and described";

/// A `share.*` key: as [`g`], with the note that nothing reads it.
const fn share(
    name: &'static str,
    ty: T,
    default: &'static str,
    validator: V,
    doc: &'static str,
) -> GroupKey {
    let mut k = g(name, ty, default, validator, None, doc);
    k.key = k.key.note(NO_SHARE_GROUPS);
    k
}

/// Every group configuration, in Kafka's order.
pub static GROUP_CONFIGS: &[GroupKey] = &[
    g(
        CONSUMER_SESSION_TIMEOUT_MS,
        T::Int,
        "45000",
        V::AtLeast(1),
        Some("group.consumer.session.timeout.ms"),
        "The timeout to detect client failures when using the consumer group protocol.",
    ),
    g(
        CONSUMER_HEARTBEAT_INTERVAL_MS,
        T::Int,
        "5000",
        V::AtLeast(1),
        Some("group.consumer.heartbeat.interval.ms"),
        "The heartbeat interval given to the members of a consumer group.",
    ),
    share(
        SHARE_SESSION_TIMEOUT_MS,
        T::Int,
        "45000",
        V::AtLeast(1),
        "The timeout to detect client failures when using the share group protocol.",
    ),
    share(
        SHARE_HEARTBEAT_INTERVAL_MS,
        T::Int,
        "5000",
        V::AtLeast(1),
        "The heartbeat interval given to the members of a share group.",
    ),
    share(
        SHARE_RECORD_LOCK_DURATION_MS,
        T::Int,
        "30000",
        V::AtLeast(1000),
        "The record acquisition lock duration in milliseconds for share groups.",
    ),
    share(
        SHARE_AUTO_OFFSET_RESET,
        T::String,
        "latest",
        V::OneOf(&["latest", "earliest"]),
        "The strategy to initialize the share-partition start offset.",
    ),
];

/// Look up a group configuration's definition.
pub fn group_config(name: &str) -> Option<&'static GroupKey> {
    GROUP_CONFIGS.iter().find(|k| k.key.name == name)
}

/// The broker's bounds on group configs (Kafka's `group.consumer.min/max.*` and
/// `group.share.min/max.*` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupConfigBounds {
    /// `group.consumer.min.session.timeout.ms` / `group.consumer.max.session.timeout.ms`.
    pub consumer_session_timeout_ms: (i64, i64),
    /// `group.consumer.min.heartbeat.interval.ms` / `group.consumer.max.heartbeat.interval.ms`.
    pub consumer_heartbeat_interval_ms: (i64, i64),
    /// Kafka's `group.share.min/max.session.timeout.ms` (rafka has no share groups: Kafka's
    /// defaults).
    pub share_session_timeout_ms: (i64, i64),
    /// Kafka's `group.share.min/max.heartbeat.interval.ms` (defaults).
    pub share_heartbeat_interval_ms: (i64, i64),
    /// Kafka's `group.share.min/max.record.lock.duration.ms` (defaults).
    pub share_record_lock_duration_ms: (i64, i64),
}

impl Default for GroupConfigBounds {
    /// Kafka 4.0's defaults.
    fn default() -> Self {
        GroupConfigBounds {
            consumer_session_timeout_ms: (45_000, 60_000),
            consumer_heartbeat_interval_ms: (5_000, 15_000),
            share_session_timeout_ms: (45_000, 60_000),
            share_heartbeat_interval_ms: (5_000, 15_000),
            share_record_lock_duration_ms: (15_000, 60_000),
        }
    }
}

/// Checks one group configuration on its own: a group config name, and a value its type and
/// validator accept. `Ok(the parsed value)`, or Kafka's message.
pub fn validate_group_config(name: &str, value: &str) -> Result<Value, String> {
    let def = group_config(name).ok_or_else(|| format!("Unknown group config name: {name}"))?;
    def.key.parse(value).map_err(|reason| {
        format!(
            "Invalid value {} for configuration {name}: {reason}",
            one_line(value.trim())
        )
    })
}

/// Checks a group's whole resulting set of overrides, as Kafka's `GroupConfig.validate`: every
/// name must be a group config ("Unknown group config name"), every value parse for its type
/// and validator, and — with the keys not set taking `GroupConfig`'s defaults — each interval
/// and timeout be within `bounds`, and each session timeout above its heartbeat interval. The
/// message is Kafka's (answered with INVALID_CONFIG).
pub fn validate_group_configs<'a>(
    configs: impl IntoIterator<Item = (&'a str, &'a str)>,
    bounds: &GroupConfigBounds,
) -> Result<(), String> {
    let mut ints = std::collections::BTreeMap::new();
    for (name, value) in configs {
        if let Some(v) = validate_group_config(name, value)?.as_i64() {
            ints.insert(name, v);
        }
    }
    let int = |name: &str| -> i64 {
        ints.get(name).copied().unwrap_or_else(|| {
            group_config(name)
                .and_then(|d| d.key.default)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        })
    };
    let range = |name: &str, (lo, hi): (i64, i64), min_key: &str, max_key: &str| {
        let v = int(name);
        if v < lo {
            Err(format!("{name} must be greater than or equal to {min_key}"))
        } else if v > hi {
            Err(format!("{name} must be less than or equal to {max_key}"))
        } else {
            Ok(())
        }
    };
    range(
        CONSUMER_HEARTBEAT_INTERVAL_MS,
        bounds.consumer_heartbeat_interval_ms,
        "group.consumer.min.heartbeat.interval.ms",
        "group.consumer.max.heartbeat.interval.ms",
    )?;
    range(
        CONSUMER_SESSION_TIMEOUT_MS,
        bounds.consumer_session_timeout_ms,
        "group.consumer.min.session.timeout.ms",
        "group.consumer.max.session.timeout.ms",
    )?;
    range(
        SHARE_HEARTBEAT_INTERVAL_MS,
        bounds.share_heartbeat_interval_ms,
        "group.share.min.heartbeat.interval.ms",
        "group.share.max.heartbeat.interval.ms",
    )?;
    range(
        SHARE_SESSION_TIMEOUT_MS,
        bounds.share_session_timeout_ms,
        "group.share.min.session.timeout.ms",
        "group.share.max.session.timeout.ms",
    )?;
    range(
        SHARE_RECORD_LOCK_DURATION_MS,
        bounds.share_record_lock_duration_ms,
        "group.share.min.record.lock.duration.ms",
        "group.share.max.record.lock.duration.ms",
    )?;
    if int(CONSUMER_SESSION_TIMEOUT_MS) <= int(CONSUMER_HEARTBEAT_INTERVAL_MS) {
        return Err(format!(
            "{CONSUMER_SESSION_TIMEOUT_MS} must be greater than {CONSUMER_HEARTBEAT_INTERVAL_MS}"
        ));
    }
    if int(SHARE_SESSION_TIMEOUT_MS) <= int(SHARE_HEARTBEAT_INTERVAL_MS) {
        return Err(format!(
            "{SHARE_SESSION_TIMEOUT_MS} must be greater than {SHARE_HEARTBEAT_INTERVAL_MS}"
        ));
    }
    Ok(())
}

/// A group's override of an INT key as the coordinator applies it: `None` when the group has
/// none or it does not parse (the controller accepts only valid values; a record from elsewhere
/// is not trusted).
pub fn group_int(value: Option<&str>) -> Option<i32> {
    value
        .and_then(|v| v.trim().parse::<i32>().ok())
        .filter(|v| *v > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pairs: &[(&str, &str)]) -> Result<(), String> {
        validate_group_configs(pairs.iter().copied(), &GroupConfigBounds::default())
    }

    #[test]
    fn kafkas_rules() {
        assert_eq!(check(&[]), Ok(()));
        assert_eq!(check(&[(CONSUMER_SESSION_TIMEOUT_MS, "50000")]), Ok(()));
        assert_eq!(check(&[(SHARE_AUTO_OFFSET_RESET, "earliest")]), Ok(()));
        // Every default value DescribeConfigs returns is accepted back.
        let defaults: Vec<(&str, &str)> = GROUP_CONFIGS
            .iter()
            .map(|k| (k.key.name, k.key.default.unwrap_or_default()))
            .collect();
        assert_eq!(check(&defaults), Ok(()));
        let err = check(&[("session.timeout.ms", "50000")]).unwrap_err();
        assert_eq!(err, "Unknown group config name: session.timeout.ms");
        assert!(check(&[(CONSUMER_SESSION_TIMEOUT_MS, "soon")])
            .unwrap_err()
            .contains("Not a number of type INT"));
        assert!(check(&[(CONSUMER_SESSION_TIMEOUT_MS, "0")])
            .unwrap_err()
            .contains("at least 1"));
        assert_eq!(
            check(&[(CONSUMER_SESSION_TIMEOUT_MS, "44999")]).unwrap_err(),
            "consumer.session.timeout.ms must be greater than or equal to group.consumer.min.session.timeout.ms"
        );
        assert_eq!(
            check(&[(CONSUMER_SESSION_TIMEOUT_MS, "60001")]).unwrap_err(),
            "consumer.session.timeout.ms must be less than or equal to group.consumer.max.session.timeout.ms"
        );
        assert!(check(&[(CONSUMER_HEARTBEAT_INTERVAL_MS, "4999")]).is_err());
        assert!(check(&[(SHARE_RECORD_LOCK_DURATION_MS, "999")]).is_err());
        assert!(check(&[(SHARE_AUTO_OFFSET_RESET, "none")]).is_err());
        // Session above heartbeat, with wider bounds.
        let wide = GroupConfigBounds {
            consumer_session_timeout_ms: (1, 100_000),
            consumer_heartbeat_interval_ms: (1, 100_000),
            ..Default::default()
        };
        let pairs = [
            (CONSUMER_SESSION_TIMEOUT_MS, "1000"),
            (CONSUMER_HEARTBEAT_INTERVAL_MS, "1000"),
        ];
        assert_eq!(
            validate_group_configs(pairs.iter().copied(), &wide).unwrap_err(),
            "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms"
        );
        assert_eq!(group_int(Some(" 50000 ")), Some(50000));
        assert_eq!(group_int(Some("-1")), None);
        assert_eq!(group_int(None), None);
    }
}
