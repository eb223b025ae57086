//! Startup without a config: `rafka` alone serves Metadata on localhost:9092 within a second,
//! keeps its data under `./rafka-data` of its cwd, reuses the cluster id after a restart, and
//! exits cleanly (status 0) on SIGTERM.
//!
//! Also: an invalid configuration stops the start with one line, and the resident memory of an
//! idle broker with 100 partitions (printed; run with `--nocapture` to read it).
//!
//! `no_config_answers_metadata_within_a_second` is the one test that uses the default ports 9092, 9093 and 9644; if another process holds
//! them it waits a while, then fails saying so.

mod common;

use common::{metadata, spawn_rafka, Deadline};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

const DEFAULT: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9092);

fn wait_for_default_ports() {
    let deadline = Deadline::after(Duration::from_secs(30));
    loop {
        let free = TcpListener::bind("127.0.0.1:9092").is_ok()
            && TcpListener::bind("127.0.0.1:9093").is_ok()
            && TcpListener::bind("127.0.0.1:9644").is_ok();
        if free {
            return;
        }
        deadline.check(|| "ports 9092/9093/9644 on 127.0.0.1 are held by another process; this test needs them free".into());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Spawns `rafka` with no arguments in `cwd` and returns (child, time to the first Metadata
/// answer, time until that answer lists broker 1 and a controller, cluster id).
fn start_default(
    cwd: &std::path::Path,
) -> (std::process::Child, Duration, Duration, Option<String>) {
    wait_for_default_ports();
    let t0 = Instant::now();
    let mut child = spawn_rafka(cwd, &[]);
    let deadline = Deadline::after(Duration::from_secs(10));
    let mut first = None;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            panic!(
                "rafka exited during startup ({status}):\n{}",
                std::fs::read_to_string(cwd.join("rafka.log")).unwrap_or_default()
            );
        }
        if let Ok(md) = metadata(DEFAULT, None, Duration::from_millis(500)) {
            let at = t0.elapsed();
            first.get_or_insert(at);
            if md.brokers.iter().any(|b| b.node_id == 1) && md.controller_id == 1 {
                return (child, first.expect("set above"), at, md.cluster_id);
            }
        }
        if deadline.passed() {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "no Metadata answer listing broker 1 within 10 s (first answer: {first:?}):\n{}",
                std::fs::read_to_string(cwd.join("rafka.log")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn sigterm(child: &mut std::process::Child) -> std::process::ExitStatus {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Deadline::after(common::TERM_TIMEOUT);
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s;
        }
        if deadline.passed() {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "rafka did not exit within {:?} of SIGTERM",
                common::TERM_TIMEOUT
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn no_config_answers_metadata_within_a_second() {
    let cwd = tempfile::tempdir().expect("temp dir");
    let (mut child, first, listed, cluster_id) = start_default(cwd.path());
    let guard = scopeguard(&mut child);
    println!("startup (fresh ./rafka-data): first Metadata answer {first:?} after spawn; broker 1 listed with controller {listed:?}");
    assert!(
        first < Duration::from_secs(1),
        "first Metadata answer took {first:?} (limit 1 s)"
    );
    // The node writes meta.properties (with an fsync) from the task that follows the metadata
    // log, once the log names the cluster: that can land a few milliseconds after the broker
    // first answers. What is checked is where the data goes, so wait for it, within a bound.
    let meta = cwd.path().join("rafka-data").join("meta.properties");
    let deadline = Deadline::after(Duration::from_secs(5));
    while !meta.is_file() && !deadline.passed() {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(meta.is_file(), "./rafka-data/meta.properties in the cwd");
    let status = sigterm(guard.0);
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let log = std::fs::read_to_string(cwd.path().join("rafka.log")).unwrap_or_default();
    assert!(
        log.contains("shut down cleanly"),
        "log says it shut down cleanly:\n{log}"
    );

    // Second start in the same cwd: the same cluster, data reused.
    let (mut child, first2, _, cluster_id2) = start_default(cwd.path());
    let guard = scopeguard(&mut child);
    println!("restart (existing ./rafka-data): first Metadata answer {first2:?}");
    assert!(cluster_id.is_some(), "Metadata names a cluster id");
    assert_eq!(cluster_id, cluster_id2, "the cluster id survives a restart");
    let status = sigterm(guard.0);
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

/// Kills the child if the test panics before stopping it.
struct Guard<'a>(&'a mut std::process::Child);
fn scopeguard(c: &mut std::process::Child) -> Guard<'_> {
    Guard(c)
}
impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `rafka` with `overrides` over a valid single-node configuration on free ports and
/// expects it to refuse to start: a non-zero exit within 10 s, and the output's last line.
fn refused_start(cwd: &std::path::Path, overrides: &[String]) -> String {
    let (port, controller) = (common::free_port(), common::free_port());
    let mut args = vec![
        format!("listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}"),
        format!("controller.quorum.voters=1@127.0.0.1:{controller}"),
        format!("log.dirs={}", cwd.join("data").display()),
    ];
    args.extend(overrides.iter().cloned());
    let args: Vec<String> = args
        .into_iter()
        .flat_map(|kv| ["--override".to_string(), kv])
        .collect();
    let mut child = spawn_rafka(cwd, &args);
    let deadline = Deadline::after(Duration::from_secs(10));
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if deadline.passed() {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "rafka {overrides:?} still running after 10 s:\n{}",
                std::fs::read_to_string(cwd.join("rafka.log")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = std::fs::read_to_string(cwd.join("rafka.log")).unwrap_or_default();
    assert!(
        !status.success(),
        "{overrides:?} exited with {status}:\n{log}"
    );
    log.lines().last().unwrap_or_default().to_string()
}

#[test]
fn invalid_configuration_stops_the_start_with_one_line() {
    // A bad value names the key.
    let cwd = tempfile::tempdir().expect("temp dir");
    let line = refused_start(cwd.path(), &["num.partitions=many".into()]);
    assert!(line.contains("num.partitions"), "bad value: {line:?}");

    // A port in use names the address.
    let held = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = held.local_addr().expect("addr").port();
    let cwd = tempfile::tempdir().expect("temp dir");
    let controller = common::free_port();
    let line = refused_start(
        cwd.path(),
        &[format!(
            "listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}"
        )],
    );
    assert!(
        line.contains(&format!("127.0.0.1:{port}")),
        "port in use: {line:?}"
    );

    // A log directory that cannot be created (its parent is a file) names the key and path.
    let cwd = tempfile::tempdir().expect("temp dir");
    let file = cwd.path().join("a-file");
    std::fs::write(&file, b"x").expect("write");
    let dir = file.join("logs");
    let line = refused_start(cwd.path(), &[format!("log.dirs={}", dir.display())]);
    assert!(
        line.contains("log.dirs") && line.contains(&dir.display().to_string()),
        "unwritable log dir: {line:?}"
    );

    // The classic rebalance protocol cannot be turned off (Kafka refuses it too).
    let cwd = tempfile::tempdir().expect("temp dir");
    let line = refused_start(
        cwd.path(),
        &["group.coordinator.rebalance.protocols=consumer".into()],
    );
    assert!(
        line.contains("group.coordinator.rebalance.protocols") && line.contains("classic"),
        "classic turned off: {line:?}"
    );
    println!("refusals, one line each, e.g.: {line}");
}

/// A process's `VmRSS` in KiB, from `/proc/<pid>/status`.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

#[test]
fn idle_resident_memory_with_100_partitions() {
    let cluster = common::Cluster::start(1, &[]);
    let n = &cluster.nodes[0];
    let pid = n.pid().expect("running");
    std::thread::sleep(Duration::from_millis(500));
    let empty = resident_kib(pid);
    let admin = common::admin(&n.bootstrap());
    common::create_topic(&admin, n, "hundred", 100, &[]);
    // One record in every partition, so that each has an open segment and written indexes.
    let p = common::SyncProducer::new(&n.bootstrap(), &[]);
    for partition in 0..100 {
        assert_eq!(p.send("hundred", partition, b"hello"), Ok(0));
    }
    drop(p);
    drop(admin);
    std::thread::sleep(Duration::from_secs(2));
    let idle = resident_kib(pid);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    println!(
        "idle broker RSS: {empty} KiB with no topics, {idle} KiB with 100 partitions \
         (one record each, clients gone); {fds} open file descriptors \
         ({} build of rafka)",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    // A bound that catches a leak or an eager allocation per partition, not a target.
    assert!(idle < 256 * 1024, "idle RSS {idle} KiB with 100 partitions");
}
