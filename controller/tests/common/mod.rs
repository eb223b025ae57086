//! The in-process quorum harness the controller's integration tests share: voters on real TCP
//! ports of 127.0.0.1 (each port bound before the voter map is built), a Kafka-framed client
//! that finds the active controller the way a broker does, a broker stand-in (registration and
//! heartbeats), and a [`History`] recorded from every node for the whole test:
//!
//! - every `(term, leader)` a node reports (`RaftMetrics`, the source of `quorum_info()`, read on
//!   every change it publishes), and every term in which a node called itself leader;
//! - every image a node publishes (`subscribe()`): its offset must grow within one incarnation
//!   of a node, and the image at an offset must be the same on every node and every incarnation
//!   (the image is a function of the committed log prefix: nothing lost, nothing applied twice).
//!
//! Not every test uses every helper.
#![allow(dead_code)]

use rafka_controller::image::MetadataImage;
use rafka_controller::network::{read_frame, MAX_FRAME_BYTES};
use rafka_controller::node::{ControllerNode, ControllerNodeConfig};
use rafka_protocol::messages::{
    broker_registration_request::Listener, create_topics_request, AllocateProducerIdsRequest,
    AllocateProducerIdsResponse, BrokerHeartbeatRequest, BrokerHeartbeatResponse,
    BrokerRegistrationRequest, CreateTopicsRequest, CreateTopicsResponse, RequestHeader,
    RequestKind, ResponseKind,
};
use rafka_protocol::{ErrorCode, RequestFrame, ResponseFrame, Uuid};
use rafka_storage::DiskFs;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// The versions our broker stand-in speaks (the latest of each).
pub const REGISTRATION_V: i16 = 4;
pub const HEARTBEAT_V: i16 = 1;
pub const ALLOCATE_V: i16 = 0;
pub const CREATE_TOPICS_V: i16 = 7;

/// How long a test waits for a leader (or for a request to find one) after a failure. Generous:
/// a failover takes under a second (`election.rs`, `failover_takes_under_a_second`), but a
/// loaded machine (slow fsyncs, starved tasks) can stretch it.
pub const ELECTION_WAIT: Duration = Duration::from_secs(30);

/// Per-node settings that differ from `ControllerNodeConfig::new`'s defaults.
#[derive(Debug, Clone)]
pub struct Options {
    pub snapshot_every: u64,
    pub session_timeout: Duration,
    pub election_timeout_ms: (u64, u64),
    pub heartbeat_interval_ms: u64,
    /// Keep every image published for the [`History`] checks (off for benches: it holds one
    /// image per offset and compares whole images).
    pub check_images: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            snapshot_every: 10_000,
            session_timeout: Duration::from_millis(9000),
            election_timeout_ms: (150, 300),
            heartbeat_interval_ms: 50,
            check_images: true,
        }
    }
}

/// Logs to the test's output when `RUST_LOG` is set (e.g. `RUST_LOG=openraft=info,rafka_controller=debug`).
pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// Runs `f` and fails the test if it takes longer than `limit`.
pub async fn bounded<F: std::future::Future>(limit: Duration, what: &str, f: F) -> F::Output {
    match tokio::time::timeout(limit, f).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: did not finish within {limit:?}"),
    }
}

/// Polls `cond` every 10 ms until it holds; panics with `what` after `limit`.
pub async fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// History

#[derive(Debug, Default)]
struct HistoryInner {
    /// term → every leader any node reported for it.
    leaders: BTreeMap<u64, BTreeSet<u64>>,
    /// term → every node that was in the Leader state in it.
    self_leaders: BTreeMap<u64, BTreeSet<u64>>,
    /// offset → the image first published at it (by any node).
    images: BTreeMap<i64, Arc<MetadataImage>>,
    /// (node, incarnation) → the last offset it published.
    last_offset: BTreeMap<(u64, u64), i64>,
    violations: Vec<String>,
    image_samples: u64,
    metric_samples: u64,
}

/// What every node did, recorded while the test runs.
#[derive(Debug, Clone, Default)]
pub struct History {
    inner: Arc<Mutex<HistoryInner>>,
    /// The highest offset any node has applied (a broker stand-in reports it in heartbeats).
    max_applied: Arc<AtomicI64>,
}

impl History {
    fn lock(&self) -> std::sync::MutexGuard<'_, HistoryInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn max_applied(&self) -> Arc<AtomicI64> {
        self.max_applied.clone()
    }

    /// Follows `node` (incarnation `incarnation` of it) until its Raft and state machine stop.
    fn watch(&self, node: &ControllerNode, incarnation: u64, check_images: bool) {
        let id = node.node_id();
        let mut metrics = node.raft().metrics();
        let h = self.clone();
        tokio::spawn(async move {
            loop {
                {
                    let m = metrics.borrow_and_update();
                    let mut s = h.lock();
                    s.metric_samples += 1;
                    if let Some(leader) = m.current_leader {
                        s.leaders.entry(m.current_term).or_default().insert(leader);
                    }
                    if m.state.is_leader() {
                        s.self_leaders.entry(m.current_term).or_default().insert(id);
                    }
                }
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        });
        let mut images = node.subscribe();
        let h = self.clone();
        tokio::spawn(async move {
            loop {
                let image = images.borrow_and_update().clone();
                if check_images {
                    h.record_image(id, incarnation, image);
                } else {
                    h.max_applied.fetch_max(image.offset(), Ordering::Relaxed);
                }
                if images.changed().await.is_err() {
                    return;
                }
            }
        });
    }

    fn record_image(&self, node: u64, incarnation: u64, image: Arc<MetadataImage>) {
        let offset = image.offset();
        self.max_applied.fetch_max(offset, Ordering::Relaxed);
        let mut s = self.lock();
        s.image_samples += 1;
        if let Some(prev) = s.last_offset.insert((node, incarnation), offset) {
            if offset <= prev {
                s.violations
                    .push(format!("node {node} (incarnation {incarnation}) published offset {offset} after {prev}"));
            }
        }
        match s.images.get(&offset) {
            Some(seen) if **seen != *image => {
                let msg = format!(
                    "node {node} (incarnation {incarnation}) at offset {offset} holds a different image:\n  seen: {seen:?}\n  here: {image:?}"
                );
                s.violations.push(msg);
            }
            Some(_) => {}
            None => {
                s.images.insert(offset, image);
            }
        }
    }

    /// Every term with a leader, and who.
    pub fn leaders(&self) -> BTreeMap<u64, BTreeSet<u64>> {
        self.lock().leaders.clone()
    }

    /// Fails the test unless each term had at most one leader (as reported by any node, and as
    /// claimed by nodes in the Leader state), and every image check held.
    pub fn check(&self) {
        let s = self.lock();
        for (term, leaders) in s.leaders.iter().chain(s.self_leaders.iter()) {
            assert!(
                leaders.len() <= 1,
                "term {term} had leaders {leaders:?} (all terms: {:?})",
                s.leaders
            );
        }
        assert!(
            s.violations.is_empty(),
            "image history violations:\n{}",
            s.violations.join("\n")
        );
    }

    /// (metrics samples, image samples, distinct offsets seen).
    pub fn sample_counts(&self) -> (u64, u64, usize) {
        let s = self.lock();
        (s.metric_samples, s.image_samples, s.images.len())
    }
}

// ---------------------------------------------------------------------------------------------
// Cluster

/// Voters `1..=n`, in-process, each with its own metadata directory and fixed port.
pub struct Cluster {
    pub dirs: BTreeMap<u64, tempfile::TempDir>,
    pub voters: BTreeMap<u64, String>,
    pub nodes: BTreeMap<u64, ControllerNode>,
    pub options: Options,
    pub history: History,
    incarnations: BTreeMap<u64, u64>,
}

impl Cluster {
    pub async fn start(n: u64) -> Cluster {
        Self::start_with(n, Options::default()).await
    }

    pub async fn start_with(n: u64, options: Options) -> Cluster {
        init_tracing();
        let mut listeners = BTreeMap::new();
        let mut voters = BTreeMap::new();
        for id in 1..=n {
            let l = TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind 127.0.0.1:0");
            voters.insert(id, l.local_addr().expect("local addr").to_string());
            listeners.insert(id, l);
        }
        let dirs = (1..=n)
            .map(|id| {
                let d = tempfile::Builder::new()
                    .prefix(&format!("rafka-controller-{id}-"))
                    .tempdir()
                    .expect("tempdir");
                (id, d)
            })
            .collect();
        let mut c = Cluster {
            dirs,
            voters,
            nodes: BTreeMap::new(),
            options,
            history: History::default(),
            incarnations: BTreeMap::new(),
        };
        for (id, l) in listeners {
            c.start_node(id, l).await;
        }
        c
    }

    pub fn config(&self, id: u64) -> ControllerNodeConfig {
        let mut cfg =
            ControllerNodeConfig::new(id, self.voters.clone(), self.dirs[&id].path().to_path_buf());
        cfg.snapshot_every = self.options.snapshot_every;
        cfg.controller.session_timeout = self.options.session_timeout;
        cfg.election_timeout_min_ms = self.options.election_timeout_ms.0;
        cfg.election_timeout_max_ms = self.options.election_timeout_ms.1;
        cfg.heartbeat_interval_ms = self.options.heartbeat_interval_ms;
        cfg
    }

    async fn start_node(&mut self, id: u64, listener: TcpListener) {
        let node = ControllerNode::start(self.config(id), Arc::new(DiskFs), Some(listener))
            .await
            .unwrap_or_else(|e| panic!("start node {id}: {e}"));
        let incarnation = self.incarnations.entry(id).or_insert(0);
        *incarnation += 1;
        self.history
            .watch(&node, *incarnation, self.options.check_images);
        self.nodes.insert(id, node);
    }

    /// Stops node `id` (a clean `shutdown()`: Raft stops, the listener closes).
    pub async fn stop(&mut self, id: u64) {
        let node = self
            .nodes
            .remove(&id)
            .unwrap_or_else(|| panic!("node {id} is not running"));
        bounded(Duration::from_secs(10), "shutdown", node.shutdown()).await;
    }

    /// Starts node `id` again on its directory and port.
    pub async fn restart(&mut self, id: u64) {
        assert!(!self.nodes.contains_key(&id), "node {id} is running");
        let addr = self.voters[&id].clone();
        let deadline = Instant::now() + Duration::from_secs(10);
        let l = loop {
            match TcpListener::bind(&addr).await {
                Ok(l) => break l,
                Err(e) => {
                    assert!(Instant::now() < deadline, "rebind {addr}: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        self.start_node(id, l).await;
    }

    pub fn is_up(&self, id: u64) -> bool {
        self.nodes.contains_key(&id)
    }

    pub fn node(&self, id: u64) -> &ControllerNode {
        self.nodes
            .get(&id)
            .unwrap_or_else(|| panic!("node {id} is not running"))
    }

    /// The running node that says it leads, in the highest term if several do (a leader that
    /// restarts with its vote on disk takes up its old term's leadership until it hears of the
    /// newer one).
    pub fn current_leader(&self) -> Option<u64> {
        self.nodes
            .iter()
            .map(|(id, n)| (*id, n.quorum_info()))
            .filter(|(id, info)| info.leader == Some(*id))
            .max_by_key(|(_, info)| info.term)
            .map(|(id, _)| id)
    }

    /// Waits for a running node to be the leader.
    pub async fn leader(&self, limit: Duration) -> u64 {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(id) = self.current_leader() {
                return id;
            }
            assert!(
                Instant::now() < deadline,
                "no leader among {:?} within {limit:?}",
                self.up()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn up(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// A client of the controller listeners (all voters' addresses).
    pub fn client(&self) -> LeaderClient {
        LeaderClient::new(self.voters.clone())
    }

    /// The cluster id, once the first active controller has written it.
    pub async fn cluster_id(&self, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(id) = self
                .nodes
                .values()
                .find_map(|n| n.image().cluster_id().map(str::to_owned))
            {
                return id;
            }
            assert!(Instant::now() < deadline, "no cluster id within {limit:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The leader's image, once a leader exists.
    pub async fn leader_image(&self) -> Arc<MetadataImage> {
        let l = self.leader(ELECTION_WAIT).await;
        self.node(l).image()
    }

    /// Waits until every running node has applied the same image (offsets included) and at least
    /// `min_offset`; returns it.
    pub async fn converged(&self, limit: Duration, min_offset: i64) -> Arc<MetadataImage> {
        let deadline = Instant::now() + limit;
        loop {
            let images: Vec<_> = self.nodes.values().map(|n| n.image()).collect();
            if images[0].offset() >= min_offset && images.windows(2).all(|w| w[0] == w[1]) {
                return images[0].clone();
            }
            if Instant::now() >= deadline {
                let offsets: Vec<_> = self
                    .nodes
                    .iter()
                    .map(|(id, n)| (*id, n.image().offset()))
                    .collect();
                panic!("nodes did not converge at or past offset {min_offset} within {limit:?}: {offsets:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn shutdown(mut self) {
        for id in self.up() {
            self.stop(id).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Clients

/// One Kafka-framed connection to one controller listener.
pub struct Connection {
    stream: TcpStream,
    correlation_id: i32,
}

impl Connection {
    pub async fn connect(addr: &str) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            correlation_id: 0,
        })
    }

    /// Sends `body` at `version` and reads its response.
    pub async fn call(&mut self, version: i16, body: RequestKind) -> Result<ResponseKind, String> {
        let api = body.api_key();
        self.correlation_id += 1;
        let frame = RequestFrame {
            header: RequestHeader {
                request_api_key: api.key(),
                request_api_version: version,
                correlation_id: self.correlation_id,
                client_id: Some("rafka-test-broker".into()),
                ..Default::default()
            },
            body,
        };
        let bytes = frame.encode().map_err(|e| e.to_string())?;
        self.stream
            .write_all(&bytes)
            .await
            .map_err(|e| e.to_string())?;
        let resp = read_frame(&mut self.stream, MAX_FRAME_BYTES)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("connection closed")?;
        let resp = ResponseFrame::decode(api, version, &resp).map_err(|e| e.to_string())?;
        if resp.correlation_id != self.correlation_id {
            return Err(format!(
                "correlation id {} answered {}",
                self.correlation_id, resp.correlation_id
            ));
        }
        Ok(resp.body)
    }

    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }
}

/// The top-level error code of the responses the tests use (the first topic's for CreateTopics).
pub fn error_code(r: &ResponseKind) -> i16 {
    match r {
        ResponseKind::BrokerRegistration(r) => r.error_code,
        ResponseKind::BrokerHeartbeat(r) => r.error_code,
        ResponseKind::AllocateProducerIds(r) => r.error_code,
        ResponseKind::AlterPartition(r) => r.error_code,
        ResponseKind::ElectLeaders(r) => r.error_code,
        ResponseKind::CreateTopics(r) => r.topics.first().map_or(0, |t| t.error_code),
        ResponseKind::DeleteTopics(r) => r.responses.first().map_or(0, |t| t.error_code),
        other => panic!("no error code for {other:?}"),
    }
}

/// A client that finds the active controller as a broker does: it asks the node it last found
/// leading, and on NOT_CONTROLLER or a broken connection moves on to the next voter.
pub struct LeaderClient {
    addrs: Vec<String>,
    conns: BTreeMap<usize, Connection>,
    next: usize,
    /// How long one attempt at one node may take.
    pub attempt_timeout: Duration,
}

impl LeaderClient {
    pub fn new(voters: BTreeMap<u64, String>) -> LeaderClient {
        LeaderClient {
            addrs: voters.into_values().collect(),
            conns: BTreeMap::new(),
            next: 0,
            attempt_timeout: Duration::from_secs(2),
        }
    }

    /// One attempt at the node we believe leads. `Err` for NOT_CONTROLLER, an I/O error or a
    /// timeout (after which the next attempt goes to the next node).
    pub async fn try_once(
        &mut self,
        version: i16,
        body: RequestKind,
    ) -> Result<ResponseKind, String> {
        let i = self.next;
        let addr = self.addrs[i].clone();
        let attempt = async {
            let conn = match self.conns.entry(i) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let c = Connection::connect(&addr)
                        .await
                        .map_err(|e| format!("connect {addr}: {e}"))?;
                    e.insert(c)
                }
            };
            conn.call(version, body).await
        };
        let result = match tokio::time::timeout(self.attempt_timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(format!("{addr}: timed out")),
        };
        let result = result.and_then(|r| {
            if error_code(&r) == ErrorCode::NotController.code() {
                Err(format!("{addr}: NOT_CONTROLLER"))
            } else {
                Ok(r)
            }
        });
        if result.is_err() {
            self.conns.remove(&i);
            self.next = (i + 1) % self.addrs.len();
        }
        result
    }

    /// Retries until the active controller answers, or `limit` passes.
    pub async fn call(&mut self, version: i16, body: RequestKind, limit: Duration) -> ResponseKind {
        let deadline = Instant::now() + limit;
        let mut last = String::new();
        while Instant::now() < deadline {
            match self.try_once(version, body.clone()).await {
                Ok(r) => return r,
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no active controller answered within {limit:?}; last error: {last}");
    }
}

// ---------------------------------------------------------------------------------------------
// A broker stand-in

pub fn registration(broker_id: i32, cluster_id: &str) -> RequestKind {
    RequestKind::BrokerRegistration(BrokerRegistrationRequest {
        broker_id,
        cluster_id: cluster_id.to_owned(),
        incarnation_id: Uuid::from_u128(
            0x5eed_0000_0000_0000_0000_0000_0000_0000 | broker_id as u128,
        ),
        listeners: vec![Listener {
            name: "PLAINTEXT".into(),
            host: "127.0.0.1".into(),
            port: 9092 + broker_id as u16,
            security_protocol: 0,
            ..Default::default()
        }],
        rack: None,
        ..Default::default()
    })
}

pub fn heartbeat(broker_id: i32, broker_epoch: i64, offset: i64) -> RequestKind {
    RequestKind::BrokerHeartbeat(BrokerHeartbeatRequest {
        broker_id,
        broker_epoch,
        current_metadata_offset: offset,
        want_fence: false,
        want_shut_down: false,
        ..Default::default()
    })
}

pub fn allocate(broker_id: i32, broker_epoch: i64) -> RequestKind {
    RequestKind::AllocateProducerIds(AllocateProducerIdsRequest {
        broker_id,
        broker_epoch,
        ..Default::default()
    })
}

pub fn create_topic(name: &str, partitions: i32, replication_factor: i16) -> RequestKind {
    RequestKind::CreateTopics(CreateTopicsRequest {
        topics: vec![create_topics_request::CreatableTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor,
            ..Default::default()
        }],
        timeout_ms: 5000,
        ..Default::default()
    })
}

/// Registers `broker_id`; returns its broker epoch.
pub async fn register(client: &mut LeaderClient, cluster_id: &str, broker_id: i32) -> i64 {
    let r = client
        .call(
            REGISTRATION_V,
            registration(broker_id, cluster_id),
            ELECTION_WAIT,
        )
        .await;
    let ResponseKind::BrokerRegistration(r) = r else {
        panic!("{r:?}")
    };
    assert_eq!(r.error_code, 0, "registration of broker {broker_id}: {r:?}");
    assert!(r.broker_epoch >= 0, "{r:?}");
    r.broker_epoch
}

pub fn as_heartbeat(r: ResponseKind) -> BrokerHeartbeatResponse {
    match r {
        ResponseKind::BrokerHeartbeat(r) => r,
        other => panic!("{other:?}"),
    }
}

pub fn as_allocate(r: ResponseKind) -> AllocateProducerIdsResponse {
    match r {
        ResponseKind::AllocateProducerIds(r) => r,
        other => panic!("{other:?}"),
    }
}

pub fn as_create_topics(r: ResponseKind) -> CreateTopicsResponse {
    match r {
        ResponseKind::CreateTopics(r) => r,
        other => panic!("{other:?}"),
    }
}

/// A broker's heartbeat loop: every `interval`, while `alive`, it heartbeats the active
/// controller with the highest applied metadata offset. Stops when `stop` is set.
pub struct Heartbeats {
    pub alive: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Heartbeats {
    pub fn start(
        voters: BTreeMap<u64, String>,
        broker_id: i32,
        broker_epoch: i64,
        offset: Arc<AtomicI64>,
        interval: Duration,
    ) -> Heartbeats {
        let alive = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s) = (alive.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut client = LeaderClient::new(voters);
            client.attempt_timeout = interval.max(Duration::from_millis(200));
            while !s.load(Ordering::Relaxed) {
                if a.load(Ordering::Relaxed) {
                    let req = heartbeat(broker_id, broker_epoch, offset.load(Ordering::Relaxed));
                    if let Ok(r) = client.try_once(HEARTBEAT_V, req).await {
                        let r = as_heartbeat(r);
                        assert_eq!(r.error_code, 0, "heartbeat of broker {broker_id}: {r:?}");
                    }
                }
                tokio::time::sleep(interval).await;
            }
        });
        Heartbeats { alive, stop, task }
    }

    pub fn set_alive(&self, alive: bool) {
        self.alive.store(alive, Ordering::Relaxed);
    }

    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Err(e) = self.task.await {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }
}

/// A small xorshift generator: the seed is printed so that a failing run can be repeated with
/// `RAFKA_TEST_SEED`.
pub struct Rng(u64);

impl Rng {
    pub fn from_env() -> Rng {
        let seed = std::env::var("RAFKA_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        println!("RAFKA_TEST_SEED={seed}");
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }
}
