//! The broker configuration table: every `server.properties` key rafka knows, with Kafka's
//! type, default, validator, importance, dynamic scope and a line of documentation (from
//! Kafka's `ServerConfigs`, `ServerLogConfigs`/`LogConfig.SERVER_CONFIG_DEF`, `KRaftConfigs`,
//! `QuorumConfig`, `SocketServerConfigs`, `ReplicationConfigs`, `CleanerConfig`,
//! `GroupCoordinatorConfig`, `TransactionLogConfig`, `TransactionStateManagerConfig`,
//! `ShareCoordinatorConfig`, `RemoteLogManagerConfig` and `MetricConfigs`).
//!
//! Dynamic scope follows Kafka's `DynamicBrokerConfig`: the broker-side synonyms of topic
//! configurations (`log.retention.ms`, `log.segment.bytes`, `message.max.bytes`, ...) are
//! cluster-wide dynamic, as in Kafka (the hour/minute variants such as `log.retention.hours`
//! are read-only there too). Where Kafka can also reconfigure something rafka cannot change
//! live (listeners, thread pools, connection quotas, SSL), rafka reports it read-only and says
//! so in the key's note.

use super::def::{ConfigKey, ConfigType as T, Importance as I, Validator as V};
// The topic configs' floors apply to their broker defaults too: one rule for both.
use super::endpoints;
use rafka_controller::control::config::topic_defs::{MIN_SEGMENT_BYTES, MIN_SEGMENT_INDEX_BYTES};

const fn k(
    name: &'static str,
    ty: T,
    default: Option<&'static str>,
    importance: I,
    doc: &'static str,
) -> ConfigKey {
    ConfigKey::new(name, ty, default, importance, doc)
}

pub use super::def::LONG_MAX;
/// `Integer.MAX_VALUE` as Kafka prints it.
pub const INT_MAX: &str = "2147483647";

const IGNORED_THREADS: &str = "accepted and ignored: rafka runs one tokio runtime whose worker \
     threads serve every connection and request; size it with TOKIO_WORKER_THREADS";
const IGNORED: &str = "accepted and ignored";
const KERBEROS: &str = "accepted and ignored: rafka does not support SASL/GSSAPI (Kerberos)";
const IGNORED_QUORUM_TIMINGS: &str = "accepted and ignored: rafka's quorum (openraft) sends \
     heartbeats every 50 ms; a voter that follows a leader campaigns 350-500 ms after the \
     leader's last append to it (a 300 ms lease, a heartbeat, a random part), one that knows \
     no leader after 150-300 ms (Kafka's 1-2 s defaults outlast JVM pauses rafka does not have)";
const IGNORED_SNAPSHOTS: &str = "accepted and ignored: rafka snapshots the metadata image every \
     10,000 Raft log entries (each a batch of records) and purges the log behind the snapshot, \
     keeping the last 1,000 entries";
const NOT_LIVE: &str = "dynamic in Kafka; read-only in rafka (changes need a restart)";

const SECURITY_PROTOCOLS: &[&str] = &["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];
const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

fn check_voters(v: &str) -> Result<(), String> {
    endpoints::parse_voters(v).map(|_| ())
}

fn check_bootstrap(v: &str) -> Result<(), String> {
    endpoints::parse_bootstrap_servers(v).map(|_| ())
}

fn check_listeners(v: &str) -> Result<(), String> {
    for item in super::def::parse_list(v) {
        if !item.is_empty() {
            endpoints::parse_listener(&item)?;
        }
    }
    Ok(())
}

fn check_http_listeners(v: &str) -> Result<(), String> {
    endpoints::parse_http_listeners(v).map(|_| ())
}

fn check_protocol_map(v: &str) -> Result<(), String> {
    endpoints::parse_protocol_map(v).map(|_| ())
}

/// Kafka's: a list of `classic`, `consumer` and `share` that keeps `classic` (the protocol
/// every older client speaks).
fn check_rebalance_protocols(v: &str) -> Result<(), String> {
    let protocols = super::def::parse_list(v);
    if let Some(p) = protocols
        .iter()
        .find(|p| !["classic", "consumer", "share"].contains(&p.as_str()))
    {
        return Err(format!("unknown rebalance protocol {p:?}"));
    }
    if !protocols.iter().any(|p| p == "classic") {
        return Err("the classic rebalance protocol cannot be disabled".into());
    }
    Ok(())
}

fn check_listener_names(v: &str) -> Result<(), String> {
    for name in super::def::parse_list(v) {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!("invalid listener name {name:?}"));
        }
    }
    Ok(())
}

/// `max.connections.per.ip.overrides`: `host:count` entries (hosts are resolved at start).
fn check_connection_overrides(v: &str) -> Result<(), String> {
    rafka_controller::connection_quotas::parse_overrides(v)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn check_roles(v: &str) -> Result<(), String> {
    endpoints::parse_roles(v).map(|_| ())
}

/// A Kafka cluster id: a UUID in URL-safe base64 without padding (22 characters).
pub fn check_cluster_id(v: &str) -> Result<(), String> {
    if v.len() == 22
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(
            "a cluster id is a UUID in URL-safe base64 without padding: 22 characters of \
             A-Z a-z 0-9 - _ (e.g. the output of `kafka-storage random-uuid`)"
                .to_string(),
        )
    }
}

fn check_metadata_version(v: &str) -> Result<(), String> {
    // MetadataVersionValidator: "3.0", "3.0-IV1", "0.10.2", "2.8-IV1".
    let (release, iv) = match v.split_once('-') {
        Some((r, iv)) => (r, Some(iv)),
        None => (v, None),
    };
    let parts: Vec<&str> = release.split('.').collect();
    let release_ok = (2..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let iv_ok = iv.is_none_or(|iv| {
        iv.strip_prefix("IV")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    });
    if release_ok && iv_ok {
        Ok(())
    } else {
        Err("not a Kafka version such as 3.0 or 3.0-IV1".to_string())
    }
}

fn check_gzip_level(v: &str) -> Result<(), String> {
    match v.parse::<i32>() {
        Ok(-1) | Ok(1..=9) => Ok(()),
        _ => Err("Value must be between 1 and 9 or equal to -1".to_string()),
    }
}

fn check_authorizer(v: &str) -> Result<(), String> {
    if v.is_empty() || v == rafka_security::authorizer::StandardAuthorizer::CLASS_NAME {
        Ok(())
    } else {
        Err(format!(
            "rafka's only authorizer is {} (ACLs in the metadata log); \
             other authorizer classes cannot be loaded",
            rafka_security::authorizer::StandardAuthorizer::CLASS_NAME
        ))
    }
}

/// Every broker configuration rafka knows.
pub static BROKER_CONFIGS: &[ConfigKey] = &[
    // ---- KRaft, node identity and the quorum (KRaftConfigs, QuorumConfig, ServerConfigs) ----
    k("process.roles", T::List, Some(""), I::High,
        "The roles this node plays: broker, controller, or broker,controller (combined). Required.")
        .check(V::Custom(check_roles)),
    k("node.id", T::Int, Some("-1"), I::High,
        "The node id, unique in the cluster, for both the broker and the controller role. Required.")
        .note("falls back to broker.id when only that is set, as in Kafka"),
    k("broker.id", T::Int, Some("-1"), I::High,
        "The broker id; in KRaft mode it must equal node.id when both are set."),
    k("broker.rack", T::String, None, I::Medium,
        "The rack of the broker, used for rack-aware replica placement."),
    k("cluster.id", T::String, None, I::High,
        "The cluster id this node belongs to (22-character URL-safe base64 UUID).")
        .check(V::Custom(check_cluster_id))
        .note("a rafka key, not Kafka's (Kafka takes it from `kafka-storage format`): when unset, \
               the first active controller creates one and every node adopts it into \
               meta.properties; a node refuses a quorum whose id differs from the one on disk"),
    k("controller.quorum.voters", T::List, Some(""), I::High,
        "The static controller quorum: id@host:port entries, one per controller.")
        .check(V::Custom(check_voters)),
    k("controller.quorum.bootstrap.servers", T::List, Some(""), I::High,
        "host:port entries used to discover the controller quorum (dynamic quorum, KIP-853).")
        .check(V::Custom(check_bootstrap)),
    k("controller.quorum.election.timeout.ms", T::Int, Some("1000"), I::High,
        "Maximum time without finding a leader before a controller starts an election.")
        .note(IGNORED_QUORUM_TIMINGS),
    k("controller.quorum.fetch.timeout.ms", T::Int, Some("2000"), I::High,
        "Maximum time without hearing from the leader before a voter becomes a candidate.")
        .note(IGNORED_QUORUM_TIMINGS),
    k("controller.quorum.election.backoff.max.ms", T::Int, Some("1000"), I::High,
        "Maximum time before starting a new election (exponential backoff).")
        .note(IGNORED_QUORUM_TIMINGS),
    k("controller.quorum.append.linger.ms", T::Int, Some("25"), I::Medium,
        "How long the quorum leader waits to batch writes before flushing them.")
        .note("accepted and ignored: the active controller writes each request's records at once, without lingering"),
    k("controller.quorum.request.timeout.ms", T::Int, Some("2000"), I::Medium,
        "How long a quorum request may wait for its response."),
    k("controller.quorum.retry.backoff.ms", T::Int, Some("20"), I::Low,
        "How long to wait before retrying a failed quorum request.")
        .note(IGNORED_QUORUM_TIMINGS),
    k("controller.listener.names", T::String, None, I::High,
        "Comma-separated listener names used by the controller. Required in KRaft mode.")
        .check(V::Custom(check_listener_names)),
    k("initial.broker.registration.timeout.ms", T::Int, Some("60000"), I::Medium,
        "How long a broker waits for its first registration with the controller to succeed."),
    // rafka's defaults are shorter than Kafka's (2000 / 9000): no garbage collector pauses the
    // process, so six missed heartbeats in 1.5 s mean a stopped or cut-off broker (README).
    k("broker.heartbeat.interval.ms", T::Int, Some("250"), I::Medium,
        "Time between broker heartbeats to the active controller."),
    k("broker.session.timeout.ms", T::Int, Some("1500"), I::Medium,
        "How long a broker's lease lasts without a heartbeat before the controller fences it."),
    k("metadata.log.dir", T::String, None, I::High,
        "Where the metadata log lives; defaults to the first log directory."),
    k("metadata.log.segment.bytes", T::Int, Some("1073741824"), I::High,
        "The maximum size of a single metadata log segment.")
        // Kafka's definition says 12; its metadata log refuses less than 8 MiB at start.
        .check(V::AtLeast(8 * 1024 * 1024)),
    k("metadata.log.segment.ms", T::Long, Some("604800000"), I::High,
        "The maximum time before a new metadata log segment is rolled.")
        .check(V::AtLeast(1)),
    k("metadata.max.retention.bytes", T::Long, Some("104857600"), I::High,
        "The maximum bytes of metadata log and snapshots before old snapshots and segments go.")
        .note(IGNORED_SNAPSHOTS),
    k("metadata.max.retention.ms", T::Long, Some("604800000"), I::High,
        "How long a metadata snapshot and the log segments it covers are kept.")
        .note(IGNORED_SNAPSHOTS),
    k("metadata.log.max.record.bytes.between.snapshots", T::Long, Some("20971520"), I::High,
        "The bytes of metadata log between the last snapshot and the high watermark that trigger a new snapshot.")
        .check(V::AtLeast(1))
        .note(IGNORED_SNAPSHOTS),
    k("metadata.log.max.snapshot.interval.ms", T::Long, Some("3600000"), I::High,
        "The longest time between metadata snapshots when records are committed (0 disables).")
        .check(V::AtLeast(0))
        .note(IGNORED_SNAPSHOTS),
    k("metadata.max.idle.interval.ms", T::Int, Some("500"), I::Low,
        "How often the active controller appends a no-op record to the metadata log (0 disables).")
        .check(V::AtLeast(0))
        .note("accepted and ignored: the quorum shows it is alive by Raft heartbeats every 50 ms; no periodic no-op records (one when a controller becomes active)"),
    k("eligible.leader.replicas.enable", T::Boolean, Some("false"), I::High,
        "Enable eligible leader replicas (KIP-966).")
        .note("accepted; rafka does not implement ELR and elects from the ISR"),
    // ---- Sockets and listeners (SocketServerConfigs) ----
    k("listeners", T::String, Some("PLAINTEXT://:9092"), I::High,
        "Comma-separated listeners NAME://host:port to bind; an empty host binds all interfaces.")
        .check(V::Custom(check_listeners))
        .note(NOT_LIVE),
    k("advertised.listeners", T::String, None, I::High,
        "Listeners to publish for clients (and for other brokers), if different from listeners.")
        .check(V::Custom(check_listeners))
        .note(NOT_LIVE),
    k("listener.security.protocol.map", T::String,
        Some("SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT"), I::Low,
        "Map from listener names to security protocols: NAME:PROTOCOL entries.")
        .check(V::Custom(check_protocol_map)),
    k("inter.broker.listener.name", T::String, None, I::Medium,
        "The listener brokers use to reach each other; defaults to security.inter.broker.protocol's name."),
    k("security.inter.broker.protocol", T::String, Some("PLAINTEXT"), I::Medium,
        "Security protocol between brokers; only one of this and inter.broker.listener.name may be set.")
        .check(V::OneOf(SECURITY_PROTOCOLS)),
    // ---- SASL (config::sasl reads them per listener and mechanism) ----
    k("sasl.enabled.mechanisms", T::List, Some("GSSAPI"), I::Medium,
        "The SASL mechanisms enabled on SASL listeners (listener.name.<l>.sasl.enabled.mechanisms per listener).")
        .note("rafka serves PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER (unsecured or JWKS-signed tokens); other names are ignored with a warning; read at start"),
    k("sasl.mechanism.inter.broker.protocol", T::String, Some("GSSAPI"), I::Medium,
        "The SASL mechanism brokers use to authenticate to each other."),
    k("sasl.mechanism.controller.protocol", T::String, Some("GSSAPI"), I::High,
        "The SASL mechanism nodes use to authenticate to the controllers."),
    k("sasl.jaas.config", T::Password, None, I::Medium,
        "A JAAS login module configuration: PlainLoginModule user_<name>=\"<password>\" entries for PLAIN, username/password for this node's own connections."),
    k("sasl.oauthbearer.expected.audience", T::List, Some(""), I::Low,
        "OAUTHBEARER: the audiences (aud claim) a token must name one of; empty accepts any."),
    k("sasl.server.callback.handler.class", T::Class, None, I::Medium,
        "The SASL server callback handler; for OAUTHBEARER, Kafka's OAuthBearerUnsecuredValidatorCallbackHandler (default) or OAuthBearerValidatorCallbackHandler (signed JWTs against a JWKS).")
        .note("per listener and mechanism: listener.name.<l>.oauthbearer.sasl.server.callback.handler.class; other classes stop the start"),
    k("sasl.oauthbearer.jwks.endpoint.url", T::String, None, I::Medium,
        "OAUTHBEARER: the JWKS (a file: URL, read at start, or an http(s) URL, refreshed) whose keys verify signed tokens."),
    k("sasl.oauthbearer.jwks.endpoint.refresh.ms", T::Long, Some("3600000"), I::Low,
        "OAUTHBEARER: how often an http(s) JWKS is retrieved again.")
        .check(V::AtLeast(0)),
    k("sasl.oauthbearer.jwks.endpoint.retry.backoff.ms", T::Long, Some("100"), I::Low,
        "OAUTHBEARER: the first wait between JWKS retrieval attempts (doubling).")
        .check(V::AtLeast(0)),
    k("sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms", T::Long, Some("10000"), I::Low,
        "OAUTHBEARER: the longest wait between JWKS retrieval attempts, and their total.")
        .check(V::AtLeast(0)),
    k("sasl.oauthbearer.expected.issuer", T::String, None, I::Low,
        "OAUTHBEARER: the issuer (iss claim) a signed token must have; unset accepts any."),
    k("sasl.oauthbearer.sub.claim.name", T::String, Some("sub"), I::Low,
        "OAUTHBEARER: the claim holding a signed token's principal."),
    k("sasl.oauthbearer.scope.claim.name", T::String, Some("scope"), I::Low,
        "OAUTHBEARER: the claim holding a signed token's scope."),
    k("sasl.oauthbearer.clock.skew.seconds", T::Int, Some("30"), I::Low,
        "OAUTHBEARER: the clock difference tolerated when checking exp, iat and nbf.")
        .check(V::AtLeast(0)),
    k("sasl.server.max.receive.size", T::Int, Some("524288"), I::Low,
        "The largest request accepted before a SASL client has authenticated.")
        .check(V::AtLeast(1)),
    k("connections.max.reauth.ms", T::Long, Some("0"), I::Medium,
        "KIP-368: the longest a SASL session lasts before the client must re-authenticate (0: forever); per listener and mechanism with listener.name.<l>.<mechanism>. prefixes."),
    k("connection.failed.authentication.delay.ms", T::Int, Some("100"), I::Low,
        "How long the broker waits before answering a failed authentication and closing the connection.")
        .check(V::AtLeast(0)),
    k("socket.send.buffer.bytes", T::Int, Some("-1"), I::High,
        "SO_SNDBUF of the server sockets (-1: the OS default). Kafka's default is 102400, which fixes the buffer and turns Linux's autotuning off: a connection then has at most that much unacknowledged, capping it at a buffer per round trip."),
    k("socket.receive.buffer.bytes", T::Int, Some("-1"), I::High,
        "SO_RCVBUF of the server sockets (-1: the OS default), set on the listener before any handshake. Kafka's default is 102400 (see socket.send.buffer.bytes)."),
    k("socket.request.max.bytes", T::Int, Some("104857600"), I::High,
        "The largest request the server accepts; a larger size prefix closes the connection.")
        .check(V::AtLeast(1)),
    k("socket.listen.backlog.size", T::Int, Some("1024"), I::Medium,
        "The maximum number of pending connections on a listening socket (capped by net.core.somaxconn). Kafka's default is 50; a rafka broker accepts only once it is ready, and every client connecting before waits in this queue.")
        .check(V::AtLeast(1)),
    k("max.connections.per.ip", T::Int, Some(INT_MAX), I::Medium,
        "The maximum number of connections allowed from one IP address.")
        .check(V::AtLeast(0))
        .note(NOT_LIVE),
    k("max.connections.per.ip.overrides", T::String, Some(""), I::Medium,
        "Per-IP or per-hostname overrides of max.connections.per.ip: host:count entries.")
        .check(V::Custom(check_connection_overrides))
        .note(NOT_LIVE),
    k("max.connections", T::Int, Some(INT_MAX), I::Medium,
        "The maximum number of connections the broker accepts at any time.")
        .check(V::AtLeast(0))
        .note(NOT_LIVE),
    k("max.connection.creation.rate", T::Int, Some(INT_MAX), I::Medium,
        "The maximum connection creation rate the broker accepts at any time.")
        .check(V::AtLeast(0))
        .note("accepted and ignored"),
    k("connections.max.idle.ms", T::Long, Some("600000"), I::Medium,
        "Idle connections are closed after this long."),
    // TLS (Kafka's SslConfigs and BrokerSecurityConfigs). Each may be set per listener as
    // listener.name.<listener>.<key>, which wins over the global key.
    k("ssl.protocol", T::String, Some("TLSv1.3"), I::Medium,
        "The SSL protocol used to generate the SSLContext; rafka negotiates the highest of ssl.enabled.protocols.")
        .note(IGNORED),
    k("ssl.enabled.protocols", T::List, Some("TLSv1.2,TLSv1.3"), I::Medium,
        "The list of protocols enabled for SSL connections (TLSv1.2, TLSv1.3; older ones are skipped with a warning).")
        .note(NOT_LIVE),
    k("ssl.cipher.suites", T::List, Some(""), I::Low,
        "A list of cipher suites (IANA names, e.g. TLS_AES_128_GCM_SHA256); all suites of the TLS implementation by default. An unknown suite stops the start.")
        .note(NOT_LIVE),
    k("ssl.keystore.type", T::String, Some("JKS"), I::Medium,
        "The file format of the key store; rafka supports PEM only.")
        .note(NOT_LIVE),
    k("ssl.keystore.location", T::String, None, I::High,
        "The location of the key store file (PEM: the private key and the certificate chain). Reloaded when the file changes.")
        .note(NOT_LIVE),
    k("ssl.keystore.password", T::Password, None, I::High,
        "The store password for the key store file; not used with PEM (use ssl.key.password for an encrypted key)."),
    k("ssl.key.password", T::Password, None, I::High,
        "The password of the private key (an encrypted PKCS#8 key in PEM)."),
    k("ssl.keystore.key", T::Password, None, I::High,
        "Private key in the format specified by ssl.keystore.type (PEM PKCS#8, encrypted with ssl.key.password if set).")
        .note(NOT_LIVE),
    k("ssl.keystore.certificate.chain", T::Password, None, I::High,
        "Certificate chain in the format specified by ssl.keystore.type (PEM X.509 certificates).")
        .note(NOT_LIVE),
    k("ssl.truststore.type", T::String, Some("JKS"), I::Medium,
        "The file format of the trust store; rafka supports PEM only.")
        .note(NOT_LIVE),
    k("ssl.truststore.location", T::String, None, I::High,
        "The location of the trust store file (PEM certificates). Reloaded when the file changes.")
        .note(NOT_LIVE),
    k("ssl.truststore.password", T::Password, None, I::High,
        "The password for the trust store file; not used with PEM."),
    k("ssl.truststore.certificates", T::Password, None, I::High,
        "Trusted certificates in the format specified by ssl.truststore.type (PEM X.509 certificates).")
        .note(NOT_LIVE),
    k("ssl.client.auth", T::String, Some("none"), I::Medium,
        "Whether the server requests client authentication: required, requested or none.")
        .check(V::OneOf(&["required", "requested", "none"]))
        .note(NOT_LIVE),
    k("ssl.endpoint.identification.algorithm", T::String, Some("https"), I::Low,
        "The endpoint identification algorithm to validate the server hostname using the server certificate (https, or empty to not check).")
        .note(NOT_LIVE),
    k("ssl.principal.mapping.rules", T::String, Some("DEFAULT"), I::Low,
        "Rules mapping the distinguished name of a client certificate to a short name: RULE:pattern/replacement/[LU], DEFAULT.")
        .note(NOT_LIVE),
    k("ssl.keymanager.algorithm", T::String, Some("SunX509"), I::Low,
        "The algorithm used by the key manager factory for SSL connections.")
        .note(IGNORED),
    k("ssl.trustmanager.algorithm", T::String, Some("PKIX"), I::Low,
        "The algorithm used by the trust manager factory for SSL connections.")
        .note(IGNORED),
    k("ssl.secure.random.implementation", T::String, None, I::Low,
        "The SecureRandom PRNG implementation to use for SSL cryptography operations.")
        .note(IGNORED),
    k("ssl.provider", T::String, None, I::Low,
        "The name of the security provider used for SSL connections.")
        .note(IGNORED),
    k("ssl.engine.factory.class", T::Class, None, I::Low,
        "The class of type SslEngineFactory to provide SSLEngine objects.")
        .note(IGNORED),
    k("ssl.allow.dn.changes", T::Boolean, Some("false"), I::Low,
        "Whether a dynamic keystore update may change the certificate's distinguished name.")
        .note(IGNORED),
    k("ssl.allow.san.changes", T::Boolean, Some("false"), I::Low,
        "Whether a dynamic keystore update may change the certificate's subject alternative names.")
        .note(IGNORED),
    k("queued.max.requests", T::Int, Some("500"), I::High,
        "The number of queued requests allowed before blocking the network threads.")
        .check(V::AtLeast(1))
        .note("accepted and ignored: each connection task answers its own requests in order"),
    // Kafka's default is -1 (unbounded); rafka always bounds the request pool (see
    // `network::DEFAULT_QUEUED_MAX_REQUEST_BYTES` for why 512 MiB cannot hurt a normal client).
    k("queued.max.request.bytes", T::Long, Some("536870912"), I::Medium,
        "The bytes of requests read and not yet answered, over all connections; a connection \
         waits before reading a request that does not fit (-1: the default).")
        .note("rafka's default is 512 MiB, Kafka's -1 (unbounded); -1 means the default"),
    k("num.network.threads", T::Int, Some("3"), I::High,
        "The number of threads receiving requests from and sending responses to the network.")
        .check(V::AtLeast(1))
        .note(IGNORED_THREADS),
    // ---- Requests and topics (ServerConfigs, ServerLogConfigs) ----
    k("message.max.bytes", T::Int, Some("1048588"), I::High,
        "The largest record batch size allowed; the broker default of the topic config max.message.bytes.")
        .check(V::AtLeast(0))
        .cluster_wide(),
    k("num.io.threads", T::Int, Some("8"), I::High,
        "The number of threads processing requests, which may include disk I/O.")
        .check(V::AtLeast(1))
        .note(IGNORED_THREADS),
    k("background.threads", T::Int, Some("10"), I::High,
        "The number of threads for background processing tasks.")
        .check(V::AtLeast(1))
        .note(IGNORED_THREADS),
    k("num.recovery.threads.per.data.dir", T::Int, Some("8"), I::High,
        "The number of threads per log directory for recovery at startup and flushing at shutdown.")
        .check(V::AtLeast(1))
        .note("default 8 (Kafka: 1): the work waits on the disk, and 8 threads recover 10,000 logs after a crash 9x faster than one (16.4 s -> 1.8 s, storage/examples/open_logs.rs)"),
    k("num.replica.fetchers", T::Int, Some("1"), I::High,
        "The number of fetcher threads per source broker.")
        .note("accepted and ignored: rafka runs one fetcher task per leader broker"),
    k("request.timeout.ms", T::Int, Some("30000"), I::High,
        "How long the broker's own clients (e.g. to the controller) wait for a response.")
        .note("accepted and ignored: the broker's requests to other nodes have their own bounds (controller.quorum.request.timeout.ms for the controller, 5 s for a KIP-890 verification, 35 s for transaction markers)"),
    k("auto.create.topics.enable", T::Boolean, Some("true"), I::High,
        "Create a topic when a client asks for metadata of a topic that does not exist."),
    k("delete.topic.enable", T::Boolean, Some("true"), I::High,
        "Allow DeleteTopics; when false, deletion requests are refused."),
    k("num.partitions", T::Int, Some("1"), I::Medium,
        "The default number of partitions of a new topic.")
        .check(V::AtLeast(1)),
    k("default.replication.factor", T::Int, Some("1"), I::Medium,
        "The default replication factor of a new topic."),
    k("min.insync.replicas", T::Int, Some("1"), I::High,
        "The broker default of the topic config min.insync.replicas (acks=all durability).")
        .check(V::AtLeast(1))
        .cluster_wide(),
    k("unclean.leader.election.enable", T::Boolean, Some("false"), I::High,
        "Allow electing a replica outside the ISR as leader as a last resort (may lose data).")
        .cluster_wide(),
    k("auto.leader.rebalance.enable", T::Boolean, Some("true"), I::High,
        "Periodically move leadership back to each partition's preferred replica."),
    k("leader.imbalance.per.broker.percentage", T::Int, Some("10"), I::High,
        "The leader imbalance per broker that triggers a rebalance, in percent.")
        .note("accepted and ignored, as by Kafka's KRaft controller (and gone in Kafka 4.0): every partition not led by its preferred replica is rebalanced"),
    k("leader.imbalance.check.interval.seconds", T::Long, Some("300"), I::High,
        "How often the controller checks for leader imbalance.")
        .check(V::AtLeast(1)),
    k("compression.type", T::String, Some("producer"), I::High,
        "The broker default of the topic config compression.type.")
        .check(V::OneOf(COMPRESSION_TYPES))
        .cluster_wide()
        .note("only `producer` is honoured for now: batches are stored as the producer sent them"),
    k("compression.gzip.level", T::Int, Some("-1"), I::Medium,
        "The broker default of compression.gzip.level.")
        .check(V::Custom(check_gzip_level))
        .cluster_wide()
        .note("accepted and ignored: batches are stored as the producer compressed them, so no level applies"),
    k("compression.lz4.level", T::Int, Some("9"), I::Medium,
        "The broker default of compression.lz4.level.")
        .check(V::Between(1, 17))
        .cluster_wide()
        .note("accepted and ignored: batches are stored as the producer compressed them, so no level applies"),
    k("compression.zstd.level", T::Int, Some("3"), I::Medium,
        "The broker default of compression.zstd.level.")
        .check(V::Between(-131072, 22))
        .cluster_wide()
        .note("accepted and ignored: batches are stored as the producer compressed them, so no level applies"),
    k("controlled.shutdown.enable", T::Boolean, Some("true"), I::Medium,
        "Move leadership away from the broker before it shuts down."),
    k("controlled.shutdown.max.retries", T::Int, Some("3"), I::Medium,
        "How many times a controlled shutdown is retried before an unclean one.")
        .note("accepted and ignored: ZooKeeper-mode keys (gone in Kafka 4.0); the controlled shutdown is asked for in heartbeats until the controller allows it"),
    k("controlled.shutdown.retry.backoff.ms", T::Long, Some("5000"), I::Medium,
        "The wait between controlled-shutdown retries.")
        .note("accepted and ignored: ZooKeeper-mode keys (gone in Kafka 4.0); the controlled shutdown is asked for in heartbeats until the controller allows it"),
    k("fetch.max.bytes", T::Int, Some("57671680"), I::Medium,
        "The maximum bytes the broker returns for one Fetch request.")
        .check(V::AtLeast(1024)),
    k("max.incremental.fetch.session.cache.slots", T::Int, Some("1000"), I::Medium,
        "The maximum number of incremental fetch sessions kept (KIP-227).")
        .check(V::AtLeast(0))
        .note("accepted and ignored: rafka keeps no incremental fetch sessions (KIP-227) — as Kafka with 0 slots, every fetch is answered in full with session id 0"),
    k("max.request.partition.size.limit", T::Int, Some("2000"), I::Medium,
        "The most partitions one DescribeTopicPartitions response holds (the rest are paged).")
        .check(V::AtLeast(1))
        .note("accepted and ignored: rafka does not implement DescribeTopicPartitions (KIP-966), the request it bounds"),
    k("authorizer.class.name", T::String, Some(""), I::Low,
        "The authorizer class; empty means no authorization. \
         org.apache.kafka.metadata.authorizer.StandardAuthorizer turns on ACLs.")
        .check(V::Custom(check_authorizer))
        .note("only org.apache.kafka.metadata.authorizer.StandardAuthorizer (or empty): another class stops the start rather than run unprotected"),
    k("super.users", T::String, Some(""), I::Low,
        "Principals allowed everything by the StandardAuthorizer, separated by semicolons \
         (User:admin;User:ops)."),
    k("allow.everyone.if.no.acl.found", T::Boolean, Some("false"), I::Low,
        "Whether the StandardAuthorizer allows an operation on a resource no ACL applies to."),
    k("create.topic.policy.class.name", T::Class, None, I::Low,
        "A CreateTopicPolicy class to validate topic creation.")
        .note("accepted and ignored: rafka loads no plugins"),
    k("alter.config.policy.class.name", T::Class, None, I::Low,
        "An AlterConfigPolicy class to validate config changes.")
        .note("accepted and ignored: rafka loads no plugins"),
    k("replica.selector.class", T::String, None, I::Medium,
        "A ReplicaSelector class for fetching from the closest replica (KIP-392).")
        .note("org.apache.kafka.common.replica.RackAwareReplicaSelector is implemented (KIP-392: a consumer with client.rack reads from a replica in its rack); other classes are ignored (the leader serves)"),
    // ---- Log directories and log defaults (ServerLogConfigs) ----
    k("log.dirs", T::String, None, I::High,
        "Comma-separated directories holding the partition logs; overrides log.dir."),
    k("log.dir", T::String, Some("/tmp/kafka-logs"), I::High,
        "The directory holding the partition logs, when log.dirs is not set."),
    k("log.segment.bytes", T::Int, Some("1073741824"), I::High,
        "The maximum size of a log segment file (broker default of segment.bytes).")
        .check(V::AtLeast(MIN_SEGMENT_BYTES))
        .cluster_wide(),
    k("log.roll.ms", T::Long, None, I::High,
        "The maximum age of the active segment before a roll (segment.ms); overrides log.roll.hours.")
        .cluster_wide(),
    k("log.roll.hours", T::Int, Some("168"), I::High,
        "log.roll.ms in hours, used when log.roll.ms is not set.")
        .check(V::AtLeast(1)),
    k("log.roll.jitter.ms", T::Long, None, I::High,
        "The maximum jitter subtracted from the roll time (segment.jitter.ms); overrides log.roll.jitter.hours.")
        .cluster_wide(),
    k("log.roll.jitter.hours", T::Int, Some("0"), I::High,
        "log.roll.jitter.ms in hours, used when log.roll.jitter.ms is not set.")
        .check(V::AtLeast(0)),
    k("log.retention.ms", T::Long, None, I::High,
        "How long a log is kept before deletion (retention.ms; -1: forever); overrides minutes and hours.")
        .cluster_wide(),
    k("log.retention.minutes", T::Int, None, I::High,
        "log.retention.ms in minutes, used when log.retention.ms is not set; overrides log.retention.hours."),
    k("log.retention.hours", T::Int, Some("168"), I::High,
        "log.retention.ms in hours, used when neither log.retention.ms nor log.retention.minutes is set."),
    k("log.retention.bytes", T::Long, Some("-1"), I::High,
        "The maximum size of a partition's log before old segments go (retention.bytes; -1: unbounded).")
        .cluster_wide(),
    k("log.retention.check.interval.ms", T::Long, Some("300000"), I::Medium,
        "How often the log retention pass runs.")
        .check(V::AtLeast(1)),
    k("log.cleanup.policy", T::List, Some("delete"), I::Medium,
        "The default cleanup policy: delete, compact, or both (cleanup.policy).")
        .check(V::ListOf(&["compact", "delete"]))
        .cluster_wide(),
    k("log.index.size.max.bytes", T::Int, Some("10485760"), I::Medium,
        "The size an offset or time index file is created at (segment.index.bytes).")
        .check(V::AtLeast(MIN_SEGMENT_INDEX_BYTES))
        .cluster_wide(),
    k("log.index.interval.bytes", T::Int, Some("4096"), I::Medium,
        "The bytes of log between two index entries (index.interval.bytes).")
        .check(V::AtLeast(0))
        .cluster_wide(),
    k("log.open.files.max", T::Int, Some("-1"), I::Medium,
        "The most segment files and index maps the node's logs hold open at once (each open \
         .log file counts one, each mapped index one descriptor and one map); the least recently \
         used logs' files are closed beyond it and reopen on their next use. -1: half the \
         process's RLIMIT_NOFILE, at most three quarters of vm.max_map_count, at least 64.")
        .check(V::AtLeast(-1))
        .note("a rafka key, not Kafka's (Kafka keeps every segment's files open); read at start"),
    k("log.flush.interval.messages", T::Long, Some(LONG_MAX), I::High,
        "The messages appended to a partition before its log is fsynced (flush.messages).")
        .check(V::AtLeast(1))
        .cluster_wide(),
    k("log.flush.interval.ms", T::Long, None, I::High,
        "The longest a message stays unflushed (flush.ms); defaults to log.flush.scheduler.interval.ms.")
        .cluster_wide(),
    k("log.flush.scheduler.interval.ms", T::Long, Some(LONG_MAX), I::High,
        "How often the flusher checks whether a log needs flushing."),
    k("log.flush.offset.checkpoint.interval.ms", T::Int, Some("60000"), I::High,
        "How often the recovery-point checkpoint is written.")
        .check(V::AtLeast(0)),
    k("log.flush.start.offset.checkpoint.interval.ms", T::Int, Some("60000"), I::High,
        "How often the log-start-offset checkpoint is written.")
        .check(V::AtLeast(0)),
    k("log.segment.delete.delay.ms", T::Long, Some("60000"), I::High,
        "How long a deleted segment stays as .deleted before removal (file.delete.delay.ms).")
        .check(V::AtLeast(0))
        .cluster_wide(),
    k("log.preallocate", T::Boolean, Some("false"), I::Medium,
        "Preallocate segment files (preallocate).")
        .cluster_wide()
        .note("accepted and ignored: segment files are not preallocated"),
    k("log.message.format.version", T::String, Some("3.0-IV1"), I::Medium,
        "Deprecated; ignored from inter-broker protocol 3.0 on (records are always v2).")
        .check(V::Custom(check_metadata_version))
        .note("accepted and ignored (gone in Kafka 4.0): batches are stored in the format the producer sent"),
    k("log.message.timestamp.type", T::String, Some("CreateTime"), I::Medium,
        "Whether record timestamps are the producer's (CreateTime) or the append time (LogAppendTime).")
        .check(V::OneOf(&["CreateTime", "LogAppendTime"]))
        .cluster_wide(),
    k("log.message.timestamp.difference.max.ms", T::Long, Some(LONG_MAX), I::Medium,
        "Deprecated: the largest allowed difference between a CreateTime timestamp and the broker's time.")
        .check(V::AtLeast(0))
        .cluster_wide()
        .note("accepted and ignored (gone in Kafka 4.0): log.message.timestamp.before.max.ms and .after.max.ms bound timestamps"),
    k("log.message.timestamp.before.max.ms", T::Long, Some(LONG_MAX), I::Medium,
        "How far in the past a CreateTime timestamp may be (message.timestamp.before.max.ms).")
        .check(V::AtLeast(0))
        .cluster_wide(),
    // Kafka 4.0's default (KIP-1030): one hour, no longer Long.MAX_VALUE.
    k("log.message.timestamp.after.max.ms", T::Long, Some("3600000"), I::Medium,
        "How far in the future a CreateTime timestamp may be (message.timestamp.after.max.ms).")
        .check(V::AtLeast(0))
        .cluster_wide(),
    k("log.message.downconversion.enable", T::Boolean, Some("true"), I::Low,
        "Whether old-format fetch requests get down-converted records.")
        .cluster_wide()
        .note("accepted and ignored (gone in Kafka 4.0): records are never converted to an older format for a fetch"),
    k("log.dir.failure.timeout.ms", T::Long, Some("30000"), I::Low,
        "How long a broker with a failed log directory waits before shutting down.")
        .check(V::AtLeast(1))
        .note("accepted and ignored: rafka does not report failed log directories to the controller (KIP-858)"),
    k("log.local.retention.ms", T::Long, Some("-2"), I::Medium,
        "Local retention with tiered storage (-2: retention.ms).")
        .check(V::AtLeast(-2))
        .cluster_wide()
        .note("accepted and ignored: without tiered storage there is no local part to retain"),
    k("log.local.retention.bytes", T::Long, Some("-2"), I::Medium,
        "Local retention size with tiered storage (-2: retention.bytes).")
        .check(V::AtLeast(-2))
        .cluster_wide()
        .note("accepted and ignored: without tiered storage there is no local part to retain"),
    k("remote.log.storage.system.enable", T::Boolean, Some("false"), I::Medium,
        "Enable tiered storage on this broker.")
        .check(V::Custom(|v| {
            if v == "true" {
                Err("rafka does not support tiered storage".to_string())
            } else {
                Ok(())
            }
        }))
        .note("accepted only as false: rafka has no tiered storage, and true stops the start"),
    // ---- Log cleaner (CleanerConfig) ----
    k("log.cleaner.enable", T::Boolean, Some("true"), I::Medium,
        "Run the log cleaner (needed by compacted topics, including __consumer_offsets)."),
    k("log.cleaner.threads", T::Int, Some("1"), I::Medium,
        "The number of log cleaner threads.")
        .check(V::AtLeast(0))
        .note("rafka cleans with one thread; the value enters only the dedupe buffer's per-thread check, as in Kafka"),
    k("log.cleaner.io.max.bytes.per.second", T::Double, Some("1.7976931348623157E308"), I::Medium,
        "Throttle on the log cleaner's read+write I/O.")
        .note("accepted and ignored: the cleaner is not throttled and sizes its own buffers"),
    k("log.cleaner.dedupe.buffer.size", T::Long, Some("134217728"), I::Medium,
        "Memory for log deduplication across all cleaner threads.")
        .note(NOT_LIVE),
    k("log.cleaner.io.buffer.size", T::Int, Some("524288"), I::Medium,
        "Memory for log cleaner I/O buffers across all cleaner threads.")
        .check(V::AtLeast(0))
        .note("accepted and ignored: the cleaner is not throttled and sizes its own buffers"),
    k("log.cleaner.io.buffer.load.factor", T::Double, Some("0.9"), I::Medium,
        "How full the dedupe buffer may become.")
        .note("accepted and ignored: the cleaner is not throttled and sizes its own buffers"),
    k("log.cleaner.backoff.ms", T::Long, Some("15000"), I::Medium,
        "How long the cleaner sleeps when there is nothing to clean.")
        .check(V::AtLeast(0))
        .note(NOT_LIVE),
    k("log.cleaner.min.cleanable.ratio", T::Double, Some("0.5"), I::Medium,
        "The dirty ratio at which a log becomes eligible for cleaning (min.cleanable.dirty.ratio).")
        .check(V::BetweenF(0.0, 1.0))
        .cluster_wide(),
    k("log.cleaner.delete.retention.ms", T::Long, Some("86400000"), I::Medium,
        "How long tombstones are kept in compacted topics (delete.retention.ms).")
        .check(V::AtLeast(0))
        .cluster_wide(),
    k("log.cleaner.min.compaction.lag.ms", T::Long, Some("0"), I::Medium,
        "The minimum time a record stays uncompacted (min.compaction.lag.ms).")
        .check(V::AtLeast(0))
        .cluster_wide(),
    k("log.cleaner.max.compaction.lag.ms", T::Long, Some(LONG_MAX), I::Medium,
        "The maximum time a record stays ineligible for compaction (max.compaction.lag.ms).")
        .check(V::AtLeast(1))
        .cluster_wide(),
    // ---- Replication (ReplicationConfigs) ----
    k("replica.lag.time.max.ms", T::Long, Some("30000"), I::High,
        "A follower that has not caught up for this long leaves the ISR."),
    k("replica.socket.timeout.ms", T::Int, Some("30000"), I::High,
        "The socket timeout of follower fetch requests; at least replica.fetch.wait.max.ms."),
    k("replica.socket.receive.buffer.bytes", T::Int, Some("-1"), I::High,
        "SO_RCVBUF of follower fetch connections, set before they connect (-1: the OS default). Kafka's default is 65536, a fixed buffer that caps a follower at that much per round trip to its leader."),
    k("replica.fetch.max.bytes", T::Int, Some("1048576"), I::Medium,
        "The bytes a follower asks for per partition in one fetch.")
        .check(V::AtLeast(0)),
    k("replica.fetch.wait.max.ms", T::Int, Some("500"), I::High,
        "The max_wait_ms of follower fetch requests; at most replica.lag.time.max.ms."),
    k("replica.fetch.min.bytes", T::Int, Some("1"), I::High,
        "The min_bytes of follower fetch requests."),
    k("replica.fetch.backoff.ms", T::Int, Some("1000"), I::Medium,
        "How long a follower waits after a fetch error.")
        .check(V::AtLeast(0)),
    k("replica.fetch.response.max.bytes", T::Int, Some("10485760"), I::Medium,
        "The max_bytes of follower fetch requests.")
        .check(V::AtLeast(0)),
    k("replica.high.watermark.checkpoint.interval.ms", T::Long, Some("5000"), I::High,
        "How often the high watermarks are checkpointed to disk."),
    k("fetch.purgatory.purge.interval.requests", T::Int, Some("1000"), I::Medium,
        "Purge interval of the fetch purgatory.")
        .note(IGNORED),
    k("producer.purgatory.purge.interval.requests", T::Int, Some("1000"), I::Medium,
        "Purge interval of the produce purgatory.")
        .note(IGNORED),
    k("delete.records.purgatory.purge.interval.requests", T::Int, Some("1"), I::Medium,
        "Purge interval of the delete-records purgatory.")
        .note(IGNORED),
    k("controller.socket.timeout.ms", T::Int, Some("30000"), I::Medium,
        "The socket timeout of broker-to-controller channels.")
        .note("accepted and ignored: each request to the controller is bounded by controller.quorum.request.timeout.ms, each heartbeat by two heartbeat intervals"),
    k("inter.broker.protocol.version", T::String, Some("4.0-IV0"), I::Medium,
        "The inter-broker protocol version (ZooKeeper mode); ignored in KRaft mode, where metadata.version rules.")
        .check(V::Custom(check_metadata_version))
        .note("accepted and ignored, as in Kafka 4.0 (where it is gone): versions are negotiated per request (ApiVersions) and by metadata.version"),
    // ---- Group coordinator (GroupCoordinatorConfig) ----
    k("group.min.session.timeout.ms", T::Int, Some("6000"), I::Medium,
        "The smallest session timeout a classic group member may ask for."),
    k("group.max.session.timeout.ms", T::Int, Some("1800000"), I::Medium,
        "The largest session timeout a classic group member may ask for."),
    k("group.initial.rebalance.delay.ms", T::Int, Some("3000"), I::Medium,
        "How long the coordinator waits for more members before the first rebalance of a new group."),
    k("group.max.size", T::Int, Some(INT_MAX), I::Medium,
        "The maximum number of members in one classic group.")
        .check(V::AtLeast(1)),
    k("group.coordinator.rebalance.protocols", T::List, Some("classic,consumer"), I::Medium,
        "The rebalance protocols the group coordinator offers.")
        .check(V::Custom(check_rebalance_protocols)),
    k("group.coordinator.threads", T::Int, Some("1"), I::Medium,
        "The number of group coordinator threads.")
        .check(V::AtLeast(1))
        .note(IGNORED_THREADS),
    k("group.coordinator.append.linger.ms", T::Int, Some("10"), I::Medium,
        "How long the coordinator waits to batch writes to __consumer_offsets.")
        .check(V::AtLeast(0))
        .note("accepted and ignored: the coordinators append each write at once, without lingering"),
    k("group.consumer.session.timeout.ms", T::Int, Some("45000"), I::Medium,
        "The session timeout of consumer-protocol (KIP-848) group members.")
        .check(V::AtLeast(1)),
    k("group.consumer.min.session.timeout.ms", T::Int, Some("45000"), I::Medium,
        "The smallest session timeout of consumer-protocol group members.")
        .check(V::AtLeast(1)),
    k("group.consumer.max.session.timeout.ms", T::Int, Some("60000"), I::Medium,
        "The largest session timeout of consumer-protocol group members.")
        .check(V::AtLeast(1)),
    k("group.consumer.heartbeat.interval.ms", T::Int, Some("5000"), I::Medium,
        "The heartbeat interval of consumer-protocol group members.")
        .check(V::AtLeast(1)),
    k("group.consumer.min.heartbeat.interval.ms", T::Int, Some("5000"), I::Medium,
        "The smallest heartbeat interval of consumer-protocol group members.")
        .check(V::AtLeast(1)),
    k("group.consumer.max.heartbeat.interval.ms", T::Int, Some("15000"), I::Medium,
        "The largest heartbeat interval of consumer-protocol group members.")
        .check(V::AtLeast(1)),
    k("group.consumer.max.size", T::Int, Some(INT_MAX), I::Medium,
        "The maximum number of members in one consumer-protocol group.")
        .check(V::AtLeast(1)),
    k("group.consumer.assignors", T::List,
        Some("org.apache.kafka.coordinator.group.assignor.UniformAssignor,org.apache.kafka.coordinator.group.assignor.RangeAssignor"),
        I::Medium,
        "The server-side assignors of consumer groups (uniform, range or Kafka's class names); the first is the default.")
        .check(V::ListOf(&["uniform", "range",
            "org.apache.kafka.coordinator.group.assignor.UniformAssignor",
            "org.apache.kafka.coordinator.group.assignor.RangeAssignor"])),
    k("group.consumer.migration.policy", T::String, Some("bidirectional"), I::Medium,
        "Conversion between classic and consumer groups with members (KIP-848 online migration): upgrade, downgrade, both (bidirectional) or neither (disabled). Empty groups convert whatever the value.")
        .check(V::OneOf(&["disabled", "downgrade", "upgrade", "bidirectional"])),
    k("offset.metadata.max.bytes", T::Int, Some("4096"), I::High,
        "The maximum size of the metadata string of an offset commit."),
    k("offsets.load.buffer.size", T::Int, Some("5242880"), I::High,
        "Batch size when reading __consumer_offsets into the cache.")
        .check(V::AtLeast(1))
        .note("accepted and ignored: the coordinator loads its partitions 1 MiB at a time"),
    k("offsets.topic.replication.factor", T::Short, Some("3"), I::High,
        "The replication factor of __consumer_offsets; its creation fails until enough brokers exist.")
        .check(V::AtLeast(1)),
    k("offsets.topic.num.partitions", T::Int, Some("50"), I::High,
        "The number of partitions of __consumer_offsets (do not change after deployment).")
        .check(V::AtLeast(1)),
    k("offsets.topic.segment.bytes", T::Int, Some("104857600"), I::High,
        "The segment size of __consumer_offsets.")
        .check(V::AtLeast(1)),
    k("offsets.topic.compression.codec", T::Int, Some("0"), I::High,
        "The compression codec id for __consumer_offsets writes (0: none).")
        .note("accepted and ignored: rafka writes __consumer_offsets uncompressed"),
    k("offsets.retention.minutes", T::Int, Some("10080"), I::High,
        "How long the committed offsets of an empty group are kept.")
        .check(V::AtLeast(1)),
    k("offsets.retention.check.interval.ms", T::Long, Some("600000"), I::High,
        "How often stale offsets are looked for.")
        .check(V::AtLeast(1)),
    k("offsets.commit.timeout.ms", T::Int, Some("5000"), I::High,
        "How long an offset commit waits for __consumer_offsets replicas.")
        .check(V::AtLeast(1)),
    // ---- Transactions (TransactionLogConfig, TransactionStateManagerConfig) ----
    k("transaction.state.log.replication.factor", T::Short, Some("3"), I::High,
        "The replication factor of __transaction_state.")
        .check(V::AtLeast(1)),
    k("transaction.state.log.min.isr", T::Int, Some("2"), I::High,
        "min.insync.replicas of __transaction_state.")
        .check(V::AtLeast(1)),
    k("transaction.state.log.num.partitions", T::Int, Some("50"), I::High,
        "The number of partitions of __transaction_state.")
        .check(V::AtLeast(1)),
    k("transaction.state.log.segment.bytes", T::Int, Some("104857600"), I::High,
        "The segment size of __transaction_state.")
        .check(V::AtLeast(1)),
    k("transaction.state.log.load.buffer.size", T::Int, Some("5242880"), I::High,
        "Batch size when reading __transaction_state into the cache.")
        .check(V::AtLeast(1))
        .note("accepted and ignored: the coordinator loads its partitions 1 MiB at a time"),
    k("transaction.max.timeout.ms", T::Int, Some("900000"), I::High,
        "The largest transaction timeout a producer may ask for.")
        .check(V::AtLeast(1)),
    k("transactional.id.expiration.ms", T::Int, Some("604800000"), I::High,
        "How long an idle transactional id is kept.")
        .check(V::AtLeast(1)),
    k("transaction.abort.timed.out.transaction.cleanup.interval.ms", T::Int, Some("10000"), I::Low,
        "How often timed-out transactions are rolled back.")
        .check(V::AtLeast(1)),
    k("transaction.remove.expired.transaction.cleanup.interval.ms", T::Int, Some("3600000"), I::Low,
        "How often expired transactional ids are removed.")
        .check(V::AtLeast(1)),
    k("transaction.partition.verification.enable", T::Boolean, Some("true"), I::Low,
        "Verify that a partition was added to the transaction before a transactional write.")
        .note("accepted and ignored: rafka always verifies (KIP-890); false does not turn it off"),
    k("producer.id.expiration.ms", T::Int, Some("86400000"), I::Low,
        "How long an idle producer id's state is kept.")
        .check(V::AtLeast(1))
        .note(NOT_LIVE),
    // ---- Share groups (ShareCoordinatorConfig), in Kafka's example file ----
    k("share.coordinator.state.topic.replication.factor", T::Short, Some("3"), I::High,
        "The replication factor of __share_group_state.")
        .check(V::AtLeast(1))
        .note("accepted and ignored: rafka has no share groups"),
    k("share.coordinator.state.topic.min.isr", T::Short, Some("2"), I::High,
        "min.insync.replicas of __share_group_state.")
        .check(V::AtLeast(1))
        .note("accepted and ignored: rafka has no share groups"),
    k("share.coordinator.state.topic.num.partitions", T::Int, Some("50"), I::High,
        "The number of partitions of __share_group_state.")
        .check(V::AtLeast(1))
        .note("accepted and ignored: rafka has no share groups"),
    k("share.coordinator.state.topic.segment.bytes", T::Int, Some("104857600"), I::High,
        "The segment size of __share_group_state.")
        .check(V::AtLeast(1))
        .note("accepted and ignored: rafka has no share groups"),
    // ---- Kerberos (BrokerSecurityConfigs / SaslConfigs): GSSAPI is not supported ----
    // Kafka updates these per broker (as listener-reconfigurable SASL settings); librdkafka's
    // suite (0081) sets one on the broker resource. rafka keeps the values and uses none.
    k("sasl.kerberos.kinit.cmd", T::String, Some("/usr/bin/kinit"), I::Medium,
        "The Kerberos kinit command path.")
        .per_broker()
        .note(KERBEROS),
    k("sasl.kerberos.min.time.before.relogin", T::Long, Some("60000"), I::Medium,
        "The login thread's sleep time between refresh attempts.")
        .per_broker()
        .note(KERBEROS),
    k("sasl.kerberos.principal.to.local.rules", T::List, Some("DEFAULT"), I::Medium,
        "Rules that map a principal name to a short name.")
        .per_broker()
        .note(KERBEROS),
    k("sasl.kerberos.service.name", T::String, None, I::Medium,
        "The Kerberos principal name that Kafka runs as.")
        .per_broker()
        .note(KERBEROS),
    k("sasl.kerberos.ticket.renew.jitter", T::Double, Some("0.05"), I::Low,
        "Percentage of random jitter added to the renewal time.")
        .per_broker()
        .note(KERBEROS),
    k("sasl.kerberos.ticket.renew.window.factor", T::Double, Some("0.8"), I::Low,
        "The login thread sleeps until this fraction of the ticket's lifetime has passed.")
        .per_broker()
        .note(KERBEROS),
    // ---- The HTTP listener (rafka's own: health, metrics, console) ----
    k("http.listeners", T::List, Some("http://localhost:9644"), I::High,
        "Where the HTTP listener (/metrics, /health/live, /health/ready, the console) binds: a \
         list of http://host:port; empty for none.")
        .check(V::Custom(check_http_listeners))
        .note(NOT_LIVE),
    k("http.max.connections", T::Int, Some("64"), I::Medium,
        "The most connections the HTTP listener holds open at once; one more is closed at once.")
        .check(V::AtLeast(1))
        .note(NOT_LIVE),
    k("http.max.request.bytes", T::Int, Some("65536"), I::Low,
        "The largest HTTP request head, and the largest request body, the HTTP listener reads.")
        .check(V::AtLeast(8192))
        .note(NOT_LIVE),
    k("http.request.timeout.ms", T::Long, Some("30000"), I::Low,
        "How long the HTTP listener waits for a request's head (also between keep-alive requests).")
        .check(V::AtLeast(1))
        .note(NOT_LIVE),
    k("http.console.enable", T::Boolean, Some("true"), I::Medium,
        "Serve the web console (at / on the HTTP listener, and its JSON under /api/).")
        .note(NOT_LIVE),
    k("http.console.write.enable", T::Boolean, Some("false"), I::Medium,
        "Allow the console's write actions (create topic, change a topic config, reset a \
         group's offsets); read-only when false.")
        .note(NOT_LIVE),
    k("http.console.principal", T::String, Some("User:ANONYMOUS"), I::Medium,
        "The principal the console acts as when it calls the Kafka API handlers (the \
         authorizer checks its ACLs like a client's).")
        .note(NOT_LIVE),
    k("http.console.sample.interval.ms", T::Long, Some("5000"), I::Low,
        "How often the console samples group lag and topic throughput for its charts (120 \
         samples are kept).")
        .check(V::AtLeast(100))
        .note(NOT_LIVE),
    // ---- Metrics (MetricConfigs) ----
    k("metrics.enable", T::Boolean, Some("true"), I::Medium,
        "Whether the node records metrics and serves them at /metrics on the HTTP listener; \
         false: nothing is recorded (and /metrics answers 404).")
        .note("a rafka key, not Kafka's; read at start"),
    k("metrics.partition.level.enable", T::Boolean, Some("false"), I::Medium,
        "Whether /metrics has per-partition series (log size, segments, start and end \
         offsets). Off by default: a node with 100,000 partitions would serve 400,000 more \
         series per scrape.")
        .note("a rafka key, not Kafka's; read at start"),
    k("metric.reporters", T::List, Some(""), I::Low,
        "Classes of metric reporters.")
        .note("accepted and ignored: rafka loads no plugins"),
    k("metrics.num.samples", T::Int, Some("2"), I::Low,
        "The number of samples kept to compute metrics.")
        .check(V::AtLeast(1))
        .note(IGNORED),
    k("metrics.sample.window.ms", T::Long, Some("30000"), I::Low,
        "The window of a metrics sample.")
        .check(V::AtLeast(1))
        .note(IGNORED),
    k("metrics.recording.level", T::String, Some("INFO"), I::Low,
        "The highest recording level of metrics.")
        .check(V::OneOf(&["INFO", "DEBUG", "TRACE"]))
        .note(IGNORED),
];
