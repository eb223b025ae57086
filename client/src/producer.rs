//! [`Producer`]: records to one topic's partitions, batched per partition (RecordBatch v2,
//! uncompressed), sent to each partition's leader in one Produce per leader, with Kafka's
//! producer semantics where they matter to users: `acks`, `batch.size` in bytes, `linger.ms`, the
//! default partitioner (murmur2 of the key; keyless records stick to a partition until its batch
//! is sent), and retries of retriable errors (leadership moved, …) after a metadata refresh,
//! within `default.api.timeout.ms`. Requests are sent one at a time per producer; what a caller
//! needs more of, it gets by batching (or by running producers side by side).
//!
//! With `enable.idempotence` ([`ProducerConfig::idempotent`]) the producer takes a producer id
//! from InitProducerId and stamps every batch with it, its epoch and the partition's next
//! sequence number, so a batch resent after a lost answer is written once (the broker answers a
//! duplicate with the original offset, or DUPLICATE_SEQUENCE_NUMBER, both success here, as in
//! Kafka's client). Order holds because one Produce is in flight at a time and a batch that
//! could not be delivered in time is kept, with its sequence, and sent again first by the next
//! [`Producer::flush`]: nothing behind it overtakes it. When the broker no longer knows the
//! producer (UNKNOWN_PRODUCER_ID) or sees a gap (OUT_OF_ORDER_SEQUENCE_NUMBER, e.g. after it lost
//! its producer state), the producer takes a new producer id and restamps the batches it still
//! holds from sequence 0 — as Kafka's idempotent producer resets its producer id; a batch the
//! broker did write before forgetting the producer may then be written twice.

use crate::client::Client;
use crate::error::ClientError;
use bytes::Bytes;
use rafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use rafka_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use rafka_protocol::record_batch::RecordBatchBuilder;
use rafka_protocol::Records;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// `acks`: 0, 1 or -1 (all).
    pub acks: i16,
    /// `batch.size`: a partition's batch is sent once it holds this many bytes.
    pub batch_size: usize,
    /// `linger.ms`: the longest a record waits for its batch to fill.
    pub linger: Duration,
    /// `request.timeout.ms` as the Produce timeout the broker applies to acks=all.
    pub timeout_ms: i32,
    /// `enable.idempotence`: producer id, epoch and sequence numbers on every batch (needs
    /// acks=all, as Kafka requires).
    pub idempotent: bool,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: -1,
            batch_size: 16384,
            linger: Duration::from_millis(5),
            timeout_ms: 30_000,
            idempotent: false,
        }
    }
}

/// One record to send.
#[derive(Debug, Clone, Default)]
pub struct ProducerRecord {
    /// `None`: the partitioner picks.
    pub partition: Option<i32>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    /// ms since the epoch (CreateTime).
    pub timestamp: i64,
}

/// Records the broker acknowledged: their partition, the first one's offset (-1 with acks=0)
/// and when each was handed to [`Producer::send`] (for latency).
#[derive(Debug, Clone)]
pub struct Acked {
    pub partition: i32,
    pub base_offset: i64,
    pub created: Vec<Instant>,
}

struct Pending {
    builder: RecordBatchBuilder,
    created: Vec<Instant>,
    bytes: usize,
    since: Instant,
}

struct Built {
    partition: i32,
    batch: Bytes,
    created: Vec<Instant>,
}

/// The idempotent producer's identity and each partition's next sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdentity {
    pub producer_id: i64,
    pub producer_epoch: i16,
}

pub struct Producer {
    client: Client,
    topic: String,
    /// Leader by partition.
    leaders: BTreeMap<i32, i32>,
    config: ProducerConfig,
    pending: BTreeMap<i32, Pending>,
    sticky: usize,
    /// With idempotence: the producer id, and the next sequence number by partition.
    identity: Option<ProducerIdentity>,
    sequences: BTreeMap<i32, i32>,
    /// Batches built and stamped but not yet acknowledged (their delivery timed out): sent again,
    /// first, by the next flush.
    unacked: Vec<Built>,
    /// A new producer id is needed before the next Produce.
    needs_reset: bool,
}

enum Outcome {
    Acked(i64),
    Retry(ClientError),
    Reset(ClientError),
    Fatal(ClientError),
}

/// The record count of a RecordBatch v2 (bytes 57..61).
fn batch_record_count(batch: &[u8]) -> i32 {
    batch
        .get(57..61)
        .map_or(0, |b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// `batch` with producer id, epoch and base sequence set (bytes 43..57) and its CRC-32C
/// (over attributes..end, stored at 17..21) recomputed.
fn restamp(batch: &[u8], id: ProducerIdentity, base_sequence: i32) -> Bytes {
    let mut b = batch.to_vec();
    if b.len() < 61 {
        return Bytes::from(b);
    }
    b[43..51].copy_from_slice(&id.producer_id.to_be_bytes());
    b[51..53].copy_from_slice(&id.producer_epoch.to_be_bytes());
    b[53..57].copy_from_slice(&base_sequence.to_be_bytes());
    let crc = rafka_protocol::record_batch::crc32c(&[&b[21..]]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}

impl Producer {
    /// A producer for `topic`, which must exist.
    pub async fn new(
        client: Client,
        topic: &str,
        config: ProducerConfig,
    ) -> Result<Producer, ClientError> {
        let mut producer = Producer {
            client,
            leaders: BTreeMap::new(),
            topic: topic.to_owned(),
            config,
            pending: BTreeMap::new(),
            sticky: 0,
            identity: None,
            sequences: BTreeMap::new(),
            unacked: Vec::new(),
            needs_reset: false,
        };
        if producer.config.idempotent && producer.config.acks != -1 {
            return Err(ClientError::Config(
                "enable.idempotence needs acks=all (-1)".into(),
            ));
        }
        producer.refresh().await?;
        if producer.config.idempotent {
            producer.init_producer_id().await?;
        }
        // A random first sticky partition, as Kafka's.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as usize);
        producer.sticky = seed % producer.leaders.len().max(1);
        Ok(producer)
    }

    async fn refresh(&mut self) -> Result<(), ClientError> {
        let topic = self.topic.clone();
        let leaders = self
            .client
            .retry("Metadata", async |c: &mut Client| {
                let l = c.leaders(std::slice::from_ref(&topic)).await?;
                if l.is_empty() {
                    return Err(ClientError::Kafka {
                        subject: format!("topic {topic}"),
                        code: rafka_protocol::ErrorCode::UnknownTopicOrPartition,
                        message: None,
                    });
                }
                Ok(l)
            })
            .await?;
        self.leaders = leaders.into_iter().map(|((_, p), l)| (p, l)).collect();
        Ok(())
    }

    /// Asks for a (new) producer id; sequences start again at 0.
    async fn init_producer_id(&mut self) -> Result<(), ClientError> {
        let timeout_ms = self.config.timeout_ms;
        let r = self
            .client
            .retry("InitProducerId", async |c: &mut Client| {
                let r = c
                    .any()
                    .await?
                    .send(InitProducerIdRequest {
                        transactional_id: None,
                        transaction_timeout_ms: timeout_ms,
                        producer_id: -1,
                        producer_epoch: -1,
                        ..Default::default()
                    })
                    .await?;
                ClientError::check("InitProducerId", r.error_code, None)?;
                Ok(r)
            })
            .await?;
        tracing::debug!(
            producer_id = r.producer_id,
            epoch = r.producer_epoch,
            "producer id"
        );
        self.identity = Some(ProducerIdentity {
            producer_id: r.producer_id,
            producer_epoch: r.producer_epoch,
        });
        self.sequences.clear();
        Ok(())
    }

    /// The producer id and epoch (with idempotence).
    pub fn identity(&self) -> Option<ProducerIdentity> {
        self.identity
    }

    /// Whether batches are built or kept that the broker has not acknowledged.
    pub fn has_unacked(&self) -> bool {
        !self.unacked.is_empty() || !self.pending.is_empty()
    }

    /// Stamps `batch` with the producer id and the partition's next sequence numbers.
    fn stamp(&mut self, partition: i32, batch: Bytes) -> Bytes {
        let Some(id) = self.identity else {
            return batch;
        };
        let count = batch_record_count(&batch);
        let next = self.sequences.entry(partition).or_insert(0);
        let sequence = *next;
        // Sequences wrap at i32::MAX, as Kafka's.
        *next = if *next > i32::MAX - count {
            count - (i32::MAX - *next) - 1
        } else {
            *next + count
        };
        restamp(&batch, id, sequence)
    }

    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    pub fn partition_count(&self) -> usize {
        self.leaders.len()
    }

    /// Kafka's default partitioner: murmur2 of the key, positive, modulo the partition count;
    /// keyless records go to the sticky partition.
    pub fn partition_for(&self, key: Option<&[u8]>) -> i32 {
        let n = self.leaders.len().max(1);
        let i = match key {
            Some(k) => (murmur2(k) & 0x7fff_ffff) as usize % n,
            None => self.sticky % n,
        };
        self.leaders.keys().nth(i).copied().unwrap_or(0)
    }

    /// Adds `record` to its partition's batch; sends the batches that are full or have lingered
    /// long enough, and returns what was acknowledged meanwhile.
    pub async fn send(&mut self, record: ProducerRecord) -> Result<Vec<Acked>, ClientError> {
        let partition = match record.partition {
            Some(p) if self.leaders.contains_key(&p) => p,
            Some(p) => {
                return Err(ClientError::Kafka {
                    subject: format!("{}-{p}", self.topic),
                    code: rafka_protocol::ErrorCode::UnknownTopicOrPartition,
                    message: None,
                })
            }
            None => self.partition_for(record.key.as_deref()),
        };
        let now = Instant::now();
        let pending = self.pending.entry(partition).or_insert_with(|| Pending {
            builder: RecordBatchBuilder::new(0),
            created: Vec::new(),
            bytes: 0,
            since: now,
        });
        let headers: Vec<(&str, Option<&[u8]>)> = record
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        pending
            .builder
            .append(
                record.timestamp,
                record.key.as_deref(),
                record.value.as_deref(),
                &headers,
            )
            .map_err(|e| ClientError::Protocol(format!("record too large: {e}")))?;
        pending.created.push(now);
        pending.bytes += record.key.as_ref().map_or(0, Bytes::len)
            + record.value.as_ref().map_or(0, Bytes::len)
            + 16;
        let full = pending.bytes >= self.config.batch_size;
        if full && record.partition.is_none() && record.key.is_none() {
            self.sticky = self.sticky.wrapping_add(1);
        }
        if full {
            let (size, linger) = (self.config.batch_size, self.config.linger);
            return self
                .flush_where(|p| p.bytes >= size || now.duration_since(p.since) >= linger)
                .await;
        }
        self.poll().await
    }

    /// Sends the batches that have waited `linger.ms`.
    pub async fn poll(&mut self) -> Result<Vec<Acked>, ClientError> {
        let now = Instant::now();
        let linger = self.config.linger;
        if self
            .pending
            .values()
            .any(|p| now.duration_since(p.since) >= linger)
        {
            self.flush_where(|p| now.duration_since(p.since) >= linger)
                .await
        } else {
            Ok(Vec::new())
        }
    }

    /// Sends every batch.
    pub async fn flush(&mut self) -> Result<Vec<Acked>, ClientError> {
        self.flush_where(|_| true).await
    }

    async fn flush_where(
        &mut self,
        ready: impl Fn(&Pending) -> bool,
    ) -> Result<Vec<Acked>, ClientError> {
        let parts: Vec<i32> = self
            .pending
            .iter()
            .filter(|(_, p)| ready(p))
            .map(|(k, _)| *k)
            .collect();
        // Batches kept from a failed flush go first: a partition's sequences stay in order.
        let mut built = std::mem::take(&mut self.unacked);
        for p in parts {
            if let Some(pending) = self.pending.remove(&p) {
                let batch = self.stamp(p, pending.builder.build());
                built.push(Built {
                    partition: p,
                    batch,
                    created: pending.created,
                });
            }
        }
        self.send_batches(built).await
    }

    /// Sends `batches` (in order per partition; one batch per partition per Produce), retrying
    /// what may succeed later until `default.api.timeout.ms`. What is not acknowledged when it
    /// gives up is kept for the next flush (the error is returned); a batch refused for good is
    /// dropped (its error is returned).
    async fn send_batches(&mut self, batches: Vec<Built>) -> Result<Vec<Acked>, ClientError> {
        let deadline = Instant::now() + self.client.config().api_timeout;
        let mut backoff = self.client.config().retry_backoff;
        let mut acked = Vec::new();
        let mut queue = batches;
        while !queue.is_empty() {
            if self.needs_reset {
                self.reset_identity(&mut queue).await?;
            }
            // This round: the first batch of each partition; the rest wait their turn.
            let mut round: Vec<Built> = Vec::new();
            let mut later: Vec<Built> = Vec::new();
            for b in queue.drain(..) {
                if round.iter().any(|r| r.partition == b.partition) {
                    later.push(b);
                } else {
                    round.push(b);
                }
            }
            let mut by_leader: BTreeMap<i32, Vec<Built>> = BTreeMap::new();
            for b in round {
                let leader = self.leaders.get(&b.partition).copied().unwrap_or(-1);
                by_leader.entry(leader).or_default().push(b);
            }
            let mut retry: Vec<Built> = Vec::new();
            let mut last_error = None;
            let mut fatal = None;
            for (leader, group) in by_leader {
                if fatal.is_some() {
                    retry.extend(group);
                    continue;
                }
                if leader < 0 {
                    last_error = Some(ClientError::Kafka {
                        subject: format!("topic {}", self.topic),
                        code: rafka_protocol::ErrorCode::LeaderNotAvailable,
                        message: None,
                    });
                    retry.extend(group);
                    continue;
                }
                match self.produce(leader, &group).await {
                    Ok(results) => {
                        for (b, result) in group.into_iter().zip(results) {
                            match self.classify(result) {
                                Outcome::Acked(base_offset) => acked.push(Acked {
                                    partition: b.partition,
                                    base_offset,
                                    created: b.created,
                                }),
                                Outcome::Retry(e) => {
                                    last_error = Some(e);
                                    retry.push(b);
                                }
                                Outcome::Reset(e) => {
                                    tracing::warn!(topic = %self.topic, partition = b.partition, error = %e, "resetting the producer id");
                                    self.needs_reset = true;
                                    last_error = Some(e);
                                    retry.push(b);
                                }
                                Outcome::Fatal(e) => {
                                    // Later batches of an idempotent producer would now see a
                                    // gap in the sequence: restamp them under a new id.
                                    self.needs_reset = self.identity.is_some();
                                    fatal = Some(e);
                                }
                            }
                        }
                    }
                    Err(e) if e.is_retriable() => {
                        self.client.forget(leader);
                        last_error = Some(e);
                        retry.extend(group);
                    }
                    Err(e) => {
                        fatal = Some(e);
                        retry.extend(group);
                    }
                }
            }
            // A partition's retried batch goes before its later ones.
            retry.extend(later);
            queue = retry;
            if let Some(e) = fatal {
                self.unacked = queue;
                return Err(e);
            }
            if queue.is_empty() {
                break;
            }
            if last_error.is_none() {
                // Only batches that waited their partition's turn: no backoff.
                continue;
            }
            if Instant::now() + backoff >= deadline {
                self.unacked = queue;
                return Err(last_error.unwrap_or_else(|| {
                    ClientError::Protocol(format!("topic {}: produce did not complete", self.topic))
                }));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
            if let Err(e) = self.refresh().await {
                self.unacked = queue;
                return Err(e);
            }
        }
        Ok(acked)
    }

    /// What to do with one partition's answer.
    fn classify(&self, result: Result<i64, ClientError>) -> Outcome {
        use rafka_protocol::ErrorCode as E;
        match result {
            Ok(o) => Outcome::Acked(o),
            // Already written (the original answer was lost): success, as Kafka's client.
            Err(e) if self.identity.is_some() && e.code() == Some(E::DuplicateSequenceNumber) => {
                Outcome::Acked(-1)
            }
            Err(e)
                if self.identity.is_some()
                    && matches!(
                        e.code(),
                        Some(E::OutOfOrderSequenceNumber | E::UnknownProducerId)
                    ) =>
            {
                Outcome::Reset(e)
            }
            Err(e) if e.is_retriable() => Outcome::Retry(e),
            Err(e) => Outcome::Fatal(e),
        }
    }

    /// A new producer id; the batches still to send are restamped from sequence 0, in order.
    async fn reset_identity(&mut self, queue: &mut Vec<Built>) -> Result<(), ClientError> {
        if let Err(e) = self.init_producer_id().await {
            self.unacked = std::mem::take(queue);
            return Err(e);
        }
        self.needs_reset = false;
        for b in queue.iter_mut() {
            let batch = std::mem::take(&mut b.batch);
            b.batch = self.stamp(b.partition, batch);
        }
        Ok(())
    }

    /// Drops every record not yet acknowledged (built or kept); with idempotence the next batch
    /// goes out under a new producer id, since its sequence would follow a gap.
    pub fn discard(&mut self) {
        self.pending.clear();
        self.unacked.clear();
        if self.identity.is_some() {
            self.needs_reset = true;
            self.sequences.clear();
        }
    }

    /// One Produce to `leader`; each batch's base offset or error, in order.
    async fn produce(
        &mut self,
        leader: i32,
        group: &[Built],
    ) -> Result<Vec<Result<i64, ClientError>>, ClientError> {
        let request = ProduceRequest {
            transactional_id: None,
            acks: self.config.acks,
            timeout_ms: self.config.timeout_ms,
            topic_data: vec![TopicProduceData {
                name: self.topic.clone(),
                partition_data: group
                    .iter()
                    .map(|b| PartitionProduceData {
                        index: b.partition,
                        records: Some(Records::Bytes(b.batch.clone())),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        if self.config.acks == 0 {
            self.client
                .broker(leader)
                .await?
                .send_oneway(request)
                .await?;
            return Ok(group.iter().map(|_| Ok(-1)).collect());
        }
        let resp = self.client.send_to(leader, request).await?;
        let mut results: BTreeMap<i32, Result<i64, ClientError>> = BTreeMap::new();
        for t in resp.responses {
            for p in t.partition_responses {
                let r = ClientError::check(
                    format!("{}-{}", t.name, p.index),
                    p.error_code,
                    p.error_message.as_deref(),
                )
                .map(|()| p.base_offset);
                results.insert(p.index, r);
            }
        }
        Ok(group
            .iter()
            .map(|b| {
                results.remove(&b.partition).unwrap_or_else(|| {
                    Err(ClientError::Protocol(format!(
                        "{}-{}: no answer for the partition",
                        self.topic, b.partition
                    )))
                })
            })
            .collect())
    }
}

/// Kafka's `Utils.murmur2` (seed 0x9747b28c), as its default partitioner hashes keys.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = 0x9747_b28c ^ (len as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    match tail.len() {
        3 => {
            h ^= u32::from(tail[2]) << 16;
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        2 => {
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        1 => {
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        _ => {}
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Values from Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58897971
        );
        assert_eq!(murmur2(b"abc"), 479470107);
    }
}
