//! Consumer groups with librdkafka against the real binary: FindCoordinator creates
//! `__consumer_offsets`, members join and split the partitions, offsets are committed, survive a
//! restart of the broker, and the group shows in ListGroups / DescribeGroups; a simple
//! (assign-only) consumer commits and fetches offsets without joining.

mod common;

use common::{admin, create_topic, Cluster, Deadline};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);
const TOPIC: &str = "grouped";
const PARTITIONS: i32 = 4;
/// For groups on one node (the test files start from Kafka's defaults, where `__consumer_offsets`
/// has 3 replicas and a group's first rebalance waits 3 s): one replica, as Kafka's single-node
/// example config has, and no initial delay, as its ZooKeeper-era example had.
const GROUP_CONFIG: [(&str, &str); 2] = [
    ("offsets.topic.replication.factor", "1"),
    ("group.initial.rebalance.delay.ms", "0"),
];

fn produce(bootstrap: &str, round: usize, per_partition: usize) {
    common::produce_round(bootstrap, TOPIC, PARTITIONS, round, per_partition, T);
}

/// Polls `consumers` in turn until `want` distinct (partition, offset) pairs of round `round`
/// arrived; returns what each consumer got.
fn consume(consumers: &[&BaseConsumer], round: usize, want: usize) -> Vec<BTreeSet<(i32, i64)>> {
    let mut got = vec![BTreeSet::new(); consumers.len()];
    let deadline = Deadline::after(Duration::from_secs(60));
    let total = |got: &Vec<BTreeSet<(i32, i64)>>| got.iter().map(BTreeSet::len).sum::<usize>();
    while total(&got) < want {
        deadline.check(|| {
            format!(
                "consumed {:?} of {want}",
                got.iter().map(BTreeSet::len).collect::<Vec<_>>()
            )
        });
        for (i, c) in consumers.iter().enumerate() {
            if let Some(m) = c.poll(Duration::from_millis(50)) {
                let m = m.unwrap_or_else(|e| panic!("consumer {i}: {e}"));
                let text = std::str::from_utf8(m.payload().unwrap_or_default()).unwrap_or("");
                assert!(
                    text.starts_with(&format!("round {round} partition {}", m.partition())),
                    "consumer {i} got {text:?} at {}-{}@{}",
                    m.topic(),
                    m.partition(),
                    m.offset()
                );
                got[i].insert((m.partition(), m.offset()));
            }
        }
    }
    got
}

fn assigned(c: &BaseConsumer) -> BTreeSet<i32> {
    c.assignment()
        .expect("assignment")
        .elements()
        .iter()
        .map(|e| e.partition())
        .collect()
}

fn committed(c: &BaseConsumer) -> BTreeMap<i32, i64> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(TOPIC, p);
    }
    c.committed_offsets(tpl, T)
        .expect("committed offsets (OffsetFetch)")
        .elements()
        .iter()
        .map(|e| {
            let o = match e.offset() {
                Offset::Offset(o) => o,
                _ => -1,
            };
            (e.partition(), o)
        })
        .collect()
}

#[test]
fn group_members_split_partitions_and_offsets_survive_a_restart() {
    let mut cluster = Cluster::start(1, &GROUP_CONFIG);
    let bootstrap = cluster.bootstrap();
    {
        let admin = admin(&bootstrap);
        create_topic(&admin, &cluster.nodes[0], TOPIC, PARTITIONS, &[]);
    }
    produce(&bootstrap, 0, 50);

    // One member: it gets every partition, reads round 0, commits.
    let a = common::group_consumer(&bootstrap, "g1");
    a.subscribe(&[TOPIC]).expect("subscribe");
    let got = consume(&[&a], 0, 200);
    assert_eq!(got[0].len(), 200);
    assert_eq!(assigned(&a), (0..PARTITIONS).collect());
    a.commit_consumer_state(CommitMode::Sync).expect("commit");
    assert_eq!(committed(&a), (0..PARTITIONS).map(|p| (p, 50)).collect());

    // A second member joins: the partitions are split between them, each read by one.
    let b = common::group_consumer(&bootstrap, "g1");
    b.subscribe(&[TOPIC]).expect("subscribe");
    let deadline = Deadline::after(T);
    loop {
        let _ = a.poll(Duration::from_millis(50));
        let _ = b.poll(Duration::from_millis(50));
        let (pa, pb) = (assigned(&a), assigned(&b));
        if !pa.is_empty() && !pb.is_empty() && pa.len() + pb.len() == PARTITIONS as usize {
            assert!(pa.is_disjoint(&pb), "{pa:?} and {pb:?}");
            break;
        }
        deadline.check(|| format!("no split assignment: {pa:?} / {pb:?}"));
    }
    produce(&bootstrap, 1, 50);
    let got = consume(&[&a, &b], 1, 200);
    let (pa, pb) = (assigned(&a), assigned(&b));
    for (who, parts, got) in [("a", &pa, &got[0]), ("b", &pb, &got[1])] {
        assert!(
            got.iter().all(|(p, _)| parts.contains(p)),
            "{who} read only its partitions {parts:?}"
        );
    }
    a.commit_consumer_state(CommitMode::Sync).expect("commit a");
    b.commit_consumer_state(CommitMode::Sync).expect("commit b");

    // The group as tools see it: Stable, two members.
    let groups = a
        .fetch_group_list(Some("g1"), T)
        .expect("ListGroups/DescribeGroups");
    let g = &groups.groups()[0];
    assert_eq!(
        (g.name(), g.state(), g.protocol_type()),
        ("g1", "Stable", "consumer")
    );
    assert_eq!(g.members().len(), 2);
    drop(a);
    drop(b);

    // The broker restarts; the committed offsets were in __consumer_offsets.
    cluster.nodes[0].terminate();
    cluster.nodes[0].start();
    cluster.wait_ready(T);
    produce(&bootstrap, 2, 10);
    let c = common::group_consumer(&bootstrap, "g1");
    c.subscribe(&[TOPIC]).expect("subscribe");
    // Only round 2 arrives: rounds 0 and 1 were committed before the restart.
    let got = consume(&[&c], 2, 40);
    assert_eq!(
        got[0],
        (0..PARTITIONS)
            .flat_map(|p| (100..110).map(move |o| (p, o)))
            .collect(),
        "round 2 only, from the committed offsets"
    );
}

#[test]
fn a_simple_consumer_commits_without_joining() {
    let cluster = Cluster::start(1, &GROUP_CONFIG);
    let bootstrap = cluster.bootstrap();
    let admin = admin(&bootstrap);
    create_topic(&admin, &cluster.nodes[0], TOPIC, PARTITIONS, &[]);
    produce(&bootstrap, 0, 5);
    // assign() with a group.id: offset commits with generation -1, no membership.
    let c = common::group_consumer(&bootstrap, "simple");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Beginning)
        .expect("tpl");
    c.assign(&tpl).expect("assign");
    let got = consume(&[&c], 0, 5);
    assert_eq!(got[0].len(), 5);
    let mut commit = TopicPartitionList::new();
    commit
        .add_partition_offset(TOPIC, 0, Offset::Offset(3))
        .expect("tpl");
    c.commit(&commit, CommitMode::Sync).expect("commit");
    assert_eq!(committed(&c).get(&0), Some(&3));
    assert_eq!(committed(&c).get(&1), Some(&-1), "nothing committed there");

    // Committing to a topic that does not exist is refused for that partition.
    let mut bad = TopicPartitionList::new();
    bad.add_partition_offset("no-such-topic", 0, Offset::Offset(1))
        .expect("tpl");
    assert!(c.commit(&bad, CommitMode::Sync).is_err());

    // The group exists through its offsets: Empty, no protocol type.
    let groups = c.fetch_group_list(Some("simple"), T).expect("group list");
    let g = &groups.groups()[0];
    assert_eq!(
        (g.name(), g.state(), g.protocol_type()),
        ("simple", "Empty", "")
    );
    // OffsetDelete (no members: allowed), then DeleteGroups removes what is left.
    use rafka_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };
    use rafka_protocol::messages::{
        DeleteGroupsRequest, OffsetDeleteRequest, RequestKind, ResponseKind,
    };
    let addr = cluster.nodes[0].addr();
    let req = OffsetDeleteRequest {
        group_id: "simple".into(),
        topics: vec![OffsetDeleteRequestTopic {
            name: TOPIC.into(),
            partitions: vec![OffsetDeleteRequestPartition {
                partition_index: 0,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    match common::raw_request(addr, 0, RequestKind::OffsetDelete(req), T).expect("OffsetDelete") {
        ResponseKind::OffsetDelete(r) => {
            assert_eq!(r.error_code, 0, "{r:?}");
            assert_eq!(r.topics[0].partitions[0].error_code, 0, "{r:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(committed(&c).get(&0), Some(&-1), "deleted by OffsetDelete");
    c.commit(&commit, CommitMode::Sync).expect("commit again");
    let req = DeleteGroupsRequest {
        groups_names: vec!["simple".into(), "unknown".into()],
        ..Default::default()
    };
    match common::raw_request(addr, 2, RequestKind::DeleteGroups(req), T).expect("DeleteGroups") {
        ResponseKind::DeleteGroups(r) => {
            let codes: Vec<(String, i16)> = r
                .results
                .into_iter()
                .map(|g| (g.group_id, g.error_code))
                .collect();
            // GROUP_ID_NOT_FOUND (69) for a group that never existed.
            assert_eq!(codes, vec![("simple".into(), 0), ("unknown".into(), 69)]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(committed(&c).get(&0), Some(&-1), "gone with the group");

    // __consumer_offsets was created with offsets.topic.num.partitions (Kafka's 50).
    let md = common::metadata(cluster.nodes[0].addr(), Some(&["__consumer_offsets"]), T)
        .expect("metadata");
    assert_eq!(md.topics[0].partitions.len(), 50);
}

const TRIO_TOPIC: &str = "trio";
const TRIO_PARTITIONS: i32 = 6;
const TRIO_GROUP: &str = "trio-group";
/// Set in the environment of the child process that runs [`trio_member_process`].
const TRIO_CHILD_ENV: &str = "RAFKA_TRIO_MEMBER_BOOTSTRAP";

fn trio_produce(bootstrap: &str, round: usize, per_partition: usize) {
    common::produce_round(
        bootstrap,
        TRIO_TOPIC,
        TRIO_PARTITIONS,
        round,
        per_partition,
        T,
    );
}

/// One message as a member handles it: recorded, then its offset committed synchronously —
/// so that a clean leave loses nothing and repeats nothing.
fn trio_handle(c: &BaseConsumer, m: &rdkafka::message::BorrowedMessage<'_>) -> (i32, i64) {
    let at = (m.partition(), m.offset());
    c.commit_message(m, CommitMode::Sync)
        .unwrap_or_else(|e| panic!("commit {at:?}: {e}"));
    at
}

/// The member that gets killed: run by the test binary itself in a child process (so that
/// SIGKILL stops it without a LeaveGroup, which dropping an in-process consumer would send).
/// It prints `assigned <partitions>` when its assignment changes and `got <p> <o>` for each
/// message before committing it, so the parent knows everything it may have consumed.
#[test]
#[ignore = "a helper: run by three_consumers_split_six_partitions_and_survive_a_leave_and_a_kill"]
fn trio_member_process() {
    use std::io::Write;
    let Ok(bootstrap) = std::env::var(TRIO_CHILD_ENV) else {
        return;
    };
    let c = common::group_consumer(&bootstrap, TRIO_GROUP);
    c.subscribe(&[TRIO_TOPIC]).expect("subscribe");
    let mut out = std::io::stdout().lock();
    // libtest has printed "test trio_member_process ... " without a newline: end that line.
    writeln!(out).expect("stdout");
    let mut last = BTreeSet::new();
    // Never outlives a test that forgot it.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(50)) {
            writeln!(out, "got {} {}", m.partition(), m.offset()).expect("stdout");
            out.flush().expect("stdout");
            trio_handle(&c, &m);
        }
        let now: BTreeSet<i32> = c
            .assignment()
            .map(|a| a.elements().iter().map(|e| e.partition()).collect())
            .unwrap_or_default();
        if now != last {
            let list: Vec<String> = now.iter().map(i32::to_string).collect();
            writeln!(out, "assigned {}", list.join(",")).expect("stdout");
            out.flush().expect("stdout");
            last = now;
        }
    }
}

/// What the child member reported, read from its stdout by a thread.
#[derive(Default)]
struct ChildReport {
    assigned: BTreeSet<i32>,
    got: Vec<(i32, i64)>,
}

/// Issue #6: three consumers in one group over six partitions each get a share, no partition
/// twice; then one closes (LeaveGroup) and one is SIGKILLed (no LeaveGroup): within
/// session.timeout.ms (6 s) plus a rebalance — 20 s allowed — the survivor owns all six. Every
/// message is consumed at least once; with offsets committed per message, none is consumed
/// twice except possibly the killed member's last (consumed, not yet committed).
#[test]
fn three_consumers_split_six_partitions_and_survive_a_leave_and_a_kill() {
    use std::io::BufRead;
    use std::sync::{Arc, Mutex};
    let cluster = Cluster::start(1, &GROUP_CONFIG);
    let bootstrap = cluster.bootstrap();
    {
        let admin = admin(&bootstrap);
        create_topic(&admin, &cluster.nodes[0], TRIO_TOPIC, TRIO_PARTITIONS, &[]);
    }
    trio_produce(&bootstrap, 0, 20);

    // The member to be killed, in a child process.
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "trio_member_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(TRIO_CHILD_ENV, &bootstrap)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn the child member");
    let report = Arc::new(Mutex::new(ChildReport::default()));
    {
        let report = report.clone();
        let stdout = child.stdout.take().expect("child stdout");
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let mut r = report.lock().expect("report");
                if let Some(list) = line.strip_prefix("assigned ") {
                    r.assigned = list.split(',').filter_map(|p| p.parse().ok()).collect();
                } else if let Some(rest) = line.strip_prefix("got ") {
                    let mut it = rest.split(' ').filter_map(|x| x.parse::<i64>().ok());
                    if let (Some(p), Some(o)) = (it.next(), it.next()) {
                        r.got.push((p as i32, o));
                    }
                }
            }
        });
    }
    let a = common::group_consumer(&bootstrap, TRIO_GROUP);
    a.subscribe(&[TRIO_TOPIC]).expect("subscribe a");
    let b = common::group_consumer(&bootstrap, TRIO_GROUP);
    b.subscribe(&[TRIO_TOPIC]).expect("subscribe b");
    let assigned_of = |c: &BaseConsumer| -> BTreeSet<i32> {
        c.assignment()
            .expect("assignment")
            .elements()
            .iter()
            .map(|e| e.partition())
            .collect()
    };

    // Everyone consumes round 0; the partitions are split three ways, each owned once.
    let mut got_a: Vec<(i32, i64)> = Vec::new();
    let mut got_b: Vec<(i32, i64)> = Vec::new();
    let deadline = Deadline::after(Duration::from_secs(60));
    let all: BTreeSet<(i32, i64)> = (0..TRIO_PARTITIONS)
        .flat_map(|p| (0..20).map(move |o| (p, o)))
        .collect();
    let mut split = None;
    let mut seen: BTreeSet<(i32, i64)>;
    loop {
        for (c, got) in [(&a, &mut got_a), (&b, &mut got_b)] {
            if let Some(m) = c.poll(Duration::from_millis(20)) {
                let m = m.expect("message");
                got.push(trio_handle(c, &m));
            }
        }
        let (pa, pb) = (assigned_of(&a), assigned_of(&b));
        let pc = report.lock().expect("report").assigned.clone();
        if split.is_none() && !pa.is_empty() && !pb.is_empty() && !pc.is_empty() {
            let total = pa.len() + pb.len() + pc.len();
            if total == TRIO_PARTITIONS as usize {
                assert!(
                    pa.is_disjoint(&pb) && pa.is_disjoint(&pc) && pb.is_disjoint(&pc),
                    "a partition assigned twice: {pa:?} {pb:?} {pc:?}"
                );
                split = Some((pa.clone(), pb.clone(), pc.clone()));
            }
        }
        seen = got_a
            .iter()
            .chain(&got_b)
            .chain(&report.lock().expect("report").got)
            .copied()
            .collect();
        if split.is_some() && seen == all {
            break;
        }
        deadline.check(|| {
            format!(
                "round 0: split {split:?}, assigned {pa:?} {pb:?} {pc:?}, consumed {} of {}",
                seen.len(),
                all.len()
            )
        });
    }
    let (pa, pb, pc) = split.expect("split");
    println!("split three ways: a {pa:?}, b {pb:?}, c {pc:?}");

    // b leaves cleanly (its offsets committed), c is killed without a LeaveGroup.
    drop(b);
    child.kill().expect("SIGKILL the child member");
    let _ = child.wait();
    let gone = std::time::Instant::now();
    trio_produce(&bootstrap, 1, 20);

    // The survivor owns all six within session.timeout.ms + a rebalance (20 s allowed).
    let mut got_after: Vec<(i32, i64)> = Vec::new();
    let deadline = Deadline::after(Duration::from_secs(20));
    while assigned_of(&a).len() < TRIO_PARTITIONS as usize {
        if let Some(m) = a.poll(Duration::from_millis(50)) {
            let m = m.expect("message");
            got_after.push(trio_handle(&a, &m));
        }
        deadline.check(|| {
            format!(
                "a owns only {:?} after the leave and the kill",
                assigned_of(&a)
            )
        });
    }
    println!(
        "the survivor owned all partitions {:?} after the leave and the kill",
        gone.elapsed()
    );

    // It reads the rest: every message of both rounds consumed at least once.
    let all_both: BTreeSet<(i32, i64)> = (0..TRIO_PARTITIONS)
        .flat_map(|p| (0..40).map(move |o| (p, o)))
        .collect();
    let deadline = Deadline::after(Duration::from_secs(60));
    loop {
        let consumed: BTreeSet<(i32, i64)> = seen.iter().chain(&got_after).copied().collect();
        if consumed == all_both {
            break;
        }
        deadline.check(|| format!("consumed {} of {}", consumed.len(), all_both.len()));
        if let Some(m) = a.poll(Duration::from_millis(50)) {
            let m = m.expect("message");
            got_after.push(trio_handle(&a, &m));
        }
    }
    // Nothing twice, except the killed member's messages consumed but not yet committed.
    let child_got = report.lock().expect("report").got.clone();
    let mut counts: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for at in got_a
        .iter()
        .chain(&got_b)
        .chain(&child_got)
        .chain(&got_after)
    {
        *counts.entry(*at).or_default() += 1;
    }
    let twice: Vec<_> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(at, _)| *at)
        .collect();
    for (p, o) in &twice {
        assert!(
            pc.contains(p) && child_got.contains(&(*p, *o)),
            "({p}, {o}) consumed twice though its owner committed it (b owned {pb:?})"
        );
    }
    println!("consumed twice (the killed member's uncommitted tail): {twice:?}");
}
