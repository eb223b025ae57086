//! The one concrete openraft configuration rafka uses, and the command its log carries.
//!
//! Everything generic in openraft is fixed here, so the rest of the crate speaks of
//! `TypeConfig`, `Raft`, `LogId`, `Vote` and `Entry` without type parameters.

use bytes::Bytes;
use rafka_protocol::messages::MetadataRecord;
use std::io::Cursor;

/// A controller node id (Kafka's `node.id`).
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// rafka's openraft configuration: log entries carry batches of metadata records.
    pub TypeConfig:
        D = MetadataCommand,
        R = CommandResult,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type Membership = openraft::Membership<NodeId, openraft::BasicNode>;
pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, openraft::BasicNode>;
pub type StorageError = openraft::StorageError<NodeId>;

/// What one log entry proposes: metadata records applied together, atomically (Kafka's
/// controller writes a batch of records per operation).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetadataCommand {
    pub records: Vec<MetadataRecord>,
}

/// What applying a command returned: the log index it was applied at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommandResult {
    pub index: u64,
}

/// The smallest framed record in a command: its length (one byte), frame version, type and
/// version (one byte each), and a body of at least its tagged-field count (every metadata record
/// is flexible; NoOpRecord has nothing else).
const MIN_FRAMED_RECORD: usize = 5;

impl MetadataCommand {
    /// Encodes the records: an unsigned-varint count, then each framed record behind an
    /// unsigned-varint length.
    pub fn to_bytes(&self) -> Result<Bytes, rafka_protocol::EncodeError> {
        let mut out = Vec::new();
        rafka_protocol::primitives::put::unsigned_varint(&mut out, self.records.len() as u32);
        for r in &self.records {
            let b = r.encode()?;
            rafka_protocol::primitives::put::unsigned_varint(&mut out, b.len() as u32);
            out.extend_from_slice(&b);
        }
        Ok(out.into())
    }

    pub fn from_bytes(b: &Bytes) -> Result<MetadataCommand, String> {
        use rafka_protocol::primitives::{take_n, unsigned_varint};
        let bad = |what: &str| format!("metadata command: {what}");
        let (mut i, n) = unsigned_varint(b).map_err(|_| bad("bad record count"))?;
        // Each framed record takes at least MIN_FRAMED_RECORD bytes: a count the payload cannot
        // hold is refused before anything is allocated (a record is ~230 bytes in memory, so
        // sizing the vector by the payload's length alone let 7 KB claim 1.6 MB).
        if n as usize > i.len() / MIN_FRAMED_RECORD {
            return Err(bad("more records claimed than the command holds"));
        }
        let mut records = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let (rest, len) = unsigned_varint(i).map_err(|_| bad("bad record length"))?;
            let (rest, rec) = take_n(rest, len as usize).map_err(|_| bad("truncated record"))?;
            let r = MetadataRecord::decode(&rafka_protocol::primitives::slice_of(b, rec))
                .map_err(|e| bad(&e.to_string()))?;
            records.push(r);
            i = rest;
        }
        if !i.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(MetadataCommand { records })
    }
}

impl std::fmt::Display for MetadataCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} metadata record(s)", self.records.len())
    }
}

impl std::fmt::Display for CommandResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "applied at {}", self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rafka_protocol::messages::NoOpRecord;

    /// Found by the decode_raft fuzz target: a 7 KB append-entries request whose entry claimed
    /// 7,000 records made the conversion allocate 1.6 MB before the first record failed.
    #[test]
    fn a_record_count_the_payload_cannot_hold_is_refused() {
        let mut b = Vec::new();
        rafka_protocol::primitives::put::unsigned_varint(&mut b, 7000);
        b.extend_from_slice(&[5; 7000]);
        let err = MetadataCommand::from_bytes(&Bytes::from(b)).expect_err("refused");
        assert!(err.contains("more records claimed"), "{err}");
    }

    #[test]
    fn the_smallest_records_fill_a_command_exactly() {
        let cmd = MetadataCommand {
            records: vec![MetadataRecord::NoOp(NoOpRecord::default()); 3],
        };
        let b = cmd.to_bytes().expect("encodes");
        assert_eq!(b.len(), 1 + 3 * MIN_FRAMED_RECORD);
        assert_eq!(MetadataCommand::from_bytes(&b), Ok(cmd));
    }
}
