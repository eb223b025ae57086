//! What a classic member of a consumer group is made of, and the conversions the migration
//! between the two kinds of group makes (see `classic.rs`): where a classic request goes
//! ([`ClassicRoute`]), a classic member's protocol and its assignment in the consumer protocol's
//! encoding, and a classic group's members as consumer-group members
//! ([`from_classic_group`]).

use super::assignor::Assignment;
use super::group::{ConsumerGroup, Member, MemberState};
use super::records::{ClassicMember, ConsumerRecord};
use crate::group_coordinator::consumer_protocol::{self, Subscription};
use crate::group_coordinator::membership::MigratingGroup;
use bytes::Bytes;
use rafka_controller::image::MetadataImage;
use rafka_protocol::ErrorCode;
use std::time::{Duration, Instant};

/// Where a classic request goes: the classic groups (no consumer group of that id), or answered
/// here with the records to append before the answer.
#[derive(Debug)]
pub enum ClassicRoute<T> {
    NotConsumerGroup,
    Answer {
        response: T,
        records: Vec<(String, ConsumerRecord)>,
    },
}

impl<T> ClassicRoute<T> {
    pub(super) fn now(response: T) -> ClassicRoute<T> {
        ClassicRoute::Answer {
            response,
            records: Vec::new(),
        }
    }
}

pub(super) fn ms(ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// The version a classic member's assignments are written at: that of its first protocol's
/// subscription (0 for a member of the consumer protocol, or unreadable metadata).
pub(super) fn protocol_version(m: &Member) -> i16 {
    m.metadata
        .classic
        .as_ref()
        .and_then(|c| c.protocols.first())
        .and_then(|(_, meta)| consumer_protocol::version(meta).ok())
        .unwrap_or(0)
}

/// The first protocol a classic member joined with (its JoinGroup answer names it).
pub(super) fn protocol_name(m: &Member) -> Option<&str> {
    m.metadata
        .classic
        .as_ref()
        .and_then(|c| c.protocols.first())
        .map(|(n, _)| n.as_str())
}

/// Partitions by topic name, as the classic protocol carries them, to topic ids; topics this
/// image does not know are left out.
pub(super) fn by_id(named: &[(String, Vec<i32>)], image: &MetadataImage) -> Assignment {
    let mut out = Assignment::new();
    for (topic, parts) in named {
        if let Some(t) = image.topic_by_name(topic) {
            if !parts.is_empty() {
                out.entry(t.id).or_default().extend(parts.iter().copied());
            }
        }
    }
    out
}

/// A member's assignment in the consumer protocol's encoding, at its protocol's version.
pub(super) fn encoded(m: &Member, a: &Assignment, image: &MetadataImage) -> Bytes {
    consumer_protocol::assignment(
        a.iter()
            .filter_map(|(t, p)| image.topic(t).map(|t| (t.name.clone(), p))),
        protocol_version(m),
    )
}

/// Kafka's `ConsumerGroup.fromClassicGroup` and `createConsumerGroupRecords`: the consumer group
/// a classic group with members becomes, and the records that create it. GROUP_ID_NOT_FOUND if
/// a member's embedded consumer protocol cannot be read, as Kafka answers.
pub(super) fn from_classic_group(
    group_id: &str,
    cg: &MigratingGroup,
    image: &MetadataImage,
    now: Instant,
) -> Result<(ConsumerGroup, Vec<ConsumerRecord>), (ErrorCode, String)> {
    let malformed = || {
        (
            ErrorCode::GroupIdNotFound,
            format!(
                "Cannot upgrade the classic group {group_id} to consumer group because the embedded consumer protocol is malformed."
            ),
        )
    };
    let protocol = cg.protocol_name.as_deref().ok_or_else(malformed)?;
    let mut g = ConsumerGroup::new(group_id.to_owned());
    g.group_epoch = cg.generation;
    g.assignment_epoch = cg.generation;
    for cm in &cg.members {
        let meta = cm
            .protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m)
            .ok_or_else(malformed)?;
        let sub = Subscription::parse(meta).map_err(|_| malformed())?;
        // A member never assigned (it joined during a rebalance) owns nothing.
        let assigned = if cm.assignment.is_empty() {
            Assignment::new()
        } else {
            let named =
                consumer_protocol::parse_assignment(&cm.assignment).map_err(|_| malformed())?;
            by_id(&named, image)
        };
        let mut m = Member::new(cm.member_id.clone(), now);
        m.member_epoch = cg.generation;
        m.previous_member_epoch = cg.generation;
        m.state = MemberState::Stable;
        let md = &mut m.metadata;
        md.instance_id = cm.instance_id.clone();
        md.rack_id = sub.rack_id;
        md.rebalance_timeout_ms = cm.rebalance_timeout_ms;
        md.client_id = cm.client_id.clone();
        md.client_host = cm.client_host.clone();
        md.subscribed_topic_names = sorted(sub.topics);
        md.classic = Some(ClassicMember {
            session_timeout_ms: cm.session_timeout_ms,
            protocols: cm.protocols.clone(),
        });
        m.assigned = assigned.clone();
        m.session_deadline = now + ms(cm.session_timeout_ms);
        if let Some(i) = &cm.instance_id {
            g.static_members.insert(i.clone(), cm.member_id.clone());
        }
        g.target.insert(cm.member_id.clone(), assigned);
        g.members.insert(cm.member_id.clone(), m);
    }
    let mut out: Vec<ConsumerRecord> = g
        .members
        .values()
        .map(|m| ConsumerRecord::Member(m.member_id.clone(), Some(m.metadata.clone())))
        .collect();
    out.push(ConsumerRecord::GroupEpoch(Some(g.group_epoch)));
    out.extend(
        g.target
            .iter()
            .map(|(id, a)| ConsumerRecord::TargetAssignment(id.clone(), Some(a.clone()))),
    );
    out.push(ConsumerRecord::AssignmentEpoch(Some(g.assignment_epoch)));
    out.extend(g.members.values().map(Member::current_record));
    Ok((g, out))
}

pub(super) fn sorted(mut topics: Vec<String>) -> Vec<String> {
    topics.sort();
    topics.dedup();
    topics
}
