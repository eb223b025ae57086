//! Consumer groups of KIP-848 (Kafka 4's consumer group protocol), in memory: the
//! ConsumerGroupHeartbeat state machine (Kafka's `GroupMetadataManager.consumerGroupHeartbeat`),
//! ConsumerGroupDescribe, and the consumer-group side of ListGroups, DescribeGroups,
//! DeleteGroups and OffsetCommit.
//!
//! Files: this one is the face ([`ConsumerGroups`]); `consumer/group.rs` is one group and the
//! member reconciliation; `consumer/classic.rs` its classic members and the conversions to and
//! from classic groups; `consumer/assignor.rs` the server-side assignors;
//! `consumer/records.rs` the `__consumer_offsets` records (types 3–8).
//!
//! Every change is described by records (Kafka's "generate records, then replay" model, in
//! one direction): a heartbeat changes the group and returns the records that say so; the
//! coordinator appends them before it answers ([`super::GroupCoordinator::consumer_heartbeat`]),
//! and a loading coordinator rebuilds the group from them ([`ConsumerGroups::replay`]).
//!
//! Differences from Kafka 4.0, on purpose or for now:
//! - the target assignment is computed in the heartbeat that bumps the group epoch (Kafka may
//!   defer it by `group.consumer.min.assignment.interval.ms`); the group is never seen
//!   `Assigning`;
//! - regular expressions are evaluated with the `regex` crate against the whole topic name (as
//!   Java's `Matcher.matches`), not on a background thread: one new to the group matches
//!   nothing in the heartbeat that brings it and is resolved at the group's next heartbeat (as
//!   Kafka answers with the literal topics first and bumps the epoch once its background
//!   resolution is done); the resolution is not persisted (record 16): a reloaded group's
//!   expressions are resolved at once, from the metadata image. The
//!   crate's syntax is RE2's, which is what Kafka's RE2/J also accepts, except that RE2/J has no
//!   `\C`, and Unicode classes follow the crate's tables; internal topics never match;
//! - a heartbeat with epoch ≠ 0 for a group that does not exist answers UNKNOWN_MEMBER_ID (the
//!   member rejoins), where Kafka 4.0 answers GROUP_ID_NOT_FOUND;
//! - classic members inside a consumer group and the online upgrade and downgrade (KIP-848's
//!   migration, `group.consumer.migration.policy`) are in `consumer/classic.rs`, with their
//!   own differences listed there.

pub mod assignor;
mod classic;
mod classic_member;
pub mod group;
#[cfg(test)]
mod migration_tests;
pub mod records;
#[cfg(test)]
mod tests;

use crate::config::{group_int, CONSUMER_HEARTBEAT_INTERVAL_MS, CONSUMER_SESSION_TIMEOUT_MS};
use crate::group_coordinator::consumer_protocol;
use crate::group_coordinator::membership::{GroupMembership, Subscriptions};
use assignor::{Assignment, Assignor, MemberSpec};
pub use classic_member::ClassicRoute;
use group::{reconcile, ConsumerGroup, Member, MemberState};
pub use group::{LEAVE_GROUP_MEMBER_EPOCH, LEAVE_GROUP_STATIC_MEMBER_EPOCH};
use rafka_controller::image::{ConfigResource, MetadataImage};
use rafka_protocol::messages::consumer_group_describe_response::{
    ConsumerGroupMember, DescribedAssignment, DescribedConsumerGroup, DescribedTopicPartitions,
};
use rafka_protocol::messages::consumer_group_heartbeat_response::{
    HeartbeatAssignment, HeartbeatTopicPartitions,
};
use rafka_protocol::messages::list_groups_response::ListedGroup;
use rafka_protocol::messages::GroupMetadataValue;
use rafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use rafka_protocol::{ErrorCode, Uuid};
use records::ConsumerRecord;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The longest `SubscribedTopicRegex` accepted (INVALID_REGULAR_EXPRESSION beyond).
pub const MAX_REGEX_LEN: usize = 1024;
/// The most topic names one member may subscribe to (INVALID_REQUEST beyond).
pub const MAX_SUBSCRIBED_TOPICS: usize = 10_000;
/// The most owned partitions one heartbeat may report (INVALID_REQUEST beyond).
pub const MAX_OWNED_PARTITIONS: usize = 100_000;
/// The compiled size limit of one regex.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The broker settings of consumer groups (Kafka's names).
#[derive(Debug, Clone)]
pub struct ConsumerGroupConfig {
    /// `group.consumer.session.timeout.ms` (45000); a group's `consumer.session.timeout.ms`
    /// overrides it.
    pub session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms` (5000); a group's
    /// `consumer.heartbeat.interval.ms` overrides it.
    pub heartbeat_interval_ms: i32,
    /// `group.consumer.max.size` (`i32::MAX`).
    pub max_size: i32,
    /// `group.consumer.assignors`; the first is the default.
    pub assignors: Vec<Assignor>,
    /// `group.consumer.migration.policy`.
    pub migration_policy: MigrationPolicy,
}

/// `group.consumer.migration.policy` (Kafka's `ConsumerGroupMigrationPolicy`): whether a
/// non-empty classic group becomes a consumer group when a member of the consumer protocol
/// joins it (upgrade), and a consumer group whose last consumer-protocol member leaves becomes
/// classic again when only classic members remain (downgrade). Empty groups convert whatever
/// the policy, as in Kafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MigrationPolicy {
    Disabled,
    Upgrade,
    Downgrade,
    #[default]
    Bidirectional,
}

impl MigrationPolicy {
    /// The policy of a config value (case-insensitive, as Kafka parses it).
    pub fn from_name(name: &str) -> Option<MigrationPolicy> {
        match name.trim().to_ascii_lowercase().as_str() {
            "disabled" => Some(MigrationPolicy::Disabled),
            "upgrade" => Some(MigrationPolicy::Upgrade),
            "downgrade" => Some(MigrationPolicy::Downgrade),
            "bidirectional" => Some(MigrationPolicy::Bidirectional),
            _ => None,
        }
    }

    pub fn upgrade_enabled(self) -> bool {
        matches!(
            self,
            MigrationPolicy::Upgrade | MigrationPolicy::Bidirectional
        )
    }

    pub fn downgrade_enabled(self) -> bool {
        matches!(
            self,
            MigrationPolicy::Downgrade | MigrationPolicy::Bidirectional
        )
    }
}

impl Default for ConsumerGroupConfig {
    fn default() -> Self {
        ConsumerGroupConfig {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            max_size: i32::MAX,
            assignors: vec![Assignor::Uniform, Assignor::Range],
            migration_policy: MigrationPolicy::Bidirectional,
        }
    }
}

/// What [`ConsumerGroups::expire`] removed: the records to append, by group, then the metadata
/// records of the groups that became classic.
#[derive(Debug, Default)]
pub struct Expired {
    pub records: Vec<(String, ConsumerRecord)>,
    pub classic_records: Vec<(String, GroupMetadataValue)>,
}

/// The outcome of a heartbeat: the answer and the records to append before sending it.
pub struct HeartbeatOutcome {
    pub response: ConsumerGroupHeartbeatResponse,
    pub records: Vec<(String, ConsumerRecord)>,
    /// The metadata records of groups this change turned into classic groups (online
    /// downgrade), written after `records` (which tombstone them as consumer groups).
    pub classic_records: Vec<(String, GroupMetadataValue)>,
}

/// The consumer groups this broker coordinates.
pub struct ConsumerGroups {
    config: ConsumerGroupConfig,
    /// Every consumer group. One lock: every operation is a short in-memory update; the
    /// coordinator takes it after its partitions lock and before the classic membership's.
    groups: Mutex<HashMap<String, ConsumerGroup>>,
}

impl std::fmt::Debug for ConsumerGroups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerGroups")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn error(code: ErrorCode, message: &str) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse {
        error_code: code.code(),
        error_message: Some(message.to_owned()),
        ..Default::default()
    }
}

/// A compiled subscription regex: matched against the whole topic name.
pub fn compile_regex(re: &str) -> Result<regex::Regex, ErrorCode> {
    if re.len() > MAX_REGEX_LEN {
        return Err(ErrorCode::InvalidRegularExpression);
    }
    regex::RegexBuilder::new(&format!("^(?:{re})$"))
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|_| ErrorCode::InvalidRegularExpression)
}

/// The wire form of owned partitions, bounded.
fn owned_from(req: &ConsumerGroupHeartbeatRequest) -> Result<Option<Assignment>, ErrorCode> {
    let Some(tps) = &req.topic_partitions else {
        return Ok(None);
    };
    let mut n = 0usize;
    let mut out = Assignment::new();
    for tp in tps {
        n = n.saturating_add(tp.partitions.len());
        if n > MAX_OWNED_PARTITIONS {
            return Err(ErrorCode::InvalidRequest);
        }
        if !tp.partitions.is_empty() {
            out.entry(tp.topic_id)
                .or_default()
                .extend(tp.partitions.iter().copied());
        }
    }
    Ok(Some(out))
}

impl ConsumerGroups {
    pub fn new(config: ConsumerGroupConfig) -> ConsumerGroups {
        ConsumerGroups {
            config,
            groups: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &ConsumerGroupConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, ConsumerGroup>> {
        self.groups.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Kafka's request validation (`throwIfConsumerGroupHeartbeatRequestIsInvalid`).
    pub fn validate(
        &self,
        version: i16,
        req: &ConsumerGroupHeartbeatRequest,
    ) -> Result<(), (ErrorCode, &'static str)> {
        let bad = |m| Err((ErrorCode::InvalidRequest, m));
        if req.group_id.is_empty() {
            return bad("GroupId can't be empty.");
        }
        if req.instance_id.as_deref() == Some("") {
            return bad("InstanceId can't be empty.");
        }
        if req.rack_id.as_deref() == Some("") {
            return bad("RackId can't be empty.");
        }
        if version >= 1 && req.member_id.is_empty() {
            return bad("MemberId can't be empty.");
        }
        match req.member_epoch {
            0 => {
                if req.rebalance_timeout_ms == -1 {
                    return bad("RebalanceTimeoutMs must be provided in first request.");
                }
                if req.topic_partitions.as_ref().is_none_or(|t| !t.is_empty()) {
                    return bad("TopicPartitions must be empty when (re-)joining.");
                }
                if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
                    return bad(
                        "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
                    );
                }
            }
            e if e > 0 || e == LEAVE_GROUP_MEMBER_EPOCH => {
                if req.member_id.is_empty() {
                    return bad("MemberId can't be empty.");
                }
            }
            LEAVE_GROUP_STATIC_MEMBER_EPOCH => {
                if req.instance_id.is_none() {
                    return bad("InstanceId can't be null.");
                }
            }
            _ => return bad("MemberEpoch is invalid."),
        }
        if req
            .subscribed_topic_names
            .as_ref()
            .is_some_and(|t| t.len() > MAX_SUBSCRIBED_TOPICS)
        {
            return bad("Too many SubscribedTopicNames.");
        }
        if let Some(a) = &req.server_assignor {
            if Assignor::from_name(a).is_none_or(|a| !self.config.assignors.contains(&a)) {
                return Err((
                    ErrorCode::UnsupportedAssignor,
                    "ServerAssignor is not supported.",
                ));
            }
        }
        if let Some(re) = &req.subscribed_topic_regex {
            if compile_regex(re).is_err() {
                return Err((
                    ErrorCode::InvalidRegularExpression,
                    "SubscribedTopicRegex is not a valid regular expression.",
                ));
            }
        }
        Ok(())
    }

    /// The group's session timeout: its `consumer.session.timeout.ms` (a dynamic group config,
    /// KIP-848) if it has one, else `group.consumer.session.timeout.ms`. Read at every heartbeat,
    /// so a change applies to each member from its next heartbeat on, as Kafka's
    /// `GroupMetadataManager` reads `GroupConfigManager`.
    fn session_timeout(&self, image: &MetadataImage, group: &str) -> Duration {
        let ms =
            group_int(image.config(&ConfigResource::group(group), CONSUMER_SESSION_TIMEOUT_MS))
                .unwrap_or(self.config.session_timeout_ms);
        Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    }

    /// The heartbeat interval told to the group's members: its `consumer.heartbeat.interval.ms`,
    /// else `group.consumer.heartbeat.interval.ms`.
    fn heartbeat_interval_ms(&self, image: &MetadataImage, group: &str) -> i32 {
        group_int(image.config(
            &ConfigResource::group(group),
            CONSUMER_HEARTBEAT_INTERVAL_MS,
        ))
        .unwrap_or(self.config.heartbeat_interval_ms)
    }

    /// ConsumerGroupHeartbeat. `classic`: the classic groups, which a joining member converts
    /// (an empty one, or one with members as `group.consumer.migration.policy` allows) and to
    /// which the group returns when its last consumer-protocol member leaves and only classic
    /// members remain (`None`: no classic groups to consider).
    #[allow(clippy::too_many_arguments)]
    pub fn heartbeat(
        &self,
        version: i16,
        req: ConsumerGroupHeartbeatRequest,
        client_id: &str,
        client_host: &str,
        image: &MetadataImage,
        classic: Option<&GroupMembership>,
        now: Instant,
    ) -> HeartbeatOutcome {
        let fail = |r| HeartbeatOutcome {
            response: r,
            records: Vec::new(),
            classic_records: Vec::new(),
        };
        if let Err((code, msg)) = self.validate(version, &req) {
            return fail(error(code, msg));
        }
        let owned = match owned_from(&req) {
            Ok(o) => o,
            Err(code) => return fail(error(code, "Too many TopicPartitions.")),
        };
        let mut groups = self.lock();
        let mut out: Vec<ConsumerRecord> = Vec::new();
        let mut classic_records = Vec::new();
        if !groups.contains_key(&req.group_id) {
            if req.member_epoch != 0 {
                return fail(error(
                    ErrorCode::UnknownMemberId,
                    "The group is unknown to this coordinator.",
                ));
            }
            let converted = classic.and_then(|c| {
                c.convert_out(&req.group_id, |cg| {
                    if cg.empty {
                        return Ok(None);
                    }
                    self.validate_online_upgrade(cg, req.member_id.as_str())?;
                    classic_member::from_classic_group(&req.group_id, cg, image, now).map(Some)
                })
            });
            let g = match converted {
                None => ConsumerGroup::new(req.group_id.clone()),
                Some(Ok(None)) => {
                    tracing::info!(group = %req.group_id, "converted an empty classic group to a consumer group");
                    ConsumerGroup::new(req.group_id.clone())
                }
                Some(Ok(Some((g, records)))) => {
                    tracing::info!(group = %req.group_id, members = g.members.len(), "converted a classic group with members to a consumer group (online upgrade)");
                    out.extend(records);
                    g
                }
                Some(Err((code, message))) => return fail(error(code, &message)),
            };
            groups.insert(req.group_id.clone(), g);
        }
        let Some(g) = groups.get_mut(&req.group_id) else {
            return fail(error(ErrorCode::UnknownServerError, "group vanished"));
        };
        let session = self.session_timeout(image, &req.group_id);
        // Regular expressions a previous heartbeat introduced are resolved now, and those no
        // member uses any more are forgotten; a change shows in the subscription metadata below
        // and bumps the group epoch (Kafka's regex resolution completing between heartbeats).
        if !g.pending_regexes.is_empty() {
            let pending = std::mem::take(&mut g.pending_regexes);
            g.resolved_regexes.extend(pending);
            g.metadata_checked_at = -1;
        }
        let members = &g.members;
        g.resolved_regexes.retain(|r| {
            members
                .values()
                .any(|m| m.metadata.subscribed_topic_regex.as_deref() == Some(r.as_str()))
        });
        let mut response_member_id = req.member_id.clone();

        // Find or create the member.
        let member_id: String = match req.member_epoch {
            LEAVE_GROUP_MEMBER_EPOCH | LEAVE_GROUP_STATIC_MEMBER_EPOCH => {
                let id = match (&req.instance_id, g.members.contains_key(&req.member_id)) {
                    (_, true) => req.member_id.clone(),
                    (Some(i), false) => match g.static_members.get(i) {
                        Some(id) => id.clone(),
                        None => return fail(error(ErrorCode::UnknownMemberId, "Unknown member.")),
                    },
                    (None, false) => {
                        return fail(error(ErrorCode::UnknownMemberId, "Unknown member."))
                    }
                };
                if req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH
                    && g.members
                        .get(&id)
                        .is_some_and(|m| m.metadata.instance_id.is_some())
                {
                    // A static member leaves for now: it keeps its assignment for its session.
                    if let Some(m) = g.members.get_mut(&id) {
                        m.previous_member_epoch = m.member_epoch;
                        m.member_epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH;
                        m.session_deadline = now + session;
                        out.push(m.current_record());
                    }
                } else if let Some(view) =
                    classic.and_then(|c| self.downgrade_view(g, &id, c.max_size(), image))
                {
                    // The last member of the consumer protocol leaves classic members behind:
                    // the group becomes classic again (Kafka's online downgrade).
                    out.extend(g.tombstones());
                    groups.remove(&req.group_id);
                    if let Some(c) = classic {
                        classic_records.push((
                            req.group_id.clone(),
                            c.install_converted(&req.group_id, view),
                        ));
                    }
                    tracing::info!(group = %req.group_id, "converted a consumer group to a classic group (online downgrade)");
                } else {
                    g.remove_member(&id, &mut out);
                    self.compute_target(g, image, &mut out);
                }
                let records = out.into_iter().map(|r| (req.group_id.clone(), r)).collect();
                return HeartbeatOutcome {
                    response: ConsumerGroupHeartbeatResponse {
                        member_id: Some(id),
                        member_epoch: req.member_epoch,
                        heartbeat_interval_ms: 0,
                        ..Default::default()
                    },
                    records,
                    classic_records,
                };
            }
            0 => {
                if req.member_id.is_empty() {
                    response_member_id = crate::group_coordinator::membership::random_uuid();
                }
                let id = response_member_id.clone();
                // A static member coming back under a new member id replaces the old one if it
                // left with epoch -2; otherwise the instance id is still in use.
                let mut replaced: Option<Member> = None;
                if let Some(i) = &req.instance_id {
                    if let Some(old_id) = g.static_members.get(i).cloned() {
                        if old_id != id {
                            let old_left =
                                g.members.get(&old_id).is_some_and(Member::is_static_left);
                            if !old_left {
                                return fail(error(
                                    ErrorCode::UnreleasedInstanceId,
                                    "The instance id is still used by another member.",
                                ));
                            }
                            replaced = g.members.remove(&old_id);
                            g.target
                                .remove(&old_id)
                                .map(|t| g.target.insert(id.clone(), t));
                            out.push(ConsumerRecord::CurrentAssignment(old_id.clone(), None));
                            out.push(ConsumerRecord::TargetAssignment(old_id.clone(), None));
                            out.push(ConsumerRecord::Member(old_id.clone(), None));
                        }
                    }
                }
                let is_new = !g.members.contains_key(&id);
                if is_new
                    && replaced.is_none()
                    && g.members.len()
                        >= usize::try_from(self.config.max_size).unwrap_or(usize::MAX)
                {
                    return fail(error(
                        ErrorCode::GroupMaxSizeReached,
                        "The consumer group has reached its maximum size.",
                    ));
                }
                let m = g
                    .members
                    .entry(id.clone())
                    .or_insert_with(|| match replaced {
                        Some(mut old) => {
                            old.member_id = id.clone();
                            // The replacement starts from the old member's epoch and assignment.
                            if old.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
                                old.member_epoch = old.previous_member_epoch.max(0);
                            }
                            old
                        }
                        None => Member::new(id.clone(), now),
                    });
                if !is_new && m.member_epoch != 0 && req.instance_id.is_none() {
                    // A known member rejoining: it owns nothing now (TopicPartitions is empty).
                    m.assigned.clear();
                    m.pending_revocation.clear();
                    m.previous_member_epoch = m.member_epoch;
                    m.member_epoch = 0;
                    m.state = MemberState::Stable;
                }
                if let Some(i) = &req.instance_id {
                    g.static_members.insert(i.clone(), id.clone());
                }
                id
            }
            epoch => {
                let Some(m) = g.members.get(&req.member_id) else {
                    return fail(error(
                        ErrorCode::UnknownMemberId,
                        "The member is not in the group.",
                    ));
                };
                // Kafka's throwIfMemberEpochIsInvalid: a member may lag one epoch behind if
                // it lost the response that moved it (and owns nothing it should not).
                let lagging_ok = epoch == m.previous_member_epoch
                    && owned.as_ref().is_some_and(|o| {
                        o.iter()
                            .all(|(t, ps)| m.assigned.get(t).is_some_and(|a| ps.is_subset(a)))
                    });
                if epoch > m.member_epoch || (epoch < m.member_epoch && !lagging_ok) {
                    return fail(error(
                        ErrorCode::FencedMemberEpoch,
                        "The consumer group member has a smaller member epoch than expected.",
                    ));
                }
                req.member_id.clone()
            }
        };

        // Update the member's metadata from the fields it sent.
        let mut bump = false;
        {
            let Some(m) = g.members.get_mut(&member_id) else {
                return fail(error(ErrorCode::UnknownServerError, "member vanished"));
            };
            let before = m.metadata.clone();
            let md = &mut m.metadata;
            if let Some(i) = &req.instance_id {
                md.instance_id = Some(i.clone());
            }
            if let Some(r) = &req.rack_id {
                md.rack_id = Some(r.clone());
            }
            if req.rebalance_timeout_ms > 0 {
                md.rebalance_timeout_ms = req.rebalance_timeout_ms;
            }
            if let Some(t) = &req.subscribed_topic_names {
                let mut t = t.clone();
                t.sort();
                t.dedup();
                md.subscribed_topic_names = t;
            }
            if let Some(re) = &req.subscribed_topic_regex {
                md.subscribed_topic_regex = (!re.is_empty()).then(|| re.clone());
            }
            if let Some(a) = &req.server_assignor {
                md.server_assignor = Some(a.clone());
            }
            md.client_id = client_id.to_owned();
            md.client_host = client_host.to_owned();
            if *md != before
                || req.member_epoch == 0 && m.member_epoch == 0 && before.client_id.is_empty()
            {
                out.push(ConsumerRecord::Member(member_id.clone(), Some(md.clone())));
            }
            let subscription_changed = md.subscribed_topic_names != before.subscribed_topic_names
                || md.subscribed_topic_regex != before.subscribed_topic_regex
                || md.server_assignor != before.server_assignor;
            bump |= subscription_changed;
            m.session_deadline = now + session;
            // A regular expression new to the group matches nothing in this heartbeat: it is
            // resolved for the next one, as Kafka answers with the literal topics first.
            if let Some(re) = md.subscribed_topic_regex.clone() {
                if !g.resolved_regexes.contains(&re) {
                    g.pending_regexes.insert(re);
                }
            }
        }
        let before_assigned =
            match self.advance(g, &member_id, bump, owned.as_ref(), image, now, &mut out) {
                Some(b) => b,
                None => return fail(error(ErrorCode::UnknownServerError, "member vanished")),
            };
        let Some(m) = g.members.get(&member_id) else {
            return fail(error(ErrorCode::UnknownServerError, "member vanished"));
        };
        let send_assignment = req.member_epoch == 0
            || m.assigned != before_assigned
            || owned.as_ref().is_some_and(|o| *o != m.assigned);
        let assignment = send_assignment.then(|| HeartbeatAssignment {
            topic_partitions: m
                .assigned
                .iter()
                .map(|(t, p)| HeartbeatTopicPartitions {
                    topic_id: *t,
                    partitions: p.iter().copied().collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
        let response = ConsumerGroupHeartbeatResponse {
            member_id: Some(response_member_id),
            member_epoch: m.member_epoch,
            heartbeat_interval_ms: self.heartbeat_interval_ms(image, &req.group_id),
            assignment,
            ..Default::default()
        };
        g.empty_since_ms = None;
        HeartbeatOutcome {
            response,
            records: out.into_iter().map(|r| (req.group_id.clone(), r)).collect(),
            classic_records,
        }
    }

    /// After a member's metadata changed (`bump`: its subscription did): the subscribed topics'
    /// metadata is refreshed, the group epoch bumped and the target assignment computed if
    /// needed, and the member reconciled toward its target, given the partitions it reported
    /// owning (`owned`). Its assignment before, `None` if it is not in the group. Shared by the
    /// heartbeat and a classic member's JoinGroup (Kafka's `consumerGroupHeartbeat` and
    /// `classicGroupJoinToConsumerGroup` steps 1–3).
    #[allow(clippy::too_many_arguments)]
    fn advance(
        &self,
        g: &mut ConsumerGroup,
        member_id: &str,
        mut bump: bool,
        owned: Option<&Assignment>,
        image: &MetadataImage,
        now: Instant,
        out: &mut Vec<ConsumerRecord>,
    ) -> Option<Assignment> {
        // Topic metadata: new partitions, deleted topics, regex matches.
        if bump || g.metadata_checked_at != image.offset() {
            let md = subscription_metadata(g, image);
            g.metadata_checked_at = image.offset();
            if md != g.subscription_metadata {
                g.subscription_metadata = md.clone();
                out.push(ConsumerRecord::PartitionMetadata(Some(md)));
                bump = true;
            }
        }
        if bump {
            g.bump_epoch(out);
        }
        if g.group_epoch > g.assignment_epoch {
            self.compute_target(g, image, out);
        }

        // Reconcile this member toward its target.
        let target_epoch = g.assignment_epoch;
        let target = g.target.get(member_id).cloned().unwrap_or_default();
        let owners = g.owners();
        let m = g.members.get(member_id)?;
        let is_free = |t: &Uuid, p: i32| owners.get(&(*t, p)).is_none_or(|o| *o == member_id);
        let before_assigned = m.assigned.clone();
        let next = reconcile(m, target_epoch, &target, owned, &is_free);
        let m = g.members.get_mut(member_id)?;
        if let Some((epoch, state, assigned, pending)) = next {
            if epoch != m.member_epoch {
                m.previous_member_epoch = m.member_epoch;
            }
            m.member_epoch = epoch;
            m.state = state;
            m.assigned = assigned;
            m.pending_revocation = pending;
            // A classic member revokes by rejoining: its rejoin timer bounds that instead.
            m.revocation_deadline = (state == MemberState::UnrevokedPartitions && !m.is_classic())
                .then(|| {
                    now + Duration::from_millis(
                        u64::try_from(m.metadata.rebalance_timeout_ms.max(0)).unwrap_or(0),
                    )
                });
            out.push(m.current_record());
        }
        Some(before_assigned)
    }

    /// The assignor for the group: the one its members ask for (the most requested; ties by
    /// name), else the first of `group.consumer.assignors`.
    fn assignor_for(&self, g: &ConsumerGroup) -> Assignor {
        let mut votes: BTreeMap<&'static str, (usize, Assignor)> = BTreeMap::new();
        for m in g.members.values() {
            if let Some(a) = m
                .metadata
                .server_assignor
                .as_deref()
                .and_then(Assignor::from_name)
            {
                votes.entry(a.name()).or_insert((0, a)).0 += 1;
            }
        }
        votes
            .values()
            .max_by_key(|(n, a)| (*n, std::cmp::Reverse(a.name())))
            .map(|(_, a)| *a)
            .or_else(|| self.config.assignors.first().copied())
            .unwrap_or(Assignor::Uniform)
    }

    /// Computes the target assignment at the group epoch: records for the members whose target
    /// changed, then the assignment epoch.
    fn compute_target(
        &self,
        g: &mut ConsumerGroup,
        image: &MetadataImage,
        out: &mut Vec<ConsumerRecord>,
    ) {
        let topics: BTreeMap<Uuid, i32> = g
            .subscription_metadata
            .iter()
            .map(|(id, (_, n))| (*id, *n))
            .collect();
        let subs: BTreeMap<String, BTreeSet<Uuid>> = g
            .members
            .iter()
            .map(|(id, m)| (id.clone(), subscribed_ids(m, image, &g.resolved_regexes)))
            .collect();
        let empty = Assignment::new();
        let specs: BTreeMap<String, MemberSpec<'_>> = g
            .members
            .keys()
            .map(|id| {
                (
                    id.clone(),
                    MemberSpec {
                        subscribed: &subs[id],
                        current: g.target.get(id).unwrap_or(&empty),
                    },
                )
            })
            .collect();
        let assignor = self.assignor_for(g);
        let new = assignor.assign(&specs, &topics);
        for (id, a) in &new {
            if g.target.get(id) != Some(a) {
                out.push(ConsumerRecord::TargetAssignment(
                    id.clone(),
                    Some(a.clone()),
                ));
            }
        }
        g.target = new;
        g.assignment_epoch = g.group_epoch;
        g.assignor_name = assignor.name().to_owned();
        out.push(ConsumerRecord::AssignmentEpoch(Some(g.assignment_epoch)));
    }

    /// Members whose session or revocation deadline passed (and classic members that did not
    /// rejoin or sync in time) are removed (Kafka fences them): the records to append, by group.
    /// A consumer-protocol member whose going leaves only classic members turns its group into
    /// a classic group instead (Kafka's online downgrade, `consumerGroupFenceMember`).
    pub fn expire(
        &self,
        image: &MetadataImage,
        classic: Option<&GroupMembership>,
        now: Instant,
    ) -> Expired {
        let mut groups = self.lock();
        let mut out = Expired::default();
        let mut downgrades = Vec::new();
        for g in groups.values_mut() {
            let expired: Vec<String> = g
                .members
                .values()
                .filter(|m| m.deadlines().any(|d| d <= now))
                .map(|m| m.member_id.clone())
                .collect();
            if expired.is_empty() {
                continue;
            }
            let mut recs = Vec::new();
            for id in &expired {
                tracing::info!(group = %g.group_id, member = %id, "consumer group member expired");
                if let Some(view) =
                    classic.and_then(|c| self.downgrade_view(g, id, c.max_size(), image))
                {
                    // The tombstones of members removed before it, then the group's.
                    let mut tombstones = std::mem::take(&mut recs);
                    tombstones.extend(g.tombstones());
                    downgrades.push((g.group_id.clone(), view, tombstones));
                    break;
                }
                g.remove_member(id, &mut recs);
            }
            if downgrades
                .last()
                .is_some_and(|(id, _, _)| *id == g.group_id)
            {
                continue;
            }
            self.compute_target(g, image, &mut recs);
            out.records
                .extend(recs.into_iter().map(|r| (g.group_id.clone(), r)));
        }
        for (group, view, tombstones) in downgrades {
            groups.remove(&group);
            out.records
                .extend(tombstones.into_iter().map(|r| (group.clone(), r)));
            if let Some(c) = classic {
                tracing::info!(group = %group, "converted a consumer group to a classic group (online downgrade)");
                out.classic_records
                    .push((group.clone(), c.install_converted(&group, view)));
            }
        }
        out
    }

    /// The earliest member deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.lock()
            .values()
            .flat_map(|g| g.members.values())
            .flat_map(Member::deadlines)
            .min()
    }

    /// Applies records read back from `__consumer_offsets`.
    pub fn replay(&self, group: &str, rec: ConsumerRecord, now: Instant) {
        let mut groups = self.lock();
        if rec == ConsumerRecord::GroupEpoch(None) {
            groups.remove(group);
            return;
        }
        let g = groups
            .entry(group.to_owned())
            .or_insert_with(|| ConsumerGroup::new(group.to_owned()));
        g.replay(rec, now);
    }

    /// After loading: every loaded member's session starts now.
    pub fn start_sessions(
        &self,
        image: &MetadataImage,
        belongs: impl Fn(&str) -> bool,
        now: Instant,
    ) {
        for g in self.lock().values_mut().filter(|g| belongs(&g.group_id)) {
            let session = self.session_timeout(image, &g.group_id);
            for m in g.members.values_mut() {
                // A classic member's session is the one it joined with.
                m.session_deadline = now
                    + m.metadata.classic.as_ref().map_or(session, |c| {
                        Duration::from_millis(u64::try_from(c.session_timeout_ms).unwrap_or(0))
                    });
            }
        }
    }

    /// Forgets the groups `belongs` selects (leadership moved away).
    pub fn unload(&self, belongs: impl Fn(&str) -> bool) {
        self.lock().retain(|g, _| !belongs(g));
    }

    /// Whether a consumer group exists: `Some(is_empty)`.
    pub fn is_empty_group(&self, group: &str) -> Option<bool> {
        self.lock().get(group).map(|g| g.members.is_empty())
    }

    /// Deletes an empty group: the tombstones to append; NON_EMPTY_GROUP or GROUP_ID_NOT_FOUND.
    pub fn delete_group(&self, group: &str) -> Result<Vec<ConsumerRecord>, ErrorCode> {
        let mut groups = self.lock();
        match groups.get(group) {
            None => Err(ErrorCode::GroupIdNotFound),
            Some(g) if !g.members.is_empty() => Err(ErrorCode::NonEmptyGroup),
            Some(g) => {
                let t = g.tombstones();
                groups.remove(group);
                Ok(t)
            }
        }
    }

    /// OffsetCommit's check for a consumer group (Kafka's `ConsumerGroup.validateOffsetCommit`):
    /// `None` if `group` is not a consumer group.
    pub fn check_commit(
        &self,
        group: &str,
        member_id: &str,
        member_epoch: i32,
        version: i16,
    ) -> Option<Result<(), ErrorCode>> {
        let groups = self.lock();
        let g = groups.get(group)?;
        // Commits from outside the group (admin tools) carry no member.
        if member_epoch < 0 && member_id.is_empty() {
            return Some(if g.members.is_empty() {
                Ok(())
            } else {
                Err(ErrorCode::UnknownMemberId)
            });
        }
        let Some(m) = g.members.get(member_id) else {
            return Some(Err(ErrorCode::UnknownMemberId));
        };
        // Only members of the consumer protocol must use v9+; a classic member commits with its
        // generation, which is its member epoch (ILLEGAL_GENERATION if it differs).
        if version < 9 && !m.is_classic() {
            return Some(Err(ErrorCode::UnsupportedVersion));
        }
        Some(if member_epoch == m.member_epoch {
            Ok(())
        } else if m.is_classic() {
            Err(ErrorCode::IllegalGeneration)
        } else {
            Err(ErrorCode::StaleMemberEpoch)
        })
    }

    /// TxnOffsetCommit's check for a consumer group (Kafka's `validateOffsetCommit` with
    /// `isTransactional`; TxnOffsetCommit answers a stale member epoch ILLEGAL_GENERATION, as
    /// Kafka maps it): a commit without member fields is accepted; otherwise the member must
    /// exist at that epoch. `None` if `group` is not a consumer group.
    pub fn check_txn_commit(
        &self,
        group: &str,
        member_id: &str,
        member_epoch: i32,
        instance_id: Option<&str>,
    ) -> Option<Result<(), ErrorCode>> {
        let groups = self.lock();
        let g = groups.get(group)?;
        if member_epoch < 0
            && (g.members.is_empty() || (member_id.is_empty() && instance_id.is_none()))
        {
            return Some(Ok(()));
        }
        let Some(m) = g.members.get(member_id) else {
            return Some(Err(ErrorCode::UnknownMemberId));
        };
        Some(if member_epoch == m.member_epoch {
            Ok(())
        } else {
            Err(ErrorCode::IllegalGeneration)
        })
    }

    /// ListGroups' consumer groups (type `consumer`).
    pub fn list_groups(&self, states_filter: &[String]) -> Vec<ListedGroup> {
        let filter: BTreeSet<String> = states_filter
            .iter()
            .map(|s| s.trim().to_lowercase())
            .collect();
        self.lock()
            .values()
            .filter(|g| filter.is_empty() || filter.contains(&g.state().as_str().to_lowercase()))
            .map(|g| ListedGroup {
                group_id: g.group_id.clone(),
                protocol_type: "consumer".to_owned(),
                group_state: g.state().as_str().to_owned(),
                group_type: "consumer".to_owned(),
                ..Default::default()
            })
            .collect()
    }

    /// ConsumerGroupDescribe for one group (GROUP_ID_NOT_FOUND when it is not a consumer group).
    pub fn describe(&self, group: &str, image: &MetadataImage) -> DescribedConsumerGroup {
        let groups = self.lock();
        let Some(g) = groups.get(group) else {
            return DescribedConsumerGroup {
                error_code: ErrorCode::GroupIdNotFound.code(),
                error_message: Some(format!("Group {group} not found.")),
                group_id: group.to_owned(),
                ..Default::default()
            };
        };
        let described = |a: &Assignment| DescribedAssignment {
            topic_partitions: a
                .iter()
                .map(|(t, p)| DescribedTopicPartitions {
                    topic_id: *t,
                    topic_name: image.topic(t).map(|t| t.name.clone()).unwrap_or_default(),
                    partitions: p.iter().copied().collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let empty = Assignment::new();
        DescribedConsumerGroup {
            group_id: g.group_id.clone(),
            group_state: g.state().as_str().to_owned(),
            group_epoch: g.group_epoch,
            assignment_epoch: g.assignment_epoch,
            assignor_name: if g.assignor_name.is_empty() {
                self.assignor_for(g).name().to_owned()
            } else {
                g.assignor_name.clone()
            },
            members: g
                .members
                .values()
                .map(|m| ConsumerGroupMember {
                    member_id: m.member_id.clone(),
                    instance_id: m.metadata.instance_id.clone(),
                    rack_id: m.metadata.rack_id.clone(),
                    member_epoch: m.member_epoch,
                    client_id: m.metadata.client_id.clone(),
                    client_host: m.metadata.client_host.clone(),
                    subscribed_topic_names: m.metadata.subscribed_topic_names.clone(),
                    subscribed_topic_regex: m.metadata.subscribed_topic_regex.clone(),
                    assignment: described(&m.assigned),
                    target_assignment: described(g.target.get(&m.member_id).unwrap_or(&empty)),
                    // Kafka's MemberType: 0 classic, 1 consumer.
                    member_type: if m.is_classic() { 0 } else { 1 },
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    /// OffsetDelete's check on a consumer group (Kafka's `ConsumerGroup.validateOffsetDelete`
    /// and `isSubscribedToTopic`): any state may delete, except the offsets of topics its
    /// members subscribe to (by name or by a resolved regex). `None`: not a consumer group.
    pub fn offset_delete_check(&self, group: &str) -> Option<Subscriptions> {
        self.lock().get(group).map(|g| {
            if g.members.is_empty() {
                Subscriptions::Nothing
            } else {
                Subscriptions::Topics(
                    g.subscription_metadata
                        .values()
                        .map(|(n, _)| n.clone())
                        .collect(),
                )
            }
        })
    }

    /// The topics the group's members subscribe to (offset expiry keeps their offsets).
    pub fn subscribed_topics(&self, group: &str) -> Option<BTreeSet<String>> {
        self.lock().get(group).map(|g| {
            g.subscription_metadata
                .values()
                .map(|(n, _)| n.clone())
                .collect()
        })
    }
}

/// The topic ids a member subscribes to that exist in `image`: its topic names, and the topics
/// its regular expression matches once that is among the group's `resolved` ones.
fn subscribed_ids(
    m: &Member,
    image: &MetadataImage,
    resolved: &BTreeSet<String>,
) -> BTreeSet<Uuid> {
    let mut out: BTreeSet<Uuid> = m
        .metadata
        .subscribed_topic_names
        .iter()
        .filter_map(|n| image.topic_by_name(n).map(|t| t.id))
        .collect();
    if let Some(re) = m
        .metadata
        .subscribed_topic_regex
        .as_deref()
        .filter(|r| resolved.contains(*r))
        .and_then(|r| compile_regex(r).ok())
    {
        for (name, id) in image.topic_names().iter() {
            if !rafka_controller::control::topics::internal::is_internal(name) && re.is_match(name)
            {
                out.insert(*id);
            }
        }
    }
    out
}

/// The subscribed topics of every member, with their partition counts (record 4's content).
fn subscription_metadata(
    g: &ConsumerGroup,
    image: &MetadataImage,
) -> BTreeMap<Uuid, (String, i32)> {
    let mut out = BTreeMap::new();
    for m in g.members.values() {
        for id in subscribed_ids(m, image, &g.resolved_regexes) {
            if let Some(t) = image.topic(&id) {
                out.insert(
                    id,
                    (
                        t.name.clone(),
                        i32::try_from(t.partitions.len()).unwrap_or(i32::MAX),
                    ),
                );
            }
        }
    }
    out
}

impl ConsumerGroups {
    /// DescribeGroups (the classic API) on a consumer group, as Kafka's
    /// `ConsumerGroup.asDescribedGroup`: `None` if `group` is not a consumer group.
    pub fn describe_classic(
        &self,
        group: &str,
        image: &MetadataImage,
    ) -> Option<rafka_protocol::messages::describe_groups_response::DescribedGroup> {
        use rafka_protocol::messages::describe_groups_response::{
            DescribedGroup, DescribedGroupMember,
        };
        let groups = self.lock();
        let g = groups.get(group)?;
        let name = |t: &Uuid| image.topic(t).map(|t| t.name.clone()).unwrap_or_default();
        Some(DescribedGroup {
            group_id: g.group_id.clone(),
            group_state: g.state().as_str().to_owned(),
            protocol_type: "consumer".to_owned(),
            protocol_data: self.assignor_for(g).name().to_owned(),
            members: g
                .members
                .values()
                .map(|m| DescribedGroupMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.metadata.instance_id.clone(),
                    client_id: m.metadata.client_id.clone(),
                    client_host: m.metadata.client_host.clone(),
                    // A classic member: what it joined with; else the consumer protocol's v0.
                    member_metadata: m
                        .metadata
                        .classic
                        .as_ref()
                        .and_then(|c| c.protocols.first())
                        .map(|(_, meta)| meta.clone())
                        .unwrap_or_else(|| {
                            consumer_protocol::subscription(&m.metadata.subscribed_topic_names)
                        }),
                    member_assignment: consumer_protocol::assignment(
                        m.assigned.iter().map(|(t, p)| (name(t), p)),
                        classic_member::protocol_version(m),
                    ),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    }
}
