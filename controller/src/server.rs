//! The controller listener: Kafka framing over TCP, one task per connection, requests answered
//! in order. openraft's RPCs (private API keys) go to the local Raft node once they pass
//! [`PeerCheck`]; the controller APIs (BrokerRegistration, BrokerHeartbeat, AlterPartition,
//! AllocateProducerIds and the forwarded admin requests) go to the [`ControllerApis`] handler.
//!
//! # Listener roles
//!
//! A voter binds its controller listener ([`ListenerRole::Controller`]): Raft RPCs and the
//! controller APIs. A broker-only node follows the metadata log as a Raft learner; the active
//! controller pushes the log to it, so it needs an endpoint too — but never its client listener,
//! where a client could forge the pushes. It binds a dedicated *learner listener*
//! ([`ListenerRole::Learner`]), announced to the controller in its BrokerRegistration under the
//! listener name [`LEARNER_LISTENER_NAME`] (on the host of its inter-broker listener); the
//! controller adds the learner at that address. A learner listener serves AppendEntries and
//! InstallSnapshot only: a learner never votes and runs no controller. The client listeners of
//! every node close the connection for all of these keys, as Kafka's SocketServer does for an
//! API that is not enabled on a listener.
//!
//! # Peers are checked before openraft sees anything
//!
//! Every Raft RPC must carry this cluster's id (one missing is refused once the id is known),
//! come from a voter of the current membership other than this node (the configured voters while
//! this node has none yet) — the candidate for a vote, the leader for an append or a snapshot.
//! Without credentials on the wire a peer's id is a claim, so the controller listener must stay
//! reachable by the cluster's nodes only; these checks stop a stray or misconfigured sender,
//! another cluster's nodes and forged nonsense. The RPCs must also carry terms and
//! log ids that fit Kafka's int32 leader epochs and are consistent with each other (entries dense
//! after the previous log id, terms never above the sender's) and with what this node has
//! applied (an append that could only truncate committed metadata is refused). A refused RPC is
//! answered with INCONSISTENT_CLUSTER_ID, INCONSISTENT_VOTER_SET or INVALID_REQUEST and changes
//! nothing.
//!
//! # Resources
//!
//! Bounded as the client listeners are, with the same [`ConnectionQuotas`]: at most
//! `max_connections` connections (more wait in the kernel's accept backlog), at most
//! `max.connections.per.ip` (or its override) from one address (more are closed at once), a
//! frame's buffer grows as its bytes arrive (the size prefix
//! alone allocates nothing), a frame is at most `max_request_bytes`, and a connection silent for
//! `idle_timeout` is closed. A frame that does not decode, or an API this listener does not
//! serve, closes that connection only, after one log line.

use crate::connection_quotas::{ConnectionLimits, ConnectionQuotas};
use crate::convert::{entry_from_wire, LogIdWire, MembershipWire, VoteWire};
use crate::network::{read_frame_within, ClusterId, MAX_FRAME_BYTES};
use crate::raft_types::{LogId, NodeId, Raft, SnapshotMeta, StoredMembership, Vote};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, VoteRequest,
};
use rafka_protocol::messages::{
    raft_append_entries_response as aes, raft_install_snapshot_response as iss,
    raft_vote_response as vs, RaftAppendEntriesRequest, RaftAppendEntriesResponse,
    RaftInstallSnapshotRequest, RaftInstallSnapshotResponse, RaftPreVoteRequest,
    RaftPreVoteResponse, RaftVoteRequest, RaftVoteResponse, RequestKind, ResponseKind,
};
use rafka_protocol::{ErrorCode, RequestFrame, ResponseFrame};
use rafka_security::sasl::authenticator::{Decision, SaslServerAuthenticator};
use rafka_security::transport::{ServerSecurity, Stream, HANDSHAKE_TIMEOUT};
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// The listener name a broker-only node registers its learner endpoint under (never a client
/// listener's name: clients are never sent to it).
pub const LEARNER_LISTENER_NAME: &str = "RAFKA_METADATA_LEARNER";

/// Serves the controller APIs that are not Raft's own.
pub trait ControllerApis: Send + Sync + 'static {
    /// Answers `body` at `version`, or `None` for an API this listener does not serve.
    fn handle<'a>(
        &'a self,
        version: i16,
        body: RequestKind,
    ) -> Pin<Box<dyn Future<Output = Option<ResponseKind>> + Send + 'a>>;

    /// A connection that carried broker `broker_id`'s heartbeats has closed: the broker has
    /// most likely died (its process's death closed it), so its session ends soon unless it
    /// heartbeats again.
    fn heartbeat_connection_closed(&self, _broker_id: i32) {}
}

/// Tells the controller when the connection it lives in closes (however the connection's task
/// ends), if that connection carried a broker's heartbeats.
struct HeartbeatConnection {
    apis: Option<Arc<dyn ControllerApis>>,
    broker_id: Option<i32>,
}

impl Drop for HeartbeatConnection {
    fn drop(&mut self) {
        if let (Some(apis), Some(id)) = (&self.apis, self.broker_id) {
            apis.heartbeat_connection_closed(id);
        }
    }
}

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerRole {
    /// A voter's controller listener: every Raft RPC and the controller APIs.
    Controller,
    /// A broker-only node's learner listener: the leader's AppendEntries and InstallSnapshot.
    Learner,
}

/// The listener's bounds (Kafka's names).
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// `socket.request.max.bytes`, capped at [`MAX_FRAME_BYTES`] (what our nodes send each other).
    pub max_request_bytes: usize,
    /// `connections.max.idle.ms`: a connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// Connections open at once (`max_connections`: more wait in the backlog) and per client
    /// address (`max.connections.per.ip` and its overrides: more are closed at once), with the
    /// client listeners' semantics. Kafka's `max.connections` is unbounded by default; the
    /// controller listener serves only the cluster's own nodes (a few connections each), so its
    /// default bound is 1000 — a flood of connections waits in the backlog instead of claiming
    /// memory and file descriptors.
    pub limits: ConnectionLimits,
    /// What the listener speaks (the controller listener's protocol, with its TLS
    /// configuration; a learner listener speaks the controller listener's).
    pub security: ServerSecurity,
}

impl PartialEq for ListenerConfig {
    fn eq(&self, other: &Self) -> bool {
        self.max_request_bytes == other.max_request_bytes
            && self.idle_timeout == other.idle_timeout
            && self.limits == other.limits
            && self.security == other.security
    }
}

impl Eq for ListenerConfig {}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            max_request_bytes: MAX_FRAME_BYTES,
            idle_timeout: Duration::from_millis(600_000),
            limits: ConnectionLimits {
                max_connections: DEFAULT_MAX_CONNECTIONS,
                ..ConnectionLimits::default()
            },
            security: ServerSecurity::default(),
        }
    }
}

/// The controller listener's default connection limit (see [`ListenerConfig::limits`]).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1000;

/// Accepts connections until `stop` turns true (or the sender is gone), then closes every
/// connection and returns once each one's task has ended — so that when the node's shutdown has
/// awaited this task no request is served any more: a peer must see its old connection to a
/// stopped node fail, not keep talking to a Raft that no longer runs. (Aborting the task alone
/// is not enough: a connection task running on another worker finishes the request it holds.)
pub async fn serve(
    listener: TcpListener,
    raft: Raft,
    apis: Option<Arc<dyn ControllerApis>>,
    check: PeerCheck,
    config: ListenerConfig,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    let quotas = ConnectionQuotas::new(config.limits.clone());
    let _reload = config.security.tls.as_ref().and_then(|tls| tls.watch());
    let config = Arc::new(config);
    // A slot per open connection, taken before accepting (mini-redis's shape): at the limit the
    // listener stops accepting and new connections wait in the kernel's backlog.
    loop {
        let slot = tokio::select! {
            slot = quotas.slot(LISTENER_COUNTS) => slot,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            _ = stopped(&mut stop) => break,
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Over its address's limit: closed at once, as on the client listeners.
                    let permit = match slot.admit(peer.ip()) {
                        Ok(permit) => permit,
                        Err(e) => {
                            tracing::info!(%peer, error = %e, "controller connection refused");
                            drop(stream);
                            continue;
                        }
                    };
                    let (raft, apis, check, config) =
                        (raft.clone(), apis.clone(), check.clone(), config.clone());
                    connections.spawn(async move {
                        if let Err(e) = connection(stream, peer, raft, apis, check, &config).await {
                            tracing::info!(%peer, error = %e, "controller connection closed");
                        }
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "controller listener accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stopped(&mut stop) => break,
        }
    }
    drop(listener);
    connections.shutdown().await;
}

/// Resolves once `stop` is true or its sender is gone (the guard is dropped here, so the
/// future stays `Send`).
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The name this listener's connections are counted under in its own [`ConnectionQuotas`].
const LISTENER_COUNTS: &str = "CONTROLLER";

async fn connection(
    tcp: TcpStream,
    peer: std::net::SocketAddr,
    raft: Raft,
    apis: Option<Arc<dyn ControllerApis>>,
    check: PeerCheck,
    config: &ListenerConfig,
) -> Result<(), String> {
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    // The TLS handshake, in this connection's own task under a timeout: a slow peer delays no
    // other connection.
    let timeout = config.idle_timeout.min(HANDSHAKE_TIMEOUT);
    let (mut stream, _principal) = config
        .security
        .accept(tcp, timeout)
        .await
        .map_err(|e| e.to_string())?;
    // Then, on a SASL listener, authentication over that transport.
    let sasl_config = config.security.sasl.clone();
    let mut sasl = sasl_config.clone().map(SaslServerAuthenticator::new);
    let mut heartbeats = HeartbeatConnection {
        apis: apis.clone(),
        broker_id: None,
    };
    loop {
        // Before a SASL peer authenticates, `sasl.server.max.receive.size` bounds its frames.
        let max = match (&sasl, sasl_config.as_deref()) {
            (Some(a), Some(c)) if a.principal().is_none() => {
                config.max_request_bytes.min(c.max_receive_size.max(1))
            }
            _ => config.max_request_bytes,
        };
        let Some(frame) = read_frame_within(&mut stream, max, Some(config.idle_timeout))
            .await
            .map_err(|e| e.to_string())?
        else {
            break;
        };
        if let Some(auth) = sasl.as_mut() {
            let now = std::time::Instant::now();
            let decision = if auth.expects_raw_token() {
                Some(auth.on_raw_token(&frame, now))
            } else {
                None
            };
            if let Some(d) = decision {
                sasl_decision(&mut stream, peer, auth, d).await?;
                continue;
            }
        }
        let req = RequestFrame::decode(&frame).map_err(|e| e.to_string())?;
        drop(frame);
        if let Some(auth) = sasl.as_mut() {
            match auth.on_request(&req, std::time::Instant::now()) {
                Decision::Forward => {}
                d => {
                    sasl_decision(&mut stream, peer, auth, d).await?;
                    continue;
                }
            }
        }
        let version = req.header.request_api_version;
        let correlation_id = req.header.correlation_id;
        let api = req.body.api_key();
        tracing::debug!(
            api_key = api.key(),
            api_version = version,
            correlation_id,
            "controller request"
        );
        let body = match raft_rpc(&raft, &check, req.body).await {
            Ok(b) => b,
            Err(other) => {
                if let RequestKind::BrokerHeartbeat(h) = &other {
                    heartbeats.broker_id = Some(h.broker_id);
                }
                let answer = match &apis {
                    Some(apis) => apis.handle(version, other).await,
                    None => None,
                };
                match answer {
                    Some(b) => b,
                    None => return Err(format!("{api} is not served on this listener")),
                }
            }
        };
        let out = ResponseFrame {
            correlation_id,
            api_version: version,
            body,
        }
        .encode()
        .map_err(|e| e.to_string())?;
        stream.write_all(&out).await.map_err(|e| e.to_string())?;
        // A TLS stream may still hold the last records.
        stream.flush().await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Carries out an authenticator's decision on the controller listener.
async fn sasl_decision(
    stream: &mut Stream,
    peer: std::net::SocketAddr,
    auth: &SaslServerAuthenticator,
    decision: Decision,
) -> Result<(), String> {
    match decision {
        Decision::Forward => Ok(()),
        Decision::Respond(b) => {
            stream.write_all(&b).await.map_err(|e| e.to_string())?;
            if let (Some(p), Some(m)) = (auth.principal(), auth.mechanism()) {
                tracing::debug!(%peer, principal = %p, mechanism = m.name(), "controller connection authenticated");
            }
            Ok(())
        }
        Decision::Fail {
            response,
            delay,
            reason,
        } => {
            tracing::info!(%peer, reason, "failed authentication on the controller listener");
            tokio::time::sleep(delay).await;
            if let Some(b) = response {
                let _ = stream.write_all(&b).await;
            }
            Err(format!("authentication failed: {reason}"))
        }
        Decision::Close { reason } => Err(format!("SASL: {reason}")),
    }
}

/// Why a Raft RPC was refused before openraft saw it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("cluster id {theirs:?} is not this cluster's {ours}")]
    ClusterId {
        ours: String,
        theirs: Option<String>,
    },
    #[error("sender {sender:?} is not a voter of {voters:?}")]
    NotAVoter {
        sender: Option<NodeId>,
        voters: BTreeSet<NodeId>,
    },
    #[error("a learner does not vote")]
    LearnerVote,
    #[error("{0}")]
    Malformed(String),
}

impl Refusal {
    /// The Kafka error code the sender gets (KRaft's codes for the same refusals).
    pub fn code(&self) -> i16 {
        match self {
            Refusal::ClusterId { .. } => ErrorCode::InconsistentClusterId.code(),
            Refusal::NotAVoter { .. } | Refusal::LearnerVote => {
                ErrorCode::InconsistentVoterSet.code()
            }
            Refusal::Malformed(_) => ErrorCode::InvalidRequest.code(),
        }
    }
}

impl From<crate::convert::ConvertError> for Refusal {
    fn from(e: crate::convert::ConvertError) -> Self {
        Refusal::Malformed(e.to_string())
    }
}

/// Who may send Raft RPCs to this node: see the module docs.
#[derive(Debug, Clone)]
pub struct PeerCheck {
    /// This node: an RPC claiming to come from it is forged.
    node_id: NodeId,
    role: ListenerRole,
    cluster_id: ClusterId,
    /// `controller.quorum.voters`: the voters until the log gives this node a membership.
    bootstrap_voters: BTreeSet<NodeId>,
    /// How this voter answers pre-votes (none: it refuses them).
    pre_vote: Option<crate::pre_vote::PreVote>,
}

impl PeerCheck {
    pub fn new(
        node_id: NodeId,
        role: ListenerRole,
        cluster_id: ClusterId,
        bootstrap_voters: BTreeSet<NodeId>,
    ) -> PeerCheck {
        PeerCheck {
            node_id,
            role,
            cluster_id,
            bootstrap_voters,
            pre_vote: None,
        }
    }

    /// Answers pre-votes with `pre_vote` (a voter's controller listener).
    pub(crate) fn answer_pre_votes(mut self, pre_vote: crate::pre_vote::PreVote) -> PeerCheck {
        self.pre_vote = Some(pre_vote);
        self
    }

    /// The sender's claimed cluster id against ours.
    pub fn cluster(&self, theirs: Option<&str>) -> Result<(), Refusal> {
        match (self.cluster_id.get(), theirs) {
            (Some(ours), t) if t != Some(ours) => Err(Refusal::ClusterId {
                ours: ours.to_owned(),
                theirs: t.map(str::to_owned),
            }),
            _ => Ok(()),
        }
    }

    /// The voters that may send to this node: those of `raft`'s current membership (the
    /// configured ones while it has none), but never this node itself.
    fn voters(&self, raft: &Raft) -> BTreeSet<NodeId> {
        let mut v = self.membership_voters(raft);
        v.remove(&self.node_id);
        v
    }

    fn membership_voters(&self, raft: &Raft) -> BTreeSet<NodeId> {
        let metrics = raft.metrics();
        let m = metrics.borrow();
        let v: BTreeSet<NodeId> = m.membership_config.membership().voter_ids().collect();
        if v.is_empty() {
            self.bootstrap_voters.clone()
        } else {
            v
        }
    }

    /// The sender (the vote's node) must be one of `voters`, and its vote must be comparable
    /// with ours: openraft treats two committed votes of one term for different nodes as
    /// impossible (it panics), so a forged one is refused here.
    fn sender(voters: &BTreeSet<NodeId>, vote: &Vote, ours: &Vote) -> Result<(), Refusal> {
        let sender = vote.leader_id.voted_for;
        if !sender.is_some_and(|s| voters.contains(&s)) {
            return Err(Refusal::NotAVoter {
                sender,
                voters: voters.clone(),
            });
        }
        if vote.committed
            && ours.committed
            && vote.leader_id.term == ours.leader_id.term
            && vote.leader_id.voted_for != ours.leader_id.voted_for
        {
            return Err(Refusal::Malformed(format!(
                "vote {vote} conflicts with the committed vote {ours} of the same term"
            )));
        }
        Ok(())
    }
}

fn not_above(what: &str, id: Option<&LogId>, term: u64) -> Result<(), Refusal> {
    match id {
        Some(l) if l.leader_id.term > term => Err(Refusal::Malformed(format!(
            "{what} {l} is above the sender's term {term}"
        ))),
        _ => Ok(()),
    }
}

/// An append must agree with what this node has applied: applied entries are committed, and a
/// legitimate leader's log holds every committed entry (Leader Completeness), so at an index up to
/// `applied` the leader's entry is ours. Without reading the log, two disagreements show: a log
/// id at `applied`'s own index that is not `applied`, and a term above `applied`'s at or below
/// its index (our entries there have terms at most `applied`'s). Such an append could only
/// truncate committed metadata; it is refused.
pub fn check_against_applied(
    applied: Option<LogId>,
    prev_log_id: Option<&LogId>,
    entries: &[crate::raft_types::Entry],
) -> Result<(), Refusal> {
    let Some(applied) = applied else {
        return Ok(());
    };
    for id in prev_log_id
        .into_iter()
        .chain(entries.iter().map(|e| &e.log_id))
    {
        let conflicts = (id.index == applied.index && *id != applied)
            || (id.index <= applied.index && id.leader_id.term > applied.leader_id.term);
        if conflicts {
            return Err(Refusal::Malformed(format!(
                "log id {id} contradicts the applied {applied}"
            )));
        }
    }
    Ok(())
}

/// The vote request as openraft takes it, once it is sane.
pub fn check_vote(r: &RaftVoteRequest) -> Result<VoteRequest<NodeId>, Refusal> {
    let vote = r.vote.to_vote()?;
    let last_log_id = r.last_log_id.to_log_id()?;
    not_above("last log id", last_log_id.as_ref(), vote.leader_id.term)?;
    Ok(VoteRequest { vote, last_log_id })
}

/// The append request as openraft takes it, once it is sane: terms in range and never above
/// the leader's, entries dense right after the previous log id with terms never decreasing.
pub fn check_append(
    r: &RaftAppendEntriesRequest,
) -> Result<AppendEntriesRequest<crate::raft_types::TypeConfig>, Refusal> {
    let vote = r.vote.to_vote()?;
    let term = vote.leader_id.term;
    let prev_log_id = r.prev_log_id.to_log_id()?;
    let leader_commit = r.leader_commit.to_log_id()?;
    not_above("previous log id", prev_log_id.as_ref(), term)?;
    not_above("leader commit", leader_commit.as_ref(), term)?;
    let entries = r
        .entries
        .iter()
        .map(entry_from_wire)
        .collect::<Result<Vec<_>, _>>()?;
    let mut expected = prev_log_id.map_or(Some(0), |p| p.index.checked_add(1));
    let mut prev_term = prev_log_id.map_or(0, |p| p.leader_id.term);
    for e in &entries {
        if Some(e.log_id.index) != expected {
            return Err(Refusal::Malformed(format!(
                "entry {} where index {expected:?} was expected",
                e.log_id
            )));
        }
        if e.log_id.leader_id.term < prev_term || e.log_id.leader_id.term > term {
            return Err(Refusal::Malformed(format!(
                "entry {} has a term outside {prev_term}..={term}",
                e.log_id
            )));
        }
        prev_term = e.log_id.leader_id.term;
        expected = e.log_id.index.checked_add(1);
    }
    Ok(AppendEntriesRequest {
        vote,
        prev_log_id,
        leader_commit,
        entries,
    })
}

/// The snapshot chunk as openraft takes it, once it is sane.
pub fn check_snapshot(
    r: &RaftInstallSnapshotRequest,
) -> Result<InstallSnapshotRequest<crate::raft_types::TypeConfig>, Refusal> {
    let vote = r.vote.to_vote()?;
    let term = vote.leader_id.term;
    let last_log_id = r.last_log_id.to_log_id()?;
    let membership_log_id = r.last_membership_log_id.to_log_id()?;
    not_above("snapshot last log id", last_log_id.as_ref(), term)?;
    if membership_log_id > last_log_id {
        return Err(Refusal::Malformed(format!(
            "membership log id {membership_log_id:?} is past the snapshot's {last_log_id:?}"
        )));
    }
    let offset = u64::try_from(r.offset)
        .map_err(|_| Refusal::Malformed(format!("snapshot offset {} is negative", r.offset)))?;
    Ok(InstallSnapshotRequest {
        vote,
        meta: SnapshotMeta {
            last_log_id,
            last_membership: StoredMembership::new(
                membership_log_id,
                r.last_membership.to_membership()?,
            ),
            snapshot_id: r.snapshot_id.clone(),
        },
        offset,
        data: r.data.to_vec(),
        done: r.done,
    })
}

/// Answers one of openraft's RPCs (private API keys) with the local Raft node, after
/// [`PeerCheck`]; any other request is handed back.
pub async fn raft_rpc(
    raft: &Raft,
    check: &PeerCheck,
    body: RequestKind,
) -> Result<ResponseKind, RequestKind> {
    Ok(match body {
        RequestKind::RaftVote(r) => ResponseKind::RaftVote(vote(raft, check, r).await),
        RequestKind::RaftPreVote(r) => ResponseKind::RaftPreVote(pre_vote(raft, check, r).await),
        RequestKind::RaftAppendEntries(r) => {
            ResponseKind::RaftAppendEntries(append(raft, check, r).await)
        }
        RequestKind::RaftInstallSnapshot(r) => {
            ResponseKind::RaftInstallSnapshot(snapshot(raft, check, r).await)
        }
        other => return Err(other),
    })
}

const UNKNOWN: i16 = ErrorCode::UnknownServerError.code();

fn refused(api: &str, e: &Refusal) -> i16 {
    tracing::warn!(api, error = %e, "refusing a raft request");
    e.code()
}

fn local_vote(raft: &Raft) -> Vote {
    raft.metrics().borrow().vote
}

async fn vote(raft: &Raft, check: &PeerCheck, r: RaftVoteRequest) -> RaftVoteResponse {
    let fail = |code| RaftVoteResponse {
        error_code: code,
        ..Default::default()
    };
    let checked = (|| {
        if check.role == ListenerRole::Learner {
            return Err(Refusal::LearnerVote);
        }
        check.cluster(r.cluster_id.as_deref())?;
        let req = check_vote(&r)?;
        PeerCheck::sender(&check.voters(raft), &req.vote, &local_vote(raft))?;
        Ok(req)
    })();
    let req = match checked {
        Ok(req) => req,
        Err(e) => return fail(refused("vote", &e)),
    };
    match raft.vote(req).await {
        Ok(resp) => RaftVoteResponse {
            vote: vs::RaftVote::from_vote(&resp.vote),
            vote_granted: resp.vote_granted,
            last_log_id: vs::RaftLogId::from_log_id(resp.last_log_id.as_ref()),
            ..Default::default()
        },
        Err(e) => {
            tracing::warn!(error = %e, "vote failed");
            fail(UNKNOWN)
        }
    }
}

/// A pre-vote ([`crate::pre_vote`]): checked as a vote request is, answered without touching
/// Raft's state.
async fn pre_vote(raft: &Raft, check: &PeerCheck, r: RaftPreVoteRequest) -> RaftPreVoteResponse {
    let fail = |code| RaftPreVoteResponse {
        error_code: code,
        ..Default::default()
    };
    let checked = (|| {
        if check.role == ListenerRole::Learner {
            return Err(Refusal::LearnerVote);
        }
        check.cluster(r.cluster_id.as_deref())?;
        let vote = r.vote.to_vote()?;
        let last_log_id = r.last_log_id.to_log_id()?;
        not_above("last log id", last_log_id.as_ref(), vote.leader_id.term)?;
        PeerCheck::sender(&check.voters(raft), &vote, &local_vote(raft))?;
        Ok((vote, last_log_id))
    })();
    let (vote, last_log_id) = match checked {
        Ok(req) => req,
        Err(e) => return fail(refused("pre-vote", &e)),
    };
    let Some(p) = &check.pre_vote else {
        return RaftPreVoteResponse::default();
    };
    let candidate = vote.leader_id.voted_for.unwrap_or_default();
    RaftPreVoteResponse {
        vote_granted: p.grant(candidate, last_log_id).await,
        ..Default::default()
    }
}

async fn append(
    raft: &Raft,
    check: &PeerCheck,
    r: RaftAppendEntriesRequest,
) -> RaftAppendEntriesResponse {
    let fail = |code| RaftAppendEntriesResponse {
        error_code: code,
        ..Default::default()
    };
    let checked = (|| {
        check.cluster(r.cluster_id.as_deref())?;
        let req = check_append(&r)?;
        PeerCheck::sender(&check.voters(raft), &req.vote, &local_vote(raft))?;
        let applied = raft.metrics().borrow().last_applied;
        check_against_applied(applied, req.prev_log_id.as_ref(), &req.entries)?;
        Ok(req)
    })();
    let req = match checked {
        Ok(req) => req,
        Err(e) => return fail(refused("append entries", &e)),
    };
    match raft.append_entries(req).await {
        Ok(resp) => {
            let mut out = RaftAppendEntriesResponse::default();
            match resp {
                AppendEntriesResponse::Success => out.result = 0,
                AppendEntriesResponse::PartialSuccess(l) => {
                    out.result = 1;
                    out.matching_log_id = aes::RaftLogId::from_log_id(l.as_ref());
                }
                AppendEntriesResponse::Conflict => out.result = 2,
                AppendEntriesResponse::HigherVote(v) => {
                    out.result = 3;
                    out.higher_vote = aes::RaftVote::from_vote(&v);
                }
            }
            out
        }
        Err(e) => {
            tracing::warn!(error = %e, "append entries failed");
            fail(UNKNOWN)
        }
    }
}

async fn snapshot(
    raft: &Raft,
    check: &PeerCheck,
    r: RaftInstallSnapshotRequest,
) -> RaftInstallSnapshotResponse {
    let fail = |code| RaftInstallSnapshotResponse {
        error_code: code,
        ..Default::default()
    };
    let checked = (|| {
        check.cluster(r.cluster_id.as_deref())?;
        let req = check_snapshot(&r)?;
        PeerCheck::sender(&check.voters(raft), &req.vote, &local_vote(raft))?;
        Ok(req)
    })();
    let req = match checked {
        Ok(req) => req,
        Err(e) => return fail(refused("install snapshot", &e)),
    };
    match raft.install_snapshot(req).await {
        Ok(resp) => RaftInstallSnapshotResponse {
            vote: iss::RaftVote::from_vote(&resp.vote),
            ..Default::default()
        },
        Err(e) => {
            tracing::warn!(error = %e, "install snapshot failed");
            fail(UNKNOWN)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rafka_protocol::messages::{raft_append_entries_request as aer, raft_vote_request as vr};

    fn check(ours: Option<&str>) -> PeerCheck {
        let id = ClusterId::default();
        if let Some(o) = ours {
            id.set(o);
        }
        PeerCheck::new(1, ListenerRole::Controller, id, BTreeSet::from([1, 2, 3]))
    }

    fn vote(term: u64, node: u64, committed: bool) -> Vote {
        let mut v = Vote::new(term, node);
        if committed {
            v.commit();
        }
        v
    }

    #[test]
    fn cluster_id_must_match_once_known() {
        assert!(check(None).cluster(None).is_ok());
        assert!(check(None).cluster(Some("x")).is_ok());
        assert!(check(Some("abc")).cluster(Some("abc")).is_ok());
        assert_eq!(
            check(Some("abc")).cluster(None).map_err(|e| e.code()),
            Err(ErrorCode::InconsistentClusterId.code())
        );
        assert!(check(Some("abc")).cluster(Some("abd")).is_err());
    }

    #[test]
    fn sender_must_be_a_voter_with_a_comparable_vote() {
        let voters = BTreeSet::from([1, 2, 3]);
        let ours = vote(5, 1, true);
        assert!(PeerCheck::sender(&voters, &vote(5, 1, true), &ours).is_ok());
        assert!(PeerCheck::sender(&voters, &vote(6, 2, false), &ours).is_ok());
        let e = PeerCheck::sender(&voters, &vote(9, 7, false), &ours).expect_err("non-voter");
        assert_eq!(e.code(), ErrorCode::InconsistentVoterSet.code());
        let none = Vote {
            leader_id: openraft::LeaderId {
                term: 9,
                voted_for: None,
            },
            committed: false,
        };
        assert!(PeerCheck::sender(&voters, &none, &ours).is_err());
        // Two committed leaders of one term: openraft would panic comparing them.
        assert!(PeerCheck::sender(&voters, &vote(5, 2, true), &ours).is_err());
    }

    #[test]
    fn the_bootstrap_voters_stand_in_for_an_empty_membership() {
        let c = check(None);
        assert_eq!(c.bootstrap_voters, BTreeSet::from([1, 2, 3]));
    }

    fn wire_vote(term: i64, node: i64) -> aer::RaftVote {
        aer::RaftVote {
            term,
            node_id: node,
            committed: true,
            ..Default::default()
        }
    }

    fn blank(term: i64, index: i64) -> aer::RaftEntry {
        aer::RaftEntry {
            log_id: aer::RaftLogId {
                term,
                node_id: -1,
                index,
                ..Default::default()
            },
            payload_type: 0,
            ..Default::default()
        }
    }

    #[test]
    fn append_entries_must_be_dense_and_within_the_leaders_term() {
        let ok = RaftAppendEntriesRequest {
            vote: wire_vote(3, 1),
            prev_log_id: aer::RaftLogId {
                term: 2,
                node_id: -1,
                index: 9,
                ..Default::default()
            },
            entries: vec![blank(2, 10), blank(3, 11)],
            ..Default::default()
        };
        assert!(check_append(&ok).is_ok());
        for (case, bad) in [
            (
                "term i64::MAX",
                RaftAppendEntriesRequest {
                    vote: wire_vote(i64::MAX, 1),
                    ..ok.clone()
                },
            ),
            (
                "a hole",
                RaftAppendEntriesRequest {
                    entries: vec![blank(2, 10), blank(3, 12)],
                    ..ok.clone()
                },
            ),
            (
                "not after prev",
                RaftAppendEntriesRequest {
                    entries: vec![blank(2, 3)],
                    ..ok.clone()
                },
            ),
            (
                "entry above the leader's term",
                RaftAppendEntriesRequest {
                    entries: vec![blank(4, 10)],
                    ..ok.clone()
                },
            ),
            (
                "term going back",
                RaftAppendEntriesRequest {
                    entries: vec![blank(3, 10), blank(2, 11)],
                    ..ok.clone()
                },
            ),
            (
                "commit above the term",
                RaftAppendEntriesRequest {
                    leader_commit: aer::RaftLogId {
                        term: 7,
                        node_id: -1,
                        index: 1,
                        ..Default::default()
                    },
                    ..ok.clone()
                },
            ),
        ] {
            let e = check_append(&bad).expect_err(case);
            assert_eq!(e.code(), ErrorCode::InvalidRequest.code(), "{case}");
        }
    }

    #[test]
    fn an_append_contradicting_the_applied_log_is_refused() {
        let id = |term, index| LogId::new(openraft::CommittedLeaderId::new(term, 0), index);
        let blank = |term, index| crate::raft_types::Entry {
            log_id: id(term, index),
            payload: openraft::EntryPayload::Blank,
        };
        let applied = Some(id(3, 10));
        // A leader's normal traffic: prev at or after the applied entry, the same ids below.
        assert!(check_against_applied(applied, Some(&id(3, 10)), &[blank(4, 11)]).is_ok());
        assert!(check_against_applied(applied, Some(&id(2, 5)), &[blank(3, 6)]).is_ok());
        assert!(check_against_applied(None, None, &[blank(9, 0)]).is_ok());
        // A forged rewrite from index 0 in a new term, or another entry at the applied index.
        assert!(check_against_applied(applied, None, &[blank(1000, 0)]).is_err());
        assert!(check_against_applied(applied, Some(&id(4, 9)), &[]).is_err());
        assert!(check_against_applied(applied, Some(&id(2, 9)), &[blank(2, 10)]).is_err());
    }

    #[test]
    fn a_vote_with_an_epoch_out_of_range_is_refused() {
        let r = RaftVoteRequest {
            vote: vr::RaftVote {
                term: i64::MAX,
                node_id: 2,
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(check_vote(&r).is_err());
        let r = RaftVoteRequest {
            vote: vr::RaftVote {
                term: 4,
                node_id: 2,
                ..Default::default()
            },
            last_log_id: vr::RaftLogId {
                term: 5,
                node_id: -1,
                index: 3,
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(
            check_vote(&r).is_err(),
            "last log above the candidate's term"
        );
    }

    #[test]
    fn a_snapshot_with_a_negative_offset_is_refused() {
        let r = RaftInstallSnapshotRequest {
            vote: rafka_protocol::messages::raft_install_snapshot_request::RaftVote {
                term: 2,
                node_id: 1,
                committed: true,
                ..Default::default()
            },
            offset: -1,
            ..Default::default()
        };
        assert!(check_snapshot(&r).is_err());
    }
}
