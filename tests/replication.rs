//! Replication across three real broker processes (RF=3, min.insync.replicas=2): followers copy
//! the leader's log byte for byte, the ISR shrinks when a follower dies and grows back when it
//! returns, acks=all keeps working with two in-sync replicas, and after the leader is SIGKILLed
//! the new leader has every acknowledged message, once and in order. A follower whose
//! replication alone is cut (its heartbeats go on) leaves the ISR by the leader's AlterPartition
//! and comes back once its fetches flow again.

mod common;

use common::ffi::BEGINNING;
use common::load::send_waiting;
use common::proxy::TcpProxy;
use common::{
    create_replicated_topic, free_port, metadata, partition_consumer, partition_views,
    wait_for_isrs, Cluster, Deadline, NodePorts,
};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::ClientConfig;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

const TOPIC: &str = "replicated";

/// The partition's (leader, ISR) as `node` sees it.
fn leader_and_isr(cluster: &Cluster, node: usize) -> Option<(i32, Vec<i32>)> {
    let p = partition_views(&cluster.nodes[node], TOPIC, 1)?
        .into_iter()
        .next()?;
    Some((p.leader, p.isr))
}

fn wait_for_isr(cluster: &Cluster, via: usize, want: &[i32], timeout: Duration) -> i32 {
    let views = wait_for_isrs(
        &cluster.nodes[via],
        TOPIC,
        1,
        want,
        Deadline::after(timeout),
    );
    views[0].leader
}

/// The bytes of every segment of the partition on `node`, concatenated.
fn log_bytes(cluster: &Cluster, node: usize) -> Vec<u8> {
    common::segment_files(&cluster.nodes[node].log_dir(), TOPIC, 0)
        .iter()
        .flat_map(|f| std::fs::read(f).unwrap_or_default())
        .collect()
}

fn wait_for_identical_logs(cluster: &Cluster, nodes: &[usize], timeout: Duration) -> usize {
    let deadline = Deadline::after(timeout);
    loop {
        let logs: Vec<Vec<u8>> = nodes.iter().map(|&n| log_bytes(cluster, n)).collect();
        if !logs[0].is_empty() && logs.windows(2).all(|w| w[0] == w[1]) {
            return logs[0].len();
        }
        deadline.check(|| {
            format!(
                "identical logs on nodes {nodes:?}: sizes {:?}",
                logs.iter().map(Vec::len).collect::<Vec<_>>()
            )
        });
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn produce(bootstrap: &str, from: u64, to: u64) {
    let p: ThreadedProducer<_> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "60000")
        .set("topic.metadata.refresh.interval.ms", "500")
        .create()
        .expect("producer");
    for i in from..to {
        let v = i.to_string();
        send_waiting(&p, BaseRecord::<(), _>::to(TOPIC).partition(0).payload(&v));
    }
    // flush fails if any message was not acknowledged (acks=all) within the timeout.
    p.flush(Duration::from_secs(60))
        .expect("every message acknowledged by acks=all");
}

fn read_all(bootstrap: &str, expect: u64) -> Vec<u64> {
    let mut c = partition_consumer(bootstrap, &[]);
    c.start(TOPIC, 0, BEGINNING);
    let deadline = Deadline::after(Duration::from_secs(60));
    let mut out = Vec::new();
    while (out.len() as u64) < expect {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push(
                String::from_utf8(m.payload.unwrap())
                    .unwrap()
                    .parse()
                    .unwrap(),
            ),
            Some(Err(e)) if e.contains("PARTITION_EOF") => {}
            Some(Err(e)) => eprintln!("consume: {e}"),
            None => {}
        }
        deadline.check(|| format!("{expect} messages, read {}", out.len()));
    }
    // Nothing beyond.
    while let Some(m) = c.poll(Duration::from_millis(500)) {
        if let Ok(m) = m {
            out.push(
                String::from_utf8(m.payload.unwrap())
                    .unwrap()
                    .parse()
                    .unwrap(),
            );
        }
    }
    out
}

#[test]
fn three_replicas_follow_shrink_grow_and_survive_the_leader() {
    let _serial = common::one_cluster_at_a_time();
    let mut cluster = Cluster::start(
        3,
        &[
            ("min.insync.replicas", "2"),
            ("replica.lag.time.max.ms", "3000"),
            ("replica.fetch.wait.max.ms", "200"),
            ("broker.session.timeout.ms", "4000"),
        ],
    );
    let bootstrap = cluster.bootstrap();
    create_replicated_topic(&bootstrap, TOPIC, 1, 3);
    let leader = wait_for_isr(&cluster, 0, &[1, 2, 3], Duration::from_secs(20));

    // 1. acks=all through three in-sync replicas; the followers' logs are the leader's, byte
    //    for byte.
    produce(&bootstrap, 0, 2000);
    let size = wait_for_identical_logs(&cluster, &[0, 1, 2], Duration::from_secs(20));
    println!("leader {leader}; three identical logs of {size} bytes");

    // 2. A follower dies: the ISR shrinks to two, acks=all goes on.
    let follower = (1..=3).find(|&id| id != leader).unwrap();
    let f = (follower - 1) as usize;
    cluster.nodes[f].kill();
    let others: Vec<i32> = (1..=3).filter(|&id| id != follower).collect();
    let via = (leader - 1) as usize;
    wait_for_isr(&cluster, via, &others, Duration::from_secs(20));
    produce(&bootstrap, 2000, 2500);

    // 3. It comes back, catches up, and rejoins the ISR.
    cluster.nodes[f].start();
    wait_for_isr(&cluster, via, &[1, 2, 3], Duration::from_secs(30));
    wait_for_identical_logs(&cluster, &[0, 1, 2], Duration::from_secs(20));

    // 4. The leader is SIGKILLed: another replica leads, with every acknowledged message.
    cluster.nodes[via].kill();
    let survivors: Vec<i32> = (1..=3).filter(|&id| id != leader).collect();
    let other = (survivors[0] - 1) as usize;
    let new_leader = wait_for_isr(&cluster, other, &survivors, Duration::from_secs(30));
    assert_ne!(new_leader, leader);
    let alive: String = survivors
        .iter()
        .map(|&id| cluster.nodes[(id - 1) as usize].bootstrap())
        .collect::<Vec<_>>()
        .join(",");
    produce(&alive, 2500, 2600);
    let got = read_all(&alive, 2600);
    let want: Vec<u64> = (0..2600).collect();
    assert_eq!(got.len(), want.len(), "every acknowledged message, once");
    assert_eq!(got, want, "in order");
    if std::env::var_os("RAFKA_IT_SHOW_LOGS").is_some() {
        println!("{}", cluster.logs(400));
    }
}

/// Three combined nodes whose replication goes over its own listener, advertised through a
/// proxy in front of each node, so followers' fetches (client id `replica-fetcher-<id>`) can be
/// cut while controller heartbeats and clients' traffic go on.
fn proxied_cluster(extra: &[(&str, &str)]) -> (Cluster, Vec<TcpProxy>) {
    let proxies: Vec<TcpProxy> = (0..3).map(|_| TcpProxy::start()).collect();
    let replication_ports: Mutex<HashMap<i32, u16>> = Mutex::new(HashMap::new());
    let proxy_ports: Vec<u16> = proxies.iter().map(TcpProxy::port).collect();
    let per_node = |n: &NodePorts| {
        let r = free_port();
        replication_ports.lock().unwrap().insert(n.node_id, r);
        let proxy = proxy_ports[(n.node_id - 1) as usize];
        vec![
            (
                "listeners".to_string(),
                format!(
                    "PLAINTEXT://127.0.0.1:{},REPLICATION://127.0.0.1:{r},CONTROLLER://127.0.0.1:{}",
                    n.port, n.controller_port
                ),
            ),
            (
                "advertised.listeners".to_string(),
                format!(
                    "PLAINTEXT://127.0.0.1:{},REPLICATION://127.0.0.1:{proxy}",
                    n.port
                ),
            ),
            (
                "listener.security.protocol.map".to_string(),
                "PLAINTEXT:PLAINTEXT,REPLICATION:PLAINTEXT,CONTROLLER:PLAINTEXT".to_string(),
            ),
            (
                "inter.broker.listener.name".to_string(),
                "REPLICATION".to_string(),
            ),
        ]
    };
    let cluster = Cluster::start_with(&["broker,controller"; 3], extra, &per_node);
    for (id, port) in replication_ports.lock().unwrap().iter() {
        proxies[(*id - 1) as usize].set_target(format!("127.0.0.1:{port}").parse().unwrap());
    }
    (cluster, proxies)
}

#[test]
fn a_follower_cut_off_from_replication_leaves_the_isr_and_returns() {
    let _serial = common::one_cluster_at_a_time();
    let (cluster, proxies) = proxied_cluster(&[
        ("min.insync.replicas", "2"),
        ("replica.lag.time.max.ms", "3000"),
        ("replica.fetch.wait.max.ms", "200"),
        ("replica.fetch.backoff.ms", "200"),
    ]);
    let bootstrap = cluster.bootstrap();
    create_replicated_topic(&bootstrap, TOPIC, 1, 3);
    let leader = wait_for_isr(&cluster, 0, &[1, 2, 3], Duration::from_secs(20));
    produce(&bootstrap, 0, 500);
    wait_for_identical_logs(&cluster, &[0, 1, 2], Duration::from_secs(20));

    let follower = (1..=3).find(|&id| id != leader).unwrap();
    let cut = format!("replica-fetcher-{follower}");
    for p in &proxies {
        p.block_client(Some(&cut));
    }
    let others: Vec<i32> = (1..=3).filter(|&id| id != follower).collect();
    let via = (leader - 1) as usize;
    wait_for_isr(&cluster, via, &others, Duration::from_secs(20));
    // Not fenced: still a registered, live broker in the metadata.
    let md = metadata(cluster.nodes[via].addr(), None, Duration::from_secs(2)).unwrap();
    assert!(
        md.brokers.iter().any(|b| b.node_id == follower),
        "broker {follower} is alive, only its replication is cut"
    );
    // acks=all goes on with two in-sync replicas.
    produce(&bootstrap, 500, 1000);

    for p in &proxies {
        p.block_client(None);
    }
    wait_for_isr(&cluster, via, &[1, 2, 3], Duration::from_secs(30));
    wait_for_identical_logs(&cluster, &[0, 1, 2], Duration::from_secs(20));
    let got = read_all(&bootstrap, 1000);
    assert_eq!(got, (0..1000).collect::<Vec<u64>>());
}

fn produce_acks_1(bootstrap: &str, from: u64, to: u64) {
    let p: ThreadedProducer<_> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("acks", "1")
        .set("linger.ms", "0")
        .set("message.timeout.ms", "10000")
        .create()
        .expect("producer");
    for i in from..to {
        let v = i.to_string();
        p.send(BaseRecord::<(), _>::to(TOPIC).partition(0).payload(&v))
            .map_err(|(e, _)| e)
            .expect("queue");
    }
    p.flush(Duration::from_secs(10))
        .expect("acks=1: the leader alone acknowledges");
}

#[test]
fn a_paused_leaders_unreplicated_tail_is_truncated_when_it_returns() {
    let _serial = common::one_cluster_at_a_time();
    let (cluster, proxies) = proxied_cluster(&[
        ("min.insync.replicas", "2"),
        ("replica.lag.time.max.ms", "20000"),
        ("replica.fetch.wait.max.ms", "200"),
        ("replica.fetch.backoff.ms", "200"),
        ("broker.session.timeout.ms", "3000"),
        ("controller.quorum.request.timeout.ms", "1000"),
        ("broker.heartbeat.interval.ms", "500"),
        ("leader.imbalance.check.interval.seconds", "1"),
    ]);
    let bootstrap = cluster.bootstrap();
    create_replicated_topic(&bootstrap, TOPIC, 1, 3);
    let leader = wait_for_isr(&cluster, 0, &[1, 2, 3], Duration::from_secs(20));
    let index = |id: i32| (id - 1) as usize;
    produce(&bootstrap, 0, 300);
    wait_for_identical_logs(&cluster, &[0, 1, 2], Duration::from_secs(20));

    // Replication stops (the followers stay in the ISR: the lag allowed is long); the leader
    // takes acks=1 writes that no follower gets; then the leader stops answering (SIGSTOP:
    // its connections stay open) and replication flows again.
    for p in &proxies {
        p.block_client(Some("replica-fetcher-"));
        p.cut_all();
    }
    produce_acks_1(&cluster.nodes[index(leader)].bootstrap(), 1000, 1100);
    cluster.nodes[index(leader)].pause();
    for p in &proxies {
        p.block_client(None);
    }
    // The paused leader is fenced; a follower leads, with the two of them in the ISR.
    let followers: Vec<i32> = (1..=3).filter(|&id| id != leader).collect();
    let new_leader = wait_for_isr(
        &cluster,
        index(followers[0]),
        &followers,
        Duration::from_secs(30),
    );
    assert_ne!(new_leader, leader);
    let alive: String = followers
        .iter()
        .map(|&id| cluster.nodes[index(id)].bootstrap())
        .collect::<Vec<_>>()
        .join(",");
    produce(&alive, 2000, 2200);

    // The old leader returns: it follows, finds where its log diverged and drops its tail.
    cluster.nodes[index(leader)].resume();
    wait_for_isr(
        &cluster,
        index(new_leader),
        &[1, 2, 3],
        Duration::from_secs(30),
    );
    wait_for_identical_logs(&cluster, &[0, 1, 2], Duration::from_secs(20));
    // auto.leader.rebalance.enable: the preferred replica (the first leader) leads again.
    let deadline = Deadline::after(Duration::from_secs(20));
    while leader_and_isr(&cluster, index(new_leader)).map(|(l, _)| l) != Some(leader) {
        deadline.check(|| format!("broker {leader}, the preferred replica, leading again"));
        std::thread::sleep(Duration::from_millis(100));
    }
    let got = read_all(&alive, 500);
    let want: Vec<u64> = (0..300).chain(2000..2200).collect();
    assert_eq!(
        got.len(),
        want.len(),
        "the acks=all messages, and none of the lost acks=1 tail: {:?}",
        got.iter().filter(|v| (1000..1100).contains(*v)).count()
    );
    assert_eq!(got, want);
}

#[test]
fn committed_offsets_survive_the_coordinators_death() {
    let _serial = common::one_cluster_at_a_time();
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let mut cluster = Cluster::start(
        3,
        &[
            ("offsets.topic.replication.factor", "3"),
            ("offsets.topic.num.partitions", "3"),
            ("min.insync.replicas", "2"),
            ("replica.fetch.wait.max.ms", "200"),
            ("broker.session.timeout.ms", "3000"),
            ("controller.quorum.request.timeout.ms", "1000"),
            ("broker.heartbeat.interval.ms", "500"),
        ],
    );
    let bootstrap = cluster.bootstrap();
    create_replicated_topic(&bootstrap, TOPIC, 1, 3);
    wait_for_isr(&cluster, 0, &[1, 2, 3], Duration::from_secs(20));
    produce(&bootstrap, 0, 100);
    let group = "survivors";
    let consumer = |bootstrap: &str| -> BaseConsumer {
        common::client_config(
            bootstrap,
            &[
                ("group.id", group),
                ("enable.auto.commit", "false"),
                ("auto.offset.reset", "earliest"),
            ],
        )
        .create()
        .expect("consumer")
    };
    // A commit, acknowledged once replicated to the ISR of its __consumer_offsets partition.
    let c = consumer(&bootstrap);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Offset(42))
        .unwrap();
    c.commit(&tpl, CommitMode::Sync).expect("commit");
    drop(c);
    let dead = common::group_coordinator(&cluster.nodes[0], group).expect("a coordinator");
    cluster.nodes[(dead - 1) as usize].kill();

    // Another broker takes the partition over, loads it, and answers with the commit.
    let alive: String = (1..=3)
        .filter(|&id| id != dead)
        .map(|id| cluster.nodes[(id - 1) as usize].bootstrap())
        .collect::<Vec<_>>()
        .join(",");
    let deadline = Deadline::after(Duration::from_secs(40));
    let c = consumer(&alive);
    loop {
        let mut want = TopicPartitionList::new();
        want.add_partition(TOPIC, 0);
        if let Ok(got) = c.committed_offsets(want, Duration::from_secs(5)) {
            if let Some(e) = got.find_partition(TOPIC, 0) {
                if e.offset() == Offset::Offset(42) {
                    break;
                }
            }
        }
        deadline.check(|| format!("the commit, from a new coordinator\n{}", cluster.logs(30)));
        std::thread::sleep(Duration::from_millis(200));
    }
    // Every survivor names a live coordinator once it has applied the move (one that has not yet
    // may still name the dead broker for a moment: ask again).
    for id in (1..=3).filter(|&id| id != dead) {
        let deadline = Deadline::after(Duration::from_secs(20));
        loop {
            let now = common::group_coordinator(&cluster.nodes[(id - 1) as usize], group);
            if now.is_some_and(|now| now != dead) {
                break;
            }
            deadline.check(|| format!("node {id} still names {now:?} (dead: {dead})"));
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn a_follower_paused_past_its_session_is_fenced_and_leaves_every_isr() {
    let _serial = common::one_cluster_at_a_time();
    let cluster = Cluster::start(
        3,
        &[
            ("min.insync.replicas", "2"),
            ("replica.lag.time.max.ms", "30000"),
            ("replica.fetch.wait.max.ms", "200"),
            ("broker.session.timeout.ms", "3000"),
            ("controller.quorum.request.timeout.ms", "1000"),
            ("broker.heartbeat.interval.ms", "500"),
        ],
    );
    let bootstrap = cluster.bootstrap();
    create_replicated_topic(&bootstrap, TOPIC, 3, 3);
    let isrs = |via: usize| -> Option<Vec<(i32, Vec<i32>)>> {
        let views = partition_views(&cluster.nodes[via], TOPIC, 3)?;
        Some(views.into_iter().map(|p| (p.leader, p.isr)).collect())
    };
    let deadline = Deadline::after(Duration::from_secs(20));
    while !isrs(0).is_some_and(|v| v.len() == 3 && v.iter().all(|(_, isr)| isr.len() == 3)) {
        deadline.check(|| format!("three full ISRs: {:?}", isrs(0)));
        std::thread::sleep(Duration::from_millis(100));
    }
    // The lag allowed (30 s) is far longer than the session (3 s): only fencing can drop it.
    // The broker paused is the active controller's node, the hardest case: the others'
    // heartbeats in flight to it hang until `controller.quorum.request.timeout.ms`, then go to
    // the newly elected controller, within their sessions.
    let paused = common::active_controller(cluster.nodes[0].addr(), Duration::from_secs(2))
        .expect("DescribeQuorum");
    assert!((1..=3).contains(&paused));
    let p = (paused - 1) as usize;
    let via = (p + 1) % 3;
    cluster.nodes[p].pause();
    let deadline = Deadline::after(Duration::from_secs(20));
    loop {
        let v = isrs(via).unwrap_or_default();
        let md = metadata(cluster.nodes[via].addr(), None, Duration::from_secs(2)).ok();
        let fenced = md.is_some_and(|m| m.brokers.iter().all(|b| b.node_id != paused));
        if fenced
            && v.len() == 3
            && v.iter()
                .all(|(leader, isr)| *leader != paused && !isr.contains(&paused))
        {
            break;
        }
        deadline.check(|| format!("broker {paused} fenced and out of every ISR: {v:?}"));
        std::thread::sleep(Duration::from_millis(100));
    }
    // acks=all goes on with the two others.
    produce(&bootstrap, 0, 200);
    cluster.nodes[p].resume();
    let deadline = Deadline::after(Duration::from_secs(30));
    while !isrs(via).is_some_and(|v| v.iter().all(|(_, isr)| isr.len() == 3)) {
        deadline.check(|| format!("broker {paused} back in every ISR: {:?}", isrs(via)));
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `replica.fetch.min.bytes`: a follower asks the leader to hold its fetch until that much is
/// there or `replica.fetch.wait.max.ms` passes. At 1 MiB and 300 ms, a record of a few bytes
/// sent with acks=all waits out the follower's parked fetch — every one after the first, whose
/// fetch was parked just as the previous record was acknowledged — where the default (1) gets
/// each acknowledged in milliseconds.
#[test]
fn replica_fetch_min_bytes_holds_the_followers_fetches() {
    let cluster = Cluster::start(
        2,
        &[
            ("replica.fetch.min.bytes", "1048576"),
            ("replica.fetch.wait.max.ms", "300"),
        ],
    );
    create_replicated_topic(&cluster.bootstrap(), "held", 1, 2);
    let deadline = Deadline::after(Duration::from_secs(30));
    while !common::partition_views(&cluster.nodes[0], "held", 1)
        .is_some_and(|v| v[0].leader > 0 && v[0].isr.len() == 2)
    {
        deadline.check(|| "both replicas in the ISR of held-0".into());
        std::thread::sleep(Duration::from_millis(50));
    }
    let p = common::SyncProducer::new(&cluster.bootstrap(), &[]);
    p.send("held", 0, b"first").expect("first record");
    let t0 = std::time::Instant::now();
    for i in 0..4u8 {
        p.send("held", 0, &[i]).expect("record");
    }
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(750),
        "4 acks=all records in {took:?}: the follower's fetches were not held for 1 MiB"
    );
}
