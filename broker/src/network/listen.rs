//! Opening a listening socket as Kafka's acceptor does: `socket.receive.buffer.bytes` and
//! `socket.send.buffer.bytes` set on the listener, `socket.listen.backlog.size` as its accept
//! queue. Linux gives each accepted connection the listener's buffer sizes (the child socket is
//! a copy of the listener's, sizes and locks included), so nothing is set per connection, and
//! the receive buffer is in place before the handshake chooses the window scale.

use crate::config::KafkaConfig;
use std::io;
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpSocket};

/// The accept queue when `socket.listen.backlog.size` is not set. Kafka's default is 50; a
/// rafka broker binds its client listeners at start but accepts only once it is ready (caught
/// up with the metadata log and unfenced), and every client that connects meanwhile waits in
/// this queue: with 50, the 51st client of a restarting broker would have its SYN dropped and
/// retry a second later. The kernel caps it at `net.core.somaxconn` (4096 by default).
pub const DEFAULT_LISTEN_BACKLOG: u32 = 1024;

/// A listener's socket options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenOptions {
    /// SO_SNDBUF of every accepted connection; `None`: the OS's (autotuned) default.
    pub send_buffer: Option<u32>,
    /// SO_RCVBUF of every accepted connection; `None`: the OS's (autotuned) default.
    pub receive_buffer: Option<u32>,
    /// The accept queue's length.
    pub backlog: u32,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            send_buffer: None,
            receive_buffer: None,
            backlog: DEFAULT_LISTEN_BACKLOG,
        }
    }
}

impl ListenOptions {
    /// From `socket.send.buffer.bytes`, `socket.receive.buffer.bytes` (a positive size, or -1
    /// for the OS's default, as in Kafka) and `socket.listen.backlog.size`.
    pub fn from_kafka_config(c: &KafkaConfig) -> ListenOptions {
        let size = |v: i32| u32::try_from(v).ok().filter(|&v| v > 0);
        ListenOptions {
            send_buffer: size(c.socket_send_buffer_bytes()),
            receive_buffer: size(c.socket_receive_buffer_bytes()),
            backlog: size(c.socket_listen_backlog_size()).unwrap_or(DEFAULT_LISTEN_BACKLOG),
        }
    }
}

/// Binds `addr` (a host and port; a name may resolve to several addresses, tried in order
/// until one binds) and listens with `options`.
pub async fn listen(addr: &str, options: ListenOptions) -> io::Result<TcpListener> {
    let mut last = None;
    for resolved in tokio::net::lookup_host(addr).await? {
        match listen_on(resolved, options) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{addr} resolves to no address"),
        )
    }))
}

fn listen_on(addr: SocketAddr, options: ListenOptions) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // As `TcpListener::bind`: a restarted broker rebinds its port while the previous process's
    // connections linger in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    if let Some(n) = options.send_buffer {
        socket.set_send_buffer_size(n)?;
    }
    if let Some(n) = options.receive_buffer {
        socket.set_recv_buffer_size(n)?;
    }
    socket.bind(addr)?;
    socket.listen(options.backlog)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn int_option(fd: i32, level: i32, name: i32) -> i32 {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `v`.
        let r = unsafe {
            libc::getsockopt(
                fd,
                level,
                name,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(r, 0, "getsockopt: {}", io::Error::last_os_error());
        v
    }

    /// The accept queue's length: a listener's TCP_INFO carries it in `tcpi_sacked`.
    fn backlog(listener: &TcpListener) -> u32 {
        // SAFETY: a zeroed tcp_info is valid; getsockopt writes at most `len` bytes into it.
        unsafe {
            let mut info: libc::tcp_info = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
            let r = libc::getsockopt(
                listener.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&mut info as *mut libc::tcp_info).cast(),
                &mut len,
            );
            assert_eq!(r, 0, "TCP_INFO: {}", io::Error::last_os_error());
            info.tcpi_sacked
        }
    }

    #[tokio::test]
    async fn accepted_connections_get_the_listeners_buffer_sizes_and_the_queue_its_backlog() {
        let options = ListenOptions {
            send_buffer: Some(96 * 1024),
            receive_buffer: Some(80 * 1024),
            backlog: 7,
        };
        let listener = listen("127.0.0.1:0", options).await.expect("listen");
        assert_eq!(backlog(&listener), 7);
        let addr = listener.local_addr().expect("address");
        let _client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (accepted, _) = listener.accept().await.expect("accept");
        let fd = accepted.as_raw_fd();
        // Linux doubles what it is asked for (room for its own bookkeeping).
        assert_eq!(
            int_option(fd, libc::SOL_SOCKET, libc::SO_SNDBUF),
            2 * 96 * 1024
        );
        assert_eq!(
            int_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUF),
            2 * 80 * 1024
        );

        // Unset: the sizes are the OS's, whatever they are, and not the ones asked above.
        let listener = listen("127.0.0.1:0", ListenOptions::default())
            .await
            .expect("listen");
        assert_eq!(backlog(&listener), DEFAULT_LISTEN_BACKLOG.min(somaxconn()));
        let _client = tokio::net::TcpStream::connect(listener.local_addr().expect("address"))
            .await
            .expect("connect");
        let (accepted, _) = listener.accept().await.expect("accept");
        let fd = accepted.as_raw_fd();
        assert_ne!(
            int_option(fd, libc::SOL_SOCKET, libc::SO_SNDBUF),
            2 * 96 * 1024
        );
        assert_ne!(
            int_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUF),
            2 * 80 * 1024
        );
    }

    fn somaxconn() -> u32 {
        std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(u32::MAX)
    }

    fn kafka_config(extra: &[(&str, &str)]) -> KafkaConfig {
        let mut p = crate::config::single_node_props();
        for (k, v) in extra {
            p.insert(k.to_string(), v.to_string());
        }
        KafkaConfig::from_props(p).expect("a valid configuration")
    }

    #[test]
    fn options_come_from_kafkas_keys_and_minus_one_is_the_os_default() {
        let c = kafka_config(&[
            ("socket.send.buffer.bytes", "131072"),
            ("socket.receive.buffer.bytes", "-1"),
            ("socket.listen.backlog.size", "64"),
        ]);
        assert_eq!(
            ListenOptions::from_kafka_config(&c),
            ListenOptions {
                send_buffer: Some(131_072),
                receive_buffer: None,
                backlog: 64,
            }
        );
        let c = kafka_config(&[]);
        assert_eq!(
            ListenOptions::from_kafka_config(&c),
            ListenOptions::default()
        );
    }
}
