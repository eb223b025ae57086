//! Startup without a config: `rafka` alone serves Metadata on localhost:9092 within a second,
//! keeps its data under `./rafka-data` of its cwd, reuses the cluster id after a restart, and
//! exits cleanly (status 0) on SIGTERM.
//!
//! This is the one test that uses the default ports 9092 and 9093; if another process holds
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
            && TcpListener::bind("127.0.0.1:9093").is_ok();
        if free {
            return;
        }
        deadline.check(|| "ports 9092/9093 on 127.0.0.1 are held by another process; this test needs them free".into());
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
    assert!(
        cwd.path()
            .join("rafka-data")
            .join("meta.properties")
            .is_file(),
        "./rafka-data/meta.properties in the cwd"
    );
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
