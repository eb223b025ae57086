//! A macro for Kafka's small enums that travel as an `int8` code (`ResourceType`,
//! `PatternType`, `AclOperation`, `AclPermissionType`): one table gives the variant, the code
//! and the name Kafka prints, and yields `code()`, `from_code()` (unknown codes become
//! `Unknown`, as Kafka's `fromCode`), `name()`, `parse()` (case-insensitive, as `fromString`)
//! and `Display`.

macro_rules! kafka_code_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $code:literal, $text:literal;)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// Every value, in code order.
            pub const ALL_VALUES: &'static [$name] = &[$($name::$variant,)*];

            /// Kafka's wire code.
            pub fn code(self) -> i8 {
                match self {
                    $($name::$variant => $code,)*
                }
            }

            /// The value of a wire code; a code Kafka does not define is `Unknown`.
            pub fn from_code(code: i8) -> $name {
                match code {
                    $($code => $name::$variant,)*
                    _ => $name::Unknown,
                }
            }

            /// Kafka's name (`TOPIC`, `DESCRIBE_CONFIGS`, …).
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// Parses Kafka's name, ignoring case (`topic`, `Describe_Configs`); `None` for
            /// anything else.
            pub fn parse(s: &str) -> Option<$name> {
                $name::ALL_VALUES
                    .iter()
                    .copied()
                    .find(|v| v.name().eq_ignore_ascii_case(s))
            }

            /// Whether this is `Unknown` (a code Kafka does not define).
            pub fn is_unknown(self) -> bool {
                self == $name::Unknown
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

pub(crate) use kafka_code_enum;
