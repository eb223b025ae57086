//! TLS for listeners and inter-node connections, with rustls (the `ring` provider), configured
//! from Kafka's `ssl.*` keys.
//!
//! Owns: reading a listener's `ssl.*` keys ([`SslConfig`], PEM keystores and truststores only),
//! loading PEM certificates and (possibly encrypted PKCS#8) keys ([`pem`]), the server side of a
//! listener ([`TlsServer`]: the handshake under a timeout, the client certificate's principal,
//! certificate reload when the files change), the client side of an inter-node connection
//! ([`TlsClient`]), the certificate subject as Kafka prints it ([`distinguished_name`]) and
//! Kafka's `ssl.principal.mapping.rules` ([`SslPrincipalMapper`]).
//!
//! Not here: which listener is SSL (the broker's configuration), SASL (a layer above this one:
//! SASL_SSL is a TLS session carrying SASL), the byte stream type ([`crate::stream::Stream`]).
//!
//! Kernel TLS: Linux can take over a TLS session's record layer (`kTLS`, the `tls` module and
//! `TCP_ULP`), which would let `sendfile(2)` serve fetches on TLS connections. rafka does not
//! use it: rustls does not hand its session keys to the kernel, and the machines rafka is built
//! and tested on have no `tls` module loaded (`/proc/sys/net/ipv4/tcp_available_ulp` does not
//! list `tls`). Fetches on TLS connections are read from the page cache in bounded chunks and
//! encrypted in user space (the broker's `network/connection.rs`).

pub mod client;
pub mod distinguished_name;
pub mod pem;
pub mod principal_mapper;
pub mod server;
pub mod ssl_config;
pub mod tls_error;

pub use client::TlsClient;
pub use principal_mapper::SslPrincipalMapper;
pub use server::{validate_reconfiguration, ReloadTask, TlsHandshakeError, TlsServer};
pub use ssl_config::{ClientAuth, SslConfig};
pub use tls_error::TlsError;
