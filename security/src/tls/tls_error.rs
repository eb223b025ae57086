//! [`TlsError`]: why a listener's TLS configuration cannot be used.

use std::path::PathBuf;

/// A listener's TLS configuration that cannot be used. Each names the key (or file) at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "{key}={value}: rafka supports only PEM keystores and truststores (set {key}=PEM and \
         give PEM files or PEM values); JKS and PKCS12 are not supported"
    )]
    UnsupportedStoreType { key: String, value: String },
    #[error("{key}={value}: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
    #[error("{0}")]
    Missing(String),
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {reason}")]
    Pem { what: String, reason: String },
    #[error("{what}: cannot decrypt the private key with ssl.key.password: {reason}")]
    Decrypt { what: String, reason: String },
    #[error("cannot build the TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("cannot build the certificate verifier: {0}")]
    Verifier(String),
    /// A dynamic update whose keystore does not match the one in force.
    #[error("{0}")]
    Incompatible(String),
}
