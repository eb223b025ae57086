//! [`JwksValidator`]: signed JWTs checked against a JWKS, as Kafka's
//! `OAuthBearerValidatorCallbackHandler` (its `ValidatorAccessTokenValidator`, built on jose4j)
//! checks them.
//!
//! A token is accepted when, in this order:
//! 1. it is a JWS in compact form (three base64url parts) whose header is a JSON object with an
//!    `alg` this validator implements ([`JwsAlgorithm`]; `none` and HMAC are refused) and no
//!    `crit` extensions;
//! 2. a key of the set verifies its signature: the key with the header's `kid`, or the set's
//!    only key when the header has no `kid` (an unknown `kid` also asks the endpoint to refresh);
//! 3. its claims are a JSON object with a numeric `exp` not passed and a numeric `iat` not in
//!    the future, an `nbf` (if present) reached — each within `sasl.oauthbearer.clock.skew.seconds`
//!    —, an `aud` naming one of `sasl.oauthbearer.expected.audience` (when set), the `iss` of
//!    `sasl.oauthbearer.expected.issuer` (when set), a non-blank string in the claim
//!    `sasl.oauthbearer.sub.claim.name` (the principal), and a scope claim
//!    (`sasl.oauthbearer.scope.claim.name`), when present, that is a string or a list of strings.
//!
//! The signature is checked before any claim is read.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use serde_json::{Map, Value};

use super::audience::check_audience;
use super::jwk::JwsAlgorithm;
use super::jwks_endpoint::RefreshingJwks;

/// Kafka's defaults.
pub mod defaults {
    pub const CLOCK_SKEW_SECONDS: i64 = 30;
    pub const SUB_CLAIM_NAME: &str = "sub";
    pub const SCOPE_CLAIM_NAME: &str = "scope";
}

/// The claim checks (`sasl.oauthbearer.*` keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRules {
    /// `sasl.oauthbearer.clock.skew.seconds`.
    pub clock_skew_seconds: i64,
    /// `sasl.oauthbearer.expected.audience`: empty accepts any (and no `aud` at all).
    pub expected_audience: Vec<String>,
    /// `sasl.oauthbearer.expected.issuer`: `None` accepts any.
    pub expected_issuer: Option<String>,
    /// `sasl.oauthbearer.sub.claim.name`.
    pub sub_claim_name: String,
    /// `sasl.oauthbearer.scope.claim.name`.
    pub scope_claim_name: String,
}

impl Default for ClaimRules {
    fn default() -> Self {
        ClaimRules {
            clock_skew_seconds: defaults::CLOCK_SKEW_SECONDS,
            expected_audience: Vec::new(),
            expected_issuer: None,
            sub_claim_name: defaults::SUB_CLAIM_NAME.into(),
            scope_claim_name: defaults::SCOPE_CLAIM_NAME.into(),
        }
    }
}

/// Checks signed tokens against the keys of one JWKS endpoint.
#[derive(Debug)]
pub struct JwksValidator {
    keys: Arc<RefreshingJwks>,
    rules: ClaimRules,
}

/// A JSON object part of the token.
fn object(part: &str, what: &str) -> Result<Map<String, Value>, String> {
    let bytes = B64URL
        .decode(part)
        .map_err(|_| format!("the {what} is not base64url"))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(format!("the {what} is not a JSON object")),
    }
}

/// A NumericDate claim in milliseconds; `Ok(None)` when absent.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, String> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|f| f.is_finite())
            // `as` saturates: an absurd date is far past or far future, never a wrap.
            .map(|f| Some((f * 1000.0) as i64))
            .ok_or_else(|| format!("the {name} claim is not a number")),
    }
}

impl JwksValidator {
    pub fn new(keys: Arc<RefreshingJwks>, rules: ClaimRules) -> JwksValidator {
        JwksValidator { keys, rules }
    }

    pub fn rules(&self) -> &ClaimRules {
        &self.rules
    }

    /// Validates `token`; the principal and the expiry (ms since the epoch).
    pub fn validate(&self, token: &str, now_ms: i64) -> Result<(String, i64), String> {
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a JWS in compact serialization".into());
        };
        let header = object(header_b64, "header")?;
        let alg_name = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or("the header has no alg")?;
        let alg = JwsAlgorithm::parse(alg_name)
            .ok_or_else(|| format!("algorithm {alg_name:?} is not accepted"))?;
        if header.contains_key("crit") {
            return Err("the header has crit extensions, none of which are understood".into());
        }
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(k)) => Some(k.as_str()),
            Some(_) => return Err("the header's kid is not a string".into()),
        };
        let signature = B64URL
            .decode(signature_b64)
            .map_err(|_| "the signature is not base64url".to_owned())?;
        let keys = self.keys.keys();
        let candidates = keys.select(kid, alg);
        if candidates.is_empty() {
            return Err(match kid {
                Some(k) if !keys.has_kid(k) => {
                    self.keys.on_missing_kid(k);
                    "no key with the token's kid in the JWKS".to_owned()
                }
                Some(_) => format!("the key with the token's kid does not verify {alg_name}"),
                None => "the token has no kid and the JWKS does not have exactly one key".into(),
            });
        }
        let signing_input = &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
        if !candidates
            .iter()
            .any(|k| k.verify(alg, signing_input, &signature))
        {
            return Err("the signature does not verify".into());
        }
        let claims = object(payload_b64, "payload")?;
        self.check_claims(&claims, now_ms)
    }

    fn check_claims(
        &self,
        claims: &Map<String, Value>,
        now_ms: i64,
    ) -> Result<(String, i64), String> {
        let rules = &self.rules;
        let skew_ms = rules.clock_skew_seconds.saturating_mul(1000);
        let exp_ms = numeric_date(claims, "exp")?.ok_or("no exp claim")?;
        if now_ms.saturating_sub(skew_ms) >= exp_ms {
            return Err("the token has expired".into());
        }
        let iat_ms = numeric_date(claims, "iat")?.ok_or("no iat claim")?;
        if iat_ms > now_ms.saturating_add(skew_ms) {
            return Err("the token was issued in the future".into());
        }
        if let Some(nbf_ms) = numeric_date(claims, "nbf")? {
            if nbf_ms > now_ms.saturating_add(skew_ms) {
                return Err("the token is not valid yet (nbf)".into());
            }
        }
        check_audience(claims, &rules.expected_audience)?;
        if let Some(issuer) = &rules.expected_issuer {
            if claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
                return Err("the token's issuer is not the expected one".into());
            }
        }
        match claims.get(&rules.scope_claim_name) {
            None | Some(Value::String(_)) => {}
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
            Some(_) => {
                return Err(format!(
                    "the {} claim is not a string or a list of strings",
                    rules.scope_claim_name
                ))
            }
        }
        let principal = claims
            .get(&rules.sub_claim_name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("no {} claim", rules.sub_claim_name))?;
        Ok((principal.to_owned(), exp_ms))
    }
}

#[cfg(test)]
mod tests;
