//! [`TestSigner`]: keys that sign JWTs in tests (this crate's and the integration tests', under
//! the `testing` feature), and their public JWKs.
//!
//! EC and Ed25519 keys are generated per signer. ring cannot generate RSA keys, so RSA signers
//! use one fixed 2048-bit test key (`security/testdata/jwt-test-rsa-2048.pk8`, PKCS#8 DER): a
//! key never expires, and it signs nothing but test tokens.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{json, Value};

use super::jwk::JwsAlgorithm;

/// The fixed RSA test key.
pub const RSA_TEST_KEY_PKCS8: &[u8] = include_bytes!("../../../testdata/jwt-test-rsa-2048.pk8");

enum Key {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// One signing key and the algorithm it signs with.
pub struct TestSigner {
    pub alg: JwsAlgorithm,
    /// The `kid` put in the JWK and in the headers of [`TestSigner::token`].
    pub kid: Option<String>,
    key: Key,
}

impl TestSigner {
    /// A signer for `alg` (any [`JwsAlgorithm`]).
    pub fn new(alg: JwsAlgorithm, kid: Option<&str>) -> TestSigner {
        let rng = SystemRandom::new();
        use JwsAlgorithm as A;
        let key = match alg {
            A::Rs256 | A::Rs384 | A::Rs512 | A::Ps256 | A::Ps384 | A::Ps512 => Key::Rsa(
                RsaKeyPair::from_pkcs8(RSA_TEST_KEY_PKCS8).expect("invariant: the test RSA key"),
            ),
            A::Es256 | A::Es384 => {
                let algorithm = if alg == A::Es256 {
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING
                } else {
                    &signature::ECDSA_P384_SHA384_FIXED_SIGNING
                };
                let der = EcdsaKeyPair::generate_pkcs8(algorithm, &rng).expect("keygen");
                Key::Ec(EcdsaKeyPair::from_pkcs8(algorithm, der.as_ref(), &rng).expect("key"))
            }
            A::EdDsa => {
                let der = Ed25519KeyPair::generate_pkcs8(&rng).expect("keygen");
                Key::Ed(Ed25519KeyPair::from_pkcs8(der.as_ref()).expect("key"))
            }
        };
        TestSigner {
            alg,
            kid: kid.map(str::to_owned),
            key,
        }
    }

    /// The public JWK (with `kid` when the signer has one).
    pub fn jwk(&self) -> Value {
        let b = |v: &[u8]| B64URL.encode(v);
        let mut jwk = match &self.key {
            Key::Rsa(k) => {
                let c = signature::RsaPublicKeyComponents::<Vec<u8>>::from(k.public());
                json!({"kty": "RSA", "n": b(&c.n), "e": b(&c.e)})
            }
            Key::Ec(k) => {
                let point = k.public_key().as_ref();
                let w = (point.len() - 1) / 2;
                let crv = if w == 32 { "P-256" } else { "P-384" };
                json!({"kty": "EC", "crv": crv, "x": b(&point[1..1 + w]), "y": b(&point[1 + w..])})
            }
            Key::Ed(k) => json!({"kty": "OKP", "crv": "Ed25519", "x": b(k.public_key().as_ref())}),
        };
        if let Some(kid) = &self.kid {
            jwk["kid"] = json!(kid);
        }
        jwk["use"] = json!("sig");
        jwk
    }

    /// A JWKS document of these signers' keys.
    pub fn jwks(signers: &[&TestSigner]) -> String {
        json!({"keys": signers.iter().map(|s| s.jwk()).collect::<Vec<_>>()}).to_string()
    }

    /// The signature over `input` with this key.
    pub fn sign_bytes(&self, input: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        use JwsAlgorithm as A;
        match &self.key {
            Key::Rsa(k) => {
                let padding: &dyn signature::RsaEncoding = match self.alg {
                    A::Rs256 => &signature::RSA_PKCS1_SHA256,
                    A::Rs384 => &signature::RSA_PKCS1_SHA384,
                    A::Rs512 => &signature::RSA_PKCS1_SHA512,
                    A::Ps256 => &signature::RSA_PSS_SHA256,
                    A::Ps384 => &signature::RSA_PSS_SHA384,
                    _ => &signature::RSA_PSS_SHA512,
                };
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(padding, &rng, input, &mut sig).expect("sign");
                sig
            }
            Key::Ec(k) => k.sign(&rng, input).expect("sign").as_ref().to_vec(),
            Key::Ed(k) => k.sign(input).as_ref().to_vec(),
        }
    }

    /// A compact JWS of `claims` with header `header` (as given: the test decides `alg`/`kid`).
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            B64URL.encode(header.to_string()),
            B64URL.encode(claims.to_string())
        );
        let sig = self.sign_bytes(input.as_bytes());
        format!("{input}.{}", B64URL.encode(sig))
    }

    /// A compact JWS of `claims` with this signer's `alg` and `kid`.
    pub fn token(&self, claims: &Value) -> String {
        let mut header = json!({"alg": self.alg.name(), "typ": "JWT"});
        if let Some(kid) = &self.kid {
            header["kid"] = json!(kid);
        }
        self.sign_with_header(&header, claims)
    }
}
