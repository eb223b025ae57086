//! Every length written to the wire is checked: a value longer than its prefix can say is an
//! `EncodeError::TooLong` naming the message and field, never a wrapped integer. The issue saw a
//! 32,767-character client id come back in a JoinGroup member id (client id + "-" + a UUID) and
//! produce a malformed response; these are the fields that echo what a client sent.

use bytes::Bytes;
use rafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use rafka_protocol::messages::{
    JoinGroupResponse, RequestHeader, RequestKind, ResponseKind, SyncGroupRequest,
};
use rafka_protocol::{EncodeError, RequestFrame, ResponseFrame};

/// The longest string Kafka writes, and one byte more.
const MAX: usize = i16::MAX as usize;

fn member_id_from(client_id: &str) -> String {
    // As Kafka's group coordinator builds it.
    format!("{client_id}-0b7e4b0e-3f4c-4b7a-9d0c-2a3f5f6e7d8c")
}

fn join_group(member_id: String) -> JoinGroupResponse {
    JoinGroupResponse {
        generation_id: 1,
        protocol_name: Some("range".into()),
        leader: member_id.clone(),
        member_id: member_id.clone(),
        members: vec![JoinGroupResponseMember {
            member_id,
            metadata: Bytes::from_static(b"m"),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn too_long(r: Result<impl std::fmt::Debug, EncodeError>) -> (&'static str, &'static str, usize) {
    match r {
        Err(EncodeError::TooLong {
            message,
            field,
            len,
            max,
            ..
        }) => {
            assert_eq!(max, MAX, "{message}.{field}");
            (message, field, len)
        }
        other => panic!("expected TooLong, got {other:?}"),
    }
}

#[test]
fn a_join_group_member_id_built_from_a_long_client_id_is_an_error_at_every_version() {
    let member_id = member_id_from(&"c".repeat(MAX));
    for v in [0, 5, 6, 9] {
        let frame = ResponseFrame {
            correlation_id: 7,
            api_version: v,
            body: ResponseKind::JoinGroup(join_group(member_id.clone())),
        };
        let (message, field, len) = too_long(frame.encode());
        assert_eq!(message, "JoinGroupResponse", "v{v}");
        assert_eq!(
            field, "JoinGroupResponse.Leader",
            "v{v}: the first long field"
        );
        assert_eq!(len, member_id.len());
        too_long(frame.encode_chunks());
    }
    // The members' ids alone.
    let mut body = join_group("m".into());
    body.members[0].member_id = member_id;
    let (_, field, _) = too_long(rafka_protocol::encode_to_bytes(&body, 9));
    assert_eq!(field, "JoinGroupResponseMember.MemberId");
}

#[test]
fn the_longest_string_kafka_allows_still_encodes_and_decodes() {
    let member_id = "m".repeat(MAX);
    for v in [0, 9] {
        let b = rafka_protocol::encode_to_bytes(&join_group(member_id.clone()), v)
            .expect("0x7fff bytes fit")
            .freeze();
        let back: JoinGroupResponse = rafka_protocol::decode_bytes(&b, v).expect("decodes");
        assert_eq!(back.members[0].member_id.len(), MAX);
    }
}

#[test]
fn a_request_header_client_id_too_long_is_an_error() {
    let frame = RequestFrame {
        header: RequestHeader {
            request_api_key: 14,
            request_api_version: 5,
            correlation_id: 1,
            client_id: Some("c".repeat(MAX + 1)),
            ..Default::default()
        },
        body: RequestKind::SyncGroup(SyncGroupRequest::default()),
    };
    let (message, field, _) = too_long(frame.encode());
    assert_eq!(
        (message, field),
        ("RequestHeader", "RequestHeader.ClientId")
    );
}
