//! [`PatternType`]: how an ACL's resource name matches (Kafka's
//! `org.apache.kafka.common.resource.PatternType`).

use super::codes::kafka_code_enum;

kafka_code_enum! {
    /// How a resource name is matched. A binding is `Literal` (the name, or `*` for every
    /// name) or `Prefixed` (every name that starts with it); `Any` and `Match` exist only in
    /// filters (`Any`: a binding of any pattern type with exactly this name; `Match`: every
    /// binding that would apply to a resource of this name).
    PatternType {
        Unknown = 0, "UNKNOWN";
        Any = 1, "ANY";
        Match = 2, "MATCH";
        Literal = 3, "LITERAL";
        Prefixed = 4, "PREFIXED";
    }
}

impl PatternType {
    /// Whether a binding (not a filter) may have this pattern type.
    pub fn is_specific(self) -> bool {
        matches!(self, PatternType::Literal | PatternType::Prefixed)
    }
}
