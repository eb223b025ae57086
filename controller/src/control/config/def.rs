//! The definition side of the configuration: Kafka's `ConfigDef` idea — a key's name, type,
//! default, validator, importance, dynamic scope and documentation — and the parsing and
//! validation of one value against its definition.
//!
//! Values are parsed the way Kafka's `ConfigDef.parseType` does: surrounding whitespace is
//! trimmed, booleans are `true`/`false` in any case, numbers are plain decimal integers in the
//! type's range, lists are comma-separated with each element trimmed (an empty string is the
//! empty list).

use std::fmt;

/// `Long.MAX_VALUE` as Kafka prints it.
pub const LONG_MAX: &str = "9223372036854775807";

/// A configuration's type, numbered as DescribeConfigs' `ConfigType` (v3+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigType {
    /// Not a known configuration (DescribeConfigs lists unknown keys from the file with this).
    Unknown = 0,
    /// `true` / `false`.
    Boolean = 1,
    /// Free text.
    String = 2,
    /// A 32-bit signed integer.
    Int = 3,
    /// A 16-bit signed integer.
    Short = 4,
    /// A 64-bit signed integer.
    Long = 5,
    /// A double.
    Double = 6,
    /// Comma-separated strings.
    List = 7,
    /// A Java class name (accepted and recorded; rafka loads no plugins).
    Class = 8,
    /// A secret: never returned by DescribeConfigs.
    Password = 9,
}

impl ConfigType {
    /// The DescribeConfigs wire code.
    pub fn code(self) -> i8 {
        self as i8
    }

    /// Kafka's name for the type, as used in its error messages (`INT`, `LONG`, ...).
    pub fn kafka_name(self) -> &'static str {
        match self {
            ConfigType::Unknown => "UNKNOWN",
            ConfigType::Boolean => "BOOLEAN",
            ConfigType::String => "STRING",
            ConfigType::Int => "INT",
            ConfigType::Short => "SHORT",
            ConfigType::Long => "LONG",
            ConfigType::Double => "DOUBLE",
            ConfigType::List => "LIST",
            ConfigType::Class => "CLASS",
            ConfigType::Password => "PASSWORD",
        }
    }
}

/// Where a described value comes from, numbered as DescribeConfigs' `ConfigSource` (v1+):
/// Kafka's `DescribeConfigsResponse.ConfigSource` ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConfigSource {
    /// Source unknown.
    Unknown = 0,
    /// A topic's own override (Kafka's `TOPIC_CONFIG`, the admin client's `DYNAMIC_TOPIC_CONFIG`).
    DynamicTopicConfig = 1,
    /// Set dynamically for this broker (resource `BROKER` named by the node id).
    DynamicBrokerConfig = 2,
    /// Set dynamically as the cluster-wide default (resource `BROKER` with the empty name).
    DynamicDefaultBrokerConfig = 3,
    /// From `server.properties` or `--override`.
    StaticBrokerConfig = 4,
    /// The built-in default.
    DefaultConfig = 5,
    /// A broker logger level.
    DynamicBrokerLoggerConfig = 6,
    /// A group's own override (Kafka's `GROUP_CONFIG`, KIP-848's dynamic group configs).
    GroupConfig = 8,
}

impl ConfigSource {
    /// The DescribeConfigs wire code.
    pub fn code(self) -> i8 {
        self as i8
    }
}

/// Kafka's importance levels (documentation only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Importance {
    /// Operators should look at this one.
    High,
    /// Usually fine at its default.
    Medium,
    /// Rarely changed.
    Low,
}

/// Whether and how a broker configuration can be changed while the broker runs
/// (IncrementalAlterConfigs on a `BROKER` resource). DescribeConfigs reports
/// `read_only = (scope == ReadOnly)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynamicScope {
    /// Only from `server.properties` / `--override`; needs a restart.
    ReadOnly,
    /// Dynamically for one broker only (never as the cluster-wide default).
    PerBroker,
    /// Dynamically for one broker or as the cluster-wide default.
    ClusterWide,
}

/// A value check beyond the type (Kafka's `ConfigDef.Validator`s).
#[derive(Debug, Clone, Copy)]
pub enum Validator {
    /// Any value of the type.
    Any,
    /// A number `>= n` (`ConfigDef.Range.atLeast`).
    AtLeast(i64),
    /// A number in `lo..=hi` (`ConfigDef.Range.between`).
    Between(i64, i64),
    /// A double in `lo..=hi`.
    BetweenF(f64, f64),
    /// One of these strings, case-sensitive (`ConfigDef.ValidString.in`).
    OneOf(&'static [&'static str]),
    /// One of these strings, ignoring case (`ConfigDef.CaseInsensitiveValidString.in`).
    OneOfIgnoreCase(&'static [&'static str]),
    /// A list whose every element is one of these (`ConfigDef.ValidList.in`).
    ListOf(&'static [&'static str]),
    /// A bespoke check on the trimmed value; the error is the reason.
    Custom(fn(&str) -> Result<(), String>),
}

/// How a broker synonym's value becomes the topic configuration's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// Same unit.
    Same,
    /// Hours to milliseconds (`log.roll.hours`, `log.retention.hours`).
    HoursToMs,
    /// Minutes to milliseconds (`log.retention.minutes`).
    MinutesToMs,
}

impl Conversion {
    /// Convert a synonym's (already validated) value.
    pub fn apply(self, value: &str) -> String {
        let factor = match self {
            Conversion::Same => return value.trim().to_string(),
            Conversion::HoursToMs => 60 * 60 * 1000,
            Conversion::MinutesToMs => 60 * 1000,
        };
        match value.trim().parse::<i64>() {
            Ok(v) => v.saturating_mul(factor).to_string(),
            Err(_) => value.trim().to_string(),
        }
    }
}

/// One configuration's definition (Kafka's `ConfigDef.ConfigKey`).
#[derive(Debug, Clone, Copy)]
pub struct ConfigKey {
    /// The key, as in `server.properties` (e.g. `log.retention.hours`).
    pub name: &'static str,
    /// The value type.
    pub ty: ConfigType,
    /// Kafka's default as Kafka prints it; `None` is Kafka's `null` (no default value).
    pub default: Option<&'static str>,
    /// The value check.
    pub validator: Validator,
    /// Kafka's importance.
    pub importance: Importance,
    /// Whether it can change at runtime (broker keys; topic keys are always alterable).
    pub scope: DynamicScope,
    /// One line of documentation.
    pub doc: &'static str,
    /// rafka's note where it departs from Kafka (e.g. accepted but ignored), appended to `doc`.
    pub note: Option<&'static str>,
}

impl ConfigKey {
    /// A read-only key with no validator.
    pub const fn new(
        name: &'static str,
        ty: ConfigType,
        default: Option<&'static str>,
        importance: Importance,
        doc: &'static str,
    ) -> ConfigKey {
        ConfigKey {
            name,
            ty,
            default,
            validator: Validator::Any,
            importance,
            scope: DynamicScope::ReadOnly,
            doc,
            note: None,
        }
    }

    /// With a validator.
    pub const fn check(mut self, validator: Validator) -> ConfigKey {
        self.validator = validator;
        self
    }

    /// Dynamically updatable, for a broker or as the cluster default.
    pub const fn cluster_wide(mut self) -> ConfigKey {
        self.scope = DynamicScope::ClusterWide;
        self
    }

    /// Dynamically updatable for one broker only.
    pub const fn per_broker(mut self) -> ConfigKey {
        self.scope = DynamicScope::PerBroker;
        self
    }

    /// With rafka's note.
    pub const fn note(mut self, note: &'static str) -> ConfigKey {
        self.note = Some(note);
        self
    }

    /// Whether DescribeConfigs reports it read-only.
    pub fn read_only(&self) -> bool {
        self.scope == DynamicScope::ReadOnly
    }

    /// Whether its value is a secret.
    pub fn is_sensitive(&self) -> bool {
        self.ty == ConfigType::Password
    }

    /// The documentation DescribeConfigs returns: Kafka's line plus rafka's note.
    pub fn documentation(&self) -> String {
        match self.note {
            Some(note) => format!("{} (rafka: {})", self.doc, note),
            None => self.doc.to_string(),
        }
    }

    /// Parse and validate `raw` for this key: `Ok(normalized value)` (as Kafka would print the
    /// parsed value) or `Err(reason)` — the reason alone, without key or value.
    pub fn parse(&self, raw: &str) -> Result<Value, String> {
        let value = parse_type(self.ty, raw)?;
        validate(&self.validator, &value)?;
        Ok(value)
    }
}

/// A parsed value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// BOOLEAN.
    Bool(bool),
    /// INT, SHORT and LONG (range-checked for the type).
    Int(i64),
    /// DOUBLE.
    Double(f64),
    /// STRING, CLASS and PASSWORD (trimmed).
    Str(String),
    /// LIST.
    List(Vec<String>),
}

impl fmt::Display for Value {
    /// As Kafka's `ConfigDef.convertToString` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Double(d) => f.write_str(&java_double(*d)),
            Value::Str(s) => f.write_str(s),
            Value::List(l) => f.write_str(&l.join(",")),
        }
    }
}

impl Value {
    /// As an integer (INT, SHORT, LONG).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// As a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// As a double.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Double(d) => Some(*d),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
}

/// A double as Java's `Double.toString` prints it (`0.5`, `1.0`, `1.0E7`,
/// `1.7976931348623157E308`).
pub fn java_double(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    let abs = d.abs();
    if abs == 0.0 || (1e-3..1e7).contains(&abs) {
        let s = format!("{d}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let s = format!("{d:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        if mantissa.contains('.') {
            format!("{mantissa}E{exp}")
        } else {
            format!("{mantissa}.0E{exp}")
        }
    }
}

/// Parse `raw` as `ty` (Kafka's `ConfigDef.parseType`).
pub fn parse_type(ty: ConfigType, raw: &str) -> Result<Value, String> {
    let trimmed = raw.trim();
    let int = |min: i64, max: i64| -> Result<Value, String> {
        match trimmed.parse::<i64>() {
            Ok(v) if v >= min && v <= max => Ok(Value::Int(v)),
            _ => Err(format!("Not a number of type {}", ty.kafka_name())),
        }
    };
    match ty {
        ConfigType::Boolean => {
            if trimmed.eq_ignore_ascii_case("true") {
                Ok(Value::Bool(true))
            } else if trimmed.eq_ignore_ascii_case("false") {
                Ok(Value::Bool(false))
            } else {
                Err("Expected value to be either true or false".to_string())
            }
        }
        ConfigType::Short => int(i16::MIN as i64, i16::MAX as i64),
        ConfigType::Int => int(i32::MIN as i64, i32::MAX as i64),
        ConfigType::Long => int(i64::MIN, i64::MAX),
        ConfigType::Double => match trimmed.parse::<f64>() {
            Ok(v) if !v.is_nan() => Ok(Value::Double(v)),
            _ => Err("Not a number of type DOUBLE".to_string()),
        },
        ConfigType::List => Ok(Value::List(parse_list(trimmed))),
        ConfigType::String | ConfigType::Class | ConfigType::Password | ConfigType::Unknown => {
            Ok(Value::Str(trimmed.to_string()))
        }
    }
}

/// Split a comma-separated list, trimming each element; the empty string is the empty list.
pub fn parse_list(raw: &str) -> Vec<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(',').map(|s| s.trim().to_string()).collect()
}

fn validate(validator: &Validator, value: &Value) -> Result<(), String> {
    match (validator, value) {
        (Validator::Any, _) => Ok(()),
        (Validator::AtLeast(min), Value::Int(v)) => {
            if v < min {
                Err(format!("Value must be at least {min}"))
            } else {
                Ok(())
            }
        }
        (Validator::AtLeast(min), Value::Double(v)) => {
            if *v < *min as f64 {
                Err(format!("Value must be at least {min}"))
            } else {
                Ok(())
            }
        }
        (Validator::Between(lo, hi), Value::Int(v)) => {
            if v < lo {
                Err(format!("Value must be no less than {lo}"))
            } else if v > hi {
                Err(format!("Value must be no more than {hi}"))
            } else {
                Ok(())
            }
        }
        (Validator::BetweenF(lo, hi), v) => match v.as_f64() {
            Some(d) if d < *lo => Err(format!("Value must be no less than {lo}")),
            Some(d) if d > *hi => Err(format!("Value must be no more than {hi}")),
            _ => Ok(()),
        },
        (Validator::OneOf(allowed), Value::Str(s)) => {
            if allowed.contains(&s.as_str()) {
                Ok(())
            } else {
                Err(format!("String must be one of: {}", allowed.join(", ")))
            }
        }
        (Validator::OneOfIgnoreCase(allowed), Value::Str(s)) => {
            if allowed.iter().any(|a| a.eq_ignore_ascii_case(s)) {
                Ok(())
            } else {
                Err(format!(
                    "String must be one of (case insensitive): {}",
                    allowed.join(", ")
                ))
            }
        }
        (Validator::ListOf(allowed), Value::List(items)) => {
            for item in items {
                if !allowed.contains(&item.as_str()) {
                    return Err(format!(
                        "Invalid value {item}: each element must be one of: {}",
                        allowed.join(", ")
                    ));
                }
            }
            Ok(())
        }
        (Validator::Custom(check), v) => check(&v.to_string()),
        // A validator that does not apply to the type (a table mistake): accept.
        _ => Ok(()),
    }
}

/// Render a value for an error message on one line (control characters escaped).
pub fn one_line(value: &str) -> String {
    value
        .chars()
        .flat_map(char::escape_default)
        .collect::<String>()
        .replace("\\'", "'")
        .replace("\\\"", "\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_def_parses_types_like_kafka() {
        assert_eq!(parse_type(ConfigType::Int, " 42 "), Ok(Value::Int(42)));
        assert!(parse_type(ConfigType::Int, "2147483648").is_err());
        assert!(parse_type(ConfigType::Short, "40000").is_err());
        assert_eq!(
            parse_type(ConfigType::Boolean, "TRUE"),
            Ok(Value::Bool(true))
        );
        assert!(parse_type(ConfigType::Boolean, "yes").is_err());
        assert_eq!(
            parse_type(ConfigType::List, " a , b,c "),
            Ok(Value::List(vec!["a".into(), "b".into(), "c".into()]))
        );
        assert_eq!(parse_type(ConfigType::List, "  "), Ok(Value::List(vec![])));
        assert_eq!(Value::Double(0.5).to_string(), "0.5");
        assert_eq!(Value::Double(1.0).to_string(), "1.0");
        assert_eq!(
            Value::Double(f64::MAX).to_string(),
            "1.7976931348623157E308"
        );
        assert_eq!(Value::Double(1e7).to_string(), "1.0E7");
    }

    #[test]
    fn config_def_conversions() {
        assert_eq!(Conversion::HoursToMs.apply("168"), "604800000");
        assert_eq!(Conversion::MinutesToMs.apply("5"), "300000");
        assert_eq!(Conversion::Same.apply(" 7 "), "7");
    }

    #[test]
    fn config_def_one_line_escapes_newlines() {
        assert_eq!(one_line("a\nb"), "a\\nb");
        assert_eq!(one_line("it's"), "it's");
    }
}
