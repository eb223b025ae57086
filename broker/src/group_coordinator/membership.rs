//! Classic group membership, in memory: Kafka's classic group protocol (JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup) and the group views of ListGroups, DescribeGroups and DeleteGroups.
//!
//! The facts are those of Kafka's `GroupMetadataManager` (its `classicGroup*` methods) and
//! `ClassicGroup` / `ClassicGroupMember` / `ClassicGroupState`:
//!
//! - states `Empty → PreparingRebalance → CompletingRebalance → Stable` (and back to
//!   PreparingRebalance on any change); an unknown group reads as `Dead`;
//! - a join phase ends when every known member has rejoined (and no member id handed out with
//!   MEMBER_ID_REQUIRED is still pending), or at the rebalance timeout (the largest of the
//!   members' `rebalance.timeout.ms`); dynamic members that did not rejoin are then removed. The
//!   first rebalance of an Empty group waits `group.initial.rebalance.delay.ms`, extended by the
//!   same delay while new members keep arriving, up to the rebalance timeout;
//! - each completed join bumps the generation and selects the protocol by a vote among the
//!   protocols every member supports; the leader (the first member, kept while it stays) gets
//!   everyone's metadata and sends the assignment in its SyncGroup, which completes the others';
//! - a member that neither heartbeats nor waits in a join or sync is removed after its session
//!   timeout; members that do not SyncGroup within the rebalance timeout are removed;
//! - static members (`group.instance.id`, KIP-345) keep their place across restarts: a rejoin
//!   under a new member id replaces the old id (which is fenced, FENCED_INSTANCE_ID), and in
//!   Stable with unchanged protocols it does not rebalance.
//!
//! Not here: committed offsets and the `__consumer_offsets` records (the coordinator in
//! `mod.rs`), the coordinator's partition ownership (NOT_COORDINATOR), and the new consumer
//! protocol (KIP-848). Whenever a group becomes Stable with its assignment, or Empty, it takes
//! its metadata record (Kafka's `GroupMetadataValue`) for the coordinator to write
//! ([`GroupMembership::take_records`]); a loading coordinator rebuilds groups from those
//! records ([`GroupMembership::load_group`]). The broker stays neutral about protocol contents (eager or
//! cooperative, consumer or connect): metadata and assignments are opaque bytes, except that
//! the subscribed topics of a `consumer` group are read for OffsetDelete, as Kafka does.
//!
//! Files: this one is the face the request handlers call ([`GroupMembership`]);
//! `membership/group.rs` is Kafka's `ClassicGroup` (a group's members and bookkeeping);
//! `membership/rebalance.rs` is the protocol over it (`GroupMetadataManager`'s classic half).
//!
//! Time: nothing here sleeps. Every deadline (session, new-member join, pending member,
//! rebalance, initial delay, pending sync) is an `Instant` checked by [`GroupMembership::tick`],
//! which the server calls every ~100 ms. A waiting JoinGroup or SyncGroup is a
//! `tokio::sync::oneshot` completed under the lock and awaited after it is released; each one
//! is completed by the end of its phase, by a timeout, or with an error when its member goes.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use rafka_protocol::messages::describe_groups_response::DescribedGroup;
use rafka_protocol::messages::leave_group_request::MemberIdentity;
use rafka_protocol::messages::leave_group_response::MemberResponse;
use rafka_protocol::messages::list_groups_response::ListedGroup;
use rafka_protocol::messages::{
    GroupMetadataValue, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse,
    LeaveGroupRequest, LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use rafka_protocol::ErrorCode;

mod group;
mod group_state;
mod membership_config;
mod migrating_group;
mod rebalance;
mod reply;
#[cfg(test)]
mod tests;

pub use group::parse_assignment;
pub(crate) use group::random_uuid;
use group::{Group, JoinArgs};
pub use group_state::GroupState;
pub use membership_config::{MembershipConfig, NEW_MEMBER_JOIN_TIMEOUT_MS};
pub use migrating_group::{MigratingGroup, MigratingMember};
pub use reply::Pending;
use reply::{join_error, sync_error, Reply};

/// The protocol type of Kafka's consumers, whose subscriptions OffsetDelete respects.
const CONSUMER_PROTOCOL_TYPE: &str = super::consumer_protocol::PROTOCOL_TYPE;

/// What OffsetDelete may remove from a group's offsets (Kafka's `validateOffsetDelete` and
/// `isSubscribedToTopic` for classic groups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscriptions {
    /// The group has no members: any topic's offsets may go.
    Nothing,
    /// The members of a `consumer` group subscribe to these topics (GROUP_SUBSCRIBED_TO_TOPIC).
    Topics(BTreeSet<String>),
    /// The subscriptions could not be read: every topic counts as subscribed.
    Everything,
}

impl Subscriptions {
    /// Whether offsets of `topic` must be kept (GROUP_SUBSCRIBED_TO_TOPIC).
    pub fn contains(&self, topic: &str) -> bool {
        match self {
            Subscriptions::Nothing => false,
            Subscriptions::Topics(t) => t.contains(topic),
            Subscriptions::Everything => true,
        }
    }
}

/// The groups this broker coordinates, with their members and rebalances. Shared by the
/// request handlers (as `Arc<GroupMembership>`) and the ticking task.
pub struct GroupMembership {
    config: MembershipConfig,
    /// Where request handlers read the time for the deadlines they set; `tick` gets its own.
    clock: Box<dyn Fn() -> Instant + Send + Sync>,
    /// Every group. One lock for all: each operation is a short in-memory update (no I/O),
    /// it is never held across `.await` (waiters are completed under it, awaited after it), and
    /// no other lock is taken while it is held.
    groups: Mutex<HashMap<String, Group>>,
    /// An instant of `clock` and the wall-clock milliseconds it stands for: group metadata
    /// records carry wall time (`currentStateTimestamp`), deadlines are instants.
    epoch: (Instant, i64),
    /// Some group has a metadata record to be written ([`GroupMembership::take_records`]).
    records_pending: AtomicBool,
}

impl std::fmt::Debug for GroupMembership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupMembership")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl GroupMembership {
    pub fn new(config: MembershipConfig) -> Arc<GroupMembership> {
        GroupMembership::with_clock(config, Instant::now)
    }

    /// As [`GroupMembership::new`], with the clock that request handlers read (tests drive a
    /// manual one together with [`GroupMembership::tick`]).
    pub fn with_clock(
        config: MembershipConfig,
        clock: impl Fn() -> Instant + Send + Sync + 'static,
    ) -> Arc<GroupMembership> {
        let epoch = (clock(), crate::now_ms());
        Arc::new(GroupMembership {
            config,
            clock: Box::new(clock),
            groups: Mutex::new(HashMap::new()),
            epoch,
            records_pending: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Group>> {
        // A panic under the lock leaves no half-made change that matters more than stopping
        // every group would: keep serving.
        self.groups.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// JoinGroup. Completes when the join phase ends (every known member rejoined, or the
    /// rebalance timeout / initial delay passed — driven by `tick`), or at once for errors and
    /// MEMBER_ID_REQUIRED (KIP-394, v4+: a new member id `<client_id>-<uuid>` is returned with
    /// that error and remembered as pending for one session timeout).
    pub async fn join_group(
        &self,
        version: i16,
        req: JoinGroupRequest,
        client_id: &str,
        client_host: &str,
    ) -> JoinGroupResponse {
        let member_id = req.member_id.clone();
        let pending = self.join_begin(version, req, client_id, client_host);
        self.join_wait(version, &member_id, pending).await
    }

    /// JoinGroup's synchronous part ([`Self::join_group`]): the group changes now; the answer
    /// may wait ([`Self::join_wait`]). The coordinator calls it under its own lock, so that no
    /// conversion between a classic and a consumer group comes between its routing and the join.
    pub fn join_begin(
        &self,
        version: i16,
        req: JoinGroupRequest,
        client_id: &str,
        client_host: &str,
    ) -> Pending<JoinGroupResponse> {
        Pending(self.join_locked(version, req, client_id, client_host))
    }

    /// The answer of a join begun with [`Self::join_begin`].
    pub async fn join_wait(
        &self,
        version: i16,
        member_id: &str,
        pending: Pending<JoinGroupResponse>,
    ) -> JoinGroupResponse {
        let resp = match pending.0 {
            Reply::Now(r) => r,
            // Every waiter is completed before its sender goes, unless the groups themselves
            // are dropped (shutdown): the client then finds its coordinator again.
            Reply::Wait(rx) => rx
                .await
                .unwrap_or_else(|_| join_error(member_id, ErrorCode::CoordinatorNotAvailable)),
        };
        finish_join_response(version, resp)
    }

    /// JoinGroup's checks of the request itself, whichever kind of group it joins (Kafka's
    /// `GroupCoordinatorService.joinGroup`): INVALID_GROUP_ID, INVALID_SESSION_TIMEOUT
    /// (outside `group.min/max.session.timeout.ms`).
    pub fn check_join(&self, req: &JoinGroupRequest) -> Result<(), ErrorCode> {
        if req.group_id.is_empty() {
            return Err(ErrorCode::InvalidGroupId);
        }
        if req.session_timeout_ms < self.config.min_session_timeout_ms
            || req.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return Err(ErrorCode::InvalidSessionTimeout);
        }
        Ok(())
    }

    fn join_locked(
        &self,
        version: i16,
        req: JoinGroupRequest,
        client_id: &str,
        client_host: &str,
    ) -> Reply<JoinGroupResponse> {
        if let Err(code) = self.check_join(&req) {
            return Reply::Now(join_error(&req.member_id, code));
        }
        let join = JoinArgs::new(version, req, client_id, client_host);
        let now = (self.clock)();
        let mut groups = self.lock();
        // A group is created by a join without a member id; a member id for an unknown group
        // is one the coordinator has forgotten.
        let group = match groups.entry(join.group_id.clone()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                if !join.member_id.is_empty() {
                    return Reply::Now(join_error(&join.member_id, ErrorCode::UnknownMemberId));
                }
                e.insert(Group::new(join.group_id.clone()))
            }
        };
        let reply = group.join(&self.config, now, join);
        self.note_record(group);
        reply
    }

    /// SyncGroup. Completes when the leader's assignment arrives (at once for the leader, for
    /// errors, and in Stable).
    pub async fn sync_group(&self, version: i16, req: SyncGroupRequest) -> SyncGroupResponse {
        let _ = version; // no version-dependent behaviour: v5's protocol fields are ignorable.
        Self::sync_wait(self.sync_begin(req)).await
    }

    /// SyncGroup's synchronous part (as [`Self::join_begin`]).
    pub fn sync_begin(&self, req: SyncGroupRequest) -> Pending<SyncGroupResponse> {
        Pending(if req.group_id.is_empty() {
            Reply::Now(sync_error(ErrorCode::InvalidGroupId))
        } else {
            let now = (self.clock)();
            let mut groups = self.lock();
            match groups.get_mut(&req.group_id) {
                None => Reply::Now(sync_error(ErrorCode::UnknownMemberId)),
                Some(g) => {
                    let reply = g.sync(now, req);
                    self.note_record(g);
                    reply
                }
            }
        })
    }

    /// The answer of a sync begun with [`Self::sync_begin`].
    pub async fn sync_wait(pending: Pending<SyncGroupResponse>) -> SyncGroupResponse {
        match pending.0 {
            Reply::Now(r) => r,
            Reply::Wait(rx) => rx
                .await
                .unwrap_or_else(|_| sync_error(ErrorCode::CoordinatorNotAvailable)),
        }
    }

    /// Heartbeat: a member's liveness, and the signal to rejoin (REBALANCE_IN_PROGRESS).
    pub fn heartbeat(&self, version: i16, req: HeartbeatRequest) -> HeartbeatResponse {
        let _ = version;
        let code = if req.group_id.is_empty() {
            ErrorCode::InvalidGroupId
        } else {
            let now = (self.clock)();
            match self.lock().get_mut(&req.group_id) {
                None => ErrorCode::UnknownMemberId,
                Some(g) => g.heartbeat(
                    now,
                    &req.member_id,
                    req.group_instance_id.as_deref(),
                    req.generation_id,
                ),
            }
        };
        HeartbeatResponse {
            error_code: code.code(),
            ..Default::default()
        }
    }

    /// LeaveGroup: v0-2 one member (its error at the top), v3+ a batch with an error per
    /// member (a static member may be removed by its instance id alone, for admin tools).
    pub fn leave_group(&self, version: i16, req: LeaveGroupRequest) -> LeaveGroupResponse {
        let top = |code: ErrorCode| LeaveGroupResponse {
            error_code: code.code(),
            ..Default::default()
        };
        if req.group_id.is_empty() {
            return top(ErrorCode::InvalidGroupId);
        }
        let leaving = leaving_members(version, &req);
        let now = (self.clock)();
        let members = {
            let mut groups = self.lock();
            match groups.get_mut(&req.group_id) {
                None => return top(ErrorCode::UnknownMemberId),
                Some(g) => {
                    let members = g.leave(&self.config, now, leaving);
                    self.note_record(g);
                    members
                }
            }
        };
        leave_response(version, members)
    }

    /// OffsetCommit's membership check (Kafka's `validateOffsetCommit` for classic groups, API
    /// versions ≤ 8): a simple commit (generation < 0, no member id, no instance id) is
    /// accepted on a group without members or an unknown one; an unknown group with a
    /// generation gets ILLEGAL_GENERATION; otherwise the member must be current
    /// (UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, ILLEGAL_GENERATION) and the group not awaiting
    /// its assignment (REBALANCE_IN_PROGRESS). A valid member's commit in Stable or
    /// PreparingRebalance counts as a heartbeat.
    pub fn check_commit(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ErrorCode> {
        self.check_commit_as(group_id, generation, member_id, instance_id, false)
    }

    /// TxnOffsetCommit's membership check: as [`Self::check_commit`], but a commit without any
    /// member fields (generation -1, no member id, no instance id: versions before 3) is accepted
    /// whatever the group's state, and none is refused for a rebalance in progress (Kafka's
    /// `validateOffsetCommit` with `isTransactional`).
    pub fn check_txn_commit(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ErrorCode> {
        self.check_commit_as(group_id, generation, member_id, instance_id, true)
    }

    fn check_commit_as(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        transactional: bool,
    ) -> Result<(), ErrorCode> {
        if group_id.is_empty() {
            return Err(ErrorCode::InvalidGroupId);
        }
        let now = (self.clock)();
        let mut groups = self.lock();
        match groups.get_mut(group_id) {
            // Kafka creates a "simple" Empty group here; the offsets are the coordinator's and
            // list as such, so nothing is created.
            None if generation < 0 => Ok(()),
            None => Err(ErrorCode::IllegalGeneration),
            Some(g) => g.check_commit(now, generation, member_id, instance_id, transactional),
        }
    }

    /// ListGroups: every group whose state is in `states_filter` (case-insensitive; all if
    /// empty), by group id.
    pub fn list_groups(&self, states_filter: &[String]) -> Vec<ListedGroup> {
        let filter: HashSet<String> = states_filter
            .iter()
            .map(|s| s.trim().to_lowercase())
            .collect();
        let groups = self.lock();
        let mut out: Vec<ListedGroup> = groups
            .values()
            .filter(|g| filter.is_empty() || filter.contains(&g.state.as_str().to_lowercase()))
            .map(|g| ListedGroup {
                group_id: g.group_id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                group_state: g.state.as_str().to_string(),
                group_type: "classic".to_string(),
                ..Default::default()
            })
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    /// DescribeGroups for one group. An unknown group is `Dead` without error (as Kafka); an
    /// empty group id is INVALID_GROUP_ID. Members' metadata (for the selected protocol) only
    /// in Stable; their assignments always.
    pub fn describe_group(&self, group_id: &str) -> DescribedGroup {
        if group_id.is_empty() {
            return DescribedGroup {
                error_code: ErrorCode::InvalidGroupId.code(),
                group_state: "Dead".to_string(),
                ..Default::default()
            };
        }
        let groups = self.lock();
        match groups.get(group_id) {
            None => DescribedGroup {
                group_id: group_id.to_string(),
                group_state: "Dead".to_string(),
                ..Default::default()
            },
            Some(g) => g.describe(),
        }
    }

    /// DeleteGroups' membership part: NON_EMPTY_GROUP while the group has members; an Empty
    /// group is removed (with any member ids still pending); GROUP_ID_NOT_FOUND if unknown.
    pub fn delete_group(&self, group_id: &str) -> Result<(), ErrorCode> {
        if group_id.is_empty() {
            return Err(ErrorCode::InvalidGroupId);
        }
        let mut groups = self.lock();
        // The group's timers first: a session that ended before this request is over even if
        // the timer task has not run yet (it wakes at the deadline, a few ms can pass), so a
        // DeleteGroups right after the last member's deadline finds the group empty.
        if let Some(g) = groups.get_mut(group_id) {
            g.tick(&self.config, (self.clock)());
            self.note_record(g);
        }
        match groups.get(group_id) {
            None => Err(ErrorCode::GroupIdNotFound),
            Some(g) if g.state != GroupState::Empty => Err(ErrorCode::NonEmptyGroup),
            Some(_) => {
                groups.remove(group_id);
                Ok(())
            }
        }
    }

    /// Whether the group is known here in state Empty (`Some(true)`), with members
    /// (`Some(false)`), or unknown (`None`).
    pub fn is_empty_group(&self, group_id: &str) -> Option<bool> {
        self.lock()
            .get(group_id)
            .map(|g| g.state == GroupState::Empty)
    }

    /// KIP-848's online upgrade, the classic side: if `group_id` is a classic group, `convert`
    /// sees it as it is; if that succeeds the group is gone from here (its waiting JoinGroups
    /// and SyncGroups answer REBALANCE_IN_PROGRESS, so their members rejoin the consumer group
    /// it has become, as Kafka's `convertToConsumerGroup` tells them). `None`: no classic group.
    /// `convert` runs under this lock and must take no other.
    pub fn convert_out<T, E>(
        &self,
        group_id: &str,
        convert: impl FnOnce(&MigratingGroup) -> Result<T, E>,
    ) -> Option<Result<T, E>> {
        let mut groups = self.lock();
        let g = groups.get(group_id)?;
        let view = g.migrating();
        let r = convert(&view);
        if r.is_ok() {
            if let Some(mut g) = groups.remove(group_id) {
                g.complete_all_waiters(ErrorCode::RebalanceInProgress);
            }
        }
        Some(r)
    }

    /// KIP-848's online downgrade, the classic side: `group` (members with their assignments)
    /// becomes a classic group here, Stable at its generation, and at once prepares a rebalance
    /// so that its members rejoin (Kafka's `convertToClassicGroup`). Returns its metadata record
    /// as of the conversion, to be written with the consumer group's tombstones.
    pub fn install_converted(&self, group_id: &str, group: MigratingGroup) -> GroupMetadataValue {
        let now = (self.clock)();
        let mut g = Group::from_migrating(group_id.to_owned(), group, now);
        g.store_record();
        let mut value = g.pending_record.take().unwrap_or_default();
        value.current_state_timestamp = self.epoch_ms(now);
        g.prepare_rebalance(
            &self.config,
            now,
            "downgrade of the group from consumer to classic",
        );
        self.note_record(&g);
        self.lock().insert(group_id.to_owned(), g);
        value
    }

    /// `group.max.size`.
    pub fn max_size(&self) -> i32 {
        self.config.max_size
    }

    /// OffsetDelete's check (Kafka's `validateOffsetDelete`): GROUP_ID_NOT_FOUND if unknown;
    /// NON_EMPTY_GROUP for an active group that is not a `consumer` group; otherwise which
    /// topics' offsets must stay (GROUP_SUBSCRIBED_TO_TOPIC).
    pub fn offset_delete_check(&self, group_id: &str) -> Result<Subscriptions, ErrorCode> {
        let groups = self.lock();
        let g = groups.get(group_id).ok_or(ErrorCode::GroupIdNotFound)?;
        if g.state == GroupState::Empty {
            return Ok(Subscriptions::Nothing);
        }
        if g.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) {
            return Err(ErrorCode::NonEmptyGroup);
        }
        Ok(match &g.subscribed_topics {
            Some(t) => Subscriptions::Topics(t.clone()),
            None => Subscriptions::Everything,
        })
    }

    /// The coordinator gave up these groups (its `__consumer_offsets` partition moved): they
    /// are forgotten and every waiting JoinGroup and SyncGroup answers NOT_COORDINATOR, so
    /// their members find the new coordinator (Kafka's `onUnloaded`).
    pub fn unload(&self, mut belongs: impl FnMut(&str) -> bool) {
        let mut groups = self.lock();
        let gone: Vec<String> = groups.keys().filter(|id| belongs(id)).cloned().collect();
        for id in gone {
            if let Some(mut g) = groups.remove(&id) {
                g.complete_all_waiters(ErrorCode::NotCoordinator);
            }
        }
    }

    /// Drives every timer up to `now`: members' session expiry (removed, rebalance), pending
    /// member ids' expiry, the initial rebalance delay and the rebalance timeout (members that
    /// did not rejoin are removed and the join completes), and the pending-sync timeout.
    /// Each deadline passed fires once per call; what it reschedules fires on a later call.
    pub fn tick(&self, now: Instant) {
        let mut groups = self.lock();
        for g in groups.values_mut() {
            g.tick(&self.config, now);
            self.note_record(g);
        }
    }

    /// The earliest deadline of any group's timers (sessions, join and sync timeouts), so the
    /// coordinator's timer task wakes at it rather than at its next periodic tick.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.lock().values().filter_map(Group::next_deadline).min()
    }

    fn note_record(&self, g: &Group) {
        if g.pending_record.is_some() {
            self.records_pending.store(true, Ordering::Release);
        }
    }

    /// Whether some group has a metadata record to be written.
    pub fn has_pending_records(&self) -> bool {
        self.records_pending.load(Ordering::Acquire)
    }

    /// Takes the groups' metadata records to be written (Kafka writes one whenever a group
    /// becomes Stable with its assignment or Empty), with their state timestamps in wall time.
    pub fn take_records(&self) -> Vec<(String, GroupMetadataValue)> {
        self.records_pending.store(false, Ordering::Release);
        let mut groups = self.lock();
        let mut out = Vec::new();
        for g in groups.values_mut() {
            if let Some(mut value) = g.pending_record.take() {
                value.current_state_timestamp = g.state_since.map_or(-1, |t| self.epoch_ms(t));
                out.push((g.group_id.clone(), value));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Rebuilds a group from its latest metadata record (the coordinator's load): its members
    /// keep their ids and generation, and are removed unless they heartbeat within their
    /// session timeout (Kafka's `ClassicGroup.fromRecord` and the rescheduled heartbeats).
    pub fn load_group(&self, group_id: &str, value: GroupMetadataValue) {
        let now = (self.clock)();
        let since = (value.current_state_timestamp >= 0)
            .then(|| self.instant_at(value.current_state_timestamp));
        let g = Group::from_record(group_id.to_owned(), value, since, now);
        tracing::debug!(
            group = group_id,
            generation = g.generation_id,
            members = g.members.len(),
            state = g.state.as_str(),
            "group loaded"
        );
        self.lock().insert(group_id.to_owned(), g);
    }

    /// How the committed offsets of `group_id` expire (Kafka's `offsetExpirationCondition` of
    /// classic groups, KIP-211).
    pub fn offset_expiry(&self, group_id: &str) -> OffsetExpiry {
        let groups = self.lock();
        let Some(g) = groups.get(group_id) else {
            // Committed without group management (simple consumers, admin tools).
            return OffsetExpiry::ByCommitTimestamp;
        };
        match g.state {
            GroupState::Empty if g.protocol_type.is_none() => OffsetExpiry::ByCommitTimestamp,
            GroupState::Empty => OffsetExpiry::EmptySince(g.state_since.map(|t| self.epoch_ms(t))),
            GroupState::Stable if g.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE) => {
                match &g.subscribed_topics {
                    Some(t) => OffsetExpiry::Unsubscribed(t.clone()),
                    None => OffsetExpiry::Never,
                }
            }
            _ => OffsetExpiry::Never,
        }
    }

    /// The groups in state Empty (with no member ids pending) among those `belongs` selects:
    /// a group without offsets in this state is deleted by the offset expiry, as Kafka does.
    pub fn empty_groups(&self, belongs: impl Fn(&str) -> bool) -> Vec<String> {
        let groups = self.lock();
        let mut v: Vec<String> = groups
            .values()
            .filter(|g| {
                g.state == GroupState::Empty
                    && g.pending_join_members.is_empty()
                    && belongs(&g.group_id)
            })
            .map(|g| g.group_id.clone())
            .collect();
        v.sort();
        v
    }

    /// Removes `group_id` if it is still Empty with no member ids pending (it goes Dead).
    pub fn remove_if_empty(&self, group_id: &str) -> bool {
        let mut groups = self.lock();
        let empty = groups
            .get(group_id)
            .is_some_and(|g| g.state == GroupState::Empty && g.pending_join_members.is_empty());
        if empty {
            groups.remove(group_id);
        }
        empty
    }

    /// The wall-clock milliseconds of an instant of this membership's clock.
    pub fn epoch_ms(&self, t: Instant) -> i64 {
        let (base, base_ms) = self.epoch;
        if t >= base {
            base_ms.saturating_add(i64::try_from((t - base).as_millis()).unwrap_or(i64::MAX))
        } else {
            base_ms.saturating_sub(i64::try_from((base - t).as_millis()).unwrap_or(i64::MAX))
        }
    }

    /// The instant of this membership's clock at wall-clock `ms` (the clock's start if earlier
    /// than an instant can express).
    fn instant_at(&self, ms: i64) -> Instant {
        let (base, base_ms) = self.epoch;
        let d = |x: i64| std::time::Duration::from_millis(u64::try_from(x).unwrap_or(0));
        if ms >= base_ms {
            base + d(ms - base_ms)
        } else {
            base.checked_sub(d(base_ms - ms)).unwrap_or(base)
        }
    }

    /// The time the clock reads now, as wall-clock milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.epoch_ms((self.clock)())
    }
}

/// How a group's committed offsets expire (`offsets.retention.minutes` after the base time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetExpiry {
    /// Each offset from its own commit timestamp (no group management).
    ByCommitTimestamp,
    /// Every offset from when the group became Empty (its commit timestamp if not known).
    EmptySince(Option<i64>),
    /// A Stable consumer group: offsets of topics outside these, by commit timestamp.
    Unsubscribed(BTreeSet<String>),
    /// Not while the group is active.
    Never,
}

/// The members a LeaveGroup names: v0-2 one (its member id), v3+ a batch.
pub fn leaving_members(version: i16, req: &LeaveGroupRequest) -> Vec<MemberIdentity> {
    if version < 3 {
        vec![MemberIdentity {
            member_id: req.member_id.clone(),
            ..Default::default()
        }]
    } else {
        req.members.clone()
    }
}

/// LeaveGroup's answer: v0-2 the (only) member's error at the top, as Kafka's
/// LeaveGroupResponse does; v3+ an error per member.
pub fn leave_response(version: i16, members: Vec<MemberResponse>) -> LeaveGroupResponse {
    if version < 3 {
        let code = members
            .iter()
            .map(|m| m.error_code)
            .find(|&c| c != 0)
            .unwrap_or(0);
        LeaveGroupResponse {
            error_code: code,
            ..Default::default()
        }
    } else {
        LeaveGroupResponse {
            members,
            ..Default::default()
        }
    }
}

/// Kafka's JoinGroupResponse constructor: the protocol name is "" before v7 (not nullable
/// there) and null rather than "" from v7; SkipAssignment exists from v9.
pub fn finish_join_response(version: i16, mut r: JoinGroupResponse) -> JoinGroupResponse {
    if version < 7 {
        if r.protocol_name.is_none() {
            r.protocol_name = Some(String::new());
        }
    } else if r.protocol_name.as_deref() == Some("") {
        r.protocol_name = None;
    }
    if version < 9 {
        r.skip_assignment = false;
    }
    r
}
