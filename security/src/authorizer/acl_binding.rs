//! [`AclBinding`]: one ACL — a [`ResourcePattern`] and an [`AccessControlEntry`] (Kafka's
//! `org.apache.kafka.common.acl.AclBinding`), and the checks a new one must pass before the
//! controller writes it (Kafka's `AclControlManager.validateNewAcl` and the broker-side checks
//! of `AclApis.handleCreateAcls`).

use super::acl_operation::AclOperation;
use super::acl_permission_type::AclPermissionType;
use super::pattern_type::PatternType;
use super::resource_type::ResourceType;
use crate::KafkaPrincipal;
use std::fmt;

/// The name of the one CLUSTER resource (Kafka's `Resource.CLUSTER_NAME`).
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// A LITERAL resource name that matches every name (`ResourcePattern.WILDCARD_RESOURCE`).
pub const WILDCARD_RESOURCE: &str = "*";
/// A principal that matches every `User:` principal (`Acl.WILDCARD_PRINCIPAL_STRING`).
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// A host that matches every client address (`Acl.WILDCARD_HOST`).
pub const WILDCARD_HOST: &str = "*";

/// The resources an ACL applies to: a type and a name, matched literally (`*` for every name)
/// or as a prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourcePattern {
    pub resource_type: ResourceType,
    pub name: String,
    pub pattern_type: PatternType,
}

impl ResourcePattern {
    pub fn new(
        resource_type: ResourceType,
        name: impl Into<String>,
        pattern_type: PatternType,
    ) -> ResourcePattern {
        ResourcePattern {
            resource_type,
            name: name.into(),
            pattern_type,
        }
    }

    /// Whether this pattern applies to the resource `resource_type`/`name`.
    pub fn applies_to(&self, resource_type: ResourceType, name: &str) -> bool {
        if self.resource_type != resource_type {
            return false;
        }
        match self.pattern_type {
            PatternType::Literal => self.name == name || self.name == WILDCARD_RESOURCE,
            PatternType::Prefixed => name.starts_with(&self.name),
            _ => false,
        }
    }
}

impl fmt::Display for ResourcePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.resource_type, self.pattern_type, self.name
        )
    }
}

/// Who may (or may not) do what from where.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccessControlEntry {
    /// `Type:name`, or `User:*` for every user.
    pub principal: String,
    /// The client's IP address as text, or `*` for every host.
    pub host: String,
    pub operation: AclOperation,
    pub permission_type: AclPermissionType,
}

impl AccessControlEntry {
    /// Whether this entry is about `principal` (exactly, or through `User:*`) connecting from
    /// `host` (exactly, or through `*`).
    pub fn applies_to(&self, principal: &str, host: &str) -> bool {
        (self.principal == principal
            || (self.principal == WILDCARD_PRINCIPAL
                && principal.starts_with(KafkaPrincipal::USER_TYPE)
                && principal.as_bytes().get(KafkaPrincipal::USER_TYPE.len()) == Some(&b':')))
            && (self.host == WILDCARD_HOST || self.host == host)
    }
}

/// One ACL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    pub pattern: ResourcePattern,
    pub entry: AccessControlEntry,
}

impl fmt::Display for AclBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "(pattern={}, principal={}, host={}, operation={}, permission={})",
            self.pattern,
            self.entry.principal,
            self.entry.host,
            self.entry.operation,
            self.entry.permission_type
        )
    }
}

/// Why a new ACL (or a filter) was refused; Kafka answers each with INVALID_REQUEST.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    #[error("invalid resource type {0}")]
    InvalidResourceType(ResourceType),
    #[error("invalid pattern type {0}")]
    InvalidPatternType(PatternType),
    #[error("invalid operation {0}")]
    InvalidOperation(AclOperation),
    #[error("invalid permission type {0}")]
    InvalidPermissionType(AclPermissionType),
    #[error("invalid empty resource name")]
    EmptyResourceName,
    #[error("the only valid name for the CLUSTER resource is {CLUSTER_NAME}, not {0:?}")]
    InvalidClusterName(String),
    #[error("invalid principal {0:?}: expected Type:name (e.g. User:alice)")]
    InvalidPrincipal(String),
    #[error("invalid empty host")]
    EmptyHost,
    #[error("unknown pattern filter")]
    UnknownPatternFilter,
    #[error("unknown entry filter")]
    UnknownEntryFilter,
}

impl AclBinding {
    pub fn new(pattern: ResourcePattern, entry: AccessControlEntry) -> AclBinding {
        AclBinding { pattern, entry }
    }

    /// The checks a binding passes before it is stored: a concrete resource type, LITERAL or
    /// PREFIXED, a concrete operation and permission, a non-empty name (`kafka-cluster` for
    /// CLUSTER), a `Type:name` principal and a non-empty host.
    pub fn validate(&self) -> Result<(), AclError> {
        match self.pattern.resource_type {
            ResourceType::Unknown | ResourceType::Any => {
                return Err(AclError::InvalidResourceType(self.pattern.resource_type))
            }
            _ => {}
        }
        if !self.pattern.pattern_type.is_specific() {
            return Err(AclError::InvalidPatternType(self.pattern.pattern_type));
        }
        if matches!(
            self.entry.operation,
            AclOperation::Unknown | AclOperation::Any
        ) {
            return Err(AclError::InvalidOperation(self.entry.operation));
        }
        if !matches!(
            self.entry.permission_type,
            AclPermissionType::Allow | AclPermissionType::Deny
        ) {
            return Err(AclError::InvalidPermissionType(self.entry.permission_type));
        }
        if self.pattern.name.is_empty() {
            return Err(AclError::EmptyResourceName);
        }
        if self.pattern.resource_type == ResourceType::Cluster && self.pattern.name != CLUSTER_NAME
        {
            return Err(AclError::InvalidClusterName(self.pattern.name.clone()));
        }
        if KafkaPrincipal::parse(&self.entry.principal).is_err() {
            return Err(AclError::InvalidPrincipal(self.entry.principal.clone()));
        }
        if self.entry.host.is_empty() {
            return Err(AclError::EmptyHost);
        }
        Ok(())
    }
}
