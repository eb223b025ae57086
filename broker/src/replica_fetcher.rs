//! `ReplicaFetcherManager`: a follower's fetchers, one task per source broker (Kafka's
//! `ReplicaFetcherThread`), each fetching every partition this broker follows on that leader in
//! one Fetch (version 12: topic names, the last fetched epoch, KIP-320's diverging epoch) with
//! this broker's replica id, over a dedicated [`NodeConnection`] it keeps (the inter-broker
//! client's connection type: reconnect backoff, `replica.socket.timeout.ms` per fetch,
//! correlation ids and frame size checked). What comes back is applied by
//! [`ReplicaManager::process_fetched`] — on the fetcher's worker when it only appends, as a
//! produce does, and on a blocking thread when it truncates; errors back off for
//! `replica.fetch.backoff.ms`. A fetcher ends when this broker no longer follows anything on
//! its leader; the manager starts fetchers for new leaders as the image changes.

use crate::inter_node_client::{
    Connected, ConnectionConfig, InterNodeClient, InterNodeError, NodeConnection,
};
use crate::lifecycle::BrokerLifecycleManager;
use crate::lost_leaders::LostLeaders;
use crate::replica_manager::replication::{FetchedPartition, FollowedPartition};
use crate::replica_manager::ReplicaManager;
use rafka_controller::image::MetadataImage;
use rafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use rafka_protocol::messages::{FetchRequest, RequestKind, ResponseKind};
use rafka_protocol::{ErrorCode, Records};
use rafka_storage::TopicPartition;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The Fetch version followers send.
const FETCH_VERSION: i16 = 12;

#[derive(Clone)]
pub struct FetcherConfig {
    pub broker_id: i32,
    /// `inter.broker.listener.name`: the leader's listener followers connect to.
    pub listener_name: String,
    /// `replica.fetch.wait.max.ms`.
    pub max_wait_ms: i32,
    /// `replica.fetch.min.bytes`: the leader holds a fetch until this much is there (or
    /// `max_wait_ms` passes).
    pub min_bytes: i32,
    /// `replica.fetch.max.bytes` (per partition) and `replica.fetch.response.max.bytes`.
    pub partition_max_bytes: i32,
    pub response_max_bytes: i32,
    /// `replica.fetch.backoff.ms`.
    pub backoff: Duration,
    /// `replica.socket.timeout.ms`: how long a fetch may go unanswered.
    pub socket_timeout: Duration,
    /// `replica.socket.receive.buffer.bytes`: SO_RCVBUF of the fetch connections (`None`: the
    /// OS's autotuned buffer).
    pub receive_buffer: Option<u32>,
    /// The connections to the leaders' inter-broker listener (its security protocol); each
    /// fetcher takes a dedicated one.
    pub client: Arc<InterNodeClient>,
}

/// How long a fetcher waits for a connection to its leader.
const FETCHER_CONNECTION_SETUP_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs until `shutdown`: keeps one fetcher per leader this broker follows partitions on. A
/// fetch connection that fails (closed or reset, not a timeout) is reported to `lost`.
///
/// Nothing is followed before `lifecycle` says the broker serves, that is, before the controller
/// has accepted this process's registration and unfenced it, as Kafka starts its fetchers only
/// after registration. A process restarted while its predecessor's session is still live is
/// refused registration (DUPLICATE_BROKER_REGISTRATION) until that session expires; the image
/// still shows the predecessor's registration unfenced, so fetches made meanwhile would let a
/// leader add this replica back to the ISR under a registration no live process holds, and the
/// ISR would count a replica that may not even be registered when the next fault comes (Kafka's
/// KIP-903 broker epoch in the fetch closes the same hole).
pub async fn run(
    config: FetcherConfig,
    replica_manager: Arc<ReplicaManager>,
    lost: Arc<LostLeaders>,
    lifecycle: Arc<BrokerLifecycleManager>,
    mut images: watch::Receiver<Arc<MetadataImage>>,
    mut shutdown: watch::Receiver<bool>,
) {
    tokio::select! {
        () = lifecycle.wait_serving() => {}
        _ = shutdown.changed() => return,
    }
    let mut fetchers: HashMap<i32, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut every = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            r = images.changed() => if r.is_err() { break },
            _ = shutdown.changed() => break,
        }
        fetchers.retain(|_, t| !t.is_finished());
        for leader in replica_manager.followed_leaders() {
            fetchers.entry(leader).or_insert_with(|| {
                tokio::spawn(fetch_from(
                    config.clone(),
                    leader,
                    replica_manager.clone(),
                    lost.clone(),
                    images.clone(),
                    shutdown.clone(),
                ))
            });
        }
    }
    for (_, t) in fetchers {
        t.abort();
    }
}

/// The inter-broker listener of `broker` in the image (its first one if it has none by that
/// name).
pub(crate) fn address_of(image: &MetadataImage, broker: i32, listener: &str) -> Option<String> {
    let b = image.broker(broker)?;
    let e = b
        .endpoints
        .iter()
        .find(|e| e.name == listener)
        .or_else(|| b.endpoints.first())?;
    Some(format!("{}:{}", e.host, e.port))
}

async fn fetch_from(
    config: FetcherConfig,
    leader: i32,
    rm: Arc<ReplicaManager>,
    lost: Arc<LostLeaders>,
    mut images: watch::Receiver<Arc<MetadataImage>>,
    shutdown: watch::Receiver<bool>,
) {
    tracing::info!(leader, "replica fetcher started");
    let mut conn: NodeConnection = config.client.dedicated_with(
        leader,
        ConnectionConfig {
            client_id: format!("replica-fetcher-{}", config.broker_id),
            connection_setup_timeout: FETCHER_CONNECTION_SETUP_TIMEOUT,
            receive_buffer: config.receive_buffer,
            ..config.client.config().clone()
        },
    );
    // What to fetch next, as the last round read it right after applying its answer (no hop
    // to a blocking thread to read it again).
    let mut next: Option<Vec<FollowedPartition>> = None;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let followed = match next.take() {
            Some(f) => f,
            None => {
                let rm = rm.clone();
                match tokio::task::spawn_blocking(move || rm.followed_from(leader)).await {
                    Ok(f) => f,
                    Err(_) => return,
                }
            }
        };
        if followed.is_empty() {
            tracing::info!(leader, "replica fetcher stopped: nothing left to follow");
            return;
        }
        let image = images.borrow().clone();
        let Some(addr) = address_of(&image, leader, &config.listener_name) else {
            tokio::time::sleep(config.backoff).await;
            continue;
        };
        match conn.connect(&addr).await {
            Ok(Connected::New) => lost.connected(leader),
            Ok(Connected::Existing) => {}
            Err(e) => {
                tracing::debug!(leader, error = %e, "cannot reach the leader");
                tokio::time::sleep(config.backoff).await;
                continue;
            }
        }
        let request = fetch_request(&config, &followed);
        let fetched: Vec<(TopicPartition, i32)> = followed
            .iter()
            .map(|f| (f.tp.clone(), f.leader_epoch))
            .collect();
        let answer = {
            let exchange = conn.send(
                &addr,
                FETCH_VERSION,
                RequestKind::Fetch(request),
                config.socket_timeout,
            );
            tokio::pin!(exchange);
            // A leader that stops answering without closing (paused, cut off) must not hold
            // its followers: once the image moves these partitions elsewhere, give up on it
            // (dropping the exchange closes its connection).
            loop {
                tokio::select! {
                    a = &mut exchange => break Some(a),
                    changed = images.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        let rm = rm.clone();
                        let now = tokio::task::spawn_blocking(move || rm.followed_from(leader))
                            .await
                            .unwrap_or_default();
                        let same = now.len() == fetched.len()
                            && now.iter().zip(&fetched).all(|(n, (tp, epoch))| {
                                n.tp == *tp && n.leader_epoch == *epoch
                            });
                        if !same {
                            break None;
                        }
                    }
                }
            }
        };
        let Some(answer) = answer else {
            tracing::debug!(leader, "leadership moved during a fetch: dropping it");
            continue;
        };
        let response = match answer {
            Ok(ResponseKind::Fetch(r)) => r,
            Ok(other) => {
                tracing::debug!(
                    leader,
                    api_key = other.api_key().key(),
                    "not a fetch response"
                );
                conn.close();
                tokio::time::sleep(config.backoff).await;
                continue;
            }
            Err(InterNodeError::Timeout { .. }) => {
                tracing::debug!(leader, "fetch from the leader timed out");
                continue;
            }
            Err(e) => {
                tracing::debug!(leader, error = %e, "fetch from the leader failed");
                if e.is_connection_lost() {
                    lost.connection_lost(leader);
                }
                tokio::time::sleep(config.backoff).await;
                continue;
            }
        };
        let by_name: HashMap<(String, i32), &FollowedPartition> = followed
            .iter()
            .map(|f| ((f.tp.topic.clone(), f.tp.partition), f))
            .collect();
        let mut work = Vec::new();
        for t in response.responses {
            for p in t.partitions {
                let Some(f) = by_name.get(&(t.topic.clone(), p.partition_index)) else {
                    continue;
                };
                let records = match p.records {
                    Some(Records::Bytes(b)) => b,
                    _ => Default::default(),
                };
                let diverging = (p.diverging_epoch.epoch >= 0)
                    .then_some((p.diverging_epoch.epoch, p.diverging_epoch.end_offset));
                work.push((
                    f.tp.clone(),
                    f.leader_epoch,
                    FetchedPartition {
                        error: ErrorCode::from_code(p.error_code)
                            .unwrap_or(ErrorCode::UnknownServerError),
                        high_watermark: p.high_watermark,
                        log_start_offset: p.log_start_offset,
                        diverging_epoch: diverging,
                        records,
                    },
                ));
            }
        }
        // Applied where a produce's append is: on this worker, when every answer is records to
        // append (the page cache through the file, as the leader appends). A round that
        // truncates or starts a log over (file deletions) goes to a blocking thread, as
        // DESIGN's runtime section puts them. The hop cost a sleep and a wake-up on each side
        // per round: a follower's CPU per GB fell by a fifth without it at 1 MiB rounds and by
        // three tenths at 16 KiB ones (the Java client's batch size; README, Benchmarks).
        let (errors, followed_next) = if work.iter().all(|(_, _, d)| appends_only(d)) {
            apply_round(&rm, leader, &work)
        } else {
            let rm = rm.clone();
            tokio::task::spawn_blocking(move || apply_round(&rm, leader, &work))
                .await
                .unwrap_or_else(|_| (vec![ErrorCode::UnknownServerError], None))
        };
        // After an error the next round looks again once the wait is over.
        next = followed_next;
        if !errors.is_empty() {
            // Leadership is moving or a batch was refused: wait for the image, then refetch.
            tokio::time::sleep(retry_after(&errors, config.backoff)).await;
        }
    }
}

/// Applies one round's answers in order; the errors that stop the next round (none: it starts
/// at once from what `followed_from` reads right after).
fn apply_round(
    rm: &ReplicaManager,
    leader: i32,
    work: &[(TopicPartition, i32, FetchedPartition)],
) -> (Vec<ErrorCode>, Option<Vec<FollowedPartition>>) {
    let errors = work
        .iter()
        .map(|(tp, epoch, data)| rm.process_fetched(tp, *epoch, data))
        .filter(|e| !matches!(e, ErrorCode::None | ErrorCode::OffsetOutOfRange))
        .collect::<Vec<_>>();
    let followed_next = errors.is_empty().then(|| rm.followed_from(leader));
    (errors, followed_next)
}

/// Whether applying `data` only appends (or does nothing): no error that truncates or resets
/// the log, no diverging epoch.
fn appends_only(data: &FetchedPartition) -> bool {
    data.error == ErrorCode::None && data.diverging_epoch.is_none()
}

/// How long to wait before fetching again after `errors`. A new leader that has not yet applied
/// the image naming it answers NOT_LEADER_OR_FOLLOWER or UNKNOWN_LEADER_EPOCH for a few
/// milliseconds — the follower applied it first — and every acks=all produce on it waits for
/// this follower: retry after [`LEADER_CATCH_UP`], not `replica.fetch.backoff.ms` (Kafka's 1 s).
/// Any other error gets the whole backoff.
fn retry_after(errors: &[ErrorCode], backoff: Duration) -> Duration {
    let leader_catching_up = errors.iter().all(|e| {
        matches!(
            e,
            ErrorCode::NotLeaderOrFollower | ErrorCode::UnknownLeaderEpoch
        )
    });
    if leader_catching_up {
        backoff.min(LEADER_CATCH_UP)
    } else {
        backoff
    }
}

/// The retry after a leader that is still catching up with the image (see [`retry_after`]).
const LEADER_CATCH_UP: Duration = Duration::from_millis(20);

fn fetch_request(config: &FetcherConfig, followed: &[FollowedPartition]) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for f in followed {
        let partition = FetchPartition {
            partition: f.tp.partition,
            current_leader_epoch: f.leader_epoch,
            fetch_offset: f.fetch_offset,
            last_fetched_epoch: f.last_fetched_epoch,
            log_start_offset: f.log_start_offset,
            partition_max_bytes: config.partition_max_bytes,
            ..Default::default()
        };
        match topics.iter_mut().find(|t| t.topic == f.tp.topic) {
            Some(t) => t.partitions.push(partition),
            None => topics.push(FetchTopic {
                topic: f.tp.topic.clone(),
                partitions: vec![partition],
                ..Default::default()
            }),
        }
    }
    FetchRequest {
        replica_id: config.broker_id,
        max_wait_ms: config.max_wait_ms,
        min_bytes: config.min_bytes,
        max_bytes: config.response_max_bytes,
        topics,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::{retry_after, LEADER_CATCH_UP};
    use rafka_protocol::ErrorCode;
    use std::time::Duration;

    #[test]
    fn a_leader_still_catching_up_is_retried_soon_anything_else_after_the_backoff() {
        let backoff = Duration::from_secs(1);
        use ErrorCode::*;
        for (errors, want) in [
            (vec![NotLeaderOrFollower], LEADER_CATCH_UP),
            (
                vec![UnknownLeaderEpoch, NotLeaderOrFollower],
                LEADER_CATCH_UP,
            ),
            (vec![FencedLeaderEpoch], backoff),
            (vec![UnknownLeaderEpoch, CorruptMessage], backoff),
            (vec![KafkaStorageError], backoff),
        ] {
            assert_eq!(retry_after(&errors, backoff), want, "{errors:?}");
        }
        assert_eq!(
            retry_after(&[NotLeaderOrFollower], Duration::from_millis(5)),
            Duration::from_millis(5),
            "never longer than the configured backoff"
        );
    }
}
