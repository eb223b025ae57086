//! One consumer group (Kafka's `ConsumerGroup` and `ConsumerGroupMember`) and the member
//! reconciliation of KIP-848 (Kafka's `CurrentAssignmentBuilder`).
//!
//! Epochs: the **group epoch** is bumped by every change that needs a new assignment (a member
//! joins, leaves or changes its subscription; a subscribed topic gains partitions or goes). The
//! **assignment epoch** is the group epoch the target assignment was computed at. Each member
//! has a **member epoch**: it reaches the assignment epoch once the member holds its target,
//! through these states:
//!
//! - `Stable`: it holds its target (or has not been asked to move yet);
//! - `UnrevokedPartitions`: it must give up `pending_revocation` first; its epoch stays until it
//!   acknowledges (a heartbeat whose owned partitions no longer include them) — only then are
//!   those partitions free for their new owner;
//! - `UnreleasedPartitions`: it has the new epoch and what was free, and waits for partitions
//!   other members still hold (owned or pending revocation).
//!
//! So a partition is never given to two members at once.

use super::assignor::Assignment;
pub use super::records::MemberState;
use super::records::{ConsumerRecord, CurrentAssignment, MemberMetadata};
use rafka_protocol::Uuid;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

/// The epoch a member sends to leave.
pub const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;
/// The epoch a static member sends to leave for now, keeping its place for its session.
pub const LEAVE_GROUP_STATIC_MEMBER_EPOCH: i32 = -2;

/// A member of a consumer group.
#[derive(Debug, Clone)]
pub struct Member {
    pub member_id: String,
    pub metadata: MemberMetadata,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
    /// When the member is removed unless it heartbeats (`group.consumer.session.timeout.ms`).
    pub session_deadline: Instant,
    /// When a member that must revoke partitions is removed unless it has (its
    /// `RebalanceTimeoutMs`).
    pub revocation_deadline: Option<Instant>,
    /// A classic member told to rejoin (Heartbeat or SyncGroup answered REBALANCE_IN_PROGRESS)
    /// is removed unless its JoinGroup comes by then (Kafka's consumer group join timeout).
    pub rejoin_deadline: Option<Instant>,
    /// A classic member whose JoinGroup was answered is removed unless its SyncGroup comes by
    /// then (Kafka's consumer group sync timeout).
    pub sync_deadline: Option<Instant>,
}

impl Member {
    pub fn new(member_id: String, now: Instant) -> Member {
        Member {
            member_id,
            metadata: MemberMetadata {
                rebalance_timeout_ms: -1,
                ..Default::default()
            },
            member_epoch: 0,
            previous_member_epoch: -1,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            session_deadline: now,
            revocation_deadline: None,
            rejoin_deadline: None,
            sync_deadline: None,
        }
    }

    /// Whether the member speaks the classic protocol (JoinGroup, SyncGroup, Heartbeat).
    pub fn is_classic(&self) -> bool {
        self.metadata.classic.is_some()
    }

    /// The deadlines that remove the member when passed.
    pub fn deadlines(&self) -> impl Iterator<Item = Instant> {
        std::iter::once(self.session_deadline)
            .chain(self.revocation_deadline)
            .chain(self.rejoin_deadline)
            .chain(self.sync_deadline)
    }

    pub fn current_record(&self) -> ConsumerRecord {
        ConsumerRecord::CurrentAssignment(
            self.member_id.clone(),
            Some(CurrentAssignment {
                member_epoch: self.member_epoch,
                previous_member_epoch: self.previous_member_epoch,
                state: self.state,
                assigned: self.assigned.clone(),
                pending_revocation: self.pending_revocation.clone(),
            }),
        )
    }

    /// Whether this member left with epoch −2 and its instance id may come back.
    pub fn is_static_left(&self) -> bool {
        self.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH
    }

    pub fn partition_count(&self) -> usize {
        self.assigned.values().map(BTreeSet::len).sum()
    }
}

/// The member's next assignment state (Kafka's `CurrentAssignmentBuilder`), given the target
/// at `target_epoch`, the partitions the member reported owning in this heartbeat (None: not
/// reported) and which partitions are free (owned by no other member). Pure.
pub fn reconcile(
    m: &Member,
    target_epoch: i32,
    target: &Assignment,
    owned: Option<&Assignment>,
    is_free: &dyn Fn(&Uuid, i32) -> bool,
) -> Option<(i32, MemberState, Assignment, Assignment)> {
    match m.state {
        MemberState::UnrevokedPartitions => {
            let acked = owned.is_some_and(|o| !intersects(o, &m.pending_revocation));
            if !acked {
                return None;
            }
            Some(next(
                m.member_epoch,
                &m.assigned,
                target_epoch,
                target,
                is_free,
            ))
        }
        MemberState::UnreleasedPartitions | MemberState::Stable | MemberState::Unknown => {
            if m.state == MemberState::Stable && m.member_epoch == target_epoch {
                return None;
            }
            let n = next(m.member_epoch, &m.assigned, target_epoch, target, is_free);
            let same = n.0 == m.member_epoch
                && n.1 == m.state
                && n.2 == m.assigned
                && n.3 == m.pending_revocation;
            (!same).then_some(n)
        }
    }
}

fn next(
    epoch: i32,
    assigned: &Assignment,
    target_epoch: i32,
    target: &Assignment,
    is_free: &dyn Fn(&Uuid, i32) -> bool,
) -> (i32, MemberState, Assignment, Assignment) {
    let mut keep = Assignment::new();
    let mut revoke = Assignment::new();
    for (t, parts) in assigned {
        for p in parts {
            let in_target = target.get(t).is_some_and(|s| s.contains(p));
            let side = if in_target { &mut keep } else { &mut revoke };
            side.entry(*t).or_default().insert(*p);
        }
    }
    if !revoke.is_empty() {
        return (epoch, MemberState::UnrevokedPartitions, keep, revoke);
    }
    let mut unreleased = false;
    let mut now = keep;
    for (t, parts) in target {
        for p in parts {
            if now.get(t).is_some_and(|s| s.contains(p)) {
                continue;
            }
            if is_free(t, *p) {
                now.entry(*t).or_default().insert(*p);
            } else {
                unreleased = true;
            }
        }
    }
    let state = if unreleased {
        MemberState::UnreleasedPartitions
    } else {
        MemberState::Stable
    };
    (target_epoch, state, now, Assignment::new())
}

pub fn intersects(a: &Assignment, b: &Assignment) -> bool {
    a.iter()
        .any(|(t, p)| b.get(t).is_some_and(|q| !p.is_disjoint(q)))
}

/// Kafka's `ConsumerGroup.ConsumerGroupState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    Empty,
    Assigning,
    Reconciling,
    Stable,
}

impl ConsumerGroupState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

/// A consumer group.
#[derive(Debug, Clone, Default)]
pub struct ConsumerGroup {
    pub group_id: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, Member>,
    /// The target assignment by member.
    pub target: BTreeMap<String, Assignment>,
    /// The subscribed topics as last seen: id → (name, partitions) (record 4).
    pub subscription_metadata: BTreeMap<Uuid, (String, i32)>,
    /// Instance id → member id, for static members.
    pub static_members: HashMap<String, String>,
    /// The image offset `subscription_metadata` was last compared with.
    pub metadata_checked_at: i64,
    /// The assignor that computed the target assignment last.
    pub assignor_name: String,
    /// Wall-clock ms when the group became empty (offset expiry).
    pub empty_since_ms: Option<i64>,
    /// The members' regular expressions that have been resolved (matched against the topics):
    /// only these select topics (Kafka's record 16, kept in memory; rebuilt from the members'
    /// records on load).
    pub resolved_regexes: BTreeSet<String>,
    /// Regular expressions a heartbeat introduced, resolved from the group's next heartbeat on
    /// (Kafka resolves a new one off the heartbeat path and then bumps the group epoch).
    pub pending_regexes: BTreeSet<String>,
}

impl ConsumerGroup {
    pub fn new(group_id: String) -> ConsumerGroup {
        ConsumerGroup {
            group_id,
            metadata_checked_at: -1,
            ..Default::default()
        }
    }

    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| m.state != MemberState::Stable || m.member_epoch != self.assignment_epoch)
            && self.members.values().any(|m| !m.is_static_left())
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// Kafka's `supportsClassicProtocols`: a classic member may join if its protocol type is
    /// `consumer` and, when the group has classic members, one of its protocols is supported by
    /// all of them.
    pub fn supports_classic_protocols<'a>(
        &self,
        protocol_type: &str,
        mut names: impl Iterator<Item = &'a str>,
    ) -> bool {
        if protocol_type != crate::group_coordinator::consumer_protocol::PROTOCOL_TYPE {
            return false;
        }
        let classic: Vec<&Member> = self.members.values().filter(|m| m.is_classic()).collect();
        names.any(|name| {
            classic.iter().all(|m| {
                m.metadata
                    .classic
                    .as_ref()
                    .is_some_and(|c| c.protocols.iter().any(|(n, _)| n == name))
            })
        })
    }

    /// Kafka's `allMembersUseClassicProtocolExcept`.
    pub fn all_classic_except(&self, member_id: &str) -> bool {
        self.members.get(member_id).is_some_and(|m| !m.is_classic())
            && self
                .members
                .values()
                .all(|m| m.member_id == member_id || m.is_classic())
    }

    /// Kafka's `waitingOnUnreleasedPartition`: a partition of the member's target that it does
    /// not hold yet is still held by another member.
    pub fn waiting_on_unreleased(&self, member_id: &str) -> bool {
        let Some(m) = self.members.get(member_id) else {
            return false;
        };
        let owners = self.owners();
        self.target.get(member_id).is_some_and(|t| {
            t.iter().any(|(topic, parts)| {
                parts.iter().any(|p| {
                    !m.assigned.get(topic).is_some_and(|a| a.contains(p))
                        && owners.get(&(*topic, *p)).is_some_and(|o| *o != member_id)
                })
            })
        })
    }

    /// Who holds each partition now (assigned or pending revocation).
    pub fn owners(&self) -> HashMap<(Uuid, i32), &str> {
        let mut out = HashMap::new();
        for m in self.members.values() {
            for a in [&m.assigned, &m.pending_revocation] {
                for (t, parts) in a {
                    for p in parts {
                        out.insert((*t, *p), m.member_id.as_str());
                    }
                }
            }
        }
        out
    }

    /// Applies one record read back from `__consumer_offsets` (the loader's path). Timers of
    /// loaded members start at `now`.
    pub fn replay(&mut self, rec: ConsumerRecord, now: Instant) {
        match rec {
            ConsumerRecord::GroupEpoch(v) => self.group_epoch = v.unwrap_or(0),
            ConsumerRecord::PartitionMetadata(v) => {
                self.subscription_metadata = v.unwrap_or_default()
            }
            ConsumerRecord::Member(id, Some(md)) => {
                let m = self
                    .members
                    .entry(id.clone())
                    .or_insert_with(|| Member::new(id.clone(), now));
                if let Some(i) = &md.instance_id {
                    self.static_members.insert(i.clone(), id.clone());
                }
                if let Some(re) = &md.subscribed_topic_regex {
                    self.resolved_regexes.insert(re.clone());
                }
                m.metadata = md;
            }
            ConsumerRecord::Member(id, None) => {
                if let Some(m) = self.members.remove(&id) {
                    if let Some(i) = &m.metadata.instance_id {
                        if self.static_members.get(i) == Some(&id) {
                            self.static_members.remove(i);
                        }
                    }
                }
            }
            ConsumerRecord::AssignmentEpoch(v) => self.assignment_epoch = v.unwrap_or(0),
            ConsumerRecord::TargetAssignment(id, Some(a)) => {
                self.target.insert(id, a);
            }
            ConsumerRecord::TargetAssignment(id, None) => {
                self.target.remove(&id);
            }
            ConsumerRecord::CurrentAssignment(id, Some(c)) => {
                let m = self
                    .members
                    .entry(id.clone())
                    .or_insert_with(|| Member::new(id.clone(), now));
                m.member_epoch = c.member_epoch;
                m.previous_member_epoch = c.previous_member_epoch;
                m.state = c.state;
                m.assigned = c.assigned;
                m.pending_revocation = c.pending_revocation;
            }
            ConsumerRecord::CurrentAssignment(id, None) => {
                if let Some(m) = self.members.get_mut(&id) {
                    m.assigned.clear();
                    m.pending_revocation.clear();
                }
            }
        }
    }

    /// Removes a member: its records' tombstones (current assignment, target, metadata), in
    /// Kafka's order, then a group epoch bump so the others get its partitions.
    pub fn remove_member(&mut self, member_id: &str, out: &mut Vec<ConsumerRecord>) {
        let Some(m) = self.members.remove(member_id) else {
            return;
        };
        if let Some(i) = &m.metadata.instance_id {
            if self.static_members.get(i).map(String::as_str) == Some(member_id) {
                self.static_members.remove(i);
            }
        }
        self.target.remove(member_id);
        out.push(ConsumerRecord::CurrentAssignment(
            member_id.to_owned(),
            None,
        ));
        out.push(ConsumerRecord::TargetAssignment(member_id.to_owned(), None));
        out.push(ConsumerRecord::Member(member_id.to_owned(), None));
        self.bump_epoch(out);
    }

    pub fn bump_epoch(&mut self, out: &mut Vec<ConsumerRecord>) {
        self.group_epoch = self.group_epoch.max(self.assignment_epoch) + 1;
        out.push(ConsumerRecord::GroupEpoch(Some(self.group_epoch)));
    }

    /// The tombstones that delete the whole group (DeleteGroups, conversion).
    pub fn tombstones(&self) -> Vec<ConsumerRecord> {
        let mut out = Vec::new();
        for id in self.members.keys() {
            out.push(ConsumerRecord::CurrentAssignment(id.clone(), None));
            out.push(ConsumerRecord::TargetAssignment(id.clone(), None));
            out.push(ConsumerRecord::Member(id.clone(), None));
        }
        out.push(ConsumerRecord::AssignmentEpoch(None));
        out.push(ConsumerRecord::PartitionMetadata(None));
        out.push(ConsumerRecord::GroupEpoch(None));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Uuid {
        Uuid([1; 16])
    }

    fn a(parts: &[i32]) -> Assignment {
        if parts.is_empty() {
            return Assignment::new();
        }
        [(t(), parts.iter().copied().collect())].into()
    }

    fn member(epoch: i32, assigned: &[i32]) -> Member {
        let mut m = Member::new("m".into(), Instant::now());
        m.member_epoch = epoch;
        m.assigned = a(assigned);
        m
    }

    fn apply(m: &mut Member, n: Option<(i32, MemberState, Assignment, Assignment)>) {
        if let Some((e, s, asg, rev)) = n {
            m.previous_member_epoch = m.member_epoch;
            m.member_epoch = e;
            m.state = s;
            m.assigned = asg;
            m.pending_revocation = rev;
        }
    }

    #[test]
    fn stable_member_at_the_target_epoch_does_nothing() {
        let m = member(3, &[0, 1]);
        assert_eq!(reconcile(&m, 3, &a(&[0, 1]), None, &|_, _| true), None);
    }

    #[test]
    fn new_partitions_that_are_free_come_at_once() {
        let mut m = member(3, &[0]);
        let n = reconcile(&m, 4, &a(&[0, 1]), None, &|_, _| true);
        apply(&mut m, n);
        assert_eq!((m.member_epoch, m.state), (4, MemberState::Stable));
        assert_eq!(m.assigned, a(&[0, 1]));
    }

    /// A partition moves only after its old owner acknowledges the revocation: the old owner
    /// keeps its epoch in UnrevokedPartitions until its heartbeat no longer owns it; the new
    /// owner waits in UnreleasedPartitions meanwhile.
    #[test]
    fn revocation_before_reassignment() {
        let mut old = member(3, &[0, 1]);
        let mut new = member(0, &[]);
        new.member_id = "n".into();
        // Target at epoch 4: old keeps 0, new gets 1.
        let n = reconcile(&old, 4, &a(&[0]), None, &|_, _| true);
        apply(&mut old, n);
        assert_eq!(old.state, MemberState::UnrevokedPartitions);
        assert_eq!(
            old.member_epoch, 3,
            "epoch held until the revocation is acknowledged"
        );
        assert_eq!(old.assigned, a(&[0]));
        assert_eq!(old.pending_revocation, a(&[1]));
        let held_by_old = |_: &Uuid, p: i32| {
            !(old.assigned.values().any(|s| s.contains(&p))
                || old.pending_revocation.values().any(|s| s.contains(&p)))
        };
        let n = reconcile(&new, 4, &a(&[1]), Some(&a(&[])), &held_by_old);
        apply(&mut new, n);
        assert_eq!(
            (new.member_epoch, new.state),
            (4, MemberState::UnreleasedPartitions)
        );
        assert_eq!(new.assigned, a(&[]));
        // A heartbeat that still owns 1 changes nothing.
        assert_eq!(
            reconcile(&old, 4, &a(&[0]), Some(&a(&[0, 1])), &|_, _| true),
            None
        );
        // The acknowledgement: old reaches epoch 4.
        let n = reconcile(&old, 4, &a(&[0]), Some(&a(&[0])), &|_, _| true);
        apply(&mut old, n);
        assert_eq!((old.member_epoch, old.state), (4, MemberState::Stable));
        assert!(old.pending_revocation.is_empty());
        // Now the partition is free: the new member gets it.
        let held_by_old = |_: &Uuid, p: i32| !old.assigned.values().any(|s| s.contains(&p));
        let n = reconcile(&new, 4, &a(&[1]), None, &held_by_old);
        apply(&mut new, n);
        assert_eq!((new.member_epoch, new.state), (4, MemberState::Stable));
        assert_eq!(new.assigned, a(&[1]));
    }

    #[test]
    fn group_states() {
        let mut g = ConsumerGroup::new("g".into());
        assert_eq!(g.state(), ConsumerGroupState::Empty);
        let mut m = member(1, &[0]);
        g.members.insert("m".into(), m.clone());
        g.group_epoch = 2;
        g.assignment_epoch = 1;
        assert_eq!(g.state(), ConsumerGroupState::Assigning);
        g.assignment_epoch = 2;
        assert_eq!(g.state(), ConsumerGroupState::Reconciling);
        m.member_epoch = 2;
        g.members.insert("m".into(), m);
        assert_eq!(g.state(), ConsumerGroupState::Stable);
    }
}
