//! Restarts of one node with its data: after SIGTERM (a clean shutdown, exit status 0) and
//! after SIGKILL (recovery), every record acknowledged with acks=all is read back, in order and
//! intact, and the log continues at the right offset.

mod common;

use common::{create_topic, read_all, Cluster, READY_TIMEOUT};
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
