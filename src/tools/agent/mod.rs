//! `rafka agent`: the log-collection agent. It follows the collection tasks in the compacted
//! tasks topic (see `tasks`), tails the files each task names on this host, and produces their
//! lines idempotently to the task's topic with the file, host and business line as headers.
//!
//! - [`lines`]: bytes → records (lines, multi-line records, pieces of overlong lines).
//! - [`state`]: the durable read positions.
//! - [`tail`]: the files followed: globs, new files, rotation by rename and by truncation.
//!
//! The loop, every [`TICK`]: apply the newest tasks; look for files (globs); read what was
//! appended (at most `--max-in-flight-bytes` in all); produce it; wait for the broker's
//! acknowledgement; then save the positions (fsync'd). So the broker holds every record before
//! its position is saved.
//!
//! Guarantee: **exactly once** while the agent and the broker run (a lost answer is resent
//! under the same producer id and sequence and the broker drops the duplicate), **at least
//! once** across a crash: records acknowledged but not yet in the saved positions when the
//! agent dies (one loop's worth at most) are sent again on restart under a new producer id.
//! Nothing written to a file is lost while the file (or its rotated name in the same
//! directory) exists when the agent reads it; a file truncated in place loses the lines
//! written after the last read and before the truncation (copytruncate's known race).

pub mod lines;
pub mod state;
pub mod stats;
pub mod tail;

use super::shared::{Connection, ToolResult};
use super::tasks::{self, Tasks, DEFAULT_TASKS_TOPIC};
use clap::Args;
use rafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use state::Positions;
use stats::Stats;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tail::Tailer;

/// One loop of the agent.
pub const TICK: Duration = Duration::from_millis(200);

#[derive(Debug, Args)]
pub struct AgentArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// The compacted topic that holds the collection tasks.
    #[arg(long, default_value = DEFAULT_TASKS_TOPIC)]
    pub tasks_topic: String,
    /// Where the read positions are kept (one agent per directory).
    #[arg(long)]
    pub state_dir: PathBuf,
    /// This host's name, sent as the `host` header (tasks may name the hosts that run them).
    #[arg(long)]
    pub host: Option<String>,
    /// The most bytes one record may have; a longer line is cut into pieces of this size (the
    /// `rafka.split` header marks them). Keep it under the broker's message.max.bytes.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_record_bytes: usize,
    /// The most bytes read from files and not yet acknowledged by the broker.
    #[arg(long, default_value_t = 8 << 20)]
    pub max_in_flight_bytes: usize,
    /// A multi-line record still open is sent once its file has not grown for this long (ms).
    #[arg(long, default_value_t = 1000)]
    pub multiline_flush_ms: u64,
}

pub async fn run(args: AgentArgs) -> ToolResult {
    if args.max_in_flight_bytes <= args.max_record_bytes {
        anyhow::bail!(
            "--max-in-flight-bytes ({}) must be larger than --max-record-bytes ({})",
            args.max_in_flight_bytes,
            args.max_record_bytes
        );
    }
    super::shared::init_logging();
    let host = match &args.host {
        Some(h) => h.clone(),
        None => hostname(),
    };
    let positions = Positions::load(&args.state_dir)?;
    let mut tasks_rx = tasks::watch_tasks(&args.conn, &args.tasks_topic).await?;
    let mut tailer = Tailer::new(
        host.clone(),
        positions,
        args.max_record_bytes,
        Duration::from_millis(args.multiline_flush_ms),
    );
    let mut producers: BTreeMap<String, Producer> = BTreeMap::new();
    let mut broken_topics: BTreeMap<String, Instant> = BTreeMap::new();
    let mut stats = Stats::default();
    let mut tasks: Tasks = tasks_rx.borrow_and_update().clone();
    tailer.set_tasks(&tasks);
    tracing::info!(%host, tasks = tasks.len(), "agent started");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // `changed()` below marks the value seen, so its wake-up is remembered here.
    let mut tasks_changed = false;
    loop {
        if std::mem::take(&mut tasks_changed) || tasks_rx.has_changed().unwrap_or(false) {
            tasks = tasks_rx.borrow_and_update().clone();
            tailer.set_tasks(&tasks);
        }
        tailer.scan(&mut stats);
        let batch = tailer.read(args.max_in_flight_bytes, &mut stats);
        if !batch.records.is_empty() {
            let acked = produce(
                &args.conn,
                &mut producers,
                &mut broken_topics,
                &batch.records,
                &mut stats,
            )
            .await;
            tailer.acknowledge(&batch, &acked, &mut stats);
            stats.files = tailer.file_count();
            write_stats(&args.state_dir, &stats);
        }
        if let Err(e) = tailer.save() {
            tracing::error!(error = %e, "cannot save the read positions");
        }
        // Sleep unless there is more to read at once.
        if !batch.more {
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                Ok(()) = tasks_rx.changed() => tasks_changed = true,
                _ = term.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
            }
        }
    }
    stats.files = tailer.file_count();
    write_stats(&args.state_dir, &stats);
    tracing::info!(?stats, "agent stopped");
    Ok(())
}

/// Produces `records` (in order) to their topics and waits for the broker. Returns, per topic,
/// whether its positions may move: `true` when its records are acknowledged (or refused for
/// good by the broker: dropped and counted), `false` when they must be read again (the topic
/// does not exist yet, the broker stayed away). A broker that is away is waited for (the records are kept by the
/// producer with their sequence numbers, so a resend is not a duplicate).
async fn produce(
    conn: &Connection,
    producers: &mut BTreeMap<String, Producer>,
    broken: &mut BTreeMap<String, Instant>,
    records: &[tail::OutRecord],
    stats: &mut Stats,
) -> BTreeMap<String, bool> {
    let mut by_topic: BTreeMap<&str, Vec<&tail::OutRecord>> = BTreeMap::new();
    for r in records {
        by_topic.entry(r.topic.as_str()).or_default().push(r);
    }
    let mut result = BTreeMap::new();
    for (topic, recs) in by_topic {
        if broken
            .get(topic)
            .is_some_and(|t| t.elapsed() < Duration::from_secs(2))
        {
            result.insert(topic.to_owned(), false);
            continue;
        }
        if !producers.contains_key(topic) {
            match new_producer(conn, topic).await {
                Ok(p) => {
                    producers.insert(topic.to_owned(), p);
                }
                Err(e) => {
                    tracing::warn!(%topic, error = %e, "cannot produce to the topic yet");
                    broken.insert(topic.to_owned(), Instant::now());
                    result.insert(topic.to_owned(), false);
                    continue;
                }
            }
        }
        let producer = producers.get_mut(topic).expect("invariant: inserted above");
        let ok = send_all(producer, topic, &recs, stats).await;
        if ok {
            broken.remove(topic);
        } else {
            broken.insert(topic.to_owned(), Instant::now());
        }
        result.insert(topic.to_owned(), ok);
    }
    result
}

async fn new_producer(conn: &Connection, topic: &str) -> anyhow::Result<Producer> {
    let client = conn.connect().await?;
    let config = ProducerConfig {
        idempotent: true,
        acks: -1,
        linger: Duration::from_secs(3600),
        batch_size: 256 * 1024,
        ..Default::default()
    };
    Ok(Producer::new(client, topic, config).await?)
}

/// Sends and flushes; retries a flush while the failure may pass (broker away, leadership
/// moving). Returns whether every record is acknowledged.
async fn send_all(
    producer: &mut Producer,
    topic: &str,
    recs: &[&tail::OutRecord],
    stats: &mut Stats,
) -> bool {
    for r in recs {
        let record = ProducerRecord {
            partition: None,
            key: Some(r.key.clone()),
            value: Some(r.value.clone()),
            headers: r.headers.clone(),
            timestamp: super::shared::now_ms(),
        };
        // A send error comes from flushing earlier batches; the record itself is queued.
        if let Err(e) = producer.send(record).await {
            tracing::debug!(%topic, error = %e, "send");
        }
    }
    let mut wait = Duration::from_millis(200);
    // Bounded: after 60 failed flushes (each waits up to default.api.timeout.ms) the records
    // are dropped from the producer and read again from the saved positions (possibly
    // producing duplicates, as a crash would).
    for _ in 0..60 {
        match producer.flush().await {
            Ok(_) if !producer.has_unacked() => {
                let n = recs.len() as u64;
                stats.records += n;
                stats.bytes += recs.iter().map(|r| r.value.len() as u64).sum::<u64>();
                return true;
            }
            Ok(_) => continue,
            Err(e) if super::shared::transient(&e) => {
                tracing::warn!(%topic, error = %e, "the broker did not acknowledge; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(10));
            }
            Err(e) if refused_for_good(&e) => {
                tracing::error!(%topic, error = %e, records = recs.len(), "records refused by the broker: dropped");
                stats.refused += recs.len() as u64;
                producer.discard();
                return true;
            }
            Err(e) => {
                tracing::error!(%topic, error = %e, "records not accepted; they are read again");
                producer.discard();
                return false;
            }
        }
    }
    producer.discard();
    false
}

/// Errors about the records themselves: sending them again cannot succeed.
fn refused_for_good(e: &rafka_client::ClientError) -> bool {
    use rafka_protocol::ErrorCode as E;
    matches!(
        e.code(),
        Some(E::MessageTooLarge | E::RecordListTooLarge | E::InvalidRecord | E::CorruptMessage)
    )
}

fn write_stats(dir: &std::path::Path, stats: &Stats) {
    if let Ok(bytes) = serde_json::to_vec_pretty(stats) {
        let tmp = dir.join("stats.json.tmp");
        if std::fs::write(&tmp, bytes).is_ok() {
            let _ = std::fs::rename(tmp, dir.join("stats.json"));
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
