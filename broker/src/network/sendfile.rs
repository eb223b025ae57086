//! The two Linux system calls of the zero-copy write path: `sendfile(2)` from a log segment to a
//! socket, and `sendmsg(2)` with `MSG_MORE` for the response bytes that come just before record
//! data, so that they leave in the same segment as the data rather than alone (TCP_NODELAY is
//! on).
//!
//! Why not `TCP_CORK` around the whole response, as this path once did: on loopback a corked
//! 1 MiB fetch cost the broker about 1.4x the CPU per byte of an uncorked one and about a quarter
//! of its consume rate (`cargo bench --bench e2e -- 'consume/'`, six alternated pairs), and the
//! bench's bare `sendfile` reference corked the same way ran at half its rate. `MSG_MORE` holds
//! only the bytes of the call it is given, until the next call sends data. (Kafka itself does
//! neither: its header and each partition's `transferTo` leave as they are written.)
//!
//! Both act on a non-blocking socket owned by a tokio `TcpStream`; waiting for writability is the
//! caller's (`TcpStream::writable` + `try_io`).

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, RawFd};

use tokio::net::TcpStream;

/// One `sendfile(2)` of up to `count` bytes of `file` from `*offset` into `socket`; advances
/// `*offset` by the bytes sent and returns their number (0 at the end of the file). The file's
/// own position is untouched, so a descriptor shared by many readers is safe to use.
pub(super) fn sendfile(
    socket: &TcpStream,
    file: RawFd,
    offset: &mut i64,
    count: usize,
) -> io::Result<usize> {
    let mut off: libc::off_t = *offset;
    // SAFETY: both descriptors are open for the duration of the call (the socket is borrowed,
    // the file is held by the caller's `FileSlice`), and `off` is a valid, exclusively borrowed
    // off_t the kernel updates.
    let n = unsafe { libc::sendfile(socket.as_raw_fd(), file, &mut off, count) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    *offset = off;
    Ok(n as usize)
}

/// One `sendmsg(2)` of `bufs` with `MSG_MORE`: the kernel keeps what it cannot fill a segment
/// with until the next send on the socket. Returns the bytes taken (possibly fewer than asked).
pub(super) fn send_more(socket: &TcpStream, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: a zeroed msghdr is valid (no name, no control data); its iovec array is `bufs`,
    // which IoSlice guarantees to be ABI-compatible with `struct iovec` on Unix, borrowed for
    // the call and only read by the kernel.
    let n = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = bufs.len() as _;
        libc::sendmsg(
            socket.as_raw_fd(),
            &msg,
            libc::MSG_MORE | libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Bytes written to sockets by `sendfile(2)` since the process started, over all connections.
/// Record data sent this way never passed through user space; tests (and the zero-copy check)
/// compare it with the slices they expect to go out.
pub static SENDFILE_BYTES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
