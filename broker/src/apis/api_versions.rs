//! ApiVersions: the versions we serve, as PROTOCOL.md's "advertise" column says.
//!
//! The response always uses response header v0 (the frame layer does that). It carries the
//! optional tagged fields (supported / finalized features) only for the Java client (v4+,
//! `ClientSoftwareName` "apache-kafka-java"): Debian's kcat (librdkafka 2.0.2) cannot parse a
//! v3 response that has them, and a client that does not name itself cannot be told apart. Kafka
//! sends them to every v3+ client; the Java client (≥ 4.0) is the one that acts on them: it
//! uses transactions v2 (KIP-890 part 2) when `transaction.version` is finalized at 2, which
//! this broker supports (0–2) and finalizes at 2. Every other client keeps transactions v1.
//! Not below v4: a supported feature whose minimum is 0 must be left out of v0–3 answers (Java
//! clients before 3.9 refuse the whole response, KAFKA-17011 / KAFKA-17492), and those clients
//! have no transactions v2 anyway.

use rafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use rafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, RequestKind};
use rafka_protocol::{ApiKey, VersionRange};

/// The range announced for `key`: what we implement, widened down to 0 where old clients need
/// it to turn features on (Produce: librdkafka < 2.11.1 stops compressing otherwise; a version
/// we do not implement is answered UNSUPPORTED_VERSION if ever really sent, as Kafka 4 does).
pub fn advertised_versions(key: ApiKey) -> Option<VersionRange> {
    // Only what this broker answers: not the private or controller-listener APIs, not the ones
    // whose handlers have not landed (groups, idempotent producers).
    if !handles(key) {
        return None;
    }
    // Produce's schema declares 0–11 so that v0–v2 can be answered UNSUPPORTED_VERSION in their
    // own format (`produce::unsupported_version`); v3–11 are served.
    RequestKind::versions(key)
}

/// The ApiVersions body (any version encodes from it).
pub fn api_versions_response(error_code: i16) -> ApiVersionsResponse {
    ApiVersionsResponse {
        error_code,
        api_keys: ApiKey::ALL
            .iter()
            .filter_map(|&k| {
                advertised_versions(k).map(|r| ApiVersion {
                    api_key: k.key(),
                    min_version: r.min,
                    max_version: r.max,
                    ..Default::default()
                })
            })
            .collect(),
        ..Default::default()
    }
}

/// Kafka's name of the transactions feature (KIP-890 part 2).
pub const TRANSACTION_VERSION_FEATURE: &str = "transaction.version";
/// The levels supported: 0 and 1 are transactions v1 (1 only changes the state record's
/// version), 2 is transactions v2.
pub const TRANSACTION_VERSION_SUPPORTED: (i16, i16) = (0, 2);
/// The level finalized: transactions v2, as a Kafka 4 cluster formatted new finalizes it.
pub const TRANSACTION_VERSION_FINALIZED: i16 = 2;
/// The finalized features' epoch: they never change on a rafka cluster (there is no
/// UpdateFeatures), so one constant epoch above the client's initial -1.
pub const FINALIZED_FEATURES_EPOCH: i64 = 1;
/// The first ApiVersions version whose answer may carry a supported feature with minimum 0.
pub const MIN_FEATURES_VERSION: i16 = 4;
/// The Java client's `ClientSoftwareName`.
pub const JAVA_CLIENT: &str = "apache-kafka-java";

/// The ApiVersions answer to `req` at `version`: [`api_versions_response`], with the features
/// for the clients that read them (see the module's doc).
pub fn answer(version: i16, req: &ApiVersionsRequest) -> ApiVersionsResponse {
    let mut r = api_versions_response(0);
    if version >= MIN_FEATURES_VERSION && req.client_software_name == JAVA_CLIENT {
        let (min, max) = TRANSACTION_VERSION_SUPPORTED;
        r.supported_features = vec![SupportedFeatureKey {
            name: TRANSACTION_VERSION_FEATURE.to_owned(),
            min_version: min,
            max_version: max,
            ..Default::default()
        }];
        r.finalized_features_epoch = FINALIZED_FEATURES_EPOCH;
        r.finalized_features = vec![FinalizedFeatureKey {
            name: TRANSACTION_VERSION_FEATURE.to_owned(),
            max_version_level: TRANSACTION_VERSION_FINALIZED,
            min_version_level: TRANSACTION_VERSION_FINALIZED,
            ..Default::default()
        }];
    }
    r
}

/// Whether this broker answers `key` on its client listeners (what ApiVersions advertises).
pub fn handles(key: rafka_protocol::ApiKey) -> bool {
    use rafka_protocol::ApiKey::*;
    matches!(
        key,
        ApiVersions
            | Metadata
            | Produce
            | Fetch
            | ListOffsets
            | CreateTopics
            | DeleteTopics
            | CreatePartitions
            | ElectLeaders
            | DescribeConfigs
            | AlterConfigs
            | IncrementalAlterConfigs
            | DescribeCluster
            | DescribeLogDirs
            | DeleteRecords
            | OffsetForLeaderEpoch
            | DescribeQuorum
            | FindCoordinator
            | JoinGroup
            | SyncGroup
            | Heartbeat
            | ConsumerGroupHeartbeat
            | ConsumerGroupDescribe
            | LeaveGroup
            | OffsetCommit
            | OffsetFetch
            | ListGroups
            | DescribeGroups
            | DeleteGroups
            | OffsetDelete
            | InitProducerId
            | AddPartitionsToTxn
            | AddOffsetsToTxn
            | EndTxn
            | TxnOffsetCommit
            | DescribeTransactions
            | ListTransactions
            | DescribeProducers
            | SaslHandshake
            | SaslAuthenticate
            | DescribeUserScramCredentials
            | AlterUserScramCredentials
            | DescribeAcls
            | CreateAcls
            | DeleteAcls
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rafka_protocol::ApiKey;

    #[test]
    fn the_java_client_is_told_transactions_v2_and_no_other_client_sees_the_tags() {
        let java = ApiVersionsRequest {
            client_software_name: JAVA_CLIENT.into(),
            client_software_version: "4.0.0".into(),
            ..Default::default()
        };
        let r = answer(4, &java);
        assert_eq!(r.finalized_features.len(), 1);
        assert_eq!(r.finalized_features[0].name, "transaction.version");
        assert_eq!(r.finalized_features[0].max_version_level, 2);
        assert_eq!(r.supported_features[0].max_version, 2);
        assert!(r.finalized_features_epoch >= 0);
        // The tags are on the wire.
        let bytes = rafka_protocol::encode_to_bytes(&r, 4).expect("encodes");
        let plain = rafka_protocol::encode_to_bytes(&api_versions_response(0), 4).expect("encodes");
        assert!(bytes.len() > plain.len());
        // librdkafka (kcat), unnamed clients and pre-v3 requests: the body of before.
        // A Java client before 3.9 (ApiVersions v3) cannot take a supported minimum of 0.
        for (v, name) in [
            (3, "librdkafka"),
            (4, ""),
            (2, JAVA_CLIENT),
            (3, JAVA_CLIENT),
        ] {
            let other = ApiVersionsRequest {
                client_software_name: name.into(),
                ..Default::default()
            };
            assert_eq!(answer(v, &other), api_versions_response(0), "{name} v{v}");
        }
        // The versions transactions v2 needs are advertised with it.
        for (key, v) in [
            (ApiKey::Produce, 12),
            (ApiKey::EndTxn, 5),
            (ApiKey::TxnOffsetCommit, 5),
        ] {
            assert!(
                advertised_versions(key).is_some_and(|r| r.max >= v),
                "{key:?}"
            );
        }
    }
}
