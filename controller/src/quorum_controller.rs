//! `QuorumController`: runs the controller logic ([`control`](crate::control)) on the Raft
//! leader, one event at a time, as Kafka's single controller thread does.
//!
//! Each request is validated against the image as of every earlier committed write, turned into
//! records, committed through Raft (`client_write` returns once the records are applied here),
//! and only then answered. A node that is not the leader answers NOT_CONTROLLER, so a broker
//! looks for the active controller elsewhere. A periodic tick fences brokers whose session has
//! expired and, on a new leader, writes the cluster id if the log has none. A broker that
//! registers and is not a voter is added as a Raft learner, so that it follows the log; the
//! leader pushes the log to the learner listener it registered (never to a client listener:
//! see [`crate::server`]).
//!
//! Serialisation is by an mpsc queue drained by one task — no lock is held across `.await`.

use crate::control::heartbeat_tracker::BrokerHeartbeatTracker;
use crate::control::{ActiveController, ControllerConfig, ControllerResult};
use crate::describe_quorum::QuorumInfo;
use crate::raft_types::{MetadataCommand, NodeId, Raft};
use crate::server::ControllerApis;
use crate::state_machine::StateMachine;
use openraft::BasicNode;
use rafka_protocol::messages::*;
use rafka_protocol::ErrorCode;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How often the active controller looks for expired broker sessions.
const TICK: Duration = Duration::from_millis(50);

enum Event {
    Request {
        version: i16,
        body: RequestKind,
        reply: oneshot::Sender<Option<ResponseKind>>,
    },
    /// A broker's heartbeat connection closed.
    HeartbeatConnectionClosed { broker_id: i32 },
}

/// The handle the controller listener and a combined node's broker use.
#[derive(Clone)]
pub struct QuorumController {
    events: mpsc::Sender<Event>,
    node_id: NodeId,
    raft: Raft,
    listener_name: String,
    /// Heartbeats recorded as they arrive, before they queue (shared with the event loop's
    /// broker sessions; see [`crate::control::heartbeat_tracker`]).
    heartbeats: Arc<BrokerHeartbeatTracker>,
}

impl QuorumController {
    /// Starts the event loop for the node `node_id`.
    pub fn start(
        node_id: NodeId,
        raft: Raft,
        sm: StateMachine,
        config: ControllerConfig,
    ) -> QuorumController {
        let (tx, rx) = mpsc::channel(1024);
        let listener_name = config.controller_listener_name.clone();
        let heartbeats = Arc::new(BrokerHeartbeatTracker::default());
        let lp = EventLoop {
            heartbeats: heartbeats.clone(),
            node_id,
            raft: raft.clone(),
            sm,
            config,
            active: None,
            seed: node_id ^ 0x5eed,
            last_balance: Instant::now(),
            active_term: 0,
            previous_leader: None,
        };
        tokio::spawn(lp.run(rx));
        QuorumController {
            events: tx,
            node_id,
            raft,
            listener_name,
            heartbeats,
        }
    }

    /// Handles a controller API request (the same path for a remote broker and for the broker of
    /// a combined node). `None`: not a controller API.
    pub async fn handle_request(&self, version: i16, body: RequestKind) -> Option<ResponseKind> {
        if let RequestKind::DescribeQuorum(r) = body {
            // Read-only, from Raft's metrics: no need to queue behind writes.
            return Some(ResponseKind::DescribeQuorum(
                crate::describe_quorum::handle(
                    self.node_id,
                    &QuorumInfo::of(&self.raft),
                    &QuorumInfo::endpoints(&self.raft),
                    &self.listener_name,
                    version,
                    r,
                ),
            ));
        }
        if let RequestKind::BrokerHeartbeat(r) = &body {
            // The contact counts from now, however long the queue ahead of it.
            self.heartbeats
                .heard_from(r.broker_id, r.broker_epoch, Instant::now());
        }
        let (reply, rx) = oneshot::channel();
        if self
            .events
            .send(Event::Request {
                version,
                body,
                reply,
            })
            .await
            .is_err()
        {
            return None;
        }
        rx.await.ok().flatten()
    }
}

impl ControllerApis for QuorumController {
    fn handle<'a>(
        &'a self,
        version: i16,
        body: RequestKind,
    ) -> Pin<Box<dyn Future<Output = Option<ResponseKind>> + Send + 'a>> {
        Box::pin(self.handle_request(version, body))
    }

    fn heartbeat_connection_closed(&self, broker_id: i32) {
        // Called from a connection's drop: never waits. A full queue drops the hint; the
        // session timeout still holds.
        let _ = self
            .events
            .try_send(Event::HeartbeatConnectionClosed { broker_id });
    }
}

struct EventLoop {
    node_id: NodeId,
    /// The request path's record of arriving heartbeats, handed to each new active controller.
    heartbeats: Arc<BrokerHeartbeatTracker>,
    raft: Raft,
    sm: StateMachine,
    config: ControllerConfig,
    /// Present while this node is the Raft leader.
    active: Option<ActiveController>,
    seed: u64,
    /// When leader balance was last checked.
    last_balance: Instant,
    /// The Raft term `active` was built in.
    active_term: u64,
    /// The last other node this one saw lead the quorum. When this node takes over, that node
    /// has most likely died (or paused) with its in-process broker: its leaderships move at once
    /// (see [`ActiveController::broker_likely_dead`]).
    previous_leader: Option<NodeId>,
}

fn random_bits() -> u128 {
    // Topic and cluster ids: the OS's randomness through std's hasher seeds, mixed with time.
    use std::hash::{BuildHasher, Hasher};
    let mut a = std::collections::hash_map::RandomState::new().build_hasher();
    a.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    let mut b = std::collections::hash_map::RandomState::new().build_hasher();
    b.write_u64(a.finish());
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

/// Waits for a write to the Raft log (`op`) only as long as node `me` leads the term it wrote in
/// (as `metrics` shows it). openraft 0.9 can leave a write unanswered for ever when its
/// leadership ends under it (seen: a node restarted as leader of its old term took a write,
/// learned of a newer term 8 ms later and then had its log replaced by a snapshot; the write
/// never returned and the event loop — every request to the node — hung with it, even once the
/// node led again). The write's fate is then unknown, as Kafka's controller's is when it
/// renounces: the request is answered NOT_CONTROLLER, and the next activation's own write,
/// applied before anything is generated, brings in whatever did commit.
///
/// `term` is the term the records were made in (the active controller's), so a node that lost
/// and won leadership again since does not submit records made from the old term's state: `op`
/// is not polled — an openraft write is submitted on its first poll — unless `term` is still
/// led here. (openraft 0.9 takes no expected term, so a change between that look and the first
/// poll, a few microseconds of this task's own code, is not covered.)
async fn while_leading<T, E: std::fmt::Display>(
    mut metrics: tokio::sync::watch::Receiver<openraft::RaftMetrics<NodeId, BasicNode>>,
    me: NodeId,
    term: u64,
    op: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    let led = |m: &openraft::RaftMetrics<NodeId, BasicNode>| {
        m.current_term == term && m.current_leader == Some(me)
    };
    if !led(&metrics.borrow()) {
        return Err(format!("not the leader of term {term}: nothing written"));
    }
    let deposed = metrics.wait_for(|m| !led(m));
    tokio::select! {
        biased;
        r = op => r.map_err(|e| e.to_string()),
        d = deposed => Err(match d {
            Ok(_) => format!("no longer the leader of term {term}: the write's outcome is unknown"),
            Err(_) => "raft stopped".to_owned(),
        }),
    }
}

impl EventLoop {
    async fn run(mut self, mut rx: mpsc::Receiver<Event>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Some(Event::Request { version, body, reply }) => {
                        let resp = self.request(version, body).await;
                        let _ = reply.send(resp);
                    }
                    Some(Event::HeartbeatConnectionClosed { broker_id }) => {
                        self.heartbeat_connection_closed(broker_id).await;
                    }
                    None => return,
                },
                _ = tick.tick() => self.tick().await,
            }
        }
    }

    /// A broker's heartbeat connection closed: it has most likely died. Its leaderships and ISR
    /// places move now; it is fenced when its session expires unless it heartbeats again (see
    /// `control::heartbeats` for why not at once).
    async fn heartbeat_connection_closed(&mut self, broker_id: i32) {
        if !self.activate().await {
            return;
        }
        self.likely_dead(broker_id, "heartbeat connection closed")
            .await;
    }

    /// Commits the changes for a broker that has most likely died (see
    /// [`ActiveController::broker_likely_dead`]).
    async fn likely_dead(&mut self, broker_id: i32, why: &'static str) {
        let image = self.sm.image();
        let Some(active) = self.active.as_ref() else {
            return;
        };
        let result = active.broker_likely_dead(&image, broker_id);
        if result.response {
            tracing::info!(
                node_id = broker_id,
                partitions = result.records.len(),
                why,
                "broker most likely dead: its leaderships and ISR places move now; fenced when its session expires unless it heartbeats"
            );
        }
        let _ = self.commit(result).await;
    }

    fn is_leader(&self) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        m.current_leader == Some(self.node_id) && m.state.is_leader()
    }

    /// The metadata offset the next write will be committed at.
    fn next_write_offset(&self) -> i64 {
        self.raft
            .metrics()
            .borrow()
            .last_log_index
            .map_or(0, |i| i as i64 + 1)
    }

    /// Keeps `active` in step with leadership; a new leader first makes sure the cluster has an id.
    async fn activate(&mut self) -> bool {
        if let Some(l) = self.raft.metrics().borrow().current_leader {
            if l != self.node_id {
                self.previous_leader = Some(l);
            }
        }
        if !self.is_leader() {
            if self.active.take().is_some() {
                tracing::info!(node_id = self.node_id, "no longer the active controller");
            }
            return false;
        }
        let term = self.raft.metrics().borrow().current_term;
        if self.active.is_some() && self.active_term != term {
            // Leadership was lost and won again between two looks: the sessions and state of
            // the old term are stale (brokers heartbeated to another controller meanwhile), and
            // fencing by them would fence live brokers. Start over, as a new leader does.
            tracing::info!(
                node_id = self.node_id,
                old_term = self.active_term,
                term,
                "active controller again in a new term"
            );
            self.active = None;
        }
        if self.active.is_none() {
            // Kafka's controller claims leadership only once it has replayed up to a record of
            // its own: a new leader's log may hold entries it has not applied yet (openraft can
            // bring a restarted node back as leader of its old term without a new entry), and
            // generating records from a stale image would commit conflicting ones.
            if !self
                .write(vec![MetadataRecord::NoOp(Default::default())])
                .await
            {
                return false;
            }
            let image = self.sm.image();
            let now = Instant::now();
            let mut active = ActiveController::new(self.config.clone(), &image, now, self.seed);
            active.heartbeats_mut().use_tracker(self.heartbeats.clone());
            self.seed = self.seed.wrapping_add(1);
            if let Some(r) = active.cluster_id_record(&image, &mut random_bits) {
                if !self.write(vec![r]).await {
                    return false;
                }
            }
            tracing::info!(node_id = self.node_id, term, "became the active controller");
            self.active = Some(active);
            self.active_term = term;
            // The previous active controller's node has most likely died (or paused) with its
            // in-process broker: its leaderships move now, as for a closed heartbeat connection.
            // Once: a later takeover without another leader between has no predecessor.
            if let Some(prev) = self
                .previous_leader
                .take()
                .and_then(|p| i32::try_from(p).ok())
            {
                self.likely_dead(prev, "it was the previous active controller")
                    .await;
            }
            return self.active.is_some();
        }
        true
    }

    /// The term records are made in: the active controller's, or — while activating, before
    /// there is one — the current term.
    fn records_term(&self) -> u64 {
        if self.active.is_some() {
            self.active_term
        } else {
            self.raft.metrics().borrow().current_term
        }
    }

    /// Commits records; false if this node lost leadership meanwhile.
    async fn write(&mut self, records: Vec<MetadataRecord>) -> bool {
        if records.is_empty() {
            return true;
        }
        let outcome = while_leading(
            self.raft.metrics(),
            self.node_id,
            self.records_term(),
            self.raft.client_write(MetadataCommand { records }),
        )
        .await;
        match outcome {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(node_id = self.node_id, error = %e, "metadata write failed");
                self.active = None;
                false
            }
        }
    }

    /// A registered broker that is not a voter follows the metadata log as a Raft learner,
    /// reached at the learner listener it registered (named
    /// [`LEARNER_LISTENER_NAME`](crate::server::LEARNER_LISTENER_NAME); the leader pushes the
    /// log there). A learner already known at that address is left alone; a new address
    /// replaces the old one. A broker without one is not added: its client listeners refuse
    /// Raft's RPCs.
    async fn follow_as_learner(&self, r: &BrokerRegistrationRequest) {
        let Ok(id) = NodeId::try_from(r.broker_id) else {
            return;
        };
        let Some(listener) = r
            .listeners
            .iter()
            .find(|l| l.name == crate::server::LEARNER_LISTENER_NAME)
        else {
            let is_voter = self
                .raft
                .metrics()
                .borrow()
                .membership_config
                .membership()
                .voter_ids()
                .any(|v| v == id);
            if !is_voter {
                tracing::warn!(
                    broker_id = id,
                    "the broker registered no learner listener: it cannot follow the metadata log"
                );
            }
            return;
        };
        let addr = format!("{}:{}", listener.host, listener.port);
        let known = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            let membership = m.membership_config.membership();
            if membership.voter_ids().any(|v| v == id) {
                return;
            }
            membership.get_node(&id).map(|n| n.addr.clone())
        };
        if known.as_deref() == Some(addr.as_str()) {
            return;
        }
        // A broker whose learner listener moved (a restart on another port) keeps its place as
        // a learner with the new address: `add_learner` leaves a known node alone, so the
        // address is replaced with `SetNodes` — safe for a learner, which never votes.
        let node = BasicNode { addr: addr.clone() };
        let res = if known.is_some() {
            let change = self.raft.change_membership(
                openraft::ChangeMembers::SetNodes(std::collections::BTreeMap::from([(id, node)])),
                false,
            );
            while_leading(
                self.raft.metrics(),
                self.node_id,
                self.records_term(),
                change,
            )
            .await
            .map(|_| ())
        } else {
            let add = self.raft.add_learner(id, node, false);
            while_leading(self.raft.metrics(), self.node_id, self.records_term(), add)
                .await
                .map(|_| ())
        };
        match res {
            Ok(_) => {
                tracing::info!(broker_id = id, %addr, "broker follows the metadata log as a learner")
            }
            Err(e) => {
                tracing::warn!(broker_id = id, %addr, error = %e, "cannot add the broker as a learner")
            }
        }
    }

    async fn commit<T>(&mut self, result: ControllerResult<T>) -> Option<T> {
        self.write(result.records).await.then_some(result.response)
    }

    async fn tick(&mut self) {
        if !self.activate().await {
            return;
        }
        let image = self.sm.image();
        let Some(active) = self.active.as_mut() else {
            return;
        };
        let result = active.fence_expired(&image, Instant::now());
        if !result.response.is_empty() {
            tracing::warn!(brokers = ?result.response, "fencing brokers whose session expired");
        }
        let _ = self.commit(result).await;
        if self.last_balance.elapsed() >= self.config.leader_imbalance_check_interval {
            self.last_balance = Instant::now();
            let image = self.sm.image();
            let Some(active) = self.active.as_ref() else {
                return;
            };
            let result = active.balance_partition_leaders(&image);
            if result.response > 0 {
                tracing::info!(
                    partitions = result.response,
                    "auto leader rebalance: preferred replicas lead again"
                );
            }
            let _ = self.commit(result).await;
        }
    }

    async fn request(&mut self, version: i16, body: RequestKind) -> Option<ResponseKind> {
        if !served(&body) {
            return None;
        }
        if !self.activate().await {
            return Some(not_controller(version, &body));
        }
        let image = self.sm.image();
        let next = self.next_write_offset();
        let now = Instant::now();
        let active = self.active.as_mut().expect("invariant: activated above");
        let fallback = not_controller(version, &body);
        let resp = match &body {
            RequestKind::BrokerRegistration(r) => {
                let res = active.register_broker(&image, r, next, now);
                let resp = self.commit(res).await;
                if resp.as_ref().is_some_and(|b| b.error_code == 0) {
                    self.follow_as_learner(r).await;
                }
                resp.map(ResponseKind::BrokerRegistration)
            }
            RequestKind::BrokerHeartbeat(r) => {
                let res = active.broker_heartbeat(&image, r, next, now);
                self.commit(res).await.map(ResponseKind::BrokerHeartbeat)
            }
            RequestKind::AlterPartition(r) => {
                let res = active.alter_partition(&image, r);
                self.commit(res).await.map(ResponseKind::AlterPartition)
            }
            RequestKind::AssignReplicasToDirs(r) => {
                let res = active.assign_replicas_to_dirs(&image, r);
                self.commit(res)
                    .await
                    .map(ResponseKind::AssignReplicasToDirs)
            }
            RequestKind::AllocateProducerIds(r) => {
                let res = active.allocate_producer_ids(&image, r);
                self.commit(res)
                    .await
                    .map(ResponseKind::AllocateProducerIds)
            }
            RequestKind::CreateTopics(r) => {
                let res = active.create_topics(&image, r, &mut random_bits);
                self.commit(res).await.map(ResponseKind::CreateTopics)
            }
            RequestKind::DeleteTopics(r) => {
                let res = active.delete_topics(&image, r, version);
                self.commit(res).await.map(ResponseKind::DeleteTopics)
            }
            RequestKind::CreatePartitions(r) => {
                let res = active.create_partitions(&image, r);
                self.commit(res).await.map(ResponseKind::CreatePartitions)
            }
            RequestKind::IncrementalAlterConfigs(r) => {
                let res = active.incremental_alter_configs(&image, r);
                self.commit(res)
                    .await
                    .map(ResponseKind::IncrementalAlterConfigs)
            }
            RequestKind::AlterConfigs(r) => {
                let res = active.alter_configs(&image, r);
                self.commit(res).await.map(ResponseKind::AlterConfigs)
            }
            RequestKind::ElectLeaders(r) => {
                let res = active.elect_leaders(&image, r);
                self.commit(res).await.map(ResponseKind::ElectLeaders)
            }
            RequestKind::AlterUserScramCredentials(r) => {
                let res = active.alter_user_scram_credentials(&image, r);
                self.commit(res)
                    .await
                    .map(ResponseKind::AlterUserScramCredentials)
            }
            RequestKind::CreateAcls(r) => {
                let res = active.create_acls(&image, r, &mut random_bits);
                self.commit(res).await.map(ResponseKind::CreateAcls)
            }
            RequestKind::DeleteAcls(r) => {
                let res = active.delete_acls(&image, r);
                self.commit(res).await.map(ResponseKind::DeleteAcls)
            }
            _ => None,
        };
        Some(resp.unwrap_or(fallback))
    }
}

/// The APIs the controller serves (besides Raft's own).
fn served(body: &RequestKind) -> bool {
    matches!(
        body,
        RequestKind::BrokerRegistration(_)
            | RequestKind::BrokerHeartbeat(_)
            | RequestKind::AlterPartition(_)
            | RequestKind::AssignReplicasToDirs(_)
            | RequestKind::AllocateProducerIds(_)
            | RequestKind::CreateTopics(_)
            | RequestKind::DeleteTopics(_)
            | RequestKind::CreatePartitions(_)
            | RequestKind::IncrementalAlterConfigs(_)
            | RequestKind::AlterConfigs(_)
            | RequestKind::ElectLeaders(_)
            | RequestKind::AlterUserScramCredentials(_)
            | RequestKind::CreateAcls(_)
            | RequestKind::DeleteAcls(_)
    )
}

/// The answer of a node that is not (or no longer) the active controller: NOT_CONTROLLER in
/// every error field the response has, so the sender retries against the new leader.
pub fn not_controller(_version: i16, body: &RequestKind) -> ResponseKind {
    let code = ErrorCode::NotController.code();
    let msg = Some("this node is not the active controller".to_owned());
    match body {
        RequestKind::BrokerRegistration(_) => {
            ResponseKind::BrokerRegistration(BrokerRegistrationResponse {
                error_code: code,
                ..Default::default()
            })
        }
        RequestKind::BrokerHeartbeat(_) => ResponseKind::BrokerHeartbeat(BrokerHeartbeatResponse {
            error_code: code,
            ..Default::default()
        }),
        RequestKind::AlterPartition(_) => ResponseKind::AlterPartition(AlterPartitionResponse {
            error_code: code,
            ..Default::default()
        }),
        RequestKind::AssignReplicasToDirs(_) => {
            ResponseKind::AssignReplicasToDirs(AssignReplicasToDirsResponse {
                error_code: code,
                ..Default::default()
            })
        }
        RequestKind::AllocateProducerIds(_) => {
            ResponseKind::AllocateProducerIds(AllocateProducerIdsResponse {
                error_code: code,
                ..Default::default()
            })
        }
        RequestKind::CreateTopics(r) => ResponseKind::CreateTopics(CreateTopicsResponse {
            topics: r
                .topics
                .iter()
                .map(|t| create_topics_response::CreatableTopicResult {
                    name: t.name.clone(),
                    error_code: code,
                    error_message: msg.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        RequestKind::DeleteTopics(r) => {
            ResponseKind::DeleteTopics(DeleteTopicsResponse {
                responses: r
                    .topics
                    .iter()
                    .map(|t| delete_topics_response::DeletableTopicResult {
                        name: t.name.clone(),
                        topic_id: t.topic_id,
                        error_code: code,
                        ..Default::default()
                    })
                    .chain(r.topic_names.iter().map(|n| {
                        delete_topics_response::DeletableTopicResult {
                            name: Some(n.clone()),
                            error_code: code,
                            ..Default::default()
                        }
                    }))
                    .collect(),
                ..Default::default()
            })
        }
        RequestKind::CreatePartitions(r) => {
            ResponseKind::CreatePartitions(CreatePartitionsResponse {
                results: r
                    .topics
                    .iter()
                    .map(
                        |t| create_partitions_response::CreatePartitionsTopicResult {
                            name: t.name.clone(),
                            error_code: code,
                            error_message: msg.clone(),
                            ..Default::default()
                        },
                    )
                    .collect(),
                ..Default::default()
            })
        }
        RequestKind::IncrementalAlterConfigs(r) => {
            ResponseKind::IncrementalAlterConfigs(IncrementalAlterConfigsResponse {
                responses: r
                    .resources
                    .iter()
                    .map(
                        |c| incremental_alter_configs_response::AlterConfigsResourceResponse {
                            error_code: code,
                            error_message: msg.clone(),
                            resource_type: c.resource_type,
                            resource_name: c.resource_name.clone(),
                            ..Default::default()
                        },
                    )
                    .collect(),
                ..Default::default()
            })
        }
        RequestKind::AlterConfigs(r) => ResponseKind::AlterConfigs(AlterConfigsResponse {
            responses: r
                .resources
                .iter()
                .map(|c| alter_configs_response::AlterConfigsResourceResponse {
                    error_code: code,
                    error_message: msg.clone(),
                    resource_type: c.resource_type,
                    resource_name: c.resource_name.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        RequestKind::ElectLeaders(_) => ResponseKind::ElectLeaders(ElectLeadersResponse {
            error_code: code,
            ..Default::default()
        }),
        RequestKind::AlterUserScramCredentials(r) => {
            ResponseKind::AlterUserScramCredentials(scram_results(r, code, msg))
        }
        RequestKind::CreateAcls(r) => ResponseKind::CreateAcls(CreateAclsResponse {
            results: r
                .creations
                .iter()
                .map(|_| create_acls_response::AclCreationResult {
                    error_code: code,
                    error_message: msg.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        RequestKind::DeleteAcls(r) => ResponseKind::DeleteAcls(DeleteAclsResponse {
            filter_results: r
                .filters
                .iter()
                .map(|_| delete_acls_response::DeleteAclsFilterResult {
                    error_code: code,
                    error_message: msg.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        _ => ResponseKind::ApiVersions(ApiVersionsResponse {
            error_code: code,
            ..Default::default()
        }),
    }
}

/// An AlterUserScramCredentials answer with `code` for every user the request names.
pub fn scram_results(
    r: &AlterUserScramCredentialsRequest,
    code: i16,
    message: Option<String>,
) -> AlterUserScramCredentialsResponse {
    let mut users: Vec<&str> = Vec::new();
    for name in r
        .deletions
        .iter()
        .map(|d| d.name.as_str())
        .chain(r.upsertions.iter().map(|u| u.name.as_str()))
    {
        if !users.contains(&name) {
            users.push(name);
        }
    }
    AlterUserScramCredentialsResponse {
        results: users
            .into_iter()
            .map(
                |user| alter_user_scram_credentials_response::AlterUserScramCredentialsResult {
                    user: user.to_owned(),
                    error_code: code,
                    error_message: message.clone(),
                    ..Default::default()
                },
            )
            .collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::watch;

    fn leading(me: NodeId, term: u64) -> openraft::RaftMetrics<NodeId, BasicNode> {
        let mut m = openraft::RaftMetrics::new_initial(me);
        m.current_term = term;
        m.current_leader = Some(me);
        m
    }

    #[tokio::test]
    async fn a_write_left_unanswered_ends_when_its_leadership_does() {
        let (tx, rx) = watch::channel(leading(1, 7));
        let never = std::future::pending::<Result<(), String>>();
        let waiting = tokio::spawn(while_leading(rx, 1, 7, never));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !waiting.is_finished(),
            "still leading: the write is waited for"
        );
        // A newer term from another node.
        tx.send_modify(|m| {
            m.current_term = 8;
            m.current_leader = Some(2);
        });
        let r = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("returns once deposed")
            .expect("task");
        let e = r.expect_err("outcome unknown");
        assert!(e.contains("term 7"), "{e}");
    }

    #[tokio::test]
    async fn a_write_ends_when_the_node_leads_a_new_term_or_stops() {
        // Leadership lost and won again between two looks is a new term: still given up.
        let (tx, rx) = watch::channel(leading(1, 7));
        let waiting = tokio::spawn(while_leading(
            rx,
            1,
            7,
            std::future::pending::<Result<(), String>>(),
        ));
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.send_modify(|m| m.current_term = 9);
        let r = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("returns")
            .expect("task");
        assert!(r.is_err());
        // Raft shut down: its metrics close.
        let (tx, rx) = watch::channel(leading(1, 7));
        let waiting = tokio::spawn(while_leading(
            rx,
            1,
            7,
            std::future::pending::<Result<(), String>>(),
        ));
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(tx);
        let r = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("returns")
            .expect("task");
        assert_eq!(r.expect_err("stopped"), "raft stopped");
    }

    #[tokio::test]
    async fn an_answered_write_is_its_answer() {
        let (_tx, rx) = watch::channel(leading(1, 7));
        let r = while_leading(rx, 1, 7, async { Ok::<_, String>(42) }).await;
        assert_eq!(r, Ok(42));
    }

    #[tokio::test]
    async fn records_made_in_an_earlier_term_are_not_submitted_in_a_later_one() {
        // Leadership lost and won again: leading term 9, records made in term 7.
        let (_tx, rx) = watch::channel(leading(1, 9));
        let polled = std::sync::atomic::AtomicBool::new(false);
        let op = async {
            polled.store(true, std::sync::atomic::Ordering::Relaxed);
            Ok::<_, String>(())
        };
        let r = while_leading(rx, 1, 7, op).await;
        assert!(r.is_err());
        assert!(
            !polled.load(std::sync::atomic::Ordering::Relaxed),
            "never submitted"
        );
    }
}
