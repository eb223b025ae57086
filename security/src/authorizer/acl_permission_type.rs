//! [`AclPermissionType`]: whether an ACL allows or denies (Kafka's
//! `org.apache.kafka.common.acl.AclPermissionType`).

use super::codes::kafka_code_enum;

kafka_code_enum! {
    /// ALLOW or DENY, with Kafka's codes. `Any` exists only in filters.
    AclPermissionType {
        Unknown = 0, "UNKNOWN";
        Any = 1, "ANY";
        Deny = 2, "DENY";
        Allow = 3, "ALLOW";
    }
}
