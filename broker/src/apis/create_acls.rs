//! CreateAcls: checked here (an authorizer must be configured — else SECURITY_DISABLED — and
//! the principal needs CLUSTER ALTER — else CLUSTER_AUTHORIZATION_FAILED for every creation),
//! then forwarded to the active controller, which validates each binding and commits an
//! `AccessControlEntryRecord` for each new one. The answer waits (bounded) until this broker's
//! image holds the created ACLs, so the client's next request here is decided by them; every
//! other broker applies them within one metadata round.

use super::kafka_apis::KafkaApis;
use crate::network::RequestContext;
use rafka_controller::control::acls::creation_binding;
use rafka_protocol::messages::create_acls_response::AclCreationResult;
use rafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse, RequestKind, ResponseKind};
use rafka_protocol::ErrorCode;
use std::time::Duration;

/// How long the answer waits for this broker's image to show the new ACLs.
const APPLY_WAIT: Duration = Duration::from_secs(5);

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    version: i16,
    req: CreateAclsRequest,
) -> CreateAclsResponse {
    let all = |code: ErrorCode, message: &str| CreateAclsResponse {
        results: req
            .creations
            .iter()
            .map(|_| AclCreationResult {
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
    if req.creations.is_empty() {
        return CreateAclsResponse::default();
    }
    let resp = match apis
        .controller
        .send(version, RequestKind::CreateAcls(req.clone()))
        .await
    {
        Some(ResponseKind::CreateAcls(r)) if r.results.len() == req.creations.len() => r,
        _ => {
            return all(
                ErrorCode::RequestTimedOut,
                "no answer from the active controller",
            )
        }
    };
    let created: Vec<_> = req
        .creations
        .iter()
        .zip(&resp.results)
        .filter(|(_, r)| r.error_code == 0)
        .map(|(c, _)| creation_binding(c))
        .collect();
    if !created.is_empty() {
        apis.wait_for_image(APPLY_WAIT, |img| {
            created.iter().all(|b| img.acls().find(b).is_some())
        })
        .await;
    }
    resp
}
