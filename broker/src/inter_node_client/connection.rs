//! [`NodeConnection`]: one persistent connection to one node — Kafka's `NetworkClient` for a
//! single destination with one request in flight (the peer answers a connection's requests one
//! at a time anyway, as Kafka's SocketServer mutes a channel while it handles a request).
//!
//! What it guarantees:
//! - **Reuse.** The stream is kept between requests. Before one is reused it is checked for a
//!   close the peer already sent (its idle timeout, a restart): such a connection is replaced
//!   instead of failing the request.
//! - **Bounded reconnects.** A failed connection attempt is not repeated before the reconnect
//!   backoff — [`RECONNECT_BACKOFF`] doubling per consecutive failure up to
//!   [`RECONNECT_BACKOFF_MAX`] (Kafka's client defaults for `reconnect.backoff.ms` and
//!   `reconnect.backoff.max.ms`), counted from the attempt's start, so a connection that lived
//!   longer than that is reopened at once. A connection attempt is bounded by the setup timeout.
//! - **Bounded requests.** Each request has a deadline; past it the request fails with
//!   [`InterNodeError::Timeout`] and the connection is dropped.
//! - **Hostile answers.** A response is read within the frame limit (a larger size prefix is
//!   refused before anything is buffered), must carry the request's correlation id and decode as
//!   that API's response at that version. Any failure drops the connection: the stream is taken
//!   out for the exchange and put back only after a whole valid answer was read, so an error or
//!   a cancelled request (its future dropped) never leaves a half-read stream behind.
//!
//! Not here: which node leads what (the callers), sharing connections between tasks (see
//! [`super::InterNodeClient`]).

use super::error::InterNodeError;
use super::stats::InterNodeStats;
use rafka_client::wire::ExchangeError;
use rafka_protocol::messages::{RequestKind, ResponseKind};
use rafka_security::transport::{connect_with, ClientSecurity, Session, Stream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Kafka's `reconnect.backoff.ms` default: the wait after a failed connection attempt.
pub const RECONNECT_BACKOFF: Duration = Duration::from_millis(50);
/// Kafka's `reconnect.backoff.max.ms` default: the longest wait between attempts.
pub const RECONNECT_BACKOFF_MAX: Duration = Duration::from_millis(1000);
/// Kafka's `socket.connection.setup.timeout.ms` default: one connection attempt's bound.
pub const CONNECTION_SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Kafka's client `connections.max.idle.ms` default (9 minutes): a shared connection unused this
/// long is closed by this side — before the peer's listener closes it at its 10 minutes, and so
/// that a node gone from the cluster keeps no socket here.
pub const CONNECTIONS_MAX_IDLE: Duration = Duration::from_secs(540);

/// How a [`NodeConnection`] behaves.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// The client id sent in every request header (`broker-<id>`, `replica-fetcher-<id>`).
    pub client_id: String,
    /// The listener's security protocol and this node's credentials for it.
    pub security: Arc<ClientSecurity>,
    /// The largest response frame accepted.
    pub max_response_bytes: usize,
    /// One connection attempt's bound (TCP, TLS and SASL together).
    pub connection_setup_timeout: Duration,
    pub reconnect_backoff: Duration,
    pub reconnect_backoff_max: Duration,
    /// How long a shared connection may stay unused (see [`CONNECTIONS_MAX_IDLE`]).
    pub connections_max_idle: Duration,
    /// SO_RCVBUF of the connection, set before it connects (the replica fetcher's
    /// `replica.socket.receive.buffer.bytes`); `None`: the OS's autotuned buffer.
    pub receive_buffer: Option<u32>,
}

impl ConnectionConfig {
    /// Kafka's defaults for everything but the client id and the security.
    pub fn new(client_id: impl Into<String>, security: Arc<ClientSecurity>) -> ConnectionConfig {
        ConnectionConfig {
            client_id: client_id.into(),
            security,
            max_response_bytes: rafka_controller::network::MAX_FRAME_BYTES,
            connection_setup_timeout: CONNECTION_SETUP_TIMEOUT,
            reconnect_backoff: RECONNECT_BACKOFF,
            reconnect_backoff_max: RECONNECT_BACKOFF_MAX,
            connections_max_idle: CONNECTIONS_MAX_IDLE,
            receive_buffer: None,
        }
    }
}

/// Whether [`NodeConnection::connect`] found a connection or opened one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connected {
    Existing,
    New,
}

/// One connection to node `node_id`, reopened as needed. Not shared: the owner serializes its
/// requests (`&mut self`); [`super::InterNodeClient`] puts one behind an async mutex per
/// destination and purpose.
#[derive(Debug)]
pub struct NodeConnection {
    node_id: i32,
    config: Arc<ConnectionConfig>,
    stats: Arc<InterNodeStats>,
    /// The open stream and the address it goes to; `None` while closed, or while an exchange
    /// holds it.
    stream: Option<(String, Stream)>,
    /// The open stream's SASL session: authenticated again before a request once it is due.
    session: Session,
    /// The last correlation id sent on this connection (each request takes the next).
    correlation_id: i32,
    /// Consecutive failed connection attempts, and when the last attempt started.
    failures: u32,
    last_attempt: Option<Instant>,
    /// When the last request ended (or the connection opened).
    last_used: Instant,
}

impl NodeConnection {
    pub fn new(
        node_id: i32,
        config: Arc<ConnectionConfig>,
        stats: Arc<InterNodeStats>,
    ) -> NodeConnection {
        NodeConnection {
            node_id,
            config,
            stats,
            stream: None,
            session: Session::default(),
            correlation_id: 0,
            failures: 0,
            last_attempt: None,
            last_used: Instant::now(),
        }
    }

    /// Closes the connection if it has been unused for `connections_max_idle`.
    pub fn close_if_idle(&mut self, now: Instant) {
        if self.stream.is_some()
            && now.saturating_duration_since(self.last_used) >= self.config.connections_max_idle
        {
            tracing::debug!(
                node_id = self.node_id,
                "closing an idle inter-node connection"
            );
            self.close();
        }
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// Whether a stream is open (as far as this side knows).
    pub fn is_connected(&self) -> bool {
        self.stream.is_some()
    }

    /// Closes the connection; the next request opens a new one.
    pub fn close(&mut self) {
        if self.stream.take().is_some() {
            self.stats
                .connection_close_total
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The wait left before the next connection attempt may start.
    fn backoff_remaining(&self, now: Instant) -> Duration {
        let Some(last) = self.last_attempt else {
            return Duration::ZERO;
        };
        // The base after a success too: a peer that accepts and closes at once is not hammered.
        let shift = self.failures.saturating_sub(1).min(16);
        let wait = self
            .config
            .reconnect_backoff
            .saturating_mul(1 << shift)
            .min(
                self.config
                    .reconnect_backoff_max
                    .max(self.config.reconnect_backoff),
            );
        (last + wait).saturating_duration_since(now)
    }

    /// Makes sure a usable connection to `addr` is open: keeps the current one if it goes there
    /// and the peer has not closed it, opens a new one otherwise (unless in backoff).
    pub async fn connect(&mut self, addr: &str) -> Result<Connected, InterNodeError> {
        if let Some((a, s)) = &self.stream {
            if a == addr && peer_still_open(s) {
                return Ok(Connected::Existing);
            }
            self.close();
        }
        let now = Instant::now();
        let remaining = self.backoff_remaining(now);
        if !remaining.is_zero() {
            return Err(InterNodeError::Backoff {
                node_id: self.node_id,
                addr: addr.to_owned(),
                remaining,
            });
        }
        self.last_attempt = Some(now);
        let attempt = tokio::time::timeout(
            self.config.connection_setup_timeout,
            connect_with(addr, &self.config.security, self.config.receive_buffer),
        )
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "connection setup took over {} ms",
                    self.config.connection_setup_timeout.as_millis()
                ),
            ))
        });
        match attempt {
            Ok((s, session)) => {
                self.failures = 0;
                self.session = session;
                self.correlation_id = 0;
                self.stats
                    .connection_creation_total
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(node_id = self.node_id, %addr, client_id = %self.config.client_id, "inter-node connection opened");
                self.stream = Some((addr.to_owned(), s));
                self.last_used = Instant::now();
                Ok(Connected::New)
            }
            Err(source) => {
                self.failures = self.failures.saturating_add(1);
                self.stats
                    .connection_creation_failed_total
                    .fetch_add(1, Ordering::Relaxed);
                Err(InterNodeError::Connect {
                    node_id: self.node_id,
                    addr: addr.to_owned(),
                    source,
                })
            }
        }
    }

    /// Sends `body` at `version` to `addr` and returns the answer, all within `timeout`
    /// (connecting included). On any error the connection is closed.
    pub async fn send(
        &mut self,
        addr: &str,
        version: i16,
        body: RequestKind,
        timeout: Duration,
    ) -> Result<ResponseKind, InterNodeError> {
        let deadline = Instant::now() + timeout;
        let api = body.api_key();
        match tokio::time::timeout_at(deadline, self.connect(addr)).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(InterNodeError::Timeout {
                    node_id: self.node_id,
                    addr: addr.to_owned(),
                    api,
                    after: timeout,
                })
            }
        };
        let mut taken = Taken {
            stats: &self.stats,
            stream: self.stream.take(),
        };
        let (addr, stream) = taken
            .stream
            .as_mut()
            .expect("invariant: connect() leaves an open stream");
        let addr = addr.clone();
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let correlation_id = self.correlation_id;
        let exchange = rafka_client::wire::exchange_in_session(
            stream,
            &mut self.session,
            &self.config.security,
            version,
            correlation_id,
            &self.config.client_id,
            body,
            self.config.max_response_bytes,
        );
        let answer = match tokio::time::timeout_at(deadline, exchange).await {
            Ok(Ok(r)) => r,
            // `taken` closes the stream as it goes.
            Ok(Err(e)) => return Err(self.exchange_error(&addr, api, e)),
            Err(_) => {
                return Err(InterNodeError::Timeout {
                    node_id: self.node_id,
                    addr,
                    api,
                    after: timeout,
                })
            }
        };
        self.stream = taken.stream.take();
        self.last_used = Instant::now();
        self.stats.request_total.fetch_add(1, Ordering::Relaxed);
        if answer.api_key() != api {
            // The codec decodes by the key sent, so this is a bug, not the peer's doing; the
            // connection is still in step.
            return Err(InterNodeError::UnexpectedResponse {
                node_id: self.node_id,
                sent: api,
                got: answer.api_key(),
            });
        }
        Ok(answer)
    }

    fn exchange_error(
        &self,
        addr: &str,
        api: rafka_protocol::ApiKey,
        e: ExchangeError,
    ) -> InterNodeError {
        let node_id = self.node_id;
        let addr = addr.to_owned();
        match e {
            ExchangeError::Closed => InterNodeError::Disconnected { node_id, addr },
            ExchangeError::Io(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                InterNodeError::Disconnected { node_id, addr }
            }
            ExchangeError::Io(source) => InterNodeError::Io {
                node_id,
                addr,
                source,
            },
            ExchangeError::FrameSize(f) => InterNodeError::FrameTooLarge {
                node_id,
                addr,
                size: f.size,
                max: f.max,
            },
            ExchangeError::Correlation { sent, got } => InterNodeError::CorrelationMismatch {
                node_id,
                addr,
                sent,
                got,
            },
            ExchangeError::Decode(source) => InterNodeError::Decode {
                node_id,
                addr,
                api,
                source,
            },
            ExchangeError::Encode(source) => InterNodeError::Encode {
                node_id,
                api,
                source,
            },
        }
    }
}

/// The stream while an exchange holds it: closed (and counted) unless put back, however the
/// exchange ends — an error, or its future dropped.
struct Taken<'a> {
    stats: &'a InterNodeStats,
    stream: Option<(String, Stream)>,
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        if self.stream.take().is_some() {
            self.stats
                .connection_close_total
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for NodeConnection {
    fn drop(&mut self) {
        self.close();
    }
}

/// Whether a connection with no request in flight may be reused: the peer has not closed it
/// (idle timeout, restart), and on a plain connection it has sent nothing unasked. Looks at the
/// socket without consuming anything (`recv` with `MSG_PEEK | MSG_DONTWAIT`); on TLS, bytes
/// waiting may be the session's own records (tickets), so only a close counts there.
fn peer_still_open(stream: &Stream) -> bool {
    use std::os::fd::AsRawFd;
    let fd = stream.tcp().as_raw_fd();
    let mut byte = 0u8;
    // SAFETY: `fd` is an open socket owned by `stream`, borrowed for the duration of the call;
    // the buffer is one valid, writable byte.
    let n = unsafe {
        libc::recv(
            fd,
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    match n {
        0 => false,
        n if n > 0 => stream.is_tls(),
        _ => {
            let e = std::io::Error::last_os_error();
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
            )
        }
    }
}
