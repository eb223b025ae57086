//! Classic members in a consumer group, and the conversions between the two kinds of group:
//! KIP-848's online migration (Kafka 3.8+/4.0's `GroupMetadataManager`:
//! `validateOnlineUpgrade`, `convertToConsumerGroup`, `validateOnlineDowngradeWithFencedMember`,
//! `convertToClassicGroup`, `classicGroupJoinToConsumerGroup` and the Sync, Heartbeat and Leave
//! counterparts).
//!
//! - **Upgrade.** A ConsumerGroupHeartbeat that joins a classic group with members turns it into
//!   a consumer group if `group.consumer.migration.policy` allows upgrades, the group's protocol
//!   type is `consumer` and it has no more members than `group.consumer.max.size`
//!   (GROUP_ID_NOT_FOUND otherwise, as Kafka). Each classic member becomes a member of the
//!   consumer group at the classic generation, Stable, owning what its last SyncGroup gave it
//!   (which is also its target), its subscription read from its JoinGroup metadata; the
//!   group's epoch is the generation. The joining member then bumps the epoch, so every classic
//!   member is told to rejoin at its next Heartbeat.
//! - **Classic members in a consumer group** keep speaking JoinGroup, SyncGroup, Heartbeat and
//!   LeaveGroup. A JoinGroup updates the member like a heartbeat would (its subscription, its
//!   owned partitions from the embedded `ConsumerProtocolSubscription`) and answers with the
//!   member epoch as generation and no leader work: the member's assignment comes from the
//!   group's target through the same reconciliation as everyone's, and its SyncGroup returns
//!   it. Heartbeat answers REBALANCE_IN_PROGRESS while the member is behind the group epoch, has
//!   partitions to revoke, or could now get partitions it was waiting for — it revokes by
//!   rejoining. A member told to rejoin must within its rebalance timeout, a joined one must
//!   sync within it, and each must heartbeat within its own session timeout, or it is removed.
//! - **Downgrade.** When the last member of the consumer protocol leaves (or is fenced) and
//!   classic members remain, the group becomes a classic group if the policy allows downgrades
//!   and they are no more than `group.max.size`: Stable at the group epoch with each member's
//!   target assignment, then a rebalance, which the members join by the classic protocol.
//!
//! Differences from Kafka: the upgrade writes no classic-group tombstone (on load the later kind
//! of record wins, and our loader drops a tombstoned group's offsets); an empty assignment (a member that joined during a rebalance and was
//! never assigned) converts as no partitions where Kafka fails the upgrade; a downgraded member's
//! assignment is written at the version of its first protocol's metadata (Kafka: the selected
//! protocol's; clients write the same version in all); the downgrade Kafka does when a static
//! classic member replaces the last consumer-protocol member's instance is not done (the group
//! stays a consumer group until that member goes).

use super::assignor::Assignment;
use super::classic_member::{by_id, encoded, ms, protocol_name, sorted, ClassicRoute};
use super::group::{ConsumerGroup, Member, MemberState};
use super::records::{ClassicMember, ConsumerRecord};
use super::ConsumerGroups;
use crate::group_coordinator::consumer_protocol::{Subscription, PROTOCOL_TYPE};
use crate::group_coordinator::membership::{random_uuid, MigratingGroup, MigratingMember};
use rafka_controller::image::MetadataImage;
use rafka_protocol::messages::leave_group_request::MemberIdentity;
use rafka_protocol::messages::leave_group_response::MemberResponse;
use rafka_protocol::messages::{
    HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use rafka_protocol::ErrorCode;
use std::collections::BTreeSet;
use std::time::Instant;

fn join_error(member_id: &str, code: ErrorCode) -> JoinGroupResponse {
    JoinGroupResponse {
        error_code: code.code(),
        generation_id: -1,
        member_id: member_id.to_owned(),
        ..Default::default()
    }
}

fn sync_error(code: ErrorCode) -> SyncGroupResponse {
    SyncGroupResponse {
        error_code: code.code(),
        ..Default::default()
    }
}

/// Kafka's `validateConsumerGroupMember`: by instance id for a static member (UNKNOWN_MEMBER_ID,
/// FENCED_INSTANCE_ID), else by member id; and the member must speak the classic protocol
/// (UNKNOWN_MEMBER_ID otherwise).
fn classic_member_id(
    g: &ConsumerGroup,
    member_id: &str,
    instance_id: Option<&str>,
) -> Result<String, ErrorCode> {
    let id = match instance_id {
        None => member_id.to_owned(),
        Some(i) => {
            let id = g.static_members.get(i).ok_or(ErrorCode::UnknownMemberId)?;
            if id != member_id {
                return Err(ErrorCode::FencedInstanceId);
            }
            id.clone()
        }
    };
    match g.members.get(&id) {
        Some(m) if m.is_classic() => Ok(id),
        _ => Err(ErrorCode::UnknownMemberId),
    }
}

impl ConsumerGroups {
    /// Kafka's `validateOnlineUpgrade` (GROUP_ID_NOT_FOUND: the policy forbids it, the group is
    /// not of the `consumer` protocol type, or it has more members than a consumer group may),
    /// and the joining member's place (GROUP_MAX_SIZE_REACHED, checked before anything changes).
    pub(super) fn validate_online_upgrade(
        &self,
        cg: &MigratingGroup,
        joining_member_id: &str,
    ) -> Result<(), (ErrorCode, String)> {
        let max = usize::try_from(self.config.max_size).unwrap_or(usize::MAX);
        let not_consumer = |why: &str| {
            tracing::info!(
                members = cg.members.len(),
                why,
                "classic group not upgraded"
            );
            Err((
                ErrorCode::GroupIdNotFound,
                "The group is a classic group that cannot become a consumer group.".to_owned(),
            ))
        };
        if !self.config.migration_policy.upgrade_enabled() {
            return not_consumer("the online upgrade is disabled");
        }
        if cg.protocol_type.as_deref() != Some(PROTOCOL_TYPE) {
            return not_consumer("the group does not use the consumer protocol type");
        }
        if cg.members.len() > max {
            return not_consumer("the group has more members than group.consumer.max.size");
        }
        if cg.members.len() >= max && !cg.members.iter().any(|m| m.member_id == joining_member_id) {
            return Err((
                ErrorCode::GroupMaxSizeReached,
                "The consumer group has reached its maximum size.".to_owned(),
            ));
        }
        Ok(())
    }

    /// Kafka's `validateOnlineDowngradeWithFencedMember` and `ClassicGroup.fromConsumerGroup`: if
    /// `leaving` is the last member of the consumer protocol, the others are classic, the policy
    /// allows downgrades and they fit `group.max.size` (`classic_max`), the classic group they
    /// become (each with its target assignment, at the group epoch).
    pub(super) fn downgrade_view(
        &self,
        g: &ConsumerGroup,
        leaving: &str,
        classic_max: i32,
        image: &MetadataImage,
    ) -> Option<MigratingGroup> {
        if !g.all_classic_except(leaving) || g.members.len() <= 1 {
            return None;
        }
        if !self.config.migration_policy.downgrade_enabled() {
            tracing::info!(group = %g.group_id, "consumer group not downgraded: the online downgrade is disabled");
            return None;
        }
        if g.members.len() - 1 > usize::try_from(classic_max).unwrap_or(usize::MAX) {
            tracing::info!(group = %g.group_id, "consumer group not downgraded: more members than group.max.size");
            return None;
        }
        let empty = Assignment::new();
        Some(MigratingGroup {
            generation: g.group_epoch,
            protocol_type: Some(PROTOCOL_TYPE.to_owned()),
            protocol_name: None,
            empty: false,
            members: g
                .members
                .values()
                .filter(|m| m.member_id != leaving)
                .filter_map(|m| {
                    let c = m.metadata.classic.as_ref()?;
                    Some(MigratingMember {
                        member_id: m.member_id.clone(),
                        instance_id: m.metadata.instance_id.clone(),
                        client_id: m.metadata.client_id.clone(),
                        client_host: m.metadata.client_host.clone(),
                        rebalance_timeout_ms: m.metadata.rebalance_timeout_ms,
                        session_timeout_ms: c.session_timeout_ms,
                        protocols: c.protocols.clone(),
                        assignment: encoded(m, g.target.get(&m.member_id).unwrap_or(&empty), image),
                    })
                })
                .collect(),
        })
    }

    /// JoinGroup of a classic member to a consumer group with members (Kafka's
    /// `classicGroupJoinToConsumerGroup`).
    pub fn classic_join(
        &self,
        version: i16,
        req: &JoinGroupRequest,
        client_id: &str,
        client_host: &str,
        image: &MetadataImage,
        now: Instant,
    ) -> ClassicRoute<JoinGroupResponse> {
        let mut groups = self.lock();
        let Some(g) = groups.get_mut(&req.group_id) else {
            return ClassicRoute::NotConsumerGroup;
        };
        let fail = |code| ClassicRoute::now(join_error(&req.member_id, code));
        let unknown = req.member_id.is_empty();
        let member_id = if unknown {
            random_uuid()
        } else {
            req.member_id.clone()
        };
        let max = usize::try_from(self.config.max_size).unwrap_or(usize::MAX);
        if g.members.len() >= max && (unknown || !g.members.contains_key(&member_id)) {
            return fail(ErrorCode::GroupMaxSizeReached);
        }
        if !g.supports_classic_protocols(
            &req.protocol_type,
            req.protocols.iter().map(|p| p.name.as_str()),
        ) {
            return fail(ErrorCode::InconsistentGroupProtocol);
        }
        if version >= 4 && unknown && req.group_instance_id.is_none() {
            // KIP-394: the member comes back with this id.
            return ClassicRoute::now(join_error(&member_id, ErrorCode::MemberIdRequired));
        }
        // Every protocol carries the same subscription: the first is read. Unreadable bytes
        // change nothing and get Kafka's answer to them (an IllegalStateException there).
        let Some(sub) = req
            .protocols
            .first()
            .and_then(|p| Subscription::parse(&p.metadata).ok())
        else {
            tracing::info!(group = %req.group_id, member = %member_id, "malformed consumer protocol subscription in JoinGroup");
            return fail(ErrorCode::UnknownServerError);
        };
        let mut out = Vec::new();

        // A static member under a new member id takes its instance's place (and assignment).
        if let Some(instance) = &req.group_instance_id {
            if let Some(old_id) = g.static_members.get(instance).cloned() {
                if old_id != member_id {
                    if let Some(mut old) = g.members.remove(&old_id) {
                        tracing::info!(group = %req.group_id, instance = %instance, old = %old_id, new = %member_id, "static member rejoins with a new member id");
                        old.member_id = member_id.clone();
                        old.member_epoch = 0;
                        old.previous_member_epoch = 0;
                        old.state = MemberState::Stable;
                        old.assigned.clear();
                        old.pending_revocation.clear();
                        if let Some(t) = g.target.remove(&old_id) {
                            out.push(ConsumerRecord::TargetAssignment(
                                member_id.clone(),
                                Some(t.clone()),
                            ));
                            g.target.insert(member_id.clone(), t);
                        }
                        out.push(ConsumerRecord::CurrentAssignment(old_id.clone(), None));
                        out.push(ConsumerRecord::TargetAssignment(old_id.clone(), None));
                        out.push(ConsumerRecord::Member(old_id.clone(), None));
                        g.members.insert(member_id.clone(), old);
                    }
                }
            }
            g.static_members.insert(instance.clone(), member_id.clone());
        }
        let m = g
            .members
            .entry(member_id.clone())
            .or_insert_with(|| Member::new(member_id.clone(), now));
        let before = m.metadata.clone();
        let md = &mut m.metadata;
        if let Some(i) = &req.group_instance_id {
            md.instance_id = Some(i.clone());
        }
        if let Some(r) = &sub.rack_id {
            md.rack_id = Some(r.clone());
        }
        // v0 has no rebalance timeout: the session timeout serves.
        let rebalance_timeout_ms = if version == 0 {
            req.session_timeout_ms
        } else {
            req.rebalance_timeout_ms
        };
        if rebalance_timeout_ms != -1 {
            md.rebalance_timeout_ms = rebalance_timeout_ms;
        }
        md.subscribed_topic_names = sorted(sub.topics.clone());
        md.client_id = client_id.to_owned();
        md.client_host = client_host.to_owned();
        let mut seen = BTreeSet::new();
        md.classic = Some(ClassicMember {
            session_timeout_ms: req.session_timeout_ms,
            protocols: req
                .protocols
                .iter()
                .filter(|p| seen.insert(p.name.clone()))
                .map(|p| (p.name.clone(), p.metadata.clone()))
                .collect(),
        });
        if *md != before {
            out.push(ConsumerRecord::Member(member_id.clone(), Some(md.clone())));
        }
        let bump = md.subscribed_topic_names != before.subscribed_topic_names
            || md.subscribed_topic_regex != before.subscribed_topic_regex;
        let owned = by_id(&sub.owned, image);
        if self
            .advance(g, &member_id, bump, Some(&owned), image, now, &mut out)
            .is_none()
        {
            return fail(ErrorCode::UnknownServerError);
        }
        let Some(m) = g.members.get_mut(&member_id) else {
            return fail(ErrorCode::UnknownServerError);
        };
        // Joined: it must sync within its rebalance timeout, and heartbeat within its session.
        m.rejoin_deadline = None;
        m.sync_deadline = Some(now + ms(m.metadata.rebalance_timeout_ms));
        m.session_deadline = now + ms(req.session_timeout_ms);
        let response = JoinGroupResponse {
            member_id: member_id.clone(),
            generation_id: m.member_epoch,
            protocol_type: Some(PROTOCOL_TYPE.to_owned()),
            protocol_name: protocol_name(m).map(str::to_owned),
            ..Default::default()
        };
        g.empty_since_ms = None;
        ClassicRoute::Answer {
            response,
            records: out.into_iter().map(|r| (req.group_id.clone(), r)).collect(),
        }
    }

    /// SyncGroup of a classic member of a consumer group (Kafka's
    /// `classicGroupSyncToConsumerGroup`): its assignment as reconciled at its JoinGroup.
    pub fn classic_sync(
        &self,
        req: &SyncGroupRequest,
        image: &MetadataImage,
        now: Instant,
    ) -> ClassicRoute<SyncGroupResponse> {
        let mut groups = self.lock();
        let Some(g) = groups.get_mut(&req.group_id) else {
            return ClassicRoute::NotConsumerGroup;
        };
        let group_epoch = g.group_epoch;
        let id = match classic_member_id(g, &req.member_id, req.group_instance_id.as_deref()) {
            Ok(id) => id,
            Err(code) => return ClassicRoute::now(sync_error(code)),
        };
        let Some(m) = g.members.get_mut(&id) else {
            return ClassicRoute::now(sync_error(ErrorCode::UnknownMemberId));
        };
        if req.generation_id != m.member_epoch {
            return ClassicRoute::now(sync_error(ErrorCode::IllegalGeneration));
        }
        let inconsistent = req
            .protocol_type
            .as_deref()
            .is_some_and(|t| t != PROTOCOL_TYPE)
            || req
                .protocol_name
                .as_deref()
                .is_some_and(|n| Some(n) != protocol_name(m));
        if inconsistent {
            return ClassicRoute::now(sync_error(ErrorCode::InconsistentGroupProtocol));
        }
        // A new rebalance since its join: rejoin (unless it is revoking, which it finishes
        // first, as Kafka's `throwIfRebalanceInProgress`).
        if group_epoch > m.member_epoch && m.state != MemberState::UnrevokedPartitions {
            m.rejoin_deadline
                .get_or_insert(now + ms(m.metadata.rebalance_timeout_ms));
            return ClassicRoute::now(sync_error(ErrorCode::RebalanceInProgress));
        }
        m.sync_deadline = None;
        if let Some(c) = &m.metadata.classic {
            m.session_deadline = now + ms(c.session_timeout_ms);
        }
        let assignment = encoded(m, &m.assigned, image);
        ClassicRoute::now(SyncGroupResponse {
            protocol_type: req.protocol_type.clone(),
            protocol_name: req.protocol_name.clone(),
            assignment,
            ..Default::default()
        })
    }

    /// Heartbeat of a classic member of a consumer group (Kafka's
    /// `classicGroupHeartbeatToConsumerGroup`): REBALANCE_IN_PROGRESS when it must rejoin.
    pub fn classic_heartbeat(
        &self,
        req: &HeartbeatRequest,
        now: Instant,
    ) -> ClassicRoute<ErrorCode> {
        let mut groups = self.lock();
        let Some(g) = groups.get_mut(&req.group_id) else {
            return ClassicRoute::NotConsumerGroup;
        };
        let id = match classic_member_id(g, &req.member_id, req.group_instance_id.as_deref()) {
            Ok(id) => id,
            Err(code) => return ClassicRoute::now(code),
        };
        let group_epoch = g.group_epoch;
        let waiting = g.waiting_on_unreleased(&id);
        let Some(m) = g.members.get_mut(&id) else {
            return ClassicRoute::now(ErrorCode::UnknownMemberId);
        };
        if req.generation_id != m.member_epoch {
            return ClassicRoute::now(ErrorCode::IllegalGeneration);
        }
        if let Some(c) = &m.metadata.classic {
            m.session_deadline = now + ms(c.session_timeout_ms);
        }
        // Rejoin when the group moved on, when it has partitions to give up, or when the
        // partitions it waits for are free now.
        let rejoin = m.member_epoch < group_epoch
            || m.state == MemberState::UnrevokedPartitions
            || (m.state == MemberState::UnreleasedPartitions && !waiting);
        if rejoin {
            m.rejoin_deadline
                .get_or_insert(now + ms(m.metadata.rebalance_timeout_ms));
            return ClassicRoute::now(ErrorCode::RebalanceInProgress);
        }
        ClassicRoute::now(ErrorCode::None)
    }

    /// LeaveGroup to a consumer group (Kafka's `classicGroupLeaveToConsumerGroup`): each listed
    /// classic member leaves (by member id, or by instance id for static members and admin
    /// tools), with its own error; the others are reassigned its partitions.
    pub fn classic_leave(
        &self,
        group_id: &str,
        leaving: &[MemberIdentity],
        image: &MetadataImage,
    ) -> ClassicRoute<Vec<MemberResponse>> {
        let mut groups = self.lock();
        let Some(g) = groups.get_mut(group_id) else {
            return ClassicRoute::NotConsumerGroup;
        };
        let mut out = Vec::new();
        let mut responses = Vec::with_capacity(leaving.len().min(g.members.len() + 1));
        for who in leaving {
            let found = match who.group_instance_id.as_deref() {
                None => match g.members.get(&who.member_id) {
                    Some(m) if m.is_classic() => Ok(who.member_id.clone()),
                    _ => Err(ErrorCode::UnknownMemberId),
                },
                Some(i) => match g.static_members.get(i) {
                    None => Err(ErrorCode::UnknownMemberId),
                    // Admin tools remove a static member by its instance id alone.
                    Some(id) if !who.member_id.is_empty() && *id != who.member_id => {
                        Err(ErrorCode::FencedInstanceId)
                    }
                    Some(id) if g.members.get(id).is_some_and(Member::is_classic) => Ok(id.clone()),
                    Some(_) => Err(ErrorCode::UnknownMemberId),
                },
            };
            let code = match found {
                Ok(id) => {
                    tracing::info!(group = %group_id, member = %id, reason = ?who.reason, "classic member left the consumer group");
                    g.remove_member(&id, &mut out);
                    ErrorCode::None
                }
                Err(code) => code,
            };
            responses.push(MemberResponse {
                member_id: who.member_id.clone(),
                group_instance_id: who.group_instance_id.clone(),
                error_code: code.code(),
                ..Default::default()
            });
        }
        if !out.is_empty() {
            self.compute_target(g, image, &mut out);
        }
        ClassicRoute::Answer {
            response: responses,
            records: out.into_iter().map(|r| (group_id.to_owned(), r)).collect(),
        }
    }
}
