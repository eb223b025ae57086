//! `rafka perf-test produce|consume`: load generators with Kafka's perf-test semantics and
//! summary lines (`kafka-producer-perf-test`, `kafka-consumer-perf-test`), with a live progress
//! line on a terminal (indicatif, on standard error).
//!
//! produce: `--num-records` records of `--record-size` random bytes (A–Z, as Kafka's), paced to
//! `--throughput` records/s (-1: as fast as it goes), `--acks`, `--batch-size`, `--linger-ms`.
//! Each record's latency runs from its hand-over to the producer to its acknowledgement, as
//! Kafka's callback measures it. Every 5 s a window line, at the end the summary:
//! `N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency, p50 ms 50th,
//! p95 ms 95th, p99 ms 99th, p999 ms 99.9th.`
//!
//! consume: `--messages` records from the earliest offsets of every partition, then Kafka's
//! consumer summary (start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg,
//! nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec).

use super::console::parse_acks;
use super::output::Format;
use super::{now_ms, Connection, ToolResult};
use anyhow::bail;
use bytes::Bytes;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rafka_client::consumer::{Consumer, ConsumerConfig};
use rafka_client::offsets::EARLIEST;
use rafka_client::producer::{Acked, Producer, ProducerConfig, ProducerRecord};
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
    /// Produce records and report throughput and latency.
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
        #[arg(long, default_value = "all", value_parser = parse_acks)]
        acks: i16,
        /// batch.size in bytes.
        #[arg(long, default_value_t = 16384)]
        batch_size: usize,
        /// linger.ms.
        #[arg(long, default_value_t = 5)]
        linger_ms: u64,
    },
    /// Consume records and report throughput.
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
        #[arg(long, default_value_t = 10_000)]
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

struct Window {
    start: Instant,
    count: u64,
    bytes: u64,
    total_us: u128,
    max_us: u32,
}

impl Window {
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

pub async fn run(args: PerfArgs) -> ToolResult {
    let format = args.conn.output;
    let client = args.conn.connect().await?;
    match args.mode {
        PerfMode::Produce {
            topic,
            num_records,
            record_size,
            throughput,
            acks,
            batch_size,
            linger_ms,
        } => {
            if num_records == 0 {
                bail!("--num-records must be positive");
            }
            let config = ProducerConfig {
                acks,
                batch_size,
                linger: Duration::from_millis(linger_ms),
                ..Default::default()
            };
            let mut producer = Producer::new(client, &topic, config).await?;
            // Random A-Z payloads, as Kafka's perf test makes them (a few, cycled).
            let mut seed = now_ms() as u64 | 1;
            let payloads: Vec<Bytes> = (0..16)
                .map(|_| {
                    (0..record_size)
                        .map(|_| {
                            seed ^= seed << 13;
                            seed ^= seed >> 7;
                            seed ^= seed << 17;
                            b'A' + (seed % 26) as u8
                        })
                        .collect::<Vec<u8>>()
                        .into()
                })
                .collect();
            let bar = progress(num_records);
            let mut lat = Latencies::default();
            let mut window = Window::new();
            let start = Instant::now();
            let mut acked_total = 0u64;
            let on_ack =
                |acks: Vec<Acked>, lat: &mut Latencies, window: &mut Window, total: &mut u64| {
                    let now = Instant::now();
                    for a in acks {
                        for c in a.created {
                            let us =
                                now.duration_since(c).as_micros().min(u128::from(u32::MAX)) as u32;
                            lat.record(us);
                            window.count += 1;
                            window.bytes += record_size as u64;
                            window.total_us += u128::from(us);
                            window.max_us = window.max_us.max(us);
                            *total += 1;
                        }
                    }
                    bar.set_position(*total);
                    if window.start.elapsed() >= Duration::from_secs(5) {
                        bar.suspend(|| println!("{}", window.line()));
                        *window = Window::new();
                    }
                };
            for i in 0..num_records {
                if throughput > 0.0 {
                    // Kafka's ThroughputThrottler: sleep when ahead of the target rate.
                    let due = Duration::from_secs_f64(i as f64 / throughput);
                    let elapsed = start.elapsed();
                    if due > elapsed {
                        let acks = producer.poll().await?;
                        on_ack(acks, &mut lat, &mut window, &mut acked_total);
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
                on_ack(acks, &mut lat, &mut window, &mut acked_total);
            }
            let acks = producer.flush().await?;
            on_ack(acks, &mut lat, &mut window, &mut acked_total);
            bar.finish_and_clear();
            let secs = start.elapsed().as_secs_f64().max(1e-9);
            let rate = acked_total as f64 / secs;
            let mb = acked_total as f64 * record_size as f64 / secs / (1024.0 * 1024.0);
            let p = lat.percentiles(&[0.5, 0.95, 0.99, 0.999]);
            match format {
                Format::Json => println!(
                    "{}",
                    json!({
                        "records": acked_total, "records_per_sec": rate, "mb_per_sec": mb,
                        "avg_latency_ms": lat.avg_ms(), "max_latency_ms": f64::from(lat.max_us) / 1000.0,
                        "p50_ms": p[0], "p95_ms": p[1], "p99_ms": p[2], "p999_ms": p[3],
                    })
                ),
                Format::Table => println!(
                    "{acked_total} records sent, {rate:.1} records/sec ({mb:.2} MB/sec), {:.2} ms avg latency, \
                     {:.2} ms max latency, {:.2} ms 50th, {:.2} ms 95th, {:.2} ms 99th, {:.2} ms 99.9th.",
                    lat.avg_ms(),
                    f64::from(lat.max_us) / 1000.0,
                    p[0], p[1], p[2], p[3]
                ),
            }
        }
        PerfMode::Consume {
            topic,
            messages,
            fetch_size,
            timeout_ms,
        } => {
            let config = ConsumerConfig {
                partition_max_bytes: fetch_size,
                ..Default::default()
            };
            let start_ms = now_ms();
            let start = Instant::now();
            let mut consumer = Consumer::new(client, &topic, config).await?;
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
                    if last.elapsed() >= Duration::from_millis(timeout_ms) {
                        bar.finish_and_clear();
                        eprintln!("WARNING: Exiting before consuming the expected number of messages: timeout ({timeout_ms} ms) exceeded.");
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
                    println!("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec");
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
        }
    }
    Ok(())
}
