//! What a classic member is answered: now or later ([`Pending`]), and the answers that only
//! carry an error.

use rafka_protocol::messages::{JoinGroupResponse, SyncGroupResponse};
use rafka_protocol::ErrorCode;
use tokio::sync::oneshot;

/// An answer now, or a channel it will arrive on.
pub(super) enum Reply<T> {
    Now(T),
    Wait(oneshot::Receiver<T>),
}

/// A JoinGroup or SyncGroup answer, now or to wait for.
pub struct Pending<T>(pub(super) Reply<T>);

impl<T> Pending<T> {
    /// An answer given at once.
    pub fn now(t: T) -> Pending<T> {
        Pending(Reply::Now(t))
    }
}

/// A JoinGroup answer that only carries an error.
pub(super) fn join_error(member_id: &str, code: ErrorCode) -> JoinGroupResponse {
    JoinGroupResponse {
        error_code: code.code(),
        member_id: member_id.to_string(),
        protocol_name: None,
        ..Default::default()
    }
}

/// A SyncGroup answer that only carries an error.
pub(super) fn sync_error(code: ErrorCode) -> SyncGroupResponse {
    SyncGroupResponse {
        error_code: code.code(),
        ..Default::default()
    }
}
