//! AlterUserScramCredentials: forwarded to the active controller unchanged (validation and the
//! credential records are the controller's, `control::scram`). The answer waits (a few seconds
//! at most) until this broker's image has every change that succeeded, so a client that next
//! connects to this broker with the new credential authenticates.
//!
//! Authorization (Kafka: CLUSTER ALTER) comes first: a refused request is answered with
//! [`refuse_all`] and CLUSTER_AUTHORIZATION_FAILED, and nothing is forwarded.

use super::kafka_apis::KafkaApis;
use crate::network::RequestContext;
use rafka_controller::quorum_controller::scram_results;
use rafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, RequestKind, ResponseKind,
};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::AclOperation;
use rafka_security::sasl::scram::ScramMechanism;
use std::time::Duration;

/// How long the answer waits for this broker's image to catch up with the change.
const WAIT_FOR_IMAGE: Duration = Duration::from_secs(5);

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    version: i16,
    req: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    if !apis.authorize_cluster(ctx, AclOperation::Alter) {
        return refuse_all(
            &req,
            ErrorCode::ClusterAuthorizationFailed,
            "not authorized to alter SCRAM credentials (CLUSTER ALTER)",
        );
    }
    let fallback = refuse_all(
        &req,
        ErrorCode::RequestTimedOut,
        "no answer from the active controller",
    );
    // What each user should look like afterwards: (user, mechanism, present?, iterations).
    let wanted: Vec<(String, Option<ScramMechanism>, bool, i32)> = req
        .deletions
        .iter()
        .map(|d| {
            (
                d.name.clone(),
                ScramMechanism::from_id(d.mechanism),
                false,
                0,
            )
        })
        .chain(req.upsertions.iter().map(|u| {
            (
                u.name.clone(),
                ScramMechanism::from_id(u.mechanism),
                true,
                u.iterations,
            )
        }))
        .collect();
    let resp = match apis
        .controller
        .send(version, RequestKind::AlterUserScramCredentials(req))
        .await
    {
        Some(ResponseKind::AlterUserScramCredentials(r)) => r,
        _ => return fallback,
    };
    let done: Vec<&(String, Option<ScramMechanism>, bool, i32)> = wanted
        .iter()
        .filter(|(user, _, _, _)| {
            resp.results
                .iter()
                .any(|r| r.user == *user && r.error_code == 0)
        })
        .collect();
    if !done.is_empty() {
        apis.wait_for_image(WAIT_FOR_IMAGE, |img| {
            done.iter().all(|(user, m, present, iterations)| match m {
                Some(m) => match img.scram_credential(user, *m) {
                    Some(c) => *present && c.iterations == *iterations,
                    None => !*present,
                },
                None => true,
            })
        })
        .await;
    }
    resp
}

/// The answer that refuses every user of the request with `code`.
pub fn refuse_all(
    req: &AlterUserScramCredentialsRequest,
    code: ErrorCode,
    message: &str,
) -> AlterUserScramCredentialsResponse {
    scram_results(req, code.code(), Some(message.to_owned()))
}
