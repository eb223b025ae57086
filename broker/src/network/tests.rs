//! The socket server against real sockets on 127.0.0.1, with a toy handler.
//!
//! The toy handler answers every request with an ApiVersions response carrying the request's
//! correlation id; the request's client id selects other behaviours (see [`Toy::handle`]).

use super::connection_quotas::ConnectionLimits;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use rafka_protocol::frame::FrameError;
use rafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use rafka_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, FetchResponse, RequestHeader, RequestKind,
    ResponseKind,
};
use rafka_protocol::{ApiKey, Chunk, ErrorCode, Records, RequestFrame, ResponseFrame};
use rafka_storage::{DiskFs, FileSlice, FileSystem, LogFile, SimFs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::*;

/// Every test finishes well within this.
const LIMIT: Duration = Duration::from_secs(20);

/// Tests that count [`SENDFILE_BYTES`] run one at a time, so that their counts are exact.
static SENDFILE_COUNTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Default)]
struct Toy {
    /// The file `chunks:` requests send slices of.
    file: Option<Arc<dyn LogFile>>,
    frame_errors: AtomicUsize,
    /// Requests given to `handle` so far.
    requests: AtomicUsize,
}

impl Toy {
    fn echo(header: &RequestHeader, error: ErrorCode) -> Response {
        let frame = ResponseFrame {
            correlation_id: header.correlation_id,
            api_version: if error == ErrorCode::None {
                header.request_api_version
            } else {
                0
            },
            body: ResponseKind::ApiVersions(ApiVersionsResponse {
                error_code: error.code(),
                ..Default::default()
            }),
        };
        Response::Frame(frame.encode().expect("encodes").freeze())
    }

    /// A Fetch v11 response whose records are slices `(position, len)` of `self.file`.
    fn fetch(&self, correlation_id: i32, ranges: &[(u64, u32)]) -> Response {
        let file = self.file.clone().expect("test sets a file");
        let partitions = ranges
            .iter()
            .enumerate()
            .map(|(i, &(_, len))| PartitionData {
                partition_index: i as i32,
                records: Some(Records::Slot {
                    handle: i as u64,
                    len,
                }),
                ..Default::default()
            })
            .collect();
        let frame = ResponseFrame {
            correlation_id,
            api_version: 11,
            body: ResponseKind::Fetch(FetchResponse {
                responses: vec![FetchableTopicResponse {
                    topic: "t".into(),
                    partitions,
                    ..Default::default()
                }],
                ..Default::default()
            }),
        };
        let slices = ranges
            .iter()
            .map(|&(position, len)| FileSlice {
                file: file.clone(),
                position,
                len,
            })
            .collect();
        Response::Chunks {
            chunks: frame.encode_chunks().expect("encodes"),
            slices,
        }
    }
}

impl RequestHandler for Toy {
    /// By client id: `none` → [`Response::None`]; `close` → [`Response::Close`]; `panic` →
    /// panics; `sleep:<ms>` → answers after that long; `fetch:<pos>+<len>,...` → a Fetch
    /// response with those slices of the file; anything else → the echo at once.
    fn handle(
        &self,
        _ctx: &RequestContext,
        request: RequestFrame,
    ) -> Pin<Box<dyn Future<Output = Response> + Send + '_>> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let h = &request.header;
            let client = h.client_id.clone().unwrap_or_default();
            match client.split_once(':').unwrap_or((&client, "")) {
                ("none", _) => Response::None,
                ("close", _) => Response::Close,
                ("panic", _) => panic!("toy handler panics on request"),
                ("sleep", ms) => {
                    let ms = ms.parse().expect("sleep:<ms>");
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    Toy::echo(h, ErrorCode::None)
                }
                ("fetch", ranges) => {
                    let ranges: Vec<(u64, u32)> = ranges
                        .split(',')
                        .map(|r| {
                            let (p, l) = r.split_once('+').expect("pos+len");
                            (p.parse().expect("pos"), l.parse().expect("len"))
                        })
                        .collect();
                    self.fetch(h.correlation_id, &ranges)
                }
                _ => Toy::echo(h, ErrorCode::None),
            }
        })
    }

    fn handle_frame_error(
        &self,
        _ctx: &RequestContext,
        error: FrameError,
    ) -> Pin<Box<dyn Future<Output = Response> + Send + '_>> {
        self.frame_errors.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            match error {
                FrameError::UnsupportedVersion { header }
                    if header.request_api_key == ApiKey::ApiVersions as i16 =>
                {
                    Toy::echo(&header, ErrorCode::UnsupportedVersion)
                }
                _ => Response::Close,
            }
        })
    }
}

struct Server {
    addr: std::net::SocketAddr,
    handler: Arc<Toy>,
    sockets: Arc<SocketServer>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

async fn start(handler: Toy, config: NetworkConfig) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handler = Arc::new(handler);
    let (shutdown, rx) = watch::channel(false);
    let sockets = SocketServer::new(config);
    let task = tokio::spawn(serve(
        listener,
        "PLAINTEXT".into(),
        rafka_security::transport::ServerSecurity::plaintext(),
        handler.clone(),
        sockets.clone(),
        rx,
    ));
    Server {
        addr,
        handler,
        sockets,
        shutdown,
        task,
    }
}

fn config() -> NetworkConfig {
    NetworkConfig {
        max_request_bytes: 1024,
        idle_timeout: Duration::from_secs(30),
        queued_max_request_bytes: 1 << 20,
        limits: ConnectionLimits {
            max_connections: 100,
            ..Default::default()
        },
    }
}

/// An ApiVersions v3 request (flexible: request header v2) with its size prefix.
fn request(correlation_id: i32, client_id: &str) -> BytesMut {
    RequestFrame {
        header: RequestHeader {
            request_api_key: ApiKey::ApiVersions as i16,
            request_api_version: 3,
            correlation_id,
            client_id: Some(client_id.into()),
            ..Default::default()
        },
        body: RequestKind::ApiVersions(ApiVersionsRequest {
            client_software_name: "toy".into(),
            client_software_version: "1".into(),
            ..Default::default()
        }),
    }
    .encode()
    .expect("encodes")
}

struct Client {
    stream: TcpStream,
}

impl Client {
    async fn connect(server: &Server) -> Client {
        Client {
            stream: TcpStream::connect(server.addr).await.expect("connect"),
        }
    }

    /// A connection from the local address `from` (any of 127.0.0.0/8).
    async fn connect_from(server: &Server, from: &str) -> Client {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(format!("{from}:0").parse().expect("address"))
            .expect("bind the client side");
        Client {
            stream: socket.connect(server.addr).await.expect("connect"),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send");
    }

    /// The next response frame without its size prefix; `None` at end of stream.
    async fn recv(&mut self) -> Option<Bytes> {
        let mut prefix = [0u8; 4];
        if self.stream.read_exact(&mut prefix).await.is_err() {
            return None;
        }
        let mut frame = vec![0u8; i32::from_be_bytes(prefix) as usize];
        self.stream.read_exact(&mut frame).await.ok()?;
        Some(frame.into())
    }

    /// The correlation id of the next response (ApiVersions v3, header v0), after checking
    /// that the whole response decodes.
    async fn recv_correlation_id(&mut self) -> i32 {
        let frame = self.recv().await.expect("a response");
        ResponseFrame::decode(ApiKey::ApiVersions, 3, &frame)
            .expect("an ApiVersions response")
            .correlation_id
    }

    /// Reads until the server closes the connection; returns what was read meanwhile.
    async fn until_eof(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        match self.stream.read_to_end(&mut rest).await {
            Ok(_) => rest,
            // A close with unread bytes on the server side is a reset: also the end.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => rest,
            Err(e) => panic!("reading to eof: {e}"),
        }
    }

    /// Nothing arrives within `wait`.
    async fn expect_silence(&mut self, wait: Duration) {
        let mut b = [0u8; 1];
        if let Ok(r) = tokio::time::timeout(wait, self.stream.read(&mut b)).await {
            panic!("expected nothing, got {r:?}");
        }
    }
}

async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("test took too long")
}

#[tokio::test]
async fn network_answers_with_the_correlation_id() {
    bounded(async {
        let server = start(Toy::default(), config()).await;
        let mut c = Client::connect(&server).await;
        c.send(&request(42, "c")).await;
        assert_eq!(c.recv_correlation_id().await, 42);
        c.send(&request(43, "c")).await;
        assert_eq!(c.recv_correlation_id().await, 43);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_pipelined_requests_are_answered_in_order() {
    bounded(async {
        let server = start(Toy::default(), config()).await;
        let mut c = Client::connect(&server).await;
        // 100 requests in one write before reading anything; handling times differ so that
        // answering in completion order would show.
        let mut all = BytesMut::new();
        for id in 0..100 {
            let client = match id % 4 {
                0 => "sleep:3".to_string(),
                1 => "sleep:0".to_string(),
                2 => "fast".to_string(),
                _ => "sleep:1".to_string(),
            };
            all.extend_from_slice(&request(id, &client));
        }
        c.send(&all).await;
        for id in 0..100 {
            assert_eq!(c.recv_correlation_id().await, id);
        }
    })
    .await;
}

#[tokio::test]
async fn network_oversized_or_negative_size_closes_only_that_connection() {
    bounded(async {
        let server = start(Toy::default(), config()).await;
        let mut other = Client::connect(&server).await;
        other.send(&request(1, "c")).await;
        assert_eq!(other.recv_correlation_id().await, 1);

        for size in [1025i32, -1, i32::MAX] {
            let mut c = Client::connect(&server).await;
            c.send(&size.to_be_bytes()).await;
            assert!(c.until_eof().await.is_empty(), "size {size}");
        }
        // Exactly at the limit is accepted (and then fails to decode as garbage).
        let mut c = Client::connect(&server).await;
        let mut frame = 1024i32.to_be_bytes().to_vec();
        frame.extend([0xff; 1024]);
        c.send(&frame).await;
        assert!(c.until_eof().await.is_empty());
        assert_eq!(server.handler.frame_errors.load(Ordering::SeqCst), 1);

        // The connection opened before still works, and so does a new one.
        other.send(&request(2, "c")).await;
        assert_eq!(other.recv_correlation_id().await, 2);
        let mut c = Client::connect(&server).await;
        c.send(&request(3, "c")).await;
        assert_eq!(c.recv_correlation_id().await, 3);
    })
    .await;
}

#[tokio::test]
async fn network_garbage_frame_goes_to_handle_frame_error_and_closes() {
    bounded(async {
        let server = start(Toy::default(), config()).await;
        let mut c = Client::connect(&server).await;
        c.send(&request(1, "c")).await;
        assert_eq!(c.recv_correlation_id().await, 1);
        // Unknown API key 0x7f7f, version 0, correlation id 5, null client id.
        c.send(&[0, 0, 0, 10, 0x7f, 0x7f, 0, 0, 0, 0, 0, 5, 0xff, 0xff])
            .await;
        assert!(c.until_eof().await.is_empty());
        assert_eq!(server.handler.frame_errors.load(Ordering::SeqCst), 1);

        // A frame too short for a header.
        let mut c = Client::connect(&server).await;
        c.send(&[0, 0, 0, 2, 0, 18]).await;
        assert!(c.until_eof().await.is_empty());
        assert_eq!(server.handler.frame_errors.load(Ordering::SeqCst), 2);
    })
    .await;
}

#[tokio::test]
async fn network_unsupported_api_versions_is_answered_and_the_connection_stays() {
    bounded(async {
        let server = start(Toy::default(), config()).await;
        let mut c = Client::connect(&server).await;
        // ApiVersions v99: read with request header v2 (key, version, correlation id, client id,
        // empty tagged fields), refused by version — KIP-511 wants an answer, not a close.
        let body = [0, 18, 0, 99, 0, 0, 0, 9, 0, 1, b'x', 0];
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend(body);
        c.send(&frame).await;
        let response = c.recv().await.expect("an answer");
        let response = ResponseFrame::decode(ApiKey::ApiVersions, 0, &response).expect("v0");
        assert_eq!(response.correlation_id, 9);
        let ResponseKind::ApiVersions(body) = response.body else {
            panic!("not ApiVersions")
        };
        assert_eq!(body.error_code, ErrorCode::UnsupportedVersion.code());
        c.send(&request(10, "c")).await;
        assert_eq!(c.recv_correlation_id().await, 10);
    })
    .await;
}

#[tokio::test]
async fn network_idle_connections_are_closed() {
    bounded(async {
        let config = NetworkConfig {
            idle_timeout: Duration::from_millis(300),
            ..config()
        };
        let server = start(Toy::default(), config).await;
        // A busy connection outlives the timeout several times over: it is idle time, not age.
        let mut busy = Client::connect(&server).await;
        for id in 0..8 {
            busy.send(&request(id, "c")).await;
            assert_eq!(busy.recv_correlation_id().await, id);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Time in the handler is not idle time either.
        busy.send(&request(8, "sleep:600")).await;
        assert_eq!(busy.recv_correlation_id().await, 8);

        let started = std::time::Instant::now();
        let mut idle = Client::connect(&server).await;
        assert!(idle.until_eof().await.is_empty());
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(250),
            "closed after {waited:?}"
        );

        // Half a frame, then silence: also closed.
        let mut half = Client::connect(&server).await;
        half.send(&request(1, "c")[..6]).await;
        assert!(half.until_eof().await.is_empty());
        // Only the size prefix, then silence: closed too, and its pool room given back.
        let mut prefix = Client::connect(&server).await;
        prefix.send(&request(1, "c")[..4]).await;
        assert!(prefix.until_eof().await.is_empty());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            server.sockets.pool().available(),
            server.sockets.pool().capacity()
        );
    })
    .await;
}

#[tokio::test]
async fn network_response_none_sends_nothing_and_order_holds() {
    bounded(async {
        let server = start(Toy::default(), config()).await;
        let mut c = Client::connect(&server).await;
        let mut all = BytesMut::new();
        all.extend_from_slice(&request(1, "none"));
        all.extend_from_slice(&request(2, "sleep:20"));
        all.extend_from_slice(&request(3, "none"));
        all.extend_from_slice(&request(4, "c"));
        c.send(&all).await;
        assert_eq!(c.recv_correlation_id().await, 2);
        assert_eq!(c.recv_correlation_id().await, 4);
        c.expect_silence(Duration::from_millis(200)).await;
    })
    .await;
}

#[tokio::test]
async fn network_response_close_and_handler_panic_close_only_their_connection() {
    bounded(async {
        let server = start(Toy::default(), config()).await;
        let mut other = Client::connect(&server).await;
        for (id, client) in [(1, "close"), (2, "panic")] {
            let mut c = Client::connect(&server).await;
            c.send(&request(id, client)).await;
            assert!(c.until_eof().await.is_empty(), "{client}");
            other.send(&request(id, "c")).await;
            assert_eq!(other.recv_correlation_id().await, id);
        }
    })
    .await;
}

/// A temp file of `len` patterned bytes on the real disk.
fn disk_file(dir: &tempfile::TempDir, len: usize) -> (Arc<dyn LogFile>, Vec<u8>) {
    let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    let file = DiskFs
        .open(&dir.path().join("00000000000000000000.log"), true)
        .expect("open");
    file.write_all_at(&[&data], 0).expect("write");
    (file, data)
}

/// The records of each partition of a Fetch v11 response.
fn fetched_records(frame: &Bytes) -> Vec<Bytes> {
    let response = ResponseFrame::decode(ApiKey::Fetch, 11, frame).expect("a Fetch response");
    let ResponseKind::Fetch(body) = response.body else {
        panic!("not Fetch")
    };
    body.responses[0]
        .partitions
        .iter()
        .map(|p| match &p.records {
            Some(Records::Bytes(b)) => b.clone(),
            other => panic!("records {other:?}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_chunks_are_sent_with_sendfile() {
    let _counter = SENDFILE_COUNTER.lock().await;
    bounded(async {
        let dir = tempfile::tempdir().expect("tempdir");
        // Big enough that the socket fills and sendfile must wait for writability.
        let (file, data) = disk_file(&dir, 8 << 20);
        let server = start(
            Toy {
                file: Some(file),
                ..Default::default()
            },
            config(),
        )
        .await;
        let mut c = Client::connect(&server).await;
        let ranges = [(100usize, 1000usize), (5000, 6 << 20), (0, 1)];
        let client = ranges
            .iter()
            .map(|(p, l)| format!("{p}+{l}"))
            .collect::<Vec<_>>()
            .join(",");
        let before = SENDFILE_BYTES.load(Ordering::SeqCst);
        c.send(&request(7, &format!("fetch:{client}"))).await;
        c.send(&request(8, "c")).await;
        // Read slowly at first, so that the server sees a full socket.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let frame = c.recv().await.expect("the fetch response");
        let records = fetched_records(&frame);
        assert_eq!(records.len(), ranges.len());
        for (got, (p, l)) in records.iter().zip(ranges) {
            assert!(got[..] == data[p..p + l], "slice {p}+{l} differs");
        }
        // The trailing bytes after the last slot arrived, and the next response follows.
        assert_eq!(c.recv_correlation_id().await, 8);
        let sent = SENDFILE_BYTES.load(Ordering::SeqCst) - before;
        let expected: usize = ranges.iter().map(|(_, l)| l).sum();
        assert_eq!(sent, expected as u64, "record bytes not sent by sendfile");
    })
    .await;
}

#[tokio::test]
async fn network_slice_longer_than_the_file_closes_the_connection() {
    let _counter = SENDFILE_COUNTER.lock().await;
    bounded(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let (file, data) = disk_file(&dir, 10_000);
        let server = start(
            Toy {
                file: Some(file),
                ..Default::default()
            },
            config(),
        )
        .await;
        let mut c = Client::connect(&server).await;
        c.send(&request(1, "fetch:9000+2000")).await;
        let got = c.until_eof().await;
        let promised = i32::from_be_bytes(got[..4].try_into().expect("a size prefix")) as usize;
        assert!(got.len() < 4 + promised, "the response was padded");
        // What came is the header and then the file's last 1000 bytes, nothing made up.
        assert!(got.ends_with(&data[9000..]));

        let mut c = Client::connect(&server).await;
        c.send(&request(2, "c")).await;
        assert_eq!(c.recv_correlation_id().await, 2);
    })
    .await;
}

#[tokio::test]
async fn network_slices_without_a_descriptor_are_copied() {
    let _counter = SENDFILE_COUNTER.lock().await;
    bounded(async {
        let fs = SimFs::new();
        fs.create_dir_all(std::path::Path::new("/d"))
            .expect("mkdir");
        let file = fs
            .open(std::path::Path::new("/d/sim.log"), true)
            .expect("open");
        let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        file.write_all_at(&[&data], 0).expect("write");
        let server = start(
            Toy {
                file: Some(file),
                ..Default::default()
            },
            config(),
        )
        .await;
        let before = SENDFILE_BYTES.load(Ordering::SeqCst);
        let mut c = Client::connect(&server).await;
        c.send(&request(1, "fetch:10+4000")).await;
        let records = fetched_records(&c.recv().await.expect("a response"));
        assert!(records[0][..] == data[10..4010]);
        assert_eq!(SENDFILE_BYTES.load(Ordering::SeqCst), before);
    })
    .await;
}

#[tokio::test]
async fn network_bad_slot_closes_the_connection() {
    bounded(async {
        struct BadSlot;
        impl RequestHandler for BadSlot {
            fn handle(
                &self,
                _: &RequestContext,
                _: RequestFrame,
            ) -> Pin<Box<dyn Future<Output = Response> + Send + '_>> {
                Box::pin(async {
                    let mut prefix = BytesMut::new();
                    prefix.put_i32(10);
                    Response::Chunks {
                        chunks: vec![
                            Chunk::Bytes(prefix.freeze()),
                            Chunk::Slot { handle: 3, len: 10 },
                        ],
                        slices: Vec::new(),
                    }
                })
            }
            fn handle_frame_error(
                &self,
                _: &RequestContext,
                _: FrameError,
            ) -> Pin<Box<dyn Future<Output = Response> + Send + '_>> {
                Box::pin(async { Response::Close })
            }
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (_tx, rx) = watch::channel(false);
        tokio::spawn(serve(
            listener,
            "x".into(),
            rafka_security::transport::ServerSecurity::plaintext(),
            Arc::new(BadSlot),
            SocketServer::new(config()),
            rx,
        ));
        let mut c = TcpStream::connect(addr).await.expect("connect");
        c.write_all(&request(1, "c")).await.expect("send");
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).await.expect("eof");
        assert!(rest.is_empty(), "nothing of a broken response is sent");
    })
    .await;
}

#[tokio::test]
async fn network_max_connections_holds_the_next_one_back() {
    bounded(async {
        let mut config = config();
        config.limits.max_connections = 1;
        let server = start(Toy::default(), config).await;
        let mut first = Client::connect(&server).await;
        first.send(&request(1, "c")).await;
        assert_eq!(first.recv_correlation_id().await, 1);
        // The kernel completes the handshake, but nobody serves the second connection...
        let mut second = Client::connect(&server).await;
        second.send(&request(2, "c")).await;
        second.expect_silence(Duration::from_millis(300)).await;
        // ...until the first one closes.
        drop(first);
        assert_eq!(second.recv_correlation_id().await, 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_shutdown_finishes_the_current_response_and_stops_accepting() {
    bounded(async {
        let server = start(Toy::default(), config()).await;
        let mut waiting = Client::connect(&server).await;
        waiting.send(&request(1, "c")).await;
        assert_eq!(waiting.recv_correlation_id().await, 1);
        let mut busy = Client::connect(&server).await;
        busy.send(&request(2, "sleep:300")).await;
        while server.handler.requests.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        server.shutdown.send(true).expect("serve is listening");
        // The connection waiting for a request closes; the busy one answers, then closes.
        assert!(waiting.until_eof().await.is_empty());
        assert_eq!(busy.recv_correlation_id().await, 2);
        assert!(busy.until_eof().await.is_empty());
        server.task.await.expect("serve returns");
        assert!(TcpStream::connect(server.addr).await.is_err());
    })
    .await;
}

#[tokio::test]
async fn network_per_ip_limit_closes_the_extra_connection_at_once_and_counts_it() {
    bounded(async {
        let mut config = config();
        config.limits.max_connections_per_ip = 1;
        config.limits.max_connections_per_ip_overrides =
            [("127.0.0.2".parse().expect("ip"), 2)].into();
        let server = start(Toy::default(), config).await;
        let mut a1 = Client::connect_from(&server, "127.0.0.1").await;
        a1.send(&request(1, "c")).await;
        assert_eq!(a1.recv_correlation_id().await, 1);
        // The second from 127.0.0.1 is closed without an answer...
        let mut a2 = Client::connect_from(&server, "127.0.0.1").await;
        a2.send(&request(2, "c")).await;
        assert!(a2.until_eof().await.is_empty());
        assert_eq!(server.sockets.quotas().rejected(), 1);
        // ...while 127.0.0.2 has two by its override, and not three.
        let mut b1 = Client::connect_from(&server, "127.0.0.2").await;
        let mut b2 = Client::connect_from(&server, "127.0.0.2").await;
        for (i, b) in [&mut b1, &mut b2].into_iter().enumerate() {
            b.send(&request(10 + i as i32, "c")).await;
            assert_eq!(b.recv_correlation_id().await, 10 + i as i32);
        }
        let mut b3 = Client::connect_from(&server, "127.0.0.2").await;
        assert!(b3.until_eof().await.is_empty());
        assert_eq!(server.sockets.quotas().rejected(), 2);
        // The first connection still works, and closing it makes room for its address.
        a1.send(&request(3, "c")).await;
        assert_eq!(a1.recv_correlation_id().await, 3);
        drop(a1);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while server
            .sockets
            .quotas()
            .count("127.0.0.1".parse().expect("ip"))
            > 0
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "count not given back"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut a4 = Client::connect_from(&server, "127.0.0.1").await;
        a4.send(&request(4, "c")).await;
        assert_eq!(a4.recv_correlation_id().await, 4);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_a_request_whose_decoded_cost_takes_the_pool_waits_for_room_and_one_that_never_fits_is_refused(
) {
    bounded(async {
        let slow = request(1, "sleep:400");
        let mut config = config();
        // Room for exactly what decoding the slow request may cost (`DECODE_AMPLIFICATION` times
        // its bytes): it takes the whole decode pool.
        config.queued_max_request_bytes =
            (slow.len() - 4) * super::memory_pool::DECODE_AMPLIFICATION;
        let server = start(Toy::default(), config).await;
        let mut a = Client::connect(&server).await;
        a.send(&slow).await;
        while server.handler.requests.load(Ordering::SeqCst) < 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(server.sockets.decode_pool().available(), 0);
        assert_eq!(
            server.sockets.pool().available(),
            server.sockets.pool().capacity() - (slow.len() - 4)
        );
        // B's frame (smaller than A's) does not fit while A's is being handled: B waits, it is
        // not refused.
        let mut b = Client::connect(&server).await;
        b.send(&request(2, "c")).await;
        b.expect_silence(Duration::from_millis(200)).await;
        assert_eq!(server.handler.requests.load(Ordering::SeqCst), 1);
        assert_eq!(a.recv_correlation_id().await, 1);
        assert_eq!(b.recv_correlation_id().await, 2);
        // A request whose decoded cost is larger than the whole pool is refused: its
        // connection is closed, the pools are given back, and the next client is served.
        let big = request(3, &"x".repeat(200));
        b.send(&big).await;
        assert!(b.until_eof().await.is_empty(), "closed without an answer");
        let mut c = Client::connect(&server).await;
        c.send(&request(4, "c")).await;
        assert_eq!(c.recv_correlation_id().await, 4);
        tokio::time::sleep(Duration::from_millis(50)).await;
        for pool in [server.sockets.pool(), server.sockets.decode_pool()] {
            assert_eq!(pool.available(), pool.capacity());
        }
    })
    .await;
}

fn kafka_config(extra: &[(&str, &str)]) -> Result<crate::config::KafkaConfig, String> {
    let mut p = crate::config::single_node_props();
    for (k, v) in extra {
        p.insert(k.to_string(), v.to_string());
    }
    crate::config::KafkaConfig::from_props(p).map_err(|e| e.to_string())
}

#[test]
fn network_config_reads_kafkas_keys_and_bounds_the_pool_by_default() {
    let c = kafka_config(&[]).expect("valid");
    let n = NetworkConfig::from_kafka_config(&c).expect("network config");
    assert_eq!(n, NetworkConfig::default());
    assert_eq!(n.queued_max_request_bytes, DEFAULT_QUEUED_MAX_REQUEST_BYTES);

    let c = kafka_config(&[
        ("max.connections", "100"),
        ("max.connections.per.ip", "3"),
        (
            "max.connections.per.ip.overrides",
            "127.0.0.2:5, localhost:7",
        ),
        ("listener.name.plaintext.max.connections", "10"),
        ("queued.max.request.bytes", "1000"),
        ("socket.request.max.bytes", "500"),
        ("connections.max.idle.ms", "1234"),
    ])
    .expect("valid");
    assert!(
        !c.warnings().iter().any(|w| w.contains("max.connections")),
        "the listener-prefixed key is known: {:?}",
        c.warnings()
    );
    let n = NetworkConfig::from_kafka_config(&c).expect("network config");
    assert_eq!(n.max_request_bytes, 500);
    assert_eq!(n.idle_timeout, Duration::from_millis(1234));
    assert_eq!(n.queued_max_request_bytes, 1000);
    assert_eq!(n.limits.max_connections, 100);
    assert_eq!(n.limits.max_connections_per_ip, 3);
    assert_eq!(
        n.limits.max_connections_per_listener,
        [("PLAINTEXT".to_owned(), 10)].into()
    );
    let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("ip");
    assert_eq!(
        n.limits
            .max_connections_per_ip_overrides
            .get(&ip("127.0.0.2")),
        Some(&5)
    );
    assert_eq!(
        n.limits
            .max_connections_per_ip_overrides
            .get(&ip("127.0.0.1")),
        Some(&7)
    );
    // One broker listener: nothing to protect.
    assert_eq!(n.limits.protected_listener, None);

    // Kafka's -1 ("unbounded") is our bound.
    let c = kafka_config(&[("queued.max.request.bytes", "-1")]).expect("valid");
    let n = NetworkConfig::from_kafka_config(&c).expect("network config");
    assert_eq!(n.queued_max_request_bytes, DEFAULT_QUEUED_MAX_REQUEST_BYTES);

    // Malformed values stop the start with the key named.
    let e =
        kafka_config(&[("max.connections.per.ip.overrides", "127.0.0.1")]).expect_err("no count");
    assert!(e.contains("max.connections.per.ip.overrides"), "{e}");
    let e = kafka_config(&[("listener.name.plaintext.max.connections", "0")])
        .expect_err("not positive");
    assert!(e.contains("listener.name.plaintext.max.connections"), "{e}");
    let c = kafka_config(&[("max.connections.per.ip.overrides", "no-such-host.invalid:3")])
        .expect("the format is valid");
    assert!(matches!(
        NetworkConfig::from_kafka_config(&c),
        Err(connection_quotas::OverridesError::Resolve { .. })
    ));
}
