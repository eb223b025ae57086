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
//! `history.rs` (the samples behind the lag and throughput charts), `charts.rs` (the sampler and
//! the throughput endpoint), `actions.rs` (writes), `state.rs` (the console's state), `api.rs`
//! (errors, answers, parameters), `assets/` (the page, its script and style).

mod actions;
mod api;
mod charts;
mod cluster;
mod groups;
mod history;
mod messages;
mod state;
mod topics;

use super::state::HttpState;
use api::ApiError;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use history::History;
use state::{Console, ConsoleConfig};
use std::sync::Arc;

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
    charts::start_sampler(&console);
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
        .route("/api/throughput", get(charts::throughput))
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
