//! The classic rebalance protocol over one [`Group`], as Kafka's `GroupMetadataManager` runs
//! it (its `classicGroup*` methods and timers, in snake case): joins and the join phase,
//! SyncGroup and the assignment, Heartbeat, LeaveGroup, the OffsetCommit check, the
//! DescribeGroups view, and what each deadline does when `tick` finds it passed.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use rafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use rafka_protocol::messages::leave_group_request::MemberIdentity;
use rafka_protocol::messages::leave_group_response::MemberResponse;
use rafka_protocol::messages::{JoinGroupResponse, SyncGroupRequest, SyncGroupResponse};
use rafka_protocol::ErrorCode;
use tokio::sync::oneshot;

use super::group::{after, random_uuid, Group, JoinArgs, JoinTimer, Member};
use super::group_state::GroupState;
use super::membership_config::{MembershipConfig, NEW_MEMBER_JOIN_TIMEOUT_MS};
use super::reply::{join_error, sync_error, Reply};

impl Group {
    // ---- GroupMetadataManager: joins -----------------------------------------------------

    /// Kafka's `acceptJoiningMember` (group.max.size).
    pub(super) fn accept_joining_member(&self, member_id: &str, max_size: i32) -> bool {
        let max = usize::try_from(max_size).unwrap_or(0);
        match self.state {
            GroupState::Empty => true,
            // Counting members awaiting a join (not all members) lets the last of an over-full
            // group be refused on rejoin after group.max.size was lowered.
            GroupState::PreparingRebalance => {
                self.members
                    .get(member_id)
                    .is_some_and(|m| m.awaiting_join.is_some())
                    || self.num_awaiting_join() < max
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.members.contains_key(member_id) || self.members.len() < max
            }
        }
    }

    pub(super) fn join(
        &mut self,
        cfg: &MembershipConfig,
        now: Instant,
        join: JoinArgs,
    ) -> Reply<JoinGroupResponse> {
        if !self.accept_joining_member(&join.member_id, cfg.max_size) {
            // Kafka also drops the refused member (if it was one).
            self.remove(&join.member_id);
            return Reply::Now(join_error("", ErrorCode::GroupMaxSizeReached));
        }
        if join.member_id.is_empty() {
            self.join_new_member(cfg, now, join)
        } else {
            self.join_existing_member(cfg, now, join)
        }
    }

    pub(super) fn join_new_member(
        &mut self,
        cfg: &MembershipConfig,
        now: Instant,
        join: JoinArgs,
    ) -> Reply<JoinGroupResponse> {
        if !self.supports_protocols(&join.protocol_type, &join.protocols) {
            return Reply::Now(join_error("", ErrorCode::InconsistentGroupProtocol));
        }
        // Kafka's generateMemberId: a static member's id starts with its instance id.
        let prefix = join.group_instance_id.as_deref().unwrap_or(&join.client_id);
        let new_member_id = format!("{prefix}-{}", random_uuid());
        if let Some(instance) = join.group_instance_id.clone() {
            match self.static_members.get(&instance).cloned() {
                Some(old) => {
                    tracing::info!(group = %self.group_id, instance = %instance, old = %old, new = %new_member_id, state = self.state.as_str(), "static member rejoins; replacing its old member id");
                    self.update_static_member_then_rebalance_or_complete_join(
                        cfg,
                        now,
                        join,
                        &old,
                        new_member_id,
                    )
                }
                None => {
                    self.add_member_then_rebalance_or_complete_join(cfg, now, join, new_member_id)
                }
            }
        } else if join.version >= 4 {
            // KIP-394: the member must come back with its id, so that a client retrying after a
            // lost answer does not leave a second member behind.
            self.pending_join_members
                .insert(new_member_id.clone(), after(now, join.session_timeout_ms));
            Reply::Now(join_error(&new_member_id, ErrorCode::MemberIdRequired))
        } else {
            self.add_member_then_rebalance_or_complete_join(cfg, now, join, new_member_id)
        }
    }

    pub(super) fn join_existing_member(
        &mut self,
        cfg: &MembershipConfig,
        now: Instant,
        join: JoinArgs,
    ) -> Reply<JoinGroupResponse> {
        let member_id = join.member_id.clone();
        if !self.supports_protocols(&join.protocol_type, &join.protocols) {
            return Reply::Now(join_error(&member_id, ErrorCode::InconsistentGroupProtocol));
        }
        if self.pending_join_members.contains_key(&member_id) {
            if join.group_instance_id.is_some() {
                // Pending ids are only handed to dynamic members (Kafka: IllegalStateException).
                return Reply::Now(join_error(&member_id, ErrorCode::UnknownServerError));
            }
            return self.add_member_then_rebalance_or_complete_join(cfg, now, join, member_id);
        }
        if let Err(code) = self.validate_member(&member_id, join.group_instance_id.as_deref()) {
            return Reply::Now(join_error(&member_id, code));
        }
        let unchanged = self
            .members
            .get(&member_id)
            .is_some_and(|m| m.protocols == join.protocols);
        match self.state {
            GroupState::PreparingRebalance => {
                self.update_member_then_rebalance_or_complete_join(cfg, now, join)
            }
            GroupState::CompletingRebalance if unchanged => {
                // Probably a lost JoinGroup answer: the same generation again.
                let leader = self.is_leader(&member_id);
                Reply::Now(self.join_response(&member_id, leader))
            }
            GroupState::Stable if unchanged && !self.is_leader(&member_id) => {
                Reply::Now(self.join_response(&member_id, false))
            }
            // Changed metadata, or the leader asking for a new assignment (e.g. its topics'
            // partitions changed): rebalance.
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member_then_rebalance_or_complete_join(cfg, now, join)
            }
            GroupState::Empty => Reply::Now(join_error(&member_id, ErrorCode::UnknownMemberId)),
        }
    }

    pub(super) fn update_member_then_rebalance_or_complete_join(
        &mut self,
        cfg: &MembershipConfig,
        now: Instant,
        join: JoinArgs,
    ) -> Reply<JoinGroupResponse> {
        let (tx, rx) = oneshot::channel();
        self.update_member(
            &join.member_id,
            join.protocols,
            join.rebalance_timeout_ms,
            join.session_timeout_ms,
            Some(tx),
        );
        self.maybe_prepare_rebalance_or_complete_join(cfg, now, "member rejoined");
        Reply::Wait(rx)
    }

    pub(super) fn add_member_then_rebalance_or_complete_join(
        &mut self,
        cfg: &MembershipConfig,
        now: Instant,
        join: JoinArgs,
        member_id: String,
    ) -> Reply<JoinGroupResponse> {
        let (tx, rx) = oneshot::channel();
        if self.state == GroupState::PreparingRebalance
            && self.previous_state == Some(GroupState::Empty)
        {
            self.new_member_added = true;
        }
        self.add(Member {
            member_id,
            group_instance_id: join.group_instance_id,
            client_id: join.client_id,
            client_host: join.client_host,
            rebalance_timeout_ms: join.rebalance_timeout_ms,
            session_timeout_ms: join.session_timeout_ms,
            protocol_type: join.protocol_type,
            protocols: join.protocols,
            assignment: Bytes::new(),
            awaiting_join: Some(tx),
            awaiting_sync: None,
            is_new: true,
            // A new member cannot heartbeat before its JoinGroup is answered; if the client
            // gave up on it, the member goes after this (and the client, if alive, retries).
            heartbeat_deadline: Some(after(now, NEW_MEMBER_JOIN_TIMEOUT_MS)),
            seq: 0,
        });
        self.maybe_prepare_rebalance_or_complete_join(cfg, now, "member added");
        Reply::Wait(rx)
    }

    /// A known static member joined without a member id (it restarted): the new id takes the
    /// old one's place; the old one's waiters get FENCED_INSTANCE_ID.
    pub(super) fn update_static_member_then_rebalance_or_complete_join(
        &mut self,
        cfg: &MembershipConfig,
        now: Instant,
        join: JoinArgs,
        old_member_id: &str,
        new_member_id: String,
    ) -> Reply<JoinGroupResponse> {
        let current_leader = self.leader_id.clone().unwrap_or_default();
        let Some(mut old) = self.members.remove(old_member_id) else {
            return Reply::Now(join_error("", ErrorCode::UnknownMemberId));
        };
        if let Some(tx) = old.awaiting_join.take() {
            let _ = tx.send(join_error(old_member_id, ErrorCode::FencedInstanceId));
        }
        if let Some(tx) = old.awaiting_sync.take() {
            let _ = tx.send(sync_error(ErrorCode::FencedInstanceId));
        }
        let session_timeout_ms = old.session_timeout_ms;
        old.member_id = new_member_id.clone();
        old.heartbeat_deadline = Some(after(now, session_timeout_ms));
        self.members.insert(new_member_id.clone(), old);
        if self.is_leader(old_member_id) {
            self.leader_id = Some(new_member_id.clone());
        }
        if let Some(instance) = &join.group_instance_id {
            self.static_members
                .insert(instance.clone(), new_member_id.clone());
        }
        let (tx, rx) = oneshot::channel();
        self.update_member(
            &new_member_id,
            join.protocols,
            join.rebalance_timeout_ms,
            join.session_timeout_ms,
            Some(tx),
        );
        match self.state {
            GroupState::Stable => {
                if self.protocol_name == self.select_protocol() {
                    // The assignment stays valid: no rebalance. Before v9 the member learns
                    // the old leader id, so even a returning leader does not reassign; from v9
                    // the leader gets the members and is told to skip the assignment.
                    let resp = if join.version >= 9 {
                        let leader = self.is_leader(&new_member_id);
                        JoinGroupResponse {
                            skip_assignment: leader,
                            ..self.join_response(&new_member_id, leader)
                        }
                    } else {
                        JoinGroupResponse {
                            leader: current_leader,
                            ..self.join_response(&new_member_id, false)
                        }
                    };
                    self.complete_join_waiter(&new_member_id, resp);
                    // The member id changed without a rebalance: record the new one.
                    self.store_record();
                } else {
                    self.maybe_prepare_rebalance_or_complete_join(
                        cfg,
                        now,
                        "static member changed the selected protocol",
                    );
                }
            }
            // The leader may be assigning to the old id: redo the rebalance.
            GroupState::CompletingRebalance => self.prepare_rebalance(
                cfg,
                now,
                "static member replaced during CompletingRebalance",
            ),
            GroupState::PreparingRebalance | GroupState::Empty => {
                self.maybe_complete_join_phase(now)
            }
        }
        Reply::Wait(rx)
    }

    pub(super) fn maybe_prepare_rebalance_or_complete_join(
        &mut self,
        cfg: &MembershipConfig,
        now: Instant,
        reason: &str,
    ) {
        if self.state.can_rebalance() {
            self.prepare_rebalance(cfg, now, reason);
        } else {
            self.maybe_complete_join_phase(now);
        }
    }

    /// Completes the join phase if every member is in, except during the initial delay.
    pub(super) fn maybe_complete_join_phase(&mut self, now: Instant) {
        if self.state == GroupState::PreparingRebalance
            && self.previous_state != Some(GroupState::Empty)
            && self.has_all_members_joined()
        {
            self.complete_join(now);
        }
    }

    pub(super) fn prepare_rebalance(&mut self, cfg: &MembershipConfig, now: Instant, reason: &str) {
        if self.state == GroupState::CompletingRebalance {
            // Members waiting for this generation's assignment must rejoin.
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
            }
            self.propagate_assignment(now, ErrorCode::RebalanceInProgress);
        }
        self.pending_sync_members.clear();
        self.sync_timer = None;
        let initial = self.state == GroupState::Empty;
        if initial {
            // A new group: give the other members time to arrive before the first generation.
            let delay_ms = cfg.initial_rebalance_delay_ms.max(0);
            let remaining_ms = (self.rebalance_timeout_ms() - delay_ms).max(0);
            self.join_timer = Some(JoinTimer::InitialDelay {
                deadline: after(now, delay_ms),
                delay_ms,
                remaining_ms,
            });
        }
        self.transition_to(GroupState::PreparingRebalance, now);
        tracing::info!(group = %self.group_id, generation = self.generation_id, reason, "preparing to rebalance");
        if !initial {
            if self.has_all_members_joined() {
                self.complete_join(now);
            } else {
                self.join_timer = Some(JoinTimer::Rebalance {
                    deadline: after(now, self.rebalance_timeout_ms()),
                });
            }
        }
    }

    pub(super) fn try_complete_initial_rebalance_else_schedule(
        &mut self,
        cfg: &MembershipConfig,
        now: Instant,
        delay_ms: i32,
        remaining_ms: i32,
    ) {
        if self.new_member_added && remaining_ms != 0 {
            self.new_member_added = false;
            let new_delay_ms = cfg.initial_rebalance_delay_ms.max(0).min(remaining_ms);
            let new_remaining_ms = (remaining_ms - delay_ms).max(0);
            self.join_timer = Some(JoinTimer::InitialDelay {
                deadline: after(now, new_delay_ms),
                delay_ms: new_delay_ms,
                remaining_ms: new_remaining_ms,
            });
        } else {
            self.complete_join(now);
        }
    }

    /// Kafka's `completeClassicGroupJoin`: drop the dynamic members that did not rejoin, start
    /// the next generation and answer every waiting JoinGroup (the leader with the members).
    pub(super) fn complete_join(&mut self, now: Instant) {
        self.join_timer = None;
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.group_instance_id.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        if !gone.is_empty() {
            tracing::info!(group = %self.group_id, members = ?gone, "removing members that did not rejoin");
        }
        for id in &gone {
            self.remove(id);
        }
        if !self.maybe_elect_new_joined_leader() && !self.members.is_empty() {
            // Only static members left and none rejoined: wait another rebalance timeout, by
            // which their sessions will have removed the ones that are gone.
            tracing::warn!(group = %self.group_id, "no member rejoined; extending the rebalance");
            self.join_timer = Some(JoinTimer::Rebalance {
                deadline: after(now, self.rebalance_timeout_ms()),
            });
            return;
        }
        self.init_next_generation(now);
        if self.state == GroupState::Empty {
            self.store_record();
            tracing::info!(group = %self.group_id, generation = self.generation_id, "group is now empty");
            return;
        }
        crate::metrics::GROUP_REBALANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(group = %self.group_id, generation = self.generation_id, members = self.members.len(), protocol = ?self.protocol_name, "stabilized group");
        for id in self.member_ids() {
            let leader = self.is_leader(&id);
            let resp = self.join_response(&id, leader);
            self.complete_join_waiter(&id, resp);
            if let Some(m) = self.members.get_mut(&id) {
                m.heartbeat_deadline = Some(after(now, m.session_timeout_ms));
                m.is_new = false;
            }
            self.pending_sync_members.insert(id);
        }
        self.sync_timer = Some((after(now, self.rebalance_timeout_ms()), self.generation_id));
    }

    /// Answers every waiting SyncGroup with its member's assignment (or `error`).
    pub(super) fn propagate_assignment(&mut self, now: Instant, error: ErrorCode) {
        let ok = error == ErrorCode::None;
        for id in self.member_ids() {
            let Some(m) = self.members.get(&id) else {
                continue;
            };
            let resp = SyncGroupResponse {
                error_code: error.code(),
                protocol_type: if ok { self.protocol_type.clone() } else { None },
                protocol_name: if ok { self.protocol_name.clone() } else { None },
                assignment: m.assignment.clone(),
                ..Default::default()
            };
            if self.complete_sync_waiter(&id, resp) {
                // Its session may have passed unnoticed while it waited: a fresh one.
                if let Some(m) = self.members.get_mut(&id) {
                    m.heartbeat_deadline = Some(after(now, m.session_timeout_ms));
                }
            }
        }
    }

    pub(super) fn remove_pending_sync_member(&mut self, member_id: &str) {
        self.pending_sync_members.remove(member_id);
        if self.pending_sync_members.is_empty() {
            self.sync_timer = None;
        }
    }

    // ---- SyncGroup, Heartbeat, LeaveGroup, OffsetCommit ------------------------------------

    pub(super) fn sync(&mut self, now: Instant, req: SyncGroupRequest) -> Reply<SyncGroupResponse> {
        if self.state == GroupState::Empty {
            return Reply::Now(sync_error(ErrorCode::UnknownMemberId));
        }
        let member_id = req.member_id.as_str();
        if let Err(code) = self.validate_member(member_id, req.group_instance_id.as_deref()) {
            return Reply::Now(sync_error(code));
        }
        if req.generation_id != self.generation_id {
            return Reply::Now(sync_error(ErrorCode::IllegalGeneration));
        }
        let inconsistent = |asked: &Option<String>, ours: &Option<String>| matches!((asked, ours), (Some(a), Some(o)) if a != o);
        if inconsistent(&req.protocol_type, &self.protocol_type)
            || inconsistent(&req.protocol_name, &self.protocol_name)
        {
            return Reply::Now(sync_error(ErrorCode::InconsistentGroupProtocol));
        }
        match self.state {
            GroupState::PreparingRebalance => {
                Reply::Now(sync_error(ErrorCode::RebalanceInProgress))
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = self.members.get_mut(member_id) {
                    if let Some(prev) = m.awaiting_sync.replace(tx) {
                        let _ = prev.send(sync_error(ErrorCode::RebalanceInProgress));
                    }
                }
                self.remove_pending_sync_member(member_id);
                if self.is_leader(member_id) {
                    tracing::info!(group = %self.group_id, generation = self.generation_id, leader = member_id, "assignment received from leader");
                    // Only current members' entries are kept; a member left out gets an empty
                    // assignment. A later entry for the same member wins, as in Kafka's map.
                    let mut assignment: HashMap<&str, Bytes> = HashMap::new();
                    for a in &req.assignments {
                        if self.members.contains_key(&a.member_id) {
                            assignment.insert(a.member_id.as_str(), a.assignment.clone());
                        }
                    }
                    for m in self.members.values_mut() {
                        m.assignment = assignment
                            .get(m.member_id.as_str())
                            .cloned()
                            .unwrap_or_default();
                    }
                    self.propagate_assignment(now, ErrorCode::None);
                    self.transition_to(GroupState::Stable, now);
                    self.store_record();
                }
                Reply::Wait(rx)
            }
            GroupState::Stable => {
                self.remove_pending_sync_member(member_id);
                let assignment = self
                    .members
                    .get(member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                Reply::Now(SyncGroupResponse {
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol_name.clone(),
                    assignment,
                    ..Default::default()
                })
            }
            GroupState::Empty => Reply::Now(sync_error(ErrorCode::UnknownMemberId)),
        }
    }

    pub(super) fn heartbeat(
        &mut self,
        now: Instant,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> ErrorCode {
        if let Err(code) = self.validate_member(member_id, instance_id) {
            return code;
        }
        if generation != self.generation_id {
            return ErrorCode::IllegalGeneration;
        }
        if self.state == GroupState::Empty {
            return ErrorCode::UnknownMemberId;
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.heartbeat_deadline = Some(after(now, m.session_timeout_ms));
        }
        if self.state == GroupState::PreparingRebalance {
            ErrorCode::RebalanceInProgress
        } else {
            // Members may heartbeat as soon as they have their JoinGroup answer.
            ErrorCode::None
        }
    }

    pub(super) fn leave(
        &mut self,
        cfg: &MembershipConfig,
        now: Instant,
        leaving: Vec<MemberIdentity>,
    ) -> Vec<MemberResponse> {
        let mut out = Vec::with_capacity(leaving.len().min(self.members.len() + 1));
        let mut any_left = false;
        for m in leaving {
            let code = if m.member_id.is_empty() {
                // Removal of a static member by its instance id (admin tools).
                match m
                    .group_instance_id
                    .as_ref()
                    .and_then(|i| self.static_members.get(i))
                    .cloned()
                {
                    Some(id) => {
                        self.remove_leaving_member(&id);
                        ErrorCode::None
                    }
                    None => ErrorCode::UnknownMemberId,
                }
            } else if self.pending_join_members.contains_key(&m.member_id) {
                self.pending_join_members.remove(&m.member_id);
                ErrorCode::None
            } else {
                match self.validate_member(&m.member_id, m.group_instance_id.as_deref()) {
                    Ok(()) => {
                        self.remove_leaving_member(&m.member_id);
                        ErrorCode::None
                    }
                    Err(code) => code,
                }
            };
            if code == ErrorCode::None {
                tracing::info!(group = %self.group_id, member_id = %m.member_id, reason = ?m.reason, "member left the group");
                any_left = true;
            }
            out.push(MemberResponse {
                member_id: m.member_id,
                group_instance_id: m.group_instance_id,
                error_code: code.code(),
                ..Default::default()
            });
        }
        if any_left {
            match self.state {
                GroupState::Stable | GroupState::CompletingRebalance => {
                    self.maybe_prepare_rebalance_or_complete_join(cfg, now, "members left")
                }
                GroupState::PreparingRebalance => self.maybe_complete_join_phase(now),
                GroupState::Empty => {}
            }
        }
        out
    }

    pub(super) fn remove_leaving_member(&mut self, member_id: &str) {
        // A waiting JoinGroup of the leaving member answers UNKNOWN_MEMBER_ID (in `remove`).
        self.remove(member_id);
    }

    /// OffsetCommit's (or, `transactional`, TxnOffsetCommit's) check of the member (Kafka's
    /// `ClassicGroup.validateOffsetCommit`): a transactional commit may omit the member entirely
    /// (TxnOffsetCommit before v3 has no such fields) and is not refused during a rebalance.
    pub(super) fn check_commit(
        &mut self,
        now: Instant,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        transactional: bool,
    ) -> Result<(), ErrorCode> {
        if generation < 0 && self.state == GroupState::Empty {
            // An admin client or a consumer without group management.
            return Ok(());
        }
        if generation >= 0 || !member_id.is_empty() || instance_id.is_some() {
            self.validate_member(member_id, instance_id)?;
            if generation != self.generation_id {
                return Err(ErrorCode::IllegalGeneration);
            }
        } else if !transactional && self.state != GroupState::Empty {
            // Without member and generation, commits are only for groups without members.
            return Err(ErrorCode::UnknownMemberId);
        }
        match self.state {
            // Valid member, but the assignment is not out yet.
            GroupState::CompletingRebalance if !transactional => {
                Err(ErrorCode::RebalanceInProgress)
            }
            GroupState::CompletingRebalance => Ok(()),
            GroupState::Stable | GroupState::PreparingRebalance => {
                if let Some(m) = self.members.get_mut(member_id) {
                    m.heartbeat_deadline = Some(after(now, m.session_timeout_ms));
                }
                Ok(())
            }
            GroupState::Empty => Ok(()),
        }
    }

    // ---- views -------------------------------------------------------------------------------

    pub(super) fn describe(&self) -> DescribedGroup {
        let stable = self.state == GroupState::Stable;
        let protocol = self.protocol_name.as_deref();
        DescribedGroup {
            group_id: self.group_id.clone(),
            group_state: self.state.as_str().to_string(),
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol_data: if stable {
                self.protocol_name.clone().unwrap_or_default()
            } else {
                String::new()
            },
            members: self
                .member_ids()
                .iter()
                .filter_map(|id| self.members.get(id))
                .map(|m| DescribedGroupMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    member_metadata: if stable {
                        m.metadata(protocol)
                    } else {
                        Bytes::new()
                    },
                    member_assignment: m.assignment.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    // ---- timers ------------------------------------------------------------------------------

    pub(super) fn tick(&mut self, cfg: &MembershipConfig, now: Instant) {
        // Member ids handed out with MEMBER_ID_REQUIRED that never joined.
        let expired: Vec<String> = self
            .pending_join_members
            .iter()
            .filter(|(_, &deadline)| deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            tracing::debug!(group = %self.group_id, member_id = %id, "pending member expired");
            self.pending_join_members.remove(&id);
            if self.state == GroupState::PreparingRebalance && self.has_all_members_joined() {
                self.complete_join(now);
            }
        }

        // Sessions (and new members' join timeout).
        let mut expired: Vec<(u64, String)> = self
            .members
            .values()
            .filter(|m| m.heartbeat_deadline.is_some_and(|d| d <= now))
            .map(|m| (m.seq, m.member_id.clone()))
            .collect();
        expired.sort();
        for (_, id) in expired {
            let Some(m) = self.members.get_mut(&id) else {
                continue;
            };
            if m.heartbeat_deadline.is_none_or(|d| d > now) {
                continue; // rescheduled by an earlier expiry's effects
            }
            m.heartbeat_deadline = None;
            if !m.has_satisfied_heartbeat() {
                tracing::info!(group = %self.group_id, member_id = %id, "member session expired; removing it");
                self.remove_member_and_update(cfg, now, &id);
            }
            // A member waiting in a join or sync is alive; its phase's end sets a new deadline.
        }

        if let Some(t) = self.join_timer {
            if t.deadline() <= now {
                self.join_timer = None;
                match t {
                    JoinTimer::InitialDelay {
                        delay_ms,
                        remaining_ms,
                        ..
                    } => self.try_complete_initial_rebalance_else_schedule(
                        cfg,
                        now,
                        delay_ms,
                        remaining_ms,
                    ),
                    JoinTimer::Rebalance { .. } => self.complete_join(now),
                }
            }
        }

        if let Some((deadline, generation)) = self.sync_timer {
            if deadline <= now {
                self.sync_timer = None;
                self.expire_pending_sync(cfg, now, generation);
            }
        }
    }

    /// The earliest instant at which [`tick`](Self::tick) has something to do: a pending
    /// member's join deadline, a member's session deadline, the join or sync timer.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let pending = self.pending_join_members.values().copied();
        let sessions = self.members.values().filter_map(|m| m.heartbeat_deadline);
        let join = self.join_timer.map(|t| t.deadline());
        let sync = self.sync_timer.map(|(d, _)| d);
        pending.chain(sessions).chain(join).chain(sync).min()
    }

    /// A member's session ended: gone, and the group rebalances (or finishes its join).
    pub(super) fn remove_member_and_update(
        &mut self,
        cfg: &MembershipConfig,
        now: Instant,
        member_id: &str,
    ) {
        self.remove(member_id);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance_or_complete_join(cfg, now, "member session expired")
            }
            GroupState::PreparingRebalance if self.has_all_members_joined() => {
                self.complete_join(now)
            }
            _ => {}
        }
    }

    /// Members that had not sent SyncGroup within the rebalance timeout are removed.
    pub(super) fn expire_pending_sync(
        &mut self,
        cfg: &MembershipConfig,
        now: Instant,
        generation: i32,
    ) {
        if generation != self.generation_id
            || !matches!(
                self.state,
                GroupState::CompletingRebalance | GroupState::Stable
            )
            || self.pending_sync_members.is_empty()
        {
            return;
        }
        let mut late: Vec<String> = self.pending_sync_members.iter().cloned().collect();
        late.sort();
        tracing::info!(group = %self.group_id, members = ?late, "removing members that did not sync");
        for id in &late {
            self.remove(id);
        }
        self.prepare_rebalance(cfg, now, "members did not sync in time");
    }
}
