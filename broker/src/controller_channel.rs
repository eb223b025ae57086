//! `ControllerChannel`: how the broker reaches the active controller — in-process when this
//! node's own controller is the Raft leader (the same `QuorumController` path the listener
//! uses), otherwise over the controller listener of the leader named by the quorum, in Kafka
//! framing. Requests are retried while there is no leader or it moved, within a deadline.
//!
//! Connections (see [`crate::inter_node_client`]): requests go over persistent connections kept
//! per controller and [`Purpose`] — AlterPartition on one, everything else (forwarded admin
//! requests, registration, producer id blocks) on another, as Kafka's `alter-partition` and
//! `forwarding` channels — so N requests cost one connection, and a slow CreateTopics does not
//! hold an ISR change.
//!
//! Heartbeats keep a connection of their own to the active controller
//! ([`ControllerChannel::send_heartbeat`]), apart from every other request so that none waits
//! behind a slow one: when this process dies the kernel closes it, and the controller fences the
//! broker after a short grace instead of a whole session timeout (see the controller's
//! `heartbeats`). It follows the active controller: when the leader moves it is closed (while
//! that node is not the leader, so the closure means nothing there) and one opened to the new
//! leader. Each heartbeat attempt is bounded by `heartbeat_timeout`, well below the session, so
//! a controller that stops answering without closing (paused, cut off) costs one attempt, not
//! the session — also in-process, where the answer may wait behind a long write in the
//! controller's event queue: the controller counts a heartbeat from its arrival, so the next
//! attempt, made while the first still waits, keeps the session.

use crate::inter_node_client::{InterNodeClient, InterNodeError, NodeConnection, Purpose};
use rafka_controller::node::ControllerNode;
use rafka_controller::raft_types::NodeId;
use rafka_protocol::messages::{RequestKind, ResponseKind};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// How long a request may wait for a controller before giving up.
const DEADLINE: Duration = Duration::from_secs(10);

pub struct ControllerChannel {
    node: Arc<ControllerNode>,
    voters: BTreeMap<NodeId, String>,
    /// `controller.quorum.request.timeout.ms`: one attempt's bound. It must stay below the
    /// broker session timeout, or a controller that stops answering without closing (paused,
    /// cut off) holds a heartbeat until this broker is fenced; after it the next attempt goes
    /// to whichever voter leads by then.
    request_timeout: Duration,
    /// The connections to the controller listener (with its security protocol).
    client: Arc<InterNodeClient>,
    /// One heartbeat attempt's bound (see the module doc).
    heartbeat_timeout: Duration,
    /// The heartbeat connection (see the module doc). Only the lifecycle manager's heartbeat
    /// loop takes it (one request at a time), so it is never contended; an async mutex because
    /// the exchange is awaited under it.
    heartbeat_connection: Mutex<Option<NodeConnection>>,
}

impl ControllerChannel {
    /// `client` connects to the controller listener (`broker-<id>` as client id).
    pub fn new(
        node: Arc<ControllerNode>,
        voters: BTreeMap<NodeId, String>,
        request_timeout: Duration,
        client: Arc<InterNodeClient>,
    ) -> ControllerChannel {
        ControllerChannel {
            node,
            voters,
            request_timeout,
            client,
            heartbeat_timeout: request_timeout,
            heartbeat_connection: Mutex::new(None),
        }
    }

    /// Bounds each heartbeat attempt by `timeout` (at most the request timeout).
    pub fn with_heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.heartbeat_timeout = timeout.min(self.request_timeout);
        self
    }

    /// The connections this channel uses (for their counters).
    pub fn client(&self) -> &Arc<InterNodeClient> {
        &self.client
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
        let mut last_error: Option<InterNodeError> = None;
        while tokio::time::Instant::now() < deadline {
            attempt += 1;
            match self.node.quorum_info().leader {
                Some(l) if l == self.node.node_id() => {
                    let local = self
                        .node
                        .quorum_controller()
                        .handle_request(version, body.clone());
                    let answer = if heartbeat {
                        // This node leads: a connection to another voter means nothing now.
                        self.heartbeat_connection.lock().await.take();
                        // Bounded as a remote attempt is: a heartbeat queued behind a long
                        // write is recorded on arrival (the controller's heartbeat tracker), and
                        // the next one must arrive too, not wait for this one's answer.
                        tokio::time::timeout(self.heartbeat_timeout, local)
                            .await
                            .ok()
                            .flatten()
                    } else {
                        local.await
                    };
                    if let Some(r) = answer {
                        return Some(r);
                    }
                }
                Some(l) => {
                    if let Some(addr) = self.voters.get(&l) {
                        let sent = if heartbeat {
                            self.forward_heartbeat(l, addr, version, body.clone()).await
                        } else {
                            self.forward(l, addr, version, body.clone()).await
                        };
                        match sent {
                            Ok(r) => return Some(r),
                            Err(e) => last_error = Some(e),
                        }
                    }
                }
                None if !self.is_voter() => {
                    // A broker that is not a voter learns the leader only once the log reaches
                    // it, which needs its registration first: ask the voters in turn (one that
                    // is not the leader answers NOT_CONTROLLER, and the caller retries).
                    let voter = self.voters.iter().nth(attempt % self.voters.len().max(1));
                    if let Some((&id, addr)) = voter {
                        match self.forward(id, addr, version, body.clone()).await {
                            Ok(r) => return Some(r),
                            Err(e) => last_error = Some(e),
                        }
                    }
                }
                None => {}
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        match last_error {
            Some(e) => {
                tracing::debug!(api_key = body.api_key().key(), error = %e, "no controller answered")
            }
            None => tracing::debug!(api_key = body.api_key().key(), "no active controller"),
        }
        None
    }

    /// One exchange over the heartbeat connection to controller `id` at `addr`; a connection to
    /// another controller is closed first. A failure closes it (the next attempt opens a new one).
    async fn forward_heartbeat(
        &self,
        id: NodeId,
        addr: &str,
        version: i16,
        body: RequestKind,
    ) -> Result<ResponseKind, InterNodeError> {
        let node_id = node_id_of(id);
        let mut held = self.heartbeat_connection.lock().await;
        if held.as_ref().is_some_and(|c| c.node_id() != node_id) {
            *held = None;
        }
        let connection = held.get_or_insert_with(|| self.client.dedicated(node_id));
        connection
            .send(addr, version, body, self.heartbeat_timeout)
            .await
            .inspect_err(|e| tracing::debug!(node_id, error = %e, "heartbeat failed"))
    }

    async fn forward(
        &self,
        id: NodeId,
        addr: &str,
        version: i16,
        body: RequestKind,
    ) -> Result<ResponseKind, InterNodeError> {
        let purpose = match body {
            RequestKind::AlterPartition(_) => Purpose::AlterPartition,
            _ => Purpose::Forwarding,
        };
        self.client
            .send(
                node_id_of(id),
                addr,
                purpose,
                version,
                body,
                self.request_timeout,
            )
            .await
    }
}

/// A Raft node id as a Kafka node id (ours are both `node.id`, which fits an `i32`).
fn node_id_of(id: NodeId) -> i32 {
    i32::try_from(id).unwrap_or(i32::MAX)
}
