//! `rafka agent` and `rafka transfer` end to end, as processes against a real broker: files
//! written, rotated by rename and by truncation while the agent runs, multi-line records; the
//! agent, the transfer and the broker SIGKILLed mid-way; tasks added and removed through the
//! compacted tasks topic while everything runs (taking effect within a second). Afterwards every
//! line written is in the transfer's JSON-lines output, in order per file: exactly once without
//! crashes, and with crashes the duplicates are counted and printed (the agent's at-least-once
//! across a crash).
//! Bad input: unreadable files, binary content, overlong lines, a deleted directory, unknown
//! flags (exit 2), a broker that is down (one line, bounded wait).

mod common;

use common::{spawn_rafka, Cluster, RAFKA};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const GROUP_CONFIG: [(&str, &str); 2] = [
    ("offsets.topic.replication.factor", "1"),
    ("group.initial.rebalance.delay.ms", "0"),
];
const TASKS: &str = "collection-tasks";

/// A tool process (agent or transfer) in its own directory, SIGKILLed when dropped.
struct Proc {
    dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl Proc {
    fn start(dir: &Path, args: &[String]) -> Proc {
        std::fs::create_dir_all(dir).expect("mkdir");
        let mut p = Proc {
            dir: dir.to_owned(),
            args: args.to_vec(),
            child: None,
        };
        p.restart();
        p
    }
    fn restart(&mut self) {
        assert!(self.child.is_none());
        self.child = Some(spawn_rafka(&self.dir, &self.args));
    }
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    /// SIGTERM and wait (bounded) for the exit code.
    fn terminate(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(s)) = c.try_wait() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }
    fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("rafka.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn run_tool(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(RAFKA).args(args).output().expect("run rafka");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok_tool(args: &[&str]) {
    let (code, out, err) = run_tool(args);
    assert_eq!(code, 0, "rafka {args:?}\n{out}\n{err}");
}

fn create_topic(b: &str, topic: &str, partitions: &str) {
    ok_tool(&[
        "topics",
        "create",
        "-b",
        b,
        "-t",
        topic,
        "--partitions",
        partitions,
        "--replication-factor",
        "1",
    ]);
}

fn put_task(b: &str, id: &str, json: &str) {
    ok_tool(&["tasks", "-b", b, "--tasks-topic", TASKS, "put", id, json]);
}

fn delete_task(b: &str, id: &str) {
    ok_tool(&["tasks", "-b", b, "--tasks-topic", TASKS, "delete", id]);
}

fn agent(b: &str, dir: &Path, extra: &[&str]) -> Proc {
    let mut args: Vec<String> = [
        "agent",
        "-b",
        b,
        "--tasks-topic",
        TASKS,
        "--state-dir",
        &dir.join("state").display().to_string(),
        "--host",
        "h1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    Proc::start(dir, &args)
}

fn transfer(b: &str, dir: &Path, group: &str) -> Proc {
    let args: Vec<String> = [
        "transfer",
        "-b",
        b,
        "--group",
        group,
        "--tasks-topic",
        TASKS,
        "--output-dir",
        &dir.join("out").display().to_string(),
        "--commit-interval-ms",
        "300",
        "--session-timeout-ms",
        "6000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    Proc::start(dir, &args)
}

/// One output record.
#[derive(Debug, Clone)]
struct Out {
    partition: i64,
    offset: i64,
    value: Vec<u8>,
    headers: BTreeMap<String, String>,
}

/// Every record in the transfer's output, by topic, in (partition, offset) order.
fn output(dir: &Path) -> BTreeMap<String, Vec<Out>> {
    let mut out: BTreeMap<String, Vec<Out>> = BTreeMap::new();
    let Ok(topics) = std::fs::read_dir(dir) else {
        return out;
    };
    for t in topics.flatten() {
        let topic = t.file_name().to_string_lossy().into_owned();
        let mut recs = Vec::new();
        for date in std::fs::read_dir(t.path()).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(date.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let text = std::fs::read_to_string(f.path()).unwrap_or_default();
                for line in text.lines() {
                    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| {
                        panic!("{}: bad line {line:?}: {e}", f.path().display())
                    });
                    let value = match (&v["value"], &v["value_base64"]) {
                        (Value::String(s), _) => s.as_bytes().to_vec(),
                        (_, Value::String(b)) => {
                            use base64::Engine;
                            base64::engine::general_purpose::STANDARD
                                .decode(b)
                                .expect("base64")
                        }
                        _ => Vec::new(),
                    };
                    let headers = v["headers"]
                        .as_object()
                        .map(|o| {
                            o.iter()
                                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                                .collect()
                        })
                        .unwrap_or_default();
                    recs.push(Out {
                        partition: v["partition"].as_i64().expect("partition"),
                        offset: v["offset"].as_i64().expect("offset"),
                        value,
                        headers,
                    });
                }
            }
        }
        recs.sort_by_key(|r| (r.partition, r.offset));
        out.insert(topic, recs);
    }
    out
}

/// The values that came from the file with identity `file_id`, in output order.
fn values_of_file(recs: &[Out], file_id: &str) -> Vec<Vec<u8>> {
    recs.iter()
        .filter(|r| r.headers.get("file.id").map(String::as_str) == Some(file_id))
        .map(|r| r.value.clone())
        .collect()
}

fn file_id(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).expect("metadata");
    format!("{}:{}", m.dev(), m.ino())
}

/// Lines appended to one source file, remembered with the file's identity.
struct Source {
    path: PathBuf,
    id: String,
    lines: Vec<String>,
}

impl Source {
    fn create(path: &Path) -> Source {
        std::fs::File::create(path).expect("create");
        Source {
            path: path.to_owned(),
            id: file_id(path),
            lines: Vec::new(),
        }
    }
    fn write(&mut self, line: String) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .expect("open for append");
        f.write_all(format!("{line}\n").as_bytes()).expect("append");
        self.lines.push(line);
    }
}

/// Checks every written line of every source is in `recs`, in order; returns the duplicates.
fn check_sources(recs: &[Out], sources: &[&Source]) -> Result<usize, String> {
    let mut duplicates = 0;
    for s in sources {
        let got = values_of_file(recs, &s.id);
        // Each record once, in order: the values without repeats of what came before.
        let mut seen = std::collections::HashSet::new();
        let mut firsts = Vec::new();
        for v in got {
            if seen.insert(v.clone()) {
                firsts.push(v);
            } else {
                duplicates += 1;
            }
        }
        let want: Vec<Vec<u8>> = s.lines.iter().map(|l| l.as_bytes().to_vec()).collect();
        if firsts != want {
            let missing = want.iter().filter(|w| !firsts.contains(w)).count();
            return Err(format!(
                "{} ({}): {} of {} lines, {missing} missing{}",
                s.path.display(),
                s.id,
                firsts.len(),
                want.len(),
                if missing == 0 { ", out of order" } else { "" }
            ));
        }
    }
    Ok(duplicates)
}

/// Waits (bounded) until `check` passes on the output; panics with the last reason.
fn wait_output(
    out_dir: &Path,
    limit: Duration,
    procs: &[&Proc],
    mut check: impl FnMut(&BTreeMap<String, Vec<Out>>) -> Result<(), String>,
) -> BTreeMap<String, Vec<Out>> {
    let deadline = Instant::now() + limit;
    loop {
        let out = output(out_dir);
        match check(&out) {
            Ok(()) => return out,
            Err(why) if Instant::now() > deadline => {
                let logs: Vec<String> = procs.iter().map(|p| p.log()).collect();
                panic!("{why}\n--- logs ---\n{}", logs.join("\n---\n"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn stats(state_dir: &Path) -> Value {
    std::fs::read_to_string(state_dir.join("stats.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null)
}

/// Waits until the agent's saved positions name `path` (the agent follows it); returns how long.
fn wait_followed(agent: &Proc, state_dir: &Path, path: &Path, limit: Duration) -> Duration {
    let start = Instant::now();
    let needle = path.display().to_string();
    while start.elapsed() < limit {
        let text = std::fs::read_to_string(state_dir.join("positions.json")).unwrap_or_default();
        if text.contains(&needle) {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!(
        "the agent did not follow {needle} within {limit:?}\n{}",
        agent.log()
    );
}

#[test]
fn exactly_once_without_crashes_with_rotation_and_live_tasks() {
    let cluster = Cluster::start(1, &GROUP_CONFIG);
    let b = cluster.bootstrap();
    let b = b.as_str();
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("app")).expect("mkdir");
    std::fs::create_dir_all(src.join("web")).expect("mkdir");
    create_topic(b, "logs-app", "3");
    create_topic(b, "logs-web", "1");
    let mut transfer = transfer(b, &tmp.path().join("transfer"), "g1");
    let agent_dir = tmp.path().join("agent");
    let mut agent = agent(b, &agent_dir, &[]);
    let out_dir = tmp.path().join("transfer/out");

    // A file that exists before its task: read from its start.
    let mut app = Source::create(&src.join("app/app.log"));
    for i in 0..50 {
        app.write(format!("app-0-{i}"));
    }
    put_task(
        b,
        "app",
        &format!(
            r#"{{"paths":["{}/app/*.log"],"topic":"logs-app","business_line":"shop"}}"#,
            src.display()
        ),
    );
    wait_followed(
        &agent,
        &agent_dir.join("state"),
        &app.path,
        Duration::from_secs(10),
    );
    for i in 50..200 {
        app.write(format!("app-0-{i}"));
    }
    // Rotation by rename: the old file is finished, then the new one is read.
    std::fs::rename(&app.path, src.join("app/app.log.1")).expect("rename");
    let rotated = Source {
        path: src.join("app/app.log.1"),
        id: app.id.clone(),
        lines: app.lines.clone(),
    };
    let mut app2 = Source::create(&src.join("app/app.log"));
    for i in 0..100 {
        app2.write(format!("app-1-{i}"));
    }
    // A new file appearing under the glob.
    let mut other = Source::create(&src.join("app/other.log"));
    for i in 0..30 {
        other.write(format!("other-{i}"));
    }
    wait_output(
        &out_dir,
        Duration::from_secs(30),
        &[&agent, &transfer],
        |o| {
            let recs = o.get("logs-app").map(Vec::as_slice).unwrap_or(&[]);
            check_sources(recs, &[&rotated, &app2, &other]).map(|_| ())
        },
    );

    // Rotation by truncation (copytruncate), once everything before it is collected.
    std::fs::write(&app2.path, b"").expect("truncate");
    let mut truncated = Source {
        path: app2.path.clone(),
        id: app2.id.clone(),
        lines: Vec::new(),
    };
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..40 {
        truncated.write(format!("app-1-after-truncation-{i}"));
    }

    // A task added while running takes effect within a second.
    let mut web = Source::create(&src.join("web/access.txt"));
    web.write("web-0".into());
    let t0 = Instant::now();
    put_task(
        b,
        "web",
        &format!(
            r#"{{"paths":["{}/web/*.txt"],"topic":"logs-web","business_line":"ads","multiline_start":"^web-"}}"#,
            src.display()
        ),
    );
    let put_took = t0.elapsed();
    let took = wait_followed(
        &agent,
        &agent_dir.join("state"),
        &web.path,
        Duration::from_secs(10),
    );
    println!(
        "task added: followed {took:?} after `rafka tasks put` returned (which took {put_took:?})"
    );
    assert!(took <= Duration::from_secs(1), "a new task took {took:?}");
    for i in 1..20 {
        // Multi-line records: a line that does not start with `web-` joins the one before.
        if i % 5 == 0 {
            web.write(format!("web-{i} failed\n  at frame 1\n  at frame 2"));
        } else {
            web.write(format!("web-{i}"));
        }
    }
    let out = wait_output(
        &out_dir,
        Duration::from_secs(30),
        &[&agent, &transfer],
        |o| {
            let app_recs = o.get("logs-app").map(Vec::as_slice).unwrap_or(&[]);
            let web_recs = o.get("logs-web").map(Vec::as_slice).unwrap_or(&[]);
            // The truncated file: its earlier lines and the new ones, under one identity.
            let mut whole = app2.lines.clone();
            whole.extend(truncated.lines.iter().cloned());
            let got: Vec<String> = values_of_file(app_recs, &app2.id)
                .into_iter()
                .map(|v| String::from_utf8_lossy(&v).into_owned())
                .collect();
            if got != whole {
                return Err(format!(
                    "truncated file: {} of {} lines",
                    got.len(),
                    whole.len()
                ));
            }
            let d =
                check_sources(app_recs, &[&rotated, &other])? + check_sources(web_recs, &[&web])?;
            if d > 0 {
                return Err(format!("{d} duplicates"));
            }
            Ok(())
        },
    );
    // Headers: file, host, business line.
    let r = &out["logs-web"][0];
    assert_eq!(r.headers["path"], web.path.display().to_string());
    assert_eq!(r.headers["host"], "h1");
    assert_eq!(r.headers["business_line"], "ads");

    // A removed task stops within a second: lines written after that are not collected.
    delete_task(b, "web");
    std::thread::sleep(Duration::from_secs(1));
    web.write("written-after-removal".into());
    std::thread::sleep(Duration::from_secs(2));
    let out = output(&out_dir);
    assert!(
        !out["logs-web"]
            .iter()
            .any(|r| r.value == b"written-after-removal"),
        "a removed task still collects"
    );
    assert_eq!(agent.terminate(), Some(0), "{}", agent.log());
    assert_eq!(transfer.terminate(), Some(0), "{}", transfer.log());
}

#[test]
fn sigkill_of_agent_transfer_and_broker_loses_nothing() {
    let mut cluster = Cluster::start(1, &GROUP_CONFIG);
    let b = cluster.bootstrap();
    let b = b.as_str();
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    create_topic(b, "logs-k", "2");
    let mut transfer = transfer(b, &tmp.path().join("transfer"), "g2");
    let agent_dir = tmp.path().join("agent");
    let mut agent = agent(b, &agent_dir, &[]);
    let out_dir = tmp.path().join("transfer/out");
    put_task(
        b,
        "k",
        &format!(
            r#"{{"paths":["{}/*.log"],"topic":"logs-k","business_line":"k"}}"#,
            src.display()
        ),
    );
    let mut sources: Vec<Source> = Vec::new();
    let mut current = Source::create(&src.join("a.log"));
    wait_followed(
        &agent,
        &agent_dir.join("state"),
        &current.path,
        Duration::from_secs(10),
    );
    let mut n = 0;
    // Write continuously; crash things between bursts.
    for round in 0..8 {
        for _ in 0..300 {
            current.write(format!("line-{n}"));
            n += 1;
        }
        match round {
            1 => {
                agent.kill();
                // Rotated while the agent is down: finished from its new name on restart.
                let rotated = src.join(format!("a.log.{round}"));
                std::fs::rename(&current.path, &rotated).expect("rename");
                current.path = rotated;
                sources.push(std::mem::replace(
                    &mut current,
                    Source::create(&src.join("a.log")),
                ));
                for _ in 0..100 {
                    current.write(format!("line-{n}"));
                    n += 1;
                }
                agent.restart();
            }
            3 => {
                cluster.nodes[0].kill();
                for _ in 0..200 {
                    current.write(format!("line-{n}"));
                    n += 1;
                }
                std::thread::sleep(Duration::from_millis(500));
                cluster.nodes[0].start();
                cluster.wait_ready(Duration::from_secs(30));
            }
            5 => {
                transfer.kill();
                std::thread::sleep(Duration::from_millis(200));
                transfer.restart();
            }
            6 => {
                // Rotated while the agent runs.
                let rotated = src.join(format!("a.log.{round}"));
                std::fs::rename(&current.path, &rotated).expect("rename");
                current.path = rotated;
                sources.push(std::mem::replace(
                    &mut current,
                    Source::create(&src.join("a.log")),
                ));
                agent.kill();
                agent.restart();
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    sources.push(current);
    let refs: Vec<&Source> = sources.iter().collect();
    let mut duplicates = 0;
    wait_output(
        &out_dir,
        Duration::from_secs(90),
        &[&agent, &transfer],
        |o| {
            let recs = o.get("logs-k").map(Vec::as_slice).unwrap_or(&[]);
            duplicates = check_sources(recs, &refs)?;
            Ok(())
        },
    );
    let total: usize = sources.iter().map(|s| s.lines.len()).sum();
    println!(
        "{total} lines written across {} files; all in the output in order; {duplicates} duplicates (resent after a SIGKILL)",
        sources.len()
    );
    // At least once across crashes, and not wildly more: a crash resends at most what was
    // acknowledged but not yet saved (one loop of the agent).
    assert!(
        duplicates <= total / 2,
        "{duplicates} duplicates of {total}"
    );
    // The transfer never writes a record twice: offsets are unique in the output.
    let out = output(&out_dir);
    let mut seen = HashMap::new();
    for r in &out["logs-k"] {
        assert!(
            seen.insert((r.partition, r.offset), ()).is_none(),
            "the transfer wrote {}-{} twice",
            r.partition,
            r.offset
        );
    }
}

#[test]
fn bad_input_binary_overlong_unreadable_and_deleted_directories() {
    let cluster = Cluster::start(1, &GROUP_CONFIG);
    let b = cluster.bootstrap();
    let b = b.as_str();
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("gone")).expect("mkdir");
    create_topic(b, "logs-bad", "1");
    let transfer = transfer(b, &tmp.path().join("transfer"), "g3");
    let agent_dir = tmp.path().join("agent");
    let agent = agent(b, &agent_dir, &["--max-record-bytes", "1000"]);
    let out_dir = tmp.path().join("transfer/out");
    let root = unsafe { libc::geteuid() } == 0;

    let locked = src.join("locked.log");
    std::fs::write(&locked, b"secret-1\n").expect("write");
    let mut perms = std::fs::metadata(&locked).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o000);
    std::fs::set_permissions(&locked, perms.clone()).expect("chmod");
    std::fs::write(src.join("gone/x.log"), b"gone-1\n").expect("write");
    put_task(
        b,
        "bad",
        &format!(
            r#"{{"paths":["{0}/*.log","{0}/gone/*.log"],"topic":"logs-bad"}}"#,
            src.display()
        ),
    );
    // Binary content and an overlong line (3500 bytes: 4 pieces of at most 1000).
    let mut data = b"bin-\x00\xff\xfe\x01-end\n".to_vec();
    let long: String = (0..3500)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    data.extend_from_slice(long.as_bytes());
    data.push(b'\n');
    data.extend_from_slice(b"after-long\n");
    std::fs::write(src.join("mixed.log"), &data).expect("write");
    wait_output(
        &out_dir,
        Duration::from_secs(30),
        &[&agent, &transfer],
        |o| {
            let recs = o.get("logs-bad").map(Vec::as_slice).unwrap_or(&[]);
            let values: Vec<&[u8]> = recs.iter().map(|r| r.value.as_slice()).collect();
            if !values.contains(&&b"bin-\x00\xff\xfe\x01-end"[..]) {
                return Err("binary line missing".into());
            }
            if !values.contains(&&b"gone-1"[..]) || !values.contains(&&b"after-long"[..]) {
                return Err(format!("lines missing: {} records", values.len()));
            }
            let pieces: Vec<&Out> = recs
                .iter()
                .filter(|r| r.headers.contains_key("rafka.split"))
                .collect();
            if pieces.len() != 4 {
                return Err(format!("{} pieces of the long line", pieces.len()));
            }
            let joined: Vec<u8> = pieces.iter().flat_map(|p| p.value.clone()).collect();
            assert_eq!(joined, long.as_bytes());
            assert!(pieces.iter().all(|p| p.value.len() <= 1000));
            Ok(())
        },
    );
    let st = stats(&agent_dir.join("state"));
    assert_eq!(st["split_pieces"], 4, "{st}");
    if !root {
        assert!(st["unreadable"].as_u64().unwrap_or(0) >= 1, "{st}");
        assert!(!output(&out_dir)["logs-bad"]
            .iter()
            .any(|r| r.value == b"secret-1"));
    }
    // Permission restored: the file is collected.
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(&locked, perms).expect("chmod");
    // The directory is deleted: the agent carries on with the other files.
    std::fs::remove_dir_all(src.join("gone")).expect("rm -r");
    std::fs::OpenOptions::new()
        .append(true)
        .open(src.join("mixed.log"))
        .and_then(|mut f| f.write_all(b"still-alive\n"))
        .expect("append");
    wait_output(
        &out_dir,
        Duration::from_secs(30),
        &[&agent, &transfer],
        |o| {
            let recs = o.get("logs-bad").map(Vec::as_slice).unwrap_or(&[]);
            for want in [&b"still-alive"[..], b"secret-1"] {
                if !recs.iter().any(|r| r.value == want) {
                    return Err(format!("{} missing", String::from_utf8_lossy(want)));
                }
            }
            Ok(())
        },
    );
}

#[test]
fn bad_flags_exit_2_and_a_broker_that_is_down_is_one_line() {
    let (code, _, err) = run_tool(&["agent", "--state-dir", "/tmp/x", "--bogus"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run_tool(&["transfer", "--output-dir", "/tmp/x"]);
    assert_eq!(code, 2, "missing --group: {err}");
    assert!(err.contains("--group"), "{err}");
    let (code, _, err) = run_tool(&["agent"]);
    assert_eq!(code, 2, "missing --state-dir: {err}");
    let (code, _, err) = run_tool(&["tasks", "put", "x"]);
    assert_eq!(code, 2, "missing JSON: {err}");

    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = tmp.path().join("client.properties");
    std::fs::write(&config, "socket.connection.setup.timeout.ms=2000\n").expect("write");
    for tool in ["agent", "transfer"] {
        let start = Instant::now();
        let state = tmp.path().join(tool).display().to_string();
        let mut args = vec![tool, "-b", &addr, "--command-config"];
        let cfg = config.display().to_string();
        args.push(&cfg);
        if tool == "agent" {
            args.extend(["--state-dir", &state]);
        } else {
            args.extend(["--group", "g", "--output-dir", &state]);
        }
        let (code, out, err) = run_tool(&args);
        let took = start.elapsed();
        assert_eq!(code, 1, "{out}\n{err}");
        assert!(took < Duration::from_secs(15), "{tool} took {took:?}");
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{tool}: {err}");
        assert!(lines[0].contains(&addr), "{tool}: {err}");
    }
    // An invalid task is refused before it reaches the topic (no broker needed to say so).
    let (code, _, err) = run_tool(&["tasks", "-b", &addr, "put", "t", "{\"topic\":\"x\"}"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("missing field `paths`"), "{err}");
}

/// Produces `n` records (value = their index) to `topic` through `proxy`, which drops the
/// answers to the first `drop` Produce requests (each one was appended by the broker); returns
/// how many times each value is in the topic, per partition in order.
fn produce_through_lossy_proxy(idempotent: bool, topic: &str, drop: usize) -> (usize, usize) {
    use rafka_client::consumer::{Consumer, ConsumerConfig};
    use rafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
    use rafka_client::{Client, ClientConfig};
    let proxy = common::proxy::TcpProxy::start();
    let advertised = format!("PLAINTEXT://{}", proxy.addr());
    let cluster = Cluster::start(1, &[("advertised.listeners", &advertised)]);
    proxy.set_target(cluster.nodes[0].addr());
    create_topic(&proxy.addr(), topic, "3");
    let rt = common::runtime();
    rt.block_on(async {
        let config = ClientConfig::from_properties(
            [("request.timeout.ms", "1000"), ("retry.backoff.ms", "20")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
        .expect("config");
        let client = Client::connect(&proxy.addr(), config.clone())
            .await
            .expect("connect");
        let mut producer = Producer::new(
            client,
            topic,
            ProducerConfig {
                idempotent,
                acks: -1,
                linger: Duration::from_millis(1),
                batch_size: 4096,
                ..Default::default()
            },
        )
        .await
        .expect("producer");
        assert_eq!(producer.identity().is_some(), idempotent);
        proxy.drop_produce_responses(drop);
        const N: usize = 3000;
        for i in 0..N {
            producer
                .send(ProducerRecord {
                    key: Some(format!("k{}", i % 7).into_bytes().into()),
                    value: Some(i.to_string().into_bytes().into()),
                    timestamp: 1,
                    ..Default::default()
                })
                .await
                .expect("send");
        }
        producer.flush().await.expect("flush");
        assert!(!producer.has_unacked());
        assert_eq!(proxy.dropped(), drop, "responses dropped");
        let client = Client::connect(&proxy.addr(), config)
            .await
            .expect("connect");
        let mut consumer = Consumer::new(client, topic, ConsumerConfig::default())
            .await
            .expect("consumer");
        let parts = consumer.partitions();
        let start = consumer.offsets_for(&parts, -2).await.expect("earliest");
        let end = consumer.offsets_for(&parts, -1).await.expect("latest");
        consumer.assign(start);
        let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
        let mut last: BTreeMap<i32, usize> = BTreeMap::new();
        let mut out_of_order = 0;
        let deadline = Instant::now() + Duration::from_secs(30);
        while end
            .iter()
            .any(|(p, e)| consumer.positions().get(p).is_some_and(|o| o < e))
        {
            assert!(Instant::now() < deadline, "consuming took too long");
            for r in consumer.poll().await.expect("poll") {
                let v: usize = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default())
                    .parse()
                    .expect("value");
                *seen.entry(v).or_default() += 1;
                if last.get(&r.partition).is_some_and(|l| *l >= v) {
                    out_of_order += 1;
                }
                last.insert(r.partition, v);
            }
        }
        assert_eq!(seen.len(), N, "every record is there");
        let duplicates = seen.values().map(|c| c - 1).sum();
        (duplicates, out_of_order)
    })
}

#[test]
fn the_idempotent_producer_resends_without_duplicates_in_order() {
    let (duplicates, out_of_order) = produce_through_lossy_proxy(true, "idem-client", 3);
    assert_eq!((duplicates, out_of_order), (0, 0));
    // The check can fail: without idempotence, the same lost answers make duplicates.
    let (duplicates, _) = produce_through_lossy_proxy(false, "plain-client", 3);
    assert!(
        duplicates > 0,
        "a resend without idempotence should duplicate"
    );
}
