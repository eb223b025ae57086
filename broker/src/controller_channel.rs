//! `ControllerChannel`: how the broker reaches the active controller — in-process when this
//! node's own controller is the Raft leader (the same `QuorumController` path the listener
//! uses), otherwise over the controller listener of the leader named by the quorum, in Kafka
//! framing. Requests are retried while there is no leader or it moved, within a deadline.
//!
//! Heartbeats keep one connection open to the active controller ([`ControllerChannel::send_heartbeat`]):
//! when this process dies the kernel closes it, and the controller fences the broker after a
//! short grace instead of a whole session timeout (see the controller's `heartbeats`). Each
//! heartbeat attempt is bounded by `heartbeat_timeout`, well below the session, so a controller
//! that stops answering without closing (paused, cut off) costs one attempt, not the session.

use rafka_controller::node::ControllerNode;
use rafka_controller::raft_types::NodeId;
use rafka_protocol::messages::{RequestKind, ResponseKind};
use rafka_security::transport::{connect, ClientSecurity};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// How long a request may wait for a controller before giving up.
const DEADLINE: Duration = Duration::from_secs(10);

pub struct ControllerChannel {
    node: Arc<ControllerNode>,
    voters: BTreeMap<NodeId, String>,
    client_id: String,
    /// `controller.quorum.request.timeout.ms`: one attempt's bound. It must stay below the
    /// broker session timeout, or a controller that stops answering without closing (paused,
    /// cut off) holds a heartbeat until this broker is fenced; after it the next attempt goes
    /// to whichever voter leads by then.
    request_timeout: Duration,
    /// How to connect to the controller listener (its security protocol).
    security: Arc<ClientSecurity>,
    /// One heartbeat attempt's bound (see the module doc).
    heartbeat_timeout: Duration,
    /// The heartbeat connection: the controller address it goes to and the stream. Only the
    /// lifecycle manager's heartbeat loop takes it (one request at a time), so it is never
    /// contended; an async mutex because the exchange is awaited under it.
    heartbeat_connection: Mutex<Option<(String, rafka_security::transport::Stream)>>,
}

impl ControllerChannel {
    pub fn new(
        node: Arc<ControllerNode>,
        voters: BTreeMap<NodeId, String>,
        broker_id: i32,
        request_timeout: Duration,
        security: Arc<ClientSecurity>,
    ) -> ControllerChannel {
        ControllerChannel {
            node,
            voters,
            client_id: format!("broker-{broker_id}"),
            request_timeout,
            security,
            heartbeat_timeout: request_timeout,
            heartbeat_connection: Mutex::new(None),
        }
    }

    /// Bounds each heartbeat attempt by `timeout` (at most the request timeout).
    pub fn with_heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.heartbeat_timeout = timeout.min(self.request_timeout);
        self
    }

    /// The active controller's id, if the quorum has one.
    pub fn active_controller(&self) -> Option<i32> {
        self.node
            .quorum_info()
            .leader
            .and_then(|l| i32::try_from(l).ok())
    }

    /// Whether this node is a voter of the metadata quorum (a controller).
    pub fn is_voter(&self) -> bool {
        self.voters.contains_key(&self.node.node_id())
    }

    pub fn node(&self) -> &Arc<ControllerNode> {
        &self.node
    }

    /// Sends a controller request and returns the controller's answer; `None` if no controller
    /// answered within the deadline.
    pub async fn send(&self, version: i16, body: RequestKind) -> Option<ResponseKind> {
        self.send_via(version, body, false).await
    }

    /// Sends a BrokerHeartbeat over the heartbeat connection (see the module doc).
    pub async fn send_heartbeat(&self, version: i16, body: RequestKind) -> Option<ResponseKind> {
        self.send_via(version, body, true).await
    }

    async fn send_via(
        &self,
        version: i16,
        body: RequestKind,
        heartbeat: bool,
    ) -> Option<ResponseKind> {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let mut attempt = 0usize;
        while tokio::time::Instant::now() < deadline {
            attempt += 1;
            match self.node.quorum_info().leader {
                Some(l) if l == self.node.node_id() => {
                    if let Some(r) = self
                        .node
                        .quorum_controller()
                        .handle_request(version, body.clone())
                        .await
                    {
                        return Some(r);
                    }
                }
                Some(l) => {
                    if let Some(addr) = self.voters.get(&l) {
                        let sent = if heartbeat {
                            self.forward_heartbeat(addr, version, body.clone()).await
                        } else {
                            self.forward(addr, version, body.clone()).await
                        };
                        match sent {
                            Ok(r) => return Some(r),
                            Err(e) => {
                                tracing::debug!(node_id = l, error = %e, "controller unreachable")
                            }
                        }
                    }
                }
                None if !self.is_voter() => {
                    // A broker that is not a voter learns the leader only once the log reaches
                    // it, which needs its registration first: ask the voters in turn (one that
                    // is not the leader answers NOT_CONTROLLER, and the caller retries).
                    let addr = self.voters.values().nth(attempt % self.voters.len().max(1));
                    if let Some(addr) = addr {
                        match self.forward(addr, version, body.clone()).await {
                            Ok(r) => return Some(r),
                            Err(e) => tracing::debug!(%addr, error = %e, "voter unreachable"),
                        }
                    }
                }
                None => {}
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// One exchange over the heartbeat connection to `addr`, opened (or moved there) first if
    /// needed; any failure drops it, and the next attempt opens a new one.
    async fn forward_heartbeat(
        &self,
        addr: &str,
        version: i16,
        body: RequestKind,
    ) -> Result<ResponseKind, String> {
        let mut held = self.heartbeat_connection.lock().await;
        let io = async {
            if held.as_ref().is_none_or(|(a, _)| a != addr) {
                let s = connect(addr, &self.security)
                    .await
                    .map_err(|e| e.to_string())?;
                *held = Some((addr.to_owned(), s));
            }
            let (_, s) = held
                .as_mut()
                .expect("invariant: the connection was opened above");
            rafka_client::wire::exchange(
                s,
                version,
                1,
                &self.client_id,
                body,
                rafka_controller::network::MAX_FRAME_BYTES,
            )
            .await
            .map_err(|e| e.to_string())
        };
        let r = match tokio::time::timeout(self.heartbeat_timeout, io).await {
            Ok(r) => r,
            Err(_) => Err("timed out".to_owned()),
        };
        if r.is_err() {
            *held = None;
        }
        r
    }

    async fn forward(
        &self,
        addr: &str,
        version: i16,
        body: RequestKind,
    ) -> Result<ResponseKind, String> {
        let io = async {
            let mut s = connect(addr, &self.security)
                .await
                .map_err(|e| e.to_string())?;
            rafka_client::wire::exchange(
                &mut s,
                version,
                1,
                &self.client_id,
                body,
                rafka_controller::network::MAX_FRAME_BYTES,
            )
            .await
            .map_err(|e| e.to_string())
        };
        let resp = tokio::time::timeout(self.request_timeout, io)
            .await
            .map_err(|_| "timed out".to_owned())??;
        Ok(resp)
    }
}
