//! The HTTP listener (`http.listeners`, default `http://localhost:9644`): health checks, and the
//! routes the metrics and the console add (each mounted in [`router`]).
//!
//! It is bounded like the Kafka listeners: at most `http.max.connections` open connections (one
//! more is closed at once), request headers within `http.max.request.bytes` read within
//! `http.request.timeout.ms` (hyper answers 431 to larger heads and 400 to malformed ones, and
//! closes the connection), bodies within `http.max.request.bytes` (413). Handlers that walk every
//! partition run on blocking threads, so nothing here can hold up the Kafka listeners' tasks.
//!
//! Routes: `/metrics` (see [`crate::metrics`]), `/health/live` (200 while the process serves), `/health/ready` (200 once the node
//! can serve: a broker registered and unfenced — the controller unfences it only once it has
//! caught up with the metadata log — and, on a controller, a known quorum leader; 503 with the
//! reason otherwise). Anything else is 404.

mod collect;
pub mod console;
mod health;
mod metrics;
mod state;

pub use state::{BrokerState, HttpState};

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// The listener's configuration, from `http.*`.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// `http.listeners`: (host, port) to bind; empty: no HTTP listener.
    pub listeners: Vec<(String, u16)>,
    /// `http.max.connections`.
    pub max_connections: usize,
    /// `http.max.request.bytes`: the request head's and body's bound.
    pub max_request_bytes: usize,
    /// `http.request.timeout.ms`: how long a request's head may take to arrive.
    pub request_timeout: Duration,
}

impl HttpConfig {
    /// The `http.*` settings of `c`.
    pub fn from_kafka_config(c: &crate::config::KafkaConfig) -> HttpConfig {
        HttpConfig {
            listeners: c.http_listeners(),
            max_connections: c.http_max_connections().max(1) as usize,
            max_request_bytes: c.http_max_request_bytes().max(8192) as usize,
            request_timeout: Duration::from_millis(c.http_request_timeout_ms().max(1) as u64),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listeners: Vec::new(),
            max_connections: 64,
            max_request_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Every route of the HTTP listener.
pub fn router(state: Arc<HttpState>, config: &HttpConfig) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(metrics::routes())
        .merge(console::routes(state.clone()))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(config.max_request_bytes))
        .with_state(state)
}

async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "not found\n")
}

/// Binds `host:port` for HTTP.
pub async fn bind(host: &str, port: u16) -> std::io::Result<TcpListener> {
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    TcpListener::bind((host, port)).await
}

/// Serves `router` on `listener` until `shutdown`, within `config`'s bounds.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: HttpConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let connections = Arc::new(Semaphore::new(config.max_connections.max(1)));
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // EMFILE and the like: back off rather than spin.
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        // Over the limit: closed at once, before anything is read.
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(config.request_timeout)
            .max_header_size(config.max_request_bytes)
            .max_headers(100)
            // hyper's floor for its read buffer is 8 KiB.
            .max_buf_size(config.max_request_bytes.max(8192));
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = shutdown.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
                }
            }
        });
    }
}
