//! `GET /api/topics/{topic}/partitions/{partition}/messages?offset=N|timestamp=MS&limit=&max_bytes=`:
//! the message browser. Records come through the Fetch API's read
//! ([`ReplicaManager::read`](crate::replica_manager::ReplicaManager::read), up to the high
//! watermark, from this node's replica) and are decoded by the protocol crate's `RecordBatch`
//! and `RecordIter` (compressed batches through `storage::compression::decompress`, bounded),
//! the decoders every other reader uses. A timestamp is turned into an offset by ListOffsets'
//! search ([`ReplicaManager::fetch_offset_for_timestamp`](crate::replica_manager::ReplicaManager::fetch_offset_for_timestamp)).
//!
//! Bounded: at most [`MAX_RECORDS`] records and [`MAX_PAGE_BYTES`] bytes of log read a page;
//! each key, value and header value is shown up to [`MAX_FIELD_PREVIEW`] bytes. An offset
//! outside [log start, high watermark] is refused with 416 and the valid range.

use super::api::{blocking, ok, ApiError, Params};
use super::state::{Console, ConsoleState};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use rafka_protocol::record::RecordIter;
use rafka_protocol::record_batch::{Compression, RecordBatch, TimestampType};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::{AclOperation, ResourceType};
use rafka_storage::compression::decompress;
use rafka_storage::log_manager::lock_log;
use rafka_storage::TopicPartition;
use serde_json::{json, Value};
use std::collections::HashMap;

/// The most records a page holds.
pub const MAX_RECORDS: i64 = 500;
/// The most log bytes one page reads (the first batch is read whole, as a fetch with
/// min_one does, however large: it is bounded by the topic's `max.message.bytes`).
pub const MAX_PAGE_BYTES: i64 = 4 << 20;
/// The most a compressed batch may decompress to here.
const MAX_DECOMPRESSED_BATCH: usize = 64 << 20;
/// The most bytes of a key, value or header value an answer carries.
pub const MAX_FIELD_PREVIEW: usize = 16 * 1024;
/// Reads one page takes at most (each returns at least one batch).
const MAX_READS: usize = 64;

pub async fn browse(
    State(console): ConsoleState,
    Path((topic, partition)): Path<(String, String)>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let params = Params::new(raw, &["offset", "timestamp", "limit", "max_bytes"])?;
    let partition: i32 = partition.parse().ok().filter(|p| *p >= 0).ok_or_else(|| {
        ApiError::bad_request(format!("partition {partition:?} is not a partition number"))
    })?;
    let offset = params.opt_int("offset", 0, i64::MAX)?;
    let timestamp = params.opt_int("timestamp", 0, i64::MAX)?;
    if offset.is_some() && timestamp.is_some() {
        return Err(ApiError::bad_request("give offset or timestamp, not both"));
    }
    let limit = params.int("limit", 50, 1, MAX_RECORDS)? as usize;
    let max_bytes = params.int("max_bytes", 1 << 20, 1024, MAX_PAGE_BYTES)? as u64;
    blocking(move || {
        read_page(
            &console,
            TopicPartition::new(topic, partition),
            Start::from(offset, timestamp),
            limit,
            max_bytes,
        )
    })
    .await
}

enum Start {
    Earliest,
    Offset(i64),
    Timestamp(i64),
}

impl Start {
    fn from(offset: Option<i64>, timestamp: Option<i64>) -> Start {
        match (offset, timestamp) {
            (Some(o), _) => Start::Offset(o),
            (None, Some(t)) => Start::Timestamp(t),
            (None, None) => Start::Earliest,
        }
    }
}

fn read_page(
    console: &Console,
    tp: TopicPartition,
    start: Start,
    limit: usize,
    max_bytes: u64,
) -> Result<Response, ApiError> {
    let apis = console.apis()?;
    let image = apis.image();
    // READ on the topic, as Fetch asks.
    let ctx = console.context();
    if !apis
        .authorizer_for(&ctx, &image)
        .allows(AclOperation::Read, ResourceType::Topic, &tp.topic)
    {
        return Err(ApiError::kafka(ErrorCode::TopicAuthorizationFailed, None));
    }
    let topic = image
        .topic_by_name(&tp.topic)
        .ok_or_else(|| ApiError::not_found(format!("unknown topic {:?}", tp.topic)))?;
    let registration = topic.partitions.get(&tp.partition).ok_or_else(|| {
        ApiError::not_found(format!(
            "topic {:?} has no partition {} (it has {})",
            tp.topic,
            tp.partition,
            topic.partitions.len()
        ))
    })?;
    let hosted = apis.replica_manager.partition(&tp).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "node {} hosts no replica of {}-{}; its leader is node {} (open that node's console)",
                console.http.node_id, tp.topic, tp.partition, registration.leader
            ),
        )
    })?;
    let (log_start, high_watermark) = {
        let log = lock_log(&hosted.log);
        (log.log_start_offset(), log.high_watermark())
    };
    let from = match start {
        Start::Earliest => log_start,
        Start::Offset(o) => {
            if o < log_start || o > high_watermark {
                return Err(ApiError::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    format!(
                        "offset {o} is out of range for {}-{}: readable offsets are {log_start} to {high_watermark} (the high watermark)",
                        tp.topic, tp.partition
                    ),
                ));
            }
            o
        }
        Start::Timestamp(t) => {
            match apis
                .replica_manager
                .fetch_offset_for_timestamp(&image, &tp, t, -1)
            {
                Ok(Some(found)) => found.offset,
                Ok(None) => high_watermark,
                Err(code) => return Err(ApiError::kafka(code, None)),
            }
        }
    };
    let mut records: Vec<Value> = Vec::new();
    let mut next = from;
    let mut read_bytes: u64 = 0;
    let mut reads = 0;
    'pages: while records.len() < limit && next < high_watermark && reads < MAX_READS {
        reads += 1;
        let budget = max_bytes.saturating_sub(read_bytes);
        if budget == 0 {
            break;
        }
        let result =
            apis.replica_manager
                .read(&image, &tp, next, budget, records.is_empty(), -1, true);
        if result.error != ErrorCode::None {
            return Err(ApiError::kafka(result.error, None));
        }
        let Some(slice) = result.records else { break };
        read_bytes += u64::from(slice.len);
        let bytes = slice.read_to_vec().map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reading {}-{}: {e}", tp.topic, tp.partition),
            )
        })?;
        let before = next;
        for batch in RecordBatch::batches(bytes::Bytes::from(bytes)) {
            // A partial batch at the end of a bounded read is where this page stops.
            let Ok(batch) = batch else { break };
            let batch_next = batch.next_offset();
            if !batch.is_control() {
                for r in batch_records(&batch)? {
                    if r.0 < next {
                        continue;
                    }
                    if records.len() >= limit {
                        next = r.0;
                        break 'pages;
                    }
                    next = r.0 + 1;
                    records.push(r.1);
                }
            }
            next = next.max(batch_next);
        }
        if next == before {
            break;
        }
    }
    Ok(ok(json!({
        "topic": tp.topic,
        "partition": tp.partition,
        "log_start_offset": log_start,
        "high_watermark": high_watermark,
        "from": from,
        "next_offset": next.min(high_watermark),
        "bytes_read": read_bytes,
        "records": records,
    })))
}

/// A batch's records as (offset, JSON); an unreadable batch is an error (a stored batch's CRC
/// always verifies, so this is a damaged log).
fn batch_records(batch: &RecordBatch) -> Result<Vec<(i64, Value)>, ApiError> {
    let damaged = |e: &dyn std::fmt::Display| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("batch at offset {}: {e}", batch.base_offset()),
        )
    };
    batch.ensure_valid().map_err(|e| damaged(&e))?;
    let codec = batch.compression().map_err(|e| damaged(&e))?;
    let count = usize::try_from(batch.record_count()).map_err(|e| damaged(&e))?;
    let data = if codec == Compression::None {
        batch.records_bytes()
    } else {
        decompress(codec, &batch.records_bytes(), MAX_DECOMPRESSED_BATCH)
            .map_err(|e| damaged(&e))?
    };
    let timestamp_type = match batch.timestamp_type() {
        TimestampType::CreateTime => "CreateTime",
        TimestampType::LogAppendTime => "LogAppendTime",
    };
    let mut out = Vec::with_capacity(count.min(4096));
    for record in RecordIter::new(data, count) {
        let record = record.map_err(|e| damaged(&e))?;
        let offset = record.offset(batch);
        out.push((
            offset,
            json!({
                "offset": offset,
                "timestamp": record.timestamp(batch),
                "timestamp_type": timestamp_type,
                "leader_epoch": batch.partition_leader_epoch(),
                "compression": codec.name(),
                "producer_id": batch.producer_id(),
                "transactional": batch.is_transactional(),
                "key": field(record.key.as_deref()),
                "value": field(record.value.as_deref()),
                "headers": record.headers.iter().map(|h| json!({
                    "key": String::from_utf8_lossy(&h.key),
                    "value": field(h.value.as_deref()),
                })).collect::<Vec<_>>(),
            }),
        ));
    }
    Ok(out)
}

/// A key, value or header value: null, or its size, its first bytes as hex, and as text when
/// they are UTF-8.
fn field(bytes: Option<&[u8]>) -> Value {
    let Some(b) = bytes else { return Value::Null };
    let shown = &b[..b.len().min(MAX_FIELD_PREVIEW)];
    // A cut may split a character: text is what decodes up to the last whole one.
    let text = match std::str::from_utf8(shown) {
        Ok(s) => Some(s),
        Err(e) if e.error_len().is_none() && shown.len() < b.len() => {
            std::str::from_utf8(&shown[..e.valid_up_to()]).ok()
        }
        Err(_) => None,
    };
    let mut hex = String::with_capacity(shown.len() * 2);
    for byte in shown {
        hex.push_str(&format!("{byte:02x}"));
    }
    json!({
        "size": b.len(),
        "truncated": shown.len() < b.len(),
        "text": text,
        "hex": hex,
    })
}
