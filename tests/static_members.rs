//! Static members (KIP-345) whose client stops heartbeating: the session expires at its
//! deadline — the coordinator's timer wakes at the earliest deadline, not at a periodic tick —
//! so a DeleteGroups sent right after the deadline finds the group empty (librdkafka 0081).
//! In raw frames, so that the last heartbeat's time is known to the millisecond.

mod common;

use common::{raw_request, Cluster, Deadline};
use rafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use rafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use rafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, HeartbeatRequest,
    JoinGroupRequest, RequestKind, ResponseKind, SyncGroupRequest,
};
use rafka_protocol::ErrorCode;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);
const SESSION_MS: i32 = 6000;
const GROUP: &str = "static-group";

fn call(addr: SocketAddr, version: i16, req: RequestKind) -> ResponseKind {
    raw_request(addr, version, req, T).expect("request answered")
}

fn delete_group(addr: SocketAddr) -> i16 {
    let req = DeleteGroupsRequest {
        groups_names: vec![GROUP.into()],
        ..Default::default()
    };
    match call(addr, 2, RequestKind::DeleteGroups(req)) {
        ResponseKind::DeleteGroups(r) => r.results[0].error_code,
        other => panic!("not DeleteGroups: {other:?}"),
    }
}

fn group_state(addr: SocketAddr) -> (String, usize) {
    let req = DescribeGroupsRequest {
        groups: vec![GROUP.into()],
        ..Default::default()
    };
    match call(addr, 5, RequestKind::DescribeGroups(req)) {
        ResponseKind::DescribeGroups(r) => {
            let g = &r.groups[0];
            (g.group_state.clone(), g.members.len())
        }
        other => panic!("not DescribeGroups: {other:?}"),
    }
}

#[test]
fn a_static_member_that_stops_heartbeating_expires_at_its_deadline() {
    let cluster = Cluster::start(
        1,
        &[
            ("offsets.topic.replication.factor", "1"),
            ("group.initial.rebalance.delay.ms", "0"),
        ],
    );
    let addr = cluster.nodes[0].addr();

    // The coordinator is ready once FindCoordinator answers without error.
    let ready = Deadline::after(Duration::from_secs(30));
    loop {
        let req = FindCoordinatorRequest {
            key: GROUP.into(),
            ..Default::default()
        };
        match call(addr, 3, RequestKind::FindCoordinator(req)) {
            ResponseKind::FindCoordinator(r) if r.error_code == 0 => break,
            other => ready.check(|| format!("no coordinator: {other:?}")),
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    // Join as a static member (no MEMBER_ID_REQUIRED round for static members) and sync.
    let join = JoinGroupRequest {
        group_id: GROUP.into(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: 10_000,
        member_id: String::new(),
        group_instance_id: Some("instance-1".into()),
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupRequestProtocol {
            name: "range".into(),
            metadata: bytes::Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            ..Default::default()
        }],
        ..Default::default()
    };
    let ResponseKind::JoinGroup(j) = call(addr, 7, RequestKind::JoinGroup(join)) else {
        panic!("not JoinGroup")
    };
    assert_eq!(j.error_code, 0, "JoinGroup");
    let sync = SyncGroupRequest {
        group_id: GROUP.into(),
        generation_id: j.generation_id,
        member_id: j.member_id.clone(),
        group_instance_id: Some("instance-1".into()),
        assignments: vec![SyncGroupRequestAssignment {
            member_id: j.member_id.clone(),
            assignment: bytes::Bytes::new(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let ResponseKind::SyncGroup(s) = call(addr, 3, RequestKind::SyncGroup(sync)) else {
        panic!("not SyncGroup")
    };
    assert_eq!(s.error_code, 0, "SyncGroup");

    // The last heartbeat: the session ends at most SESSION_MS after its answer arrives.
    let hb = HeartbeatRequest {
        group_id: GROUP.into(),
        generation_id: j.generation_id,
        member_id: j.member_id.clone(),
        group_instance_id: Some("instance-1".into()),
        ..Default::default()
    };
    let ResponseKind::Heartbeat(h) = call(addr, 3, RequestKind::Heartbeat(hb)) else {
        panic!("not Heartbeat")
    };
    let last_heartbeat = Instant::now();
    assert_eq!(h.error_code, 0, "Heartbeat");
    let deadline = last_heartbeat + Duration::from_millis(SESSION_MS as u64);

    // Before the deadline the member is there, and the group cannot be deleted.
    std::thread::sleep(Duration::from_millis(SESSION_MS as u64 - 1000));
    assert_eq!(group_state(addr), ("Stable".to_string(), 1));
    assert_eq!(delete_group(addr), ErrorCode::NonEmptyGroup.code());

    // 20 ms after the deadline (a periodic 100 ms tick would be up to 100 ms late), it is empty.
    std::thread::sleep(
        deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(20),
    );
    assert_eq!(
        delete_group(addr),
        0,
        "DeleteGroups {} ms after the session deadline",
        deadline.elapsed().as_millis()
    );
}
