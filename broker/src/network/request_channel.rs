//! What passes between the socket server and the request side (Kafka's `RequestChannel`): who
//! sent a request ([`RequestContext`]), the handler that answers it ([`RequestHandler`]), and
//! what it answers ([`Response`]).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use bytes::Bytes;
use rafka_protocol::frame::FrameError;
use rafka_protocol::{Chunk, RequestFrame};
use rafka_security::{KafkaPrincipal, SecurityProtocol};
use rafka_storage::FileSlice;

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
