//! Creating SCRAM users from a test: AlterUserScramCredentials upsertions (salted with a
//! per-user salt, as a tool would) sent as raw frames to a listener that accepts them.

use rafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use rafka_protocol::messages::{AlterUserScramCredentialsRequest, RequestKind, ResponseKind};
use rafka_security::sasl::scram::ScramMechanism;
use std::net::SocketAddr;
use std::time::Duration;

/// An upsertion of `user`'s `m` credential for `password`.
pub fn upsert(
    user: &str,
    m: ScramMechanism,
    password: &str,
    iterations: i32,
) -> ScramCredentialUpsertion {
    let salt = format!("salt-of-{user}").into_bytes();
    ScramCredentialUpsertion {
        name: user.into(),
        mechanism: m.id(),
        iterations,
        salted_password: m
            .salted_password(password.as_bytes(), &salt, iterations as u32)
            .into(),
        salt: salt.into(),
        ..Default::default()
    }
}

/// Sends the upsertions and deletions to `addr`; each user's error code.
pub fn alter_scram(
    addr: SocketAddr,
    upsertions: Vec<ScramCredentialUpsertion>,
    deletions: Vec<ScramCredentialDeletion>,
) -> Vec<(String, i16)> {
    match super::raw_request(
        addr,
        0,
        RequestKind::AlterUserScramCredentials(AlterUserScramCredentialsRequest {
            upsertions,
            deletions,
            ..Default::default()
        }),
        Duration::from_secs(20),
    )
    .expect("AlterUserScramCredentials")
    {
        ResponseKind::AlterUserScramCredentials(r) => r
            .results
            .into_iter()
            .map(|r| (r.user, r.error_code))
            .collect(),
        other => panic!("{other:?}"),
    }
}
