//! The controller listener: Kafka framing over TCP, one task per connection, requests answered
//! in order. openraft's RPCs (private API keys) go to the local Raft node; the controller APIs
//! (BrokerRegistration, BrokerHeartbeat, AlterPartition, AllocateProducerIds and the forwarded
//! admin requests) go to the [`ControllerApis`] handler.
//!
//! A frame that does not decode, or an API this listener does not serve, closes that connection
//! only, after one log line.

use crate::convert::{entry_from_wire, LogIdWire, MembershipWire, VoteWire};
use crate::network::{read_frame, MAX_FRAME_BYTES};
use crate::raft_types::{Raft, SnapshotMeta, StoredMembership};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, VoteRequest,
};
use rafka_protocol::messages::{
    raft_append_entries_response as aes, raft_install_snapshot_response as iss,
    raft_vote_response as vs, RaftAppendEntriesRequest, RaftAppendEntriesResponse,
    RaftInstallSnapshotRequest, RaftInstallSnapshotResponse, RaftVoteRequest, RaftVoteResponse,
    RequestKind, ResponseKind,
};
use rafka_protocol::{ErrorCode, RequestFrame, ResponseFrame};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// Serves the controller APIs that are not Raft's own.
pub trait ControllerApis: Send + Sync + 'static {
    /// Answers `body` at `version`, or `None` for an API this listener does not serve.
    fn handle<'a>(
        &'a self,
        version: i16,
        body: RequestKind,
    ) -> Pin<Box<dyn Future<Output = Option<ResponseKind>> + Send + 'a>>;
}

/// Accepts connections until the task is dropped. Connections live in a `JoinSet` owned by this
/// task, so aborting it (node shutdown) closes every connection too: a peer must see its old
/// connection to a stopped node fail, not keep talking to a Raft that no longer runs.
pub async fn serve(listener: TcpListener, raft: Raft, apis: Arc<dyn ControllerApis>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let raft = raft.clone();
                    let apis = apis.clone();
                    connections.spawn(async move {
                        if let Err(e) = connection(stream, raft, apis).await {
                            tracing::info!(%peer, error = %e, "controller connection closed");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "controller listener accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn connection(
    mut stream: TcpStream,
    raft: Raft,
    apis: Arc<dyn ControllerApis>,
) -> Result<(), String> {
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    while let Some(frame) = read_frame(&mut stream, MAX_FRAME_BYTES)
        .await
        .map_err(|e| e.to_string())?
    {
        let req = RequestFrame::decode(&frame).map_err(|e| e.to_string())?;
        let version = req.header.request_api_version;
        let correlation_id = req.header.correlation_id;
        let api = req.body.api_key();
        tracing::debug!(
            api_key = api.key(),
            api_version = version,
            correlation_id,
            "controller request"
        );
        let body = match raft_rpc(&raft, req.body).await {
            Ok(b) => b,
            Err(other) => match apis.handle(version, other).await {
                Some(b) => b,
                None => return Err(format!("{api} is not served on the controller listener")),
            },
        };
        let out = ResponseFrame {
            correlation_id,
            api_version: version,
            body,
        }
        .encode()
        .map_err(|e| e.to_string())?;
        stream.write_all(&out).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Answers one of openraft's RPCs (private API keys) with the local Raft node; any other
/// request is handed back. Brokers that are not voters serve these on their client listener:
/// they follow the metadata log as learners, and the active controller pushes to them there.
pub async fn raft_rpc(raft: &Raft, body: RequestKind) -> Result<ResponseKind, RequestKind> {
    Ok(match body {
        RequestKind::RaftVote(r) => ResponseKind::RaftVote(vote(raft, r).await),
        RequestKind::RaftAppendEntries(r) => ResponseKind::RaftAppendEntries(append(raft, r).await),
        RequestKind::RaftInstallSnapshot(r) => {
            ResponseKind::RaftInstallSnapshot(snapshot(raft, r).await)
        }
        other => return Err(other),
    })
}

const INVALID: i16 = ErrorCode::InvalidRequest.code();
const UNKNOWN: i16 = ErrorCode::UnknownServerError.code();

async fn vote(raft: &Raft, r: RaftVoteRequest) -> RaftVoteResponse {
    let fail = |code| RaftVoteResponse {
        error_code: code,
        ..Default::default()
    };
    let (Ok(v), Ok(last)) = (r.vote.to_vote(), r.last_log_id.to_log_id()) else {
        return fail(INVALID);
    };
    match raft
        .vote(VoteRequest {
            vote: v,
            last_log_id: last,
        })
        .await
    {
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

async fn append(raft: &Raft, r: RaftAppendEntriesRequest) -> RaftAppendEntriesResponse {
    let fail = |code| RaftAppendEntriesResponse {
        error_code: code,
        ..Default::default()
    };
    let parsed = (|| {
        let entries = r
            .entries
            .iter()
            .map(entry_from_wire)
            .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, crate::convert::ConvertError>(AppendEntriesRequest {
            vote: r.vote.to_vote()?,
            prev_log_id: r.prev_log_id.to_log_id()?,
            leader_commit: r.leader_commit.to_log_id()?,
            entries,
        })
    })();
    let Ok(req) = parsed else {
        return fail(INVALID);
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

async fn snapshot(raft: &Raft, r: RaftInstallSnapshotRequest) -> RaftInstallSnapshotResponse {
    let fail = |code| RaftInstallSnapshotResponse {
        error_code: code,
        ..Default::default()
    };
    let parsed = (|| {
        Ok::<_, crate::convert::ConvertError>(InstallSnapshotRequest {
            vote: r.vote.to_vote()?,
            meta: SnapshotMeta {
                last_log_id: r.last_log_id.to_log_id()?,
                last_membership: StoredMembership::new(
                    r.last_membership_log_id.to_log_id()?,
                    r.last_membership.to_membership()?,
                ),
                snapshot_id: r.snapshot_id.clone(),
            },
            offset: r.offset.max(0) as u64,
            data: r.data.to_vec(),
            done: r.done,
        })
    })();
    let Ok(req) = parsed else {
        return fail(INVALID);
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
