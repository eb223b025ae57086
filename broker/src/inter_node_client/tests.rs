//! The client against scripted peers on loopback: reuse, reconnects, timeouts, and hostile
//! answers.

use super::*;
use rafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use rafka_protocol::{RequestFrame, ResponseFrame};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// What the scripted peer does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    Answer,
    /// Answer, then close the connection.
    AnswerAndClose,
    /// Close without answering.
    Close,
    /// Never answer (keep the connection open).
    Silent,
    /// Answer with another request's correlation id.
    WrongCorrelation,
    /// Send a size prefix of this many bytes (and nothing else).
    Oversized(i32),
    /// Send a frame that does not decode as the response.
    Garbage,
}

/// A peer on 127.0.0.1 that counts the connections it accepted and acts on the n-th request
/// (over all connections) as `script(n)` says.
struct Peer {
    addr: String,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Peer {
    async fn start(script: fn(usize) -> Act) -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let requests = requests.clone();
                conns.spawn(async move {
                    loop {
                        let Ok(Some(frame)) = rafka_client::wire::read_frame(&mut s, 1 << 20).await
                        else {
                            return;
                        };
                        let req = RequestFrame::decode(&frame).expect("our own request");
                        let n = requests.fetch_add(1, Ordering::SeqCst);
                        let answer = |correlation_id| {
                            ResponseFrame {
                                correlation_id,
                                api_version: req.header.request_api_version,
                                body: ResponseKind::ApiVersions(ApiVersionsResponse::default()),
                            }
                            .encode()
                            .expect("encode")
                        };
                        let cid = req.header.correlation_id;
                        match script(n) {
                            Act::Answer => {
                                let _ = s.write_all(&answer(cid)).await;
                            }
                            Act::AnswerAndClose => {
                                let _ = s.write_all(&answer(cid)).await;
                                return;
                            }
                            Act::Close => return,
                            Act::Silent => {
                                tokio::time::sleep(Duration::from_secs(3600)).await;
                            }
                            Act::WrongCorrelation => {
                                let _ = s.write_all(&answer(cid.wrapping_add(7))).await;
                            }
                            Act::Oversized(size) => {
                                let _ = s.write_all(&size.to_be_bytes()).await;
                            }
                            Act::Garbage => {
                                let mut f = 6i32.to_be_bytes().to_vec();
                                f.extend_from_slice(&cid.to_be_bytes());
                                f.extend_from_slice(&[0xff, 0xff]);
                                let _ = s.write_all(&f).await;
                            }
                        }
                    }
                });
            }
        });
        Peer {
            addr,
            accepted,
            task,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

fn client() -> InterNodeClient {
    InterNodeClient::new(
        "test",
        ConnectionConfig::new("broker-1", Arc::new(Default::default())),
    )
}

fn request() -> RequestKind {
    RequestKind::ApiVersions(ApiVersionsRequest::default())
}

const T: Duration = Duration::from_secs(5);

async fn send(
    c: &InterNodeClient,
    addr: &str,
    purpose: Purpose,
) -> Result<ResponseKind, InterNodeError> {
    c.send(2, addr, purpose, 0, request(), T).await
}

/// Sends [`request`] to node 2 on the forwarding connection in a task of its own.
fn spawn_forward(
    c: &Arc<InterNodeClient>,
    addr: &str,
    timeout: Duration,
) -> tokio::task::JoinHandle<Result<ResponseKind, InterNodeError>> {
    let (c, addr) = (c.clone(), addr.to_owned());
    tokio::spawn(async move {
        c.send(2, &addr, Purpose::Forwarding, 0, request(), timeout)
            .await
    })
}

#[tokio::test]
async fn requests_for_one_node_and_purpose_reuse_one_connection() {
    let peer = Peer::start(|_| Act::Answer).await;
    let c = client();
    for _ in 0..50 {
        let r = send(&c, &peer.addr, Purpose::Forwarding)
            .await
            .expect("answer");
        assert!(matches!(r, ResponseKind::ApiVersions(_)));
    }
    assert_eq!(peer.accepted(), 1, "50 requests, one connection");
    // Concurrent callers take turns on the same connection.
    let c = Arc::new(c);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (c, addr) = (c.clone(), peer.addr.clone());
        tasks.push(tokio::spawn(async move {
            send(&c, &addr, Purpose::Forwarding).await.map(|_| ())
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("answer");
    }
    assert_eq!(peer.accepted(), 1);
    // Another purpose has a connection of its own.
    send(&c, &peer.addr, Purpose::AlterPartition)
        .await
        .expect("answer");
    assert_eq!(peer.accepted(), 2);
    let s = c.stats();
    assert_eq!(s.connection_creation_total.load(Ordering::Relaxed), 2);
    assert_eq!(s.connection_count(), 2);
    assert_eq!(s.request_total.load(Ordering::Relaxed), 71);
}

#[tokio::test]
async fn a_connection_the_peer_closed_is_replaced_without_failing_the_request() {
    let peer = Peer::start(|_| Act::AnswerAndClose).await;
    let c = client();
    for i in 1..=5 {
        // Past the reconnect backoff counted from the previous connection's start.
        tokio::time::sleep(RECONNECT_BACKOFF + Duration::from_millis(20)).await;
        send(&c, &peer.addr, Purpose::Forwarding)
            .await
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(peer.accepted(), i);
    }
}

#[tokio::test]
async fn a_close_under_a_request_is_disconnected_and_the_next_one_reconnects() {
    let peer = Peer::start(|n| if n == 0 { Act::Close } else { Act::Answer }).await;
    let c = client();
    let e = send(&c, &peer.addr, Purpose::Forwarding)
        .await
        .expect_err("closed");
    assert!(
        matches!(e, InterNodeError::Disconnected { node_id: 2, .. }),
        "{e:?}"
    );
    assert!(e.is_connection_lost());
    tokio::time::sleep(RECONNECT_BACKOFF + Duration::from_millis(20)).await;
    send(&c, &peer.addr, Purpose::Forwarding)
        .await
        .expect("reconnected");
    assert_eq!(peer.accepted(), 2);
}

#[tokio::test]
async fn a_peer_that_never_answers_times_out_and_loses_the_connection() {
    let peer = Peer::start(|n| if n == 0 { Act::Silent } else { Act::Answer }).await;
    let c = client();
    let started = std::time::Instant::now();
    let e = c
        .send(
            2,
            &peer.addr,
            Purpose::Forwarding,
            0,
            request(),
            Duration::from_millis(300),
        )
        .await
        .expect_err("silent");
    let took = started.elapsed();
    assert!(matches!(e, InterNodeError::Timeout { .. }), "{e:?}");
    assert!(!e.is_connection_lost());
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(
        c.stats().connection_count(),
        0,
        "a timed-out exchange closes its connection"
    );
    // A caller queued behind the silent request is bounded by its own deadline too.
    send(&c, &peer.addr, Purpose::Forwarding)
        .await
        .expect("a new connection answers");
    assert_eq!(peer.accepted(), 2);
}

#[tokio::test]
async fn a_request_queued_behind_a_slow_one_times_out_on_its_own_deadline() {
    let peer = Peer::start(|_| Act::Silent).await;
    let c = Arc::new(client());
    let slow = spawn_forward(&c, &peer.addr, Duration::from_secs(3));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let e = c
        .send(
            2,
            &peer.addr,
            Purpose::Forwarding,
            0,
            request(),
            Duration::from_millis(200),
        )
        .await
        .expect_err("queued");
    assert!(matches!(e, InterNodeError::Timeout { .. }), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
    slow.abort();
}

#[tokio::test]
async fn an_answer_to_another_request_is_refused_and_the_connection_dropped() {
    let peer = Peer::start(|n| {
        if n == 0 {
            Act::WrongCorrelation
        } else {
            Act::Answer
        }
    })
    .await;
    let c = client();
    let e = send(&c, &peer.addr, Purpose::Forwarding)
        .await
        .expect_err("mismatch");
    match e {
        InterNodeError::CorrelationMismatch {
            node_id, sent, got, ..
        } => {
            assert_eq!(node_id, 2);
            assert_eq!(got, sent.wrapping_add(7));
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(c.stats().connection_count(), 0);
    tokio::time::sleep(RECONNECT_BACKOFF + Duration::from_millis(20)).await;
    send(&c, &peer.addr, Purpose::Forwarding)
        .await
        .expect("reconnected");
    assert_eq!(peer.accepted(), 2);
}

#[tokio::test]
async fn an_oversized_or_negative_frame_is_refused_before_it_is_read() {
    for size in [i32::MAX, 4097, -1] {
        let peer = match size {
            i32::MAX => Peer::start(|_| Act::Oversized(i32::MAX)).await,
            4097 => Peer::start(|_| Act::Oversized(4097)).await,
            _ => Peer::start(|_| Act::Oversized(-1)).await,
        };
        let mut config = ConnectionConfig::new("broker-1", Arc::new(Default::default()));
        config.max_response_bytes = 4096;
        let c = InterNodeClient::new("test", config);
        // Refused at once: the peer sent only the prefix, so waiting for the body would time out.
        let e = send(&c, &peer.addr, Purpose::Forwarding)
            .await
            .expect_err("oversized");
        match e {
            InterNodeError::FrameTooLarge { size: got, max, .. } => {
                assert_eq!((got, max), (size, 4096));
            }
            e => panic!("{size}: {e:?}"),
        }
        assert_eq!(c.stats().connection_count(), 0);
    }
}

#[tokio::test]
async fn an_answer_that_does_not_decode_is_a_decode_error() {
    let peer = Peer::start(|_| Act::Garbage).await;
    let c = client();
    let e = send(&c, &peer.addr, Purpose::Forwarding)
        .await
        .expect_err("garbage");
    assert!(matches!(e, InterNodeError::Decode { .. }), "{e:?}");
    assert_eq!(c.stats().connection_count(), 0);
}

#[tokio::test]
async fn failed_connection_attempts_back_off_exponentially_up_to_the_maximum() {
    // A port nothing listens on.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    let c = client();
    let e = send(&c, &addr, Purpose::Forwarding)
        .await
        .expect_err("refused");
    assert!(matches!(e, InterNodeError::Connect { .. }), "{e:?}");
    let e = send(&c, &addr, Purpose::Forwarding)
        .await
        .expect_err("backoff");
    match e {
        InterNodeError::Backoff { remaining, .. } => assert!(remaining <= RECONNECT_BACKOFF),
        e => panic!("{e:?}"),
    }
    // Each failure doubles the wait: 50, 100, 200, 400, 800, then 1000 ms at most.
    let mut waits = Vec::new();
    for _ in 0..7 {
        let remaining = loop {
            match send(&c, &addr, Purpose::Forwarding).await {
                Err(InterNodeError::Backoff { remaining, .. }) => break remaining,
                Err(InterNodeError::Connect { .. }) => continue,
                other => panic!("{other:?}"),
            }
        };
        waits.push(remaining);
        tokio::time::sleep(remaining + Duration::from_millis(5)).await;
    }
    assert!(
        waits.iter().all(|w| *w <= RECONNECT_BACKOFF_MAX),
        "{waits:?}"
    );
    assert!(waits[3] > Duration::from_millis(250), "{waits:?}");
    assert!(waits[6] > Duration::from_millis(900), "{waits:?}");
    assert_eq!(
        c.stats().connection_creation_total.load(Ordering::Relaxed),
        0
    );
    assert!(
        c.stats()
            .connection_creation_failed_total
            .load(Ordering::Relaxed)
            >= 7
    );
    // A peer that comes up is reached once the backoff has passed.
}

#[tokio::test]
async fn a_dedicated_connection_follows_its_address_and_reports_new_connections() {
    let a = Peer::start(|_| Act::Answer).await;
    let b = Peer::start(|_| Act::Answer).await;
    let c = client();
    let mut conn = c.dedicated(3);
    assert_eq!(conn.connect(&a.addr).await.expect("a"), Connected::New);
    assert_eq!(conn.connect(&a.addr).await.expect("a"), Connected::Existing);
    conn.send(&a.addr, 0, request(), T)
        .await
        .expect("a answers");
    tokio::time::sleep(RECONNECT_BACKOFF + Duration::from_millis(20)).await;
    // The node moved (re-registered elsewhere): the old connection is closed, a new one opened.
    conn.send(&b.addr, 0, request(), T)
        .await
        .expect("b answers");
    assert_eq!((a.accepted(), b.accepted()), (1, 1));
    assert_eq!(c.stats().connection_count(), 1);
    drop(conn);
    assert_eq!(c.stats().connection_count(), 0);
}

#[tokio::test]
async fn shared_connections_unused_past_the_idle_limit_are_closed() {
    let peer = Peer::start(|_| Act::Answer).await;
    let mut config = ConnectionConfig::new("broker-1", Arc::new(Default::default()));
    config.connections_max_idle = Duration::from_millis(200);
    let c = InterNodeClient::new("test", config);
    send(&c, &peer.addr, Purpose::TransactionMarkers)
        .await
        .expect("answer");
    send(&c, &peer.addr, Purpose::Forwarding)
        .await
        .expect("answer");
    assert_eq!(c.stats().connection_count(), 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Any request sweeps the others: the marker connection is closed, this one reopened.
    send(&c, &peer.addr, Purpose::Forwarding)
        .await
        .expect("answer");
    assert_eq!(c.stats().connection_count(), 1);
    assert_eq!(
        peer.accepted(),
        2,
        "the forwarding connection was kept: it was not idle long"
    );
}

#[tokio::test]
async fn a_dedicated_connection_never_waits_behind_a_slow_shared_one() {
    // The first request (on the shared connection) is never answered; the rest are.
    let peer = Peer::start(|n| if n == 0 { Act::Silent } else { Act::Answer }).await;
    let c = Arc::new(client());
    let slow = spawn_forward(&c, &peer.addr, Duration::from_secs(5));
    tokio::time::sleep(Duration::from_millis(100)).await;
    // As the controller channel's heartbeat: its own connection to the same node.
    let mut heartbeat = c.dedicated(2);
    let started = std::time::Instant::now();
    heartbeat
        .send(&peer.addr, 0, request(), Duration::from_millis(500))
        .await
        .expect("answered while the shared connection waits");
    assert!(started.elapsed() < Duration::from_millis(500));
    assert!(!slow.is_finished());
    slow.abort();
}
