//! [`InterNodeError`]: why a request to another node of the cluster got no usable answer.

use rafka_protocol::ApiKey;
use std::time::Duration;

/// Why a request to another node failed. Every variant names the node; after any of them but
/// [`InterNodeError::Encode`], [`InterNodeError::Backoff`] and [`InterNodeError::UnknownNode`]
/// the connection has been closed (a failed or cancelled exchange leaves the stream mid-frame),
/// and the next request opens a new one.
#[derive(Debug, thiserror::Error)]
pub enum InterNodeError {
    /// The node has no endpoint on the listener this client speaks to (not registered, or
    /// gone from the metadata).
    #[error("node {node_id} has no endpoint on listener {listener}")]
    UnknownNode { node_id: i32, listener: String },
    /// Opening the connection (TCP, then TLS and SASL as the listener asks) failed or took
    /// longer than the connection setup timeout.
    #[error("cannot connect to node {node_id} at {addr}: {source}")]
    Connect {
        node_id: i32,
        addr: String,
        source: std::io::Error,
    },
    /// The last attempt to connect failed recently: no new attempt before the reconnect backoff
    /// has passed (Kafka's `reconnect.backoff.ms`, doubling up to `reconnect.backoff.max.ms`).
    #[error("node {node_id} at {addr}: reconnecting in {} ms", remaining.as_millis())]
    Backoff {
        node_id: i32,
        addr: String,
        remaining: Duration,
    },
    /// No complete answer within the request's bound (waiting for the connection included).
    #[error("node {node_id} at {addr}: no answer to {api} within {} ms", after.as_millis())]
    Timeout {
        node_id: i32,
        addr: String,
        api: ApiKey,
        after: Duration,
    },
    /// The peer closed or reset the connection before its answer was complete.
    #[error("node {node_id} at {addr} closed the connection")]
    Disconnected { node_id: i32, addr: String },
    /// Reading or writing the socket failed otherwise.
    #[error("node {node_id} at {addr}: {source}")]
    Io {
        node_id: i32,
        addr: String,
        source: std::io::Error,
    },
    /// The answer's size prefix is negative or above the frame limit: refused before any of it
    /// was buffered.
    #[error("node {node_id} at {addr}: response frame of {size} bytes outside 0..={max}")]
    FrameTooLarge {
        node_id: i32,
        addr: String,
        size: i32,
        max: usize,
    },
    /// The answer carries another request's correlation id.
    #[error("node {node_id} at {addr}: correlation id {got} answers request {sent}")]
    CorrelationMismatch {
        node_id: i32,
        addr: String,
        sent: i32,
        got: i32,
    },
    /// The answer does not decode as a response to the request sent.
    #[error("node {node_id} at {addr}: cannot decode the {api} response: {source}")]
    Decode {
        node_id: i32,
        addr: String,
        api: ApiKey,
        source: rafka_protocol::DecodeError,
    },
    /// The request cannot be encoded at the version asked (a bug on this side).
    #[error("cannot encode {api} for node {node_id}: {source}")]
    Encode {
        node_id: i32,
        api: ApiKey,
        source: rafka_protocol::EncodeError,
    },
    /// The answer decoded, but as another API's response than the caller expected.
    #[error("node {node_id}: a {got} response to a {sent} request")]
    UnexpectedResponse {
        node_id: i32,
        sent: ApiKey,
        got: ApiKey,
    },
}

impl InterNodeError {
    /// Whether the connection failed under the request — closed, reset, or a socket error —
    /// rather than the peer being slow or answering badly: the peer's process has most likely
    /// died (the replica fetcher reports this to [`crate::lost_leaders`]).
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            InterNodeError::Disconnected { .. } | InterNodeError::Io { .. }
        )
    }

    /// Whether the same request may succeed later (on a new connection, or at another node).
    pub fn is_retriable(&self) -> bool {
        !matches!(self, InterNodeError::Encode { .. })
    }

    /// The node the request was for.
    pub fn node_id(&self) -> i32 {
        match self {
            InterNodeError::UnknownNode { node_id, .. }
            | InterNodeError::Connect { node_id, .. }
            | InterNodeError::Backoff { node_id, .. }
            | InterNodeError::Timeout { node_id, .. }
            | InterNodeError::Disconnected { node_id, .. }
            | InterNodeError::Io { node_id, .. }
            | InterNodeError::FrameTooLarge { node_id, .. }
            | InterNodeError::CorrelationMismatch { node_id, .. }
            | InterNodeError::Decode { node_id, .. }
            | InterNodeError::Encode { node_id, .. }
            | InterNodeError::UnexpectedResponse { node_id, .. } => *node_id,
        }
    }
}
