//! [`StandardAuthorizer`]: the decision Kafka's
//! `org.apache.kafka.metadata.authorizer.StandardAuthorizer` makes, over an [`AclIndex`].
//!
//! For a principal connecting from a host, an operation on a resource:
//! 1. a principal named in `super.users` is allowed everything;
//! 2. the ACLs whose pattern applies to the resource are found (LITERAL name, LITERAL `*`,
//!    PREFIXED prefixes of the name) and those about this principal (or `User:*`) and this host
//!    (or `*`) are considered: a DENY for the operation (or ALL) denies, whatever else matches;
//!    otherwise an ALLOW for the operation, ALL, or an operation that implies it (READ, WRITE,
//!    DELETE, ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS) allows;
//! 3. with no ALLOW: denied if any ACL applies to the resource (for any principal), else
//!    `allow.everyone.if.no.acl.found` decides (Kafka's default: false, denied).
//!
//! The authorizer holds only its configuration; the ACLs are the metadata image's, so a
//! decision always uses the image the broker acts on.

use super::acl_binding::WILDCARD_RESOURCE;
use super::acl_index::AclIndex;
use super::acl_operation::AclOperation;
use super::acl_permission_type::AclPermissionType;
use super::pattern_type::PatternType;
use super::resource_type::ResourceType;
use crate::KafkaPrincipal;
use std::collections::BTreeSet;

/// Allowed or denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizationResult {
    Allowed,
    Denied,
}

/// The configured authorizer: `super.users` and `allow.everyone.if.no.acl.found`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StandardAuthorizer {
    super_users: BTreeSet<String>,
    allow_everyone_if_no_acl_found: bool,
}

impl StandardAuthorizer {
    /// The `authorizer.class.name` that turns this authorizer on.
    pub const CLASS_NAME: &'static str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

    /// `super_users` is `super.users`: principals separated by `;` (blanks around each are
    /// ignored, empty ones skipped, as Kafka does).
    pub fn new(super_users: &str, allow_everyone_if_no_acl_found: bool) -> StandardAuthorizer {
        StandardAuthorizer {
            super_users: super_users
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            allow_everyone_if_no_acl_found,
        }
    }

    pub fn super_users(&self) -> &BTreeSet<String> {
        &self.super_users
    }

    pub fn allow_everyone_if_no_acl_found(&self) -> bool {
        self.allow_everyone_if_no_acl_found
    }

    /// Whether `principal`, connecting from `host` (the client's IP address as text), may do
    /// `operation` on the resource `resource_type`/`name`.
    pub fn authorize(
        &self,
        acls: &AclIndex,
        principal: &KafkaPrincipal,
        host: &str,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> AuthorizationResult {
        let principal = principal.to_string();
        self.authorize_str(acls, &principal, host, operation, resource_type, name)
    }

    fn authorize_str(
        &self,
        acls: &AclIndex,
        principal: &str,
        host: &str,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> AuthorizationResult {
        if self.super_users.contains(principal) {
            return AuthorizationResult::Allowed;
        }
        let mut any_acl = false;
        let mut allowed = false;
        for entry in acls.applicable(resource_type, name) {
            any_acl = true;
            if !entry.applies_to(principal, host) {
                continue;
            }
            match entry.permission_type {
                AclPermissionType::Deny if entry.operation.deny_implies(operation) => {
                    return AuthorizationResult::Denied;
                }
                AclPermissionType::Allow if entry.operation.allow_implies(operation) => {
                    allowed = true;
                }
                _ => {}
            }
        }
        if allowed || (!any_acl && self.allow_everyone_if_no_acl_found) {
            AuthorizationResult::Allowed
        } else {
            AuthorizationResult::Denied
        }
    }

    /// Whether the principal may do `operation` on at least one resource of `resource_type`
    /// (Kafka's `authorizeByResourceType`, KIP-679: what an idempotent producer needs when it
    /// lacks CLUSTER IDEMPOTENT_WRITE is WRITE on some topic). Allowed when some ALLOW ACL for
    /// the principal and host grants the operation on a pattern that no DENY ACL for them
    /// covers (a DENY on the same literal name, or on a prefix of the pattern's name); never
    /// when a DENY covers every name (LITERAL `*`, or PREFIXED with the empty prefix). With no
    /// ACL on the type at all, `allow.everyone.if.no.acl.found` decides.
    pub fn authorize_by_resource_type(
        &self,
        acls: &AclIndex,
        principal: &KafkaPrincipal,
        host: &str,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> AuthorizationResult {
        let principal = principal.to_string();
        if self.super_users.contains(&principal) {
            return AuthorizationResult::Allowed;
        }
        let mut any_acl = false;
        let mut denies: Vec<(PatternType, &str)> = Vec::new();
        let mut allows: Vec<(PatternType, &str)> = Vec::new();
        for (pattern_type, name, entry) in acls.of_type(resource_type) {
            any_acl = true;
            if !entry.applies_to(&principal, host) {
                continue;
            }
            match entry.permission_type {
                AclPermissionType::Deny if entry.operation.deny_implies(operation) => {
                    if (pattern_type == PatternType::Literal && name == WILDCARD_RESOURCE)
                        || (pattern_type == PatternType::Prefixed && name.is_empty())
                    {
                        return AuthorizationResult::Denied;
                    }
                    denies.push((pattern_type, name));
                }
                AclPermissionType::Allow if entry.operation.allow_implies(operation) => {
                    allows.push((pattern_type, name));
                }
                _ => {}
            }
        }
        let covered = |(pt, name): (PatternType, &str)| {
            denies.iter().any(|(dpt, dname)| match dpt {
                PatternType::Prefixed => name.starts_with(dname),
                _ => pt == PatternType::Literal && name == *dname,
            })
        };
        if allows.into_iter().any(|a| !covered(a))
            || (!any_acl && self.allow_everyone_if_no_acl_found)
        {
            AuthorizationResult::Allowed
        } else {
            AuthorizationResult::Denied
        }
    }

    /// The operations this principal may do on the resource, as Kafka's bit set (bit
    /// `1 << code` for each allowed operation among the type's supported operations).
    pub fn authorized_operations(
        &self,
        acls: &AclIndex,
        principal: &KafkaPrincipal,
        host: &str,
        resource_type: ResourceType,
        name: &str,
    ) -> i32 {
        let principal = principal.to_string();
        operations_bit_set(
            resource_type
                .supported_operations()
                .iter()
                .copied()
                .filter(|op| {
                    self.authorize_str(acls, &principal, host, *op, resource_type, name)
                        == AuthorizationResult::Allowed
                }),
        )
    }
}

/// Kafka's `Utils.to32BitField` of operation codes: bit `1 << code` per operation.
pub fn operations_bit_set(ops: impl IntoIterator<Item = AclOperation>) -> i32 {
    ops.into_iter()
        .fold(0i32, |acc, op| acc | (1i32 << (op.code() as u32 & 31)))
}
