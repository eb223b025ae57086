//! The partition invariants every image and every committed batch must keep, checked after
//! each batch the tests apply, and a property test that drives random sequences of requests,
//! heartbeats and session expiries through the controller.
//!
//! In every image: the ISR is never empty, is a set drawn from the replicas; a leader is in the
//! ISR and active; a broker that is not active is in an ISR only as its last member, with no
//! leader. Across every batch: each changed partition's partition epoch goes up by one; a
//! leader change bumps the leader epoch by one (and nothing else does — at most one leader per
//! epoch); a new leader comes from the previous ISR unless unclean election is on for the topic.

use super::config::unclean_leader_election_enabled;
use super::controller_config::ControllerConfig;
use crate::image::{MetadataImage, NO_LEADER};
use rafka_protocol::messages::MetadataRecord;
use std::collections::BTreeSet;

pub fn check_image(image: &MetadataImage) {
    for (topic, p, reg) in image.partitions() {
        let at = format!("{}-{p} {reg:?}", topic.name);
        assert!(!reg.isr.is_empty(), "{at}: empty ISR");
        assert!(!reg.replicas.is_empty(), "{at}: no replicas");
        assert_eq!(
            reg.isr.iter().collect::<BTreeSet<_>>().len(),
            reg.isr.len(),
            "{at}: duplicate in ISR"
        );
        assert_eq!(
            reg.replicas.iter().collect::<BTreeSet<_>>().len(),
            reg.replicas.len(),
            "{at}: duplicate replica"
        );
        assert!(
            reg.isr.iter().all(|r| reg.replicas.contains(r)),
            "{at}: ISR outside the replicas"
        );
        if reg.leader != NO_LEADER {
            assert!(
                reg.isr.contains(&reg.leader),
                "{at}: leader outside the ISR"
            );
            assert!(
                image.is_active(reg.leader),
                "{at}: leader {} is not active",
                reg.leader
            );
        }
        if reg.isr.iter().any(|r| !image.is_active(*r)) {
            assert!(
                reg.isr.len() == 1 && reg.leader == NO_LEADER,
                "{at}: an inactive broker shares the ISR or leads"
            );
        }
    }
}

pub fn check_transition(old: &MetadataImage, new: &MetadataImage, records: &[MetadataRecord]) {
    let config = ControllerConfig::default();
    for (topic, p, n) in new.partitions() {
        let at = format!("{}-{p}", topic.name);
        let Some(o) = old.partition(&topic.id, p) else {
            assert_eq!(
                (n.leader_epoch, n.partition_epoch),
                (0, 0),
                "{at}: new partition epochs"
            );
            continue;
        };
        if o == n {
            continue;
        }
        assert_eq!(
            n.partition_epoch,
            o.partition_epoch + 1,
            "{at}: partition epoch {o:?} -> {n:?} by {records:?}"
        );
        if n.leader != o.leader {
            assert_eq!(
                n.leader_epoch,
                o.leader_epoch + 1,
                "{at}: leader change without epoch bump {o:?} -> {n:?}"
            );
            if n.leader != NO_LEADER && !o.isr.contains(&n.leader) {
                assert!(
                    unclean_leader_election_enabled(
                        old,
                        config.unclean_leader_election_enable,
                        &topic.name
                    ),
                    "{at}: leader from outside the ISR {o:?} -> {n:?}"
                );
                assert_eq!(
                    n.isr,
                    vec![n.leader],
                    "{at}: unclean leader with others in its ISR"
                );
            }
        } else {
            assert_eq!(
                n.leader_epoch, o.leader_epoch,
                "{at}: leader epoch bumped for the same leader"
            );
        }
    }
}

#[cfg(test)]
mod properties {
    use super::super::testkit::{id_source, Kit, CLUSTER};
    use crate::image::{ConfigResource, MetadataImage};
    use proptest::prelude::*;
    use rafka_protocol::messages::{
        alter_partition_request as apq, incremental_alter_configs_request as iacq,
        AlterPartitionRequest, BrokerRegistrationRequest, CreateTopicsRequest, DeleteTopicsRequest,
        ElectLeadersRequest, IncrementalAlterConfigsRequest,
    };
    use rafka_protocol::{ErrorCode, Uuid};
    use std::time::Duration;

    #[derive(Debug, Clone)]
    enum Op {
        Heartbeat {
            broker: i32,
            shut_down: bool,
            fence: bool,
        },
        Tick {
            ms: u64,
        },
        CreateTopic {
            partitions: i32,
            rf: i16,
        },
        AlterIsr {
            pick: usize,
            shrink: bool,
            stale: u8,
        },
        ElectPreferred,
        Reregister {
            broker: i32,
        },
        DeleteTopic {
            pick: usize,
        },
        Unclean {
            pick: usize,
            on: bool,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (1..=4i32, prop::bool::weighted(0.1), prop::bool::weighted(0.05))
                .prop_map(|(broker, shut_down, fence)| Op::Heartbeat { broker, shut_down, fence }),
            4 => (0..6000u64).prop_map(|ms| Op::Tick { ms }),
            2 => (1..5i32, 1..4i16).prop_map(|(partitions, rf)| Op::CreateTopic { partitions, rf }),
            4 => (any::<usize>(), any::<bool>(), 0..5u8).prop_map(|(pick, shrink, stale)| Op::AlterIsr { pick, shrink, stale }),
            1 => Just(Op::ElectPreferred),
            1 => (1..=4i32).prop_map(|broker| Op::Reregister { broker }),
            1 => any::<usize>().prop_map(|pick| Op::DeleteTopic { pick }),
            1 => (any::<usize>(), prop::bool::weighted(0.3)).prop_map(|(pick, on)| Op::Unclean { pick, on }),
        ]
    }

    fn nth_topic(image: &MetadataImage, pick: usize) -> Option<String> {
        let n = image.topic_names().len();
        (n > 0)
            .then(|| image.topic_names().keys().nth(pick % n).cloned())
            .flatten()
    }

    fn run(k: &mut Kit, op: &Op, incarnations: &mut u128) {
        match op {
            Op::Heartbeat {
                broker,
                shut_down,
                fence,
            } => {
                k.heartbeat(*broker, |r| {
                    r.want_shut_down = *shut_down;
                    r.want_fence = *fence;
                });
            }
            Op::Tick { ms } => {
                k.advance(Duration::from_millis(*ms));
                k.fence_expired();
            }
            Op::CreateTopic { partitions, rf } => {
                let name = format!("t{}", k.image.topics().len() + k.image.offset() as usize);
                let req = CreateTopicsRequest {
                    topics: vec![
                        rafka_protocol::messages::create_topics_request::CreatableTopic {
                            name,
                            num_partitions: *partitions,
                            replication_factor: *rf,
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                };
                let result =
                    k.controller
                        .create_topics(&k.image, &req, &mut id_source(incarnations));
                if result.response.topics[0].error_code != 0 {
                    assert!(result.records.is_empty());
                }
                k.commit(result);
            }
            Op::AlterIsr {
                pick,
                shrink,
                stale,
            } => {
                let parts: Vec<_> = k
                    .image
                    .partitions()
                    .filter(|(_, _, p)| p.leader >= 0)
                    .map(|(t, i, p)| (t.id, i, p.clone()))
                    .collect();
                if parts.is_empty() {
                    return;
                }
                let (topic_id, index, p) = parts[pick % parts.len()].clone();
                let mut isr = p.isr.clone();
                if *shrink {
                    if let Some(pos) = isr.iter().position(|r| *r != p.leader) {
                        isr.remove(pos);
                    }
                } else if let Some(r) = p.replicas.iter().find(|r| !isr.contains(r)) {
                    isr.push(*r);
                }
                let mut sender = p.leader;
                let (mut le, mut pe) = (p.leader_epoch, p.partition_epoch);
                let want = match stale {
                    1 => {
                        le -= 1;
                        Some(ErrorCode::FencedLeaderEpoch)
                    }
                    2 => {
                        pe -= 1;
                        Some(ErrorCode::InvalidUpdateVersion)
                    }
                    3 => match p
                        .replicas
                        .iter()
                        .find(|r| **r != p.leader && k.image.broker(**r).is_some())
                    {
                        Some(r) => {
                            sender = *r;
                            Some(ErrorCode::InvalidRequest)
                        }
                        None => None,
                    },
                    _ => None,
                };
                let req = AlterPartitionRequest {
                    broker_id: sender,
                    broker_epoch: k.epoch(sender),
                    topics: vec![apq::TopicData {
                        topic_id,
                        partitions: vec![apq::PartitionData {
                            partition_index: index,
                            leader_epoch: le,
                            partition_epoch: pe,
                            new_isr_with_epochs: isr
                                .iter()
                                .map(|r| apq::BrokerState {
                                    broker_id: *r,
                                    broker_epoch: k.epoch(*r),
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                };
                let result = k.controller.alter_partition(&k.image, &req);
                let code = result.response.topics[0].partitions[0].error_code;
                if let Some(want) = want {
                    assert_eq!(code, want.code(), "{req:?}");
                }
                if code != 0 {
                    assert!(result.records.is_empty());
                } else {
                    assert!(
                        isr.iter().all(|r| k.image.is_active(*r)),
                        "accepted an ineligible ISR {isr:?}"
                    );
                }
                k.commit(result);
            }
            Op::ElectPreferred => {
                let result = k.controller.elect_leaders(
                    &k.image,
                    &ElectLeadersRequest {
                        topic_partitions: None,
                        ..Default::default()
                    },
                );
                k.commit(result);
            }
            Op::Reregister { broker } => {
                *incarnations += 1;
                let req = BrokerRegistrationRequest {
                    broker_id: *broker,
                    cluster_id: CLUSTER.into(),
                    incarnation_id: Uuid::from_u128(1 << 100 | *incarnations),
                    ..Default::default()
                };
                let next = k.image.offset() + 1;
                let result = k.controller.register_broker(&k.image, &req, next, k.now);
                k.commit(result);
            }
            Op::DeleteTopic { pick } => {
                if let Some(name) = nth_topic(&k.image, *pick) {
                    let result = k.controller.delete_topics(
                        &k.image,
                        &DeleteTopicsRequest {
                            topic_names: vec![name],
                            ..Default::default()
                        },
                        6,
                    );
                    k.commit(result);
                }
            }
            Op::Unclean { pick, on } => {
                if let Some(name) = nth_topic(&k.image, *pick) {
                    let req = IncrementalAlterConfigsRequest {
                        resources: vec![iacq::AlterConfigsResource {
                            resource_type: ConfigResource::TOPIC,
                            resource_name: name,
                            configs: vec![iacq::AlterableConfig {
                                name: "unclean.leader.election.enable".into(),
                                config_operation: 0,
                                value: Some(on.to_string()),
                                ..Default::default()
                            }],
                            ..Default::default()
                        }],
                        ..Default::default()
                    };
                    let result = k.controller.incremental_alter_configs(&k.image, &req);
                    k.commit(result);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        #[test]
        fn random_operations_keep_the_invariants(ops in prop::collection::vec(op(), 1..80)) {
            let mut k = Kit::with_brokers(&[(1, Some("a")), (2, Some("a")), (3, Some("b")), (4, None)]);
            let mut incarnations = 0u128;
            for op in &ops {
                run(&mut k, op, &mut incarnations);
            }
            // The snapshot of wherever we ended rebuilds the same image.
            let loaded = MetadataImage::load(&k.image.to_records(), k.image.offset()).expect("load");
            prop_assert_eq!(loaded, k.image.clone());
        }
    }
}
