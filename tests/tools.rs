//! The `rafka <tool>` subcommands run as processes (the built binary) against a real broker,
//! their table and JSON output checked: topics, configs, groups (describe with lag; the
//! reset-offsets plan and its effect on a consumer group made by librdkafka), quorum, the console
//! producer and consumer, the perf tests, dump-log on Kafka-format files (librdkafka's batches
//! from `shared/testdata`, made corrupt and truncated) and on the broker's own files; bad flags
//! (exit 2) and a broker that is down (one line, bounded wait, exit 1).

mod common;

use common::{Cluster, Deadline, RAFKA};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::BaseRecord;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);
const GROUP_CONFIG: [(&str, &str); 2] = [
    ("offsets.topic.replication.factor", "1"),
    ("group.initial.rebalance.delay.ms", "0"),
];

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
    fn ok(self) -> Out {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs `rafka args…` with `stdin`, killed after `limit`.
fn tool_with(args: &[&str], stdin: &str, limit: Duration) -> Out {
    let mut child = Command::new(RAFKA)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rafka");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(data.as_bytes());
    });
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let o = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let e = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rafka {args:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    Out {
        code: status.code().unwrap_or(-1),
        stdout: o.join().expect("stdout thread"),
        stderr: e.join().expect("stderr thread"),
    }
}

fn tool(args: &[&str]) -> Out {
    tool_with(args, "", T)
}

#[test]
fn topics_configs_quorum_and_console_clients() {
    let cluster = Cluster::start(1, &GROUP_CONFIG);
    let b = cluster.bootstrap();
    let b = b.as_str();
    tool(&[
        "topics",
        "create",
        "-b",
        b,
        "-t",
        "tools-a",
        "--partitions",
        "3",
        "--replication-factor",
        "1",
    ])
    .ok();
    let again = tool(&[
        "topics",
        "create",
        "-b",
        b,
        "-t",
        "tools-a",
        "--partitions",
        "3",
    ]);
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(
        again.stderr.contains("TOPIC_ALREADY_EXISTS"),
        "{}",
        again.stderr
    );
    tool(&[
        "topics",
        "create",
        "-b",
        b,
        "-t",
        "tools-a",
        "--if-not-exists",
    ])
    .ok();

    let list = tool(&["topics", "list", "-b", b, "--output", "json"])
        .ok()
        .json();
    assert!(
        list.as_array()
            .expect("array")
            .iter()
            .any(|t| t["topic"] == "tools-a"),
        "{list}"
    );

    let parts = tool(&[
        "topics", "describe", "-b", b, "-t", "tools-a", "--output", "json",
    ])
    .ok()
    .json();
    let parts = parts.as_array().expect("array");
    assert_eq!(parts.len(), 3);
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(p["partition"], i as i64);
        assert_eq!(p["leader"], 1);
        assert_eq!(p["replicas"], serde_json::json!([1]));
        assert_eq!(p["isr"], serde_json::json!([1]));
    }
    let table = tool(&["topics", "describe", "-b", b, "-t", "tools-a"])
        .ok()
        .stdout;
    let mut lines = table.lines();
    assert_eq!(
        lines
            .next()
            .map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec![
            "TOPIC",
            "PARTITION",
            "LEADER",
            "LEADER-EPOCH",
            "REPLICAS",
            "ISR",
            "OFFLINE"
        ])
    );
    assert_eq!(
        lines.filter(|l| l.starts_with("tools-a ")).count(),
        3,
        "{table}"
    );
    let under = tool(&[
        "topics",
        "describe",
        "-b",
        b,
        "--under-replicated",
        "--output",
        "json",
    ])
    .ok()
    .json();
    assert_eq!(under, serde_json::json!([]));
    let unavailable = tool(&[
        "topics",
        "describe",
        "-b",
        b,
        "--unavailable",
        "--output",
        "json",
    ])
    .ok()
    .json();
    assert_eq!(unavailable, serde_json::json!([]));

    tool(&[
        "topics",
        "alter",
        "-b",
        b,
        "-t",
        "tools-a",
        "--partitions",
        "5",
    ])
    .ok();
    let parts = tool(&[
        "topics", "describe", "-b", b, "-t", "tools-a", "--output", "json",
    ])
    .ok()
    .json();
    assert_eq!(parts.as_array().map(Vec::len), Some(5));

    // Configs: set, append to a list, describe with sources, delete.
    tool(&[
        "configs",
        "alter",
        "-b",
        b,
        "--entity-type",
        "topics",
        "--entity-name",
        "tools-a",
        "--add-config",
        "retention.ms=123456,cleanup.policy=[delete]",
    ])
    .ok();
    tool(&[
        "configs",
        "alter",
        "-b",
        b,
        "--entity-type",
        "topics",
        "--entity-name",
        "tools-a",
        "--append-config",
        "cleanup.policy=compact",
    ])
    .ok();
    let configs = tool(&[
        "configs",
        "describe",
        "-b",
        b,
        "--entity-type",
        "topics",
        "--entity-name",
        "tools-a",
        "--output",
        "json",
    ])
    .ok()
    .json();
    let get = |name: &str| {
        configs
            .as_array()
            .expect("array")
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
    };
    let retention = get("retention.ms").expect("retention.ms overridden");
    assert_eq!(retention["value"], "123456");
    assert_eq!(retention["source"], "DYNAMIC_TOPIC_CONFIG");
    assert_eq!(
        get("cleanup.policy").expect("cleanup.policy")["value"],
        "delete,compact"
    );
    tool(&[
        "configs",
        "alter",
        "-b",
        b,
        "--entity-type",
        "topics",
        "--entity-name",
        "tools-a",
        "--delete-config",
        "retention.ms",
    ])
    .ok();
    let all = tool(&[
        "configs",
        "describe",
        "-b",
        b,
        "--entity-type",
        "topics",
        "--entity-name",
        "tools-a",
        "--all",
        "--output",
        "json",
    ])
    .ok()
    .json();
    let retention = all
        .as_array()
        .expect("array")
        .iter()
        .find(|c| c["name"] == "retention.ms")
        .cloned();
    assert_ne!(
        retention.expect("retention.ms listed with --all")["source"],
        "DYNAMIC_TOPIC_CONFIG"
    );
    let broker = tool(&[
        "configs",
        "describe",
        "-b",
        b,
        "--entity-type",
        "brokers",
        "--entity-name",
        "1",
        "--all",
    ])
    .ok()
    .stdout;
    assert!(
        broker
            .lines()
            .any(|l| l.starts_with("node.id ") && l.contains("STATIC_BROKER_CONFIG")),
        "{broker}"
    );
    let bad = tool(&[
        "configs",
        "alter",
        "-b",
        b,
        "--entity-type",
        "topics",
        "--entity-name",
        "tools-a",
        "--add-config",
        "no.such.key=1",
    ]);
    assert_eq!(bad.code, 1, "{}", bad.stdout);

    // Quorum.
    let status = tool(&[
        "quorum", "describe", "--status", "-b", b, "--output", "json",
    ])
    .ok()
    .json();
    assert_eq!(status["leader_id"], 1);
    assert_eq!(status["current_voters"], serde_json::json!([1]));
    assert!(status["high_watermark"].as_i64().expect("hw") > 0);
    let replication = tool(&["quorum", "describe", "--replication", "-b", b])
        .ok()
        .stdout;
    assert!(
        replication
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("1 ") && l.ends_with("Leader")),
        "{replication}"
    );

    // Console producer and consumer: keys, headers, partitions, offsets.
    let input: String = (0..30).map(|i| format!("h:{i}\tk{i}:v{i}\n")).collect();
    tool_with(
        &[
            "produce",
            "-b",
            b,
            "-t",
            "tools-a",
            "--key-separator",
            ":",
            "--parse-headers",
        ],
        &input,
        T,
    )
    .ok();
    let got = tool(&[
        "consume",
        "-b",
        b,
        "-t",
        "tools-a",
        "--offset",
        "earliest",
        "--max-messages",
        "30",
        "--timeout-ms",
        "10000",
        "--output",
        "json",
    ])
    .ok();
    let records: Vec<Value> = got
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(records.len(), 30, "{}", got.stderr);
    for r in &records {
        let k = r["key"].as_str().expect("key");
        let i: usize = k[1..].parse().expect("key number");
        assert_eq!(r["value"], format!("v{i}"));
        assert_eq!(r["headers"][0]["key"], "h");
        assert_eq!(r["headers"][0]["value"], i.to_string());
    }
    // The same key always lands on the same partition (murmur2, as Kafka's partitioner).
    let again: String = (0..30).map(|i| format!("k{i}:again{i}\n")).collect();
    tool_with(
        &["produce", "-b", b, "-t", "tools-a", "--key-separator", ":"],
        &again,
        T,
    )
    .ok();
    let all = tool(&[
        "consume",
        "-b",
        b,
        "-t",
        "tools-a",
        "--offset",
        "earliest",
        "--max-messages",
        "60",
        "--timeout-ms",
        "10000",
        "--output",
        "json",
    ])
    .ok();
    let mut partition_of = std::collections::BTreeMap::new();
    for l in all.stdout.lines() {
        let r: Value = serde_json::from_str(l).expect("json");
        let k = r["key"].as_str().expect("key").to_owned();
        let p = r["partition"].as_i64().expect("partition");
        assert_eq!(
            *partition_of.entry(k.clone()).or_insert(p),
            p,
            "key {k} on two partitions"
        );
    }
    assert_eq!(partition_of.len(), 30);
    let one = tool(&[
        "consume",
        "-b",
        b,
        "-t",
        "tools-a",
        "--partition",
        "0",
        "--offset",
        "1",
        "--max-messages",
        "1",
        "--timeout-ms",
        "10000",
        "--print-offset",
    ])
    .ok();
    assert!(
        one.stdout.starts_with("Partition:0\tOffset:1\t"),
        "{}",
        one.stdout
    );

    // Delete.
    tool(&["topics", "delete", "-b", b, "-t", "tools-a"]).ok();
    let deadline = Deadline::after(T);
    loop {
        let list = tool(&["topics", "list", "-b", b, "--output", "json"])
            .ok()
            .json();
        if !list
            .as_array()
            .expect("array")
            .iter()
            .any(|t| t["topic"] == "tools-a")
        {
            break;
        }
        deadline.check(|| format!("tools-a still listed: {list}"));
        std::thread::sleep(Duration::from_millis(200));
    }
    let gone = tool(&["topics", "delete", "-b", b, "-t", "tools-a"]);
    assert_eq!(gone.code, 1);
    tool(&["topics", "delete", "-b", b, "-t", "tools-a", "--if-exists"]).ok();
}

/// Consumes until `want` records arrived (bounded), committing them; returns their offsets.
fn consume_n(c: &BaseConsumer, want: usize) -> Vec<(i32, i64)> {
    let deadline = Deadline::after(T);
    let mut got = Vec::new();
    while got.len() < want {
        deadline.check(|| format!("consumed {} of {want}", got.len()));
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            let m = m.expect("message");
            got.push((m.partition(), m.offset()));
        }
    }
    c.commit_consumer_state(CommitMode::Sync).expect("commit");
    got
}

fn lag_rows(described: &Value) -> Vec<(i64, i64, i64)> {
    described["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| {
            (
                p["partition"].as_i64().expect("partition"),
                p["current_offset"].as_i64().unwrap_or(-1),
                p["lag"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

#[test]
fn groups_describe_lag_and_reset_offsets_of_a_librdkafka_group() {
    let mut cluster = Cluster::start(1, &GROUP_CONFIG);
    let b = cluster.bootstrap();
    let b = b.as_str();
    tool(&[
        "topics",
        "create",
        "-b",
        b,
        "-t",
        "reset-me",
        "--partitions",
        "3",
        "--replication-factor",
        "1",
    ])
    .ok();
    let p = common::producer(b, &[("acks", "all")]);
    for i in 0..30 {
        let v = format!("v{i}");
        p.send(
            BaseRecord::<(), str>::to("reset-me")
                .partition(i % 3)
                .payload(v.as_str()),
        )
        .map_err(|(e, _)| e)
        .expect("send");
    }
    common::flush(&p, T);

    let g = "tools-group";
    let c = common::group_consumer(b, g);
    c.subscribe(&["reset-me"]).expect("subscribe");
    assert_eq!(consume_n(&c, 30).len(), 30);

    // With a member, describe shows it and its partitions; lag 0; reset is refused.
    let d = tool(&["groups", "describe", "-b", b, "-g", g, "--output", "json"])
        .ok()
        .json();
    assert_eq!(d["state"], "Stable", "{d}");
    assert_eq!(d["members"].as_array().map(Vec::len), Some(1), "{d}");
    assert_eq!(
        d["members"][0]["assignment"].as_array().map(Vec::len),
        Some(3),
        "{d}"
    );
    assert_eq!(d["total_lag"], 0, "{d}");
    assert_eq!(lag_rows(&d), vec![(0, 10, 0), (1, 10, 0), (2, 10, 0)]);
    let table = tool(&["groups", "describe", "-b", b, "-g", g]).ok().stdout;
    assert!(table.contains("TOTAL-LAG 0"), "{table}");
    let refused = tool(&[
        "groups",
        "reset-offsets",
        "-b",
        b,
        "-g",
        g,
        "--all-topics",
        "--to-earliest",
        "--execute",
    ]);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("inactive") && refused.stderr.contains("Stable"),
        "{}",
        refused.stderr
    );
    let listed = tool(&["groups", "list", "-b", b, "--output", "json"])
        .ok()
        .json();
    assert!(
        listed
            .as_array()
            .expect("array")
            .iter()
            .any(|x| x["group"] == g),
        "{listed}"
    );
    drop(c); // leaves the group

    let deadline = Deadline::after(T);
    loop {
        let d = tool(&["groups", "describe", "-b", b, "-g", g, "--output", "json"])
            .ok()
            .json();
        if d["state"] == "Empty" {
            break;
        }
        deadline.check(|| format!("group still {}", d["state"]));
        std::thread::sleep(Duration::from_millis(200));
    }

    // The dry run prints the plan and changes nothing.
    let plan = tool(&[
        "groups",
        "reset-offsets",
        "-b",
        b,
        "-g",
        g,
        "--topic",
        "reset-me:0,2",
        "--shift-by",
        "-4",
        "--output",
        "json",
    ])
    .ok()
    .json();
    let rows: Vec<(i64, i64, i64)> = plan
        .as_array()
        .expect("plan")
        .iter()
        .map(|r| {
            (
                r["partition"].as_i64().expect("p"),
                r["current_offset"].as_i64().expect("c"),
                r["new_offset"].as_i64().expect("n"),
            )
        })
        .collect();
    assert_eq!(rows, vec![(0, 10, 6), (2, 10, 6)]);
    let table = tool(&[
        "groups",
        "reset-offsets",
        "-b",
        b,
        "-g",
        g,
        "--all-topics",
        "--to-earliest",
    ])
    .ok()
    .stdout;
    assert!(
        table
            .lines()
            .next()
            .is_some_and(|h| h.split_whitespace().collect::<Vec<_>>()
                == [
                    "GROUP",
                    "TOPIC",
                    "PARTITION",
                    "CURRENT-OFFSET",
                    "NEW-OFFSET"
                ]),
        "{table}"
    );
    assert!(table.contains("dry run"), "{table}");
    let d = tool(&["groups", "describe", "-b", b, "-g", g, "--output", "json"])
        .ok()
        .json();
    assert_eq!(d["total_lag"], 0, "the dry run changed offsets: {d}");

    // Executed: partition 0 and 2 back by 4, partition 1 to the start (clamped --to-offset).
    tool(&[
        "groups",
        "reset-offsets",
        "-b",
        b,
        "-g",
        g,
        "--topic",
        "reset-me:0,2",
        "--shift-by",
        "-4",
        "--execute",
    ])
    .ok();
    tool(&[
        "groups",
        "reset-offsets",
        "-b",
        b,
        "-g",
        g,
        "--topic",
        "reset-me:1",
        "--to-offset",
        "-5",
        "--execute",
    ])
    .ok();
    let d = tool(&["groups", "describe", "-b", b, "-g", g, "--output", "json"])
        .ok()
        .json();
    assert_eq!(lag_rows(&d), vec![(0, 6, 4), (1, 0, 10), (2, 6, 4)]);
    assert_eq!(d["total_lag"], 18);

    // A real consumer of the group now gets exactly those 18 records.
    let c = common::group_consumer(b, g);
    c.subscribe(&["reset-me"]).expect("subscribe");
    let mut got = consume_n(&c, 18);
    got.sort();
    let want: Vec<(i32, i64)> = (6..10)
        .map(|o| (0, o))
        .chain((0..10).map(|o| (1, o)))
        .chain((6..10).map(|o| (2, o)))
        .collect();
    assert_eq!(got, want);
    assert!(
        c.poll(Duration::from_millis(500)).is_none(),
        "more than the reset offsets allowed"
    );
    drop(c);
    let deadline = Deadline::after(T);
    while tool(&["groups", "describe", "-b", b, "-g", g, "--output", "json"])
        .ok()
        .json()["state"]
        != "Empty"
    {
        deadline.check(|| "group did not empty".into());
        std::thread::sleep(Duration::from_millis(200));
    }
    // By time: a datetime after every record moves to the end; by-duration a day back, to the start.
    tool(&[
        "groups",
        "reset-offsets",
        "-b",
        b,
        "-g",
        g,
        "--all-topics",
        "--to-datetime",
        "2999-01-01T00:00:00.000",
        "--execute",
    ])
    .ok();
    let d = tool(&["groups", "describe", "-b", b, "-g", g, "--output", "json"])
        .ok()
        .json();
    assert_eq!(d["total_lag"], 0, "{d}");
    tool(&[
        "groups",
        "reset-offsets",
        "-b",
        b,
        "-g",
        g,
        "--all-topics",
        "--by-duration",
        "P1D",
        "--execute",
    ])
    .ok();
    let d = tool(&["groups", "describe", "-b", b, "-g", g, "--output", "json"])
        .ok()
        .json();
    assert_eq!(d["total_lag"], 30, "{d}");

    // Console consumer in group mode commits what it printed.
    let out = tool(&[
        "consume",
        "-b",
        b,
        "-t",
        "reset-me",
        "-g",
        g,
        "--max-messages",
        "30",
        "--timeout-ms",
        "15000",
    ])
    .ok();
    assert_eq!(out.stdout.lines().count(), 30, "{}", out.stderr);
    let deadline = Deadline::after(T);
    loop {
        let d = tool(&["groups", "describe", "-b", b, "-g", g, "--output", "json"])
            .ok()
            .json();
        if d["total_lag"] == 0 && d["state"] == "Empty" {
            break;
        }
        deadline.check(|| format!("console group consumer left lag: {d}"));
        std::thread::sleep(Duration::from_millis(200));
    }

    // Delete offsets, then the group.
    let del = tool(&[
        "groups",
        "delete-offsets",
        "-b",
        b,
        "-g",
        g,
        "--topic",
        "reset-me:1",
        "--output",
        "json",
    ])
    .ok()
    .json();
    assert_eq!(
        del,
        serde_json::json!([{"topic": "reset-me", "partition": 1, "status": "Successful"}])
    );
    let d = tool(&["groups", "describe", "-b", b, "-g", g, "--output", "json"])
        .ok()
        .json();
    assert_eq!(
        lag_rows(&d).iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![0, 2]
    );
    tool(&["groups", "delete", "-b", b, "-g", g]).ok();
    let listed = tool(&["groups", "list", "-b", b, "--output", "json"])
        .ok()
        .json();
    assert!(
        !listed
            .as_array()
            .expect("array")
            .iter()
            .any(|x| x["group"] == g),
        "{listed}"
    );

    // Perf tests on the same broker: Kafka's summary lines.
    tool(&[
        "topics",
        "create",
        "-b",
        b,
        "-t",
        "perf",
        "--partitions",
        "1",
        "--replication-factor",
        "1",
    ])
    .ok();
    let produced = tool(&[
        "perf-test",
        "produce",
        "-b",
        b,
        "-t",
        "perf",
        "--num-records",
        "5000",
        "--record-size",
        "100",
        "--throughput",
        "-1",
        "--acks",
        "1",
    ])
    .ok();
    let last = produced
        .stdout
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    assert!(
        last.starts_with("5000 records sent, ")
            && last.contains("records/sec (")
            && last.ends_with("ms 99.9th."),
        "{last}"
    );
    let consumed = tool(&[
        "perf-test",
        "consume",
        "-b",
        b,
        "-t",
        "perf",
        "--messages",
        "5000",
        "--output",
        "json",
    ])
    .ok()
    .json();
    assert_eq!(consumed["records"], 5000);
    assert!(
        (consumed["data_consumed_mb"].as_f64().expect("mb") - 5000.0 * 100.0 / 1048576.0).abs()
            < 1e-6
    );

    // Kafka's way of giving the producer its settings: --producer-props, bootstrap included.
    let bootstrap_prop = format!("bootstrap.servers={b}");
    let props = tool(&[
        "perf-test",
        "produce",
        "-t",
        "perf",
        "--num-records",
        "300",
        "--record-size",
        "10",
        "--throughput",
        "1000",
        "--output",
        "json",
        "--producer-props",
        "acks=1",
        "batch.size=200",
        bootstrap_prop.as_str(),
    ])
    .ok()
    .json();
    assert_eq!(props["records"], 300, "{props}");
    // Paced at 1,000/s: 300 records take about 0.3 s, not less.
    let wrong = tool(&[
        "perf-test",
        "produce",
        "-t",
        "perf",
        "--num-records",
        "1",
        "--record-size",
        "1",
        "--throughput",
        "-1",
        "--producer-props",
        "acks=2",
        bootstrap_prop.as_str(),
    ]);
    assert_eq!(wrong.code, 1, "{}", wrong.stderr);
    assert!(wrong.stderr.contains("acks must be"), "{}", wrong.stderr);

    // End to end: each record produced, then read back, in one process.
    tool(&[
        "topics",
        "create",
        "-b",
        b,
        "-t",
        "e2e",
        "--partitions",
        "2",
        "--replication-factor",
        "1",
    ])
    .ok();
    let e2e = tool(&[
        "perf-test",
        "e2e",
        "-b",
        b,
        "-t",
        "e2e",
        "--num-records",
        "200",
        "--record-size",
        "64",
        "--acks",
        "1",
    ])
    .ok();
    let last = e2e.stdout.lines().last().unwrap_or_default().to_owned();
    assert!(
        last.starts_with("200 records sent, ") && last.ends_with("ms 99.9th."),
        "{}",
        e2e.stdout
    );
    let e2e = tool(&[
        "perf-test",
        "e2e",
        "-b",
        b,
        "-t",
        "e2e",
        "--num-records",
        "50",
        "--record-size",
        "1000",
        "--fetch-max-wait-ms",
        "500",
        "--output",
        "json",
    ])
    .ok()
    .json();
    assert_eq!(e2e["records"], 50, "{e2e}");
    let (p50, max) = (
        e2e["p50_ms"].as_f64().expect("p50"),
        e2e["max_latency_ms"].as_f64().expect("max"),
    );
    assert!(p50 > 0.0 && p50 <= max, "{e2e}");
    // Every record the e2e runs sent is in the topic, once.
    let consumed = tool(&[
        "perf-test",
        "consume",
        "-b",
        b,
        "-t",
        "e2e",
        "--messages",
        "250",
        "--timeout",
        "3000",
        "--output",
        "json",
    ])
    .ok()
    .json();
    assert_eq!(consumed["records"], 250, "{consumed}");
    // A topic someone else writes to cannot be measured: the run says so and fails.
    let busy = common::producer(b, &[("acks", "1"), ("linger.ms", "0")]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = busy.send(BaseRecord::<(), str>::to("e2e").payload("intruder"));
                busy.poll(Duration::from_millis(1));
            }
            common::flush(&busy, T);
        })
    };
    let intruded = tool(&[
        "perf-test",
        "e2e",
        "-b",
        b,
        "-t",
        "e2e",
        "--num-records",
        "2000",
        "--record-size",
        "64",
    ]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().expect("writer");
    assert_eq!(intruded.code, 1, "{}", intruded.stdout);
    assert!(
        intruded.stderr.contains("not the value sent")
            || intruded.stderr.contains("where one was sent"),
        "{}",
        intruded.stderr
    );

    // An idempotent producer's state, for the producer snapshot a clean stop writes.
    let idempotent = common::producer(b, &[("enable.idempotence", "true")]);
    for i in 0..10 {
        idempotent
            .send(
                BaseRecord::<(), str>::to("perf")
                    .partition(0)
                    .payload(format!("i{i}").as_str()),
            )
            .map_err(|(e, _)| e)
            .expect("enqueue");
    }
    common::flush(&idempotent, T);
    drop(idempotent);
    let status = cluster.nodes[0].terminate();
    assert!(status.success(), "{status:?}");

    // The broker's own files: the tools' dump of the perf topic's segment, with its index.
    let dir = cluster.node(1).log_dir().join("perf-0");
    let log = dir.join("00000000000000000000.log");
    let dumped = tool(&["dump-log", "--files", log.to_str().expect("path")])
        .ok()
        .stdout;
    let batches: Vec<&str> = dumped
        .lines()
        .filter(|l| l.starts_with("baseOffset:"))
        .collect();
    assert!(!batches.is_empty(), "{dumped}");
    assert!(
        batches.iter().all(|l| l.ends_with("isvalid: true")),
        "{dumped}"
    );
    let last_offset: i64 = batches
        .last()
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|o| o.parse().ok())
        .expect("lastOffset");
    assert_eq!(last_offset, 5000 + 300 + 10 - 1);
    let idempotent_batches: Vec<&&str> = batches
        .iter()
        .filter(|l| !l.contains(" producerId: -1 "))
        .collect();
    assert!(!idempotent_batches.is_empty(), "{dumped}");
    let snapshots: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("partition dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "snapshot"))
        .collect();
    // The newest snapshot: the one the clean stop wrote at the log end.
    let newest = snapshots.iter().max().expect("a producer snapshot");
    let snap = tool(&["dump-log", "--files", newest.to_str().expect("path")])
        .ok()
        .stdout;
    let entry = snap
        .lines()
        .find(|l| l.starts_with("producerId: "))
        .unwrap_or_else(|| panic!("{snap}"));
    // The producer's last batch: its sequences end at 9, its last offset the segment's.
    assert!(
        entry.contains(" producerEpoch: 0 ")
            && entry.contains(" lastSequence: 9 ")
            && entry.contains(&format!(" lastOffset: {last_offset} ")),
        "{entry}"
    );
    let index = dir.join("00000000000000000000.index");
    tool(&[
        "dump-log",
        "--verify-index-only",
        "--files",
        index.to_str().expect("path"),
    ])
    .ok();
    let timeindex = dir.join("00000000000000000000.timeindex");
    tool(&[
        "dump-log",
        "--verify-index-only",
        "--files",
        timeindex.to_str().expect("path"),
    ])
    .ok();
}

/// librdkafka's batches from `shared/testdata` laid end to end as a segment, offsets assigned
/// as the broker would (baseOffset is outside the CRC).
fn testdata_segment(dir: &Path) -> (PathBuf, Vec<(String, usize, usize)>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/librdkafka-batches");
    let src = if src.exists() {
        src
    } else {
        PathBuf::from("/work/shared/testdata/librdkafka-batches")
    };
    let mut seg = Vec::new();
    let mut layout = Vec::new();
    let mut offset = 0i64;
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        for i in 1..=4 {
            let mut b =
                std::fs::read(src.join(format!("{codec}-{i}.bin"))).expect("testdata batch");
            let count = i32::from_be_bytes([b[57], b[58], b[59], b[60]]) as i64;
            b[..8].copy_from_slice(&offset.to_be_bytes());
            layout.push((codec.to_owned(), seg.len(), b.len()));
            offset += count;
            seg.extend_from_slice(&b);
        }
    }
    let path = dir.join("00000000000000000000.log");
    std::fs::write(&path, &seg).expect("write segment");
    (path, layout)
}

#[test]
fn dump_log_reads_kafka_files_in_every_codec_and_reports_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, layout) = testdata_segment(dir.path());
    let p = path.to_str().expect("path");
    let out = tool(&["dump-log", "--print-data-log", "--files", p])
        .ok()
        .stdout;
    let batches: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("baseOffset:"))
        .collect();
    assert_eq!(batches.len(), 20, "{out}");
    for ((codec, position, size), line) in layout.iter().zip(&batches) {
        assert!(line.contains(&format!("compresscodec: {codec} ")), "{line}");
        assert!(line.contains(&format!("position: {position} ")), "{line}");
        assert!(line.contains(&format!("size: {size} ")), "{line}");
        assert!(line.ends_with("isvalid: true"), "{line}");
    }
    let records: Vec<&str> = out.lines().filter(|l| l.starts_with("| offset:")).collect();
    assert_eq!(records.len(), 250, "50 records in each of 5 codecs");
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let n = records
            .iter()
            .filter(|r| r.contains(&format!("payload: value-{codec}-")))
            .count();
        assert_eq!(n, 50, "{codec}");
    }
    assert!(records.iter().any(|r| r.contains("headerKeys: [h]")));
    assert!(records.iter().all(|r| r.contains(" key: k")));

    // One flipped byte inside the third batch: its CRC fails, the rest still prints.
    let mut bytes = std::fs::read(&path).expect("read");
    let (_, pos3, size3) = layout[2].clone();
    bytes[pos3 + size3 - 3] ^= 0x55;
    std::fs::write(&path, &bytes).expect("write");
    let out = tool(&["dump-log", "--files", p]);
    assert_eq!(out.code, 1);
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("baseOffset:"))
        .collect();
    assert_eq!(lines.len(), 20);
    assert!(lines[2].ends_with("isvalid: false"), "{}", lines[2]);
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.ends_with("isvalid: true"))
            .count(),
        19
    );

    // Cut in the middle of the fifth batch: four batches, then the position named.
    let (_, pos5, _) = layout[4].clone();
    std::fs::write(&path, &bytes[..pos5 + 30]).expect("truncate");
    let out = tool(&["dump-log", "--files", p]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| l.starts_with("baseOffset:"))
            .count(),
        4
    );
    assert!(
        out.stdout
            .contains(&format!("Found corrupt data at position {pos5}:")),
        "{}",
        out.stdout
    );
    // A nonsense length.
    let mut bad = bytes[..pos5].to_vec();
    bad.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 9, 0x7f, 0xff, 0xff, 0xff]);
    std::fs::write(&path, &bad).expect("write");
    let out = tool(&["dump-log", "--files", p]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains(&format!(
            "Found corrupt data at position {pos5}: batch length 2147483647"
        )),
        "{}",
        out.stdout
    );

    // An index whose entry points into the middle of a batch fails verification.
    std::fs::write(&path, &bytes[..pos5]).expect("write");
    let index = dir.path().join("00000000000000000000.index");
    let mut idx = Vec::new();
    let last_of_first = i32::from_be_bytes([bytes[23], bytes[24], bytes[25], bytes[26]]);
    idx.extend_from_slice(&last_of_first.to_be_bytes());
    idx.extend_from_slice(&0i32.to_be_bytes());
    std::fs::write(&index, &idx).expect("index");
    let ok = tool(&[
        "dump-log",
        "--verify-index",
        "--files",
        index.to_str().expect("path"),
    ])
    .ok();
    assert!(
        ok.stdout
            .contains(&format!("offset: {last_of_first} position: 0")),
        "{}",
        ok.stdout
    );
    idx.extend_from_slice(&(last_of_first + 5).to_be_bytes());
    idx.extend_from_slice(&7i32.to_be_bytes());
    std::fs::write(&index, &idx).expect("index");
    let bad = tool(&[
        "dump-log",
        "--verify-index-only",
        "--files",
        index.to_str().expect("path"),
    ]);
    assert_eq!(bad.code, 1);
    assert!(bad.stdout.contains("position 7"), "{}", bad.stdout);

    // A snapshot that is not one.
    let snap = dir.path().join("00000000000000000010.snapshot");
    std::fs::write(&snap, b"not a snapshot").expect("snapshot");
    let out = tool(&["dump-log", "--files", snap.to_str().expect("path")]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("corrupt snapshot"), "{}", out.stdout);
}

/// A magic-0/1 message entry: `offset, size`, then crc, magic, attributes, [timestamp], key,
/// value (Kafka's format before 0.11).
fn legacy_entry(offset: i64, magic: u8, attributes: u8, ts: i64, value: &[u8]) -> Vec<u8> {
    let mut m = vec![magic, attributes];
    if magic == 1 {
        m.extend_from_slice(&ts.to_be_bytes());
    }
    m.extend_from_slice(&(-1i32).to_be_bytes()); // null key
    m.extend_from_slice(&(value.len() as i32).to_be_bytes());
    m.extend_from_slice(value);
    let mut e = offset.to_be_bytes().to_vec();
    e.extend_from_slice(&(m.len() as i32 + 4).to_be_bytes());
    e.extend_from_slice(&crc32fast::hash(&m).to_be_bytes());
    e.extend_from_slice(&m);
    e
}

/// A compressed wrapper of `values` at `offsets` (inner offsets as each magic stores them).
fn legacy_wrapper(
    magic: u8,
    codec: rafka_protocol::record_batch::Compression,
    attributes: u8,
    ts: i64,
    offsets: std::ops::Range<i64>,
) -> Vec<u8> {
    let last = offsets.end - 1;
    let first = offsets.start;
    let inner: Vec<u8> = offsets
        .flat_map(|o| {
            let stored = if magic == 0 { o } else { o - first };
            legacy_entry(stored, magic, 0, ts - 1, format!("legacy-{o}").as_bytes())
        })
        .collect();
    let mut c = rafka_storage::compression::compress(codec, &inner).expect("compress");
    if codec == rafka_protocol::record_batch::Compression::Lz4 && magic == 0 {
        // KAFKA-3160: magic-0 writers hashed the frame magic into the header checksum.
        c[6] = (twox_hash::XxHash32::oneshot(0, &c[..6]) >> 8) as u8;
    }
    legacy_entry(last, magic, attributes | codec.id(), ts, &c)
}

#[test]
fn dump_log_reads_magic_0_and_1_and_resumes_after_corruption() {
    use rafka_protocol::record_batch::Compression::{Gzip, Lz4, Snappy};
    let dir = tempfile::tempdir().expect("tempdir");
    let entries = vec![
        legacy_entry(0, 0, 0, 0, b"legacy-0"),
        legacy_wrapper(0, Gzip, 0, 0, 1..4),
        legacy_wrapper(0, Lz4, 0, 0, 4..6),
        legacy_entry(6, 1, 0, 1000, b"legacy-6"),
        legacy_wrapper(1, Snappy, 0, 2000, 7..10),
        legacy_wrapper(1, Gzip, 0x08, 3000, 10..12),
        legacy_wrapper(1, Lz4, 0, 4000, 12..14),
    ];
    let mut seg = Vec::new();
    let mut positions = Vec::new();
    for e in &entries {
        positions.push(seg.len());
        seg.extend_from_slice(e);
    }
    // After an upgrade a segment goes on with v2 batches.
    let src = Path::new("/work/shared/testdata/librdkafka-batches/none-1.bin");
    let src = if src.exists() {
        src.to_path_buf()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/testdata/librdkafka-batches/none-1.bin")
    };
    let mut v2 = std::fs::read(src).expect("testdata batch");
    v2[..8].copy_from_slice(&14i64.to_be_bytes());
    let v2_position = seg.len();
    seg.extend_from_slice(&v2);
    let path = dir.path().join("00000000000000000000.log");
    std::fs::write(&path, &seg).expect("segment");
    let p = path.to_str().expect("path");

    let out = tool(&["dump-log", "--print-data-log", "--files", p])
        .ok()
        .stdout;
    let shallow: Vec<&str> = out.lines().filter(|l| l.starts_with("offset: ")).collect();
    let wanted = [
        (0, 0, "NoTimestampType: -1", "none"),
        (3, 0, "NoTimestampType: -1", "gzip"),
        (5, 0, "NoTimestampType: -1", "lz4"),
        (6, 1, "CreateTime: 1000", "none"),
        (9, 1, "CreateTime: 2000", "snappy"),
        (11, 1, "LogAppendTime: 3000", "gzip"),
        (13, 1, "CreateTime: 4000", "lz4"),
    ];
    assert_eq!(shallow.len(), wanted.len(), "{out}");
    for (i, ((offset, magic, ts, codec), line)) in wanted.iter().zip(&shallow).enumerate() {
        let want = format!(
            "offset: {offset} position: {} {ts} size: {} magic: {magic} compresscodec: {codec} ",
            positions[i],
            entries[i].len()
        );
        assert!(line.starts_with(&want), "{line}\nwanted {want}");
        assert!(line.ends_with("isvalid: true"), "{line}");
    }
    let deep: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("| offset:") && l.contains(" crc: "))
        .collect();
    assert_eq!(deep.len(), 14, "{out}");
    for (o, line) in deep.iter().enumerate() {
        assert!(
            line.starts_with(&format!("| offset: {o} "))
                && line.contains("isvalid: true")
                && line.ends_with(&format!("payload: legacy-{o}")),
            "{line}"
        );
    }
    // LogAppendTime: the inner messages carry the wrapper's time.
    assert!(deep[10].contains("LogAppendTime: 3000"), "{}", deep[10]);
    assert!(out.contains(&format!("baseOffset: 14 ")), "{out}");
    assert!(out.contains(&format!("position: {v2_position} ")), "{out}");

    // An offset index over the legacy entries checks against their (last) offsets.
    let index = dir.path().join("00000000000000000000.index");
    let mut idx = Vec::new();
    for (offset, at) in [(5i32, positions[2] as i32), (9, positions[4] as i32)] {
        idx.extend_from_slice(&offset.to_be_bytes());
        idx.extend_from_slice(&at.to_be_bytes());
    }
    std::fs::write(&index, &idx).expect("index");
    let verified = tool(&[
        "dump-log",
        "--verify-index-only",
        "--files",
        index.to_str().expect("path"),
    ])
    .ok();
    assert!(
        verified.stdout.contains("agrees with the log (2 entries)"),
        "{}",
        verified.stdout
    );

    // A size field gone bad in the third entry: reported at its position, the reader finds the
    // fourth entry and carries on to the end.
    let mut bad = seg.clone();
    bad[positions[2] + 8..positions[2] + 12].copy_from_slice(&0x7fff_0000i32.to_be_bytes());
    std::fs::write(&path, &bad).expect("write");
    let out = tool(&["dump-log", "--files", p]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!(
            "Found corrupt data at position {}: ",
            positions[2]
        )) && out
            .stdout
            .contains(&format!("Resuming at position {}", positions[3])),
        "{}",
        out.stdout
    );
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| l.starts_with("offset: "))
            .count(),
        6,
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("baseOffset: 14 "), "{}", out.stdout);

    // A file cut inside the fifth entry: four entries, the position, nothing after.
    std::fs::write(&path, &seg[..positions[4] + 20]).expect("truncate");
    let out = tool(&["dump-log", "--files", p]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| l.starts_with("offset: "))
            .count(),
        4
    );
    assert!(
        out.stdout.contains(&format!(
            "Found corrupt data at position {}: ",
            positions[4]
        )) && out
            .stdout
            .contains(&format!("No whole batch after position {}", positions[4])),
        "{}",
        out.stdout
    );

    // v2 batches the same way: the third batch's length broken, the other 19 still read.
    let (v2path, layout) = testdata_segment(dir.path());
    let mut bytes = std::fs::read(&v2path).expect("read");
    let (_, pos3, _) = layout[2].clone();
    bytes[pos3 + 8..pos3 + 12].copy_from_slice(&5i32.to_be_bytes());
    std::fs::write(&v2path, &bytes).expect("write");
    let out = tool(&["dump-log", "--files", v2path.to_str().expect("path")]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| l.starts_with("baseOffset:"))
            .count(),
        19,
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("Resuming at position {}", layout[3].1)),
        "{}",
        out.stdout
    );
}

#[test]
fn bad_flags_exit_2_and_a_down_broker_is_one_line() {
    let usage = tool(&["topics", "frobnicate"]);
    assert_eq!(usage.code, 2, "{}", usage.stderr);
    assert!(usage.stderr.contains("Usage"), "{}", usage.stderr);
    let missing = tool(&["groups", "reset-offsets", "-g", "x", "--all-topics"]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    let completion = tool(&["completion", "bash"]).ok();
    assert!(
        completion.stdout.contains("reset-offsets"),
        "completion lacks subcommands"
    );
    let help = tool(&["--help"]).ok();
    assert!(
        help.stdout.contains("server.properties") && help.stdout.contains("perf-test"),
        "{}",
        help.stdout
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let props = dir.path().join("client.properties");
    std::fs::write(&props, "socket.connection.setup.timeout.ms=1500\n").expect("write");
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let start = Instant::now();
    let down = tool(&[
        "topics",
        "list",
        "-b",
        &addr,
        "--command-config",
        props.to_str().expect("path"),
    ]);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(down.code, 1);
    assert_eq!(down.stderr.lines().count(), 1, "{}", down.stderr);
    assert!(down.stderr.contains(&addr), "{}", down.stderr);
    let bad_config = dir.path().join("bad.properties");
    std::fs::write(
        &bad_config,
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n",
    )
    .expect("write");
    let out = tool(&[
        "topics",
        "list",
        "-b",
        &addr,
        "--command-config",
        bad_config.to_str().expect("path"),
    ]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("sasl.jaas.config"), "{}", out.stderr);
}
