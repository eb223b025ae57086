//! AlterUserScramCredentials (Kafka's `ScramControlManager`): validates each user's deletions
//! and upsertions against the image and generates `UserScramCredentialRecord` /
//! `RemoveUserScramCredentialRecord`. The admin client sends the salted password (never the
//! password); the controller derives StoredKey and ServerKey from it and stores only those, as
//! Kafka does. A user whose alterations do not all validate is refused as a whole and changes
//! nothing; other users in the request are independent.

use std::collections::{BTreeMap, BTreeSet};

use rafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use rafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, MetadataRecord,
    RemoveUserScramCredentialRecord, UserScramCredentialRecord,
};
use rafka_protocol::ErrorCode;
use rafka_security::sasl::scram::{
    ScramCredential, ScramMechanism, MAX_ITERATIONS, MIN_ITERATIONS,
};

use super::controller_result::ControllerResult;
use crate::image::MetadataImage;

/// AlterUserScramCredentials.
pub fn alter_user_scram_credentials(
    image: &MetadataImage,
    request: &AlterUserScramCredentialsRequest,
) -> ControllerResult<AlterUserScramCredentialsResponse> {
    // Users in request order; per user, the first error or the records.
    let mut order: Vec<String> = Vec::new();
    let mut outcome: BTreeMap<String, Result<Vec<MetadataRecord>, (ErrorCode, String)>> =
        BTreeMap::new();
    let mut seen: BTreeSet<(String, i8)> = BTreeSet::new();
    let mut note =
        |name: &str, mechanism: i8, result: Result<MetadataRecord, (ErrorCode, String)>| {
            if !outcome.contains_key(name) {
                order.push(name.to_owned());
                outcome.insert(name.to_owned(), Ok(Vec::new()));
            }
            let duplicate = !seen.insert((name.to_owned(), mechanism));
            let entry = outcome.get_mut(name).expect("invariant: inserted above");
            let result = if duplicate {
                Err((
                    ErrorCode::DuplicateResource,
                    "A user credential cannot be altered twice in the same request".to_owned(),
                ))
            } else {
                result
            };
            match (entry.as_mut(), result) {
                (Ok(records), Ok(r)) => records.push(r),
                (Ok(_), Err(e)) => *entry = Err(e),
                (Err(_), _) => {}
            }
        };
    for d in &request.deletions {
        let result = check_name(&d.name)
            .and_then(|()| mechanism(d.mechanism))
            .and_then(|m| {
                if image.scram_credential(&d.name, m).is_none() {
                    return Err((
                        ErrorCode::ResourceNotFound,
                        "Attempt to delete a user credential that does not exist".to_owned(),
                    ));
                }
                Ok(MetadataRecord::RemoveUserScramCredential(
                    RemoveUserScramCredentialRecord {
                        name: d.name.clone(),
                        mechanism: m.id(),
                        ..Default::default()
                    },
                ))
            });
        note(&d.name, d.mechanism, result);
    }
    for u in &request.upsertions {
        let result = check_name(&u.name)
            .and_then(|()| mechanism(u.mechanism))
            .and_then(|m| {
                if u.iterations < MIN_ITERATIONS {
                    return Err((
                        ErrorCode::UnacceptableCredential,
                        format!("Too few iterations: at least {MIN_ITERATIONS} are required"),
                    ));
                }
                if u.iterations > MAX_ITERATIONS {
                    return Err((
                        ErrorCode::UnacceptableCredential,
                        format!("Too many iterations: at most {MAX_ITERATIONS} are allowed"),
                    ));
                }
                if u.salt.is_empty() || u.salted_password.is_empty() {
                    return Err((
                        ErrorCode::UnacceptableCredential,
                        "The salt and the salted password must not be empty".to_owned(),
                    ));
                }
                let c = ScramCredential::from_salted_password(
                    m,
                    u.salt.to_vec(),
                    &u.salted_password,
                    u.iterations,
                );
                Ok(MetadataRecord::UserScramCredential(
                    UserScramCredentialRecord {
                        name: u.name.clone(),
                        mechanism: m.id(),
                        salt: c.salt.into(),
                        stored_key: c.stored_key.into(),
                        server_key: c.server_key.into(),
                        iterations: c.iterations,
                        ..Default::default()
                    },
                ))
            });
        note(&u.name, u.mechanism, result);
    }
    let mut records = Vec::new();
    let mut results = Vec::with_capacity(order.len());
    for name in order {
        let (error_code, error_message) = match outcome.remove(&name) {
            Some(Ok(rs)) => {
                records.extend(rs);
                (ErrorCode::None.code(), None)
            }
            Some(Err((code, message))) => (code.code(), Some(message)),
            None => continue,
        };
        results.push(AlterUserScramCredentialsResult {
            user: name,
            error_code,
            error_message,
            ..Default::default()
        });
    }
    ControllerResult::new(
        records,
        AlterUserScramCredentialsResponse {
            results,
            ..Default::default()
        },
    )
}

fn check_name(name: &str) -> Result<(), (ErrorCode, String)> {
    if name.is_empty() {
        Err((
            ErrorCode::UnacceptableCredential,
            "Username must not be empty".to_owned(),
        ))
    } else {
        Ok(())
    }
}

fn mechanism(id: i8) -> Result<ScramMechanism, (ErrorCode, String)> {
    ScramMechanism::from_id(id).ok_or((
        ErrorCode::UnsupportedSaslMechanism,
        "Unknown SCRAM mechanism".to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rafka_protocol::messages::alter_user_scram_credentials_request::{
        ScramCredentialDeletion, ScramCredentialUpsertion,
    };

    fn upsert(name: &str, mechanism: i8, iterations: i32) -> ScramCredentialUpsertion {
        ScramCredentialUpsertion {
            name: name.into(),
            mechanism,
            iterations,
            salt: vec![1, 2, 3].into(),
            salted_password: vec![9; 32].into(),
            ..Default::default()
        }
    }

    fn delete(name: &str, mechanism: i8) -> ScramCredentialDeletion {
        ScramCredentialDeletion {
            name: name.into(),
            mechanism,
            ..Default::default()
        }
    }

    fn codes(r: &AlterUserScramCredentialsResponse) -> Vec<(&str, i16)> {
        r.results
            .iter()
            .map(|x| (x.user.as_str(), x.error_code))
            .collect()
    }

    #[test]
    fn validates_per_user_and_generates_records() {
        let mut image = MetadataImage::new();
        let res = alter_user_scram_credentials(
            &image,
            &AlterUserScramCredentialsRequest {
                upsertions: vec![
                    upsert("alice", 1, 4096),
                    upsert("alice", 2, 8192),
                    upsert("bob", 1, 100),
                    upsert("", 1, 4096),
                    upsert("carol", 3, 4096),
                    upsert("dave", 1, 4096),
                    upsert("dave", 1, 4096),
                ],
                deletions: vec![delete("erin", 1)],
                ..Default::default()
            },
        );
        let unacceptable = ErrorCode::UnacceptableCredential.code();
        assert_eq!(
            codes(&res.response),
            vec![
                ("erin", ErrorCode::ResourceNotFound.code()),
                ("alice", 0),
                ("bob", unacceptable),
                ("", unacceptable),
                ("carol", ErrorCode::UnsupportedSaslMechanism.code()),
                ("dave", ErrorCode::DuplicateResource.code()),
            ]
        );
        assert_eq!(res.records.len(), 2);
        image.apply_batch(&res.records).expect("applies");
        let c = image
            .scram_credential("alice", ScramMechanism::Sha256)
            .expect("stored");
        // Derived from the salted password, which itself is not stored.
        assert_eq!(
            *c,
            ScramCredential::from_salted_password(
                ScramMechanism::Sha256,
                vec![1, 2, 3],
                &[9; 32],
                4096
            )
        );
        let res = alter_user_scram_credentials(
            &image,
            &AlterUserScramCredentialsRequest {
                deletions: vec![delete("alice", 1)],
                upsertions: vec![upsert("alice", 1, 4096)],
                ..Default::default()
            },
        );
        assert_eq!(
            codes(&res.response),
            vec![("alice", ErrorCode::DuplicateResource.code())]
        );
        assert!(res.records.is_empty());
        let res = alter_user_scram_credentials(
            &image,
            &AlterUserScramCredentialsRequest {
                deletions: vec![delete("alice", 1)],
                ..Default::default()
            },
        );
        assert_eq!(codes(&res.response), vec![("alice", 0)]);
        image.apply_batch(&res.records).expect("applies");
        assert!(image
            .scram_credential("alice", ScramMechanism::Sha256)
            .is_none());
    }
}
