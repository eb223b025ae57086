//! The web console: pages served at `/` (assets compiled into the binary) and the JSON
//! endpoints under `/api/...` they read (also meant for scripts).
//!
//! What it shows comes from the node's own parts, never a second copy of a concept: the
//! metadata image (topics, partitions, brokers, configs), the replica manager (offsets, sizes,
//! and records through [`ReplicaManager::read`](crate::replica_manager::ReplicaManager::read),
//! the Fetch API's read, decoded by the protocol crate's `RecordBatch`/`RecordIter`), the group
//! coordinator (groups, and lag from [`GroupCoordinator::lag`](crate::group_coordinator::GroupCoordinator::lag)),
//! and the Kafka API handlers themselves (DescribeQuorum, DescribeGroups, DescribeConfigs; and
//! for the write actions CreateTopics, IncrementalAlterConfigs, OffsetCommit).
//!
//! The console acts as one principal, `http.console.principal` (default `User:ANONYMOUS`, what
//! an unauthenticated Kafka connection is): with an authorizer configured, every handler it
//! calls checks that principal's ACLs exactly as for a Kafka client, and the lists it shows are
//! filtered to what that principal may describe.
//!
//! Read-only unless `http.console.write.enable=true`. A write (POST) must carry the header
//! `X-Rafka-Console: 1` and a JSON body, and an `Origin`, if sent, must match the `Host`: a page
//! of another origin cannot send that header without a CORS preflight, which this listener
//! never grants — so no cross-site request forgery.
//!
//! Bounded: lists are paginated (`limit` at most 1,000), the message browser reads at most
//! 500 records and 4 MiB a page, histories are ring buffers (see [`history`]). Handlers that
//! walk partitions run on blocking threads.
//!
//! Files: `cluster.rs` (overview), `topics.rs`, `groups.rs`, `messages.rs` (the browser),
//! `history.rs` (the sampler behind the lag and throughput charts), `actions.rs` (writes),
//! `assets/` (the page, its script and style).

mod actions;
mod cluster;
mod groups;
mod history;
mod messages;
mod topics;

use super::state::HttpState;
use crate::apis::KafkaApis;
use crate::network::RequestContext;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rafka_security::{KafkaPrincipal, SecurityProtocol};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub use history::History;

/// The console's configuration, from `http.console.*`.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// `http.console.enable`: serve the console at all.
    pub enable: bool,
    /// `http.console.write.enable`: allow the write actions.
    pub write_enable: bool,
    /// `http.console.principal`: whom the console acts as.
    pub principal: KafkaPrincipal,
    /// `http.console.sample.interval.ms`: how often the charts' samples are taken.
    pub sample_interval: Duration,
}

impl ConsoleConfig {
    pub fn from_kafka_config(config: &crate::config::KafkaConfig) -> ConsoleConfig {
        let principal = config
            .get::<String>("http.console.principal")
            .and_then(|p| {
                let (t, n) = p.split_once(':')?;
                (!t.is_empty() && !n.is_empty()).then(|| KafkaPrincipal::new(t, n))
            })
            .unwrap_or_else(KafkaPrincipal::anonymous);
        ConsoleConfig {
            enable: config.get::<bool>("http.console.enable").unwrap_or(true),
            write_enable: config
                .get::<bool>("http.console.write.enable")
                .unwrap_or(false),
            principal,
            sample_interval: Duration::from_millis(
                config
                    .get::<i64>("http.console.sample.interval.ms")
                    .unwrap_or(5000)
                    .clamp(100, 3_600_000) as u64,
            ),
        }
    }
}

/// The console's state: the node's parts, its configuration, the sampled histories.
pub struct Console {
    pub(crate) http: Arc<HttpState>,
    pub(crate) config: ConsoleConfig,
    pub(crate) history: History,
}

impl Console {
    /// The broker's request handlers, or 503 on a controller-only node.
    fn apis(&self) -> Result<&Arc<KafkaApis>, ApiError> {
        self.http.broker.as_ref().map(|b| &b.apis).ok_or_else(|| {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "this node is not a broker")
        })
    }

    /// The request context the console's calls to the Kafka API handlers carry.
    fn context(&self) -> RequestContext {
        RequestContext {
            connection_id: u64::MAX,
            peer: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            listener: "HTTP".to_owned(),
            security_protocol: SecurityProtocol::Plaintext,
            principal: self.config.principal.clone(),
        }
    }
}

/// The console's routes (none when `http.console.enable=false`); starts the sampler.
pub(super) fn routes(http: Arc<HttpState>) -> Router<Arc<HttpState>> {
    let config = ConsoleConfig::from_kafka_config(&http.config);
    if !config.enable {
        return Router::new();
    }
    let console = Arc::new(Console {
        http,
        history: History::new(),
        config,
    });
    history::start_sampler(&console);
    Router::new()
        .route("/", get(index))
        .route("/assets/app.js", get(script))
        .route("/assets/app.css", get(style))
        .route("/api/cluster", get(cluster::get_cluster))
        .route("/api/topics", get(topics::list).post(actions::create_topic))
        .route("/api/topics/{topic}", get(topics::describe))
        .route("/api/topics/{topic}/configs", post(actions::alter_configs))
        .route(
            "/api/topics/{topic}/partitions/{partition}/messages",
            get(messages::browse),
        )
        .route("/api/throughput", get(history::throughput))
        .route("/api/groups", get(groups::list))
        .route("/api/groups/{group}", get(groups::describe))
        .route("/api/groups/{group}/offsets", post(actions::reset_offsets))
        .route("/api/{*rest}", get(unknown_api).post(unknown_api))
        .with_state(console)
}

/// An `/api/` path the console does not serve: 404, in JSON like its other answers.
async fn unknown_api() -> ApiError {
    ApiError::not_found("no such console endpoint")
}

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Headers every page answer carries: no caching surprises, no framing by other sites, and a
/// policy that allows only this origin's script and style.
fn page_headers(content_type: &'static str) -> [(header::HeaderName, &'static str); 4] {
    [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, "no-cache"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
        ),
    ]
}

async fn index() -> impl IntoResponse {
    (page_headers("text/html; charset=utf-8"), INDEX_HTML)
}

async fn script() -> impl IntoResponse {
    (page_headers("text/javascript; charset=utf-8"), APP_JS)
}

async fn style() -> impl IntoResponse {
    (page_headers("text/css; charset=utf-8"), APP_CSS)
}

/// An answer that is not 200: its status and a JSON `{"error": message}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
    /// A Kafka error code as an HTTP answer.
    pub fn kafka(code: rafka_protocol::ErrorCode, message: Option<&str>) -> ApiError {
        use rafka_protocol::ErrorCode as E;
        let status = match code {
            E::UnknownTopicOrPartition | E::GroupIdNotFound => StatusCode::NOT_FOUND,
            E::TopicAuthorizationFailed
            | E::GroupAuthorizationFailed
            | E::ClusterAuthorizationFailed => StatusCode::FORBIDDEN,
            E::OffsetOutOfRange => StatusCode::RANGE_NOT_SATISFIABLE,
            E::NotCoordinator
            | E::CoordinatorLoadInProgress
            | E::CoordinatorNotAvailable
            | E::NotLeaderOrFollower
            | E::LeaderNotAvailable
            | E::NotController
            | E::RequestTimedOut => StatusCode::SERVICE_UNAVAILABLE,
            E::TopicAlreadyExists
            | E::NonEmptyGroup
            | E::UnknownMemberId
            | E::RebalanceInProgress => StatusCode::CONFLICT,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(
            status,
            format!("{}: {}", code.name(), message.unwrap_or(code.message())),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CACHE_CONTROL, "no-store")],
            Json(json!({ "error": self.message })),
        )
            .into_response()
    }
}

/// A JSON answer, not cached.
pub fn ok(value: Value) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Json(value)).into_response()
}

/// Runs `f` on a blocking thread (walks over partitions stay off the async workers).
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|_| {
        Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "handler failed",
        ))
    })
}

/// Query parameters, strictly read: an unknown parameter or a malformed value is a 400.
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn new(raw: HashMap<String, String>, allowed: &[&str]) -> Result<Params, ApiError> {
        if let Some(k) = raw.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter {k:?} (allowed: {})",
                allowed.join(", ")
            )));
        }
        Ok(Params(raw))
    }
    pub fn str(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    /// An integer parameter within `min..=max`, `default` when absent.
    pub fn int(&self, key: &str, default: i64, min: i64, max: i64) -> Result<i64, ApiError> {
        match self.0.get(key) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                Ok(n) => Err(ApiError::bad_request(format!(
                    "{key}={n} is out of range {min}..={max}"
                ))),
                Err(_) => Err(ApiError::bad_request(format!(
                    "{key}={v:?} is not an integer"
                ))),
            },
        }
    }
    pub fn opt_int(&self, key: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        if self.0.contains_key(key) {
            self.int(key, 0, min, max).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// The page window of a list: `offset` (default 0) and `limit` (default 100, at most 1,000).
pub fn page(params: &Params) -> Result<(usize, usize), ApiError> {
    let offset = params.int("offset", 0, 0, i64::from(i32::MAX))? as usize;
    let limit = params.int("limit", 100, 1, 1000)? as usize;
    Ok((offset, limit))
}

/// Checks a write: enabled, and not forged (see the module doc).
pub fn check_write(console: &Console, headers: &HeaderMap) -> Result<(), ApiError> {
    if !console.config.write_enable {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "the console is read-only: set http.console.write.enable=true to allow changes",
        ));
    }
    if headers.get("x-rafka-console").and_then(|v| v.to_str().ok()) != Some("1") {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "a console write needs the header X-Rafka-Console: 1",
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://").map(|(_, rest)| rest));
        if host.is_none() || origin_host != host {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "a console write must come from the console's own origin",
            ));
        }
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().map(str::trim) == Some("application/json"));
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a console write must have Content-Type: application/json",
        ));
    }
    Ok(())
}

/// The state extractor every console handler takes.
pub type ConsoleState = State<Arc<Console>>;
