//! `AclControlManager`: CreateAcls and DeleteAcls as records (`AccessControlEntryRecord`,
//! `RemoveAccessControlEntryRecord`), validated as Kafka's `AclControlManager` does.
//!
//! - A creation that fails [`AclBinding::validate`] is answered INVALID_REQUEST with the reason;
//!   one equal to an ACL that exists (or to an earlier creation of the same request) succeeds
//!   without a record; every other one gets a new random id.
//! - A delete filter with a code Kafka does not define is answered INVALID_REQUEST; otherwise
//!   every ACL it selects is removed (once, even when several filters select it) and listed in
//!   its result.
//!
//! Also the conversions between the wire's ACL fields and [`AclBinding`] /
//! [`AclBindingFilter`], which the broker's DescribeAcls uses too.

use super::controller_result::ControllerResult;
use super::random_uuid::random_uuid;
use crate::image::{acl_record, MetadataImage};
use rafka_protocol::messages::{
    create_acls_request, create_acls_response, delete_acls_request, delete_acls_response,
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse, MetadataRecord,
    RemoveAccessControlEntryRecord,
};
use rafka_protocol::{ErrorCode, Uuid};
use rafka_security::authorizer::{
    AccessControlEntry, AccessControlEntryFilter, AclBinding, AclBindingFilter, AclOperation,
    AclPermissionType, PatternType, ResourcePattern, ResourcePatternFilter, ResourceType,
};
use std::collections::BTreeSet;

/// The binding a CreateAcls creation asks for.
pub fn creation_binding(c: &create_acls_request::AclCreation) -> AclBinding {
    AclBinding::new(
        ResourcePattern::new(
            ResourceType::from_code(c.resource_type),
            c.resource_name.clone(),
            PatternType::from_code(c.resource_pattern_type),
        ),
        AccessControlEntry {
            principal: c.principal.clone(),
            host: c.host.clone(),
            operation: AclOperation::from_code(c.operation),
            permission_type: AclPermissionType::from_code(c.permission_type),
        },
    )
}

/// A filter from the wire's seven filter fields (DescribeAcls, DeleteAcls).
#[allow(clippy::too_many_arguments)]
pub fn wire_filter(
    resource_type: i8,
    name: Option<&str>,
    pattern_type: i8,
    principal: Option<&str>,
    host: Option<&str>,
    operation: i8,
    permission_type: i8,
) -> AclBindingFilter {
    AclBindingFilter {
        pattern: ResourcePatternFilter {
            resource_type: ResourceType::from_code(resource_type),
            name: name.map(str::to_owned),
            pattern_type: PatternType::from_code(pattern_type),
        },
        entry: AccessControlEntryFilter {
            principal: principal.map(str::to_owned),
            host: host.map(str::to_owned),
            operation: AclOperation::from_code(operation),
            permission_type: AclPermissionType::from_code(permission_type),
        },
    }
}

fn delete_filter(f: &delete_acls_request::DeleteAclsFilter) -> AclBindingFilter {
    wire_filter(
        f.resource_type_filter,
        f.resource_name_filter.as_deref(),
        f.pattern_type_filter,
        f.principal_filter.as_deref(),
        f.host_filter.as_deref(),
        f.operation,
        f.permission_type,
    )
}

/// CreateAcls. `new_id` supplies random bits for ACL ids.
pub fn create_acls(
    image: &MetadataImage,
    request: &CreateAclsRequest,
    new_id: &mut dyn FnMut() -> u128,
) -> ControllerResult<CreateAclsResponse> {
    let mut records = Vec::new();
    let mut results = Vec::with_capacity(request.creations.len());
    let mut created: BTreeSet<AclBinding> = BTreeSet::new();
    let mut used: BTreeSet<u128> = BTreeSet::new();
    for c in &request.creations {
        let binding = creation_binding(c);
        if let Err(e) = binding.validate() {
            results.push(create_acls_response::AclCreationResult {
                error_code: ErrorCode::InvalidRequest.code(),
                error_message: Some(e.to_string()),
                ..Default::default()
            });
            continue;
        }
        if image.acls().find(&binding).is_none() && !created.contains(&binding) {
            let id = loop {
                let id = random_uuid(new_id);
                let bits = id.as_u128();
                if image.acls().get(bits).is_none() && used.insert(bits) {
                    break id;
                }
            };
            tracing::info!(acl = %binding, "creating ACL");
            records.push(MetadataRecord::AccessControlEntry(acl_record(id, &binding)));
            created.insert(binding);
        }
        results.push(create_acls_response::AclCreationResult::default());
    }
    ControllerResult::new(
        records,
        CreateAclsResponse {
            results,
            ..Default::default()
        },
    )
}

/// DeleteAcls.
pub fn delete_acls(
    image: &MetadataImage,
    request: &DeleteAclsRequest,
) -> ControllerResult<DeleteAclsResponse> {
    let mut records = Vec::new();
    let mut deleted: BTreeSet<u128> = BTreeSet::new();
    let mut filter_results = Vec::with_capacity(request.filters.len());
    for f in &request.filters {
        let filter = delete_filter(f);
        if let Err(e) = filter.validate() {
            filter_results.push(delete_acls_response::DeleteAclsFilterResult {
                error_code: ErrorCode::InvalidRequest.code(),
                error_message: Some(e.to_string()),
                ..Default::default()
            });
            continue;
        }
        let mut matching_acls = Vec::new();
        for (id, b) in image.acls().matching(&filter) {
            if !deleted.insert(id) {
                continue;
            }
            tracing::info!(acl = %b, "deleting ACL");
            records.push(MetadataRecord::RemoveAccessControlEntry(
                RemoveAccessControlEntryRecord {
                    id: Uuid::from_u128(id),
                    ..Default::default()
                },
            ));
            matching_acls.push(delete_acls_response::DeleteAclsMatchingAcl {
                resource_type: b.pattern.resource_type.code(),
                resource_name: b.pattern.name.clone(),
                pattern_type: b.pattern.pattern_type.code(),
                principal: b.entry.principal.clone(),
                host: b.entry.host.clone(),
                operation: b.entry.operation.code(),
                permission_type: b.entry.permission_type.code(),
                ..Default::default()
            });
        }
        filter_results.push(delete_acls_response::DeleteAclsFilterResult {
            matching_acls,
            ..Default::default()
        });
    }
    ControllerResult::new(
        records,
        DeleteAclsResponse {
            filter_results,
            ..Default::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creation(
        name: &str,
        pattern: i8,
        principal: &str,
        op: i8,
    ) -> create_acls_request::AclCreation {
        create_acls_request::AclCreation {
            resource_type: 2,
            resource_name: name.to_owned(),
            resource_pattern_type: pattern,
            principal: principal.to_owned(),
            host: "*".to_owned(),
            operation: op,
            permission_type: 3,
            ..Default::default()
        }
    }

    fn apply(image: &mut MetadataImage, records: &[MetadataRecord]) {
        image.apply_batch(records).expect("records apply");
    }

    #[test]
    fn create_validates_dedupes_and_delete_removes_once() {
        let mut image = MetadataImage::new();
        let mut n = 0u128;
        let mut bits = move || {
            n += 1;
            n << 70
        };
        let req = CreateAclsRequest {
            creations: vec![
                creation("app-", 4, "User:alice", 4),
                creation("app-", 4, "User:alice", 4), // the same twice: one record
                creation("t", 2, "User:alice", 3),    // MATCH is a filter type
                creation("t", 3, "alice", 3),         // not Type:name
                creation("t", 3, "User:bob", 0),      // unknown operation
                creation("t", 3, "User:bob", 3),
            ],
            ..Default::default()
        };
        let res = create_acls(&image, &req, &mut bits);
        let codes: Vec<i16> = res.response.results.iter().map(|r| r.error_code).collect();
        assert_eq!(codes, [0, 0, 42, 42, 42, 0]);
        assert_eq!(res.records.len(), 2);
        apply(&mut image, &res.records);
        assert_eq!(image.acls().len(), 2);
        // Creating an existing ACL again succeeds without a record.
        let again = create_acls(&image, &req, &mut bits);
        assert!(again.records.is_empty());

        let any = delete_acls_request::DeleteAclsFilter {
            resource_type_filter: 1,
            resource_name_filter: None,
            pattern_type_filter: 1,
            principal_filter: None,
            host_filter: None,
            operation: 1,
            permission_type: 1,
            ..Default::default()
        };
        let alice = delete_acls_request::DeleteAclsFilter {
            principal_filter: Some("User:alice".to_owned()),
            ..any.clone()
        };
        let unknown = delete_acls_request::DeleteAclsFilter {
            operation: 99,
            ..any.clone()
        };
        let res = delete_acls(
            &image,
            &DeleteAclsRequest {
                filters: vec![alice, unknown, any],
                ..Default::default()
            },
        );
        let r = &res.response.filter_results;
        assert_eq!(r[0].matching_acls.len(), 1);
        assert_eq!(r[0].matching_acls[0].resource_name, "app-");
        assert_eq!(r[1].error_code, 42);
        assert_eq!(
            r[2].matching_acls.len(),
            1,
            "alice's ACL is not listed twice"
        );
        assert_eq!(res.records.len(), 2);
        apply(&mut image, &res.records);
        assert!(image.acls().is_empty());
    }
}
