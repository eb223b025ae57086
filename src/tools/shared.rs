//! What the tools share: the connection options every networked tool takes, the result type
//! every tool returns, the log setup of the long-running ones, and two small helpers.

use super::output::Format;
use clap::Args;
use rafka_client::{Client, ClientConfig, ClientError};
use std::path::PathBuf;

/// How to reach the cluster; every networked tool takes these.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// Brokers to bootstrap from, comma-separated host:port.
    #[arg(long, short = 'b', default_value = "localhost:9092", global = true)]
    pub bootstrap_server: String,
    /// A properties file of Kafka client keys: security.protocol, ssl.truststore.location,
    /// sasl.mechanism, sasl.jaas.config, request.timeout.ms, …
    #[arg(long, global = true)]
    pub command_config: Option<PathBuf>,
    /// table for people, json for scripts.
    #[arg(long, value_enum, default_value = "table", global = true)]
    pub output: Format,
}

impl Connection {
    pub fn client_config(&self) -> Result<ClientConfig, ClientError> {
        match &self.command_config {
            Some(p) => ClientConfig::load(p),
            None => Ok(ClientConfig::default()),
        }
    }

    pub async fn connect(&self) -> Result<Client, ClientError> {
        Client::connect(&self.bootstrap_server, self.client_config()?).await
    }
}

/// A tool's failure: printed as one line, exit 1.
pub type ToolResult = anyhow::Result<()>;

/// Log lines (tracing) to standard error for the long-running tools (agent, transfer); levels
/// from RUST_LOG, info by default.
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
}

/// Whether a long-running tool (agent, transfer) should wait and try again after `e`: what
/// [`ClientError::is_retriable`] says, and also no broker reachable at all (a broker restart).
pub fn transient(e: &ClientError) -> bool {
    e.is_retriable() || matches!(e, ClientError::Unreachable { .. })
}

/// `now` in ms since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `key=value` → (key, value), for clap.
pub fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected key=value, got {s:?}"))
}
