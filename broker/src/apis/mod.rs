//! `KafkaApis`: one handler file per Kafka API; this file only dispatches.
//!
//! Every handler gets the request body and the context it needs (the image the broker acts on,
//! the replica manager, the controller channel) and returns the response body; the dispatcher
//! wraps it in a frame with the request's correlation id. Requests for an API or version we do
//! not serve never reach a handler: the network layer's `handle_frame_error` answers ApiVersions
//! (KIP-511) and closes the connection for the rest.

mod api_versions;
mod create_topics;
mod fetch;
mod list_offsets;
mod metadata;
mod produce;

pub use api_versions::{advertised_versions, api_versions_response};

use crate::controller_channel::ControllerChannel;
use crate::network::{RequestContext, RequestHandler, Response};
use crate::replica_manager::ReplicaManager;
use rafka_controller::image::MetadataImage;
use rafka_protocol::frame::FrameError;
use rafka_protocol::messages::{RequestKind, ResponseKind};
use rafka_protocol::{RequestFrame, ResponseFrame};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::watch;

/// What the handlers share.
pub struct KafkaApis {
    pub broker_id: i32,
    pub replica_manager: Arc<ReplicaManager>,
    pub metadata: watch::Receiver<Arc<MetadataImage>>,
    pub controller: Arc<ControllerChannel>,
    pub auto_create_topics: bool,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
}

impl KafkaApis {
    /// The image this broker acts on now.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.metadata.borrow().clone()
    }

    async fn dispatch(&self, ctx: &RequestContext, req: RequestFrame) -> Response {
        let version = req.header.request_api_version;
        let correlation_id = req.header.correlation_id;
        tracing::debug!(
            client_id = req.header.client_id.as_deref().unwrap_or(""),
            correlation_id,
            api_key = req.header.request_api_key,
            api_version = version,
            "request"
        );
        let body = match req.body {
            RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(api_versions_response(0)),
            RequestKind::Metadata(r) => {
                ResponseKind::Metadata(metadata::handle(self, ctx, version, r).await)
            }
            RequestKind::Produce(r) => match produce::handle(self, version, r) {
                produce::Outcome::Respond(b) => ResponseKind::Produce(b),
                produce::Outcome::Nothing => return Response::None,
                produce::Outcome::Close => return Response::Close,
            },
            RequestKind::Fetch(r) => {
                let (resp, slices) = fetch::handle(self, version, r).await;
                let frame = ResponseFrame {
                    correlation_id,
                    api_version: version,
                    body: ResponseKind::Fetch(resp),
                };
                return match frame.encode_chunks() {
                    Ok(chunks) => Response::Chunks { chunks, slices },
                    Err(e) => {
                        tracing::error!(error = %e, "cannot encode a fetch response");
                        Response::Close
                    }
                };
            }
            RequestKind::ListOffsets(r) => {
                ResponseKind::ListOffsets(list_offsets::handle(self, version, r))
            }
            RequestKind::CreateTopics(r) => {
                ResponseKind::CreateTopics(create_topics::handle(self, version, r).await)
            }
            other => {
                // Controller APIs and admin requests the controller serves.
                match self.controller.send(version, other).await {
                    Some(b) => b,
                    None => return Response::Close,
                }
            }
        };
        encode(correlation_id, version, body)
    }
}

fn encode(correlation_id: i32, api_version: i16, body: ResponseKind) -> Response {
    match (ResponseFrame {
        correlation_id,
        api_version,
        body,
    })
    .encode()
    {
        Ok(b) => Response::Frame(b.freeze()),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a response");
            Response::Close
        }
    }
}

impl RequestHandler for KafkaApis {
    fn handle(
        &self,
        ctx: &RequestContext,
        request: RequestFrame,
    ) -> Pin<Box<dyn Future<Output = Response> + Send + '_>> {
        let ctx = ctx.clone();
        Box::pin(async move { self.dispatch(&ctx, request).await })
    }

    fn handle_frame_error(
        &self,
        _ctx: &RequestContext,
        error: FrameError,
    ) -> Pin<Box<dyn Future<Output = Response> + Send + '_>> {
        Box::pin(async move {
            match error {
                // KIP-511: an ApiVersions version we do not know gets UNSUPPORTED_VERSION in a v0
                // body that still lists our ranges, so the client can retry lower.
                FrameError::UnsupportedVersion { header }
                    if header.request_api_key == rafka_protocol::ApiKey::ApiVersions.key() =>
                {
                    encode(
                        header.correlation_id,
                        0,
                        ResponseKind::ApiVersions(api_versions_response(
                            rafka_protocol::ErrorCode::UnsupportedVersion.code(),
                        )),
                    )
                }
                _ => Response::Close,
            }
        })
    }
}
