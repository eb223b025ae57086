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
//! Layout: this file holds the accept loop ([`serve`]); `network/request_channel.rs` what
//! passes between it and the handler ([`RequestContext`], [`RequestHandler`], [`Response`]);
//! `network/socket_server.rs` the state the listeners share ([`SocketServer`], its
//! [`NetworkConfig`]); `network/connection.rs` is the one type that owns a socket (frame reading,
//! response writing, the per-connection request loop); `network/sendfile.rs` wraps the two Linux
//! system calls the write path needs (`sendfile`, `sendmsg` with `MSG_MORE`). Like `storage`,
//! this is Linux-only.
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
mod request_channel;
mod sendfile;
mod shutdown;
mod socket_server;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use rafka_security::sasl::authenticator::SaslServerConfig;
pub use rafka_security::transport::ServerSecurity;
use rafka_security::KafkaPrincipal;
pub use request_channel::{RequestContext, RequestHandler, Response};
pub use sendfile::SENDFILE_BYTES;
pub use shutdown::shutdown_signalled;
pub use socket_server::{
    listener_max_connections_key, NetworkConfig, SocketServer, DEFAULT_QUEUED_MAX_REQUEST_BYTES,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn, Instrument};

use connection_quotas::{ConnectionQuotas, ConnectionSlot};

/// Connection ids are unique in the process, across listeners.
static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

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
            (slot, stream, peer) = accept(&listener, server.quotas(), &name) => {
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
