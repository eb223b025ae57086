//! What the end-to-end bench stands on: the broker process, CPU clocks, a group-free
//! librdkafka consumer that counts bytes without copying them, and the two plain-socket
//! references (`sendfile(2)` to a loopback socket; receive over loopback and `write(2)` to a
//! file).
//!
//! Everything blocks with a bound; a broker that dies or never becomes ready panics with the
//! tail of its log.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::bindings as rd;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the broker may take to answer Metadata and create a topic.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The `rafka` binary: `$RAFKA_BIN` if set, else the one Cargo built for this bench (Cargo
/// builds the package's binaries for benches and sets `CARGO_BIN_EXE_<name>`; with `cargo
/// bench` it is the `bench`-profile build, i.e. release with debug line info), else
/// `target/release/rafka` next to the target directory this bench runs from.
pub fn rafka_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("RAFKA_BIN") {
        return PathBuf::from(p);
    }
    if let Some(p) = option_env!("CARGO_BIN_EXE_rafka") {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    // target/release/deps/e2e-<hash> -> target/release/rafka
    let exe = std::env::current_exe().expect("current exe");
    let candidate = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("rafka"))
        .filter(|p| p.exists());
    candidate.unwrap_or_else(|| {
        panic!("no rafka binary: run `cargo build --release --bin rafka` or set RAFKA_BIN")
    })
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// `$RAFKA_BENCH_PIN=<server cpu>,<client cpu>` (e.g. `0,1`): the broker process and the
/// references' server sides (the sendfile sender, the receive-and-write receiver) run on the
/// server CPU, the clients and the references' client sides on the client CPU. Unset, the
/// scheduler places everything. Why: on this VM a loopback byte costs its sender about twice as
/// much when the reader runs on the other CPU as when both share one (a bare C sendfile loop:
/// 0.19-0.30 CPU-s/GB on one CPU, 0.43-0.52 on two), and the scheduler picks differently from
/// run to run for the broker and its client than for a reference's two threads, so unpinned
/// comparisons measure placement as much as work.
pub fn pinning() -> Option<(usize, usize)> {
    let v = std::env::var("RAFKA_BENCH_PIN")
        .ok()
        .filter(|v| !v.is_empty())?;
    let parse = |s: Option<&str>| s.and_then(|s| s.trim().parse::<usize>().ok());
    let mut parts = v.split(',');
    match (parse(parts.next()), parse(parts.next()), parts.next()) {
        (Some(server), Some(client), None) if server < 1024 && client < 1024 => {
            Some((server, client))
        }
        _ => panic!("RAFKA_BENCH_PIN={v:?}: expected <server cpu>,<client cpu>"),
    }
}

fn cpu_set(cpu: usize) -> libc::cpu_set_t {
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET writes within it (cpu < 1024).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        set
    }
}

/// Moves the calling thread to `cpu`; panics if the kernel refuses (e.g. no such CPU).
pub fn pin_thread(cpu: usize) {
    let set = cpu_set(cpu);
    // SAFETY: sched_setaffinity on the calling thread (0) with a valid set.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    assert_eq!(
        r,
        0,
        "pin to CPU {cpu}: {}",
        std::io::Error::last_os_error()
    );
}

/// While alive, the calling thread runs on the server CPU; back on the client CPU after (only
/// when pinned: `$RAFKA_BENCH_PIN`).
pub struct Pinned(Option<usize>);

impl Pinned {
    pub fn server_side() -> Pinned {
        Pinned(pinning().map(|(server, client)| {
            pin_thread(server);
            client
        }))
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        if let Some(client) = self.0 {
            pin_thread(client);
        }
    }
}

/// One single-node rafka (broker+controller) in its own directory; SIGKILLed on drop.
pub struct Broker {
    pub port: u16,
    pub dir: PathBuf,
    child: Child,
}

impl Broker {
    /// Starts the binary in `dir` (its cwd; data under `dir/data`) and waits until it answers
    /// Metadata with itself as a broker. Retries on fresh ports when the port was taken.
    pub fn start(dir: &Path) -> Broker {
        Broker::start_with(dir, "")
    }

    /// As [`Broker::start`], with `extra` lines appended to `server.properties` (where
    /// `{port}` and `{controller_port}` stand for the ports chosen, e.g. to add listeners). The
    /// HTTP listener gets a free port unless `extra` sets `http.listeners`.
    pub fn start_with(dir: &Path, extra: &str) -> Broker {
        let bin = rafka_binary();
        let mut last = String::new();
        for attempt in 0..5 {
            let (port, controller_port) = (free_port(), free_port());
            let mut extra = extra
                .replace("{port}", &port.to_string())
                .replace("{controller_port}", &controller_port.to_string());
            // The HTTP listener too on a port of its own unless the caller chose one (its
            // zero-config default, localhost:9644, would collide with any other broker here).
            if !extra.contains("http.listeners") {
                extra.push_str(&format!(
                    "\nhttp.listeners=http://127.0.0.1:{}",
                    free_port()
                ));
            }
            let props = format!(
                "node.id=1\n\
                 process.roles=broker,controller\n\
                 listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}\n\
                 advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
                 listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
                 controller.listener.names=CONTROLLER\n\
                 controller.quorum.voters=1@127.0.0.1:{controller_port}\n\
                 num.partitions=1\n\
                 log.dirs={}\n\
                 {extra}\n",
                dir.join("data").display()
            );
            let file = dir.join("server.properties");
            std::fs::write(&file, props).expect("write server.properties");
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("rafka.log"))
                .expect("open rafka.log");
            let log2 = log.try_clone().expect("dup rafka.log");
            let mut cmd = Command::new(&bin);
            cmd.arg(&file)
                .current_dir(dir)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log2)
                .env(
                    "RUST_LOG",
                    std::env::var("RAFKA_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
                );
            // The broker's threads on the server CPU when pinned (`$RAFKA_BENCH_PIN`).
            let server_cpu = pinning().map(|(server, _)| cpu_set(server));
            // SAFETY: prctl and sched_setaffinity are async-signal-safe system calls and touch
            // no memory of the parent (the CPU set was built before the fork). The signal is
            // tied to the spawning thread: the bench's main thread, which outlives the broker.
            unsafe {
                cmd.pre_exec(move || {
                    libc::prctl(
                        libc::PR_SET_PDEATHSIG,
                        libc::SIGKILL as libc::c_ulong,
                        0,
                        0,
                        0,
                    );
                    if let Some(set) = &server_cpu {
                        if libc::sched_setaffinity(0, std::mem::size_of_val(set), set) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    Ok(())
                });
            }
            let child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
            let mut broker = Broker {
                port,
                dir: dir.to_owned(),
                child,
            };
            match broker.wait_ready() {
                Ok(()) => {
                    eprintln!(
                        "e2e: broker {} pid {} on {}",
                        bin.display(),
                        broker.pid(),
                        broker.bootstrap()
                    );
                    return broker;
                }
                Err(why) => {
                    last = format!("attempt {attempt}: {why}");
                    drop(broker);
                }
            }
        }
        panic!("could not start rafka: {last}");
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let client: BaseConsumer = client_config(&self.bootstrap())
            .create()
            .expect("metadata client");
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for rafka") {
                return Err(format!("rafka exited ({status}):\n{}", self.log_tail(30)));
            }
            if let Ok(md) = client.fetch_metadata(None, Duration::from_secs(2)) {
                if md.brokers().iter().any(|b| b.id() == 1) {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "rafka not ready within {READY_TIMEOUT:?}:\n{}",
                    self.log_tail(30)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.dir.join("rafka.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The broker's CPU time so far (all threads, user + system).
    pub fn cpu(&self) -> Duration {
        pid_cpu(self.pid())
    }

    /// Panics with its log if the broker has exited.
    pub fn check_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("rafka exited ({status}):\n{}", self.log_tail(40));
        }
    }

    /// Creates `topic` (1 partition, replication 1, `configs`) and waits until it has a leader.
    pub fn create_topic(&self, topic: &str, configs: &[(&str, &str)]) {
        self.create_topic_partitions(topic, 1, configs);
    }

    /// Creates `topic` with `partitions` partitions (replication 1, `configs`) and waits until
    /// every partition has a leader.
    pub fn create_topic_partitions(&self, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
        let admin: AdminClient<DefaultClientContext> = client_config(&self.bootstrap())
            .create()
            .expect("admin client");
        let opts = AdminOptions::new()
            .request_timeout(Some(Duration::from_secs(20)))
            .operation_timeout(Some(Duration::from_secs(20)));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let mut nt = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        for (k, v) in configs {
            nt = nt.set(k, v);
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let res = rt.block_on(admin.create_topics([&nt], &opts));
            match res.as_ref().map(|r| r.first()) {
                Ok(Some(Ok(_))) => break,
                other if Instant::now() > deadline => {
                    panic!("create topic {topic}: {other:?}\n{}", self.log_tail(30))
                }
                _ => std::thread::sleep(Duration::from_millis(200)),
            }
        }
        let client: BaseConsumer = client_config(&self.bootstrap())
            .create()
            .expect("metadata client");
        loop {
            if let Ok(md) = client.fetch_metadata(Some(topic), Duration::from_secs(2)) {
                let ok = md.topics().iter().any(|t| {
                    t.name() == topic
                        && t.error().is_none()
                        && t.partitions().len() == partitions as usize
                        && t.partitions().iter().all(|p| p.leader() >= 0)
                });
                if ok {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "topic {topic} has no leader\n{}",
                self.log_tail(30)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The first `.log` segment file of `topic`-0.
    pub fn first_segment(&self, topic: &str) -> PathBuf {
        let dir = self.log_dir().join(format!("{topic}-0"));
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        files.sort();
        files
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no segment in {}", dir.display()))
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client config with short timeouts, IPv4 only.
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "10000");
    c
}

/// Process `pid`'s CPU time to the nanosecond, every thread's (exited ones included): its CPU-time
/// clock (`clock_getcpuclockid(3)`). `/proc/<pid>/stat` counts in clock ticks (10 ms), about a
/// tenth of what one node spends on a 64 MiB round of the replication bench. Falls back to the
/// ticks where the clock is refused.
pub fn pid_cpu(pid: u32) -> Duration {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: clock_getcpuclockid writes one clockid_t; clock_gettime one timespec.
    unsafe {
        if libc::clock_getcpuclockid(pid as libc::pid_t, &mut clock) == 0 {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            if libc::clock_gettime(clock, &mut ts) == 0 {
                return Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
            }
        }
    }
    process_cpu(&format!("/proc/{pid}/stat"))
}

/// utime + stime of `/proc/<pid>/stat` (or `/proc/self/task/<tid>/stat`), in clock ticks
/// converted with `sysconf(_SC_CLK_TCK)`.
pub fn process_cpu(stat_path: &str) -> Duration {
    let (user, system) = process_cpu_parts(stat_path);
    user + system
}

/// utime and stime of `/proc/<pid>/stat` apart: (user, system).
pub fn process_cpu_parts(stat_path: &str) -> (Duration, Duration) {
    let text =
        std::fs::read_to_string(stat_path).unwrap_or_else(|e| panic!("read {stat_path}: {e}"));
    // The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
    let rest = &text[text.rfind(')').expect("stat has (comm)") + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 (state) is fields[0]: utime (14) is fields[11], stime (15) fields[12].
    let ticks = |i: usize, what: &str| -> Duration {
        let t: u64 = fields[i].parse().expect(what);
        Duration::from_secs_f64(t as f64 / clock_ticks_per_sec())
    };
    (ticks(11, "utime"), ticks(12, "stime"))
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf reads a constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// CPU time spent by the whole machine so far: every CPU's user, nice, system, irq and
/// softirq time in `/proc/stat`.
pub fn machine_busy() -> Duration {
    let text = std::fs::read_to_string("/proc/stat").expect("read /proc/stat");
    let line = text.lines().next().expect("cpu line");
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().expect("/proc/stat field"))
        .collect();
    // user nice system idle iowait irq softirq (then steal, guest: not this guest's work,
    // or already in user)
    let busy: u64 = ticks.iter().take(7).sum::<u64>() - ticks[3] - ticks[4];
    Duration::from_secs_f64(busy as f64 / clock_ticks_per_sec())
}

/// This process's CPU time so far (all threads: librdkafka's and ours).
pub fn self_cpu() -> Duration {
    process_cpu("/proc/self/stat")
}

/// The calling thread's CPU time so far (getrusage RUSAGE_THREAD, user + system).
pub fn thread_cpu() -> Duration {
    // SAFETY: getrusage fills the struct we pass; zeroed is a valid rusage.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// A group-free librdkafka consumer of one partition (the legacy per-partition consumer, as
/// kcat uses: only Metadata and Fetch), counting payload bytes without copying them.
pub struct CountingConsumer {
    /// The partition's log end: after the message at `end - 1` it starts again at 0.
    end: i64,
    queue: *mut rd::rd_kafka_queue_t,
    topic: *mut rd::rd_kafka_topic_t,
    started: bool,
    batch: Vec<*mut rd::rd_kafka_message_t>,
    /// Dropped last: owns the rd_kafka_t.
    _client: BaseConsumer,
}

impl CountingConsumer {
    /// Reads `topic`-0, which holds offsets `0..end`.
    pub fn new(bootstrap: &str, topic: &str, end: i64) -> CountingConsumer {
        CountingConsumer::with_settings(bootstrap, topic, end, &[])
    }

    /// As [`CountingConsumer::new`], with more client settings (e.g. `security.protocol`).
    pub fn with_settings(
        bootstrap: &str,
        topic: &str,
        end: i64,
        settings: &[(&str, &str)],
    ) -> CountingConsumer {
        let mut c = client_config(bootstrap);
        for (k, v) in settings {
            c.set(*k, *v);
        }
        c.set("enable.auto.commit", "false")
            .set("auto.commit.enable", "false")
            .set("enable.partition.eof", "true")
            // At the log end the consumer goes back to 0 as soon as it has the last message,
            // but librdkafka has usually sent the next Fetch already: one the broker holds for
            // `fetch.wait.max.ms` (500 ms by default), and librdkafka sends no other Fetch to
            // that broker meanwhile. Keep that wait short, so it is not what gets measured.
            .set("fetch.wait.max.ms", "5")
            // A 16 MiB prefetch queue: what is fetched between two timed calls (while
            // criterion is not asking for messages) stays small next to a call's bytes.
            .set("queued.max.messages.kbytes", "16384")
            .set("fetch.queue.backoff.ms", "1");
        // librdkafka's default per-partition fetch is 1 MiB (Kafka's `max.partition.fetch.bytes`
        // default too); `$RAFKA_BENCH_FETCH_BYTES` changes it, to see how the broker scales
        // with bigger fetches.
        if let Ok(v) = std::env::var("RAFKA_BENCH_FETCH_BYTES") {
            c.set("fetch.message.max.bytes", &v);
        }
        let client: BaseConsumer = c.create().expect("consumer");
        let name = CString::new(topic).expect("topic name");
        // SAFETY: a queue and a topic handle on a live client; destroyed in Drop before it.
        let (queue, rkt) = unsafe {
            let rk = client.client().native_ptr();
            (
                rd::rd_kafka_queue_new(rk),
                rd::rd_kafka_topic_new(rk, name.as_ptr(), std::ptr::null_mut()),
            )
        };
        assert!(!queue.is_null() && !rkt.is_null(), "consumer handles");
        CountingConsumer {
            end,
            queue,
            topic: rkt,
            started: false,
            batch: vec![std::ptr::null_mut(); 1024],
            _client: client,
        }
    }

    fn restart_at_zero(&mut self) {
        // SAFETY: live topic handle and queue; stop only what was started.
        unsafe {
            if self.started {
                rd::rd_kafka_consume_stop(self.topic, 0);
            }
            let r = rd::rd_kafka_consume_start_queue(self.topic, 0, 0, self.queue);
            assert_eq!(r, 0, "consume_start");
        }
        self.started = true;
    }

    /// Reads `msgs` messages, going back to offset 0 after the last one; returns the payload
    /// bytes read. Panics on a consume error or when nothing comes for 10 s.
    pub fn read(&mut self, msgs: u64) -> u64 {
        if !self.started {
            self.restart_at_zero();
        }
        let mut got = 0u64;
        let mut bytes = 0u64;
        let mut idle_since = Instant::now();
        while got < msgs {
            // SAFETY: our queue; `batch` has room for its length; each message returned is
            // destroyed once below.
            let n = unsafe {
                rd::rd_kafka_consume_batch_queue(
                    self.queue,
                    100,
                    self.batch.as_mut_ptr(),
                    self.batch.len().min((msgs - got) as usize),
                )
            };
            assert!(n >= 0, "consume_batch_queue failed");
            if n == 0 {
                assert!(
                    idle_since.elapsed() < Duration::from_secs(10),
                    "no message for 10 s"
                );
                continue;
            }
            idle_since = Instant::now();
            let mut wrap = false;
            for &m in &self.batch[..n as usize] {
                // SAFETY: a message librdkafka handed us, valid until destroyed.
                unsafe {
                    let r = &*m;
                    if r.err == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__PARTITION_EOF {
                        wrap = true;
                    } else if r.err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                        panic!("consume error {:?} at offset {}", r.err, r.offset);
                    } else {
                        got += 1;
                        bytes += r.len as u64;
                        wrap |= r.offset >= self.end - 1;
                    }
                    rd::rd_kafka_message_destroy(m);
                }
            }
            if wrap {
                self.restart_at_zero();
            }
        }
        bytes
    }
}

impl Drop for CountingConsumer {
    fn drop(&mut self) {
        // SAFETY: stop what we started, then free the topic handle and queue, once each.
        unsafe {
            if self.started {
                rd::rd_kafka_consume_stop(self.topic, 0);
            }
            rd::rd_kafka_topic_destroy(self.topic);
            rd::rd_kafka_queue_destroy(self.queue);
        }
    }
}

/// The bytes the sendfile reference sends per round: what a consumer asks per partition in one
/// Fetch by default (librdkafka's `fetch.message.max.bytes`, Kafka's
/// `max.partition.fetch.bytes`).
const SENDFILE_ROUND: u64 = 1 << 20;

/// Reference 1: `sendfile(2)` from a file to a loopback TCP socket, in rounds as a fetch is
/// served, a thread on the other end asking for each. The reader asks with one byte on the
/// socket; the sender, blocked in `read` until the ask comes, writes a 4-byte length and
/// `sendfile`s that many bytes ([`SENDFILE_ROUND`]); the reader reads the length and drains the
/// round (`read` into a 1 MiB buffer), then asks again. The calling thread sends; its CPU is the
/// figure. It is the broker's fetch path with nothing of the broker: a request read, a length
/// written, the records sent from the page cache.
///
/// Why rounds and not one stream: on loopback a sender that keeps the reader's socket full
/// while the reader drains it (a stream) costs about twice as much CPU per byte as one that
/// sends a round and waits for the next ask (a bare C loop, sender and reader on two CPUs:
/// 0.46-0.50 CPU-s/GB streaming, 0.21-0.22 in 1 MiB rounds, 2 of 3 runs), so a streaming
/// reference was no floor: the broker serving the raw consumer came out cheaper than it.
/// Everything blocks, nothing spins (an earlier version waited with `yield_now`, charging the
/// wait to the very thread whose CPU is the floor).
pub struct SendfileRef {
    file: File,
    file_len: u64,
    pos: i64,
    sock: TcpStream,
    /// The reader's ask that followed the last round, read at the end of the previous `send`.
    asked: bool,
    reader: Option<JoinHandle<()>>,
}

impl SendfileRef {
    pub fn new(path: &Path) -> SendfileRef {
        let file = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        let file_len = file.metadata().expect("file size").len();
        assert!(file_len > 0, "empty {}", path.display());
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let reader = std::thread::Builder::new()
            .name("sendfile-reader".into())
            .spawn(move || {
                if let Some((_, client)) = pinning() {
                    pin_thread(client);
                }
                let (mut s, _) = listener.accept().expect("accept");
                s.set_nodelay(true).expect("nodelay");
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    if s.write_all(&[1]).is_err() {
                        return;
                    }
                    let mut len = [0u8; 4];
                    if s.read_exact(&mut len).is_err() {
                        return;
                    }
                    let mut left = u32::from_be_bytes(len) as usize;
                    while left > 0 {
                        match s.read(&mut buf[..left.min(1 << 20)]) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => left -= n,
                        }
                    }
                }
            })
            .expect("spawn reader");
        let sock = TcpStream::connect(addr).expect("connect");
        // As the broker's connections (Kafka sets TCP_NODELAY on every accepted socket).
        sock.set_nodelay(true).expect("nodelay");
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        SendfileRef {
            file,
            file_len,
            pos: 0,
            sock,
            asked: false,
            reader: Some(reader),
        }
    }

    /// Waits for the reader's next ask.
    fn ask(&mut self) {
        if std::mem::take(&mut self.asked) {
            return;
        }
        let mut ask = [0u8; 1];
        self.sock.read_exact(&mut ask).expect("the reader asks");
    }

    /// Sends `bytes` bytes of the file (wrapping to its start) in rounds of at most
    /// [`SENDFILE_ROUND`], each when the reader asks, and waits until the reader has them all.
    /// When pinned (`$RAFKA_BENCH_PIN`), the caller moves its thread to the server CPU first
    /// ([`Pinned::server_side`]), outside the CPU it measures.
    pub fn send(&mut self, bytes: u64) {
        let mut total = bytes;
        while total > 0 {
            let round = total.min(SENDFILE_ROUND);
            total -= round;
            self.ask();
            self.sock
                .write_all(&(round as u32).to_be_bytes())
                .expect("send a round's length");
            let mut left = round;
            while left > 0 {
                if self.pos as u64 >= self.file_len {
                    self.pos = 0;
                }
                let count = left.min(self.file_len - self.pos as u64) as usize;
                // SAFETY: sendfile between two fds we own; `pos` is a valid offset in the file.
                let n = unsafe {
                    libc::sendfile(
                        self.sock.as_raw_fd(),
                        self.file.as_raw_fd(),
                        &mut self.pos,
                        count,
                    )
                };
                if n < 0 {
                    let e = std::io::Error::last_os_error();
                    if e.kind() == std::io::ErrorKind::Interrupted {
                        continue;
                    }
                    panic!("sendfile: {e}");
                }
                left -= n as u64;
            }
        }
        // The ask after the last round: the reader has everything. The next round goes out on it.
        self.ask();
        self.asked = true;
    }
}

/// A reference run beside a timed call with as many bytes: returns its measured thread's CPU.
pub trait Reference {
    fn run(&mut self, bytes: u64) -> Duration;
}

impl Reference for SendfileRef {
    fn run(&mut self, bytes: u64) -> Duration {
        let _on_server = Pinned::server_side();
        let cpu0 = thread_cpu();
        self.send(bytes);
        thread_cpu() - cpu0
    }
}

impl Reference for RecvWriteRef {
    fn run(&mut self, bytes: u64) -> Duration {
        self.send(bytes)
    }
}

impl Drop for SendfileRef {
    fn drop(&mut self) {
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// Bytes written to the reference-2 file before it is cut back to empty (between requests,
/// outside the measured CPU), so the disk cannot fill: a default run of the e2e bench pairs the
/// reference with every uncompressed produce bench and writes about as much as they do (several
/// GiB). Like the broker's log, the file is appended to, each write landing on newly allocated
/// page cache; cut back every few GiB rather than every one, so that the writes do not keep
/// reusing just-freed pages, which on a VM whose guest memory is backed on first touch can be
/// cheaper than new ones and would flatter the reference.
const WRAP_BYTES: u64 = 4 << 30;

/// Reference 2: a thread that receives requests over loopback TCP (an 8-byte length, then that
/// many bytes), `write(2)`s the bytes to a file as they arrive (read into a 1 MiB buffer), and
/// answers with the CPU time (ns, 8 bytes) its thread spent on that request.
pub struct RecvWriteRef {
    sock: TcpStream,
    chunk: Vec<u8>,
    receiver: Option<JoinHandle<()>>,
}

impl RecvWriteRef {
    pub fn new(file: &Path, payload: &[u8]) -> RecvWriteRef {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let path = file.to_owned();
        let receiver = std::thread::Builder::new()
            .name("recv-write".into())
            .spawn(move || {
                if let Some((server, _)) = pinning() {
                    pin_thread(server);
                }
                let (mut s, _) = listener.accept().expect("accept");
                let mut f = File::create(&path).expect("create reference file");
                let mut written = 0u64;
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let mut len = [0u8; 8];
                    if s.read_exact(&mut len).is_err() {
                        return;
                    }
                    let len = u64::from_be_bytes(len);
                    if len == 0 {
                        return;
                    }
                    if written >= WRAP_BYTES {
                        f.set_len(0).expect("truncate");
                        f.rewind().expect("rewind");
                        written = 0;
                    }
                    let cpu0 = thread_cpu();
                    let mut left = len;
                    while left > 0 {
                        let want = left.min(buf.len() as u64) as usize;
                        let n = s.read(&mut buf[..want]).expect("receive");
                        assert!(n > 0, "sender closed mid-request");
                        f.write_all(&buf[..n]).expect("write reference file");
                        left -= n as u64;
                    }
                    written += len;
                    let cpu = (thread_cpu() - cpu0).as_nanos() as u64;
                    s.write_all(&cpu.to_be_bytes()).expect("answer");
                }
            })
            .expect("spawn receiver");
        let sock = TcpStream::connect(addr).expect("connect");
        sock.set_nodelay(true).expect("nodelay");
        // The sender writes the produce payload over and over, 1 MiB at a time.
        let mut chunk = Vec::with_capacity(1 << 20);
        while chunk.len() + payload.len() <= 1 << 20 {
            chunk.extend_from_slice(payload);
        }
        RecvWriteRef {
            sock,
            chunk,
            receiver: Some(receiver),
        }
    }

    /// Sends `bytes` bytes as one request and waits for the answer: the receiver's CPU time.
    pub fn send(&mut self, bytes: u64) -> Duration {
        self.sock
            .write_all(&bytes.to_be_bytes())
            .expect("send length");
        let mut left = bytes;
        while left > 0 {
            let n = left.min(self.chunk.len() as u64) as usize;
            self.sock.write_all(&self.chunk[..n]).expect("send");
            left -= n as u64;
        }
        let mut cpu = [0u8; 8];
        self.sock.read_exact(&mut cpu).expect("answer");
        Duration::from_nanos(u64::from_be_bytes(cpu))
    }
}

impl Drop for RecvWriteRef {
    fn drop(&mut self) {
        let _ = self.sock.write_all(&0u64.to_be_bytes());
        if let Some(r) = self.receiver.take() {
            let _ = r.join();
        }
    }
}

/// Unanswered requests the raw producer allows itself (librdkafka's default for an idempotent
/// producer).
const RAW_IN_FLIGHT: usize = 5;

/// A Kafka producer that costs next to nothing per record: one ProduceRequest (v9, acks=1, a
/// single batch of up to librdkafka's `batch.size` of one payload repeated, for `topic`/0),
/// built once and written again and again on one connection with at most
/// [`RAW_IN_FLIGHT`] unanswered, every answer read and checked. It measures the broker's
/// produce path under a client as cheap as the receive-and-write reference's sender:
/// librdkafka spends several times the broker's CPU on 100 B messages, and on a 2-core machine
/// the two processes contend for the same cores and caches.
pub struct RawProducer {
    sock: TcpStream,
    /// The request, size prefix included; its correlation id is set per send.
    frame: Vec<u8>,
    correlation_id: i32,
    /// Correlation ids written and not yet answered, oldest first.
    unanswered: std::collections::VecDeque<i32>,
}

/// Where a request's correlation id lies in its frame (size prefix, api key, api version).
const CORRELATION_AT: usize = 8;

impl RawProducer {
    pub fn new(bootstrap: &str, topic: &str, payload: &[u8]) -> RawProducer {
        use rafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
        use rafka_protocol::messages::{ProduceRequest, RequestHeader, RequestKind};
        use rafka_protocol::record_batch_builder::RecordBatchBuilder;
        use rafka_protocol::{Records, RequestFrame};

        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis() as i64;
        let mut batch = RecordBatchBuilder::new(0);
        let records = Self::records_per_request(payload.len());
        for _ in 0..records {
            batch
                .append(now_ms, None, Some(payload), &[])
                .expect("the record fits the batch");
        }
        let request = RequestFrame {
            header: RequestHeader {
                request_api_key: 0,
                request_api_version: 9,
                correlation_id: 0,
                client_id: Some("rafka-e2e-raw".into()),
                ..Default::default()
            },
            body: RequestKind::Produce(ProduceRequest {
                acks: 1,
                timeout_ms: 30_000,
                topic_data: vec![TopicProduceData {
                    name: topic.into(),
                    partition_data: vec![PartitionProduceData {
                        index: 0,
                        records: Some(Records::Bytes(batch.build())),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }),
        };
        let frame = request.encode().expect("the request encodes").to_vec();
        let sock = TcpStream::connect(bootstrap).expect("connect to the broker");
        sock.set_nodelay(true).expect("nodelay");
        sock.set_read_timeout(Some(READY_TIMEOUT))
            .expect("read timeout");
        RawProducer {
            sock,
            frame,
            correlation_id: 0,
            unanswered: std::collections::VecDeque::new(),
        }
    }

    /// Records of `payload_len` bytes in one request: as many as librdkafka's `batch.size`
    /// (1,000,000) holds, a record's own fields taking at most 16 bytes beside its value.
    pub fn records_per_request(payload_len: usize) -> u64 {
        ((1_000_000 - 61) / (payload_len + 16)).max(1) as u64
    }

    /// Writes `requests` requests and reads every answer; panics on any error in one.
    pub fn send(&mut self, requests: u64) {
        for _ in 0..requests {
            if self.unanswered.len() == RAW_IN_FLIGHT {
                self.answer();
            }
            self.correlation_id = self.correlation_id.wrapping_add(1);
            self.frame[CORRELATION_AT..CORRELATION_AT + 4]
                .copy_from_slice(&self.correlation_id.to_be_bytes());
            self.sock.write_all(&self.frame).expect("send a request");
            self.unanswered.push_back(self.correlation_id);
        }
        while !self.unanswered.is_empty() {
            self.answer();
        }
    }

    /// Reads the oldest unanswered request's answer and checks it.
    fn answer(&mut self) {
        use rafka_protocol::messages::ResponseKind;
        use rafka_protocol::{ApiKey, ResponseFrame};

        let expected = self
            .unanswered
            .pop_front()
            .expect("a request is unanswered");
        let mut size = [0u8; 4];
        self.sock.read_exact(&mut size).expect("an answer's size");
        let size = i32::from_be_bytes(size);
        assert!((0..1 << 20).contains(&size), "answer size {size}");
        let mut body = vec![0u8; size as usize];
        self.sock.read_exact(&mut body).expect("an answer");
        let answer = ResponseFrame::decode(ApiKey::Produce, 9, &body.into())
            .expect("a Produce answer decodes");
        assert_eq!(answer.correlation_id, expected, "answers come in order");
        let ResponseKind::Produce(produce) = answer.body else {
            panic!("not a Produce answer: {answer:?}");
        };
        for topic in &produce.responses {
            for p in &topic.partition_responses {
                assert_eq!(p.error_code, 0, "produce failed: {p:?}");
            }
        }
    }
}

/// The raw consumer's per-partition fetch size: librdkafka's `fetch.message.max.bytes` and
/// Kafka's `max.partition.fetch.bytes` default.
const RAW_FETCH_BYTES: i32 = 1 << 20;
/// Fetch version the raw consumer speaks: flexible, topics by name (v13+ name them by id).
const RAW_FETCH_VERSION: i16 = 12;

/// A Kafka consumer of one partition that costs next to nothing per byte: one Fetch (v12,
/// read_committed as librdkafka's default, 1 MiB per partition, no fetch session — librdkafka
/// has none) at a time on one connection, the answer read into a buffer reused from fetch to
/// fetch, decoded and checked (correlation id, error codes, magic-2 batches whole and in order),
/// its batches counted from their headers without touching the records. It drains the socket as
/// the sendfile reference's reader does, so the broker's serving is measured without a client
/// that falls behind: a receiver whose socket backs up changes what the sender's kernel does
/// (on loopback the receive path runs in the sender's softirq).
pub struct RawConsumer {
    sock: TcpStream,
    topic: String,
    /// The next offset to fetch; back to 0 at the high watermark.
    offset: i64,
    correlation_id: i32,
    /// The answer buffer, kept at its largest length so it is never zeroed again.
    buf: Vec<u8>,
}

impl RawConsumer {
    pub fn new(bootstrap: &str, topic: &str) -> RawConsumer {
        let sock = TcpStream::connect(bootstrap).expect("connect to the broker");
        sock.set_nodelay(true).expect("nodelay");
        sock.set_read_timeout(Some(READY_TIMEOUT))
            .expect("read timeout");
        RawConsumer {
            sock,
            topic: topic.into(),
            offset: 0,
            correlation_id: 0,
            buf: Vec::new(),
        }
    }

    fn request(&mut self) -> Vec<u8> {
        use rafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
        use rafka_protocol::messages::{FetchRequest, RequestHeader, RequestKind};
        use rafka_protocol::RequestFrame;

        self.correlation_id = self.correlation_id.wrapping_add(1);
        let request = RequestFrame {
            header: RequestHeader {
                request_api_key: 1,
                request_api_version: RAW_FETCH_VERSION,
                correlation_id: self.correlation_id,
                client_id: Some("rafka-e2e-raw".into()),
                ..Default::default()
            },
            body: RequestKind::Fetch(FetchRequest {
                replica_id: -1,
                max_wait_ms: 5,
                min_bytes: 1,
                max_bytes: 50 << 20,
                isolation_level: 1,
                session_id: 0,
                session_epoch: -1,
                topics: vec![FetchTopic {
                    topic: self.topic.clone(),
                    partitions: vec![FetchPartition {
                        partition: 0,
                        fetch_offset: self.offset,
                        partition_max_bytes: RAW_FETCH_BYTES,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }),
        };
        request.encode().expect("the request encodes").to_vec()
    }

    /// Fetches until at least `msgs` messages have come (whole batches: a few more may come),
    /// going back to offset 0 at the high watermark. Returns (messages, payload bytes), the
    /// bytes counted as messages × `size` (every message of the topic is `size` bytes).
    pub fn read(&mut self, msgs: u64, size: usize) -> (u64, u64) {
        let mut got = 0u64;
        let started = Instant::now();
        while got < msgs {
            let request = self.request();
            self.sock.write_all(&request).expect("send a Fetch");
            let n = self.answer();
            if n == 0 {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "no message for 10 s at offset {}",
                    self.offset
                );
            }
            got += n;
        }
        (got, got * size as u64)
    }

    /// Reads one Fetch answer, checks it, advances `offset`; returns the messages it held.
    fn answer(&mut self) -> u64 {
        use bytes::Bytes;
        use rafka_protocol::messages::ResponseKind;
        use rafka_protocol::{ApiKey, Records, ResponseFrame};

        let mut size = [0u8; 4];
        self.sock.read_exact(&mut size).expect("an answer's size");
        let size = i32::from_be_bytes(size);
        // One partition's 1 MiB and the answer's own fields.
        assert!(
            (0..RAW_FETCH_BYTES + (64 << 10)).contains(&size),
            "answer size {size}"
        );
        let size = size as usize;
        if self.buf.len() < size {
            self.buf.resize(size, 0);
        }
        self.sock
            .read_exact(&mut self.buf[..size])
            .expect("an answer");
        // Lent to the decoder without a copy, and taken back once its slices are dropped.
        let whole = Bytes::from(std::mem::take(&mut self.buf));
        let (msgs, next, high_watermark) = {
            let answer =
                ResponseFrame::decode(ApiKey::Fetch, RAW_FETCH_VERSION, &whole.slice(..size))
                    .expect("a Fetch answer decodes");
            assert_eq!(
                answer.correlation_id, self.correlation_id,
                "the answer to our Fetch"
            );
            let ResponseKind::Fetch(fetch) = answer.body else {
                panic!("not a Fetch answer");
            };
            assert_eq!(fetch.error_code, 0, "Fetch failed");
            let [topic] = &fetch.responses[..] else {
                panic!("{} topics in the answer", fetch.responses.len());
            };
            let [p] = &topic.partitions[..] else {
                panic!("{} partitions in the answer", topic.partitions.len());
            };
            assert_eq!(p.error_code, 0, "Fetch of the partition failed");
            let records = match &p.records {
                Some(Records::Bytes(b)) => b.clone(),
                None => Bytes::new(),
                Some(other) => panic!("records not bytes: {other:?}"),
            };
            let (msgs, next) = count_batches(&records, self.offset);
            (msgs, next, p.high_watermark)
        };
        self.buf = match whole.try_into_mut() {
            Ok(b) => b.into(),
            Err(_) => panic!("the decoded answer outlived its buffer"),
        };
        self.offset = if next >= high_watermark { 0 } else { next };
        msgs
    }
}

/// Walks the record batches' headers in `records` (a partial last batch, as a fetch may end
/// with, is left for the next fetch): the messages they hold and the offset after the last one.
/// Checks each batch is magic 2, whole and starts where the previous one ended (or at or below
/// `from`, for the first).
fn count_batches(records: &[u8], from: i64) -> (u64, i64) {
    let (mut at, mut msgs, mut next) = (0usize, 0u64, from);
    let be_i64 = |b: &[u8]| i64::from_be_bytes(b.try_into().expect("8 bytes"));
    let be_i32 = |b: &[u8]| i32::from_be_bytes(b.try_into().expect("4 bytes"));
    while records.len() - at >= 61 {
        let h = &records[at..];
        let base = be_i64(&h[0..8]);
        let len = be_i32(&h[8..12]);
        assert!(len >= 49, "batch length {len}");
        if h.len() < 12 + len as usize {
            break;
        }
        assert_eq!(h[16], 2, "magic");
        let last_delta = be_i32(&h[23..27]);
        let count = be_i32(&h[57..61]);
        assert!(count > 0 && last_delta >= 0, "batch of {count} records");
        assert!(
            if msgs == 0 {
                base <= next
            } else {
                base == next
            },
            "batch at {base}, expected {next}"
        );
        next = base + last_delta as i64 + 1;
        msgs += count as u64;
        at += 12 + len as usize;
    }
    (msgs, next)
}
