//! `rafka transactions`: list the transactions every broker coordinates (filtered by state,
//! producer id, and how long they have been open — KIP-994) and describe one transactional id,
//! as `kafka-transactions.sh list` / `describe` do.

use super::output::{Format, Table};
use super::shared::{Connection, ToolResult};
use anyhow::bail;
use clap::{Args, Subcommand};
use rafka_client::{Client, ClientError};
use rafka_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use rafka_protocol::messages::list_transactions_request::ListTransactionsRequest;
use rafka_protocol::ErrorCode;
use serde_json::json;
use std::collections::BTreeMap;

/// FindCoordinator's key type for a transactional id.
const TRANSACTION_KEY: i8 = 1;

#[derive(Debug, Args)]
pub struct TransactionsArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub action: TransactionsAction,
}

#[derive(Debug, Subcommand)]
pub enum TransactionsAction {
    /// Every transactional id on every broker, with its producer id and state.
    List {
        /// Only these states (Empty, Ongoing, PrepareCommit, …); may repeat.
        #[arg(long)]
        state: Vec<String>,
        /// Only these producer ids; may repeat.
        #[arg(long)]
        producer_id: Vec<i64>,
        /// Only transactions open longer than this many milliseconds.
        #[arg(long)]
        duration_ms: Option<i64>,
    },
    /// One transactional id's state, epoch, timeout, start time and partitions.
    Describe {
        #[arg(long)]
        transactional_id: String,
    },
}

pub async fn run(args: TransactionsArgs) -> ToolResult {
    let format = args.conn.output;
    let mut client = args.conn.connect().await?;
    match args.action {
        TransactionsAction::List {
            state,
            producer_id,
            duration_ms,
        } => list(&mut client, state, producer_id, duration_ms, format).await,
        TransactionsAction::Describe { transactional_id } => {
            describe(&mut client, &transactional_id, format).await
        }
    }
}

async fn list(
    client: &mut Client,
    states: Vec<String>,
    producer_ids: Vec<i64>,
    duration_ms: Option<i64>,
    format: Format,
) -> ToolResult {
    let request = ListTransactionsRequest {
        state_filters: states,
        producer_id_filters: producer_ids,
        duration_filter: duration_ms.unwrap_or(-1),
        ..Default::default()
    };
    let brokers: Vec<i32> = client.brokers().keys().copied().collect();
    let mut rows = BTreeMap::new();
    for b in brokers {
        let resp = client.send_to(b, request.clone()).await?;
        ClientError::check(format!("broker {b}"), resp.error_code, None)?;
        if !resp.unknown_state_filters.is_empty() {
            bail!("unknown states: {}", resp.unknown_state_filters.join(", "));
        }
        for t in resp.transaction_states {
            rows.insert(t.transactional_id, (b, t.producer_id, t.transaction_state));
        }
    }
    let mut table = Table::new(&["TRANSACTIONAL-ID", "COORDINATOR", "PRODUCER-ID", "STATE"]);
    for (id, (b, pid, state)) in rows {
        table.push(vec![json!(id), json!(b), json!(pid), json!(state)]);
    }
    table.print(format);
    Ok(())
}

async fn describe(client: &mut Client, id: &str, format: Format) -> ToolResult {
    let request = DescribeTransactionsRequest {
        transactional_ids: vec![id.to_owned()],
        ..Default::default()
    };
    let (coordinator, state) = client
        .retry("DescribeTransactions", async |c: &mut Client| {
            let coordinator = c.coordinator(id, TRANSACTION_KEY).await?;
            let r = c.send_to(coordinator, request.clone()).await?;
            let Some(s) = r.transaction_states.into_iter().next() else {
                return Err(ClientError::Kafka {
                    subject: format!("transactional id {id}"),
                    code: ErrorCode::UnknownServerError,
                    message: Some("the coordinator answered no state".into()),
                });
            };
            ClientError::check(format!("transactional id {id}"), s.error_code, None)?;
            Ok((coordinator, s))
        })
        .await?;
    let partitions: Vec<String> = state
        .topic_partitions
        .iter()
        .flat_map(|t| {
            t.partition_indexes
                .iter()
                .map(move |p| format!("{}-{p}", t.name))
        })
        .collect();
    let mut table = Table::new(&[
        "COORDINATOR",
        "TRANSACTIONAL-ID",
        "PRODUCER-ID",
        "PRODUCER-EPOCH",
        "STATE",
        "TIMEOUT-MS",
        "START-TIME-MS",
        "PARTITIONS",
    ]);
    table.push(vec![
        json!(coordinator),
        json!(state.transactional_id),
        json!(state.producer_id),
        json!(state.producer_epoch),
        json!(state.transaction_state),
        json!(state.transaction_timeout_ms),
        json!(state.transaction_start_time_ms),
        json!(partitions.join(",")),
    ]);
    table.print(format);
    Ok(())
}
