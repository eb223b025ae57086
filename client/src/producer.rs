//! [`Producer`]: records to one topic's partitions, batched per partition (RecordBatch v2,
//! uncompressed), sent to each partition's leader in one Produce per leader, with Kafka's
//! producer semantics where they matter to users: `acks`, `batch.size` in bytes, `linger.ms`, the
//! default partitioner (murmur2 of the key; keyless records stick to a partition until its batch
//! is sent), and retries of retriable errors (leadership moved, …) after a metadata refresh,
//! within `default.api.timeout.ms`. Requests are sent one at a time per producer; what a caller
//! needs more of, it gets by batching (or by running producers side by side).

use crate::{Client, ClientError};
use bytes::Bytes;
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
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: -1,
            batch_size: 16384,
            linger: Duration::from_millis(5),
            timeout_ms: 30_000,
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

pub struct Producer {
    client: Client,
    topic: String,
    /// Leader by partition.
    leaders: BTreeMap<i32, i32>,
    config: ProducerConfig,
    pending: BTreeMap<i32, Pending>,
    sticky: usize,
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
        };
        producer.refresh().await?;
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
        let mut built = Vec::new();
        for p in parts {
            if let Some(pending) = self.pending.remove(&p) {
                built.push(Built {
                    partition: p,
                    batch: pending.builder.build(),
                    created: pending.created,
                });
            }
        }
        self.send_batches(built).await
    }

    async fn send_batches(&mut self, mut batches: Vec<Built>) -> Result<Vec<Acked>, ClientError> {
        let deadline = Instant::now() + self.client.config().api_timeout;
        let mut backoff = self.client.config().retry_backoff;
        let mut acked = Vec::new();
        while !batches.is_empty() {
            let mut by_leader: BTreeMap<i32, Vec<Built>> = BTreeMap::new();
            for b in batches.drain(..) {
                let leader = self.leaders.get(&b.partition).copied().unwrap_or(-1);
                by_leader.entry(leader).or_default().push(b);
            }
            let mut retry: Vec<Built> = Vec::new();
            let mut last_error = None;
            for (leader, group) in by_leader {
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
                            match result {
                                Ok(base_offset) => acked.push(Acked {
                                    partition: b.partition,
                                    base_offset,
                                    created: b.created,
                                }),
                                Err(e) if e.is_retriable() => {
                                    last_error = Some(e);
                                    retry.push(b);
                                }
                                Err(e) => return Err(e),
                            }
                        }
                    }
                    Err(e) if e.is_retriable() => {
                        self.client.forget(leader);
                        last_error = Some(e);
                        retry.extend(group);
                    }
                    Err(e) => return Err(e),
                }
            }
            if retry.is_empty() {
                break;
            }
            if Instant::now() + backoff >= deadline {
                return Err(last_error.unwrap_or_else(|| {
                    ClientError::Protocol(format!("topic {}: produce did not complete", self.topic))
                }));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
            self.refresh().await?;
            batches = retry;
        }
        Ok(acked)
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
