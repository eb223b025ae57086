//! Bad input on the controller listener, over real TCP on 127.0.0.1 with 3 voters in-process:
//!
//! - a garbage frame, a size prefix over the limit or negative, a truncated frame, an unknown
//!   API key, an API the listener does not serve, a Raft RPC whose body does not decode: each
//!   closes that connection only — another client's connection, opened before, keeps being
//!   served, and the quorum keeps its leader and its term;
//! - requests with a stale broker epoch (or an unknown broker) get STALE_BROKER_EPOCH and change
//!   nothing.

mod common;

use bytes::BufMut;
use common::*;
use rafka_controller::network::MAX_FRAME_BYTES;
use rafka_protocol::messages::{
    ApiVersionsRequest, BrokerRegistrationRequest, RequestHeader, RequestKind,
};
use rafka_protocol::{ApiKey, ErrorCode, RequestFrame, Uuid};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn frame(body: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.put_i32(body.len() as i32);
    b.extend_from_slice(body);
    b
}

/// A request header v2 (flexible) for `key`, then `rest`.
fn header_then(key: i16, version: i16, rest: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.put_i16(key);
    b.put_i16(version);
    b.put_i32(7); // correlation id
    b.put_i16(4); // client id
    b.extend_from_slice(b"junk");
    b.put_u8(0); // no tagged fields
    b.extend_from_slice(rest);
    b
}

fn encoded(version: i16, body: RequestKind) -> Vec<u8> {
    RequestFrame {
        header: RequestHeader {
            request_api_key: body.api_key().key(),
            request_api_version: version,
            correlation_id: 1,
            client_id: Some("bad".into()),
            ..Default::default()
        },
        body,
    }
    .encode()
    .expect("encode")
    .to_vec()
}

/// Sends `bytes` (then, if `half_close`, shuts the write side) and expects the listener to close
/// the connection without answering.
async fn expect_closed(addr: &str, case: &str, bytes: &[u8], half_close: bool) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    if half_close {
        s.shutdown().await.expect("shutdown write side");
    }
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
        Ok(Ok(0)) => {}
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Ok(Ok(n)) => panic!("{case}: the listener answered {n} bytes: {:?}", &buf[..n]),
        Ok(Err(e)) => panic!("{case}: {e}"),
        Err(_) => panic!("{case}: the connection is still open after 5 s"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bad_frame_closes_that_connection_only() {
    bounded(Duration::from_secs(60), "bad frames", async {
        let c = Cluster::start(3).await;
        let cluster_id = c.cluster_id(Duration::from_secs(10)).await;
        let mut client = c.client();
        let epoch = register(&mut client, &cluster_id, 1).await;
        let leader = c.leader(Duration::from_secs(10)).await;
        let term = c.node(leader).quorum_info().term;
        // A well-behaved connection to the leader, opened before the garbage.
        let mut good = Connection::connect(&c.voters[&leader])
            .await
            .expect("connect");
        let r = as_allocate(
            good.call(ALLOCATE_V, allocate(1, epoch))
                .await
                .expect("allocate"),
        );
        assert_eq!(r.error_code, 0);

        let oversized = (MAX_FRAME_BYTES as i32 + 1).to_be_bytes();
        let mut truncated = frame(&header_then(ApiKey::AllocateProducerIds.key(), 0, &[0; 32]));
        truncated.truncate(20);
        let cases: Vec<(&str, Vec<u8>, bool)> = vec![
            ("garbage", frame(&[0xff; 10]), false),
            (
                "random bytes, then end of stream",
                (0..200u8).map(|i| i.wrapping_mul(37)).collect(),
                true,
            ),
            ("size over the limit", oversized.to_vec(), false),
            (
                "size over the limit, with data",
                [&oversized[..], &[0u8; 100]].concat(),
                false,
            ),
            ("i32::MAX size", i32::MAX.to_be_bytes().to_vec(), false),
            ("negative size", (-1i32).to_be_bytes().to_vec(), false),
            ("truncated frame", truncated, true),
            ("empty frame", frame(&[]), false),
            ("unknown api key", frame(&header_then(9999, 0, &[])), false),
            (
                "unsupported version",
                frame(&header_then(ApiKey::BrokerHeartbeat.key(), 99, &[0; 16])),
                false,
            ),
            (
                "raft vote with a garbage body",
                frame(&header_then(ApiKey::RaftVote.key(), 0, &[0xfe; 40])),
                false,
            ),
            (
                "broker registration with a garbage body",
                frame(&header_then(
                    ApiKey::BrokerRegistration.key(),
                    4,
                    &[0x7f; 40],
                )),
                false,
            ),
            (
                "an API the controller does not serve",
                encoded(3, RequestKind::ApiVersions(ApiVersionsRequest::default())),
                false,
            ),
        ];
        for (case, bytes, half_close) in &cases {
            for id in c.up() {
                expect_closed(
                    &c.voters[&id],
                    &format!("{case} → node {id}"),
                    bytes,
                    *half_close,
                )
                .await;
            }
        }
        // The other connection, and the quorum, go on as before.
        let r = as_allocate(
            good.call(ALLOCATE_V, allocate(1, epoch))
                .await
                .expect("allocate after the garbage"),
        );
        assert_eq!((r.error_code, r.producer_id_start), (0, 1000), "{r:?}");
        let info = c.node(leader).quorum_info();
        assert_eq!(
            (info.leader, info.term),
            (Some(leader), term),
            "the garbage disturbed the quorum"
        );
        c.converged(Duration::from_secs(10), c.node(leader).image().offset())
            .await;
        c.history.check();
        c.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stale_broker_epoch_gets_stale_broker_epoch_and_changes_nothing() {
    bounded(Duration::from_secs(60), "stale broker epoch", async {
        let c = Cluster::start(3).await;
        let cluster_id = c.cluster_id(Duration::from_secs(10)).await;
        let mut client = c.client();
        let old_epoch = register(&mut client, &cluster_id, 1).await;
        // Broker 1 restarts before it ever heartbeats (still fenced): a new incarnation, a new
        // epoch. Its old incarnation's epoch is now stale.
        let r = client
            .call(
                REGISTRATION_V,
                RequestKind::BrokerRegistration(BrokerRegistrationRequest {
                    incarnation_id: Uuid::from_u128(0xdead_beef),
                    ..match registration(1, &cluster_id) {
                        RequestKind::BrokerRegistration(r) => r,
                        _ => unreachable!(),
                    }
                }),
                Duration::from_secs(10),
            )
            .await;
        let rafka_protocol::messages::ResponseKind::BrokerRegistration(r) = r else {
            panic!("{r:?}")
        };
        assert_eq!(r.error_code, 0, "{r:?}");
        let epoch = r.broker_epoch;
        assert!(epoch > old_epoch);
        let leader = c.leader(Duration::from_secs(10)).await;
        let before = c
            .converged(Duration::from_secs(10), c.node(leader).image().offset())
            .await;
        assert_eq!(before.broker(1).map(|b| b.epoch), Some(epoch));

        let stale = ErrorCode::StaleBrokerEpoch.code();
        let cases: Vec<(&str, RequestKind)> = vec![
            (
                "heartbeat, old incarnation's epoch",
                heartbeat(1, old_epoch, before.offset()),
            ),
            (
                "heartbeat, epoch from the future",
                heartbeat(1, epoch + 100, before.offset()),
            ),
            (
                "heartbeat, unknown broker",
                heartbeat(42, epoch, before.offset()),
            ),
            ("allocate, old epoch", allocate(1, old_epoch)),
            ("allocate, unknown broker", allocate(42, 1)),
        ];
        for (case, req) in cases {
            let version = if matches!(req, RequestKind::BrokerHeartbeat(_)) {
                HEARTBEAT_V
            } else {
                ALLOCATE_V
            };
            let r = client.call(version, req, Duration::from_secs(10)).await;
            assert_eq!(error_code(&r), stale, "{case}: {r:?}");
        }
        // Nothing was written: the same image, at the same offset, everywhere.
        let after = c.converged(Duration::from_secs(10), before.offset()).await;
        assert_eq!(*after, *before, "a refused request changed the metadata");
        assert!(
            after.broker(1).is_some_and(|b| b.fenced),
            "a stale heartbeat unfenced the broker"
        );
        // The controller keeps serving the current epoch.
        let r = as_heartbeat(
            client
                .call(
                    HEARTBEAT_V,
                    heartbeat(1, epoch, after.offset()),
                    Duration::from_secs(10),
                )
                .await,
        );
        assert_eq!(r.error_code, 0, "{r:?}");
        let r = as_allocate(
            client
                .call(ALLOCATE_V, allocate(1, epoch), Duration::from_secs(10))
                .await,
        );
        assert_eq!((r.error_code, r.producer_id_start), (0, 0), "{r:?}");
        c.history.check();
        c.shutdown().await;
    })
    .await;
}
