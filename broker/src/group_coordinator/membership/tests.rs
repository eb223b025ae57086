//! Tests of classic group membership: each drives a manual clock and `tick`, so every timeout
//! is exact; joins and syncs that must wait run as spawned tasks.

use super::group::parse_subscription_topics;
use super::*;
use bytes::Bytes;
use rafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use rafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use std::time::Duration;
use tokio::task::JoinHandle;

const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 30_000;

/// A membership with a manual clock: `advance` moves it and ticks.
struct Harness {
    m: Arc<GroupMembership>,
    now: Arc<Mutex<Instant>>,
}

impl Harness {
    fn new() -> Harness {
        Harness::with_config(MembershipConfig::default())
    }

    fn with_config(config: MembershipConfig) -> Harness {
        let now = Arc::new(Mutex::new(Instant::now()));
        let clock = now.clone();
        let m = GroupMembership::with_clock(config, move || *clock.lock().expect("clock"));
        Harness { m, now }
    }

    /// Moves the clock `ms` on, ticking every 100 ms as the server does.
    async fn advance(&self, ms: u64) {
        let mut left = ms;
        while left > 0 {
            let step = left.min(100);
            left -= step;
            let t = {
                let mut now = self.now.lock().expect("clock");
                *now += Duration::from_millis(step);
                *now
            };
            self.m.tick(t);
            settle().await;
        }
    }

    /// A JoinGroup as its own task (it may wait).
    async fn spawn_join(
        &self,
        version: i16,
        req: JoinGroupRequest,
    ) -> JoinHandle<JoinGroupResponse> {
        let m = self.m.clone();
        let h =
            tokio::spawn(async move { m.join_group(version, req, "client", "/127.0.0.1").await });
        settle().await;
        h
    }

    async fn spawn_sync(&self, req: SyncGroupRequest) -> JoinHandle<SyncGroupResponse> {
        let m = self.m.clone();
        let h = tokio::spawn(async move { m.sync_group(5, req).await });
        settle().await;
        h
    }

    /// A dynamic member's first join, v5: MEMBER_ID_REQUIRED, then the join with that id
    /// (left waiting).
    async fn join_new(
        &self,
        group: &str,
        protocols: &[(&str, &[u8])],
    ) -> (String, JoinHandle<JoinGroupResponse>) {
        let first = self
            .m
            .join_group(
                5,
                join_req(group, "", None, protocols),
                "client",
                "/127.0.0.1",
            )
            .await;
        assert_eq!(first.error_code, ErrorCode::MemberIdRequired.code());
        let id = first.member_id.clone();
        let h = self
            .spawn_join(5, join_req(group, &id, None, protocols))
            .await;
        (id, h)
    }

    fn heartbeat(&self, group: &str, member: &str, generation: i32) -> i16 {
        self.heartbeat_static(group, member, None, generation)
    }

    fn heartbeat_static(
        &self,
        group: &str,
        member: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> i16 {
        self.m
            .heartbeat(
                4,
                HeartbeatRequest {
                    group_id: group.into(),
                    generation_id: generation,
                    member_id: member.into(),
                    group_instance_id: instance.map(Into::into),
                    ..Default::default()
                },
            )
            .error_code
    }

    fn state(&self, group: &str) -> String {
        self.m.describe_group(group).group_state
    }

    /// Two dynamic members "a" and "b" (ids returned) through the initial delay (extended once:
    /// b arrived during it) and the
    /// leader's sync: Stable at generation 1, assignments "A" and "B".
    async fn stable_pair(&self, group: &str) -> (String, String) {
        let (a, ha) = self.join_new(group, &[("range", b"ma")]).await;
        let (b, hb) = self.join_new(group, &[("range", b"mb")]).await;
        self.advance(6000).await;
        let ra = done(ha).await;
        let rb = done(hb).await;
        assert_eq!((ra.error_code, rb.error_code), (0, 0));
        assert_eq!(ra.leader, a);
        let follower = self.spawn_sync(sync_req(group, &b, 1, &[])).await;
        let leader = self
            .m
            .sync_group(5, sync_req(group, &a, 1, &[(&a, b"A"), (&b, b"B")]))
            .await;
        assert_eq!(leader.assignment.as_ref(), b"A");
        assert_eq!(done(follower).await.assignment.as_ref(), b"B");
        assert_eq!(self.state(group), "Stable");
        (a, b)
    }
}

/// The answer of a spawned JoinGroup or SyncGroup that must have completed by now (a test
/// that expected too early fails here rather than hanging).
async fn done<T>(h: JoinHandle<T>) -> T {
    settle().await;
    assert!(h.is_finished(), "still waiting");
    h.await.expect("task")
}

/// Lets spawned tasks run to their next wait.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

fn join_req(
    group: &str,
    member: &str,
    instance: Option<&str>,
    protocols: &[(&str, &[u8])],
) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: group.into(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        member_id: member.into(),
        group_instance_id: instance.map(Into::into),
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|(name, meta)| JoinGroupRequestProtocol {
                name: (*name).into(),
                metadata: Bytes::copy_from_slice(meta),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn sync_req(
    group: &str,
    member: &str,
    generation: i32,
    assignments: &[(&str, &[u8])],
) -> SyncGroupRequest {
    SyncGroupRequest {
        group_id: group.into(),
        generation_id: generation,
        member_id: member.into(),
        assignments: assignments
            .iter()
            .map(|(id, a)| SyncGroupRequestAssignment {
                member_id: (*id).into(),
                assignment: Bytes::copy_from_slice(a),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn leave_req(group: &str, members: &[(&str, Option<&str>)]) -> LeaveGroupRequest {
    LeaveGroupRequest {
        group_id: group.into(),
        members: members
            .iter()
            .map(|(id, instance)| MemberIdentity {
                member_id: (*id).into(),
                group_instance_id: instance.map(Into::into),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// A ConsumerProtocolSubscription v0: version, topics, null user data.
fn subscription(topics: &[&str]) -> Vec<u8> {
    let mut b = vec![0, 0];
    b.extend_from_slice(&i32::try_from(topics.len()).expect("few").to_be_bytes());
    for t in topics {
        b.extend_from_slice(&i16::try_from(t.len()).expect("short").to_be_bytes());
        b.extend_from_slice(t.as_bytes());
    }
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b
}

#[tokio::test]
async fn first_join_gets_member_id_required_then_joins() {
    let h = Harness::new();
    let first =
        h.m.join_group(5, join_req("g", "", None, &[("range", b"m")]), "cli", "/h")
            .await;
    assert_eq!(first.error_code, ErrorCode::MemberIdRequired.code());
    assert!(first.member_id.starts_with("cli-"), "{}", first.member_id);
    let uuid = &first.member_id[4..];
    assert_eq!(uuid.len(), 36);
    assert_eq!(uuid.as_bytes()[14], b'4', "version 4: {uuid}");
    // Pending only: the group exists, Empty.
    assert_eq!(h.state("g"), "Empty");

    let join = h
        .spawn_join(5, join_req("g", &first.member_id, None, &[("range", b"m")]))
        .await;
    assert_eq!(h.state("g"), "PreparingRebalance");
    h.advance(2999).await;
    assert!(
        !join.is_finished(),
        "the initial delay holds the first generation"
    );
    h.advance(1).await;
    let r = done(join).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(r.generation_id, 1);
    assert_eq!(r.member_id, first.member_id);
    assert_eq!(r.leader, first.member_id);
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    assert_eq!(r.members.len(), 1);
    assert_eq!(r.members[0].metadata.as_ref(), b"m");
    assert_eq!(h.state("g"), "CompletingRebalance");
}

#[tokio::test]
async fn join_before_v4_gets_a_member_id_at_once() {
    let h = Harness::new();
    let join = h
        .spawn_join(3, join_req("g", "", None, &[("range", b"m")]))
        .await;
    h.advance(3000).await;
    let r = done(join).await;
    assert_eq!(r.error_code, 0);
    assert!(r.member_id.starts_with("client-"));
    assert_eq!(r.leader, r.member_id);
    // Before v7 the protocol name is never null.
    let bad =
        h.m.join_group(3, join_req("", "", None, &[("range", b"m")]), "c", "/h")
            .await;
    assert_eq!(bad.protocol_name.as_deref(), Some(""));
    let bad =
        h.m.join_group(7, join_req("", "", None, &[("range", b"m")]), "c", "/h")
            .await;
    assert_eq!(bad.protocol_name, None);
}

#[tokio::test]
async fn two_members_join_one_generation_with_one_leader() {
    let h = Harness::new();
    let (a, ha) = h.join_new("g", &[("range", b"ma")]).await;
    let (b, hb) = h.join_new("g", &[("range", b"mb")]).await;
    h.advance(6000).await;
    let ra = done(ha).await;
    let rb = done(hb).await;
    assert_eq!((ra.generation_id, rb.generation_id), (1, 1));
    assert_eq!(ra.leader, a);
    assert_eq!(rb.leader, a);
    let listed: Vec<(&str, &[u8])> = ra
        .members
        .iter()
        .map(|m| (m.member_id.as_str(), m.metadata.as_ref()))
        .collect();
    assert_eq!(
        listed,
        vec![(a.as_str(), &b"ma"[..]), (b.as_str(), &b"mb"[..])]
    );
    assert!(rb.members.is_empty(), "only the leader gets the members");
}

#[tokio::test]
async fn initial_delay_is_extended_while_members_arrive() {
    let h = Harness::new();
    let (_, ha) = h.join_new("g", &[("range", b"")]).await;
    h.advance(2000).await;
    let (_, hb) = h.join_new("g", &[("range", b"")]).await;
    h.advance(1000).await; // 3 s: a member came during the delay, so another delay
    assert!(!ha.is_finished());
    h.advance(2999).await;
    assert!(!ha.is_finished());
    h.advance(1).await; // 6 s
    assert_eq!(done(ha).await.generation_id, 1);
    assert_eq!(done(hb).await.members.len(), 0);
}

#[tokio::test]
async fn leader_sync_delivers_each_member_its_assignment() {
    let h = Harness::new();
    let (a, b) = h.stable_pair("g").await;
    // In Stable a late SyncGroup gets the stored assignment.
    let again = h.m.sync_group(5, sync_req("g", &b, 1, &[])).await;
    assert_eq!(again.error_code, 0);
    assert_eq!(again.assignment.as_ref(), b"B");
    assert_eq!(again.protocol_name.as_deref(), Some("range"));
    let d = h.m.describe_group("g");
    assert_eq!(d.protocol_data, "range");
    assert_eq!(d.protocol_type, "consumer");
    let members: Vec<_> = d
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.clone(),
                m.member_metadata.clone(),
                m.member_assignment.clone(),
            )
        })
        .collect();
    assert_eq!(
        members,
        vec![
            (a, Bytes::from_static(b"ma"), Bytes::from_static(b"A")),
            (b, Bytes::from_static(b"mb"), Bytes::from_static(b"B"))
        ]
    );
    assert_eq!(d.members[0].client_host, "/127.0.0.1");
}

#[tokio::test]
async fn members_left_out_of_the_assignment_get_an_empty_one() {
    let h = Harness::new();
    let (a, ha) = h.join_new("g", &[("range", b"")]).await;
    let (b, hb) = h.join_new("g", &[("range", b"")]).await;
    h.advance(6000).await;
    done(ha).await;
    done(hb).await;
    let follower = h.spawn_sync(sync_req("g", &b, 1, &[])).await;
    assert!(!follower.is_finished(), "a follower waits for the leader");
    let r =
        h.m.sync_group(5, sync_req("g", &a, 1, &[(&a, b"A"), ("stranger", b"S")]))
            .await;
    assert_eq!(r.assignment.as_ref(), b"A");
    let f = done(follower).await;
    assert_eq!((f.error_code, f.assignment.len()), (0, 0));
}

#[tokio::test]
async fn heartbeats_ok_in_stable_then_rebalance_in_progress_after_a_third_member() {
    let h = Harness::new();
    let (a, b) = h.stable_pair("g").await;
    assert_eq!(h.heartbeat("g", &a, 1), 0);
    assert_eq!(h.heartbeat("g", &b, 1), 0);

    let (c, hc) = h.join_new("g", &[("range", b"mc")]).await;
    assert_eq!(h.state("g"), "PreparingRebalance");
    assert_eq!(
        h.heartbeat("g", &a, 1),
        ErrorCode::RebalanceInProgress.code()
    );
    assert_eq!(
        h.heartbeat("g", &b, 1),
        ErrorCode::RebalanceInProgress.code()
    );
    // A SyncGroup now is also told to rejoin.
    let s = h.m.sync_group(5, sync_req("g", &b, 1, &[])).await;
    assert_eq!(s.error_code, ErrorCode::RebalanceInProgress.code());

    let ha = h
        .spawn_join(5, join_req("g", &a, None, &[("range", b"ma")]))
        .await;
    assert!(!ha.is_finished());
    let hb = h
        .spawn_join(5, join_req("g", &b, None, &[("range", b"mb")]))
        .await;
    // Everyone is in: no timer needed.
    let (ra, rb, rc) = (done(ha).await, done(hb).await, done(hc).await);
    assert_eq!(
        (ra.generation_id, rb.generation_id, rc.generation_id),
        (2, 2, 2)
    );
    assert_eq!(ra.leader, a, "the leader stays while it is a member");
    assert_eq!(ra.members.len(), 3);
    assert_eq!(rc.member_id, c);
    assert_eq!(
        h.heartbeat("g", &c, 2),
        0,
        "heartbeats are fine in CompletingRebalance"
    );
}

#[tokio::test]
async fn session_expiry_removes_a_silent_member_and_rebalances() {
    let h = Harness::new();
    let (a, b) = h.stable_pair("g").await;
    h.advance(6000).await;
    assert_eq!(h.heartbeat("g", &a, 1), 0);
    h.advance(3999).await;
    assert_eq!(h.state("g"), "Stable", "b's session has not ended yet");
    h.advance(1).await;
    assert_eq!(h.state("g"), "PreparingRebalance");
    assert_eq!(h.heartbeat("g", &b, 1), ErrorCode::UnknownMemberId.code());
    assert_eq!(
        h.heartbeat("g", &a, 1),
        ErrorCode::RebalanceInProgress.code()
    );
    let r =
        h.m.join_group(5, join_req("g", &a, None, &[("range", b"ma")]), "c", "/h")
            .await;
    assert_eq!(r.generation_id, 2);
    assert_eq!(r.members.len(), 1);
    assert_eq!(r.leader, a);
}

/// DeleteGroups right after the members' session deadline, before the timer task has run:
/// the sessions are over, the group is empty and goes (librdkafka's 0081 deletes static groups
/// at the deadline).
#[tokio::test]
async fn delete_groups_after_the_deadline_does_not_wait_for_the_timer() {
    let h = Harness::new();
    let (_a, _b) = h.stable_pair("g").await;
    assert_eq!(h.m.delete_group("g"), Err(ErrorCode::NonEmptyGroup));
    // The clock passes both deadlines; nothing ticks.
    *h.now.lock().expect("clock") += Duration::from_millis(SESSION_MS as u64 + 1);
    assert_eq!(h.m.delete_group("g"), Ok(()));
    assert_eq!(h.m.is_empty_group("g"), None);
}

#[tokio::test]
async fn the_rebalance_timeout_drops_members_that_did_not_rejoin() {
    let h = Harness::new();
    let (a, b) = h.stable_pair("g").await;
    // The leader rejoining asks for a new assignment: rebalance.
    let ha = h
        .spawn_join(5, join_req("g", &a, None, &[("range", b"ma")]))
        .await;
    assert_eq!(h.state("g"), "PreparingRebalance");
    // b keeps heartbeating but never rejoins.
    for _ in 0..5 {
        h.advance(5000).await;
        assert_eq!(
            h.heartbeat("g", &b, 1),
            ErrorCode::RebalanceInProgress.code()
        );
    }
    assert!(!ha.is_finished());
    h.advance(5000).await; // 30 s
    let r = done(ha).await;
    assert_eq!((r.error_code, r.generation_id, r.members.len()), (0, 2, 1));
    assert_eq!(h.heartbeat("g", &b, 1), ErrorCode::UnknownMemberId.code());
}

#[tokio::test]
async fn members_that_do_not_sync_in_time_are_removed() {
    let h = Harness::new();
    let (a, ha) = h.join_new("g", &[("range", b"")]).await;
    let (b, hb) = h.join_new("g", &[("range", b"")]).await;
    h.advance(6000).await;
    done(ha).await;
    done(hb).await;
    let follower = h.spawn_sync(sync_req("g", &b, 1, &[])).await;
    // a heartbeats (its session is fine) but never sends its SyncGroup.
    for _ in 0..5 {
        h.advance(5000).await;
        assert_eq!(h.heartbeat("g", &a, 1), 0);
    }
    assert!(!follower.is_finished());
    h.advance(5000).await;
    let f = done(follower).await;
    assert_eq!(f.error_code, ErrorCode::RebalanceInProgress.code());
    assert_eq!(
        h.heartbeat("g", &a, 1),
        ErrorCode::UnknownMemberId.code(),
        "the leader never synced"
    );
    assert_eq!(h.state("g"), "PreparingRebalance");
}

#[tokio::test]
async fn a_pending_member_id_holds_the_join_until_it_expires() {
    let h = Harness::new();
    let (a, b) = h.stable_pair("g").await;
    let c =
        h.m.join_group(5, join_req("g", "", None, &[("range", b"")]), "c", "/h")
            .await;
    assert_eq!(c.error_code, ErrorCode::MemberIdRequired.code());
    let ha = h
        .spawn_join(5, join_req("g", &a, None, &[("range", b"ma")]))
        .await;
    let hb = h
        .spawn_join(5, join_req("g", &b, None, &[("range", b"mb")]))
        .await;
    assert!(
        !ha.is_finished(),
        "waiting for the member that was given an id"
    );
    h.advance(u64::try_from(SESSION_MS).expect("positive"))
        .await;
    assert_eq!(done(ha).await.generation_id, 2);
    assert_eq!(done(hb).await.generation_id, 2);
    let late =
        h.m.join_group(
            5,
            join_req("g", &c.member_id, None, &[("range", b"")]),
            "c",
            "/h",
        )
        .await;
    assert_eq!(late.error_code, ErrorCode::UnknownMemberId.code());
}

#[tokio::test]
async fn leave_triggers_a_rebalance() {
    let h = Harness::new();
    let (a, b) = h.stable_pair("g").await;
    let r =
        h.m.leave_group(3, leave_req("g", &[(&b, None), ("nobody", None)]));
    assert_eq!(r.error_code, 0);
    let codes: Vec<(String, i16)> = r
        .members
        .iter()
        .map(|m| (m.member_id.clone(), m.error_code))
        .collect();
    assert_eq!(
        codes,
        vec![
            (b.clone(), 0),
            ("nobody".into(), ErrorCode::UnknownMemberId.code())
        ]
    );
    assert_eq!(h.state("g"), "PreparingRebalance");
    let r =
        h.m.join_group(5, join_req("g", &a, None, &[("range", b"ma")]), "c", "/h")
            .await;
    assert_eq!((r.generation_id, r.members.len()), (2, 1));

    // v0-2: one member, its error at the top.
    let r = h.m.leave_group(
        1,
        LeaveGroupRequest {
            group_id: "g".into(),
            member_id: "nobody".into(),
            ..Default::default()
        },
    );
    assert_eq!(r.error_code, ErrorCode::UnknownMemberId.code());
    let r = h.m.leave_group(
        0,
        LeaveGroupRequest {
            group_id: "g".into(),
            member_id: a.clone(),
            ..Default::default()
        },
    );
    assert_eq!(r.error_code, 0);
    // The last member gone: the group is Empty at the next generation.
    assert_eq!(h.state("g"), "Empty");
    let r = h.m.leave_group(3, leave_req("unknown", &[(&a, None)]));
    assert_eq!(r.error_code, ErrorCode::UnknownMemberId.code());
}

#[tokio::test]
async fn a_member_removed_while_its_join_waits_gets_an_error() {
    let h = Harness::new();
    let (a, b) = h.stable_pair("g").await;
    let ha = h
        .spawn_join(5, join_req("g", &a, None, &[("range", b"ma")]))
        .await;
    let r = h.m.leave_group(3, leave_req("g", &[(&a, None)]));
    assert_eq!(r.members[0].error_code, 0);
    let ra = done(ha).await;
    assert_eq!(ra.error_code, ErrorCode::UnknownMemberId.code());
    // b alone now; its rejoin completes the phase with b as the leader.
    let rb =
        h.m.join_group(5, join_req("g", &b, None, &[("range", b"mb")]), "c", "/h")
            .await;
    assert_eq!((rb.generation_id, rb.leader.as_str()), (2, b.as_str()));
}

#[tokio::test]
async fn a_static_member_rejoining_fences_its_old_member_id() {
    let h = Harness::new();
    let sa = h
        .spawn_join(5, join_req("g", "", Some("i-a"), &[("range", b"ma")]))
        .await;
    let (b, hb) = h
        .join_new("g", &[("range", b"mb"), ("roundrobin", b"mb2")])
        .await;
    h.advance(6000).await;
    let ra = done(sa).await;
    done(hb).await;
    let a = ra.member_id.clone();
    assert!(
        a.starts_with("i-a-"),
        "a static member's id starts with its instance id: {a}"
    );
    let follower = h.spawn_sync(sync_req("g", &b, 1, &[])).await;
    h.m.sync_group(5, sync_req("g", &a, 1, &[(&a, b"A"), (&b, b"B")]))
        .await;
    done(follower).await;

    // The instance restarts: same protocols in Stable → no rebalance.
    let r =
        h.m.join_group(
            5,
            join_req("g", "", Some("i-a"), &[("range", b"ma")]),
            "c",
            "/h",
        )
        .await;
    assert_eq!(r.error_code, 0);
    let a2 = r.member_id.clone();
    assert_ne!(a2, a);
    assert_eq!(r.generation_id, 1);
    assert_eq!(r.leader, a, "before v9 the old leader id: no reassignment");
    assert!(r.members.is_empty());
    assert_eq!(h.state("g"), "Stable");
    assert_eq!(
        h.heartbeat_static("g", &a, Some("i-a"), 1),
        ErrorCode::FencedInstanceId.code()
    );
    assert_eq!(h.heartbeat_static("g", &a2, Some("i-a"), 1), 0);
    assert_eq!(h.heartbeat("g", &b, 1), 0);
    let s =
        h.m.sync_group(
            5,
            SyncGroupRequest {
                group_instance_id: Some("i-a".into()),
                ..sync_req("g", &a2, 1, &[])
            },
        )
        .await;
    assert_eq!(
        s.assignment.as_ref(),
        b"A",
        "the instance keeps its assignment"
    );
    let old =
        h.m.sync_group(
            5,
            SyncGroupRequest {
                group_instance_id: Some("i-a".into()),
                ..sync_req("g", &a, 1, &[])
            },
        )
        .await;
    assert_eq!(old.error_code, ErrorCode::FencedInstanceId.code());
    assert_eq!(
        h.m.check_commit("g", 1, &a, Some("i-a")),
        Err(ErrorCode::FencedInstanceId)
    );

    // v9: the returning leader gets the members and is told to skip the assignment.
    let r =
        h.m.join_group(
            9,
            join_req("g", "", Some("i-a"), &[("range", b"ma")]),
            "c",
            "/h",
        )
        .await;
    assert!(r.skip_assignment);
    assert_eq!(r.leader, r.member_id);
    assert_eq!(r.members.len(), 2);

    // Changed metadata alone does not rebalance (the selected protocol stays)...
    let r =
        h.m.join_group(
            5,
            join_req("g", "", Some("i-a"), &[("range", b"changed")]),
            "c",
            "/h",
        )
        .await;
    assert_eq!(r.error_code, 0);
    assert_eq!(h.state("g"), "Stable");
    // ...but a change of the protocol the vote would select does (a tie: the first member's
    // vote wins, and a's place is kept across its new ids).
    let hc = h
        .spawn_join(
            5,
            join_req(
                "g",
                "",
                Some("i-a"),
                &[("roundrobin", b""), ("range", b"x")],
            ),
        )
        .await;
    assert_eq!(h.state("g"), "PreparingRebalance");
    hc.abort();
}

#[tokio::test]
async fn a_waiting_static_member_is_fenced_by_its_replacement() {
    let h = Harness::new();
    let s = h
        .spawn_join(5, join_req("g", "", Some("i-a"), &[("range", b"")]))
        .await;
    let (_, hb) = h.join_new("g", &[("range", b"")]).await;
    h.advance(6000).await;
    let old = done(s).await.member_id;
    let b = done(hb).await.member_id;
    let follower = h.spawn_sync(sync_req("g", &b, 1, &[])).await;
    h.m.sync_group(5, sync_req("g", &old, 1, &[])).await;
    done(follower).await;
    // The leader's rejoin starts a rebalance; its JoinGroup waits for b.
    let waiting = h
        .spawn_join(5, join_req("g", &old, Some("i-a"), &[("range", b"")]))
        .await;
    assert!(!waiting.is_finished());
    let replacement = h
        .spawn_join(5, join_req("g", "", Some("i-a"), &[("range", b"")]))
        .await;
    let w = done(waiting).await;
    assert_eq!(w.error_code, ErrorCode::FencedInstanceId.code());
    assert_eq!(w.member_id, old);
    replacement.abort();
}

#[tokio::test]
async fn stale_generations_and_unknown_members_are_refused() {
    let h = Harness::new();
    let (a, _b) = h.stable_pair("g").await;
    assert_eq!(h.heartbeat("g", &a, 0), ErrorCode::IllegalGeneration.code());
    assert_eq!(
        h.heartbeat("g", "nobody", 1),
        ErrorCode::UnknownMemberId.code()
    );
    assert_eq!(
        h.heartbeat("nogroup", &a, 1),
        ErrorCode::UnknownMemberId.code()
    );
    assert_eq!(
        h.heartbeat_static("g", &a, Some("i-x"), 1),
        ErrorCode::UnknownMemberId.code()
    );
    assert_eq!(h.heartbeat("", &a, 1), ErrorCode::InvalidGroupId.code());
    let s = h.m.sync_group(5, sync_req("g", &a, 7, &[])).await;
    assert_eq!(s.error_code, ErrorCode::IllegalGeneration.code());
    let s = h.m.sync_group(5, sync_req("g", "nobody", 1, &[])).await;
    assert_eq!(s.error_code, ErrorCode::UnknownMemberId.code());
    let s = h.m.sync_group(5, sync_req("nogroup", &a, 1, &[])).await;
    assert_eq!(s.error_code, ErrorCode::UnknownMemberId.code());
    let s =
        h.m.sync_group(
            5,
            SyncGroupRequest {
                protocol_name: Some("roundrobin".into()),
                ..sync_req("g", &a, 1, &[])
            },
        )
        .await;
    assert_eq!(s.error_code, ErrorCode::InconsistentGroupProtocol.code());
    let j =
        h.m.join_group(
            5,
            join_req("g", "nobody", None, &[("range", b"")]),
            "c",
            "/h",
        )
        .await;
    assert_eq!(j.error_code, ErrorCode::UnknownMemberId.code());
    let j =
        h.m.join_group(
            5,
            join_req("nogroup", "someone", None, &[("range", b"")]),
            "c",
            "/h",
        )
        .await;
    assert_eq!(j.error_code, ErrorCode::UnknownMemberId.code());
    assert_eq!(
        h.m.describe_group("nogroup").group_state,
        "Dead",
        "not created by a join with an id"
    );
}

#[tokio::test]
async fn joins_are_validated() {
    let h = Harness::with_config(MembershipConfig {
        max_size: 2,
        ..MembershipConfig::default()
    });
    let p: &[(&str, &[u8])] = &[("range", b"")];
    let j =
        h.m.join_group(5, join_req("", "", None, p), "c", "/h")
            .await;
    assert_eq!(j.error_code, ErrorCode::InvalidGroupId.code());
    let j =
        h.m.join_group(
            5,
            JoinGroupRequest {
                session_timeout_ms: 5999,
                ..join_req("g", "", None, p)
            },
            "c",
            "/h",
        )
        .await;
    assert_eq!(j.error_code, ErrorCode::InvalidSessionTimeout.code());
    let j =
        h.m.join_group(
            5,
            JoinGroupRequest {
                session_timeout_ms: 1_800_001,
                ..join_req("g", "", None, p)
            },
            "c",
            "/h",
        )
        .await;
    assert_eq!(j.error_code, ErrorCode::InvalidSessionTimeout.code());
    let j =
        h.m.join_group(5, join_req("g", "", None, &[]), "c", "/h")
            .await;
    assert_eq!(j.error_code, ErrorCode::InconsistentGroupProtocol.code());
    let j =
        h.m.join_group(
            5,
            JoinGroupRequest {
                protocol_type: String::new(),
                ..join_req("g", "", None, p)
            },
            "c",
            "/h",
        )
        .await;
    assert_eq!(j.error_code, ErrorCode::InconsistentGroupProtocol.code());

    let (_, ha) = h.join_new("g", p).await;
    // Another protocol type, or no protocol in common with the members.
    let j =
        h.m.join_group(
            5,
            JoinGroupRequest {
                protocol_type: "connect".into(),
                ..join_req("g", "", None, p)
            },
            "c",
            "/h",
        )
        .await;
    assert_eq!(j.error_code, ErrorCode::InconsistentGroupProtocol.code());
    let j =
        h.m.join_group(
            5,
            join_req("g", "", None, &[("roundrobin", b"")]),
            "c",
            "/h",
        )
        .await;
    assert_eq!(j.error_code, ErrorCode::InconsistentGroupProtocol.code());
    let (_, hb) = h.join_new("g", p).await;
    // group.max.size = 2.
    let j =
        h.m.join_group(5, join_req("g", "", Some("i-c"), p), "c", "/h")
            .await;
    assert_eq!(j.error_code, ErrorCode::GroupMaxSizeReached.code());
    h.advance(6000).await;
    assert_eq!(done(ha).await.members.len(), 2);
    done(hb).await;
    let j =
        h.m.join_group(5, join_req("g", "", Some("i-c"), p), "c", "/h")
            .await;
    assert_eq!(j.error_code, ErrorCode::GroupMaxSizeReached.code());
}

#[tokio::test]
async fn the_protocol_is_chosen_by_vote_among_common_ones() {
    let h = Harness::new();
    let (_, ha) = h
        .join_new(
            "g",
            &[("range", b"a1"), ("roundrobin", b"a2"), ("sticky", b"a3")],
        )
        .await;
    let (_, hb) = h
        .join_new("g", &[("roundrobin", b"b2"), ("range", b"b1")])
        .await;
    let (_, hc) = h
        .join_new("g", &[("roundrobin", b"c2"), ("range", b"c1")])
        .await;
    h.advance(6000).await;
    let ra = done(ha).await;
    done(hb).await;
    done(hc).await;
    assert_eq!(ra.protocol_name.as_deref(), Some("roundrobin"));
    let metas: Vec<&[u8]> = ra.members.iter().map(|m| m.metadata.as_ref()).collect();
    assert_eq!(metas, vec![&b"a2"[..], &b"b2"[..], &b"c2"[..]]);
}

#[tokio::test]
async fn commit_checks_follow_the_group() {
    let h = Harness::new();
    assert_eq!(h.m.check_commit("nogroup", -1, "", None), Ok(()));
    assert_eq!(
        h.m.check_commit("nogroup", 3, "m", None),
        Err(ErrorCode::IllegalGeneration)
    );
    assert_eq!(
        h.m.check_commit("", -1, "", None),
        Err(ErrorCode::InvalidGroupId)
    );

    let (a, ha) = h.join_new("g", &[("range", b"")]).await;
    let (b, hb) = h.join_new("g", &[("range", b"")]).await;
    h.advance(6000).await;
    done(ha).await;
    done(hb).await;
    // CompletingRebalance: the member is valid but has no assignment yet.
    assert_eq!(
        h.m.check_commit("g", 1, &a, None),
        Err(ErrorCode::RebalanceInProgress)
    );
    let follower = h.spawn_sync(sync_req("g", &b, 1, &[])).await;
    h.m.sync_group(5, sync_req("g", &a, 1, &[])).await;
    done(follower).await;
    assert_eq!(h.m.check_commit("g", 1, &a, None), Ok(()));
    assert_eq!(
        h.m.check_commit("g", 0, &a, None),
        Err(ErrorCode::IllegalGeneration)
    );
    assert_eq!(
        h.m.check_commit("g", 1, "nobody", None),
        Err(ErrorCode::UnknownMemberId)
    );
    assert_eq!(
        h.m.check_commit("g", -1, "", None),
        Err(ErrorCode::UnknownMemberId),
        "simple commits need an Empty group"
    );
    assert_eq!(
        h.m.check_commit("g", -1, &a, None),
        Err(ErrorCode::IllegalGeneration)
    );

    // A commit is a heartbeat: a keeps committing, b stays silent.
    for _ in 0..3 {
        h.advance(4000).await;
        assert_eq!(h.m.check_commit("g", 1, &a, None), Ok(()));
    }
    assert_eq!(h.state("g"), "PreparingRebalance", "b expired");
    assert_eq!(
        h.m.check_commit("g", 1, &a, None),
        Ok(()),
        "commits are fine while rejoining"
    );
    assert_eq!(
        h.heartbeat("g", &a, 1),
        ErrorCode::RebalanceInProgress.code()
    );

    // Leave: Empty, simple commits are fine again.
    h.m.leave_group(3, leave_req("g", &[(&a, None)]));
    assert_eq!(h.state("g"), "Empty");
    assert_eq!(h.m.check_commit("g", -1, "", None), Ok(()));
}

#[tokio::test]
async fn list_describe_and_delete() {
    let h = Harness::new();
    let (a, _) = h.stable_pair("stable").await;
    let (_, pending) = h.join_new("joining", &[("range", b"m")]).await;
    assert_eq!(
        h.m.join_group(5, join_req("empty", "", None, &[("range", b"")]), "c", "/h")
            .await
            .error_code,
        ErrorCode::MemberIdRequired.code()
    );

    let all: Vec<(String, String, String)> =
        h.m.list_groups(&[])
            .into_iter()
            .map(|g| (g.group_id, g.group_state, g.protocol_type))
            .collect();
    assert_eq!(
        all,
        vec![
            ("empty".into(), "Empty".into(), String::new()),
            (
                "joining".into(),
                "PreparingRebalance".into(),
                "consumer".into()
            ),
            ("stable".into(), "Stable".into(), "consumer".into()),
        ]
    );
    let stable: Vec<String> =
        h.m.list_groups(&["stable".into(), " EMPTY ".into()])
            .into_iter()
            .map(|g| g.group_id)
            .collect();
    assert_eq!(stable, vec!["empty".to_string(), "stable".to_string()]);
    assert_eq!(h.m.list_groups(&["Stable".into()])[0].group_type, "classic");

    let d = h.m.describe_group("joining");
    assert_eq!(d.group_state, "PreparingRebalance");
    assert_eq!(d.protocol_data, "");
    assert_eq!(d.members.len(), 1);
    assert!(
        d.members[0].member_metadata.is_empty(),
        "metadata only in Stable"
    );
    let d = h.m.describe_group("nope");
    assert_eq!(
        (d.error_code, d.group_state.as_str(), d.group_id.as_str()),
        (0, "Dead", "nope")
    );

    assert_eq!(h.m.delete_group("stable"), Err(ErrorCode::NonEmptyGroup));
    assert_eq!(h.m.delete_group("joining"), Err(ErrorCode::NonEmptyGroup));
    assert_eq!(h.m.delete_group("nope"), Err(ErrorCode::GroupIdNotFound));
    assert_eq!(h.m.delete_group("empty"), Ok(()));
    assert_eq!(h.m.delete_group("empty"), Err(ErrorCode::GroupIdNotFound));
    assert_eq!(h.m.is_empty_group("stable"), Some(false));
    assert_eq!(h.m.is_empty_group("empty"), None);

    let r = h.m.leave_group(3, leave_req("stable", &[(&a, None)]));
    assert_eq!(r.members[0].error_code, 0);
    pending.abort();
}

#[tokio::test]
async fn offset_delete_respects_consumer_subscriptions() {
    let h = Harness::new();
    assert_eq!(
        h.m.offset_delete_check("g"),
        Err(ErrorCode::GroupIdNotFound)
    );
    let sa = subscription(&["t1", "t2"]);
    let sb = subscription(&["t3"]);
    let (_, ha) = h.join_new("g", &[("range", &sa)]).await;
    let (_, hb) = h.join_new("g", &[("range", &sb)]).await;
    h.advance(6000).await;
    done(ha).await;
    done(hb).await;
    let s = h.m.offset_delete_check("g").expect("consumer group");
    assert!(s.contains("t1") && s.contains("t3") && !s.contains("t4"));

    let (_, hc) = {
        let first =
            h.m.join_group(
                5,
                JoinGroupRequest {
                    protocol_type: "connect".into(),
                    ..join_req("c", "", None, &[("v1", b"")])
                },
                "c",
                "/h",
            )
            .await;
        let hc = h
            .spawn_join(
                5,
                JoinGroupRequest {
                    protocol_type: "connect".into(),
                    ..join_req("c", &first.member_id, None, &[("v1", b"")])
                },
            )
            .await;
        (first.member_id, hc)
    };
    assert_eq!(h.m.offset_delete_check("c"), Err(ErrorCode::NonEmptyGroup));
    hc.abort();
    assert_eq!(
        parse_subscription_topics(&[0, 0, 0x7f, 0xff, 0xff, 0xff]),
        None,
        "a claimed count beyond the bytes"
    );
}

#[tokio::test]
async fn unloading_answers_waiters_not_coordinator() {
    let h = Harness::new();
    let (_, ha) = h.join_new("g", &[("range", b"")]).await;
    h.m.unload(|g| g == "g");
    assert_eq!(done(ha).await.error_code, ErrorCode::NotCoordinator.code());
    assert_eq!(h.state("g"), "Dead");
}

#[tokio::test]
async fn a_new_member_whose_join_outlasts_the_new_member_timeout_is_dropped() {
    // A new member cannot heartbeat while its JoinGroup waits; if the client gave up on it the
    // member would linger, so it goes after NEW_MEMBER_JOIN_TIMEOUT_MS and its join answers.
    let h = Harness::new();
    let (a, _b) = h.stable_pair("g").await;
    let slow = JoinGroupRequest {
        rebalance_timeout_ms: 600_000,
        ..join_req("g", "", None, &[("range", b"")])
    };
    let first = h.m.join_group(5, slow.clone(), "c", "/h").await;
    let hc = h
        .spawn_join(
            5,
            JoinGroupRequest {
                member_id: first.member_id.clone(),
                ..slow
            },
        )
        .await;
    // a heartbeats (so stays) but never rejoins; b is silent and expires.
    let step = 5000;
    let mut elapsed = 0;
    while elapsed < NEW_MEMBER_JOIN_TIMEOUT_MS - step {
        h.advance(5000).await;
        elapsed += step;
        assert_eq!(
            h.heartbeat("g", &a, 1),
            ErrorCode::RebalanceInProgress.code()
        );
        assert!(!hc.is_finished());
    }
    h.advance(5000).await;
    let rc = done(hc).await;
    assert_eq!(rc.error_code, ErrorCode::UnknownMemberId.code());
    assert_eq!(h.state("g"), "PreparingRebalance");
}
