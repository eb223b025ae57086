//! [`TlsServer`]: the TLS side of one listener — its rustls configuration (swapped when the
//! keystore or truststore files change, or when Kafka's dynamic SSL update gives the listener
//! new `ssl.*` settings: [`TlsServer::reconfigure`]), the handshake of each accepted connection,
//! and the principal its client certificate names.
//!
//! Thread-safety: shared by every connection of the listener (`Arc`). The settings and the
//! rustls configuration built from them sit together behind one `RwLock`, held only to clone or
//! replace them, never across an `.await`; a connection takes the configuration in force when
//! it is accepted and keeps it.

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
use super::ssl_config::SslConfig;
use super::ssl_config::{ClientAuth, KeystoreSource, TruststoreSource};
use super::tls_error::TlsError;
use crate::stream::Stream;
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

/// The listener's settings and the rustls configuration built from them.
#[derive(Debug, Clone)]
struct Active {
    config: Arc<SslConfig>,
    server: Arc<ServerConfig>,
}

/// The TLS side of one listener.
#[derive(Debug)]
pub struct TlsServer {
    /// What new connections use; replaced by [`TlsServer::reload`] and
    /// [`TlsServer::reconfigure`].
    active: RwLock<Active>,
    /// The files' modification times when `active` was built.
    stamps: RwLock<Vec<Option<SystemTime>>>,
}

impl TlsServer {
    /// Builds the listener's TLS configuration: fails when the keystore is missing or unreadable,
    /// or when client certificates are asked for without a truststore.
    pub fn new(config: SslConfig) -> Result<Arc<TlsServer>, TlsError> {
        let stamps = file_stamps(&config);
        let built = build_server_config(&config)?;
        Ok(Arc::new(TlsServer {
            active: RwLock::new(Active {
                config: Arc::new(config),
                server: Arc::new(built),
            }),
            stamps: RwLock::new(stamps),
        }))
    }

    fn active(&self) -> Active {
        // A poisoned lock still holds a whole value: use it.
        match self.active.read() {
            Ok(a) => a.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set_active(&self, active: Active) {
        match self.active.write() {
            Ok(mut a) => *a = active,
            Err(p) => *p.into_inner() = active,
        }
    }

    /// The listener's settings in force.
    pub fn ssl_config(&self) -> Arc<SslConfig> {
        self.active().config
    }

    /// The configuration new connections get.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.active().server
    }

    /// Kafka's dynamic SSL update: new connections use `new` from now on (connections already
    /// open keep their session). Checked first as [`validate_reconfiguration`] does; an error
    /// leaves the settings in force unchanged.
    pub fn reconfigure(&self, new: SslConfig) -> Result<(), TlsError> {
        let built = validate_reconfiguration(&self.ssl_config(), &new)?;
        let stamps = file_stamps(&new);
        self.set_active(Active {
            config: Arc::new(new),
            server: Arc::new(built),
        });
        match self.stamps.write() {
            Ok(mut s) => *s = stamps,
            Err(p) => *p.into_inner() = stamps,
        }
        Ok(())
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
                let config = self.ssl_config();
                let mapper = &config.principal_mapper;
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
        let config = self.ssl_config();
        let stamps = file_stamps(&config);
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
        let built = Arc::new(build_server_config(&config)?);
        self.set_active(Active {
            config,
            server: built,
        });
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
        if watched_files(&self.ssl_config()).is_empty() {
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
                let config = server.ssl_config();
                let listener = &config.listener;
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

/// Kafka's checks of a dynamic SSL update (`SslFactory.validateReconfiguration`): the new
/// settings build, and — unless `ssl.allow.dn.changes` / `ssl.allow.san.changes` — the new
/// keystore's certificate has the subject and subject alternative names of the one in force
/// (clients that pinned the broker's identity keep working). The rustls configuration, built.
pub fn validate_reconfiguration(
    current: &SslConfig,
    new: &SslConfig,
) -> Result<ServerConfig, TlsError> {
    let built = build_server_config(new)?;
    if let (Some(old_ks), Some(new_ks)) = (&current.keystore, &new.keystore) {
        if old_ks != new_ks && !(new.allow_dn_changes && new.allow_san_changes) {
            // The old keystore may be gone (replaced files): then there is nothing to compare.
            if let Ok(old) = load_key_pair(old_ks, current.key_password.as_deref()) {
                let fresh = load_key_pair(new_ks, new.key_password.as_deref())?;
                let (old_cert, new_cert) = (&old.chain[0], &fresh.chain[0]);
                let listener = &new.listener;
                if !new.allow_dn_changes {
                    let (a, b) = (subject_rfc2253(old_cert), subject_rfc2253(new_cert));
                    if a.as_ref().ok() != b.as_ref().ok() || b.is_err() {
                        return Err(TlsError::Incompatible(format!(
                            "listener {listener}: the new keystore's DistinguishedName does not \
                             match the current one ({} vs {}); set ssl.allow.dn.changes=true to \
                             allow it",
                            b.unwrap_or_default(),
                            a.unwrap_or_default()
                        )));
                    }
                }
                if !new.allow_san_changes
                    && subject_alt_names(old_cert) != subject_alt_names(new_cert)
                {
                    return Err(TlsError::Incompatible(format!(
                        "listener {listener}: the new keystore's SubjectAltNames do not match the \
                         current one's; set ssl.allow.san.changes=true to allow it"
                    )));
                }
            }
        }
    }
    Ok(built)
}

/// The subject alternative names extension of a DER certificate, as its DER value (`None`
/// without one, or for a certificate that does not parse).
fn subject_alt_names(cert: &[u8]) -> Option<Vec<u8>> {
    use pkcs8::der::Decode;
    const SAN: &str = "2.5.29.17";
    let cert = x509_cert::Certificate::from_der(cert).ok()?;
    cert.tbs_certificate
        .extensions?
        .into_iter()
        .find(|e| e.extn_id.to_string() == SAN)
        .map(|e| e.extn_value.as_bytes().to_vec())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::TlsClient;
    use std::collections::HashMap;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct Pki {
        dir: tempfile::TempDir,
        ca: rcgen::Certificate,
        ca_key: rcgen::KeyPair,
    }

    impl Pki {
        fn new() -> Pki {
            let ca_key = rcgen::KeyPair::generate().expect("key");
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, "unit CA");
            let ca = params.self_signed(&ca_key).expect("ca");
            let dir = tempfile::tempdir().expect("dir");
            std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("write");
            Pki { dir, ca, ca_key }
        }

        /// Writes `<name>.pem` (key + certificate) for `cn`, valid for localhost.
        fn leaf(&self, name: &str, cn: &str) -> String {
            let key = rcgen::KeyPair::generate().expect("key");
            let mut params =
                rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
            params.distinguished_name = rcgen::DistinguishedName::new();
            params
                .distinguished_name
                .push(rcgen::DnType::OrganizationName, "unit");
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
            let cert = params
                .signed_by(&key, &self.ca, &self.ca_key)
                .expect("sign");
            let path = self.dir.path().join(format!("{name}.pem"));
            std::fs::write(&path, format!("{}{}", key.serialize_pem(), cert.pem())).expect("write");
            path.display().to_string()
        }

        fn ca_path(&self) -> String {
            self.dir.path().join("ca.pem").display().to_string()
        }
    }

    fn ssl(pairs: &[(&str, String)]) -> SslConfig {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        SslConfig::from_keys("UNIT", |k| map.get(k).cloned()).expect("ssl config")
    }

    async fn listener() -> (tokio::net::TcpListener, u16) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = l.local_addr().expect("addr").port();
        (l, port)
    }

    /// One connection: the server accepts, the client (if any) connects; the server's result.
    async fn one(
        server: &TlsServer,
        client: Option<TlsClient>,
    ) -> (Result<(Stream, KafkaPrincipal), TlsHandshakeError>, bool) {
        let (l, port) = listener().await;
        let client_task = tokio::spawn(async move {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect");
            match client {
                Some(c) => match c.connect(tcp, "localhost").await {
                    Ok(mut s) => {
                        // A round trip proves the session works both ways.
                        if s.write_all(b"ping").await.is_err() || s.flush().await.is_err() {
                            return false;
                        }
                        let mut buf = [0u8; 4];
                        s.read_exact(&mut buf).await.is_ok() && &buf == b"pong"
                    }
                    Err(_) => false,
                },
                None => false,
            }
        });
        let (tcp, _) = l.accept().await.expect("accept");
        let result = server.accept(tcp, Duration::from_secs(5)).await;
        let result = match result {
            Ok((mut s, p)) => {
                let mut buf = [0u8; 4];
                let ok = s.read_exact(&mut buf).await.is_ok() && &buf == b"ping";
                if ok {
                    let _ = s.write_all(b"pong").await;
                    let _ = s.flush().await;
                }
                Ok((s, p))
            }
            Err(e) => Err(e),
        };
        let client_ok = client_task.await.expect("client task");
        (result, client_ok)
    }

    #[tokio::test]
    async fn mtls_principal_anonymous_and_refusals() {
        let pki = Pki::new();
        let server_pem = pki.leaf("server", "localhost");
        let client_pem = pki.leaf("client", "Alice");
        let server = TlsServer::new(ssl(&[
            ("ssl.keystore.type", "PEM".into()),
            ("ssl.keystore.location", server_pem.clone()),
            ("ssl.truststore.type", "PEM".into()),
            ("ssl.truststore.location", pki.ca_path()),
            ("ssl.client.auth", "requested".into()),
            (
                "ssl.principal.mapping.rules",
                "RULE:^CN=([^,]*),O=unit$/$1/L".into(),
            ),
        ]))
        .expect("server");
        let trust = || {
            vec![
                ("ssl.truststore.type", "PEM".to_owned()),
                ("ssl.truststore.location", pki.ca_path()),
            ]
        };
        let mut with_cert = trust();
        with_cert.push(("ssl.keystore.type", "PEM".into()));
        with_cert.push(("ssl.keystore.location", client_pem));
        let (r, ok) = one(&server, Some(TlsClient::new(&ssl(&with_cert)).expect("c"))).await;
        assert!(ok);
        assert_eq!(r.expect("accepted").1, KafkaPrincipal::user("alice"));

        // Requested, not required: no certificate is User:ANONYMOUS.
        let (r, ok) = one(&server, Some(TlsClient::new(&ssl(&trust())).expect("c"))).await;
        assert!(ok);
        assert!(r.expect("accepted").1.is_anonymous());

        // A subject no rule maps (and no DEFAULT rule) is refused.
        let strict = TlsServer::new(ssl(&[
            ("ssl.keystore.type", "PEM".into()),
            ("ssl.keystore.location", server_pem),
            ("ssl.truststore.type", "PEM".into()),
            ("ssl.truststore.location", pki.ca_path()),
            ("ssl.client.auth", "required".into()),
            (
                "ssl.principal.mapping.rules",
                "RULE:^CN=admin,.*$/admin/".into(),
            ),
        ]))
        .expect("server");
        let (r, _) = one(&strict, Some(TlsClient::new(&ssl(&with_cert)).expect("c"))).await;
        assert!(
            matches!(r, Err(TlsHandshakeError::NoMatchingRule { .. })),
            "{r:?}"
        );
        // Required: no certificate fails the handshake.
        let (r, ok) = one(&strict, Some(TlsClient::new(&ssl(&trust())).expect("c"))).await;
        assert!(!ok);
        assert!(matches!(r, Err(TlsHandshakeError::Failed(_))), "{r:?}");
    }

    #[tokio::test]
    async fn plaintext_silence_and_reload() {
        let pki = Pki::new();
        let first = pki.leaf("first", "first");
        let keystore = pki.dir.path().join("keystore.pem");
        std::fs::copy(&first, &keystore).expect("copy");
        let server = TlsServer::new(ssl(&[
            ("ssl.keystore.type", "PEM".into()),
            ("ssl.keystore.location", keystore.display().to_string()),
        ]))
        .expect("server");

        // Plaintext Kafka bytes: refused on the first byte.
        let (l, port) = listener().await;
        let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        c.write_all(&[0, 0, 0, 10, 0, 18]).await.expect("write");
        let (tcp, _) = l.accept().await.expect("accept");
        let r = server.accept(tcp, Duration::from_secs(5)).await;
        assert!(matches!(r, Err(TlsHandshakeError::NotTls(0))), "{r:?}");

        // Silence: the timeout ends it.
        let _silent = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let (tcp, _) = l.accept().await.expect("accept");
        let r = server.accept(tcp, Duration::from_millis(200)).await;
        assert!(matches!(r, Err(TlsHandshakeError::Timeout(_))), "{r:?}");

        // Unchanged files: nothing to do. A broken file: an error, the old config stays.
        assert!(!server.reload().expect("unchanged"));
        let before = server.server_config();
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&keystore, "garbage").expect("write");
        bump_mtime(&keystore);
        assert!(server.reload().is_err());
        assert!(Arc::ptr_eq(&before, &server.server_config()));
        // A good new file: a new config.
        let second = pki.leaf("second", "second");
        std::fs::copy(&second, &keystore).expect("copy");
        bump_mtime(&keystore);
        assert!(server.reload().expect("reloaded"));
        assert!(!Arc::ptr_eq(&before, &server.server_config()));
    }

    /// Moves the file's modification time forward, so a change within the file system's
    /// timestamp granularity is still seen.
    fn bump_mtime(path: &std::path::Path) {
        let f = std::fs::File::options()
            .write(true)
            .open(path)
            .expect("open");
        let t = SystemTime::now() + Duration::from_secs(1 + rand_secs());
        f.set_modified(t).expect("set mtime");
    }

    fn rand_secs() -> u64 {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    #[test]
    fn configuration_errors_name_what_is_missing() {
        let pki = Pki::new();
        let e = TlsServer::new(ssl(&[])).expect_err("no keystore");
        assert!(e.to_string().contains("ssl.keystore.location"), "{e}");
        let server_pem = pki.leaf("server", "localhost");
        let e = TlsServer::new(ssl(&[
            ("ssl.keystore.type", "PEM".into()),
            ("ssl.keystore.location", server_pem),
            ("ssl.client.auth", "required".into()),
        ]))
        .expect_err("no truststore");
        assert!(e.to_string().contains("truststore"), "{e}");
        let e = TlsServer::new(ssl(&[
            ("ssl.keystore.type", "PEM".into()),
            ("ssl.keystore.location", "/nonexistent/k.pem".into()),
        ]))
        .expect_err("no file");
        assert!(e.to_string().contains("/nonexistent/k.pem"), "{e}");
        let e = TlsClient::new(&ssl(&[])).expect_err("client without truststore");
        assert!(e.to_string().contains("truststore"), "{e}");
    }
}
