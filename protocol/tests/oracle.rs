//! Cross-checks our codec against an independent one, the `kafka-protocol` crate (a test-only
//! oracle, never in the product), for every (API, version) we implement, requests and
//! responses:
//! - bytes we encode decode in theirs, consuming every byte, and their re-encoding is
//!   byte-identical (so they read the same values we wrote);
//! - bytes they encode decode in ours to the value we started from, and re-encode identically.
//!
//! And it checks that the pairs cross-checked are exactly the "implement" column of
//! `PROTOCOL.md` for the client-facing APIs.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages as kp;
use kafka_protocol::protocol::{Decodable, Encodable};
use rafka_protocol::messages::{self as ours, RequestKind, ResponseKind};
use rafka_protocol::testing::Rng;
use rafka_protocol::{ApiKey, Message};
use std::collections::BTreeSet;

const SEEDS: u64 = 48;

fn check_pair<O: Message, T: Encodable + Decodable + kafka_protocol::protocol::Message>(
    api: ApiKey,
    what: &str,
) -> Vec<i16> {
    let mut versions = Vec::new();
    for v in O::VERSIONS.min..=O::VERSIONS.max {
        // Versions the oracle no longer knows (Kafka 4 removed Produce v0–v2): only answered
        // UNSUPPORTED_VERSION, checked by golden bytes below.
        if v < T::VERSIONS.min {
            assert!(
                ANSWERED_UNSUPPORTED.contains(&(api, v)),
                "{api} v{v} {what}: the oracle does not know it and it is not answer-only"
            );
            continue;
        }
        for seed in 0..SEEDS {
            let mut rng =
                Rng::new(seed.wrapping_mul(0x9e37_79b9) ^ (api.key() as u64) << 32 ^ v as u64);
            let ours_value = O::random(&mut rng, v);
            let ours_bytes = rafka_protocol::encode_to_bytes(&ours_value, v)
                .unwrap_or_else(|e| panic!("{api} v{v} {what}: {e}"))
                .freeze();
            // Ours -> theirs.
            let mut cursor = ours_bytes.clone();
            let theirs = T::decode(&mut cursor, v).unwrap_or_else(|e| {
                panic!("{api} v{v} {what}: theirs cannot decode ours: {e:?}\n{ours_value:?}")
            });
            assert_eq!(
                cursor.remaining(),
                0,
                "{api} v{v} {what}: theirs left bytes over"
            );
            let mut theirs_bytes = BytesMut::new();
            theirs
                .encode(&mut theirs_bytes, v)
                .unwrap_or_else(|e| panic!("{api} v{v} {what}: theirs cannot re-encode: {e:?}"));
            assert_eq!(
                theirs.compute_size(v).expect("their size"),
                ours_bytes.len(),
                "{api} v{v} {what}: sizes differ"
            );
            assert_eq!(
                &theirs_bytes[..],
                &ours_bytes[..],
                "{api} v{v} {what}: theirs re-encoded ours differently\n{ours_value:?}"
            );
            // Theirs -> ours.
            let theirs_bytes: Bytes = theirs_bytes.freeze();
            let back: O = rafka_protocol::decode_bytes(&theirs_bytes, v)
                .unwrap_or_else(|e| panic!("{api} v{v} {what}: ours cannot decode theirs: {e}"));
            assert_eq!(back, ours_value, "{api} v{v} {what}");
            let again = rafka_protocol::encode_to_bytes(&back, v).expect("re-encodes");
            assert_eq!(&again[..], &theirs_bytes[..]);
        }
        versions.push(v);
    }
    versions
}

macro_rules! oracle {
    ($($api:ident: $req:ident, $resp:ident;)*) => {
        fn cross_check_all() -> BTreeSet<(ApiKey, i16)> {
            let mut done = BTreeSet::new();
            $(
                let req = check_pair::<ours::$req, kp::$req>(ApiKey::$api, "request");
                let resp = check_pair::<ours::$resp, kp::$resp>(ApiKey::$api, "response");
                assert_eq!(req, resp, "{}: request and response versions differ", ApiKey::$api);
                done.extend(req.into_iter().map(|v| (ApiKey::$api, v)));
            )*
            done
        }
    };
}

oracle! {
    Produce: ProduceRequest, ProduceResponse;
    Fetch: FetchRequest, FetchResponse;
    ListOffsets: ListOffsetsRequest, ListOffsetsResponse;
    Metadata: MetadataRequest, MetadataResponse;
    OffsetCommit: OffsetCommitRequest, OffsetCommitResponse;
    OffsetFetch: OffsetFetchRequest, OffsetFetchResponse;
    FindCoordinator: FindCoordinatorRequest, FindCoordinatorResponse;
    JoinGroup: JoinGroupRequest, JoinGroupResponse;
    Heartbeat: HeartbeatRequest, HeartbeatResponse;
    LeaveGroup: LeaveGroupRequest, LeaveGroupResponse;
    SyncGroup: SyncGroupRequest, SyncGroupResponse;
    DescribeGroups: DescribeGroupsRequest, DescribeGroupsResponse;
    ListGroups: ListGroupsRequest, ListGroupsResponse;
    ApiVersions: ApiVersionsRequest, ApiVersionsResponse;
    CreateTopics: CreateTopicsRequest, CreateTopicsResponse;
    DeleteTopics: DeleteTopicsRequest, DeleteTopicsResponse;
    DeleteRecords: DeleteRecordsRequest, DeleteRecordsResponse;
    InitProducerId: InitProducerIdRequest, InitProducerIdResponse;
    OffsetForLeaderEpoch: OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse;
    DescribeConfigs: DescribeConfigsRequest, DescribeConfigsResponse;
    AlterConfigs: AlterConfigsRequest, AlterConfigsResponse;
    DescribeLogDirs: DescribeLogDirsRequest, DescribeLogDirsResponse;
    CreatePartitions: CreatePartitionsRequest, CreatePartitionsResponse;
    DeleteGroups: DeleteGroupsRequest, DeleteGroupsResponse;
    ElectLeaders: ElectLeadersRequest, ElectLeadersResponse;
    IncrementalAlterConfigs: IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse;
    OffsetDelete: OffsetDeleteRequest, OffsetDeleteResponse;
    DescribeQuorum: DescribeQuorumRequest, DescribeQuorumResponse;
    DescribeCluster: DescribeClusterRequest, DescribeClusterResponse;
    DescribeProducers: DescribeProducersRequest, DescribeProducersResponse;
    AddPartitionsToTxn: AddPartitionsToTxnRequest, AddPartitionsToTxnResponse;
    AddOffsetsToTxn: AddOffsetsToTxnRequest, AddOffsetsToTxnResponse;
    EndTxn: EndTxnRequest, EndTxnResponse;
    TxnOffsetCommit: TxnOffsetCommitRequest, TxnOffsetCommitResponse;
    DescribeTransactions: DescribeTransactionsRequest, DescribeTransactionsResponse;
    ListTransactions: ListTransactionsRequest, ListTransactionsResponse;
    WriteTxnMarkers: WriteTxnMarkersRequest, WriteTxnMarkersResponse;
    SaslHandshake: SaslHandshakeRequest, SaslHandshakeResponse;
    SaslAuthenticate: SaslAuthenticateRequest, SaslAuthenticateResponse;
    DescribeUserScramCredentials: DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse;
    AlterUserScramCredentials: AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse;
    ConsumerGroupHeartbeat: ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse;
    ConsumerGroupDescribe: ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse;
    DescribeAcls: DescribeAclsRequest, DescribeAclsResponse;
    CreateAcls: CreateAclsRequest, CreateAclsResponse;
    DeleteAcls: DeleteAclsRequest, DeleteAclsResponse;
    AlterPartition: AlterPartitionRequest, AlterPartitionResponse;
    BrokerRegistration: BrokerRegistrationRequest, BrokerRegistrationResponse;
    BrokerHeartbeat: BrokerHeartbeatRequest, BrokerHeartbeatResponse;
    AllocateProducerIds: AllocateProducerIdsRequest, AllocateProducerIdsResponse;
    AssignReplicasToDirs: AssignReplicasToDirsRequest, AssignReplicasToDirsResponse;
}

/// Versions our schema declares only to answer them UNSUPPORTED_VERSION in their own format
/// (PROTOCOL.md's "advertise" beyond "implement"): Produce v0–v2.
const ANSWERED_UNSUPPORTED: [(ApiKey, i16); 3] = [
    (ApiKey::Produce, 0),
    (ApiKey::Produce, 1),
    (ApiKey::Produce, 2),
];

/// Produce v0–v2 as Kafka 2.x/3.x specified them (golden bytes written from the spec): the
/// request without TransactionalId, the response with ThrottleTimeMs from v1 and
/// LogAppendTimeMs from v2.
#[test]
fn produce_v0_to_v2_golden_bytes() {
    use ours::produce_request::{PartitionProduceData, TopicProduceData};
    use ours::produce_response::{PartitionProduceResponse, TopicProduceResponse};
    let req = ours::ProduceRequest {
        acks: 1,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: "t".into(),
            partition_data: vec![PartitionProduceData {
                index: 2,
                records: Some(rafka_protocol::Records::Bytes(Bytes::from_static(b"ab"))),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let want_req: &[u8] = &[
        0, 1, 0, 0, 3, 232, // acks, timeout
        0, 0, 0, 1, 0, 1, b't', // one topic "t"
        0, 0, 0, 1, 0, 0, 0, 2, // one partition, index 2
        0, 0, 0, 2, b'a', b'b', // records
    ];
    for v in 0..=2 {
        let bytes = rafka_protocol::encode_to_bytes(&req, v).expect("encodes");
        assert_eq!(&bytes[..], want_req, "request v{v}");
        let back: ours::ProduceRequest =
            rafka_protocol::decode_bytes(&Bytes::copy_from_slice(want_req), v).expect("decodes");
        assert_eq!(back, req, "request v{v}");
    }
    let resp = ours::ProduceResponse {
        responses: vec![TopicProduceResponse {
            name: "t".into(),
            partition_responses: vec![PartitionProduceResponse {
                index: 2,
                error_code: 35,
                base_offset: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let body: &[u8] = &[
        0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 2, // topic "t", partition 2
        0, 35, 255, 255, 255, 255, 255, 255, 255, 255, // UNSUPPORTED_VERSION, base offset -1
    ];
    let append_time: &[u8] = &[255, 255, 255, 255, 255, 255, 255, 255];
    let throttle: &[u8] = &[0, 0, 0, 0];
    let want = [
        body.to_vec(),
        [body, throttle].concat(),
        [body, append_time, throttle].concat(),
    ];
    for (v, want) in want.iter().enumerate() {
        let bytes = rafka_protocol::encode_to_bytes(&resp, v as i16).expect("encodes");
        assert_eq!(&bytes[..], &want[..], "response v{v}");
    }
}

/// The "implement" column of PROTOCOL.md (the copy at the repository root): (API key, version).
fn protocol_md_implemented() -> BTreeSet<(ApiKey, i16)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../PROTOCOL.md"))
        .expect("PROTOCOL.md at the repository root");
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | key | API | implement | advertise | flexible from | needed by |
        if cells.len() < 5 {
            continue;
        }
        let Ok(key) = cells[1].parse::<i16>() else {
            continue;
        };
        let api = ApiKey::from_key(key).expect("a Kafka api key");
        // "3–11", "4–12 first, then 13–16 (topic ids)", "0": every range named.
        let col = cells[3].split('(').next().unwrap_or("");
        for part in col.split(|c: char| c == ',' || c.is_alphabetic()) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (lo, hi) = match part.split_once('–') {
                Some((a, b)) => (a.trim().parse::<i16>(), b.trim().parse::<i16>()),
                None => (part.parse::<i16>(), part.parse::<i16>()),
            };
            let (lo, hi) = (lo.expect("version"), hi.expect("version"));
            out.extend((lo..=hi).map(|v| (api, v)));
        }
    }
    out
}

#[test]
fn every_implemented_version_agrees_with_the_oracle() {
    let checked = cross_check_all();
    let controller_apis = [
        ApiKey::AlterPartition,
        ApiKey::BrokerRegistration,
        ApiKey::BrokerHeartbeat,
        ApiKey::AllocateProducerIds,
        ApiKey::AssignReplicasToDirs,
        // Inter-broker, not a client listener's API (PROTOCOL.md lists it apart).
        ApiKey::WriteTxnMarkers,
    ];
    let client_facing: BTreeSet<(ApiKey, i16)> = checked
        .iter()
        .copied()
        .filter(|(api, _)| !controller_apis.contains(api))
        .collect();
    let expected = protocol_md_implemented();
    assert_eq!(
        client_facing, expected,
        "cross-checked pairs differ from PROTOCOL.md"
    );
    // Every served API is in the oracle list, so nothing escapes the cross-check.
    for &api in ApiKey::ALL.iter().filter(|k| !k.is_private()) {
        if let Some(r) = RequestKind::versions(api) {
            for v in r.min..=r.max {
                assert!(
                    checked.contains(&(api, v)) || ANSWERED_UNSUPPORTED.contains(&(api, v)),
                    "{api} v{v} is served but not cross-checked"
                );
            }
            assert_eq!(ResponseKind::versions(api), Some(r));
        }
    }
    println!(
        "cross-checked {} (API, version) pairs against kafka-protocol: {} client-facing (= PROTOCOL.md), {} controller-listener",
        checked.len(),
        client_facing.len(),
        checked.len() - client_facing.len()
    );
}
