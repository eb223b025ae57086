//! KIP-848 coordinator bench (`cargo bench --bench consumer_group`): the consumer group state
//! machine in process ([`rafka_broker::group_coordinator::consumer::ConsumerGroups`]), without
//! network or log appends, so it measures the coordinator's own work.
//!
//! - `consumer_group/join_to_stable/N`: N−1 members are Stable on a topic of 2N partitions;
//!   one iteration is an N-th member joining and every member heartbeating (each acknowledging
//!   its revocations at once, as a client that owns nothing it was told to give up) until all N
//!   are Stable at the new assignment epoch. The heartbeat rounds it takes are printed. A real
//!   client adds its heartbeat interval per round (the broker answers the next heartbeat).
//! - `consumer_group/heartbeat/N`: steady-state heartbeats of a Stable group of N members, one
//!   member after another; throughput in heartbeats per second on one core.

use criterion::{BatchSize, Criterion, Throughput};
use rafka_broker::group_coordinator::consumer::{ConsumerGroupConfig, ConsumerGroups};
use rafka_controller::image::MetadataImage;
use rafka_protocol::messages::consumer_group_heartbeat_request::HeartbeatTopicPartitions;
use rafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, MetadataRecord, PartitionRecord, TopicRecord,
};
use rafka_protocol::Uuid;
use std::collections::BTreeMap;
use std::time::Instant;

fn image(partitions: i32) -> MetadataImage {
    let mut records = vec![MetadataRecord::Topic(TopicRecord {
        name: "t".into(),
        topic_id: Uuid::from_u128(1),
        ..Default::default()
    })];
    for p in 0..partitions {
        records.push(MetadataRecord::Partition(PartitionRecord {
            partition_id: p,
            topic_id: Uuid::from_u128(1),
            replicas: vec![1],
            isr: vec![1],
            leader: 1,
            ..Default::default()
        }));
    }
    MetadataImage::load(&records, 1).expect("image")
}

/// One simulated client: its member epoch and owned partitions.
struct Client {
    id: String,
    epoch: i32,
    owned: BTreeMap<Uuid, Vec<i32>>,
}

impl Client {
    fn request(&self) -> ConsumerGroupHeartbeatRequest {
        if self.epoch == 0 {
            return ConsumerGroupHeartbeatRequest {
                group_id: "g".into(),
                member_id: self.id.clone(),
                rebalance_timeout_ms: 60_000,
                subscribed_topic_names: Some(vec!["t".into()]),
                topic_partitions: Some(Vec::new()),
                ..Default::default()
            };
        }
        ConsumerGroupHeartbeatRequest {
            group_id: "g".into(),
            member_id: self.id.clone(),
            member_epoch: self.epoch,
            topic_partitions: Some(
                self.owned
                    .iter()
                    .map(|(t, p)| HeartbeatTopicPartitions {
                        topic_id: *t,
                        partitions: p.clone(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    fn beat(&mut self, g: &ConsumerGroups, image: &MetadataImage, now: Instant) {
        let r = g
            .heartbeat(1, self.request(), "bench", "/127.0.0.1", image, None, now)
            .response;
        assert_eq!(r.error_code, 0, "{:?}", r.error_message);
        self.epoch = r.member_epoch;
        if let Some(a) = r.assignment {
            self.owned = a
                .topic_partitions
                .into_iter()
                .map(|t| (t.topic_id, t.partitions))
                .collect();
        }
    }
}

/// Heartbeat rounds until every client is at the group's assignment epoch, Stable.
fn settle(
    g: &ConsumerGroups,
    image: &MetadataImage,
    clients: &mut [Client],
    now: Instant,
) -> usize {
    for round in 1..=100 {
        for c in clients.iter_mut() {
            c.beat(g, image, now);
        }
        let d = g.describe("g", image);
        if d.group_state == "Stable" {
            return round;
        }
    }
    panic!("not stable after 100 rounds");
}

fn group_of(n: usize, image: &MetadataImage, now: Instant) -> (ConsumerGroups, Vec<Client>) {
    let g = ConsumerGroups::new(ConsumerGroupConfig::default());
    let mut clients: Vec<Client> = (0..n)
        .map(|i| Client {
            id: format!("member-{i:05}"),
            epoch: 0,
            owned: BTreeMap::new(),
        })
        .collect();
    settle(&g, image, &mut clients, now);
    (g, clients)
}

fn bench(c: &mut Criterion) {
    let now = Instant::now();
    let mut group = c.benchmark_group("consumer_group");
    for n in [10usize, 100] {
        let image = image(2 * n as i32);
        let (g0, c0) = group_of(n - 1, &image, now);
        let mut probe: Vec<Client> = c0
            .iter()
            .map(|c| Client {
                id: c.id.clone(),
                epoch: c.epoch,
                owned: c.owned.clone(),
            })
            .collect();
        drop(g0);
        let (g1, _) = group_of(n - 1, &image, now);
        probe.push(Client {
            id: "newcomer".into(),
            epoch: 0,
            owned: BTreeMap::new(),
        });
        let rounds = settle(&g1, &image, &mut probe, now);
        println!("join_to_stable/{n}: {rounds} heartbeat rounds");
        group.bench_function(format!("join_to_stable/{n}"), |b| {
            b.iter_batched(
                || {
                    let (g, mut clients) = group_of(n - 1, &image, now);
                    clients.push(Client {
                        id: "newcomer".into(),
                        epoch: 0,
                        owned: BTreeMap::new(),
                    });
                    (g, clients)
                },
                |(g, mut clients)| settle(&g, &image, &mut clients, now),
                BatchSize::LargeInput,
            )
        });
    }
    for n in [10usize, 100, 1000] {
        let image = image(2 * n as i32);
        let (g, mut clients) = group_of(n, &image, now);
        let mut i = 0;
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("heartbeat/{n}"), |b| {
            b.iter(|| {
                clients[i % n].beat(&g, &image, now);
                i += 1;
            })
        });
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
