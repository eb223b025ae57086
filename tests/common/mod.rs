//! The integration-test harness: real `rafka` processes on free 127.0.0.1 ports, each in its
//! own temporary directory (its cwd, with `log.dirs` under it), and real clients (librdkafka
//! through the rdkafka crate) against them.
//!
//! - [`Cluster::start`] starts N combined broker+controller nodes (node ids 1..=N, one shared
//!   `controller.quorum.voters`) and returns once every node answers Metadata listing all N
//!   brokers and an active controller — within [`READY_TIMEOUT`], or it panics with the nodes'
//!   logs.
//! - A node is killed with SIGKILL when dropped; [`Node::terminate`] stops it with SIGTERM and
//!   waits (bounded) for a clean exit; [`Node::start`] starts it again on the same data. Every
//!   child also gets `PR_SET_PDEATHSIG = SIGKILL`, so a test that dies (a panic, an abort)
//!   never leaves a broker behind. That signal is tied to the *thread* that spawned the node:
//!   start nodes on the test's own thread.
//! - A node that loses a port race (another process bound the port between our probe and its
//!   start) exits with "cannot listen"; [`Cluster::start`] then retries on fresh ports.
//! - Each node's stderr goes to `<dir>/rafka.log`; when a test panics, the tail of every
//!   node's log is printed.
//! - [`raw_request`] speaks the wire protocol directly (our own codec), for readiness probes
//!   and checks that need exact error codes.
//!
//! Everything blocks with a bound: a test never waits forever.

#![allow(dead_code)]

pub mod certs;
pub mod failover;
pub mod ffi;
pub mod http;
pub mod load;
pub mod proxy;
pub mod scram;
pub mod txn;

use rafka_protocol::messages::metadata_request::MetadataRequestTopic;
use rafka_protocol::messages::{
    MetadataRequest, MetadataResponse, RequestHeader, RequestKind, ResponseKind,
};
use rafka_protocol::{RequestFrame, ResponseFrame};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::BaseProducer;
use rdkafka::ClientConfig;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a cluster may take to answer Metadata with every broker and a controller.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a SIGTERM may take before the node is killed.
pub const TERM_TIMEOUT: Duration = Duration::from_secs(20);

/// The binary under test: the one `cargo test` built alongside this test.
pub const RAFKA: &str = env!("CARGO_BIN_EXE_rafka");

/// The binary a node runs: [`RAFKA`], or `$RAFKA_BIN` when set — the benches' switch for
/// running two builds against each other (as `benches/e2e` reads it).
pub fn node_binary() -> std::ffi::OsString {
    std::env::var_os("RAFKA_BIN").unwrap_or_else(|| RAFKA.into())
}

/// Tests of one file that each run a multi-node cluster with tight timeouts (sessions of a
/// few seconds) take this first, so that they run one at a time rather than all at once on a
/// small machine, where the load alone could fence a broker.
pub fn one_cluster_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A point in time that waits must not pass.
#[derive(Clone, Copy, Debug)]
pub struct Deadline(Instant);

impl Deadline {
    pub fn after(d: Duration) -> Deadline {
        Deadline(Instant::now() + d)
    }
    pub fn passed(&self) -> bool {
        Instant::now() >= self.0
    }
    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }
    /// Panics with `what` once passed.
    pub fn check(&self, what: impl FnOnce() -> String) {
        if self.passed() {
            panic!("timed out: {}", what());
        }
    }
}

/// Ports handed out by this test process: two tests running in parallel never get the same
/// one. (Another process can still take a port between our probe and the broker's bind; then
/// the broker exits with "cannot listen" and [`Cluster::start`] retries on fresh ports.)
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    loop {
        let port = unlistened_port();
        let mut g = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if g.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
}

/// A port the kernel hands out for 127.0.0.1, found with a socket that is bound but never
/// listens. A listening probe would, for its moment, take connections meant for another test's
/// broker that had been given the same port and was about to bind it (`tests/ready.rs` connects
/// every millisecond while the port opens), then reset them when it closed.
fn unlistened_port() -> u16 {
    // SAFETY: socket(2), bind(2), getsockname(2) and close(2) on a descriptor this function
    // owns; the address structs are plain data sized as the calls are told.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let bound = libc::bind(fd, std::ptr::addr_of!(addr).cast(), len) == 0
            && libc::getsockname(fd, std::ptr::addr_of_mut!(addr).cast(), &mut len) == 0;
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        assert!(bound, "bind 127.0.0.1:0: {err}");
        u16::from_be(addr.sin_port)
    }
}

/// One rafka process.
pub struct Node {
    pub node_id: i32,
    pub port: u16,
    pub controller_port: u16,
    /// The HTTP listener's port (`http.listeners`: health, metrics, console).
    pub http_port: u16,
    /// The node's cwd; `log.dirs` is `dir/data`.
    pub dir: PathBuf,
    /// `process.roles`: `broker,controller`, `broker` or `controller`.
    pub roles: String,
    child: Option<Child>,
}

impl Node {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
    /// The HTTP listener's address.
    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.http_port))
    }
    /// `127.0.0.1:port`, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
    /// Whether the node has the broker role (serves clients).
    pub fn is_broker(&self) -> bool {
        self.roles.contains("broker")
    }
    pub fn log_dir(&self) -> PathBuf {
        self.dir.join("data")
    }
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("rafka.log")
    }
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
    /// The last `lines` lines of the node's stderr.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log_file(), lines)
    }
    /// The exit status if the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// SIGTERM, then wait up to [`TERM_TIMEOUT`] for the exit (SIGKILL after that).
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("node already stopped");
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Deadline::after(TERM_TIMEOUT);
        loop {
            if let Some(status) = child.try_wait().expect("wait for rafka") {
                return status;
            }
            if deadline.passed() {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "node {} did not exit within {TERM_TIMEOUT:?} of SIGTERM\n{}",
                    self.node_id,
                    self.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the node again (after [`Node::terminate`] or [`Node::kill`]) from the same
    /// `server.properties` and data; its log is appended to. Does not wait: see
    /// [`Cluster::wait_ready`].
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "node {} is running", self.node_id);
        let file = self.dir.join("server.properties");
        self.child = Some(spawn_rafka(&self.dir, &[file.display().to_string()]));
    }

    /// SIGSTOP: the process stops answering but keeps its connections open (a hung or
    /// partitioned broker, as its peers see it). Returns once every thread of it is stopped:
    /// `kill` returns before a busy process on a loaded machine has stopped, and it can still
    /// answer a request or two meanwhile (a test then reads its pre-pause answers as if given
    /// after the pause). Bounded: 5 s.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
        let Some(pid) = self.pid() else { return };
        let deadline = Deadline::after(Duration::from_secs(5));
        while !all_threads_stopped(pid) {
            deadline.check(|| format!("node {} did not stop within 5 s of SIGSTOP", self.node_id));
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// SIGCONT after [`Node::pause`].
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, sig: libc::c_int) {
        if let Some(pid) = self.pid() {
            // SAFETY: signalling our own child process by its pid.
            unsafe {
                libc::kill(pid as libc::pid_t, sig);
            }
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn log_tail(path: &Path, lines: usize) -> String {
    // Lossy: one line with bytes that are not UTF-8 must not hide the whole log.
    let text = strip_ansi(&String::from_utf8_lossy(
        &std::fs::read(path).unwrap_or_default(),
    ));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `text` without ANSI colour sequences (ESC [ ... m).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Spawns the binary with `args` in `cwd`, stderr and stdout to `cwd/rafka.log`.
pub fn spawn_rafka(cwd: &Path, args: &[String]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(cwd.join("rafka.log"))
        .expect("open rafka.log");
    let log2 = log.try_clone().expect("dup rafka.log");
    let mut cmd = Command::new(node_binary());
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .env(
            "RUST_LOG",
            std::env::var("RAFKA_TEST_LOG").unwrap_or("info,openraft=warn".into()),
        );
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            Ok(())
        });
    }
    cmd.spawn().expect("spawn rafka")
}

/// N rafka nodes forming one cluster (each broker+controller, ids 1..=N).
/// A node's id and ports, for per-node properties.
#[derive(Debug, Clone, Copy)]
pub struct NodePorts {
    pub node_id: i32,
    pub port: u16,
    pub controller_port: u16,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    /// Holds every node's directory; removed on drop (after the nodes are killed).
    dir: tempfile::TempDir,
}

impl Cluster {
    /// One node.
    pub fn single() -> Cluster {
        Cluster::start(1, &[])
    }

    /// `n` nodes with `extra` properties (key, value) added to every node's file.
    pub fn start(n: usize, extra: &[(&str, &str)]) -> Cluster {
        Cluster::start_roles(&vec!["broker,controller"; n], extra)
    }

    /// One node per entry of `roles` (its `process.roles`; ids 1, 2, …), the voters being
    /// those with the controller role.
    pub fn start_roles(roles: &[&str], extra: &[(&str, &str)]) -> Cluster {
        Cluster::start_with(roles, extra, &|_| Vec::new())
    }

    /// Like [`Cluster::start_roles`], with properties for each node from `per_node` (given the
    /// node's id, client port and controller port), written after the rest so they win — e.g.
    /// more listeners.
    pub fn start_with(
        roles: &[&str],
        extra: &[(&str, &str)],
        per_node: &dyn Fn(&NodePorts) -> Vec<(String, String)>,
    ) -> Cluster {
        let n = roles.len();
        let mut last = String::new();
        for _attempt in 0..5 {
            match Cluster::try_start(roles, extra, per_node) {
                Ok(c) => return c,
                Err(Retry(why)) => last = why,
            }
        }
        panic!("could not start a {n}-node cluster: {last}");
    }

    fn try_start(
        roles: &[&str],
        extra: &[(&str, &str)],
        per_node: &dyn Fn(&NodePorts) -> Vec<(String, String)>,
    ) -> Result<Cluster, Retry> {
        let mut cluster = Cluster::spawn(roles, extra, per_node);
        cluster.try_wait_ready(READY_TIMEOUT)?;
        Ok(cluster)
    }

    /// Like [`Cluster::start_with`] without waiting for anything: the processes are spawned and
    /// the cluster is returned at once (a port lost to another process is not retried).
    pub fn spawn(
        roles: &[&str],
        extra: &[(&str, &str)],
        per_node: &dyn Fn(&NodePorts) -> Vec<(String, String)>,
    ) -> Cluster {
        let n = roles.len();
        let dir = tempfile::Builder::new()
            .prefix("rafka-it-")
            .tempdir()
            .expect("temp dir");
        let ports: Vec<(u16, u16, u16)> = (0..n)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let voters = ports
            .iter()
            .enumerate()
            .filter(|(i, _)| roles[*i].contains("controller"))
            .map(|(i, (_, c, _))| format!("{}@127.0.0.1:{c}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes = Vec::new();
        for (i, &(port, controller_port, http_port)) in ports.iter().enumerate() {
            let node_id = i as i32 + 1;
            let node_dir = dir.path().join(format!("node{node_id}"));
            std::fs::create_dir_all(&node_dir).expect("node dir");
            let role = roles[i];
            let listeners = match role {
                "broker" => format!("PLAINTEXT://127.0.0.1:{port}"),
                "controller" => format!("CONTROLLER://127.0.0.1:{controller_port}"),
                _ => {
                    format!("PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}")
                }
            };
            let advertised = if role == "controller" {
                String::new()
            } else {
                format!("advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n")
            };
            let mut props = format!(
                "node.id={node_id}\n\
                 process.roles={role}\n\
                 listeners={listeners}\n\
                 {advertised}\
                 listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
                 controller.listener.names=CONTROLLER\n\
                 controller.quorum.voters={voters}\n\
                 http.listeners=http://127.0.0.1:{http_port}\n\
                 log.dirs={}\n",
                node_dir.join("data").display()
            );
            for (k, v) in extra {
                props.push_str(&format!("{k}={v}\n"));
            }
            let ports = NodePorts {
                node_id,
                port,
                controller_port,
            };
            for (k, v) in per_node(&ports) {
                props.push_str(&format!("{k}={v}\n"));
            }
            let file = node_dir.join("server.properties");
            std::fs::write(&file, props).expect("write server.properties");
            let child = spawn_rafka(&node_dir, &[file.display().to_string()]);
            nodes.push(Node {
                node_id,
                port,
                controller_port,
                http_port,
                dir: node_dir,
                roles: role.to_string(),
                child: Some(child),
            });
        }
        Cluster { nodes, dir }
    }

    /// Waits until every node answers Metadata listing all the brokers and a controller;
    /// panics after `timeout` or when a node exits.
    pub fn wait_ready(&mut self, timeout: Duration) {
        if let Err(Retry(why)) = self.try_wait_ready(timeout) {
            panic!("{why}");
        }
    }

    fn try_wait_ready(&mut self, timeout: Duration) -> Result<(), Retry> {
        let deadline = Deadline::after(timeout);
        let want: Vec<i32> = self
            .nodes
            .iter()
            .filter(|n| n.is_broker())
            .map(|n| n.node_id)
            .collect();
        // A controller-only node has no client listener: it is ready once the brokers are.
        let mut ready: Vec<bool> = self.nodes.iter().map(|n| !n.is_broker()).collect();
        loop {
            for (i, node) in self.nodes.iter_mut().enumerate() {
                if let Some(status) = node.exited() {
                    let log = node.log_tail(40);
                    if log.contains("cannot listen") {
                        return Err(Retry(format!(
                            "node {} lost a port race: {log}",
                            node.node_id
                        )));
                    }
                    panic!(
                        "node {} exited during startup ({status})\n{log}",
                        node.node_id
                    );
                }
                if !ready[i] {
                    if let Ok(md) = metadata(node.addr(), None, Duration::from_secs(2)) {
                        let mut ids: Vec<i32> = md.brokers.iter().map(|b| b.node_id).collect();
                        ids.sort_unstable();
                        ready[i] = ids == want && md.controller_id >= 0;
                    }
                }
            }
            if ready.iter().all(|r| *r) {
                return Ok(());
            }
            if deadline.passed() {
                let logs = self.logs(40);
                panic!("cluster not ready within {timeout:?} (ready: {ready:?})\n{logs}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every broker's `127.0.0.1:port`, comma-separated.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .filter(|n| n.is_broker())
            .map(Node::bootstrap)
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn node(&self, node_id: i32) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.node_id == node_id)
            .expect("no such node")
    }

    /// The tail of every node's log, headed by its id.
    pub fn logs(&self, lines: usize) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- node {} ---\n{}", n.node_id, n.log_tail(lines)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("rafka logs (tail):\n{}", self.logs(60));
        }
        for n in &mut self.nodes {
            n.kill();
        }
        if std::env::var_os("RAFKA_TEST_KEEP").is_some() {
            let kept = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
            eprintln!("kept {}", kept.keep().display());
        }
    }
}

struct Retry(String);

/// One request over a fresh connection, answered within `timeout`.
pub fn raw_request(
    addr: SocketAddr,
    version: i16,
    body: RequestKind,
    timeout: Duration,
) -> std::io::Result<ResponseKind> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    raw_exchange(&mut s, version, body, timeout)
}

/// One request over `s` (already connected), answered within `timeout`.
pub fn raw_exchange(
    s: &mut TcpStream,
    version: i16,
    body: RequestKind,
    timeout: Duration,
) -> std::io::Result<ResponseKind> {
    let api = body.api_key();
    let frame = RequestFrame {
        header: RequestHeader {
            request_api_key: api.key(),
            request_api_version: version,
            correlation_id: 7,
            client_id: Some("rafka-it".into()),
            ..Default::default()
        },
        body,
    }
    .encode()
    .map_err(|e| std::io::Error::other(e.to_string()))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.set_nodelay(true)?;
    s.write_all(&frame)?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let len = i32::from_be_bytes(len);
    if !(0..=64 << 20).contains(&len) {
        return Err(std::io::Error::other(format!("response size {len}")));
    }
    let mut buf = vec![0u8; len as usize];
    s.read_exact(&mut buf)?;
    let r = ResponseFrame::decode(api, version, &bytes::Bytes::from(buf))
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    if r.correlation_id != 7 {
        return Err(std::io::Error::other("wrong correlation id"));
    }
    Ok(r.body)
}

/// AlterConfigs v2 (the legacy API, which rdkafka's `alter_configs` drives but whose
/// per-resource errors it drops) on one resource: its (error code, message).
pub fn legacy_alter_configs(
    addr: SocketAddr,
    resource_type: i8,
    name: &str,
    configs: &[(&str, &str)],
    timeout: Duration,
) -> (i16, Option<String>) {
    use rafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let req = rafka_protocol::messages::AlterConfigsRequest {
        resources: vec![AlterConfigsResource {
            resource_type,
            resource_name: name.into(),
            configs: configs
                .iter()
                .map(|(k, v)| AlterableConfig {
                    name: (*k).into(),
                    value: Some((*v).into()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    match raw_request(addr, 2, RequestKind::AlterConfigs(req), timeout).expect("AlterConfigs") {
        ResponseKind::AlterConfigs(r) => {
            let r = r.responses.into_iter().next().expect("one response");
            (r.error_code, r.error_message)
        }
        other => panic!("not an AlterConfigs response: {other:?}"),
    }
}

/// The broker coordinating `group`, as `node` answers FindCoordinator v3; `None` while it has
/// none (or does not answer).
pub fn group_coordinator(node: &Node, group: &str) -> Option<i32> {
    use rafka_protocol::messages::FindCoordinatorRequest;
    let r = raw_request(
        node.addr(),
        3,
        RequestKind::FindCoordinator(FindCoordinatorRequest {
            key: group.into(),
            key_type: 0,
            ..Default::default()
        }),
        Duration::from_secs(5),
    )
    .ok()?;
    match r {
        ResponseKind::FindCoordinator(f) if f.error_code == 0 => Some(f.node_id),
        _ => None,
    }
}

/// A Metadata v12 request: all topics (`None`) or the ones named, never auto-creating.
pub fn metadata(
    addr: SocketAddr,
    topics: Option<&[&str]>,
    timeout: Duration,
) -> std::io::Result<MetadataResponse> {
    let req = MetadataRequest {
        topics: topics.map(|ts| {
            ts.iter()
                .map(|t| MetadataRequestTopic {
                    name: Some((*t).to_owned()),
                    ..Default::default()
                })
                .collect()
        }),
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    match raw_request(addr, 12, RequestKind::Metadata(req), timeout)? {
        ResponseKind::Metadata(m) => Ok(m),
        other => Err(std::io::Error::other(format!(
            "not a Metadata response: {other:?}"
        ))),
    }
}

/// The active controller's id as the quorum reports it (DescribeQuorum through the broker at
/// `addr`; -1 when it has no leader). Metadata's controller id is not it: a broker names a live
/// broker there, as Kafka's KRaft brokers do.
pub fn active_controller(addr: SocketAddr, timeout: Duration) -> std::io::Result<i32> {
    active_controller_and_epoch(addr, timeout).map(|(leader, _)| leader)
}

/// The quorum's leader and its epoch (Raft term) as `addr`'s DescribeQuorum shows them.
pub fn active_controller_and_epoch(
    addr: SocketAddr,
    timeout: Duration,
) -> std::io::Result<(i32, i32)> {
    use rafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
    use rafka_protocol::messages::DescribeQuorumRequest;
    let req = DescribeQuorumRequest {
        topics: vec![TopicData {
            topic_name: "__cluster_metadata".into(),
            partitions: vec![PartitionData {
                partition_index: 0,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    match raw_request(addr, 2, RequestKind::DescribeQuorum(req), timeout)? {
        ResponseKind::DescribeQuorum(r) => r
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .filter(|p| p.error_code == 0)
            .map(|p| (p.leader_id, p.leader_epoch))
            .ok_or_else(|| std::io::Error::other(format!("DescribeQuorum failed: {r:?}"))),
        other => Err(std::io::Error::other(format!(
            "not a DescribeQuorum response: {other:?}"
        ))),
    }
}

/// A client config for `bootstrap` with `extra` settings; short timeouts so failures show fast.
pub fn client_config(bootstrap: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "10000")
        .set("topic.metadata.refresh.interval.ms", "1000");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c
}

pub fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> BaseProducer {
    let mut c = client_config(bootstrap, &[("message.timeout.ms", "60000")]);
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("create producer")
}

/// A consumer without a group (no `group.id`, so librdkafka never looks for a coordinator):
/// used with `assign` only. CRCs are checked on every batch it reads.
pub fn consumer(bootstrap: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut c = client_config(
        bootstrap,
        &[
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "error"),
            ("check.crcs", "true"),
        ],
    );
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("create consumer")
}

/// A consumer in `group` that commits by hand, from the earliest offset, with a short session
/// (6 s) and frequent heartbeats.
pub fn group_consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    client_config(
        bootstrap,
        &[
            ("group.id", group),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "500"),
        ],
    )
    .create()
    .expect("create consumer")
}

/// A group-free consumer reading partitions from explicit offsets (see [`ffi::PartitionConsumer`]).
pub fn partition_consumer(bootstrap: &str, extra: &[(&str, &str)]) -> ffi::PartitionConsumer {
    let mut all = vec![("auto.commit.enable", "false")];
    all.extend_from_slice(extra);
    ffi::PartitionConsumer::new(consumer(bootstrap, &all))
}

pub fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    client_config(bootstrap, &[])
        .create()
        .expect("create admin client")
}

pub fn admin_options() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(20)))
        .operation_timeout(Some(Duration::from_secs(20)))
}

/// A current-thread tokio runtime for the admin client's futures.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A partition as Metadata shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionView {
    pub leader: i32,
    /// In assignment order: the first is the preferred replica.
    pub replicas: Vec<i32>,
    /// Sorted.
    pub isr: Vec<i32>,
}

/// Every partition of `topic` as `node` sees it, in partition order — when it answers and knows
/// the topic with `partitions` partitions.
pub fn partition_views(node: &Node, topic: &str, partitions: usize) -> Option<Vec<PartitionView>> {
    let md = metadata(node.addr(), Some(&[topic]), Duration::from_secs(2)).ok()?;
    let t = md
        .topics
        .iter()
        .find(|t| t.name.as_deref() == Some(topic) && t.error_code == 0)?;
    if t.partitions.len() != partitions {
        return None;
    }
    let mut ps: Vec<_> = t.partitions.iter().collect();
    ps.sort_by_key(|p| p.partition_index);
    Some(
        ps.iter()
            .map(|p| {
                let mut isr = p.isr_nodes.clone();
                isr.sort_unstable();
                PartitionView {
                    leader: p.leader_id,
                    replicas: p.replica_nodes.clone(),
                    isr,
                }
            })
            .collect(),
    )
}

/// Waits until `node` shows every partition of `topic` led, with the ISR `isr` (sorted).
pub fn wait_for_isrs(
    node: &Node,
    topic: &str,
    partitions: usize,
    isr: &[i32],
    deadline: Deadline,
) -> Vec<PartitionView> {
    loop {
        let seen = partition_views(node, topic, partitions);
        if let Some(ps) = &seen {
            if ps.iter().all(|p| p.leader > 0 && p.isr == isr) {
                return ps.clone();
            }
        }
        deadline.check(|| {
            format!(
                "ISR {isr:?} for every partition of {topic} via node {}; seen {seen:?}",
                node.node_id
            )
        });
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until Metadata from `node` shows `topic` with `partitions` partitions, each with a
/// leader; returns each partition's leader.
pub fn wait_for_topic(node: &Node, topic: &str, partitions: usize, timeout: Duration) -> Vec<i32> {
    let deadline = Deadline::after(timeout);
    loop {
        if let Ok(md) = metadata(node.addr(), Some(&[topic]), Duration::from_secs(2)) {
            if let Some(t) = md.topics.iter().find(|t| t.name.as_deref() == Some(topic)) {
                if t.error_code == 0
                    && t.partitions.len() == partitions
                    && t.partitions.iter().all(|p| p.leader_id >= 0)
                {
                    let mut ps = t.partitions.clone();
                    ps.sort_by_key(|p| p.partition_index);
                    return ps.iter().map(|p| p.leader_id).collect();
                }
            }
        }
        deadline.check(|| {
            format!(
                "topic {topic} with {partitions} led partitions on node {}",
                node.node_id
            )
        });
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Creates `topic` through the admin client and waits until it has leaders.
pub fn create_topic(
    admin: &AdminClient<DefaultClientContext>,
    node: &Node,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) {
    use rdkafka::admin::{NewTopic, TopicReplication};
    let mut nt = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        nt = nt.set(k, v);
    }
    let res = runtime()
        .block_on(admin.create_topics([&nt], &admin_options()))
        .expect("CreateTopics request");
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
    }
    wait_for_topic(node, topic, partitions as usize, Duration::from_secs(20));
}

/// Creates `topic` with `partitions` partitions of `replication_factor` replicas through the
/// admin client of `bootstrap`, and checks that it was created (leaders come later: see
/// [`wait_for_isrs`]).
pub fn create_replicated_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    replication_factor: i32,
) {
    create_replicated_topic_with(&admin(bootstrap), topic, partitions, replication_factor);
}

/// [`create_replicated_topic`] through `admin` (a client with its own security settings).
pub fn create_replicated_topic_with(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    partitions: i32,
    replication_factor: i32,
) {
    use rdkafka::admin::{NewTopic, TopicReplication};
    let nt = NewTopic::new(
        topic,
        partitions,
        TopicReplication::Fixed(replication_factor),
    );
    let res = runtime()
        .block_on(admin.create_topics([&nt], &admin_options()))
        .expect("CreateTopics request");
    assert_eq!(res, vec![Ok(topic.to_string())], "CreateTopics {topic}");
}

/// Produces with `producer` until every message in `flush` is delivered or `timeout` passes.
pub fn flush(producer: &BaseProducer, timeout: Duration) {
    use rdkafka::producer::Producer;
    producer
        .flush(timeout)
        .unwrap_or_else(|e| panic!("flush within {timeout:?}: {e}"));
}

/// A one-node group setup for KIP-848 tests: offsets on one replica, no initial rebalance
/// delay, a 6 s session (a killed member's partitions move within seconds) and a 300 ms
/// heartbeat interval (reconciliation is quick).
pub const KIP848_GROUP_CONFIG: [(&str, &str); 4] = [
    ("offsets.topic.replication.factor", "1"),
    ("group.initial.rebalance.delay.ms", "0"),
    ("group.consumer.session.timeout.ms", "6000"),
    ("group.consumer.heartbeat.interval.ms", "300"),
];

/// A librdkafka consumer of `group` in the consumer group protocol (KIP-848), committing only
/// when told, reading from the earliest offset.
pub fn kip848_consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    client_config(
        bootstrap,
        &[
            ("group.id", group),
            ("group.protocol", "consumer"),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
        ],
    )
    .create()
    .expect("create consumer")
}

/// Produces `per_partition` records to each of partitions `0..partitions` of `topic` (acks=all),
/// each value `round R partition P record I` so that a consumer can tell rounds apart; returns
/// once all are delivered (within `timeout`).
pub fn produce_round(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    round: usize,
    per_partition: usize,
    timeout: Duration,
) {
    let p = producer(bootstrap, &[("acks", "all")]);
    for i in 0..per_partition {
        for part in 0..partitions {
            let v = format!("round {round} partition {part} record {i}");
            p.send(
                rdkafka::producer::BaseRecord::<(), str>::to(topic)
                    .partition(part)
                    .payload(v.as_str()),
            )
            .map_err(|(e, _)| e)
            .expect("send");
        }
    }
    flush(&p, timeout);
}

/// Assigns `partitions` of `topic` to `consumer` starting at `offset`.
pub fn assign(consumer: &BaseConsumer, topic: &str, partitions: &[(i32, rdkafka::Offset)]) {
    let mut tpl = rdkafka::TopicPartitionList::new();
    for &(p, o) in partitions {
        tpl.add_partition_offset(topic, p, o).expect("tpl offset");
    }
    consumer.assign(&tpl).expect("assign");
}

/// The bytes of every `.log` segment file of `topic`-`partition` under `log_dir`, in order.
pub fn segment_files(log_dir: &Path, topic: &str, partition: i32) -> Vec<PathBuf> {
    let dir = log_dir.join(format!("{topic}-{partition}"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "log"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// A record batch's header fields, as read from a segment file.
#[derive(Debug, Clone, Copy)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// The bytes after the length field.
    pub length: i32,
    pub attributes: i16,
    pub records: i32,
}

/// The header of every record batch in `bytes` (one segment file): base offset at byte 0,
/// length at 8, attributes at 21, record count at 57 (RecordBatch v2).
pub fn batches(bytes: &[u8]) -> Vec<BatchHeader> {
    let be32 = |p: usize| i32::from_be_bytes(bytes[p..p + 4].try_into().expect("4 bytes"));
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos + 61 <= bytes.len() {
        let length = be32(pos + 8);
        if length <= 0 {
            break;
        }
        out.push(BatchHeader {
            base_offset: i64::from_be_bytes(bytes[pos..pos + 8].try_into().expect("8 bytes")),
            length,
            attributes: i16::from_be_bytes(bytes[pos + 21..pos + 23].try_into().expect("2 bytes")),
            records: be32(pos + 57),
        });
        pos += 12 + length as usize;
    }
    out
}

/// A producer that sends one record at a time and waits for its delivery report: for tests
/// that need each record's offset or exact error. acks=all, no retries.
pub struct SyncProducer {
    producer: BaseProducer<Reports>,
    last: Arc<Mutex<Option<Delivery>>>,
}

/// (partition, offset) or the delivery error.
pub type Delivery = Result<(i32, i64), RDKafkaErrorCode>;

#[derive(Clone, Default)]
pub struct Reports(Arc<Mutex<Option<Delivery>>>);
impl rdkafka::ClientContext for Reports {}
impl rdkafka::producer::ProducerContext for Reports {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &rdkafka::producer::DeliveryResult<'_>, _: ()) {
        use rdkafka::message::Message;
        let v = match r {
            Ok(m) => Ok((m.partition(), m.offset())),
            Err((rdkafka::error::KafkaError::MessageProduction(code), _)) => Err(*code),
            Err((e, _)) => panic!("unexpected delivery error: {e}"),
        };
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
    }
}

impl SyncProducer {
    pub fn new(bootstrap: &str, extra: &[(&str, &str)]) -> SyncProducer {
        let ctx = Reports::default();
        let mut c = client_config(
            bootstrap,
            &[
                ("acks", "all"),
                ("linger.ms", "0"),
                ("message.send.max.retries", "0"),
                ("message.timeout.ms", "20000"),
            ],
        );
        for (k, v) in extra {
            c.set(*k, *v);
        }
        SyncProducer {
            producer: c.create_with_context(ctx.clone()).expect("producer"),
            last: ctx.0,
        }
    }

    /// Sends `payload` to `topic`/`partition`; its offset or the delivery error.
    pub fn send(
        &self,
        topic: &str,
        partition: i32,
        payload: &[u8],
    ) -> Result<i64, RDKafkaErrorCode> {
        self.send_record(
            rdkafka::producer::BaseRecord::<(), [u8]>::to(topic)
                .partition(partition)
                .payload(payload),
        )
        .map(|(_, o)| o)
    }

    /// Sends `record` and waits for its delivery report.
    pub fn send_record<K, P>(&self, record: rdkafka::producer::BaseRecord<'_, K, P>) -> Delivery
    where
        K: rdkafka::message::ToBytes + ?Sized,
        P: rdkafka::message::ToBytes + ?Sized,
    {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.producer
            .send(record)
            .map_err(|(e, _)| e)
            .expect("enqueue a record");
        // Poll for the report (rdkafka's `flush` sleeps in 100 ms steps).
        let deadline = Deadline::after(Duration::from_secs(25));
        loop {
            self.producer.poll(Duration::from_millis(1));
            if let Some(r) = self.last.lock().unwrap_or_else(|e| e.into_inner()).take() {
                return r;
            }
            deadline.check(|| "no delivery report within 25 s".into());
        }
    }
}

/// Reads `topic` partitions `0..counts.len()` from the beginning until partition `p` has given
/// `counts[p]` messages, within `timeout`; returns them per partition, in order. A consume error
/// or an offset out of sequence panics.
pub fn read_all(
    bootstrap: &str,
    topic: &str,
    counts: &[usize],
    timeout: Duration,
) -> Vec<Vec<ffi::Msg>> {
    let mut c = partition_consumer(bootstrap, &[("fetch.wait.max.ms", "100")]);
    for p in 0..counts.len() {
        c.start(topic, p as i32, ffi::BEGINNING);
    }
    let mut out: Vec<Vec<ffi::Msg>> = counts.iter().map(|_| Vec::new()).collect();
    let deadline = Deadline::after(timeout);
    while out.iter().zip(counts).any(|(got, want)| got.len() < *want) {
        deadline.check(|| {
            let got: Vec<usize> = out.iter().map(Vec::len).collect();
            format!("reading {topic}: got {got:?} of {counts:?}")
        });
        let Some(m) = c.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = m.unwrap_or_else(|e| panic!("consume {topic}: {e}"));
        let part = &mut out[m.partition as usize];
        assert_eq!(
            m.offset,
            part.len() as i64,
            "offset in {topic}-{}",
            m.partition
        );
        part.push(m);
    }
    out
}

/// Whether every thread of process `pid` is in the stopped state (`T` in its `stat`).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        // Gone: nothing of it runs.
        return true;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat"))
            .ok()
            // The state follows the command name, which is in parentheses and may hold spaces.
            .and_then(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().next().map(str::to_owned))
            })
            .is_none_or(|state| state == "T" || state == "t")
    })
}
