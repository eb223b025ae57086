//! `LogConfig`: the per-topic settings the log obeys, with Kafka's names and defaults. The broker
//! builds one from broker defaults and topic overrides; changing it on a live log takes effect on
//! the next append, roll or retention pass.

/// Kafka's topic-level log settings (defaults as Kafka's).
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// `file.delete.delay.ms`: how long a `.deleted` segment stays before removal.
    pub file_delete_delay_ms: i64,
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
            file_delete_delay_ms: 60_000,
        }
    }
}
