//! The `rafka` binary: `rafka [server.properties] [--override key=value]...` runs the broker;
//! `rafka <tool> …` (topics, configs, groups, quorum, produce, consume, perf-test, dump-log,
//! agent, transfer, tasks, completion) runs a tool (see `tools`).
//!
//! With no file it starts one combined broker+controller on localhost:9092 (controller on
//! localhost:9093) with data under `./rafka-data`. SIGTERM or Ctrl-C shut it down cleanly.

use rafka_broker::config::KafkaConfig;
use rafka_broker::http::HttpConfig;
use rafka_broker::lifecycle::AdvertisedListener;
use rafka_broker::network::NetworkConfig;
use rafka_broker::server::{KafkaServer, ListenerSpec, ServerSettings};
use rafka_controller::control::ControllerConfig;
use rafka_security::tls::{SslConfig, TlsClient, TlsServer};
use rafka_security::transport::{ClientSecurity, ServerSecurity};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod tools;

const USAGE: &str = "\
rafka — a message broker that speaks the Apache Kafka protocol

usage: rafka [server.properties] [--override key=value]...

  server.properties   a Kafka (KRaft) properties file: node.id, process.roles,
                      controller.quorum.voters, listeners, advertised.listeners,
                      controller.listener.names, log.dirs, and the log and topic defaults.
                      process.roles may be broker,controller (combined), controller
                      (a quorum voter only) or broker (follows the metadata log).
                      Without one: a single combined broker+controller, node id 1,
                      PLAINTEXT on localhost:9092, controller on localhost:9093,
                      data under ./rafka-data.
  --override k=v      set a property (beats the file); may repeat.
  --help, --version

Tools (rafka <tool> --help for each):
  topics, configs, groups, quorum, produce, consume, perf-test, dump-log, completion;
  log collection: agent, transfer, tasks

Logging: RUST_LOG (e.g. RUST_LOG=debug, RUST_LOG=rafka_broker=debug); default info.";

fn settings(config: &KafkaConfig) -> anyhow::Result<ServerSettings> {
    let voters = config
        .quorum_voters()
        .iter()
        .map(|v| (v.id as u64, format!("{}:{}", v.host, v.port)))
        .collect();
    let listeners: Vec<ListenerSpec> = config
        .broker_listeners()
        .into_iter()
        .map(|e| {
            Ok(ListenerSpec {
                name: e.listener_name.clone(),
                host: e.host.clone(),
                port: e.port,
                security: server_security(config, &e.listener_name)?,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    // A controller binds its controller listener. A broker-only node reaches the voters at
    // controller.quorum.voters and follows the log as a Raft learner: it binds a learner listener
    // (any free port, on its inter-broker listener's host) for the leader's pushes — never its
    // client listener.
    let roles = config.process_roles();
    let learner_listener = if roles.broker && !roles.controller {
        let inter_broker = config.inter_broker_listener_name();
        listeners
            .iter()
            .find(|l| l.name == inter_broker)
            .or_else(|| listeners.first())
            .map(|l| ListenerSpec {
                name: rafka_controller::server::LEARNER_LISTENER_NAME.to_owned(),
                host: l.host.clone(),
                port: 0,
                // What the controllers connect with; see `controller_listener_security`.
                security: ServerSecurity::default(),
            })
    } else {
        None
    };
    let controller_listener = if roles.controller {
        let spec = config
            .controller_listeners()
            .first()
            .map(|e| ListenerSpec {
                name: e.listener_name.clone(),
                host: e.host.clone(),
                port: e.port,
                security: ServerSecurity::default(),
            })
            .ok_or_else(|| {
                anyhow::anyhow!("listeners: no listener is named in controller.listener.names")
            })?;
        Some(spec)
    } else {
        None
    };
    let names: Vec<String> = listeners.iter().map(|l| l.name.clone()).collect();
    let advertised = config
        .advertised_listeners()
        .iter()
        .filter(|e| names.contains(&e.listener_name))
        .map(|e| AdvertisedListener {
            name: e.listener_name.clone(),
            host: if e.host.is_empty() {
                "localhost".into()
            } else {
                e.host.clone()
            },
            port: e.port,
        })
        .collect();
    let network = NetworkConfig::from_kafka_config(config)?;
    Ok(ServerSettings {
        node_id: config.node_id(),
        voters,
        roles,
        listeners,
        controller_listener,
        learner_listener,
        controller_listener_config: rafka_controller::server::ListenerConfig {
            security: controller_listener_security(config)?,
            max_request_bytes: (config.socket_request_max_bytes().max(1) as usize)
                .min(rafka_controller::network::MAX_FRAME_BYTES),
            idle_timeout: Duration::from_millis(config.connections_max_idle_ms().max(1) as u64),
            // The client listeners' per-address limits; `max.connections` capped at the
            // controller listener's own default (it serves only the cluster's nodes).
            limits: rafka_controller::connection_quotas::ConnectionLimits {
                max_connections: (config.max_connections().max(1) as usize)
                    .min(rafka_controller::server::DEFAULT_MAX_CONNECTIONS),
                max_connections_per_ip: network.limits.max_connections_per_ip,
                max_connections_per_ip_overrides: network
                    .limits
                    .max_connections_per_ip_overrides
                    .clone(),
                ..Default::default()
            },
        },
        controller_client_security: Arc::new(client_security(
            config,
            config
                .controller_listener_names()
                .first()
                .map(String::as_str),
            "sasl.mechanism.controller.protocol",
        )?),
        inter_broker_client_security: Arc::new(client_security(
            config,
            Some(config.inter_broker_listener_name()),
            "sasl.mechanism.inter.broker.protocol",
        )?),
        advertised,
        rack: config.rack(),
        log_dirs: config.log_dirs().to_vec(),
        metadata_dir: config.metadata_log_dir().to_path_buf(),
        controller: ControllerConfig {
            cluster_id: config.cluster_id(),
            num_partitions: config.num_partitions(),
            default_replication_factor: config.default_replication_factor() as i16,
            delete_topic_enable: config.delete_topic_enable(),
            unclean_leader_election_enable: config.unclean_leader_election_enable(),
            session_timeout: Duration::from_millis(config.broker_session_timeout_ms().max(1) as u64),
            controller_listener_name: config
                .controller_listener_names()
                .first()
                .cloned()
                .unwrap_or_else(|| "CONTROLLER".to_owned()),
            auto_leader_rebalance_enable: config.auto_leader_rebalance_enable(),
            leader_imbalance_check_interval: Duration::from_secs(
                config.leader_imbalance_check_interval_seconds().max(1) as u64,
            ),
            group_config_bounds: config.group_config_bounds(),
        },
        network,
        auto_create_topics: config.auto_create_topics_enable(),
        num_partitions: config.num_partitions(),
        default_replication_factor: config.default_replication_factor() as i16,
        heartbeat_interval: Duration::from_millis(
            config.broker_heartbeat_interval_ms().max(10) as u64
        ),
        http: HttpConfig::from_kafka_config(config),
        kafka_config: Arc::new(config.clone()),
    })
}

/// Bounds glibc's malloc arenas to one per core (unless `MALLOC_ARENA_MAX` is set, which glibc
/// reads itself). By default glibc gives threads that allocate at the same time arenas of their
/// own, up to eight per core; the threads that load thousands of logs at start
/// (`num.recovery.threads.per.data.dir`) and tokio's blocking pool then leave each partition's
/// long-lived state spread over many arenas among freed temporaries, which an arena keeps. At
/// 3,000 partitions (`benches/partitions.rs`) that was 9.2 KB of RSS a partition after a restart,
/// against 5.7 KB with one arena; the heap actually live was 3.9 KB a partition.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let arenas = i32::try_from(cores).unwrap_or(i32::MAX);
    // SAFETY: mallopt only sets an allocator parameter; called before any other thread exists.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

fn main() {
    let os_args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if os_args
        .get(1)
        .and_then(|a| a.to_str())
        .is_some_and(|a| tools::TOOLS.contains(&a))
    {
        std::process::exit(tools::main(os_args));
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return;
    }
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("rafka {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    limit_malloc_arenas();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut file = None;
    let mut overrides = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if a == "--override" {
            match it.next() {
                Some(kv) => overrides.push(kv),
                None => fail("--override needs key=value"),
            }
        } else if let Some(kv) = a.strip_prefix("--override=") {
            overrides.push(kv.to_owned());
        } else if a.starts_with('-') {
            fail(&format!("unknown option {a} (see --help)"));
        } else if file.is_none() {
            file = Some(PathBuf::from(a));
        } else {
            fail(&format!("unexpected argument {a} (see --help)"));
        }
    }
    let config = match KafkaConfig::load_args(file.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => fail(&e.to_string()),
    };
    for w in config.warnings() {
        tracing::warn!("{w}");
    }
    // An unwritable log directory stops the start with the key and the path.
    if let Err(e) = config.check_log_dirs() {
        fail(&e.to_string());
    }
    let settings = match settings(&config) {
        Ok(s) => s,
        Err(e) => fail(&e.to_string()),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => fail(&format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(async move {
        let server = match KafkaServer::start(settings).await {
            Ok(s) => s,
            Err(e) => fail(&e.to_string()),
        };
        for (name, addr) in &server.bound {
            tracing::info!(listener = %name, %addr, "serving");
        }
        let fatal = tokio::select! {
            _ = wait_for_signal() => None,
            why = server.failed() => Some(why),
        };
        // A fatal error still stops in order (logs flushed, checkpoints and the clean-shutdown
        // marker written), as Kafka's broker shuts down before it exits 1: otherwise the next
        // start would recover every log.
        match &fatal {
            Some(why) => tracing::error!(reason = %why, "cannot go on: shutting down"),
            None => tracing::info!("shutting down"),
        }
        server.shutdown().await;
        if let Some(why) = fatal {
            fail(&why);
        }
    });
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// One clear line, then exit 1.
fn fail(msg: &str) -> ! {
    eprintln!("rafka: {msg}");
    std::process::exit(1);
}

/// How this node connects to other nodes' `listener` (by its name): its security protocol from
/// `listener.security.protocol.map`; when it uses TLS, a TLS client built from that listener's
/// own `ssl.*` keys (as Kafka uses a listener's keystore and truststore on both sides); when it
/// uses SASL, the mechanism `mechanism_key` names with the username and password of the
/// listener's JAAS configuration.
fn client_security(
    config: &KafkaConfig,
    listener: Option<&str>,
    mechanism_key: &str,
) -> anyhow::Result<ClientSecurity> {
    let protocol = listener
        .and_then(|l| config.listener_security_protocol_map().get(l).copied())
        .unwrap_or(rafka_security::SecurityProtocol::Plaintext);
    let tls = match listener {
        Some(l) if protocol.uses_tls() => Some(
            TlsClient::new(&ssl_config(config, l)?)
                .map_err(|e| anyhow::anyhow!("listener {l} (client side): {e}"))?,
        ),
        _ => None,
    };
    let sasl = match listener {
        Some(l) if protocol.uses_sasl() => config.sasl_client_credentials(l, mechanism_key)?,
        _ => None,
    };
    Ok(ClientSecurity {
        protocol,
        tls,
        sasl,
    })
}

/// The `ssl.*` keys of `listener` (`listener.name.<listener>.ssl.*` first).
fn ssl_config(config: &KafkaConfig, listener: &str) -> anyhow::Result<SslConfig> {
    config
        .ssl_config(listener)
        .map_err(|e| anyhow::anyhow!("listener {listener}: {e}"))
}

/// What the listener `name` speaks to the connections it accepts; its TLS and SASL
/// configurations are loaded (and checked) now, so a bad keystore or JAAS file stops the start.
fn server_security(config: &KafkaConfig, name: &str) -> anyhow::Result<ServerSecurity> {
    let protocol = config
        .listener_security_protocol_map()
        .get(name)
        .copied()
        .unwrap_or(rafka_security::SecurityProtocol::Plaintext);
    let tls = if protocol.uses_tls() {
        Some(
            TlsServer::new(ssl_config(config, name)?)
                .map_err(|e| anyhow::anyhow!("listener {name}: {e}"))?,
        )
    } else {
        None
    };
    // On SASL listeners the mechanisms and credentials (SCRAM's come from the metadata image,
    // added at start).
    let sasl = if protocol.uses_sasl() {
        config.sasl_server_config(name)?.map(Arc::new)
    } else {
        None
    };
    Ok(ServerSecurity {
        protocol,
        tls,
        sasl,
    })
}

/// The controller listener's security (the first of `controller.listener.names`), which a
/// broker-only node's learner listener speaks too: the controllers reach both with the same
/// client settings.
fn controller_listener_security(config: &KafkaConfig) -> anyhow::Result<ServerSecurity> {
    match config.controller_listener_names().first() {
        Some(name) => server_security(config, name),
        None => Ok(ServerSecurity::default()),
    }
}
