//! Configuration: Kafka's `server.properties` keys, types, defaults and precedence, so an
//! operator's Kafka KRaft file works unchanged (`../shared/DESIGN.md`, Configuration).
//!
//! - [`KafkaConfig`]: a parsed and validated broker configuration — [`KafkaConfig::load`] reads a
//!   Java-properties file plus `--override key=value` pairs, [`KafkaConfig::default_single_node`]
//!   is what `rafka` runs with no file. Typed accessors for what the broker needs, the storage
//!   [`LogConfig`] for the broker defaults ([`KafkaConfig::log_config`]) and for a topic with its
//!   overrides ([`KafkaConfig::topic_log_config`]), and DescribeConfigs listings of every broker
//!   and topic configuration with value, source, synonyms, type and documentation
//!   ([`KafkaConfig::describe_broker`], [`KafkaConfig::describe_topic`]).
//! - [`BROKER_CONFIGS`] / [`TOPIC_CONFIGS`]: the definition tables (Kafka's `ConfigDef`, written
//!   once): name, type, Kafka's default, validator, importance, dynamic scope, documentation, and
//!   for topic configurations the broker synonyms they default from.
//! - [`DynamicBrokerConfig`](dynamic_broker_config::DynamicBrokerConfig): this broker's configuration in force — one [`KafkaConfig`] with
//!   the metadata image's dynamic broker configs installed, rebuilt only when they change, read
//!   by everything that obeys a dynamic key (the live logs, DescribeConfigs, the TLS listeners).
//! - [`ConfigError`]: why a configuration was refused, always one line naming the key, the value
//!   and the problem. Unknown keys are not errors: they are returned as warnings
//!   ([`KafkaConfig::warnings`]).
//!
//! # Precedence
//!
//! A broker configuration's value is the first of: this broker's dynamic value (DescribeConfigs
//! source `DYNAMIC_BROKER_CONFIG`), the cluster-wide dynamic default
//! (`DYNAMIC_DEFAULT_BROKER_CONFIG`), the file or `--override` (`STATIC_BROKER_CONFIG`; an
//! override beats the file), Kafka's default (`DEFAULT_CONFIG`). Some broker settings have
//! several spellings, used in order: `log.retention.ms` > `log.retention.minutes` >
//! `log.retention.hours`, `log.roll.ms` > `log.roll.hours`, `log.roll.jitter.ms` >
//! `log.roll.jitter.hours`, `log.flush.interval.ms` > `log.flush.scheduler.interval.ms`.
//! A topic configuration's value is its own override (`TOPIC_CONFIG`), else its broker
//! synonyms' value by the broker precedence above (converted to the topic's unit), else the
//! topic default.
//!
//! # Where rafka differs from Kafka
//!
//! - Every default in the tables is Kafka's (including `broker.session.timeout.ms` = 9000 and
//!   `broker.heartbeat.interval.ms` = 2000: faster failure detection is possible without GC
//!   pauses, but the controller's fencing and the clients' timeouts are tuned together in Kafka,
//!   and an operator's file should behave as it does there). Only running with no file at all
//!   differs: [`KafkaConfig::default_single_node`] is Kafka's single-node KRaft example.
//! - `cluster.id` is rafka's own key (Kafka takes the id from `kafka-storage format`): when it
//!   is unset the first active controller creates one.
//! - Every security protocol is served (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL). TLS
//!   keystores and truststores must be PEM (`ssl.keystore.type=PEM`); JKS and PKCS12 are refused.
//!   GSSAPI (Kerberos) is not a SASL mechanism rafka offers.
//!   `authorizer.class.name` must be empty or Kafka's StandardAuthorizer (ACLs in the
//!   metadata log, [`KafkaConfig::authorizer`]), and
//!   `remote.log.storage.system.enable` must be false (no tiered storage).
//! - Thread-pool sizes (`num.network.threads`, `num.io.threads`, `background.threads`, ...) are
//!   accepted and ignored: one tokio runtime serves everything. Keys Kafka can change
//!   dynamically but rafka cannot change live (listeners, connection quotas, cleaner and thread
//!   settings) are reported read-only. Each such key says so in its documentation.
//! - A process without `process.roles` (ZooKeeper mode) is refused: rafka is KRaft only.
//! - DescribeConfigs of a topic lists the whole synonym chain of each value. Kafka drops the
//!   chain (and reports `DEFAULT_CONFIG`) when the highest-precedence synonym is unset — e.g.
//!   `retention.ms` coming from `log.retention.hours=168` in the file; rafka reports
//!   `STATIC_BROKER_CONFIG` with `log.retention.hours` in the chain.

mod broker_defs;
mod def;
pub mod dynamic_broker_config;
mod dynamic_broker_configs;
mod endpoints;
mod group_defs;
pub mod listener_keys;
use rafka_client::properties;
pub mod sasl;
pub mod ssl;
mod topic_defs;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rafka_storage::{CleanupPolicy, LogConfig};

pub use broker_defs::BROKER_CONFIGS;
pub use def::{
    java_double, parse_list, ConfigKey, ConfigSource, ConfigType, Conversion, DynamicScope,
    Importance, Validator, Value,
};
pub use dynamic_broker_configs::DynamicBrokerConfigs;
pub use endpoints::{local_hostname, Endpoint, HostPort, ProcessRoles, SecurityProtocol, Voter};
pub use group_defs::{
    group_config, group_int, GroupConfigBounds, GroupKey, CONSUMER_HEARTBEAT_INTERVAL_MS,
    CONSUMER_SESSION_TIMEOUT_MS, GROUP_CONFIGS,
};
pub use topic_defs::{TopicKey, TOPIC_CONFIGS};

use def::one_line;

/// Why a configuration was refused: one line naming the key, the value and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        reason: String,
    },
    /// The file is not valid properties syntax (only a malformed `\uXXXX` can be).
    #[error("{path}:{line}: {reason}")]
    Syntax {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A `--override` argument without `=`.
    #[error("invalid --override {arg}: expected key=value")]
    Override {
        /// The argument as given.
        arg: String,
    },
    /// A value of the wrong type or out of range (Kafka's `ConfigException` wording).
    #[error("Invalid value {value} for configuration {key}: {reason}")]
    InvalidValue {
        /// The key.
        key: String,
        /// The value, control characters escaped.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A required key is missing.
    #[error("Missing required configuration {key}: {reason}")]
    Missing {
        /// The key.
        key: String,
        /// Why it is needed.
        reason: String,
    },
    /// Keys that do not fit together.
    #[error("Invalid configuration {key}: {reason}")]
    Invalid {
        /// The key at fault (the first one, when several are involved).
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A log directory that cannot be created or written.
    #[error("log directory {dir} ({key}) is not usable: {reason}")]
    LogDir {
        /// `log.dirs`, `log.dir` or `metadata.log.dir`.
        key: String,
        /// The directory.
        dir: String,
        /// The OS error.
        reason: String,
    },
}

impl ConfigError {
    /// The configuration key the error is about, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::InvalidValue { key, .. }
            | ConfigError::Missing { key, .. }
            | ConfigError::Invalid { key, .. }
            | ConfigError::LogDir { key, .. } => Some(key),
            ConfigError::Read { .. }
            | ConfigError::Syntax { .. }
            | ConfigError::Override { .. } => None,
        }
    }

    fn invalid_value(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::InvalidValue {
            key: key.to_string(),
            value: one_line(value.trim()),
            reason: reason.into(),
        }
    }

    fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: key.to_string(),
            reason: reason.into(),
        }
    }
}

/// One synonym of a described configuration (DescribeConfigs `Synonyms`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedSynonym {
    /// The synonym's key (the configuration itself, or a broker key it defaults from).
    pub name: String,
    /// Its value at that source (`None` for sensitive configurations).
    pub value: Option<String>,
    /// The source holding that value.
    pub source: ConfigSource,
}

/// One entry of a DescribeConfigs result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedConfig {
    /// The key.
    pub name: String,
    /// The value in force (`None` when sensitive, or unset with no default — Kafka's `null`).
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Whether it cannot be changed without a restart.
    pub read_only: bool,
    /// Whether it is a secret (its values are never returned).
    pub is_sensitive: bool,
    /// The values it has at every source, highest precedence first (Kafka's
    /// `include_synonyms`; the first entry is the one in force).
    pub synonyms: Vec<DescribedSynonym>,
    /// The type.
    pub config_type: ConfigType,
    /// One line of documentation (`include_documentation`).
    pub documentation: Option<String>,
}

/// A parsed and validated broker configuration. To change the dynamic configurations, clone
/// it, [`KafkaConfig::set_dynamic`], and swap it in — what [`DynamicBrokerConfig`](dynamic_broker_config::DynamicBrokerConfig) does once
/// per change of the image's dynamic broker configs.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// File + overrides, raw (every key, unknown ones included).
    static_props: BTreeMap<String, String>,
    dynamic: DynamicBrokerConfigs,
    warnings: Vec<String>,
    node_id: i32,
    roles: ProcessRoles,
    protocol_map: BTreeMap<String, SecurityProtocol>,
    listeners: Vec<Endpoint>,
    advertised_broker: Vec<Endpoint>,
    advertised_controller: Vec<Endpoint>,
    controller_listener_names: Vec<String>,
    inter_broker_listener_name: String,
    voters: Vec<Voter>,
    bootstrap_servers: Vec<HostPort>,
    log_dirs: Vec<PathBuf>,
    metadata_log_dir: PathBuf,
}

/// Look up a broker configuration's definition.
pub fn broker_config(name: &str) -> Option<&'static ConfigKey> {
    BROKER_CONFIGS.iter().find(|k| k.name == name)
}

/// Look up a topic configuration's definition.
pub fn topic_config(name: &str) -> Option<&'static TopicKey> {
    rafka_controller::control::config::topic_defs::topic_config(name)
}

/// Check one topic configuration (CreateTopics / AlterConfigs / IncrementalAlterConfigs): an
/// unknown key or a bad value is an error, answered with INVALID_CONFIG and this message. The
/// rule is the controller's ([`rafka_controller::control::config::topic_defs`]), so a request
/// refused here is refused there too.
pub fn validate_topic_config(key: &str, value: &str) -> Result<(), String> {
    rafka_controller::control::config::topic_defs::validate_topic_config(key, value)
}

/// Check a topic's whole set of overrides: each one, then how they fit together (Kafka's
/// `LogConfig.validateValues`: `min.compaction.lag.ms` ≤ `max.compaction.lag.ms`).
pub fn validate_topic_configs(configs: &BTreeMap<String, String>) -> Result<(), String> {
    rafka_controller::control::config::topic_defs::validate_topic_configs(
        configs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )
}

/// Parse one `--override key=value` argument (split at the first `=`, as Kafka's
/// `kafka-server-start.sh --override`).
pub fn parse_override(arg: &str) -> Result<(String, String), ConfigError> {
    match arg.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(ConfigError::Override { arg: one_line(arg) }),
    }
}

/// Parse Java-properties text into its key/value map (a later duplicate wins, as in Java);
/// `origin` names the text in errors and warnings. Duplicate keys are reported in `warnings`.
pub fn parse_properties(
    text: &str,
    origin: &str,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let entries = properties::parse(text).map_err(|e| ConfigError::Syntax {
        path: origin.to_string(),
        line: e.line,
        reason: e.reason,
    })?;
    let mut map = BTreeMap::new();
    let mut lines: BTreeMap<String, usize> = BTreeMap::new();
    for e in entries {
        if let Some(prev) = lines.insert(e.key.clone(), e.line) {
            warnings.push(format!(
                "{origin}:{}: {} is set again (first on line {prev}); the last value wins",
                e.line, e.key
            ));
        }
        map.insert(e.key, e.value);
    }
    Ok(map)
}

/// The properties `rafka` runs with when given no file: Kafka's single-node KRaft example
/// (`config/kraft/server.properties`) on localhost with data under `./rafka-data`.
pub fn single_node_props() -> BTreeMap<String, String> {
    [
        ("process.roles", "broker,controller"),
        ("node.id", "1"),
        ("controller.quorum.voters", "1@localhost:9093"),
        (
            "listeners",
            "PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093",
        ),
        // advertised.listeners is left to its default (the listeners), so that overriding
        // `listeners` alone advertises what is really listened on.
        ("inter.broker.listener.name", "PLAINTEXT"),
        ("controller.listener.names", "CONTROLLER"),
        (
            "listener.security.protocol.map",
            "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        ),
        ("log.dirs", "./rafka-data"),
        // Kafka's single-node example overrides, so that groups and transactions work on one
        // node (their internal topics default to 3 replicas and min ISR 2).
        ("offsets.topic.replication.factor", "1"),
        ("transaction.state.log.replication.factor", "1"),
        ("transaction.state.log.min.isr", "1"),
        ("share.coordinator.state.topic.replication.factor", "1"),
        ("share.coordinator.state.topic.min.isr", "1"),
        ("min.insync.replicas", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Kafka's `DynamicBrokerConfig.brokerConfigSynonyms`: the broker keys that spell the same
/// setting, highest precedence first.
fn broker_synonym_group(name: &str) -> &'static [&'static str] {
    const RETENTION: &[&str] = &[
        "log.retention.ms",
        "log.retention.minutes",
        "log.retention.hours",
    ];
    const ROLL: &[&str] = &["log.roll.ms", "log.roll.hours"];
    const JITTER: &[&str] = &["log.roll.jitter.ms", "log.roll.jitter.hours"];
    const FLUSH: &[&str] = &["log.flush.interval.ms", "log.flush.scheduler.interval.ms"];
    match name {
        "log.retention.ms" | "log.retention.minutes" | "log.retention.hours" => RETENTION,
        "log.roll.ms" | "log.roll.hours" => ROLL,
        "log.roll.jitter.ms" | "log.roll.jitter.hours" => JITTER,
        "log.flush.interval.ms" => FLUSH,
        _ => &[],
    }
}

/// `ssl.x` for `listener.name.<listener>.ssl.x` when `ssl.x` is a known key.
fn listener_scoped_ssl_key(key: &str) -> Option<&str> {
    let (_, rest) = key.strip_prefix("listener.name.")?.split_once('.')?;
    (rest.starts_with("ssl.") && broker_config(rest).is_some()).then_some(rest)
}

/// Why an unknown key is ignored.
fn unknown_key_warning(key: &str) -> String {
    let why = if key.starts_with("sasl.")
        || key.starts_with("ssl.")
        || key.starts_with("listener.name.")
        || key.starts_with("security.")
        || key.starts_with("principal.")
    {
        "not a security setting rafka knows (see README, Securing a cluster)"
    } else if key.starts_with("zookeeper.") {
        "rafka runs in KRaft mode only"
    } else if let Some(tk) = topic_config(key) {
        return match tk.synonyms.first() {
            Some((broker_key, _)) => format!(
                "ignoring unknown configuration {key}: it is a topic configuration; its broker \
                 default is {broker_key}"
            ),
            None => format!(
                "ignoring unknown configuration {key}: it is a topic configuration with no \
                 broker default"
            ),
        };
    } else {
        "not a configuration rafka knows"
    };
    format!("ignoring unknown configuration {key}: {why}")
}

/// The Rust types a configuration value converts to with [`KafkaConfig::get`].
pub trait FromValue: Sized {
    /// Convert a parsed value (`None` when the value is not of this type or out of range).
    fn from_value(v: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Option<i64> {
        v.as_i64()
    }
}

impl FromValue for i32 {
    fn from_value(v: &Value) -> Option<i32> {
        v.as_i64().and_then(|i| i32::try_from(i).ok())
    }
}

impl FromValue for i16 {
    fn from_value(v: &Value) -> Option<i16> {
        v.as_i64().and_then(|i| i16::try_from(i).ok())
    }
}

impl FromValue for bool {
    fn from_value(v: &Value) -> Option<bool> {
        v.as_bool()
    }
}

impl FromValue for f64 {
    fn from_value(v: &Value) -> Option<f64> {
        v.as_f64()
    }
}

impl FromValue for String {
    fn from_value(v: &Value) -> Option<String> {
        Some(v.to_string())
    }
}

/// Typed accessors for broker keys that always have a value (a non-null default).
macro_rules! accessors {
    ($( $(#[$doc:meta])* $name:ident : $ty:ty = $key:literal; )*) => {
        $(
            $(#[$doc])*
            #[doc = concat!("\n\n`", $key, "`.")]
            pub fn $name(&self) -> $ty {
                self.get::<$ty>($key).unwrap_or_default()
            }
        )*
    };
}

impl KafkaConfig {
    /// Read `file` (or, with `None`, start from [`single_node_props`]), apply `overrides` in
    /// order (they beat the file), and validate. Warnings (unknown keys, duplicates) are in
    /// [`KafkaConfig::warnings`].
    pub fn load(
        file: Option<&Path>,
        overrides: &[(String, String)],
    ) -> Result<KafkaConfig, ConfigError> {
        let mut warnings = Vec::new();
        let mut props = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                parse_properties(&text, &path.display().to_string(), &mut warnings)?
            }
            None => single_node_props(),
        };
        for (k, v) in overrides {
            props.insert(k.clone(), v.clone());
        }
        let mut config = KafkaConfig::from_props(props)?;
        warnings.append(&mut config.warnings);
        config.warnings = warnings;
        Ok(config)
    }

    /// [`KafkaConfig::load`] from the command line's pieces: an optional file and raw
    /// `key=value` override arguments.
    pub fn load_args(
        file: Option<&Path>,
        overrides: &[String],
    ) -> Result<KafkaConfig, ConfigError> {
        let overrides = overrides
            .iter()
            .map(|a| parse_override(a))
            .collect::<Result<Vec<_>, _>>()?;
        KafkaConfig::load(file, &overrides)
    }

    /// What `rafka` runs with no file: one combined broker+controller, node id 1, PLAINTEXT on
    /// localhost:9092, the controller on localhost:9093, data under `./rafka-data`, and Kafka's
    /// single-node example overrides (`offsets.topic.replication.factor=1`,
    /// `transaction.state.log.replication.factor=1`, `transaction.state.log.min.isr=1`,
    /// `min.insync.replicas=1`).
    pub fn default_single_node() -> KafkaConfig {
        #[allow(clippy::expect_used)]
        KafkaConfig::from_props(single_node_props())
            .expect("the built-in single-node configuration is valid")
    }

    /// Validate a complete set of static properties.
    pub fn from_props(props: BTreeMap<String, String>) -> Result<KafkaConfig, ConfigError> {
        let mut warnings = Vec::new();
        // 1. Every known key's type and range; unknown keys are warned about.
        for (key, value) in &props {
            match broker_config(key) {
                Some(def) => {
                    def.parse(value)
                        .map_err(|reason| ConfigError::invalid_value(key, value, reason))?;
                }
                // `listener.name.<name>.max.connections`: read by the socket server for the
                // listener it names (`network::NetworkConfig::from_kafka_config`).
                None if key.starts_with("listener.name.") && key.ends_with(".max.connections") => {
                    if !value.trim().parse::<i32>().is_ok_and(|v| v > 0) {
                        return Err(ConfigError::invalid_value(
                            key,
                            value,
                            "must be a number >= 1".to_owned(),
                        ));
                    }
                }
                // `listener.name.<name>.ssl.*`: the listener's own value of an ssl key, checked
                // as the key itself is (read through `KafkaConfig::listener_value`).
                None if listener_scoped_ssl_key(key).is_some() => {
                    if let Some(def) = listener_scoped_ssl_key(key).and_then(broker_config) {
                        def.parse(value)
                            .map_err(|reason| ConfigError::invalid_value(key, value, reason))?;
                    }
                }
                // `listener.name.<name>.[<mechanism>.]<sasl key>`: read per listener (and
                // mechanism) by `config::sasl`.
                None if key.starts_with("listener.name.")
                    && listener_keys::is_listener_sasl_key(key) => {}
                None => warnings.push(unknown_key_warning(key)),
            }
        }
        let mut config = KafkaConfig {
            static_props: props,
            dynamic: DynamicBrokerConfigs::default(),
            warnings,
            node_id: -1,
            roles: ProcessRoles::default(),
            protocol_map: BTreeMap::new(),
            listeners: Vec::new(),
            advertised_broker: Vec::new(),
            advertised_controller: Vec::new(),
            controller_listener_names: Vec::new(),
            inter_broker_listener_name: String::new(),
            voters: Vec::new(),
            bootstrap_servers: Vec::new(),
            log_dirs: Vec::new(),
            metadata_log_dir: PathBuf::new(),
        };
        // 2. How the keys fit together (Kafka's KafkaConfig.validateValues).
        config.derive()?;
        Ok(config)
    }

    /// Compute the derived fields and run the cross-key checks.
    fn derive(&mut self) -> Result<(), ConfigError> {
        self.derive_identity()?;
        self.check_log_settings()?;
        self.derive_log_dirs()?;
        self.derive_quorum()?;
        self.derive_listeners()?;
        Ok(())
    }

    fn derive_identity(&mut self) -> Result<(), ConfigError> {
        self.roles = endpoints::parse_roles(&self.string("process.roles")).map_err(|r| {
            ConfigError::invalid_value("process.roles", &self.string("process.roles"), r)
        })?;
        if !self.roles.broker && !self.roles.controller {
            return Err(ConfigError::Missing {
                key: "process.roles".into(),
                reason: "rafka runs in KRaft mode only; set process.roles=broker,controller \
                         (combined), broker or controller"
                    .into(),
            });
        }
        let node_id = self.get::<i32>("node.id").unwrap_or(-1);
        let broker_id = self.get::<i32>("broker.id").unwrap_or(-1);
        self.node_id = match (node_id, broker_id) {
            (-1, b) => b,
            (n, -1) => n,
            (n, b) if n == b => n,
            (n, b) => {
                return Err(ConfigError::invalid(
                    "node.id",
                    format!("node.id ({n}) must be the same as broker.id ({b}) when both are set"),
                ))
            }
        };
        if self.node_id < 0 {
            return Err(ConfigError::Missing {
                key: "node.id".into(),
                reason: format!(
                    "a non-negative node id is required when process.roles is set (got {})",
                    self.node_id
                ),
            });
        }
        Ok(())
    }

    fn check_log_settings(&self) -> Result<(), ConfigError> {
        let roll = self.log_roll_ms();
        if roll < 1 {
            return Err(ConfigError::invalid_value(
                "log.roll.ms",
                &roll.to_string(),
                "log.roll.ms must be greater than or equal to 1",
            ));
        }
        let jitter = self
            .resolve_broker_synonyms("segment.jitter.ms")
            .unwrap_or(0);
        if jitter < 0 {
            return Err(ConfigError::invalid_value(
                "log.roll.jitter.ms",
                &jitter.to_string(),
                "log.roll.jitter.ms must be greater than or equal to 0",
            ));
        }
        let retention = self.log_retention_ms();
        if retention != -1 && retention < 1 {
            return Err(ConfigError::invalid_value(
                "log.retention.ms",
                &retention.to_string(),
                "log.retention.ms must be unlimited (-1) or, greater than or equal to 1",
            ));
        }
        let threads = self.get::<i64>("log.cleaner.threads").unwrap_or(1);
        let dedupe = self
            .get::<i64>("log.cleaner.dedupe.buffer.size")
            .unwrap_or(0);
        if threads > 0 && dedupe / threads <= 1024 * 1024 {
            return Err(ConfigError::invalid_value(
                "log.cleaner.dedupe.buffer.size",
                &dedupe.to_string(),
                "log.cleaner.dedupe.buffer.size must be at least 1MB per cleaner thread",
            ));
        }
        let wait = self.replica_fetch_wait_max_ms();
        if wait
            > self
                .get::<i32>("replica.socket.timeout.ms")
                .unwrap_or(30_000)
        {
            return Err(ConfigError::invalid(
                "replica.socket.timeout.ms",
                "replica.socket.timeout.ms should always be at least replica.fetch.wait.max.ms \
                 to prevent unnecessary socket timeouts",
            ));
        }
        if i64::from(wait) > self.replica_lag_time_max_ms() {
            return Err(ConfigError::invalid(
                "replica.fetch.wait.max.ms",
                "replica.fetch.wait.max.ms should always be less than or equal to \
                 replica.lag.time.max.ms to prevent frequent changes in ISR",
            ));
        }
        if self
            .static_props
            .contains_key("security.inter.broker.protocol")
            && self.static_props.contains_key("inter.broker.listener.name")
        {
            return Err(ConfigError::invalid(
                "inter.broker.listener.name",
                "only one of inter.broker.listener.name and security.inter.broker.protocol should be set",
            ));
        }
        Ok(())
    }

    fn derive_log_dirs(&mut self) -> Result<(), ConfigError> {
        let (key, raw) = match self.get::<String>("log.dirs") {
            Some(dirs) => ("log.dirs", dirs),
            None => ("log.dir", self.string("log.dir")),
        };
        let mut dirs: Vec<PathBuf> = Vec::new();
        for d in parse_list(&raw) {
            if d.is_empty() {
                return Err(ConfigError::invalid_value(
                    key,
                    &raw,
                    "empty log directory in the list",
                ));
            }
            let p = PathBuf::from(&d);
            if dirs.contains(&p) {
                return Err(ConfigError::invalid_value(
                    key,
                    &raw,
                    format!("duplicate log directory {d}"),
                ));
            }
            dirs.push(p);
        }
        let Some(first) = dirs.first().cloned() else {
            return Err(ConfigError::Missing {
                key: "log.dirs".into(),
                reason: "at least one log directory must be defined via log.dirs or log.dir".into(),
            });
        };
        self.metadata_log_dir = match self.get::<String>("metadata.log.dir") {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => first,
        };
        self.log_dirs = dirs;
        Ok(())
    }

    fn derive_quorum(&mut self) -> Result<(), ConfigError> {
        let raw = self.string("controller.quorum.voters");
        self.voters = endpoints::parse_voters(&raw)
            .map_err(|r| ConfigError::invalid_value("controller.quorum.voters", &raw, r))?;
        let raw = self.string("controller.quorum.bootstrap.servers");
        self.bootstrap_servers = endpoints::parse_bootstrap_servers(&raw).map_err(|r| {
            ConfigError::invalid_value("controller.quorum.bootstrap.servers", &raw, r)
        })?;
        if self.voters.is_empty() && self.bootstrap_servers.is_empty() {
            return Err(ConfigError::Missing {
                key: "controller.quorum.voters".into(),
                reason: "with process.roles set, either controller.quorum.voters must list the \
                         controllers (id@host:port,...) or controller.quorum.bootstrap.servers \
                         must list bootstrap controllers (host:port,...)"
                    .into(),
            });
        }
        let voter_ids: Vec<i32> = self.voters.iter().map(|v| v.id).collect();
        let in_voters = voter_ids.contains(&self.node_id);
        if self.roles.controller && !voter_ids.is_empty() && !in_voters {
            return Err(ConfigError::invalid(
                "controller.quorum.voters",
                format!(
                    "if process.roles contains the 'controller' role, the node id {} must be \
                     included in the set of voters controller.quorum.voters={voter_ids:?}",
                    self.node_id
                ),
            ));
        }
        if !self.roles.controller && in_voters {
            return Err(ConfigError::invalid(
                "controller.quorum.voters",
                format!(
                    "if process.roles contains just the 'broker' role, the node id {} must not be \
                     included in the set of voters controller.quorum.voters={voter_ids:?}",
                    self.node_id
                ),
            ));
        }
        Ok(())
    }

    fn derive_listeners(&mut self) -> Result<(), ConfigError> {
        self.controller_listener_names = parse_list(&self.string("controller.listener.names"))
            .into_iter()
            .map(|n| n.to_ascii_uppercase())
            .collect();
        let cln = self.controller_listener_names.clone();

        // Kafka's effectiveListenerSecurityProtocolMap.
        let map_raw = self.string("listener.security.protocol.map");
        let mut map = endpoints::parse_protocol_map(&map_raw).map_err(|r| {
            ConfigError::invalid_value("listener.security.protocol.map", &map_raw, r)
        })?;
        let listeners_raw = self.string("listeners");
        if !self
            .static_props
            .contains_key("listener.security.protocol.map")
        {
            let ssl_or_sasl = |n: &str| matches!(n, "SSL" | "SASL_SSL" | "SASL_PLAINTEXT");
            let listener_names: Vec<String> = parse_list(&listeners_raw)
                .iter()
                .filter_map(|l| endpoints::parse_listener(l).ok().map(|(n, _, _)| n))
                .collect();
            if !cln.iter().any(|n| ssl_or_sasl(n)) && !listener_names.iter().any(|n| ssl_or_sasl(n))
            {
                for name in &cln {
                    map.entry(name.clone())
                        .or_insert(SecurityProtocol::Plaintext);
                }
            }
        }
        self.protocol_map = map;

        self.listeners = endpoints::parse_listeners(&listeners_raw, &self.protocol_map, true)
            .map_err(|r| ConfigError::invalid_value("listeners", &listeners_raw, r))?;
        if self.listeners.is_empty() {
            return Err(ConfigError::Missing {
                key: "listeners".into(),
                reason: "at least one listener NAME://host:port is required".into(),
            });
        }
        let advertised_raw = self.get::<String>("advertised.listeners");
        let advertised = match &advertised_raw {
            Some(raw) => endpoints::parse_listeners(raw, &self.protocol_map, false)
                .map_err(|r| ConfigError::invalid_value("advertised.listeners", raw, r))?,
            None => self.listeners.clone(),
        };
        let hostname = std::cell::OnceCell::new();
        let fill_host = |mut e: Endpoint| -> Endpoint {
            if e.host.is_empty() {
                e.host = hostname.get_or_init(local_hostname).clone();
            }
            e
        };
        let is_controller = |e: &Endpoint| cln.contains(&e.listener_name);
        let listener_names: BTreeSet<&str> = self
            .listeners
            .iter()
            .map(|l| l.listener_name.as_str())
            .collect();

        self.advertised_broker = advertised
            .iter()
            .filter(|e| !is_controller(e))
            .cloned()
            .map(&fill_host)
            .collect();
        self.advertised_controller = cln
            .iter()
            .filter_map(|name| {
                advertised
                    .iter()
                    .find(|e| &e.listener_name == name)
                    .or_else(|| self.listeners.iter().find(|e| &e.listener_name == name))
                    .cloned()
                    .map(&fill_host)
            })
            .collect();

        let roles = self.roles;
        if roles.broker && !roles.controller {
            if cln.is_empty() {
                return Err(ConfigError::Missing {
                    key: "controller.listener.names".into(),
                    reason: "controller.listener.names must contain at least one value when \
                             running KRaft with just the broker role"
                        .into(),
                });
            }
            if let Some(l) = self.listeners.iter().find(|l| is_controller(l)) {
                return Err(ConfigError::invalid(
                    "controller.listener.names",
                    format!(
                        "controller.listener.names must not contain a value appearing in the \
                         'listeners' configuration when running KRaft with just the broker role \
                         ({} is both)",
                        l.listener_name
                    ),
                ));
            }
            for name in &cln {
                if !self.protocol_map.contains_key(name) {
                    return Err(ConfigError::invalid(
                        "listener.security.protocol.map",
                        format!(
                            "controller listener with name {name} defined in \
                             controller.listener.names not found in \
                             listener.security.protocol.map"
                        ),
                    ));
                }
            }
            if cln.len() > 1 {
                self.warnings.push(format!(
                    "controller.listener.names has multiple entries; only the first will be used \
                     since process.roles=broker: {cln:?}"
                ));
            }
        }
        if roles.controller {
            if self.advertised_controller.is_empty() {
                return Err(ConfigError::invalid(
                    "controller.listener.names",
                    "controller.listener.names must contain at least one value appearing in the \
                     'listeners' configuration when running the KRaft controller role",
                ));
            }
            if let Some(name) = cln.iter().find(|n| !listener_names.contains(n.as_str())) {
                return Err(ConfigError::invalid(
                    "controller.listener.names",
                    format!(
                        "controller.listener.names must only contain values appearing in the \
                         'listeners' configuration when running the KRaft controller role \
                         ({name} does not)"
                    ),
                ));
            }
            if !roles.broker {
                if let Some(l) = self.listeners.iter().find(|l| !is_controller(l)) {
                    return Err(ConfigError::invalid(
                        "listeners",
                        format!(
                            "the listeners config must only contain KRaft controller listeners \
                             from controller.listener.names when process.roles=controller \
                             ({} is not one)",
                            l.listener_name
                        ),
                    ));
                }
            }
        }

        // Inter-broker listener.
        self.inter_broker_listener_name = match self.get::<String>("inter.broker.listener.name") {
            Some(name) => {
                let name = name.to_ascii_uppercase();
                if !self.protocol_map.contains_key(&name) {
                    return Err(ConfigError::invalid(
                        "inter.broker.listener.name",
                        format!(
                            "listener with name {name} defined in inter.broker.listener.name not \
                             found in listener.security.protocol.map"
                        ),
                    ));
                }
                name
            }
            None => self.string("security.inter.broker.protocol"),
        };
        if roles.broker {
            if self.advertised_broker.is_empty() {
                return Err(ConfigError::invalid(
                    "listeners",
                    "there must be at least one broker listener (one not named in \
                     controller.listener.names); perhaps all listeners appear in \
                     controller.listener.names?",
                ));
            }
            let adv_names: Vec<&str> = self
                .advertised_broker
                .iter()
                .map(|e| e.listener_name.as_str())
                .collect();
            if !adv_names.contains(&self.inter_broker_listener_name.as_str()) {
                return Err(ConfigError::invalid(
                    "inter.broker.listener.name",
                    format!(
                        "inter.broker.listener.name must be a listener name defined in \
                         advertised.listeners; the valid options based on currently configured \
                         listeners are {}",
                        adv_names.join(",")
                    ),
                ));
            }
            if let Some(n) = adv_names.iter().find(|n| !listener_names.contains(*n)) {
                return Err(ConfigError::invalid(
                    "advertised.listeners",
                    format!(
                        "advertised.listeners listener names must be equal to or a subset of the \
                         ones defined in listeners ({n} is not in listeners)"
                    ),
                ));
            }
        }
        if self
            .advertised_broker
            .iter()
            .chain(&self.advertised_controller)
            .any(|e| e.host == "0.0.0.0" || e.host == "::")
        {
            let key = if advertised_raw.is_some() {
                "advertised.listeners"
            } else {
                "listeners"
            };
            return Err(ConfigError::invalid(
                key,
                "advertised.listeners cannot use the nonroutable meta-address 0.0.0.0; use a \
                 routable IP address (or set advertised.listeners when binding 0.0.0.0)",
            ));
        }
        Ok(())
    }

    // ---- Raw and typed values ----

    /// The static properties (file + overrides), raw, unknown keys included.
    pub fn static_props(&self) -> &BTreeMap<String, String> {
        &self.static_props
    }

    /// Warnings found while loading (unknown keys, duplicate keys, ...): log each one.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The raw value of a broker key in force and its source (dynamic per-broker, dynamic
    /// default, static, Kafka's default); `None` when it has none (Kafka's `null`).
    pub fn raw(&self, name: &str) -> Option<(&str, ConfigSource)> {
        if let Some(v) = self.dynamic.per_broker.get(name) {
            return Some((v, ConfigSource::DynamicBrokerConfig));
        }
        if let Some(v) = self.dynamic.cluster_default.get(name) {
            return Some((v, ConfigSource::DynamicDefaultBrokerConfig));
        }
        if let Some(v) = self.static_props.get(name) {
            return Some((v, ConfigSource::StaticBrokerConfig));
        }
        broker_config(name)
            .and_then(|d| d.default)
            .map(|d| (d, ConfigSource::DefaultConfig))
    }

    /// A listener's own value of `key`, as Kafka's per-listener overrides work: the first of
    /// `listener.name.<listener>.<key>` (the listener's name in lower case, as Kafka spells
    /// these keys) and `key` itself (through [`KafkaConfig::raw`]). Used for the listener-scoped
    /// security keys (`ssl.*`, `sasl.*`, `<mechanism>.sasl.jaas.config`, `connections.max.reauth.ms`).
    /// A listener-prefixed key set dynamically on this broker (the dynamic SSL update) comes
    /// first.
    pub fn listener_value(&self, listener: &str, key: &str) -> Option<String> {
        let scoped = format!("listener.name.{}.{key}", listener.to_ascii_lowercase());
        if let Some(v) = self.dynamic.per_broker.get(&scoped) {
            return Some(v.clone());
        }
        if let Some(v) = self.static_props.get(&scoped) {
            return Some(v.clone());
        }
        self.raw(key).map(|(v, _)| v.to_owned())
    }

    /// The parsed value of a known broker key in force; `None` for an unknown key or when the
    /// key has no value (Kafka's `null`).
    pub fn value(&self, name: &str) -> Option<Value> {
        let def = broker_config(name)?;
        let (raw, _) = self.raw(name)?;
        def.parse(raw)
            .ok()
            .or_else(|| def.default.and_then(|d| def.parse(d).ok()))
    }

    /// A known broker key's value as `T` (i16, i32, i64, bool, f64, String).
    pub fn get<T: FromValue>(&self, name: &str) -> Option<T> {
        self.value(name).and_then(|v| T::from_value(&v))
    }

    /// The bounds group configs must stay within: `group.consumer.min/max.session.timeout.ms`
    /// and `group.consumer.min/max.heartbeat.interval.ms` (rafka has no `group.share.*` keys:
    /// Kafka's defaults).
    pub fn group_config_bounds(&self) -> GroupConfigBounds {
        let int = |name: &str, default: i64| self.get::<i32>(name).map_or(default, i64::from);
        let defaults = GroupConfigBounds::default();
        GroupConfigBounds {
            consumer_session_timeout_ms: (
                int(
                    "group.consumer.min.session.timeout.ms",
                    defaults.consumer_session_timeout_ms.0,
                ),
                int(
                    "group.consumer.max.session.timeout.ms",
                    defaults.consumer_session_timeout_ms.1,
                ),
            ),
            consumer_heartbeat_interval_ms: (
                int(
                    "group.consumer.min.heartbeat.interval.ms",
                    defaults.consumer_heartbeat_interval_ms.0,
                ),
                int(
                    "group.consumer.max.heartbeat.interval.ms",
                    defaults.consumer_heartbeat_interval_ms.1,
                ),
            ),
            ..defaults
        }
    }

    /// Whether `group.coordinator.rebalance.protocols` offers the consumer protocol (KIP-848):
    /// without it ConsumerGroupHeartbeat and ConsumerGroupDescribe are UNSUPPORTED_VERSION.
    pub fn consumer_protocol_enabled(&self) -> bool {
        self.get_list("group.coordinator.rebalance.protocols")
            .iter()
            .any(|p| p == "consumer")
    }

    /// A LIST key's elements (empty when unset).
    pub fn get_list(&self, name: &str) -> Vec<String> {
        match self.value(name) {
            Some(Value::List(l)) => l,
            Some(other) => parse_list(&other.to_string()),
            None => Vec::new(),
        }
    }

    fn string(&self, name: &str) -> String {
        self.get::<String>(name).unwrap_or_default()
    }

    /// The authorizer `authorizer.class.name` turns on, with `super.users` and
    /// `allow.everyone.if.no.acl.found`; `None` (everything allowed) when it is empty.
    /// Validation has already refused any class but Kafka's StandardAuthorizer.
    pub fn authorizer(&self) -> Option<rafka_security::authorizer::StandardAuthorizer> {
        if self.string("authorizer.class.name").is_empty() {
            return None;
        }
        Some(rafka_security::authorizer::StandardAuthorizer::new(
            &self.string("super.users"),
            self.get::<bool>("allow.everyone.if.no.acl.found")
                .unwrap_or(false),
        ))
    }

    // ---- Identity, roles, quorum, listeners, directories ----

    /// `node.id` (or `broker.id` when only that is set).
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// `process.roles`.
    pub fn process_roles(&self) -> ProcessRoles {
        self.roles
    }

    /// Whether this node serves clients.
    pub fn is_broker(&self) -> bool {
        self.roles.broker
    }

    /// Whether this node is a controller (a quorum voter).
    pub fn is_controller(&self) -> bool {
        self.roles.controller
    }

    /// `cluster.id`, if configured.
    pub fn cluster_id(&self) -> Option<String> {
        self.get::<String>("cluster.id")
    }

    /// `broker.rack`, if configured.
    pub fn rack(&self) -> Option<String> {
        self.get::<String>("broker.rack")
    }

    /// `controller.quorum.voters`.
    pub fn quorum_voters(&self) -> &[Voter] {
        &self.voters
    }

    /// `controller.quorum.bootstrap.servers`.
    pub fn quorum_bootstrap_servers(&self) -> &[HostPort] {
        &self.bootstrap_servers
    }

    /// `listeners`: every endpoint this node binds (broker and controller ones). A port of 0
    /// is chosen by the OS: the network layer must then advertise the bound port.
    pub fn listeners(&self) -> &[Endpoint] {
        &self.listeners
    }

    /// `metrics.enable` and `metrics.partition.level.enable`.
    pub fn metrics_config(&self) -> crate::metrics::MetricsConfig {
        crate::metrics::MetricsConfig {
            enabled: self.get::<bool>("metrics.enable").unwrap_or(true),
            partition_level: self
                .get::<bool>("metrics.partition.level.enable")
                .unwrap_or(false),
        }
    }

    /// `http.listeners`: where the HTTP listener binds (host, port).
    pub fn http_listeners(&self) -> Vec<(String, u16)> {
        // Validated at load (`check_http_listeners`).
        endpoints::parse_http_listeners(&self.get_list("http.listeners").join(","))
            .unwrap_or_default()
    }

    /// The listeners serving clients and other brokers (those not in
    /// `controller.listener.names`).
    pub fn broker_listeners(&self) -> Vec<&Endpoint> {
        self.listeners
            .iter()
            .filter(|l| !self.controller_listener_names.contains(&l.listener_name))
            .collect()
    }

    /// The controller listeners this node binds (in `controller.listener.names` order).
    pub fn controller_listeners(&self) -> Vec<&Endpoint> {
        self.controller_listener_names
            .iter()
            .filter_map(|n| self.listeners.iter().find(|l| &l.listener_name == n))
            .collect()
    }

    /// What this broker publishes in Metadata and its registration: `advertised.listeners`
    /// (default: `listeners`) without the controller listeners, an empty host replaced by the
    /// machine's host name.
    pub fn advertised_listeners(&self) -> &[Endpoint] {
        &self.advertised_broker
    }

    /// The advertised controller endpoints (for controller registration / DescribeQuorum).
    pub fn advertised_controller_listeners(&self) -> &[Endpoint] {
        &self.advertised_controller
    }

    /// `controller.listener.names`, upper-cased.
    pub fn controller_listener_names(&self) -> &[String] {
        &self.controller_listener_names
    }

    /// The listener brokers use to reach each other.
    pub fn inter_broker_listener_name(&self) -> &str {
        &self.inter_broker_listener_name
    }

    /// The effective `listener.security.protocol.map` (names upper-cased; controller listener
    /// names map to PLAINTEXT when the map is not set, as in Kafka's KRaft mode).
    pub fn listener_security_protocol_map(&self) -> &BTreeMap<String, SecurityProtocol> {
        &self.protocol_map
    }

    /// `log.dirs` (or `log.dir`), in order.
    pub fn log_dirs(&self) -> &[PathBuf] {
        &self.log_dirs
    }

    /// `metadata.log.dir`, defaulting to the first log directory.
    pub fn metadata_log_dir(&self) -> &Path {
        &self.metadata_log_dir
    }

    /// Create every log directory (and the metadata log directory) if missing and check that
    /// each is a writable directory: the start-up check behind "unwritable log dir stops the
    /// start with one line".
    pub fn check_log_dirs(&self) -> Result<(), ConfigError> {
        let key = if self.static_props.contains_key("log.dirs") {
            "log.dirs"
        } else {
            "log.dir"
        };
        let mut dirs: Vec<(&str, &Path)> =
            self.log_dirs.iter().map(|d| (key, d.as_path())).collect();
        if !self.log_dirs.contains(&self.metadata_log_dir) {
            dirs.push(("metadata.log.dir", &self.metadata_log_dir));
        }
        for (key, dir) in dirs {
            let fail = |e: std::io::Error| ConfigError::LogDir {
                key: key.to_string(),
                dir: dir.display().to_string(),
                reason: e.to_string(),
            };
            std::fs::create_dir_all(dir).map_err(fail)?;
            let probe = dir.join(".rafka-write-check");
            std::fs::write(&probe, b"ok").map_err(fail)?;
            std::fs::remove_file(&probe).map_err(fail)?;
        }
        Ok(())
    }

    // ---- Log defaults ----

    /// `log.retention.ms`, else `log.retention.minutes` × 60 000, else `log.retention.hours` ×
    /// 3 600 000 (Kafka's `logRetentionTimeMillis`; negative means forever: -1).
    pub fn log_retention_ms(&self) -> i64 {
        self.resolve_broker_synonyms("retention.ms")
            .map(|v| if v < 0 { -1 } else { v })
            .unwrap_or(7 * 24 * 3_600_000)
    }

    /// `log.roll.ms`, else `log.roll.hours` × 3 600 000.
    pub fn log_roll_ms(&self) -> i64 {
        self.resolve_broker_synonyms("segment.ms")
            .unwrap_or(7 * 24 * 3_600_000)
    }

    /// `log.flush.interval.ms`, else `log.flush.scheduler.interval.ms`.
    pub fn log_flush_interval_ms(&self) -> i64 {
        self.resolve_broker_synonyms("flush.ms").unwrap_or(i64::MAX)
    }

    /// The value of a topic configuration from the broker synonyms alone (as an integer).
    fn resolve_broker_synonyms(&self, topic_key: &str) -> Option<i64> {
        self.resolve_topic(topic_key, &BTreeMap::new())
            .value
            .and_then(|v| v.parse().ok())
    }

    /// The storage [`LogConfig`] from the broker defaults alone (a topic without overrides).
    pub fn log_config(&self) -> LogConfig {
        self.topic_log_config(&BTreeMap::new())
    }

    /// The storage [`LogConfig`] for a topic: its overrides on top of the broker defaults (the
    /// live log is reconfigured with this after IncrementalAlterConfigs). An override that does
    /// not parse (it cannot, once validated) is ignored.
    // `..base` keeps this compiling when the storage crate adds a setting.
    #[allow(clippy::needless_update)]
    pub fn topic_log_config(&self, overrides: &BTreeMap<String, String>) -> LogConfig {
        let base = LogConfig::default();
        let int = |name: &str| -> Option<i64> {
            self.resolve_topic(name, overrides)
                .value
                .and_then(|v| v.parse().ok())
        };
        let ts_type = self
            .resolve_topic("message.timestamp.type", overrides)
            .value;
        LogConfig {
            segment_bytes: int("segment.bytes")
                .and_then(|v| u64::try_from(v).ok())
                .unwrap_or(base.segment_bytes),
            segment_ms: int("segment.ms").unwrap_or(base.segment_ms),
            segment_index_bytes: int("segment.index.bytes")
                .and_then(|v| u64::try_from(v).ok())
                .unwrap_or(base.segment_index_bytes),
            index_interval_bytes: int("index.interval.bytes")
                .and_then(|v| u64::try_from(v).ok())
                .unwrap_or(base.index_interval_bytes),
            max_message_bytes: int("max.message.bytes")
                .and_then(|v| usize::try_from(v).ok())
                .unwrap_or(base.max_message_bytes),
            retention_ms: int("retention.ms").unwrap_or(base.retention_ms),
            retention_bytes: int("retention.bytes").unwrap_or(base.retention_bytes),
            flush_messages: int("flush.messages").unwrap_or(base.flush_messages),
            flush_ms: int("flush.ms").unwrap_or(base.flush_ms),
            log_append_time: ts_type.as_deref() == Some("LogAppendTime"),
            message_timestamp_before_max_ms: int("message.timestamp.before.max.ms")
                .unwrap_or(base.message_timestamp_before_max_ms),
            message_timestamp_after_max_ms: int("message.timestamp.after.max.ms")
                .unwrap_or(base.message_timestamp_after_max_ms),
            file_delete_delay_ms: int("file.delete.delay.ms").unwrap_or(base.file_delete_delay_ms),
            cleanup_policy: self
                .resolve_topic("cleanup.policy", overrides)
                .value
                .map_or(base.cleanup_policy, |v| CleanupPolicy::parse(&v)),
            delete_retention_ms: int("delete.retention.ms").unwrap_or(base.delete_retention_ms),
            min_cleanable_dirty_ratio: self
                .resolve_topic("min.cleanable.dirty.ratio", overrides)
                .value
                .and_then(|v| v.parse().ok())
                .unwrap_or(base.min_cleanable_dirty_ratio),
            min_compaction_lag_ms: int("min.compaction.lag.ms")
                .unwrap_or(base.min_compaction_lag_ms),
            max_compaction_lag_ms: int("max.compaction.lag.ms")
                .unwrap_or(base.max_compaction_lag_ms),
            ..base
        }
    }

    /// A topic configuration's value in force (normalized as Kafka prints it), with its
    /// synonyms chain. `None` for an unknown key.
    pub fn topic_value(&self, name: &str, overrides: &BTreeMap<String, String>) -> Option<String> {
        topic_config(name)?;
        self.resolve_topic(name, overrides).value
    }

    fn resolve_topic(&self, name: &str, overrides: &BTreeMap<String, String>) -> Resolved {
        let Some(tk) = topic_config(name) else {
            return Resolved {
                value: None,
                source: ConfigSource::Unknown,
                synonyms: Vec::new(),
            };
        };
        let mut chain: Vec<(DescribedSynonym, Option<String>)> = Vec::new();
        if let Some(raw) = overrides.get(name) {
            if let Ok(v) = tk.key.parse(raw) {
                let value = v.to_string();
                chain.push((
                    DescribedSynonym {
                        name: name.to_string(),
                        value: Some(value.clone()),
                        source: ConfigSource::DynamicTopicConfig,
                    },
                    Some(value),
                ));
            }
        }
        for (layer, source) in self.layers() {
            for (syn, conv) in tk.synonyms {
                let raw = match layer {
                    Some(map) => map.get(*syn).map(String::as_str),
                    None => broker_config(syn).and_then(|d| d.default),
                };
                let Some(raw) = raw else { continue };
                let Some(def) = broker_config(syn) else {
                    continue;
                };
                let Ok(parsed) = def.parse(raw) else { continue };
                let shown = parsed.to_string();
                let mut converted = conv.apply(&shown);
                if name == "retention.ms" && converted.parse::<i64>().is_ok_and(|v| v < 0) {
                    converted = "-1".to_string();
                }
                chain.push((
                    DescribedSynonym {
                        name: syn.to_string(),
                        value: Some(shown),
                        source,
                    },
                    Some(converted),
                ));
            }
        }
        let (value, source) = match chain.first() {
            Some((syn, converted)) => (converted.clone(), syn.source),
            None => (
                tk.key
                    .default
                    .and_then(|d| tk.key.parse(d).ok())
                    .map(|v| v.to_string()),
                ConfigSource::DefaultConfig,
            ),
        };
        Resolved {
            value,
            source,
            synonyms: chain.into_iter().map(|(s, _)| s).collect(),
        }
    }

    /// The broker layers in precedence order; `None` is the defaults layer.
    fn layers(&self) -> [(Option<&BTreeMap<String, String>>, ConfigSource); 4] {
        [
            (
                Some(&self.dynamic.per_broker),
                ConfigSource::DynamicBrokerConfig,
            ),
            (
                Some(&self.dynamic.cluster_default),
                ConfigSource::DynamicDefaultBrokerConfig,
            ),
            (Some(&self.static_props), ConfigSource::StaticBrokerConfig),
            (None, ConfigSource::DefaultConfig),
        ]
    }

    // ---- Dynamic configuration ----

    /// The dynamic broker configurations in force.
    pub fn dynamic(&self) -> &DynamicBrokerConfigs {
        &self.dynamic
    }

    /// Install the dynamic broker configurations (from the metadata image). Entries that are
    /// unknown, not dynamically updatable at that level or invalid are left out and reported in
    /// the returned warnings: the metadata log is the truth, and a value this version cannot
    /// use must not stop the broker.
    pub fn set_dynamic(&mut self, dynamic: DynamicBrokerConfigs) -> Vec<String> {
        let mut warnings = Vec::new();
        let mut keep = |map: BTreeMap<String, String>, per_broker: bool| {
            map.into_iter()
                .filter(
                    |(k, v)| match validate_dynamic_broker_config(k, Some(v), per_broker) {
                        Ok(()) => true,
                        Err(e) => {
                            warnings.push(format!("ignoring dynamic broker config {k}: {e}"));
                            false
                        }
                    },
                )
                .collect::<BTreeMap<_, _>>()
        };
        self.dynamic = DynamicBrokerConfigs {
            per_broker: keep(dynamic.per_broker, true),
            cluster_default: keep(dynamic.cluster_default, false),
        };
        warnings
    }

    // ---- DescribeConfigs ----

    /// DescribeConfigs for this broker (resource `BROKER` named by the node id): every broker
    /// configuration, set or not, plus unknown keys from the file (type UNKNOWN and sensitive,
    /// as Kafka lists them). `dynamic` is this broker's per-broker dynamic configurations as the
    /// caller knows them; they are layered over those installed with
    /// [`KafkaConfig::set_dynamic`] (pass an empty map to use only those).
    pub fn describe_broker(&self, dynamic: &BTreeMap<String, String>) -> Vec<DescribedConfig> {
        let merged;
        let this = if dynamic.is_empty() {
            self
        } else {
            let mut c = self.clone();
            for (k, v) in dynamic {
                if validate_dynamic_broker_config(k, Some(v), true).is_ok() {
                    c.dynamic.per_broker.insert(k.clone(), v.clone());
                }
            }
            merged = c;
            &merged
        };
        let mut out: Vec<DescribedConfig> = BROKER_CONFIGS
            .iter()
            .map(|def| this.describe_broker_key(def, false))
            .collect();
        for key in this.static_props.keys() {
            if broker_config(key).is_none() {
                out.push(DescribedConfig {
                    name: key.clone(),
                    value: None,
                    source: ConfigSource::StaticBrokerConfig,
                    read_only: true,
                    is_sensitive: true,
                    synonyms: vec![DescribedSynonym {
                        name: key.clone(),
                        value: None,
                        source: ConfigSource::StaticBrokerConfig,
                    }],
                    config_type: ConfigType::Unknown,
                    documentation: None,
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// DescribeConfigs for the cluster-wide default (resource `BROKER` with the empty name):
    /// only the dynamic defaults that are set, as Kafka lists them.
    pub fn describe_broker_defaults(&self) -> Vec<DescribedConfig> {
        self.dynamic
            .cluster_default
            .keys()
            .filter_map(|k| broker_config(k))
            .map(|def| self.describe_broker_key(def, true))
            .collect()
    }

    fn describe_broker_key(&self, def: &ConfigKey, defaults_only: bool) -> DescribedConfig {
        let sensitive = def.is_sensitive();
        let group = broker_synonym_group(def.name);
        let single = [def.name];
        let names: &[&str] = if group.is_empty() { &single } else { group };
        let mut synonyms = Vec::new();
        for (layer, source) in self.layers() {
            if defaults_only && source != ConfigSource::DynamicDefaultBrokerConfig {
                continue;
            }
            for n in names {
                let raw = match layer {
                    Some(map) => map.get(*n).map(String::as_str),
                    None => broker_config(n).and_then(|d| d.default),
                };
                if let Some(raw) = raw {
                    synonyms.push(DescribedSynonym {
                        name: n.to_string(),
                        value: (!sensitive).then(|| normalize(n, raw)),
                        source,
                    });
                }
            }
        }
        // Kafka drops the synonyms of higher precedence than the key itself.
        let first_own = synonyms
            .iter()
            .position(|s| s.name == def.name)
            .unwrap_or(synonyms.len());
        synonyms.drain(..first_own);
        let source = synonyms
            .first()
            .map(|s| s.source)
            .unwrap_or(ConfigSource::DefaultConfig);
        let value = if sensitive {
            None
        } else if defaults_only {
            self.dynamic
                .cluster_default
                .get(def.name)
                .map(|v| normalize(def.name, v))
        } else {
            self.raw(def.name).map(|(v, _)| normalize(def.name, v))
        };
        DescribedConfig {
            name: def.name.to_string(),
            value,
            source,
            read_only: def.read_only(),
            is_sensitive: sensitive,
            synonyms,
            config_type: def.ty,
            documentation: Some(def.documentation()),
        }
    }

    /// DescribeConfigs for a topic: every topic configuration with its value in force by
    /// Kafka's precedence (topic override → dynamic broker config → dynamic default → static
    /// broker config → default) and the whole synonyms chain.
    pub fn describe_topic(
        &self,
        topic_overrides: &BTreeMap<String, String>,
    ) -> Vec<DescribedConfig> {
        TOPIC_CONFIGS
            .iter()
            .map(|tk| {
                let r = self.resolve_topic(tk.key.name, topic_overrides);
                let sensitive = tk.key.is_sensitive();
                DescribedConfig {
                    name: tk.key.name.to_string(),
                    value: if sensitive { None } else { r.value },
                    source: r.source,
                    read_only: false,
                    is_sensitive: sensitive,
                    synonyms: r.synonyms,
                    config_type: tk.key.ty,
                    documentation: Some(tk.key.documentation()),
                }
            })
            .collect()
    }

    /// DescribeConfigs for a group (resource `GROUP`): every group configuration (Kafka's
    /// `GroupConfig`), its value the group's override (source GROUP_CONFIG), else the broker key
    /// it defaults from (`group.` + the key, with that key's source), else the key's own default;
    /// the synonym chain in that order, as Kafka's `ConfigHelper.createGroupConfigEntry`.
    pub fn describe_group(&self, overrides: &BTreeMap<String, String>) -> Vec<DescribedConfig> {
        GROUP_CONFIGS
            .iter()
            .map(|gk| {
                let name = gk.key.name;
                let mut synonyms = Vec::new();
                if let Some(v) = overrides.get(name).and_then(|raw| gk.key.parse(raw).ok()) {
                    synonyms.push(DescribedSynonym {
                        name: name.to_string(),
                        value: Some(v.to_string()),
                        source: ConfigSource::GroupConfig,
                    });
                }
                match gk.broker_synonym {
                    Some(syn) => {
                        for (layer, source) in self.layers() {
                            let raw = match layer {
                                Some(map) => map.get(syn).map(String::as_str),
                                None => broker_config(syn).and_then(|d| d.default),
                            };
                            let parsed = raw.and_then(|raw| gk.key.parse(raw).ok());
                            if let Some(v) = parsed {
                                synonyms.push(DescribedSynonym {
                                    name: syn.to_string(),
                                    value: Some(v.to_string()),
                                    source,
                                });
                            }
                        }
                    }
                    None => synonyms.extend(gk.key.default.map(|d| DescribedSynonym {
                        name: name.to_string(),
                        value: Some(d.to_string()),
                        source: ConfigSource::DefaultConfig,
                    })),
                }
                let (value, source) = synonyms
                    .first()
                    .map_or((None, ConfigSource::DefaultConfig), |s| {
                        (s.value.clone(), s.source)
                    });
                DescribedConfig {
                    name: name.to_string(),
                    value,
                    source,
                    read_only: false,
                    is_sensitive: false,
                    synonyms,
                    config_type: gk.key.ty,
                    documentation: Some(gk.key.documentation()),
                }
            })
            .collect()
    }

    accessors! {
        /// The largest request frame accepted.
        socket_request_max_bytes: i32 = "socket.request.max.bytes";
        /// The largest record batch accepted (broker default of `max.message.bytes`).
        message_max_bytes: i32 = "message.max.bytes";
        /// Idle connections are closed after this long.
        connections_max_idle_ms: i64 = "connections.max.idle.ms";
        /// SO_SNDBUF (-1: OS default).
        socket_send_buffer_bytes: i32 = "socket.send.buffer.bytes";
        /// SO_RCVBUF (-1: OS default).
        socket_receive_buffer_bytes: i32 = "socket.receive.buffer.bytes";
        /// The listen backlog.
        socket_listen_backlog_size: i32 = "socket.listen.backlog.size";
        /// Connection limit.
        max_connections: i32 = "max.connections";
        /// The HTTP listener's connection limit.
        http_max_connections: i32 = "http.max.connections";
        /// The HTTP listener's bound on a request's head and body.
        http_max_request_bytes: i32 = "http.max.request.bytes";
        /// How long the HTTP listener waits for a request's head.
        http_request_timeout_ms: i64 = "http.request.timeout.ms";
        /// Per-IP connection limit.
        max_connections_per_ip: i32 = "max.connections.per.ip";
        /// Default partitions of a new topic.
        num_partitions: i32 = "num.partitions";
        /// Default replication factor of a new topic.
        default_replication_factor: i32 = "default.replication.factor";
        /// Broker default of `min.insync.replicas`.
        min_insync_replicas: i32 = "min.insync.replicas";
        /// Whether Metadata for an unknown topic creates it.
        auto_create_topics_enable: bool = "auto.create.topics.enable";
        /// Whether DeleteTopics is allowed.
        delete_topic_enable: bool = "delete.topic.enable";
        /// Broker default of `unclean.leader.election.enable`.
        unclean_leader_election_enable: bool = "unclean.leader.election.enable";
        /// Whether preferred leaders are restored periodically.
        auto_leader_rebalance_enable: bool = "auto.leader.rebalance.enable";
        /// How often leader imbalance is checked.
        leader_imbalance_check_interval_seconds: i64 = "leader.imbalance.check.interval.seconds";
        /// Imbalance threshold in percent.
        leader_imbalance_per_broker_percentage: i32 = "leader.imbalance.per.broker.percentage";
        /// A broker's lease without heartbeats.
        broker_session_timeout_ms: i32 = "broker.session.timeout.ms";
        /// Time between broker heartbeats.
        broker_heartbeat_interval_ms: i32 = "broker.heartbeat.interval.ms";
        /// How long the first registration may take.
        initial_broker_registration_timeout_ms: i32 = "initial.broker.registration.timeout.ms";
        /// Raft election timeout.
        quorum_election_timeout_ms: i32 = "controller.quorum.election.timeout.ms";
        /// Raft fetch (heartbeat) timeout.
        quorum_fetch_timeout_ms: i32 = "controller.quorum.fetch.timeout.ms";
        /// Raft election backoff.
        quorum_election_backoff_max_ms: i32 = "controller.quorum.election.backoff.max.ms";
        /// Raft append linger.
        quorum_append_linger_ms: i32 = "controller.quorum.append.linger.ms";
        /// Raft request timeout.
        quorum_request_timeout_ms: i32 = "controller.quorum.request.timeout.ms";
        /// Raft retry backoff.
        quorum_retry_backoff_ms: i32 = "controller.quorum.retry.backoff.ms";
        /// Metadata log segment size.
        metadata_log_segment_bytes: i32 = "metadata.log.segment.bytes";
        /// Metadata log segment age.
        metadata_log_segment_ms: i64 = "metadata.log.segment.ms";
        /// Metadata retention size.
        metadata_max_retention_bytes: i64 = "metadata.max.retention.bytes";
        /// Metadata retention time.
        metadata_max_retention_ms: i64 = "metadata.max.retention.ms";
        /// Bytes between metadata snapshots.
        metadata_snapshot_max_new_record_bytes: i64 = "metadata.log.max.record.bytes.between.snapshots";
        /// Longest time between metadata snapshots.
        metadata_snapshot_max_interval_ms: i64 = "metadata.log.max.snapshot.interval.ms";
        /// No-op record interval of the active controller.
        metadata_max_idle_interval_ms: i32 = "metadata.max.idle.interval.ms";
        /// Time without catching up before leaving the ISR.
        replica_lag_time_max_ms: i64 = "replica.lag.time.max.ms";
        /// Follower fetch partition size.
        replica_fetch_max_bytes: i32 = "replica.fetch.max.bytes";
        /// Follower fetch max wait.
        replica_fetch_wait_max_ms: i32 = "replica.fetch.wait.max.ms";
        /// Follower fetch min bytes.
        replica_fetch_min_bytes: i32 = "replica.fetch.min.bytes";
        /// Follower fetch response size.
        replica_fetch_response_max_bytes: i32 = "replica.fetch.response.max.bytes";
        /// Follower backoff after an error.
        replica_fetch_backoff_ms: i32 = "replica.fetch.backoff.ms";
        /// Follower socket timeout.
        replica_socket_timeout_ms: i32 = "replica.socket.timeout.ms";
        /// SO_RCVBUF of follower fetch connections (-1: OS default).
        replica_socket_receive_buffer_bytes: i32 = "replica.socket.receive.buffer.bytes";
        /// High-watermark checkpoint interval.
        replica_high_watermark_checkpoint_interval_ms: i64 = "replica.high.watermark.checkpoint.interval.ms";
        /// Timeout of the broker's own requests (e.g. to the controller).
        request_timeout_ms: i32 = "request.timeout.ms";
        /// Fetch response size limit.
        fetch_max_bytes: i32 = "fetch.max.bytes";
        /// Incremental fetch session cache size (KIP-227).
        max_incremental_fetch_session_cache_slots: i32 = "max.incremental.fetch.session.cache.slots";
        /// Retention pass interval.
        log_retention_check_interval_ms: i64 = "log.retention.check.interval.ms";
        /// Recovery-point checkpoint interval.
        log_flush_offset_checkpoint_interval_ms: i32 = "log.flush.offset.checkpoint.interval.ms";
        /// Log-start-offset checkpoint interval.
        log_flush_start_offset_checkpoint_interval_ms: i32 = "log.flush.start.offset.checkpoint.interval.ms";
        /// Whether compacted topics are cleaned.
        log_cleaner_enable: bool = "log.cleaner.enable";
        /// The log cleaner's pause between passes.
        log_cleaner_backoff_ms: i64 = "log.cleaner.backoff.ms";
        /// The most the log cleaner's offset map holds.
        log_cleaner_dedupe_buffer_size: i64 = "log.cleaner.dedupe.buffer.size";
        /// The bound on open segment files and index maps (-1: from the process's limits).
        log_open_files_max: i32 = "log.open.files.max";
        /// Whether controlled shutdown moves leadership first.
        controlled_shutdown_enable: bool = "controlled.shutdown.enable";
        /// Partitions of `__consumer_offsets`.
        offsets_topic_num_partitions: i32 = "offsets.topic.num.partitions";
        /// Replication factor of `__consumer_offsets`.
        offsets_topic_replication_factor: i16 = "offsets.topic.replication.factor";
        /// Segment size of `__consumer_offsets`.
        offsets_topic_segment_bytes: i32 = "offsets.topic.segment.bytes";
        /// Retention of an empty group's offsets, in minutes.
        offsets_retention_minutes: i32 = "offsets.retention.minutes";
        /// Stale-offset scan interval.
        offsets_retention_check_interval_ms: i64 = "offsets.retention.check.interval.ms";
        /// Offset commit timeout.
        offsets_commit_timeout_ms: i32 = "offsets.commit.timeout.ms";
        /// Offset metadata size limit.
        offset_metadata_max_bytes: i32 = "offset.metadata.max.bytes";
        /// First-rebalance delay of a new group.
        group_initial_rebalance_delay_ms: i32 = "group.initial.rebalance.delay.ms";
        /// Smallest classic session timeout.
        group_min_session_timeout_ms: i32 = "group.min.session.timeout.ms";
        /// Largest classic session timeout.
        group_max_session_timeout_ms: i32 = "group.max.session.timeout.ms";
        /// Classic group size limit.
        group_max_size: i32 = "group.max.size";
        /// Replication factor of `__transaction_state`.
        transaction_state_log_replication_factor: i16 = "transaction.state.log.replication.factor";
        /// min ISR of `__transaction_state`.
        transaction_state_log_min_isr: i32 = "transaction.state.log.min.isr";
        /// Partitions of `__transaction_state`.
        transaction_state_log_num_partitions: i32 = "transaction.state.log.num.partitions";
        /// Segment size of `__transaction_state`.
        transaction_state_log_segment_bytes: i32 = "transaction.state.log.segment.bytes";
        /// Largest transaction timeout.
        transaction_max_timeout_ms: i32 = "transaction.max.timeout.ms";
        /// Idle transactional id expiry.
        transactional_id_expiration_ms: i32 = "transactional.id.expiration.ms";
        /// Idle producer id expiry.
        producer_id_expiration_ms: i32 = "producer.id.expiration.ms";
    }
}

struct Resolved {
    value: Option<String>,
    source: ConfigSource,
    synonyms: Vec<DescribedSynonym>,
}

/// A raw value as Kafka prints the parsed value (unknown keys and unparsable values as given).
fn normalize(name: &str, raw: &str) -> String {
    match broker_config(name).map(|d| d.parse(raw)) {
        Some(Ok(v)) => v.to_string(),
        _ => raw.trim().to_string(),
    }
}

/// Check one dynamic broker configuration change (IncrementalAlterConfigs / AlterConfigs on a
/// `BROKER` resource; `per_broker`: the resource names a broker, else it is the cluster-wide
/// default). `value` `None` is a deletion. The error is the message for INVALID_REQUEST /
/// INVALID_CONFIG.
pub fn validate_dynamic_broker_config(
    key: &str,
    value: Option<&str>,
    per_broker: bool,
) -> Result<(), String> {
    // Kafka's dynamic SSL update: a listener's keystore and truststore, per broker.
    if let Some((_, ssl_key)) = listener_keys::dynamic_listener_ssl_key(key) {
        if !per_broker {
            return Err(format!(
                "Cannot update these configs at default cluster level, broker id must be specified: {key}"
            ));
        }
        let def =
            broker_config(ssl_key).ok_or_else(|| format!("Unknown broker config name: {key}"))?;
        if let Some(value) = value {
            def.parse(value).map_err(|reason| {
                format!(
                    "Invalid value {} for configuration {key}: {reason}",
                    one_line(value.trim())
                )
            })?;
        }
        return Ok(());
    }
    let def = broker_config(key).ok_or_else(|| format!("Unknown broker config name: {key}"))?;
    match def.scope {
        DynamicScope::ReadOnly => {
            return Err(format!("Cannot update these configs dynamically: {key}"));
        }
        DynamicScope::PerBroker if !per_broker => {
            return Err(format!(
                "Cannot update these configs at default cluster level, broker id must be specified: {key}"
            ));
        }
        _ => {}
    }
    let Some(value) = value else { return Ok(()) };
    let parsed = def.parse(value).map_err(|reason| {
        format!(
            "Invalid value {} for configuration {key}: {reason}",
            one_line(value.trim())
        )
    })?;
    let n = parsed.as_i64();
    match key {
        "log.retention.ms" if n.is_some_and(|v| v != -1 && (0..1).contains(&v)) => {
            Err("log.retention.ms must be unlimited (-1) or, greater than or equal to 1".into())
        }
        "log.roll.ms" if n.is_some_and(|v| v < 1) => {
            Err("log.roll.ms must be greater than or equal to 1".into())
        }
        "log.roll.jitter.ms" if n.is_some_and(|v| v < 0) => {
            Err("log.roll.jitter.ms must be greater than or equal to 0".into())
        }
        _ => Ok(()),
    }
}
