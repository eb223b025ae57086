//! The node's metrics, served at `/metrics` (Prometheus text format 0.0.4, or OpenMetrics when
//! the scraper asks for `application/openmetrics-text`), named after Kafka's JMX MBeans as the
//! Prometheus JMX exporter would name them: `kafka.server<type=BrokerTopicMetrics,
//! name=BytesInPerSec,topic=t>` is `kafka_server_brokertopicmetrics_bytesin_total{topic="t"}`
//! (the `PerSec` meter is a counter; Prometheus takes the rate), a `…TimeMs` histogram keeps its
//! name and unit. Series Kafka does not have start with `rafka_`. The README's "Metrics" section
//! has the full table.
//!
//! Two kinds of metric, kept apart for the hot path's sake:
//! - **recorded** as the node works ([`topic`], [`request`], and the counters below): relaxed
//!   atomic adds through handles resolved once, never a map lookup or a lock per request;
//! - **collected** at scrape time (`crate::http`'s `collect`): gauges read from the parts that own the state
//!   (replica manager, controller, group coordinator, logs), on a blocking thread.
//!
//! `metrics.enable=false` turns recording off altogether (no handle is resolved, nothing is
//! counted) and `/metrics` answers 404; `metrics.partition.level.enable` adds per-partition
//! series (log size, segments, offsets, per-partition lag) — off by default, so that a node
//! with 100,000 partitions answers a scrape quickly.

pub mod histogram;
pub mod request;
pub mod topic;

use histogram::Histogram;
use request::RequestMetrics;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use topic::BrokerTopicStats;

/// `metrics.*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `metrics.enable`: record and serve metrics at all.
    pub enabled: bool,
    /// `metrics.partition.level.enable`: per-partition series.
    pub partition_level: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            partition_level: false,
        }
    }
}

/// What the node records as it runs.
#[derive(Debug)]
pub struct NodeMetrics {
    pub config: MetricsConfig,
    pub topics: BrokerTopicStats,
    pub requests: RequestMetrics,
    /// Kafka's `IsrShrinksPerSec` / `IsrExpandsPerSec`: committed ISR changes of partitions this
    /// broker leads.
    pub isr_shrinks: AtomicU64,
    pub isr_expands: AtomicU64,
    /// Offsets committed through this group coordinator (Kafka's `offset-commit-count`).
    pub offset_commits: AtomicU64,
    /// How long opening (and recovering) the logs took at start, in microseconds.
    pub log_recovery_us: AtomicU64,
    /// The tokio workers' busy time at the previous scrape, for the idle ratio between scrapes.
    runtime_busy: Mutex<Option<(Instant, Duration)>>,
}

/// Kafka's `LogFlushRateAndTimeMs`: every fsync of a log's segments (the storage crate reports
/// each through the observer [`NodeMetrics::new`] installs). Process-wide, as storage is.
pub static LOG_FLUSH: Histogram = Histogram::new();

/// Completed rebalances of the groups coordinated here (Kafka's
/// `group-completed-rebalance-count`). Process-wide: one node per process.
pub static GROUP_REBALANCES: AtomicU64 = AtomicU64::new(0);

fn observe_flush(d: Duration) {
    LOG_FLUSH.observe(d);
}

impl NodeMetrics {
    pub fn new(config: MetricsConfig) -> NodeMetrics {
        START.get_or_init(Instant::now);
        if config.enabled {
            rafka_storage::unified_log::flush::set_flush_observer(observe_flush);
        }
        NodeMetrics {
            config,
            topics: BrokerTopicStats::default(),
            requests: RequestMetrics::default(),
            isr_shrinks: AtomicU64::new(0),
            isr_expands: AtomicU64::new(0),
            offset_commits: AtomicU64::new(0),
            log_recovery_us: AtomicU64::new(0),
            runtime_busy: Mutex::new(None),
        }
    }

    /// The share of the tokio workers' time spent idle since the previous call (since the start
    /// on the first), 0 to 1: rafka's stand-in for Kafka's `NetworkProcessorAvgIdlePercent` —
    /// the connection tasks that do Kafka's processors' work run on these workers, so when they
    /// are never idle, requests queue.
    pub fn runtime_idle_ratio(&self, handle: &tokio::runtime::Handle) -> f64 {
        let m = handle.metrics();
        let workers = m.num_workers().max(1);
        let busy: Duration = (0..workers).map(|w| m.worker_total_busy_duration(w)).sum();
        let now = Instant::now();
        let mut prev = self.runtime_busy.lock().unwrap_or_else(|e| e.into_inner());
        let (since, busy_before) =
            prev.unwrap_or((*START.get_or_init(Instant::now), Duration::ZERO));
        *prev = Some((now, busy));
        let wall = now.saturating_duration_since(since).as_secs_f64() * workers as f64;
        if wall <= 0.0 {
            return 1.0;
        }
        (1.0 - busy.saturating_sub(busy_before).as_secs_f64() / wall).clamp(0.0, 1.0)
    }

    pub fn set_log_recovery_time(&self, d: Duration) {
        self.log_recovery_us.store(
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

/// When the process's metrics started (the idle ratio's first interval).
static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
