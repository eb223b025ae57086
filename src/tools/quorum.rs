//! `rafka quorum describe --status | --replication`: the metadata quorum as
//! `kafka-metadata-quorum` shows it, from DescribeQuorum on `__cluster_metadata-0`.

use super::output::{print_json_or, Table};
use super::shared::{now_ms, Connection, ToolResult};
use anyhow::Context;
use clap::{ArgGroup, Args, Subcommand};
use rafka_client::{Client, ClientError};
use rafka_protocol::messages::describe_quorum_request::{
    DescribeQuorumRequest, PartitionData, TopicData,
};
use serde_json::json;

#[derive(Debug, Args)]
pub struct QuorumArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub action: QuorumAction,
}

#[derive(Debug, Subcommand)]
pub enum QuorumAction {
    /// The leader, epoch, high watermark and lag (--status), or each replica's log end and
    /// lag (--replication).
    #[command(group(ArgGroup::new("what").required(true).args(["status", "replication"])))]
    Describe {
        #[arg(long)]
        status: bool,
        #[arg(long)]
        replication: bool,
    },
}

pub async fn run(args: QuorumArgs) -> ToolResult {
    let format = args.conn.output;
    let mut client = args.conn.connect().await?;
    let QuorumAction::Describe { status, .. } = args.action;
    let request = DescribeQuorumRequest {
        topics: vec![TopicData {
            topic_name: "__cluster_metadata".into(),
            partitions: vec![PartitionData {
                partition_index: 0,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let resp = client
        .retry("DescribeQuorum", async |c: &mut Client| {
            let r = c.any().await?.send(request.clone()).await?;
            ClientError::check("metadata quorum", r.error_code, r.error_message.as_deref())?;
            Ok(r)
        })
        .await?;
    let p = resp
        .topics
        .into_iter()
        .flat_map(|t| t.partitions)
        .next()
        .context("DescribeQuorum answered no partition")?;
    ClientError::check(
        "__cluster_metadata-0",
        p.error_code,
        p.error_message.as_deref(),
    )?;
    let leader = p
        .current_voters
        .iter()
        .find(|v| v.replica_id == p.leader_id);
    let leader_leo = leader.map_or(p.high_watermark, |l| l.log_end_offset);
    let leader_fetch = leader.map_or(now_ms(), |l| {
        l.last_fetch_timestamp.max(l.last_caught_up_timestamp)
    });
    if status {
        let followers = p
            .current_voters
            .iter()
            .filter(|v| v.replica_id != p.leader_id);
        let max_lag = followers
            .clone()
            .map(|v| (leader_leo - v.log_end_offset).max(0))
            .max()
            .unwrap_or(0);
        let max_lag_ms = followers
            .filter(|v| v.last_caught_up_timestamp >= 0)
            .map(|v| (now_ms() - v.last_caught_up_timestamp).max(0))
            .max()
            .unwrap_or(0);
        let voters: Vec<i32> = p.current_voters.iter().map(|v| v.replica_id).collect();
        let observers: Vec<i32> = p.observers.iter().map(|v| v.replica_id).collect();
        let j = json!({
            "cluster_id": client.cluster_id,
            "leader_id": p.leader_id,
            "leader_epoch": p.leader_epoch,
            "high_watermark": p.high_watermark,
            "max_follower_lag": max_lag,
            "max_follower_lag_time_ms": max_lag_ms,
            "current_voters": voters,
            "current_observers": observers,
        });
        print_json_or(format, j, || {
            format!(
                "ClusterId:              {}\nLeaderId:               {}\nLeaderEpoch:            {}\n\
                 HighWatermark:          {}\nMaxFollowerLag:         {max_lag}\n\
                 MaxFollowerLagTimeMs:   {max_lag_ms}\nCurrentVoters:          {voters:?}\n\
                 CurrentObservers:       {observers:?}\n",
                client.cluster_id.as_deref().unwrap_or("-"),
                p.leader_id,
                p.leader_epoch,
                p.high_watermark
            )
        });
    } else {
        let _ = leader_fetch;
        let mut table = Table::new(&[
            "NODE-ID",
            "LOG-END-OFFSET",
            "LAG",
            "LAST-FETCH-TIMESTAMP",
            "LAST-CAUGHT-UP-TIMESTAMP",
            "STATUS",
        ]);
        let rows = p
            .current_voters
            .iter()
            .map(|v| {
                (
                    v,
                    if v.replica_id == p.leader_id {
                        "Leader"
                    } else {
                        "Follower"
                    },
                )
            })
            .chain(p.observers.iter().map(|v| (v, "Observer")));
        for (v, role) in rows {
            table.push(vec![
                json!(v.replica_id),
                json!(v.log_end_offset),
                json!((leader_leo - v.log_end_offset).max(0)),
                json!(v.last_fetch_timestamp),
                json!(v.last_caught_up_timestamp),
                json!(role),
            ]);
        }
        table.print(format);
    }
    Ok(())
}
