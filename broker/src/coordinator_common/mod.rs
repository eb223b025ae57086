//! What the coordinators share — the group coordinator (`__consumer_offsets`) and the transaction
//! coordinator (`__transaction_state`) keep their state the same way (Kafka 4's
//! `coordinator-common`): in a compacted internal topic whose partition leader is the coordinator
//! of the keys hashed to it, loaded into memory on becoming leader, written acks=all and applied
//! only once appended (and answered only once replicated).
//!
//! - [`loader`]: reading a partition back, skipping what cannot be read.
//! - [`encode_record`] / [`decode_record`]: a record key or value as Kafka writes them, an int16
//!   version then the struct at that version.
//! - [`append_records`], [`wait_replicated`], [`read_partition`]: the partition's log through
//!   the replica manager, with Kafka's mapping of log errors to coordinator errors.
//! - [`create_internal_topic`]: creating the topic through the controller on first use.
//!
//! Not here: what each coordinator keeps, its record types, which requests it serves.

pub mod loader;

use crate::controller_channel::ControllerChannel;
use crate::now_ms;
use crate::replica_manager::ReplicaManager;
use bytes::{Bytes, BytesMut};
use loader::{ChunkEnd, DecodeRecord, Loaded, PartitionLoad};
use rafka_controller::image::MetadataImage;
use rafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use rafka_protocol::messages::{CreateTopicsRequest, RequestKind, ResponseKind};
use rafka_protocol::record_batch::RecordBatchBuilder;
use rafka_protocol::{ErrorCode, Message};
use rafka_storage::TopicPartition;
use std::fmt::Display;

/// What a coordinator answers for a key of partition `p` of `topic` it has not started loading:
/// COORDINATOR_LOAD_IN_PROGRESS when this broker already leads the partition (its replica
/// manager has acted on the leadership and the coordinator is about to load it), else
/// NOT_COORDINATOR. The first code makes clients retry here; the second makes them look the
/// coordinator up again, and a client told by another broker that this one leads would be sent
/// straight back — some do not even retry then (librdkafka's OffsetFetch for an assignment leaves
/// the partitions unfetched for good, confluentinc/librdkafka#5586).
pub fn not_loaded(rm: &ReplicaManager, topic: &str, p: i32) -> ErrorCode {
    let leads = rm
        .partition(&TopicPartition::new(topic, p))
        .is_some_and(|partition| partition.is_leader());
    if leads {
        ErrorCode::CoordinatorLoadInProgress
    } else {
        ErrorCode::NotCoordinator
    }
}

/// A record key or value: `version`, then `m` at that version.
pub fn encode_record<M: Message>(m: &M, version: i16) -> Bytes {
    let mut out = BytesMut::with_capacity(2 + m.size_at(version));
    out.extend_from_slice(&version.to_be_bytes());
    // Our own values, at versions we implement: encoding cannot fail.
    if let Err(e) = rafka_protocol::encode(m, &mut out, version) {
        tracing::error!(error = %e, "cannot encode a coordinator record");
    }
    out.freeze()
}

/// Reads a record key or value written by [`encode_record`] at one of the `allowed` versions;
/// the error says what is wrong.
pub fn decode_record<M: Message>(
    bytes: &Bytes,
    allowed: std::ops::RangeInclusive<i16>,
) -> Result<M, String> {
    if bytes.len() < 2 {
        return Err("shorter than its version".into());
    }
    let version = i16::from_be_bytes([bytes[0], bytes[1]]);
    if !allowed.contains(&version) {
        return Err(format!("{} version {version}", M::NAME));
    }
    rafka_protocol::decode(bytes, &bytes[2..], version).map_err(|e| e.to_string())
}

/// Appends `records` (key, value) to a coordinator partition as one batch (acks=all): the offset
/// the high watermark must reach for them to be replicated, or the error a coordinator answers
/// when it cannot append (Kafka's mapping); `too_large` is what a batch over the size limits
/// answers.
pub fn append_records(
    rm: &ReplicaManager,
    image: &MetadataImage,
    tp: &TopicPartition,
    records: &[(Bytes, Option<Bytes>)],
    too_large: ErrorCode,
) -> Result<i64, ErrorCode> {
    let batch = build_batch(records, None).map_err(|_| too_large)?;
    appended(tp, rm.append(image, tp, &batch, -1), too_large)
}

/// [`append_records`] as one transactional batch of `producer_id` at `producer_epoch`, base
/// sequence 0 and not checked as a sequence (Kafka's TxnOffsetCommit records): the log checks the producer's epoch and
/// opens the producer's transaction in the partition; its marker later closes it. A stale epoch
/// answers the log's error (INVALID_PRODUCER_EPOCH / PRODUCER_FENCED). With `guard` (KIP-890:
/// the transaction coordinator was asked under it), a batch that would open the producer's
/// transaction in the partition is refused (INVALID_TXN_STATE) unless the guard is still the
/// producer's there — an end marker in between drops it.
#[allow(clippy::too_many_arguments)]
pub fn append_transactional_records(
    rm: &ReplicaManager,
    image: &MetadataImage,
    tp: &TopicPartition,
    records: &[(Bytes, Option<Bytes>)],
    producer_id: i64,
    producer_epoch: i16,
    guard: Option<rafka_storage::VerificationGuard>,
    too_large: ErrorCode,
) -> Result<i64, ErrorCode> {
    let batch = build_batch(records, Some((producer_id, producer_epoch))).map_err(|_| too_large)?;
    appended(
        tp,
        rm.append_as_coordinator(image, tp, &batch, guard),
        too_large,
    )
}

fn build_batch(
    records: &[(Bytes, Option<Bytes>)],
    producer: Option<(i64, i16)>,
) -> Result<Bytes, rafka_protocol::record_batch::RecordBatchError> {
    let now = now_ms();
    let mut builder = RecordBatchBuilder::new(0);
    if let Some((id, epoch)) = producer {
        builder = builder
            // Kafka's GroupMetadataManager writes base sequence 0; a coordinator's append is
            // not checked for sequences (nor duplicates).
            .producer(id, epoch, 0)
            .transactional(true);
    }
    for (k, v) in records {
        builder.append(now, Some(k), v.as_deref(), &[])?;
    }
    Ok(builder.build())
}

/// Kafka's mapping of an append's outcome to a coordinator's answer.
fn appended(
    tp: &TopicPartition,
    r: crate::replica_manager::AppendResult,
    too_large: ErrorCode,
) -> Result<i64, ErrorCode> {
    match r.error {
        ErrorCode::None => Ok(r.last_offset + 1),
        ErrorCode::UnknownTopicOrPartition
        | ErrorCode::NotEnoughReplicas
        | ErrorCode::NotEnoughReplicasAfterAppend
        | ErrorCode::RequestTimedOut => Err(ErrorCode::CoordinatorNotAvailable),
        ErrorCode::NotLeaderOrFollower | ErrorCode::KafkaStorageError => {
            Err(ErrorCode::NotCoordinator)
        }
        ErrorCode::MessageTooLarge | ErrorCode::RecordListTooLarge => Err(too_large),
        // A transactional write's producer checks.
        code @ (ErrorCode::InvalidProducerEpoch
        | ErrorCode::ProducerFenced
        | ErrorCode::InvalidTxnState) => Err(code),
        other => {
            tracing::warn!(topic = %tp.topic, partition = tp.partition, error = ?other, "cannot append to a coordinator partition");
            Err(ErrorCode::UnknownServerError)
        }
    }
}

/// Waits until a coordinator partition's high watermark reaches `required`, at most until
/// `deadline`; Kafka's mapping of the failures to coordinator errors.
pub async fn wait_replicated(
    rm: &ReplicaManager,
    image: &MetadataImage,
    tp: &TopicPartition,
    required: i64,
    deadline: tokio::time::Instant,
) -> Result<(), ErrorCode> {
    match rm
        .wait_for_high_watermark(image, tp, required, deadline)
        .await
    {
        ErrorCode::None => Ok(()),
        ErrorCode::NotLeaderOrFollower => Err(ErrorCode::NotCoordinator),
        _ => Err(ErrorCode::CoordinatorNotAvailable),
    }
}

/// Reads a coordinator partition this broker leads from its log start to its log end (as
/// Kafka's coordinators load: a new leader's high watermark may lag behind what its followers
/// acknowledged), handing each record `decode` can read to `apply` (`load` counts them).
pub fn read_partition<R, E: Display>(
    rm: &ReplicaManager,
    image: &MetadataImage,
    tp: &TopicPartition,
    load: &mut PartitionLoad,
    decode: &DecodeRecord<R, E>,
    apply: &mut dyn FnMut(R),
) -> Result<(), String> {
    read_partition_loaded(rm, image, tp, load, decode, &mut |l| {
        if let Loaded::Record { record, .. } = l {
            apply(record)
        }
    })
}

/// [`read_partition`] with each record's transactional producer, and the transaction markers.
pub fn read_partition_loaded<R, E: Display>(
    rm: &ReplicaManager,
    image: &MetadataImage,
    tp: &TopicPartition,
    load: &mut PartitionLoad,
    decode: &DecodeRecord<R, E>,
    apply: &mut dyn FnMut(Loaded<R>),
) -> Result<(), String> {
    let mut offset = {
        let r = rm.read(image, tp, 0, 0, false, -1, false);
        if r.error != ErrorCode::None {
            return Err(format!("{:?}", r.error));
        }
        r.log_start_offset
    };
    loop {
        let r = rm.read_to_log_end(image, tp, offset, 1 << 20);
        if r.error != ErrorCode::None {
            return Err(format!("read at {offset}: {:?}", r.error));
        }
        let Some(slice) = r.records else { break };
        let bytes = Bytes::from(slice.read_to_vec().map_err(|e| e.to_string())?);
        match load.read_chunk_loaded(bytes, offset, decode, apply) {
            ChunkEnd::Next(next) if next > offset => offset = next,
            // The end of the log, or nothing more that can be read: serve what was read
            // rather than leave the partition loading forever.
            ChunkEnd::Next(_) | ChunkEnd::Broken => break,
        }
    }
    Ok(())
}

/// An internal topic's shape (Kafka's `*.topic.*` / `transaction.state.log.*` settings).
#[derive(Debug, Clone)]
pub struct InternalTopic {
    pub name: &'static str,
    pub num_partitions: i32,
    pub replication_factor: i16,
    pub segment_bytes: i32,
    /// The topic's `min.insync.replicas` (`transaction.state.log.min.isr`), if set.
    pub min_insync_replicas: Option<i32>,
}

/// Creates a compacted internal topic through the controller (another request may have won the
/// race: TOPIC_ALREADY_EXISTS is fine).
pub async fn create_internal_topic(controller: &ControllerChannel, t: &InternalTopic) {
    let config = |name: &str, value: String| CreatableTopicConfig {
        name: name.to_owned(),
        value: Some(value),
        ..Default::default()
    };
    let req = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: t.name.to_owned(),
            num_partitions: t.num_partitions,
            replication_factor: t.replication_factor,
            configs: [
                Some(config("cleanup.policy", "compact".into())),
                Some(config("compression.type", "producer".into())),
                Some(config("segment.bytes", t.segment_bytes.to_string())),
                t.min_insync_replicas
                    .map(|m| config("min.insync.replicas", m.to_string())),
            ]
            .into_iter()
            .flatten()
            .collect(),
            ..Default::default()
        }],
        timeout_ms: 5000,
        ..Default::default()
    };
    match controller.send(7, RequestKind::CreateTopics(req)).await {
        Some(ResponseKind::CreateTopics(r)) => {
            for res in &r.topics {
                if res.error_code != 0 && res.error_code != ErrorCode::TopicAlreadyExists.code() {
                    tracing::warn!(topic = t.name, error = res.error_code, message = ?res.error_message, "cannot create an internal topic");
                } else if res.error_code == 0 {
                    tracing::info!(
                        topic = t.name,
                        partitions = t.num_partitions,
                        "created internal topic"
                    );
                }
            }
        }
        _ => tracing::warn!(
            topic = t.name,
            "no controller answered the creation of an internal topic"
        ),
    }
}
