//! One partition's log on disk, in Apache Kafka's own format byte for byte.
//!
//! - [`UnifiedLog`]: a partition's log — append as leader or follower, read as file slices,
//!   roll, retention, truncation, flush, recovery.
//! - [`log_loader`]: opening a log — cleaning up after a crash, recovering segments from the
//!   recovery point on, rebuilding the producer state (Kafka's `LogLoader`).
//! - [`LogSegment`]: one `<base offset>.log` with its [`OffsetIndex`] and [`TimeIndex`].
//! - [`LeaderEpochFileCache`]: the `leader-epoch-checkpoint` file.
//! - [`OffsetCheckpointFile`]: the recovery-point, log-start-offset and replication-offset
//!   checkpoints at the top of a log directory.
//! - [`ProducerStateManager`]: idempotent producers' sequences per partition, and their
//!   `<offset>.snapshot` files.
//! - [`TransactionIndex`]: a segment's `.txnindex`, the aborted transactions read_committed
//!   consumers skip.
//! - [`LogCleaner`]: log compaction of logs whose `cleanup.policy` includes `compact`.
//! - [`LogManager`]: a log directory: opening every partition in it (lazily), the clean-shutdown
//!   marker, checkpoints. [`SharedLog`] ([`shared_log`]) is a log as the node shares it.
//! - [`FileBudget`]: the node-wide bound on open segment files and index maps.
//! - [`fs`]: the file layer, with a simulated disk for power-loss and fault-injection tests.
//!
//! This crate is synchronous (std files, memmap2, no tokio) and knows nothing of networks or
//! Kafka error codes; the broker decides which calls go to blocking threads and maps
//! [`StorageError`] to error codes.

pub mod checkpoint;
pub mod compression;
pub mod config;
pub mod error;
pub mod file_budget;
pub mod fs;
pub mod index;
pub mod leader_epoch;
pub mod log_cleaner;
pub mod log_loader;
pub mod log_manager;
pub mod log_segment;
pub mod log_validator;
pub mod producer_state;
mod segment_batches;
pub mod shared_log;
pub mod transaction_index;
pub mod unified_log;

pub use checkpoint::{OffsetCheckpointFile, TopicPartition};
pub use config::{CleanupPolicy, LogConfig};
pub use error::{RecordError, Result, StorageError};
pub use file_budget::FileBudget;
pub use fs::{DiskFs, FileSystem, LogFile, SimFs};
pub use index::{OffsetIndex, OffsetPosition, TimeIndex, TimestampOffset};
pub use leader_epoch::{EpochEntry, LeaderEpochFileCache};
pub use log_cleaner::{CleanStats, LogCleaner};
pub use log_manager::LogManager;
pub use log_segment::{FileSlice, LogSegment};
pub use log_validator::{LogValidator, ValidatedRecords};
pub use producer_state::{ProducerStateEntry, ProducerStateManager, VerificationGuard};
pub use shared_log::SharedLog;
pub use transaction_index::{AbortedTxn, TransactionIndex};
pub use unified_log::read::{FetchDataInfo, TimestampAndOffset};
pub use unified_log::{LogAppendInfo, LogCheckpoints, UnifiedLog};
