//! `rafka produce` and `rafka consume`: the console producer (one record per line of standard
//! input, with an optional key separator and headers) and the console consumer (from the
//! earliest or latest offset, an offset, or a timestamp; or in a consumer group, committing what
//! it printed), as `kafka-console-producer` / `kafka-console-consumer`.

use super::shared::{now_ms, Connection, ToolResult};
use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Args;
use rafka_client::consumer::{ConsumedRecord, Consumer, ConsumerConfig};
use rafka_client::group_member::GroupMember;
use rafka_client::offsets::{EARLIEST, LATEST};
use rafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;

#[derive(Debug, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[arg(long, short = 't')]
    pub topic: String,
    /// Split each line into key and value at the first occurrence of this separator.
    #[arg(long)]
    pub key_separator: Option<String>,
    /// Each line starts with headers: k1:v1,k2:v2 then a TAB, then the record.
    #[arg(long)]
    pub parse_headers: bool,
    /// Send every record to this partition (else Kafka's default partitioner).
    #[arg(long)]
    pub partition: Option<i32>,
    /// 0, 1 or all (-1).
    #[arg(long, default_value = "all", value_parser = parse_acks)]
    pub acks: i16,
}

pub fn parse_acks(s: &str) -> Result<i16, String> {
    match s {
        "all" | "-1" => Ok(-1),
        "0" => Ok(0),
        "1" => Ok(1),
        _ => Err(format!("acks must be 0, 1 or all, not {s:?}")),
    }
}

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[arg(long, short = 't')]
    pub topic: String,
    /// Consume in this group: partitions assigned by the group, positions from its committed
    /// offsets, what is printed committed.
    #[arg(long, short = 'g')]
    pub group: Option<String>,
    /// Only this partition.
    #[arg(long)]
    pub partition: Option<i32>,
    /// earliest, latest or an offset (with --partition). In group mode: where to start without
    /// a committed offset.
    #[arg(long, default_value = "latest")]
    pub offset: String,
    /// Start at the first record at or after this time (ms since the epoch or a datetime).
    #[arg(long)]
    pub from_timestamp: Option<String>,
    /// Stop after this many records.
    #[arg(long)]
    pub max_messages: Option<u64>,
    /// Stop when no record arrives for this long (ms).
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Print the key before the value, with --key-separator between.
    #[arg(long)]
    pub print_key: bool,
    #[arg(long, default_value = "\t")]
    pub key_separator: String,
    /// Print the headers (k:v,k2:v2) before the record.
    #[arg(long)]
    pub print_headers: bool,
    /// Print partition, offset and timestamp before the record.
    #[arg(long)]
    pub print_offset: bool,
}

fn split_headers(line: &str) -> (Vec<(String, Option<Bytes>)>, &str) {
    match line.split_once('\t') {
        None => (Vec::new(), line),
        Some((h, rest)) => {
            let headers = h
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|kv| match kv.split_once(':') {
                    Some((k, v)) => (k.to_owned(), Some(Bytes::copy_from_slice(v.as_bytes()))),
                    None => (kv.to_owned(), None),
                })
                .collect();
            (headers, rest)
        }
    }
}

pub async fn produce(args: ProduceArgs) -> ToolResult {
    let client = args.conn.connect().await?;
    let config = ProducerConfig {
        acks: args.acks,
        linger: Duration::from_millis(0),
        ..Default::default()
    };
    let mut producer = Producer::new(client, &args.topic, config).await?;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut sent = 0u64;
    while let Some(line) = lines.next_line().await.context("reading standard input")? {
        let (headers, rest) = if args.parse_headers {
            split_headers(&line)
        } else {
            (Vec::new(), line.as_str())
        };
        let (key, value) = match &args.key_separator {
            Some(sep) => match rest.split_once(sep.as_str()) {
                Some((k, v)) => (Some(Bytes::copy_from_slice(k.as_bytes())), v),
                None => bail!("line {}: no key separator {sep:?} in {rest:?}", sent + 1),
            },
            None => (None, rest),
        };
        producer
            .send(ProducerRecord {
                partition: args.partition,
                key,
                value: Some(Bytes::copy_from_slice(value.as_bytes())),
                headers,
                timestamp: now_ms(),
            })
            .await?;
        sent += 1;
        // Interactive input: send what was typed (batches still form when input is piped).
        if lines.get_ref().buffer().is_empty() {
            producer.flush().await?;
        }
    }
    producer.flush().await?;
    Ok(())
}

fn start_spec(offset: &str, from_timestamp: &Option<String>) -> anyhow::Result<i64> {
    if let Some(t) = from_timestamp {
        return match t.parse::<i64>() {
            Ok(ms) => Ok(ms),
            Err(_) => super::groups::parse_datetime(t),
        };
    }
    match offset {
        "earliest" => Ok(EARLIEST),
        "latest" => Ok(LATEST),
        _ => {
            bail!("--offset must be earliest, latest or a number with --partition, not {offset:?}")
        }
    }
}

fn print_record(
    args: &ConsumeArgs,
    out: &mut impl Write,
    r: &ConsumedRecord,
) -> std::io::Result<()> {
    let text = |b: &Option<Bytes>| {
        b.as_ref()
            .map_or("null".into(), |b| String::from_utf8_lossy(b).into_owned())
    };
    if args.conn.output == super::output::Format::Json {
        let j = json!({
            "partition": r.partition,
            "offset": r.offset,
            "timestamp": r.timestamp,
            "key": r.key.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()),
            "value": r.value.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()),
            "headers": r.headers.iter().map(|(k, v)| json!({
                "key": String::from_utf8_lossy(k),
                "value": v.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()),
            })).collect::<Vec<_>>(),
        });
        return writeln!(out, "{j}");
    }
    if args.print_offset {
        write!(
            out,
            "Partition:{}\tOffset:{}\tCreateTime:{}\t",
            r.partition, r.offset, r.timestamp
        )?;
    }
    if args.print_headers {
        let h: Vec<String> = r
            .headers
            .iter()
            .map(|(k, v)| format!("{}:{}", String::from_utf8_lossy(k), text(v)))
            .collect();
        write!(
            out,
            "{}\t",
            if h.is_empty() {
                "NO_HEADERS".into()
            } else {
                h.join(",")
            }
        )?;
    }
    if args.print_key {
        write!(out, "{}{}", text(&r.key), args.key_separator)?;
    }
    writeln!(out, "{}", text(&r.value))
}

pub async fn consume(args: ConsumeArgs) -> ToolResult {
    let client = args.conn.connect().await?;
    let config = ConsumerConfig {
        reset_to_earliest: args.offset == "earliest",
        ..Default::default()
    };
    let mut consumer = Consumer::new(client, &args.topic, config).await?;
    let mut member = args
        .group
        .as_ref()
        .map(|g| GroupMember::new(g, vec![args.topic.clone()]));
    let topic = args.topic.clone();
    if let Some(m) = member.as_mut() {
        if args.partition.is_some() {
            bail!("--partition cannot be used with --group");
        }
        assign_from_group(&mut consumer, m, &topic, &args).await?;
    } else {
        let partitions = match args.partition {
            Some(p) => {
                if !consumer.partitions().contains(&p) {
                    bail!("topic {topic} has no partition {p}");
                }
                vec![p]
            }
            None => consumer.partitions(),
        };
        let positions = match args.offset.parse::<i64>() {
            Ok(o) if args.from_timestamp.is_none() => {
                if args.partition.is_none() {
                    bail!("--offset with a number needs --partition");
                }
                partitions.iter().map(|p| (*p, o)).collect()
            }
            _ => {
                let spec = start_spec(&args.offset, &args.from_timestamp)?;
                consumer.offsets_for(&partitions, spec).await?
            }
        };
        consumer.assign(positions);
    }
    let stdout = std::io::stdout();
    let mut count = 0u64;
    let mut last_record = Instant::now();
    let result: anyhow::Result<()> = async {
        loop {
            if args.max_messages.is_some_and(|m| count >= m) {
                break;
            }
            if args
                .timeout_ms
                .is_some_and(|t| last_record.elapsed() >= Duration::from_millis(t))
            {
                break;
            }
            let records = consumer.poll().await?;
            if !records.is_empty() {
                last_record = Instant::now();
            }
            let mut printed: BTreeMap<(String, i32), i64> = BTreeMap::new();
            {
                let mut out = stdout.lock();
                for r in &records {
                    if args.max_messages.is_some_and(|m| count >= m) {
                        break;
                    }
                    print_record(&args, &mut out, r)?;
                    printed.insert((topic.clone(), r.partition), r.offset + 1);
                    count += 1;
                }
                out.flush()?;
            }
            if let Some(m) = member.as_mut() {
                if !printed.is_empty() {
                    m.commit(consumer.client(), &printed).await?;
                }
                if m.heartbeat(consumer.client()).await? {
                    assign_from_group(&mut consumer, m, &topic, &args).await?;
                }
            }
        }
        Ok(())
    }
    .await;
    if let Some(m) = member.as_mut() {
        m.leave(consumer.client()).await;
    }
    result?;
    eprintln!("Processed a total of {count} messages");
    Ok(())
}

async fn assign_from_group(
    consumer: &mut Consumer,
    member: &mut GroupMember,
    topic: &str,
    args: &ConsumeArgs,
) -> anyhow::Result<()> {
    let assignment = member.join(consumer.client()).await?;
    let partitions: Vec<i32> = assignment.get(topic).cloned().unwrap_or_default();
    let committed = consumer.client().committed_offsets(&member.group).await?;
    let missing: Vec<i32> = partitions
        .iter()
        .filter(|p| !committed.contains_key(&(topic.to_owned(), **p)))
        .copied()
        .collect();
    let mut positions: BTreeMap<i32, i64> = partitions
        .iter()
        .filter_map(|p| committed.get(&(topic.to_owned(), *p)).map(|o| (*p, *o)))
        .collect();
    if !missing.is_empty() {
        let spec = start_spec(&args.offset, &args.from_timestamp)?;
        positions.extend(consumer.offsets_for(&missing, spec).await?);
    }
    consumer.assign(positions);
    Ok(())
}
