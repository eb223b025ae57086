//! Kafka's topic-name rules (`Topic.validate`): what CreateTopics, the config APIs and the
//! broker's own checks refuse as INVALID_TOPIC_EXCEPTION, with Kafka's messages.

use super::api_error::ApiError;
use rafka_protocol::ErrorCode;

/// The longest topic name Kafka accepts.
pub const MAX_TOPIC_NAME_LENGTH: usize = 249;

/// Kafka's `Topic.validate`: INVALID_TOPIC_EXCEPTION with Kafka's messages.
pub fn validate_topic_name(name: &str) -> Result<(), ApiError> {
    let invalid = |m: String| Err(ApiError::new(ErrorCode::InvalidTopicException, m));
    if name.is_empty() {
        return invalid("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return invalid("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > MAX_TOPIC_NAME_LENGTH {
        return invalid(format!(
            "Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LENGTH} characters, topic name: {name}"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return invalid(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}
