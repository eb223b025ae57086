//! One request and its response on a stream: the size-prefixed frames Kafka speaks, read with a
//! buffer that grows only as bytes arrive (a size prefix alone claims at most 64 KiB; a response
//! to our own request, at most 1 MiB — see `read_frame_inner`), and
//! [`exchange`], the request/response helper every client in the workspace uses — the tools'
//! connections, the broker's controller channel and replica fetchers, the controller's Raft RPCs.
//!
//! Not here: which version to send (see [`crate::connection`]), connecting (see
//! `rafka_security::transport::connect`), retries (see [`crate::client`]).

use bytes::{Bytes, BytesMut};
use rafka_protocol::messages::{RequestHeader, RequestKind, ResponseKind};
use rafka_protocol::{RequestFrame, ResponseFrame};
use rafka_security::transport::{ClientSecurity, ReceiveLowWater, Session, Stream};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How much buffer a frame may claim ahead of its bytes arriving.
const READ_STEP_BYTES: usize = 64 * 1024;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    // The causes are part of each message (not `source`s), so a chain printer repeats nothing.
    #[error("{0}")]
    Io(std::io::Error),
    #[error("the peer closed the connection")]
    Closed,
    #[error("cannot encode the request: {0}")]
    Encode(rafka_protocol::EncodeError),
    #[error("cannot decode the response: {0}")]
    Decode(rafka_protocol::DecodeError),
    #[error("correlation id {got} answers request {sent}")]
    Correlation { sent: i32, got: i32 },
    #[error("{0}")]
    FrameSize(FrameSizeError),
}

/// A size prefix outside `0..=max`: the frame is refused before any of it is buffered. Carried
/// inside the `io::Error` (kind `InvalidData`) [`read_frame`] returns, so that [`exchange`] can
/// report it as [`ExchangeError::FrameSize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("frame size {size} outside 0..={max}")]
pub struct FrameSizeError {
    pub size: i32,
    pub max: usize,
}

impl From<std::io::Error> for ExchangeError {
    fn from(e: std::io::Error) -> Self {
        match e.get_ref().and_then(|i| i.downcast_ref::<FrameSizeError>()) {
            Some(f) => ExchangeError::FrameSize(*f),
            None => ExchangeError::Io(e),
        }
    }
}

impl From<rafka_protocol::EncodeError> for ExchangeError {
    fn from(e: rafka_protocol::EncodeError) -> Self {
        ExchangeError::Encode(e)
    }
}

impl From<rafka_protocol::DecodeError> for ExchangeError {
    fn from(e: rafka_protocol::DecodeError) -> Self {
        ExchangeError::Decode(e)
    }
}

/// Reads one size-prefixed frame; `None` at a clean end of stream.
pub async fn read_frame<S: AsyncRead + Unpin>(
    stream: &mut S,
    max: usize,
) -> std::io::Result<Option<Bytes>> {
    read_frame_within(stream, max, None).await
}

/// [`read_frame`], failing with `TimedOut` when the peer sends nothing for `idle` (each read
/// that brings bytes starts the wait afresh, as `connections.max.idle.ms` counts silence). The
/// buffer grows by at most [`READ_STEP_BYTES`] ahead of the bytes received.
pub async fn read_frame_within<S: AsyncRead + Unpin>(
    stream: &mut S,
    max: usize,
    idle: Option<Duration>,
) -> std::io::Result<Option<Bytes>> {
    read_frame_inner(stream, max, idle, |_, _| false).await
}

/// Responses at least this long are waited for with a receive low water (`SO_RCVLOWAT`).
const LOW_WATER_FROM: usize = 256 * 1024;
/// The most bytes the kernel gathers before it wakes the reader of a long response — and so the
/// most buffer claimed ahead of bytes arriving when it does.
const LOW_WATER_MAX: usize = 1024 * 1024;

/// Reads one frame. `low_water(stream, n)` asks the stream's socket to wake the reader only once
/// `n` bytes wait (see `rafka_security::transport::ReceiveLowWater`); false where it cannot.
///
/// A reader woken per arriving segment pays a sleep and a wake-up for every 64 KiB or so — a
/// follower reading a 1 MiB fetch response slept ten times (`perf`, the replication bench) —
/// where one wake-up per response would do. So a long frame is waited for with a low water of
/// its remaining length (at most [`LOW_WATER_MAX`]) and read in steps of that size. The low
/// water never exceeds the bytes of this frame still to come: the peer sends nothing more until
/// it is answered, so a higher one could wait for ever. It is back at 1 when the frame is read;
/// a frame that fails leaves it set, but a failed exchange's stream is never reused. (Linux
/// reports a socket readable at once when a lowered low water is already met, and wakes the
/// reader anyway when its receive buffer or window cannot take more; a kernel cap on the value,
/// half a fixed `SO_RCVBUF`, only lowers it.)
async fn read_frame_inner<S: AsyncRead + Unpin>(
    stream: &mut S,
    max: usize,
    idle: Option<Duration>,
    low_water: impl Fn(&S, usize) -> bool,
) -> std::io::Result<Option<Bytes>> {
    async fn within<T>(
        idle: Option<Duration>,
        f: impl std::future::Future<Output = std::io::Result<T>>,
    ) -> std::io::Result<T> {
        match idle {
            None => f.await,
            Some(d) => tokio::time::timeout(d, f).await.unwrap_or_else(|_| {
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("idle for {} ms", d.as_millis()),
                ))
            }),
        }
    }
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = within(idle, stream.read(&mut len[got..])).await?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        got += n;
    }
    let len = i32::from_be_bytes(len);
    if len < 0 || len as usize > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            FrameSizeError { size: len, max },
        ));
    }
    let len = len as usize;
    let mut buf = BytesMut::with_capacity(len.min(READ_STEP_BYTES));
    // The low water set on the socket (0: none).
    let mut low = 0;
    while buf.len() < len {
        let remaining = len - buf.len();
        if low > remaining {
            // Lower it before any wait; a socket that refuses could wait for ever: give up.
            let want = if remaining >= LOW_WATER_FROM {
                remaining.min(LOW_WATER_MAX)
            } else {
                1
            };
            if !low_water(stream, want) {
                return Err(low_water_refused());
            }
            low = if want > 1 { want } else { 0 };
        } else if low == 0 && buf.is_empty() && remaining >= LOW_WATER_FROM {
            let want = remaining.min(LOW_WATER_MAX);
            if low_water(stream, want) {
                low = want;
            }
        }
        let want = remaining.min(READ_STEP_BYTES.max(low));
        buf.reserve(want);
        let n = within(idle, (&mut *stream).take(want as u64).read_buf(&mut buf)).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    if low > 0 && !low_water(stream, 1) {
        return Err(low_water_refused());
    }
    Ok(Some(buf.freeze()))
}

fn low_water_refused() -> std::io::Error {
    std::io::Error::other("the socket refused to lower its receive low water")
}

/// Sends `body` at `version` with `correlation_id`, then reads and decodes its response (at most
/// `max_response` bytes) and checks it answers this request. The caller bounds the time; a
/// cancelled or failed exchange leaves the stream mid-frame, so it must not be reused.
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin + ReceiveLowWater>(
    stream: &mut S,
    version: i16,
    correlation_id: i32,
    client_id: &str,
    body: RequestKind,
    max_response: usize,
) -> Result<ResponseKind, ExchangeError> {
    let api = body.api_key();
    let frame = RequestFrame {
        header: RequestHeader {
            request_api_key: api.key(),
            request_api_version: version,
            correlation_id,
            client_id: Some(client_id.to_owned()),
            ..Default::default()
        },
        body,
    };
    let bytes = frame.encode()?;
    stream.write_all(&bytes).await?;
    // TLS may hold the last records until flushed.
    stream.flush().await?;
    let resp = read_frame_inner(stream, max_response, None, |s, n| {
        s.set_receive_low_water(n)
    })
    .await?
    .ok_or(ExchangeError::Closed)?;
    let frame = ResponseFrame::decode(api, version, &resp)?;
    if frame.correlation_id != correlation_id {
        return Err(ExchangeError::Correlation {
            sent: correlation_id,
            got: frame.correlation_id,
        });
    }
    Ok(frame.body)
}

/// [`exchange`] on a connection whose SASL `session` the peer may have limited (KIP-368): the
/// session is renewed with `security`'s credentials first when it is due. Every client that
/// keeps a connection (the inter-node client, the controller's Raft client, the tools' client)
/// sends its requests through here.
#[allow(clippy::too_many_arguments)]
pub async fn exchange_in_session(
    stream: &mut Stream,
    session: &mut Session,
    security: &ClientSecurity,
    version: i16,
    correlation_id: i32,
    client_id: &str,
    body: RequestKind,
    max_response: usize,
) -> Result<ResponseKind, ExchangeError> {
    session
        .keep(stream, security)
        .await
        .map_err(ExchangeError::Io)?;
    exchange(
        stream,
        version,
        correlation_id,
        client_id,
        body,
        max_response,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_size_prefix_alone_claims_nothing_and_a_bad_one_is_refused() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&(-1i32).to_be_bytes()).await.expect("write");
        let e = read_frame(&mut b, 100).await.expect_err("negative size");
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&1_000_000i32.to_be_bytes())
            .await
            .expect("write");
        let e = read_frame(&mut b, 100).await.expect_err("too large");
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[0, 0, 0, 5, 1, 2]).await.expect("write");
        drop(a);
        let e = read_frame(&mut b, 100).await.expect_err("truncated");
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn a_silent_peer_times_out() {
        let (_a, mut b) = tokio::io::duplex(64);
        let e = read_frame_within(&mut b, 100, Some(Duration::from_millis(20)))
            .await
            .expect_err("silent");
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    }

    /// The low water reading a long frame over a real socket: whole frames, the low water back
    /// at 1 after each (a short frame after a long one is not held), and never more than the
    /// bytes still to come (a tail that arrives late is read).
    #[tokio::test]
    async fn long_frames_wait_with_a_low_water_that_never_outlasts_the_frame() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (listener, addr) = loopback_listener().await;
        let long: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
        let sent = long.clone();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut frame = (sent.len() as i32).to_be_bytes().to_vec();
            frame.extend_from_slice(&sent);
            // The first part, a pause, the rest: the reader must not wait for more than comes.
            s.write_all(&frame[..300_000]).await.expect("write");
            tokio::time::sleep(Duration::from_millis(50)).await;
            s.write_all(&frame[300_000..]).await.expect("write");
            s.write_all(&[0, 0, 0, 3, 7, 8, 9]).await.expect("write");
            // Keep the connection open: the short frame must arrive without the peer closing.
            tokio::time::sleep(Duration::from_secs(10)).await;
        });
        let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let calls = AtomicUsize::new(0);
        let lowat = |s: &tokio::net::TcpStream, n: usize| {
            calls.fetch_add(1, Ordering::Relaxed);
            s.set_receive_low_water(n)
        };
        let got = read_within_5s(&mut c, &lowat)
            .await
            .expect("the long frame within 5 s")
            .expect("a frame");
        assert!(got[..] == long[..], "the long frame arrives whole");
        assert!(calls.load(Ordering::Relaxed) >= 2, "set, then back to 1");
        assert_eq!(low_water_of(&c), 1, "back at 1 after the frame");
        let short = read_within_5s(&mut c, &lowat)
            .await
            .expect("the short frame within 5 s: no low water left over")
            .expect("a frame");
        assert_eq!(&short[..], &[7, 8, 9]);
        server.abort();
    }

    /// A peer that announces a long frame and closes part-way: an end-of-stream error at once,
    /// not a reader left waiting for a low water the bytes will never reach.
    #[tokio::test]
    async fn a_long_frame_cut_short_is_an_error_not_a_wait() {
        let (listener, addr) = loopback_listener().await;
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            s.write_all(&(2_000_000i32).to_be_bytes())
                .await
                .expect("write");
            s.write_all(&[1u8; 300_000]).await.expect("write");
            // Closed with 1.7 MB of the frame never sent.
        });
        let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let lowat = |s: &tokio::net::TcpStream, n: usize| s.set_receive_low_water(n);
        let e = read_within_5s(&mut c, &lowat).await.expect_err("cut short");
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
        server.await.expect("server");
    }

    /// One frame over `c` with the socket's low water, failing with `TimedOut` after 5 s.
    /// A listener on a free loopback port, and its address.
    async fn loopback_listener() -> (tokio::net::TcpListener, std::net::SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        (listener, addr)
    }

    async fn read_within_5s(
        c: &mut tokio::net::TcpStream,
        lowat: impl Fn(&tokio::net::TcpStream, usize) -> bool,
    ) -> std::io::Result<Option<Bytes>> {
        tokio::time::timeout(
            Duration::from_secs(5),
            read_frame_inner(c, 4 << 20, None, lowat),
        )
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
    }

    fn low_water_of(s: &tokio::net::TcpStream) -> i32 {
        use std::os::fd::AsRawFd;
        let mut v: i32 = 0;
        let mut len = std::mem::size_of::<i32>() as u32;
        // SAFETY: a valid socket descriptor and an int-sized option buffer.
        let rc = unsafe {
            libc::getsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVLOWAT,
                (&mut v as *mut i32).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "getsockopt");
        v
    }
}
