//! A certificate's subject as Kafka prints it: `X500Principal.getName()` (RFC 2253), the string
//! `ssl.principal.mapping.rules` are written against (`CN=alice,OU=eng,O=Example,C=US`).
//!
//! RFC 2253's rules: the relative distinguished names in reverse order of their encoding (the
//! most specific first), `,` between them, `+` between the attributes of a multi-valued one;
//! the keywords CN, C, L, ST, O, OU, STREET, DC and UID, any other attribute as its dotted OID
//! with `#` and the hex of its DER value; `,` `+` `"` `\` `<` `>` `;` escaped with `\`, as are a
//! leading `#` or blank and a trailing blank.

use pkcs8::der::{Decode, Encode, Tag, Tagged};
use x509_cert::Certificate;

/// Why a certificate's subject could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the certificate's subject: {0}")]
pub struct SubjectError(String);

/// The subject of the DER certificate `cert`, in RFC 2253 form.
pub fn subject_rfc2253(cert: &[u8]) -> Result<String, SubjectError> {
    let cert = Certificate::from_der(cert).map_err(|e| SubjectError(e.to_string()))?;
    let rdns = &cert.tbs_certificate.subject.0;
    let mut out = String::new();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, atv) in rdn.0.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            let oid = atv.oid.to_string();
            let keyword = match oid.as_str() {
                "2.5.4.3" => Some("CN"),
                "2.5.4.6" => Some("C"),
                "2.5.4.7" => Some("L"),
                "2.5.4.8" => Some("ST"),
                "2.5.4.10" => Some("O"),
                "2.5.4.11" => Some("OU"),
                "2.5.4.9" => Some("STREET"),
                "0.9.2342.19200300.100.1.25" => Some("DC"),
                "0.9.2342.19200300.100.1.1" => Some("UID"),
                _ => None,
            };
            let text = match atv.value.tag() {
                Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::TeletexString => {
                    std::str::from_utf8(atv.value.value()).ok()
                }
                _ => None,
            };
            match (keyword, text) {
                (Some(k), Some(t)) => {
                    out.push_str(k);
                    out.push('=');
                    escape(t, &mut out);
                }
                _ => {
                    let der = atv
                        .value
                        .to_der()
                        .map_err(|e| SubjectError(e.to_string()))?;
                    out.push_str(keyword.unwrap_or(&oid));
                    out.push_str("=#");
                    for b in der {
                        out.push_str(&format!("{b:02x}"));
                    }
                }
            }
        }
    }
    Ok(out)
}

fn escape(value: &str, out: &mut String) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_with(dn: &[(rcgen::DnType, &str)]) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        let mut name = rcgen::DistinguishedName::new();
        for (t, v) in dn {
            name.push(t.clone(), *v);
        }
        params.distinguished_name = name;
        params.self_signed(&key).expect("cert").der().to_vec()
    }

    #[test]
    fn most_specific_first_with_kafka_keywords_and_escapes() {
        let der = cert_with(&[
            (rcgen::DnType::CountryName, "US"),
            (rcgen::DnType::OrganizationName, "Example, Inc"),
            (rcgen::DnType::OrganizationalUnitName, "eng"),
            (rcgen::DnType::CommonName, "alice"),
        ]);
        assert_eq!(
            subject_rfc2253(&der).expect("subject"),
            "CN=alice,OU=eng,O=Example\\, Inc,C=US"
        );
        assert!(subject_rfc2253(b"not a certificate").is_err());
        assert!(subject_rfc2253(&der[..der.len() / 2]).is_err());
    }
}
