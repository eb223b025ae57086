//! The HTTP listener (`http.listeners`) of the real binary: health checks, unknown paths,
//! malformed and oversized requests, slow heads, and its connection limit — none of which may
//! hold up the Kafka listener.

mod common;

use common::http::{exchange, get};
use common::{metadata, Cluster, Deadline};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn health_and_unknown_paths() {
    let cluster = Cluster::single();
    let node = &cluster.nodes[0];
    let live = get(node.http_addr(), "/health/live").expect("live");
    assert_eq!(live.status, 200, "{}", live.text());
    let deadline = Deadline::after(Duration::from_secs(20));
    loop {
        let ready = get(node.http_addr(), "/health/ready").expect("ready");
        if ready.status == 200 {
            break;
        }
        assert_eq!(ready.status, 503, "{}", ready.text());
        deadline.check(|| format!("never ready: {}", ready.text()));
        std::thread::sleep(Duration::from_millis(50));
    }
    // `/` is the console (tests/console.rs).
    for path in ["/nope", "/health", "/health/live/x", "/../../etc/passwd"] {
        let r = get(node.http_addr(), path).expect("answer");
        assert_eq!(r.status, 404, "{path}: {}", r.text());
    }
}

#[test]
fn malformed_oversized_and_slow_requests_are_refused() {
    let cluster = Cluster::start(
        1,
        &[
            ("http.max.request.bytes", "16384"),
            ("http.request.timeout.ms", "500"),
        ],
    );
    let node = &cluster.nodes[0];
    let t = Duration::from_secs(10);
    // Not HTTP at all.
    let r = exchange(node.http_addr(), b"GARBAGE\r\n\r\n", t).expect("answer");
    assert_eq!(r.status, 400);
    let r = exchange(
        node.http_addr(),
        b"\x00\x00\x00\x10\x00\x12\x00\x03\r\n\r\n",
        t,
    )
    .expect("answer");
    assert_eq!(r.status, 400);
    // A head above http.max.request.bytes: 431, then closed.
    let mut big = b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 40_000));
    big.extend_from_slice(b"\r\n\r\n");
    let r = exchange(node.http_addr(), &big, t).expect("answer");
    assert_eq!(r.status, 431);
    // Too many headers: 431.
    let mut many = b"GET /health/live HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..200 {
        many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let r = exchange(node.http_addr(), &many, t).expect("answer");
    assert_eq!(r.status, 431);
    // A head that never completes: the connection is closed after http.request.timeout.ms.
    let mut s = TcpStream::connect(node.http_addr()).expect("connect");
    s.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let started = std::time::Instant::now();
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "a slow head held its connection for {:?}",
        started.elapsed()
    );
    // The listener still serves.
    assert_eq!(
        get(node.http_addr(), "/health/live").expect("live").status,
        200
    );
}

#[test]
fn connection_limit_closes_extra_connections_and_spares_kafka() {
    let cluster = Cluster::start(1, &[("http.max.connections", "2")]);
    let node = &cluster.nodes[0];
    // Two idle connections hold the listener's whole allowance.
    let held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(node.http_addr()).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // A third is closed at once, unanswered.
    let mut third = TcpStream::connect(node.http_addr()).expect("connect");
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let _ = third.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut buf = [0u8; 64];
    match third.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the connection over the limit was served: {other:?}"),
    }
    // The Kafka listener is untouched.
    metadata(node.addr(), None, Duration::from_secs(5)).expect("metadata while HTTP is full");
    // Freeing one makes room again.
    drop(held);
    let deadline = Deadline::after(Duration::from_secs(10));
    loop {
        if let Ok(r) = get(node.http_addr(), "/health/live") {
            assert_eq!(r.status, 200);
            break;
        }
        deadline.check(|| "the HTTP listener never made room again".into());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ready_only_once_registered() {
    // A broker-only node whose controller is down is live but not ready; it becomes ready once
    // the controller is back and has unfenced it.
    let mut cluster = Cluster::start_roles(&["controller", "broker"], &[]);
    cluster.nodes[0].kill();
    cluster.nodes[1].kill();
    cluster.nodes[1].start();
    let broker = cluster.node(2).http_addr();
    let deadline = Deadline::after(Duration::from_secs(20));
    loop {
        if let Ok(r) = get(broker, "/health/live") {
            assert_eq!(r.status, 200);
            break;
        }
        deadline.check(|| "the broker's HTTP listener never came up".into());
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = get(broker, "/health/ready").expect("ready");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("not registered"), "{}", r.text());
    cluster.nodes[0].start();
    let deadline = Deadline::after(Duration::from_secs(30));
    loop {
        let r = get(broker, "/health/ready").expect("ready");
        if r.status == 200 {
            break;
        }
        deadline.check(|| format!("never ready after the controller came back: {}", r.text()));
        std::thread::sleep(Duration::from_millis(100));
    }
    let controller = get(cluster.node(1).http_addr(), "/health/ready").expect("ready");
    assert_eq!(controller.status, 200, "{}", controller.text());
}
