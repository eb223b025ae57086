//! The log-collection tasks: their record format in the compacted tasks topic, the watch that
//! follows that topic (used by `rafka agent` and `rafka transfer`), and `rafka tasks
//! put|delete|list` to edit it.
//!
//! One record per task: key = the task id (UTF-8), value = the task as JSON
//! ([`CollectionTask`]), a null value (tombstone) = the task is removed. The topic is compacted,
//! so reading it from the beginning gives every live task; following its end is the watch: a
//! change reaches every agent within one fetch wait ([`WATCH_WAIT_MS`]).

use super::shared::{Connection, ToolResult};
use anyhow::{bail, Context};
use bytes::Bytes;
use clap::{Args, Subcommand};
use rafka_client::consumer::{Consumer, ConsumerConfig};
use rafka_client::offsets::{EARLIEST, LATEST};
use rafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use rafka_client::{Client, ClientError};
use rafka_protocol::messages::create_topics_request::{
    CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use rafka_protocol::ErrorCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;

/// The tasks topic when none is given (an ordinary, compacted topic).
pub const DEFAULT_TASKS_TOPIC: &str = "rafka-collection-tasks";

/// How long one fetch of the tasks topic waits for a change.
pub const WATCH_WAIT_MS: i32 = 200;

/// The most bytes a task's JSON may have.
const MAX_TASK_BYTES: usize = 64 * 1024;

/// One collection task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionTask {
    /// Files to collect: absolute paths whose last component may hold `*` and `?`.
    pub paths: Vec<String>,
    /// The topic the lines go to.
    pub topic: String,
    /// The business line, sent as the `business_line` header.
    #[serde(default)]
    pub business_line: String,
    /// A regular expression that matches the first line of a record; lines that do not match
    /// are appended to the record before them (stack traces). None: one record per line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiline_start: Option<String>,
    /// The hosts (`--host`) that run the task; empty: every host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

impl CollectionTask {
    /// Parses and checks a task's JSON.
    pub fn parse(json: &[u8]) -> Result<CollectionTask, String> {
        if json.len() > MAX_TASK_BYTES {
            return Err(format!("{} bytes, more than {MAX_TASK_BYTES}", json.len()));
        }
        let task: CollectionTask = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        // Kafka's legal topic names (the topic names a directory of the transfer's output).
        let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if task.topic.is_empty()
            || task.topic.len() > 249
            || task.topic == "."
            || task.topic == ".."
            || !task.topic.chars().all(legal)
        {
            return Err(format!("topic {:?} is not a legal topic name", task.topic));
        }
        for p in &task.paths {
            let path = std::path::Path::new(p);
            if !path.is_absolute() {
                return Err(format!("path {p:?} is not absolute"));
            }
            let dir = path.parent().map(|d| d.to_string_lossy().into_owned());
            if dir.is_some_and(|d| d.contains(['*', '?'])) {
                return Err(format!(
                    "path {p:?}: wildcards are allowed in the file name only"
                ));
            }
        }
        if let Some(re) = &task.multiline_start {
            regex::Regex::new(re).map_err(|e| format!("multiline_start: {e}"))?;
        }
        Ok(task)
    }

    /// Whether the agent on `host` runs this task.
    pub fn runs_on(&self, host: &str) -> bool {
        self.hosts.is_empty() || self.hosts.iter().any(|h| h == host)
    }
}

/// The live tasks, by id.
pub type Tasks = BTreeMap<String, CollectionTask>;

/// Creates the compacted tasks topic if it does not exist.
pub async fn ensure_tasks_topic(client: &mut Client, topic: &str) -> Result<(), ClientError> {
    let request = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: topic.to_owned(),
            num_partitions: 1,
            replication_factor: -1,
            configs: vec![CreatableTopicConfig {
                name: "cleanup.policy".into(),
                value: Some("compact".into()),
                ..Default::default()
            }],
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
            Ok(()) => tracing::info!(topic = %r.name, "created the tasks topic"),
            Err(e) if e.code() == Some(ErrorCode::TopicAlreadyExists) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Follows the tasks topic: reads it to its end (the returned receiver then holds every live
/// task), then keeps applying changes in the background. A broker that goes away is retried
/// (with a warning) until it comes back; the last known tasks stay in force meanwhile.
pub async fn watch_tasks(conn: &Connection, topic: &str) -> anyhow::Result<watch::Receiver<Tasks>> {
    let mut client = conn.connect().await?;
    ensure_tasks_topic(&mut client, topic).await?;
    let config = ConsumerConfig {
        max_wait_ms: WATCH_WAIT_MS,
        ..Default::default()
    };
    // A topic just created (here or by another process) takes a moment to reach every
    // broker's metadata: UNKNOWN_TOPIC_OR_PARTITION meanwhile, retried within the API timeout.
    let deadline = tokio::time::Instant::now() + client.config().api_timeout;
    let mut consumer = loop {
        match Consumer::new(client, topic, config.clone()).await {
            Ok(c) => break c,
            Err(e)
                if tokio::time::Instant::now() < deadline
                    && (e.is_retriable()
                        || e.code() == Some(ErrorCode::UnknownTopicOrPartition)) =>
            {
                tracing::debug!(%topic, error = %e, "waiting for the tasks topic");
                tokio::time::sleep(Duration::from_millis(100)).await;
                client = conn.connect().await?;
            }
            Err(e) => return Err(e.into()),
        }
    };
    let partitions = consumer.partitions();
    let start = consumer.offsets_for(&partitions, EARLIEST).await?;
    let end = consumer.offsets_for(&partitions, LATEST).await?;
    consumer.assign(start);
    let mut tasks = Tasks::new();
    // The initial read, bounded by the API timeout.
    let deadline = tokio::time::Instant::now() + consumer.client().config().api_timeout;
    while end
        .iter()
        .any(|(p, e)| consumer.positions().get(p).is_some_and(|o| o < e))
    {
        if tokio::time::Instant::now() > deadline {
            bail!("topic {topic}: could not read the tasks to their end in time");
        }
        for r in consumer.poll().await? {
            apply(&mut tasks, r.key, r.value);
        }
    }
    let (tx, rx) = watch::channel(tasks.clone());
    // Its own thread and runtime: the client's futures are not `Send` (its retry helper takes
    // an async closure), so they cannot be spawned on the shared runtime.
    std::thread::Builder::new()
        .name("tasks-watch".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                tracing::error!("cannot start the tasks watch's runtime");
                return;
            };
            rt.block_on(async move {
                loop {
                    match consumer.poll().await {
                        Ok(records) if records.is_empty() => {}
                        Ok(records) => {
                            for r in records {
                                apply(&mut tasks, r.key, r.value);
                            }
                            if tx.send(tasks.clone()).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            if tx.is_closed() {
                                return;
                            }
                            tracing::warn!(error = %e, "reading the tasks topic; retrying");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
            });
        })?;
    Ok(rx)
}

/// Applies one record of the tasks topic.
fn apply(tasks: &mut Tasks, key: Option<Bytes>, value: Option<Bytes>) {
    let Some(id) = key.and_then(|k| String::from_utf8(k.to_vec()).ok()) else {
        tracing::warn!("a task record without a UTF-8 key: ignored");
        return;
    };
    match value {
        None => {
            if tasks.remove(&id).is_some() {
                tracing::info!(task = %id, "task removed");
            }
        }
        Some(v) => match CollectionTask::parse(&v) {
            Ok(t) => {
                tracing::info!(task = %id, topic = %t.topic, "task set");
                tasks.insert(id, t);
            }
            Err(e) => {
                // The newest record of a task is the task: an invalid one stops it.
                tracing::warn!(task = %id, error = %e, "invalid task: stopped");
                tasks.remove(&id);
            }
        },
    }
}

#[derive(Debug, Args)]
pub struct TasksArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// The compacted topic that holds the tasks.
    #[arg(long, default_value = DEFAULT_TASKS_TOPIC)]
    pub tasks_topic: String,
    #[command(subcommand)]
    pub action: TasksAction,
}

#[derive(Debug, Subcommand)]
pub enum TasksAction {
    /// Adds or replaces a task: its id and its JSON
    /// ({"paths":["/var/log/app/*.log"],"topic":"logs","business_line":"shop"}).
    Put { id: String, json: String },
    /// Removes a task (a tombstone).
    Delete { id: String },
    /// Prints the live tasks as JSON.
    List,
}

/// `rafka tasks …`.
pub async fn run(args: TasksArgs) -> ToolResult {
    // A task is checked before anything is sent.
    if let TasksAction::Put { id, json } = &args.action {
        CollectionTask::parse(json.as_bytes()).map_err(|e| anyhow::anyhow!("task {id}: {e}"))?;
    }
    let mut client = args.conn.connect().await?;
    ensure_tasks_topic(&mut client, &args.tasks_topic).await?;
    let (id, value) = match args.action {
        TasksAction::List => {
            let rx = watch_tasks(&args.conn, &args.tasks_topic).await?;
            let tasks = rx.borrow().clone();
            println!("{}", serde_json::to_string_pretty(&tasks)?);
            return Ok(());
        }
        TasksAction::Put { id, json } => {
            let task = CollectionTask::parse(json.as_bytes())
                .map_err(|e| anyhow::anyhow!("task {id}: {e}"))?;
            (id, Some(Bytes::from(serde_json::to_vec(&task)?)))
        }
        TasksAction::Delete { id } => (id, None),
    };
    let removed = value.is_none();
    let config = ProducerConfig {
        idempotent: true,
        linger: Duration::ZERO,
        ..Default::default()
    };
    let mut producer = Producer::new(client, &args.tasks_topic, config)
        .await
        .with_context(|| format!("topic {}", args.tasks_topic))?;
    producer
        .send(ProducerRecord {
            key: Some(Bytes::from(id.clone().into_bytes())),
            value,
            timestamp: super::shared::now_ms(),
            ..Default::default()
        })
        .await?;
    producer.flush().await?;
    println!("task {id}: {}", if removed { "removed" } else { "set" });
    Ok(())
}
