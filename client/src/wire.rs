//! One request and its response on a stream: the size-prefixed frames Kafka speaks, read with a
//! buffer that grows only as bytes arrive (a size prefix alone claims no memory), and
//! [`exchange`], the request/response helper every client in the workspace uses — the tools'
//! connections, the broker's controller channel and replica fetchers, the controller's Raft RPCs.
//!
//! Not here: which version to send (see [`crate::connection`]), connecting (see
//! `rafka_security::transport::connect`), retries (see [`crate::client`]).

use bytes::{Bytes, BytesMut};
use rafka_protocol::messages::{RequestHeader, RequestKind, ResponseKind};
use rafka_protocol::{RequestFrame, ResponseFrame};
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
    while buf.len() < len {
        let want = (len - buf.len()).min(READ_STEP_BYTES);
        buf.reserve(want);
        let n = within(idle, (&mut *stream).take(want as u64).read_buf(&mut buf)).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(Some(buf.freeze()))
}

/// Sends `body` at `version` with `correlation_id`, then reads and decodes its response (at most
/// `max_response` bytes) and checks it answers this request. The caller bounds the time; a
/// cancelled or failed exchange leaves the stream mid-frame, so it must not be reused.
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
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
    let resp = read_frame(stream, max_response)
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
}
