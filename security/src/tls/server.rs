//! [`TlsServer`]: the TLS side of one listener — its rustls configuration (swapped when the
//! keystore or truststore files change), the handshake of each accepted connection, and the
//! principal its client certificate names.
//!
//! Thread-safety: shared by every connection of the listener (`Arc`). The current rustls
//! configuration sits behind a `RwLock` held only to clone or replace an `Arc`, never across an
//! `.await`; a connection takes the configuration in force when it is accepted and keeps it.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime};

use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

use super::distinguished_name::subject_rfc2253;
use super::pem::{load_key_pair, root_store};
use super::ssl_config::{ClientAuth, KeystoreSource, TruststoreSource};
use super::{SslConfig, TlsError};
use crate::transport::Stream;
use crate::KafkaPrincipal;

/// The first byte of a TLS record carrying a handshake message (`ContentType.handshake`).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// How often [`TlsServer::watch`] looks at the files' modification times.
pub const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// Why an accepted connection did not become a TLS session.
#[derive(Debug, thiserror::Error)]
pub enum TlsHandshakeError {
    #[error("the first record is not a TLS handshake (first byte {0:#04x}): not a TLS client")]
    NotTls(u8),
    #[error("the peer closed the connection before the TLS handshake")]
    Closed,
    #[error("the TLS handshake did not finish within {0:?}")]
    Timeout(Duration),
    #[error("TLS handshake failed: {0}")]
    Failed(io::Error),
    #[error("{0}")]
    Subject(#[from] super::distinguished_name::SubjectError),
    #[error("no rule of ssl.principal.mapping.rules ({rules}) applies to {subject:?}")]
    NoMatchingRule { subject: String, rules: String },
}

/// The TLS side of one listener.
#[derive(Debug)]
pub struct TlsServer {
    config: SslConfig,
    /// The configuration new connections use; replaced by [`TlsServer::reload`].
    current: RwLock<Arc<ServerConfig>>,
    /// The files' modification times when `current` was built.
    stamps: RwLock<Vec<Option<SystemTime>>>,
}

impl TlsServer {
    /// Builds the listener's TLS configuration: fails when the keystore is missing or unreadable,
    /// or when client certificates are asked for without a truststore.
    pub fn new(config: SslConfig) -> Result<Arc<TlsServer>, TlsError> {
        let stamps = file_stamps(&config);
        let built = build_server_config(&config)?;
        Ok(Arc::new(TlsServer {
            config,
            current: RwLock::new(Arc::new(built)),
            stamps: RwLock::new(stamps),
        }))
    }

    /// The listener's settings.
    pub fn ssl_config(&self) -> &SslConfig {
        &self.config
    }

    /// The configuration new connections get.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        // A poisoned lock still holds a whole Arc: use it.
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Runs the server side of the handshake on an accepted connection, within `timeout`, and
    /// names the principal: the client certificate's subject through
    /// `ssl.principal.mapping.rules`, or `User:ANONYMOUS` without one. A first byte that is not a
    /// TLS handshake record ends it at once (a plaintext client on a TLS listener).
    pub async fn accept(
        &self,
        tcp: TcpStream,
        timeout: Duration,
    ) -> Result<(Stream, KafkaPrincipal), TlsHandshakeError> {
        let handshake = async {
            let mut first = [0u8; 1];
            match tcp.peek(&mut first).await {
                Ok(0) => return Err(TlsHandshakeError::Closed),
                Ok(_) if first[0] != TLS_HANDSHAKE_RECORD => {
                    return Err(TlsHandshakeError::NotTls(first[0]))
                }
                Ok(_) => {}
                Err(e) => return Err(TlsHandshakeError::Failed(e)),
            }
            TlsAcceptor::from(self.server_config())
                .accept(tcp)
                .await
                .map_err(TlsHandshakeError::Failed)
        };
        let tls = tokio::time::timeout(timeout, handshake)
            .await
            .map_err(|_| TlsHandshakeError::Timeout(timeout))??;
        let principal = match tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
            None => KafkaPrincipal::anonymous(),
            Some(cert) => {
                let subject = subject_rfc2253(cert)?;
                let mapper = &self.config.principal_mapper;
                match mapper.name(&subject) {
                    Some(name) => KafkaPrincipal::user(name),
                    None => {
                        return Err(TlsHandshakeError::NoMatchingRule {
                            subject,
                            rules: mapper.source().to_owned(),
                        })
                    }
                }
            }
        };
        Ok((Stream::TlsServer(Box::new(tls)), principal))
    }

    /// Rebuilds the configuration when the keystore or truststore files changed since the last
    /// build: `Ok(true)` when new connections now get the new certificates, `Ok(false)` when
    /// nothing changed. A file that does not load leaves the old configuration in force.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let stamps = file_stamps(&self.config);
        let unchanged = match self.stamps.read() {
            Ok(s) => *s == stamps,
            Err(p) => *p.into_inner() == stamps,
        };
        if unchanged {
            return Ok(false);
        }
        // Remember the stamps even when the build fails: a broken file is reported once, and
        // the next change (the fixed file) is tried again.
        match self.stamps.write() {
            Ok(mut s) => *s = stamps,
            Err(p) => *p.into_inner() = stamps,
        }
        let built = Arc::new(build_server_config(&self.config)?);
        match self.current.write() {
            Ok(mut c) => *c = built,
            Err(p) => *p.into_inner() = built,
        }
        Ok(true)
    }

    /// Watches the keystore and truststore files (every [`RELOAD_CHECK_INTERVAL`]) and reloads
    /// them when they change, for as long as the server exists. Nothing to watch for inline PEM.
    /// The watch stops when the returned [`ReloadTask`] is dropped. Must run inside a tokio
    /// runtime.
    pub fn watch(self: &Arc<Self>) -> Option<ReloadTask> {
        self.watch_every(RELOAD_CHECK_INTERVAL)
    }

    /// [`TlsServer::watch`] with another interval.
    pub fn watch_every(self: &Arc<Self>, every: Duration) -> Option<ReloadTask> {
        if watched_files(&self.config).is_empty() {
            return None;
        }
        let weak: Weak<TlsServer> = Arc::downgrade(self);
        Some(ReloadTask(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(server) = weak.upgrade() else { return };
                let listener = &server.config.listener;
                match server.reload() {
                    Ok(true) => info!(listener, "TLS keystore/truststore reloaded"),
                    Ok(false) => {}
                    Err(e) => warn!(
                        listener,
                        error = %e,
                        "TLS keystore/truststore changed but cannot be loaded; keeping the previous certificates"
                    ),
                }
            }
        })))
    }
}

/// The task of [`TlsServer::watch`]; dropping it stops the watch.
#[derive(Debug)]
pub struct ReloadTask(tokio::task::JoinHandle<()>);

impl Drop for ReloadTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn watched_files(config: &SslConfig) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(KeystoreSource::File(p)) = &config.keystore {
        files.push(p.clone());
    }
    if let Some(TruststoreSource::File(p)) = &config.truststore {
        files.push(p.clone());
    }
    files
}

fn file_stamps(config: &SslConfig) -> Vec<Option<SystemTime>> {
    watched_files(config)
        .iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

/// The rustls server configuration of `config`.
pub fn build_server_config(config: &SslConfig) -> Result<ServerConfig, TlsError> {
    let listener = &config.listener;
    let keystore = config.keystore.as_ref().ok_or_else(|| {
        TlsError::Missing(format!(
            "listener {listener} uses TLS but has no keystore: set ssl.keystore.type=PEM and \
             ssl.keystore.location (or ssl.keystore.certificate.chain and ssl.keystore.key)"
        ))
    })?;
    let pair = load_key_pair(keystore, config.key_password.as_deref())?;
    let provider = config.crypto_provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&config.protocols)?;
    let builder = match (config.client_auth, &config.truststore) {
        (ClientAuth::None, _) => builder.with_no_client_auth(),
        (auth, Some(truststore)) => {
            let roots = Arc::new(root_store(truststore)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
            let verifier = if auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| TlsError::Verifier(e.to_string()))?,
            )
        }
        (_, None) => {
            return Err(TlsError::Missing(format!(
                "listener {listener}: ssl.client.auth asks for client certificates but no \
                 truststore is set (ssl.truststore.location or ssl.truststore.certificates)"
            )))
        }
    };
    Ok(builder.with_single_cert(pair.chain, pair.key)?)
}
