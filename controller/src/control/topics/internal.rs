//! The topics that belong to the cluster rather than to its clients (Kafka's
//! `org.apache.kafka.common.internals.Topic`), and what a client may do with them. One list in
//! one place: the controller (CreateTopics, DeleteTopics, CreatePartitions) and the broker's
//! client handlers (CreateTopics, Metadata, Produce, Fetch) ask these functions and nothing else.
//!
//! - `__cluster_metadata` is the controller quorum's Raft log, `<metadata.log.dir>/__cluster_metadata-0`
//!   (written by `log_store`, skipped and refused by the storage `LogManager`, so never a
//!   partition of a client topic). It is not a topic at all: no client may create it, grow it,
//!   produce to it, fetch it (by name or by its reserved id) or delete it. Creation answers
//!   INVALID_REQUEST "Creation of internal topic __cluster_metadata is prohibited." as Kafka's
//!   `ControllerApis.createTopics` does; the other operations answer the same code (Kafka never
//!   finds the topic there, since its brokers do not host it; an explicit refusal names why).
//! - Internal topics (`__consumer_offsets`, `__transaction_state`): written only by their
//!   coordinators, which append through the replica manager directly. A client's Produce is
//!   refused with INVALID_TOPIC_EXCEPTION "Cannot append to internal topic …" as Kafka's
//!   `ReplicaManager.appendToLocalLog`; Kafka lets its own admin client id (`__admin_client`)
//!   through, rafka never does (a client id is whatever the client says it is). Deleting one is
//!   refused with INVALID_TOPIC_EXCEPTION, Kafka's answer for deleting records of an internal
//!   topic (Kafka itself leaves topic deletion to its authorizer; rafka has none, so every client
//!   would be an administrator). Creating one through a client's CreateTopics (or Metadata
//!   auto-creation) is refused with INVALID_REQUEST: Kafka relies on ACLs there too, and a
//!   `__consumer_offsets` made by a client with the wrong partition count or `cleanup.policy`
//!   would lose every group's offsets; the broker creates them itself with their own configs.
//!   Clients may still read internal topics and describe or alter their configs, as in Kafka.

use super::super::api_error::ApiError;
use rafka_protocol::{ErrorCode, Uuid};

/// The controller quorum's metadata log, as named on disk (`<dir>/__cluster_metadata-0`).
pub use rafka_storage::log_manager::METADATA_TOPIC as CLUSTER_METADATA_TOPIC_NAME;

/// The group coordinator's topic.
pub const GROUP_METADATA_TOPIC_NAME: &str = "__consumer_offsets";

/// The transaction coordinator's topic.
pub const TRANSACTION_STATE_TOPIC_NAME: &str = "__transaction_state";

/// Kafka's `Topic.INTERNAL_TOPICS`: the coordinators' topics.
pub const INTERNAL_TOPICS: &[&str] = &[GROUP_METADATA_TOPIC_NAME, TRANSACTION_STATE_TOPIC_NAME];

/// The metadata log's topic id, reserved (Kafka's `Uuid.METADATA_TOPIC_ID`, 0:1); no topic is
/// ever given it (`random_uuid::random_uuid` skips 0 and 1).
pub const CLUSTER_METADATA_TOPIC_ID: Uuid = Uuid([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

/// Kafka's `Topic.isInternal`: a coordinator's topic (what Metadata reports as `is_internal`).
pub fn is_internal(topic: &str) -> bool {
    INTERNAL_TOPICS.contains(&topic)
}

/// The controller's own log, by name.
pub fn is_cluster_metadata(topic: &str) -> bool {
    topic == CLUSTER_METADATA_TOPIC_NAME
}

fn prohibited(verb: &str, topic: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidRequest,
        format!("{verb} of internal topic {topic} is prohibited."),
    )
}

/// Whether anyone at all may create `topic` (the controller's check, for every CreateTopics):
/// never the metadata log.
pub fn check_create(topic: &str) -> Result<(), ApiError> {
    if is_cluster_metadata(topic) {
        return Err(prohibited("Creation", topic));
    }
    Ok(())
}

/// Whether a client may create `topic` (CreateTopics or Metadata auto-creation on a client
/// listener): neither the metadata log nor an internal topic.
pub fn check_client_create(topic: &str) -> Result<(), ApiError> {
    check_create(topic)?;
    if is_internal(topic) {
        return Err(prohibited("Creation", topic));
    }
    Ok(())
}

/// Whether partitions may be added to `topic` (CreatePartitions): never the metadata log.
pub fn check_create_partitions(topic: &str) -> Result<(), ApiError> {
    if is_cluster_metadata(topic) {
        return Err(prohibited("Adding partitions", topic));
    }
    Ok(())
}

/// Whether `topic` may be deleted (DeleteTopics; only clients ever ask).
pub fn check_delete(topic: &str) -> Result<(), ApiError> {
    if is_cluster_metadata(topic) {
        return Err(prohibited("Deletion", topic));
    }
    if is_internal(topic) {
        return Err(ApiError::new(
            ErrorCode::InvalidTopicException,
            format!("Cannot delete internal topic {topic}"),
        ));
    }
    Ok(())
}

/// Whether a client's Produce may append to `topic`: neither to the metadata log nor to an
/// internal topic (INVALID_TOPIC_EXCEPTION, Kafka's `appendToLocalLog`).
pub fn check_client_produce(topic: &str) -> Result<(), ApiError> {
    if is_cluster_metadata(topic) || is_internal(topic) {
        return Err(ApiError::new(
            ErrorCode::InvalidTopicException,
            format!("Cannot append to internal topic {topic}"),
        ));
    }
    Ok(())
}

/// Whether a Fetch may read `topic` (by `name`, or by `id` from Fetch v13): not the metadata
/// log, which is replicated by Raft on the controller listener, never served as a partition.
/// Internal topics may be read, as in Kafka.
pub fn check_fetch(name: Option<&str>, id: &Uuid) -> Result<(), ApiError> {
    if name.is_some_and(is_cluster_metadata) || *id == CLUSTER_METADATA_TOPIC_ID {
        return Err(ApiError::new(
            ErrorCode::InvalidTopicException,
            format!("{CLUSTER_METADATA_TOPIC_NAME} is not a topic clients may fetch"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code<T>(r: Result<T, ApiError>) -> Option<ErrorCode> {
        r.err().map(|e| e.code)
    }

    #[test]
    fn the_metadata_log_is_nobodys_topic() {
        let m = CLUSTER_METADATA_TOPIC_NAME;
        assert_eq!(m, "__cluster_metadata");
        assert_eq!(code(check_create(m)), Some(ErrorCode::InvalidRequest));
        assert_eq!(
            check_create(m).unwrap_err().message.as_deref(),
            Some("Creation of internal topic __cluster_metadata is prohibited.")
        );
        assert_eq!(
            code(check_client_create(m)),
            Some(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            code(check_create_partitions(m)),
            Some(ErrorCode::InvalidRequest)
        );
        assert_eq!(code(check_delete(m)), Some(ErrorCode::InvalidRequest));
        assert_eq!(
            code(check_client_produce(m)),
            Some(ErrorCode::InvalidTopicException)
        );
        assert_eq!(
            code(check_fetch(Some(m), &Uuid::ZERO)),
            Some(ErrorCode::InvalidTopicException)
        );
        assert_eq!(
            code(check_fetch(None, &CLUSTER_METADATA_TOPIC_ID)),
            Some(ErrorCode::InvalidTopicException)
        );
        assert_eq!(CLUSTER_METADATA_TOPIC_ID, Uuid::from_u128(1));
        // Not an internal topic in Kafka's sense (Metadata never lists it).
        assert!(!is_internal(m));
    }

    #[test]
    fn internal_topics_are_the_coordinators() {
        for t in [GROUP_METADATA_TOPIC_NAME, TRANSACTION_STATE_TOPIC_NAME] {
            assert!(is_internal(t));
            // The group coordinator creates __consumer_offsets through the controller.
            assert!(check_create(t).is_ok());
            assert_eq!(
                code(check_client_create(t)),
                Some(ErrorCode::InvalidRequest)
            );
            assert!(check_create_partitions(t).is_ok());
            assert_eq!(
                code(check_delete(t)),
                Some(ErrorCode::InvalidTopicException)
            );
            assert_eq!(
                check_client_produce(t).unwrap_err().message,
                Some(format!("Cannot append to internal topic {t}"))
            );
            assert!(check_fetch(Some(t), &Uuid::ZERO).is_ok());
        }
    }

    #[test]
    fn ordinary_topics_are_the_clients() {
        for t in [
            "orders",
            "__orders",
            "_consumer_offsets",
            "__consumer_offsets2",
        ] {
            assert!(!is_internal(t));
            assert!(check_client_create(t).is_ok());
            assert!(check_delete(t).is_ok());
            assert!(check_client_produce(t).is_ok());
            assert!(check_fetch(Some(t), &Uuid::from_u128(7)).is_ok());
        }
    }
}
