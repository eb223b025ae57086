//! [`Stream`]: the bytes of one connection, whatever carries them.
//!
//! Every network layer (the broker's socket server, the controller and learner listeners, the
//! inter-node clients) reads and writes a `Stream`, never a bare `TcpStream`, so that a listener's
//! security protocol decides the transport in one place. A PLAINTEXT or SASL_PLAINTEXT connection
//! is [`Stream::Plain`]; zero-copy `sendfile(2)` needs the socket itself ([`Stream::tcp_for_sendfile`]).
//! Outgoing connections to other nodes are opened by [`connect`], with the layers a
//! [`ClientSecurity`] asks for.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::sasl::client_authenticator::SaslClientConfig;
use crate::SecurityProtocol;

/// One connection's byte stream.
#[derive(Debug)]
pub enum Stream {
    /// A TCP socket: bytes as they are on the wire.
    Plain(TcpStream),
}

impl Stream {
    /// The TCP socket underneath, whatever the layers above it.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
        }
    }

    /// The socket, when bytes written to it reach the peer unchanged so that `sendfile(2)` may
    /// fill it straight from the page cache; `None` when a layer in user space (TLS without
    /// kernel offload) must see every byte.
    pub fn tcp_for_sendfile(&self) -> Option<&TcpStream> {
        match self {
            Stream::Plain(s) => Some(s),
        }
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().peer_addr()
    }
}

impl From<TcpStream> for Stream {
    fn from(s: TcpStream) -> Self {
        Stream::Plain(s)
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
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
    /// On a SASL_* listener: the mechanism and credentials this node authenticates with
    /// (`sasl.mechanism.inter.broker.protocol` / `sasl.mechanism.controller.protocol` and the
    /// listener's JAAS `username`/`password`).
    pub sasl: Option<SaslClientConfig>,
}

impl Default for ClientSecurity {
    fn default() -> Self {
        ClientSecurity {
            protocol: SecurityProtocol::Plaintext,
            sasl: None,
        }
    }
}

/// Opens a connection to `addr` (`host:port`) with the layers `security` asks for, ready for
/// Kafka requests. TCP_NODELAY is on: requests and responses must not wait for an ACK.
pub async fn connect(addr: &str, security: &ClientSecurity) -> io::Result<Stream> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    match security.protocol {
        SecurityProtocol::Plaintext => Ok(Stream::Plain(tcp)),
        SecurityProtocol::SaslPlaintext => {
            let mut stream = Stream::Plain(tcp);
            let sasl = security.sasl.as_ref().ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{addr} is a SASL_PLAINTEXT listener and no SASL credentials are set"),
                )
            })?;
            if let Err(e) = crate::sasl::client_authenticator::authenticate(&mut stream, sasl).await
            {
                warn_refused(addr, &e);
                return Err(e);
            }
            Ok(stream)
        }
        other => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("connecting to a {other} listener is not supported yet"),
        )),
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
