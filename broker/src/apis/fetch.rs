//! Fetch: whole batches as file slices, never above the high watermark for consumers (a
//! follower, replica id >= 0, reads to the log end and gets a diverging epoch when its log went
//! past the leader's, KIP-320), sent with `sendfile`
//! (the response's records are slots the network layer fills from the segment files).
//!
//! The response's record bytes are bounded by `min(max_bytes, fetch.max.bytes)` — the broker's
//! `fetch.max.bytes` (default 57671680) caps whatever the request asks, for consumers and
//! followers alike, as Kafka's `KafkaApis.handleFetchRequest` does — and each partition's by its
//! `partition_max_bytes`, except that the first batch of the first partition that has data is
//! returned whole even when larger (KIP-74: a consumer never gets stuck on a large batch); no
//! later partition gets a batch that does not fit what is left. A partition listed more than once
//! in one request is served once, as Kafka's `FetchRequest.fetchData` map does: at the place of
//! its first listing, with the fields of its last (keyed by topic id, topic name and partition,
//! so two unknown topic ids are two entries). A fetch that finds fewer than
//! `min(min_bytes, fetch max)` bytes waits in the fetch purgatory, keyed by its partitions
//! ([`crate::replica_manager::delayed_fetch`]), until they have enough or `max_wait_ms`: an append or
//! a high-watermark move elsewhere does not wake it.
//! Fetch sessions (KIP-227) are refused correctly: a request to open one is answered with
//! session id 0 (no session; the client keeps sending full fetches), an incremental fetch on a
//! session id we never gave out gets FETCH_SESSION_ID_NOT_FOUND.
//! A follower's fetch needs CLUSTER CLUSTER_ACTION, a consumer's TOPIC READ on each topic; a
//! partition refused either way answers TOPIC_AUTHORIZATION_FAILED (as Kafka).
//! From v16 a NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH partition names the current leader
//! and the response its endpoint (KIP-951, `current_leader`).

use super::current_leader::LeaderHints;
use super::fetch_files::{ResponseFiles, ResponseHolds, Sent};
use super::kafka_apis::KafkaApis;
use crate::log_read::FetchIsolation;
use crate::metrics::topic::TopicMetrics;
use crate::network::RequestContext;
use crate::replica_manager::delayed_fetch::FetchWatch;
use crate::replica_manager::replication::FollowerFetch;
use rafka_controller::control::topics::internal::check_fetch;
use rafka_controller::image::MetadataImage;
use rafka_protocol::messages::fetch_request::FetchPartition;
use rafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint,
    PartitionData,
};
use rafka_protocol::messages::{FetchRequest, FetchResponse};
use rafka_protocol::{ErrorCode, Records, Uuid};
use rafka_security::authorizer::{AclOperation, ResourceType};
use rafka_storage::{FileSlice, TopicPartition};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// A slot's file slice and the topic metrics its bytes count in (none for a follower's read).
type SlotSource = (FileSlice, Option<Arc<TopicMetrics>>);

/// The record data of one read of a fetch: slices sent with `sendfile` (each file counted by
/// the process's [`ResponseFiles`] bound), and the length of those copied instead once that
/// bound was reached, with the topic each belongs to (for BytesOut).
struct Slots {
    sources: Vec<SlotSource>,
    copied: Vec<(u64, Option<Arc<TopicMetrics>>)>,
    holds: ResponseHolds,
}

/// One partition to read, once, whatever the number of times the request lists it.
#[derive(Debug, Clone, PartialEq)]
struct FetchItem {
    /// The topic id (v13+; zero before).
    topic_id: Uuid,
    /// The topic's name: as sent (v4–v12), or resolved from the id (`None`: unknown id).
    name: Option<String>,
    partition: FetchPartition,
}

/// The request's partitions without repeats, in the order of their first listing, each with the
/// fields of its last listing (Kafka's `LinkedHashMap.put` keeps the first position and the last
/// value).
fn distinct_partitions(version: i16, req: &FetchRequest, image: &MetadataImage) -> Vec<FetchItem> {
    let mut items: Vec<FetchItem> = Vec::new();
    let mut index: HashMap<(Uuid, Option<String>, i32), usize> = HashMap::new();
    for t in &req.topics {
        let (topic_id, name) = if version >= 13 {
            (t.topic_id, image.topic(&t.topic_id).map(|t| t.name.clone()))
        } else {
            (Uuid::default(), Some(t.topic.clone()))
        };
        for p in &t.partitions {
            let key = (topic_id, name.clone(), p.partition);
            match index.get(&key) {
                Some(&i) => items[i].partition = p.clone(),
                None => {
                    index.insert(key, items.len());
                    items.push(FetchItem {
                        topic_id,
                        name: name.clone(),
                        partition: p.clone(),
                    });
                }
            }
        }
    }
    items
}

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    version: i16,
    req: FetchRequest,
) -> (FetchResponse, Vec<FileSlice>) {
    if req.session_id != 0 {
        return (
            FetchResponse {
                error_code: ErrorCode::FetchSessionIdNotFound.code(),
                ..Default::default()
            },
            Vec::new(),
        );
    }
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    // Kafka: fetchMaxBytes = min(request max_bytes, fetch.max.bytes), fetchMinBytes = min(min_bytes,
    // fetchMaxBytes).
    let broker_max = apis.config.fetch_max_bytes().max(0) as usize;
    let max_bytes = (req.max_bytes.max(0) as usize).min(broker_max);
    let min_bytes = (req.min_bytes.max(0) as usize).min(max_bytes);
    // Topic ids resolve against the image at the start; a topic created meanwhile is found on the
    // client's next fetch.
    let image = apis.image();
    let items = distinct_partitions(version, &req, &image);
    let denied = denied_items(apis, ctx, &image, version, &req, &items);
    // A follower's progress is recorded at the first read only (see `reread_for_follower`).
    let mut first_read = true;
    loop {
        let read = read_all(apis, version, &req, &items, &denied, max_bytes, first_read);
        first_read = false;
        let done =
            read.bytes >= min_bytes || read.errors || tokio::time::Instant::now() >= deadline;
        if done {
            return answer(apis, ctx, version, &req, read.response, read.slots);
        }
        // Kafka's delayed-fetch purgatory: parked on these partitions only, until they have
        // enough (then read again) or the deadline.
        let mut delayed = apis
            .replica_manager
            .delayed_fetch(read.watches, min_bytes as u64);
        let ready = crate::metrics::request::remote(
            crate::metrics::request::Purgatory::Fetch,
            delayed.wait(deadline),
        )
        .await;
        drop(delayed);
        if !ready {
            // Deadline: answer with whatever there is now.
            let read = read_all(apis, version, &req, &items, &denied, max_bytes, false);
            return answer(apis, ctx, version, &req, read.response, read.slots);
        }
    }
}

/// The response as it goes out, its record bytes counted: a consumer's per topic (BytesOut),
/// a follower's over the broker (ReplicationBytesOut).
fn answer(
    apis: &KafkaApis,
    ctx: &RequestContext,
    version: i16,
    req: &FetchRequest,
    mut resp: FetchResponse,
    slots: Slots,
) -> (FetchResponse, Vec<FileSlice>) {
    let Slots {
        sources: slices,
        copied,
        ..
    } = slots;
    if version >= 16 {
        add_leader_hints(apis, ctx, &mut resp);
    }
    if let Some(m) = apis.replica_manager.metrics() {
        if replica_id(version, req) >= 0 {
            let bytes: u64 = slices.iter().map(|(s, _)| u64::from(s.len)).sum::<u64>()
                + copied.iter().map(|(n, _)| n).sum::<u64>();
            m.topics
                .replication_bytes_out
                .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
        } else {
            for (slice, stats) in &slices {
                if let Some(stats) = stats {
                    stats.bytes_out(u64::from(slice.len));
                }
            }
            for (n, stats) in &copied {
                if let Some(stats) = stats {
                    stats.bytes_out(*n);
                }
            }
        }
    }
    (resp, slices.into_iter().map(|(s, _)| s).collect())
}

/// KIP-951: each NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH partition names the current
/// leader and epoch, the response the leaders' endpoints (v16+; topics are named by id there).
fn add_leader_hints(apis: &KafkaApis, ctx: &RequestContext, resp: &mut FetchResponse) {
    let image = apis.image();
    let mut hints = LeaderHints::default();
    let redirect = [
        ErrorCode::NotLeaderOrFollower.code(),
        ErrorCode::FencedLeaderEpoch.code(),
    ];
    for t in &mut resp.responses {
        let Some(name) = image.topic(&t.topic_id).map(|t| t.name.clone()) else {
            continue;
        };
        for p in &mut t.partitions {
            if redirect.contains(&p.error_code) {
                let l = hints.current_leader(&image, &name, p.partition_index, &ctx.listener);
                p.current_leader = LeaderIdAndEpoch {
                    leader_id: l.leader_id,
                    leader_epoch: l.leader_epoch,
                    ..Default::default()
                };
            }
        }
    }
    resp.node_endpoints = hints
        .endpoints()
        .map(|e| NodeEndpoint {
            node_id: e.node_id,
            host: e.host,
            port: e.port,
            rack: e.rack,
            ..Default::default()
        })
        .collect();
}

/// The follower's id (replica id ≥ 0), or −1 for a consumer.
fn replica_id(version: i16, req: &FetchRequest) -> i32 {
    if version >= 15 {
        req.replica_state.replica_id
    } else {
        req.replica_id
    }
}

/// For each item, whether the principal may not read it: a follower's fetch needs CLUSTER
/// CLUSTER_ACTION, a consumer's TOPIC READ on the topic (an unknown topic id is answered
/// UNKNOWN_TOPIC_ID, not refused).
fn denied_items(
    apis: &KafkaApis,
    ctx: &RequestContext,
    image: &std::sync::Arc<MetadataImage>,
    version: i16,
    req: &FetchRequest,
    items: &[FetchItem],
) -> Vec<bool> {
    let authz = apis.authorizer_for(ctx, image);
    if replica_id(version, req) >= 0 {
        let allowed = authz.allows_cluster(AclOperation::ClusterAction);
        return vec![!allowed; items.len()];
    }
    let mut by_topic: HashMap<&str, bool> = HashMap::new();
    items
        .iter()
        .map(|item| match &item.name {
            None => false,
            Some(name) => *by_topic
                .entry(name.as_str())
                .or_insert_with(|| !authz.allows(AclOperation::Read, ResourceType::Topic, name)),
        })
        .collect()
}

/// One read of every item of a fetch.
struct FetchRead {
    response: FetchResponse,
    slots: Slots,
    /// The record data's total length.
    bytes: usize,
    /// Whether an error or a divergence means the fetch must not wait.
    errors: bool,
    /// What each partition read would wait on, if the fetch waits.
    watches: Vec<FetchWatch>,
}

/// Reads every item once, within `max_bytes` in total (the first batch of the first partition
/// with data excepted).
fn read_all(
    apis: &KafkaApis,
    version: i16,
    req: &FetchRequest,
    items: &[FetchItem],
    denied: &[bool],
    max_bytes: usize,
    first_read: bool,
) -> FetchRead {
    let image = apis.image();
    let mut slots = Slots {
        sources: Vec::new(),
        copied: Vec::new(),
        holds: ResponseHolds::new(ResponseFiles::process().clone()),
    };
    let mut total: usize = 0;
    let mut errors = false;
    let mut watches = Vec::new();
    // A follower (replica id >= 0) reads up to the log end and tells its progress.
    let replica_id = replica_id(version, req);
    let mut responses: Vec<FetchableTopicResponse> = Vec::new();
    let mut current: Option<(Uuid, Option<&str>)> = None;
    for (item, denied) in items.iter().zip(denied) {
        let p = &item.partition;
        // The metadata log is no client's topic, by name or by its reserved id.
        let refused = if *denied {
            Some(rafka_controller::control::ApiError::code(
                ErrorCode::TopicAuthorizationFailed,
            ))
        } else {
            check_fetch(item.name.as_deref(), &item.topic_id).err()
        };
        let data = match (&item.name, &refused) {
            (None, _) | (_, Some(_)) => {
                errors = true;
                PartitionData {
                    partition_index: p.partition,
                    error_code: refused
                        .as_ref()
                        .map_or(ErrorCode::UnknownTopicId, |e| e.code)
                        .code(),
                    high_watermark: -1,
                    records: Some(Records::Bytes(Default::default())),
                    ..Default::default()
                }
            }
            (Some(name), None) => {
                let tp = TopicPartition {
                    topic: name.clone(),
                    partition: p.partition,
                };
                let budget =
                    (p.partition_max_bytes.max(0) as usize).min(max_bytes.saturating_sub(total));
                // KIP-74: only the first partition that returns data may exceed the limits.
                let min_one = total == 0;
                // KIP-392: v11+ consumers send their rack and may read from any replica.
                let client_rack = (version >= 11).then_some(req.rack_id.as_str());
                read_partition(
                    apis,
                    &image,
                    &tp,
                    p,
                    replica_id,
                    req.isolation_level,
                    client_rack,
                    budget,
                    min_one,
                    first_read,
                    &mut slots,
                    &mut total,
                    &mut errors,
                    &mut watches,
                )
            }
        };
        // Consecutive partitions of one topic share a topic entry, as Kafka's `FetchResponse.of`.
        let key = (item.topic_id, item.name.as_deref());
        if current != Some(key) {
            current = Some(key);
            responses.push(FetchableTopicResponse {
                topic: if version <= 12 {
                    item.name.clone().unwrap_or_default()
                } else {
                    String::new()
                },
                topic_id: if version >= 13 {
                    item.topic_id
                } else {
                    Default::default()
                },
                partitions: Vec::new(),
                ..Default::default()
            });
        }
        if let Some(t) = responses.last_mut() {
            t.partitions.push(data);
        }
    }
    FetchRead {
        response: FetchResponse {
            responses,
            ..Default::default()
        },
        slots,
        bytes: total,
        errors,
        watches,
    }
}

/// One partition's read, for a follower or a consumer, within `budget` bytes (or its first batch
/// whole when `min_one`).
#[allow(clippy::too_many_arguments)]
fn read_partition(
    apis: &KafkaApis,
    image: &MetadataImage,
    tp: &TopicPartition,
    p: &FetchPartition,
    replica_id: i32,
    isolation_level: i8,
    client_rack: Option<&str>,
    budget: usize,
    min_one: bool,
    first_read: bool,
    slots: &mut Slots,
    total: &mut usize,
    errors: &mut bool,
    watches: &mut Vec<FetchWatch>,
) -> PartitionData {
    let mut watch = |isolation: FetchIsolation, read_bound: i64, bytes: &Records| {
        watches.push(FetchWatch {
            tp: tp.clone(),
            fetch_offset: p.fetch_offset,
            isolation,
            read_bound,
            bytes: match bytes {
                Records::Slot { len, .. } => u64::from(*len),
                Records::Bytes(b) => b.len() as u64,
            },
            max_bytes: p.partition_max_bytes.max(0) as u64,
        });
    };
    // A read that ignored the budget (a follower's read always returns its first batch whole)
    // is dropped unless this partition may exceed it: the follower's progress was still recorded,
    // and it fetches the batch again, first, next time.
    let within = |slice: Option<FileSlice>| slice.filter(|s| min_one || s.len as usize <= budget);
    if replica_id >= 0 {
        let r = if first_read {
            apis.replica_manager.read_for_follower(
                image,
                tp,
                replica_id,
                p.fetch_offset,
                p.last_fetched_epoch,
                budget as u64,
                p.current_leader_epoch,
            )
        } else {
            apis.replica_manager.reread_for_follower(
                image,
                tp,
                FollowerFetch {
                    replica_id,
                    fetch_offset: p.fetch_offset,
                    last_fetched_epoch: p.last_fetched_epoch,
                    current_leader_epoch: p.current_leader_epoch,
                },
                budget as u64,
            )
        };
        if r.error != ErrorCode::None {
            *errors = true;
        }
        let records = slot(within(r.records), None, slots, total);
        if r.error == ErrorCode::None {
            watch(FetchIsolation::LogEnd, r.log_end_offset, &records);
        }
        let diverging_epoch = match r.diverging_epoch {
            Some((epoch, end_offset)) => {
                // Answer at once: the follower must truncate before anything else.
                *errors = true;
                EpochEndOffset {
                    epoch,
                    end_offset,
                    ..Default::default()
                }
            }
            None => EpochEndOffset {
                epoch: -1,
                end_offset: -1,
                ..Default::default()
            },
        };
        return PartitionData {
            partition_index: p.partition,
            error_code: r.error.code(),
            high_watermark: r.high_watermark,
            last_stable_offset: r.high_watermark,
            log_start_offset: r.log_start_offset,
            diverging_epoch,
            records: Some(records),
            ..Default::default()
        };
    }
    // KIP-392: the leader sends a consumer in another rack's replica there, without reading.
    let preferred = client_rack
        .filter(|_| apis.replica_selector_is_rack_aware())
        .and_then(|rack| {
            apis.replica_manager
                .preferred_read_replica(image, tp, p.fetch_offset, rack)
        });
    if let Some(preferred_read_replica) = preferred {
        let r = apis.replica_manager.read(
            image,
            tp,
            p.fetch_offset,
            0,
            false,
            p.current_leader_epoch,
            false,
        );
        // Answered now: the consumer's next fetch goes to that replica.
        *errors = true;
        return PartitionData {
            partition_index: p.partition,
            error_code: r.error.code(),
            high_watermark: r.high_watermark,
            last_stable_offset: r.last_stable_offset,
            log_start_offset: r.log_start_offset,
            preferred_read_replica,
            records: Some(Records::Bytes(Default::default())),
            ..Default::default()
        };
    }
    let r = apis.replica_manager.read_isolated(
        image,
        tp,
        p.fetch_offset,
        budget as u64,
        min_one,
        p.current_leader_epoch,
        FetchIsolation::of_consumer(isolation_level),
        client_rack.is_some(),
    );
    if r.error != ErrorCode::None {
        *errors = true;
    }
    let aborted_transactions = r.aborted_transactions.map(|a| {
        a.iter()
            .map(|t| AbortedTransaction {
                producer_id: t.producer_id,
                first_offset: t.first_offset,
                ..Default::default()
            })
            .collect()
    });
    let records = slot(within(r.records), r.stats, slots, total);
    if r.error == ErrorCode::None {
        let isolation = FetchIsolation::of_consumer(isolation_level);
        let bound = if isolation == FetchIsolation::TxnCommitted {
            r.last_stable_offset
        } else {
            r.high_watermark
        };
        watch(isolation, bound, &records);
    }
    PartitionData {
        partition_index: p.partition,
        error_code: r.error.code(),
        high_watermark: r.high_watermark,
        last_stable_offset: r.last_stable_offset,
        log_start_offset: r.log_start_offset,
        aborted_transactions,
        records: Some(records),
        ..Default::default()
    }
}

/// The response's records for a read: a slot the network layer fills from `slice` with
/// `sendfile`, or the slice's bytes when the process's bound on files held by responses is
/// reached (see [`ResponseFiles`]), or empty.
fn slot(
    slice: Option<FileSlice>,
    stats: Option<Arc<TopicMetrics>>,
    slots: &mut Slots,
    total: &mut usize,
) -> Records {
    match slice {
        Some(slice) if slice.len > 0 => {
            let len = slice.len;
            match slots.holds.hold(slice) {
                Ok(Sent::Slice(slice)) => {
                    *total += len as usize;
                    let handle = slots.sources.len() as u64;
                    slots.sources.push((slice, stats));
                    Records::Slot { handle, len }
                }
                Ok(Sent::Copied(bytes)) => {
                    *total += len as usize;
                    slots.copied.push((u64::from(len), stats));
                    Records::Bytes(bytes)
                }
                Err(e) => {
                    // Nothing for this partition this time: the consumer asks again from the
                    // same offset.
                    tracing::warn!(error = %e, "cannot copy a fetch slice");
                    Records::Bytes(Default::default())
                }
            }
        }
        _ => Records::Bytes(Default::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rafka_protocol::messages::fetch_request::FetchTopic;

    fn partition(partition: i32, fetch_offset: i64) -> FetchPartition {
        FetchPartition {
            partition,
            fetch_offset,
            partition_max_bytes: i32::MAX,
            ..Default::default()
        }
    }

    #[test]
    fn fetch_repeated_partitions_are_served_once_first_place_last_fields() {
        let req = FetchRequest {
            topics: vec![
                FetchTopic {
                    topic: "a".into(),
                    partitions: vec![partition(0, 1), partition(1, 1), partition(0, 2)],
                    ..Default::default()
                },
                FetchTopic {
                    topic: "b".into(),
                    partitions: vec![partition(0, 5)],
                    ..Default::default()
                },
                FetchTopic {
                    topic: "a".into(),
                    partitions: vec![partition(1, 3)],
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let items = distinct_partitions(12, &req, &MetadataImage::new());
        let got: Vec<(Option<&str>, i32, i64)> = items
            .iter()
            .map(|i| {
                (
                    i.name.as_deref(),
                    i.partition.partition,
                    i.partition.fetch_offset,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![(Some("a"), 0, 2), (Some("a"), 1, 3), (Some("b"), 0, 5)]
        );
    }

    #[test]
    fn fetch_unknown_topic_ids_are_keyed_by_id() {
        let (x, y) = (Uuid([1; 16]), Uuid([2; 16]));
        let req = FetchRequest {
            topics: [x, y, x]
                .into_iter()
                .map(|id| FetchTopic {
                    topic_id: id,
                    partitions: vec![partition(0, 0)],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let items = distinct_partitions(16, &req, &MetadataImage::new());
        assert_eq!(
            items
                .iter()
                .map(|i| (i.topic_id, i.name.clone()))
                .collect::<Vec<_>>(),
            vec![(x, None), (y, None)]
        );
    }
}
