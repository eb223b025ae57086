//! DescribeCluster: the live brokers (the endpoint of the listener the client connected to),
//! the cluster id and the controller id — the same rule as Metadata (`metadata::controller_id`),
//! -1 when that broker is not in the list — as Kafka's `AuthHelper.computeDescribeClusterResponse`.
//!
//! Only broker endpoints are served here (`endpoint_type` 1): asking a broker for controllers
//! (2) gets MISMATCHED_ENDPOINT_TYPE, an unknown type UNSUPPORTED_ENDPOINT_TYPE (INVALID_REQUEST
//! in v0, which has no such codes). With no authorizer every cluster operation is allowed, so
//! `include_cluster_authorized_operations` reports all of them, as Kafka does without one.

use super::kafka_apis::KafkaApis;
use crate::network::RequestContext;
use rafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use rafka_protocol::messages::{DescribeClusterRequest, DescribeClusterResponse};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::{AclOperation, ResourceType, CLUSTER_NAME};

/// `endpoint_type`: brokers.
const BROKER_ENDPOINTS: i8 = 1;
/// `endpoint_type`: controllers.
const CONTROLLER_ENDPOINTS: i8 = 2;

/// The schema's "not requested" value of `cluster_authorized_operations`.
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

pub fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    version: i16,
    req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let endpoint_type = if version >= 1 {
        req.endpoint_type
    } else {
        BROKER_ENDPOINTS
    };
    if endpoint_type != BROKER_ENDPOINTS {
        let (code, message) = if endpoint_type == CONTROLLER_ENDPOINTS {
            (
                ErrorCode::MismatchedEndpointType,
                "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER".to_owned(),
            )
        } else {
            (
                ErrorCode::UnsupportedEndpointType,
                format!("Unsupported endpoint type {endpoint_type}"),
            )
        };
        return DescribeClusterResponse {
            error_code: if version == 0 {
                ErrorCode::InvalidRequest.code()
            } else {
                code.code()
            },
            error_message: Some(message),
            ..Default::default()
        };
    }
    let image = apis.image();
    let authz = apis.authorizer_for(ctx, &image);
    // CLUSTER DESCRIBE, else CLUSTER_AUTHORIZATION_FAILED (Kafka).
    if !authz.allows_cluster(AclOperation::Describe) {
        return DescribeClusterResponse {
            error_code: ErrorCode::ClusterAuthorizationFailed.code(),
            error_message: Some("Cluster authorization failed.".to_owned()),
            endpoint_type: BROKER_ENDPOINTS,
            ..Default::default()
        };
    }
    let brokers: Vec<DescribeClusterBroker> = image
        .brokers()
        .values()
        .filter(|b| !b.fenced)
        .filter_map(|b| {
            let ep = b.endpoints.iter().find(|e| e.name == ctx.listener)?;
            Some(DescribeClusterBroker {
                broker_id: b.id,
                host: ep.host.clone(),
                port: i32::from(ep.port),
                rack: b.rack.clone(),
                ..Default::default()
            })
        })
        .collect();
    let controller = super::metadata::controller_id(apis, &image);
    DescribeClusterResponse {
        endpoint_type: BROKER_ENDPOINTS,
        cluster_id: image.cluster_id().unwrap_or_default().to_owned(),
        controller_id: if brokers.iter().any(|b| b.broker_id == controller) {
            controller
        } else {
            -1
        },
        cluster_authorized_operations: if req.include_cluster_authorized_operations {
            authz.authorized_operations(ResourceType::Cluster, CLUSTER_NAME)
        } else {
            OPERATIONS_NOT_REQUESTED
        },
        brokers,
        ..Default::default()
    }
}
