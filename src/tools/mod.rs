//! `rafka <tool> …`: the administration and test tools, as subcommands of the broker's binary
//! (the broker itself stays `rafka [server.properties]`). Each tool is one file (or folder);
//! [`shared`] holds what they share (the connection options, the result type); this one holds
//! the command line (clap) and the exit codes:
//!
//! - 0: done;
//! - 1: the operation failed (a broker unreachable, a Kafka error, a refused reset, a corrupt
//!   file found by `dump-log`);
//! - 2: the command line is wrong (clap prints usage).
//!
//! The tools talk to brokers through `rafka_client`, so they work against any Kafka broker.

pub mod agent;
pub mod configs;
pub mod console;
pub mod dump_log;
pub mod groups;
pub mod legacy_records;
pub mod output;
pub mod perf;
pub mod quorum;
pub mod shared;
pub mod tasks;
pub mod topics;
pub mod transactions;
pub mod transfer;

use clap::{CommandFactory, Parser, Subcommand};
use shared::ToolResult;

/// The subcommands; `main` hands the arguments here when the first one names a tool.
pub const TOOLS: &[&str] = &[
    "topics",
    "configs",
    "groups",
    "transactions",
    "quorum",
    "produce",
    "consume",
    "perf-test",
    "dump-log",
    "agent",
    "transfer",
    "tasks",
    "completion",
];

#[derive(Debug, Parser)]
#[command(
    name = "rafka",
    version,
    about = "rafka's tools (the broker itself: rafka [server.properties])",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List, describe, create, alter and delete topics (as kafka-topics).
    Topics(topics::TopicsArgs),
    /// Describe and alter topic and broker configurations (as kafka-configs).
    Configs(configs::ConfigsArgs),
    /// Consumer groups: list, describe with lag, reset offsets, delete (as kafka-consumer-groups).
    Groups(groups::GroupsArgs),
    /// Transactions: list with filters, describe (as kafka-transactions).
    Transactions(transactions::TransactionsArgs),
    /// The controller quorum's status and replication (as kafka-metadata-quorum).
    Quorum(quorum::QuorumArgs),
    /// Console producer: one record per line of standard input.
    Produce(console::ProduceArgs),
    /// Console consumer: records to standard output.
    Consume(console::ConsumeArgs),
    /// Load generators with Kafka's perf-test semantics and summary lines.
    #[command(name = "perf-test")]
    PerfTest(perf::PerfArgs),
    /// Print log segments, indexes, time indexes and producer snapshots (as kafka-dump-log).
    #[command(name = "dump-log")]
    DumpLog(dump_log::DumpLogArgs),
    /// The log-collection agent: tails the files of the collection tasks, produces their lines.
    Agent(agent::AgentArgs),
    /// The transfer: a consumer group that writes the tasks' topics to date-partitioned JSON lines.
    Transfer(transfer::TransferArgs),
    /// Edit and list the collection tasks (the compacted tasks topic).
    Tasks(tasks::TasksArgs),
    /// Print a shell completion script (e.g. `rafka completion bash > /etc/bash_completion.d/rafka`).
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Runs the tool the arguments name (the first is the program name) and returns the exit code.
pub fn main(args: Vec<std::ffi::OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    if let Command::Completion { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "rafka", &mut std::io::stdout());
        return 0;
    }
    if let Command::DumpLog(a) = cli.command {
        return exit_code(dump_log::run(a));
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rafka: cannot start the runtime: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Topics(a) => topics::run(a).await,
            Command::Configs(a) => configs::run(a).await,
            Command::Groups(a) => groups::run(a).await,
            Command::Transactions(a) => transactions::run(a).await,
            Command::Quorum(a) => quorum::run(a).await,
            Command::Produce(a) => console::produce(a).await,
            Command::Consume(a) => console::consume(a).await,
            Command::PerfTest(a) => perf::run(a).await,
            Command::Agent(a) => agent::run(a).await,
            Command::Transfer(a) => transfer::run(a).await,
            Command::Tasks(a) => tasks::run(a).await,
            Command::DumpLog(_) | Command::Completion { .. } => unreachable!("handled above"),
        }
    });
    exit_code(result)
}

fn exit_code(r: ToolResult) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("rafka: {e:#}");
            1
        }
    }
}
