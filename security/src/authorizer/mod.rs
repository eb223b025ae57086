//! ACLs and the decision Kafka's `StandardAuthorizer` makes: who may do what to which resource.
//!
//! - The model, with Kafka's wire codes: [`ResourceType`], [`PatternType`], [`AclOperation`]
//!   (and which operations imply which), [`AclPermissionType`], [`AclBinding`] (a
//!   [`ResourcePattern`] and an [`AccessControlEntry`]) with the checks a new one passes, and
//!   [`AclBindingFilter`] for DescribeAcls and DeleteAcls.
//! - [`AclIndex`]: the cluster's ACLs, indexed so a decision never scans them.
//! - [`StandardAuthorizer`]: `super.users`, `allow.everyone.if.no.acl.found`, the decision and
//!   the `include_*_authorized_operations` bit sets.
//!
//! Not here: where ACLs are stored (the controller's metadata image, from
//! `AccessControlEntryRecord`s), which request needs which operation (the broker's
//! `KafkaApis::authorize`), and the configuration keys (the broker's config).

mod acl_binding;
mod acl_binding_filter;
mod acl_index;
mod acl_operation;
mod acl_permission_type;
mod codes;
mod pattern_type;
mod resource_type;
mod standard_authorizer;
#[cfg(test)]
mod tests;

pub use acl_binding::{
    AccessControlEntry, AclBinding, AclError, ResourcePattern, CLUSTER_NAME, WILDCARD_HOST,
    WILDCARD_PRINCIPAL, WILDCARD_RESOURCE,
};
pub use acl_binding_filter::{AccessControlEntryFilter, AclBindingFilter, ResourcePatternFilter};
pub use acl_index::AclIndex;
pub use acl_operation::AclOperation;
pub use acl_permission_type::AclPermissionType;
pub use pattern_type::PatternType;
pub use resource_type::ResourceType;
pub use standard_authorizer::{operations_bit_set, AuthorizationResult, StandardAuthorizer};
