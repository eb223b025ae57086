//! [`Stream`]: the bytes of one connection, whatever carries them.
//!
//! Every network layer (the broker's socket server, the controller and learner listeners, the
//! inter-node clients) reads and writes a `Stream`, never a bare `TcpStream`, so that a listener's
//! security protocol decides the transport in one place. A PLAINTEXT or SASL_PLAINTEXT connection
//! is [`Stream::Plain`]; an SSL or SASL_SSL one is [`Stream::TlsServer`] (accepted) or
//! [`Stream::TlsClient`] (opened by [`connect`](crate::transport::connect)), a rustls session
//! over the socket. Zero-copy `sendfile(2)` needs the socket itself
//! ([`Stream::tcp_for_sendfile`]): only a plain stream offers it (rustls encrypts in user space;
//! see `tls` on kernel TLS).

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// One connection's byte stream.
#[derive(Debug)]
pub enum Stream {
    /// A TCP socket: bytes as they are on the wire.
    Plain(TcpStream),
    /// The server side of a TLS session (an accepted connection on an SSL listener).
    TlsServer(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// The client side of a TLS session (an inter-node connection to an SSL listener).
    TlsClient(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// Calls `$f` on the inner stream of whatever variant, pinned.
macro_rules! each {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            Stream::Plain($s) => $e,
            Stream::TlsServer($s) => $e,
            Stream::TlsClient($s) => $e,
        }
    };
}

impl Stream {
    /// The TCP socket underneath, whatever the layers above it.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::TlsServer(s) => s.get_ref().0,
            Stream::TlsClient(s) => s.get_ref().0,
        }
    }

    /// Whether the bytes are a TLS session.
    pub fn is_tls(&self) -> bool {
        !matches!(self, Stream::Plain(_))
    }

    /// The socket, when bytes written to it reach the peer unchanged so that `sendfile(2)` may
    /// fill it straight from the page cache; `None` when a layer in user space (TLS without
    /// kernel offload) must see every byte.
    pub fn tcp_for_sendfile(&self) -> Option<&TcpStream> {
        match self {
            Stream::Plain(s) => Some(s),
            Stream::TlsServer(_) | Stream::TlsClient(_) => None,
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

/// A stream whose socket can be told how many unread bytes make it worth waking the reader
/// (`SO_RCVLOWAT`): a reader that knows a response's length waits for most of it in one wake-up
/// instead of one per segment that arrives (see `rafka_client::wire::exchange`).
pub trait ReceiveLowWater {
    /// Asks the kernel to report the socket readable only once `bytes` are waiting (1: any).
    /// False where it cannot be done: a TLS stream's kernel bytes are not the bytes its reader
    /// gets, so a low water there could wait for bytes that never come.
    fn set_receive_low_water(&self, bytes: usize) -> bool;
}

impl ReceiveLowWater for TcpStream {
    fn set_receive_low_water(&self, bytes: usize) -> bool {
        use std::os::fd::AsRawFd;
        let value = libc::c_int::try_from(bytes.max(1)).unwrap_or(libc::c_int::MAX);
        // SAFETY: a valid socket descriptor, and a c_int option value of the given size.
        let rc = unsafe {
            libc::setsockopt(
                self.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVLOWAT,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        rc == 0
    }
}

impl ReceiveLowWater for Stream {
    fn set_receive_low_water(&self, bytes: usize) -> bool {
        match self {
            Stream::Plain(s) => s.set_receive_low_water(bytes),
            Stream::TlsServer(_) | Stream::TlsClient(_) => false,
        }
    }
}

impl ReceiveLowWater for tokio::io::DuplexStream {
    fn set_receive_low_water(&self, _bytes: usize) -> bool {
        false
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(self.get_mut(), s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(self.get_mut(), s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        each!(self, s => s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
    }
}
