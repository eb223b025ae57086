//! Metrics bench (`cargo bench --bench metrics`): what recording metrics costs the produce path,
//! and how long a `/metrics` scrape takes on a node with many partitions.
//!
//! 1. **CPU per GB produced, metrics on vs off, same run.** Two single-node brokers run side by
//!    side — one with the defaults (`metrics.enable=true`), one with `metrics.enable=false` (it
//!    records nothing at all) — and receive the same produce load in interleaved rounds (on, off,
//!    off, on, …) so that drift on a shared machine falls on both. Each round sends
//!    `RAFKA_MB` MiB (256) of 1 KiB records with acks=1 from librdkafka; the broker's CPU time
//!    over the round is divided by the bytes sent: in all (the on-CPU ns of
//!    `/proc/<pid>/task/*/schedstat`, summed over the live threads) and in user mode
//!    (`/proc/<pid>/stat`, 10 ms ticks).
//!    `RAFKA_ROUNDS` (4) rounds per broker; besides the totals, the median of the rounds' on/off
//!    ratios. System time is mostly the page cache taking the writes, which on this VM swings
//!    several-fold between rounds (reclaim, first touch); the logs keep 128 MiB (64 MiB
//!    segments) so their pages are reused. `RAFKA_LINGER_MS` (5) and `RAFKA_BATCH_BYTES`
//!    (1000000) set the producer's batching: `0` and `16384` make many small requests, the case
//!    where per-request recording weighs most. `RAFKA_DATA_DIR` puts both brokers' logs under
//!    that directory instead of the system's temporary one: `/dev/shm` (tmpfs) keeps the kernel's
//!    part of a write a plain copy, without writeback and reclaim, so the variance left is the
//!    brokers' own. Besides the totals, the mean and spread of the rounds' paired differences
//!    (on − off, ms of CPU per round) are printed with a 95% interval, which is what says whether
//!    a difference is resolved at all.
//!    `RAFKA_PERF=1` also samples each broker's user-mode CPU with `perf record -e cpu-clock:u`
//!    (a sample every 50 µs of the broker's CPU time, kept only when it lands in user mode):
//!    recording metrics is user-mode work only (relaxed atomics and vDSO clock reads, no system
//!    call), and user time sampled this way resolves it where `/proc`'s 10 ms ticks cannot.
//! 2. **`/metrics` response time.** For each count in `RAFKA_METRICS_PARTITIONS` ("10000"), one
//!    node gets that many partitions (topics of 100, created 20 topics per CreateTopics request,
//!    as `benches/partitions.rs` does), then `/metrics` is fetched 20 times; the median and the
//!    slowest are printed, with the response size. Per-partition series are off (the default);
//!    `RAFKA_METRICS_PARTITION_LEVEL=true` measures them on. `RAFKA_NOFILE_NOTE` is printed as is.
//!
//! Every figure is printed; nothing is asserted here (the tests check correctness).

#[path = "e2e/support.rs"]
#[allow(dead_code)]
mod support;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};
use support::Broker;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind")
        .port()
}

/// A broker with its HTTP listener on a port of its own.
fn broker(dir: &std::path::Path, extra: &str) -> (Broker, u16) {
    let http = free_port();
    let b = Broker::start_with(
        dir,
        &format!("http.listeners=http://127.0.0.1:{http}\n{extra}"),
    );
    (b, http)
}

/// `GET /metrics`: (status line, body bytes, time to the last byte).
fn scrape(port: u16) -> (String, usize, Duration) {
    let start = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read");
    let took = start.elapsed();
    let text = String::from_utf8_lossy(&buf);
    let status = text.lines().next().unwrap_or("").to_owned();
    let body = text.find("\r\n\r\n").map_or(0, |i| buf.len() - i - 4);
    (status, body, took)
}

fn gauge(port: u16, name: &str) -> Option<f64> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.lines()
        .find(|l| l.split(' ').next() == Some(name))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

fn produce_round(bootstrap: &str, topic: &str, payload: &[u8], n: usize) {
    let p: BaseProducer = support::client_config(bootstrap)
        .set("acks", "1")
        .set("linger.ms", env_or("RAFKA_LINGER_MS", 5u64).to_string())
        .set(
            "batch.size",
            env_or("RAFKA_BATCH_BYTES", 1_000_000u64).to_string(),
        )
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .create()
        .expect("producer");
    let mut sent = 0;
    while sent < n {
        match p.send(BaseRecord::<(), [u8]>::to(topic).payload(payload)) {
            Ok(()) => sent += 1,
            Err(_) => {
                p.poll(Duration::from_millis(5));
            }
        }
    }
    p.flush(Duration::from_secs(120)).expect("flush");
}

fn cpu_per_gb() {
    let mb: usize = env_or("RAFKA_MB", 256);
    let rounds: usize = env_or("RAFKA_ROUNDS", 4);
    let payload = vec![b'm'; 1024];
    let n = mb * 1024;
    let base = match std::env::var("RAFKA_DATA_DIR") {
        Ok(dir) => tempfile::tempdir_in(dir),
        Err(_) => tempfile::tempdir(),
    }
    .expect("tempdir");
    let (on_dir, off_dir) = (base.path().join("on"), base.path().join("off"));
    std::fs::create_dir_all(&on_dir).expect("dir");
    std::fs::create_dir_all(&off_dir).expect("dir");
    // Old segments deleted as the rounds go, so the page cache the logs use stays small and
    // its pages are reused: less of the kernel's reclaim in the figures.
    let logs = "log.segment.bytes=67108864\nlog.retention.bytes=134217728\n\
                log.retention.check.interval.ms=1000";
    let (on, _) = broker(&on_dir, logs);
    let (off, off_http) = broker(&off_dir, &format!("metrics.enable=false\n{logs}"));
    assert!(gauge(off_http, "kafka_server_replicamanager_partitioncount").is_none());
    for b in [&on, &off] {
        b.create_topic("load", &[]);
        // Warm-up: page cache, segment files, the producer's connections.
        produce_round(&b.bootstrap(), "load", &payload, n / 4);
    }
    // (user, total): user time from /proc/<pid>/stat (10 ms ticks), the total on-CPU time from
    // the threads' schedstat (ns), which the ratios use.
    let cpu = |b: &Broker| {
        let (user, system) = support::process_cpu_parts(&format!("/proc/{}/stat", b.pid()));
        // schedstat is per thread: the sum over the live threads (the tokio workers that run
        // the produce path live as long as the broker).
        let ns: u64 = std::fs::read_dir(format!("/proc/{}/task", b.pid()))
            .map(|tasks| {
                tasks
                    .flatten()
                    .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
                    .filter_map(|t| t.split_whitespace().next()?.parse::<u64>().ok())
                    .sum()
            })
            .unwrap_or(0);
        let total = if ns > 0 {
            Duration::from_nanos(ns)
        } else {
            user + system
        };
        (user, total)
    };
    // Per broker: (user, system) summed; per round: on ÷ off of user and of user + system.
    let (mut sum_on, mut sum_off) = (
        (Duration::ZERO, Duration::ZERO),
        (Duration::ZERO, Duration::ZERO),
    );
    let (mut user_ratios, mut total_ratios) = (Vec::new(), Vec::new());
    // Per round: (on − off) of user + system, in seconds.
    let mut diffs = Vec::new();
    // `RAFKA_PERF`: user time sampled by perf, per broker in all, and per round on/off shares.
    let perf = env_or("RAFKA_PERF", 0u8) == 1;
    let (mut perf_on, mut perf_off) = (Duration::ZERO, Duration::ZERO);
    let (mut perf_diffs, mut perf_total_diffs) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        let order: [(&Broker, bool); 2] = if r % 2 == 0 {
            [(&on, true), (&off, false)]
        } else {
            [(&off, false), (&on, true)]
        };
        let mut this = [(0.0, 0.0); 2];
        let mut perf_this = [0.0f64; 2];
        for (b, is_on) in order {
            let sampler = perf.then(|| UserSampler::start(b.pid(), base.path()));
            let (u0, t0) = cpu(b);
            produce_round(&b.bootstrap(), "load", &payload, n);
            let (u1, t1) = cpu(b);
            if let Some(s) = sampler {
                let sampled = s.finish();
                let (sum, shares) = if is_on {
                    (&mut perf_on, &mut perf_this[0])
                } else {
                    (&mut perf_off, &mut perf_this[1])
                };
                *sum += sampled;
                *shares = sampled.as_secs_f64();
            }
            // The two clocks differ: system time is what the total has beyond user time.
            let user = u1.saturating_sub(u0);
            let system = t1.saturating_sub(t0).saturating_sub(user);
            println!(
                "round {r} metrics {}: {:.2} s broker CPU for {mb} MiB (user {:.2}, system {:.2})",
                if is_on { "on " } else { "off" },
                (user + system).as_secs_f64(),
                user.as_secs_f64(),
                system.as_secs_f64()
            );
            let sum = if is_on { &mut sum_on } else { &mut sum_off };
            sum.0 += user;
            sum.1 += system;
            this[usize::from(!is_on)] = (user.as_secs_f64(), (user + system).as_secs_f64());
        }
        user_ratios.push(this[0].0 / this[1].0.max(1e-9));
        total_ratios.push(this[0].1 / this[1].1.max(1e-9));
        diffs.push((this[0].1 - this[1].1, this[1].1));
        // As a share of the off broker's user time, and of its whole CPU (user + system).
        perf_diffs.push((perf_this[0] - perf_this[1], perf_this[1]));
        perf_total_diffs.push((perf_this[0] - perf_this[1], this[1].1));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let gb = (mb * rounds) as f64 / 1024.0;
    let per = |d: Duration| d.as_secs_f64() / gb;
    println!(
        "produce path, broker CPU per GiB ({rounds} rounds of {mb} MiB each, 1 KiB records, acks=1):\n  \
         user:         metrics on {:.3} s, off {:.3} s, on/off {:+.1}% (median of the rounds' on/off: {:+.1}%)\n  \
         user+system:  metrics on {:.3} s, off {:.3} s, on/off {:+.1}% (median of the rounds' on/off: {:+.1}%)",
        per(sum_on.0),
        per(sum_off.0),
        (per(sum_on.0) / per(sum_off.0) - 1.0) * 100.0,
        (median(&mut user_ratios) - 1.0) * 100.0,
        per(sum_on.0 + sum_on.1),
        per(sum_off.0 + sum_off.1),
        (per(sum_on.0 + sum_on.1) / per(sum_off.0 + sum_off.1) - 1.0) * 100.0,
        (median(&mut total_ratios) - 1.0) * 100.0,
    );
    paired_summary("user+system", &diffs);
    if perf {
        println!(
            "  user (perf cpu-clock:u samples): metrics on {:.3} s, off {:.3} s per GiB, on/off \
             {:+.1}%; as a share of off's user+system: {:+.2}%",
            per(perf_on),
            per(perf_off),
            (perf_on.as_secs_f64() / perf_off.as_secs_f64().max(1e-9) - 1.0) * 100.0,
            (per(perf_on) - per(perf_off)) / per(sum_off.0 + sum_off.1) * 100.0,
        );
        paired_summary("user (perf)", &perf_diffs);
        paired_summary(
            "user (perf) on − off as a share of off's user+system",
            &perf_total_diffs,
        );
    }
}

/// The paired differences `(on − off, off)` of one measure as a share of off per round: their
/// mean, standard deviation and a 95% interval of the mean (Student's t for rounds − 1 degrees
/// of freedom); and the median with a distribution-free interval.
fn paired_summary(what: &str, diffs: &[(f64, f64)]) {
    let shares: Vec<f64> = diffs.iter().map(|(d, off)| d / off.max(1e-9)).collect();
    let k = shares.len() as f64;
    let mean = shares.iter().sum::<f64>() / k;
    let sd = (shares.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (k - 1.0).max(1.0)).sqrt();
    let t = student_t95(shares.len().saturating_sub(1));
    let half = t * sd / k.sqrt();
    println!(
        "  {what}, paired rounds: on − off = {:+.2}% of off (mean of {} rounds, sd {:.2}%), 95% \
         interval [{:+.2}%, {:+.2}%]",
        mean * 100.0,
        shares.len(),
        sd * 100.0,
        (mean - half) * 100.0,
        (mean + half) * 100.0
    );
    // The same without assuming a distribution: the median of the paired shares and its 95%
    // interval from order statistics (the sign test's), which a few outlying rounds — page
    // allocation or reclaim landing in one broker's round — cannot widen.
    let mut sorted = shares.clone();
    sorted.sort_by(f64::total_cmp);
    let (lo, hi) = median_interval95(&sorted);
    println!(
        "  {what}, paired rounds: median on − off = {:+.2}% of off, 95% interval [{:+.2}%, {:+.2}%]",
        sorted[sorted.len() / 2] * 100.0,
        lo * 100.0,
        hi * 100.0
    );
}

/// `perf record -e cpu-clock:u` attached to one process: a sample every 50 µs of its CPU time,
/// kept when it lands in user mode; the samples times the period estimate its user time.
struct UserSampler {
    child: std::process::Child,
    out: std::path::PathBuf,
}

const PERF_PERIOD_NS: u64 = 50_000;

impl UserSampler {
    fn start(pid: u32, dir: &std::path::Path) -> UserSampler {
        let out = dir.join(format!("perf-{pid}.data"));
        let child = std::process::Command::new("perf")
            .args(["record", "-q", "-e", "cpu-clock:u", "-c"])
            .arg(PERF_PERIOD_NS.to_string())
            .args(["-p", &pid.to_string(), "-o"])
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("RAFKA_PERF=1 needs perf (linux-perf) on the PATH");
        // perf attaches to every thread of the process before the round starts.
        std::thread::sleep(Duration::from_millis(300));
        UserSampler { child, out }
    }

    fn finish(mut self) -> Duration {
        // SAFETY: kill(2) on our own child; SIGINT makes perf write its file and exit.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        let _ = self.child.wait();
        let report = std::process::Command::new("perf")
            .args(["report", "--stats", "-i"])
            .arg(&self.out)
            .output()
            .expect("perf report");
        let _ = std::fs::remove_file(&self.out);
        let text = String::from_utf8_lossy(&report.stdout);
        let samples: u64 = text
            .lines()
            .find(|l| l.trim_start().starts_with("SAMPLE events:"))
            .and_then(|l| l.split(':').nth(1)?.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no SAMPLE count in perf report --stats:\n{text}"));
        Duration::from_nanos(samples * PERF_PERIOD_NS)
    }
}

/// A distribution-free 95% interval for the median of `sorted` (ascending): the widest `k` with
/// P(Binomial(n, ½) < k) ≤ 2.5% gives [x₍ₖ₎, x₍ₙ₋ₖ₊₁₎] (1-based); the whole range when `n` is too
/// small for any `k` (fewer than 6 rounds).
fn median_interval95(sorted: &[f64]) -> (f64, f64) {
    let n = sorted.len();
    // P(X <= j) for X ~ Binomial(n, 1/2), summed term by term.
    let mut term = 0.5f64.powi(n as i32);
    let mut cdf = term;
    let mut k = 0;
    for j in 0..n {
        // cdf = P(X <= j); order statistic j+1 qualifies when P(X <= j) <= 0.025.
        if cdf > 0.025 {
            break;
        }
        k = j + 1;
        term *= (n - j) as f64 / (j + 1) as f64;
        cdf += term;
    }
    if k == 0 {
        (sorted[0], sorted[n - 1])
    } else {
        (sorted[k - 1], sorted[n - k])
    }
}

/// The two-sided 95% quantile of Student's t with `df` degrees of freedom (1.96 beyond 30).
fn student_t95(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => T[df - 1],
        _ => 1.96,
    }
}

fn scrape_time(partitions: usize, partition_level: bool) {
    let per_topic = 100;
    let topics: Vec<String> = (0..partitions.div_ceil(per_topic))
        .map(|i| format!("t{i:05}"))
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let (b, http) = broker(
        dir.path(),
        &format!("metrics.partition.level.enable={partition_level}\nlog.segment.bytes=1048576"),
    );
    let created = Instant::now();
    // A CreateTopics of 2,000 partitions can take more than librdkafka's 10 s socket timeout
    // of the other benches on this shared machine: wait as long as the request timeout.
    let admin: AdminClient<DefaultClientContext> = support::client_config(&b.bootstrap())
        .set("socket.timeout.ms", "180000")
        .create()
        .expect("admin");
    let opts = AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(120)))
        .operation_timeout(Some(Duration::from_secs(120)));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for (i, chunk) in topics.chunks(20).enumerate() {
        let nts: Vec<NewTopic<'_>> = chunk
            .iter()
            .map(|t| NewTopic::new(t, per_topic as i32, TopicReplication::Fixed(1)))
            .collect();
        let asked = Instant::now();
        let answer = rt.block_on(admin.create_topics(&nts, &opts));
        let results = answer.unwrap_or_else(|e| {
            panic!(
                "CreateTopics #{i} ({} partitions so far, {:.1} s in this request): {e}\n{}",
                i * 20 * per_topic,
                asked.elapsed().as_secs_f64(),
                b.log_tail(30)
            )
        });
        for r in results {
            r.unwrap_or_else(|(t, e)| panic!("create {t}: {e}"));
        }
        if i % 10 == 9 {
            println!(
                "  {} partitions asked for after {:.1} s",
                (i + 1) * 20 * per_topic,
                created.elapsed().as_secs_f64()
            );
        }
    }
    // Every partition hosted and led, as the node's own gauge says.
    let deadline = Instant::now() + Duration::from_secs(900);
    let want = (topics.len() * per_topic) as f64;
    while gauge(http, "kafka_server_replicamanager_leadercount") < Some(want) {
        assert!(Instant::now() < deadline, "partitions not led within 900 s");
        std::thread::sleep(Duration::from_millis(500));
    }
    println!(
        "{} partitions created and led in {:.1} s",
        want,
        created.elapsed().as_secs_f64()
    );
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..20 {
        let (status, body, took) = scrape(http);
        assert!(status.contains("200"), "{status}");
        size = body;
        times.push(took);
    }
    times.sort();
    println!(
        "/metrics at {want} partitions (per-partition series {}): median {:.1} ms, slowest \
         {:.1} ms, {} KiB",
        if partition_level { "on" } else { "off" },
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        size / 1024
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter selects a part.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let run = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    if run("cpu") {
        cpu_per_gb();
    }
    if run("scrape") {
        let partition_level = env_or("RAFKA_METRICS_PARTITION_LEVEL", false);
        let counts: String = env_or("RAFKA_METRICS_PARTITIONS", "10000".to_owned());
        for c in counts.split(',').filter_map(|c| c.trim().parse().ok()) {
            scrape_time(c, partition_level);
        }
    }
}
