//! The two Linux system calls of the zero-copy write path: `sendfile(2)` from a log segment to a
//! socket, and `TCP_CORK` to send a response's header bytes and record data in full segments.
//!
//! Both act on a non-blocking socket owned by a tokio `TcpStream`; waiting for writability is the
//! caller's (`TcpStream::writable` + `try_io`).

use std::io;
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

/// Sets or clears `TCP_CORK`. Clearing it sends what is held at once.
pub(super) fn set_cork(socket: &TcpStream, on: bool) -> io::Result<()> {
    let value: libc::c_int = on.into();
    // SAFETY: the socket is open while borrowed; `value` is a c_int that lives across the call,
    // and its size is passed with it.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CORK,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
