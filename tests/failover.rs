//! Failover with the default settings, bounded for CI (the full figures come from
//! `benches/failover.rs`): three SIGKILLs of an RF=3 partition's leader under an idempotent
//! acks=all load, each acknowledged again on the new leader within a few seconds (the process's
//! death closes its heartbeat connection; the controller moves its leaderships to another ISR
//! member at once, fences it when its session expires, and the client follows); then the active controller SIGKILLed, and an
//! admin client's next CreateTopics succeeds promptly (Metadata names a live broker as the
//! controller, so the client does not chase the dead node).
//!
//! The bounds are loose (debug build, shared machine: timings are noisy); the bench's targets are
//! ≤ 1 s median, ≤ 2 s max per kill and ≤ 1 s for the metadata write.

mod common;

use common::failover::{self, Load};
use common::Cluster;
use std::time::Duration;

#[test]
fn leader_kills_and_a_controller_kill_fail_over_promptly_with_default_settings() {
    let _one = common::one_cluster_at_a_time();
    let mut cluster = Cluster::start(3, &failover::SETTINGS);
    let topic = "failover";
    failover::create_topic(&cluster, topic);
    let load = Load::start(&cluster.bootstrap(), topic, Duration::from_millis(2), 100);
    std::thread::sleep(Duration::from_millis(500));
    let mut times = Vec::new();
    for _ in 0..3 {
        let k = failover::kill_leader(&mut cluster, topic, &load);
        eprintln!(
            "killed leader {}: new leader named after {:?}, first ack after {:?}",
            k.leader, k.elected, k.first_ack
        );
        times.push(k.first_ack);
    }
    let (median, max) = failover::median_max(&times);
    eprintln!("leader SIGKILL → first ack: median {median:?}, max {max:?}");
    assert!(
        median <= Duration::from_secs(3),
        "median {median:?} ({times:?})"
    );
    assert!(max <= Duration::from_secs(6), "max {max:?} ({times:?})");
    assert!(
        load.acks.errors().is_empty(),
        "delivery errors: {:?}",
        load.acks.errors()
    );
    drop(load);

    let (controller, took, attempts) =
        failover::kill_controller_then_create(&mut cluster, "after-controller-kill");
    eprintln!("killed controller {controller}: CreateTopics succeeded after {took:?} ({attempts} attempts)");
    assert!(
        took <= Duration::from_secs(3),
        "metadata write after {took:?}"
    );
    cluster.wait_ready(Duration::from_secs(30));
}
