//! The topic configuration table (Kafka's `TopicConfig` / `LogConfig`), each key with the broker
//! configurations it defaults from, in Kafka's order of precedence
//! (`ServerTopicConfigSynonyms.ALL_TOPIC_CONFIG_SYNONYMS`): e.g. `retention.ms` ←
//! `log.retention.ms`, then `log.retention.minutes` (×60 000), then `log.retention.hours`
//! (×3 600 000).
//!
//! This table is the one rule for topic configs: the controller checks CreateTopics' configs,
//! AlterConfigs and IncrementalAlterConfigs with [`validate_topic_config`] /
//! [`validate_topic_configs`], and the broker (its DescribeConfigs, its preprocessing of the
//! alter requests, the configs its logs run with) reads the same table through re-exports.

use super::def::{one_line, LONG_MAX};
use super::def::{ConfigKey, ConfigType as T, Conversion as C, Importance as I, Validator as V};

/// A topic configuration and its broker synonyms.
#[derive(Debug, Clone, Copy)]
pub struct TopicKey {
    /// The definition (its `default` is Kafka's topic-level default, used when no broker
    /// synonym has a value).
    pub key: ConfigKey,
    /// The broker keys it defaults from, highest precedence first, with the unit conversion.
    pub synonyms: &'static [(&'static str, C)],
}

const fn t(
    name: &'static str,
    ty: T,
    default: Option<&'static str>,
    validator: V,
    synonyms: &'static [(&'static str, C)],
    doc: &'static str,
) -> TopicKey {
    TopicKey {
        key: ConfigKey::new(name, ty, default, I::Medium, doc).check(validator),
        synonyms,
    }
}

impl TopicKey {
    /// With rafka's note (see [`ConfigKey::note`]).
    const fn note(mut self, note: &'static str) -> TopicKey {
        self.key = self.key.note(note);
        self
    }
}

/// The smallest `segment.bytes` (and `log.segment.bytes`): 1 MiB, Kafka 4.0's floor (KIP-1030).
/// Below it a client could make the broker roll, and so create files, at every append.
pub const MIN_SEGMENT_BYTES: i64 = 1024 * 1024;

/// The smallest `segment.index.bytes` (and `log.index.size.max.bytes`): one 4 KiB page, the
/// unit an index file is mapped in. Kafka accepts 4, which holds not even one 8-byte
/// offset-index or 12-byte time-index entry, so every append would find the index full and roll
/// a new segment (three new files). One page holds 341 time-index entries: at the default
/// `index.interval.bytes` that is over 1 MiB of log, so a minimum segment is never cut short by
/// its index.
pub const MIN_SEGMENT_INDEX_BYTES: i64 = 4096;

const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

fn check_gzip_level(v: &str) -> Result<(), String> {
    match v.parse::<i32>() {
        Ok(-1) | Ok(1..=9) => Ok(()),
        _ => Err("Value must be between 1 and 9 or equal to -1".to_string()),
    }
}

fn check_no_remote_storage(v: &str) -> Result<(), String> {
    if v == "true" {
        Err(
            "Tiered Storage functionality is disabled in the broker. Topic cannot be configured \
             with remote log storage."
                .to_string(),
        )
    } else {
        Ok(())
    }
}

fn check_throttled_replicas(v: &str) -> Result<(), String> {
    // ThrottledReplicaListValidator: "*" or partition:broker pairs.
    let v = v.trim();
    if v.is_empty() || v == "*" {
        return Ok(());
    }
    for item in v.split(',') {
        let ok = item.trim().split_once(':').is_some_and(|(p, b)| {
            !p.trim().is_empty()
                && p.trim().bytes().all(|c| c.is_ascii_digit())
                && !b.trim().is_empty()
                && b.trim().bytes().all(|c| c.is_ascii_digit())
        });
        if !ok {
            return Err(
                "must be the wildcard (*) or a list of partitionId:brokerId entries".to_string(),
            );
        }
    }
    Ok(())
}

/// Every topic configuration, sorted by name.
pub static TOPIC_CONFIGS: &[TopicKey] = &[
    t("cleanup.policy", T::List, Some("delete"), V::ListOf(&["compact", "delete"]),
        &[("log.cleanup.policy", C::Same)],
        "delete (remove old segments by time or size), compact (keep the latest value per key), or both."),
    t("compression.gzip.level", T::Int, Some("-1"), V::Custom(check_gzip_level),
        &[("compression.gzip.level", C::Same)],
        "The gzip level used when compression.type is gzip.")
        .note("accepted and ignored: batches are stored as the producer compressed them, so no level applies"),
    t("compression.lz4.level", T::Int, Some("9"), V::Between(1, 17),
        &[("compression.lz4.level", C::Same)],
        "The lz4 level used when compression.type is lz4.")
        .note("accepted and ignored: batches are stored as the producer compressed them, so no level applies"),
    t("compression.type", T::String, Some("producer"), V::OneOf(COMPRESSION_TYPES),
        &[("compression.type", C::Same)],
        "The final compression of the topic's data; producer keeps what the producer sent."),
    t("compression.zstd.level", T::Int, Some("3"), V::Between(-131072, 22),
        &[("compression.zstd.level", C::Same)],
        "The zstd level used when compression.type is zstd.")
        .note("accepted and ignored: batches are stored as the producer compressed them, so no level applies"),
    t("delete.retention.ms", T::Long, Some("86400000"), V::AtLeast(0),
        &[("log.cleaner.delete.retention.ms", C::Same)],
        "How long tombstones are kept in a compacted topic."),
    t("file.delete.delay.ms", T::Long, Some("60000"), V::AtLeast(0),
        &[("log.segment.delete.delay.ms", C::Same)],
        "How long a deleted segment file stays before it is removed from the filesystem."),
    t("flush.messages", T::Long, Some(LONG_MAX), V::AtLeast(1),
        &[("log.flush.interval.messages", C::Same)],
        "The messages appended before the log is fsynced (the default leaves it to the OS)."),
    t("flush.ms", T::Long, Some(LONG_MAX), V::AtLeast(0),
        &[("log.flush.interval.ms", C::Same), ("log.flush.scheduler.interval.ms", C::Same)],
        "The longest a message stays unflushed (the default leaves it to the OS)."),
    t("follower.replication.throttled.replicas", T::List, Some(""), V::Custom(check_throttled_replicas),
        &[],
        "Replicas throttled on the follower side: partitionId:brokerId entries or *.")
        .note("accepted and ignored: replication is not throttled"),
    t("index.interval.bytes", T::Int, Some("4096"), V::AtLeast(0),
        &[("log.index.interval.bytes", C::Same)],
        "The bytes of log between two offset-index entries."),
    t("leader.replication.throttled.replicas", T::List, Some(""), V::Custom(check_throttled_replicas),
        &[],
        "Replicas throttled on the leader side: partitionId:brokerId entries or *.")
        .note("accepted and ignored: replication is not throttled"),
    t("local.retention.bytes", T::Long, Some("-2"), V::AtLeast(-2),
        &[("log.local.retention.bytes", C::Same)],
        "Local size retention with tiered storage (-2: retention.bytes).")
        .note("accepted and ignored: without tiered storage there is no local part to retain"),
    t("local.retention.ms", T::Long, Some("-2"), V::AtLeast(-2),
        &[("log.local.retention.ms", C::Same)],
        "Local time retention with tiered storage (-2: retention.ms).")
        .note("accepted and ignored: without tiered storage there is no local part to retain"),
    t("max.compaction.lag.ms", T::Long, Some(LONG_MAX), V::AtLeast(1),
        &[("log.cleaner.max.compaction.lag.ms", C::Same)],
        "The maximum time a record stays ineligible for compaction."),
    t("max.message.bytes", T::Int, Some("1048588"), V::AtLeast(0),
        &[("message.max.bytes", C::Same)],
        "The largest record batch size the topic accepts."),
    t("message.downconversion.enable", T::Boolean, Some("true"), V::Any,
        &[("log.message.downconversion.enable", C::Same)],
        "Whether old-format fetch requests get down-converted records.")
        .note("accepted and ignored (gone in Kafka 4.0): records are never converted to an older format for a fetch"),
    t("message.format.version", T::String, Some("3.0-IV1"), V::Any,
        &[("log.message.format.version", C::Same)],
        "Deprecated; ignored from inter-broker protocol 3.0 on.")
        .note("accepted and ignored (gone in Kafka 4.0): batches are stored in the format the producer sent"),
    // Kafka 4.0's default (KIP-1030): one hour.
    t("message.timestamp.after.max.ms", T::Long, Some("3600000"), V::AtLeast(0),
        &[("log.message.timestamp.after.max.ms", C::Same)],
        "How far in the future a CreateTime timestamp may be."),
    t("message.timestamp.before.max.ms", T::Long, Some(LONG_MAX), V::AtLeast(0),
        &[("log.message.timestamp.before.max.ms", C::Same)],
        "How far in the past a CreateTime timestamp may be."),
    t("message.timestamp.difference.max.ms", T::Long, Some(LONG_MAX), V::AtLeast(0),
        &[("log.message.timestamp.difference.max.ms", C::Same)],
        "Deprecated: the largest allowed difference between a CreateTime timestamp and the broker's time.")
        .note("accepted and ignored (gone in Kafka 4.0): message.timestamp.before.max.ms and .after.max.ms bound timestamps"),
    t("message.timestamp.type", T::String, Some("CreateTime"), V::OneOf(&["CreateTime", "LogAppendTime"]),
        &[("log.message.timestamp.type", C::Same)],
        "CreateTime keeps the producer's timestamps; LogAppendTime stamps batches on append."),
    t("min.cleanable.dirty.ratio", T::Double, Some("0.5"), V::BetweenF(0.0, 1.0),
        &[("log.cleaner.min.cleanable.ratio", C::Same)],
        "The dirty ratio at which the log becomes eligible for compaction."),
    t("min.compaction.lag.ms", T::Long, Some("0"), V::AtLeast(0),
        &[("log.cleaner.min.compaction.lag.ms", C::Same)],
        "The minimum time a record stays uncompacted."),
    t("min.insync.replicas", T::Int, Some("1"), V::AtLeast(1),
        &[("min.insync.replicas", C::Same)],
        "The replicas that must acknowledge an acks=all write, or it fails with NOT_ENOUGH_REPLICAS."),
    t("preallocate", T::Boolean, Some("false"), V::Any,
        &[("log.preallocate", C::Same)],
        "Preallocate the file of a new segment.")
        .note("accepted and ignored: segment files are not preallocated"),
    t("remote.log.copy.disable", T::Boolean, Some("false"), V::Any,
        &[],
        "Stop copying segments to remote storage (tiered storage).")
        .note("accepted and ignored: rafka has no tiered storage"),
    t("remote.log.delete.on.disable", T::Boolean, Some("false"), V::Any,
        &[],
        "Delete remote data when tiered storage is turned off for the topic.")
        .note("accepted and ignored: rafka has no tiered storage"),
    t("remote.storage.enable", T::Boolean, Some("false"), V::Custom(check_no_remote_storage),
        &[],
        "Enable tiered storage for the topic (not supported by rafka).")
        .note("accepted only as false: rafka has no tiered storage"),
    t("retention.bytes", T::Long, Some("-1"), V::Any,
        &[("log.retention.bytes", C::Same)],
        "The size a partition's log may grow to before old segments are deleted (-1: unbounded)."),
    t("retention.ms", T::Long, Some("604800000"), V::AtLeast(-1),
        &[
            ("log.retention.ms", C::Same),
            ("log.retention.minutes", C::MinutesToMs),
            ("log.retention.hours", C::HoursToMs),
        ],
        "How long a record is kept before its segment may be deleted (-1: forever)."),
    t("segment.bytes", T::Int, Some("1073741824"), V::AtLeast(MIN_SEGMENT_BYTES),
        &[("log.segment.bytes", C::Same)],
        "The size of a segment file; the log rolls when the active one would grow past it."),
    t("segment.index.bytes", T::Int, Some("10485760"), V::AtLeast(MIN_SEGMENT_INDEX_BYTES),
        &[("log.index.size.max.bytes", C::Same)],
        "The size an offset or time index file is created at."),
    t("segment.jitter.ms", T::Long, Some("0"), V::AtLeast(0),
        &[("log.roll.jitter.ms", C::Same), ("log.roll.jitter.hours", C::HoursToMs)],
        "The maximum random jitter subtracted from segment.ms."),
    t("segment.ms", T::Long, Some("604800000"), V::AtLeast(1),
        &[("log.roll.ms", C::Same), ("log.roll.hours", C::HoursToMs)],
        "The log rolls when the active segment's first record is older than this."),
    t("unclean.leader.election.enable", T::Boolean, Some("false"), V::Any,
        &[("unclean.leader.election.enable", C::Same)],
        "Allow a replica outside the ISR to become leader as a last resort (may lose data)."),
];

/// Look up a topic configuration's definition.
pub fn topic_config(name: &str) -> Option<&'static TopicKey> {
    TOPIC_CONFIGS.iter().find(|t| t.key.name == name)
}

/// Checks one topic configuration (CreateTopics, AlterConfigs, IncrementalAlterConfigs): an
/// unknown key or a value its `ConfigDef` refuses is an error, answered with INVALID_CONFIG and
/// this message (Kafka's `ConfigException` text: "Invalid value … for configuration …: …").
pub fn validate_topic_config(key: &str, value: &str) -> Result<(), String> {
    let def = topic_config(key).ok_or_else(|| format!("Unknown topic config name: {key}"))?;
    def.key.parse(value).map(|_| ()).map_err(|reason| {
        format!(
            "Invalid value {} for configuration {key}: {reason}",
            one_line(value.trim())
        )
    })
}

/// Checks a topic's whole set of overrides: each one, then how they fit together (Kafka's
/// `LogConfig.validateValues`: `min.compaction.lag.ms` <= `max.compaction.lag.ms`).
pub fn validate_topic_configs<'a>(
    configs: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
) -> Result<(), String> {
    for (k, v) in configs.clone() {
        validate_topic_config(k, v)?;
    }
    let long = |name: &str| -> i64 {
        configs
            .clone()
            .into_iter()
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| v.trim().parse().ok())
            .or_else(|| topic_config(name).and_then(|t| t.key.default?.parse().ok()))
            .unwrap_or(0)
    };
    let (min, max) = (long("min.compaction.lag.ms"), long("max.compaction.lag.ms"));
    if min > max {
        return Err(format!(
            "conflict topic config setting min.compaction.lag.ms ({min}) > max.compaction.lag.ms ({max})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(key: &str, value: &str) -> String {
        validate_topic_config(key, value).expect_err("refused")
    }

    #[test]
    fn kafka_4_ranges() {
        assert_eq!(
            refused("segment.bytes", "100"),
            "Invalid value 100 for configuration segment.bytes: Value must be at least 1048576"
        );
        assert!(validate_topic_config("segment.bytes", "1048576").is_ok());
        assert!(validate_topic_config("segment.bytes", "2147483648").is_err());
        assert!(refused("segment.index.bytes", "4").contains("at least 4096"));
        assert!(validate_topic_config("segment.index.bytes", "4096").is_ok());
        for (key, bad, good) in [
            ("segment.ms", "0", "1"),
            ("segment.jitter.ms", "-1", "0"),
            ("retention.ms", "-2", "-1"),
            ("max.message.bytes", "-1", "0"),
            ("min.insync.replicas", "0", "1"),
            ("flush.messages", "0", "1"),
            ("index.interval.bytes", "-1", "0"),
            ("delete.retention.ms", "-1", "0"),
            ("max.compaction.lag.ms", "0", "1"),
            ("min.cleanable.dirty.ratio", "1.01", "1"),
            ("cleanup.policy", "compact,forever", "compact,delete"),
            ("compression.type", "brotli", "zstd"),
            ("compression.zstd.level", "23", "22"),
            ("compression.lz4.level", "18", "17"),
            ("compression.gzip.level", "0", "9"),
            ("message.timestamp.type", "logappendtime", "LogAppendTime"),
            ("message.timestamp.before.max.ms", "-1", "0"),
            ("message.timestamp.after.max.ms", "x", "3600000"),
            ("local.retention.ms", "-3", "-2"),
            ("unclean.leader.election.enable", "yes", "TRUE"),
        ] {
            assert!(validate_topic_config(key, bad).is_err(), "{key}={bad}");
            assert!(validate_topic_config(key, good).is_ok(), "{key}={good}");
        }
        assert_eq!(
            refused("segment.byte", "1"),
            "Unknown topic config name: segment.byte"
        );
        // A value with a newline is reported on one line.
        assert!(!refused("segment.bytes", "1\n2").contains('\n'));
    }

    #[test]
    fn overrides_fit_together() {
        let e = validate_topic_configs([
            ("min.compaction.lag.ms", "10"),
            ("max.compaction.lag.ms", "5"),
        ])
        .expect_err("refused");
        assert!(e.contains("min.compaction.lag.ms (10)"), "{e}");
        assert!(validate_topic_configs([("min.compaction.lag.ms", "10")]).is_ok());
        assert!(validate_topic_configs([("segment.bytes", "100")]).is_err());
    }

    #[test]
    fn every_default_passes_its_own_rule() {
        for t in TOPIC_CONFIGS {
            if let Some(d) = t.key.default {
                assert!(
                    validate_topic_config(t.key.name, d).is_ok(),
                    "{}",
                    t.key.name
                );
            }
        }
    }
}
