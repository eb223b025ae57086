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
}

impl Default for ClientSecurity {
    fn default() -> Self {
        ClientSecurity {
            protocol: SecurityProtocol::Plaintext,
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
        other => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("connecting to a {other} listener is not supported yet"),
        )),
    }
}
