//! The agent's durable read positions: `<state-dir>/positions.json`, one entry per file
//! identity (device + inode) with the byte offset up to which its records were acknowledged by
//! the broker, the path it was last seen at, its task, and a fingerprint of its first bytes (so
//! a new file that reuses an inode number is read from its start, not from the old offset).
//!
//! Saved after every acknowledged produce: written to `positions.json.tmp`, fsync'd, renamed over
//! the old file, and the directory fsync'd — a crash leaves the old or the new file, never a torn
//! one.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A file's identity: it survives renames, and a truncation keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of(meta: &std::fs::Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt;
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

impl std::fmt::Display for FileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.dev, self.ino)
    }
}

/// How many first bytes of a file fingerprint it.
pub const FINGERPRINT_BYTES: u64 = 64;

/// The CRC-32C of a file's first `len` bytes (None: the file is shorter). `len` may come from
/// the positions file, so it is capped at [`FINGERPRINT_BYTES`] before it sizes the buffer.
pub fn fingerprint(file: &mut File, len: u64) -> Option<u32> {
    let mut buf = vec![0u8; len.min(FINGERPRINT_BYTES) as usize];
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_exact(&mut buf).ok()?;
    Some(rafka_protocol::record_batch::crc32c(&[&buf]))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub id: FileId,
    pub path: PathBuf,
    pub task: String,
    /// Records up to here are acknowledged.
    pub offset: u64,
    /// How many first bytes the fingerprint covers (0: none yet) and their CRC-32C.
    pub fingerprint_len: u64,
    pub fingerprint: u32,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    files: Vec<Position>,
}

/// The positions, loaded from and saved to the state directory.
#[derive(Debug)]
pub struct Positions {
    dir: PathBuf,
    pub files: BTreeMap<FileId, Position>,
}

impl Positions {
    /// Loads `dir/positions.json` (none yet: empty); creates `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<Positions> {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("state directory {}: {e}", dir.display()))?;
        let path = dir.join("positions.json");
        let files = match std::fs::read(&path) {
            Ok(bytes) => {
                let state: StateFile = serde_json::from_slice(&bytes)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                state.files.into_iter().map(|p| (p.id, p)).collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => anyhow::bail!("{}: {e}", path.display()),
        };
        Ok(Positions {
            dir: dir.to_owned(),
            files,
        })
    }

    /// Writes the positions durably (see the module doc).
    pub fn save(&self) -> std::io::Result<()> {
        let state = StateFile {
            version: 1,
            files: self.files.values().cloned().collect(),
        };
        let bytes = serde_json::to_vec_pretty(&state).map_err(std::io::Error::other)?;
        let tmp = self.dir.join("positions.json.tmp");
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.dir.join("positions.json"))?;
        File::open(&self.dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut p = Positions::load(dir.path()).expect("load");
        assert!(p.files.is_empty());
        let id = FileId { dev: 1, ino: 2 };
        p.files.insert(
            id,
            Position {
                id,
                path: "/x/y.log".into(),
                task: "t".into(),
                offset: 42,
                fingerprint_len: 3,
                fingerprint: 7,
            },
        );
        p.save().expect("save");
        let q = Positions::load(dir.path()).expect("reload");
        assert_eq!(q.files, p.files);
    }

    #[test]
    fn a_corrupt_state_file_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("positions.json"), b"{not json").expect("write");
        assert!(Positions::load(dir.path()).is_err());
    }
}
