//! `TcpProxy`: a TCP proxy in front of one broker, for tests that break the network between a
//! client and the broker on purpose. It reads Kafka frames in both directions, so it can drop
//! a chosen response (the request was forwarded and processed; only the answer is lost), and it
//! can cut every open connection at once. A broker behind it must advertise the proxy's port,
//! or clients go around it.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Frames larger than this close the connection (no unbounded allocation in a test either).
const MAX_FRAME: usize = 64 << 20;
const PRODUCE: i16 = 0;

#[derive(Default)]
struct Shared {
    target: Mutex<Option<SocketAddr>>,
    /// Produce responses still to drop.
    drop_produce: AtomicUsize,
    dropped: AtomicUsize,
    cuts: AtomicUsize,
    streams: Mutex<Vec<TcpStream>>,
    stop: AtomicBool,
    /// Requests from clients whose id starts with this are dropped and their connection
    /// closed (e.g. `replica-fetcher-2`: one follower's replication, and nothing else).
    blocked_client: Mutex<Option<String>>,
}

pub struct TcpProxy {
    port: u16,
    shared: Arc<Shared>,
}

impl TcpProxy {
    /// Listens on a free port of 127.0.0.1; connections wait for [`TcpProxy::set_target`].
    pub fn start() -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = client else { continue };
                let s = s.clone();
                std::thread::spawn(move || connect(&s, client));
            }
        });
        TcpProxy { port, shared }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn set_target(&self, target: SocketAddr) {
        *self.shared.target.lock().unwrap() = Some(target);
    }

    /// Drops the next `n` Produce responses (after their requests reached the broker), each
    /// time closing that connection too, as a network failure would: a client waits for a
    /// response on an open connection until its request times out, which librdkafka's idempotent
    /// producer stretches to `message.timeout.ms`.
    pub fn drop_produce_responses(&self, n: usize) {
        self.shared.drop_produce.store(n, Ordering::Relaxed);
    }

    /// Cuts off (`Some(prefix)`) or lets through again (`None`) the clients whose id starts
    /// with `prefix`.
    pub fn block_client(&self, prefix: Option<&str>) {
        *self.shared.blocked_client.lock().unwrap() = prefix.map(str::to_owned);
    }

    /// How many Produce responses were dropped.
    pub fn dropped(&self) -> usize {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Closes every open connection, both ways; returns how many.
    pub fn cut_all(&self) -> usize {
        let streams = std::mem::take(&mut *self.shared.streams.lock().unwrap());
        for s in &streams {
            let _ = s.shutdown(Shutdown::Both);
        }
        self.shared.cuts.fetch_add(1, Ordering::Relaxed);
        streams.len() / 2
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.cut_all();
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn connect(s: &Arc<Shared>, client: TcpStream) {
    let mut target = None;
    for _ in 0..200 {
        target = *s.target.lock().unwrap();
        if target.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let Some(target) = target else { return };
    let Ok(broker) = TcpStream::connect_timeout(&target, Duration::from_secs(5)) else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = broker.set_nodelay(true);
    {
        let mut streams = s.streams.lock().unwrap();
        streams.push(client.try_clone().expect("clone"));
        streams.push(broker.try_clone().expect("clone"));
    }
    let produce_ids = Arc::new(Mutex::new(HashSet::new()));
    let (c_in, b_out) = (
        client.try_clone().expect("clone"),
        broker.try_clone().expect("clone"),
    );
    let ids = produce_ids.clone();
    let blocked = s.clone();
    let up = std::thread::spawn(move || {
        pump(c_in, b_out, |frame| {
            if let Some(prefix) = blocked.blocked_client.lock().unwrap().as_deref() {
                if client_id(frame).is_some_and(|c| c.starts_with(prefix)) {
                    return Forward::Close;
                }
            }
            // Request header: api key, api version, correlation id.
            if frame.len() >= 8 && i16::from_be_bytes([frame[0], frame[1]]) == PRODUCE {
                let id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
                ids.lock().unwrap().insert(id);
            }
            Forward::Yes
        })
    });
    let shared = s.clone();
    pump(broker, client, |frame| {
        if frame.len() < 4 {
            return Forward::Yes;
        }
        let id = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        if !produce_ids.lock().unwrap().remove(&id) {
            return Forward::Yes;
        }
        let drop = shared
            .drop_produce
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if drop {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
        if drop {
            Forward::Close
        } else {
            Forward::Yes
        }
    });
    let _ = up.join();
}

/// The client id of a request frame (header v1+: api key, version, correlation id, then an
/// int16-length string).
fn client_id(frame: &[u8]) -> Option<&str> {
    let len = i16::from_be_bytes([*frame.get(8)?, *frame.get(9)?]);
    let len = usize::try_from(len).ok()?;
    std::str::from_utf8(frame.get(10..10 + len)?).ok()
}

/// What to do with a frame.
enum Forward {
    Yes,
    /// Drop it and close the connection.
    Close,
}

/// Copies frames from `from` to `to` as `forward` says; on any error or end, closes both.
fn pump(mut from: TcpStream, mut to: TcpStream, mut forward: impl FnMut(&[u8]) -> Forward) {
    let mut len = [0u8; 4];
    loop {
        if from.read_exact(&mut len).is_err() {
            break;
        }
        let n = i32::from_be_bytes(len);
        if n < 0 || n as usize > MAX_FRAME {
            break;
        }
        let mut frame = vec![0u8; n as usize];
        if from.read_exact(&mut frame).is_err() {
            break;
        }
        match forward(&frame) {
            Forward::Yes => {
                if to.write_all(&len).is_err() || to.write_all(&frame).is_err() {
                    break;
                }
            }
            Forward::Close => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
