//! Versions advertised but not served (PROTOCOL.md): Produce v0–v2 are announced, because
//! librdkafka < 2.11.1 stops compressing otherwise, and answered UNSUPPORTED_VERSION in the
//! request's own version's format, per partition, as Kafka 4 does — never a closed connection
//! (librdkafka 0052 in old-client mode). acks=0 has no response: that connection is closed.

mod common;

use common::{raw_request, Cluster, SyncProducer};
use rafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use rafka_protocol::messages::{ApiVersionsRequest, ProduceRequest, RequestKind, ResponseKind};
use rafka_protocol::{ErrorCode, Records};
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

fn produce(acks: i16) -> ProduceRequest {
    // A message set v1 (one message) — its content is never looked at.
    let message_set = bytes::Bytes::from_static(&[0u8; 40]);
    ProduceRequest {
        acks,
        timeout_ms: 5000,
        topic_data: vec![TopicProduceData {
            name: "old".into(),
            partition_data: (0..2)
                .map(|index| PartitionProduceData {
                    index,
                    records: Some(Records::Bytes(message_set.clone())),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn produce_v0_to_v2_answer_unsupported_version() {
    let cluster = Cluster::single();
    let n = &cluster.nodes[0];
    let admin = common::admin(&n.bootstrap());
    common::create_topic(&admin, n, "old", 2, &[]);

    // Advertised from 0.
    let ResponseKind::ApiVersions(av) = raw_request(
        n.addr(),
        3,
        RequestKind::ApiVersions(ApiVersionsRequest::default()),
        T,
    )
    .expect("ApiVersions") else {
        panic!("not ApiVersions")
    };
    let p = av
        .api_keys
        .iter()
        .find(|k| k.api_key == 0)
        .expect("Produce advertised");
    assert_eq!((p.min_version, p.max_version), (0, 12));

    for version in 0..=2 {
        let r = raw_request(n.addr(), version, RequestKind::Produce(produce(1)), T)
            .unwrap_or_else(|e| panic!("Produce v{version}: {e} (connection closed?)"));
        let ResponseKind::Produce(r) = r else {
            panic!("not a Produce response")
        };
        assert_eq!(r.responses.len(), 1);
        assert_eq!(r.responses[0].name, "old");
        let parts: Vec<(i32, i16)> = r.responses[0]
            .partition_responses
            .iter()
            .map(|p| (p.index, p.error_code))
            .collect();
        let unsupported = ErrorCode::UnsupportedVersion.code();
        assert_eq!(parts, [(0, unsupported), (1, unsupported)], "v{version}");
    }
    // acks=0 has no answer to carry the error: the connection is closed.
    let e = raw_request(
        n.addr(),
        1,
        RequestKind::Produce(produce(0)),
        Duration::from_secs(5),
    );
    let kind = e.as_ref().err().map(std::io::Error::kind);
    assert!(
        matches!(
            kind,
            Some(std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset)
        ),
        "acks=0 v1: closed, not left waiting: {e:?}"
    );

    // Nothing was appended, and v3+ still works.
    let p = SyncProducer::new(&n.bootstrap(), &[]);
    assert_eq!(p.send("old", 0, b"new"), Ok(0));
}
