//! [`RefreshingJwks`]: the verification keys of `sasl.oauthbearer.jwks.endpoint.url`, read at
//! start and, for an http(s) endpoint, refreshed in the background (Kafka's
//! `JwksFileVerificationKeyResolver` and `RefreshingHttpsJwks`).
//!
//! - `file:` URL: the file is read once, at start (as Kafka does); a broker restart picks up a
//!   new file.
//! - `http:`/`https:` URL: a GET at start, retried with exponential backoff from
//!   `sasl.oauthbearer.jwks.endpoint.retry.backoff.ms` up to `…retry.backoff.max.ms`, and the
//!   start fails if no attempt succeeds (as Kafka's `init`); then a GET every
//!   `sasl.oauthbearer.jwks.endpoint.refresh.ms` on a dedicated thread. A failed refresh keeps
//!   the keys it has. A token whose `kid` is not in the set asks for an early refresh, at most
//!   once a minute per `kid` and for at most [`MAX_MISSING_KIDS`] `kid`s at a time (Kafka's
//!   missing-key-id cache), so unknown `kid`s cannot make rafka hammer the endpoint.
//!
//! Every retrieval is bounded: [`MAX_DOCUMENT`] bytes and [`REQUEST_TIMEOUT`] for the whole
//! request (connect, TLS, send, receive). The HTTP client is a small HTTP/1.1 GET over std
//! sockets and rustls (the same `ring` provider as the listeners), enough for a JWKS: one
//! request per connection, `Content-Length`, chunked or close-delimited bodies, no redirects.
//! An https endpoint is checked against the JAAS options `ssl.truststore.location` /
//! `ssl.truststore.certificates` (PEM; Kafka reads the JWKS client's TLS settings from the
//! JAAS options too) or, without them, the system's CA bundle.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tracing::{info, warn};

use super::jwk::JwkSet;
use crate::tls::pem::{load_trusted, root_store};
use crate::tls::ssl_config::{provider, TruststoreSource};

/// The largest JWKS document read.
pub const MAX_DOCUMENT: usize = 1024 * 1024;
/// The longest one retrieval may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How many unknown `kid`s are remembered (each may expedite one refresh a minute).
pub const MAX_MISSING_KIDS: usize = 16;
/// How long an unknown `kid` waits before it may expedite another refresh.
const MISSING_KID_INTERVAL: Duration = Duration::from_secs(60);
/// The longest `kid` that may expedite a refresh.
const MAX_KID_LEN: usize = 1000;
/// The most response header bytes read.
const MAX_HEADER: usize = 16 * 1024;

/// Kafka's defaults.
pub mod defaults {
    pub const REFRESH_MS: u64 = 3_600_000;
    pub const RETRY_BACKOFF_MS: u64 = 100;
    pub const RETRY_BACKOFF_MAX_MS: u64 = 10_000;
}

/// How often and how persistently the keys are retrieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshSettings {
    /// `sasl.oauthbearer.jwks.endpoint.refresh.ms`.
    pub refresh: Duration,
    /// `sasl.oauthbearer.jwks.endpoint.retry.backoff.ms`.
    pub retry_backoff: Duration,
    /// `sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms`.
    pub retry_backoff_max: Duration,
    /// The longest one retrieval may take ([`REQUEST_TIMEOUT`]; Kafka has no key for it).
    pub request_timeout: Duration,
}

impl Default for RefreshSettings {
    fn default() -> Self {
        RefreshSettings {
            refresh: Duration::from_millis(defaults::REFRESH_MS),
            retry_backoff: Duration::from_millis(defaults::RETRY_BACKOFF_MS),
            retry_backoff_max: Duration::from_millis(defaults::RETRY_BACKOFF_MAX_MS),
            request_timeout: REQUEST_TIMEOUT,
        }
    }
}

/// Where the keys come from.
#[derive(Clone)]
pub enum JwksEndpoint {
    File(PathBuf),
    Http(HttpUrl),
}

impl std::fmt::Debug for JwksEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwksEndpoint::File(p) => write!(f, "file:{}", p.display()),
            JwksEndpoint::Http(u) => f.write_str(&u.url),
        }
    }
}

/// An http(s) URL, split.
#[derive(Clone)]
pub struct HttpUrl {
    url: String,
    host: String,
    port: u16,
    /// The request target: path and query.
    target: String,
    /// For https: the client configuration.
    tls: Option<Arc<ClientConfig>>,
}

impl JwksEndpoint {
    /// Reads `sasl.oauthbearer.jwks.endpoint.url`; `truststore` is for an https endpoint.
    pub fn parse(url: &str, truststore: Option<&TruststoreSource>) -> Result<JwksEndpoint, String> {
        let url = url.trim();
        let (scheme, rest) = url
            .split_once(':')
            .ok_or_else(|| format!("{url:?} is not a URL"))?;
        match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                // file:/path, file:///path or file://localhost/path.
                let path = match rest.strip_prefix("//") {
                    Some(after) => {
                        let slash = after.find('/').ok_or("a file: URL without a path")?;
                        let host = &after[..slash];
                        if !host.is_empty() && !host.eq_ignore_ascii_case("localhost") {
                            return Err(format!("file: URL on another host ({host})"));
                        }
                        &after[slash..]
                    }
                    None => rest,
                };
                if !path.starts_with('/') {
                    return Err("a file: URL needs an absolute path".into());
                }
                Ok(JwksEndpoint::File(PathBuf::from(percent_decode(path)?)))
            }
            s @ ("http" | "https") => {
                let rest = rest
                    .strip_prefix("//")
                    .ok_or_else(|| format!("{url:?} has no //host"))?;
                let (authority, target) = match rest.find(['/', '?']) {
                    Some(i) => (&rest[..i], rest[i..].to_owned()),
                    None => (rest, "/".to_owned()),
                };
                let target = if target.starts_with('?') {
                    format!("/{target}")
                } else {
                    target
                };
                let target = target.split('#').next().unwrap_or("/").to_owned();
                if authority.contains('@') {
                    return Err("user information in the JWKS URL is not supported".into());
                }
                let default_port = if s == "https" { 443 } else { 80 };
                let (host, port) = split_host_port(authority, default_port)?;
                if target.chars().any(|c| c.is_ascii_control() || c == ' ') {
                    return Err("the URL's path has spaces or control characters".into());
                }
                let tls = if s == "https" {
                    Some(Arc::new(https_client_config(truststore)?))
                } else {
                    None
                };
                Ok(JwksEndpoint::Http(HttpUrl {
                    url: url.to_owned(),
                    host,
                    port,
                    target,
                    tls,
                }))
            }
            other => Err(format!(
                "scheme {other}: sasl.oauthbearer.jwks.endpoint.url must be a file:, http: or \
                 https: URL"
            )),
        }
    }

    /// Reads the document once (an http(s) request bounded by `timeout`) and parses it.
    pub fn retrieve(&self, timeout: Duration) -> Result<JwkSet, String> {
        let document = match self {
            JwksEndpoint::File(path) => read_bounded_file(path)?,
            JwksEndpoint::Http(url) => http_get(url, Instant::now() + timeout)?,
        };
        JwkSet::parse(&document)
    }
}

fn split_host_port(authority: &str, default_port: u16) -> Result<(String, u16), String> {
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("bad port {p:?} in the JWKS URL"))
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("unclosed [ in the JWKS URL")?;
        match after.strip_prefix(':') {
            Some(p) => (h, port(p)?),
            None if after.is_empty() => (h, default_port),
            None => return Err("junk after ] in the JWKS URL".into()),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, port(p)?),
            None => (authority, default_port),
        }
    };
    if host.is_empty() {
        return Err("the JWKS URL has no host".into());
    }
    Ok((host.to_owned(), port))
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("bad %-escape in the file: URL")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the file: URL is not UTF-8".into())
}

/// CA bundles of common Linux distributions, tried in order when no truststore is configured.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

fn https_client_config(truststore: Option<&TruststoreSource>) -> Result<ClientConfig, String> {
    let roots = match truststore {
        Some(t) => root_store(t).map_err(|e| e.to_string())?,
        None => {
            let mut roots = rustls::RootCertStore::empty();
            let bundle = SYSTEM_BUNDLES
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file())
                .ok_or(
                    "an https JWKS endpoint needs trusted CAs: set ssl.truststore.location in \
                     the OAUTHBEARER JAAS options, or install a system CA bundle",
                )?;
            let certs = load_trusted(&TruststoreSource::File(bundle)).map_err(|e| e.to_string())?;
            roots.add_parsable_certificates(certs);
            roots
        }
    };
    ClientConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

fn read_bounded_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut document = Vec::new();
    file.take(MAX_DOCUMENT as u64 + 1)
        .read_to_end(&mut document)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if document.len() > MAX_DOCUMENT {
        return Err(format!(
            "{}: larger than {MAX_DOCUMENT} bytes",
            path.display()
        ));
    }
    Ok(document)
}

/// One GET; the body of a 200 answer.
fn http_get(url: &HttpUrl, deadline: Instant) -> Result<Vec<u8>, String> {
    let remaining = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("{}: timed out", url.url))
    };
    let addrs = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("{}: cannot resolve {}: {e}", url.url, url.host))?;
    let mut last = format!("{}: {} has no address", url.url, url.host);
    let mut tcp = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, remaining()?) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = format!("{}: connect to {addr}: {e}", url.url),
        }
    }
    let tcp = tcp.ok_or(last)?;
    let io = |e: std::io::Error| format!("{}: {e}", url.url);
    tcp.set_nodelay(true).map_err(io)?;
    let host_header = if url.host.contains(':') {
        format!("[{}]:{}", url.host, url.port)
    } else {
        format!("{}:{}", url.host, url.port)
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host_header}\r\nAccept: application/json\r\nUser-Agent: \
         rafka\r\nConnection: close\r\n\r\n",
        url.target
    );
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let limit = MAX_HEADER + MAX_DOCUMENT + 64 * 1024;
    let mut exchange = |stream: &mut dyn ReadWrite, tcp: &TcpStream| -> Result<(), String> {
        tcp.set_write_timeout(Some(remaining()?)).map_err(io)?;
        stream.write_all(request.as_bytes()).map_err(io)?;
        stream.flush().map_err(io)?;
        loop {
            tcp.set_read_timeout(Some(remaining()?)).map_err(io)?;
            match stream.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    raw.extend_from_slice(&buf[..n]);
                    if raw.len() > limit {
                        return Err(format!("{}: the answer is too large", url.url));
                    }
                    if response_complete(&raw) {
                        return Ok(());
                    }
                }
                // A TLS peer that closes without close_notify: the body's framing decides
                // whether what arrived is whole.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io(e)),
            }
        }
    };
    match &url.tls {
        Some(config) => {
            let name = ServerName::try_from(url.host.clone())
                .map_err(|_| format!("{}: {} is not a TLS server name", url.url, url.host))?;
            let conn = rustls::ClientConnection::new(config.clone(), name)
                .map_err(|e| format!("{}: {e}", url.url))?;
            let probe = tcp.try_clone().map_err(io)?;
            let mut stream = rustls::StreamOwned::new(conn, tcp);
            exchange(&mut stream, &probe)?;
        }
        None => {
            let probe = tcp.try_clone().map_err(io)?;
            let mut stream = tcp;
            exchange(&mut stream, &probe)?;
        }
    }
    parse_response(&raw).map_err(|e| format!("{}: {e}", url.url))
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Where the header ends (the index after `\r\n\r\n`).
fn header_end(raw: &[u8]) -> Option<usize> {
    raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Whether `raw` holds a whole answer by its own framing (so the read can stop before close).
fn response_complete(raw: &[u8]) -> bool {
    let Some(end) = header_end(raw) else {
        return false;
    };
    match Framing::of(&raw[..end]) {
        Ok(Framing::Length(n)) => raw.len() - end >= n,
        Ok(Framing::Chunked) => decode_chunked(&raw[end..]).is_ok(),
        _ => false,
    }
}

enum Framing {
    Length(usize),
    Chunked,
    Close,
}

impl Framing {
    fn of(head: &[u8]) -> Result<Framing, String> {
        let head = std::str::from_utf8(head).map_err(|_| "the answer's header is not text")?;
        let mut framing = Framing::Close;
        for line in head.split("\r\n").skip(1) {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("transfer-encoding") {
                if value.eq_ignore_ascii_case("chunked") {
                    framing = Framing::Chunked;
                } else {
                    return Err(format!("transfer-encoding {value} is not supported"));
                }
            } else if name.eq_ignore_ascii_case("content-length")
                && !matches!(framing, Framing::Chunked)
            {
                let n = value.parse::<usize>().map_err(|_| "bad content-length")?;
                if n > MAX_DOCUMENT {
                    return Err(format!("a {n}-byte body is larger than {MAX_DOCUMENT}"));
                }
                framing = Framing::Length(n);
            }
        }
        Ok(framing)
    }
}

/// The body of a complete `200` answer.
fn parse_response(raw: &[u8]) -> Result<Vec<u8>, String> {
    let end = header_end(raw).ok_or_else(|| {
        if raw.len() > MAX_HEADER {
            "the answer's header is too long".to_owned()
        } else {
            "the connection closed before the answer's header ended".to_owned()
        }
    })?;
    if end > MAX_HEADER {
        return Err("the answer's header is too long".into());
    }
    let status_line = raw[..end]
        .split(|&b| b == b'\r')
        .next()
        .and_then(|l| std::str::from_utf8(l).ok())
        .unwrap_or("");
    let mut words = status_line.split(' ');
    let (version, status) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    if !version.starts_with("HTTP/1.") {
        return Err("not an HTTP/1.x answer".into());
    }
    if status != "200" {
        return Err(format!("HTTP status {status_line:?}"));
    }
    let body = &raw[end..];
    let body = match Framing::of(&raw[..end])? {
        Framing::Length(n) if body.len() >= n => body[..n].to_vec(),
        Framing::Length(n) => {
            return Err(format!("the body ended after {} of {n} bytes", body.len()))
        }
        Framing::Chunked => decode_chunked(body)?,
        Framing::Close => body.to_vec(),
    };
    if body.len() > MAX_DOCUMENT {
        return Err(format!("the body is larger than {MAX_DOCUMENT} bytes"));
    }
    Ok(body)
}

/// A chunked body, whole (up to the last chunk); an error if it is cut short or malformed.
fn decode_chunked(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk size line is cut short")?;
        let line = std::str::from_utf8(&rest[..line_end]).map_err(|_| "bad chunk size")?;
        let size_hex = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| "bad chunk size")?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if size > MAX_DOCUMENT || body.len() + size > MAX_DOCUMENT {
            return Err(format!("the body is larger than {MAX_DOCUMENT} bytes"));
        }
        if rest.len() < size + 2 {
            return Err("a chunk is cut short".into());
        }
        if &rest[size..size + 2] != b"\r\n" {
            return Err("a chunk does not end in CRLF".into());
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// The keys of one endpoint, current, with the refresh thread of an http(s) endpoint.
///
/// Locks: `keys` is held only to clone or replace the `Arc`; `missing` only to look up or
/// record a `kid`; neither while the other is held.
pub struct RefreshingJwks {
    endpoint: JwksEndpoint,
    keys: RwLock<Arc<JwkSet>>,
    /// Wakes the refresh thread early (an unknown `kid`); `None` for a file. Dropping it (with
    /// this value) ends the thread.
    expedite: Option<mpsc::SyncSender<()>>,
    /// Unknown `kid`s and when each last expedited a refresh.
    missing: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for RefreshingJwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshingJwks")
            .field("endpoint", &self.endpoint)
            .field("keys", &self.keys().keys.len())
            .finish()
    }
}

impl RefreshingJwks {
    /// Retrieves the keys (retrying an http(s) endpoint with backoff) and, for http(s), starts
    /// the refresh thread. An error means the listener cannot validate tokens: the start fails.
    pub fn start(endpoint: JwksEndpoint, settings: RefreshSettings) -> Result<Arc<Self>, String> {
        let first = match &endpoint {
            JwksEndpoint::File(_) => endpoint.retrieve(settings.request_timeout)?,
            JwksEndpoint::Http(_) => retrieve_with_backoff(&endpoint, &settings)?,
        };
        info!(endpoint = ?endpoint, keys = first.keys.len(), "OAUTHBEARER: JWKS loaded");
        let (expedite, wake) = match &endpoint {
            JwksEndpoint::File(_) => (None, None),
            JwksEndpoint::Http(_) => {
                let (tx, rx) = mpsc::sync_channel(1);
                (Some(tx), Some(rx))
            }
        };
        let jwks = Arc::new(RefreshingJwks {
            endpoint,
            keys: RwLock::new(Arc::new(first)),
            expedite,
            missing: Mutex::new(HashMap::new()),
        });
        if let Some(wake) = wake {
            let weak = Arc::downgrade(&jwks);
            std::thread::Builder::new()
                .name("jwks-refresh".into())
                .spawn(move || refresh_loop(weak, wake, settings))
                .map_err(|e| format!("cannot start the JWKS refresh thread: {e}"))?;
        }
        Ok(jwks)
    }

    /// The current keys.
    pub fn keys(&self) -> Arc<JwkSet> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A token named `kid` and the set has no such key: maybe the issuer rotated its keys, so
    /// an http(s) endpoint is asked again soon (rate-limited per `kid`).
    pub fn on_missing_kid(&self, kid: &str) {
        let Some(expedite) = &self.expedite else {
            return;
        };
        if kid.len() > MAX_KID_LEN {
            return;
        }
        let now = Instant::now();
        {
            let mut missing = self.missing.lock().unwrap_or_else(|p| p.into_inner());
            missing.retain(|_, at| now.duration_since(*at) < MISSING_KID_INTERVAL);
            if missing.contains_key(kid) || missing.len() >= MAX_MISSING_KIDS {
                return;
            }
            missing.insert(kid.to_owned(), now);
        }
        // A full channel means a refresh is already due.
        let _ = expedite.try_send(());
    }

    fn replace(&self, set: JwkSet) {
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(set);
    }
}

/// Kafka's `Retry`: attempts separated by a backoff that doubles from `retry_backoff` up to
/// `retry_backoff_max`, until the waits add up to `retry_backoff_max`.
fn retrieve_with_backoff(
    endpoint: &JwksEndpoint,
    settings: &RefreshSettings,
) -> Result<JwkSet, String> {
    let mut backoff = settings.retry_backoff.max(Duration::from_millis(1));
    let mut waited = Duration::ZERO;
    loop {
        match endpoint.retrieve(settings.request_timeout) {
            Ok(set) => return Ok(set),
            Err(e) if waited >= settings.retry_backoff_max => return Err(e),
            Err(e) => {
                warn!(endpoint = ?endpoint, error = %e, "OAUTHBEARER: JWKS retrieval failed; retrying");
                let wait = backoff.min(settings.retry_backoff_max.saturating_sub(waited));
                std::thread::sleep(wait.max(Duration::from_millis(1)));
                waited += wait.max(Duration::from_millis(1));
                backoff = (backoff * 2).min(settings.retry_backoff_max);
            }
        }
    }
}

fn refresh_loop(jwks: Weak<RefreshingJwks>, wake: mpsc::Receiver<()>, settings: RefreshSettings) {
    let refresh = settings.refresh.max(Duration::from_millis(10));
    loop {
        match wake.recv_timeout(refresh) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let endpoint = match jwks.upgrade() {
            Some(j) => j.endpoint.clone(),
            None => return,
        };
        // Retrieved without holding the keys: tokens keep being checked meanwhile.
        let result = retrieve_with_backoff(&endpoint, &settings);
        let Some(j) = jwks.upgrade() else { return };
        match result {
            Ok(set) => {
                tracing::debug!(endpoint = ?endpoint, keys = set.keys.len(), "OAUTHBEARER: JWKS refreshed");
                j.replace(set);
            }
            Err(e) => {
                warn!(endpoint = ?endpoint, error = %e, "OAUTHBEARER: JWKS refresh failed; keeping the keys we have")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        for (url, path) in [
            ("file:/etc/jwks.json", "/etc/jwks.json"),
            ("file:///etc/jwks.json", "/etc/jwks.json"),
            ("file://localhost/a%20b.json", "/a b.json"),
        ] {
            match JwksEndpoint::parse(url, None).expect(url) {
                JwksEndpoint::File(p) => assert_eq!(p, PathBuf::from(path)),
                other => panic!("{other:?}"),
            }
        }
        match JwksEndpoint::parse("http://127.0.0.1:8080/keys?x=1#f", None).expect("http") {
            JwksEndpoint::Http(u) => {
                assert_eq!(
                    (u.host.as_str(), u.port, u.target.as_str()),
                    ("127.0.0.1", 8080, "/keys?x=1")
                );
                assert!(u.tls.is_none());
            }
            other => panic!("{other:?}"),
        }
        match JwksEndpoint::parse("http://[::1]/", None).expect("v6") {
            JwksEndpoint::Http(u) => assert_eq!((u.host.as_str(), u.port), ("::1", 80)),
            other => panic!("{other:?}"),
        }
        for bad in [
            "ftp://x/y",
            "file:relative",
            "file://evil.example/etc/x",
            "file:/%zz",
            "http:x",
            "http://:80/",
            "http://h:99999/",
            "http://u:p@h/",
            "http://h/a b",
            "nourl",
        ] {
            assert!(JwksEndpoint::parse(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn http_framing() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbodyEXTRA";
        assert!(response_complete(ok));
        assert_eq!(parse_response(ok).expect("ok"), b"body");
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert!(response_complete(chunked));
        assert_eq!(parse_response(chunked).expect("ok"), b"abcde");
        assert_eq!(
            parse_response(b"HTTP/1.0 200 OK\r\n\r\n{}").expect("ok"),
            b"{}"
        );
        for bad in [
            &b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"SSH-2.0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno end",
        ] {
            assert!(
                parse_response(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(!response_complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort"
        ));
    }
}
