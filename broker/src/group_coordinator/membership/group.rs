//! Kafka's `ClassicGroup` and `ClassicGroupMember`: one group's members, their protocols and
//! waiters, and the bookkeeping every rebalance step uses (adding and removing members, leader
//! succession, the protocol vote, the generation). The rebalance protocol itself is in
//! [`super::rebalance`].

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rafka_protocol::messages::group_metadata_value::MemberMetadata;
use rafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use rafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use rafka_protocol::messages::{
    GroupMetadataValue, JoinGroupRequest, JoinGroupResponse, SyncGroupResponse,
};
use rafka_protocol::ErrorCode;
use tokio::sync::oneshot;

use super::group_state::GroupState;
use super::migrating_group::{MigratingGroup, MigratingMember};
use super::reply::{join_error, sync_error};
use crate::group_coordinator::consumer_protocol;
use crate::group_coordinator::consumer_protocol::PROTOCOL_TYPE as CONSUMER_PROTOCOL_TYPE;

/// A JoinGroup's inputs, normalized.
pub(super) struct JoinArgs {
    pub(super) version: i16,
    pub(super) group_id: String,
    pub(super) member_id: String,
    pub(super) group_instance_id: Option<String>,
    pub(super) session_timeout_ms: i32,
    pub(super) rebalance_timeout_ms: i32,
    pub(super) protocol_type: String,
    pub(super) protocols: Vec<Protocol>,
    pub(super) client_id: String,
    pub(super) client_host: String,
}

impl JoinArgs {
    pub(super) fn new(
        version: i16,
        req: JoinGroupRequest,
        client_id: &str,
        client_host: &str,
    ) -> JoinArgs {
        JoinArgs {
            version,
            group_id: req.group_id,
            member_id: req.member_id,
            // v5 introduced it; older decodes leave None.
            group_instance_id: req.group_instance_id,
            session_timeout_ms: req.session_timeout_ms,
            // v0 has no rebalance timeout: the session timeout serves (Kafka's JoinGroupRequest).
            rebalance_timeout_ms: if version == 0 {
                req.session_timeout_ms
            } else {
                req.rebalance_timeout_ms
            },
            protocol_type: req.protocol_type,
            protocols: dedup_protocols(req.protocols),
            client_id: client_id.to_string(),
            client_host: client_host.to_string(),
        }
    }
}

/// One protocol a member supports, with its opaque metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Protocol {
    pub(super) name: String,
    pub(super) metadata: Bytes,
}

/// The request's protocols in preference order, each name once (the first wins), so that the
/// support counts below count members, not entries.
pub(super) fn dedup_protocols(protocols: Vec<JoinGroupRequestProtocol>) -> Vec<Protocol> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for p in protocols {
        if seen.insert(p.name.clone()) {
            out.push(Protocol {
                name: p.name,
                metadata: p.metadata,
            });
        }
    }
    out
}

/// Kafka's `ClassicGroupMember`.
pub(super) struct Member {
    pub(super) member_id: String,
    pub(super) group_instance_id: Option<String>,
    pub(super) client_id: String,
    pub(super) client_host: String,
    pub(super) rebalance_timeout_ms: i32,
    pub(super) session_timeout_ms: i32,
    pub(super) protocol_type: String,
    pub(super) protocols: Vec<Protocol>,
    pub(super) assignment: Bytes,
    pub(super) awaiting_join: Option<oneshot::Sender<JoinGroupResponse>>,
    pub(super) awaiting_sync: Option<oneshot::Sender<SyncGroupResponse>>,
    /// Added by this join phase: may expire while its JoinGroup waits.
    pub(super) is_new: bool,
    /// When the member is dropped unless it heartbeats (or waits in a join or sync) by then.
    pub(super) heartbeat_deadline: Option<Instant>,
    /// Join order: the order of the leader's member list and of leader succession.
    pub(super) seq: u64,
}

impl Member {
    /// Kafka's `hasSatisfiedHeartbeat`: a waiting member is alive unless it is new.
    pub(super) fn has_satisfied_heartbeat(&self) -> bool {
        !self.is_new && (self.awaiting_join.is_some() || self.awaiting_sync.is_some())
    }

    pub(super) fn metadata(&self, protocol: Option<&str>) -> Bytes {
        protocol
            .and_then(|name| self.protocols.iter().find(|p| p.name == name))
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }
}

/// The timer of a group's join phase (Kafka's join key: one at a time, replaced when set).
#[derive(Debug, Clone, Copy)]
pub(super) enum JoinTimer {
    /// The first rebalance of an Empty group: `delay_ms` at a time while members arrive,
    /// `remaining_ms` of the rebalance timeout left after this delay.
    InitialDelay {
        deadline: Instant,
        delay_ms: i32,
        remaining_ms: i32,
    },
    /// The rebalance timeout.
    Rebalance { deadline: Instant },
}

impl JoinTimer {
    pub(super) fn deadline(self) -> Instant {
        match self {
            JoinTimer::InitialDelay { deadline, .. } | JoinTimer::Rebalance { deadline } => {
                deadline
            }
        }
    }
}

pub(super) fn after(now: Instant, ms: i32) -> Instant {
    now + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Kafka's `ClassicGroup` (the rebalance protocol over it is in `rebalance.rs`).
pub(super) struct Group {
    pub(super) group_id: String,
    pub(super) state: GroupState,
    pub(super) previous_state: Option<GroupState>,
    pub(super) generation_id: i32,
    pub(super) protocol_type: Option<String>,
    pub(super) protocol_name: Option<String>,
    pub(super) leader_id: Option<String>,
    pub(super) members: HashMap<String, Member>,
    /// group.instance.id → member id.
    pub(super) static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, until they join or their session ends.
    pub(super) pending_join_members: HashMap<String, Instant>,
    /// Protocol name → how many members support it.
    pub(super) supported_protocols: HashMap<String, usize>,
    /// Members of this generation whose SyncGroup has not come yet.
    pub(super) pending_sync_members: HashSet<String>,
    /// A member joined during the initial delay: extend it.
    pub(super) new_member_added: bool,
    pub(super) join_timer: Option<JoinTimer>,
    /// The pending-sync deadline and the generation it was set for.
    pub(super) sync_timer: Option<(Instant, i32)>,
    /// The topics a `consumer` group's members subscribe to; `None` if not known.
    pub(super) subscribed_topics: Option<BTreeSet<String>>,
    pub(super) next_seq: u64,
    /// When the group entered its current state (Kafka's `currentStateTimestamp`); `None` for
    /// a group loaded from a record that did not carry it.
    pub(super) state_since: Option<Instant>,
    /// The group's metadata record still to be appended to `__consumer_offsets`, taken when
    /// the group became Stable or Empty (only the latest matters: records of one key replace
    /// each other).
    pub(super) pending_record: Option<GroupMetadataValue>,
}

impl Group {
    pub(super) fn new(group_id: String) -> Group {
        Group {
            group_id,
            state: GroupState::Empty,
            previous_state: None,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: HashMap::new(),
            static_members: HashMap::new(),
            pending_join_members: HashMap::new(),
            supported_protocols: HashMap::new(),
            pending_sync_members: HashSet::new(),
            new_member_added: false,
            join_timer: None,
            sync_timer: None,
            subscribed_topics: None,
            next_seq: 0,
            state_since: None,
            pending_record: None,
        }
    }

    // ---- ClassicGroup: the members and their bookkeeping -------------------------------

    pub(super) fn transition_to(&mut self, state: GroupState, now: Instant) {
        tracing::debug!(group = %self.group_id, from = self.state.as_str(), to = state.as_str(), "group state");
        self.previous_state = Some(self.state);
        self.state = state;
        self.state_since = Some(now);
    }

    /// Takes the group's metadata record as it is now (Kafka's `newGroupMetadataRecord`): every
    /// member with its metadata for the selected protocol and its assignment. The state
    /// timestamp is filled in when the record is written (`GroupMembership` owns the clock's
    /// mapping to wall time).
    pub(super) fn store_record(&mut self) {
        let protocol = self.protocol_name.as_deref();
        let members = self
            .member_ids()
            .iter()
            .filter_map(|id| self.members.get(id))
            .map(|m| MemberMetadata {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout: m.rebalance_timeout_ms,
                session_timeout: m.session_timeout_ms,
                subscription: m.metadata(protocol),
                assignment: m.assignment.clone(),
                ..Default::default()
            })
            .collect();
        self.pending_record = Some(GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation_id,
            protocol: self.protocol_name.clone(),
            leader: self.leader_id.clone(),
            members,
            ..Default::default()
        });
    }

    /// A group as its metadata record left it (Kafka's `ClassicGroup.fromRecord`): Stable with
    /// the recorded members, each of whom must heartbeat within its session timeout from `now`
    /// or is removed; Empty if the record has no members.
    pub(super) fn from_record(
        group_id: String,
        value: GroupMetadataValue,
        state_since: Option<Instant>,
        now: Instant,
    ) -> Group {
        let mut g = Group::new(group_id);
        g.generation_id = value.generation;
        g.protocol_type = Some(value.protocol_type).filter(|t| !t.is_empty());
        g.protocol_name = value.protocol.filter(|p| !p.is_empty());
        let protocol = g.protocol_name.clone().unwrap_or_default();
        for m in value.members {
            let protocols = vec![Protocol {
                name: protocol.clone(),
                metadata: m.subscription,
            }];
            g.add(Member {
                member_id: m.member_id,
                group_instance_id: m.group_instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                rebalance_timeout_ms: m.rebalance_timeout,
                session_timeout_ms: m.session_timeout,
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                protocols,
                assignment: m.assignment,
                awaiting_join: None,
                awaiting_sync: None,
                is_new: false,
                heartbeat_deadline: Some(after(now, m.session_timeout)),
                seq: 0,
            });
        }
        if g.members.is_empty() {
            g.state = GroupState::Empty;
        } else {
            g.state = GroupState::Stable;
            g.leader_id = value
                .leader
                .filter(|l| g.members.contains_key(l))
                .or_else(|| g.member_ids().into_iter().next());
        }
        g.subscribed_topics = g.compute_subscribed_topics();
        g.state_since = state_since;
        g
    }

    /// The group as a consumer group takes it over ([`super::GroupMembership::convert_out`]).
    pub(super) fn migrating(&self) -> MigratingGroup {
        MigratingGroup {
            generation: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            empty: self.state == GroupState::Empty,
            members: self
                .member_ids()
                .iter()
                .filter_map(|id| self.members.get(id))
                .map(|m| MigratingMember {
                    member_id: m.member_id.clone(),
                    instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    protocols: m
                        .protocols
                        .iter()
                        .map(|p| (p.name.clone(), p.metadata.clone()))
                        .collect(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// A group converted from a consumer group (Kafka's `ClassicGroup.fromConsumerGroup`):
    /// Stable at the consumer group's epoch with its members and their assignments, the protocol
    /// chosen by the members' vote; each member must heartbeat within its session from `now`.
    pub(super) fn from_migrating(group_id: String, from: MigratingGroup, now: Instant) -> Group {
        let mut g = Group::new(group_id);
        g.generation_id = from.generation;
        for m in from.members {
            g.add(Member {
                member_id: m.member_id,
                group_instance_id: m.instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                session_timeout_ms: m.session_timeout_ms,
                protocol_type: from.protocol_type.clone().unwrap_or_default(),
                protocols: m
                    .protocols
                    .into_iter()
                    .map(|(name, metadata)| Protocol { name, metadata })
                    .collect(),
                assignment: m.assignment,
                awaiting_join: None,
                awaiting_sync: None,
                is_new: false,
                heartbeat_deadline: Some(after(now, m.session_timeout_ms)),
                seq: 0,
            });
        }
        g.protocol_type = from.protocol_type;
        g.protocol_name = g.select_protocol();
        g.subscribed_topics = g.compute_subscribed_topics();
        g.state = if g.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        g.state_since = Some(now);
        g
    }

    pub(super) fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    /// Member ids in join order.
    pub(super) fn member_ids(&self) -> Vec<String> {
        let mut m: Vec<(&u64, &String)> = self
            .members
            .values()
            .map(|m| (&m.seq, &m.member_id))
            .collect();
        m.sort();
        m.into_iter().map(|(_, id)| id.clone()).collect()
    }

    pub(super) fn num_awaiting_join(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.awaiting_join.is_some())
            .count()
    }

    pub(super) fn has_all_members_joined(&self) -> bool {
        self.members.len() == self.num_awaiting_join() && self.pending_join_members.is_empty()
    }

    /// The largest rebalance timeout among the members.
    pub(super) fn rebalance_timeout_ms(&self) -> i32 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0)
            .max(0)
    }

    pub(super) fn supports_protocols(&self, protocol_type: &str, protocols: &[Protocol]) -> bool {
        if self.state == GroupState::Empty {
            !protocol_type.is_empty() && !protocols.is_empty()
        } else {
            self.protocol_type.as_deref() == Some(protocol_type)
                && protocols.iter().any(|p| {
                    self.supported_protocols.get(&p.name).copied().unwrap_or(0)
                        == self.members.len()
                })
        }
    }

    pub(super) fn count_protocols(&mut self, protocols: &[Protocol], up: bool) {
        for p in protocols {
            if up {
                *self.supported_protocols.entry(p.name.clone()).or_insert(0) += 1;
            } else if let Entry::Occupied(mut e) = self.supported_protocols.entry(p.name.clone()) {
                *e.get_mut() = e.get().saturating_sub(1);
                if *e.get() == 0 {
                    e.remove();
                }
            }
        }
    }

    /// Kafka's `ClassicGroup.add`.
    pub(super) fn add(&mut self, mut member: Member) {
        if let Some(instance) = &member.group_instance_id {
            self.static_members
                .insert(instance.clone(), member.member_id.clone());
        }
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader_id.is_none() {
            self.leader_id = Some(member.member_id.clone());
        }
        member.seq = self.next_seq;
        self.next_seq += 1;
        self.count_protocols(&member.protocols, true);
        self.pending_join_members.remove(&member.member_id);
        self.members.insert(member.member_id.clone(), member);
    }

    /// Kafka's `ClassicGroup.remove`; the member's waiters, if any, answer UNKNOWN_MEMBER_ID.
    pub(super) fn remove(&mut self, member_id: &str) {
        if let Some(mut m) = self.members.remove(member_id) {
            self.count_protocols(&m.protocols, false);
            if let Some(instance) = &m.group_instance_id {
                if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                    self.static_members.remove(instance);
                }
            }
            if let Some(tx) = m.awaiting_join.take() {
                let _ = tx.send(join_error("", ErrorCode::UnknownMemberId));
            }
            if let Some(tx) = m.awaiting_sync.take() {
                let _ = tx.send(sync_error(ErrorCode::UnknownMemberId));
            }
        }
        if self.is_leader(member_id) {
            self.leader_id = self.member_ids().into_iter().next();
        }
        self.pending_join_members.remove(member_id);
        self.pending_sync_members.remove(member_id);
    }

    /// Kafka's `updateMember`: new protocols and timeouts, and the JoinGroup now waiting.
    pub(super) fn update_member(
        &mut self,
        member_id: &str,
        protocols: Vec<Protocol>,
        rebalance_timeout_ms: i32,
        session_timeout_ms: i32,
        waiter: Option<oneshot::Sender<JoinGroupResponse>>,
    ) {
        let Some(m) = self.members.get_mut(member_id) else {
            return;
        };
        let old = std::mem::replace(&mut m.protocols, protocols);
        m.rebalance_timeout_ms = rebalance_timeout_ms;
        m.session_timeout_ms = session_timeout_ms;
        // A JoinGroup it sent before and still waits on is superseded: tell it to retry.
        if let Some(prev) = std::mem::replace(&mut m.awaiting_join, waiter) {
            let _ = prev.send(join_error(member_id, ErrorCode::RebalanceInProgress));
        }
        let new = m.protocols.clone();
        self.count_protocols(&old, false);
        self.count_protocols(&new, true);
    }

    /// Kafka's `selectProtocol`: each member votes for its most preferred protocol among those
    /// all members support; the most votes wins (ties: the first voted, in join order).
    pub(super) fn select_protocol(&self) -> Option<String> {
        let n = self.members.len();
        let candidates: HashSet<&str> = self
            .supported_protocols
            .iter()
            .filter(|(_, &c)| c == n)
            .map(|(name, _)| name.as_str())
            .collect();
        let mut votes: Vec<(String, usize)> = Vec::new();
        for id in self.member_ids() {
            let Some(m) = self.members.get(&id) else {
                continue;
            };
            if let Some(p) = m
                .protocols
                .iter()
                .find(|p| candidates.contains(p.name.as_str()))
            {
                match votes.iter_mut().find(|(name, _)| *name == p.name) {
                    Some((_, c)) => *c += 1,
                    None => votes.push((p.name.clone(), 1)),
                }
            }
        }
        let mut best: Option<(String, usize)> = None;
        for (name, c) in votes {
            if best.as_ref().is_none_or(|(_, b)| c > *b) {
                best = Some((name, c));
            }
        }
        best.map(|(name, _)| name).or_else(|| {
            // Not reachable while joins check support; fall back to the leader's preference.
            let leader = self.leader_id.as_ref().and_then(|l| self.members.get(l))?;
            leader.protocols.first().map(|p| p.name.clone())
        })
    }

    /// Kafka's `validateMember`.
    pub(super) fn validate_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ErrorCode> {
        if let Some(instance) = instance_id {
            match self.static_members.get(instance) {
                None => return Err(ErrorCode::UnknownMemberId),
                Some(existing) if existing != member_id => {
                    tracing::info!(group = %self.group_id, member_id, instance, existing = %existing, "static member fenced");
                    return Err(ErrorCode::FencedInstanceId);
                }
                Some(_) => {}
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(ErrorCode::UnknownMemberId);
        }
        Ok(())
    }

    /// Kafka's `maybeElectNewJoinedLeader`: keep the leader if it rejoined, else the first
    /// member that did; false if nobody rejoined.
    pub(super) fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let Some(leader) = self.leader_id.clone() else {
            return false;
        };
        if self
            .members
            .get(&leader)
            .is_some_and(|m| m.awaiting_join.is_some())
        {
            return true;
        }
        let joined = self.member_ids().into_iter().find(|id| {
            self.members
                .get(id)
                .is_some_and(|m| m.awaiting_join.is_some())
        });
        match joined {
            Some(id) => {
                tracing::info!(group = %self.group_id, old = %leader, new = %id, "leader did not rejoin; new leader elected");
                self.leader_id = Some(id);
                true
            }
            None => false,
        }
    }

    pub(super) fn init_next_generation(&mut self, now: Instant) {
        self.generation_id = self.generation_id.wrapping_add(1);
        if self.members.is_empty() {
            self.protocol_name = None;
            self.subscribed_topics = self.compute_subscribed_topics();
            self.transition_to(GroupState::Empty, now);
        } else {
            self.protocol_name = self.select_protocol();
            self.subscribed_topics = self.compute_subscribed_topics();
            self.transition_to(GroupState::CompletingRebalance, now);
        }
        self.pending_sync_members.clear();
    }

    /// The members with their metadata for the selected protocol, for the leader.
    pub(super) fn current_members(&self) -> Vec<JoinGroupResponseMember> {
        let protocol = self.protocol_name.as_deref();
        self.member_ids()
            .iter()
            .filter_map(|id| self.members.get(id))
            .map(|m| JoinGroupResponseMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m.metadata(protocol),
                ..Default::default()
            })
            .collect()
    }

    /// The successful JoinGroup answer of this generation for `member_id`.
    pub(super) fn join_response(&self, member_id: &str, with_members: bool) -> JoinGroupResponse {
        JoinGroupResponse {
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader_id.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if with_members {
                self.current_members()
            } else {
                Vec::new()
            },
            ..Default::default()
        }
    }

    pub(super) fn complete_join_waiter(
        &mut self,
        member_id: &str,
        resp: JoinGroupResponse,
    ) -> bool {
        match self
            .members
            .get_mut(member_id)
            .and_then(|m| m.awaiting_join.take())
        {
            Some(tx) => {
                let _ = tx.send(resp);
                true
            }
            None => false,
        }
    }

    pub(super) fn complete_sync_waiter(
        &mut self,
        member_id: &str,
        resp: SyncGroupResponse,
    ) -> bool {
        match self
            .members
            .get_mut(member_id)
            .and_then(|m| m.awaiting_sync.take())
        {
            Some(tx) => {
                let _ = tx.send(resp);
                true
            }
            None => false,
        }
    }

    pub(super) fn complete_all_waiters(&mut self, code: ErrorCode) {
        for m in self.members.values_mut() {
            if let Some(tx) = m.awaiting_join.take() {
                let _ = tx.send(join_error(&m.member_id, code));
            }
            if let Some(tx) = m.awaiting_sync.take() {
                let _ = tx.send(sync_error(code));
            }
        }
    }

    /// Kafka's `computeSubscribedTopics`: a `consumer` group's topics, read from the V0 prefix
    /// every ConsumerProtocolSubscription version starts with; `None` if not readable.
    pub(super) fn compute_subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) {
            return None;
        }
        if self.members.is_empty() {
            return Some(BTreeSet::new());
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for m in self.members.values() {
            let meta = m.protocols.iter().find(|p| p.name == protocol)?;
            topics.extend(parse_subscription_topics(&meta.metadata)?);
        }
        Some(topics)
    }
}

/// The topics of a ConsumerProtocolSubscription ([`consumer_protocol`] reads it as Kafka does);
/// `None` if it is not well formed.
pub(super) fn parse_subscription_topics(b: &[u8]) -> Option<Vec<String>> {
    consumer_protocol::Subscription::parse(&Bytes::copy_from_slice(b))
        .ok()
        .map(|s| s.topics)
}

/// The partitions of a ConsumerProtocolAssignment (user data is not read); `None` if it is not
/// well formed. For showing a `consumer` group's assignments (the console); the broker itself
/// never needs them.
pub fn parse_assignment(b: &[u8]) -> Option<Vec<(String, Vec<i32>)>> {
    consumer_protocol::parse_assignment(&Bytes::copy_from_slice(b)).ok()
}

#[cfg(test)]
mod assignment_tests {
    use super::parse_assignment;

    #[test]
    fn reads_assignments_and_refuses_short_ones() {
        let mut b = vec![
            0, 1, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3,
        ];
        b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]); // null user data: not read
        assert_eq!(
            parse_assignment(&b),
            Some(vec![("t".to_owned(), vec![0, 3])])
        );
        assert_eq!(parse_assignment(&b[..12]), None);
        assert_eq!(parse_assignment(&[0, 0, 0x7f, 0xff, 0xff, 0xff]), None);
        assert_eq!(parse_assignment(&[]), None);
    }
}

/// A random UUID (version 4) as Java's `UUID.randomUUID().toString()` prints it. Member ids
/// need to be unique, not secret: std's randomly seeded hasher, a counter and the time.
pub(crate) fn random_uuid() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut a = RandomState::new().build_hasher();
    a.write_u64(n);
    a.write_u128(nanos);
    let hi = a.finish();
    let mut b = RandomState::new().build_hasher();
    b.write_u64(hi);
    b.write_u64(n);
    let lo = b.finish();
    let v = (u128::from(hi) << 64) | u128::from(lo);
    let v = (v & !(0xF_u128 << 76)) | (0x4_u128 << 76); // version 4
    let v = (v & !(0x3_u128 << 62)) | (0x2_u128 << 62); // IETF variant
    let h = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
