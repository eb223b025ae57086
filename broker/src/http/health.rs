//! `/health/live` and `/health/ready`.

use super::state::HttpState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<HttpState>> {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
}

async fn live() -> &'static str {
    "live\n"
}

async fn ready(State(state): State<Arc<HttpState>>) -> (StatusCode, String) {
    match not_ready(&state) {
        None => (StatusCode::OK, "ready\n".into()),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

/// Why this node cannot serve yet, if it cannot.
pub(crate) fn not_ready(state: &HttpState) -> Option<&'static str> {
    if state.is_controller && state.controller.quorum_info().leader.is_none() {
        return Some("the controller quorum has no leader");
    }
    if let Some(broker) = &state.broker {
        if broker.lifecycle.broker_epoch() < 0 {
            return Some("the broker is not registered with the controller");
        }
        if !broker.lifecycle.is_serving() {
            return Some(
                "the broker is catching up with the metadata log (its client listeners accept no connection yet)",
            );
        }
        if broker.lifecycle.is_fenced() {
            return Some("the broker is fenced");
        }
        if broker.lifecycle.is_shutting_down() {
            return Some("the broker is shutting down");
        }
    }
    None
}
