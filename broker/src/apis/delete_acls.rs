//! DeleteAcls: checked here (an authorizer must be configured — else SECURITY_DISABLED — and
//! the principal needs CLUSTER ALTER — else CLUSTER_AUTHORIZATION_FAILED for every filter),
//! then forwarded to the active controller, which removes every ACL each filter selects
//! (`RemoveAccessControlEntryRecord`s) and lists them. The answer waits (bounded) until this
//! broker's image no longer holds them.

use super::kafka_apis::KafkaApis;
use crate::network::RequestContext;
use rafka_protocol::messages::delete_acls_response::DeleteAclsFilterResult;
use rafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse, RequestKind, ResponseKind};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::{
    AccessControlEntry, AclBinding, AclOperation, AclPermissionType, PatternType, ResourcePattern,
    ResourceType,
};
use std::time::Duration;

/// How long the answer waits for this broker's image to drop the deleted ACLs.
const APPLY_WAIT: Duration = Duration::from_secs(5);

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    version: i16,
    req: DeleteAclsRequest,
) -> DeleteAclsResponse {
    let all = |code: ErrorCode, message: &str| DeleteAclsResponse {
        filter_results: req
            .filters
            .iter()
            .map(|_| DeleteAclsFilterResult {
                error_code: code.code(),
                error_message: Some(message.to_owned()),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    if let Err((code, message)) = apis.may_alter_acls(ctx) {
        return all(code, message);
    }
    if req.filters.is_empty() {
        return DeleteAclsResponse::default();
    }
    let resp = match apis
        .controller
        .send(version, RequestKind::DeleteAcls(req.clone()))
        .await
    {
        Some(ResponseKind::DeleteAcls(r)) if r.filter_results.len() == req.filters.len() => r,
        _ => {
            return all(
                ErrorCode::RequestTimedOut,
                "no answer from the active controller",
            )
        }
    };
    let deleted: Vec<AclBinding> = resp
        .filter_results
        .iter()
        .flat_map(|f| &f.matching_acls)
        .map(|m| {
            AclBinding::new(
                ResourcePattern::new(
                    ResourceType::from_code(m.resource_type),
                    m.resource_name.clone(),
                    PatternType::from_code(m.pattern_type),
                ),
                AccessControlEntry {
                    principal: m.principal.clone(),
                    host: m.host.clone(),
                    operation: AclOperation::from_code(m.operation),
                    permission_type: AclPermissionType::from_code(m.permission_type),
                },
            )
        })
        .collect();
    if !deleted.is_empty() {
        apis.wait_for_image(APPLY_WAIT, |img| {
            deleted.iter().all(|b| img.acls().find(b).is_none())
        })
        .await;
    }
    resp
}
