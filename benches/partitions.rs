//! Partitions-per-node bench (`cargo bench --bench partitions`): one rafka node (broker and
//! controller) started as a process under a file-descriptor limit, N partitions created,
//! one record produced to each, all consumed back, restarted cleanly (SIGTERM) and after
//! SIGKILL, each restart followed by one more record to every partition.
//!
//! It prints, per phase, the wall time and the broker's RSS, open descriptors and memory maps
//! (`/proc/<pid>/status`, `/proc/<pid>/fd`, `/proc/<pid>/maps`), and RSS per partition above
//! the empty node's. Every failed delivery is counted by its error, never hidden: a phase that
//! does not complete within its bound is reported as such, and the bench exits non-zero.
//!
//! Settings (environment):
//! - `RAFKA_PARTITIONS` (10000): partitions in all; `RAFKA_PARTITIONS_PER_TOPIC` (100).
//! - `RAFKA_NOFILE` (20000): the broker's `RLIMIT_NOFILE` (soft and hard), set in the child
//!   before exec (as `ulimit -n` would).
//! - `RAFKA_TOPICS_PER_REQUEST` (20): topics per CreateTopics request.
//! - `RAFKA_PHASE_TIMEOUT_S` (300): the bound on every phase.
//! - `RAFKA_BENCH_EXTRA`: extra `server.properties` lines (`\n`-separated, e.g.
//!   `log.open.files.max=2000`).
//! - `RAFKA_BIN`: the binary (else the one Cargo built for the bench).
//! - `RAFKA_BENCH_KEEP`: keep the node's directory (its path is printed).
//! - `RAFKA_BENCH_DIR`: where the node's directory is made (default `target/tmp`, on the disk;
//!   e.g. `/dev/shm` to take the disk out of the figures, or when it has no room).
//!
//! The data directory is removed at the end.

#[path = "e2e/support.rs"]
#[allow(dead_code)]
mod support;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, ProducerContext};
use rdkafka::{ClientConfig, ClientContext, Message, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Node {
    dir: PathBuf,
    port: u16,
    nofile: u64,
    child: Option<Child>,
}

impl Node {
    fn new(dir: &Path, nofile: u64, extra: &str) -> Node {
        let port = free_port();
        let controller_port = free_port();
        let props = format!(
            "node.id=1\n\
             process.roles=broker,controller\n\
             listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}\n\
             advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
             listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
             controller.listener.names=CONTROLLER\n\
             controller.quorum.voters=1@127.0.0.1:{controller_port}\n\
             http.listeners=\n\
             log.dirs={}\n\
             {extra}\n",
            dir.join("data").display()
        );
        std::fs::write(dir.join("server.properties"), props).expect("write server.properties");
        Node {
            dir: dir.to_owned(),
            port,
            nofile,
            child: None,
        }
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("rafka.log"))
            .expect("open rafka.log");
        let log2 = log.try_clone().expect("dup");
        let nofile = self.nofile;
        let mut cmd = Command::new(support::rafka_binary());
        cmd.arg(self.dir.join("server.properties"))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .env(
                "RUST_LOG",
                std::env::var("RAFKA_BENCH_LOG").unwrap_or_else(|_| "info".into()),
            );
        // SAFETY: setrlimit and prctl are async-signal-safe and touch no memory of the parent.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: nofile,
                    rlim_max: nofile,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
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
        self.child = Some(cmd.spawn().expect("spawn rafka"));
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    fn stop(&mut self, signal: i32, bound: Duration) -> Duration {
        let start = Instant::now();
        let Some(mut child) = self.child.take() else {
            return Duration::ZERO;
        };
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(child.id() as i32, signal) };
        while start.elapsed() < bound {
            if let Ok(Some(_)) = child.try_wait() {
                return start.elapsed();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("partitions: the node did not stop within {bound:?}: SIGKILL");
        let _ = child.kill();
        let _ = child.wait();
        start.elapsed()
    }

    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.dir.join("rafka.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// RSS (KiB), open descriptors, memory maps.
    fn usage(&self) -> (u64, usize, usize) {
        let (rss, _, _) = self.rss();
        let pid = self.pid();
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
        let maps =
            std::fs::read_to_string(format!("/proc/{pid}/maps")).map_or(0, |m| m.lines().count());
        (rss, fds, maps)
    }

    /// RSS and its anonymous (heap, stacks) and file-backed (mapped indexes, the binary) parts,
    /// in KiB.
    fn rss(&self) -> (u64, u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("RssAnon:"), field("RssFile:"))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind")
        .port()
}

fn client(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "60000")
        .set("metadata.max.age.ms", "600000")
        .set("topic.metadata.refresh.interval.ms", "600000")
        .set("receive.message.max.bytes", "200000000");
    c
}

/// Until the node answers Metadata listing every partition of `topics` with a leader.
fn wait_all_leaders(node: &mut Node, topics: &[String], per_topic: i32, bound: Duration) -> bool {
    let start = Instant::now();
    let md_client: Option<BaseConsumer> = client(&node.bootstrap()).create().ok();
    let Some(md_client) = md_client else {
        return false;
    };
    let want: usize = topics.len() * per_topic as usize;
    while start.elapsed() < bound {
        if !node.alive() {
            return false;
        }
        if let Ok(md) = md_client.fetch_metadata(None, Duration::from_secs(30)) {
            let have: usize = md
                .topics()
                .iter()
                .filter(|t| t.error().is_none() && t.name().starts_with("p-"))
                .map(|t| t.partitions().iter().filter(|p| p.leader() == 1).count())
                .sum();
            if have >= want {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

struct Delivered {
    ok: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
}

struct Ctx(Arc<Delivered>);

impl ClientContext for Ctx {}

impl ProducerContext for Ctx {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        match r {
            Ok(_) => {
                self.0.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                *self
                    .0
                    .errors
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(e.to_string())
                    .or_default() += 1;
            }
        }
    }
}

/// Topics per client: librdkafka's producer serves every partition it knows in each round of its
/// broker thread, so one client with 100,000 partitions is the bottleneck (perf: its
/// `rd_kafka_toppar_producer_serve` and mutexes, the node idle); `RAFKA_BENCH_CLIENT_PARTITIONS`
/// (10,000) partitions a client, the clients run at once.
fn client_chunks<'a>(topics: &'a [String], per_topic: i32) -> Vec<&'a [String]> {
    let per_client: usize = env_or("RAFKA_BENCH_CLIENT_PARTITIONS", 10_000);
    let topics_per_client = (per_client / per_topic.max(1) as usize).max(1);
    topics.chunks(topics_per_client).collect()
}

/// One record to every partition, from several clients at once ([`client_chunks`]); the
/// deliveries that succeeded and the errors by kind.
fn produce_all(
    node: &Node,
    topics: &[String],
    per_topic: i32,
    bound: Duration,
) -> (u64, BTreeMap<String, u64>) {
    let bootstrap = node.bootstrap();
    std::thread::scope(|s| {
        let handles: Vec<_> = client_chunks(topics, per_topic)
            .into_iter()
            .map(|chunk| {
                let bootstrap = &bootstrap;
                s.spawn(move || produce_some(bootstrap, chunk, per_topic, bound))
            })
            .collect();
        let mut ok = 0;
        let mut errors = BTreeMap::new();
        for h in handles {
            let (n, e) = h.join().expect("producer thread");
            ok += n;
            for (k, v) in e {
                *errors.entry(k).or_default() += v;
            }
        }
        (ok, errors)
    })
}

/// Consumes every partition from its start, from several clients at once ([`client_chunks`]),
/// until `want` records a partition were read; how many were.
fn consume_all(
    node: &Node,
    topics: &[String],
    per_topic: i32,
    want_per_partition: u64,
    bound: Duration,
) -> u64 {
    let bootstrap = node.bootstrap();
    std::thread::scope(|s| {
        let handles: Vec<_> = client_chunks(topics, per_topic)
            .into_iter()
            .map(|chunk| {
                let bootstrap = &bootstrap;
                let want = want_per_partition * chunk.len() as u64 * per_topic as u64;
                s.spawn(move || consume_some(bootstrap, chunk, per_topic, want, bound))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("consumer thread"))
            .sum()
    })
}

/// One record to every partition of `topics`, from one client.
fn produce_some(
    bootstrap: &str,
    topics: &[String],
    per_topic: i32,
    bound: Duration,
) -> (u64, BTreeMap<String, u64>) {
    let d = Arc::new(Delivered {
        ok: AtomicU64::new(0),
        errors: Mutex::new(BTreeMap::new()),
    });
    let producer: BaseProducer<Ctx> = client(bootstrap)
        .set("linger.ms", "20")
        .set("batch.num.messages", "100000")
        .set("queue.buffering.max.messages", "2000000")
        .set("message.timeout.ms", bound.as_millis().to_string())
        .create_with_context(Ctx(d.clone()))
        .expect("producer");
    let total = topics.len() as u64 * per_topic as u64;
    let start = Instant::now();
    let value = [b'v'; 100];
    for t in topics {
        for p in 0..per_topic {
            let mut rec = BaseRecord::to(t).partition(p).payload(&value[..]).key("k");
            loop {
                match producer.send(rec) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        rec = r;
                        producer.poll(Duration::from_millis(10));
                    }
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    while start.elapsed() < bound + Duration::from_secs(5) {
        producer.poll(Duration::from_millis(50));
        let errs: u64 = d.errors.lock().expect("lock").values().sum();
        if d.ok.load(Ordering::Relaxed) + errs >= total {
            break;
        }
    }
    let errors = d.errors.lock().expect("lock").clone();
    (d.ok.load(Ordering::Relaxed), errors)
}

/// Consumes every partition of `topics` from its start, from one client, until `want` records
/// were read; how many were.
fn consume_some(
    bootstrap: &str,
    topics: &[String],
    per_topic: i32,
    want: u64,
    bound: Duration,
) -> u64 {
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", "partitions-bench")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .set("queued.min.messages", "1")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for t in topics {
        for p in 0..per_topic {
            tpl.add_partition_offset(t, p, Offset::Beginning)
                .expect("offset");
        }
    }
    consumer.assign(&tpl).expect("assign");
    let start = Instant::now();
    let mut n = 0;
    while n < want && start.elapsed() < bound {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            if m.payload().is_some() {
                n += 1;
            }
        }
    }
    n
}

fn create_all(node: &Node, topics: &[String], per_topic: i32, batch: usize) -> Vec<String> {
    let admin: AdminClient<DefaultClientContext> =
        client(&node.bootstrap()).create().expect("admin");
    let opts = AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(120)))
        .operation_timeout(Some(Duration::from_secs(120)));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut failures = Vec::new();
    for chunk in topics.chunks(batch) {
        let nts: Vec<NewTopic<'_>> = chunk
            .iter()
            .map(|t| NewTopic::new(t, per_topic, TopicReplication::Fixed(1)))
            .collect();
        match rt.block_on(admin.create_topics(&nts, &opts)) {
            Ok(results) => {
                for r in results {
                    if let Err((t, e)) = r {
                        failures.push(format!("{t}: {e}"));
                    }
                }
            }
            Err(e) => failures.push(format!("request: {e}")),
        }
    }
    failures
}

fn report(label: &str, node: &Node, partitions: usize, base_rss: u64) {
    let (rss, fds, maps) = node.usage();
    let (_, anon, file) = node.rss();
    let per = (rss.saturating_sub(base_rss) as f64 * 1024.0) / partitions.max(1) as f64;
    println!(
        "partitions: {label:<28} RSS {:>8.1} MiB ({per:>6.0} B/partition above empty; anon {:.1} MiB, file {:.1} MiB)  fds {fds:>6}  maps {maps:>6}",
        rss as f64 / 1024.0,
        anon as f64 / 1024.0,
        file as f64 / 1024.0
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument that is not ours means another bench
    // was asked for.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"partitions".contains(a.as_str()))
    {
        return;
    }
    let partitions: usize = env_or("RAFKA_PARTITIONS", 10_000);
    let per_topic: i32 = env_or("RAFKA_PARTITIONS_PER_TOPIC", 100);
    let nofile: u64 = env_or("RAFKA_NOFILE", 20_000);
    let per_request: usize = env_or("RAFKA_TOPICS_PER_REQUEST", 20);
    let bound = Duration::from_secs(env_or("RAFKA_PHASE_TIMEOUT_S", 300));
    let extra = std::env::var("RAFKA_BENCH_EXTRA")
        .unwrap_or_default()
        .replace("\\n", "\n");
    let topics: Vec<String> = (0..partitions.div_ceil(per_topic as usize))
        .map(|i| format!("p-{i:05}"))
        .collect();
    let partitions = topics.len() * per_topic as usize;
    let root = std::env::var_os("RAFKA_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&root).expect("tmp");
    let tmp = tempfile::tempdir_in(&root).expect("tempdir");
    println!(
        "partitions: {partitions} partitions ({} topics x {per_topic}), ulimit -n {nofile}, vm.max_map_count {}, {}, data under {}, load average {}",
        topics.len(),
        std::fs::read_to_string("/proc/sys/vm/max_map_count").unwrap_or_default().trim(),
        support::rafka_binary().display(),
        root.display(),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    let mut node = Node::new(tmp.path(), nofile, &extra);
    let mut failed = Vec::new();

    let t = Instant::now();
    node.start();
    if !wait_all_leaders(&mut node, &[], per_topic, Duration::from_secs(60)) {
        panic!("the node did not start:\n{}", node.log_tail(30));
    }
    println!(
        "partitions: started empty in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_millis(500));
    let (base_rss, _, _) = node.usage();
    report("empty", &node, 1, base_rss);

    let t = Instant::now();
    let create_failures = create_all(&node, &topics, per_topic, per_request);
    let answered = t.elapsed();
    let all = wait_all_leaders(&mut node, &topics, per_topic, bound);
    println!(
        "partitions: create: CreateTopics answered in {:.2} s, every partition led in {:.2} s{}; {} topic errors{}",
        answered.as_secs_f64(),
        t.elapsed().as_secs_f64(),
        if all { "" } else { " (NOT ALL within the bound)" },
        create_failures.len(),
        create_failures.first().map(|f| format!(" (first: {f})")).unwrap_or_default()
    );
    if !all || !create_failures.is_empty() {
        failed.push("create");
    }
    report("created", &node, partitions, base_rss);

    let mut produced = 0;
    let produce_phase = |node: &mut Node, label: &str, failed: &mut Vec<&'static str>| {
        let t = Instant::now();
        let (ok, errors) = produce_all(node, &topics, per_topic, bound);
        println!(
            "partitions: {label}: {ok}/{partitions} delivered in {:.2} s ({:.0} partitions/s); errors {errors:?}",
            t.elapsed().as_secs_f64(),
            ok as f64 / t.elapsed().as_secs_f64()
        );
        if ok as usize != partitions {
            failed.push("produce");
        }
        report(label, node, partitions, base_rss);
        ok
    };
    produced += produce_phase(&mut node, "produce one to each", &mut failed);

    let t = Instant::now();
    let n = consume_all(
        &node,
        &topics,
        per_topic,
        produced.div_ceil(partitions as u64),
        bound,
    );
    println!(
        "partitions: consume all: {n}/{produced} records in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    if n != produced {
        failed.push("consume");
    }
    report("consumed", &node, partitions, base_rss);

    for (signal, label) in [(libc::SIGTERM, "clean"), (libc::SIGKILL, "SIGKILL")] {
        let stopped = node.stop(signal, Duration::from_secs(120));
        let t = Instant::now();
        node.start();
        let all = wait_all_leaders(&mut node, &topics, per_topic, bound);
        println!(
            "partitions: restart ({label}): stopped in {:.2} s; serving every partition (Metadata) {:.2} s after the start{}",
            stopped.as_secs_f64(),
            t.elapsed().as_secs_f64(),
            if all { "" } else { " (NOT within the bound)" }
        );
        if !all {
            failed.push("restart");
            println!("{}", node.log_tail(30));
            break;
        }
        report(&format!("restarted ({label})"), &node, partitions, base_rss);
        produced += produce_phase(
            &mut node,
            &format!("produce after {label} restart"),
            &mut failed,
        );
        std::thread::sleep(Duration::from_secs(2));
        report("idle", &node, partitions, base_rss);
    }
    let t = Instant::now();
    let n = consume_all(
        &node,
        &topics,
        per_topic,
        produced.div_ceil(partitions as u64),
        bound,
    );
    println!(
        "partitions: consume all after restarts: {n}/{produced} records in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    if n != produced {
        failed.push("consume after restarts");
    }
    let warnings = std::fs::read_to_string(tmp.path().join("rafka.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("Too many open files"))
        .count();
    println!("partitions: {warnings} ERROR lines in the broker's log");
    println!(
        "partitions: load average at the end {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    node.stop(libc::SIGTERM, Duration::from_secs(120));
    if std::env::var_os("RAFKA_BENCH_KEEP").is_some() {
        println!("partitions: kept {}", tmp.keep().display());
    }
    if !failed.is_empty() {
        eprintln!("partitions: FAILED phases: {failed:?}");
        std::process::exit(1);
    }
}
