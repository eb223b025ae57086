//! `/metrics`: the node's metrics ([`crate::metrics`]) in the Prometheus text format 0.0.4, or
//! OpenMetrics 1.0 when the scraper's `Accept` asks for `application/openmetrics-text` (as
//! Prometheus does). Encoded on a blocking thread: it walks the hosted partitions and groups.

use super::collect;
use super::state::HttpState;
use axum::extract::State;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub(super) fn routes() -> Router<Arc<HttpState>> {
    Router::new().route("/metrics", get(metrics))
}

/// Whether the `Accept` headers ask for OpenMetrics.
fn wants_openmetrics(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"))
}

async fn metrics(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    let Some(metrics) = state.metrics.clone() else {
        return (
            StatusCode::NOT_FOUND,
            "metrics are off (metrics.enable=false)\n",
        )
            .into_response();
    };
    let openmetrics = wants_openmetrics(&headers);
    let runtime = tokio::runtime::Handle::current();
    let rendered =
        tokio::task::spawn_blocking(move || collect::render(state, metrics, runtime, openmetrics))
            .await;
    match rendered {
        Ok(Ok(body)) => {
            let content_type = if openmetrics {
                OPENMETRICS
            } else {
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE
            };
            ([(CONTENT_TYPE, content_type)], body).into_response()
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot encode the metrics");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot encode the metrics\n",
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "metrics task failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "metrics task failed\n").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_only_when_asked() {
        let mut h = HeaderMap::new();
        assert!(!wants_openmetrics(&h));
        h.insert(ACCEPT, "text/plain;version=0.0.4".parse().expect("header"));
        assert!(!wants_openmetrics(&h));
        h.append(
            ACCEPT,
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
                .parse()
                .expect("header"),
        );
        assert!(wants_openmetrics(&h));
    }
}
