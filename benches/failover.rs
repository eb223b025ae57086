//! Failover bench (`cargo bench --bench failover`): three release `rafka` processes (combined
//! broker+controller) with the default settings (`min.insync.replicas=2` only), an idempotent
//! acks=all producer with librdkafka's defaults writing to an RF=3 partition every 2 ms, and:
//!
//! 1. `$RAFKA_FAILOVER_KILLS` (default 20) SIGKILLs of the partition's leader → the time to the
//!    first acknowledgement of a message sent after the kill (on the new leader); the node is
//!    restarted and the full ISR awaited between kills. Targets: median ≤ 1 s, max ≤ 2 s.
//! 2. The leader SIGSTOPped for 10 s (`$RAFKA_FAILOVER_PAUSES` times, default 3) → the first
//!    acknowledgement of a message sent after the SIGSTOP, during the pause or counted from the
//!    SIGCONT. Target ≤ 3 s (from the SIGSTOP: librdkafka cannot reach it, see the README).
//! 3. The active controller SIGKILLed → an admin client's next CreateTopics succeeds. Target
//!    ≤ 1 s.
//! 4. A saturating load (`$RAFKA_FAILOVER_SATURATE_SECS`, default 60 s: a producer sending as
//!    fast as librdkafka batches, 1 KiB messages, to a second RF=3 topic) fences no broker and
//!    changes no ISR or leader epoch (polled every 100 ms). That topic keeps 64 MiB
//!    (`retention.bytes`, checked every second: `log.retention.check.interval.ms=1000`, the one
//!    setting besides `min.insync.replicas`), so the run's disk use stays bounded.
//!
//! Everything shares this machine's cores (three brokers, the clients, and whatever else runs):
//! the load average is printed beside the figures. The shared harness is `tests/common/failover.rs`.

#[path = "../tests/common/mod.rs"]
#[allow(dead_code)]
mod common;

use common::failover::{self, Load};
use common::Cluster;
use std::time::{Duration, Instant};

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Free bytes on the file system holding `path`.
fn free_bytes(path: &std::path::Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return 0;
    };
    // SAFETY: statvfs writes only into the zeroed struct we pass; `c` is a valid C string.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) != 0 {
            return 0;
        }
        st.f_bavail as u64 * st.f_frsize as u64
    }
}

fn main() {
    let kills = env_usize("RAFKA_FAILOVER_KILLS", 20);
    let saturate = Duration::from_secs(env_usize("RAFKA_FAILOVER_SATURATE_SECS", 60) as u64);
    // The defaults, and one setting that only bounds the disk: the saturating phase writes
    // gigabytes a minute, so its topic keeps 64 MiB and retention is checked every second.
    let mut settings = failover::SETTINGS.to_vec();
    settings.push(("log.retention.check.interval.ms", "1000"));
    let mut cluster = Cluster::start(3, &settings);
    let topic = "failover";
    failover::create_topic(&cluster, topic);
    let mut out = String::new();

    // 1. Leader SIGKILLs.
    let load = Load::start(&cluster.bootstrap(), topic, Duration::from_millis(2), 100);
    std::thread::sleep(Duration::from_secs(1));
    let mut times = Vec::new();
    let mut elected = Vec::new();
    for i in 0..kills {
        let k = failover::kill_leader(&mut cluster, topic, &load);
        eprintln!(
            "kill {}/{kills}: leader {}, new leader named after {:?}, first ack after {:?} (load {})",
            i + 1,
            k.leader,
            k.elected,
            k.first_ack,
            load_average()
        );
        times.push(k.first_ack);
        elected.push(k.elected);
    }
    if kills > 0 {
        let (median, max) = failover::median_max(&times);
        let (e_median, e_max) = failover::median_max(&elected);
        out += &format!(
        "leader SIGKILL x{kills} → first ack on the new leader: median {} ms, max {} ms (all: {:?})\n\
         leader SIGKILL x{kills} → a survivor's Metadata names the new leader: median {} ms, max {} ms\n",
        median.as_millis(),
        max.as_millis(),
        times.iter().map(Duration::as_millis).collect::<Vec<_>>(),
        e_median.as_millis(),
        e_max.as_millis(),
    );
    }

    // 2. Leader SIGSTOPped for 10 s, `$RAFKA_FAILOVER_PAUSES` times (default 3).
    let pauses = env_usize("RAFKA_FAILOVER_PAUSES", 3);
    let mut resumed = Vec::new();
    for i in 0..pauses {
        let p = failover::pause_leader(&mut cluster, topic, &load, Duration::from_secs(10));
        eprintln!(
            "pause {}/{pauses}: leader {}, first ack during the pause {:?}, after the resume {:?} (load {})",
            i + 1,
            p.leader,
            p.during,
            p.after_resume,
            load_average()
        );
        out += &format!(
            "leader SIGSTOP 10 s (node {}) → first ack: {}\n",
            p.leader,
            p.during.map_or(
                format!(
                    "none during the pause; {} ms after the SIGCONT",
                    p.after_resume.as_millis()
                ),
                |d| format!("{} ms after the SIGSTOP", d.as_millis())
            )
        );
        resumed.push(p.after_resume);
    }
    if pauses > 0 {
        let (median, max) = failover::median_max(&resumed);
        out += &format!(
            "leader SIGSTOP 10 s x{pauses} → first ack after the SIGCONT: median {} ms, max {} ms\n",
            median.as_millis(),
            max.as_millis()
        );
    }
    let errors = load.acks.errors();
    out += &format!(
        "producer: {} acknowledged, {} delivery errors {:?}\n",
        load.acks.acked(),
        errors.len(),
        errors.iter().take(3).collect::<Vec<_>>()
    );
    drop(load);

    // 3. Active controller SIGKILLed → next metadata write.
    let (controller, took, attempts) =
        failover::kill_controller_then_create(&mut cluster, "after-controller-kill");
    out += &format!(
        "active controller SIGKILL (node {controller}) → CreateTopics succeeded after {} ms ({attempts} attempt(s))\n",
        took.as_millis()
    );
    cluster.wait_ready(Duration::from_secs(60));
    failover::wait_full_isr(&cluster, 1, topic);

    // 4. Saturating load: nothing fenced, no ISR or leader change.
    let busy = "saturate";
    failover::create_topic_with(
        &cluster,
        busy,
        &[
            ("segment.bytes", "16777216"),
            ("retention.bytes", "67108864"),
            ("file.delete.delay.ms", "1000"),
        ],
    );
    // (Only the fresh topic: the other may see an auto leader rebalance, which is no fencing.)
    let before = failover::partition_state(&cluster, 1, busy);
    let load = Load::start(&cluster.bootstrap(), busy, Duration::ZERO, 1024);
    let start = Instant::now();
    let mut changes = Vec::new();
    let mut stopped_early = None;
    while start.elapsed() < saturate {
        std::thread::sleep(Duration::from_millis(100));
        // The disk is shared: stop before it fills, and say so.
        let free = free_bytes(&cluster.nodes[0].dir);
        if free < 8 << 30 {
            stopped_early = Some(format!(
                "stopped after {:?}: {} GB free",
                start.elapsed(),
                free >> 30
            ));
            break;
        }
        for via in 1..=3 {
            let brokers = failover::live_brokers(&cluster, via);
            let now = failover::partition_state(&cluster, via, busy);
            if brokers.as_deref() != Some(&[1, 2, 3][..]) || now != before {
                changes.push(format!(
                    "{:?} via {via}: brokers {brokers:?}, {now:?}",
                    start.elapsed()
                ));
            }
        }
    }
    let acked = load.acks.acked();
    drop(load);
    out += &format!(
        "saturating RF=3 load for {} s ({acked} x 1 KiB acknowledged, {:.1} MB/s): {} fencing or ISR change(s) {:?}\n",
        saturate.as_secs(),
        acked as f64 * 1024.0 / saturate.as_secs_f64() / 1e6,
        changes.len(),
        changes.iter().take(5).collect::<Vec<_>>()
    );
    if let Some(why) = stopped_early {
        out += &format!("saturating phase {why}\n");
    }
    out += &format!("load average at the end: {}\n", load_average());
    print!("{out}");
    let _ = std::fs::create_dir_all("target/criterion");
    let _ = std::fs::write("target/criterion/failover-summary.txt", &out);
}
