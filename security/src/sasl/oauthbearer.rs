//! SASL/OAUTHBEARER (RFC 7628) with Kafka's two server handlers: unsecured JWS tokens
//! (`OAuthBearerUnsecuredValidatorCallbackHandler`, the default, for development) and signed JWTs
//! checked against a JWKS (`OAuthBearerValidatorCallbackHandler`, [`jwks_validator`]).
//!
//! The client's one message is `gs2-header %x01 auth=Bearer <token> %x01 [key=value %x01]... %x01`.
//! The token is a JWS in compact form whose header says `"alg":"none"` and whose signature part
//! is empty; its claims must hold the principal claim (`sub`, or the JAAS option
//! `unsecuredValidatorPrincipalClaimName`), a numeric `exp` in the future (within
//! `unsecuredValidatorAllowableClockSkewMs`), every scope of `unsecuredValidatorRequiredScope`
//! in the scope claim (`scope`, or `unsecuredValidatorScopeClaimName`; a space-separated string
//! or an array), and — when `sasl.oauthbearer.expected.audience` is set — one of those audiences
//! in `aud`. A refused token is answered, as RFC 7628 and Kafka do, with a JSON error challenge;
//! the client's `%x01` reply then ends the exchange as a failure.
//!
//! The unsecured validator is here; the signed one is [`jwks_validator`], its keys [`jwk`] and
//! their retrieval [`jwks_endpoint`]. Both answer a refused token the same way.

mod audience;
pub mod jwk;
pub mod jwks_endpoint;
pub mod jwks_validator;
#[cfg(any(test, feature = "testing"))]
pub mod test_signer;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use serde_json::Value;

use super::jaas::JaasConfig;
use super::{SaslError, SaslMechanism, SaslServer, ServerStep};
use audience::check_audience;

const M: SaslMechanism = SaslMechanism::OAuthBearer;
/// The longest client message accepted.
const MAX_MESSAGE: usize = 64 * 1024;

/// Kafka's unsecured validator settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsecuredValidator {
    pub principal_claim: String,
    pub scope_claim: String,
    pub required_scope: Vec<String>,
    pub allowable_clock_skew_ms: i64,
    /// `sasl.oauthbearer.expected.audience`: empty accepts any.
    pub expected_audience: Vec<String>,
}

impl Default for UnsecuredValidator {
    fn default() -> Self {
        UnsecuredValidator {
            principal_claim: "sub".into(),
            scope_claim: "scope".into(),
            required_scope: Vec::new(),
            allowable_clock_skew_ms: 0,
            expected_audience: Vec::new(),
        }
    }
}

impl UnsecuredValidator {
    /// From the OAuthBearerLoginModule's JAAS options.
    pub fn from_jaas(jaas: Option<&JaasConfig>, expected_audience: Vec<String>) -> Self {
        let mut v = UnsecuredValidator {
            expected_audience,
            ..Default::default()
        };
        if let Some(j) = jaas {
            if let Some(c) = j.option("unsecuredValidatorPrincipalClaimName") {
                v.principal_claim = c.to_owned();
            }
            if let Some(c) = j.option("unsecuredValidatorScopeClaimName") {
                v.scope_claim = c.to_owned();
            }
            if let Some(s) = j.option("unsecuredValidatorRequiredScope") {
                v.required_scope = s
                    .split([' ', ','])
                    .filter(|x| !x.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            if let Some(ms) = j
                .option("unsecuredValidatorAllowableClockSkewMs")
                .and_then(|s| s.trim().parse().ok())
            {
                v.allowable_clock_skew_ms = ms;
            }
        }
        v
    }

    /// Validates `token`; the principal and the expiry (ms since the epoch).
    pub fn validate(&self, token: &str, now_ms: i64) -> Result<(String, i64), String> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a JWS in compact serialization".into());
        };
        if !signature.is_empty() {
            return Err("an unsecured token must have an empty signature".into());
        }
        let json = |part: &str, what: &str| -> Result<serde_json::Map<String, Value>, String> {
            let bytes = B64URL
                .decode(part.trim_end_matches('='))
                .map_err(|_| format!("the {what} is not base64url"))?;
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(m)) => Ok(m),
                _ => Err(format!("the {what} is not a JSON object")),
            }
        };
        let header = json(header, "header")?;
        if header.get("alg").and_then(Value::as_str) != Some("none") {
            return Err("the header's alg is not \"none\"".into());
        }
        let claims = json(payload, "payload")?;
        let exp = claims
            .get("exp")
            .and_then(Value::as_f64)
            .ok_or("no numeric exp claim")?;
        let exp_ms = (exp * 1000.0) as i64;
        if exp_ms + self.allowable_clock_skew_ms <= now_ms {
            return Err("the token has expired".into());
        }
        if let Some(iat) = claims.get("iat") {
            if !iat.is_number() {
                return Err("the iat claim is not a number".into());
            }
        }
        let principal = claims
            .get(&self.principal_claim)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| format!("no {} claim", self.principal_claim))?;
        let scope: Vec<&str> = match claims.get(&self.scope_claim) {
            Some(Value::String(s)) => s.split(' ').filter(|x| !x.is_empty()).collect(),
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if let Some(missing) = self
            .required_scope
            .iter()
            .find(|r| !scope.contains(&r.as_str()))
        {
            return Err(format!("the token lacks the required scope {missing}"));
        }
        check_audience(&claims, &self.expected_audience)?;
        Ok((principal.to_owned(), exp_ms))
    }
}

/// The token check a listener's OAUTHBEARER uses (its `sasl.server.callback.handler.class`).
#[derive(Debug)]
pub enum TokenValidator {
    /// Kafka's default: unsecured (`alg: none`) tokens.
    Unsecured(UnsecuredValidator),
    /// `OAuthBearerValidatorCallbackHandler`: signed tokens, keys from a JWKS.
    Jwks(jwks_validator::JwksValidator),
}

impl TokenValidator {
    /// Validates `token`; the principal and the expiry (ms since the epoch).
    pub fn validate(&self, token: &str, now_ms: i64) -> Result<(String, i64), String> {
        match self {
            TokenValidator::Unsecured(v) => v.validate(token, now_ms),
            TokenValidator::Jwks(v) => v.validate(token, now_ms),
        }
    }
}

impl From<UnsecuredValidator> for TokenValidator {
    fn from(v: UnsecuredValidator) -> Self {
        TokenValidator::Unsecured(v)
    }
}

enum State {
    Initial,
    /// The error challenge was sent; the client's `%x01` ends the exchange.
    ErrorSent(String),
    Done,
}

/// The server side of one OAUTHBEARER exchange.
pub struct OAuthBearerServer {
    validator: Arc<TokenValidator>,
    state: State,
}

impl OAuthBearerServer {
    pub fn new(validator: Arc<TokenValidator>) -> OAuthBearerServer {
        OAuthBearerServer {
            validator,
            state: State::Initial,
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl SaslServer for OAuthBearerServer {
    fn mechanism(&self) -> SaslMechanism {
        M
    }

    fn evaluate(&mut self, token: &[u8]) -> Result<ServerStep, SaslError> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Done => return Err(SaslError::AlreadyComplete(M)),
            State::ErrorSent(why) => {
                return Err(SaslError::AuthenticationFailed(why));
            }
            State::Initial => {}
        }
        if token.len() > MAX_MESSAGE {
            return Err(SaslError::malformed(M, "message too long"));
        }
        let msg = std::str::from_utf8(token).map_err(|_| SaslError::malformed(M, "not UTF-8"))?;
        let (gs2, rest) = msg
            .split_once('\u{1}')
            .ok_or_else(|| SaslError::malformed(M, "no %x01 after the gs2 header"))?;
        let mut g = gs2.splitn(3, ',');
        let (cbind, authzid, tail) = (g.next(), g.next(), g.next());
        if cbind != Some("n") && cbind != Some("y") || tail != Some("") {
            return Err(SaslError::malformed(M, "bad gs2 header"));
        }
        let authzid = match authzid {
            Some("") | None => None,
            Some(a) => Some(
                a.strip_prefix("a=")
                    .ok_or_else(|| SaslError::malformed(M, "bad authzid"))?,
            ),
        };
        let body = rest
            .strip_suffix("\u{1}\u{1}")
            .ok_or_else(|| SaslError::malformed(M, "the message does not end in %x01%x01"))?;
        let mut bearer = None;
        for kv in body.split('\u{1}') {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| SaslError::malformed(M, "bad key=value"))?;
            if k == "auth" {
                bearer = Some(
                    v.strip_prefix("Bearer ")
                        .ok_or_else(|| SaslError::malformed(M, "auth is not Bearer"))?,
                );
            }
        }
        let bearer = bearer.ok_or_else(|| SaslError::malformed(M, "no auth=Bearer"))?;
        match self.validator.validate(bearer.trim(), now_ms()) {
            Ok((principal, exp_ms)) => {
                if authzid.is_some_and(|a| a != principal) {
                    return Err(SaslError::AuthenticationFailed(
                        "authorization id differs from the token's principal".into(),
                    ));
                }
                Ok(ServerStep::Complete {
                    token: Vec::new(),
                    authorization_id: principal,
                    credential_expiry_ms: Some(exp_ms),
                })
            }
            Err(why) => {
                self.state = State::ErrorSent(format!("invalid token: {why}"));
                Ok(ServerStep::Challenge(
                    br#"{"status":"invalid_token"}"#.to_vec(),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(header: &str, claims: &str, sig: &str) -> String {
        format!("{}.{}.{sig}", B64URL.encode(header), B64URL.encode(claims))
    }

    fn message(token: &str) -> Vec<u8> {
        format!("n,,\u{1}auth=Bearer {token}\u{1}\u{1}").into_bytes()
    }

    #[test]
    fn unsecured_tokens_as_kafka_checks_them() {
        let v = Arc::new(TokenValidator::from(UnsecuredValidator {
            required_scope: vec!["kafka".into()],
            expected_audience: vec!["rafka".into()],
            ..Default::default()
        }));
        let exp = now_ms() / 1000 + 3600;
        let good = jwt(
            r#"{"alg":"none"}"#,
            &format!(r#"{{"sub":"alice","exp":{exp},"scope":"kafka other","aud":["x","rafka"]}}"#),
            "",
        );
        let step = OAuthBearerServer::new(v.clone())
            .evaluate(&message(&good))
            .expect("ok");
        let ServerStep::Complete {
            authorization_id,
            credential_expiry_ms,
            ..
        } = step
        else {
            panic!("expected completion")
        };
        assert_eq!(authorization_id, "alice");
        assert_eq!(credential_expiry_ms, Some(exp * 1000));
        let past = now_ms() / 1000 - 10;
        for (bad, why) in [
            (
                jwt(
                    r#"{"alg":"RS256"}"#,
                    &format!(r#"{{"sub":"a","exp":{exp},"scope":"kafka","aud":"rafka"}}"#),
                    "",
                ),
                "signed",
            ),
            (
                jwt(
                    r#"{"alg":"none"}"#,
                    &format!(r#"{{"sub":"a","exp":{exp},"scope":"kafka","aud":"rafka"}}"#),
                    "c2ln",
                ),
                "signature",
            ),
            (
                jwt(
                    r#"{"alg":"none"}"#,
                    &format!(r#"{{"sub":"a","exp":{past},"scope":"kafka","aud":"rafka"}}"#),
                    "",
                ),
                "expired",
            ),
            (
                jwt(
                    r#"{"alg":"none"}"#,
                    &format!(r#"{{"exp":{exp},"scope":"kafka","aud":"rafka"}}"#),
                    "",
                ),
                "no sub",
            ),
            (
                jwt(
                    r#"{"alg":"none"}"#,
                    &format!(r#"{{"sub":"a","exp":{exp},"scope":"other","aud":"rafka"}}"#),
                    "",
                ),
                "scope",
            ),
            (
                jwt(
                    r#"{"alg":"none"}"#,
                    &format!(r#"{{"sub":"a","exp":{exp},"scope":"kafka","aud":"else"}}"#),
                    "",
                ),
                "audience",
            ),
            (
                jwt(
                    r#"{"alg":"none"}"#,
                    r#"{"sub":"a","scope":"kafka","aud":"rafka"}"#,
                    "",
                ),
                "no exp",
            ),
            ("a.b".into(), "shape"),
            ("!!.??.".into(), "base64"),
        ] {
            let mut s = OAuthBearerServer::new(v.clone());
            assert!(
                matches!(s.evaluate(&message(&bad)), Ok(ServerStep::Challenge(_))),
                "{why}"
            );
            assert!(
                matches!(s.evaluate(b"\x01"), Err(SaslError::AuthenticationFailed(_))),
                "{why}"
            );
        }
        for bad in [
            &b"n,,auth=Bearer x"[..],
            b"n,,\x01auth=Bearer x\x01",
            b"p=x,,\x01auth=Bearer x\x01\x01",
            b"n,,\x01auth=Basic x\x01\x01",
            b"\xff",
        ] {
            assert!(
                matches!(
                    OAuthBearerServer::new(v.clone()).evaluate(bad),
                    Err(SaslError::Malformed { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
