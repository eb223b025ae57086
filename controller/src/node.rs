//! `ControllerNode`: one node's part of the metadata quorum — its log store, state machine, Raft
//! instance, controller listener and (on voters) the [`QuorumController`].
//!
//! Voters come from `controller.quorum.voters` (`id@host:port,...`, Kafka's syntax). A voter
//! whose log is pristine proposes the initial membership (every voter proposes the same one at
//! the same log position, which openraft allows), so a new cluster forms as soon as a majority
//! is up. A node that is not a voter runs the same code as a Raft learner: the active controller
//! adds it when its broker registers, and it follows the log like everyone else.
//!
//! The cluster id: `cluster.id` if configured, otherwise the first active controller writes one as
//! the first metadata record. Each node keeps it in `meta.properties` in its metadata directory
//! and refuses to start against a quorum or a directory whose id differs.
//!
//! `meta.properties` is enforced as Kafka's `MetaPropertiesEnsemble` does: once it exists, a
//! file that cannot be read or parsed (every line a comment, blank, or `key=value`; `version`,
//! `node.id` and `cluster.id` all present), or one naming another node.id or another cluster.id
//! than the configuration, stops the start with one line naming the file.
//!
//! The node's listener (if given) has a role by the node's: a voter's is the controller listener
//! (Raft RPCs and the controller APIs), a broker-only node's is its learner listener (the
//! leader's pushes only) — see [`crate::server`].

use crate::control::ControllerConfig;
pub use crate::describe_quorum::QuorumInfo;
use crate::image::MetadataImage;
use crate::log_store::LogStore;
use crate::network::Network;
use crate::quorum_controller::QuorumController;
use crate::raft_types::{NodeId, Raft};
use crate::state_machine::StateMachine;
use openraft::BasicNode;
use rafka_storage::FileSystem;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("invalid controller.quorum.voters `{0}`: expected id@host:port,...")]
    InvalidVoters(String),
    #[error("metadata directory {path}: {what}")]
    Storage { path: PathBuf, what: String },
    #[error("raft: {0}")]
    Raft(String),
    #[error("refusing to join: this node's meta.properties has cluster.id {on_disk}, the configuration or quorum says {other}")]
    ClusterIdMismatch { on_disk: String, other: String },
    #[error("{path}: {what}")]
    MetaProperties { path: PathBuf, what: String },
    #[error("{path} has node.id {on_disk}, but this node is {configured}: refusing to start on another node's metadata")]
    NodeIdMismatch {
        path: PathBuf,
        on_disk: String,
        configured: NodeId,
    },
}

/// Parses `controller.quorum.voters`: `1@host:9093,2@host:9094`.
pub fn parse_voters(s: &str) -> Result<BTreeMap<NodeId, String>, NodeError> {
    let bad = || NodeError::InvalidVoters(s.to_owned());
    let mut out = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part.split_once('@').ok_or_else(bad)?;
        let id: NodeId = id.trim().parse().map_err(|_| bad())?;
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        if host.is_empty()
            || port.parse::<u16>().is_err()
            || out.insert(id, addr.to_owned()).is_some()
        {
            return Err(bad());
        }
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

/// What a node needs to join the quorum.
#[derive(Debug, Clone)]
pub struct ControllerNodeConfig {
    pub node_id: NodeId,
    /// The voters and their controller listener addresses.
    pub voters: BTreeMap<NodeId, String>,
    /// The metadata directory (the `__cluster_metadata-0` log, quorum state, snapshot).
    pub metadata_dir: PathBuf,
    pub controller: ControllerConfig,
    /// Raft timings, in ms: elections in [min, max), heartbeats every `heartbeat_interval_ms`.
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub heartbeat_interval_ms: u64,
    /// A snapshot every this many log entries (the log is purged behind it).
    pub snapshot_every: u64,
    /// The metadata log's segments (`metadata.log.segment.bytes`, `metadata.log.segment.ms`).
    pub log_store: crate::log_store::LogStoreOptions,
    /// The bounds of this node's listener.
    pub listener: crate::server::ListenerConfig,
    /// How this node connects to the other voters' controller listeners.
    pub client_security: Arc<rafka_security::transport::ClientSecurity>,
}

impl ControllerNodeConfig {
    /// Kafka-like defaults for a node: elections in 150–300 ms, heartbeats every 50 ms.
    pub fn new(node_id: NodeId, voters: BTreeMap<NodeId, String>, metadata_dir: PathBuf) -> Self {
        ControllerNodeConfig {
            node_id,
            voters,
            metadata_dir,
            controller: ControllerConfig::default(),
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            heartbeat_interval_ms: 50,
            snapshot_every: 10_000,
            log_store: crate::log_store::LogStoreOptions::default(),
            listener: crate::server::ListenerConfig::default(),
            client_security: Arc::default(),
        }
    }

    pub fn is_voter(&self) -> bool {
        self.voters.contains_key(&self.node_id)
    }
}

/// A running node.
pub struct ControllerNode {
    node_id: NodeId,
    raft: Raft,
    sm: StateMachine,
    quorum: QuorumController,
    /// The listener's task: the controller listener on a voter, the learner listener on a
    /// broker-only node (none when started without a listener).
    server: std::sync::Mutex<
        Option<(
            tokio::task::JoinHandle<()>,
            tokio::sync::watch::Sender<bool>,
        )>,
    >,
    /// Re-randomizes a candidate's retries (`crate::election`).
    elections: tokio::task::JoinHandle<()>,
    local_addr: Option<std::net::SocketAddr>,
    /// Set once this node must stop (its metadata log names another cluster than its
    /// `meta.properties`).
    fatal: watch::Receiver<Option<String>>,
}

const META_PROPERTIES: &str = "meta.properties";

/// What `meta.properties` holds (Kafka's v1 format: `version`, `node.id`, `cluster.id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaProperties {
    pub node_id: NodeId,
    pub cluster_id: String,
}

/// Parses `meta.properties`: see the module docs for what is refused.
pub fn parse_meta_properties(text: &[u8]) -> Result<MetaProperties, String> {
    let text = std::str::from_utf8(text).map_err(|_| "not UTF-8 text".to_owned())?;
    let mut props = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| format!("line {} is not key=value", n + 1))?;
        if props.insert(k.trim(), v.trim()).is_some() {
            return Err(format!("{} appears twice", k.trim()));
        }
    }
    let get = |k: &str| props.get(k).copied().ok_or_else(|| format!("no {k}"));
    let version = get("version")?;
    if version != "1" {
        return Err(format!("version {version} (only 1 is known)"));
    }
    let node_id = get("node.id")?;
    let node_id = node_id
        .parse::<NodeId>()
        .map_err(|_| format!("node.id {node_id} is not a node id"))?;
    let cluster_id = get("cluster.id")?;
    if cluster_id.is_empty() {
        return Err("cluster.id is empty".into());
    }
    Ok(MetaProperties {
        node_id,
        cluster_id: cluster_id.to_owned(),
    })
}

/// The cluster id in `dir`'s `meta.properties` (none if the file does not exist yet); any file
/// that is there must parse and name this node.
fn read_cluster_id(
    fs: &dyn FileSystem,
    dir: &std::path::Path,
    node_id: NodeId,
) -> Result<Option<String>, NodeError> {
    let path = dir.join(META_PROPERTIES);
    if !fs.exists(&path) {
        return Ok(None);
    }
    let bad = |what: String| NodeError::MetaProperties {
        path: path.clone(),
        what,
    };
    let text = fs
        .read(&path)
        .map_err(|e| bad(format!("unreadable: {e}")))?;
    let meta = parse_meta_properties(&text).map_err(bad)?;
    if meta.node_id != node_id {
        return Err(NodeError::NodeIdMismatch {
            path,
            on_disk: meta.node_id.to_string(),
            configured: node_id,
        });
    }
    Ok(Some(meta.cluster_id))
}

fn write_meta_properties(
    fs: &dyn FileSystem,
    dir: &std::path::Path,
    node_id: NodeId,
    cluster_id: &str,
) -> std::io::Result<()> {
    let text = format!(
        "#\n#{}\nnode.id={node_id}\nversion=1\ncluster.id={cluster_id}\n",
        "rafka"
    );
    fs.write_atomic(&dir.join(META_PROPERTIES), text.as_bytes())
}

impl ControllerNode {
    /// Opens the node's storage and starts Raft, the controller listener (on `listener`, if
    /// any) and
    /// the quorum controller.
    pub async fn start(
        config: ControllerNodeConfig,
        fs: Arc<dyn FileSystem>,
        listener: Option<TcpListener>,
    ) -> Result<ControllerNode, NodeError> {
        let dir = config.metadata_dir.clone();
        let storage_err = |what: String| NodeError::Storage {
            path: dir.clone(),
            what,
        };
        fs.create_dir_all(&dir)
            .map_err(|e| storage_err(e.to_string()))?;
        let on_disk = read_cluster_id(fs.as_ref(), &dir, config.node_id)?;
        if let (Some(d), Some(c)) = (&on_disk, &config.controller.cluster_id) {
            if d != c {
                return Err(NodeError::ClusterIdMismatch {
                    on_disk: d.clone(),
                    other: c.clone(),
                });
            }
        }
        let known_cluster_id = on_disk
            .clone()
            .or_else(|| config.controller.cluster_id.clone());
        // Feeds the election task what the metrics show late or not at all.
        let elections = crate::election_observer::ElectionObserver::default();
        let mut log_store = {
            let (fs, dir, options) = (fs.clone(), dir.clone(), config.log_store.clone());
            tokio::task::spawn_blocking(move || LogStore::open_with(fs, &dir, options))
                .await
                .map_err(|e| storage_err(e.to_string()))?
                .map_err(|e| storage_err(e.to_string()))?
        };
        log_store.observe_elections(elections.clone());
        let sm = StateMachine::open(fs.clone(), &dir.join("state"))
            .map_err(|e| storage_err(e.to_string()))?;
        if let (Some(d), Some(img)) = (&on_disk, sm.image().cluster_id()) {
            if d != img {
                return Err(NodeError::ClusterIdMismatch {
                    on_disk: d.clone(),
                    other: img.to_owned(),
                });
            }
        }
        let raft_config = openraft::Config {
            cluster_name: "rafka".into(),
            election_timeout_min: config.election_timeout_min_ms,
            election_timeout_max: config.election_timeout_max_ms,
            heartbeat_interval: config.heartbeat_interval_ms,
            install_snapshot_timeout: 2000,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            max_in_snapshot_log_to_keep: 1000.min(config.snapshot_every),
            // Elections are the election task's, each after a pre-vote (`pre_vote`).
            enable_elect: false,
            ..Default::default()
        }
        .validate()
        .map_err(|e| NodeError::Raft(e.to_string()))?;
        let cluster_id = crate::network::ClusterId::new(known_cluster_id.clone());
        if let Some(img) = sm.image().cluster_id() {
            cluster_id.set(img);
        }
        let network = Network::new(config.node_id, cluster_id.clone())
            .client_security(config.client_security.clone())
            .observe_elections(elections.clone())
            .unreachable_backoff(std::time::Duration::from_millis(
                config.heartbeat_interval_ms,
            ));
        let raft = Raft::new(
            config.node_id,
            Arc::new(raft_config),
            network.clone(),
            log_store.clone(),
            sm.clone(),
        )
        .await
        .map_err(|e| NodeError::Raft(e.to_string()))?;
        let pre_vote = crate::pre_vote::PreVote::new(
            config.node_id,
            raft.clone(),
            log_store,
            network,
            std::time::Duration::from_millis(config.election_timeout_min_ms),
        );
        // Before `initialize`: the first election may already split the vote.
        let election_task = crate::election::spawn(
            config.node_id,
            raft.clone(),
            crate::election::Timing {
                election_timeout_min_ms: config.election_timeout_min_ms,
                election_timeout_max_ms: config.election_timeout_max_ms,
                heartbeat_interval_ms: config.heartbeat_interval_ms,
            },
            elections,
            pre_vote.clone(),
        );
        let quorum = QuorumController::start(
            config.node_id,
            raft.clone(),
            sm.clone(),
            config.controller.clone(),
        );
        let local_addr = listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()
            .map_err(|e| NodeError::Raft(e.to_string()))?;
        let server = listener.map(|listener| {
            let (role, apis) = if config.is_voter() {
                let apis: Arc<dyn crate::server::ControllerApis> = Arc::new(quorum.clone());
                (crate::server::ListenerRole::Controller, Some(apis))
            } else {
                (crate::server::ListenerRole::Learner, None)
            };
            let check = crate::server::PeerCheck::new(
                config.node_id,
                role,
                cluster_id.clone(),
                config.voters.keys().copied().collect(),
            )
            .answer_pre_votes(pre_vote.clone());
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let task = tokio::spawn(crate::server::serve(
                listener,
                raft.clone(),
                apis,
                check,
                listener_config_with_scram(config.listener.clone(), &sm),
                stopped,
            ));
            (task, stop)
        });
        if config.is_voter()
            && !raft
                .is_initialized()
                .await
                .map_err(|e| NodeError::Raft(e.to_string()))?
        {
            let members: BTreeMap<NodeId, BasicNode> = config
                .voters
                .iter()
                .map(|(id, addr)| (*id, BasicNode { addr: addr.clone() }))
                .collect();
            if let Err(e) = raft.initialize(members).await {
                // Another voter's membership reached us first: that is the same membership.
                tracing::info!(node_id = config.node_id, error = %e, "initial membership already proposed");
            }
        }
        // Keep meta.properties in step with the cluster id once the log names one; a log that
        // names another cluster than meta.properties, or a meta.properties that cannot be
        // written, is fatal (see `failed`).
        let (fatal_tx, fatal) = watch::channel(None::<String>);
        {
            let mut images = sm.subscribe();
            let (fs, dir, node_id) = (fs.clone(), dir.clone(), config.node_id);
            let mut written = on_disk;
            let cluster_id = cluster_id.clone();
            tokio::spawn(async move {
                loop {
                    let id = images.borrow_and_update().cluster_id().map(str::to_owned);
                    if let Some(id) = id {
                        cluster_id.set(&id);
                        match &written {
                            Some(w) if *w != id => {
                                let e = NodeError::ClusterIdMismatch {
                                    on_disk: w.clone(),
                                    other: id,
                                };
                                tracing::error!(node_id, error = %e, "stopping");
                                let _ = fatal_tx.send(Some(e.to_string()));
                                return;
                            }
                            Some(_) => {}
                            None => {
                                // A node that cannot record its identity does not run on, as
                                // Kafka does not start on a directory it cannot format.
                                if let Err(e) =
                                    write_meta_properties(fs.as_ref(), &dir, node_id, &id)
                                {
                                    let e = NodeError::MetaProperties {
                                        path: dir.join(META_PROPERTIES),
                                        what: format!("cannot write it: {e}"),
                                    };
                                    tracing::error!(node_id, error = %e, "stopping");
                                    let _ = fatal_tx.send(Some(e.to_string()));
                                    return;
                                }
                                written = Some(id);
                            }
                        }
                    }
                    if images.changed().await.is_err() {
                        return;
                    }
                }
            });
        }
        Ok(ControllerNode {
            fatal,
            node_id: config.node_id,
            raft,
            sm,
            quorum,
            server: std::sync::Mutex::new(server),
            elections: election_task,
            local_addr,
        })
    }

    /// Resolves, with the reason, once this node can no longer run: its log names another
    /// cluster than its `meta.properties` (found only after the log is replayed, so after
    /// `start`). The process should stop with that line.
    pub async fn failed(&self) -> String {
        let mut rx = self.fatal.clone();
        loop {
            if let Some(why) = rx.borrow_and_update().clone() {
                return why;
            }
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }
    pub fn raft(&self) -> &Raft {
        &self.raft
    }
    /// The listener's address: the controller listener's on a voter, the learner listener's on a
    /// broker-only node.
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.local_addr
    }
    /// The controller APIs, called in-process by a combined node's broker (same code path as
    /// the listener).
    pub fn quorum_controller(&self) -> &QuorumController {
        &self.quorum
    }
    pub fn image(&self) -> Arc<MetadataImage> {
        self.sm.image()
    }
    /// Every new image, as applied on this node.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.sm.subscribe()
    }

    /// The quorum's state as this node sees it.
    pub fn quorum_info(&self) -> QuorumInfo {
        QuorumInfo::of(&self.raft)
    }

    /// Adds a learner (a broker-only node following the log).
    pub async fn add_learner(&self, node_id: NodeId, addr: String) -> Result<(), NodeError> {
        self.raft
            .add_learner(node_id, BasicNode { addr }, false)
            .await
            .map(|_| ())
            .map_err(|e| NodeError::Raft(e.to_string()))
    }

    /// Stops Raft and the listener (a clean shutdown; storage is durable at every step).
    pub async fn shutdown(&self) {
        // Taken out of the lock before awaiting: the listener closes, then every connection
        // (their tasks have ended when the listener's task has).
        let server = self.server.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((task, stop)) = server {
            let _ = stop.send(true);
            let _ = task.await;
        }
        self.elections.abort();
        let _ = self.raft.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rafka_storage::DiskFs;

    #[test]
    fn meta_properties_parse_strictly() {
        let ok = parse_meta_properties(b"#\n#rafka\nnode.id=3\nversion=1\ncluster.id=abc\n");
        assert_eq!(
            ok,
            Ok(MetaProperties {
                node_id: 3,
                cluster_id: "abc".into()
            })
        );
        for (case, text) in [
            ("garbage", &b"\x00\xffgarbage"[..]),
            (
                "not key=value",
                b"version=1\nnode.id=1\ncluster.id=a\njunk\n",
            ),
            ("no cluster.id", b"version=1\nnode.id=1\n"),
            ("no node.id", b"version=1\ncluster.id=a\n"),
            ("bad node.id", b"version=1\nnode.id=x\ncluster.id=a\n"),
            ("unknown version", b"version=7\nnode.id=1\ncluster.id=a\n"),
            ("twice", b"version=1\nnode.id=1\nnode.id=2\ncluster.id=a\n"),
        ] {
            assert!(parse_meta_properties(text).is_err(), "{case}");
        }
    }

    #[test]
    fn meta_properties_of_another_node_or_unreadable_stop_the_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(read_cluster_id(&DiskFs, dir.path(), 1).expect("none"), None);
        write_meta_properties(&DiskFs, dir.path(), 1, "abc").expect("write");
        assert_eq!(
            read_cluster_id(&DiskFs, dir.path(), 1).expect("ours"),
            Some("abc".into())
        );
        let e = read_cluster_id(&DiskFs, dir.path(), 2).expect_err("another node");
        assert!(matches!(e, NodeError::NodeIdMismatch { .. }), "{e}");
        std::fs::write(dir.path().join(META_PROPERTIES), b"garbage").expect("write");
        let e = read_cluster_id(&DiskFs, dir.path(), 1).expect_err("garbage");
        assert!(e.to_string().contains("meta.properties"), "{e}");
    }
}

/// `config` with the SCRAM credentials of this node's metadata image.
fn listener_config_with_scram(
    mut config: crate::server::ListenerConfig,
    sm: &StateMachine,
) -> crate::server::ListenerConfig {
    if let Some(sasl) = &mut config.security.sasl {
        let mut c = (**sasl).clone();
        c.scram_credentials = Some(Arc::new(
            crate::scram_credentials::ImageScramCredentials::new(sm.subscribe()),
        ));
        *sasl = Arc::new(c);
    }
    config
}
