//! [`Tailer`]: the files the agent follows, by identity (device + inode).
//!
//! - Globs: each task path is a directory and a file-name pattern (`*`, `?`); the directory is
//!   listed every scan, so new files are found within one loop.
//! - Rotation by rename: a followed file whose name no longer matches (renamed away, or
//!   removed) is read to its end through the descriptor the agent holds, then dropped; the new
//!   file under the old name is a new identity, read from its start. Within one read the
//!   finished (old) files come first.
//! - Rotation by truncation: a file shorter than its position is read again from 0.
//! - After a restart, a saved position whose file no longer matches is looked for in its
//!   directory by identity (the rotated name) and finished.
//! - Files that cannot be opened or listed are counted and warned about once, and tried again
//!   every scan; an open file whose permissions change keeps being read (the descriptor is
//!   open); a removed directory ends its files as a rotation does.

use super::lines::{self, Piece};
use super::state::{fingerprint, FileId, Position, Positions, FINGERPRINT_BYTES};
use super::stats::Stats;
use crate::tools::tasks::{CollectionTask, Tasks};
use bytes::Bytes;
use regex::bytes::Regex;
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A record to produce.
#[derive(Debug, Clone)]
pub struct OutRecord {
    pub topic: String,
    pub key: Bytes,
    pub value: Bytes,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Where a file's records read this loop end.
#[derive(Debug, Clone)]
pub struct FileEnd {
    pub id: FileId,
    pub topic: String,
    pub offset: u64,
    /// The file is renamed away or removed and read to its end: drop it once acknowledged.
    pub finished: bool,
}

/// One loop's reading.
#[derive(Debug, Default)]
pub struct ReadBatch {
    pub records: Vec<OutRecord>,
    pub ends: Vec<FileEnd>,
    /// Some file has more to read now (the byte budget ran out).
    pub more: bool,
}

struct Followed {
    id: FileId,
    /// Where the file is now (its last matching name).
    path: PathBuf,
    /// The name it was found under: the record key and the `path` header.
    key: String,
    task: String,
    file: File,
    /// Acknowledged up to here.
    offset: u64,
    /// No longer matched: finish and drop.
    gone: bool,
    last_len: u64,
    grown_at: Instant,
}

pub struct Tailer {
    host: String,
    positions: Positions,
    max_record: usize,
    idle_after: Duration,
    tasks: Tasks,
    patterns: BTreeMap<String, Option<Regex>>,
    files: BTreeMap<FileId, Followed>,
    /// Paths already warned about (unreadable), so each is warned and counted once.
    warned: HashSet<PathBuf>,
    recovered: bool,
    dirty: bool,
}

impl Tailer {
    pub fn new(
        host: String,
        positions: Positions,
        max_record: usize,
        idle_after: Duration,
    ) -> Self {
        Tailer {
            host,
            positions,
            max_record,
            idle_after,
            tasks: Tasks::new(),
            patterns: BTreeMap::new(),
            files: BTreeMap::new(),
            warned: HashSet::new(),
            recovered: false,
            dirty: false,
        }
    }

    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// The tasks this host runs from now on. A file whose task is gone stops at once (its
    /// position is kept, should the task come back).
    pub fn set_tasks(&mut self, tasks: &Tasks) {
        self.tasks = tasks
            .iter()
            .filter(|(_, t)| t.runs_on(&self.host))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.patterns = self
            .tasks
            .iter()
            .map(|(id, t)| {
                let re = t
                    .multiline_start
                    .as_deref()
                    .and_then(|p| Regex::new(p).ok());
                (id.clone(), re)
            })
            .collect();
        let live = &self.tasks;
        self.files.retain(|_, f| live.contains_key(&f.task));
    }

    /// Lists the tasks' directories: new files are opened, files no longer matched are marked
    /// to be finished.
    pub fn scan(&mut self, stats: &mut Stats) {
        let mut matched: BTreeMap<FileId, (PathBuf, String)> = BTreeMap::new();
        for (task_id, task) in &self.tasks {
            for (path, id) in matches(task, &mut self.warned) {
                matched.entry(id).or_insert((path, task_id.clone()));
            }
        }
        for f in self.files.values_mut() {
            match matched.get(&f.id) {
                Some((path, _)) => {
                    f.path = path.clone();
                    f.gone = false;
                }
                None => f.gone = true,
            }
        }
        for (id, (path, task)) in matched {
            if self.files.contains_key(&id) {
                continue;
            }
            self.open(id, path, task, false, stats);
        }
        if !self.recovered {
            self.recovered = true;
            self.recover_rotated(stats);
        }
    }

    /// Saved positions whose file no longer matches: found by identity in the same directory
    /// (renamed while the agent was down) and finished; otherwise forgotten.
    fn recover_rotated(&mut self, stats: &mut Stats) {
        let missing: Vec<Position> = self
            .positions
            .files
            .values()
            .filter(|p| !self.files.contains_key(&p.id))
            .cloned()
            .collect();
        for p in missing {
            let found = p.path.parent().and_then(|dir| find_by_id(dir, p.id));
            match found {
                Some(path) if self.tasks.contains_key(&p.task) => {
                    tracing::info!(path = %path.display(), was = %p.path.display(), "finishing a file rotated while the agent was down");
                    self.open(p.id, path, p.task.clone(), true, stats);
                    if let Some(f) = self.files.get_mut(&p.id) {
                        f.key = p.path.to_string_lossy().into_owned();
                    }
                }
                Some(_) => {}
                None => {
                    self.positions.files.remove(&p.id);
                    self.dirty = true;
                }
            }
        }
    }

    fn open(&mut self, id: FileId, path: PathBuf, task: String, gone: bool, stats: &mut Stats) {
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                if self.warned.insert(path.clone()) {
                    stats.unreadable += 1;
                    tracing::warn!(path = %path.display(), error = %e, "cannot open; will retry");
                }
                return;
            }
        };
        self.warned.remove(&path);
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let saved = self.positions.files.get(&id).cloned();
        let offset = match saved {
            Some(p)
                if p.offset <= len
                    && (p.fingerprint_len == 0
                        || fingerprint(&mut file, p.fingerprint_len) == Some(p.fingerprint)) =>
            {
                p.offset
            }
            Some(p) => {
                tracing::info!(path = %path.display(), saved = p.offset, len, "a different or truncated file under a saved identity: reading from 0");
                0
            }
            None => 0,
        };
        let fp_len = len.min(FINGERPRINT_BYTES);
        let fp = fingerprint(&mut file, fp_len).unwrap_or(0);
        let key = path.to_string_lossy().into_owned();
        self.positions.files.insert(
            id,
            Position {
                id,
                path: path.clone(),
                task: task.clone(),
                offset,
                fingerprint_len: fp_len,
                fingerprint: fp,
            },
        );
        self.dirty = true;
        tracing::info!(path = %path.display(), %id, offset, %task, "following");
        self.files.insert(
            id,
            Followed {
                id,
                path,
                key,
                task,
                file,
                offset,
                gone,
                last_len: len,
                grown_at: Instant::now(),
            },
        );
    }

    /// Reads what was appended, at most `budget` bytes in all, and cuts it into records.
    pub fn read(&mut self, budget: usize, stats: &mut Stats) -> ReadBatch {
        let mut batch = ReadBatch::default();
        let mut left = budget;
        let mut drop = Vec::new();
        // Finished (rotated) files first: the old file's lines before the new file's.
        let mut order: Vec<FileId> = self.files.keys().copied().collect();
        order.sort_by_key(|id| !self.files[id].gone);
        for id in order {
            let f = self.files.get_mut(&id).expect("invariant: listed above");
            let Some(task) = self.tasks.get(&f.task) else {
                continue;
            };
            let len = match f.file.metadata() {
                Ok(m) => m.len(),
                Err(e) => {
                    tracing::warn!(path = %f.path.display(), error = %e, "cannot stat");
                    stats.unreadable += 1;
                    drop.push(id);
                    continue;
                }
            };
            if len < f.offset {
                tracing::info!(path = %f.path.display(), len, offset = f.offset, "truncated: reading from 0");
                stats.truncations += 1;
                f.offset = 0;
                if let Some(p) = self.positions.files.get_mut(&id) {
                    p.offset = 0;
                    p.fingerprint_len = 0;
                }
                self.dirty = true;
            }
            if len != f.last_len {
                f.last_len = len;
                f.grown_at = Instant::now();
            }
            if len == f.offset {
                if f.gone {
                    drop.push(id);
                }
                continue;
            }
            if left <= self.max_record {
                batch.more = true;
                break;
            }
            let want = ((len - f.offset) as usize).min(left);
            let mut buf = vec![0u8; want];
            let got = match read_full_at(&f.file, &mut buf, f.offset) {
                Ok(n) => n,
                Err(e) => {
                    if self.warned.insert(f.path.clone()) {
                        stats.unreadable += 1;
                        tracing::warn!(path = %f.path.display(), error = %e, "cannot read");
                    }
                    continue;
                }
            };
            buf.truncate(got);
            let at_end = f.gone && f.offset + got as u64 == len;
            let idle = f.grown_at.elapsed() >= self.idle_after;
            let re = self.patterns.get(&f.task).and_then(Option::as_ref);
            let cut = lines::split(&buf, re, self.max_record, idle, at_end);
            if (got as u64) < len - f.offset {
                batch.more = true;
            }
            if cut.consumed == 0 {
                continue;
            }
            left -= cut.consumed;
            let buf = Bytes::from(buf);
            for piece in &cut.pieces {
                stats.split_pieces += u64::from(piece.split);
                batch
                    .records
                    .push(record(&self.host, f, task, &buf, piece, f.offset));
            }
            batch.ends.push(FileEnd {
                id,
                topic: task.topic.clone(),
                offset: f.offset + cut.consumed as u64,
                finished: at_end && cut.consumed == got,
            });
        }
        for id in drop {
            self.finish(id, stats);
        }
        batch
    }

    /// Moves the positions of the files whose topic's records were acknowledged (or refused
    /// for good); the others are read again next loop.
    pub fn acknowledge(
        &mut self,
        batch: &ReadBatch,
        advance: &BTreeMap<String, bool>,
        stats: &mut Stats,
    ) {
        for end in &batch.ends {
            if !advance.get(&end.topic).copied().unwrap_or(false) {
                continue;
            }
            let Some(f) = self.files.get_mut(&end.id) else {
                continue;
            };
            f.offset = end.offset;
            if let Some(p) = self.positions.files.get_mut(&end.id) {
                p.offset = end.offset;
                p.path = f.path.clone();
                if p.fingerprint_len < FINGERPRINT_BYTES && end.offset >= FINGERPRINT_BYTES {
                    if let Some(fp) = fingerprint(&mut f.file, FINGERPRINT_BYTES) {
                        p.fingerprint_len = FINGERPRINT_BYTES;
                        p.fingerprint = fp;
                    }
                }
            }
            self.dirty = true;
            if end.finished {
                self.finish(end.id, stats);
            }
        }
    }

    fn finish(&mut self, id: FileId, stats: &mut Stats) {
        if let Some(f) = self.files.remove(&id) {
            tracing::info!(path = %f.path.display(), %id, offset = f.offset, "finished");
            stats.rotations += 1;
        }
        self.positions.files.remove(&id);
        self.dirty = true;
    }

    /// Saves the positions if they changed.
    pub fn save(&mut self) -> std::io::Result<()> {
        if self.dirty {
            self.positions.save()?;
            self.dirty = false;
        }
        Ok(())
    }
}

fn record(
    host: &str,
    f: &Followed,
    task: &CollectionTask,
    buf: &Bytes,
    piece: &Piece,
    base: u64,
) -> OutRecord {
    let mut headers = vec![
        header("path", f.key.as_bytes()),
        header("host", host.as_bytes()),
        header("business_line", task.business_line.as_bytes()),
        header("task", f.task.as_bytes()),
        header("file.id", f.id.to_string()),
        header("file.offset", (base + piece.start as u64).to_string()),
    ];
    if piece.split {
        headers.push(header("rafka.split", "true"));
    }
    OutRecord {
        topic: task.topic.clone(),
        key: Bytes::from(format!("{host}:{}", f.key)),
        value: buf.slice(piece.start..piece.end),
        headers,
    }
}

/// Reads until `buf` is full or the file ends.
fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The regular files a task's paths match now, with their identities.
fn matches(task: &CollectionTask, warned: &mut HashSet<PathBuf>) -> Vec<(PathBuf, FileId)> {
    let mut out = Vec::new();
    for p in &task.paths {
        let path = Path::new(p);
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            continue;
        };
        let name = name.to_string_lossy();
        if !name.contains(['*', '?']) {
            if let Ok(m) = std::fs::metadata(path) {
                if m.is_file() {
                    out.push((path.to_owned(), FileId::of(&m)));
                }
            }
            continue;
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => {
                warned.remove(dir);
                e
            }
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound && warned.insert(dir.to_owned()) {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot list");
                }
                continue;
            }
        };
        let mut found: Vec<(PathBuf, FileId)> = entries
            .flatten()
            .filter(|e| glob_match(&name, &e.file_name().to_string_lossy()))
            .filter_map(|e| {
                let path = e.path();
                let m = std::fs::metadata(&path).ok()?;
                m.is_file().then(|| (path, FileId::of(&m)))
            })
            .collect();
        found.sort();
        out.extend(found);
    }
    out
}

/// The file in `dir` with identity `id`.
fn find_by_id(dir: &Path, id: FileId) -> Option<PathBuf> {
    std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let m = std::fs::metadata(e.path()).ok()?;
        (m.is_file() && FileId::of(&m) == id).then(|| e.path())
    })
}

/// `*` (any run) and `?` (any one character) against a file name.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// A record header.
pub fn header(name: &str, value: impl Into<Vec<u8>>) -> (String, Option<Bytes>) {
    (name.to_owned(), Some(Bytes::from(value.into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*.log", "app.log"));
        assert!(!glob_match("*.log", "app.log.1"));
        assert!(glob_match("app-??.log", "app-01.log"));
        assert!(!glob_match("app-??.log", "app-1.log"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
    }
}
