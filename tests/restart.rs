//! Restarts of one node with its data: after SIGTERM (a clean shutdown, exit status 0) and
//! after SIGKILL (recovery), every record acknowledged with acks=all is read back, in order and
//! intact, and the log continues at the right offset.
//!
//! `a_restarted_broker_rejoins_isrs_only_once_registered`: a broker SIGKILLed and restarted
//! while its previous incarnation's session lasts is refused registration until that session
//! expires; until then it does not fetch its way back into the ISRs (from where it could be
//! elected leader of partitions whose clients it cannot serve yet).

mod common;

use common::{
    create_replicated_topic, create_topic, partition_views, read_all, wait_for_isrs, Cluster,
    Deadline, READY_TIMEOUT,
};
use rdkafka::consumer::Consumer;
use rdkafka::producer::BaseRecord;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);
const PER_ROUND: usize = 5_000; // per partition

fn value(p: usize, i: usize) -> String {
    format!("partition {p} record {i:06}")
}

fn produce(bootstrap: &str, from: usize) {
    let p = common::producer(bootstrap, &[("acks", "all"), ("linger.ms", "5")]);
    for i in from..from + PER_ROUND {
        for part in 0..2 {
            let v = value(part, i);
            p.send(
                BaseRecord::<(), str>::to("durable")
                    .partition(part as i32)
                    .payload(v.as_str()),
            )
            .map_err(|(e, _)| e)
            .expect("send");
        }
        if i % 1000 == 0 {
            p.poll(Duration::ZERO);
        }
    }
    common::flush(&p, T);
}

fn check_all(cluster: &Cluster, n: usize) {
    let node = &cluster.nodes[0];
    common::wait_for_topic(node, "durable", 2, T);
    let c = common::consumer(&node.bootstrap(), &[]);
    for part in 0..2 {
        assert_eq!(
            c.fetch_watermarks("durable", part, T).expect("watermarks"),
            (0, n as i64),
            "durable-{part}"
        );
    }
    let got = read_all(&node.bootstrap(), "durable", &[n, n], T);
    for (part, msgs) in got.iter().enumerate() {
        for (i, m) in msgs.iter().enumerate() {
            assert_eq!(
                m.payload.as_deref(),
                Some(value(part, i).as_bytes()),
                "durable-{part} offset {i}"
            );
        }
    }
}

#[test]
fn acknowledged_records_survive_sigterm_and_sigkill() {
    let mut cluster = Cluster::single();
    let bootstrap = cluster.nodes[0].bootstrap();
    let admin = common::admin(&bootstrap);
    create_topic(&admin, &cluster.nodes[0], "durable", 2, &[]);
    drop(admin);

    produce(&bootstrap, 0);
    let status = cluster.nodes[0].terminate();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert!(
        cluster.nodes[0].log_tail(20).contains("shut down cleanly"),
        "a clean shutdown:\n{}",
        cluster.nodes[0].log_tail(20)
    );
    cluster.nodes[0].start();
    cluster.wait_ready(READY_TIMEOUT);
    check_all(&cluster, PER_ROUND);

    // The log continues after the restart; then a SIGKILL, and recovery.
    produce(&bootstrap, PER_ROUND);
    cluster.nodes[0].kill();
    cluster.nodes[0].start();
    cluster.wait_ready(READY_TIMEOUT);
    check_all(&cluster, 2 * PER_ROUND);
}

/// Kafka's order: a broker acts on the metadata (its replicas fetch, its partitions lead) only
/// once the controller has accepted its registration. A restarted broker whose previous
/// incarnation's session still lasts is refused (DUPLICATE_BROKER_REGISTRATION) until it
/// expires; before the fix its replicas fetched meanwhile, rejoined the ISRs, and were elected
/// leaders while the broker did not yet accept client connections (the stall of
/// `consume_transform_produce_is_exactly_once_across_kills`).
#[test]
fn a_restarted_broker_rejoins_isrs_only_once_registered() {
    const TOPIC: &str = "rejoin";
    const REGISTERED: &str = "registered with the controller";
    let _serial = common::one_cluster_at_a_time();
    let mut cluster = Cluster::start(
        3,
        &[
            // A long session: the window in which the new incarnation is refused.
            ("broker.session.timeout.ms", "8000"),
            ("broker.heartbeat.interval.ms", "500"),
            ("replica.lag.time.max.ms", "2000"),
            ("replica.fetch.wait.max.ms", "100"),
        ],
    );
    create_replicated_topic(&cluster.bootstrap(), TOPIC, 3, 3);
    wait_for_isrs(cluster.node(1), TOPIC, 3, &[1, 2, 3], Deadline::after(T));
    let registrations = |c: &Cluster| {
        common::strip_ansi(&std::fs::read_to_string(c.node(3).log_file()).unwrap_or_default())
            .matches(REGISTERED)
            .count()
    };
    let before = registrations(&cluster);
    cluster.nodes[2].kill();
    // Its heartbeat connection closed: its ISR places move at once.
    wait_for_isrs(cluster.node(1), TOPIC, 3, &[1, 2], Deadline::after(T));
    cluster.nodes[2].start();
    let deadline = Deadline::after(T);
    let mut refused_for = Duration::ZERO;
    let started = std::time::Instant::now();
    // Registration is checked before the ISRs: a replica fetches only after it.
    while registrations(&cluster) == before {
        if let Some(ps) = partition_views(cluster.node(1), TOPIC, 3) {
            assert!(
                ps.iter().all(|p| !p.isr.contains(&3) && p.leader != 3),
                "node 3 back in an ISR before it is registered: {ps:?}\n{}",
                cluster.logs(30)
            );
        }
        refused_for = started.elapsed();
        deadline.check(|| format!("node 3 registers again\n{}", cluster.logs(30)));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        refused_for > Duration::from_secs(2),
        "the new incarnation was refused while the old session lasted (else this test shows \
         nothing): {refused_for:?}"
    );
    // Once registered it catches up and rejoins every ISR.
    wait_for_isrs(cluster.node(1), TOPIC, 3, &[1, 2, 3], Deadline::after(T));
}
