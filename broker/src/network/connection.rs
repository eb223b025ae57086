//! One client connection: the only type that touches its socket.
//!
//! [`Connection`] reads request frames into a buffer and writes responses; [`run`] is the
//! connection's task — read a frame, decode it, let the handler answer, write the answer, repeat —
//! and logs the one line that says why the connection closed.

use std::io::{self, IoSlice};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::metrics::request::{with_remote_time, RequestMetrics, RequestTimes};

use bytes::{Buf, Bytes, BytesMut};
use rafka_protocol::frame::FrameError;
use rafka_protocol::{Chunk, RequestFrame};
use rafka_security::transport::{ServerSecurity, Stream, HANDSHAKE_TIMEOUT};
use rafka_storage::FileSlice;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::debug;

use rafka_security::sasl::authenticator::{Decision, SaslServerAuthenticator};

use super::memory_pool::{decode_charge, MemoryLease, MemoryPool};
use super::request_channel::{RequestContext, RequestHandler, Response};
use super::sendfile::{self, SENDFILE_BYTES};
use super::shutdown::shutdown_signalled;
use super::socket_server::SocketServer;
use rafka_controller::connection_quotas::ConnectionPermit;

/// Reads ask for at least this much room, so that one read picks up several small pipelined
/// requests.
const READ_MIN: usize = 8 * 1024;
/// ... and grow the buffer toward a large frame's size in steps of at most this much, so that a
/// client announcing a 100 MiB frame does not get 100 MiB of memory for four bytes.
const READ_MAX: usize = 1024 * 1024;
/// Byte chunks passed to one `writev`.
const IOV_MAX: usize = 64;
/// The most one `sendfile` call moves on Linux.
const SENDFILE_MAX: usize = 0x7fff_f000;
/// On a TLS connection a file slice is read and encrypted in chunks of this size, through one
/// buffer per connection: a large fetch never sits in memory whole (see [`Connection::copy_slice`]).
pub(super) const TLS_COPY_CHUNK: usize = 256 * 1024;

/// Why a connection was closed by us (a clean end of stream and shutdown are not errors).
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error("request size {size} is negative or above socket.request.max.bytes ({max})")]
    InvalidRequestSize { size: i32, max: usize },
    #[error("peer closed the connection after {have} of the {need} bytes of a request")]
    TruncatedRequest { have: usize, need: usize },
    #[error("no byte read or written for connections.max.idle.ms ({0:?})")]
    Idle(Duration),
    #[error(
        "request of {len} bytes (api key {api_key:?}) may cost {charge} bytes once decoded and \
         answered, more than queued.max.request.bytes allows one request ({capacity})"
    )]
    TooCostly {
        api_key: Option<i16>,
        len: usize,
        charge: usize,
        capacity: usize,
    },
    #[error("malformed request: {0}")]
    Malformed(FrameError),
    #[error("closed by the request handler")]
    ClosedByHandler,
    #[error(
        "{path}: file slice {position}+{len} ended after {sent} bytes (truncated meanwhile); \
         closing rather than padding the response"
    )]
    SliceTruncated {
        path: String,
        position: u64,
        len: u32,
        sent: u64,
    },
    #[error(
        "response slot {handle} of {len} bytes has no file slice of that length (slice: {slice:?})"
    )]
    BadSlot {
        handle: u64,
        len: u32,
        slice: Option<u32>,
    },
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    #[error("authentication failed: {0}")]
    AuthenticationFailed(String),
    #[error("SASL: {0}")]
    SaslState(String),
}

/// How a connection ended without an error.
#[derive(Debug)]
enum Closed {
    /// The peer closed its side between requests.
    Eof,
    Shutdown,
}

/// The socket of one client and the bytes read from it that are not yet a whole frame.
///
/// Not shared: owned by the connection's task.
pub(super) struct Connection {
    stream: Stream,
    buffer: BytesMut,
    /// The buffer file slices pass through on a TLS connection (allocated on first use).
    copy_buffer: Vec<u8>,
    max_request_bytes: usize,
    /// `socket.request.max.bytes` (`max_request_bytes` is lower until a SASL client authenticates).
    server_max_request_bytes: usize,
    idle_timeout: Duration,
    /// `queued.max.request.bytes`, shared by every connection: the frames' bytes...
    pool: Arc<MemoryPool>,
    /// ... and what decoding and answering them costs (`memory_pool::decode_charge`).
    decode_pool: Arc<MemoryPool>,
    /// The room taken for the frame being read, once its size is known.
    lease: Option<MemoryLease>,
}

impl Connection {
    fn new(stream: Stream, server: &SocketServer) -> Connection {
        Connection {
            stream,
            copy_buffer: Vec::new(),
            buffer: BytesMut::with_capacity(READ_MIN),
            max_request_bytes: server.config().max_request_bytes,
            server_max_request_bytes: server.config().max_request_bytes,
            idle_timeout: server.config().idle_timeout,
            pool: server.pool().clone(),
            decode_pool: server.decode_pool().clone(),
            lease: None,
        }
    }

    /// Waits for the room decoding and answering `frame` takes (nothing for Produce). Called
    /// with the frame's own room held, never the other way round. A request whose cost is larger
    /// than the whole decode pool could never be granted honestly: it is refused.
    async fn decode_room(&self, frame: &[u8]) -> Result<MemoryLease, ConnectionError> {
        let api_key = frame.get(..2).map(|k| i16::from_be_bytes([k[0], k[1]]));
        let charge = decode_charge(api_key, frame.len());
        if !self.decode_pool.fits(charge) {
            return Err(ConnectionError::TooCostly {
                api_key,
                len: frame.len(),
                charge,
                capacity: self.decode_pool.capacity(),
            });
        }
        Ok(self.decode_pool.acquire(charge).await)
    }

    /// The next request frame without its size prefix, with the pool room it holds until it is
    /// answered; `None` when the peer closed the connection between frames.
    ///
    /// The room for a frame is taken once its size is known *and its body has begun to arrive*
    /// (a size prefix alone claims nothing: a thousand clients that send four bytes and stop
    /// cannot lock the pool; the idle timeout closes them), and the body is read only once the
    /// pool has room for all of it: until then the connection waits — without the idle timeout
    /// running, the wait is ours, not the client's — and the client's bytes stay in the kernel.
    /// Room is taken for the whole frame at once, never piecemeal, so two half-read frames can
    /// never each wait for room the other holds. Before its room is taken, a connection reads
    /// only into the small buffer it already has, so what it holds outside the pool is a few KiB.
    ///
    /// Cancel-safe: bytes read and room taken stay with the connection.
    async fn read_frame(&mut self) -> Result<Option<(Bytes, MemoryLease)>, ConnectionError> {
        loop {
            let len = self.frame_len()?;
            if let Some(len) = len {
                if self.lease.is_none() && (self.buffer.len() > 4 || len == 0) {
                    self.lease = Some(self.pool.acquire(len).await);
                }
            }
            if let Some(frame) = self.parse_frame()? {
                let lease = self
                    .lease
                    .take()
                    .expect("invariant: a whole frame's room was taken before its body was read");
                return Ok(Some((frame, lease)));
            }
            let need = len.map_or(4, |n| 4 + n);
            if len.is_none() || self.lease.is_some() {
                // Room for the rest of the frame (as far as its size is known), within bounds.
                let missing = need.saturating_sub(self.buffer.len());
                self.buffer.reserve(missing.clamp(READ_MIN, READ_MAX));
            } else if self.buffer.len() == self.buffer.capacity() {
                // A size prefix and no body yet, and no room taken: wait for the first body
                // byte with a small buffer.
                self.buffer.reserve(READ_MIN);
            }
            let n = idle(self.idle_timeout, self.stream.read_buf(&mut self.buffer)).await?;
            if n == 0 {
                return if self.buffer.is_empty() {
                    Ok(None)
                } else {
                    Err(ConnectionError::TruncatedRequest {
                        have: self.buffer.len(),
                        need,
                    })
                };
            }
        }
    }

    /// The announced size of the frame at the front of the buffer, once its prefix is there;
    /// refused when negative or above `socket.request.max.bytes`.
    fn frame_len(&self) -> Result<Option<usize>, ConnectionError> {
        let Some(prefix) = self.buffer.get(..4) else {
            return Ok(None);
        };
        let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        match usize::try_from(size) {
            Ok(n) if n <= self.max_request_bytes => Ok(Some(n)),
            _ => Err(ConnectionError::InvalidRequestSize {
                size,
                max: self.max_request_bytes,
            }),
        }
    }

    /// Takes a whole frame off the front of the buffer, if one is there.
    fn parse_frame(&mut self) -> Result<Option<Bytes>, ConnectionError> {
        let Some(len) = self.frame_len()? else {
            return Ok(None);
        };
        if self.buffer.len() < 4 + len {
            return Ok(None);
        }
        self.buffer.advance(4);
        let frame = self.buffer.split_to(len).freeze();
        if len > READ_MAX && self.buffer.is_empty() {
            // Let the large allocation go with the frame rather than keep it for an idle
            // connection.
            self.buffer = BytesMut::new();
        }
        Ok(Some(frame))
    }

    async fn write_response(&mut self, response: Response) -> Result<(), ConnectionError> {
        match response {
            Response::Frame(frame) => self.write_all(&[&frame], false).await?,
            Response::Chunks { chunks, slices } => self.write_chunks(&chunks, &slices).await?,
            Response::None => return Ok(()),
            Response::Close => return Err(ConnectionError::ClosedByHandler),
        }
        self.flush().await
    }

    /// Pushes out what a layer above the socket still holds (TLS records rustls could not
    /// write yet); nothing to do on a plain socket.
    async fn flush(&mut self) -> Result<(), ConnectionError> {
        if self.stream.is_tls() {
            idle(self.idle_timeout, self.stream.flush()).await?;
        }
        Ok(())
    }

    /// Byte chunks with `writev`, slots with `sendfile`. On a plain TCP connection the bytes
    /// just before a slot go with `MSG_MORE`, so that they leave in one segment with the slot's
    /// first record bytes rather than alone (TCP_NODELAY is on); see `sendfile.rs` for why not
    /// `TCP_CORK`.
    async fn write_chunks(
        &mut self,
        chunks: &[Chunk],
        slices: &[FileSlice],
    ) -> Result<(), ConnectionError> {
        for c in chunks {
            if let Chunk::Slot { handle, len } = *c {
                let slice = usize::try_from(handle).ok().and_then(|h| slices.get(h));
                if slice.is_none_or(|s| s.len != len) {
                    return Err(ConnectionError::BadSlot {
                        handle,
                        len,
                        slice: slice.map(|s| s.len),
                    });
                }
            }
        }
        let mut rest = chunks;
        while let Some(first) = rest.first() {
            match first {
                Chunk::Slot { handle, .. } => {
                    // Checked above.
                    self.send_slice(&slices[*handle as usize]).await?;
                    rest = &rest[1..];
                }
                Chunk::Bytes(_) => {
                    let run = rest
                        .iter()
                        .position(|c| matches!(c, Chunk::Slot { .. }))
                        .unwrap_or(rest.len());
                    let bufs: Vec<&[u8]> = rest[..run]
                        .iter()
                        .filter_map(|c| match c {
                            Chunk::Bytes(b) => Some(&b[..]),
                            Chunk::Slot { .. } => None,
                        })
                        .collect();
                    // Only before record bytes that will follow: bytes held with MSG_MORE and
                    // nothing sent after them would wait in the kernel.
                    let data_follows =
                        matches!(rest.get(run), Some(Chunk::Slot { len, .. }) if *len > 0);
                    self.write_all(&bufs, data_follows).await?;
                    rest = &rest[run..];
                }
            }
        }
        Ok(())
    }

    /// Writes every byte of `bufs`, with as few calls as the socket allows. With `more`, on a
    /// plain TCP connection they go with `MSG_MORE`: the next send (a `sendfile`) carries them
    /// out with its data.
    async fn write_all(&mut self, bufs: &[&[u8]], more: bool) -> Result<(), ConnectionError> {
        let mut slices: Vec<IoSlice<'_>> = bufs
            .iter()
            .filter(|b| !b.is_empty())
            .map(|b| IoSlice::new(b))
            .collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            let batch = &rest[..rest.len().min(IOV_MAX)];
            let n = match self.stream.tcp_for_sendfile().filter(|_| more) {
                Some(tcp) => {
                    when_writable(tcp, self.idle_timeout, || sendfile::send_more(tcp, batch))
                        .await?
                }
                None => idle(self.idle_timeout, self.stream.write_vectored(batch)).await?,
            };
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::WriteZero).into());
            }
            IoSlice::advance_slices(&mut rest, n);
        }
        Ok(())
    }

    /// Sends exactly `slice.len` bytes of the file from `slice.position`: `sendfile` on the
    /// non-blocking socket, awaiting writability between partial sends. A file that ends early
    /// closes the connection — the size prefix already promised those bytes, and padding would
    /// hand the client bytes that are not a batch.
    async fn send_slice(&mut self, slice: &FileSlice) -> Result<(), ConnectionError> {
        let truncated = |sent: u64| ConnectionError::SliceTruncated {
            path: slice.file.path().display().to_string(),
            position: slice.position,
            len: slice.len,
            sent,
        };
        if self.stream.tcp_for_sendfile().is_none() {
            return self.copy_slice(slice).await;
        }
        let Some(file_fd) = slice.file.raw_fd() else {
            // The simulated file system of tests has no descriptor: copy through memory.
            let data = slice.read_to_vec().map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => truncated(0),
                _ => e.into(),
            })?;
            return self.write_all(&[&data], false).await;
        };
        let mut offset = i64::try_from(slice.position).map_err(|_| truncated(0))?;
        let mut remaining = slice.len as usize;
        while remaining > 0 {
            let count = remaining.min(SENDFILE_MAX);
            let Some(stream) = self.stream.tcp_for_sendfile() else {
                return self.copy_slice(slice).await;
            };
            let n = when_writable(stream, self.idle_timeout, || {
                sendfile::sendfile(stream, file_fd, &mut offset, count)
            })
            .await?;
            if n == 0 {
                return Err(truncated(u64::from(slice.len) - remaining as u64));
            }
            SENDFILE_BYTES.fetch_add(n as u64, Ordering::Relaxed);
            remaining -= n;
        }
        Ok(())
    }
}

impl Connection {
    /// The fallback for a stream `sendfile(2)` cannot fill (TLS in user space; the kernel here
    /// offers no kTLS): the slice is read from the page cache in [`TLS_COPY_CHUNK`] pieces into
    /// the connection's one buffer and written through the stream, so a fetch of any size holds
    /// at most one chunk in memory. A file that ends early closes the connection, as with
    /// `sendfile`.
    async fn copy_slice(&mut self, slice: &FileSlice) -> Result<(), ConnectionError> {
        let total = u64::from(slice.len);
        if self.copy_buffer.len() < TLS_COPY_CHUNK {
            self.copy_buffer = vec![0; TLS_COPY_CHUNK];
        }
        let mut done = 0u64;
        while done < total {
            let n = (total - done).min(TLS_COPY_CHUNK as u64) as usize;
            let buf = &mut self.copy_buffer[..n];
            if let Err(e) = slice.file.read_exact_at(buf, slice.position + done) {
                return Err(match e.kind() {
                    io::ErrorKind::UnexpectedEof => ConnectionError::SliceTruncated {
                        path: slice.file.path().display().to_string(),
                        position: slice.position,
                        len: slice.len,
                        sent: done,
                    },
                    _ => e.into(),
                });
            }
            idle(
                self.idle_timeout,
                self.stream.write_all(&self.copy_buffer[..n]),
            )
            .await?;
            done += n as u64;
        }
        Ok(())
    }
}

/// Runs the non-blocking write `op` on the plain socket until it goes through: waits for
/// writability after each WouldBlock (try_io clears the readiness it saw), retries on EINTR, all
/// under the idle timeout.
async fn when_writable(
    stream: &TcpStream,
    timeout: Duration,
    mut op: impl FnMut() -> io::Result<usize>,
) -> Result<usize, ConnectionError> {
    idle(timeout, async {
        loop {
            stream.writable().await?;
            match stream.try_io(Interest::WRITABLE, &mut op) {
                Ok(n) => return Ok(n),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(e),
            }
        }
    })
    .await
}

/// Awaits `op`, failing with [`ConnectionError::Idle`] when it makes no progress for `timeout`.
async fn idle<T>(
    timeout: Duration,
    op: impl std::future::Future<Output = io::Result<T>>,
) -> Result<T, ConnectionError> {
    match tokio::time::timeout(timeout, op).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(ConnectionError::Idle(timeout)),
    }
}

/// Who sent the request being handled, for the line logged if the connection closes.
#[derive(Default)]
struct LastRequest {
    /// The client id of the connection's last decoded header (clients keep one per connection).
    client_id: Option<String>,
    /// The request in progress: correlation id and API key.
    current: Option<(i32, i16)>,
}

impl LastRequest {
    fn start(&mut self, header: &rafka_protocol::messages::RequestHeader) {
        if self.client_id != header.client_id {
            self.client_id.clone_from(&header.client_id);
        }
        self.current = Some((header.correlation_id, header.request_api_key));
    }
}

/// The connection's task: requests one at a time, in order, until the peer closes, an error
/// closes it, or shutdown is asked for between two requests. On a TLS listener the handshake
/// comes first; on a SASL listener the connection must then authenticate
/// ([`SaslServerAuthenticator`]).
pub(super) async fn run(
    tcp: TcpStream,
    mut ctx: RequestContext,
    security: ServerSecurity,
    handler: Arc<dyn RequestHandler>,
    server: Arc<SocketServer>,
    mut shutdown: watch::Receiver<bool>,
    _permit: ConnectionPermit,
) {
    // Kafka sets TCP_NODELAY on every accepted socket: responses must not wait for an ACK.
    if let Err(e) = tcp.set_nodelay(true) {
        debug!(error = %e, "cannot set TCP_NODELAY");
    }
    // The TLS handshake runs here, in the connection's own task: a slow or failing one holds up
    // no other connection and not the accept loop. Shutdown abandons it.
    let timeout = server.config().idle_timeout.min(HANDSHAKE_TIMEOUT);
    let accepted = tokio::select! {
        biased;
        () = shutdown_signalled(&mut shutdown) => return,
        accepted = security.accept(tcp, timeout) => accepted,
    };
    let stream = match accepted {
        Ok((stream, principal)) => {
            if stream.is_tls() {
                debug!(%principal, "TLS session established");
            }
            ctx.principal = principal;
            stream
        }
        Err(error) => {
            let error = &error as &(dyn std::error::Error + 'static);
            return tracing::info!(error, "connection closed: TLS handshake failed");
        }
    };
    let mut conn = Connection::new(stream, &server);
    let mut last = LastRequest::default();
    // On SASL listeners the client authenticates next, over the transport (SASL_SSL: the SASL
    // principal replaces the certificate's, as in Kafka).
    let mut sasl = security.sasl.clone().map(|c| {
        // `sasl.server.max.receive.size`: an unauthenticated client cannot make the broker take
        // room for a 100 MiB frame.
        conn.max_request_bytes = conn.max_request_bytes.min(c.max_receive_size.max(1));
        SaslServerAuthenticator::new(c)
    });
    let result = serve_requests(
        &mut conn,
        &mut ctx,
        &*handler,
        &mut shutdown,
        &mut last,
        sasl.as_mut(),
        server.metrics().map(|m| &m.requests),
    )
    .await;
    let client_id = last.client_id.as_deref().unwrap_or("");
    let (correlation_id, api_key) = last.current.unwrap_or((-1, -1));
    let error = match &result {
        Ok(Closed::Eof) => return debug!(client_id, "connection closed by peer"),
        Ok(Closed::Shutdown) => return debug!(client_id, "connection closed: shutting down"),
        Err(e) => e,
    };
    macro_rules! closed {
        ($level:ident) => {{
            let error = error as &(dyn std::error::Error + 'static);
            tracing::event!(
                tracing::Level::$level,
                client_id,
                correlation_id,
                api_key,
                error,
                "connection closed"
            )
        }};
    }
    match error {
        // Ordinary ends: a reset by the peer, a client that went quiet.
        ConnectionError::Io(_) | ConnectionError::Idle(_) => closed!(DEBUG),
        // Bad input from the client.
        ConnectionError::InvalidRequestSize { .. }
        | ConnectionError::TruncatedRequest { .. }
        | ConnectionError::Malformed(_)
        | ConnectionError::TooCostly { .. }
        | ConnectionError::ClosedByHandler
        | ConnectionError::AuthenticationFailed(_)
        | ConnectionError::SaslState(_) => closed!(INFO),
        // A log truncated under a fetch: rare, worth seeing.
        ConnectionError::SliceTruncated { .. } => closed!(WARN),
        // The handler built a response that does not add up: a bug.
        ConnectionError::BadSlot { .. } => closed!(ERROR),
    }
}

async fn serve_requests(
    conn: &mut Connection,
    ctx: &mut RequestContext,
    handler: &dyn RequestHandler,
    shutdown: &mut watch::Receiver<bool>,
    last: &mut LastRequest,
    mut sasl: Option<&mut SaslServerAuthenticator>,
    metrics: Option<&RequestMetrics>,
) -> Result<Closed, ConnectionError> {
    // Authentications logged so far (the first, then re-authentications).
    let mut authentications = 0u64;
    loop {
        last.current = None;
        // `_lease` holds the frame's room in the memory pool until its response is written.
        let (frame, _lease) = tokio::select! {
            biased;
            () = shutdown_signalled(shutdown) => return Ok(Closed::Shutdown),
            frame = conn.read_frame() => match frame? {
                Some(frame) => frame,
                None => return Ok(Closed::Eof),
            },
        };
        // Kafka's RequestMetrics: taken only when recorded.
        let received = metrics.map(|_| Instant::now());
        // `_decoded` holds the room its decoded form and response take, as long.
        let _decoded = tokio::select! {
            biased;
            () = shutdown_signalled(shutdown) => return Ok(Closed::Shutdown),
            lease = conn.decode_room(&frame) => lease?,
        };
        let dequeued = metrics.map(|_| Instant::now());
        // The API key and purgatory time of a request that reached the handler.
        let mut timed: Option<(i16, Duration)> = None;
        // From here on the request is answered even if shutdown is asked for meanwhile.
        if let Some(auth) = sasl.as_deref_mut() {
            if auth.expects_raw_token() {
                // After a SaslHandshake v0 the frame is a bare SASL token.
                let decision = auth.on_raw_token(&frame, std::time::Instant::now());
                sasl_decision(conn, ctx, auth, &mut authentications, decision).await?;
                continue;
            }
        }
        let response = match RequestFrame::decode(&frame) {
            Ok(request) => {
                last.start(&request.header);
                debug!(
                    client_id = last.client_id.as_deref().unwrap_or(""),
                    correlation_id = request.header.correlation_id,
                    api_key = request.header.request_api_key,
                    api_version = request.header.request_api_version,
                    "request"
                );
                if let Some(auth) = sasl.as_deref_mut() {
                    let decision = auth.on_request(&request, std::time::Instant::now());
                    if !matches!(decision, Decision::Forward) {
                        sasl_decision(conn, ctx, auth, &mut authentications, decision).await?;
                        continue;
                    }
                }
                let api_key = request.header.request_api_key;
                if metrics.is_some() {
                    let (response, remote) = with_remote_time(handler.handle(ctx, request)).await;
                    timed = Some((api_key, remote));
                    response
                } else {
                    handler.handle(ctx, request).await
                }
            }
            Err(error) => {
                if let Some(h) = frame_error_header(&error) {
                    last.start(h);
                }
                let kept = error.clone();
                match handler.handle_frame_error(ctx, error).await {
                    Response::Close => return Err(ConnectionError::Malformed(kept)),
                    response => {
                        debug!(error = %kept, "answered an undecodable request");
                        response
                    }
                }
            }
        };
        let handled = metrics.map(|_| Instant::now());
        conn.write_response(response).await?;
        if let (Some(m), Some((api_key, remote)), Some(received), Some(dequeued), Some(handled)) =
            (metrics, timed, received, dequeued, handled)
        {
            let times = RequestTimes {
                received,
                dequeued,
                handled,
                sent: Instant::now(),
                remote,
            };
            m.record(api_key, &times);
        }
    }
}

/// Carries out what the authenticator decided about a request it answers itself: the answer,
/// the principal once authenticated, or the delayed failure and the close.
async fn sasl_decision(
    conn: &mut Connection,
    ctx: &mut RequestContext,
    auth: &SaslServerAuthenticator,
    authentications: &mut u64,
    decision: Decision,
) -> Result<(), ConnectionError> {
    match decision {
        Decision::Forward => Ok(()),
        Decision::Respond(frame) => {
            if auth.authentications() > *authentications {
                *authentications = auth.authentications();
                let principal = auth.principal().cloned().unwrap_or_default();
                let mechanism = auth.mechanism().map_or("", |m| m.name());
                if *authentications == 1 {
                    ctx.principal = principal;
                    // Authenticated: the listener's own request size limit applies from now on.
                    conn.max_request_bytes = conn.server_max_request_bytes;
                    tracing::info!(peer = %ctx.peer, principal = %ctx.principal, mechanism, "authenticated");
                } else {
                    tracing::info!(peer = %ctx.peer, principal = %ctx.principal, mechanism, "re-authenticated");
                }
            }
            conn.write_response(Response::Frame(frame)).await
        }
        Decision::Fail {
            response,
            delay,
            reason,
        } => {
            tracing::info!(peer = %ctx.peer, reason, "failed authentication");
            // Kafka's `connection.failed.authentication.delay.ms`: this task waits, no other.
            tokio::time::sleep(delay).await;
            if let Some(frame) = response {
                conn.write_response(Response::Frame(frame)).await?;
            }
            Err(ConnectionError::AuthenticationFailed(reason))
        }
        Decision::Close { reason } => Err(ConnectionError::SaslState(reason)),
    }
}

fn frame_error_header(e: &FrameError) -> Option<&rafka_protocol::messages::RequestHeader> {
    match e {
        FrameError::Header(_) => None,
        FrameError::UnknownApi { header, .. } => header.as_ref(),
        FrameError::UnsupportedVersion { header } | FrameError::Body { header, .. } => Some(header),
    }
}
