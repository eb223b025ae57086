//! ConsumerGroupHeartbeat through [`ConsumerGroups`]: joins, incremental reconciliation with
//! revocation before reassignment, leaving, static members, session expiry, topic changes,
//! replaying the records, and Kafka's errors for bad heartbeats.

use super::*;
use rafka_protocol::messages::consumer_group_heartbeat_request::HeartbeatTopicPartitions as Owned;
use rafka_protocol::messages::{MetadataRecord, PartitionRecord, TopicRecord};
use std::sync::Arc;

pub(super) fn image(topics: &[(&str, u128, i32)]) -> Arc<MetadataImage> {
    let mut records = Vec::new();
    for (name, id, parts) in topics {
        records.push(MetadataRecord::Topic(TopicRecord {
            name: (*name).into(),
            topic_id: Uuid::from_u128(*id),
            ..Default::default()
        }));
        for p in 0..*parts {
            records.push(MetadataRecord::Partition(PartitionRecord {
                partition_id: p,
                topic_id: Uuid::from_u128(*id),
                replicas: vec![1],
                isr: vec![1],
                leader: 1,
                ..Default::default()
            }));
        }
    }
    // Each image at a new metadata offset, as the broker's images are.
    static OFFSET: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let offset = OFFSET.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Arc::new(MetadataImage::load(&records, offset).expect("records"))
}

pub(super) fn join(member: &str, topics: &[&str]) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        group_id: "g".into(),
        member_id: member.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 60_000,
        subscribed_topic_names: Some(topics.iter().map(|t| t.to_string()).collect()),
        topic_partitions: Some(Vec::new()),
        ..Default::default()
    }
}

pub(super) fn beat(
    member: &str,
    epoch: i32,
    owned: Option<&Assignment>,
) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        group_id: "g".into(),
        member_id: member.into(),
        member_epoch: epoch,
        topic_partitions: owned.map(|o| {
            o.iter()
                .map(|(t, p)| Owned {
                    topic_id: *t,
                    partitions: p.iter().copied().collect(),
                    ..Default::default()
                })
                .collect()
        }),
        ..Default::default()
    }
}

/// A client that remembers its epoch and what it owns, as librdkafka does.
struct Client {
    id: String,
    epoch: i32,
    owned: Assignment,
}

impl Client {
    fn beat(
        &mut self,
        g: &ConsumerGroups,
        image: &MetadataImage,
        now: Instant,
    ) -> HeartbeatOutcome {
        let out = g.heartbeat(
            1,
            beat(&self.id, self.epoch, Some(&self.owned)),
            "c",
            "/h",
            image,
            None,
            now,
        );
        assert_eq!(
            out.response.error_code, 0,
            "{:?}",
            out.response.error_message
        );
        self.epoch = out.response.member_epoch;
        if let Some(a) = &out.response.assignment {
            // Revoke at once, take what was given.
            self.owned = a
                .topic_partitions
                .iter()
                .map(|t| (t.topic_id, t.partitions.iter().copied().collect()))
                .collect();
        }
        out
    }
}

fn owned_count(a: &Assignment) -> usize {
    a.values().map(BTreeSet::len).sum()
}

#[test]
fn two_members_reconcile_without_ever_sharing_a_partition() {
    let g = ConsumerGroups::new(ConsumerGroupConfig::default());
    let image = image(&[("t", 1, 6)]);
    let now = Instant::now();
    let out = g.heartbeat(1, join("a", &["t"]), "c", "/h", &image, None, now);
    assert_eq!(out.response.error_code, 0);
    assert_eq!(out.response.member_epoch, 1);
    assert_eq!(out.response.heartbeat_interval_ms, 5000);
    let a_parts = &out
        .response
        .assignment
        .as_ref()
        .expect("assignment")
        .topic_partitions;
    assert_eq!(a_parts[0].partitions.len(), 6);
    let types: Vec<i16> = out
        .records
        .iter()
        .map(|(_, r)| r.encode("g").0[1] as i16)
        .collect();
    assert!(types.contains(&3) && types.contains(&4) && types.contains(&5));
    assert!(types.contains(&6) && types.contains(&7) && types.contains(&8));
    let mut a = Client {
        id: "a".into(),
        epoch: 1,
        owned: [(Uuid::from_u128(1), (0..6).collect())].into(),
    };

    // b joins: epoch 2; b gets nothing until a revokes.
    let out = g.heartbeat(1, join("b", &["t"]), "c", "/h", &image, None, now);
    assert_eq!(out.response.member_epoch, 2);
    let mut b = Client {
        id: "b".into(),
        epoch: 2,
        owned: Assignment::new(),
    };
    assert_eq!(b.beat(&g, &image, now).response.member_epoch, 2);
    assert!(b.owned.is_empty(), "a still owns everything");
    // a is told to keep three; its epoch stays 1 until it acknowledges.
    let out = a.beat(&g, &image, now);
    assert_eq!(out.response.member_epoch, 1);
    assert_eq!(owned_count(&a.owned), 3);
    assert_eq!(g.describe("g", &image).group_state, "Reconciling");
    // The acknowledgement (a reports owning three): epoch 2.
    assert_eq!(a.beat(&g, &image, now).response.member_epoch, 2);
    b.beat(&g, &image, now);
    assert_eq!(owned_count(&b.owned), 3);
    let union: BTreeSet<i32> = [&a.owned, &b.owned]
        .iter()
        .flat_map(|o| o.values().flatten().copied())
        .collect();
    assert_eq!(union.len(), 6);
    assert_eq!(g.describe("g", &image).group_state, "Stable");

    let d = g.describe("g", &image);
    assert_eq!(d.members.len(), 2);
}

#[test]
fn replayed_records_rebuild_the_group() {
    let g = ConsumerGroups::new(ConsumerGroupConfig::default());
    let image = image(&[("t", 1, 4)]);
    let now = Instant::now();
    let mut records = Vec::new();
    records.extend(
        g.heartbeat(1, join("a", &["t"]), "c", "/h", &image, None, now)
            .records,
    );
    records.extend(
        g.heartbeat(1, join("b", &["t"]), "c", "/h", &image, None, now)
            .records,
    );
    let mut a = Client {
        id: "a".into(),
        epoch: 1,
        owned: [(Uuid::from_u128(1), (0..4).collect())].into(),
    };
    records.extend(a.beat(&g, &image, now).records);
    records.extend(a.beat(&g, &image, now).records);
    let copy = ConsumerGroups::new(ConsumerGroupConfig::default());
    for (group, r) in records {
        // Through the bytes, as the loader reads them.
        let (k, v) = r.encode(&group);
        let (group, r) = ConsumerRecord::decode(&k, v.as_ref()).expect("decode");
        copy.replay(&group, r, now);
    }
    let (x, y) = (g.describe("g", &image), copy.describe("g", &image));
    assert_eq!(
        (x.group_epoch, x.assignment_epoch),
        (y.group_epoch, y.assignment_epoch)
    );
    assert_eq!(x.members, y.members);
    assert_eq!(copy.check_commit("g", "a", 2, 9), Some(Ok(())));
    assert_eq!(
        copy.check_commit("g", "a", 1, 9),
        Some(Err(ErrorCode::StaleMemberEpoch))
    );
    assert_eq!(
        copy.check_commit("g", "a", 2, 8),
        Some(Err(ErrorCode::UnsupportedVersion))
    );
    assert_eq!(
        copy.check_commit("g", "zz", 2, 9),
        Some(Err(ErrorCode::UnknownMemberId))
    );
    assert_eq!(copy.check_commit("other", "a", 2, 9), None);
}

#[test]
fn leave_expiry_and_topic_changes_bump_the_group_epoch() {
    let g = ConsumerGroups::new(ConsumerGroupConfig {
        session_timeout_ms: 1000,
        ..Default::default()
    });
    let img = image(&[("t", 1, 2)]);
    let now = Instant::now();
    g.heartbeat(1, join("a", &["t", "u"]), "c", "/h", &img, None, now);
    g.heartbeat(1, join("b", &["t"]), "c", "/h", &img, None, now);
    assert_eq!(g.describe("g", &img).group_epoch, 2);
    // Topic u appears: the next heartbeat sees it and bumps the epoch.
    let img2 = image(&[("t", 1, 2), ("u", 2, 3)]);
    let mut a = Client {
        id: "a".into(),
        epoch: 1,
        owned: Assignment::new(),
    };
    a.beat(&g, &img2, now);
    assert_eq!(g.describe("g", &img2).group_epoch, 3);
    // b leaves (epoch -1): tombstones for its records, and a new epoch.
    let out = g.heartbeat(
        1,
        beat("b", LEAVE_GROUP_MEMBER_EPOCH, None),
        "c",
        "/h",
        &img2,
        None,
        now,
    );
    assert_eq!(out.response.member_epoch, -1);
    assert!(out
        .records
        .iter()
        .any(|(_, r)| *r == ConsumerRecord::Member("b".into(), None)));
    assert_eq!(g.describe("g", &img2).group_epoch, 4);
    // a stops heartbeating: gone after its session.
    assert!(g
        .expire(&img2, None, now + Duration::from_millis(500))
        .records
        .is_empty());
    let recs = g
        .expire(&img2, None, now + Duration::from_millis(1500))
        .records;
    assert!(recs
        .iter()
        .any(|(_, r)| *r == ConsumerRecord::Member("a".into(), None)));
    assert_eq!(g.is_empty_group("g"), Some(true));
    assert_eq!(g.delete_group("g").map(|t| t.len()), Ok(3));
    assert_eq!(g.is_empty_group("g"), None);
}

#[test]
fn static_members_come_back_under_a_new_id() {
    let g = ConsumerGroups::new(ConsumerGroupConfig::default());
    let img = image(&[("t", 1, 2)]);
    let now = Instant::now();
    let mut j = join("a", &["t"]);
    j.instance_id = Some("i1".into());
    let first = g.heartbeat(1, j.clone(), "c", "/h", &img, None, now);
    assert_eq!(first.response.error_code, 0);
    // The same instance id under another member id while a is there: refused.
    let mut j2 = j.clone();
    j2.member_id = "a2".into();
    let r = g.heartbeat(1, j2.clone(), "c", "/h", &img, None, now);
    assert_eq!(
        r.response.error_code,
        ErrorCode::UnreleasedInstanceId.code()
    );
    // a leaves for now (epoch -2), a2 takes its place and its partitions, same epoch.
    let mut leave = beat("a", LEAVE_GROUP_STATIC_MEMBER_EPOCH, None);
    leave.instance_id = Some("i1".into());
    assert_eq!(
        g.heartbeat(1, leave, "c", "/h", &img, None, now)
            .response
            .member_epoch,
        -2
    );
    let r = g.heartbeat(1, j2, "c", "/h", &img, None, now);
    assert_eq!(r.response.error_code, 0);
    assert_eq!(r.response.member_epoch, first.response.member_epoch);
    assert_eq!(
        r.response.assignment.expect("assignment").topic_partitions[0]
            .partitions
            .len(),
        2
    );
    assert_eq!(g.describe("g", &img).members.len(), 1);
}

/// Kafka's errors for bad heartbeats; none of them changes the group.
#[test]
fn bad_heartbeats_get_kafkas_errors() {
    let g = ConsumerGroups::new(ConsumerGroupConfig {
        max_size: 1,
        ..Default::default()
    });
    let img = image(&[("t", 1, 2)]);
    let now = Instant::now();
    let code = |req: ConsumerGroupHeartbeatRequest, v: i16| {
        g.heartbeat(v, req, "c", "/h", &img, None, now)
            .response
            .error_code
    };
    let invalid = ErrorCode::InvalidRequest.code();
    let mut r = join("a", &["t"]);
    r.group_id.clear();
    assert_eq!(code(r, 1), invalid);
    assert_eq!(
        code(join("", &["t"]), 1),
        invalid,
        "v1: the client chooses the member id"
    );
    let mut r = join("a", &["t"]);
    r.rebalance_timeout_ms = -1;
    assert_eq!(code(r, 1), invalid);
    let mut r = join("a", &["t"]);
    r.subscribed_topic_names = None;
    assert_eq!(code(r, 1), invalid);
    let mut r = join("a", &["t"]);
    r.topic_partitions = Some(vec![Owned {
        topic_id: Uuid::from_u128(1),
        partitions: vec![0],
        ..Default::default()
    }]);
    assert_eq!(code(r, 1), invalid);
    assert_eq!(code(beat("a", -3, None), 1), invalid);
    let mut r = join("a", &["t"]);
    r.server_assignor = Some("roundrobin".into());
    assert_eq!(code(r, 1), ErrorCode::UnsupportedAssignor.code());
    let mut r = join("a", &["t"]);
    r.subscribed_topic_regex = Some("(unclosed".into());
    assert_eq!(code(r, 1), ErrorCode::InvalidRegularExpression.code());
    let mut r = join("a", &["t"]);
    r.subscribed_topic_regex = Some("a".repeat(MAX_REGEX_LEN + 1));
    assert_eq!(code(r, 1), ErrorCode::InvalidRegularExpression.code());
    let mut r = join("a", &["t"]);
    r.subscribed_topic_names = Some(vec!["x".into(); MAX_SUBSCRIBED_TOPICS + 1]);
    assert_eq!(code(r, 1), invalid);
    let mut r = beat("a", 1, None);
    r.topic_partitions = Some(vec![Owned {
        topic_id: Uuid::from_u128(1),
        partitions: vec![0; MAX_OWNED_PARTITIONS + 1],
        ..Default::default()
    }]);
    assert_eq!(code(r, 1), invalid);
    assert_eq!(
        g.is_empty_group("g"),
        None,
        "nothing created by bad requests"
    );
    assert_eq!(
        code(beat("a", 1, None), 1),
        ErrorCode::UnknownMemberId.code()
    );

    // v0: the coordinator names the member.
    let out = g.heartbeat(0, join("", &["t"]), "c", "/h", &img, None, now);
    assert_eq!(out.response.error_code, 0);
    let id = out.response.member_id.expect("member id");
    assert!(!id.is_empty());
    assert_eq!(
        code(beat(&id, 7, None), 0),
        ErrorCode::FencedMemberEpoch.code()
    );
    assert_eq!(
        code(beat("nobody", 1, None), 0),
        ErrorCode::UnknownMemberId.code()
    );
    assert_eq!(
        code(join("b", &["t"]), 1),
        ErrorCode::GroupMaxSizeReached.code()
    );
    // Unknown topics in a subscription are not an error: they get nothing until they exist.
    let mut j = join(&id, &["t", "no-such-topic"]);
    j.member_epoch = 1;
    j.topic_partitions = None;
    assert_eq!(code(j, 0), 0);
}

/// A group's dynamic configs (KIP-848) override the broker's: the heartbeat interval members
/// are told and the session after which a silent member expires; other groups keep the
/// broker's.
#[test]
fn a_groups_own_session_and_heartbeat_configs_apply() {
    use rafka_protocol::messages::ConfigRecord;
    let g = ConsumerGroups::new(ConsumerGroupConfig {
        session_timeout_ms: 45_000,
        heartbeat_interval_ms: 5_000,
        ..Default::default()
    });
    let mut records = vec![MetadataRecord::Topic(TopicRecord {
        name: "t".into(),
        topic_id: Uuid::from_u128(1),
        ..Default::default()
    })];
    for (k, v) in [
        ("consumer.session.timeout.ms", "2000"),
        ("consumer.heartbeat.interval.ms", "250"),
    ] {
        records.push(MetadataRecord::Config(ConfigRecord {
            resource_type: ConfigResource::GROUP,
            resource_name: "g".into(),
            name: k.into(),
            value: Some(v.into()),
            ..Default::default()
        }));
    }
    let img = MetadataImage::load(&records, 1).expect("records");
    let now = Instant::now();
    let own = g.heartbeat(1, join("a", &["t"]), "c", "/h", &img, None, now);
    assert_eq!(own.response.heartbeat_interval_ms, 250);
    let other = ConsumerGroupHeartbeatRequest {
        group_id: "other".into(),
        ..join("b", &["t"])
    };
    let broker = g.heartbeat(1, other, "c", "/h", &img, None, now);
    assert_eq!(broker.response.heartbeat_interval_ms, 5_000);
    // After 2 s only the member of "g" is gone.
    let expired = g
        .expire(&img, None, now + Duration::from_millis(2_001))
        .records;
    assert!(expired.iter().all(|(group, _)| group == "g"), "{expired:?}");
    assert!(!expired.is_empty());
    assert_eq!(g.describe("g", &img).members.len(), 0);
    assert_eq!(g.describe("other", &img).members.len(), 1);
}

/// A regular expression new to the group is resolved between heartbeats, as Kafka resolves it
/// off the heartbeat path: the first answer assigns the literal topics, the next one the
/// matched topics too (librdkafka's 0045 expects exactly this); a reloaded group has its
/// members' expressions resolved at once.
#[test]
fn a_new_regex_is_resolved_for_the_next_heartbeat() {
    let g = ConsumerGroups::new(ConsumerGroupConfig::default());
    let img = image(&[("lit", 1, 2), ("re-1", 2, 4), ("re-2", 3, 4)]);
    let now = Instant::now();
    let mut req = join("a", &["lit"]);
    req.subscribed_topic_regex = Some("re-.*".into());
    let first = g.heartbeat(1, req, "c", "/h", &img, None, now);
    assert_eq!(first.response.error_code, 0);
    let count = |a: &Option<HeartbeatAssignment>| -> usize {
        a.as_ref()
            .map(|a| a.topic_partitions.iter().map(|t| t.partitions.len()).sum())
            .unwrap_or(0)
    };
    assert_eq!(
        count(&first.response.assignment),
        2,
        "the literal topic only"
    );
    let epoch = first.response.member_epoch;
    let mut owned = Assignment::new();
    owned.insert(Uuid::from_u128(1), [0, 1].into_iter().collect());
    let second = g.heartbeat(
        1,
        beat("a", epoch, Some(&owned)),
        "c",
        "/h",
        &img,
        None,
        now,
    );
    assert_eq!(
        count(&second.response.assignment),
        10,
        "and the matched ones"
    );
    assert!(second.response.member_epoch > epoch);

    // Replayed elsewhere, the member's expression is resolved already: its next heartbeat
    // keeps everything, at the same epoch.
    let e2 = second.response.member_epoch;
    let copy = ConsumerGroups::new(ConsumerGroupConfig::default());
    for (group, rec) in first.records.into_iter().chain(second.records) {
        copy.replay(&group, rec, now);
    }
    let mut all = Assignment::new();
    for t in &second
        .response
        .assignment
        .as_ref()
        .expect("assignment")
        .topic_partitions
    {
        all.insert(t.topic_id, t.partitions.iter().copied().collect());
    }
    let after = copy.heartbeat(1, beat("a", e2, Some(&all)), "c", "/h", &img, None, now);
    assert_eq!(after.response.error_code, 0);
    assert_eq!(after.response.member_epoch, e2);
    let target: usize = copy.describe("g", &img).members[0]
        .target_assignment
        .topic_partitions
        .iter()
        .map(|t| t.partitions.len())
        .sum();
    assert_eq!(target, 10);
}

/// OffsetDelete on a consumer group keeps the offsets of its members' topics
/// (GROUP_SUBSCRIBED_TO_TOPIC, librdkafka's 0081 in consumer-protocol mode).
#[test]
fn offset_delete_protects_the_members_topics() {
    let g = ConsumerGroups::new(ConsumerGroupConfig::default());
    let img = image(&[("t", 1, 2), ("u", 2, 2)]);
    let now = Instant::now();
    assert!(g.offset_delete_check("g").is_none(), "not a consumer group");
    g.heartbeat(1, join("a", &["t"]), "c", "/h", &img, None, now);
    let s = g.offset_delete_check("g").expect("a consumer group");
    assert!(s.contains("t"));
    assert!(!s.contains("u"));
    g.heartbeat(
        1,
        beat("a", LEAVE_GROUP_MEMBER_EPOCH, None),
        "c",
        "/h",
        &img,
        None,
        now,
    );
    let s = g.offset_delete_check("g").expect("still a consumer group");
    assert!(!s.contains("t"), "an empty group protects nothing");
}
