//! PEM certificates and private keys, as Kafka's PEM keystores and truststores hold them.
//!
//! A keystore is a private key (`PRIVATE KEY`, or `ENCRYPTED PRIVATE KEY` with
//! `ssl.key.password`; the PKCS#1 `RSA PRIVATE KEY` and SEC1 `EC PRIVATE KEY` forms are accepted
//! too) and its certificate chain, leaf first; a truststore is one or more certificates. Other
//! PEM blocks are ignored, as Kafka's `PemStore` does. Every byte read here is outside input: a
//! malformed file is an error naming it, never a panic.

use std::path::Path;

use pkcs8::der::Decode;
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
};

use super::ssl_config::{KeystoreSource, TruststoreSource};
use super::tls_error::TlsError;

/// A certificate chain (leaf first) and its private key.
#[derive(Debug)]
pub struct KeyPair {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// Reads a file that is outside input: at most this many bytes (a PEM store is a few KiB).
const MAX_PEM_BYTES: u64 = 16 * 1024 * 1024;

fn read_text(path: &Path) -> Result<String, TlsError> {
    let read = |source| TlsError::Read {
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read)?.len();
    if len > MAX_PEM_BYTES {
        return Err(TlsError::Pem {
            what: path.display().to_string(),
            reason: format!("{len} bytes is too large for a PEM store"),
        });
    }
    let bytes = std::fs::read(path).map_err(read)?;
    String::from_utf8(bytes).map_err(|_| TlsError::Pem {
        what: path.display().to_string(),
        reason: "not PEM text (not UTF-8)".into(),
    })
}

/// The PEM blocks of `text` as (label, DER bytes), in order.
fn blocks(what: &str, text: &str) -> Result<Vec<(String, Vec<u8>)>, TlsError> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start..];
        let label_end = after[11..].find("-----").ok_or_else(|| TlsError::Pem {
            what: what.to_owned(),
            reason: "unterminated BEGIN line".into(),
        })?;
        let label = &after[11..11 + label_end];
        let end_marker = format!("-----END {label}-----");
        let end = after.find(&end_marker).ok_or_else(|| TlsError::Pem {
            what: what.to_owned(),
            reason: format!("no {end_marker} line"),
        })?;
        let block = &after[..end + end_marker.len()];
        // Kafka's inline values are often written on one line in a properties file: accept
        // blanks in place of line breaks between the markers.
        let normalized = normalize_block(block, label);
        let (decoded_label, der) =
            pem_rfc7468::decode_vec(normalized.as_bytes()).map_err(|e| TlsError::Pem {
                what: what.to_owned(),
                reason: format!("malformed {label} block: {e}"),
            })?;
        out.push((decoded_label.to_owned(), der));
        rest = &after[end + end_marker.len()..];
    }
    Ok(out)
}

/// A PEM block with its base64 body re-wrapped at 64 columns (RFC 7468's strict form).
fn normalize_block(block: &str, label: &str) -> String {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body: String = block[begin.len()..block.len() - end.len()]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let mut out = String::with_capacity(body.len() + body.len() / 64 + begin.len() * 2 + 4);
    out.push_str(&begin);
    out.push('\n');
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&end);
    out.push('\n');
    out
}

fn certificates(what: &str, text: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    Ok(blocks(what, text)?
        .into_iter()
        .filter(|(label, _)| label == "CERTIFICATE")
        .map(|(_, der)| CertificateDer::from(der))
        .collect())
}

fn private_key(
    what: &str,
    text: &str,
    password: Option<&str>,
) -> Result<PrivateKeyDer<'static>, TlsError> {
    let mut keys = blocks(what, text)?.into_iter().filter(|(label, _)| {
        matches!(
            label.as_str(),
            "PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY"
        )
    });
    let Some((label, der)) = keys.next() else {
        return Err(TlsError::Pem {
            what: what.to_owned(),
            reason: "no private key (PRIVATE KEY or ENCRYPTED PRIVATE KEY block)".into(),
        });
    };
    if keys.next().is_some() {
        return Err(TlsError::Pem {
            what: what.to_owned(),
            reason: "more than one private key".into(),
        });
    }
    match (label.as_str(), password) {
        ("ENCRYPTED PRIVATE KEY", Some(password)) => {
            let decrypt = |reason: String| TlsError::Decrypt {
                what: what.to_owned(),
                reason,
            };
            let info = pkcs8::EncryptedPrivateKeyInfo::from_der(&der)
                .map_err(|e| decrypt(e.to_string()))?;
            let doc = info
                .decrypt(password.as_bytes())
                .map_err(|e| decrypt(e.to_string()))?;
            Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                doc.as_bytes().to_vec(),
            )))
        }
        ("ENCRYPTED PRIVATE KEY", None) => Err(TlsError::Pem {
            what: what.to_owned(),
            reason: "the private key is encrypted: set ssl.key.password".into(),
        }),
        (_, Some(_)) => Err(TlsError::Pem {
            what: what.to_owned(),
            reason: "ssl.key.password is set but the private key is not encrypted".into(),
        }),
        ("PRIVATE KEY", None) => Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der))),
        ("RSA PRIVATE KEY", None) => Ok(PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der))),
        (_, None) => Ok(PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der))),
    }
}

/// The keystore's chain and key.
pub fn load_key_pair(source: &KeystoreSource, password: Option<&str>) -> Result<KeyPair, TlsError> {
    let (what, chain_text, key_text) = match source {
        KeystoreSource::File(path) => {
            let text = read_text(path)?;
            (path.display().to_string(), text.clone(), text)
        }
        KeystoreSource::Inline { chain, key } => (
            "ssl.keystore.certificate.chain/ssl.keystore.key".to_owned(),
            chain.clone(),
            key.clone(),
        ),
    };
    let chain = certificates(&what, &chain_text)?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            what,
            reason: "no certificate (CERTIFICATE block)".into(),
        });
    }
    let key = private_key(&what, &key_text, password)?;
    Ok(KeyPair { chain, key })
}

/// The truststore's certificates (at least one).
pub fn load_trusted(source: &TruststoreSource) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let (what, text) = match source {
        TruststoreSource::File(path) => (path.display().to_string(), read_text(path)?),
        TruststoreSource::Inline(text) => ("ssl.truststore.certificates".to_owned(), text.clone()),
    };
    let certs = certificates(&what, &text)?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what,
            reason: "no certificate (CERTIFICATE block)".into(),
        });
    }
    Ok(certs)
}

/// A root store of the truststore's certificates.
pub fn root_store(source: &TruststoreSource) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in load_trusted(source)? {
        roots.add(cert).map_err(TlsError::Rustls)?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_pem_is_an_error_not_a_panic() {
        for text in [
            "-----BEGIN CERTIFICATE",
            "-----BEGIN CERTIFICATE-----\nAAAA",
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
            "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----",
            "",
        ] {
            let r = load_trusted(&TruststoreSource::Inline(text.to_owned()));
            assert!(r.is_err(), "{text:?}");
        }
        let r = load_key_pair(
            &KeystoreSource::Inline {
                chain: String::new(),
                key: String::new(),
            },
            None,
        );
        assert!(r.is_err());
    }

    #[test]
    fn keys_in_every_form_and_encrypted_pkcs8() {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let inline = |key: String| KeystoreSource::Inline {
            chain: cert.pem(),
            key,
        };
        let pair = load_key_pair(&inline(key.serialize_pem()), None).expect("plain pkcs8");
        assert_eq!(pair.chain.len(), 1);
        assert!(load_key_pair(&inline(key.serialize_pem()), Some("pw")).is_err());

        // The same key, encrypted with PBES2 (PBKDF2-SHA256, AES-256-CBC).
        let plain_der = key.serialize_der();
        let info = pkcs8::PrivateKeyInfo::from_der(&plain_der).expect("pkcs8");
        let params =
            pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(2048, &[7; 16], &[9; 16])
                .expect("params");
        let encrypted = info
            .encrypt_with_params(params, b"secret")
            .expect("encrypt");
        let pem = pem_rfc7468::encode_string(
            "ENCRYPTED PRIVATE KEY",
            pem_rfc7468::LineEnding::LF,
            encrypted.as_bytes(),
        )
        .expect("pem");
        let pair = load_key_pair(&inline(pem.clone()), Some("secret")).expect("decrypts");
        assert_eq!(pair.key.secret_der(), key.serialize_der().as_slice());
        let e = load_key_pair(&inline(pem.clone()), Some("wrong")).expect_err("wrong password");
        assert!(matches!(e, TlsError::Decrypt { .. }), "{e}");
        assert!(
            !e.to_string().contains("wrong"),
            "the password is never shown"
        );
        assert!(load_key_pair(&inline(pem.clone()), None).is_err());
        // One line, as in a properties file.
        let one_line = pem.replace('\n', " ");
        assert!(load_key_pair(&inline(one_line), Some("secret")).is_ok());
    }
}
