//! DescribeAcls: the ACLs a filter selects, from this broker's image, grouped by resource
//! pattern (Kafka's `AclApis.handleDescribeAcls`). Needs CLUSTER DESCRIBE (else
//! CLUSTER_AUTHORIZATION_FAILED); with no authorizer configured the answer is
//! SECURITY_DISABLED, and a filter with a code Kafka does not define INVALID_REQUEST.

use super::kafka_apis::KafkaApis;
use crate::network::RequestContext;
use rafka_controller::control::acls::wire_filter;
use rafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use rafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::{AclOperation, ResourcePattern};
use std::collections::BTreeMap;

pub fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    req: DescribeAclsRequest,
) -> DescribeAclsResponse {
    let error = |code: ErrorCode, message: String| DescribeAclsResponse {
        error_code: code.code(),
        error_message: Some(message),
        ..Default::default()
    };
    if apis.authorizer.is_none() {
        return error(
            ErrorCode::SecurityDisabled,
            "No Authorizer is configured.".to_owned(),
        );
    }
    let image = apis.image();
    if !apis
        .authorizer_for(ctx, &image)
        .allows_cluster(AclOperation::Describe)
    {
        return error(
            ErrorCode::ClusterAuthorizationFailed,
            "Cluster authorization failed.".to_owned(),
        );
    }
    let filter = wire_filter(
        req.resource_type_filter,
        req.resource_name_filter.as_deref(),
        req.pattern_type_filter,
        req.principal_filter.as_deref(),
        req.host_filter.as_deref(),
        req.operation,
        req.permission_type,
    );
    if let Err(e) = filter.validate() {
        return error(ErrorCode::InvalidRequest, e.to_string());
    }
    let mut by_pattern: BTreeMap<&ResourcePattern, Vec<AclDescription>> = BTreeMap::new();
    for (_, b) in image.acls().matching(&filter) {
        by_pattern
            .entry(&b.pattern)
            .or_default()
            .push(AclDescription {
                principal: b.entry.principal.clone(),
                host: b.entry.host.clone(),
                operation: b.entry.operation.code(),
                permission_type: b.entry.permission_type.code(),
                ..Default::default()
            });
    }
    DescribeAclsResponse {
        resources: by_pattern
            .into_iter()
            .map(|(p, acls)| DescribeAclsResource {
                resource_type: p.resource_type.code(),
                resource_name: p.name.clone(),
                pattern_type: p.pattern_type.code(),
                acls,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
