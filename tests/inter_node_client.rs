//! The broker's inter-node client against the real binary (issue #13): a broker-only node's
//! controller requests — forwarded CreateTopics, DeleteTopics and CreatePartitions, its
//! registration — reuse one persistent connection to the controller instead of one each, and
//! its heartbeats keep a connection of their own.
//!
//! Counted twice: by the broker's own `rafka_inter_node_*` series, and from the kernel's socket
//! table (`/proc/net/tcp`: sockets whose remote end is the controller listener, ESTABLISHED or
//! in TIME_WAIT — a connection closed by the broker stays in TIME_WAIT for 60 s, so a connection
//! per request would show as one socket per request).

mod common;

use common::http::get;
use common::{admin, admin_options, runtime, Cluster, Deadline, Node};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);
/// Controller requests made through the broker.
const TOPICS: usize = 15;

/// The value of the series `name{client="..."}` in `node`'s `/metrics`.
fn series(node: &Node, name: &str, client: &str) -> u64 {
    let r = get(node.http_addr(), "/metrics").expect("GET /metrics");
    assert_eq!(r.status, 200);
    let want = format!("{name}{{client=\"{client}\"}} ");
    r.text()
        .lines()
        .find_map(|l| l.strip_prefix(&want))
        .unwrap_or_else(|| panic!("no {want} in /metrics"))
        .trim()
        .parse::<f64>()
        .expect("a number") as u64
}

/// Sockets in the kernel's table (IPv4 loopback) whose remote port is `port`, by state:
/// (ESTABLISHED, TIME_WAIT).
fn sockets_to(port: u16) -> (usize, usize) {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let mut established = 0;
    let mut time_wait = 0;
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(remote), Some(state)) = (f.get(2), f.get(3)) else {
            continue;
        };
        let Some(p) = remote.rsplit(':').next() else {
            continue;
        };
        if u16::from_str_radix(p, 16).ok() != Some(port) {
            continue;
        }
        match *state {
            "01" => established += 1,
            "06" => time_wait += 1,
            _ => {}
        }
    }
    (established, time_wait)
}

#[test]
fn a_brokers_controller_requests_reuse_one_connection() {
    let _one = common::one_cluster_at_a_time();
    let cluster = Cluster::start_roles(&["controller", "broker"], &[]);
    let controller = &cluster.nodes[0];
    let broker = &cluster.nodes[1];
    let created_before = series(
        broker,
        "rafka_inter_node_connection_creation_total",
        "broker-to-controller",
    );
    let requests_before = series(
        broker,
        "rafka_inter_node_request_total",
        "broker-to-controller",
    );
    let sockets_before = sockets_to(controller.controller_port);

    let admin = admin(&broker.bootstrap());
    let rt = runtime();
    use rdkafka::admin::{NewPartitions, NewTopic, TopicReplication};
    for i in 0..TOPICS {
        let name = format!("reuse-{i}");
        let nt = NewTopic::new(&name, 1, TopicReplication::Fixed(1));
        for r in rt
            .block_on(admin.create_topics([&nt], &admin_options()))
            .expect("CreateTopics")
        {
            r.unwrap_or_else(|(t, e)| panic!("create {t}: {e}"));
        }
    }
    for i in 0..5 {
        let name = format!("reuse-{i}");
        let np = NewPartitions::new(&name, 2);
        for r in rt
            .block_on(admin.create_partitions([&np], &admin_options()))
            .expect("CreatePartitions")
        {
            r.unwrap_or_else(|(t, e)| panic!("create partitions {t}: {e}"));
        }
        for r in rt
            .block_on(admin.delete_topics(&[name.as_str()], &admin_options()))
            .expect("DeleteTopics")
        {
            r.unwrap_or_else(|(t, e)| panic!("delete {t}: {e}"));
        }
    }
    let sent = TOPICS + 10;

    let created = series(
        broker,
        "rafka_inter_node_connection_creation_total",
        "broker-to-controller",
    ) - created_before;
    let requests = series(
        broker,
        "rafka_inter_node_request_total",
        "broker-to-controller",
    ) - requests_before;
    let (established, time_wait) = sockets_to(controller.controller_port);
    eprintln!(
        "{sent} forwarded controller requests: {requests} requests answered over {created} new \
         connections; sockets to the controller listener before {sockets_before:?}, after \
         ({established}, {time_wait}) (established, time-wait)"
    );
    assert!(
        requests >= sent as u64,
        "{requests} requests counted, {sent} sent"
    );
    // The forwarding connection was opened by the registration already; at most one more if
    // the controller closed it meanwhile.
    assert!(created <= 1, "{created} connections for {sent} requests");
    assert!(
        time_wait <= sockets_before.1 + 1,
        "{time_wait} closed connections to the controller (a connection per request?)"
    );
    // Forwarding and heartbeat (the learner's metadata comes the other way).
    assert!(
        established <= 3,
        "{established} connections from the broker to the controller"
    );
    let open = series(
        broker,
        "rafka_inter_node_connection_count",
        "broker-to-controller",
    );
    assert!(
        (2..=3).contains(&open),
        "{open} open: forwarding, heartbeat (and alter-partition if an ISR changed)"
    );
}

#[test]
fn the_broker_reconnects_to_a_restarted_controller() {
    let _one = common::one_cluster_at_a_time();
    let mut cluster = Cluster::start_roles(&["controller", "broker"], &[]);
    let admin_b = cluster.nodes[1].bootstrap();
    let admin = admin(&admin_b);
    let rt = runtime();
    use rdkafka::admin::{NewTopic, TopicReplication};
    let create = |name: &str| {
        let nt = NewTopic::new(name, 1, TopicReplication::Fixed(1));
        rt.block_on(admin.create_topics([&nt], &admin_options()))
            .expect("CreateTopics")
            .into_iter()
            .all(|r| r.is_ok())
    };
    assert!(create("before"));
    // The controller's restart closes every connection the broker kept to it.
    cluster.nodes[0].terminate();
    cluster.nodes[0].start();
    let deadline = Deadline::after(T);
    let mut i = 0;
    loop {
        i += 1;
        if create(&format!("after-{i}")) {
            break;
        }
        deadline.check(|| "a CreateTopics forwarded after the controller's restart".to_owned());
        std::thread::sleep(Duration::from_millis(200));
    }
    // The heartbeat connection is reopened too: two open again, over new connections.
    let broker = &cluster.nodes[1];
    let deadline = Deadline::after(T);
    loop {
        let open = series(
            broker,
            "rafka_inter_node_connection_count",
            "broker-to-controller",
        );
        let created = series(
            broker,
            "rafka_inter_node_connection_creation_total",
            "broker-to-controller",
        );
        if open == 2 && created >= 4 {
            assert!(
                created <= 8,
                "{created} connections opened for 2 + 2 (and a retry or two)"
            );
            break;
        }
        deadline.check(|| format!("{open} open, {created} opened: the heartbeat reconnects"));
        std::thread::sleep(Duration::from_millis(100));
    }
}
