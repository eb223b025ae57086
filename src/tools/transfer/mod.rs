//! `rafka transfer`: a member of a consumer group that writes the records of the collection
//! tasks' topics to a [`sink::Sink`] (date-partitioned JSON lines, [`sink::JsonLinesSink`]).
//!
//! The topics come from the tasks topic, live: when the set of topics the tasks name changes,
//! the member commits what it wrote, leaves and joins again subscribed to the new set.
//!
//! Guarantee: every record is written to the output once. Offsets are committed only after the
//! sink has made the records before them durable (fsync); before writing a partition, the
//! member cuts that partition's output back to its committed offset, removing what a crash (or
//! a commit refused in a rebalance) left written but not committed. One output directory per
//! transfer process: the group's members must not share one.

pub mod sink;

use super::shared::{Connection, ToolResult};
use super::tasks::{self, DEFAULT_TASKS_TOPIC};
use clap::Args;
use rafka_client::consumer::{Consumer, ConsumerConfig};
use rafka_client::group_member::GroupMember;
use rafka_client::offsets::EARLIEST;
use rafka_client::ClientError;
use rafka_protocol::ErrorCode;
use sink::{JsonLinesSink, Sink};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct TransferArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// The consumer group.
    #[arg(long, short = 'g')]
    pub group: String,
    /// The compacted topic that holds the collection tasks.
    #[arg(long, default_value = DEFAULT_TASKS_TOPIC)]
    pub tasks_topic: String,
    /// Where the JSON-lines files go.
    #[arg(long)]
    pub output_dir: PathBuf,
    /// How often what was written is made durable and its offsets committed (ms).
    #[arg(long, default_value_t = 1000)]
    pub commit_interval_ms: u64,
    /// session.timeout.ms: how long the group waits for a member that stopped (crashed) before
    /// giving its partitions to others.
    #[arg(long, default_value_t = 10_000)]
    pub session_timeout_ms: i32,
}

/// Why the consuming loop stopped.
enum Stop {
    /// The tasks name other topics, or the group rebalances: join again.
    Rejoin,
    /// SIGTERM or Ctrl-C.
    Shutdown,
}

pub async fn run(args: TransferArgs) -> ToolResult {
    super::shared::init_logging();
    let mut sink = JsonLinesSink::new(&args.output_dir)
        .map_err(|e| anyhow::anyhow!("output directory {}: {e}", args.output_dir.display()))?;
    let mut tasks_rx = tasks::watch_tasks(&args.conn, &args.tasks_topic).await?;
    let mut client = args.conn.connect().await?;
    let mut consumers: BTreeMap<String, Consumer> = BTreeMap::new();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let topics: BTreeSet<String> = tasks_rx
            .borrow_and_update()
            .values()
            .map(|t| t.topic.clone())
            .collect();
        if topics.is_empty() {
            tokio::select! {
                Ok(()) = tasks_rx.changed() => continue,
                _ = term.recv() => return Ok(()),
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
        // Only topics that exist can be subscribed to; the others are looked for again.
        let mut existing = Vec::new();
        for t in &topics {
            if !consumers.contains_key(t) {
                let consumer = async {
                    let c = args.conn.connect().await?;
                    Consumer::new(
                        c,
                        t,
                        ConsumerConfig {
                            max_wait_ms: 100,
                            ..Default::default()
                        },
                    )
                    .await
                }
                .await;
                match consumer {
                    Ok(c) => {
                        consumers.insert(t.clone(), c);
                    }
                    Err(e) => {
                        tracing::warn!(topic = %t, error = %e, "cannot consume the topic yet");
                        continue;
                    }
                }
            }
            existing.push(t.clone());
        }
        consumers.retain(|t, _| topics.contains(t));
        if existing.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                Ok(()) = tasks_rx.changed() => continue,
                _ = term.recv() => return Ok(()),
            }
        }
        let mut member = GroupMember::new(&args.group, existing.clone())
            .with_session_timeout(args.session_timeout_ms);
        let joined = join(&args, &mut client, &mut member, &mut consumers, &mut sink).await;
        let stop = match joined {
            Ok(()) => {
                consume(
                    &args,
                    &mut client,
                    &mut member,
                    &mut consumers,
                    &mut sink,
                    &mut tasks_rx,
                    &topics,
                    &mut term,
                )
                .await
            }
            Err(e) => Err(e),
        };
        let stop = match stop {
            Ok(s) => s,
            Err(e)
                if e.downcast_ref::<ClientError>()
                    .is_some_and(super::shared::transient) =>
            {
                tracing::warn!(error = %e, "the cluster is away; joining again");
                tokio::time::sleep(Duration::from_secs(1)).await;
                Stop::Rejoin
            }
            Err(e) => return Err(e),
        };
        member.leave(&mut client).await;
        if let Stop::Shutdown = stop {
            tracing::info!("transfer stopped");
            return Ok(());
        }
    }
}

/// Joins the group, then positions each assigned partition at its committed offset (or the
/// log start) and cuts the sink's output for it back to that offset.
async fn join(
    args: &TransferArgs,
    client: &mut rafka_client::Client,
    member: &mut GroupMember,
    consumers: &mut BTreeMap<String, Consumer>,
    sink: &mut JsonLinesSink,
) -> anyhow::Result<()> {
    let assignment = member.join(client).await?;
    tracing::info!(group = %args.group, generation = member.generation, ?assignment, "joined");
    let committed = client.committed_offsets(&args.group).await?;
    for (topic, consumer) in consumers.iter_mut() {
        let parts = assignment.get(topic).cloned().unwrap_or_default();
        let missing: Vec<i32> = parts
            .iter()
            .copied()
            .filter(|p| !committed.contains_key(&(topic.clone(), *p)))
            .collect();
        let starts = if missing.is_empty() {
            BTreeMap::new()
        } else {
            consumer.offsets_for(&missing, EARLIEST).await?
        };
        let mut positions = BTreeMap::new();
        for p in parts {
            let o = committed
                .get(&(topic.clone(), p))
                .or_else(|| starts.get(&p))
                .copied()
                .unwrap_or(0);
            sink.reconcile(topic, p, o)?;
            positions.insert(p, o);
        }
        consumer.assign(positions);
    }
    Ok(())
}

/// Consumes the assignment until the tasks' topics change, the group rebalances or a signal.
#[allow(clippy::too_many_arguments)]
async fn consume(
    args: &TransferArgs,
    client: &mut rafka_client::Client,
    member: &mut GroupMember,
    consumers: &mut BTreeMap<String, Consumer>,
    sink: &mut JsonLinesSink,
    tasks_rx: &mut tokio::sync::watch::Receiver<tasks::Tasks>,
    topics: &BTreeSet<String>,
    term: &mut tokio::signal::unix::Signal,
) -> anyhow::Result<Stop> {
    let interval = Duration::from_millis(args.commit_interval_ms);
    let mut last_commit = Instant::now();
    // The offsets written since the last commit, by (topic, partition).
    let mut written: BTreeMap<(String, i32), i64> = BTreeMap::new();
    loop {
        let mut stop = None;
        if tasks_rx.has_changed().unwrap_or(false) {
            let now: BTreeSet<String> = tasks_rx
                .borrow()
                .values()
                .map(|t| t.topic.clone())
                .collect();
            if &now != topics {
                stop = Some(Stop::Rejoin);
            } else {
                let _ = tasks_rx.borrow_and_update();
            }
        }
        for (topic, consumer) in consumers.iter_mut() {
            if consumer.positions().is_empty() {
                continue;
            }
            let records = match consumer.poll().await {
                Ok(r) => r,
                Err(e) if super::shared::transient(&e) => {
                    tracing::warn!(%topic, error = %e, "fetch failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            for r in &records {
                sink.write(topic, r)?;
                written.insert((topic.clone(), r.partition), r.offset + 1);
            }
        }
        if stop.is_none() {
            match member.heartbeat(client).await {
                Ok(true) => stop = Some(Stop::Rejoin),
                Ok(false) => {}
                Err(e) if super::shared::transient(&e) => {
                    tracing::warn!(error = %e, "heartbeat failed; retrying")
                }
                Err(e) => return Err(e.into()),
            }
        }
        let signal = tokio::select! {
            biased;
            _ = term.recv() => true,
            _ = tokio::signal::ctrl_c() => true,
            _ = std::future::ready(()) => false,
        };
        if signal {
            stop = Some(Stop::Shutdown);
        }
        if stop.is_some() || last_commit.elapsed() >= interval {
            if !written.is_empty() {
                sink.flush()?;
                match member.commit(client, &written).await {
                    Ok(()) => written.clear(),
                    Err(e) if rebalancing(&e) => {
                        // Not committed: the output after the committed offsets is cut back
                        // when the partitions are assigned again.
                        tracing::info!(error = %e, "commit refused by a rebalance; rejoining");
                        return Ok(Stop::Rejoin);
                    }
                    Err(e) if super::shared::transient(&e) && stop.is_none() => {
                        tracing::warn!(error = %e, "commit failed; retrying");
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            last_commit = Instant::now();
        }
        if let Some(s) = stop {
            return Ok(s);
        }
    }
}

fn rebalancing(e: &ClientError) -> bool {
    matches!(
        e.code(),
        Some(
            ErrorCode::RebalanceInProgress
                | ErrorCode::IllegalGeneration
                | ErrorCode::UnknownMemberId
                | ErrorCode::FencedInstanceId
        )
    )
}
