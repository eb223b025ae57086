//! The web console of the real binary (`http.console.*`): its JSON endpoints report the
//! cluster the test made (topics, partition counts, a group's lag after producing N and
//! consuming M with librdkafka, a produced record with its key and headers in the message
//! browser), bad parameters get 400 (416 for offsets out of range), and the write actions are
//! refused while disabled, refused without the CSRF header, and work when enabled.

mod common;

use common::http::{get, post_with};
use common::{admin, create_topic, Cluster, Deadline, SyncProducer};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;

const GROUP_CONFIG: [(&str, &str); 3] = [
    ("offsets.topic.replication.factor", "1"),
    ("group.initial.rebalance.delay.ms", "0"),
    ("http.console.sample.interval.ms", "200"),
];

fn json(addr: SocketAddr, path: &str) -> (u16, Value) {
    let r = get(addr, path).unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let v = serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {}", r.text()));
    (r.status, v)
}

fn ok_json(addr: SocketAddr, path: &str) -> Value {
    let (status, v) = json(addr, path);
    assert_eq!(status, 200, "GET {path}: {v}");
    v
}

#[test]
fn console_reports_the_cluster() {
    let cluster = Cluster::start(1, &GROUP_CONFIG);
    let node = &cluster.nodes[0];
    let http = node.http_addr();
    let bootstrap = cluster.bootstrap();
    let admin = admin(&bootstrap);
    create_topic(&admin, node, "orders", 3, &[("retention.ms", "3600000")]);
    create_topic(&admin, node, "audit", 1, &[]);

    // The page and its assets, compiled in.
    let page = get(http, "/").expect("page");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("rafka console"), "{}", page.text());
    assert!(page
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/html"));
    for asset in ["/assets/app.js", "/assets/app.css"] {
        let r = get(http, asset).expect("asset");
        assert_eq!(r.status, 200, "{asset}");
        assert!(r.body.len() > 1000, "{asset} is {} bytes", r.body.len());
    }

    // N = 30 records: 10 on each partition of orders.
    let producer = SyncProducer::new(&bootstrap, &[]);
    for p in 0..3 {
        for i in 0..10 {
            producer
                .send("orders", p, format!("order {p}/{i}").as_bytes())
                .expect("produce");
        }
    }
    // A record with a key and headers for the browser.
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "trace",
            value: Some("abc-123"),
        })
        .insert(Header {
            key: "empty",
            value: None::<&[u8]>,
        });
    producer
        .send_record(
            rdkafka::producer::BaseRecord::to("audit")
                .partition(0)
                .key("user-42")
                .payload("hello console ✓")
                .headers(headers),
        )
        .expect("produce audit");

    // The group reads everything, then commits M = 14: all of 0, 4 of 1, none of 2.
    let consumer = common::group_consumer(&bootstrap, "billing");
    consumer.subscribe(&["orders"]).expect("subscribe");
    let deadline = Deadline::after(Duration::from_secs(30));
    let mut seen = 0;
    while seen < 30 {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            m.expect("consume");
            seen += 1;
        }
        deadline.check(|| format!("consumed {seen} of 30"));
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("orders", 0, Offset::Offset(10))
        .expect("tpl");
    tpl.add_partition_offset("orders", 1, Offset::Offset(4))
        .expect("tpl");
    tpl.add_partition_offset("orders", 2, Offset::Offset(0))
        .expect("tpl");
    consumer.commit(&tpl, CommitMode::Sync).expect("commit");

    // Overview.
    let c = ok_json(http, "/api/cluster");
    assert_eq!(c["node_id"], 1);
    assert_eq!(c["controller_id"], 1, "{c}");
    assert_eq!(c["nodes"].as_array().map(Vec::len), Some(1), "{c}");
    let roles = c["nodes"][0]["roles"].as_array().expect("roles").clone();
    assert!(
        roles.contains(&"broker".into()) && roles.contains(&"controller".into()),
        "{c}"
    );
    assert_eq!(c["quorum"]["voters"][0]["id"], 1, "{c}");
    assert_eq!(c["quorum"]["voters"][0]["lag"], 0, "{c}");
    assert_eq!(c["write_enabled"], false);
    assert_eq!(c["principal"], "User:ANONYMOUS");

    // Topics (internal ones left out), their partition counts and sizes.
    let t = ok_json(http, "/api/topics?internal=false");
    let names: Vec<&str> = t["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .filter_map(|x| x["name"].as_str())
        .collect();
    assert_eq!(names, ["audit", "orders"], "{t}");
    assert_eq!(t["topics"][1]["partitions"], 3);
    assert_eq!(t["topics"][1]["messages"], 30);
    assert_eq!(t["topics"][1]["retention_ms"], 3_600_000);
    assert!(
        t["topics"][1]["size_bytes"].as_u64().unwrap_or(0) > 300,
        "{t}"
    );
    let filtered = ok_json(http, "/api/topics?q=ord");
    assert_eq!(filtered["total"], 1, "{filtered}");
    let paged = ok_json(http, "/api/topics?internal=false&limit=1&offset=1");
    assert_eq!(
        (paged["total"].clone(), paged["topics"][0]["name"].clone()),
        (2.into(), "orders".into())
    );

    let o = ok_json(http, "/api/topics/orders");
    assert_eq!(o["partition_count"], 3);
    for p in o["partitions"].as_array().expect("partitions") {
        assert_eq!(p["leader"], 1, "{p}");
        assert_eq!(p["isr"], serde_json::json!([1]), "{p}");
        assert_eq!(p["local"]["high_watermark"], 10, "{p}");
    }
    let retention = o["configs"]
        .as_array()
        .expect("configs")
        .iter()
        .find(|c| c["name"] == "retention.ms")
        .cloned();
    assert_eq!(
        retention.map(|r| (r["value"].clone(), r["source"].clone())),
        Some(("3600000".into(), "DYNAMIC_TOPIC_CONFIG".into())),
        "{o}"
    );

    // The message browser: the record with its key and headers.
    let m = ok_json(http, "/api/topics/audit/partitions/0/messages?offset=0");
    assert_eq!(m["records"].as_array().map(Vec::len), Some(1), "{m}");
    let r = &m["records"][0];
    assert_eq!(r["offset"], 0);
    assert_eq!(r["key"]["text"], "user-42");
    assert_eq!(r["value"]["text"], "hello console ✓");
    assert_eq!(
        r["value"]["hex"]
            .as_str()
            .map(|h| h.starts_with("68656c6c6f")),
        Some(true)
    );
    assert_eq!(r["headers"][0]["key"], "trace");
    assert_eq!(r["headers"][0]["value"]["text"], "abc-123");
    assert_eq!(r["headers"][1]["value"], Value::Null);
    assert!(
        r["timestamp"].as_i64().unwrap_or(0) > 1_600_000_000_000,
        "{r}"
    );
    // Pages: limit 4 from offset 3 of orders-1, then what follows.
    let m = ok_json(
        http,
        "/api/topics/orders/partitions/1/messages?offset=3&limit=4",
    );
    let offsets: Vec<i64> = m["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["offset"].as_i64())
        .collect();
    assert_eq!(offsets, [3, 4, 5, 6], "{m}");
    assert_eq!(m["next_offset"], 7);
    assert_eq!(m["records"][0]["value"]["text"], "order 1/3");
    // By time: from the epoch, everything; from the future, nothing.
    let m = ok_json(
        http,
        "/api/topics/orders/partitions/2/messages?timestamp=0&limit=100",
    );
    assert_eq!(m["records"].as_array().map(Vec::len), Some(10), "{m}");
    let m = ok_json(
        http,
        "/api/topics/orders/partitions/2/messages?timestamp=99999999999999",
    );
    assert_eq!(m["records"].as_array().map(Vec::len), Some(0), "{m}");

    // The group: members, assignments, lag per partition (N − M = 16).
    let g = ok_json(http, "/api/groups");
    let billing = g["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|x| x["group"] == "billing")
        .cloned()
        .expect("billing listed");
    assert_eq!(billing["lag"], 16, "{g}");
    assert_eq!(billing["members"], 1, "{g}");
    let (status, unknown) = json(http, "/api/groups/no-such-group");
    assert_eq!(status, 404, "{unknown}");
    let d = ok_json(http, "/api/groups/billing");
    assert_eq!(d["state"], "Stable", "{d}");
    assert_eq!(d["lag"], 16, "{d}");
    let lags: Vec<(i64, i64, i64)> = d["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| {
            (
                p["partition"].as_i64().unwrap_or(-1),
                p["committed_offset"].as_i64().unwrap_or(-1),
                p["lag"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(lags, [(0, 10, 0), (1, 4, 6), (2, 0, 10)], "{d}");
    let assignment = &d["members"][0]["assignment"][0];
    assert_eq!(assignment["topic"], "orders", "{d}");
    assert_eq!(
        assignment["partitions"],
        serde_json::json!([0, 1, 2]),
        "{d}"
    );
    // The sampled lag history and throughput fill in (samples every 200 ms here).
    let deadline = Deadline::after(Duration::from_secs(10));
    loop {
        let d = ok_json(http, "/api/groups/billing");
        let t = ok_json(http, "/api/throughput");
        let history = d["lag_history"].as_array().map_or(0, Vec::len);
        if history >= 2 && t["total"].as_array().map_or(0, Vec::len) >= 2 {
            assert_eq!(d["lag_history"][history - 1][1], 16, "{d}");
            break;
        }
        deadline.check(|| format!("no history: {d} {t}"));
        std::thread::sleep(Duration::from_millis(100));
    }
    // Traffic shows in the throughput samples of its topic.
    for i in 0..20 {
        producer
            .send("audit", 0, format!("burst {i}").as_bytes())
            .expect("produce");
    }
    let deadline = Deadline::after(Duration::from_secs(10));
    loop {
        let t = ok_json(http, "/api/throughput?topic=audit");
        let msgs: f64 = t["topics"][0]["samples"]
            .as_array()
            .map_or(0.0, |s| s.iter().filter_map(|x| x[2].as_f64()).sum());
        if msgs > 0.0 {
            break;
        }
        deadline.check(|| format!("no throughput for audit: {t}"));
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(consumer);
}

#[test]
fn bad_parameters_are_refused() {
    let cluster = Cluster::start(1, &GROUP_CONFIG);
    let node = &cluster.nodes[0];
    let http = node.http_addr();
    let admin = admin(&cluster.bootstrap());
    create_topic(&admin, node, "t", 2, &[]);
    let producer = SyncProducer::new(&cluster.bootstrap(), &[]);
    for i in 0..5 {
        producer
            .send("t", 0, format!("m{i}").as_bytes())
            .expect("produce");
    }
    for (path, status) in [
        ("/api/topics?limit=abc", 400),
        ("/api/topics?limit=0", 400),
        ("/api/topics?limit=100000", 400),
        ("/api/topics?offset=-1", 400),
        ("/api/topics?bogus=1", 400),
        ("/api/topics?internal=maybe", 400),
        ("/api/topics/t?limit=x", 400),
        ("/api/topics/nope", 404),
        ("/api/topics/t/partitions/x/messages", 400),
        ("/api/topics/t/partitions/-1/messages", 400),
        ("/api/topics/t/partitions/0/messages?offset=-3", 400),
        ("/api/topics/t/partitions/0/messages?offset=abc", 400),
        (
            "/api/topics/t/partitions/0/messages?offset=1&timestamp=1",
            400,
        ),
        ("/api/topics/t/partitions/0/messages?limit=100000", 400),
        (
            "/api/topics/t/partitions/0/messages?max_bytes=999999999999",
            400,
        ),
        ("/api/topics/t/partitions/0/messages?offset=6", 416),
        (
            "/api/topics/t/partitions/0/messages?offset=9223372036854775807",
            416,
        ),
        ("/api/topics/t/partitions/7/messages", 404),
        ("/api/topics/nope/partitions/0/messages", 404),
        // No __consumer_offsets yet: no node coordinates any group.
        ("/api/groups/nope", 503),
        ("/api/groups?limit=-5", 400),
        ("/api/throughput?x=1", 400),
        ("/api/nope", 404),
        ("/api/topics/t/partitions/0/nope", 404),
    ] {
        let (got, v) = json(http, path);
        assert_eq!(got, status, "{path}: {v}");
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}: {v}"
        );
    }
    assert_eq!(get(http, "/nope").expect("answer").status, 404);
    // The 416 says what is readable.
    let (_, v) = json(http, "/api/topics/t/partitions/0/messages?offset=6");
    assert!(v["error"].as_str().unwrap_or("").contains("0 to 5"), "{v}");
    // The end itself is a valid, empty page.
    let v = ok_json(http, "/api/topics/t/partitions/0/messages?offset=5");
    assert_eq!(v["records"], serde_json::json!([]));
    // The browser caps a page: limit=2 gives 2.
    let v = ok_json(http, "/api/topics/t/partitions/0/messages?limit=2");
    assert_eq!(v["records"].as_array().map(Vec::len), Some(2));

    // Writes are refused while http.console.write.enable is false (the default).
    let r = post_with(
        http,
        "/api/topics",
        &[
            ("Content-Type", "application/json"),
            ("X-Rafka-Console", "1"),
        ],
        br#"{"name":"made-by-console"}"#,
    )
    .expect("post");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.text().contains("http.console.write.enable"),
        "{}",
        r.text()
    );
    let t = ok_json(http, "/api/topics?q=made-by-console");
    assert_eq!(t["total"], 0);
}

#[test]
fn writes_when_enabled() {
    let mut props = GROUP_CONFIG.to_vec();
    props.push(("http.console.write.enable", "true"));
    let cluster = Cluster::start(1, &props);
    let node = &cluster.nodes[0];
    let http = node.http_addr();
    let good: [(&str, &str); 2] = [
        ("Content-Type", "application/json"),
        ("X-Rafka-Console", "1"),
    ];

    // CSRF: no custom header, a foreign origin, a form content type — all refused.
    let body = br#"{"name":"console-made","partitions":4,"configs":{"retention.ms":"120000"}}"#;
    let r = post_with(
        http,
        "/api/topics",
        &[("Content-Type", "application/json")],
        body,
    )
    .expect("post");
    assert_eq!(r.status, 403, "{}", r.text());
    let r = post_with(
        http,
        "/api/topics",
        &[good[0], good[1], ("Origin", "http://evil.example")],
        body,
    )
    .expect("post");
    assert_eq!(r.status, 403, "{}", r.text());
    let r = post_with(
        http,
        "/api/topics",
        &[("Content-Type", "text/plain"), good[1]],
        body,
    )
    .expect("post");
    assert_eq!(r.status, 415, "{}", r.text());
    let r = post_with(http, "/api/topics", &good, b"{not json").expect("post");
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(ok_json(http, "/api/topics?q=console-made")["total"], 0);

    // Create: through CreateTopics (its validation: a bad config value is refused).
    let r = post_with(
        http,
        "/api/topics",
        &good,
        br#"{"name":"bad","configs":{"retention.ms":"soon"}}"#,
    )
    .expect("post");
    assert_eq!(r.status, 400, "{}", r.text());
    let r = post_with(http, "/api/topics", &good, br#"{"name":"bad name!"}"#).expect("post");
    assert_eq!(r.status, 400, "{}", r.text());
    let origin = format!("http://{http}");
    let r = post_with(
        http,
        "/api/topics",
        &[good[0], good[1], ("Origin", &origin)],
        body,
    )
    .expect("post");
    assert_eq!(r.status, 200, "{}", r.text());
    common::wait_for_topic(node, "console-made", 4, Duration::from_secs(20));
    let r = post_with(http, "/api/topics", &good, body).expect("post");
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("TOPIC_ALREADY_EXISTS"), "{}", r.text());
    let t = ok_json(http, "/api/topics/console-made");
    assert_eq!(t["partition_count"], 4);

    // Alter a config (IncrementalAlterConfigs), and refuse an unknown one.
    let r = post_with(
        http,
        "/api/topics/console-made/configs",
        &good,
        br#"{"set":{"retention.ms":"7200000"}}"#,
    )
    .expect("post");
    assert_eq!(r.status, 200, "{}", r.text());
    let deadline = Deadline::after(Duration::from_secs(10));
    loop {
        let t = ok_json(http, "/api/topics/console-made");
        let v = t["configs"]
            .as_array()
            .expect("configs")
            .iter()
            .find(|c| c["name"] == "retention.ms")
            .map(|c| c["value"].clone());
        if v == Some("7200000".into()) {
            break;
        }
        deadline.check(|| format!("retention.ms never changed: {t}"));
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = post_with(
        http,
        "/api/topics/console-made/configs",
        &good,
        br#"{"set":{"no.such.config":"1"}}"#,
    )
    .expect("post");
    assert_eq!(r.status, 400, "{}", r.text());

    // Reset a group's offsets: commit 5 on partition 0 as a simple consumer, then reset to earliest.
    let producer = SyncProducer::new(&cluster.bootstrap(), &[]);
    for i in 0..8 {
        producer
            .send("console-made", 0, format!("r{i}").as_bytes())
            .expect("produce");
    }
    let c = common::group_consumer(&cluster.bootstrap(), "resettable");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("console-made", 0, Offset::Offset(5))
        .expect("tpl");
    c.commit(&tpl, CommitMode::Sync).expect("commit");
    assert_eq!(ok_json(http, "/api/groups/resettable")["lag"], 3);
    let r = post_with(
        http,
        "/api/groups/resettable/offsets",
        &good,
        br#"{"topic":"console-made","partitions":[0],"to":"earliest"}"#,
    )
    .expect("post");
    assert_eq!(r.status, 200, "{}", r.text());
    let g = ok_json(http, "/api/groups/resettable");
    assert_eq!(
        (
            g["lag"].clone(),
            g["partitions"][0]["committed_offset"].clone()
        ),
        (8.into(), 0.into()),
        "{g}"
    );
    let r = post_with(
        http,
        "/api/groups/resettable/offsets",
        &good,
        br#"{"topic":"console-made","to":"sideways"}"#,
    )
    .expect("post");
    assert_eq!(r.status, 400, "{}", r.text());
    let r = post_with(
        http,
        "/api/groups/resettable/offsets",
        &good,
        br#"{"topic":"console-made","partitions":[9],"to":"latest"}"#,
    )
    .expect("post");
    assert_eq!(r.status, 400, "{}", r.text());
}
