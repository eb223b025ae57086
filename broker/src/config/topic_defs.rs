//! The topic configuration table (Kafka's `TopicConfig` / `LogConfig`) with each key's broker
//! synonyms. It lives in the controller crate (`rafka_controller::control::config::topic_defs`),
//! whose CreateTopics and AlterConfigs checks use it, so that a forwarded request and the
//! broker's own preprocessing apply one rule; this module re-exports it.

pub use rafka_controller::control::config::topic_defs::{TopicKey, TOPIC_CONFIGS};
