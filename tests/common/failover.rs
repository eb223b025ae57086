//! Failover measured from the outside, shared by `tests/failover.rs` (a bounded form) and
//! `benches/failover.rs` (the figures): a 3-node cluster with the default settings
//! (`min.insync.replicas=2` only), an idempotent `acks=all` producer with librdkafka's defaults
//! writing to an RF=3 partition, and faults done to its leader or to the active controller.
//!
//! "First ack" is when the first message *sent after the fault* is acknowledged: an
//! acknowledgement of an earlier message may still arrive from the old leader, one of a message
//! sent after a SIGKILL cannot.

use super::{active_controller, admin, admin_options, metadata, runtime, Cluster, Deadline};
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The only override of the defaults: acks=all needs two in-sync replicas.
pub const SETTINGS: [(&str, &str); 1] = [("min.insync.replicas", "2")];

/// How long any one step may take before the run gives up.
pub const BOUND: Duration = Duration::from_secs(60);

/// The pause between the restarted node's return to the ISR and the next fault.
pub const SETTLE: Duration = Duration::from_secs(1);

/// One partition's leader, leader epoch and ISR as a node's Metadata shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    pub leader: i32,
    pub epoch: i32,
    pub isr: Vec<i32>,
}

/// Partition 0 of `topic` as node `via` sees it.
pub fn partition_state(cluster: &Cluster, via: i32, topic: &str) -> Option<PartitionState> {
    let md = metadata(
        cluster.node(via).addr(),
        Some(&[topic]),
        Duration::from_secs(2),
    )
    .ok()?;
    let p = md
        .topics
        .iter()
        .find(|t| t.name.as_deref() == Some(topic))?
        .partitions
        .iter()
        .find(|p| p.partition_index == 0)?
        .clone();
    let mut isr = p.isr_nodes;
    isr.sort_unstable();
    Some(PartitionState {
        leader: p.leader_id,
        epoch: p.leader_epoch,
        isr,
    })
}

/// The brokers node `via` lists (sorted).
pub fn live_brokers(cluster: &Cluster, via: i32) -> Option<Vec<i32>> {
    let md = metadata(cluster.node(via).addr(), None, Duration::from_secs(2)).ok()?;
    let mut ids: Vec<i32> = md.brokers.iter().map(|b| b.node_id).collect();
    ids.sort_unstable();
    Some(ids)
}

/// Creates the one-partition RF=3 `topic` and waits for its full ISR.
pub fn create_topic(cluster: &Cluster, topic: &str) {
    create_topic_with(cluster, topic, &[]);
}

/// [`create_topic`] with topic configs.
pub fn create_topic_with(cluster: &Cluster, topic: &str, configs: &[(&str, &str)]) {
    let a = admin(&cluster.bootstrap());
    let mut nt = NewTopic::new(topic, 1, TopicReplication::Fixed(3));
    for (k, v) in configs {
        nt = nt.set(k, v);
    }
    let r = runtime()
        .block_on(a.create_topics([&nt], &admin_options()))
        .expect("CreateTopics");
    for r in r {
        r.unwrap_or_else(|(t, e)| panic!("create {t}: {e}"));
    }
    wait_full_isr(cluster, 1, topic);
}

/// Waits until every node is up and lists all three brokers, and `topic`-0 has a leader with
/// all three in its ISR.
pub fn wait_full_isr(cluster: &Cluster, via: i32, topic: &str) {
    let deadline = Deadline::after(BOUND);
    loop {
        let s = partition_state(cluster, via, topic);
        if s.as_ref()
            .is_some_and(|s| s.leader > 0 && s.isr == [1, 2, 3])
            && live_brokers(cluster, via).is_some_and(|b| b == [1, 2, 3])
        {
            return;
        }
        deadline.check(|| format!("{topic}: full ISR, seen {s:?}\n{}", cluster.logs(30)));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Acknowledgements: (sent, acked) instants of each successful delivery, and the first error.
#[derive(Clone, Default)]
pub struct Acks {
    log: Arc<Mutex<Vec<(Instant, Instant)>>>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl ClientContext for Acks {
    /// librdkafka's own log (with `debug=...` in `$RAFKA_BENCH_CLIENT`).
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, msg: &str) {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        eprintln!(
            "{}.{:03} rdkafka {level:?} {fac}: {msg}",
            t.as_secs() % 1000,
            t.subsec_millis()
        );
    }
}
impl ProducerContext for Acks {
    type DeliveryOpaque = Box<Instant>;
    fn delivery(&self, r: &DeliveryResult<'_>, sent: Box<Instant>) {
        let now = Instant::now();
        match r {
            Ok(_) => self
                .log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((*sent, now)),
            Err((e, _)) => self
                .errors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(e.to_string()),
        }
    }
}

impl Acks {
    /// When the first message sent at or after `t` was acknowledged.
    pub fn first_ack_of_sent_after(&self, t: Instant) -> Option<Instant> {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(sent, _)| *sent >= t)
            .map(|(_, acked)| *acked)
            .min()
    }

    pub fn acked(&self) -> usize {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn errors(&self) -> Vec<String> {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// An idempotent producer with librdkafka's defaults (acks=all follows from idempotence),
/// sending one small message to `topic`-0 every `interval` on its own thread until dropped.
pub struct Load {
    pub acks: Acks,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    pub fn start(bootstrap: &str, topic: &str, interval: Duration, payload: usize) -> Load {
        let acks = Acks::default();
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", bootstrap)
            .set("broker.address.family", "v4")
            .set("enable.idempotence", "true");
        // `$RAFKA_BENCH_CLIENT` (`key=value;key=value`): to see which client setting a figure
        // depends on; the figures reported use none.
        for (k, v) in std::env::var("RAFKA_BENCH_CLIENT")
            .unwrap_or_default()
            .split(';')
            .filter_map(|kv| kv.split_once('='))
        {
            config.set(k.trim(), v.trim());
            if k.trim() == "debug" {
                config.set_log_level(rdkafka::config::RDKafkaLogLevel::Debug);
            }
        }
        let producer: ThreadedProducer<Acks> =
            config.create_with_context(acks.clone()).expect("producer");
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            let topic = topic.to_owned();
            let data = vec![b'x'; payload];
            std::thread::spawn(move || {
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let mut rec = BaseRecord::with_opaque_to(&topic, Box::new(Instant::now()))
                        .partition(0)
                        .payload(&data[..])
                        .key("k");
                    loop {
                        match producer.send(rec) {
                            Ok(()) => break,
                            Err((
                                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                                r,
                            )) => {
                                if stop.load(Ordering::Relaxed) {
                                    break;
                                }
                                rec = r;
                                std::thread::sleep(Duration::from_millis(1));
                            }
                            Err((e, _)) => panic!("produce: {e}"),
                        }
                    }
                    if !interval.is_zero() {
                        next += interval;
                        if let Some(d) = next.checked_duration_since(Instant::now()) {
                            std::thread::sleep(d);
                        }
                    }
                }
                let _ = producer.flush(Duration::from_secs(10));
            })
        };
        Load {
            acks,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits until a message sent after `fault` is acknowledged: the time from `fault` to it.
pub fn time_to_first_ack(acks: &Acks, fault: Instant, bound: Duration) -> Option<Duration> {
    let deadline = Deadline::after(bound);
    loop {
        if let Some(at) = acks.first_ack_of_sent_after(fault) {
            return Some(at - fault);
        }
        if deadline.passed() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// One leader SIGKILL: who, when a survivor's Metadata first named a new leader, and when the
/// first message sent after the kill was acknowledged (both from the kill).
#[derive(Debug, Clone, Copy)]
pub struct Kill {
    pub leader: i32,
    pub elected: Duration,
    pub first_ack: Duration,
}

/// SIGKILLs `topic`-0's leader under `load`: the time to the first acknowledgement on the new
/// leader. The node is restarted and the full ISR awaited before returning.
pub fn kill_leader(cluster: &mut Cluster, topic: &str, load: &Load) -> Kill {
    let leader = partition_state(cluster, 1, topic)
        .or_else(|| partition_state(cluster, 2, topic))
        .expect("partition state")
        .leader;
    let survivor = if leader == 1 { 2 } else { 1 };
    let fault = Instant::now();
    cluster.nodes[(leader - 1) as usize].kill();
    if std::env::var_os("RAFKA_FAILOVER_TRACE").is_some() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        eprintln!(
            "{}.{:03} killed {leader}",
            t.as_secs() % 1000,
            t.subsec_millis()
        );
    }
    let elected = loop {
        if partition_state(cluster, survivor, topic)
            .is_some_and(|s| s.leader > 0 && s.leader != leader)
        {
            break fault.elapsed();
        }
        assert!(
            fault.elapsed() < BOUND,
            "no new leader within {BOUND:?}\n{}",
            cluster.logs(30)
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = time_to_first_ack(&load.acks, fault, BOUND).unwrap_or_else(|| {
        panic!(
            "no acknowledgement within {BOUND:?} of killing leader {leader} (errors {:?})\n{}",
            load.acks.errors(),
            cluster.logs(30)
        )
    });
    if took > Duration::from_secs(1) && std::env::var_os("RAFKA_FAILOVER_TRACE").is_some() {
        eprintln!("slow failover: node logs\n{}", cluster.logs(80));
    }
    cluster.nodes[(leader - 1) as usize].start();
    wait_full_isr(cluster, survivor, topic);
    // Each kill starts from a settled cluster: the restarted node back in the ISR, and the
    // client's connections and metadata steady again (one librdkafka topic scan), so that a
    // kill is one fault, not the tail of the previous one.
    std::thread::sleep(SETTLE);
    Kill {
        leader,
        elected,
        first_ack: took,
    }
}

/// One leader SIGSTOP: who, and when the first message sent after the SIGSTOP was acknowledged —
/// from the SIGSTOP if during the pause, and from the SIGCONT.
#[derive(Debug, Clone, Copy)]
pub struct Pause {
    pub leader: i32,
    /// From the SIGSTOP, if the acknowledgement came while the leader was stopped.
    pub during: Option<Duration>,
    /// From the SIGCONT to the first acknowledgement of a message sent after the SIGSTOP (zero
    /// if one came during the pause).
    pub after_resume: Duration,
}

/// SIGSTOPs `topic`-0's leader for `pause` under `load`, then SIGCONT; waits for the full ISR.
pub fn pause_leader(cluster: &mut Cluster, topic: &str, load: &Load, pause: Duration) -> Pause {
    let leader = partition_state(cluster, 1, topic)
        .or_else(|| partition_state(cluster, 2, topic))
        .expect("partition state")
        .leader;
    let fault = Instant::now();
    cluster.nodes[(leader - 1) as usize].pause();
    let during = time_to_first_ack(&load.acks, fault, pause);
    let rest = pause.saturating_sub(fault.elapsed());
    std::thread::sleep(rest);
    let resumed = Instant::now();
    cluster.nodes[(leader - 1) as usize].resume();
    let after_resume = match during {
        Some(_) => Duration::ZERO,
        None => {
            let at = time_to_first_ack(&load.acks, fault, BOUND).unwrap_or_else(|| {
                panic!(
                    "no acknowledgement within {BOUND:?} of resuming leader {leader} (errors {:?})\n{}",
                    load.acks.errors(),
                    cluster.logs(30)
                )
            });
            (fault + at).saturating_duration_since(resumed)
        }
    };
    let via = if leader == 1 { 2 } else { 1 };
    wait_full_isr(cluster, via, topic);
    std::thread::sleep(SETTLE);
    Pause {
        leader,
        during,
        after_resume,
    }
}

/// SIGKILLs the active controller, then creates a topic through an admin client made before
/// (bootstrapped with every node): the time from the kill to CreateTopics' success, and how
/// many attempts it took. The node is restarted before returning.
pub fn kill_controller_then_create(cluster: &mut Cluster, topic: &str) -> (i32, Duration, usize) {
    let a = admin(&cluster.bootstrap());
    // The admin client knows the cluster before the fault.
    let warm = format!("{topic}-warm");
    let nt = NewTopic::new(&warm, 1, TopicReplication::Fixed(2));
    let r = runtime()
        .block_on(a.create_topics([&nt], &admin_options()))
        .expect("CreateTopics");
    for r in r {
        r.unwrap_or_else(|(t, e)| panic!("create {t}: {e}"));
    }
    let controller =
        active_controller(cluster.node(1).addr(), Duration::from_secs(2)).expect("DescribeQuorum");
    let fault = Instant::now();
    cluster.nodes[(controller - 1) as usize].kill();
    let nt = NewTopic::new(topic, 1, TopicReplication::Fixed(2));
    let mut attempts = 0;
    let took = loop {
        attempts += 1;
        let r = runtime().block_on(a.create_topics([&nt], &admin_options()));
        match r.map(|v| v.into_iter().next()) {
            Ok(Some(Ok(_))) | Ok(Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists)))) => {
                break fault.elapsed()
            }
            other => {
                assert!(
                    fault.elapsed() < BOUND,
                    "no CreateTopics success within {BOUND:?} of killing controller {controller}: {other:?}"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    cluster.nodes[(controller - 1) as usize].start();
    (controller, took, attempts)
}

/// Median and maximum.
pub fn median_max(v: &[Duration]) -> (Duration, Duration) {
    let mut s = v.to_vec();
    s.sort_unstable();
    (s[s.len() / 2], *s.last().expect("non-empty"))
}
