//! The controller's trust boundary, against the real binary with raw frames (issue #12):
//!
//! - Raft's private RPCs and the controller APIs sent to a client listener close the connection
//!   (Kafka's answer for an API not enabled on a listener); on the controller listener a Raft RPC
//!   from another cluster, without a cluster id, from a non-voter, or with a term beyond an int32
//!   leader epoch is refused with its error code and changes nothing on disk — the topics are
//!   still there, the controller still answers CreateTopics, and the node restarts cleanly;
//! - the controller listener claims memory only as bytes arrive (200 connections announcing
//!   64 MiB frames with 4 bytes each), keeps serving a normal client meanwhile, and closes idle
//!   connections after `connections.max.idle.ms`;
//! - a flipped byte inside the committed part of a stopped node's metadata log stops the next
//!   start with one line naming the segment file and the offset, and truncates nothing;
//! - `meta.properties` that cannot be written stops the node;
//! - `meta.properties` that is garbage, names another node.id or another cluster.id stops the
//!   start with one line.

mod common;

use common::{raw_request, Cluster, Deadline, Node};
use rafka_protocol::messages::{
    create_topics_request, raft_append_entries_request as aer,
    raft_install_snapshot_request as isr, raft_vote_request as vr, AllocateProducerIdsRequest,
    BrokerHeartbeatRequest, BrokerRegistrationRequest, CreateTopicsRequest,
    RaftAppendEntriesRequest, RaftInstallSnapshotRequest, RaftVoteRequest, RequestKind,
    ResponseKind,
};
use rafka_protocol::ErrorCode;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

fn controller_addr(node: &Node) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], node.controller_port))
}

fn cluster_id(node: &Node) -> String {
    let md = common::metadata(node.addr(), None, T).expect("metadata");
    md.cluster_id.expect("the cluster has an id")
}

/// A file named `name` somewhere under `dir`.
fn find_file(dir: &Path, name: &str) -> PathBuf {
    fn walk(dir: &Path, name: &str) -> Option<PathBuf> {
        for e in std::fs::read_dir(dir).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                if let Some(f) = walk(&p, name) {
                    return Some(f);
                }
            } else if p.file_name().is_some_and(|n| n == name) {
                return Some(p);
            }
        }
        None
    }
    walk(dir, name).unwrap_or_else(|| panic!("no {name} under {}", dir.display()))
}

/// The first segment of the metadata log (`__cluster_metadata-0`, beside its quorum-state).
fn metadata_segment(node: &Node) -> PathBuf {
    find_file(&node.log_dir(), "quorum-state").with_file_name("00000000000000000000.log")
}

/// CreateTopics v7 for one topic of one partition, sent to `addr`; its error code.
fn create_topic_at(addr: SocketAddr, name: &str) -> i16 {
    let req = CreateTopicsRequest {
        topics: vec![create_topics_request::CreatableTopic {
            name: name.into(),
            num_partitions: 1,
            replication_factor: 1,
            ..Default::default()
        }],
        timeout_ms: 10_000,
        ..Default::default()
    };
    match raw_request(addr, 7, RequestKind::CreateTopics(req), T).expect("CreateTopics") {
        ResponseKind::CreateTopics(r) => r.topics[0].error_code,
        other => panic!("not CreateTopics: {other:?}"),
    }
}

fn topic_exists(node: &Node, topic: &str) -> bool {
    common::metadata(node.addr(), Some(&[topic]), T)
        .expect("metadata")
        .topics
        .iter()
        .any(|t| t.name.as_deref() == Some(topic) && t.error_code == 0)
}

fn vote(cluster: Option<&str>, term: i64, node_id: i64) -> RequestKind {
    RequestKind::RaftVote(RaftVoteRequest {
        cluster_id: cluster.map(str::to_owned),
        vote: vr::RaftVote {
            term,
            node_id,
            committed: false,
            ..Default::default()
        },
        last_log_id: vr::RaftLogId {
            term: 1,
            node_id: -1,
            index: 1_000_000,
            ..Default::default()
        },
        ..Default::default()
    })
}

/// An AppendEntries that, were it believed, would replace the log from index 0 with one blank
/// entry of a new term — every topic gone.
fn append(cluster: Option<&str>, term: i64, node_id: i64) -> RequestKind {
    RequestKind::RaftAppendEntries(RaftAppendEntriesRequest {
        cluster_id: cluster.map(str::to_owned),
        vote: aer::RaftVote {
            term,
            node_id,
            committed: true,
            ..Default::default()
        },
        prev_log_id: aer::RaftLogId::default(),
        leader_commit: aer::RaftLogId {
            term: term.min(i64::from(i32::MAX)),
            node_id: -1,
            index: 0,
            ..Default::default()
        },
        entries: vec![aer::RaftEntry {
            log_id: aer::RaftLogId {
                term: term.min(i64::from(i32::MAX)),
                node_id: -1,
                index: 0,
                ..Default::default()
            },
            payload_type: 0,
            ..Default::default()
        }],
        ..Default::default()
    })
}

fn snapshot(cluster: Option<&str>, term: i64, node_id: i64) -> RequestKind {
    RequestKind::RaftInstallSnapshot(RaftInstallSnapshotRequest {
        cluster_id: cluster.map(str::to_owned),
        vote: isr::RaftVote {
            term,
            node_id,
            committed: true,
            ..Default::default()
        },
        last_log_id: isr::RaftLogId {
            term: 1,
            node_id: -1,
            index: 5,
            ..Default::default()
        },
        snapshot_id: "forged".into(),
        offset: 0,
        data: bytes::Bytes::from_static(b"not a snapshot"),
        done: true,
        ..Default::default()
    })
}

fn raft_error(resp: ResponseKind) -> i16 {
    match resp {
        ResponseKind::RaftVote(r) => r.error_code,
        ResponseKind::RaftAppendEntries(r) => r.error_code,
        ResponseKind::RaftInstallSnapshot(r) => r.error_code,
        other => panic!("not a raft response: {other:?}"),
    }
}

/// Stops the node with SIGTERM, starts it again and waits until it serves; `topic` survived.
fn restarts_cleanly(cluster: &mut Cluster, topic: &str) {
    let status = cluster.nodes[0].terminate();
    assert!(status.success(), "clean stop: {status:?}");
    cluster.nodes[0].start();
    cluster.wait_ready(Duration::from_secs(30));
    common::wait_for_topic(cluster.node(1), topic, 1, T);
}

#[test]
fn controller_apis_on_the_client_listener_close_the_connection() {
    let mut cluster = Cluster::single();
    let node = cluster.node(1);
    let id = cluster_id(node);
    assert_eq!(create_topic_at(node.addr(), "keep"), 0);
    common::wait_for_topic(node, "keep", 1, T);
    let cases: Vec<(&str, i16, RequestKind)> = vec![
        ("vote", 0, vote(Some(&id), 1_000, 1)),
        ("vote i64::MAX", 0, vote(Some(&id), i64::MAX, 1)),
        ("append", 0, append(Some(&id), 1_000, 1)),
        ("snapshot", 0, snapshot(Some(&id), 1_000, 1)),
        (
            "BrokerRegistration",
            4,
            RequestKind::BrokerRegistration(BrokerRegistrationRequest {
                broker_id: 77,
                cluster_id: id.clone(),
                ..Default::default()
            }),
        ),
        (
            "BrokerHeartbeat",
            1,
            RequestKind::BrokerHeartbeat(BrokerHeartbeatRequest {
                broker_id: 1,
                ..Default::default()
            }),
        ),
        (
            "AllocateProducerIds",
            0,
            RequestKind::AllocateProducerIds(AllocateProducerIdsRequest {
                broker_id: 1,
                ..Default::default()
            }),
        ),
    ];
    for (case, version, body) in cases {
        let r = raw_request(node.addr(), version, body, T);
        assert!(
            r.is_err(),
            "{case} on the client listener was answered: {r:?}"
        );
        // The broker keeps serving other clients.
        assert!(topic_exists(node, "keep"), "after {case}");
    }
    assert_eq!(create_topic_at(controller_addr(node), "after-client"), 0);
    restarts_cleanly(&mut cluster, "keep");
}

#[test]
fn raft_rpcs_on_the_controller_listener_are_checked_before_anything_is_persisted() {
    let mut cluster = Cluster::single();
    let node = cluster.node(1);
    let id = cluster_id(node);
    assert_eq!(create_topic_at(node.addr(), "keep"), 0);
    common::wait_for_topic(node, "keep", 1, T);
    let quorum_state = find_file(&node.log_dir(), "quorum-state");
    let segment = metadata_segment(node);
    let before = std::fs::read(&quorum_state).expect("quorum-state");
    let log_before = std::fs::metadata(&segment).expect("segment").len();

    let cluster_code = ErrorCode::InconsistentClusterId.code();
    let voter_code = ErrorCode::InconsistentVoterSet.code();
    let invalid = ErrorCode::InvalidRequest.code();
    type Rpc = fn(Option<&str>, i64, i64) -> RequestKind;
    let rpcs: [(&str, Rpc); 3] = [("vote", vote), ("append", append), ("snapshot", snapshot)];
    for (name, rpc) in rpcs {
        for (case, cluster_arg, term, sender, want) in [
            (
                "another cluster",
                Some("another-cluster"),
                1_000,
                2,
                cluster_code,
            ),
            ("no cluster id", None, 1_000, 2, cluster_code),
            ("a non-voter", Some(id.as_str()), 1_000, 9, voter_code),
            ("this node itself", Some(id.as_str()), 1_000, 1, voter_code),
            ("term i64::MAX", Some(id.as_str()), i64::MAX, 1, invalid),
            ("term -5", Some(id.as_str()), -5, 1, invalid),
        ] {
            let resp = raw_request(controller_addr(node), 0, rpc(cluster_arg, term, sender), T)
                .unwrap_or_else(|e| panic!("{name} from {case}: {e}"));
            assert_eq!(raft_error(resp), want, "{name} from {case}");
        }
    }
    // Nothing reached the disk: the vote and the log are as they were.
    assert_eq!(
        std::fs::read(&quorum_state).expect("quorum-state"),
        before,
        "the vote is unchanged"
    );
    assert!(topic_exists(node, "keep"));
    // The controller still answers, on its own listener and through the broker.
    assert_eq!(
        create_topic_at(controller_addr(node), "after-controller"),
        0
    );
    assert_eq!(create_topic_at(node.addr(), "after-client"), 0);
    common::wait_for_topic(node, "after-client", 1, T);
    assert!(
        std::fs::metadata(&segment).expect("segment").len() > log_before,
        "the log only grew"
    );
    restarts_cleanly(&mut cluster, "keep");
    common::wait_for_topic(cluster.node(1), "after-client", 1, T);
}

/// On three voters, an AppendEntries that claims to come from voter 2 in a new term — the right
/// cluster id, a term in range — but would rewrite the log from index 0 contradicts what each
/// node has applied: every node refuses it, and nothing committed is lost.
#[test]
fn a_forged_append_from_a_voter_id_cannot_rewrite_committed_metadata() {
    let _serial = common::one_cluster_at_a_time();
    let mut cluster = Cluster::start(3, &[]);
    let id = cluster_id(cluster.node(1));
    assert_eq!(create_topic_at(cluster.node(1).addr(), "keep"), 0);
    for n in 1..=3 {
        common::wait_for_topic(cluster.node(n), "keep", 1, T);
    }
    for n in 1..=3 {
        let resp = raw_request(
            controller_addr(cluster.node(n)),
            0,
            append(Some(&id), 1_000, if n == 2 { 3 } else { 2 }),
            T,
        )
        .expect("answered");
        assert_eq!(
            raft_error(resp),
            ErrorCode::InvalidRequest.code(),
            "node {n} refuses the rewrite"
        );
    }
    for n in 1..=3 {
        assert!(topic_exists(cluster.node(n), "keep"), "node {n}");
    }
    assert_eq!(create_topic_at(cluster.node(2).addr(), "after"), 0);
    for n in 1..=3 {
        common::wait_for_topic(cluster.node(n), "after", 1, T);
    }
    cluster.wait_ready(T);
}

/// VmHWM and VmSize of `pid`, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("VmHWM:"), field("VmSize:"))
}

/// 200 connections each announce a 64 MiB frame and send nothing more. Before the fix each one
/// allocated its announced size (12.5 GiB of address space in all); now a connection claims at
/// most one 64 KiB read step. Stated bounds: resident peak (VmHWM) grows by less than 64 MiB and
/// the address space (VmSize) by less than 1 GiB while they are open.
#[test]
fn the_controller_listener_claims_memory_as_bytes_arrive_and_closes_idle_connections() {
    const IDLE_MS: u64 = 1500;
    let idle = IDLE_MS.to_string();
    let cluster = Cluster::start(1, &[("connections.max.idle.ms", idle.as_str())]);
    let node = cluster.node(1);
    let pid = node.pid().expect("running");
    assert_eq!(create_topic_at(node.addr(), "keep"), 0);
    let (hwm0, size0) = memory_kib(pid);

    let announced = ((64 << 20) - 1i32).to_be_bytes();
    let mut conns: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut s = TcpStream::connect_timeout(&controller_addr(node), T).expect("connect");
            s.write_all(&announced).expect("4 bytes");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // A normal client is served meanwhile, on both listeners.
    assert_eq!(create_topic_at(controller_addr(node), "during"), 0);
    assert!(topic_exists(node, "keep"));
    let (hwm1, size1) = memory_kib(pid);
    eprintln!(
        "VmHWM {hwm0} -> {hwm1} KiB, VmSize {size0} -> {size1} KiB with 200 connections open"
    );
    assert!(
        hwm1.saturating_sub(hwm0) < 64 * 1024,
        "VmHWM grew {} KiB",
        hwm1 - hwm0
    );
    assert!(
        size1.saturating_sub(size0) < 1024 * 1024,
        "VmSize grew {} KiB",
        size1.saturating_sub(size0)
    );

    // After connections.max.idle.ms every silent connection is closed by the node.
    let deadline = Deadline::after(Duration::from_millis(IDLE_MS * 4));
    for (i, s) in conns.iter_mut().enumerate() {
        s.set_read_timeout(Some(deadline.remaining().max(Duration::from_millis(10))))
            .expect("timeout");
        let mut b = [0u8; 16];
        match s.read(&mut b) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("connection {i} still open after the idle timeout: {other:?}"),
        }
    }
    assert_eq!(create_topic_at(controller_addr(node), "after"), 0);
    assert!(node.pid().is_some());
}

/// With `max.connections=20`, 20 silent connections hold every place on the controller listener:
/// a 21st waits in the backlog, unanswered, until the idle ones are closed — then it is served.
#[test]
fn the_controller_listener_caps_its_connections() {
    const IDLE_MS: u64 = 2000;
    let idle = IDLE_MS.to_string();
    let cluster = Cluster::start(
        1,
        &[
            ("connections.max.idle.ms", idle.as_str()),
            ("max.connections", "20"),
        ],
    );
    let node = cluster.node(1);
    let held: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect_timeout(&controller_addr(node), T).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let frame = rafka_protocol::RequestFrame {
        header: rafka_protocol::messages::RequestHeader {
            request_api_key: rafka_protocol::ApiKey::CreateTopics.key(),
            request_api_version: 7,
            correlation_id: 3,
            client_id: Some("21st".into()),
            ..Default::default()
        },
        body: RequestKind::CreateTopics(CreateTopicsRequest {
            topics: vec![create_topics_request::CreatableTopic {
                name: "the-21st".into(),
                num_partitions: 1,
                replication_factor: 1,
                ..Default::default()
            }],
            ..Default::default()
        }),
    }
    .encode()
    .expect("encode");
    let started = std::time::Instant::now();
    let mut late = TcpStream::connect_timeout(&controller_addr(node), T).expect("backlog");
    late.write_all(&frame).expect("send");
    late.set_read_timeout(Some(Duration::from_millis(IDLE_MS / 2)))
        .expect("timeout");
    let mut len = [0u8; 4];
    let early = late.read(&mut len);
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "the 21st connection was served while 20 were open: {early:?}"
    );
    // Once the idle ones are closed, it is accepted and answered.
    late.set_read_timeout(Some(Duration::from_millis(IDLE_MS * 3)))
        .expect("timeout");
    late.read_exact(&mut len)
        .expect("answered after the idle ones closed");
    assert!(
        started.elapsed() >= Duration::from_millis(IDLE_MS / 2),
        "answered after {:?}",
        started.elapsed()
    );
    drop(held);
    common::wait_for_topic(node, "the-21st", 1, T);
}

/// A connection to `addr` from the local address `from` (any of 127.0.0.0/8): std cannot bind
/// before connecting, tokio's `TcpSocket` can.
fn connect_from(addr: SocketAddr, from: &str) -> TcpStream {
    let stream = common::runtime().block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::new(from.parse().expect("address"), 0))
            .expect("bind the client side");
        socket.connect(addr).await.expect("connect")
    });
    let stream = stream.into_std().expect("std stream");
    stream.set_nonblocking(false).expect("blocking");
    stream
}

/// Whether the peer closed `s` within `wait` (an end of stream or a reset).
fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).expect("timeout");
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => true,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => true,
        _ => false,
    }
}

#[test]
fn the_controller_listener_limits_connections_per_address() {
    let cluster = Cluster::start(1, &[("max.connections.per.ip.overrides", "127.0.0.2:2")]);
    let node = cluster.node(1);
    let addr = controller_addr(node);
    let mut held: Vec<TcpStream> = (0..2).map(|_| connect_from(addr, "127.0.0.2")).collect();
    // The third from 127.0.0.2 is closed at once, without an answer...
    let mut third = connect_from(addr, "127.0.0.2");
    assert!(
        closed_within(&mut third, T),
        "a third connection from 127.0.0.2 was kept"
    );
    // ... while the two it has stay open, and 127.0.0.1 is served.
    assert!(!closed_within(&mut held[0], Duration::from_millis(200)));
    assert_eq!(create_topic_at(addr, "per-ip"), ErrorCode::None.code());
    // Once one closes, 127.0.0.2 may connect again and is kept.
    held.pop();
    std::thread::sleep(Duration::from_millis(200));
    let mut again = connect_from(addr, "127.0.0.2");
    assert!(!closed_within(&mut again, Duration::from_millis(300)));
    common::wait_for_topic(node, "per-ip", 1, T);
}

/// The byte positions of the batches in a segment file.
fn batch_positions(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 12 <= bytes.len() {
        out.push(pos);
        let len = i32::from_be_bytes(bytes[pos + 8..pos + 12].try_into().expect("4 bytes"));
        pos += 12 + len as usize;
    }
    out
}

/// Waits for the node to exit; its status and the last line it wrote.
fn failed_start(node: &mut Node) -> (std::process::ExitStatus, String) {
    let deadline = Deadline::after(Duration::from_secs(20));
    loop {
        if let Some(status) = node.exited() {
            node.kill(); // reaps it, so that it can be started again
            let tail = node.log_tail(1);
            return (status, tail.trim().to_owned());
        }
        deadline.check(|| format!("the node kept running\n{}", node.log_tail(20)));
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_corrupt_committed_metadata_entry_stops_the_start_naming_file_and_offset() {
    let mut cluster = Cluster::single();
    for i in 0..5 {
        assert_eq!(create_topic_at(cluster.node(1).addr(), &format!("t{i}")), 0);
    }
    common::wait_for_topic(cluster.node(1), "t4", 1, T);
    let segment = metadata_segment(cluster.node(1));
    assert!(cluster.nodes[0].terminate().success(), "clean stop");

    let mut bytes = std::fs::read(&segment).expect("segment");
    let positions = batch_positions(&bytes);
    assert!(positions.len() > 6, "batches: {}", positions.len());
    let middle = positions.len() / 2;
    let at = positions[middle];
    // A byte of the record data, under the CRC.
    bytes[at + 70] ^= 0x5a;
    std::fs::write(&segment, &bytes).expect("corrupt");

    cluster.nodes[0].start();
    let (status, line) = failed_start(&mut cluster.nodes[0]);
    assert!(!status.success(), "the start must fail: {status:?}");
    assert!(
        line.starts_with("rafka: "),
        "one line for the operator: {line}"
    );
    assert!(
        line.contains(&segment.display().to_string()),
        "names the file: {line}"
    );
    assert!(
        line.contains(&format!("offset {middle} ")),
        "names the offset: {line}"
    );
    assert_eq!(
        std::fs::read(&segment).expect("segment").len(),
        bytes.len(),
        "nothing truncated"
    );
    // Repaired, the node starts and every topic is there.
    bytes[at + 70] ^= 0x5a;
    std::fs::write(&segment, &bytes).expect("repair");
    cluster.nodes[0].start();
    cluster.wait_ready(Duration::from_secs(30));
    for i in 0..5 {
        common::wait_for_topic(cluster.node(1), &format!("t{i}"), 1, T);
    }
}

/// A node that cannot write `meta.properties` once its log names the cluster stops, naming the
/// file, rather than run on without a record of its identity.
#[test]
fn meta_properties_that_cannot_be_written_stops_the_node() {
    let mut cluster = Cluster::single();
    let meta = find_file(&cluster.node(1).log_dir(), "meta.properties");
    assert!(cluster.nodes[0].terminate().success(), "clean stop");
    // Without the file the node writes it again from the log's cluster id; a directory where its
    // temporary file goes makes that write fail.
    std::fs::remove_file(&meta).expect("remove meta.properties");
    let blocker = meta.with_extension("tmp");
    std::fs::create_dir(&blocker).expect("a directory in the temporary file's place");
    cluster.nodes[0].start();
    let (status, line) = failed_start(&mut cluster.nodes[0]);
    assert!(!status.success(), "the node must stop: {line}");
    assert!(line.starts_with("rafka: "), "one line: {line}");
    assert!(
        line.contains("meta.properties") && line.contains("cannot write"),
        "{line}"
    );
    assert!(!meta.exists(), "no meta.properties was written");
    // It stopped in order before exiting: logs flushed and the clean-shutdown marker written.
    assert!(
        cluster
            .node(1)
            .log_dir()
            .join(".kafka_cleanshutdown")
            .is_file(),
        "no clean-shutdown marker: {}",
        cluster.nodes[0].log_tail(20)
    );

    std::fs::remove_dir(&blocker).expect("remove the blocker");
    cluster.nodes[0].start();
    cluster.wait_ready(Duration::from_secs(30));
    let deadline = Deadline::after(Duration::from_secs(10));
    while !meta.is_file() {
        deadline.check(|| "meta.properties written again once it can be".to_owned());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn meta_properties_that_is_garbage_or_another_nodes_stops_the_start() {
    let mut cluster = Cluster::single();
    let id = cluster_id(cluster.node(1));
    let meta = find_file(&cluster.node(1).log_dir(), "meta.properties");
    assert!(cluster.nodes[0].terminate().success(), "clean stop");
    let original = std::fs::read_to_string(&meta).expect("meta.properties");
    assert!(original.contains(&format!("cluster.id={id}")), "{original}");

    for (case, text, expect) in [
        (
            "garbage",
            "\u{1}garbage\u{2}\n".to_owned(),
            "meta.properties",
        ),
        (
            "another node.id",
            original.replace("node.id=1", "node.id=42"),
            "node.id 42",
        ),
        (
            "another cluster.id",
            original.replace(&id, "AnotherClusterIdAAAAAA"),
            "AnotherClusterIdAAAAAA",
        ),
    ] {
        std::fs::write(&meta, &text).expect("write meta.properties");
        cluster.nodes[0].start();
        let (status, line) = failed_start(&mut cluster.nodes[0]);
        assert!(!status.success(), "{case}: the start must fail");
        assert!(line.starts_with("rafka: "), "{case}: one line: {line}");
        assert!(line.contains(expect), "{case}: {line}");
    }
    std::fs::write(&meta, &original).expect("restore");
    cluster.nodes[0].start();
    cluster.wait_ready(Duration::from_secs(30));
}

/// `metadata.log.segment.ms`: the metadata log rolls a segment that old at its next append,
/// as a partition's log does with `segment.ms` (Kafka's `KafkaMetadataLog`).
#[test]
fn the_metadata_log_rolls_by_metadata_log_segment_ms() {
    let cluster = Cluster::start(1, &[("metadata.log.segment.ms", "300")]);
    let node = cluster.node(1);
    let dir = metadata_segment(node)
        .parent()
        .expect("the metadata log's directory")
        .to_path_buf();
    let segments = || {
        std::fs::read_dir(&dir)
            .expect("metadata log directory")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
            .count()
    };
    let before = segments();
    for i in 0..3 {
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(create_topic_at(node.addr(), &format!("roll{i}")), 0);
    }
    assert!(
        segments() >= before + 2,
        "{before} segment(s) before, {} after three writes 400 ms apart",
        segments()
    );
}
