//! The console's JSON API vocabulary: errors ([`ApiError`]), answers ([`ok`]), query parameters
//! ([`Params`], [`page`]) and running a walk on a blocking thread ([`blocking`]).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;

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
