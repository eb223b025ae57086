//! Offsets through a [`Client`]: a partition's offsets by time (ListOffsets to each leader),
//! and a group's committed offsets (OffsetFetch and OffsetCommit to its coordinator).

use crate::client::Client;
use crate::error::ClientError;
use rafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use rafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use rafka_protocol::messages::offset_fetch_request::{OffsetFetchRequest, OffsetFetchRequestGroup};
use std::collections::BTreeMap;

/// (topic, partition).
pub type Tp = (String, i32);

/// ListOffsets' special timestamps.
pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;

impl Client {
    /// For each partition, the first offset whose record timestamp is at least `timestamp`
    /// ([`LATEST`]: the high watermark, [`EARLIEST`]: the log start); -1 when no record is that
    /// late. Asks each partition's leader, retrying while leadership moves.
    pub async fn list_offsets(
        &mut self,
        partitions: &[Tp],
        timestamp: i64,
    ) -> Result<BTreeMap<Tp, i64>, ClientError> {
        let topics: Vec<String> = {
            let mut t: Vec<String> = partitions.iter().map(|(t, _)| t.clone()).collect();
            t.sort();
            t.dedup();
            t
        };
        self.retry("ListOffsets", async |c: &mut Client| {
            let leaders = c.leaders(&topics).await?;
            let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
            for tp in partitions {
                let leader = *leaders.get(tp).ok_or_else(|| ClientError::Kafka {
                    subject: format!("{}-{}", tp.0, tp.1),
                    code: rafka_protocol::ErrorCode::UnknownTopicOrPartition,
                    message: None,
                })?;
                if leader < 0 {
                    return Err(ClientError::Kafka {
                        subject: format!("{}-{}", tp.0, tp.1),
                        code: rafka_protocol::ErrorCode::LeaderNotAvailable,
                        message: None,
                    });
                }
                by_leader
                    .entry(leader)
                    .or_default()
                    .entry(tp.0.clone())
                    .or_default()
                    .push(tp.1);
            }
            let mut out = BTreeMap::new();
            for (leader, topics) in by_leader {
                let request = ListOffsetsRequest {
                    replica_id: -1,
                    isolation_level: 0,
                    topics: topics
                        .into_iter()
                        .map(|(name, ps)| ListOffsetsTopic {
                            name,
                            partitions: ps
                                .into_iter()
                                .map(|p| ListOffsetsPartition {
                                    partition_index: p,
                                    timestamp,
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                };
                let resp = c.send_to(leader, request).await?;
                for t in resp.topics {
                    for p in t.partitions {
                        ClientError::check(
                            format!("{}-{}", t.name, p.partition_index),
                            p.error_code,
                            None,
                        )?;
                        out.insert((t.name.clone(), p.partition_index), p.offset);
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    /// The offsets `group` committed, by partition (all partitions it has offsets for).
    pub async fn committed_offsets(
        &mut self,
        group: &str,
    ) -> Result<BTreeMap<Tp, i64>, ClientError> {
        self.retry("OffsetFetch", async |c: &mut Client| {
            let coordinator = c.coordinator(group, 0).await?;
            let r = c.broker(coordinator).await?;
            let result = r
                .send_with(|v| OffsetFetchRequest {
                    group_id: if v < 8 {
                        group.to_owned()
                    } else {
                        String::new()
                    },
                    // Null asks for every topic (v2-7); v8 carries it per group.
                    topics: if v < 8 { None } else { Some(Vec::new()) },
                    groups: if v >= 8 {
                        vec![OffsetFetchRequestGroup {
                            group_id: group.to_owned(),
                            topics: None,
                            ..Default::default()
                        }]
                    } else {
                        Vec::new()
                    },
                    ..Default::default()
                })
                .await;
            let (version, resp) = match result {
                Ok(x) => x,
                Err(e) => {
                    c.forget(coordinator);
                    return Err(e);
                }
            };
            let mut out = BTreeMap::new();
            let subject = format!("group {group}");
            if version >= 8 {
                for g in resp.groups {
                    ClientError::check(subject.clone(), g.error_code, None)?;
                    for t in g.topics {
                        for p in t.partitions {
                            ClientError::check(subject.clone(), p.error_code, None)?;
                            if p.committed_offset >= 0 {
                                out.insert((t.name.clone(), p.partition_index), p.committed_offset);
                            }
                        }
                    }
                }
            } else {
                ClientError::check(subject.clone(), resp.error_code, None)?;
                for t in resp.topics {
                    for p in t.partitions {
                        ClientError::check(subject.clone(), p.error_code, None)?;
                        if p.committed_offset >= 0 {
                            out.insert((t.name.clone(), p.partition_index), p.committed_offset);
                        }
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    /// Commits `offsets` for `group` as `member` of `generation` (`""` and -1: a simple commit,
    /// which the coordinator accepts only while the group has no members).
    pub async fn commit_offsets(
        &mut self,
        group: &str,
        generation: i32,
        member: &str,
        offsets: &BTreeMap<Tp, i64>,
    ) -> Result<(), ClientError> {
        let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for ((t, p), o) in offsets {
            topics
                .entry(t)
                .or_default()
                .push(OffsetCommitRequestPartition {
                    partition_index: *p,
                    committed_offset: *o,
                    committed_metadata: Some(String::new()),
                    ..Default::default()
                });
        }
        let request = OffsetCommitRequest {
            group_id: group.to_owned(),
            generation_id_or_member_epoch: generation,
            member_id: member.to_owned(),
            topics: topics
                .into_iter()
                .map(|(name, partitions)| OffsetCommitRequestTopic {
                    name: name.to_owned(),
                    partitions,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        self.retry("OffsetCommit", async |c: &mut Client| {
            let coordinator = c.coordinator(group, 0).await?;
            let resp = c.send_to(coordinator, request.clone()).await?;
            for t in resp.topics {
                for p in t.partitions {
                    ClientError::check(
                        format!("group {group} {}-{}", t.name, p.partition_index),
                        p.error_code,
                        None,
                    )?;
                }
            }
            Ok(())
        })
        .await
    }
}
