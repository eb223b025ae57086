//! [`KafkaPrincipal`]: who a connection acts as (Kafka's `KafkaPrincipal`).

use std::fmt;

/// A principal: a type and a name, written `Type:name` (`User:alice`). The name may itself
/// contain colons (a certificate subject such as `CN=a,O=b` does not, but a SASL user may);
/// only the first colon separates.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KafkaPrincipal {
    pub principal_type: String,
    pub name: String,
}

impl KafkaPrincipal {
    /// Kafka's only built-in principal type.
    pub const USER_TYPE: &'static str = "User";
    /// The name of the principal of an unauthenticated connection (PLAINTEXT, or SSL without a
    /// client certificate).
    pub const ANONYMOUS_NAME: &'static str = "ANONYMOUS";

    pub fn new(principal_type: impl Into<String>, name: impl Into<String>) -> KafkaPrincipal {
        KafkaPrincipal {
            principal_type: principal_type.into(),
            name: name.into(),
        }
    }

    /// `User:<name>`.
    pub fn user(name: impl Into<String>) -> KafkaPrincipal {
        KafkaPrincipal::new(KafkaPrincipal::USER_TYPE, name)
    }

    /// `User:ANONYMOUS`.
    pub fn anonymous() -> KafkaPrincipal {
        KafkaPrincipal::user(KafkaPrincipal::ANONYMOUS_NAME)
    }

    pub fn is_anonymous(&self) -> bool {
        self.principal_type == KafkaPrincipal::USER_TYPE
            && self.name == KafkaPrincipal::ANONYMOUS_NAME
    }

    /// Parses `Type:name` (as in `super.users` and ACL bindings). Both parts must be non-empty.
    pub fn parse(s: &str) -> Result<KafkaPrincipal, PrincipalError> {
        match s.split_once(':') {
            Some((t, n)) if !t.is_empty() && !n.is_empty() => Ok(KafkaPrincipal::new(t, n)),
            _ => Err(PrincipalError(s.to_owned())),
        }
    }
}

impl Default for KafkaPrincipal {
    fn default() -> Self {
        KafkaPrincipal::anonymous()
    }
}

impl fmt::Display for KafkaPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.principal_type, self.name)
    }
}

/// A principal string that is not `Type:name`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("principal {0:?} is not of the form Type:name (e.g. User:alice)")]
pub struct PrincipalError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_type_and_name() {
        let p = KafkaPrincipal::parse("User:alice").expect("valid");
        assert_eq!(p, KafkaPrincipal::user("alice"));
        assert_eq!(p.to_string(), "User:alice");
        // Only the first colon separates.
        let p = KafkaPrincipal::parse("User:a:b").expect("valid");
        assert_eq!(p.name, "a:b");
        for bad in ["alice", ":alice", "User:", ""] {
            assert!(KafkaPrincipal::parse(bad).is_err(), "{bad:?}");
        }
        assert!(KafkaPrincipal::default().is_anonymous());
        assert!(!KafkaPrincipal::user("alice").is_anonymous());
    }
}
