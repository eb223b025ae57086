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

/// A broker SIGKILLed and started again at once is back while its predecessor's session is
/// still live, so the controller refuses its registration (DUPLICATE_BROKER_REGISTRATION, as
/// Kafka does) until that session expires; meanwhile the image still shows the predecessor's
/// registration unfenced. Its replica must rejoin the ISR only after this process is registered
/// and unfenced: before, its fetches were counted under the predecessor's registration, and the
/// failover bench's slowest kills were the next fault landing on such an ISR.
#[test]
fn a_restarted_follower_rejoins_the_isr_only_once_registered() {
    let _one = common::one_cluster_at_a_time();
    let mut cluster = Cluster::start(3, &failover::SETTINGS);
    let topic = "rejoin";
    failover::create_topic(&cluster, topic);
    let leader = failover::partition_state(&cluster, 1, topic)
        .expect("the partition's state")
        .leader;
    let controller = common::active_controller(cluster.node(leader).addr(), Duration::from_secs(5))
        .expect("the active controller");
    // A follower, and not the active controller if that leaves one (no election in the way).
    let victim = (1..=3)
        .filter(|&n| n != leader)
        .max_by_key(|&n| n != controller)
        .expect("a follower");
    let node = &mut cluster.nodes[(victim - 1) as usize];
    node.kill();
    node.start();
    let deadline = common::Deadline::after(failover::BOUND);
    let mut left = false;
    loop {
        let s = failover::partition_state(&cluster, leader, topic);
        match &s {
            Some(s) if !s.isr.contains(&victim) => left = true,
            Some(s) if left && s.isr.contains(&victim) => break,
            _ => {}
        }
        deadline.check(|| format!("node {victim} out of and back in the ISR; seen {s:?}"));
        std::thread::sleep(Duration::from_millis(10));
    }
    let log = common::strip_ansi(
        &std::fs::read_to_string(cluster.node(victim).log_file()).unwrap_or_default(),
    );
    assert_eq!(
        log.matches("caught up with the metadata log and unfenced: serving clients")
            .count(),
        2,
        "node {victim} was back in the ISR before its restarted process was registered and \
         unfenced:\n{}",
        cluster.logs(30)
    );
}
