//! Fetch: whole batches as file slices, never above the high watermark for consumers (a
//! follower, replica id >= 0, reads to the log end and gets a diverging epoch when its log went
//! past the leader's, KIP-320), sent with `sendfile`
//! (the response's records are slots the network layer fills from the segment files).
//!
//! `max_bytes` bounds the response and `partition_max_bytes` each partition, except that the
//! first batch found is returned whole (so a consumer never gets stuck on a large batch). A
//! fetch that finds fewer than `min_bytes` waits — woken by appends — until `max_wait_ms`.
//! Fetch sessions (KIP-227) are refused correctly: a request to open one is answered with
//! session id 0 (no session; the client keeps sending full fetches), an incremental fetch on a
//! session id we never gave out gets FETCH_SESSION_ID_NOT_FOUND.

use super::KafkaApis;
use rafka_controller::control::topics::internal::check_fetch;
use rafka_protocol::messages::fetch_response::{
    EpochEndOffset, FetchableTopicResponse, PartitionData,
};
use rafka_protocol::messages::{FetchRequest, FetchResponse};
use rafka_protocol::{ErrorCode, Records};
use rafka_storage::{FileSlice, TopicPartition};
use std::time::Duration;

pub async fn handle(
    apis: &KafkaApis,
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
    loop {
        let next_append = apis.replica_manager.next_append();
        tokio::pin!(next_append);
        next_append.as_mut().enable();
        let (resp, slices, bytes, errors) = read_all(apis, version, &req);
        let done = bytes >= req.min_bytes.max(0) as usize
            || errors
            || tokio::time::Instant::now() >= deadline;
        if done {
            return (resp, slices);
        }
        if tokio::time::timeout_at(deadline, next_append)
            .await
            .is_err()
        {
            // Deadline: answer with whatever there is now.
            let (resp, slices, _, _) = read_all(apis, version, &req);
            return (resp, slices);
        }
    }
}

fn read_all(
    apis: &KafkaApis,
    version: i16,
    req: &FetchRequest,
) -> (FetchResponse, Vec<FileSlice>, usize, bool) {
    let image = apis.image();
    let mut slices = Vec::new();
    let mut total: usize = 0;
    let mut errors = false;
    let max_bytes = req.max_bytes.max(0) as usize;
    // A follower (replica id >= 0) reads up to the log end and tells its progress.
    let replica_id = if version >= 15 {
        req.replica_state.replica_id
    } else {
        req.replica_id
    };
    let mut responses = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let name = if version >= 13 {
            image.topic(&t.topic_id).map(|t| t.name.clone())
        } else {
            Some(t.topic.clone())
        };
        // The metadata log is no client's topic, by name or by its reserved id.
        let refused = check_fetch(name.as_deref(), &t.topic_id).err();
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let (Some(name), None) = (&name, &refused) else {
                errors = true;
                partitions.push(PartitionData {
                    partition_index: p.partition,
                    error_code: refused
                        .as_ref()
                        .map_or(ErrorCode::UnknownTopicId, |e| e.code)
                        .code(),
                    high_watermark: -1,
                    records: Some(Records::Bytes(Default::default())),
                    ..Default::default()
                });
                continue;
            };
            let tp = TopicPartition {
                topic: name.clone(),
                partition: p.partition,
            };
            let budget =
                (p.partition_max_bytes.max(0) as usize).min(max_bytes.saturating_sub(total));
            let min_one = total == 0;
            if replica_id >= 0 {
                let r = apis.replica_manager.read_for_follower(
                    &image,
                    &tp,
                    replica_id,
                    p.fetch_offset,
                    p.last_fetched_epoch,
                    budget as u64,
                    p.current_leader_epoch,
                );
                if r.error != ErrorCode::None {
                    errors = true;
                }
                let records = slot(r.records, &mut slices, &mut total);
                let diverging_epoch = match r.diverging_epoch {
                    Some((epoch, end_offset)) => {
                        // Answer at once: the follower must truncate before anything else.
                        errors = true;
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
                partitions.push(PartitionData {
                    partition_index: p.partition,
                    error_code: r.error.code(),
                    high_watermark: r.high_watermark,
                    last_stable_offset: r.high_watermark,
                    log_start_offset: r.log_start_offset,
                    diverging_epoch,
                    records: Some(records),
                    ..Default::default()
                });
                continue;
            }
            let r = apis.replica_manager.read(
                &image,
                &tp,
                p.fetch_offset,
                budget as u64,
                min_one,
                p.current_leader_epoch,
            );
            if r.error != ErrorCode::None {
                errors = true;
            }
            let records = slot(r.records, &mut slices, &mut total);
            partitions.push(PartitionData {
                partition_index: p.partition,
                error_code: r.error.code(),
                high_watermark: r.high_watermark,
                last_stable_offset: r.last_stable_offset,
                log_start_offset: r.log_start_offset,
                records: Some(records),
                ..Default::default()
            });
        }
        responses.push(FetchableTopicResponse {
            topic: if version <= 12 {
                t.topic.clone()
            } else {
                String::new()
            },
            topic_id: if version >= 13 {
                t.topic_id
            } else {
                Default::default()
            },
            partitions,
            ..Default::default()
        });
    }
    (
        FetchResponse {
            responses,
            ..Default::default()
        },
        slices,
        total,
        errors,
    )
}

/// The response's records for a read: a slot the network layer fills from `slice` with
/// `sendfile`, or empty.
fn slot(slice: Option<FileSlice>, slices: &mut Vec<FileSlice>, total: &mut usize) -> Records {
    match slice {
        Some(slice) if slice.len > 0 => {
            *total += slice.len as usize;
            let handle = slices.len() as u64;
            let len = slice.len;
            slices.push(slice);
            Records::Slot { handle, len }
        }
        _ => Records::Bytes(Default::default()),
    }
}
