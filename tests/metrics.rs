//! `/metrics` of the real binary, parsed by a strict Prometheus text-format (and OpenMetrics)
//! parser, with values checked against what the test did: bytes and records produced (the bytes
//! on disk are the bytes producers sent), bytes fetched, a group's lag, under-replicated
//! partitions after a follower dies, exactly one active controller, OpenMetrics on request,
//! per-partition series only when switched on, and nothing at all with metrics off.

mod common;

use common::http::{get, get_with};
use common::{
    create_replicated_topic, create_topic, segment_files, wait_for_isrs, Cluster, Deadline, Node,
};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::BaseRecord;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);
const GROUP_CONFIG: [(&str, &str); 2] = [
    ("offsets.topic.replication.factor", "1"),
    ("group.initial.rebalance.delay.ms", "0"),
];

// ---- A strict parser of the exposition formats ----

type Labels = BTreeMap<String, String>;

/// One scrape: every sample by (name, labels), and each family's type.
#[derive(Debug, Default)]
struct Scrape {
    samples: HashMap<(String, Labels), f64>,
    types: HashMap<String, String>,
}

impl Scrape {
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let l: Labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples.get(&(name.to_owned(), l)).copied()
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no series {name}{labels:?}"))
    }

    fn series(&self, name: &str) -> usize {
        self.samples.keys().filter(|(n, _)| n == name).count()
    }
}

/// Parses `text` strictly: `# HELP`/`# TYPE` (and in OpenMetrics `# UNIT`, and `# EOF` last)
/// before their samples, every sample's name in its family (counters' `_total` — OpenMetrics
/// names the family without it —, histograms' `_bucket`/`_sum`/`_count`), label names valid and
/// values quoted with `\\`, `\"`, `\n` escapes only, no duplicate series, numeric values, and
/// histogram buckets cumulative up to `+Inf` = `_count`.
fn parse(text: &str, openmetrics: bool) -> Scrape {
    let mut s = Scrape::default();
    let mut family: Option<(String, String)> = None;
    let mut eof = false;
    for (n, line) in text.lines().enumerate() {
        let at = || format!("line {}: {line:?}", n + 1);
        assert!(!eof, "text after # EOF: {}", at());
        if let Some(rest) = line.strip_prefix("# ") {
            if rest == "EOF" {
                assert!(openmetrics, "# EOF in the Prometheus text format");
                eof = true;
                continue;
            }
            let mut parts = rest.splitn(3, ' ');
            let kind = parts.next().unwrap_or("");
            let name = parts
                .next()
                .unwrap_or_else(|| panic!("{}", at()))
                .to_owned();
            assert!(valid_name(&name), "bad metric name: {}", at());
            match kind {
                "HELP" => {}
                "UNIT" => assert!(openmetrics, "UNIT in the Prometheus text format"),
                "TYPE" => {
                    let t = parts
                        .next()
                        .unwrap_or_else(|| panic!("{}", at()))
                        .to_owned();
                    assert!(
                        [
                            "counter",
                            "gauge",
                            "histogram",
                            "summary",
                            "untyped",
                            "unknown",
                            "info"
                        ]
                        .contains(&t.as_str()),
                        "bad type: {}",
                        at()
                    );
                    assert!(
                        s.types.insert(name.clone(), t.clone()).is_none(),
                        "family typed twice: {}",
                        at()
                    );
                    family = Some((name, t));
                }
                _ => panic!("unknown comment: {}", at()),
            }
            continue;
        }
        assert!(!line.is_empty(), "empty line: {}", at());
        let (name, labels, value) = sample(line).unwrap_or_else(|e| panic!("{e}: {}", at()));
        let (fam, t) = family
            .as_ref()
            .unwrap_or_else(|| panic!("sample before TYPE: {}", at()));
        let allowed: Vec<String> = match t.as_str() {
            "counter" if openmetrics => vec![format!("{fam}_total"), format!("{fam}_created")],
            "histogram" => ["_bucket", "_sum", "_count", "_created"]
                .iter()
                .map(|x| format!("{fam}{x}"))
                .collect(),
            _ => vec![fam.clone()],
        };
        assert!(
            allowed.contains(&name),
            "{name} outside its family {fam}: {}",
            at()
        );
        if t == "counter" && !openmetrics {
            assert!(name.ends_with("_total"), "counter without _total: {}", at());
        }
        assert!(
            s.samples.insert((name, labels), value).is_none(),
            "duplicate series: {}",
            at()
        );
    }
    assert_eq!(eof, openmetrics, "OpenMetrics ends with # EOF, and only it");
    // Histograms: cumulative buckets ending in +Inf = _count.
    for (fam, t) in &s.types {
        if t != "histogram" {
            continue;
        }
        let mut by_series: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
        for ((name, labels), v) in &s.samples {
            if name == &format!("{fam}_bucket") {
                let mut l = labels.clone();
                let le = l.remove("le").expect("bucket without le");
                let le: f64 = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().expect("le")
                };
                by_series.entry(l).or_default().push((le, *v));
            }
        }
        for (labels, mut buckets) in by_series {
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            assert!(
                buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                "{fam}{labels:?} not cumulative"
            );
            let last = buckets.last().expect("buckets");
            assert!(last.0.is_infinite(), "{fam}{labels:?} without +Inf");
            let count = s.samples[&(format!("{fam}_count"), labels.clone())];
            assert_eq!(last.1, count, "{fam}{labels:?}: +Inf bucket != count");
        }
    }
    s
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

/// `name{k="v",...} value`.
fn sample(line: &str) -> Result<(String, Labels, f64), String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    if !valid_name(name) {
        return Err(format!("bad name {name:?}"));
    }
    let mut labels = Labels::new();
    let mut rest = &line[name_end..];
    if let Some(mut r) = rest.strip_prefix('{') {
        loop {
            if let Some(after) = r.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = r.find('=').ok_or("label without =")?;
            let key = &r[..eq];
            if !valid_name(key) || key.contains(':') {
                return Err(format!("bad label name {key:?}"));
            }
            r = r[eq + 1..]
                .strip_prefix('"')
                .ok_or("unquoted label value")?;
            let mut value = String::new();
            let mut chars = r.char_indices();
            let end = loop {
                match chars.next().ok_or("unterminated label value")? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        c => return Err(format!("bad escape \\{c}")),
                    },
                    (_, '\n') => return Err("newline in label value".into()),
                    (_, c) => value.push(c),
                }
            };
            if labels.insert(key.to_owned(), value).is_some() {
                return Err(format!("label {key} twice"));
            }
            r = &r[end + 1..];
            if let Some(after) = r.strip_prefix(',') {
                if after.starts_with('}') {
                    return Err("trailing comma".into());
                }
                r = after;
            } else if !r.starts_with('}') {
                return Err("labels not separated by commas".into());
            }
        }
    }
    let rest = rest.strip_prefix(' ').ok_or("no space before the value")?;
    let mut fields = rest.split(' ');
    let v = fields.next().ok_or("no value")?;
    let value = match v {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse::<f64>().map_err(|e| format!("value {v:?}: {e}"))?,
    };
    if let Some(ts) = fields.next() {
        ts.parse::<f64>()
            .map_err(|_| format!("bad timestamp {ts:?}"))?;
    }
    if fields.next().is_some() {
        return Err("trailing fields".into());
    }
    Ok((name.to_owned(), labels, value))
}

#[test]
fn parser_refuses_what_is_not_the_format() {
    let ok = "# HELP a_total x\n# TYPE a_total counter\na_total{t=\"q\\\"\\n\"} 1\n";
    assert_eq!(parse(ok, false).value("a_total", &[("t", "q\"\n")]), 1.0);
    for bad in [
        "a_total 1\n",                                    // no TYPE
        "# TYPE a_total counter\na_total{t=\"x\",} 1\n",  // trailing comma
        "# TYPE a_total counter\na_total{t=x} 1\n",       // unquoted
        "# TYPE a_total counter\na_total 1\na_total 2\n", // duplicate
        "# TYPE a_total counter\nb_total 1\n",            // outside its family
        "# TYPE a gauge\na one\n",                        // not a number
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 0\n",
    ] {
        assert!(
            std::panic::catch_unwind(|| parse(bad, false)).is_err(),
            "accepted {bad:?}"
        );
    }
}

// ---- The binary ----

fn scrape(node: &Node) -> Scrape {
    let r = get(node.http_addr(), "/metrics").expect("GET /metrics");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse(&r.text(), false)
}

/// Waits until `done` holds for a scrape of `node`; returns that scrape.
fn scrape_until(node: &Node, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Deadline::after(T);
    loop {
        let s = scrape(node);
        if done(&s) {
            return s;
        }
        deadline.check(|| format!("{what} on node {}", node.node_id));
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn on_disk(node: &Node, topic: &str, partition: i32) -> u64 {
    segment_files(&node.log_dir(), topic, partition)
        .iter()
        .map(|f| std::fs::metadata(f).expect("segment").len())
        .sum()
}

fn produce(bootstrap: &str, topic: &str, partitions: i32, n: usize) {
    let p = common::producer(bootstrap, &[("acks", "all"), ("linger.ms", "5")]);
    for i in 0..n {
        let v = format!("record {i} {}", "x".repeat(i % 50));
        p.send(
            BaseRecord::<(), str>::to(topic)
                .partition(i as i32 % partitions)
                .payload(v.as_str()),
        )
        .map_err(|(e, _)| e)
        .expect("send");
    }
    common::flush(&p, T);
}

/// Reads `n` records of `topic`/`partition` from the start with `consumer` (assigned).
fn consume(consumer: &BaseConsumer, topic: &str, partition: i32, n: usize) {
    common::assign(consumer, topic, &[(partition, Offset::Beginning)]);
    let deadline = Deadline::after(T);
    let mut got = 0;
    while got < n {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m.expect("consume");
            assert_eq!(m.offset(), got as i64);
            got += 1;
        }
        deadline.check(|| format!("consumed {got} of {n}"));
    }
}

#[test]
fn series_match_what_clients_did() {
    let cluster = Cluster::start(1, &GROUP_CONFIG);
    let node = &cluster.nodes[0];
    let bootstrap = cluster.bootstrap();
    let admin = common::admin(&bootstrap);
    create_topic(&admin, node, "metered", 2, &[]);
    const N: usize = 300;
    produce(&bootstrap, "metered", 2, N);
    let stored = on_disk(node, "metered", 0) + on_disk(node, "metered", 1);
    assert!(stored > 0);

    // Bytes and records in: the bytes stored are the bytes the producer sent.
    let s = scrape(node);
    let topic = [("topic", "metered")];
    assert_eq!(
        s.value("kafka_server_brokertopicmetrics_messagesin_total", &topic),
        N as f64
    );
    assert_eq!(
        s.value("kafka_server_brokertopicmetrics_bytesin_total", &topic),
        stored as f64
    );
    assert!(s.value("kafka_server_brokertopicmetrics_bytesin_total", &[]) >= stored as f64);
    let appends = s.value(
        "kafka_server_brokertopicmetrics_totalproducerequests_total",
        &topic,
    );
    assert!(appends >= 2.0, "{appends}");
    assert_eq!(
        s.value(
            "kafka_server_brokertopicmetrics_failedproducerequests_total",
            &topic
        ),
        0.0
    );
    assert_eq!(
        s.types["kafka_network_requestmetrics_totaltimems"],
        "histogram"
    );
    let produce = [("request", "Produce")];
    assert!(s.value("kafka_network_requestmetrics_totaltimems_count", &produce) >= 1.0);
    assert!(s.value("kafka_network_requestmetrics_requests_total", &produce) >= 1.0);
    for part in [
        "requestqueuetimems",
        "localtimems",
        "remotetimems",
        "responsesendtimems",
    ] {
        let name = format!("kafka_network_requestmetrics_{part}_count");
        assert_eq!(
            s.value(&name, &produce),
            s.value("kafka_network_requestmetrics_totaltimems_count", &produce),
            "{part}"
        );
    }
    assert_eq!(
        s.value(
            "kafka_controller_kafkacontroller_activecontrollercount",
            &[]
        ),
        1.0
    );
    assert_eq!(
        s.value(
            "kafka_controller_kafkacontroller_offlinepartitionscount",
            &[]
        ),
        0.0
    );
    assert_eq!(
        s.value("kafka_server_replicamanager_underreplicatedpartitions", &[]),
        0.0
    );
    assert!(s.value("kafka_server_replicamanager_partitioncount", &[]) >= 2.0);
    assert_eq!(
        s.value("kafka_server_replicamanager_leadercount", &[]),
        s.value("kafka_server_replicamanager_partitioncount", &[])
    );
    assert_eq!(
        s.value("kafka_server_raft_metrics_current_leader", &[]),
        1.0
    );
    assert!(
        s.value(
            "kafka_server_socket_server_metrics_connection_count",
            &[("listener", "PLAINTEXT")]
        ) >= 1.0
    );
    let idle = s.value(
        "kafka_network_socketserver_networkprocessoravgidlepercent",
        &[],
    );
    assert!((0.0..=1.0).contains(&idle), "{idle}");
    assert!(s
        .get(
            "kafka_server_delayedoperationpurgatory_purgatorysize",
            &[("delayedOperation", "Fetch")]
        )
        .is_some());
    // Per-partition series are off by default.
    assert_eq!(s.series("kafka_log_log_size"), 0);

    // Bytes out: a consumer reads everything once.
    // (A group id for librdkafka's assign; this consumer never commits.)
    let c = common::consumer(&bootstrap, &[("group.id", "reader")]);
    let per_partition = [N.div_ceil(2), N / 2];
    for (p, n) in per_partition.iter().enumerate() {
        consume(&c, "metered", p as i32, *n);
    }
    drop(c);
    let s = scrape_until(node, "bytes out", |s| {
        s.get("kafka_server_brokertopicmetrics_bytesout_total", &topic) == Some(stored as f64)
    });
    assert!(
        s.value(
            "kafka_server_brokertopicmetrics_totalfetchrequests_total",
            &topic
        ) >= 2.0
    );
    assert!(
        s.value(
            "kafka_network_requestmetrics_totaltimems_count",
            &[("request", "Fetch")]
        ) >= 1.0
    );

    // A group's lag: partition 0 has `per_partition[0]` records; the group commits M of them.
    const M: i64 = 40;
    let g: BaseConsumer = common::client_config(
        &bootstrap,
        &[("group.id", "lagging"), ("enable.auto.commit", "false")],
    )
    .create()
    .expect("group consumer");
    consume(&g, "metered", 0, M as usize);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("metered", 0, Offset::Offset(M))
        .expect("tpl");
    g.commit(&tpl, CommitMode::Sync).expect("commit");
    let lag = per_partition[0] as f64 - M as f64;
    let labels = [
        ("group", "lagging"),
        ("topic", "metered"),
        ("partition", "0"),
    ];
    let s = scrape_until(node, "group lag", |s| {
        s.get("rafka_consumergroup_lag", &labels).is_some()
    });
    assert_eq!(s.value("rafka_consumergroup_lag", &labels), lag);
    assert_eq!(
        s.value("rafka_consumergroup_lag_sum", &[("group", "lagging")]),
        lag
    );
    assert!(
        s.value(
            "kafka_server_group_coordinator_metrics_offset_commit_total",
            &[]
        ) >= 1.0
    );
    assert!(
        s.value(
            "kafka_coordinator_group_groupmetadatamanager_numgroups",
            &[]
        ) >= 1.0
    );

    // OpenMetrics when asked for.
    let r = get_with(
        node.http_addr(),
        "/metrics",
        &[(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        )],
    )
    .expect("GET /metrics");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/openmetrics-text")),
        "{:?}",
        r.headers
    );
    let om = parse(&r.text(), true);
    assert_eq!(
        om.types["kafka_server_brokertopicmetrics_messagesin"],
        "counter"
    );
    assert_eq!(
        om.value("kafka_server_brokertopicmetrics_messagesin_total", &topic),
        N as f64
    );
}

#[test]
fn per_partition_series_when_switched_on_and_none_when_metrics_are_off() {
    let cluster = Cluster::start(1, &[("metrics.partition.level.enable", "true")]);
    let node = &cluster.nodes[0];
    let bootstrap = cluster.bootstrap();
    create_topic(&common::admin(&bootstrap), node, "sized", 1, &[]);
    produce(&bootstrap, "sized", 1, 50);
    let s = scrape(node);
    let p0 = [("topic", "sized"), ("partition", "0")];
    assert_eq!(
        s.value("kafka_log_log_size", &p0),
        on_disk(node, "sized", 0) as f64
    );
    assert_eq!(s.value("kafka_log_log_logendoffset", &p0), 50.0);
    assert_eq!(s.value("kafka_log_log_numlogsegments", &p0), 1.0);
    drop(cluster);

    let cluster = Cluster::start(1, &[("metrics.enable", "false")]);
    let node = &cluster.nodes[0];
    let r = get(node.http_addr(), "/metrics").expect("GET /metrics");
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(
        get(node.http_addr(), "/health/live").expect("live").status,
        200
    );
}

#[test]
fn under_replicated_after_a_follower_dies_and_one_active_controller() {
    let _serial = common::one_cluster_at_a_time();
    let mut cluster = Cluster::start(
        3,
        &[
            ("replica.lag.time.max.ms", "2000"),
            ("replica.fetch.wait.max.ms", "200"),
            ("broker.session.timeout.ms", "4000"),
        ],
    );
    let bootstrap = cluster.bootstrap();
    create_replicated_topic(&bootstrap, "replicated", 1, 3);
    let views = wait_for_isrs(
        &cluster.nodes[0],
        "replicated",
        1,
        &[1, 2, 3],
        Deadline::after(T),
    );
    let leader = views[0].leader;
    let active = |cluster: &Cluster, alive: &[i32]| -> f64 {
        alive
            .iter()
            .map(|&id| {
                scrape(cluster.node(id)).value(
                    "kafka_controller_kafkacontroller_activecontrollercount",
                    &[],
                )
            })
            .sum()
    };
    // Exactly one active controller, once the quorum has a leader.
    let deadline = Deadline::after(T);
    while active(&cluster, &[1, 2, 3]) != 1.0 {
        deadline.check(|| "one active controller over the three nodes".into());
        std::thread::sleep(Duration::from_millis(100));
    }
    let s = scrape(cluster.node(leader));
    assert_eq!(
        s.value("kafka_server_replicamanager_underreplicatedpartitions", &[]),
        0.0
    );
    let shrinks_before = s.value("kafka_server_replicamanager_isrshrinks_total", &[]);

    // A follower dies: the leader reports the partition under-replicated.
    let follower = (1..=3).find(|&id| id != leader).expect("a follower");
    cluster.nodes[(follower - 1) as usize].kill();
    let s = scrape_until(cluster.node(leader), "an under-replicated partition", |s| {
        s.get("kafka_server_replicamanager_underreplicatedpartitions", &[]) == Some(1.0)
    });
    assert!(s.value("kafka_server_replicamanager_isrshrinks_total", &[]) > shrinks_before);
    // Still one active controller over the nodes alive.
    let alive: Vec<i32> = (1..=3).filter(|&id| id != follower).collect();
    let deadline = Deadline::after(T);
    while active(&cluster, &alive) != 1.0 {
        deadline.check(|| "one active controller over the two nodes left".into());
        std::thread::sleep(Duration::from_millis(100));
    }
}
