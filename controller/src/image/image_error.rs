//! [`ImageError`]: why a metadata record could not be applied to the image.

use rafka_protocol::Uuid;

/// Why a record could not be applied. The image is unchanged when a record fails; a failed
/// batch is rolled back as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("unknown SCRAM mechanism id {mechanism}")]
    UnknownScramMechanism { mechanism: i8 },
    #[error("user {user} has no {mechanism} credential to remove")]
    UnknownScramCredential {
        user: String,
        mechanism: &'static str,
    },
    #[error("broker {broker_id} is not registered")]
    UnknownBroker { broker_id: i32 },
    #[error("broker {broker_id} has epoch {expected}, the record names epoch {got}")]
    BrokerEpochMismatch {
        broker_id: i32,
        expected: i64,
        got: i64,
    },
    #[error("broker {broker_id}: invalid {field} change {value}")]
    InvalidBrokerChange {
        broker_id: i32,
        field: &'static str,
        value: i8,
    },
    #[error("topic {name} already exists with id {existing}")]
    TopicNameExists { name: String, existing: Uuid },
    #[error("topic id {topic_id} already exists")]
    TopicIdExists { topic_id: Uuid },
    #[error("unknown topic id {topic_id}")]
    UnknownTopic { topic_id: Uuid },
    #[error("unknown partition {partition} of topic id {topic_id}")]
    UnknownPartition { topic_id: Uuid, partition: i32 },
    #[error("partition {partition} of topic id {topic_id}: {reason}")]
    InvalidPartition {
        topic_id: Uuid,
        partition: i32,
        reason: String,
    },
    #[error("next producer id {got} is not above the current {current}")]
    ProducerIdNotIncreasing { current: i64, got: i64 },
    #[error("cluster id is {current}, a record sets it to {got}")]
    ClusterIdChanged { current: String, got: String },
    #[error("offset {got} is not above the image's offset {current}")]
    OffsetNotIncreasing { current: i64, got: i64 },
    #[error("ACL id {id} is already in use")]
    AclIdExists { id: Uuid },
    #[error("unknown ACL id {id}")]
    UnknownAcl { id: Uuid },
    #[error("ACL {id} is invalid: {reason}")]
    InvalidAcl { id: Uuid, reason: String },
    #[error("record {index} of the batch: {source}")]
    InBatch {
        index: usize,
        source: Box<ImageError>,
    },
}
