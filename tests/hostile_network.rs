//! Hostile clients against the socket server and Fetch (issue #12): every resource a request can
//! claim on the broker's listeners is bounded — connections per IP address (with overrides) and
//! in total, the bytes of requests in flight (`queued.max.request.bytes`), idle and half-sent
//! frames, and the bytes one Fetch can make the broker send (`fetch.max.bytes`, a partition
//! listed many times served once).
//!
//! Each test starts one real broker with the settings under test, attacks it with raw TCP from
//! 127.0.0.1 and 127.0.0.2, checks the broker's answer (a closed connection, a held-back one, a
//! bounded response) and its memory from `/proc/<pid>/status`, then checks that a normal rdkafka
//! producer and consumer still work, that nothing acknowledged was lost, and that the broker
//! restarts cleanly (SIGTERM, exit 0, same data).

mod common;

use common::{Cluster, Deadline, SyncProducer, READY_TIMEOUT};
use rafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use rafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use rafka_protocol::messages::{
    ApiVersionsRequest, DescribeGroupsRequest, FetchRequest, ProduceRequest, RequestHeader,
    RequestKind, ResponseKind,
};
use rafka_protocol::{ApiKey, ErrorCode, Records, RequestFrame, ResponseFrame, Uuid};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);
const TOPIC: &str = "hostile";

// ---- Helpers ----

/// A connection to `addr` from the local address `from` (any of 127.0.0.0/8).
fn connect_from(addr: SocketAddr, from: &str) -> TcpStream {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    let rt = RUNTIME.get_or_init(common::runtime);
    let stream = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(format!("{from}:0").parse().expect("address"))
            .expect("bind the client side");
        socket.connect(addr).await.expect("connect")
    });
    let stream = stream.into_std().expect("std stream");
    stream.set_nonblocking(false).expect("blocking");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
}

/// An ApiVersions v3 request with its size prefix.
fn api_versions(correlation_id: i32) -> Vec<u8> {
    RequestFrame {
        header: RequestHeader {
            request_api_key: ApiKey::ApiVersions as i16,
            request_api_version: 3,
            correlation_id,
            client_id: Some("hostile".into()),
            ..Default::default()
        },
        body: RequestKind::ApiVersions(ApiVersionsRequest {
            client_software_name: "hostile".into(),
            client_software_version: "1".into(),
            ..Default::default()
        }),
    }
    .encode()
    .expect("encodes")
    .to_vec()
}

/// Reads one response frame (without its size prefix); `None` when the connection closed first
/// or nothing came within the stream's read timeout.
fn read_response(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let len = usize::try_from(i32::from_be_bytes(len)).ok()?;
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf).ok()?;
    Some(buf)
}

/// Sends ApiVersions on `s` and checks the answer carries `correlation_id`.
fn answered(s: &mut TcpStream, correlation_id: i32) -> bool {
    if s.write_all(&api_versions(correlation_id)).is_err() {
        return false;
    }
    let Some(frame) = read_response(s) else {
        return false;
    };
    ResponseFrame::decode(ApiKey::ApiVersions, 3, &bytes::Bytes::from(frame))
        .map(|r| r.correlation_id == correlation_id)
        .unwrap_or(false)
}

/// The broker closed `s` (end of stream or reset) within `within`, having sent nothing.
fn closed_by_broker(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).expect("timeout");
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe),
    }
}

/// Nothing arrives on `s` within `wait`, and it stays open.
fn held_back(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).expect("timeout");
    let mut b = [0u8; 1];
    let r = matches!(s.read(&mut b), Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut));
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    r
}

/// (VmHWM, VmSize) of `pid` in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("VmHWM:"), field("VmSize:"))
}

fn broker_pid(cluster: &Cluster) -> u32 {
    cluster.nodes[0].pid().expect("the broker runs")
}

fn record(i: usize) -> String {
    format!("acknowledged record {i:06}")
}

/// Produces `count` records with acks=all (numbered from `from`) to partition 0 of `TOPIC` and
/// checks each is acknowledged at its offset.
fn produce_acked(bootstrap: &str, from: usize, count: usize) {
    let p = SyncProducer::new(bootstrap, &[]);
    for i in from..from + count {
        let offset = p
            .send(TOPIC, 0, record(i).as_bytes())
            .unwrap_or_else(|e| panic!("record {i} not acknowledged: {e:?}"));
        assert_eq!(offset, i as i64, "offset of record {i}");
    }
}

/// A normal client works: `more` new records are acknowledged and every acknowledged record,
/// the `acked` before them included, is read back in order. Returns the new total.
fn normal_client_works(cluster: &Cluster, acked: usize, more: usize) -> usize {
    let bootstrap = cluster.nodes[0].bootstrap();
    produce_acked(&bootstrap, acked, more);
    let total = acked + more;
    let got = common::read_all(&bootstrap, TOPIC, &[total], T);
    for (i, m) in got[0].iter().enumerate() {
        assert_eq!(
            m.payload.as_deref(),
            Some(record(i).as_bytes()),
            "offset {i}"
        );
    }
    total
}

/// SIGTERM, a clean exit, a start on the same data, and every acknowledged record still there.
fn restarts_cleanly(cluster: &mut Cluster, acked: usize) {
    let status = cluster.nodes[0].terminate();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    cluster.nodes[0].start();
    cluster.wait_ready(READY_TIMEOUT);
    common::wait_for_topic(&cluster.nodes[0], TOPIC, 1, T);
    normal_client_works(cluster, acked, 1);
}

/// A broker with `extra` settings and `TOPIC` (1 partition) holding `acked` records.
fn broker(extra: &[(&str, &str)], acked: usize) -> Cluster {
    let cluster = Cluster::start(1, extra);
    let admin = common::admin(&cluster.nodes[0].bootstrap());
    common::create_topic(&admin, &cluster.nodes[0], TOPIC, 1, &[]);
    produce_acked(&cluster.nodes[0].bootstrap(), 0, acked);
    cluster
}

// ---- Connection quotas ----

#[test]
fn per_ip_limit_closes_the_extra_connection_at_once_and_the_override_allows_more() {
    let _one = common::one_cluster_at_a_time();
    // 127.0.0.2 gets the default (2); 127.0.0.1, named as a host, gets 8 (room for the test's
    // own rdkafka clients afterwards).
    let mut cluster = broker(
        &[
            ("max.connections.per.ip", "2"),
            ("max.connections.per.ip.overrides", "localhost:8"),
        ],
        10,
    );
    let addr = cluster.nodes[0].addr();
    // Connections of the harness's readiness probes may still be closing.
    std::thread::sleep(Duration::from_millis(300));

    let mut from_2: Vec<TcpStream> = (0..2).map(|_| connect_from(addr, "127.0.0.2")).collect();
    for (i, s) in from_2.iter_mut().enumerate() {
        assert!(answered(s, i as i32), "connection {i} from 127.0.0.2");
    }
    let mut third = connect_from(addr, "127.0.0.2");
    let _ = third.write_all(&api_versions(99));
    assert!(
        closed_by_broker(&mut third, Duration::from_secs(5)),
        "the third connection from 127.0.0.2 is closed at once, unanswered"
    );

    let mut from_1: Vec<TcpStream> = (0..8).map(|_| connect_from(addr, "127.0.0.1")).collect();
    for (i, s) in from_1.iter_mut().enumerate() {
        assert!(answered(s, 100 + i as i32), "connection {i} from 127.0.0.1");
    }
    let mut ninth = connect_from(addr, "127.0.0.1");
    assert!(
        closed_by_broker(&mut ninth, Duration::from_secs(5)),
        "the ninth connection from 127.0.0.1 is closed"
    );
    // The refusals are counted (logged one line each, naming the address and its maximum).
    let log = cluster.nodes[0].log_tail(400);
    assert!(
        log.contains("too many connections from 127.0.0.2 (maximum = 2)")
            && log.contains("too many connections from 127.0.0.1 (maximum = 8)"),
        "refusals logged:\n{log}"
    );
    // The admitted ones keep working.
    assert!(answered(&mut from_2[0], 200));

    // Closing connections gives their address room again.
    drop(from_2);
    let deadline = Deadline::after(Duration::from_secs(10));
    loop {
        let mut again = connect_from(addr, "127.0.0.2");
        if answered(&mut again, 300) {
            break;
        }
        deadline.check(|| "127.0.0.2 never got its room back".into());
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(from_1);
    std::thread::sleep(Duration::from_millis(300));
    let acked = normal_client_works(&cluster, 10, 10);
    restarts_cleanly(&mut cluster, acked);
}

#[test]
fn max_connections_holds_the_next_connection_back_until_one_closes() {
    let _one = common::one_cluster_at_a_time();
    let mut cluster = broker(&[("max.connections", "5")], 10);
    let addr = cluster.nodes[0].addr();
    std::thread::sleep(Duration::from_millis(300));

    let mut open: Vec<TcpStream> = (0..5).map(|_| connect_from(addr, "127.0.0.1")).collect();
    for (i, s) in open.iter_mut().enumerate() {
        assert!(answered(s, i as i32), "connection {i} of 5");
    }
    // The sixth completes the TCP handshake (the kernel's backlog) but is not served...
    let mut sixth = connect_from(addr, "127.0.0.2");
    sixth.write_all(&api_versions(6)).expect("send");
    assert!(
        held_back(&mut sixth, Duration::from_millis(800)),
        "a sixth connection is held back, not served"
    );
    // ...until one of the five closes; then it is answered, not dropped.
    drop(open.remove(0));
    assert_eq!(
        read_response(&mut sixth).map(|f| {
            ResponseFrame::decode(ApiKey::ApiVersions, 3, &bytes::Bytes::from(f))
                .expect("decodes")
                .correlation_id
        }),
        Some(6)
    );
    drop(open);
    drop(sixth);
    std::thread::sleep(Duration::from_millis(300));
    let acked = normal_client_works(&cluster, 10, 10);
    restarts_cleanly(&mut cluster, acked);
}

// ---- Idle and half-sent frames, memory ----

/// What a broker of this test may add to its peak resident memory while 600 connections send
/// a size prefix (or a partial frame) and stop: each holds a task and a buffer of a few KiB,
/// never the 100 MiB it announced.
const PREFIX_FLOOD_HWM_GROWTH_KIB: u64 = 64 * 1024;
/// ... and to its address space (no 100 MiB reservations on a prefix, not even virtual ones).
const PREFIX_FLOOD_VMSIZE_GROWTH_KIB: u64 = 256 * 1024;

#[test]
fn connections_that_send_only_a_prefix_or_part_of_a_frame_claim_little_and_are_closed_when_idle() {
    let _one = common::one_cluster_at_a_time();
    let mut cluster = broker(&[("connections.max.idle.ms", "4000")], 10);
    let addr = cluster.nodes[0].addr();
    let pid = broker_pid(&cluster);
    let (hwm0, size0) = memory_kib(pid);

    // 500 connections announce a frame of socket.request.max.bytes (100 MiB) and stop there;
    // 100 announce 100 000 bytes and send half of them.
    let started = Instant::now();
    let announce = 104_857_600i32.to_be_bytes();
    let mut prefixes: Vec<TcpStream> = (0..500)
        .map(|i| {
            let mut s = connect_from(addr, if i % 2 == 0 { "127.0.0.1" } else { "127.0.0.2" });
            s.write_all(&announce).expect("prefix");
            s
        })
        .collect();
    let mut partial_frame = 100_000i32.to_be_bytes().to_vec();
    partial_frame.extend(std::iter::repeat_n(7u8, 50_000));
    let mut partials: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut s = connect_from(addr, "127.0.0.2");
            s.write_all(&partial_frame).expect("partial frame");
            s
        })
        .collect();

    // A normal client is served meanwhile.
    let acked = normal_client_works(&cluster, 10, 20);
    let (hwm1, size1) = memory_kib(pid);
    eprintln!(
        "prefix flood: VmHWM {hwm0} -> {hwm1} KiB (+{}), VmSize {size0} -> {size1} KiB (+{})",
        hwm1.saturating_sub(hwm0),
        size1.saturating_sub(size0)
    );
    assert!(
        hwm1.saturating_sub(hwm0) < PREFIX_FLOOD_HWM_GROWTH_KIB,
        "VmHWM grew by {} KiB",
        hwm1 - hwm0
    );
    assert!(
        size1.saturating_sub(size0) < PREFIX_FLOOD_VMSIZE_GROWTH_KIB,
        "VmSize grew by {} KiB",
        size1 - size0
    );

    // connections.max.idle.ms closes every one of them, prefix-only and half-sent alike.
    for (i, s) in prefixes.iter_mut().chain(partials.iter_mut()).enumerate() {
        let left = Duration::from_secs(20).saturating_sub(started.elapsed());
        assert!(
            closed_by_broker(s, left.max(Duration::from_millis(100))),
            "connection {i} still open {:?} after it went quiet",
            started.elapsed()
        );
    }
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "closed before connections.max.idle.ms"
    );
    drop((prefixes, partials));
    let acked = normal_client_works(&cluster, acked, 5);
    restarts_cleanly(&mut cluster, acked);
}

/// The pools of the next test (`queued.max.request.bytes`: the frames' bytes, and what decoding
/// and answering them may cost, each this size).
const POOL_BYTES: usize = 24 << 20;
/// Produce frames (their records stay slices of the frame: no decode room): one fits the byte
/// pool at a time, eight are sent at once.
const FRAME_BYTES: usize = 20 << 20;
/// DescribeGroups frames whose decoded cost (128 times their bytes) just fits the decode pool:
/// four sent at once are served one at a time; one of 1 MiB could never fit and is refused.
const COSTLY_FRAME_BYTES: usize = POOL_BYTES / 128 - 4096;
const TOO_COSTLY_FRAME_BYTES: usize = 1 << 20;
/// What the broker may add to its peak resident memory while they are handled: the one Produce
/// frame the byte pool admits at a time plus one DescribeGroups and its decoded form and
/// response, measured (with 20 MiB DescribeGroups frames served one at a time) at +95 MiB, with
/// room to spare — and well below what the same broker reached with an unbounded pool
/// (measured: +262 MiB).
const HUGE_FRAMES_HWM_GROWTH_KIB: u64 = 180 * 1024;
const HUGE_FRAMES: usize = 8;
const COSTLY_FRAMES: usize = 4;

/// A DescribeGroups v5 request of about `bytes` bytes: group ids of 256 bytes.
fn describe_groups_frame(correlation_id: i32, bytes: usize) -> Vec<u8> {
    let groups: Vec<String> = (0..bytes / 262)
        .map(|g| format!("{correlation_id:02}-{g:08}-{}", "g".repeat(244)))
        .collect();
    RequestFrame {
        header: RequestHeader {
            request_api_key: ApiKey::DescribeGroups as i16,
            request_api_version: 5,
            correlation_id,
            client_id: Some("hostile".into()),
            ..Default::default()
        },
        body: RequestKind::DescribeGroups(DescribeGroupsRequest {
            groups,
            ..Default::default()
        }),
    }
    .encode()
    .expect("encodes")
    .to_vec()
}

/// A Produce v7 request (acks=1) of about `bytes` bytes of records to a topic that does not
/// exist: answered UNKNOWN_TOPIC_OR_PARTITION once the broker has read it whole.
fn produce_frame(correlation_id: i32, bytes: usize) -> Vec<u8> {
    RequestFrame {
        header: RequestHeader {
            request_api_key: ApiKey::Produce as i16,
            request_api_version: 7,
            correlation_id,
            client_id: Some("hostile".into()),
            ..Default::default()
        },
        body: RequestKind::Produce(ProduceRequest {
            acks: 1,
            timeout_ms: 30_000,
            topic_data: vec![TopicProduceData {
                name: format!("absent-{correlation_id}"),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(Records::Bytes(bytes::Bytes::from(vec![0u8; bytes]))),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
    }
    .encode()
    .expect("encodes")
    .to_vec()
}

#[test]
fn huge_frames_from_several_connections_at_once_are_held_to_queued_max_request_bytes() {
    let _one = common::one_cluster_at_a_time();
    let (max_request, pool) = ((21u32 << 20).to_string(), POOL_BYTES.to_string());
    let mut cluster = broker(
        &[
            ("socket.request.max.bytes", max_request.as_str()),
            ("queued.max.request.bytes", pool.as_str()),
        ],
        10,
    );
    let addr = cluster.nodes[0].addr();
    let pid = broker_pid(&cluster);
    let (hwm0, _) = memory_kib(pid);

    let send = |bytes: Vec<u8>| {
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(40)))
                .expect("timeout");
            s.write_all(&bytes).expect("send the frame");
            read_response(&mut s)
        })
    };
    let produces: Vec<_> = (0..HUGE_FRAMES)
        .map(|i| {
            let bytes = produce_frame(i as i32, FRAME_BYTES);
            assert!(bytes.len() - 4 < 21 << 20, "under socket.request.max.bytes");
            send(bytes)
        })
        .collect();
    let costly: Vec<_> = (0..COSTLY_FRAMES)
        .map(|i| send(describe_groups_frame(100 + i as i32, COSTLY_FRAME_BYTES)))
        .collect();
    let too_costly = send(describe_groups_frame(200, TOO_COSTLY_FRAME_BYTES));
    // A normal client is served while they are.
    let acked = normal_client_works(&cluster, 10, 5);
    for (i, h) in produces.into_iter().enumerate() {
        let response = h.join().expect("sender").expect("a Produce response");
        let r = ResponseFrame::decode(ApiKey::Produce, 7, &bytes::Bytes::from(response))
            .expect("decodes");
        assert_eq!(r.correlation_id, i as i32);
        let ResponseKind::Produce(body) = r.body else {
            panic!("not Produce");
        };
        assert_eq!(
            body.responses[0].partition_responses[0].error_code,
            ErrorCode::UnknownTopicOrPartition.code()
        );
    }
    for (i, h) in costly.into_iter().enumerate() {
        let response = h
            .join()
            .expect("sender")
            .expect("a DescribeGroups response");
        let r = ResponseFrame::decode(ApiKey::DescribeGroups, 5, &bytes::Bytes::from(response))
            .expect("decodes");
        assert_eq!(r.correlation_id, 100 + i as i32);
        let ResponseKind::DescribeGroups(body) = r.body else {
            panic!("not DescribeGroups");
        };
        assert_eq!(
            body.groups.len(),
            COSTLY_FRAME_BYTES / 262,
            "every group answered"
        );
    }
    // Decoding it could cost more than the whole pool: closed without an answer.
    assert!(too_costly.join().expect("sender").is_none());
    let (hwm1, size1) = memory_kib(pid);
    eprintln!(
        "eight 20 MiB Produce frames and five costly DescribeGroups, 24 MiB pools: VmHWM {hwm0} \
         -> {hwm1} KiB (+{}), VmSize {size1} KiB",
        hwm1 - hwm0
    );
    assert!(
        hwm1 - hwm0 < HUGE_FRAMES_HWM_GROWTH_KIB,
        "VmHWM grew by {} KiB",
        hwm1 - hwm0
    );
    let acked = normal_client_works(&cluster, acked, 5);
    restarts_cleanly(&mut cluster, acked);
}

// ---- Fetch ----

/// A Fetch listing each of `partitions` (by name for v12, by id for v16) `times` times, asking
/// for everything: max_bytes and partition_max_bytes i32::MAX.
fn greedy_fetch(
    version: i16,
    topic: &str,
    id: Uuid,
    partitions: &[i32],
    times: usize,
) -> FetchRequest {
    let mut listed = Vec::new();
    for _ in 0..times {
        for &p in partitions {
            listed.push(FetchPartition {
                partition: p,
                fetch_offset: 0,
                partition_max_bytes: i32::MAX,
                ..Default::default()
            });
        }
    }
    FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        min_bytes: 1,
        max_bytes: i32::MAX,
        topics: vec![FetchTopic {
            topic: if version <= 12 {
                topic.into()
            } else {
                String::new()
            },
            topic_id: id,
            partitions: listed,
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn fetch_listing_partitions_a_thousand_times_answers_each_once_within_fetch_max_bytes() {
    let _one = common::one_cluster_at_a_time();
    const FETCH_MAX: usize = 4 << 20;
    let fetch_max = FETCH_MAX.to_string();
    let mut cluster = broker(&[("fetch.max.bytes", fetch_max.as_str())], 10);
    let node = &cluster.nodes[0];
    let bootstrap = node.bootstrap();
    let admin = common::admin(&bootstrap);
    common::create_topic(&admin, node, "wide", 4, &[]);
    // 3 MiB in each of 4 partitions: 12 MiB in all, three times fetch.max.bytes.
    let p = common::producer(&bootstrap, &[("acks", "1"), ("linger.ms", "5")]);
    let value = vec![b'v'; 1024];
    for i in 0..4 * 3072 {
        p.send(
            rdkafka::producer::BaseRecord::<(), [u8]>::to("wide")
                .partition(i % 4)
                .payload(&value[..]),
        )
        .map_err(|(e, _)| e)
        .expect("send");
        if i % 500 == 0 {
            p.poll(Duration::ZERO);
        }
    }
    common::flush(&p, T);
    drop(p);
    let md = common::metadata(node.addr(), Some(&["wide"]), T).expect("metadata");
    let id = md.topics[0].topic_id;

    for version in [12i16, 16] {
        // 4 partitions × 250 = 1000 listings, in the order 0,1,2,3,0,1,2,3,...
        let req = greedy_fetch(version, "wide", id, &[0, 1, 2, 3], 250);
        let ResponseKind::Fetch(resp) =
            common::raw_request(node.addr(), version, RequestKind::Fetch(req), T).expect("fetch")
        else {
            panic!("not a Fetch response");
        };
        let parts: Vec<_> = resp.responses.iter().flat_map(|t| &t.partitions).collect();
        assert_eq!(
            parts.iter().map(|p| p.partition_index).collect::<Vec<_>>(),
            vec![0, 1, 2, 3],
            "v{version}: each partition once, in the order first listed"
        );
        let sizes: Vec<usize> = parts
            .iter()
            .map(|p| match &p.records {
                Some(Records::Bytes(b)) => b.len(),
                Some(other) => panic!("records {other:?}"),
                None => 0,
            })
            .collect();
        let total: usize = sizes.iter().sum();
        eprintln!("v{version}: record bytes per partition {sizes:?}, total {total}");
        assert!(
            total <= FETCH_MAX,
            "v{version}: {total} bytes above fetch.max.bytes"
        );
        assert!(
            total > FETCH_MAX / 2,
            "v{version}: the cap is used, {total} bytes"
        );
        assert!(parts.iter().all(|p| p.error_code == ErrorCode::None.code()));
    }

    // An unknown topic id listed twice is answered once, with UNKNOWN_TOPIC_ID.
    let unknown = Uuid([9; 16]);
    let req = greedy_fetch(16, "", unknown, &[0], 2);
    let ResponseKind::Fetch(resp) =
        common::raw_request(node.addr(), 16, RequestKind::Fetch(req), T).expect("fetch")
    else {
        panic!("not a Fetch response");
    };
    let parts: Vec<_> = resp.responses.iter().flat_map(|t| &t.partitions).collect();
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].error_code, ErrorCode::UnknownTopicId.code());

    drop(admin);
    let acked = normal_client_works(&cluster, 10, 5);
    restarts_cleanly(&mut cluster, acked);
}
