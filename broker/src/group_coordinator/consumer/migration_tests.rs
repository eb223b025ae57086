//! KIP-848's online migration through [`ConsumerGroups`] and the classic groups: a classic group
//! with members upgraded by a joining consumer-protocol member, its classic members reconciling
//! through JoinGroup/SyncGroup/Heartbeat without a partition ever owned twice, the downgrade when
//! the consumer-protocol member leaves or expires, the policy's and Kafka's refusals, and the
//! records that rebuild classic members on reload.

use super::tests::{image, join};
use super::*;
use crate::group_coordinator::membership::{
    GroupMembership, MembershipConfig, MigratingGroup, MigratingMember,
};
use bytes::Bytes;
use rafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;
use rafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use rafka_protocol::messages::leave_group_request::MemberIdentity;
use rafka_protocol::messages::{
    ConsumerProtocolSubscription, HeartbeatRequest, JoinGroupRequest, SyncGroupRequest,
};
use std::sync::Arc;

const T: u128 = 1;

fn topic() -> Uuid {
    Uuid::from_u128(T)
}

/// A ConsumerProtocolSubscription v1 of topic `t`, owning `owned`.
fn subscription(owned: &[i32]) -> Bytes {
    let s = ConsumerProtocolSubscription {
        topics: vec!["t".into()],
        owned_partitions: vec![OwnedTopic {
            topic: "t".into(),
            partitions: owned.to_vec(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut b = 1i16.to_be_bytes().to_vec();
    b.extend_from_slice(&rafka_protocol::encode_to_bytes(&s, 1).expect("encode"));
    b.into()
}

/// A classic group `g` at generation 5 whose members own `parts` of `t`.
fn classic_group(m: &GroupMembership, protocol_type: &str, parts: &[(&str, &[i32])]) {
    m.install_converted(
        "g",
        MigratingGroup {
            generation: 5,
            protocol_type: Some(protocol_type.into()),
            protocol_name: None,
            empty: false,
            members: parts
                .iter()
                .map(|(id, p)| MigratingMember {
                    member_id: (*id).into(),
                    client_id: "classic".into(),
                    client_host: "/h".into(),
                    rebalance_timeout_ms: 10_000,
                    session_timeout_ms: 10_000,
                    protocols: vec![("range".into(), subscription(p))],
                    assignment: consumer_protocol::assignment([("t".to_string(), p.iter())], 1),
                    ..Default::default()
                })
                .collect(),
        },
    );
}

fn classic_join(id: &str, owned: &[i32]) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: "g".into(),
        member_id: id.into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupRequestProtocol {
            name: "range".into(),
            metadata: subscription(owned),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn answer<T: std::fmt::Debug>(r: ClassicRoute<T>) -> (T, Vec<(String, ConsumerRecord)>) {
    match r {
        ClassicRoute::Answer { response, records } => (response, records),
        ClassicRoute::NotConsumerGroup => panic!("not routed to the consumer group"),
    }
}

/// A classic client: rejoins when its heartbeat says so (eager: owning nothing while it does),
/// syncs, and keeps what SyncGroup gives it.
struct Classic {
    id: String,
    generation: i32,
    owned: Vec<i32>,
}

impl Classic {
    /// One heartbeat, and the rebalance it asks for; whether it was asked to rejoin.
    fn step(&mut self, g: &ConsumerGroups, img: &MetadataImage, now: Instant) -> bool {
        self.step_logged(g, img, now, &mut Vec::new())
    }

    /// As `step`, keeping the records written.
    fn step_logged(
        &mut self,
        g: &ConsumerGroups,
        img: &MetadataImage,
        now: Instant,
        log: &mut Vec<(String, ConsumerRecord)>,
    ) -> bool {
        let hb = HeartbeatRequest {
            group_id: "g".into(),
            member_id: self.id.clone(),
            generation_id: self.generation,
            ..Default::default()
        };
        let (code, _) = answer(g.classic_heartbeat(&hb, now));
        if code == ErrorCode::None {
            return false;
        }
        assert_eq!(code, ErrorCode::RebalanceInProgress);
        self.owned.clear(); // eager: revoke everything, then rejoin
        let (r, records) =
            answer(g.classic_join(5, &classic_join(&self.id, &[]), "c", "/h", img, now));
        log.extend(records);
        assert_eq!(r.error_code, 0, "{r:?}");
        assert!(r.leader.is_empty() && r.members.is_empty());
        self.generation = r.generation_id;
        let sync = SyncGroupRequest {
            group_id: "g".into(),
            member_id: self.id.clone(),
            generation_id: self.generation,
            protocol_type: Some("consumer".into()),
            protocol_name: r.protocol_name.clone(),
            ..Default::default()
        };
        let (s, _) = answer(g.classic_sync(&sync, img, now));
        if s.error_code == ErrorCode::RebalanceInProgress.code() {
            return true;
        }
        assert_eq!(s.error_code, 0, "{s:?}");
        self.owned = consumer_protocol::parse_assignment(&s.assignment)
            .expect("assignment")
            .into_iter()
            .flat_map(|(_, p)| p)
            .collect();
        true
    }
}

fn owners(g: &ConsumerGroups, img: &MetadataImage) -> Vec<(String, usize, i8)> {
    g.describe("g", img)
        .members
        .iter()
        .map(|m| {
            let n = m
                .assignment
                .topic_partitions
                .iter()
                .map(|t| t.partitions.len())
                .sum();
            (m.member_id.clone(), n, m.member_type)
        })
        .collect()
}

#[test]
fn a_classic_group_upgrades_reconciles_and_downgrades() {
    let img = image(&[("t", T, 4)]);
    let classic = GroupMembership::new(MembershipConfig::default());
    classic_group(&classic, "consumer", &[("c1", &[0, 1]), ("c2", &[2, 3])]);
    let g = ConsumerGroups::new(ConsumerGroupConfig::default());
    let now = Instant::now();
    let mut log = Vec::new();

    // The consumer-protocol member joins: the classic group is now a consumer group of three.
    let out = g.heartbeat(1, join("m", &["t"]), "c", "/h", &img, Some(&classic), now);
    assert_eq!(
        out.response.error_code, 0,
        "{:?}",
        out.response.error_message
    );
    log.extend(out.records.clone());
    assert_eq!(classic.describe_group("g").group_state, "Dead");
    assert!(out.records.iter().any(|(_, r)| matches!(r,
        ConsumerRecord::Member(id, Some(md)) if id == "c1" && md.classic.is_some())));
    let d = g.describe("g", &img);
    assert_eq!((d.members.len(), d.group_epoch), (3, 6));
    // Everything is held by the classic members: m waits.
    assert_eq!(owned_partitions(&out.response), 0);

    // The classic members are told to rejoin and give up what m gets; m's heartbeats take it
    // once released. No partition is ever owned twice.
    let mut c1 = Classic {
        id: "c1".into(),
        generation: 5,
        owned: vec![0, 1],
    };
    let mut c2 = Classic {
        id: "c2".into(),
        generation: 5,
        owned: vec![2, 3],
    };
    let mut m_epoch = out.response.member_epoch;
    let mut m_owned: Vec<i32> = Vec::new();
    for round in 0..20 {
        c1.step_logged(&g, &img, now, &mut log);
        c2.step_logged(&g, &img, now, &mut log);
        let mut owned = Assignment::new();
        if !m_owned.is_empty() {
            owned.insert(topic(), m_owned.iter().copied().collect());
        }
        let out = g.heartbeat(
            1,
            super::tests::beat("m", m_epoch, Some(&owned)),
            "c",
            "/h",
            &img,
            Some(&classic),
            now,
        );
        assert_eq!(out.response.error_code, 0, "round {round}");
        m_epoch = out.response.member_epoch;
        if let Some(a) = &out.response.assignment {
            m_owned = a
                .topic_partitions
                .iter()
                .flat_map(|t| t.partitions.clone())
                .collect();
        }
        log.extend(out.records);
        let mut all: Vec<i32> = [&c1.owned, &c2.owned, &m_owned]
            .into_iter()
            .flatten()
            .copied()
            .collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(
            all.len(),
            n,
            "round {round}: owned twice: {:?} {:?} {:?}",
            c1.owned,
            c2.owned,
            m_owned
        );
        if n == 4 && !m_owned.is_empty() && !c1.owned.is_empty() && !c2.owned.is_empty() {
            break;
        }
    }
    assert!(!m_owned.is_empty() && !c1.owned.is_empty() && !c2.owned.is_empty());
    let o = owners(&g, &img);
    assert_eq!(o.iter().map(|(_, n, _)| n).sum::<usize>(), 4, "{o:?}");
    assert_eq!(o.iter().filter(|(_, _, t)| *t == 0).count(), 2, "{o:?}");
    // A classic member commits with its generation (its member epoch) below v9.
    assert_eq!(g.check_commit("g", "c1", c1.generation, 8), Some(Ok(())));
    assert_eq!(
        g.check_commit("g", "c1", c1.generation - 1, 8),
        Some(Err(ErrorCode::IllegalGeneration))
    );
    assert_eq!(
        g.check_commit("g", "m", m_epoch, 8),
        Some(Err(ErrorCode::UnsupportedVersion))
    );

    // The records rebuild the classic members as such.
    let reloaded = ConsumerGroups::new(ConsumerGroupConfig::default());
    for (group, r) in log {
        reloaded.replay(&group, r, now);
    }
    assert_eq!(owners(&reloaded, &img), owners(&g, &img));

    // m leaves: classic again, at the group epoch, both members with their assignments, and a
    // rebalance under way.
    let epoch = g.describe("g", &img).group_epoch;
    let mut leave = super::tests::beat("m", LEAVE_GROUP_MEMBER_EPOCH, None);
    leave.member_epoch = LEAVE_GROUP_MEMBER_EPOCH;
    let out = g.heartbeat(1, leave, "c", "/h", &img, Some(&classic), now);
    assert_eq!(out.response.error_code, 0);
    assert_eq!(g.is_empty_group("g"), None);
    assert!(out
        .records
        .iter()
        .any(|(_, r)| *r == ConsumerRecord::GroupEpoch(None)));
    let (_, value) = &out.classic_records[0];
    assert_eq!((value.generation, value.members.len()), (epoch, 2));
    assert_eq!(value.protocol.as_deref(), Some("range"));
    let d = classic.describe_group("g");
    assert_eq!(
        (d.group_state.as_str(), d.members.len()),
        ("PreparingRebalance", 2)
    );
}

fn owned_partitions(r: &ConsumerGroupHeartbeatResponse) -> usize {
    r.assignment.as_ref().map_or(0, |a| {
        a.topic_partitions.iter().map(|t| t.partitions.len()).sum()
    })
}

#[test]
fn refusals_follow_the_policy_and_kafkas_rules() {
    let img = image(&[("t", T, 4)]);
    let now = Instant::now();
    let with = |policy: MigrationPolicy, max_size: i32| {
        ConsumerGroups::new(ConsumerGroupConfig {
            migration_policy: policy,
            max_size,
            ..Default::default()
        })
    };
    let heartbeat = |g: &ConsumerGroups, c: &Arc<GroupMembership>| {
        g.heartbeat(1, join("m", &["t"]), "c", "/h", &img, Some(c), now)
            .response
            .error_code
    };
    for (policy, protocol_type, max, want) in [
        (
            MigrationPolicy::Disabled,
            "consumer",
            10,
            ErrorCode::GroupIdNotFound,
        ),
        (
            MigrationPolicy::Downgrade,
            "consumer",
            10,
            ErrorCode::GroupIdNotFound,
        ),
        (
            MigrationPolicy::Bidirectional,
            "connect",
            10,
            ErrorCode::GroupIdNotFound,
        ),
        (
            MigrationPolicy::Bidirectional,
            "consumer",
            1,
            ErrorCode::GroupIdNotFound,
        ),
        (
            MigrationPolicy::Bidirectional,
            "consumer",
            2,
            ErrorCode::GroupMaxSizeReached,
        ),
    ] {
        let classic = GroupMembership::new(MembershipConfig::default());
        classic_group(&classic, protocol_type, &[("c1", &[0, 1]), ("c2", &[2, 3])]);
        let g = with(policy, max);
        assert_eq!(
            heartbeat(&g, &classic),
            want.code(),
            "{policy:?} {protocol_type} {max}"
        );
        // Untouched: still classic with its members.
        assert_eq!(classic.describe_group("g").members.len(), 2);
        assert_eq!(g.is_empty_group("g"), None);
    }

    // Upgrade only: the consumer-protocol member's leave leaves a consumer group of classic
    // members.
    let classic = GroupMembership::new(MembershipConfig::default());
    classic_group(&classic, "consumer", &[("c1", &[0, 1])]);
    let g = with(MigrationPolicy::Upgrade, 10);
    assert_eq!(heartbeat(&g, &classic), 0);
    let mut leave = super::tests::beat("m", LEAVE_GROUP_MEMBER_EPOCH, None);
    leave.member_epoch = LEAVE_GROUP_MEMBER_EPOCH;
    let out = g.heartbeat(1, leave, "c", "/h", &img, Some(&classic), now);
    assert!(out.classic_records.is_empty());
    assert_eq!(g.is_empty_group("g"), Some(false));
    assert_eq!(classic.describe_group("g").group_state, "Dead");
}

#[test]
fn classic_requests_to_a_consumer_group_get_kafkas_errors() {
    let img = image(&[("t", T, 4)]);
    let classic = GroupMembership::new(MembershipConfig::default());
    classic_group(&classic, "consumer", &[("c1", &[0, 1]), ("c2", &[2, 3])]);
    let g = ConsumerGroups::new(ConsumerGroupConfig::default());
    let now = Instant::now();
    assert_eq!(
        g.heartbeat(1, join("m", &["t"]), "c", "/h", &img, Some(&classic), now)
            .response
            .error_code,
        0
    );
    let hb = |id: &str, generation: i32| {
        answer(g.classic_heartbeat(
            &HeartbeatRequest {
                group_id: "g".into(),
                member_id: id.into(),
                generation_id: generation,
                ..Default::default()
            },
            now,
        ))
        .0
    };
    assert_eq!(hb("c1", 4), ErrorCode::IllegalGeneration);
    assert_eq!(hb("nobody", 5), ErrorCode::UnknownMemberId);
    // A member of the consumer protocol does not speak the classic one.
    assert_eq!(hb("m", 1), ErrorCode::UnknownMemberId);
    // Hostile JoinGroup metadata: Kafka's UNKNOWN_SERVER_ERROR, nothing changes.
    for bad in [
        &[][..],
        &[0xff, 0xff][..],
        &[0, 0, 0x7f, 0xff, 0xff, 0xff][..],
    ] {
        let mut j = classic_join("c3", &[]);
        j.protocols[0].metadata = Bytes::copy_from_slice(bad);
        let (r, records) = answer(g.classic_join(5, &j, "c", "/h", &img, now));
        assert_eq!(
            r.error_code,
            ErrorCode::UnknownServerError.code(),
            "{bad:?}"
        );
        assert!(records.is_empty());
    }
    // Another protocol type, or no protocol all classic members support.
    let mut j = classic_join("c3", &[]);
    j.protocol_type = "connect".into();
    let (r, _) = answer(g.classic_join(5, &j, "c", "/h", &img, now));
    assert_eq!(r.error_code, ErrorCode::InconsistentGroupProtocol.code());
    let mut j = classic_join("c3", &[]);
    j.protocols[0].name = "roundrobin".into();
    let (r, _) = answer(g.classic_join(5, &j, "c", "/h", &img, now));
    assert_eq!(r.error_code, ErrorCode::InconsistentGroupProtocol.code());
    // v4+ without a member id: MEMBER_ID_REQUIRED with the id to come back with.
    let (r, records) = answer(g.classic_join(5, &classic_join("", &[]), "c", "/h", &img, now));
    assert_eq!(r.error_code, ErrorCode::MemberIdRequired.code());
    assert!(!r.member_id.is_empty() && records.is_empty());
    assert_eq!(g.describe("g", &img).members.len(), 3);
    // SyncGroup: a wrong generation, a wrong protocol name.
    let sync = |generation: i32, name: &str| {
        answer(g.classic_sync(
            &SyncGroupRequest {
                group_id: "g".into(),
                member_id: "c2".into(),
                generation_id: generation,
                protocol_name: Some(name.into()),
                ..Default::default()
            },
            &img,
            now,
        ))
        .0
        .error_code
    };
    assert_eq!(sync(4, "range"), ErrorCode::IllegalGeneration.code());
    assert_eq!(
        sync(5, "sticky"),
        ErrorCode::InconsistentGroupProtocol.code()
    );
    assert_eq!(sync(5, "range"), ErrorCode::RebalanceInProgress.code());
    // LeaveGroup: the consumer-protocol member cannot leave by it; a classic one can.
    let (members, records) = answer(g.classic_leave(
        "g",
        &[
            MemberIdentity {
                member_id: "m".into(),
                ..Default::default()
            },
            MemberIdentity {
                member_id: "c2".into(),
                ..Default::default()
            },
        ],
        &img,
    ));
    assert_eq!(members[0].error_code, ErrorCode::UnknownMemberId.code());
    assert_eq!(members[1].error_code, 0);
    assert!(records
        .iter()
        .any(|(_, r)| *r == ConsumerRecord::Member("c2".into(), None)));
    // c1, told to rejoin, does not within its rebalance timeout: removed; then m's session
    // ends and nothing classic is left to downgrade to.
    assert_eq!(hb("c1", 5), ErrorCode::RebalanceInProgress);
    let expired = g.expire(&img, Some(&classic), now + Duration::from_millis(10_001));
    assert!(expired
        .records
        .iter()
        .any(|(_, r)| *r == ConsumerRecord::Member("c1".into(), None)));
    assert!(expired.classic_records.is_empty());
}

/// The consumer-protocol member's session ends: the classic members it leaves behind are a
/// classic group again (the fencing path of the downgrade).
#[test]
fn an_expired_consumer_member_downgrades_the_group() {
    let img = image(&[("t", T, 4)]);
    let classic = GroupMembership::new(MembershipConfig::default());
    classic_group(&classic, "consumer", &[("c1", &[0, 1, 2, 3])]);
    let g = ConsumerGroups::new(ConsumerGroupConfig {
        session_timeout_ms: 1_000,
        ..Default::default()
    });
    let now = Instant::now();
    assert_eq!(
        g.heartbeat(1, join("m", &["t"]), "c", "/h", &img, Some(&classic), now)
            .response
            .error_code,
        0
    );
    let mut c1 = Classic {
        id: "c1".into(),
        generation: 5,
        owned: vec![0, 1, 2, 3],
    };
    c1.step(&g, &img, now);
    let later = now + Duration::from_millis(1_001);
    let expired = g.expire(&img, Some(&classic), later);
    assert_eq!(expired.classic_records.len(), 1);
    assert!(expired
        .records
        .iter()
        .any(|(_, r)| *r == ConsumerRecord::GroupEpoch(None)));
    assert_eq!(g.is_empty_group("g"), None);
    assert_eq!(classic.describe_group("g").members.len(), 1);
}
