//! The Raft state machine: committed metadata commands folded into the [`MetadataImage`].
//!
//! Every node — voter or learner, leader or follower, fresh or restarted — builds its image the
//! same way: by replaying committed records in log order (the one path Kafka's image loader
//! has). Each applied batch publishes the new image on a `watch` channel; a broker keeps the
//! image it last acted on and asks the new one what changed for it
//! ([`MetadataImage::local_changes`](crate::image)).
//!
//! Snapshots are the records that rebuild the image (`MetadataImage::to_records`), encoded as one
//! [`MetadataCommand`]: a snapshot is built from a clone of the image, so appends and applies go
//! on meanwhile. The latest snapshot is kept in `<dir>/snapshot` (written atomically) so that a
//! restarted node starts from it and openraft can purge the log behind it and send it to a
//! lagging node.
//!
//! Thread-safety: shared state behind a std `Mutex`, never held across `.await`.

use crate::image::MetadataImage;
use crate::raft_types::{
    CommandResult, Entry, LogId, MetadataCommand, SnapshotMeta, StorageError, StoredMembership,
    TypeConfig,
};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder};
use rafka_storage::FileSystem;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

const SNAPSHOT_FILE: &str = "snapshot";

#[derive(Debug, Clone)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

#[derive(Debug)]
struct Shared {
    image: Arc<MetadataImage>,
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    snapshot: Option<StoredSnapshot>,
    snapshot_seq: u64,
}

/// The state machine; cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct StateMachine {
    shared: Arc<Mutex<Shared>>,
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    images: watch::Sender<Arc<MetadataImage>>,
}

fn io_err(subject: ErrorSubject<u64>, verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    openraft::StorageIOError::new(subject, verb, openraft::AnyError::error(e.to_string())).into()
}

impl StateMachine {
    /// Opens the state machine in `dir`, starting from the snapshot found there, if any.
    pub fn open(fs: Arc<dyn FileSystem>, dir: &Path) -> Result<StateMachine, StorageError> {
        let read_err = |e: String| io_err(ErrorSubject::StateMachine, ErrorVerb::Read, e);
        fs.create_dir_all(dir)
            .map_err(|e| read_err(e.to_string()))?;
        let path = dir.join(SNAPSHOT_FILE);
        let mut shared = Shared {
            image: Arc::new(MetadataImage::new()),
            last_applied: None,
            last_membership: StoredMembership::default(),
            snapshot: None,
            snapshot_seq: 0,
        };
        if fs.exists(&path) {
            let bytes = fs.read(&path).map_err(|e| read_err(e.to_string()))?;
            let (meta, data) = decode_snapshot_file(&bytes).map_err(read_err)?;
            let image = image_from_snapshot(&data, meta.last_log_id).map_err(read_err)?;
            shared.image = Arc::new(image);
            shared.last_applied = meta.last_log_id;
            shared.last_membership = meta.last_membership.clone();
            shared.snapshot = Some(StoredSnapshot { meta, data });
        }
        let (images, _) = watch::channel(shared.image.clone());
        Ok(StateMachine {
            shared: Arc::new(Mutex::new(shared)),
            fs,
            dir: dir.to_path_buf(),
            images,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.lock().image.clone()
    }

    /// Every image as it is published (the receiver sees the latest; a broker diffs images).
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.images.subscribe()
    }

    pub fn last_applied(&self) -> Option<LogId> {
        self.lock().last_applied
    }

    fn persist_snapshot(&self, snap: &StoredSnapshot) -> Result<(), StorageError> {
        let path = self.dir.join(SNAPSHOT_FILE);
        let bytes = encode_snapshot_file(&snap.meta, &snap.data);
        self.fs.write_atomic(&path, &bytes).map_err(|e| {
            io_err(
                ErrorSubject::Snapshot(Some(snap.meta.signature())),
                ErrorVerb::Write,
                e,
            )
        })
    }
}

/// The snapshot file: the meta as a schema message (version 0), then the data.
fn encode_snapshot_file(meta: &SnapshotMeta, data: &[u8]) -> Vec<u8> {
    use crate::convert::{LogIdWire, MembershipWire};
    use rafka_protocol::messages::raft_install_snapshot_request as isr;
    let wire = isr::RaftInstallSnapshotRequest {
        last_log_id: isr::RaftLogId::from_log_id(meta.last_log_id.as_ref()),
        last_membership_log_id: isr::RaftLogId::from_log_id(meta.last_membership.log_id().as_ref()),
        last_membership: isr::RaftMembership::from_membership(meta.last_membership.membership()),
        snapshot_id: meta.snapshot_id.clone(),
        data: bytes::Bytes::copy_from_slice(data),
        done: true,
        ..Default::default()
    };
    rafka_protocol::encode_to_bytes(&wire, 0)
        .map(|b| b.to_vec())
        .unwrap_or_default()
}

fn decode_snapshot_file(bytes: &[u8]) -> Result<(SnapshotMeta, Vec<u8>), String> {
    use crate::convert::{LogIdWire, MembershipWire};
    use rafka_protocol::messages::RaftInstallSnapshotRequest;
    let b = bytes::Bytes::copy_from_slice(bytes);
    let wire: RaftInstallSnapshotRequest =
        rafka_protocol::decode_bytes(&b, 0).map_err(|e| format!("snapshot file: {e}"))?;
    let meta = SnapshotMeta {
        last_log_id: wire.last_log_id.to_log_id().map_err(|e| e.to_string())?,
        last_membership: StoredMembership::new(
            wire.last_membership_log_id
                .to_log_id()
                .map_err(|e| e.to_string())?,
            wire.last_membership
                .to_membership()
                .map_err(|e| e.to_string())?,
        ),
        snapshot_id: wire.snapshot_id,
    };
    Ok((meta, wire.data.to_vec()))
}

fn image_from_snapshot(data: &[u8], last: Option<LogId>) -> Result<MetadataImage, String> {
    let cmd = MetadataCommand::from_bytes(&bytes::Bytes::copy_from_slice(data))?;
    let offset = last.map_or(-1, |l| l.index as i64);
    MetadataImage::load(&cmd.records, offset).map_err(|e| format!("snapshot: {e}"))
}

/// Builds a snapshot from a clone of the image taken when the builder was made.
#[derive(Debug)]
pub struct SnapshotBuilder {
    sm: StateMachine,
    image: Arc<MetadataImage>,
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    seq: u64,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let records = self.image.to_records();
        let data = MetadataCommand { records }
            .to_bytes()
            .map_err(|e| io_err(ErrorSubject::StateMachine, ErrorVerb::Read, e))?
            .to_vec();
        let snapshot_id = match self.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, self.seq),
            None => format!("none-{}", self.seq),
        };
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.last_membership.clone(),
            snapshot_id,
        };
        let snap = StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        };
        self.sm.persist_snapshot(&snap)?;
        self.sm.lock().snapshot = Some(snap);
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let s = self.lock();
        Ok((s.last_applied, s.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResult>, StorageError>
    where
        I: IntoIterator<Item = Entry> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let mut results = Vec::new();
        let published = {
            let mut s = self.lock();
            let mut image = (*s.image).clone();
            let mut changed = false;
            for entry in entries {
                s.last_applied = Some(entry.log_id);
                let offset = entry.log_id.index as i64;
                let applied = match entry.payload {
                    // A command the leader validated can fail to apply only through a bug in the
                    // image code, and then every node fails the same way: stop rather than diverge.
                    EntryPayload::Normal(cmd) => {
                        changed = true;
                        image.apply_batch_at(offset, &cmd.records).map(|_| ())
                    }
                    EntryPayload::Membership(m) => {
                        s.last_membership = StoredMembership::new(Some(entry.log_id), m);
                        image.advance_offset(offset)
                    }
                    EntryPayload::Blank => image.advance_offset(offset),
                };
                applied
                    .map_err(|e| io_err(ErrorSubject::Apply(entry.log_id), ErrorVerb::Write, e))?;
                results.push(CommandResult {
                    index: entry.log_id.index,
                });
            }
            let image = Arc::new(image);
            s.image = image.clone();
            changed.then_some(image)
        };
        if let Some(image) = published {
            self.images.send_replace(image);
        }
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        let mut s = self.lock();
        s.snapshot_seq += 1;
        SnapshotBuilder {
            sm: self.clone(),
            image: s.image.clone(),
            last_applied: s.last_applied,
            last_membership: s.last_membership.clone(),
            seq: s.snapshot_seq,
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let image = image_from_snapshot(&data, meta.last_log_id).map_err(|e| {
            io_err(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Read,
                e,
            )
        })?;
        let snap = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        self.persist_snapshot(&snap)?;
        let image = Arc::new(image);
        {
            let mut s = self.lock();
            s.image = image.clone();
            s.last_applied = meta.last_log_id;
            s.last_membership = meta.last_membership.clone();
            s.snapshot = Some(snap);
        }
        self.images.send_replace(image);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(self.lock().snapshot.clone().map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}
