//! The definition side of the configuration (Kafka's `ConfigDef`: a key's name, type, default,
//! validator, importance, scope and documentation, and the parsing of one value against it).
//! It lives in the controller crate, beside the topic configuration table, so that the broker
//! and the controller check a topic config with one rule; this module re-exports it.

pub use rafka_controller::control::config::def::*;
