//! Produce: each partition's records are validated (`ReplicaManager::validate_for_append`, Kafka's
//! `LogValidator`: refusals carry Kafka's error code, `error_message` and, from v8, per-record
//! `record_errors`), then appended untouched (the log assigns offsets in the batch headers). acks=0 sends nothing back (`None`); acks=1 answers after the
//! local append; acks=all then waits (Kafka's delayed produce) until the high watermark passes
//! every partition's append, or the request's `timeout_ms` — with a single replica at once.
//! Each topic needs TOPIC WRITE (else TOPIC_AUTHORIZATION_FAILED for its partitions), a
//! transactional producer TRANSACTIONAL_ID WRITE on its id. Transactional batches open the
//! producer's transaction in the partition (the log's producer state); the coordinator's
//! markers close it.
//! From v10 a NOT_LEADER_OR_FOLLOWER partition names the current leader and the response its
//! endpoint (KIP-951, `current_leader`).

use super::current_leader::LeaderHints;
use super::kafka_apis::KafkaApis;
use crate::add_partitions_to_txn_manager::Ask;
use crate::network::RequestContext;
use rafka_controller::control::topics::internal::check_client_produce;
use rafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    TopicProduceResponse,
};
use rafka_protocol::messages::{ProduceRequest, ProduceResponse};
use rafka_protocol::ErrorCode;
use rafka_security::authorizer::{AclOperation, ResourceType};
use rafka_storage::{TopicPartition, VerificationGuard};
use std::collections::{BTreeMap, HashMap};

/// The first Produce version of transactions v2 (KIP-890 part 2): the leader adds partitions.
pub const TRANSACTIONS_V2_VERSION: i16 = 12;

/// The producer id and epoch of a partition's records if its first batch is transactional
/// (Kafka takes a request's producer from its first batch; a later batch of another producer
/// fails the append's own check).
fn transactional_producer(bytes: &bytes::Bytes) -> Option<(i64, i16)> {
    let batch = rafka_protocol::record_batch::RecordBatch::parse(bytes.clone()).ok()?;
    batch
        .is_transactional()
        .then(|| (batch.producer_id(), batch.producer_epoch()))
}

/// KIP-890 part 1: a transactional batch must belong to a transaction its producer has open
/// with this partition added, so that a late or stray transactional write can never open a
/// transaction no coordinator will end and hold read_committed consumers forever. It needs the
/// request's transactional id; a producer with no transaction open in the partition is checked
/// with the id's coordinator ([`crate::add_partitions_to_txn_manager`]) under a guard the append
/// presents. Per partition with transactional records: the guard to append with, or the code
/// that refuses them.
///
/// From v12 (KIP-890 part 2, transactions v2) the producer sends no AddPartitionsToTxn: the
/// coordinator is asked to add the partition to the transaction instead (Kafka's
/// `addPartition` operation), under the same guard.
async fn verify_transactional(
    apis: &KafkaApis,
    image: &std::sync::Arc<rafka_controller::image::MetadataImage>,
    version: i16,
    req: &ProduceRequest,
    may_write: impl Fn(&str) -> bool,
) -> HashMap<(String, i32), Result<VerificationGuard, ErrorCode>> {
    let what = if version >= TRANSACTIONS_V2_VERSION {
        Ask::Add
    } else {
        Ask::Verify
    };
    let mut out = HashMap::new();
    // (producer id, epoch) → the partitions to ask about.
    let mut ask: BTreeMap<(i64, i16), Vec<(String, i32)>> = BTreeMap::new();
    for t in req.topic_data.iter().filter(|t| may_write(&t.name)) {
        for p in &t.partition_data {
            let Some(bytes) = p.records.as_ref().and_then(|r| r.as_bytes()) else {
                continue;
            };
            let Some((pid, epoch)) = transactional_producer(bytes) else {
                continue;
            };
            let key = (t.name.clone(), p.index);
            if req.transactional_id.is_none() {
                out.insert(key, Err(ErrorCode::InvalidTxnState));
                continue;
            }
            let tp = TopicPartition::new(&t.name, p.index);
            let started = apis
                .replica_manager
                .start_txn_verification(image, &tp, pid, epoch);
            if let Ok(g) = started {
                if !g.is_sentinel() {
                    ask.entry((pid, epoch)).or_default().push(key.clone());
                }
            }
            out.insert(key, started);
        }
    }
    let Some(id) = req.transactional_id.as_deref() else {
        return out;
    };
    for ((pid, epoch), partitions) in ask {
        let codes = apis
            .txn_verifier
            .verify(image, id, pid, epoch, partitions.clone(), what)
            .await;
        for (key, code) in partitions.into_iter().zip(codes) {
            if code != ErrorCode::None {
                out.insert(key, Err(code));
            }
        }
    }
    out
}

/// What to send back.
pub enum Outcome {
    Respond(ProduceResponse),
    /// acks=0 and everything was appended.
    Nothing,
    /// acks=0 and something failed: Kafka closes the connection so the client refreshes its
    /// metadata.
    Close,
}

pub async fn handle(
    apis: &KafkaApis,
    ctx: &RequestContext,
    version: i16,
    req: ProduceRequest,
) -> Outcome {
    let image = apis.image();
    let authz = apis.authorizer_for(ctx, &image);
    let mut responses = Vec::with_capacity(req.topic_data.len());
    let invalid_acks = !matches!(req.acks, -1..=1);
    // A transactional producer needs TRANSACTIONAL_ID WRITE on its id (Kafka's check).
    let txn_refused = req
        .transactional_id
        .as_deref()
        .is_some_and(|id| !authz.allows(AclOperation::Write, ResourceType::TransactionalId, id));
    let verified = if invalid_acks || txn_refused {
        HashMap::new()
    } else {
        let may_write = |topic: &str| {
            authz.allows(AclOperation::Write, ResourceType::Topic, topic)
                && check_client_produce(topic).is_ok()
        };
        verify_transactional(apis, &image, version, &req, may_write).await
    };
    // acks=all: (topic index, partition index, partition, the offset the high watermark must
    // reach).
    let mut waits: Vec<(usize, usize, TopicPartition, i64)> = Vec::new();
    for topic in req.topic_data {
        // Internal topics and the metadata log take no client writes (their owners append
        // through the replica manager directly).
        let authorized = authz.allows(AclOperation::Write, ResourceType::Topic, &topic.name);
        let refused = check_client_produce(&topic.name).err();
        let mut partition_responses = Vec::with_capacity(topic.partition_data.len());
        for p in topic.partition_data {
            let tp = TopicPartition {
                topic: topic.name.clone(),
                partition: p.index,
            };
            let result = if invalid_acks {
                error(p.index, ErrorCode::InvalidRequiredAcks)
            } else if !authorized {
                error(p.index, ErrorCode::TopicAuthorizationFailed)
            } else if let Some(e) = &refused {
                error(p.index, e.code)
            } else if txn_refused {
                error(p.index, ErrorCode::TransactionalIdAuthorizationFailed)
            } else {
                let bytes = p.records.as_ref().and_then(|r| r.as_bytes());
                // Listed twice, a partition gets the same verdict twice.
                let verdict = verified.get(&(tp.topic.clone(), tp.partition)).copied();
                match (bytes, verdict) {
                    (None, _) => error(p.index, ErrorCode::CorruptMessage),
                    (Some(_), Some(Err(code))) => PartitionProduceResponse {
                        error_message: (version >= 8 && code == ErrorCode::InvalidTxnState).then(|| {
                            format!("transactional records for {tp} outside an ongoing transaction of this producer that includes the partition")
                        }),
                        ..error(p.index, code)
                    },
                    (Some(bytes), guard) => {
                        // Without a verified guard (a first batch that is not transactional,
                        // say) no batch of the request may open a transaction.
                        let guard = guard
                            .and_then(Result::ok)
                            .unwrap_or(VerificationGuard::SENTINEL);
                        // Validated before the partition's lock (and for compressed batches on
                        // a blocking thread), then appended.
                        let r = match apis
                            .replica_manager
                            .validate_for_append(&image, &tp, bytes)
                            .await
                        {
                            Ok(validated) => apis
                                .replica_manager
                                .append_validated(&image, &tp, &validated, req.acks, Some(guard)),
                            Err(refused) => refused,
                        };
                        if req.acks == -1 && r.error == ErrorCode::None && !r.replicated {
                            waits.push((
                                responses.len(),
                                partition_responses.len(),
                                tp.clone(),
                                r.last_offset + 1,
                            ));
                        }
                        PartitionProduceResponse {
                            index: p.index,
                            error_code: r.error.code(),
                            base_offset: r.base_offset,
                            log_append_time_ms: r.log_append_time,
                            log_start_offset: r.log_start_offset,
                            // Fields of v8+: Kafka drops them (ignorable) for older clients.
                            error_message: if version >= 8 { r.error_message } else { None },
                            record_errors: if version >= 8 {
                                r.record_errors
                                    .into_iter()
                                    .map(|e| BatchIndexAndErrorMessage {
                                        batch_index: e.batch_index,
                                        batch_index_error_message: Some(e.message),
                                        ..Default::default()
                                    })
                                    .collect()
                            } else {
                                Vec::new()
                            },
                            ..Default::default()
                        }
                    }
                }
            };
            partition_responses.push(result);
        }
        responses.push(TopicProduceResponse {
            name: topic.name,
            partition_responses,
            ..Default::default()
        });
    }
    if req.acks == 0 {
        let failed = responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .any(|p| p.error_code != 0);
        return if failed {
            Outcome::Close
        } else {
            Outcome::Nothing
        };
    }
    let deadline = tokio::time::Instant::now()
        + std::time::Duration::from_millis(req.timeout_ms.max(0) as u64);
    // Kafka's delayed produce: one wait over the partitions, woken by their own high
    // watermarks only.
    let required: Vec<(TopicPartition, i64)> = waits
        .iter()
        .map(|(_, _, tp, required)| (tp.clone(), *required))
        .collect();
    let codes = apis
        .replica_manager
        .wait_for_high_watermarks(&required, deadline)
        .await;
    for ((t, p, _, _), code) in waits.iter().zip(codes) {
        if code != ErrorCode::None {
            let r = &mut responses[*t].partition_responses[*p];
            r.error_code = code.code();
            r.base_offset = -1;
        }
    }
    // KIP-951 (v10+): where the leader went, from the image as it is now.
    let mut hints = LeaderHints::default();
    if version >= 10 {
        let not_leader: Vec<(&str, i32)> = responses
            .iter()
            .flat_map(|t| {
                t.partition_responses
                    .iter()
                    .filter(|p| p.error_code == ErrorCode::NotLeaderOrFollower.code())
                    .map(move |p| (t.name.as_str(), p.index))
            })
            .collect();
        let image = if not_leader.is_empty() {
            apis.image()
        } else {
            super::current_leader::image_for_hints(apis, &not_leader).await
        };
        for t in &mut responses {
            for p in &mut t.partition_responses {
                if p.error_code == ErrorCode::NotLeaderOrFollower.code() {
                    let l = hints.current_leader(&image, &t.name, p.index, &ctx.listener);
                    p.current_leader = LeaderIdAndEpoch {
                        leader_id: l.leader_id,
                        leader_epoch: l.leader_epoch,
                        ..Default::default()
                    };
                }
            }
        }
    }
    Outcome::Respond(ProduceResponse {
        responses,
        node_endpoints: hints
            .endpoints()
            .map(|e| NodeEndpoint {
                node_id: e.node_id,
                host: e.host,
                port: e.port,
                rack: e.rack,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
}

/// The oldest Produce version served: v3 (the first with RecordBatch v2 only). v0–v2 carry
/// message sets v0/v1; they are advertised because librdkafka < 2.11.1 stops compressing when
/// the advertised range does not start at 0 (PROTOCOL.md).
pub const MIN_SERVED_VERSION: i16 = 3;

/// A Produce v0–v2 request: as Kafka 4 does (KAFKA-18659), every partition is answered
/// UNSUPPORTED_VERSION in the request's own version's format, so the client reports a clear
/// error instead of seeing its connection closed. acks=0 gets no response, so the connection
/// is closed, as for any failed acks=0 produce.
pub fn unsupported_version(req: &ProduceRequest) -> Outcome {
    if req.acks == 0 {
        return Outcome::Close;
    }
    Outcome::Respond(ProduceResponse {
        responses: req
            .topic_data
            .iter()
            .map(|t| TopicProduceResponse {
                name: t.name.clone(),
                partition_responses: t
                    .partition_data
                    .iter()
                    .map(|p| error(p.index, ErrorCode::UnsupportedVersion))
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
}

fn error(index: i32, code: ErrorCode) -> PartitionProduceResponse {
    PartitionProduceResponse {
        index,
        error_code: code.code(),
        base_offset: -1,
        ..Default::default()
    }
}
