//! The topic configuration table (Kafka's `TopicConfig` / `LogConfig`), each key with the broker
//! configurations it defaults from, in Kafka's order of precedence
//! (`ServerTopicConfigSynonyms.ALL_TOPIC_CONFIG_SYNONYMS`): e.g. `retention.ms` ←
//! `log.retention.ms`, then `log.retention.minutes` (×60 000), then `log.retention.hours`
//! (×3 600 000).

use super::broker_defs::LONG_MAX;
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
        "The gzip level used when compression.type is gzip."),
    t("compression.lz4.level", T::Int, Some("9"), V::Between(1, 17),
        &[("compression.lz4.level", C::Same)],
        "The lz4 level used when compression.type is lz4."),
    t("compression.type", T::String, Some("producer"), V::OneOf(COMPRESSION_TYPES),
        &[("compression.type", C::Same)],
        "The final compression of the topic's data; producer keeps what the producer sent."),
    t("compression.zstd.level", T::Int, Some("3"), V::Between(-131072, 22),
        &[("compression.zstd.level", C::Same)],
        "The zstd level used when compression.type is zstd."),
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
        "Replicas throttled on the follower side: partitionId:brokerId entries or *."),
    t("index.interval.bytes", T::Int, Some("4096"), V::AtLeast(0),
        &[("log.index.interval.bytes", C::Same)],
        "The bytes of log between two offset-index entries."),
    t("leader.replication.throttled.replicas", T::List, Some(""), V::Custom(check_throttled_replicas),
        &[],
        "Replicas throttled on the leader side: partitionId:brokerId entries or *."),
    t("local.retention.bytes", T::Long, Some("-2"), V::AtLeast(-2),
        &[("log.local.retention.bytes", C::Same)],
        "Local size retention with tiered storage (-2: retention.bytes)."),
    t("local.retention.ms", T::Long, Some("-2"), V::AtLeast(-2),
        &[("log.local.retention.ms", C::Same)],
        "Local time retention with tiered storage (-2: retention.ms)."),
    t("max.compaction.lag.ms", T::Long, Some(LONG_MAX), V::AtLeast(1),
        &[("log.cleaner.max.compaction.lag.ms", C::Same)],
        "The maximum time a record stays ineligible for compaction."),
    t("max.message.bytes", T::Int, Some("1048588"), V::AtLeast(0),
        &[("message.max.bytes", C::Same)],
        "The largest record batch size the topic accepts."),
    t("message.downconversion.enable", T::Boolean, Some("true"), V::Any,
        &[("log.message.downconversion.enable", C::Same)],
        "Whether old-format fetch requests get down-converted records."),
    t("message.format.version", T::String, Some("3.0-IV1"), V::Any,
        &[("log.message.format.version", C::Same)],
        "Deprecated; ignored from inter-broker protocol 3.0 on."),
    // Kafka 4.0's default (KIP-1030): one hour.
    t("message.timestamp.after.max.ms", T::Long, Some("3600000"), V::AtLeast(0),
        &[("log.message.timestamp.after.max.ms", C::Same)],
        "How far in the future a CreateTime timestamp may be."),
    t("message.timestamp.before.max.ms", T::Long, Some(LONG_MAX), V::AtLeast(0),
        &[("log.message.timestamp.before.max.ms", C::Same)],
        "How far in the past a CreateTime timestamp may be."),
    t("message.timestamp.difference.max.ms", T::Long, Some(LONG_MAX), V::AtLeast(0),
        &[("log.message.timestamp.difference.max.ms", C::Same)],
        "Deprecated: the largest allowed difference between a CreateTime timestamp and the broker's time."),
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
        "Preallocate the file of a new segment."),
    t("remote.log.copy.disable", T::Boolean, Some("false"), V::Any,
        &[],
        "Stop copying segments to remote storage (tiered storage)."),
    t("remote.log.delete.on.disable", T::Boolean, Some("false"), V::Any,
        &[],
        "Delete remote data when tiered storage is turned off for the topic."),
    t("remote.storage.enable", T::Boolean, Some("false"), V::Custom(check_no_remote_storage),
        &[],
        "Enable tiered storage for the topic (not supported by rafka)."),
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
    t("segment.bytes", T::Int, Some("1073741824"), V::AtLeast(14),
        &[("log.segment.bytes", C::Same)],
        "The size of a segment file; the log rolls when the active one would grow past it."),
    t("segment.index.bytes", T::Int, Some("10485760"), V::AtLeast(4),
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
