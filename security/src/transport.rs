//! How a connection gets its [`Stream`]: a listener's [`ServerSecurity`] for accepted
//! connections, and [`connect`] for outgoing ones to other nodes, with the layers a
//! [`ClientSecurity`] asks for. Every network layer (the broker's socket server, the controller and
//! learner listeners, the inter-node clients) reads and writes a `Stream`, never a bare
//! `TcpStream`, so that a listener's security protocol decides the transport in one place.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use crate::sasl::authenticator::SaslServerConfig;
use crate::sasl::client_authenticator::SaslClientConfig;
pub use crate::stream::{ReceiveLowWater, Stream};
use crate::tls::{TlsClient, TlsHandshakeError, TlsServer};
use crate::{KafkaPrincipal, SecurityProtocol};

/// The longest an accepted connection may take to finish its TLS handshake. Each connection
/// runs its handshake in its own task, so a slow one delays nobody else; this bounds what it holds
/// (a connection slot, a task) meanwhile.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a listener speaks, for its accepted connections: the protocol and, when it uses TLS, the
/// listener's [`TlsServer`]. The SASL layer, on SASL listeners, runs after [`ServerSecurity::accept`]
/// on the stream it returns.
#[derive(Debug, Clone)]
pub struct ServerSecurity {
    pub protocol: SecurityProtocol,
    /// Required when `protocol` uses TLS.
    pub tls: Option<Arc<TlsServer>>,
    /// Required when `protocol` uses SASL: the mechanisms and credentials every connection
    /// authenticates against, after the transport (see `sasl::authenticator`).
    pub sasl: Option<Arc<SaslServerConfig>>,
}

impl Default for ServerSecurity {
    fn default() -> Self {
        ServerSecurity {
            protocol: SecurityProtocol::Plaintext,
            tls: None,
            sasl: None,
        }
    }
}

/// Two listeners' security is the same when they speak the same protocol with the same
/// [`TlsServer`] and SASL configuration (the same instances).
impl PartialEq for ServerSecurity {
    fn eq(&self, other: &Self) -> bool {
        fn same<T>(a: &Option<Arc<T>>, b: &Option<Arc<T>>) -> bool {
            match (a, b) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
        }
        self.protocol == other.protocol
            && same(&self.tls, &other.tls)
            && same(&self.sasl, &other.sasl)
    }
}

impl Eq for ServerSecurity {}

impl ServerSecurity {
    /// A PLAINTEXT listener.
    pub fn plaintext() -> ServerSecurity {
        ServerSecurity::default()
    }

    /// An SSL listener served by `tls`.
    pub fn ssl(tls: Arc<TlsServer>) -> ServerSecurity {
        ServerSecurity {
            protocol: SecurityProtocol::Ssl,
            tls: Some(tls),
            sasl: None,
        }
    }

    /// Turns an accepted socket into the connection's stream and the principal its transport
    /// establishes: a TLS handshake (within `timeout`) when the protocol uses TLS — with the
    /// client certificate's principal — else the socket itself and `User:ANONYMOUS`.
    pub async fn accept(
        &self,
        tcp: TcpStream,
        timeout: Duration,
    ) -> Result<(Stream, KafkaPrincipal), TlsHandshakeError> {
        match (&self.tls, self.protocol.uses_tls()) {
            (Some(tls), true) => tls.accept(tcp, timeout).await,
            (None, true) => Err(TlsHandshakeError::Failed(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a TLS listener without a TLS configuration",
            ))),
            (_, false) => Ok((Stream::Plain(tcp), KafkaPrincipal::anonymous())),
        }
    }
}

/// How this node connects to another node's listener: the inter-broker listener for replica
/// fetchers, the controller listener for the broker's controller channel and the Raft RPCs.
/// The listener's security protocol decides the layers (TLS, SASL) [`connect`] puts on the TCP
/// connection; every inter-node client connects through [`connect`] and nothing else.
#[derive(Debug, Clone)]
pub struct ClientSecurity {
    /// The security protocol of the listener connected to.
    pub protocol: SecurityProtocol,
    /// The TLS client side, from that listener's `ssl.*` keys; required when the protocol uses
    /// TLS (SSL, SASL_SSL). The server name checked is the host of the address connected to.
    pub tls: Option<TlsClient>,
    /// On a SASL_* listener: the mechanism and credentials this node authenticates with
    /// (`sasl.mechanism.inter.broker.protocol` / `sasl.mechanism.controller.protocol` and the
    /// listener's JAAS `username`/`password`).
    pub sasl: Option<SaslClientConfig>,
}

impl Default for ClientSecurity {
    fn default() -> Self {
        ClientSecurity {
            protocol: SecurityProtocol::Plaintext,
            tls: None,
            sasl: None,
        }
    }
}

/// A TCP connection to `addr` with SO_RCVBUF set before it connects; the addresses a name
/// resolves to are tried in order, as `TcpStream::connect` does.
async fn connect_sized(addr: &str, receive_buffer: u32) -> io::Result<TcpStream> {
    let mut last = None;
    for resolved in tokio::net::lookup_host(addr).await? {
        let socket = match resolved {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.set_recv_buffer_size(receive_buffer)?;
        match socket.connect(resolved).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{addr} resolves to no address"),
        )
    }))
}

/// The SASL session of an outgoing connection (KIP-368). A server that gives the session a
/// lifetime (`connections.max.reauth.ms`, or the credential's expiry) closes the connection on
/// the first request that arrives after it, unless the client has authenticated again on the same
/// connection. [`Session::keep`], called before each request, does that once 85% of the lifetime
/// has passed, as Kafka's clients do (they pick a point between 85% and 95%). Without a lifetime
/// (PLAINTEXT, SSL, or no limit on the server) it does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Session {
    reauthenticate_at: Option<Instant>,
}

impl Session {
    /// A session authenticated at `authenticated` for `lifetime`. One so long that its due time
    /// is past what an `Instant` holds is never renewed (it outlives the process).
    fn after(authenticated: Instant, lifetime: Option<Duration>) -> Session {
        Session {
            reauthenticate_at: lifetime
                .and_then(|l| authenticated.checked_add(l.mul_f64(REAUTHENTICATE_AT))),
        }
    }

    /// Authenticates `stream` again, with the credentials of `security`, when the session is
    /// due for it. The caller has no request in flight on the stream (the server answers the
    /// SASL requests in order, after anything sent before them).
    pub async fn keep(&mut self, stream: &mut Stream, security: &ClientSecurity) -> io::Result<()> {
        let (Some(at), Some(sasl)) = (self.reauthenticate_at, security.sasl.as_ref()) else {
            return Ok(());
        };
        let now = Instant::now();
        if now < at {
            return Ok(());
        }
        let lifetime = crate::sasl::client_authenticator::authenticate(stream, sasl).await?;
        *self = Session::after(now, lifetime);
        Ok(())
    }
}

/// The share of a session's lifetime after which [`Session::keep`] authenticates again.
const REAUTHENTICATE_AT: f64 = 0.85;

/// Opens a connection to `addr` (`host:port`) with the layers `security` asks for, ready for
/// Kafka requests, with its SASL [`Session`]. TCP_NODELAY is on: requests and responses must not
/// wait for an ACK.
pub async fn connect(addr: &str, security: &ClientSecurity) -> io::Result<(Stream, Session)> {
    connect_with(addr, security, None).await
}

/// As [`connect`], with the socket's receive buffer (SO_RCVBUF) set to `receive_buffer` bytes
/// before the TCP handshake, so that the window scale it announces fits the buffer (Kafka's
/// `replica.socket.receive.buffer.bytes`). `None`: the OS's autotuned buffer.
pub async fn connect_with(
    addr: &str,
    security: &ClientSecurity,
    receive_buffer: Option<u32>,
) -> io::Result<(Stream, Session)> {
    let tcp = match receive_buffer {
        None => TcpStream::connect(addr).await?,
        Some(size) => connect_sized(addr, size).await?,
    };
    tcp.set_nodelay(true)?;
    let protocol = security.protocol;
    // The transport first: TLS on SSL and SASL_SSL listeners...
    let mut stream = if protocol.uses_tls() {
        let tls = security.tls.as_ref().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{addr} is a {protocol} listener and no TLS client configuration is set"),
            )
        })?;
        tls.connect(tcp, host_of(addr)).await?
    } else {
        Stream::Plain(tcp)
    };
    // ... then SASL over it on SASL_PLAINTEXT and SASL_SSL listeners.
    let mut session = Session::default();
    if protocol.uses_sasl() {
        let sasl = security.sasl.as_ref().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{addr} is a {protocol} listener and no SASL credentials are set"),
            )
        })?;
        let authenticated = Instant::now();
        match crate::sasl::client_authenticator::authenticate(&mut stream, sasl).await {
            Ok(lifetime) => session = Session::after(authenticated, lifetime),
            Err(e) => {
                warn_refused(addr, &e);
                return Err(e);
            }
        }
    }
    Ok((stream, session))
}

/// The host part of `host:port` (`[v6]:port` too).
fn host_of(addr: &str) -> &str {
    match addr.rsplit_once(':') {
        Some((host, _)) => host,
        None => addr,
    }
}
/// Logs a refused authentication to another node at WARN — the operator must fix credentials —
/// at most once per [`REFUSAL_LOG_INTERVAL`] (callers retry in loops).
fn warn_refused(addr: &str, e: &io::Error) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    if e.kind() != io::ErrorKind::PermissionDenied {
        return tracing::debug!(addr, error = %e, "SASL authentication to a node failed");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let last = LAST.load(Ordering::Relaxed);
    if now.saturating_sub(last) >= REFUSAL_LOG_INTERVAL.as_millis() as u64
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(addr, error = %e, "another node refused this node's credentials");
    }
}

/// See [`warn_refused`].
const REFUSAL_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_due_at_85_percent_of_its_lifetime_and_an_endless_one_never() {
        let now = Instant::now();
        assert_eq!(Session::after(now, None).reauthenticate_at, None);
        assert_eq!(
            Session::after(now, Some(Duration::from_millis(1000))).reauthenticate_at,
            Some(now + Duration::from_millis(850))
        );
        assert_eq!(
            Session::after(now, Some(Duration::from_millis(1))).reauthenticate_at,
            Some(now + Duration::from_micros(850))
        );
        // The longest lifetime the protocol can announce (i64::MAX ms) and the longest a
        // Duration holds: due far ahead, or never when past what an Instant holds; no panic.
        for lifetime in [Duration::from_millis(i64::MAX as u64), Duration::MAX] {
            let at = Session::after(now, Some(lifetime)).reauthenticate_at;
            assert!(at.is_none_or(|at| at > now + Duration::from_secs(1 << 40)));
        }
    }

    /// The receive buffer of a connected stream (Linux reports twice the size asked for).
    fn receive_buffer(stream: Stream) -> u32 {
        let Stream::Plain(tcp) = stream else {
            panic!("a plain connection");
        };
        let std = tcp.into_std().expect("std stream");
        tokio::net::TcpSocket::from_std_stream(std)
            .recv_buffer_size()
            .expect("SO_RCVBUF")
    }

    #[tokio::test]
    async fn a_receive_buffer_is_set_before_connecting_and_none_leaves_the_os_default() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address").to_string();
        let accept = tokio::spawn(async move {
            let mut held = Vec::new();
            for _ in 0..2 {
                held.push(listener.accept().await.expect("accept").0);
            }
            held
        });
        let plain = ClientSecurity::default();
        let (sized, _) = connect_with(&addr, &plain, Some(48 * 1024))
            .await
            .expect("connect");
        assert_eq!(receive_buffer(sized), 2 * 48 * 1024);
        let (default, _) = connect(&addr, &plain).await.expect("connect");
        assert_ne!(receive_buffer(default), 2 * 48 * 1024);
        drop(accept.await.expect("accepted"));
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_nothing_reachable_fails() {
        // Port 1 on loopback: nothing listens there.
        let e = connect_with("127.0.0.1:1", &ClientSecurity::default(), Some(65536))
            .await
            .expect_err("refused");
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
    }
}
