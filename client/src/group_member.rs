//! [`GroupMember`]: a member of a classic consumer group (JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup, as Kafka's `ConsumerCoordinator` with the `range` assignor): it joins, computes
//! the assignment when it is the leader, heartbeats, and rejoins when the group rebalances.

use crate::client::Client;
use crate::consumer_protocol::{self, Assignment};
use crate::error::ClientError;
use rafka_protocol::messages::heartbeat_request::HeartbeatRequest;
use rafka_protocol::messages::join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol};
use rafka_protocol::messages::leave_group_request::{LeaveGroupRequest, MemberIdentity};
use rafka_protocol::messages::sync_group_request::{SyncGroupRequest, SyncGroupRequestAssignment};
use rafka_protocol::ErrorCode;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct GroupMember {
    pub group: String,
    pub member_id: String,
    pub generation: i32,
    topics: Vec<String>,
    session_timeout_ms: i32,
    last_heartbeat: Instant,
}

impl GroupMember {
    pub fn new(group: &str, topics: Vec<String>) -> GroupMember {
        GroupMember {
            group: group.to_owned(),
            member_id: String::new(),
            generation: -1,
            topics,
            session_timeout_ms: 45_000,
            last_heartbeat: Instant::now(),
        }
    }

    /// `session.timeout.ms` (45 s by default, as Kafka's consumer): how long the coordinator keeps
    /// a member that stopped heartbeating.
    pub fn with_session_timeout(mut self, ms: i32) -> GroupMember {
        self.session_timeout_ms = ms;
        self
    }

    /// Joins (or rejoins) the group and returns this member's assignment.
    pub async fn join(&mut self, client: &mut Client) -> Result<Assignment, ClientError> {
        let deadline = Instant::now() + client.config().api_timeout;
        loop {
            match self.join_once(client).await {
                Ok(a) => {
                    self.last_heartbeat = Instant::now();
                    return Ok(a);
                }
                Err(e)
                    if Instant::now() < deadline
                        && (e.is_retriable()
                            || matches!(
                                e.code(),
                                Some(
                                    ErrorCode::MemberIdRequired
                                        | ErrorCode::RebalanceInProgress
                                        | ErrorCode::UnknownMemberId
                                        | ErrorCode::IllegalGeneration
                                )
                            )) =>
                {
                    if e.code() == Some(ErrorCode::UnknownMemberId) {
                        self.member_id.clear();
                    }
                    tracing::debug!(group = %self.group, error = %e, "rejoining");
                    if e.code() != Some(ErrorCode::MemberIdRequired) {
                        tokio::time::sleep(client.config().retry_backoff).await;
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn join_once(&mut self, client: &mut Client) -> Result<Assignment, ClientError> {
        let coordinator = client.coordinator(&self.group, 0).await?;
        let join = JoinGroupRequest {
            group_id: self.group.clone(),
            session_timeout_ms: self.session_timeout_ms,
            rebalance_timeout_ms: 60_000,
            member_id: self.member_id.clone(),
            protocol_type: "consumer".into(),
            protocols: vec![JoinGroupRequestProtocol {
                name: "range".into(),
                metadata: consumer_protocol::encode_subscription(&self.topics).into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let r = client.send_to(coordinator, join).await?;
        if ErrorCode::from_code(r.error_code) == Some(ErrorCode::MemberIdRequired) {
            self.member_id = r.member_id.clone();
        }
        ClientError::check(format!("group {}", self.group), r.error_code, None)?;
        self.member_id = r.member_id.clone();
        self.generation = r.generation_id;
        let assignments = if r.leader == r.member_id {
            let mut subscriptions = BTreeMap::new();
            let mut topics: Vec<String> = Vec::new();
            for m in &r.members {
                let ts =
                    consumer_protocol::decode_subscription_topics(&m.metadata).unwrap_or_default();
                topics.extend(ts.iter().cloned());
                subscriptions.insert(m.member_id.clone(), ts);
            }
            topics.sort();
            topics.dedup();
            let mut counts = BTreeMap::new();
            for ((t, _), _) in client.leaders(&topics).await? {
                *counts.entry(t).or_insert(0) += 1;
            }
            consumer_protocol::range_assign(&subscriptions, &counts)
                .into_iter()
                .map(|(member_id, a)| SyncGroupRequestAssignment {
                    member_id,
                    assignment: consumer_protocol::encode_assignment(&a).into(),
                    ..Default::default()
                })
                .collect()
        } else {
            Vec::new()
        };
        let sync = SyncGroupRequest {
            group_id: self.group.clone(),
            generation_id: self.generation,
            member_id: self.member_id.clone(),
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignments,
            ..Default::default()
        };
        let s = client.send_to(coordinator, sync).await?;
        ClientError::check(format!("group {}", self.group), s.error_code, None)?;
        consumer_protocol::decode_assignment(&s.assignment).ok_or_else(|| {
            ClientError::Protocol(format!("group {}: malformed assignment", self.group))
        })
    }

    /// Heartbeats if a third of the session has passed; `Ok(true)` when the group is
    /// rebalancing and this member must rejoin.
    pub async fn heartbeat(&mut self, client: &mut Client) -> Result<bool, ClientError> {
        if self.last_heartbeat.elapsed() < Duration::from_millis(self.session_timeout_ms as u64 / 3)
        {
            return Ok(false);
        }
        let coordinator = client.coordinator(&self.group, 0).await?;
        let r = client
            .send_to(
                coordinator,
                HeartbeatRequest {
                    group_id: self.group.clone(),
                    generation_id: self.generation,
                    member_id: self.member_id.clone(),
                    ..Default::default()
                },
            )
            .await?;
        self.last_heartbeat = Instant::now();
        match ErrorCode::from_code(r.error_code) {
            Some(ErrorCode::None) => Ok(false),
            Some(ErrorCode::RebalanceInProgress | ErrorCode::IllegalGeneration) => Ok(true),
            Some(ErrorCode::UnknownMemberId) => {
                self.member_id.clear();
                Ok(true)
            }
            _ => ClientError::check(format!("group {}", self.group), r.error_code, None)
                .map(|()| false),
        }
    }

    /// Commits `offsets` (by topic, partition) as this member.
    pub async fn commit(
        &self,
        client: &mut Client,
        offsets: &BTreeMap<(String, i32), i64>,
    ) -> Result<(), ClientError> {
        client
            .commit_offsets(&self.group, self.generation, &self.member_id, offsets)
            .await
    }

    /// Leaves the group (best effort: the session timeout removes a member that cannot).
    pub async fn leave(&mut self, client: &mut Client) {
        if self.member_id.is_empty() {
            return;
        }
        let Ok(coordinator) = client.coordinator(&self.group, 0).await else {
            return;
        };
        let group = self.group.clone();
        let member = self.member_id.clone();
        if let Ok(conn) = client.broker(coordinator).await {
            let _ = conn
                .send_with(|v| LeaveGroupRequest {
                    group_id: group.clone(),
                    member_id: if v < 3 { member.clone() } else { String::new() },
                    members: if v >= 3 {
                        vec![MemberIdentity {
                            member_id: member.clone(),
                            ..Default::default()
                        }]
                    } else {
                        Vec::new()
                    },
                    ..Default::default()
                })
                .await;
        }
        self.member_id.clear();
    }
}
