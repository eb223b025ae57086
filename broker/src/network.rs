//! The socket server: Kafka's `SocketServer` (Acceptor + Processors) as tokio tasks.
//!
//! Owns: accepting connections on one listener (bounded by `max.connections` through a
//! semaphore), reading size-prefixed request frames (bounded by `socket.request.max.bytes`,
//! checked *before* anything is allocated), closing idle connections
//! (`connections.max.idle.ms`), writing responses — whole frames, or header bytes interleaved with
//! `sendfile(2)` of log-segment slices so that record data never passes through user space — and a
//! controlled shutdown. Does not own: what a request means. Every decoded request goes to a
//! [`RequestHandler`] (`KafkaApis`), every undecodable one to
//! [`RequestHandler::handle_frame_error`]; the handler answers with a [`Response`].
//!
//! Layout: this file holds the public types and the accept loop ([`serve`]);
//! `network/connection.rs` is the one type that owns a socket (frame reading, response writing,
//! the per-connection request loop); `network/sendfile.rs` wraps the two Linux system calls the
//! write path needs (`sendfile`, `TCP_CORK`). Like `storage`, this is Linux-only.
//!
//! Ordering: requests on one connection are handled strictly one after another, as Kafka does
//! (its Processor mutes a channel from a complete receive until that response is sent). A
//! pipeline of concurrent handler futures answered in order would overlap the handling of
//! request N+1 with request N, but it would also let their side effects happen out of order —
//! two pipelined Produce requests appending in the wrong order break the idempotent producer's
//! sequences, and a JoinGroup could overtake the SyncGroup before it. Pipelined requests still
//! cost no extra system calls: one read fills the buffer with as many frames as the kernel holds,
//! and each complete frame is taken from the buffer without reading again.
//!
//! Every connection has its own task: an I/O error, a malformed frame, or a panic in the handler
//! ends that task and closes that socket only. Each closed connection is logged in one line
//! (with its client id and correlation id when known) at a level that says whether anyone should
//! care: debug for an ordinary close, info for bad input, warn for a file slice that turned out
//! shorter than promised, error for a handler bug.

mod connection;
mod sendfile;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rafka_protocol::frame::FrameError;
use rafka_protocol::{Chunk, RequestFrame};
use rafka_storage::FileSlice;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn, Instrument};

/// Bytes written to sockets by `sendfile(2)` since the process started, over all connections.
/// Record data sent this way never passed through user space; tests (and the zero-copy check)
/// compare it with the slices they expect to go out.
pub static SENDFILE_BYTES: AtomicU64 = AtomicU64::new(0);

/// Connection ids are unique in the process, across listeners.
static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// The socket server's settings (Kafka's names and defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkConfig {
    /// `socket.request.max.bytes`: the largest request frame accepted (size prefix excluded);
    /// a larger or negative size closes the connection before anything is allocated.
    pub max_request_bytes: usize,
    /// `connections.max.idle.ms`: a connection that neither sends a byte nor accepts a byte of
    /// its response for this long is closed. Time spent in the handler does not count.
    pub idle_timeout: Duration,
    /// `max.connections`: connections open at once on this listener; more wait in the kernel's
    /// accept backlog until one closes (Kafka's acceptor blocks the same way). 0 counts as 1.
    pub max_connections: usize,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            max_request_bytes: 104_857_600,
            idle_timeout: Duration::from_millis(600_000),
            max_connections: i32::MAX as usize,
        }
    }
}

/// What the handler wants sent back for one request.
#[derive(Debug)]
pub enum Response {
    /// A whole encoded response, size prefix included (`ResponseFrame::encode`).
    Frame(Bytes),
    /// A response as `ResponseFrame::encode_chunks` gives it (size prefix included): byte chunks
    /// are written as they are, each `Chunk::Slot { handle, len }` is filled with `sendfile` from
    /// `slices[handle]`, whose `len` must equal the slot's.
    Chunks {
        chunks: Vec<Chunk>,
        slices: Vec<FileSlice>,
    },
    /// Nothing is sent (Produce with acks=0); the next response follows in order.
    None,
    /// Nothing is sent and the connection is closed (acks=0 errors, malformed requests).
    Close,
}

/// Who sent a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub connection_id: u64,
    pub peer: SocketAddr,
    /// The listener's name (`PLAINTEXT`, `CONTROLLER`, ...).
    pub listener: String,
}

/// The request side of the broker (`KafkaApis`, or the controller's listener).
///
/// The futures it returns are awaited one at a time per connection, in request order, so a
/// handler may rely on a connection's requests taking effect in the order they were sent.
pub trait RequestHandler: Send + Sync + 'static {
    /// Answers a decoded request.
    fn handle(
        &self,
        ctx: &RequestContext,
        request: RequestFrame,
    ) -> Pin<Box<dyn Future<Output = Response> + Send + '_>>;

    /// Answers a frame that did not decode: ApiVersions of an unknown version gets
    /// UNSUPPORTED_VERSION (KIP-511); anything else should be [`Response::Close`].
    fn handle_frame_error(
        &self,
        ctx: &RequestContext,
        error: FrameError,
    ) -> Pin<Box<dyn Future<Output = Response> + Send + '_>>;
}

/// Serves `listener` until `shutdown` becomes `true` (or its sender is dropped).
///
/// One task per connection, at most `config.max_connections` at once. On shutdown the listener
/// is closed at once (new connections are refused); each connection finishes the response it is
/// working on, or stops waiting for its next request, and closes. `serve` returns when every
/// connection has closed. A caller that cannot wait that long (a handler parked for minutes, a
/// client that stopped reading) bounds it with a timeout: dropping this future aborts the
/// connection tasks that remain.
pub async fn serve(
    listener: TcpListener,
    name: String,
    handler: Arc<dyn RequestHandler>,
    config: NetworkConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let local = listener.local_addr().ok();
    info!(listener = %name, addr = ?local, "accepting connections");
    // Permits are connections; a permit moves into its connection's task and is released when
    // the task ends, however it ends (panics included).
    let limit = Arc::new(Semaphore::new(
        config.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = shutdown_signalled(&mut shutdown) => break,
            Some(done) = connections.join_next(), if !connections.is_empty() => report_task_end(done),
            (permit, stream, peer) = accept(&listener, &limit) => {
                let connection_id = NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed);
                let ctx = RequestContext { connection_id, peer, listener: name.clone() };
                let span = tracing::debug_span!("connection", connection_id, %peer, listener = %name);
                connections.spawn(
                    connection::run(stream, ctx, handler.clone(), config, shutdown.clone(), permit)
                        .instrument(span),
                );
            }
        }
    }
    // Closing the socket now makes new clients fail fast instead of waiting in the backlog.
    drop(listener);
    info!(listener = %name, open = connections.len(), "stopped accepting; draining connections");
    while let Some(done) = connections.join_next().await {
        report_task_end(done);
    }
    info!(listener = %name, "all connections closed");
}

/// Waits for a connection slot, then for a connection. Cancel-safe: dropping it releases the
/// permit, and `TcpListener::accept` loses no connection when cancelled.
async fn accept(
    listener: &TcpListener,
    limit: &Arc<Semaphore>,
) -> (OwnedSemaphorePermit, TcpStream, SocketAddr) {
    let permit = limit
        .clone()
        .acquire_owned()
        .await
        .expect("invariant: the connection semaphore is never closed");
    let mut backoff = Duration::from_millis(10);
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => return (permit, stream, peer),
            // The peer gave up between SYN and accept: nothing to wait for.
            Err(e) if is_per_connection(&e) => debug!(error = %e, "accept failed"),
            // Out of descriptors or memory: retrying at once would spin. Back off, as
            // Kafka's acceptor does, and keep serving the connections we have.
            Err(e) => {
                warn!(error = %e, retry_in = ?backoff, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
    )
}

fn report_task_end(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            // The panic message was already printed by the panic hook; the other connections
            // are untouched.
            error!(error = %e, "connection task panicked; its connection is closed");
        }
    }
}

/// Resolves once shutdown is asked for: the value is `true`, or the sender is gone (whoever
/// could have asked for it no longer exists). Cancel-safe.
pub(crate) async fn shutdown_signalled(shutdown: &mut watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}
