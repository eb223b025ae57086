//! TLS bench (`cargo bench --bench tls`): the release `rafka` binary with a PLAINTEXT and an SSL
//! client listener side by side, driven by librdkafka (the rdkafka crate, OpenSSL inside), so
//! both protocols are measured in the same run on the same broker:
//!
//! - `produce/{PLAINTEXT,SSL}/{1KiB,16KiB}`: one partition, acks=1, `linger.ms=5`,
//!   `batch.size=1000000`, no compression; `$RAFKA_TLS_BENCH_MIB` MiB of payload (default 256),
//!   every delivery report received.
//! - `consume/{PLAINTEXT,SSL}/{1KiB,16KiB}`: the e2e bench's group-free librdkafka consumer
//!   (`support::CountingConsumer`: Metadata and Fetch only, 1 MiB per partition fetch) reading
//!   back what was produced, from offset 0; payloads counted, not copied. On
//!   PLAINTEXT the broker sends record data with `sendfile(2)`; on SSL it reads the log in
//!   256 KiB chunks and encrypts them in user space (this kernel offers no kTLS).
//! - `connect/{PLAINTEXT,SSL/full,SSL/resumed}`: new connections per second — TCP connect, a
//!   TLS 1.3 handshake on SSL, one ApiVersions request and its answer, close — from the rustls
//!   client the nodes use: full handshakes (session resumption off) with one client at a time
//!   and with 8 at once, resumed ones (the server's session cache) with 8, and PLAINTEXT with 8
//!   for the cost of a connection without TLS.
//!
//! For each: wall time, throughput, and the broker's CPU time (utime + stime of
//! `/proc/<pid>/stat`) per GB of payload or per handshake. Client and broker share this
//! machine's cores, so read absolute rates with that in mind; the PLAINTEXT/SSL ratios are the
//! point. The table is printed and written to `target/tls-bench-summary.txt`.

#[path = "../tests/common/certs.rs"]
mod certs;
#[allow(dead_code)]
#[path = "e2e/support.rs"]
mod support;

use rafka_security::tls::{SslConfig, TlsClient};
use rafka_security::transport::Stream;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KIB: usize = 1024;
const MIB: u64 = 1 << 20;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

struct Broker {
    child: Child,
    plain: u16,
    ssl: u16,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Broker {
    fn cpu(&self) -> Duration {
        support::pid_cpu(self.child.id())
    }
}

fn start(dir: &Path, keystore: &Path) -> Broker {
    let (plain, ssl, controller) = (free_port(), free_port(), free_port());
    let props = format!(
        "node.id=1\n\
         process.roles=broker,controller\n\
         listeners=PLAINTEXT://127.0.0.1:{plain},SSL://127.0.0.1:{ssl},CONTROLLER://127.0.0.1:{controller}\n\
         advertised.listeners=PLAINTEXT://127.0.0.1:{plain},SSL://127.0.0.1:{ssl}\n\
         listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT\n\
         inter.broker.listener.name=PLAINTEXT\n\
         controller.listener.names=CONTROLLER\n\
         controller.quorum.voters=1@127.0.0.1:{controller}\n\
         http.listeners=\n\
         num.partitions=1\n\
         log.dirs={}\n\
         ssl.keystore.type=PEM\n\
         ssl.keystore.location={}\n",
        dir.join("data").display(),
        keystore.display()
    );
    let file = dir.join("server.properties");
    std::fs::write(&file, props).expect("write server.properties");
    let log = std::fs::File::create(dir.join("rafka.log")).expect("log");
    let child = Command::new(support::rafka_binary())
        .arg(&file)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup"))
        .stderr(log)
        .env(
            "RUST_LOG",
            std::env::var("RAFKA_BENCH_LOG").unwrap_or("warn".into()),
        )
        .spawn()
        .expect("spawn rafka");
    let broker = Broker { child, plain, ssl };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c: BaseConsumer = config(&format!("127.0.0.1:{plain}"), None)
            .create()
            .expect("client");
        if c.fetch_metadata(None, Duration::from_secs(2))
            .is_ok_and(|m| m.brokers().len() == 1)
        {
            return broker;
        }
        assert!(Instant::now() < deadline, "rafka did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn config(bootstrap: &str, ca: Option<&Path>) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "10000");
    if let Some(ca) = ca {
        c.set("security.protocol", "SSL")
            .set("ssl.ca.location", ca.display().to_string());
    }
    c
}

struct Row {
    name: String,
    bytes: u64,
    wall: Duration,
    cpu: Duration,
}

fn produce(bootstrap: &str, ca: Option<&Path>, topic: &str, size: usize, total: u64) -> u64 {
    let producer: BaseProducer = config(bootstrap, ca)
        .set("acks", "1")
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("message.timeout.ms", "60000")
        .create()
        .expect("producer");
    let payload: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    let count = total / size as u64;
    for _ in 0..count {
        loop {
            match producer.send(
                BaseRecord::<(), [u8]>::to(topic)
                    .partition(0)
                    .payload(&payload),
            ) {
                Ok(()) => break,
                Err((e, _)) => {
                    assert!(e.to_string().contains("Queue full"), "produce: {e}");
                    producer.poll(Duration::from_millis(1));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("every record delivered");
    count
}

fn consume(bootstrap: &str, ca: Option<&Path>, topic: &str, count: u64) -> u64 {
    let ca = ca.map(|p| p.display().to_string());
    let mut settings = Vec::new();
    if let Some(ca) = &ca {
        settings.push(("security.protocol", "SSL"));
        settings.push(("ssl.ca.location", ca.as_str()));
    }
    let mut consumer =
        support::CountingConsumer::with_settings(bootstrap, topic, count as i64, &settings);
    consumer.read(count)
}

fn handshakes(
    rt: &tokio::runtime::Runtime,
    client: Option<&TlsClient>,
    port: u16,
    parallel: usize,
    run: Duration,
) -> u64 {
    rt.block_on(async {
        let stop = Instant::now() + run;
        let mut tasks = Vec::new();
        for _ in 0..parallel {
            let client = client.cloned();
            tasks.push(tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < stop {
                    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                        .await
                        .expect("connect");
                    tcp.set_nodelay(true).expect("nodelay");
                    let mut stream = match &client {
                        Some(c) => c.connect(tcp, "localhost").await.expect("handshake"),
                        None => Stream::Plain(tcp),
                    };
                    // One ApiVersions v0 request and its answer: a connection a client can use
                    // (and, in TLS 1.3, the read that takes in the server's session tickets).
                    const API_VERSIONS_V0: [u8; 15] =
                        [0, 0, 0, 11, 0, 18, 0, 0, 0, 0, 0, 1, 0, 1, b'b'];
                    stream.write_all(&API_VERSIONS_V0).await.expect("request");
                    stream.flush().await.expect("flush");
                    let mut size = [0u8; 4];
                    stream.read_exact(&mut size).await.expect("response size");
                    let mut body = vec![0u8; u32::from_be_bytes(size) as usize];
                    stream.read_exact(&mut body).await.expect("response");
                    drop(stream);
                    done += 1;
                }
                done
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.expect("task");
        }
        total
    })
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported (one fixed run).
    let total = std::env::var("RAFKA_TLS_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(256)
        * MIB;
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp");
    std::fs::create_dir_all(&target).expect("target/tmp");
    let dir = tempfile::Builder::new()
        .prefix("tls-bench-")
        .tempdir_in(&target)
        .expect("scratch dir");
    let ca = certs::Ca::new(dir.path(), "bench CA", "ca.pem");
    let server = ca.server(dir.path(), "server", "localhost");
    let broker = start(dir.path(), &server.keystore);
    let plain = format!("127.0.0.1:{}", broker.plain);
    let ssl = format!("127.0.0.1:{}", broker.ssl);

    let mut rows = Vec::new();
    for (size_name, size) in [("1KiB", KIB), ("16KiB", 16 * KIB)] {
        for (proto, bootstrap, ca_path) in [
            ("PLAINTEXT", &plain, None),
            ("SSL", &ssl, Some(ca.pem_path.as_path())),
        ] {
            let topic = format!("{proto}-{size_name}");
            let (cpu0, t0) = (broker.cpu(), Instant::now());
            let count = produce(bootstrap, ca_path, &topic, size, total);
            rows.push(Row {
                name: format!("produce/{proto}/{size_name}"),
                bytes: count * size as u64,
                wall: t0.elapsed(),
                cpu: broker.cpu() - cpu0,
            });
            let (cpu0, t0) = (broker.cpu(), Instant::now());
            let bytes = consume(bootstrap, ca_path, &topic, count);
            rows.push(Row {
                name: format!("consume/{proto}/{size_name}"),
                bytes,
                wall: t0.elapsed(),
                cpu: broker.cpu() - cpu0,
            });
            eprintln!("done: {proto} {size_name}");
        }
    }

    let ca_text = ca.pem_path.display().to_string();
    let ssl_config = SslConfig::from_keys("BENCH", |k| match k {
        "ssl.truststore.type" => Some("PEM".into()),
        "ssl.truststore.location" => Some(ca_text.clone()),
        _ => None,
    })
    .expect("client config");
    let client = TlsClient::new(&ssl_config).expect("client");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut handshake_rows = Vec::new();
    let full = client.with_resumption(false);
    for (kind, client, port, parallel) in [
        ("PLAINTEXT", None, broker.plain, 8),
        ("SSL/full", Some(&full), broker.ssl, 1),
        ("SSL/full", Some(&full), broker.ssl, 8),
        ("SSL/resumed", Some(&client), broker.ssl, 8),
    ] {
        let (cpu0, t0) = (broker.cpu(), Instant::now());
        let n = handshakes(&rt, client, port, parallel, Duration::from_secs(5));
        handshake_rows.push((kind, parallel, n, t0.elapsed(), broker.cpu() - cpu0));
    }

    let mut out = String::new();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let _ = writeln!(
        out,
        "TLS bench: {} MiB per case, load average {}",
        total / MIB,
        load.trim()
    );
    let _ = writeln!(
        out,
        "{:<26} {:>10} {:>12} {:>16}",
        "case", "MiB", "MB/s", "broker CPU s/GB"
    );
    for r in &rows {
        let secs = r.wall.as_secs_f64();
        let gb = r.bytes as f64 / 1e9;
        let _ = writeln!(
            out,
            "{:<26} {:>10} {:>12.0} {:>16.2}",
            r.name,
            r.bytes / MIB,
            r.bytes as f64 / 1e6 / secs,
            r.cpu.as_secs_f64() / gb
        );
    }
    let _ = writeln!(
        out,
        "{:<26} {:>10} {:>12} {:>16}",
        "connect+ApiVersions", "clients", "per second", "broker CPU µs each"
    );
    for (kind, parallel, n, wall, cpu) in handshake_rows {
        let _ = writeln!(
            out,
            "{:<26} {:>10} {:>12.0} {:>16.0}",
            format!("connect/{kind}"),
            parallel,
            n as f64 / wall.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / n.max(1) as f64
        );
    }
    print!("{out}");
    let summary = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tls-bench-summary.txt");
    let _ = std::fs::write(summary, &out);
    drop(broker);
}
