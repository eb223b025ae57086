//! [`ResourceType`]: what an ACL protects (Kafka's `org.apache.kafka.common.resource.ResourceType`).

use super::acl_operation::AclOperation;
use super::codes::kafka_code_enum;

kafka_code_enum! {
    /// The type of a resource, with Kafka's codes. `Any` exists only in filters.
    ResourceType {
        Unknown = 0, "UNKNOWN";
        Any = 1, "ANY";
        Topic = 2, "TOPIC";
        Group = 3, "GROUP";
        Cluster = 4, "CLUSTER";
        TransactionalId = 5, "TRANSACTIONAL_ID";
        DelegationToken = 6, "DELEGATION_TOKEN";
        User = 7, "USER";
    }
}

impl ResourceType {
    /// The operations that mean something on this resource type (Kafka's
    /// `AclEntry.supportedOperations`), which is also what `include_*_authorized_operations`
    /// answers with no authorizer configured.
    pub fn supported_operations(self) -> &'static [AclOperation] {
        use AclOperation::*;
        match self {
            ResourceType::Topic => &[
                Read,
                Write,
                Create,
                Describe,
                Delete,
                Alter,
                DescribeConfigs,
                AlterConfigs,
            ],
            // Kafka 4's set: KIP-848's group configs made DESCRIBE_CONFIGS and ALTER_CONFIGS
            // mean something on a group (DescribeConfigs and IncrementalAlterConfigs of a
            // `GROUP` resource check them).
            ResourceType::Group => &[Read, Describe, Delete, DescribeConfigs, AlterConfigs],
            ResourceType::Cluster => &[
                Create,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
                Alter,
                Describe,
            ],
            ResourceType::TransactionalId => &[Describe, Write],
            ResourceType::DelegationToken => &[Describe],
            ResourceType::User => &[CreateTokens, DescribeTokens],
            ResourceType::Unknown | ResourceType::Any => &[],
        }
    }
}
