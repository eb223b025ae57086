//! [`AclOperation`]: what a request does to a resource (Kafka's
//! `org.apache.kafka.common.acl.AclOperation`), and which operations an ACL on one implies.

use super::codes::kafka_code_enum;

kafka_code_enum! {
    /// An operation, with Kafka's codes. `Any` exists only in filters; `All` in a binding
    /// means every operation.
    AclOperation {
        Unknown = 0, "UNKNOWN";
        Any = 1, "ANY";
        All = 2, "ALL";
        Read = 3, "READ";
        Write = 4, "WRITE";
        Create = 5, "CREATE";
        Delete = 6, "DELETE";
        Alter = 7, "ALTER";
        Describe = 8, "DESCRIBE";
        ClusterAction = 9, "CLUSTER_ACTION";
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        AlterConfigs = 11, "ALTER_CONFIGS";
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        CreateTokens = 13, "CREATE_TOKENS";
        DescribeTokens = 14, "DESCRIBE_TOKENS";
    }
}

impl AclOperation {
    /// Whether an ALLOW ACL for `self` allows `requested` (Kafka's `StandardAuthorizerData`):
    /// `ALL` allows everything; READ, WRITE, DELETE and ALTER also allow DESCRIBE;
    /// ALTER_CONFIGS also allows DESCRIBE_CONFIGS.
    pub fn allow_implies(self, requested: AclOperation) -> bool {
        use AclOperation::*;
        if self == All || self == requested {
            return true;
        }
        match requested {
            Describe => matches!(self, Read | Write | Delete | Alter),
            DescribeConfigs => self == AlterConfigs,
            _ => false,
        }
    }

    /// Whether a DENY ACL for `self` denies `requested`: only the operation itself or `ALL`
    /// (a DENY on READ does not deny DESCRIBE).
    pub fn deny_implies(self, requested: AclOperation) -> bool {
        self == AclOperation::All || self == requested
    }
}
