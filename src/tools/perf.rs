//! `rafka perf-test produce|consume|e2e`: load generators with Kafka's perf-test semantics and
//! summary lines (`kafka-producer-perf-test`, `kafka-consumer-perf-test`,
//! `kafka-e2e-latency`), with a live progress line on a terminal (indicatif, on standard error).
//!
//! produce: `--num-records` records of `--record-size` random bytes (A–Z, as Kafka's), paced to
//! `--throughput` records/s (-1: as fast as it goes), `--acks`, `--batch-size`, `--linger-ms`
//! (or Kafka's `--producer-props acks=1 batch.size=… linger.ms=… bootstrap.servers=…`, client
//! keys included; an explicit flag wins). Each record's latency runs from its hand-over to the
//! producer to its acknowledgement, as Kafka's callback measures it. Every 5 s a window line,
//! at the end the summary:
//! `N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency, p50 ms 50th,
//! p95 ms 95th, p99 ms 99th, p999 ms 99.9th.` (percentiles in fractional ms where Kafka prints
//! whole ms: at sub-millisecond latencies Kafka's would all read 0).
//!
//! consume: `--messages` records from the earliest offsets of every partition, then Kafka's
//! consumer summary (start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg,
//! nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec). Partitions are
//! assigned, not joined through a group, so rebalance.time.ms is 0.
//!
//! e2e: Kafka's end-to-end latency test (`EndToEndLatency`) in one process: a consumer
//! assigned every partition of the topic at its end, then for each of `--num-records` records a
//! fresh random value is produced (`--acks`, no linger), acknowledged, and polled back by the
//! consumer (`fetch.max.wait.ms` 0 as Kafka's, so the consumer asks again at once); the record's
//! latency runs from the send to the moment the consumer holds it, and the value read must be
//! the value sent (anything else, another writer's record included, fails the run). Window
//! lines and the summary line are the produce mode's, latencies being end to end.

use super::console::parse_acks;
use super::output::Format;
use super::shared::{key_value, now_ms, Connection, ToolResult};
use anyhow::{bail, Context};
use bytes::Bytes;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rafka_client::consumer::{Consumer, ConsumerConfig};
use rafka_client::offsets::{EARLIEST, LATEST};
use rafka_client::producer::{Acked, Producer, ProducerConfig, ProducerRecord};
use rafka_client::{Client, ClientConfig};
use serde_json::json;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct PerfArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub mode: PerfMode,
}

#[derive(Debug, Subcommand)]
pub enum PerfMode {
    /// Produce records and report throughput and latency (as kafka-producer-perf-test).
    Produce {
        #[arg(long, short = 't')]
        topic: String,
        #[arg(long)]
        num_records: u64,
        /// Bytes per record value.
        #[arg(long)]
        record_size: usize,
        /// Records per second at most; -1 for no limit.
        #[arg(long, allow_hyphen_values = true)]
        throughput: f64,
        /// acks: 0, 1 or all (default all, as Kafka's producer).
        #[arg(long, value_parser = parse_acks)]
        acks: Option<i16>,
        /// batch.size in bytes (default 16384).
        #[arg(long)]
        batch_size: Option<usize>,
        /// linger.ms (default 5, as Kafka's producer since 4.0).
        #[arg(long)]
        linger_ms: Option<u64>,
        /// Kafka's producer properties, key=value: acks, batch.size, linger.ms,
        /// bootstrap.servers and the client keys of --command-config.
        #[arg(long, num_args = 1.., value_parser = key_value)]
        producer_props: Vec<(String, String)>,
    },
    /// Consume records and report throughput (as kafka-consumer-perf-test).
    Consume {
        #[arg(long, short = 't')]
        topic: String,
        /// Records to read.
        #[arg(long)]
        messages: u64,
        /// max.partition.fetch.bytes.
        #[arg(long, default_value_t = 1_048_576)]
        fetch_size: i32,
        /// Give up when no record arrives for this long (ms).
        #[arg(long, alias = "timeout", default_value_t = 10_000)]
        timeout_ms: u64,
        /// Print the values line without its header.
        #[arg(long)]
        hide_header: bool,
    },
    /// Produce and consume in one process; each record's end-to-end latency (as
    /// kafka-e2e-latency).
    E2e {
        #[arg(long, short = 't')]
        topic: String,
        #[arg(long)]
        num_records: u64,
        /// Bytes per record value.
        #[arg(long)]
        record_size: usize,
        /// acks: 0, 1 or all.
        #[arg(long, default_value = "all", value_parser = parse_acks)]
        acks: i16,
        /// The consumer's fetch.max.wait.ms: 0 (Kafka's) polls again at once; more lets the
        /// broker hold the fetch until the record arrives.
        #[arg(long, default_value_t = 0)]
        fetch_max_wait_ms: i32,
        /// Fail when a record has not come back after this long (ms).
        #[arg(long, default_value_t = 60_000)]
        timeout_ms: u64,
    },
}

fn progress(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {pos}/{len} records [{elapsed_precise}] {per_sec} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Latencies in µs; percentiles as Kafka computes them (the sorted sample at ⌊n·p⌋), in ms.
#[derive(Debug, Default)]
pub struct Latencies {
    us: Vec<u32>,
    total_us: u128,
    max_us: u32,
}

impl Latencies {
    fn record(&mut self, us: u32) {
        self.us.push(us);
        self.total_us += u128::from(us);
        self.max_us = self.max_us.max(us);
    }
    fn avg_ms(&self) -> f64 {
        if self.us.is_empty() {
            0.0
        } else {
            self.total_us as f64 / self.us.len() as f64 / 1000.0
        }
    }
    fn percentiles(&mut self, ps: &[f64]) -> Vec<f64> {
        self.us.sort_unstable();
        ps.iter()
            .map(|p| {
                let i = ((self.us.len() as f64 * p) as usize).min(self.us.len().saturating_sub(1));
                self.us.get(i).map_or(0.0, |v| f64::from(*v) / 1000.0)
            })
            .collect()
    }
}

/// Kafka's reporting window: a line every 5 s of what completed in it.
struct Window {
    start: Instant,
    count: u64,
    bytes: u64,
    total_us: u128,
    max_us: u32,
}

impl Window {
    const INTERVAL: Duration = Duration::from_secs(5);

    fn new() -> Window {
        Window {
            start: Instant::now(),
            count: 0,
            bytes: 0,
            total_us: 0,
            max_us: 0,
        }
    }
    fn line(&self) -> String {
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        format!(
            "{} records sent, {:.1} records/sec ({:.2} MB/sec), {:.1} ms avg latency, {:.1} ms max latency.",
            self.count,
            self.count as f64 / secs,
            self.bytes as f64 / secs / (1024.0 * 1024.0),
            if self.count == 0 { 0.0 } else { self.total_us as f64 / self.count as f64 / 1000.0 },
            f64::from(self.max_us) / 1000.0
        )
    }
}

/// What the produce and e2e modes count: every latency, the current window, the progress line.
struct Stats {
    record_size: usize,
    start: Instant,
    count: u64,
    latencies: Latencies,
    window: Window,
    bar: ProgressBar,
}

impl Stats {
    fn new(total: u64, record_size: usize) -> Stats {
        Stats {
            record_size,
            start: Instant::now(),
            count: 0,
            latencies: Latencies::default(),
            window: Window::new(),
            bar: progress(total),
        }
    }

    /// One record done, `latency` after it was sent.
    fn record(&mut self, latency: Duration) {
        let us = latency.as_micros().min(u128::from(u32::MAX)) as u32;
        self.latencies.record(us);
        self.window.count += 1;
        self.window.bytes += self.record_size as u64;
        self.window.total_us += u128::from(us);
        self.window.max_us = self.window.max_us.max(us);
        self.count += 1;
    }

    /// Moves the progress line and prints the window when it is due.
    fn tick(&mut self) {
        self.bar.set_position(self.count);
        if self.window.start.elapsed() >= Window::INTERVAL {
            let line = self.window.line();
            self.bar.suspend(|| println!("{line}"));
            self.window = Window::new();
        }
    }

    fn acked(&mut self, acks: Vec<Acked>) {
        let now = Instant::now();
        for a in acks {
            for c in a.created {
                self.record(now.duration_since(c));
            }
        }
        self.tick();
    }

    /// Kafka's summary line (or its JSON).
    fn print_summary(mut self, format: Format) {
        self.bar.finish_and_clear();
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        let n = self.count;
        let rate = n as f64 / secs;
        let mb = n as f64 * self.record_size as f64 / secs / (1024.0 * 1024.0);
        let lat = &mut self.latencies;
        let p = lat.percentiles(&[0.5, 0.95, 0.99, 0.999]);
        match format {
            Format::Json => println!(
                "{}",
                json!({
                    "records": n, "records_per_sec": rate, "mb_per_sec": mb,
                    "avg_latency_ms": lat.avg_ms(), "max_latency_ms": f64::from(lat.max_us) / 1000.0,
                    "p50_ms": p[0], "p95_ms": p[1], "p99_ms": p[2], "p999_ms": p[3],
                })
            ),
            Format::Table => println!(
                "{n} records sent, {rate:.1} records/sec ({mb:.2} MB/sec), {:.2} ms avg latency, \
                 {:.2} ms max latency, {:.2} ms 50th, {:.2} ms 95th, {:.2} ms 99th, {:.2} ms 99.9th.",
                lat.avg_ms(),
                f64::from(lat.max_us) / 1000.0,
                p[0],
                p[1],
                p[2],
                p[3]
            ),
        }
    }
}

/// Random A–Z bytes, as Kafka's perf tests make their payloads.
struct Payloads(u64);

impl Payloads {
    fn new() -> Payloads {
        Payloads(now_ms() as u64 | 1)
    }
    fn next(&mut self, size: usize) -> Bytes {
        (0..size)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                b'A' + (self.0 % 26) as u8
            })
            .collect::<Vec<u8>>()
            .into()
    }
}

/// The producer's client and settings: `--producer-props` over `--command-config`, the flags
/// over both.
async fn producer_client(
    conn: &Connection,
    props: Vec<(String, String)>,
    acks: Option<i16>,
    batch_size: Option<usize>,
    linger_ms: Option<u64>,
) -> anyhow::Result<(Client, ProducerConfig)> {
    let mut client_config = conn.client_config()?;
    let mut bootstrap = conn.bootstrap_server.clone();
    let mut config = ProducerConfig::default();
    if !props.is_empty() {
        let mut merged = client_config.properties.clone();
        merged.extend(props);
        client_config = ClientConfig::from_properties(merged)?;
        if let Some(b) = client_config.get("bootstrap.servers") {
            bootstrap = b.to_owned();
        }
        if let Some(a) = client_config.get("acks") {
            config.acks = parse_acks(a).map_err(anyhow::Error::msg)?;
        }
        if let Some(b) = client_config.get("batch.size") {
            config.batch_size = b.parse().with_context(|| format!("batch.size: {b:?}"))?;
        }
        if let Some(l) = client_config.get("linger.ms") {
            config.linger =
                Duration::from_millis(l.parse().with_context(|| format!("linger.ms: {l:?}"))?);
        }
    }
    config.acks = acks.unwrap_or(config.acks);
    config.batch_size = batch_size.unwrap_or(config.batch_size);
    config.linger = linger_ms.map_or(config.linger, Duration::from_millis);
    Ok((Client::connect(&bootstrap, client_config).await?, config))
}

pub async fn run(args: PerfArgs) -> ToolResult {
    let format = args.conn.output;
    match args.mode {
        PerfMode::Produce {
            topic,
            num_records,
            record_size,
            throughput,
            acks,
            batch_size,
            linger_ms,
            producer_props,
        } => {
            if num_records == 0 {
                bail!("--num-records must be positive");
            }
            let (client, config) =
                producer_client(&args.conn, producer_props, acks, batch_size, linger_ms).await?;
            let producer = Producer::new(client, &topic, config).await?;
            produce(producer, num_records, record_size, throughput, format).await
        }
        PerfMode::Consume {
            topic,
            messages,
            fetch_size,
            timeout_ms,
            hide_header,
        } => {
            let config = ConsumerConfig {
                partition_max_bytes: fetch_size,
                ..Default::default()
            };
            let start_ms = now_ms();
            let start = Instant::now();
            let consumer = Consumer::new(args.conn.connect().await?, &topic, config).await?;
            consume(
                consumer,
                messages,
                Duration::from_millis(timeout_ms),
                hide_header,
                (start_ms, start),
                format,
            )
            .await
        }
        PerfMode::E2e {
            topic,
            num_records,
            record_size,
            acks,
            fetch_max_wait_ms,
            timeout_ms,
        } => {
            if num_records == 0 {
                bail!("--num-records must be positive");
            }
            let config = ProducerConfig {
                acks,
                linger: Duration::ZERO,
                ..Default::default()
            };
            let producer = Producer::new(args.conn.connect().await?, &topic, config).await?;
            let config = ConsumerConfig {
                max_wait_ms: fetch_max_wait_ms.max(0),
                ..Default::default()
            };
            let consumer = Consumer::new(args.conn.connect().await?, &topic, config).await?;
            e2e(
                producer,
                consumer,
                num_records,
                record_size,
                Duration::from_millis(timeout_ms),
                format,
            )
            .await
        }
    }
}

async fn produce(
    mut producer: Producer,
    num_records: u64,
    record_size: usize,
    throughput: f64,
    format: Format,
) -> ToolResult {
    // A few payloads, cycled: making one per record would cost more than sending it.
    let mut random = Payloads::new();
    let payloads: Vec<Bytes> = (0..16).map(|_| random.next(record_size)).collect();
    let mut stats = Stats::new(num_records, record_size);
    for i in 0..num_records {
        if throughput > 0.0 {
            // Kafka's ThroughputThrottler: sleep when ahead of the target rate.
            let due = Duration::from_secs_f64(i as f64 / throughput);
            let elapsed = stats.start.elapsed();
            if due > elapsed {
                stats.acked(producer.poll().await?);
                tokio::time::sleep(due - elapsed).await;
            }
        }
        let acks = producer
            .send(ProducerRecord {
                partition: None,
                key: None,
                value: Some(payloads[(i % 16) as usize].clone()),
                headers: Vec::new(),
                timestamp: now_ms(),
            })
            .await?;
        stats.acked(acks);
    }
    stats.acked(producer.flush().await?);
    stats.print_summary(format);
    Ok(())
}

async fn consume(
    mut consumer: Consumer,
    messages: u64,
    timeout: Duration,
    hide_header: bool,
    (start_ms, start): (i64, Instant),
    format: Format,
) -> ToolResult {
    let partitions = consumer.partitions();
    let positions = consumer.offsets_for(&partitions, EARLIEST).await?;
    consumer.assign(positions);
    let setup = start.elapsed();
    let bar = progress(messages);
    let (mut count, mut bytes) = (0u64, 0u64);
    let mut last = Instant::now();
    while count < messages {
        let records = consumer.poll().await?;
        if records.is_empty() {
            if last.elapsed() >= timeout {
                bar.finish_and_clear();
                eprintln!(
                    "WARNING: Exiting before consuming the expected number of messages: timeout ({} ms) exceeded.",
                    timeout.as_millis()
                );
                break;
            }
            continue;
        }
        last = Instant::now();
        for r in records.iter().take((messages - count) as usize) {
            bytes += r.value.as_ref().map_or(0, |v| v.len() as u64)
                + r.key.as_ref().map_or(0, |k| k.len() as u64);
            count += 1;
        }
        bar.set_position(count);
    }
    bar.finish_and_clear();
    let total = start.elapsed().as_secs_f64().max(1e-9);
    let fetch = (start.elapsed() - setup).as_secs_f64().max(1e-9);
    let mb = bytes as f64 / (1024.0 * 1024.0);
    let fmt_time = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms).map_or(ms.to_string(), |d| {
            d.format("%Y-%m-%d %H:%M:%S:%3f").to_string()
        })
    };
    let end_ms = now_ms();
    match format {
        Format::Json => println!(
            "{}",
            json!({
                "start_time_ms": start_ms, "end_time_ms": end_ms,
                "data_consumed_mb": mb, "mb_per_sec": mb / total,
                "records": count, "records_per_sec": count as f64 / total,
                "rebalance_time_ms": 0, "fetch_time_ms": (fetch * 1000.0) as u64,
                "fetch_mb_per_sec": mb / fetch, "fetch_records_per_sec": count as f64 / fetch,
            })
        ),
        Format::Table => {
            if !hide_header {
                println!("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec");
            }
            println!(
                "{}, {}, {mb:.4}, {:.4}, {count}, {:.4}, 0, {}, {:.4}, {:.4}",
                fmt_time(start_ms),
                fmt_time(end_ms),
                mb / total,
                count as f64 / total,
                (fetch * 1000.0) as u64,
                mb / fetch,
                count as f64 / fetch
            );
        }
    }
    if count < messages {
        bail!("consumed {count} of {messages} records");
    }
    Ok(())
}

async fn e2e(
    mut producer: Producer,
    mut consumer: Consumer,
    num_records: u64,
    record_size: usize,
    timeout: Duration,
    format: Format,
) -> ToolResult {
    let partitions = consumer.partitions();
    let ends = consumer.offsets_for(&partitions, LATEST).await?;
    consumer.assign(ends);
    let mut random = Payloads::new();
    let mut stats = Stats::new(num_records, record_size);
    for i in 0..num_records {
        // A fresh value each time, so that a record read back can only be this one.
        let value = random.next(record_size);
        let begin = Instant::now();
        producer
            .send(ProducerRecord {
                partition: None,
                key: None,
                value: Some(value.clone()),
                headers: Vec::new(),
                timestamp: now_ms(),
            })
            .await?;
        producer.flush().await?;
        let records = loop {
            let records = consumer.poll().await?;
            if !records.is_empty() {
                break records;
            }
            if begin.elapsed() >= timeout {
                bail!(
                    "record {i} was not read back within {} ms",
                    timeout.as_millis()
                );
            }
        };
        let latency = begin.elapsed();
        if records.len() != 1 {
            bail!(
                "record {i}: {} records read back where one was sent (does something else write to the topic?)",
                records.len()
            );
        }
        if records[0].value.as_ref() != Some(&value) {
            bail!(
                "record {i}: the value read back at {}-{} offset {} is not the value sent",
                consumer.topic(),
                records[0].partition,
                records[0].offset
            );
        }
        stats.record(latency);
        stats.tick();
    }
    stats.print_summary(format);
    Ok(())
}
