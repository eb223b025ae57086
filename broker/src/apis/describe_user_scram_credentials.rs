//! DescribeUserScramCredentials: answered from this broker's metadata image (Kafka's
//! `ScramImage.describe`): the mechanisms and iteration counts of each user's credentials —
//! never the salt or keys. No user list (null) describes every user with a credential; a named
//! user without one is RESOURCE_NOT_FOUND, a name given twice DUPLICATE_RESOURCE.
//!
//! Authorization (Kafka: CLUSTER DESCRIBE) comes first: a refused request is answered with the
//! response's top-level `error_code` CLUSTER_AUTHORIZATION_FAILED and no results, as Kafka does.

use super::kafka_apis::KafkaApis;
use crate::network::RequestContext;
use rafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use rafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::AclOperation;
use std::collections::BTreeMap;

pub fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    req: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    if !apis.authorize_cluster(ctx, AclOperation::Describe) {
        return DescribeUserScramCredentialsResponse {
            error_code: ErrorCode::ClusterAuthorizationFailed.code(),
            error_message: Some(
                "not authorized to describe SCRAM credentials (CLUSTER DESCRIBE)".to_owned(),
            ),
            ..Default::default()
        };
    }
    let image = apis.image();
    let mut by_user: BTreeMap<&str, Vec<CredentialInfo>> = BTreeMap::new();
    for ((user, mechanism), c) in image.scram_credentials() {
        by_user
            .entry(user.as_str())
            .or_default()
            .push(CredentialInfo {
                mechanism: mechanism.id(),
                iterations: c.iterations,
                ..Default::default()
            });
    }
    let results = match req.users {
        None => by_user
            .into_iter()
            .map(|(user, infos)| DescribeUserScramCredentialsResult {
                user: user.to_owned(),
                credential_infos: infos,
                ..Default::default()
            })
            .collect(),
        Some(users) => {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for u in &users {
                *counts.entry(u.name.as_str()).or_default() += 1;
            }
            let mut out = Vec::new();
            for u in &users {
                let name = u.name.as_str();
                if out
                    .iter()
                    .any(|r: &DescribeUserScramCredentialsResult| r.user == name)
                {
                    continue;
                }
                let result = if counts.get(name).copied().unwrap_or(0) > 1 {
                    error(
                        name,
                        ErrorCode::DuplicateResource,
                        "Cannot describe SCRAM credentials for the same user twice in a single \
                         request",
                    )
                } else {
                    match by_user.get(name) {
                        Some(infos) => DescribeUserScramCredentialsResult {
                            user: name.to_owned(),
                            credential_infos: infos.clone(),
                            ..Default::default()
                        },
                        None => error(
                            name,
                            ErrorCode::ResourceNotFound,
                            "Attempt to describe a user credential that does not exist",
                        ),
                    }
                };
                out.push(result);
            }
            out
        }
    };
    DescribeUserScramCredentialsResponse {
        results,
        ..Default::default()
    }
}

fn error(user: &str, code: ErrorCode, message: &str) -> DescribeUserScramCredentialsResult {
    DescribeUserScramCredentialsResult {
        user: user.to_owned(),
        error_code: code.code(),
        error_message: Some(message.to_owned()),
        ..Default::default()
    }
}
