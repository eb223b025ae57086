//! `rafka topics`: list, describe (partitions, leader, replicas, ISR; under-replicated and
//! unavailable filters), create, alter partitions, delete — as `kafka-topics`.

use super::output::Table;
use super::shared::{key_value, Connection, ToolResult};
use anyhow::bail;
use clap::{Args, Subcommand};
use rafka_client::{Client, ClientError};
use rafka_protocol::messages::create_partitions_request::{
    CreatePartitionsRequest, CreatePartitionsTopic,
};
use rafka_protocol::messages::create_topics_request::{
    CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use rafka_protocol::messages::delete_topics_request::{DeleteTopicState, DeleteTopicsRequest};
use rafka_protocol::ErrorCode;
use serde_json::json;

#[derive(Debug, Args)]
pub struct TopicsArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub action: TopicsAction,
}

#[derive(Debug, Subcommand)]
pub enum TopicsAction {
    /// Topic names.
    List {
        /// Leave out internal topics (__consumer_offsets, …).
        #[arg(long)]
        exclude_internal: bool,
    },
    /// Partitions with leader, replicas and in-sync replicas.
    Describe {
        /// Topics to describe (all when none).
        #[arg(long, short = 't')]
        topic: Vec<String>,
        /// Only partitions whose ISR is smaller than their replica set.
        #[arg(long)]
        under_replicated: bool,
        /// Only partitions without a live leader.
        #[arg(long)]
        unavailable: bool,
        #[arg(long)]
        exclude_internal: bool,
    },
    /// Create a topic.
    Create {
        #[arg(long, short = 't')]
        topic: String,
        /// Partition count (the broker's num.partitions when not given).
        #[arg(long)]
        partitions: Option<i32>,
        /// Replication factor (the broker's default.replication.factor when not given).
        #[arg(long)]
        replication_factor: Option<i16>,
        /// A topic configuration, key=value; may repeat.
        #[arg(long, value_parser = key_value)]
        config: Vec<(String, String)>,
        /// Succeed when the topic exists already.
        #[arg(long)]
        if_not_exists: bool,
    },
    /// Add partitions to a topic.
    Alter {
        #[arg(long, short = 't')]
        topic: String,
        /// The new partition count.
        #[arg(long)]
        partitions: i32,
    },
    /// Delete topics.
    Delete {
        #[arg(long, short = 't', required = true)]
        topic: Vec<String>,
        /// Succeed when a topic does not exist.
        #[arg(long)]
        if_exists: bool,
    },
}

pub async fn run(args: TopicsArgs) -> ToolResult {
    let format = args.conn.output;
    let mut client = args.conn.connect().await?;
    match args.action {
        TopicsAction::List { exclude_internal } => {
            let md = client.metadata(None).await?;
            let mut names: Vec<(String, bool)> = md
                .topics
                .into_iter()
                .filter(|t| !(exclude_internal && t.is_internal))
                .map(|t| (t.name.unwrap_or_default(), t.is_internal))
                .collect();
            names.sort();
            let mut table = Table::new(&["TOPIC"]);
            for (n, _) in names {
                table.push(vec![json!(n)]);
            }
            table.print(format);
        }
        TopicsAction::Describe {
            topic,
            under_replicated,
            unavailable,
            exclude_internal,
        } => {
            let md = client
                .metadata(if topic.is_empty() { None } else { Some(topic) })
                .await?;
            let live: std::collections::BTreeSet<i32> = client.brokers().keys().copied().collect();
            let mut topics = md.topics;
            topics.sort_by(|a, b| a.name.cmp(&b.name));
            let mut table = Table::new(&[
                "TOPIC",
                "PARTITION",
                "LEADER",
                "LEADER-EPOCH",
                "REPLICAS",
                "ISR",
                "OFFLINE",
            ]);
            let mut failed = Vec::new();
            for t in topics {
                let name = t.name.clone().unwrap_or_default();
                if exclude_internal && t.is_internal {
                    continue;
                }
                if let Err(e) = ClientError::check(format!("topic {name}"), t.error_code, None) {
                    failed.push(e.to_string());
                    continue;
                }
                let mut parts = t.partitions;
                parts.sort_by_key(|p| p.partition_index);
                for p in parts {
                    let is_under = p.isr_nodes.len() < p.replica_nodes.len();
                    let is_unavailable = p.leader_id < 0 || !live.contains(&p.leader_id);
                    if (under_replicated && !is_under) || (unavailable && !is_unavailable) {
                        continue;
                    }
                    table.push(vec![
                        json!(name),
                        json!(p.partition_index),
                        if p.leader_id < 0 {
                            json!(null)
                        } else {
                            json!(p.leader_id)
                        },
                        json!(p.leader_epoch),
                        json!(p.replica_nodes),
                        json!(p.isr_nodes),
                        json!(p.offline_replicas),
                    ]);
                }
            }
            table.print(format);
            if !failed.is_empty() {
                bail!("{}", failed.join("; "));
            }
        }
        TopicsAction::Create {
            topic,
            partitions,
            replication_factor,
            config,
            if_not_exists,
        } => {
            let request = CreateTopicsRequest {
                topics: vec![CreatableTopic {
                    name: topic.clone(),
                    num_partitions: partitions.unwrap_or(-1),
                    replication_factor: replication_factor.unwrap_or(-1),
                    configs: config
                        .into_iter()
                        .map(|(name, value)| CreatableTopicConfig {
                            name,
                            value: Some(value),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                timeout_ms: 30_000,
                ..Default::default()
            };
            let resp = client
                .retry("CreateTopics", async |c: &mut Client| {
                    c.any().await?.send(request.clone()).await
                })
                .await?;
            for r in resp.topics {
                match ClientError::check(
                    format!("topic {}", r.name),
                    r.error_code,
                    r.error_message.as_deref(),
                ) {
                    Ok(()) => println!("Created topic {}.", r.name),
                    Err(e) if if_not_exists && e.code() == Some(ErrorCode::TopicAlreadyExists) => {
                        println!("Topic {} exists already.", r.name)
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        TopicsAction::Alter { topic, partitions } => {
            let request = CreatePartitionsRequest {
                topics: vec![CreatePartitionsTopic {
                    name: topic.clone(),
                    count: partitions,
                    assignments: None,
                    ..Default::default()
                }],
                timeout_ms: 30_000,
                ..Default::default()
            };
            let resp = client
                .retry("CreatePartitions", async |c: &mut Client| {
                    c.any().await?.send(request.clone()).await
                })
                .await?;
            for r in resp.results {
                ClientError::check(
                    format!("topic {}", r.name),
                    r.error_code,
                    r.error_message.as_deref(),
                )?;
                println!("Topic {} now has {partitions} partitions.", r.name);
            }
        }
        TopicsAction::Delete { topic, if_exists } => {
            let resp = client
                .retry("DeleteTopics", async |c: &mut Client| {
                    let (_, r) = c
                        .any()
                        .await?
                        .send_with(|v| DeleteTopicsRequest {
                            topics: if v >= 6 {
                                topic
                                    .iter()
                                    .map(|t| DeleteTopicState {
                                        name: Some(t.clone()),
                                        ..Default::default()
                                    })
                                    .collect()
                            } else {
                                Vec::new()
                            },
                            topic_names: if v < 6 { topic.clone() } else { Vec::new() },
                            timeout_ms: 30_000,
                            ..Default::default()
                        })
                        .await?;
                    Ok(r)
                })
                .await?;
            let mut failed = Vec::new();
            for r in resp.responses {
                let name = r.name.unwrap_or_default();
                match ClientError::check(
                    format!("topic {name}"),
                    r.error_code,
                    r.error_message.as_deref(),
                ) {
                    Ok(()) => println!("Deleted topic {name}."),
                    Err(e) if if_exists && e.code() == Some(ErrorCode::UnknownTopicOrPartition) => {
                    }
                    Err(e) => failed.push(e.to_string()),
                }
            }
            if !failed.is_empty() {
                bail!("{}", failed.join("; "));
            }
        }
    }
    Ok(())
}
