//! `KafkaServer`: one rafka process — the controller quorum member, the log directories, the
//! replica manager, the broker's registration and heartbeats, and the client listeners — started
//! in that order and shut down in reverse.
//!
//! The broker acts on metadata only after the replica manager has applied it: images from the
//! quorum go through `ReplicaManager::apply_image` first and are then published to the request
//! handlers, so a topic a client can see in Metadata has its partitions in place. Before that,
//! the broker's configuration in force ([`DynamicBrokerConfig`]) takes the image's dynamic
//! broker configs, so the live logs' configs are recomputed from them.
//!
//! Listeners keep their roles: a voter's controller listener serves the controller and Raft
//! APIs; a broker-only node, which follows the metadata log as a Raft learner, binds a learner
//! listener for the leader's pushes (`learner_listener`, on the inter-broker listener's host)
//! and registers it under [`LEARNER_LISTENER_NAME`]; the client listeners serve neither.
//!
//! Shutdown (SIGTERM): stop accepting, ask the controller for a controlled shutdown (leadership
//! moves away first), flush and close every log, write the checkpoints and the clean-shutdown
//! marker, stop Raft.

use crate::add_partitions_to_txn_manager::AddPartitionsToTxnManager;
use crate::apis::KafkaApis;
use crate::config::dynamic_broker_config::DynamicBrokerConfig;
use crate::config::ssl::DynamicListenerSsl;
use crate::config::{KafkaConfig, ProcessRoles};
use crate::controller_channel::ControllerChannel;
use crate::group_coordinator::membership::{GroupMembership, MembershipConfig};
use crate::group_coordinator::{CoordinatorConfig, GroupCoordinator};
use crate::inter_node_client::{ConnectionConfig, InterNodeClient};
use crate::lifecycle::{AdvertisedListener, BrokerLifecycleManager};
use crate::network::listen::{listen, ListenOptions};
use crate::network::{self, NetworkConfig};
use crate::now_ms;
use crate::producer_id_manager::ProducerIdManager;
use crate::replica_manager::{ReplicaManager, TopicConfigs};
use crate::transaction_coordinator::markers::MarkerChannel;
use crate::transaction_coordinator::{TransactionConfig, TransactionCoordinator};
use rafka_controller::control::ControllerConfig;
use rafka_controller::image::MetadataImage;
use rafka_controller::node::{ControllerNode, ControllerNodeConfig};
use rafka_controller::raft_types::NodeId;
use rafka_controller::server::{ListenerConfig, LEARNER_LISTENER_NAME};
use rafka_security::transport::{ClientSecurity, ServerSecurity};
use rafka_storage::{DiskFs, FileBudget, FileSystem, LogManager};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A client listener to bind.
#[derive(Debug, Clone)]
pub struct ListenerSpec {
    pub name: String,
    pub host: String,
    pub port: u16,
    /// What the listener speaks (`listener.security.protocol.map`), with its TLS and SASL
    /// configurations (SCRAM credentials are added at start, from the metadata image).
    pub security: ServerSecurity,
}

/// Everything a server needs, resolved from the configuration.
#[derive(Clone)]
pub struct ServerSettings {
    pub node_id: i32,
    pub voters: BTreeMap<NodeId, String>,
    /// `process.roles`: a broker serves clients on `listeners`; a controller is a voter of
    /// the metadata quorum on `controller_listener`. A broker that is not a controller follows
    /// the metadata log as a Raft learner.
    pub roles: ProcessRoles,
    /// The client listeners (empty without the broker role).
    pub listeners: Vec<ListenerSpec>,
    /// The controller listener (only with the controller role).
    pub controller_listener: Option<ListenerSpec>,
    /// A broker-only node's learner listener: where the active controller pushes the metadata
    /// log (port 0: any free port; it is registered with the controller, never advertised to
    /// clients).
    pub learner_listener: Option<ListenerSpec>,
    /// The bounds of the controller (or learner) listener.
    pub controller_listener_config: ListenerConfig,
    /// How this node connects to the controllers (`controller.listener.names`' protocol): the
    /// broker's controller channel and a voter's Raft RPCs.
    pub controller_client_security: Arc<ClientSecurity>,
    /// How a follower connects to leaders (`inter.broker.listener.name`'s protocol).
    pub inter_broker_client_security: Arc<ClientSecurity>,
    pub advertised: Vec<AdvertisedListener>,
    pub rack: Option<String>,
    pub log_dirs: Vec<PathBuf>,
    pub metadata_dir: PathBuf,
    pub controller: ControllerConfig,
    pub network: NetworkConfig,
    pub auto_create_topics: bool,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub heartbeat_interval: Duration,
    /// The HTTP listener (health, metrics, console).
    pub http: crate::http::HttpConfig,
    /// The configuration as loaded. Dynamic broker configs from the metadata log are layered
    /// over it ([`DynamicBrokerConfig`]) for DescribeConfigs, validation and the live logs.
    pub kafka_config: Arc<KafkaConfig>,
}

/// Why the server could not start: one clear line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {name} {addr}: {source}")]
    Bind {
        name: String,
        addr: String,
        source: std::io::Error,
    },
    #[error("log directory {path} is not usable: {what}")]
    LogDir { path: PathBuf, what: String },
    #[error("{0}")]
    Controller(#[from] rafka_controller::node::NodeError),
}

/// A running server.
pub struct KafkaServer {
    shutdown_tx: watch::Sender<bool>,
    controller: Arc<ControllerNode>,
    /// The broker's own parts (absent on a controller-only node).
    broker: Option<BrokerParts>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The addresses the client listeners are bound to (ports resolved).
    pub bound: Vec<(String, std::net::SocketAddr)>,
}

struct BrokerParts {
    log_manager: Arc<LogManager>,
    lifecycle_manager: Arc<BrokerLifecycleManager>,
    lifecycle: tokio::task::JoinHandle<()>,
}

/// Binds a Kafka listener (client or controller) with the socket options of the configuration
/// (`socket.send.buffer.bytes`, `socket.receive.buffer.bytes`, `socket.listen.backlog.size`).
async fn bind(spec: &ListenerSpec, options: ListenOptions) -> Result<TcpListener, StartError> {
    let addr = format!(
        "{}:{}",
        if spec.host.is_empty() {
            "0.0.0.0"
        } else {
            &spec.host
        },
        spec.port
    );
    listen(&addr, options)
        .await
        .map_err(|source| StartError::Bind {
            name: spec.name.clone(),
            addr,
            source,
        })
}

impl KafkaServer {
    pub async fn start(settings: ServerSettings) -> Result<KafkaServer, StartError> {
        let fs: Arc<dyn FileSystem> = Arc::new(DiskFs);
        // `metrics.enable=false`: nothing records, and `/metrics` answers 404.
        let metrics = {
            let c = settings.kafka_config.metrics_config();
            c.enabled
                .then(|| Arc::new(crate::metrics::NodeMetrics::new(c)))
        };
        // Every listener is bound before anything starts, so a port in use fails cleanly.
        let listen_options = ListenOptions::from_kafka_config(&settings.kafka_config);
        let controller_listener = match (&settings.controller_listener, &settings.learner_listener)
        {
            (Some(spec), _) if settings.roles.controller => Some(bind(spec, listen_options).await?),
            (_, Some(spec)) if settings.roles.broker => Some(bind(spec, listen_options).await?),
            _ => None,
        };
        // The learner listener is registered with the controller at its bound port, on the host
        // the inter-broker listener advertises.
        let mut advertised = settings.advertised.clone();
        if let (false, Some(l), Some(spec)) = (
            settings.roles.controller,
            controller_listener.as_ref(),
            settings.learner_listener.as_ref(),
        ) {
            let port = l
                .local_addr()
                .map_err(|source| StartError::Bind {
                    name: spec.name.clone(),
                    addr: format!("{}:{}", spec.host, spec.port),
                    source,
                })?
                .port();
            let inter_broker = settings.kafka_config.inter_broker_listener_name();
            let host = advertised
                .iter()
                .find(|a| a.name == inter_broker)
                .or_else(|| advertised.first())
                .map(|a| a.host.clone())
                .unwrap_or_else(|| spec.host.clone());
            advertised.push(AdvertisedListener {
                name: LEARNER_LISTENER_NAME.to_owned(),
                host,
                port,
            });
        }
        let mut http_listeners = Vec::new();
        for (host, port) in &settings.http.listeners {
            let listener =
                crate::http::bind(host, *port)
                    .await
                    .map_err(|source| StartError::Bind {
                        name: "HTTP".into(),
                        addr: format!("{host}:{port}"),
                        source,
                    })?;
            http_listeners.push(listener);
        }
        let mut client_listeners = Vec::new();
        if settings.roles.broker {
            for spec in &settings.listeners {
                client_listeners.push((
                    spec.name.clone(),
                    spec.security.clone(),
                    bind(spec, listen_options).await?,
                ));
            }
        }
        let mut node_config = ControllerNodeConfig::new(
            settings.node_id as NodeId,
            settings.voters.clone(),
            settings.metadata_dir.clone(),
        );
        node_config.controller = settings.controller.clone();
        node_config.log_store = rafka_controller::log_store::LogStoreOptions {
            segment_bytes: settings.kafka_config.metadata_log_segment_bytes().max(1) as u64,
            segment_ms: settings.kafka_config.metadata_log_segment_ms(),
        };
        node_config.listener = settings.controller_listener_config.clone();
        node_config.client_security = settings.controller_client_security.clone();
        let controller =
            Arc::new(ControllerNode::start(node_config, fs.clone(), controller_listener).await?);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        if !settings.roles.broker {
            let mut tasks = Vec::new();
            let mut bound = Vec::new();
            serve_http(
                &settings,
                http_listeners,
                &controller,
                &metrics,
                None,
                &shutdown_rx,
                &mut tasks,
                &mut bound,
            );
            return Ok(KafkaServer {
                shutdown_tx,
                controller,
                broker: None,
                tasks,
                bound,
            });
        }
        // This broker's configuration in force: the static one with the image's dynamic broker
        // configs (`log.retention.ms`, …) installed. The live logs obey the topic's overrides
        // over it. Updated from each image before the replica manager applies that image.
        let dynamic_config = Arc::new(DynamicBrokerConfig::new(
            settings.kafka_config.clone(),
            settings.node_id,
        ));
        let log_manager = {
            let fs = fs.clone();
            let dirs = settings.log_dirs.clone();
            let image = controller.image();
            dynamic_config.update_from_image(&image);
            let tc = dynamic_config.clone();
            let budget = match settings.kafka_config.log_open_files_max() {
                n if n > 0 => FileBudget::new(n as usize),
                _ => FileBudget::from_process_limits(),
            };
            tracing::info!(
                max_open_files = budget.max_open_files(),
                nofile = ?rafka_storage::file_budget::nofile_limit(),
                max_map_count = ?rafka_storage::file_budget::max_map_count(),
                "log file budget"
            );
            let threads = settings
                .kafka_config
                .get::<i32>("num.recovery.threads.per.data.dir")
                .map_or(rafka_storage::log_manager::DEFAULT_RECOVERY_THREADS, |n| {
                    n.max(1) as usize
                });
            let started = std::time::Instant::now();
            let opened = tokio::task::spawn_blocking(move || {
                LogManager::open_with_budget(
                    fs,
                    &dirs,
                    &|tp| tc.topic_settings(&image, &tp.topic).log_config,
                    now_ms(),
                    budget,
                    threads,
                )
            })
            .await
            .map_err(|e| StartError::LogDir {
                path: settings.log_dirs[0].clone(),
                what: e.to_string(),
            })?;
            if let Some(m) = &metrics {
                m.set_log_recovery_time(started.elapsed());
            }
            if let Ok(lm) = &opened {
                // As Kafka's LogManager: "Loaded N logs in X ms".
                tracing::info!(
                    logs = lm.partitions().len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    threads,
                    "loaded logs"
                );
            }
            Arc::new(opened.map_err(|e| StartError::LogDir {
                path: settings.log_dirs[0].clone(),
                what: e.to_string(),
            })?)
        };
        let replica_manager = Arc::new(ReplicaManager::new(
            settings.node_id,
            log_manager.clone(),
            dynamic_config.clone(),
        ));
        if let Some(m) = &metrics {
            replica_manager.set_metrics(m.clone());
        }
        let mut tasks = Vec::new();
        let groups = {
            let c = &settings.kafka_config;
            let int = |k: &str, d: i32| c.get::<i32>(k).unwrap_or(d);
            let membership = GroupMembership::new(MembershipConfig {
                min_session_timeout_ms: int("group.min.session.timeout.ms", 6000),
                max_session_timeout_ms: int("group.max.session.timeout.ms", 1_800_000),
                initial_rebalance_delay_ms: int("group.initial.rebalance.delay.ms", 3000),
                max_size: int("group.max.size", i32::MAX),
            });
            GroupCoordinator::new(
                settings.node_id,
                CoordinatorConfig {
                    num_partitions: int("offsets.topic.num.partitions", 50).max(1),
                    replication_factor: c
                        .get::<i16>("offsets.topic.replication.factor")
                        .unwrap_or(3),
                    segment_bytes: int("offsets.topic.segment.bytes", 104_857_600),
                    metadata_max_bytes: int("offset.metadata.max.bytes", 4096).max(0) as usize,
                    retention_ms: i64::from(int("offsets.retention.minutes", 10080)) * 60_000,
                    retention_check_interval_ms: c
                        .get::<i64>("offsets.retention.check.interval.ms")
                        .unwrap_or(600_000),
                    consumer: crate::group_coordinator::consumer::ConsumerGroupConfig {
                        session_timeout_ms: int("group.consumer.session.timeout.ms", 45_000),
                        heartbeat_interval_ms: int("group.consumer.heartbeat.interval.ms", 5_000),
                        max_size: int("group.consumer.max.size", i32::MAX),
                        migration_policy: c
                            .get::<String>("group.consumer.migration.policy")
                            .as_deref()
                            .and_then(
                                crate::group_coordinator::consumer::MigrationPolicy::from_name,
                            )
                            .unwrap_or_default(),
                        assignors: {
                            let a: Vec<_> = c
                                .get_list("group.consumer.assignors")
                                .iter()
                                .map(String::as_str)
                                .filter_map(crate::group_coordinator::consumer::assignor::Assignor::from_name)
                                .collect();
                            if a.is_empty() {
                                crate::group_coordinator::consumer::ConsumerGroupConfig::default()
                                    .assignors
                            } else {
                                a
                            }
                        },
                    },
                },
                membership,
                replica_manager.clone(),
            )
        };
        // The group coordinator's timers: sessions, rebalance timeouts, the initial delay, group
        // metadata records and offset expiry. It ticks every 100 ms and also wakes at the
        // earliest membership deadline, so a session expires at its deadline (Kafka's timer
        // wheel does the same); a deadline set less than 100 ms ahead is met at the next tick.
        {
            let groups = groups.clone();
            let mut shutdown = shutdown_rx.clone();
            tasks.push(tokio::spawn(async move {
                const PERIOD: Duration = Duration::from_millis(100);
                loop {
                    let now = tokio::time::Instant::now();
                    let wake = groups
                        .next_deadline()
                        .map(tokio::time::Instant::from_std)
                        .map_or(now + PERIOD, |d| {
                            d.clamp(now + Duration::from_millis(1), now + PERIOD)
                        });
                    tokio::select! {
                        _ = tokio::time::sleep_until(wake) => {
                            groups.tick(std::time::Instant::now())
                        }
                        _ = shutdown.changed() => return,
                    }
                }
            }));
        }
        // The connections to the other nodes: one client per listener they go to.
        let controller_client = Arc::new(InterNodeClient::new(
            "broker-to-controller",
            ConnectionConfig::new(
                format!("broker-{}", settings.node_id),
                settings.controller_client_security.clone(),
            ),
        ));
        let inter_broker_client = Arc::new(InterNodeClient::new(
            "inter-broker",
            ConnectionConfig::new(
                format!("broker-{}", settings.node_id),
                settings.inter_broker_client_security.clone(),
            ),
        ));
        let channel = Arc::new(
            ControllerChannel::new(
                controller.clone(),
                settings.voters.clone(),
                Duration::from_millis(
                    settings.kafka_config.quorum_request_timeout_ms().max(1) as u64
                ),
                controller_client.clone(),
            )
            // Two heartbeat intervals: a controller that stops answering costs one attempt, well
            // within the session.
            .with_heartbeat_timeout(settings.heartbeat_interval * 2),
        );
        let lifecycle = BrokerLifecycleManager::new(
            settings.node_id,
            channel.clone(),
            advertised,
            settings.rack.clone(),
            crate::lifecycle::LifecycleConfig {
                heartbeat_interval: settings.heartbeat_interval,
                controlled_shutdown: settings.kafka_config.controlled_shutdown_enable(),
                initial_registration_timeout: Duration::from_millis(
                    settings
                        .kafka_config
                        .initial_broker_registration_timeout_ms()
                        .max(1) as u64,
                ),
            },
        );
        let producer_ids = Arc::new(ProducerIdManager::new(
            settings.node_id,
            channel.clone(),
            lifecycle.clone(),
        ));
        let marker_channel = MarkerChannel {
            broker_id: settings.node_id,
            replica_manager: replica_manager.clone(),
            groups: groups.clone(),
            listener_name: settings
                .kafka_config
                .inter_broker_listener_name()
                .to_owned(),
            client: inter_broker_client.clone(),
            queues: Default::default(),
        };
        let transactions = {
            let c = &settings.kafka_config;
            let int = |k: &str, d: i32| c.get::<i32>(k).unwrap_or(d);
            TransactionCoordinator::new(
                TransactionConfig {
                    num_partitions: int("transaction.state.log.num.partitions", 50).max(1),
                    replication_factor: c
                        .get::<i16>("transaction.state.log.replication.factor")
                        .unwrap_or(3),
                    segment_bytes: int("transaction.state.log.segment.bytes", 104_857_600),
                    min_isr: int("transaction.state.log.min.isr", 2),
                    max_timeout_ms: int("transaction.max.timeout.ms", 900_000),
                    abort_timed_out_interval_ms: i64::from(
                        int(
                            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                            10_000,
                        )
                        .max(1),
                    ),
                    transactional_id_expiration_ms: i64::from(
                        int("transactional.id.expiration.ms", 604_800_000).max(1),
                    ),
                    remove_expired_interval_ms: i64::from(
                        int(
                            "transaction.remove.expired.transaction.cleanup.interval.ms",
                            3_600_000,
                        )
                        .max(1),
                    ),
                },
                replica_manager.clone(),
                producer_ids.clone(),
                marker_channel.clone(),
            )
        };
        let txn_verifier = AddPartitionsToTxnManager::new(marker_channel, transactions.clone());
        // The transaction coordinator's timer: timed-out transactions are aborted.
        {
            let transactions = transactions.clone();
            let mut shutdown = shutdown_rx.clone();
            let every = Duration::from_millis(
                transactions.config().abort_timed_out_interval_ms.max(1) as u64,
            );
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(every) => transactions.abort_timed_out().await,
                        _ = shutdown.changed() => return,
                    }
                }
            }));
        }
        // ... and idle transactional ids expire (`transactional.id.expiration.ms`).
        {
            let transactions = transactions.clone();
            let mut shutdown = shutdown_rx.clone();
            let every = Duration::from_millis(
                transactions.config().remove_expired_interval_ms.max(1) as u64,
            );
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(every) => {
                            transactions.remove_expired_transactional_ids(crate::now_ms()).await;
                        }
                        _ = shutdown.changed() => return,
                    }
                }
            }));
        }
        // Images reach the handlers only after the replica manager has acted on them (and the
        // group coordinator has started loading the `__consumer_offsets` partitions it leads).
        let (broker_images_tx, broker_images) = watch::channel(Arc::new(MetadataImage::new()));
        // The dynamic SSL updates of the client listeners, applied before the handlers see the
        // image that holds them.
        let dynamic_ssl = Arc::new(std::sync::Mutex::new(DynamicListenerSsl::new(
            settings
                .listeners
                .iter()
                .filter_map(|l| Some((l.name.clone(), l.security.tls.clone()?)))
                .collect(),
        )));
        {
            let mut rx = controller.subscribe();
            let rm = replica_manager.clone();
            let groups = groups.clone();
            let transactions = transactions.clone();
            let lifecycle = lifecycle.clone();
            let dynamic_config = dynamic_config.clone();
            tasks.push(tokio::spawn(async move {
                // Nothing acts on the metadata before this incarnation is registered (see
                // `lifecycle`): a restarted broker must not fetch, rejoin ISRs and lead partitions
                // while the controller still refuses it and it cannot serve their clients.
                lifecycle.wait_registered().await;
                let mut current = Arc::new(MetadataImage::new());
                loop {
                    let next = rx.borrow_and_update().clone();
                    if !Arc::ptr_eq(&next, &current) {
                        let (old, new) = (current.clone(), next.clone());
                        let rm = rm.clone();
                        let dynamic_ssl = dynamic_ssl.clone();
                        // The configuration in force first: the replica manager recomputes the
                        // live logs' configs from it (every log, when the dynamic broker
                        // configs changed) and the handlers read it.
                        dynamic_config.update_from_image(&new);
                        let config = dynamic_config.current_config();
                        // Log creation and deletion, and loading keystores, are file-system work.
                        let _ = tokio::task::spawn_blocking(move || {
                            rm.apply_image(&old, &new);
                            // Only this task takes the lock.
                            dynamic_ssl
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .on_config(&config);
                        })
                        .await;
                        groups.on_image(&next);
                        transactions.on_image(&next);
                        current = next;
                        broker_images_tx.send_replace(current.clone());
                    }
                    if rx.changed().await.is_err() {
                        return;
                    }
                }
            }));
        }
        // Leaders whose fetch connection failed: Metadata holds answers that still name them
        // (see `lost_leaders`).
        let lost_leaders = Arc::new(crate::lost_leaders::LostLeaders::new(
            Duration::from_millis(settings.kafka_config.broker_session_timeout_ms().max(1) as u64),
        ));
        // Replication: fetchers for the partitions this broker follows, ISR proposals for those
        // it leads.
        {
            let c = &settings.kafka_config;
            replica_manager.set_replica_lag_time_max_ms(c.replica_lag_time_max_ms());
            let fetcher = crate::replica_fetcher::FetcherConfig {
                broker_id: settings.node_id,
                listener_name: c.inter_broker_listener_name().to_owned(),
                max_wait_ms: c.replica_fetch_wait_max_ms(),
                min_bytes: c.replica_fetch_min_bytes(),
                partition_max_bytes: c.replica_fetch_max_bytes(),
                response_max_bytes: c.replica_fetch_response_max_bytes(),
                backoff: Duration::from_millis(c.replica_fetch_backoff_ms().max(0) as u64),
                socket_timeout: Duration::from_millis(c.replica_socket_timeout_ms().max(1) as u64),
                receive_buffer: u32::try_from(c.replica_socket_receive_buffer_bytes())
                    .ok()
                    .filter(|&n| n > 0),
                client: inter_broker_client.clone(),
            };
            tasks.push(tokio::spawn(crate::replica_fetcher::run(
                fetcher,
                replica_manager.clone(),
                lost_leaders.clone(),
                lifecycle.clone(),
                broker_images.clone(),
                shutdown_rx.clone(),
            )));
            // Kafka checks the ISR at half the lag time; at most every 500 ms here.
            let interval =
                Duration::from_millis((c.replica_lag_time_max_ms() / 2).clamp(50, 500) as u64);
            tasks.push(tokio::spawn(crate::alter_partition_manager::run(
                settings.node_id,
                interval,
                replica_manager.clone(),
                channel.clone(),
                lifecycle.clone(),
                broker_images.clone(),
                shutdown_rx.clone(),
            )));
        }
        let lifecycle_task = tokio::spawn(lifecycle.clone().run(
            controller.subscribe(),
            broker_images.clone(),
            shutdown_rx.clone(),
        ));
        let apis = Arc::new(KafkaApis {
            broker_id: settings.node_id,
            replica_manager: replica_manager.clone(),
            metadata: broker_images.clone(),
            controller: channel,
            auto_create_topics: settings.auto_create_topics,
            num_partitions: settings.num_partitions,
            default_replication_factor: settings.default_replication_factor,
            groups,
            producer_ids,
            transactions,
            txn_verifier,
            config: settings.kafka_config.clone(),
            dynamic_config,
            authorizer: settings.kafka_config.authorizer(),
            lost_leaders,
        });
        let mut bound = Vec::new();
        // One set of connection counts and one request memory pool for all client listeners:
        // `max.connections` and `queued.max.request.bytes` are broker-wide.
        let sockets =
            network::SocketServer::with_metrics(settings.network.clone(), metrics.clone());
        for (name, security, listener) in client_listeners {
            if let Ok(a) = listener.local_addr() {
                bound.push((name.clone(), a));
            }
            let security = with_scram_store(security, &broker_images);
            // Bound now (a port in use fails the start), accepted from only once the broker
            // serves: until then clients wait in the kernel's accept backlog, their requests
            // unread, and are answered as soon as the broker is ready — with the brokers listed
            // and a controller that knows this one — instead of getting an answer without
            // brokers and backing off (Kafka's `enableRequestProcessing` after the unfence).
            let serve = network::serve(
                listener,
                name,
                security,
                apis.clone(),
                sockets.clone(),
                shutdown_rx.clone(),
            );
            let lifecycle = lifecycle.clone();
            let mut shutdown = shutdown_rx.clone();
            tasks.push(tokio::spawn(async move {
                tokio::select! {
                    () = lifecycle.wait_serving() => serve.await,
                    () = network::shutdown_signalled(&mut shutdown) => {}
                }
            }));
        }
        serve_http(
            &settings,
            http_listeners,
            &controller,
            &metrics,
            Some(crate::http::BrokerState {
                apis: apis.clone(),
                lifecycle: lifecycle.clone(),
                sockets: sockets.clone(),
                inter_node: vec![controller_client.clone(), inter_broker_client.clone()],
            }),
            &shutdown_rx,
            &mut tasks,
            &mut bound,
        );
        // Retention (with producer expiry), rolled-segment flushes and the three checkpoints,
        // each on its own period (`log_tasks`).
        {
            let c = &settings.kafka_config;
            log_manager.set_producer_id_expiration_ms(i64::from(c.producer_id_expiration_ms()));
            let periods = crate::log_tasks::LogTaskPeriods {
                // At least 100 ms: a smaller period would spin the retention pass.
                retention_check_ms: c.log_retention_check_interval_ms().max(100),
                high_watermark_checkpoint_ms: c.replica_high_watermark_checkpoint_interval_ms(),
                recovery_point_checkpoint_ms: i64::from(
                    c.log_flush_offset_checkpoint_interval_ms(),
                ),
                log_start_offset_checkpoint_ms: i64::from(
                    c.log_flush_start_offset_checkpoint_interval_ms(),
                ),
            };
            tasks.push(tokio::spawn(crate::log_tasks::run(
                log_manager.clone(),
                periods,
                shutdown_rx.clone(),
            )));
        }
        // The log cleaner: one pass over the compacted logs every `log.cleaner.backoff.ms`, on a
        // blocking thread (it reads and writes whole segments; each log's lock is taken only to
        // list its segments and to swap the cleaned ones in).
        if settings.kafka_config.log_cleaner_enable() {
            let lm = log_manager.clone();
            let dedupe = settings.kafka_config.log_cleaner_dedupe_buffer_size();
            lm.set_cleaner_dedupe_buffer_size(
                usize::try_from(dedupe.max(1 << 20)).unwrap_or(usize::MAX),
            );
            let backoff =
                Duration::from_millis(settings.kafka_config.log_cleaner_backoff_ms().max(1) as u64);
            let mut shutdown = shutdown_rx.clone();
            tasks.push(tokio::spawn(async move {
                let mut every = tokio::time::interval(backoff);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = every.tick() => {
                            let lm = lm.clone();
                            let _ = tokio::task::spawn_blocking(move || {
                                if let Err(e) = lm.clean_logs(now_ms()) {
                                    tracing::error!(error = %e, "log cleaner pass failed");
                                }
                            }).await;
                        }
                        _ = shutdown.changed() => return,
                    }
                }
            }));
        }
        Ok(KafkaServer {
            shutdown_tx,
            controller,
            broker: Some(BrokerParts {
                log_manager,
                lifecycle_manager: lifecycle.clone(),
                lifecycle: lifecycle_task,
            }),
            tasks,
            bound,
        })
    }

    /// Resolves, with one line for the operator, once the node can no longer run (its metadata
    /// log names another cluster than its `meta.properties`, or the broker was not registered
    /// within `initial.broker.registration.timeout.ms`).
    pub async fn failed(&self) -> String {
        match &self.broker {
            Some(b) => tokio::select! {
                why = self.controller.failed() => why,
                why = b.lifecycle_manager.failed() => why,
            },
            None => self.controller.failed().await,
        }
    }

    /// A clean shutdown: controlled shutdown through the controller, then logs flushed and
    /// closed with checkpoints and the clean-shutdown marker, then Raft stopped.
    pub async fn shutdown(self) {
        let _ = self.shutdown_tx.send(true);
        if let Some(broker) = self.broker {
            let _ = tokio::time::timeout(Duration::from_secs(10), broker.lifecycle).await;
            for t in &self.tasks {
                t.abort();
            }
            let lm = broker.log_manager;
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(e) = lm.shutdown(now_ms()) {
                    tracing::error!(error = %e, "log shutdown failed");
                }
            })
            .await;
        }
        self.controller.shutdown().await;
        tracing::info!("shut down cleanly");
    }
}

/// Starts the HTTP listeners (already bound) over this node's parts.
fn serve_http(
    settings: &ServerSettings,
    listeners: Vec<TcpListener>,
    controller: &Arc<ControllerNode>,
    metrics: &Option<Arc<crate::metrics::NodeMetrics>>,
    broker: Option<crate::http::BrokerState>,
    shutdown: &watch::Receiver<bool>,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
    bound: &mut Vec<(String, std::net::SocketAddr)>,
) {
    if listeners.is_empty() {
        return;
    }
    let state = Arc::new(crate::http::HttpState {
        node_id: settings.node_id,
        controller: controller.clone(),
        broker,
        config: settings.kafka_config.clone(),
        is_controller: settings.roles.controller,
        metrics: metrics.clone(),
    });
    let router = crate::http::router(state, &settings.http);
    for listener in listeners {
        if let Ok(a) = listener.local_addr() {
            bound.push(("HTTP".to_owned(), a));
        }
        tasks.push(tokio::spawn(crate::http::serve(
            listener,
            router.clone(),
            settings.http.clone(),
            shutdown.clone(),
        )));
    }
}

/// `security` with the SCRAM credentials of the metadata image this node follows.
fn with_scram_store(
    mut security: ServerSecurity,
    images: &watch::Receiver<Arc<MetadataImage>>,
) -> ServerSecurity {
    if let Some(sasl) = &mut security.sasl {
        let mut config = (**sasl).clone();
        config.scram_credentials = Some(Arc::new(
            rafka_controller::scram_credentials::ImageScramCredentials::new(images.clone()),
        ));
        *sasl = Arc::new(config);
    }
    security
}
