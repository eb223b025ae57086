//! [`Client`]: a cluster as a client sees it. It bootstraps from a list of `host:port`, learns
//! the brokers from Metadata, keeps one [`BrokerConnection`] per broker, finds partition leaders
//! (Metadata) and group coordinators (FindCoordinator), and retries what may succeed later —
//! connection failures, timeouts and Kafka's retriable errors — with a doubling backoff, within
//! `default.api.timeout.ms`. Nothing waits without a bound.

use crate::config::ClientConfig;
use crate::connection::BrokerConnection;
use crate::error::ClientError;
use crate::request::KafkaRequest;
use rafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use rafka_protocol::messages::metadata_request::MetadataRequestTopic;
use rafka_protocol::messages::{MetadataRequest, MetadataResponse};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// A broker as Metadata names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

impl BrokerInfo {
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

pub struct Client {
    config: Arc<ClientConfig>,
    bootstrap: Vec<String>,
    /// From the last Metadata answer.
    brokers: BTreeMap<i32, BrokerInfo>,
    /// Open connections by node id; the bootstrap connection under its own negative key until
    /// the broker behind it is known.
    connections: HashMap<i32, BrokerConnection>,
    bootstrap_connection: Option<BrokerConnection>,
    pub cluster_id: Option<String>,
    pub controller_id: i32,
}

impl Client {
    /// Connects to the first reachable of `bootstrap` (comma-separated `host:port`), trying them
    /// in turn with backoff for at most `connect_timeout`, and reads the cluster's brokers.
    pub async fn connect(bootstrap: &str, config: ClientConfig) -> Result<Client, ClientError> {
        let list: Vec<String> = bootstrap
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        if list.is_empty() {
            return Err(ClientError::Config("no bootstrap server given".into()));
        }
        let mut client = Client {
            config: Arc::new(config),
            bootstrap: list,
            brokers: BTreeMap::new(),
            connections: HashMap::new(),
            bootstrap_connection: None,
            cluster_id: None,
            controller_id: -1,
        };
        let deadline = Instant::now() + client.config.connect_timeout;
        let mut backoff = client.config.retry_backoff;
        let mut last = String::new();
        'rounds: loop {
            for addr in client.bootstrap.clone() {
                match BrokerConnection::open(&addr, &client.config).await {
                    Ok(c) => {
                        client.bootstrap_connection = Some(c);
                        break 'rounds;
                    }
                    Err(e) => {
                        tracing::debug!(%addr, error = %e, "bootstrap server unreachable");
                        last = e.to_string();
                        if !e.is_retriable() {
                            return Err(e);
                        }
                    }
                }
            }
            if Instant::now() + backoff >= deadline {
                return Err(ClientError::Unreachable {
                    bootstrap: client.bootstrap.join(","),
                    last,
                });
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
        client.metadata(Some(Vec::new())).await?;
        Ok(client)
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The brokers of the last Metadata answer.
    pub fn brokers(&self) -> &BTreeMap<i32, BrokerInfo> {
        &self.brokers
    }

    /// A connection to any broker: the bootstrap connection, an open one, or a new one to a
    /// known broker or bootstrap server.
    pub async fn any(&mut self) -> Result<&mut BrokerConnection, ClientError> {
        if self
            .bootstrap_connection
            .as_ref()
            .is_some_and(|c| c.is_open())
        {
            return Ok(self
                .bootstrap_connection
                .as_mut()
                .expect("invariant: checked above"));
        }
        if let Some(id) = self
            .connections
            .iter()
            .find(|(_, c)| c.is_open())
            .map(|(id, _)| *id)
        {
            return self.broker(id).await;
        }
        let mut last = String::new();
        let candidates: Vec<String> = self
            .brokers
            .values()
            .map(BrokerInfo::addr)
            .chain(self.bootstrap.iter().cloned())
            .collect();
        for addr in candidates {
            match BrokerConnection::open(&addr, &self.config).await {
                Ok(c) => {
                    self.bootstrap_connection = Some(c);
                    return Ok(self
                        .bootstrap_connection
                        .as_mut()
                        .expect("invariant: just set"));
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(ClientError::Unreachable {
            bootstrap: self.bootstrap.join(","),
            last,
        })
    }

    /// The connection to broker `node_id`, opened if needed.
    pub async fn broker(&mut self, node_id: i32) -> Result<&mut BrokerConnection, ClientError> {
        let open = self.connections.get(&node_id).is_some_and(|c| c.is_open());
        if !open {
            let info = self.brokers.get(&node_id).ok_or_else(|| {
                ClientError::Protocol(format!("broker {node_id} is not in the cluster's metadata"))
            })?;
            let c = BrokerConnection::open(&info.addr(), &self.config).await?;
            self.connections.insert(node_id, c);
        }
        Ok(self
            .connections
            .get_mut(&node_id)
            .expect("invariant: inserted above"))
    }

    /// Metadata for `topics` (`None`: all topics; `Some(empty)`: brokers only), refreshing the
    /// broker list.
    pub async fn metadata(
        &mut self,
        topics: Option<Vec<String>>,
    ) -> Result<MetadataResponse, ClientError> {
        let request = MetadataRequest {
            topics: topics.map(|t| {
                t.into_iter()
                    .map(|name| MetadataRequestTopic {
                        name: Some(name),
                        ..Default::default()
                    })
                    .collect()
            }),
            allow_auto_topic_creation: false,
            ..Default::default()
        };
        let resp = self
            .retry("Metadata", async |c: &mut Client| {
                c.any().await?.send(request.clone()).await
            })
            .await?;
        self.brokers = resp
            .brokers
            .iter()
            .map(|b| {
                (
                    b.node_id,
                    BrokerInfo {
                        node_id: b.node_id,
                        host: b.host.clone(),
                        port: b.port,
                        rack: b.rack.clone(),
                    },
                )
            })
            .collect();
        self.cluster_id = resp.cluster_id.clone();
        self.controller_id = resp.controller_id;
        Ok(resp)
    }

    /// The leader of each partition of `topics`, by (topic, partition).
    pub async fn leaders(
        &mut self,
        topics: &[String],
    ) -> Result<BTreeMap<(String, i32), i32>, ClientError> {
        let md = self.metadata(Some(topics.to_vec())).await?;
        let mut out = BTreeMap::new();
        for t in md.topics {
            let name = t.name.unwrap_or_default();
            ClientError::check(format!("topic {name}"), t.error_code, None)?;
            for p in t.partitions {
                out.insert((name.clone(), p.partition_index), p.leader_id);
            }
        }
        Ok(out)
    }

    /// The coordinator of `key` (`key_type` 0: a group, 1: a transactional id).
    pub async fn coordinator(&mut self, key: &str, key_type: i8) -> Result<i32, ClientError> {
        let key = key.to_owned();
        self.retry("FindCoordinator", async |c: &mut Client| {
            let conn = c.any().await?;
            let (version, r) = conn
                .send_with(|v| FindCoordinatorRequest {
                    key: if v < 4 { key.clone() } else { String::new() },
                    key_type,
                    coordinator_keys: if v >= 4 {
                        vec![key.clone()]
                    } else {
                        Vec::new()
                    },
                    ..Default::default()
                })
                .await?;
            let subject = format!("coordinator of {key}");
            let (node, host, port) = if version >= 4 {
                let co = r.coordinators.into_iter().next().ok_or_else(|| {
                    ClientError::Protocol(format!("{subject}: empty FindCoordinator answer"))
                })?;
                ClientError::check(subject, co.error_code, co.error_message.as_deref())?;
                (co.node_id, co.host, co.port)
            } else {
                ClientError::check(subject, r.error_code, r.error_message.as_deref())?;
                (r.node_id, r.host, r.port)
            };
            c.brokers.entry(node).or_insert(BrokerInfo {
                node_id: node,
                host,
                port,
                rack: None,
            });
            Ok(node)
        })
        .await
    }

    /// Sends `request` to broker `node_id` (no retry: the caller knows what a failure means).
    pub async fn send_to<R: KafkaRequest>(
        &mut self,
        node_id: i32,
        request: R,
    ) -> Result<R::Response, ClientError> {
        let r = self.broker(node_id).await?.send(request).await;
        if r.is_err() {
            self.forget(node_id);
        }
        r
    }

    /// Drops the connection to `node_id` (after a failure).
    pub fn forget(&mut self, node_id: i32) {
        if self.connections.get(&node_id).is_some_and(|c| !c.is_open()) {
            self.connections.remove(&node_id);
        }
    }

    /// Runs `op` until it succeeds, fails with an error that is not retriable, or
    /// `default.api.timeout.ms` passes; waits `retry.backoff.ms` (doubling, at most 1 s) between
    /// attempts and drops connections that failed.
    pub async fn retry<T>(
        &mut self,
        what: &str,
        mut op: impl AsyncFnMut(&mut Client) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let deadline = Instant::now() + self.config.api_timeout;
        let mut backoff = self.config.retry_backoff;
        loop {
            match op(self).await {
                Ok(t) => return Ok(t),
                Err(e) if e.is_retriable() && Instant::now() + backoff < deadline => {
                    tracing::debug!(what, error = %e, "retrying");
                    self.connections.retain(|_, c| c.is_open());
                    if self
                        .bootstrap_connection
                        .as_ref()
                        .is_some_and(|c| !c.is_open())
                    {
                        self.bootstrap_connection = None;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(e),
            }
        }
    }
}
