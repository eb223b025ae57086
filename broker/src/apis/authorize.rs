//! Authorization: the one entry point every handler asks whether the request's principal may
//! do an operation on a resource (Kafka's `AuthHelper.authorize` in `KafkaApis`).
//!
//! With no authorizer configured (`authorizer.class.name` empty) everything is allowed and the
//! `*_authorized_operations` fields carry every operation the resource type supports, as Kafka
//! does. With Kafka's StandardAuthorizer, the decision is [`StandardAuthorizer::authorize`]
//! over the ACLs of the image this broker acts on, for `RequestContext::principal` connecting
//! from the client's IP address (`RequestContext::peer`).
//!
//! Two forms: [`KafkaApis::authorize`] for one decision, and [`KafkaApis::authorizer_for`],
//! which takes the image once and answers many decisions (a Metadata request that filters
//! thousands of topics, a Produce with many topics).

use super::kafka_apis::KafkaApis;
use crate::network::RequestContext;
use rafka_controller::image::MetadataImage;
use rafka_security::authorizer::{
    operations_bit_set, AclOperation, AuthorizationResult, ResourceType, StandardAuthorizer,
    CLUSTER_NAME,
};
use rafka_security::KafkaPrincipal;
use std::sync::Arc;

/// Decisions for one request's principal and host against one image.
pub struct RequestAuthorizer<'a> {
    authorizer: Option<&'a StandardAuthorizer>,
    image: Arc<MetadataImage>,
    principal: &'a KafkaPrincipal,
    host: String,
}

impl RequestAuthorizer<'_> {
    /// Whether the principal may do `operation` on `resource_type`/`name`.
    pub fn allows(&self, operation: AclOperation, resource_type: ResourceType, name: &str) -> bool {
        match self.authorizer {
            None => true,
            Some(a) => {
                let result = a.authorize(
                    self.image.acls(),
                    self.principal,
                    &self.host,
                    operation,
                    resource_type,
                    name,
                );
                if result == AuthorizationResult::Denied {
                    tracing::debug!(
                        principal = %self.principal,
                        host = %self.host,
                        operation = %operation,
                        resource_type = %resource_type,
                        resource = name,
                        "authorization denied"
                    );
                }
                result == AuthorizationResult::Allowed
            }
        }
    }

    /// Whether the principal may do `operation` on the cluster.
    pub fn allows_cluster(&self, operation: AclOperation) -> bool {
        self.allows(operation, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// Kafka's `*_authorized_operations` bit set for the resource: every supported operation
    /// the principal may do (all of them with no authorizer).
    pub fn authorized_operations(&self, resource_type: ResourceType, name: &str) -> i32 {
        match self.authorizer {
            None => operations_bit_set(resource_type.supported_operations().iter().copied()),
            Some(a) => a.authorized_operations(
                self.image.acls(),
                self.principal,
                &self.host,
                resource_type,
                name,
            ),
        }
    }

    /// Whether the principal may do `operation` on some resource of `resource_type` (Kafka's
    /// `authorizeByResourceType`).
    pub fn allows_any(&self, operation: AclOperation, resource_type: ResourceType) -> bool {
        match self.authorizer {
            None => true,
            Some(a) => {
                a.authorize_by_resource_type(
                    self.image.acls(),
                    self.principal,
                    &self.host,
                    operation,
                    resource_type,
                ) == AuthorizationResult::Allowed
            }
        }
    }

    /// `operation` (DESCRIBE_CONFIGS or ALTER_CONFIGS) on a config resource (Kafka's
    /// `ConfigResource.Type` codes): a topic needs it on the topic (else
    /// TOPIC_AUTHORIZATION_FAILED), a broker or broker logger on the cluster (else
    /// CLUSTER_AUTHORIZATION_FAILED), a group on the group (else GROUP_AUTHORIZATION_FAILED).
    /// Other types are left to the handler, which refuses them.
    pub fn allows_config(
        &self,
        operation: AclOperation,
        config_resource_type: i8,
        name: &str,
    ) -> Result<(), rafka_protocol::ErrorCode> {
        use rafka_controller::image::ConfigResource;
        use rafka_protocol::ErrorCode;
        let (resource_type, name, refusal) = match config_resource_type {
            ConfigResource::TOPIC => (
                ResourceType::Topic,
                name,
                ErrorCode::TopicAuthorizationFailed,
            ),
            ConfigResource::BROKER | ConfigResource::BROKER_LOGGER => (
                ResourceType::Cluster,
                CLUSTER_NAME,
                ErrorCode::ClusterAuthorizationFailed,
            ),
            ConfigResource::GROUP => (
                ResourceType::Group,
                name,
                ErrorCode::GroupAuthorizationFailed,
            ),
            _ => return Ok(()),
        };
        if self.allows(operation, resource_type, name) {
            Ok(())
        } else {
            Err(refusal)
        }
    }

    /// Whether an authorizer is configured.
    pub fn is_enabled(&self) -> bool {
        self.authorizer.is_some()
    }
}

impl KafkaApis {
    /// Decisions for this request against `image` (the image the handler acts on).
    pub fn authorizer_for<'a>(
        &'a self,
        ctx: &'a RequestContext,
        image: &Arc<MetadataImage>,
    ) -> RequestAuthorizer<'a> {
        RequestAuthorizer {
            authorizer: self.authorizer.as_ref(),
            image: image.clone(),
            principal: &ctx.principal,
            host: ctx.peer.ip().to_canonical().to_string(),
        }
    }

    /// Whether the request's principal may do `operation` on `resource_type`/`name`, by the
    /// ACLs of the image this broker acts on now.
    pub fn authorize(
        &self,
        ctx: &RequestContext,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if self.authorizer.is_none() {
            return true;
        }
        self.authorizer_for(ctx, &self.image())
            .allows(operation, resource_type, name)
    }

    /// Whether the request's principal may do `operation` on the cluster.
    pub fn authorize_cluster(&self, ctx: &RequestContext, operation: AclOperation) -> bool {
        self.authorize(ctx, operation, ResourceType::Cluster, CLUSTER_NAME)
    }
}

impl KafkaApis {
    /// Whether `ctx` may create or delete ACLs (CLUSTER ALTER), else Kafka's answer for every
    /// entry: SECURITY_DISABLED without an authorizer, CLUSTER_AUTHORIZATION_FAILED.
    pub fn may_alter_acls(
        &self,
        ctx: &RequestContext,
    ) -> Result<(), (rafka_protocol::ErrorCode, &'static str)> {
        if self.authorizer.is_none() {
            return Err((
                rafka_protocol::ErrorCode::SecurityDisabled,
                "No Authorizer is configured.",
            ));
        }
        if !self.authorize_cluster(ctx, AclOperation::Alter) {
            return Err((
                rafka_protocol::ErrorCode::ClusterAuthorizationFailed,
                "Cluster authorization failed.",
            ));
        }
        Ok(())
    }

    /// `operation` on the group `group_id`, or GROUP_AUTHORIZATION_FAILED.
    pub fn authorize_group(
        &self,
        ctx: &RequestContext,
        operation: AclOperation,
        group_id: &str,
    ) -> Result<(), rafka_protocol::ErrorCode> {
        if self.authorize(ctx, operation, ResourceType::Group, group_id) {
            Ok(())
        } else {
            Err(rafka_protocol::ErrorCode::GroupAuthorizationFailed)
        }
    }
}
