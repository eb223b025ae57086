//! [`TlsClient`]: the client side of an inter-node TLS connection (a replica fetcher, the
//! broker's controller channel, the Raft RPCs), built from the `ssl.*` keys of the listener it
//! connects to, as Kafka uses a listener's own keystore and truststore for both sides.
//!
//! The server's chain must lead to the truststore; its name is checked against the host
//! connected to when `ssl.endpoint.identification.algorithm=https` (Kafka's default), and not
//! when the key is empty. The keystore, when set, is offered as the client certificate (mTLS).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::pem::{load_key_pair, root_store};
use super::ssl_config::SslConfig;
use super::tls_error::TlsError;
use crate::stream::Stream;

/// The client side of TLS connections to one listener.
#[derive(Debug, Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
}

impl TlsClient {
    /// Needs a truststore (`ssl.truststore.location` or `ssl.truststore.certificates`).
    pub fn new(config: &SslConfig) -> Result<TlsClient, TlsError> {
        let listener = &config.listener;
        let truststore = config.truststore.as_ref().ok_or_else(|| {
            TlsError::Missing(format!(
                "connecting to listener {listener} with TLS needs a truststore: set \
                 ssl.truststore.type=PEM and ssl.truststore.location (or \
                 ssl.truststore.certificates)"
            ))
        })?;
        let roots = Arc::new(root_store(truststore)?);
        let provider = config.crypto_provider();
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&config.protocols)?;
        let builder = if config.endpoint_identification {
            builder.with_webpki_verifier(webpki)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoHostnameVerifier(webpki)))
        };
        let client = match &config.keystore {
            Some(keystore) => {
                let pair = load_key_pair(keystore, config.key_password.as_deref())?;
                builder.with_client_auth_cert(pair.chain, pair.key)?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(TlsClient {
            config: Arc::new(client),
        })
    }

    /// The same client with TLS session resumption on (the default) or off (every connection
    /// a full handshake: benchmarks, tests).
    pub fn with_resumption(&self, enabled: bool) -> TlsClient {
        let mut config = (*self.config).clone();
        config.resumption = if enabled {
            rustls::client::Resumption::default()
        } else {
            rustls::client::Resumption::disabled()
        };
        TlsClient {
            config: Arc::new(config),
        }
    }

    /// The rustls configuration.
    pub fn client_config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// Runs the client side of the handshake with the server at `host` (a name or an address).
    pub async fn connect(&self, tcp: TcpStream, host: &str) -> std::io::Result<Stream> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned()).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{host:?} is not a valid TLS server name: {e}"),
            )
        })?;
        let tls = TlsConnector::from(self.config.clone())
            .connect(name, tcp)
            .await?;
        Ok(Stream::TlsClient(Box::new(tls)))
    }
}

/// The WebPKI verifier without its host name check (`ssl.endpoint.identification.algorithm=`):
/// the chain must still lead to the truststore, be valid now and be signed properly.
#[derive(Debug)]
struct NoHostnameVerifier(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for NoHostnameVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
