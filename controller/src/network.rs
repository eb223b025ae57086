//! openraft's network over the controller listener: every RPC is a Kafka-framed request
//! (request header v2) under one of rafka's private API keys (`RaftVote` 30000,
//! `RaftAppendEntries` 30001, `RaftInstallSnapshot` 30002, and rafka's own `RaftPreVote` 30003,
//! see [`pre_vote`](crate::pre_vote)), answered by a Kafka-framed response.
//! The serving side is in [`server`](crate::server).
//!
//! One client per target node keeps one TCP connection, opened on first use and dropped on any
//! error (the next RPC reconnects). An RPC that cannot connect is `Unreachable` (openraft backs
//! off); one that fails mid-way is a `Network` error; one that outlives openraft's hard TTL is a
//! `Timeout`.
//!
//! Frames are read with [`read_frame`] on both sides: its buffer grows as the bytes arrive, so
//! neither a request's nor a response's size prefix alone claims memory.

use crate::convert::{entry_to_wire, LogIdWire, MembershipWire, VoteWire};
use crate::raft_types::{NodeId, TypeConfig};
use bytes::Bytes;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use rafka_protocol::messages::{
    raft_append_entries_request as aer, raft_install_snapshot_request as isr,
    raft_pre_vote_request as pvr, raft_vote_request as vr, RequestKind, ResponseKind,
};
use rafka_protocol::ApiKey;
use rafka_security::transport::{connect, ClientSecurity, Session, Stream};
use std::sync::{Arc, OnceLock};

/// The largest frame our nodes accept from each other (a snapshot chunk or a batch of entries).
pub const MAX_FRAME_BYTES: usize = 64 << 20;

/// This node's cluster id as far as it is known: from `cluster.id` or `meta.properties` at
/// start, or from the metadata log once the first controller writes it. Set once, never changed;
/// the network sends it with every Raft RPC and the listener checks it on every one received.
#[derive(Debug, Clone, Default)]
pub struct ClusterId(Arc<OnceLock<String>>);

impl ClusterId {
    pub fn new(known: Option<String>) -> ClusterId {
        let id = ClusterId::default();
        if let Some(k) = known {
            id.set(&k);
        }
        id
    }
    pub fn get(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
    /// Records the id; a later, different one is ignored (the first is the cluster's).
    pub fn set(&self, id: &str) {
        let _ = self.0.set(id.to_owned());
    }
}

// Frames are read by the workspace's one frame reader (the tools' client uses it too).
pub use rafka_client::wire::{read_frame, read_frame_within};

/// Creates a client per target node.
#[derive(Debug, Clone)]
pub struct Network {
    node_id: NodeId,
    cluster_id: ClusterId,
    /// Told of every answer to this node's vote requests.
    elections: Option<crate::election_observer::ElectionObserver>,
    /// How long a leader waits before trying an unreachable node again.
    unreachable_backoff: std::time::Duration,
    /// How to connect to the other voters' controller listeners.
    security: Arc<ClientSecurity>,
}

impl Network {
    pub fn new(node_id: NodeId, cluster_id: ClusterId) -> Network {
        Network {
            node_id,
            cluster_id,
            elections: None,
            unreachable_backoff: std::time::Duration::from_millis(500),
            security: Arc::new(ClientSecurity::default()),
        }
    }

    /// How to connect to the other voters (the controller listener's security protocol).
    pub fn client_security(mut self, security: Arc<ClientSecurity>) -> Self {
        self.security = security;
        self
    }

    /// How long a leader waits before trying an unreachable node again (openraft's default is
    /// 500 ms). A node's heartbeat interval is the right value: a voter that restarts waits only
    /// its election timeout (plus the lease) for news of the leader before it campaigns, and a
    /// campaign from a node that missed the latest entries cannot win but does depose the
    /// leader. Retrying at the heartbeat interval gets the leader's append there first.
    pub fn unreachable_backoff(mut self, backoff: std::time::Duration) -> Self {
        self.unreachable_backoff = backoff;
        self
    }

    /// Tells `observer` of every answer to this node's vote requests.
    pub(crate) fn observe_elections(
        mut self,
        observer: crate::election_observer::ElectionObserver,
    ) -> Self {
        self.elections = Some(observer);
        self
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Client;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Client {
        Client {
            target,
            addr: node.addr.clone(),
            client_id: format!("controller-{}", self.node_id),
            cluster_id: self.cluster_id.clone(),
            stream: None,
            session: Session::default(),
            security: self.security.clone(),
            correlation_id: 0,
            elections: self.elections.clone(),
            unreachable_backoff: self.unreachable_backoff,
        }
    }
}

/// One connection to one node.
#[derive(Debug)]
pub struct Client {
    target: NodeId,
    addr: String,
    client_id: String,
    cluster_id: ClusterId,
    stream: Option<Stream>,
    /// The stream's SASL session (KIP-368): authenticated again before a request when due.
    session: Session,
    security: Arc<ClientSecurity>,
    correlation_id: i32,
    elections: Option<crate::election_observer::ElectionObserver>,
    unreachable_backoff: std::time::Duration,
}

#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Protocol(String),
    #[error("{action:?} to node {target} timed out after {after:?}")]
    Timeout {
        target: NodeId,
        action: openraft::network::RPCTypes,
        after: std::time::Duration,
    },
}

impl<E: std::error::Error> From<CallError> for RPCError<NodeId, BasicNode, E> {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Connect { .. } => RPCError::Unreachable(Unreachable::new(&e)),
            CallError::Timeout {
                target,
                action,
                after,
            } => RPCError::Timeout(openraft::error::Timeout {
                action,
                id: 0,
                target,
                timeout: after,
            }),
            other => RPCError::Network(NetworkError::new(&other)),
        }
    }
}

impl Client {
    async fn call(
        &mut self,
        body: RequestKind,
        option: &RPCOption,
    ) -> Result<ResponseKind, CallError> {
        let ttl = option.hard_ttl();
        let action = match &body {
            RequestKind::RaftVote(_) => openraft::network::RPCTypes::Vote,
            RequestKind::RaftInstallSnapshot(_) => openraft::network::RPCTypes::InstallSnapshot,
            _ => openraft::network::RPCTypes::AppendEntries,
        };
        match tokio::time::timeout(ttl, self.call_inner(body)).await {
            Ok(r) => r,
            // The deadline that expired, so the log line says how long was waited.
            Err(_) => Err(CallError::Timeout {
                target: self.target,
                action,
                after: ttl,
            }),
        }
    }

    /// One request and its response. The stream is taken out of `self` for the duration and put
    /// back only after a whole response was read, so a call that is cancelled (openraft drops an
    /// RPC future on its own timeout) or fails leaves no half-read connection behind.
    async fn call_inner(&mut self, body: RequestKind) -> Result<ResponseKind, CallError> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let mut stream = match self.stream.take() {
            Some(s) => s,
            None => {
                let (stream, session) =
                    connect(&self.addr, &self.security)
                        .await
                        .map_err(|source| CallError::Connect {
                            addr: self.addr.clone(),
                            source,
                        })?;
                self.session = session;
                stream
            }
        };
        let body = rafka_client::wire::exchange_in_session(
            &mut stream,
            &mut self.session,
            &self.security,
            0,
            self.correlation_id,
            &self.client_id,
            body,
            MAX_FRAME_BYTES,
        )
        .await
        .map_err(|e| match e {
            rafka_client::wire::ExchangeError::Io(e) => CallError::Io(e),
            rafka_client::wire::ExchangeError::Closed => {
                CallError::Protocol(format!("{} closed the connection", self.addr))
            }
            e => CallError::Protocol(e.to_string()),
        })?;
        self.stream = Some(stream);
        Ok(body)
    }
}

impl Client {
    /// Asks the target whether it would vote for `candidate` in `term` (see
    /// [`crate::pre_vote`]): its answer, or why there is none.
    pub(crate) async fn pre_vote(
        &mut self,
        term: u64,
        candidate: NodeId,
        last_log_id: Option<&crate::raft_types::LogId>,
    ) -> Result<bool, String> {
        let req = pvr::RaftPreVoteRequest {
            cluster_id: self.cluster_id.get().map(str::to_owned),
            vote: pvr::RaftVote::from_vote(&crate::raft_types::Vote::new(term, candidate)),
            last_log_id: pvr::RaftLogId::from_log_id(last_log_id),
            ..Default::default()
        };
        let r = match self.call_inner(RequestKind::RaftPreVote(req)).await {
            Ok(ResponseKind::RaftPreVote(r)) => r,
            Ok(_) => return Err("wrong response type".into()),
            Err(e) => return Err(e.to_string()),
        };
        if r.error_code != 0 {
            self.stream = None;
            return Err(format!(
                "node {} answered error {}",
                self.target, r.error_code
            ));
        }
        Ok(r.vote_granted)
    }
}

fn remote_error<E: std::error::Error>(target: NodeId, code: i16) -> RPCError<NodeId, BasicNode, E> {
    let e = CallError::Protocol(format!(
        "node {target} answered {}",
        rafka_protocol::ErrorCode::from_code(code).map_or("an unknown error", |c| c.name())
    ));
    RPCError::Network(NetworkError::new(&e))
}

impl RaftNetwork<TypeConfig> for Client {
    fn backoff(&self) -> openraft::network::Backoff {
        openraft::network::Backoff::new(std::iter::repeat(self.unreachable_backoff))
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let entries = rpc
            .entries
            .iter()
            .map(entry_to_wire)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let req = aer::RaftAppendEntriesRequest {
            cluster_id: self.cluster_id.get().map(str::to_owned),
            vote: aer::RaftVote::from_vote(&rpc.vote),
            prev_log_id: aer::RaftLogId::from_log_id(rpc.prev_log_id.as_ref()),
            leader_commit: aer::RaftLogId::from_log_id(rpc.leader_commit.as_ref()),
            entries,
            ..Default::default()
        };
        let ResponseKind::RaftAppendEntries(r) = self
            .call(RequestKind::RaftAppendEntries(req), &option)
            .await?
        else {
            return Err(CallError::Protocol("wrong response type".into()).into());
        };
        if r.error_code != 0 {
            // The node answered but its Raft failed (stopped, or refused the request): start
            // afresh next time.
            self.stream = None;
            return Err(remote_error(self.target, r.error_code));
        }
        let bad = |e: crate::convert::ConvertError| RPCError::Network(NetworkError::new(&e));
        Ok(match r.result {
            0 => AppendEntriesResponse::Success,
            1 => AppendEntriesResponse::PartialSuccess(r.matching_log_id.to_log_id().map_err(bad)?),
            2 => AppendEntriesResponse::Conflict,
            3 => AppendEntriesResponse::HigherVote(r.higher_vote.to_vote().map_err(bad)?),
            other => {
                return Err(CallError::Protocol(format!("unknown append result {other}")).into());
            }
        })
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let req = isr::RaftInstallSnapshotRequest {
            cluster_id: self.cluster_id.get().map(str::to_owned),
            vote: isr::RaftVote::from_vote(&rpc.vote),
            last_log_id: isr::RaftLogId::from_log_id(rpc.meta.last_log_id.as_ref()),
            last_membership_log_id: isr::RaftLogId::from_log_id(
                rpc.meta.last_membership.log_id().as_ref(),
            ),
            last_membership: isr::RaftMembership::from_membership(
                rpc.meta.last_membership.membership(),
            ),
            snapshot_id: rpc.meta.snapshot_id.clone(),
            offset: rpc.offset as i64,
            data: Bytes::from(rpc.data),
            done: rpc.done,
            ..Default::default()
        };
        let ResponseKind::RaftInstallSnapshot(r) = self
            .call(RequestKind::RaftInstallSnapshot(req), &option)
            .await?
        else {
            return Err(CallError::Protocol("wrong response type".into()).into());
        };
        if r.error_code != 0 {
            // The node answered but its Raft failed (stopped, or refused the request): start
            // afresh next time.
            self.stream = None;
            return Err(remote_error(self.target, r.error_code));
        }
        let vote = r
            .vote
            .to_vote()
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        Ok(InstallSnapshotResponse { vote })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let req = vr::RaftVoteRequest {
            cluster_id: self.cluster_id.get().map(str::to_owned),
            vote: vr::RaftVote::from_vote(&rpc.vote),
            last_log_id: vr::RaftLogId::from_log_id(rpc.last_log_id.as_ref()),
            ..Default::default()
        };
        let ResponseKind::RaftVote(r) = self.call(RequestKind::RaftVote(req), &option).await?
        else {
            return Err(CallError::Protocol("wrong response type".into()).into());
        };
        if r.error_code != 0 {
            // The node answered but its Raft failed (stopped, or refused the request): start
            // afresh next time.
            self.stream = None;
            return Err(remote_error(self.target, r.error_code));
        }
        let bad = |e: crate::convert::ConvertError| RPCError::Network(NetworkError::new(&e));
        let resp = VoteResponse {
            vote: r.vote.to_vote().map_err(bad)?,
            vote_granted: r.vote_granted,
            last_log_id: r.last_log_id.to_log_id().map_err(bad)?,
        };
        if let Some(o) = &self.elections {
            o.vote_answered(&rpc, &resp);
        }
        Ok(resp)
    }
}

/// A RemoteError for callers that want to report which node refused (kept for the server).
pub fn remote<E: std::error::Error>(
    target: NodeId,
    node: BasicNode,
    e: E,
) -> RemoteError<NodeId, BasicNode, E> {
    RemoteError::new_with_node(target, node, e)
}

/// The API keys of openraft's RPCs, and rafka's pre-vote.
pub const RAFT_APIS: [ApiKey; 4] = [
    ApiKey::RaftVote,
    ApiKey::RaftAppendEntries,
    ApiKey::RaftInstallSnapshot,
    ApiKey::RaftPreVote,
];
