//! [`Consumer`]: fetches one topic's assigned partitions from their leaders (Fetch v12 at most,
//! the last version that names topics), from positions the caller sets, and hands back the
//! records in offset order per partition, decompressed whatever the codec. Control batches
//! (transaction markers) are skipped; records below a position (a fetch from the middle of a
//! batch returns the whole batch) are dropped. Leadership changes refresh the metadata; an
//! offset out of range moves the position to the log start or end, as `auto.offset.reset` says.

use crate::client::Client;
use crate::error::ClientError;
use crate::offsets::{EARLIEST, LATEST};
use bytes::Bytes;
use rafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use rafka_protocol::record_batch::{RecordBatch, TimestampType};
use rafka_protocol::{ErrorCode, Records};
use std::collections::BTreeMap;

/// The Fetch version used at most: 13+ name topics by id.
const MAX_FETCH_VERSION: i16 = 12;

/// One record as the consumer hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub timestamp_type: TimestampType,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(Bytes, Option<Bytes>)>,
}

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// `fetch.max.wait.ms`.
    pub max_wait_ms: i32,
    /// `fetch.max.bytes`.
    pub max_bytes: i32,
    /// `max.partition.fetch.bytes`.
    pub partition_max_bytes: i32,
    /// `auto.offset.reset`: `true` for earliest, `false` for latest.
    pub reset_to_earliest: bool,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            max_wait_ms: 500,
            max_bytes: 52_428_800,
            partition_max_bytes: 1_048_576,
            reset_to_earliest: true,
        }
    }
}

pub struct Consumer {
    client: Client,
    topic: String,
    config: ConsumerConfig,
    leaders: BTreeMap<i32, i32>,
    /// The next offset to fetch, by assigned partition.
    positions: BTreeMap<i32, i64>,
}

impl Consumer {
    /// A consumer of `topic` (which must exist) with nothing assigned.
    pub async fn new(
        client: Client,
        topic: &str,
        config: ConsumerConfig,
    ) -> Result<Consumer, ClientError> {
        let mut c = Consumer {
            client,
            topic: topic.to_owned(),
            config,
            leaders: BTreeMap::new(),
            positions: BTreeMap::new(),
        };
        c.refresh().await?;
        Ok(c)
    }

    async fn refresh(&mut self) -> Result<(), ClientError> {
        let topic = self.topic.clone();
        let leaders = self.client.leaders(std::slice::from_ref(&topic)).await?;
        if leaders.is_empty() {
            return Err(ClientError::Kafka {
                subject: format!("topic {topic}"),
                code: ErrorCode::UnknownTopicOrPartition,
                message: None,
            });
        }
        self.leaders = leaders.into_iter().map(|((_, p), l)| (p, l)).collect();
        Ok(())
    }

    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Every partition of the topic.
    pub fn partitions(&self) -> Vec<i32> {
        self.leaders.keys().copied().collect()
    }

    /// Fetch these partitions from these offsets (replacing the assignment).
    pub fn assign(&mut self, positions: BTreeMap<i32, i64>) {
        self.positions = positions;
    }

    /// The next offset of each assigned partition.
    pub fn positions(&self) -> &BTreeMap<i32, i64> {
        &self.positions
    }

    /// The offsets at `timestamp` ([`EARLIEST`], [`LATEST`] or ms) of `partitions`; a partition
    /// with no record that late gets its log end.
    pub async fn offsets_for(
        &mut self,
        partitions: &[i32],
        timestamp: i64,
    ) -> Result<BTreeMap<i32, i64>, ClientError> {
        let tps: Vec<(String, i32)> = partitions
            .iter()
            .map(|p| (self.topic.clone(), *p))
            .collect();
        let mut found = self.client.list_offsets(&tps, timestamp).await?;
        if found.values().any(|o| *o < 0) {
            let ends = self.client.list_offsets(&tps, LATEST).await?;
            for (tp, o) in found.iter_mut() {
                if *o < 0 {
                    *o = ends.get(tp).copied().unwrap_or(0);
                }
            }
        }
        Ok(found.into_iter().map(|((_, p), o)| (p, o)).collect())
    }

    /// One round of fetches (one per leader of an assigned partition, each waiting at most
    /// `fetch.max.wait.ms`); the records, by partition in offset order.
    pub async fn poll(&mut self) -> Result<Vec<ConsumedRecord>, ClientError> {
        let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
        for (&p, &o) in &self.positions {
            let leader = self.leaders.get(&p).copied().unwrap_or(-1);
            by_leader.entry(leader).or_default().push((p, o));
        }
        let mut out = Vec::new();
        let mut stale = false;
        for (leader, parts) in by_leader {
            if leader < 0 {
                stale = true;
                continue;
            }
            let request = FetchRequest {
                replica_id: -1,
                max_wait_ms: self.config.max_wait_ms,
                min_bytes: 1,
                max_bytes: self.config.max_bytes,
                isolation_level: 0,
                session_epoch: -1,
                topics: vec![FetchTopic {
                    topic: self.topic.clone(),
                    partitions: parts
                        .iter()
                        .map(|&(p, o)| FetchPartition {
                            partition: p,
                            fetch_offset: o,
                            partition_max_bytes: self.config.partition_max_bytes,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            };
            let resp = match self.client.broker(leader).await {
                Ok(conn) => conn.send_capped(MAX_FETCH_VERSION, request).await,
                Err(e) => Err(e),
            };
            let resp = match resp {
                Ok(r) => r,
                Err(e) if e.is_retriable() => {
                    tracing::debug!(leader, error = %e, "fetch failed");
                    self.client.forget(leader);
                    stale = true;
                    continue;
                }
                Err(e) => return Err(e),
            };
            ClientError::check(format!("fetch from broker {leader}"), resp.error_code, None)?;
            for t in resp.responses {
                for p in t.partitions {
                    let partition = p.partition_index;
                    let Some(position) = self.positions.get(&partition).copied() else {
                        continue;
                    };
                    match ErrorCode::from_code(p.error_code) {
                        Some(ErrorCode::None) => {}
                        Some(ErrorCode::OffsetOutOfRange) => {
                            let to = if self.config.reset_to_earliest {
                                EARLIEST
                            } else {
                                LATEST
                            };
                            let reset = self.offsets_for(&[partition], to).await?;
                            if let Some(o) = reset.get(&partition) {
                                self.positions.insert(partition, *o);
                            }
                            continue;
                        }
                        Some(e) if e.is_retriable() => {
                            stale = true;
                            continue;
                        }
                        _ => ClientError::check(
                            format!("{}-{partition}", self.topic),
                            p.error_code,
                            None,
                        )?,
                    }
                    let Some(Records::Bytes(bytes)) = p.records else {
                        continue;
                    };
                    let mut next = position;
                    for batch in RecordBatch::batches(bytes) {
                        // A batch cut off by the size limit ends the partition's data.
                        let Ok(batch) = batch else { break };
                        if batch.is_control() {
                            next = next.max(batch.next_offset());
                            continue;
                        }
                        let records = crate::records::records(&batch).map_err(|e| {
                            ClientError::Protocol(format!("{}-{partition}: {e}", self.topic))
                        })?;
                        for r in records {
                            let offset = r.offset(&batch);
                            if offset < position {
                                continue;
                            }
                            out.push(ConsumedRecord {
                                partition,
                                offset,
                                timestamp: r.timestamp(&batch),
                                timestamp_type: batch.timestamp_type(),
                                key: r.key,
                                value: r.value,
                                headers: r.headers.into_iter().map(|h| (h.key, h.value)).collect(),
                            });
                        }
                        next = next.max(batch.next_offset());
                    }
                    self.positions.insert(partition, next);
                }
            }
        }
        if stale {
            tokio::time::sleep(self.client.config().retry_backoff).await;
            self.refresh().await?;
        }
        Ok(out)
    }
}
