//! [`BrokerConnection`]: one connection to one broker, with the API versions both sides
//! support. Opening it connects through `rafka_security::transport::connect` (TLS and SASL as
//! the [`ClientConfig`] says) and sends ApiVersions; every request after that goes at the
//! highest version that both this client's codec and the broker implement, as Kafka's clients
//! pick them, so the same code talks to rafka and to Apache Kafka.
//!
//! Requests on one connection are sequential (`&mut self`). Every wait is bounded: the
//! connection attempt by `connect_timeout`, each request by `request_timeout`. A request that
//! fails or times out poisons the connection (it may be mid-frame): the next send fails fast and
//! the owner opens a new one.

use crate::config::ClientConfig;
use crate::error::ClientError;
use crate::request::KafkaRequest;
use crate::wire::{self, ExchangeError};
use rafka_protocol::messages::{ApiVersionsRequest, RequestKind};
use rafka_protocol::{ApiKey, VersionRange};
use rafka_security::transport::{connect, ClientSecurity, Session, Stream};
use std::collections::HashMap;
use std::time::Duration;

/// The largest response this client reads (a fetch is bounded by its own `max_bytes` first).
pub const MAX_RESPONSE_BYTES: usize = 256 << 20;

/// The ApiVersions versions tried: the newest flexible one this codec and every Kafka since 2.4
/// speak, then v0, which every broker answers.
const API_VERSIONS_TRIED: [i16; 2] = [3, 0];

pub struct BrokerConnection {
    addr: String,
    stream: Option<Stream>,
    /// The stream's SASL session (KIP-368), authenticated again with `security` when due.
    session: Session,
    security: ClientSecurity,
    /// The broker's ranges, by API key.
    versions: HashMap<i16, VersionRange>,
    correlation_id: i32,
    client_id: String,
    request_timeout: Duration,
}

impl std::fmt::Debug for BrokerConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerConnection")
            .field("addr", &self.addr)
            .field("open", &self.stream.is_some())
            .finish_non_exhaustive()
    }
}

impl BrokerConnection {
    /// Connects to `addr` (`host:port`) and learns its API versions, within
    /// `config.connect_timeout`.
    pub async fn open(addr: &str, config: &ClientConfig) -> Result<BrokerConnection, ClientError> {
        let mut last = None;
        for version in API_VERSIONS_TRIED {
            match BrokerConnection::open_at(addr, config, version).await {
                Ok(c) => return Ok(c),
                // A broker older than ApiVersions v3 answers UNSUPPORTED_VERSION in a v0 body, or
                // closes: try v0 on a new connection.
                Err(e @ (ClientError::Exchange { .. } | ClientError::Kafka { .. })) => {
                    last = Some(e)
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("invariant: at least one version was tried"))
    }

    async fn open_at(
        addr: &str,
        config: &ClientConfig,
        version: i16,
    ) -> Result<BrokerConnection, ClientError> {
        let stream =
            match tokio::time::timeout(config.connect_timeout, connect(addr, &config.security))
                .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(error)) => {
                    return Err(ClientError::Connect {
                        addr: addr.to_owned(),
                        error,
                    })
                }
                Err(_) => {
                    return Err(ClientError::Timeout {
                        addr: addr.to_owned(),
                        what: "the connection".into(),
                        after: config.connect_timeout,
                    })
                }
            };
        let (stream, session) = stream;
        let mut conn = BrokerConnection {
            addr: addr.to_owned(),
            stream: Some(stream),
            session,
            security: config.security.clone(),
            versions: HashMap::new(),
            correlation_id: 0,
            client_id: config.client_id.clone(),
            request_timeout: config.connect_timeout.min(config.request_timeout),
        };
        let request = ApiVersionsRequest {
            client_software_name: "rafka-client".into(),
            client_software_version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        };
        let resp = conn.send_at(version, request).await?;
        ClientError::check(
            format!("{addr} ApiVersions v{version}"),
            resp.error_code,
            None,
        )?;
        conn.versions = resp
            .api_keys
            .iter()
            .map(|k| {
                (
                    k.api_key,
                    VersionRange {
                        min: k.min_version,
                        max: k.max_version,
                    },
                )
            })
            .collect();
        conn.request_timeout = config.request_timeout;
        Ok(conn)
    }

    /// `host:port` of the broker.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether the connection can still carry requests.
    pub fn is_open(&self) -> bool {
        self.stream.is_some()
    }

    /// The broker's versions of `api`, if it serves it at all.
    pub fn broker_versions(&self, api: ApiKey) -> Option<VersionRange> {
        self.versions.get(&api.key()).copied()
    }

    /// The highest version of `api` that both sides implement.
    pub fn version_for(&self, api: ApiKey) -> Result<i16, ClientError> {
        let unsupported = || ClientError::UnsupportedApi {
            addr: self.addr.clone(),
            api: api.name(),
        };
        let ours = RequestKind::versions(api).ok_or_else(unsupported)?;
        let theirs = self.broker_versions(api).ok_or_else(unsupported)?;
        negotiate(ours, theirs).ok_or_else(unsupported)
    }

    /// Sends `request` at the negotiated version.
    pub async fn send<R: KafkaRequest>(&mut self, request: R) -> Result<R::Response, ClientError> {
        let version = self.version_for(R::API)?;
        self.send_at(version, request).await
    }

    /// Sends the request `build` makes for the negotiated version (for APIs whose fields
    /// changed shape between versions).
    pub async fn send_with<R: KafkaRequest>(
        &mut self,
        build: impl FnOnce(i16) -> R,
    ) -> Result<(i16, R::Response), ClientError> {
        let version = self.version_for(R::API)?;
        let r = self.send_at(version, build(version)).await?;
        Ok((version, r))
    }

    /// Sends the request built for the negotiated version capped at `max` (e.g. Fetch at 12,
    /// the last version that names topics).
    pub async fn send_capped<R: KafkaRequest>(
        &mut self,
        max: i16,
        request: R,
    ) -> Result<R::Response, ClientError> {
        let version = self.version_for(R::API)?;
        let floor = self.broker_versions(R::API).map_or(version, |r| r.min);
        if floor > max {
            return Err(ClientError::UnsupportedApi {
                addr: self.addr.clone(),
                api: R::API.name(),
            });
        }
        self.send_at(version.min(max), request).await
    }

    /// Sends `request` at `version`, within the request timeout.
    pub async fn send_at<R: KafkaRequest>(
        &mut self,
        version: i16,
        request: R,
    ) -> Result<R::Response, ClientError> {
        let Some(mut stream) = self.stream.take() else {
            return Err(ClientError::Exchange {
                addr: self.addr.clone(),
                error: ExchangeError::Closed,
            });
        };
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let exchange = wire::exchange_in_session(
            &mut stream,
            &mut self.session,
            &self.security,
            version,
            self.correlation_id,
            &self.client_id,
            request.into_kind(),
            MAX_RESPONSE_BYTES,
        );
        let body = match tokio::time::timeout(self.request_timeout, exchange).await {
            Ok(Ok(body)) => body,
            Ok(Err(error)) => {
                return Err(ClientError::Exchange {
                    addr: self.addr.clone(),
                    error,
                })
            }
            Err(_) => {
                return Err(ClientError::Timeout {
                    addr: self.addr.clone(),
                    what: format!("{} v{version}", R::API.name()),
                    after: self.request_timeout,
                })
            }
        };
        // Only a whole answer leaves the stream at a frame boundary.
        self.stream = Some(stream);
        R::response(body).ok_or_else(|| {
            ClientError::Protocol(format!("{}: not a {} response", self.addr, R::API.name()))
        })
    }
}

impl BrokerConnection {
    /// Sends `request` and reads no answer: a Produce with acks=0, which the broker never
    /// answers (it closes the connection on an error instead).
    pub async fn send_oneway<R: KafkaRequest>(&mut self, request: R) -> Result<(), ClientError> {
        let version = self.version_for(R::API)?;
        let Some(mut stream) = self.stream.take() else {
            return Err(ClientError::Exchange {
                addr: self.addr.clone(),
                error: ExchangeError::Closed,
            });
        };
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let frame = rafka_protocol::RequestFrame {
            header: rafka_protocol::messages::RequestHeader {
                request_api_key: R::API.key(),
                request_api_version: version,
                correlation_id: self.correlation_id,
                client_id: Some(self.client_id.clone()),
                ..Default::default()
            },
            body: request.into_kind(),
        };
        let bytes = frame.encode().map_err(|e| ClientError::Exchange {
            addr: self.addr.clone(),
            error: e.into(),
        })?;
        let (session, security) = (&mut self.session, &self.security);
        let write = async {
            use tokio::io::AsyncWriteExt;
            session.keep(&mut stream, security).await?;
            stream.write_all(&bytes).await?;
            stream.flush().await
        };
        match tokio::time::timeout(self.request_timeout, write).await {
            Ok(Ok(())) => {
                self.stream = Some(stream);
                Ok(())
            }
            Ok(Err(e)) => Err(ClientError::Exchange {
                addr: self.addr.clone(),
                error: e.into(),
            }),
            Err(_) => Err(ClientError::Timeout {
                addr: self.addr.clone(),
                what: R::API.name().to_owned(),
                after: self.request_timeout,
            }),
        }
    }
}

/// The highest version in both ranges.
pub fn negotiate(ours: VersionRange, theirs: VersionRange) -> Option<i16> {
    let max = ours.max.min(theirs.max);
    (max >= ours.min.max(theirs.min)).then_some(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(min: i16, max: i16) -> VersionRange {
        VersionRange { min, max }
    }

    #[test]
    fn picks_the_highest_common_version() {
        assert_eq!(negotiate(r(0, 12), r(0, 9)), Some(9));
        assert_eq!(negotiate(r(4, 16), r(0, 17)), Some(16));
        assert_eq!(negotiate(r(3, 11), r(0, 2)), None);
        assert_eq!(negotiate(r(0, 2), r(3, 11)), None);
    }
}
