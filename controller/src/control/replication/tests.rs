//! AlterPartition, ElectLeaders and fencing cases.

use super::super::heartbeats::fence_brokers;
use super::super::invariants::check_image;
use super::super::testkit::*;
use super::super::ActiveController;
use super::*;
use crate::image::ConfigResource;
use rafka_protocol::messages::{
    alter_partition_request as apq, elect_leaders_request as elq, PartitionChangeRecord,
};
use rafka_protocol::Uuid;

/// Brokers 1–4; "t"-0 on [1, 2, 3, 4] led by 1, then broker 4 fenced: ISR [1, 2, 3],
/// leader epoch 0, partition epoch 1.
fn kit() -> Kit {
    let mut k = Kit::with_brokers(&[(1, None), (2, None), (3, None), (4, None)]);
    k.create_topic_on("t", &[&[1, 2, 3, 4]]);
    let records = fence_brokers(&k.image, &k.config, &[4]);
    k.apply(&records);
    k.controller.heartbeats_mut().register(4, true, k.now);
    let p = k.partition("t", 0);
    assert_eq!(
        (p.leader, p.isr.clone(), p.leader_epoch, p.partition_epoch),
        (1, vec![1, 2, 3], 0, 1)
    );
    k
}

fn request(
    k: &Kit,
    isr: &[i32],
    edit: impl FnOnce(&mut AlterPartitionRequest),
) -> AlterPartitionRequest {
    let mut req = AlterPartitionRequest {
        broker_id: 1,
        broker_epoch: k.epoch(1),
        topics: vec![apq::TopicData {
            topic_id: k.topic_id("t"),
            partitions: vec![apq::PartitionData {
                partition_index: 0,
                leader_epoch: 0,
                partition_epoch: 1,
                new_isr_with_epochs: isr
                    .iter()
                    .map(|b| apq::BrokerState {
                        broker_id: *b,
                        broker_epoch: k.epoch(*b),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    edit(&mut req);
    req
}

fn part(req: &mut AlterPartitionRequest) -> &mut apq::PartitionData {
    &mut req.topics[0].partitions[0]
}

#[test]
fn alter_partition_cases() {
    type Edit = fn(&mut AlterPartitionRequest);
    // (case, new ISR, edit, top-level error, partition error, ISR after)
    type Case = (
        &'static str,
        &'static [i32],
        Edit,
        ErrorCode,
        ErrorCode,
        &'static [i32],
    );
    let cases: Vec<Case> = vec![
        (
            "shrink",
            &[1, 2],
            |_| {},
            ErrorCode::None,
            ErrorCode::None,
            &[1, 2],
        ),
        (
            "no change",
            &[1, 2, 3],
            |_| {},
            ErrorCode::None,
            ErrorCode::None,
            &[1, 2, 3],
        ),
        (
            "version 2 new_isr",
            &[],
            |r| part(r).new_isr = vec![1, 3],
            ErrorCode::None,
            ErrorCode::None,
            &[1, 3],
        ),
        (
            "broker epoch wildcard (-1)",
            &[1, 2],
            |r| part(r).new_isr_with_epochs[1].broker_epoch = -1,
            ErrorCode::None,
            ErrorCode::None,
            &[1, 2],
        ),
        (
            "stale broker epoch",
            &[1, 2],
            |r| r.broker_epoch -= 1,
            ErrorCode::StaleBrokerEpoch,
            ErrorCode::None,
            &[1, 2, 3],
        ),
        (
            "unknown broker",
            &[1, 2],
            |r| r.broker_id = 9,
            ErrorCode::StaleBrokerEpoch,
            ErrorCode::None,
            &[1, 2, 3],
        ),
        (
            "unknown topic id",
            &[1, 2],
            |r| r.topics[0].topic_id = Uuid::from_u128(5),
            ErrorCode::None,
            ErrorCode::UnknownTopicId,
            &[1, 2, 3],
        ),
        (
            "unknown partition",
            &[1, 2],
            |r| part(r).partition_index = 7,
            ErrorCode::None,
            ErrorCode::UnknownTopicOrPartition,
            &[1, 2, 3],
        ),
        (
            "stale leader epoch",
            &[1, 2],
            |r| part(r).leader_epoch = -1,
            ErrorCode::None,
            ErrorCode::FencedLeaderEpoch,
            &[1, 2, 3],
        ),
        (
            "leader epoch from the future",
            &[1, 2],
            |r| part(r).leader_epoch = 1,
            ErrorCode::None,
            ErrorCode::NotController,
            &[1, 2, 3],
        ),
        (
            "partition epoch from the future",
            &[1, 2],
            |r| part(r).partition_epoch = 2,
            ErrorCode::None,
            ErrorCode::NotController,
            &[1, 2, 3],
        ),
        (
            "stale partition epoch",
            &[1, 2],
            |r| part(r).partition_epoch = 0,
            ErrorCode::None,
            ErrorCode::InvalidUpdateVersion,
            &[1, 2, 3],
        ),
        (
            "not the leader",
            &[1, 2],
            |r| {
                r.broker_id = 2;
                r.broker_epoch = 102;
            },
            ErrorCode::None,
            ErrorCode::InvalidRequest,
            &[1, 2, 3],
        ),
        (
            "isr outside the replicas",
            &[1, 2, 5],
            |_| {},
            ErrorCode::None,
            ErrorCode::InvalidRequest,
            &[1, 2, 3],
        ),
        (
            "isr without the leader",
            &[2, 3],
            |_| {},
            ErrorCode::None,
            ErrorCode::InvalidRequest,
            &[1, 2, 3],
        ),
        (
            "duplicate in isr",
            &[1, 2, 2],
            |_| {},
            ErrorCode::None,
            ErrorCode::InvalidRequest,
            &[1, 2, 3],
        ),
        (
            "fenced broker in isr",
            &[1, 2, 3, 4],
            |_| {},
            ErrorCode::None,
            ErrorCode::IneligibleReplica,
            &[1, 2, 3],
        ),
        (
            "isr member's epoch stale",
            &[1, 2],
            |r| part(r).new_isr_with_epochs[1].broker_epoch = 3,
            ErrorCode::None,
            ErrorCode::IneligibleReplica,
            &[1, 2, 3],
        ),
        (
            "recovering with more than one",
            &[1, 2],
            |r| part(r).leader_recovery_state = 1,
            ErrorCode::None,
            ErrorCode::InvalidRequest,
            &[1, 2, 3],
        ),
        (
            "recovered to recovering",
            &[1],
            |r| part(r).leader_recovery_state = 1,
            ErrorCode::None,
            ErrorCode::InvalidRequest,
            &[1, 2, 3],
        ),
        (
            "bad recovery state",
            &[1],
            |r| part(r).leader_recovery_state = 9,
            ErrorCode::None,
            ErrorCode::InvalidRequest,
            &[1, 2, 3],
        ),
    ];
    for (name, isr, edit, top, code, after) in cases {
        let mut k = kit();
        let req = request(&k, isr, edit);
        let result = alter_partition(&k.image, &k.config, &req);
        assert_eq!(result.response.error_code, top.code(), "{name}");
        if top != ErrorCode::None {
            assert!(
                result.records.is_empty() && result.response.topics.is_empty(),
                "{name}"
            );
            continue;
        }
        let p = &result.response.topics[0].partitions[0];
        assert_eq!(p.error_code, code.code(), "{name}");
        if code != ErrorCode::None {
            assert!(result.records.is_empty(), "{name}: a failure wrote records");
        }
        let response = k.commit(result);
        let reg = k.partition("t", 0);
        assert_eq!(reg.isr, after, "{name}");
        assert_eq!(reg.leader, 1, "{name}");
        if code == ErrorCode::None {
            let p = &response.topics[0].partitions[0];
            assert_eq!(
                (
                    p.leader_id,
                    p.isr.as_slice(),
                    p.leader_epoch,
                    p.partition_epoch
                ),
                (1, after, reg.leader_epoch, reg.partition_epoch),
                "{name}: response"
            );
        }
    }
}

#[test]
fn isr_expansion_and_recovery() {
    let mut k = kit();
    let result = alter_partition(&k.image, &k.config, &request(&k, &[1], |_| {}));
    k.commit(result);
    let req = request(&k, &[1, 3], |r| part(r).partition_epoch = 2);
    let result = alter_partition(&k.image, &k.config, &req);
    assert_eq!(result.response.topics[0].partitions[0].error_code, 0);
    k.commit(result);
    let p = k.partition("t", 0);
    assert_eq!(
        (p.isr.clone(), p.leader_epoch, p.partition_epoch),
        (vec![1, 3], 0, 3)
    );
    // A recovering leader (after an unclean election) reports it has recovered.
    k.apply(&[MetadataRecord::PartitionChange(PartitionChangeRecord {
        topic_id: k.topic_id("t"),
        partition_id: 0,
        isr: Some(vec![1]),
        leader_recovery_state: 1,
        ..Default::default()
    })]);
    let req = request(&k, &[1], |r| {
        part(r).partition_epoch = 4;
        part(r).leader_recovery_state = 0;
    });
    let result = alter_partition(&k.image, &k.config, &req);
    assert_eq!(result.response.topics[0].partitions[0].error_code, 0);
    k.commit(result);
    assert_eq!(
        k.partition("t", 0).leader_recovery_state,
        LeaderRecoveryState::Recovered
    );
}

#[test]
fn fencing_moves_leaders_within_the_isr() {
    // (case, replicas, ISR, fenced in order, unclean, → leader, ISR)
    type Case = (
        &'static str,
        &'static [i32],
        &'static [i32],
        &'static [i32],
        bool,
        i32,
        &'static [i32],
    );
    let cases: Vec<Case> = vec![
        (
            "follower fenced",
            &[1, 2, 3],
            &[1, 2, 3],
            &[2],
            false,
            1,
            &[1, 3],
        ),
        (
            "leader fenced: next in replica order",
            &[1, 2, 3],
            &[1, 2, 3],
            &[1],
            false,
            2,
            &[2, 3],
        ),
        (
            "leader fenced, isr has 3 only",
            &[1, 2, 3],
            &[1, 3],
            &[1],
            false,
            3,
            &[3],
        ),
        (
            "last member: stays, leaderless",
            &[1, 2, 3],
            &[1],
            &[1],
            false,
            -1,
            &[1],
        ),
        (
            "two at once, the later stays",
            &[1, 2, 3],
            &[1, 2],
            &[2, 1],
            false,
            -1,
            &[1],
        ),
        (
            "two at once, other order",
            &[1, 2, 3],
            &[1, 2],
            &[1, 2],
            false,
            -1,
            &[2],
        ),
        (
            "unclean: live outsider leads alone",
            &[1, 2, 3],
            &[1],
            &[1],
            true,
            2,
            &[2],
        ),
        (
            "unclean but the isr has a member",
            &[1, 2, 3],
            &[1, 3],
            &[1],
            true,
            3,
            &[3],
        ),
        (
            "not a replica: nothing",
            &[1, 2],
            &[1, 2],
            &[3],
            false,
            1,
            &[1, 2],
        ),
    ];
    for (name, replicas, isr, fenced, unclean, leader, after) in cases {
        let mut k = Kit::three_brokers();
        k.create_topic_on("t", &[replicas]);
        k.apply(&[MetadataRecord::PartitionChange(PartitionChangeRecord {
            topic_id: k.topic_id("t"),
            partition_id: 0,
            isr: Some(isr.to_vec()),
            ..Default::default()
        })]);
        if unclean {
            k.apply(&[config_record(
                ConfigResource::BROKER,
                "",
                "unclean.leader.election.enable",
                Some("true"),
            )]);
        }
        let before = k.partition("t", 0);
        let records = fence_brokers(&k.image, &k.config, fenced);
        k.apply(&records);
        let p = k.partition("t", 0);
        assert_eq!((p.leader, p.isr.as_slice()), (leader, after), "{name}");
        let bump = i32::from(p.leader != before.leader);
        assert_eq!(
            p.leader_epoch,
            before.leader_epoch + bump,
            "{name}: leader epoch"
        );
    }
}

fn elect(
    k: &Kit,
    election_type: i8,
    partitions: Option<&[(&str, i32)]>,
) -> ControllerResult<ElectLeadersResponse> {
    let topic_partitions = partitions.map(|ps| {
        ps.iter()
            .map(|(t, p)| elq::TopicPartitions {
                topic: t.to_string(),
                partitions: vec![*p],
                ..Default::default()
            })
            .collect()
    });
    elect_leaders(
        &k.image,
        &ElectLeadersRequest {
            election_type,
            topic_partitions,
            ..Default::default()
        },
    )
}

#[test]
fn elect_leaders_cases() {
    // "p"-0: preferred 1 in the ISR but led by 2; "p"-1: led by its preferred 1;
    // "p"-2: preferred 3 out of the ISR; "q"-0: leaderless, ISR [3] fenced, 1 and 2 live.
    let setup = || {
        let mut k = Kit::with_brokers(&[(1, None), (2, None), (3, None)]);
        k.create_topic_on("p", &[&[1, 2], &[1, 2], &[3, 2]]);
        k.create_topic_on("q", &[&[3, 1, 2]]);
        let (p, q) = (k.topic_id("p"), k.topic_id("q"));
        let change = |t, i, leader, isr: &[i32]| {
            MetadataRecord::PartitionChange(PartitionChangeRecord {
                topic_id: t,
                partition_id: i,
                leader,
                isr: Some(isr.to_vec()),
                ..Default::default()
            })
        };
        k.apply(&[
            change(p, 0, 2, &[2, 1]),
            change(p, 2, 2, &[2]),
            change(q, 0, -2, &[3]),
        ]);
        let records = fence_brokers(&k.image, &k.config, &[3]);
        k.apply(&records);
        k.controller.heartbeats_mut().register(3, true, k.now);
        k
    };
    // (case, type, partition, error, leader after)
    let cases = [
        ("preferred elected", 0, ("p", 0), ErrorCode::None, 1),
        (
            "already preferred",
            0,
            ("p", 1),
            ErrorCode::ElectionNotNeeded,
            1,
        ),
        (
            "preferred not in the isr",
            0,
            ("p", 2),
            ErrorCode::PreferredLeaderNotAvailable,
            2,
        ),
        (
            "preferred on a leaderless partition, no clean leader",
            0,
            ("q", 0),
            ErrorCode::PreferredLeaderNotAvailable,
            -1,
        ),
        (
            "unknown topic",
            0,
            ("x", 0),
            ErrorCode::UnknownTopicOrPartition,
            0,
        ),
        (
            "unknown partition",
            0,
            ("p", 9),
            ErrorCode::UnknownTopicOrPartition,
            0,
        ),
        (
            "unclean on a led partition",
            1,
            ("p", 0),
            ErrorCode::ElectionNotNeeded,
            2,
        ),
        (
            "unclean on a leaderless one",
            1,
            ("q", 0),
            ErrorCode::None,
            1,
        ),
    ];
    for (name, kind, (topic, p), code, leader) in cases {
        let mut k = setup();
        let result = elect(&k, kind, Some(&[(topic, p)]));
        let r = &result.response.replica_election_results[0].partition_result[0];
        assert_eq!((r.partition_id, r.error_code), (p, code.code()), "{name}");
        assert_eq!(result.records.is_empty(), code != ErrorCode::None, "{name}");
        // An unclean ElectLeaders is the operator's choice, whatever the topic's config.
        k.checked = kind == 0;
        k.commit(result);
        check_image(&k.image);
        if code != ErrorCode::UnknownTopicOrPartition {
            assert_eq!(k.partition(topic, p).leader, leader, "{name}");
        }
    }
    let k = setup();
    let result = elect(&k, 5, None);
    assert_eq!(result.response.error_code, ErrorCode::InvalidRequest.code());
    // All partitions: those already led as wanted are left out.
    let result = elect(&k, 0, None);
    let reported: Vec<(String, i32, i16)> = result
        .response
        .replica_election_results
        .iter()
        .flat_map(|t| {
            t.partition_result
                .iter()
                .map(move |p| (t.topic.clone(), p.partition_id, p.error_code))
        })
        .collect();
    assert_eq!(
        reported,
        vec![("p".into(), 0, 0), ("p".into(), 2, 80), ("q".into(), 0, 80)],
        "ELECTION_NOT_NEEDED left out"
    );
    assert_eq!(result.records.len(), 1);
}

#[test]
fn auto_leader_rebalance_moves_leadership_back_to_preferred_replicas_that_can_lead() {
    // "b"-0: preferred 1, in the ISR, led by 2 (moves back); "b"-1: preferred 3 out of the
    // ISR (stays); "b"-2: led by its preferred 2 (stays).
    let mut k = Kit::three_brokers();
    k.create_topic_on("b", &[&[1, 2], &[3, 2], &[2, 1]]);
    let b = k.topic_id("b");
    let change = |i, leader, isr: &[i32]| {
        MetadataRecord::PartitionChange(PartitionChangeRecord {
            topic_id: b,
            partition_id: i,
            leader,
            isr: Some(isr.to_vec()),
            ..Default::default()
        })
    };
    k.apply(&[change(0, 2, &[2, 1]), change(1, 2, &[2])]);
    let result = k.controller.balance_partition_leaders(&k.image);
    assert_eq!(result.response, 1);
    k.commit(result);
    assert_eq!(k.partition("b", 0).leader, 1);
    assert_eq!(k.partition("b", 1).leader, 2);
    assert_eq!(k.partition("b", 2).leader, 2);
    // Balanced: nothing more to do.
    assert_eq!(k.controller.balance_partition_leaders(&k.image).response, 0);
    // Off: nothing, even when unbalanced.
    k.apply(&[change(0, 2, &[2, 1])]);
    let off = ActiveController::new(
        ControllerConfig {
            auto_leader_rebalance_enable: false,
            ..k.config.clone()
        },
        &k.image,
        k.now,
        1,
    );
    assert_eq!(off.balance_partition_leaders(&k.image).response, 0);
}
