//! The classic group APIs (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) at the coordinator:
//! each goes to the kind of group its id names, as Kafka's `GroupMetadataManager.classicGroup*`
//! dispatch — a classic group ([`super::membership`]), or a consumer group with members, whose
//! classic members speak them (KIP-848's online migration, [`super::consumer`]'s `classic`
//! part). A JoinGroup to an *empty* consumer group turns it back into a classic group first.
//!
//! The route is taken under the coordinator's partitions lock, the lock every conversion between
//! the two kinds also holds (ConsumerGroupHeartbeat, member expiry), so a request never sees a
//! group half converted, and a classic group is never created beside a consumer group of the
//! same id. Consumer-group changes are appended to `__consumer_offsets` under that lock and
//! answered once replicated, as the consumer heartbeat does.

use super::consumer::ClassicRoute;
use super::membership::{self, GroupMembership};
use super::GroupCoordinator;
use rafka_controller::image::MetadataImage;
use rafka_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use rafka_protocol::ErrorCode;
use std::time::{Duration, Instant};

/// What a routed request does once the lock is released.
enum Step<T, P> {
    /// Answered by the classic groups (the answer may wait for the join or sync phase).
    Classic(P),
    /// Answered now.
    Now(T),
    /// Answered once `__consumer_offsets` has replicated up to this offset.
    Replicated(i64, T),
}

impl GroupCoordinator {
    /// Routes one classic request under the partitions lock: `consumer` answers it if the group
    /// is a consumer group, with records to append first; `classic` otherwise.
    fn route<T, P>(
        &self,
        image: &MetadataImage,
        group: &str,
        consumer: impl FnOnce() -> ClassicRoute<T>,
        classic: impl FnOnce() -> P,
    ) -> Result<Step<T, P>, ErrorCode> {
        let p = self.check(group)?;
        let parts = self.lock();
        if !parts.get(&p).is_some_and(|s| s.loaded) {
            return Err(ErrorCode::NotCoordinator);
        }
        match consumer() {
            ClassicRoute::NotConsumerGroup => Ok(Step::Classic(classic())),
            ClassicRoute::Answer { response, records } if records.is_empty() => {
                Ok(Step::Now(response))
            }
            ClassicRoute::Answer { response, records } => {
                let encoded: Vec<_> = records.iter().map(|(g, r)| r.encode(g)).collect();
                match self.append(image, p, &encoded) {
                    Ok(required) => Ok(Step::Replicated(required, response)),
                    Err(e) => {
                        // The change stays in memory (as the consumer heartbeat's); the member
                        // retries.
                        tracing::warn!(group, error = ?e, "cannot write consumer group records");
                        Err(e)
                    }
                }
            }
        }
    }

    async fn replicated(
        &self,
        image: &MetadataImage,
        group: &str,
        required: i64,
        timeout: Duration,
    ) -> Result<(), ErrorCode> {
        let deadline = tokio::time::Instant::now() + timeout;
        self.wait_for_commit(image, group, required, deadline).await
    }

    /// JoinGroup.
    pub async fn join_group(
        &self,
        image: &MetadataImage,
        version: i16,
        req: JoinGroupRequest,
        client_id: &str,
        client_host: &str,
        commit_timeout: Duration,
    ) -> JoinGroupResponse {
        let group = req.group_id.clone();
        let member_id = req.member_id.clone();
        let fail = |code: ErrorCode| {
            membership::finish_join_response(
                version,
                JoinGroupResponse {
                    error_code: code.code(),
                    generation_id: -1,
                    member_id: member_id.clone(),
                    ..Default::default()
                },
            )
        };
        // The request's own checks come first, whichever kind of group it reaches.
        if let Err(code) = self.membership.check_join(&req) {
            return fail(code);
        }
        let step = self.route(
            image,
            &group,
            || {
                match self.consumer.is_empty_group(&group) {
                    // An empty consumer group becomes classic (Kafka's downgrade of an empty
                    // group): the join then goes to the classic groups.
                    Some(true) => match self.convert_empty_consumer_group(image, &group) {
                        Ok(()) => ClassicRoute::NotConsumerGroup,
                        Err(e) => ClassicRoute::Answer {
                            response: fail(e),
                            records: Vec::new(),
                        },
                    },
                    Some(false) => self.consumer.classic_join(
                        version,
                        &req,
                        client_id,
                        client_host,
                        image,
                        Instant::now(),
                    ),
                    None => ClassicRoute::NotConsumerGroup,
                }
            },
            || {
                self.membership
                    .join_begin(version, req.clone(), client_id, client_host)
            },
        );
        match step {
            Err(e) => fail(e),
            Ok(Step::Classic(pending)) => {
                self.membership
                    .join_wait(version, &member_id, pending)
                    .await
            }
            Ok(Step::Now(r)) => membership::finish_join_response(version, r),
            Ok(Step::Replicated(required, r)) => {
                match self
                    .replicated(image, &group, required, commit_timeout)
                    .await
                {
                    Ok(()) => membership::finish_join_response(version, r),
                    Err(e) => fail(e),
                }
            }
        }
    }

    /// SyncGroup.
    pub async fn sync_group(
        &self,
        image: &MetadataImage,
        version: i16,
        req: SyncGroupRequest,
    ) -> SyncGroupResponse {
        let _ = version; // no version-dependent behaviour: v5's protocol fields are ignorable.
        let fail = |code: ErrorCode| SyncGroupResponse {
            error_code: code.code(),
            ..Default::default()
        };
        if req.group_id.is_empty() {
            return fail(ErrorCode::InvalidGroupId);
        }
        let step = self.route(
            image,
            &req.group_id,
            || self.consumer.classic_sync(&req, image, Instant::now()),
            || self.membership.sync_begin(req.clone()),
        );
        match step {
            Err(e) => fail(e),
            Ok(Step::Classic(pending)) => GroupMembership::sync_wait(pending).await,
            Ok(Step::Now(r) | Step::Replicated(_, r)) => r,
        }
    }

    /// Heartbeat.
    pub fn heartbeat(
        &self,
        image: &MetadataImage,
        version: i16,
        req: HeartbeatRequest,
    ) -> HeartbeatResponse {
        if req.group_id.is_empty() {
            return self.membership.heartbeat(version, req);
        }
        let step = self.route(
            image,
            &req.group_id,
            || self.consumer.classic_heartbeat(&req, Instant::now()),
            || self.membership.heartbeat(version, req.clone()),
        );
        match step {
            Err(e) => HeartbeatResponse {
                error_code: e.code(),
                ..Default::default()
            },
            Ok(Step::Classic(r)) => r,
            Ok(Step::Now(code) | Step::Replicated(_, code)) => HeartbeatResponse {
                error_code: code.code(),
                ..Default::default()
            },
        }
    }

    /// LeaveGroup.
    pub async fn leave_group(
        &self,
        image: &MetadataImage,
        version: i16,
        req: LeaveGroupRequest,
        commit_timeout: Duration,
    ) -> LeaveGroupResponse {
        let top = |code: ErrorCode| LeaveGroupResponse {
            error_code: code.code(),
            ..Default::default()
        };
        if req.group_id.is_empty() {
            return top(ErrorCode::InvalidGroupId);
        }
        let group = req.group_id.clone();
        let leaving = membership::leaving_members(version, &req);
        let step = self.route(
            image,
            &group,
            || self.consumer.classic_leave(&group, &leaving, image),
            || self.membership.leave_group(version, req.clone()),
        );
        match step {
            Err(e) => top(e),
            Ok(Step::Classic(r)) => r,
            Ok(Step::Now(members)) => membership::leave_response(version, members),
            Ok(Step::Replicated(required, members)) => {
                match self
                    .replicated(image, &group, required, commit_timeout)
                    .await
                {
                    Ok(()) => membership::leave_response(version, members),
                    Err(e) => top(e),
                }
            }
        }
    }
}
