//! The socket server: Kafka's `SocketServer` (Acceptor + Processors) as tokio tasks.
//!
//! Owns: accepting connections on the client listeners (bounded by `max.connections`,
//! `listener.name.<name>.max.connections`, `max.connections.per.ip` and its overrides — see
//! `network/connection_quotas.rs`), reading size-prefixed request frames (bounded by
//! `socket.request.max.bytes`, checked *before* anything is allocated, and in total over every
//! connection by `queued.max.request.bytes` — `network/memory_pool.rs`), closing idle connections
//! (`connections.max.idle.ms`), writing responses — whole frames, or header bytes interleaved with
//! `sendfile(2)` of log-segment slices so that record data never passes through user space — and a
//! controlled shutdown. Does not own: what a request means. Every decoded request goes to a
//! [`RequestHandler`] (`KafkaApis`), every undecodable one to
//! [`RequestHandler::handle_frame_error`]; the handler answers with a [`Response`].
//!
//! Layout: this file holds the public types and the accept loop ([`serve`]);
//! `network/connection.rs` is the one type that owns a socket (frame reading, response writing,
//! the per-connection request loop); `network/sendfile.rs` wraps the two Linux system calls the
//! write path needs (`sendfile`, `sendmsg` with `MSG_MORE`). Like `storage`, this is Linux-only.
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
pub mod listen;
/// Kafka's `ConnectionQuotas`, shared with the controller listener (hence in the controller
/// crate, which the broker depends on).
pub use rafka_controller::connection_quotas;
pub mod memory_pool;
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
pub use rafka_security::sasl::authenticator::SaslServerConfig;
pub use rafka_security::transport::ServerSecurity;
use rafka_security::{KafkaPrincipal, SecurityProtocol};
use rafka_storage::FileSlice;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn, Instrument};

use crate::config::KafkaConfig;
use connection_quotas::{
    parse_overrides, resolve_overrides, ConnectionLimits, ConnectionQuotas, ConnectionSlot,
    OverridesError,
};
use memory_pool::MemoryPool;

/// Bytes written to sockets by `sendfile(2)` since the process started, over all connections.
/// Record data sent this way never passed through user space; tests (and the zero-copy check)
/// compare it with the slices they expect to go out.
pub static SENDFILE_BYTES: AtomicU64 = AtomicU64::new(0);

/// Connection ids are unique in the process, across listeners.
static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// `queued.max.request.bytes` when it is not set (or set to Kafka's -1, "unbounded"): 512 MiB.
///
/// Kafka leaves the request pool unbounded by default; rafka always bounds it. The bound cannot
/// hurt a normal client: it only makes a connection *wait* before reading a body that does not
/// fit, never fail; it holds five Produce requests of the largest size
/// (`socket.request.max.bytes`, 100 MiB) at once, and other requests — whose decoded form and
/// response are counted in a second pool of the same size, at `memory_pool::DECODE_AMPLIFICATION`
/// times their bytes — are a few KiB each; and the bytes a broker really has in flight are the requests being handled
/// right now — a few MiB at a GB/s of produce traffic with millisecond handling, hundreds of
/// MiB only when hundreds of producers each have a 1 MiB batch parked in acks=all purgatory at
/// the same moment, and even then they only queue for their turn.
pub const DEFAULT_QUEUED_MAX_REQUEST_BYTES: usize = 512 * 1024 * 1024;

/// The socket server's settings (Kafka's names and defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// `socket.request.max.bytes`: the largest request frame accepted (size prefix excluded);
    /// a larger or negative size closes the connection before anything is allocated.
    pub max_request_bytes: usize,
    /// `connections.max.idle.ms`: a connection that neither sends a byte nor accepts a byte of
    /// its response for this long is closed. Time spent in the handler, or waiting for room in
    /// the request memory pool, does not count.
    pub idle_timeout: Duration,
    /// `queued.max.request.bytes`: the bytes of requests read and not yet answered, over every
    /// connection of every client listener.
    pub queued_max_request_bytes: usize,
    /// `max.connections`, `listener.name.<name>.max.connections`, `max.connections.per.ip` and
    /// its overrides.
    pub limits: ConnectionLimits,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            max_request_bytes: 104_857_600,
            idle_timeout: Duration::from_millis(600_000),
            queued_max_request_bytes: DEFAULT_QUEUED_MAX_REQUEST_BYTES,
            limits: ConnectionLimits::default(),
        }
    }
}

impl NetworkConfig {
    /// The socket server's settings from the broker's configuration. Fails when
    /// `max.connections.per.ip.overrides` is malformed or names a host that does not resolve
    /// (Kafka refuses such a configuration at start too).
    pub fn from_kafka_config(c: &KafkaConfig) -> Result<NetworkConfig, OverridesError> {
        let count = |v: i32| usize::try_from(v).unwrap_or(0);
        let overrides = c
            .get::<String>("max.connections.per.ip.overrides")
            .unwrap_or_default();
        let listeners = c.broker_listeners();
        // Kafka's per-listener settings: `listener.name.<lower-cased name>.max.connections`.
        let max_connections_per_listener = listeners
            .iter()
            .filter_map(|l| {
                let key = listener_max_connections_key(&l.listener_name);
                let (raw, _) = c.raw(&key)?;
                match raw.trim().parse::<i32>() {
                    Ok(v) if v > 0 => Some((l.listener_name.clone(), count(v))),
                    _ => {
                        warn!(key, value = raw, "ignored: not a positive number");
                        None
                    }
                }
            })
            .collect();
        let queued = c.get::<i64>("queued.max.request.bytes").unwrap_or(-1);
        Ok(NetworkConfig {
            max_request_bytes: c.socket_request_max_bytes().max(1) as usize,
            idle_timeout: Duration::from_millis(c.connections_max_idle_ms().max(1) as u64),
            queued_max_request_bytes: if queued > 0 {
                usize::try_from(queued).unwrap_or(usize::MAX)
            } else {
                DEFAULT_QUEUED_MAX_REQUEST_BYTES
            },
            limits: ConnectionLimits {
                max_connections: count(c.max_connections()),
                max_connections_per_listener,
                max_connections_per_ip: count(c.max_connections_per_ip()),
                max_connections_per_ip_overrides: resolve_overrides(&parse_overrides(&overrides)?)?,
                // Kafka's `protectedListener`: the inter-broker listener, when there are others.
                protected_listener: (listeners.len() > 1)
                    .then(|| c.inter_broker_listener_name().to_owned()),
            },
        })
    }
}

/// `listener.name.<name>.max.connections`, with the name lower-cased as Kafka's
/// `ListenerName.configPrefix` does.
pub fn listener_max_connections_key(listener: &str) -> String {
    format!("listener.name.{}.max.connections", listener.to_lowercase())
}

/// The state shared by every client listener of one broker: its settings, the connection counts
/// and the request memory pool.
#[derive(Debug)]
pub struct SocketServer {
    config: NetworkConfig,
    quotas: Arc<ConnectionQuotas>,
    /// The bytes of requests read and not yet answered (`queued.max.request.bytes`)...
    pool: Arc<MemoryPool>,
    /// ... and, as much again, what decoding and answering them costs (see `memory_pool`).
    decode_pool: Arc<MemoryPool>,
    /// Where each request's times are recorded (Kafka's RequestMetrics); none: not recorded.
    metrics: Option<Arc<crate::metrics::NodeMetrics>>,
}

impl SocketServer {
    pub fn new(config: NetworkConfig) -> Arc<SocketServer> {
        SocketServer::with_metrics(config, None)
    }

    /// As [`SocketServer::new`], recording each request's times in `metrics`.
    pub fn with_metrics(
        config: NetworkConfig,
        metrics: Option<Arc<crate::metrics::NodeMetrics>>,
    ) -> Arc<SocketServer> {
        Arc::new(SocketServer {
            quotas: ConnectionQuotas::new(config.limits.clone()),
            pool: Arc::new(MemoryPool::new(config.queued_max_request_bytes)),
            decode_pool: Arc::new(MemoryPool::new(config.queued_max_request_bytes)),
            config,
            metrics,
        })
    }

    pub fn metrics(&self) -> Option<&Arc<crate::metrics::NodeMetrics>> {
        self.metrics.as_ref()
    }

    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    pub fn quotas(&self) -> &Arc<ConnectionQuotas> {
        &self.quotas
    }

    pub fn pool(&self) -> &Arc<MemoryPool> {
        &self.pool
    }

    pub fn decode_pool(&self) -> &Arc<MemoryPool> {
        &self.decode_pool
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
    /// What the listener speaks (`listener.security.protocol.map`).
    pub security_protocol: SecurityProtocol,
    /// Who the connection acts as: `User:ANONYMOUS` until TLS or SASL says otherwise.
    pub principal: KafkaPrincipal,
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
/// `security` is what the listener speaks: on a TLS listener each connection's handshake runs in
/// that connection's task (under a timeout) before its first request, and its principal is the
/// client certificate's; responses on TLS connections cannot use `sendfile(2)` and are copied
/// through user space in bounded chunks.
///
/// One task per connection, within the connection quotas of `server` (shared with the broker's
/// other listeners). On shutdown the listener
/// is closed at once (new connections are refused); each connection finishes the response it is
/// working on, or stops waiting for its next request, and closes. `serve` returns when every
/// connection has closed. A caller that cannot wait that long (a handler parked for minutes, a
/// client that stopped reading) bounds it with a timeout: dropping this future aborts the
/// connection tasks that remain.
pub async fn serve(
    listener: TcpListener,
    name: String,
    security: ServerSecurity,
    handler: Arc<dyn RequestHandler>,
    server: Arc<SocketServer>,
    mut shutdown: watch::Receiver<bool>,
) {
    let local = listener.local_addr().ok();
    info!(listener = %name, addr = ?local, protocol = %security.protocol, "accepting connections");
    // New certificates in the keystore/truststore files reach new connections while we serve.
    let _reload = security.tls.as_ref().and_then(|tls| tls.watch());
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = shutdown_signalled(&mut shutdown) => break,
            Some(done) = connections.join_next(), if !connections.is_empty() => report_task_end(done),
            (slot, stream, peer) = accept(&listener, &server.quotas, &name) => {
                // A permit moves into its connection's task and gives its counts back when the
                // task ends, however it ends (panics included).
                let permit = match slot.admit(peer.ip()) {
                    Ok(permit) => permit,
                    Err(e) => {
                        // Closed at once, as Kafka's acceptor does; counted in the quotas.
                        info!(listener = %name, %peer, error = %e, "connection refused");
                        drop(stream);
                        continue;
                    }
                };
                let connection_id = NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed);
                let ctx = RequestContext {
                    connection_id,
                    peer,
                    listener: name.clone(),
                    security_protocol: security.protocol,
                    principal: KafkaPrincipal::anonymous(),
                };
                let span = tracing::debug_span!("connection", connection_id, %peer, listener = %name);
                connections.spawn(
                    connection::run(
                        stream,
                        ctx,
                        security.clone(),
                        handler.clone(),
                        server.clone(),
                        shutdown.clone(),
                        permit,
                    )
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

/// Waits for a connection slot on the listener `name` (its own and the broker-wide limit), then
/// for a connection; while no slot is free new clients wait in the kernel's accept backlog, as
/// behind Kafka's blocked acceptor. Cancel-safe: dropping it releases the slot, and
/// `TcpListener::accept` loses no connection when cancelled.
async fn accept(
    listener: &TcpListener,
    quotas: &Arc<ConnectionQuotas>,
    name: &str,
) -> (ConnectionSlot, TcpStream, SocketAddr) {
    let permit = quotas.slot(name).await;
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
pub async fn shutdown_signalled(shutdown: &mut watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}
