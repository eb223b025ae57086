//! JSON Web Keys (RFC 7517) and JWS signature algorithms (RFC 7518): a [`JwkSet`] parsed from a
//! JWKS document, and the check of one signature with `ring`.
//!
//! Algorithms: RS256/RS384/RS512 (RSASSA-PKCS1-v1_5), PS256/PS384/PS512 (RSASSA-PSS), ES256 and
//! ES384 (ECDSA on P-256/P-384, the signature as the fixed-width `r || s` JWS uses) and EdDSA
//! (Ed25519). `none` and the HMAC algorithms are never accepted: a token must be signed by a key
//! of the set. RSA keys are 2048 to 8192 bits (ring's bounds). ES512 (P-521) is not offered by
//! ring and is refused.
//!
//! Keys this set cannot use (another `kty` or curve, `use` other than `sig`, certificates only)
//! are skipped, not fatal, as jose4j skips them for Kafka; a document that is not a JWKS at all,
//! or holds more than [`MAX_KEYS`] keys, is an error.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::Value;

/// The most keys one JWKS may hold.
pub const MAX_KEYS: usize = 256;

/// A JWS `alg` this validator checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwsAlgorithm {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
}

impl JwsAlgorithm {
    /// The algorithm named by a JWS header's `alg` (case-sensitive, RFC 7515); `None` for
    /// `none`, the HMAC algorithms and anything unknown.
    pub fn parse(alg: &str) -> Option<JwsAlgorithm> {
        Some(match alg {
            "RS256" => JwsAlgorithm::Rs256,
            "RS384" => JwsAlgorithm::Rs384,
            "RS512" => JwsAlgorithm::Rs512,
            "PS256" => JwsAlgorithm::Ps256,
            "PS384" => JwsAlgorithm::Ps384,
            "PS512" => JwsAlgorithm::Ps512,
            "ES256" => JwsAlgorithm::Es256,
            "ES384" => JwsAlgorithm::Es384,
            "EdDSA" => JwsAlgorithm::EdDsa,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            JwsAlgorithm::Rs256 => "RS256",
            JwsAlgorithm::Rs384 => "RS384",
            JwsAlgorithm::Rs512 => "RS512",
            JwsAlgorithm::Ps256 => "PS256",
            JwsAlgorithm::Ps384 => "PS384",
            JwsAlgorithm::Ps512 => "PS512",
            JwsAlgorithm::Es256 => "ES256",
            JwsAlgorithm::Es384 => "ES384",
            JwsAlgorithm::EdDsa => "EdDSA",
        }
    }
}

/// The public part of one key.
#[derive(Clone, PartialEq, Eq)]
enum KeyMaterial {
    /// Modulus and public exponent, big-endian.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// An uncompressed point (`0x04 || x || y`) on P-256 or P-384.
    Ec { curve: EcCurve, point: Vec<u8> },
    /// An Ed25519 public key (32 bytes).
    Ed25519(Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EcCurve {
    P256,
    P384,
}

/// One verification key of a JWKS.
#[derive(Clone, PartialEq, Eq)]
pub struct Jwk {
    /// `kid`, if the key has one.
    pub kid: Option<String>,
    /// `alg`: when present, the only algorithm this key verifies.
    alg: Option<String>,
    material: KeyMaterial,
}

impl std::fmt::Debug for Jwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kty = match &self.material {
            KeyMaterial::Rsa { n, .. } => format!("RSA-{}", n.len() * 8),
            KeyMaterial::Ec { curve, .. } => format!("EC-{curve:?}"),
            KeyMaterial::Ed25519(_) => "OKP-Ed25519".to_owned(),
        };
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("kty", &kty)
            .finish()
    }
}

impl Jwk {
    /// Whether this key may verify `alg` (its type, curve and declared `alg` agree).
    pub fn fits(&self, alg: JwsAlgorithm) -> bool {
        if self.alg.as_deref().is_some_and(|a| a != alg.name()) {
            return false;
        }
        use JwsAlgorithm as A;
        match (&self.material, alg) {
            (
                KeyMaterial::Rsa { .. },
                A::Rs256 | A::Rs384 | A::Rs512 | A::Ps256 | A::Ps384 | A::Ps512,
            ) => true,
            (KeyMaterial::Ec { curve, .. }, A::Es256) => *curve == EcCurve::P256,
            (KeyMaterial::Ec { curve, .. }, A::Es384) => *curve == EcCurve::P384,
            (KeyMaterial::Ed25519(_), A::EdDsa) => true,
            _ => false,
        }
    }

    /// Whether `signature` over `message` (the JWS signing input) verifies with this key
    /// under `alg`. A key that does not fit `alg` verifies nothing.
    pub fn verify(&self, alg: JwsAlgorithm, message: &[u8], signature: &[u8]) -> bool {
        if !self.fits(alg) {
            return false;
        }
        use JwsAlgorithm as A;
        match &self.material {
            KeyMaterial::Rsa { n, e } => {
                let params: &signature::RsaParameters = match alg {
                    A::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    A::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    A::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    A::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
                    A::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
                    A::Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
                    _ => return false,
                };
                RsaPublicKeyComponents { n, e }
                    .verify(params, message, signature)
                    .is_ok()
            }
            KeyMaterial::Ec { curve, point } => {
                let algorithm = match curve {
                    EcCurve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
                    EcCurve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
                };
                UnparsedPublicKey::new(algorithm, point)
                    .verify(message, signature)
                    .is_ok()
            }
            KeyMaterial::Ed25519(key) => UnparsedPublicKey::new(&signature::ED25519, key)
                .verify(message, signature)
                .is_ok(),
        }
    }

    /// One JWK object; `Ok(None)` for a key this set cannot use (skipped).
    fn parse(key: &serde_json::Map<String, Value>) -> Result<Option<Jwk>, String> {
        let text = |name: &str| -> Result<Option<&str>, String> {
            match key.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(format!("a key's {name} is not a string")),
            }
        };
        let bytes = |name: &str| -> Result<Vec<u8>, String> {
            let s = text(name)?.ok_or_else(|| format!("a key has no {name}"))?;
            B64URL
                .decode(s.trim_end_matches('='))
                .map_err(|_| format!("a key's {name} is not base64url"))
        };
        if text("use")?.is_some_and(|u| u != "sig") {
            return Ok(None);
        }
        if let Some(ops) = key.get("key_ops") {
            let verifies = ops
                .as_array()
                .is_some_and(|a| a.iter().any(|o| o.as_str() == Some("verify")));
            if !verifies {
                return Ok(None);
            }
        }
        let material = match text("kty")? {
            Some("RSA") => {
                let n = bytes("n")?;
                let e = bytes("e")?;
                // Leading zero bytes are not allowed by RFC 7518 but some issuers emit them;
                // ring wants the minimal big-endian form.
                let strip = |v: Vec<u8>| {
                    let first = v.iter().position(|&b| b != 0).unwrap_or(v.len());
                    v[first..].to_vec()
                };
                let (n, e) = (strip(n), strip(e));
                if n.is_empty() || e.is_empty() {
                    return Err("an RSA key with an empty n or e".into());
                }
                KeyMaterial::Rsa { n, e }
            }
            Some("EC") => {
                let (curve, width) = match text("crv")? {
                    Some("P-256") => (EcCurve::P256, 32),
                    Some("P-384") => (EcCurve::P384, 48),
                    _ => return Ok(None),
                };
                let (x, y) = (bytes("x")?, bytes("y")?);
                if x.len() != width || y.len() != width {
                    return Err(format!("an EC key whose x or y is not {width} bytes"));
                }
                let mut point = Vec::with_capacity(1 + 2 * width);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                KeyMaterial::Ec { curve, point }
            }
            Some("OKP") if text("crv")? == Some("Ed25519") => {
                let x = bytes("x")?;
                if x.len() != 32 {
                    return Err("an Ed25519 key whose x is not 32 bytes".into());
                }
                KeyMaterial::Ed25519(x)
            }
            _ => return Ok(None),
        };
        Ok(Some(Jwk {
            kid: text("kid")?.map(str::to_owned),
            alg: text("alg")?.map(str::to_owned),
            material,
        }))
    }
}

/// The keys of one JWKS document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

impl JwkSet {
    /// Parses a JWKS document (`{"keys":[...]}`).
    pub fn parse(document: &[u8]) -> Result<JwkSet, String> {
        let value: Value =
            serde_json::from_slice(document).map_err(|e| format!("not JSON: {e}"))?;
        let keys = value
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("not a JWKS: no \"keys\" array")?;
        if keys.len() > MAX_KEYS {
            return Err(format!("{} keys; at most {MAX_KEYS} are read", keys.len()));
        }
        let mut set = JwkSet::default();
        for key in keys {
            let key = key.as_object().ok_or("a key is not a JSON object")?;
            if let Some(jwk) = Jwk::parse(key)? {
                set.keys.push(jwk);
            }
        }
        Ok(set)
    }

    /// The keys that may verify a token whose header names `kid` and `alg`: those with that
    /// `kid`; with no `kid` in the header, the set's only key (a set of several keys needs the
    /// header to say which).
    pub fn select(&self, kid: Option<&str>, alg: JwsAlgorithm) -> Vec<&Jwk> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid) && k.fits(alg))
                .collect(),
            None if self.keys.len() == 1 => self.keys.iter().filter(|k| k.fits(alg)).collect(),
            None => Vec::new(),
        }
    }

    /// Whether a key with this `kid` is in the set (whatever its algorithm).
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_skips_as_jose4j() {
        let set = JwkSet::parse(
            br#"{"keys":[
                {"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"},
                {"kty":"EC","crv":"P-521","kid":"skip-curve","x":"AA","y":"AA"},
                {"kty":"oct","kid":"skip-hmac","k":"c2VjcmV0"},
                {"kty":"RSA","kid":"skip-enc","use":"enc","n":"AQAB","e":"AQAB"},
                {"kty":"RSA","kid":"skip-ops","key_ops":["encrypt"],"n":"AQAB","e":"AQAB"}
            ]}"#,
        )
        .expect("parses");
        assert_eq!(set.keys.len(), 1);
        assert_eq!(set.keys[0].kid.as_deref(), Some("r"));
        assert!(set.keys[0].fits(JwsAlgorithm::Ps256));
        assert!(!set.keys[0].fits(JwsAlgorithm::Es256));
        for bad in [
            &b"[]"[..],
            b"{\"keys\":{}}",
            b"{\"keys\":[1]}",
            b"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"!!\",\"e\":\"AQAB\"}]}",
            b"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}]}",
            b"{\"keys\":[{\"kty\":\"RSA\",\"kid\":7,\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
            b"\xff",
        ] {
            assert!(JwkSet::parse(bad).is_err(), "{bad:?}");
        }
        let many = format!("{{\"keys\":[{}]}}", vec!["{}"; MAX_KEYS + 1].join(","));
        assert!(JwkSet::parse(many.as_bytes()).is_err());
    }

    #[test]
    fn none_and_hmac_are_not_algorithms() {
        for alg in ["none", "None", "HS256", "ES512", "rs256", ""] {
            assert!(JwsAlgorithm::parse(alg).is_none(), "{alg}");
        }
    }
}
