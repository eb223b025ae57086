//! `LogConfig`: the per-topic settings the log obeys, with Kafka's names and defaults. The broker
//! builds one from broker defaults and topic overrides; changing it on a live log takes effect on
//! the next append, roll or retention pass.

/// Kafka's topic-level log settings (defaults as Kafka's).
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would grow past this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's first batch is older than this.
    pub segment_ms: i64,
    /// `segment.index.bytes`: the size an index file is created at (sparse).
    pub segment_index_bytes: u64,
    /// `index.interval.bytes`: bytes between two index entries.
    pub index_interval_bytes: u64,
    /// `max.message.bytes`: the largest batch accepted.
    pub max_message_bytes: usize,
    /// `retention.ms` (-1: forever).
    pub retention_ms: i64,
    /// `retention.bytes` (-1: unbounded).
    pub retention_bytes: i64,
    /// `flush.messages` (i64::MAX: leave it to the page cache).
    pub flush_messages: i64,
    /// `flush.ms` (i64::MAX: leave it to the page cache).
    pub flush_ms: i64,
    /// `message.timestamp.type`: LogAppendTime stamps batches on append.
    pub log_append_time: bool,
    /// `message.timestamp.before.max.ms`: how far in the past a CreateTime timestamp may be.
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: how far in the future (Kafka 4.0: one hour).
    pub message_timestamp_after_max_ms: i64,
    /// `file.delete.delay.ms`: how long a `.deleted` segment stays before removal.
    pub file_delete_delay_ms: i64,
    /// `cleanup.policy`: retention deletes old segments, the log cleaner compacts, or both.
    pub cleanup_policy: CleanupPolicy,
    /// `delete.retention.ms`: how long the cleaner keeps a tombstone after it first cleaned it.
    pub delete_retention_ms: i64,
    /// `min.cleanable.dirty.ratio`: the share of the cleanable bytes not yet cleaned from which
    /// the log is cleaned.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: a segment whose newest record is younger stays uncleaned.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a dirty segment whose newest record is older is cleaned
    /// whatever the dirty ratio.
    pub max_compaction_lag_ms: i64,
}

/// `cleanup.policy`: a list of `delete` and `compact`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    pub delete: bool,
    pub compact: bool,
}

impl CleanupPolicy {
    /// Kafka's default, `delete`.
    pub const DELETE: CleanupPolicy = CleanupPolicy {
        delete: true,
        compact: false,
    };
    pub const COMPACT: CleanupPolicy = CleanupPolicy {
        delete: false,
        compact: true,
    };

    /// Reads the list as Kafka writes it (`compact,delete`, spaces allowed); other words are
    /// ignored (the broker validates the value before it gets here).
    pub fn parse(list: &str) -> CleanupPolicy {
        let mut p = CleanupPolicy {
            delete: false,
            compact: false,
        };
        for word in list.split(',').map(str::trim) {
            match word {
                "delete" => p.delete = true,
                "compact" => p.compact = true,
                _ => {}
            }
        }
        p
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            max_message_bytes: 1024 * 1024 + 12,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            log_append_time: false,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: 3_600_000,
            file_delete_delay_ms: 60_000,
            cleanup_policy: CleanupPolicy::DELETE,
            delete_retention_ms: 86_400_000,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_policy_reads_kafka_lists() {
        assert_eq!(CleanupPolicy::parse("delete"), CleanupPolicy::DELETE);
        assert_eq!(CleanupPolicy::parse("compact"), CleanupPolicy::COMPACT);
        let both = CleanupPolicy::parse("compact, delete");
        assert!(both.compact && both.delete);
    }
}
