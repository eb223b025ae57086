//! [`Stats`]: what the agent did, written to `<state-dir>/stats.json`.

use serde::Serialize;

/// What the agent did, written to `<state-dir>/stats.json` after each loop that sent records.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Stats {
    /// Records acknowledged by the broker.
    pub records: u64,
    pub bytes: u64,
    /// Pieces of records longer than `--max-record-bytes`.
    pub split_pieces: u64,
    /// Files that could not be opened or read (each time it happened).
    pub unreadable: u64,
    /// Files found shorter than their read position (truncated), read again from 0.
    pub truncations: u64,
    /// Files finished after being renamed or removed.
    pub rotations: u64,
    /// Records the broker refused for good (dropped and counted).
    pub refused: u64,
    /// Files followed now.
    pub files: usize,
}
