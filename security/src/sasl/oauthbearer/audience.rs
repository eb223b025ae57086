//! The audience check both OAUTHBEARER validators make (Kafka's rule for
//! `sasl.oauthbearer.expected.audience`).

use serde_json::Value;

/// The `aud` claim (a string or an array of them) must name one of `expected`, when any is
/// configured (`sasl.oauthbearer.expected.audience`, Kafka's rule for both validators).
pub(crate) fn check_audience(
    claims: &serde_json::Map<String, Value>,
    expected: &[String],
) -> Result<(), String> {
    if expected.is_empty() {
        return Ok(());
    }
    let aud: Vec<&str> = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if aud.iter().any(|a| expected.iter().any(|e| e == a)) {
        Ok(())
    } else {
        Err("the token's audience is not an expected one".into())
    }
}
