//! A Kafka protocol client on rafka's own codec, for the `rafka` tools and anything else in the
//! workspace that talks to brokers as a client.
//!
//! - [`wire`]: size-prefixed frames and one request/response [`wire::exchange`] on a stream —
//!   the one helper the broker's inter-node clients use too.
//! - [`connection`]: [`BrokerConnection`], one broker, versions negotiated through ApiVersions.
//! - [`client`]: [`Client`], a cluster: bootstrap, brokers from Metadata, leaders, coordinators,
//!   retries with backoff within bounded waits.
//! - [`config`]: [`ClientConfig`] from Kafka's client keys (`--command-config`), security
//!   through `rafka_security::transport`.
//! - [`request`]: [`KafkaRequest`], each request body tied to its response.
//! - [`properties`]: Java `.properties` syntax (shared with the broker's configuration).
//!
//! Not here: what the tools print, or any broker-side logic.

pub mod client;
pub mod config;
pub mod connection;
pub mod consumer;
pub mod consumer_protocol;
pub mod error;
pub mod group_member;
pub mod offsets;
pub mod producer;
pub mod properties;
pub mod records;
pub mod request;
pub mod wire;

pub use client::{BrokerInfo, Client};
pub use config::ClientConfig;
pub use connection::BrokerConnection;
pub use error::ClientError;
pub use request::KafkaRequest;
