//! Who a connection is and what it may do.
//!
//! This crate holds the parts of Kafka's security that know nothing of brokers, controllers or
//! the metadata log, so that every listener (the broker's client listeners, the controller and
//! learner listeners) and every inter-node client uses one implementation:
//!
//! - [`protocol`]: the four security protocols of a listener (`listener.security.protocol.map`).
//! - [`principal`]: [`KafkaPrincipal`], the `User:name` a connection acts as — `User:ANONYMOUS`
//!   on a PLAINTEXT listener, the certificate's subject (through `ssl.principal.mapping.rules`)
//!   on an SSL listener, the authenticated SASL user on a SASL listener.
//! - [`stream`]: [`stream::Stream`], the byte stream of one connection, a TCP socket or a TLS
//!   session over one; the one type the network layers read and write.
//! - [`transport`]: how a connection gets its stream — a listener's `ServerSecurity`, and
//!   `connect` for outgoing connections with the layers a `ClientSecurity` asks for.
//! - [`authorizer`]: ACLs and Kafka's `StandardAuthorizer` decision over them.
//!
//! Not here: configuration parsing (the broker's `config`), the records that carry ACLs and SCRAM
//! credentials (the controller's metadata image), and what a request means (`KafkaApis`).

pub mod authorizer;
pub mod principal;
pub mod protocol;
pub mod sasl;
pub mod stream;
pub mod transport;

pub use principal::KafkaPrincipal;
pub use protocol::SecurityProtocol;
pub mod tls;
