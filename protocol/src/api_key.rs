//! Kafka API keys.
//!
//! This module owns the [`ApiKey`] enum: every request type the Kafka wire
//! protocol defines, identified by the `int16` key in each request header,
//! with Kafka's CamelCase name for it. The table mirrors
//! Apache Kafka 4.0.0-SNAPSHOT (commit 1eb7644349cb).
//!
//! Decoding an unknown key never panics: [`ApiKey::from_key`] returns `None`.

use std::fmt;

/// API keys from here up are rafka's own, between our nodes only.
pub const PRIVATE_RANGE_START: i16 = 30000;

impl ApiKey {
    /// Whether this key is one of rafka's private ones (never advertised to clients).
    pub const fn is_private(self) -> bool {
        self.key() >= PRIVATE_RANGE_START
    }
}

/// Builds [`ApiKey`] and its lookup methods from a single table of
/// `(key, Variant, "KafkaName")` rows.
macro_rules! api_keys {
    ($(($key:literal, $variant:ident, $name:literal)),* $(,)?) => {
        /// A Kafka API key: which request a message is.
        ///
        /// The discriminant is the wire value, so `ApiKey::X as i16` and
        /// [`ApiKey::key`] agree; ordering follows the key.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(i16)]
        pub enum ApiKey {
            $(
                #[doc = concat!("`", $name, "` (", stringify!($key), ")")]
                $variant = $key,
            )*
        }

        impl ApiKey {
            /// Every API key, in ascending order of key.
            pub const ALL: &'static [ApiKey] = &[$(ApiKey::$variant),*];

            /// The wire value of this API key.
            pub const fn key(self) -> i16 {
                self as i16
            }

            /// Looks up an API key by its wire value; `None` if Kafka defines no
            /// API with that key.
            pub const fn from_key(key: i16) -> Option<ApiKey> {
                match key {
                    $($key => Some(ApiKey::$variant),)*
                    _ => None,
                }
            }

            /// Kafka's CamelCase name for this API, e.g. `"ApiVersions"`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(ApiKey::$variant => $name,)*
                }
            }
        }
    };
}

api_keys! {
    (0, Produce, "Produce"),
    (1, Fetch, "Fetch"),
    (2, ListOffsets, "ListOffsets"),
    (3, Metadata, "Metadata"),
    (4, LeaderAndIsr, "LeaderAndIsr"),
    (5, StopReplica, "StopReplica"),
    (6, UpdateMetadata, "UpdateMetadata"),
    (7, ControlledShutdown, "ControlledShutdown"),
    (8, OffsetCommit, "OffsetCommit"),
    (9, OffsetFetch, "OffsetFetch"),
    (10, FindCoordinator, "FindCoordinator"),
    (11, JoinGroup, "JoinGroup"),
    (12, Heartbeat, "Heartbeat"),
    (13, LeaveGroup, "LeaveGroup"),
    (14, SyncGroup, "SyncGroup"),
    (15, DescribeGroups, "DescribeGroups"),
    (16, ListGroups, "ListGroups"),
    (17, SaslHandshake, "SaslHandshake"),
    (18, ApiVersions, "ApiVersions"),
    (19, CreateTopics, "CreateTopics"),
    (20, DeleteTopics, "DeleteTopics"),
    (21, DeleteRecords, "DeleteRecords"),
    (22, InitProducerId, "InitProducerId"),
    (23, OffsetForLeaderEpoch, "OffsetForLeaderEpoch"),
    (24, AddPartitionsToTxn, "AddPartitionsToTxn"),
    (25, AddOffsetsToTxn, "AddOffsetsToTxn"),
    (26, EndTxn, "EndTxn"),
    (27, WriteTxnMarkers, "WriteTxnMarkers"),
    (28, TxnOffsetCommit, "TxnOffsetCommit"),
    (29, DescribeAcls, "DescribeAcls"),
    (30, CreateAcls, "CreateAcls"),
    (31, DeleteAcls, "DeleteAcls"),
    (32, DescribeConfigs, "DescribeConfigs"),
    (33, AlterConfigs, "AlterConfigs"),
    (34, AlterReplicaLogDirs, "AlterReplicaLogDirs"),
    (35, DescribeLogDirs, "DescribeLogDirs"),
    (36, SaslAuthenticate, "SaslAuthenticate"),
    (37, CreatePartitions, "CreatePartitions"),
    (38, CreateDelegationToken, "CreateDelegationToken"),
    (39, RenewDelegationToken, "RenewDelegationToken"),
    (40, ExpireDelegationToken, "ExpireDelegationToken"),
    (41, DescribeDelegationToken, "DescribeDelegationToken"),
    (42, DeleteGroups, "DeleteGroups"),
    (43, ElectLeaders, "ElectLeaders"),
    (44, IncrementalAlterConfigs, "IncrementalAlterConfigs"),
    (45, AlterPartitionReassignments, "AlterPartitionReassignments"),
    (46, ListPartitionReassignments, "ListPartitionReassignments"),
    (47, OffsetDelete, "OffsetDelete"),
    (48, DescribeClientQuotas, "DescribeClientQuotas"),
    (49, AlterClientQuotas, "AlterClientQuotas"),
    (50, DescribeUserScramCredentials, "DescribeUserScramCredentials"),
    (51, AlterUserScramCredentials, "AlterUserScramCredentials"),
    (52, Vote, "Vote"),
    (53, BeginQuorumEpoch, "BeginQuorumEpoch"),
    (54, EndQuorumEpoch, "EndQuorumEpoch"),
    (55, DescribeQuorum, "DescribeQuorum"),
    (56, AlterPartition, "AlterPartition"),
    (57, UpdateFeatures, "UpdateFeatures"),
    (58, Envelope, "Envelope"),
    (59, FetchSnapshot, "FetchSnapshot"),
    (60, DescribeCluster, "DescribeCluster"),
    (61, DescribeProducers, "DescribeProducers"),
    (62, BrokerRegistration, "BrokerRegistration"),
    (63, BrokerHeartbeat, "BrokerHeartbeat"),
    (64, UnregisterBroker, "UnregisterBroker"),
    (65, DescribeTransactions, "DescribeTransactions"),
    (66, ListTransactions, "ListTransactions"),
    (67, AllocateProducerIds, "AllocateProducerIds"),
    (68, ConsumerGroupHeartbeat, "ConsumerGroupHeartbeat"),
    (69, ConsumerGroupDescribe, "ConsumerGroupDescribe"),
    (70, ControllerRegistration, "ControllerRegistration"),
    (71, GetTelemetrySubscriptions, "GetTelemetrySubscriptions"),
    (72, PushTelemetry, "PushTelemetry"),
    (73, AssignReplicasToDirs, "AssignReplicasToDirs"),
    (74, ListClientMetricsResources, "ListClientMetricsResources"),
    (75, DescribeTopicPartitions, "DescribeTopicPartitions"),
    (76, ShareGroupHeartbeat, "ShareGroupHeartbeat"),
    (77, ShareGroupDescribe, "ShareGroupDescribe"),
    (78, ShareFetch, "ShareFetch"),
    (79, ShareAcknowledge, "ShareAcknowledge"),
    (80, AddRaftVoter, "AddRaftVoter"),
    (81, RemoveRaftVoter, "RemoveRaftVoter"),
    (82, UpdateRaftVoter, "UpdateRaftVoter"),
    (83, InitializeShareGroupState, "InitializeShareGroupState"),
    (84, ReadShareGroupState, "ReadShareGroupState"),
    (85, WriteShareGroupState, "WriteShareGroupState"),
    (86, DeleteShareGroupState, "DeleteShareGroupState"),
    (87, ReadShareGroupStateSummary, "ReadShareGroupStateSummary"),
    // rafka's private range: openraft's RPCs between controllers, on the controller listener
    // only, never advertised.
    (30000, RaftVote, "RaftVote"),
    (30001, RaftAppendEntries, "RaftAppendEntries"),
    (30002, RaftInstallSnapshot, "RaftInstallSnapshot"),
    (30003, RaftPreVote, "RaftPreVote"),
}

impl fmt::Display for ApiKey {
    /// Kafka's name for the API, e.g. `Produce`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn keys_are_unique() {
        let keys: HashSet<i16> = ApiKey::ALL.iter().map(|k| k.key()).collect();
        assert_eq!(keys.len(), ApiKey::ALL.len());
    }

    #[test]
    fn names_are_unique() {
        let names: HashSet<&str> = ApiKey::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), ApiKey::ALL.len());
    }

    #[test]
    fn all_is_sorted_and_contiguous_from_zero() {
        for (i, k) in ApiKey::ALL.iter().filter(|k| !k.is_private()).enumerate() {
            assert_eq!(usize::try_from(k.key()).ok(), Some(i));
        }
        let mut sorted = ApiKey::ALL.to_vec();
        sorted.sort();
        assert_eq!(sorted, ApiKey::ALL);
        assert_eq!(ApiKey::ALL.len(), 88 + 4);
        assert!(ApiKey::ALL
            .iter()
            .filter(|k| k.is_private())
            .all(|k| k.key() >= PRIVATE_RANGE_START));
    }

    #[test]
    fn round_trip_every_key() {
        for &k in ApiKey::ALL {
            assert_eq!(ApiKey::from_key(k.key()), Some(k));
            assert_eq!(k as i16, k.key());
        }
    }

    #[test]
    fn unknown_keys_are_none() {
        for key in [i16::MIN, -1, 88, 1000, 29999, 30004, i16::MAX] {
            assert_eq!(ApiKey::from_key(key), None);
        }
        let known = (i16::MIN..=i16::MAX)
            .filter(|&k| ApiKey::from_key(k).is_some())
            .count();
        assert_eq!(known, ApiKey::ALL.len());
    }

    #[test]
    fn spot_checks() {
        let cases = [
            (0, ApiKey::Produce, "Produce"),
            (1, ApiKey::Fetch, "Fetch"),
            (2, ApiKey::ListOffsets, "ListOffsets"),
            (3, ApiKey::Metadata, "Metadata"),
            (18, ApiKey::ApiVersions, "ApiVersions"),
            (19, ApiKey::CreateTopics, "CreateTopics"),
            (22, ApiKey::InitProducerId, "InitProducerId"),
            (60, ApiKey::DescribeCluster, "DescribeCluster"),
            (
                87,
                ApiKey::ReadShareGroupStateSummary,
                "ReadShareGroupStateSummary",
            ),
        ];
        for (key, k, name) in cases {
            assert_eq!(ApiKey::from_key(key), Some(k));
            assert_eq!(k.key(), key);
            assert_eq!(k.name(), name);
            assert_eq!(k.to_string(), name);
        }
    }
}
