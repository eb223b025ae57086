//! Receive-and-write, streamed or a whole frame at a time (`cargo bench --bench frame_write`):
//! whether a broker pays for holding a whole request before it writes it.
//!
//! The replication and produce floors receive over loopback and `write(2)` each read as it
//! returns (at most 1 MiB), so what arrived last may still be in the core's cache when it is
//! copied into the page cache. A broker cannot: it validates a frame (CRC, records) before it
//! appends it, so it receives the whole frame — a librdkafka produce batch or a follower's fetch
//! response, up to 1 MiB each at the defaults — and only then writes it. This bench measures
//! both on plain sockets and files: a sender thread writes `TOTAL` bytes to a loopback socket;
//! the receiving thread either writes each read as it comes (`streamed`) or fills a buffer of
//! one frame size first (`frame <size>`), in alternating rounds, and reports the receiving
//! thread's CPU per GB (its own CPU-time clock): the median over the rounds and the range.
//!
//! On the 2-vCPU EPYC VM (1 MiB of L2 per core) where the replication floor was found to be
//! half the brokers' cost, whole 1 MiB frames cost 0.76–0.80 of the streamed figure in three
//! runs (fewer, larger writes) and 64 KiB frames 1.3–1.6: holding a whole frame is not what
//! the brokers pay for.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

/// Bytes per round.
const TOTAL: u64 = 512 << 20;
/// Alternating rounds per mode.
const ROUNDS: usize = 8;
/// The sender's writes.
const SEND_CHUNK: usize = 1 << 20;

#[derive(Clone, Copy)]
enum Mode {
    /// Write what each read returned (at most 1 MiB).
    Streamed,
    /// Receive this many bytes, then write them.
    Frame(usize),
}

impl Mode {
    fn name(self) -> String {
        match self {
            Mode::Streamed => "streamed (each read, <= 1 MiB)".into(),
            Mode::Frame(n) => format!("whole frame of {} KiB", n >> 10),
        }
    }
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(r, 0, "clock_gettime");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// One round: CPU-s per GB of the receiving thread.
fn round(mode: Mode, path: &Path) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let sender = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).expect("connect");
        let chunk = vec![7u8; SEND_CHUNK];
        let mut left = TOTAL;
        while left > 0 {
            let n = left.min(SEND_CHUNK as u64) as usize;
            s.write_all(&chunk[..n]).expect("send");
            left -= n as u64;
        }
    });
    let (mut s, _) = listener.accept().expect("accept");
    let mut file = File::create(path).expect("create");
    let size = match mode {
        Mode::Streamed => 1 << 20,
        Mode::Frame(n) => n,
    };
    let mut buf = vec![0u8; size];
    let cpu0 = thread_cpu();
    let mut got = 0u64;
    match mode {
        Mode::Streamed => loop {
            let n = s.read(&mut buf).expect("receive");
            if n == 0 {
                break;
            }
            file.write_all(&buf[..n]).expect("write");
            got += n as u64;
        },
        Mode::Frame(_) => loop {
            let mut have = 0;
            while have < size {
                let n = s.read(&mut buf[have..]).expect("receive");
                if n == 0 {
                    break;
                }
                have += n;
            }
            if have == 0 {
                break;
            }
            file.write_all(&buf[..have]).expect("write");
            got += have as u64;
        },
    }
    let cpu = thread_cpu() - cpu0;
    sender.join().expect("sender");
    assert_eq!(got, TOTAL, "every byte received");
    drop(file);
    let _ = std::fs::remove_file(path);
    cpu.as_secs_f64() / (got as f64 / 1e9)
}

fn main() {
    // `cargo test --benches` runs bench targets without `--bench`: nothing to do then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let path = dir.path().join("frame-write.bin");
    let modes = [
        Mode::Streamed,
        Mode::Frame(1 << 20),
        Mode::Frame(256 << 10),
        Mode::Frame(64 << 10),
    ];
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    for _ in 0..ROUNDS {
        for (i, mode) in modes.iter().enumerate() {
            results[i].push(round(*mode, &path));
        }
    }
    println!(
        "receive-and-write over loopback, {} MiB per round, {ROUNDS} alternating rounds: \
         receiving thread's CPU-s/GB, median [min–max]",
        TOTAL >> 20
    );
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let streamed = median(&mut results[0].clone());
    for (mode, r) in modes.iter().zip(results.iter_mut()) {
        let m = median(r);
        println!(
            "  {:<32} {m:.3} [{:.3}–{:.3}]  ÷ streamed {:.2}",
            mode.name(),
            r[0],
            r[r.len() - 1],
            m / streamed
        );
    }
}
