//! Certificates for the TLS tests, made fresh by each test with rcgen (nothing that expires is
//! checked in): a CA, server certificates for `localhost` and `127.0.0.1`, client certificates,
//! written as PEM files the broker's `ssl.*` keys and librdkafka's `ssl.*.location` read.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// A certificate authority.
pub struct Ca {
    key: KeyPair,
    cert: rcgen::Certificate,
    /// The CA certificate as a PEM file (a truststore).
    pub pem_path: PathBuf,
}

/// A leaf certificate's files.
pub struct Leaf {
    /// The private key then the certificate: a PEM keystore (`ssl.keystore.location`).
    pub keystore: PathBuf,
    /// The certificate alone (librdkafka's `ssl.certificate.location`).
    pub cert: PathBuf,
    /// The private key alone (librdkafka's `ssl.key.location`).
    pub key: PathBuf,
}

fn dn(cn: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "rafka tests");
    name.push(DnType::CommonName, cn);
    name
}

impl Ca {
    /// A new CA named `cn`, its certificate written to `dir/<file>`.
    pub fn new(dir: &Path, cn: &str, file: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = dn(cn);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("CA certificate");
        let pem_path = dir.join(file);
        std::fs::write(&pem_path, cert.pem()).expect("write CA");
        Ca {
            key,
            cert,
            pem_path,
        }
    }

    /// A certificate signed by this CA for subject `CN=<cn>,O=rafka tests` with the names
    /// `sans` (host names or IP addresses), written under `dir` as `<stem>*.pem`.
    pub fn leaf(&self, dir: &Path, stem: &str, cn: &str, sans: &[&str]) -> Leaf {
        let key = KeyPair::generate().expect("key");
        let mut params =
            CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name = dn(cn);
        let cert = params.signed_by(&key, &self.cert, &self.key).expect("sign");
        let leaf = Leaf {
            keystore: dir.join(format!("{stem}-keystore.pem")),
            cert: dir.join(format!("{stem}-cert.pem")),
            key: dir.join(format!("{stem}-key.pem")),
        };
        std::fs::write(
            &leaf.keystore,
            format!("{}{}", key.serialize_pem(), cert.pem()),
        )
        .expect("write keystore");
        std::fs::write(&leaf.cert, cert.pem()).expect("write cert");
        std::fs::write(&leaf.key, key.serialize_pem()).expect("write key");
        leaf
    }

    /// A server certificate for this machine's loopback names.
    pub fn server(&self, dir: &Path, stem: &str, cn: &str) -> Leaf {
        self.leaf(dir, stem, cn, &["localhost", "127.0.0.1"])
    }
}
