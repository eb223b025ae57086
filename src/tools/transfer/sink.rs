//! [`Sink`]: where the transfer writes records, and [`JsonLinesSink`], date-partitioned JSON
//! lines on the local file system (other sinks — Elasticsearch's bulk API, object stores —
//! implement the same trait).
//!
//! The contract that makes the transfer exactly-once per output: [`Sink::flush`] makes every
//! record written so far durable; [`Sink::reconcile`] removes every record of a partition at or
//! after an offset (what was written after the last committed offset, before a crash). The
//! transfer commits an offset only after a flush, and reconciles each partition to its
//! committed offset before writing to it.
//!
//! Layout: `<dir>/<topic>/<YYYY-MM-DD>/<topic>-<partition>.jsonl`, the date (UTC) of each
//! record's timestamp; one JSON object per line: `topic`, `partition`, `offset`, `timestamp`,
//! `key`, `value` (strings when UTF-8; otherwise `key_base64` / `value_base64`), `headers`
//! (an object; a value that is not UTF-8 is written lossily). Within a file, offsets increase.

use base64::Engine;
use rafka_client::consumer::ConsumedRecord;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

pub trait Sink {
    /// Removes what was written for `topic`-`partition` at or after `offset`.
    fn reconcile(&mut self, topic: &str, partition: i32, offset: i64) -> std::io::Result<()>;
    /// Writes one record (buffered until [`Sink::flush`]).
    fn write(&mut self, topic: &str, record: &ConsumedRecord) -> std::io::Result<()>;
    /// Makes everything written durable.
    fn flush(&mut self) -> std::io::Result<()>;
}

struct Open {
    out: std::io::BufWriter<File>,
    dirty: bool,
}

pub struct JsonLinesSink {
    dir: PathBuf,
    open: BTreeMap<PathBuf, Open>,
    /// Directories created since the last flush (fsync'd with it).
    new_dirs: Vec<PathBuf>,
}

impl JsonLinesSink {
    pub fn new(dir: &Path) -> std::io::Result<JsonLinesSink> {
        std::fs::create_dir_all(dir)?;
        Ok(JsonLinesSink {
            dir: dir.to_owned(),
            open: BTreeMap::new(),
            new_dirs: Vec::new(),
        })
    }

    fn file_name(topic: &str, partition: i32) -> String {
        format!("{topic}-{partition}.jsonl")
    }

    fn path(&self, topic: &str, record: &ConsumedRecord) -> PathBuf {
        let date = chrono::DateTime::from_timestamp_millis(record.timestamp).map_or_else(
            || "unknown-date".to_owned(),
            |t| t.format("%Y-%m-%d").to_string(),
        );
        self.dir
            .join(topic)
            .join(date)
            .join(Self::file_name(topic, record.partition))
    }
}

/// A record as one JSON object.
pub fn to_json(topic: &str, r: &ConsumedRecord) -> Value {
    let mut o = Map::new();
    o.insert("topic".into(), json!(topic));
    o.insert("partition".into(), json!(r.partition));
    o.insert("offset".into(), json!(r.offset));
    o.insert("timestamp".into(), json!(r.timestamp));
    for (name, bytes) in [("key", &r.key), ("value", &r.value)] {
        match bytes {
            None => {
                o.insert(name.into(), Value::Null);
            }
            Some(b) => match std::str::from_utf8(b) {
                Ok(s) => {
                    o.insert(name.into(), json!(s));
                }
                Err(_) => {
                    o.insert(
                        format!("{name}_base64"),
                        json!(base64::engine::general_purpose::STANDARD.encode(b)),
                    );
                }
            },
        }
    }
    let headers: Map<String, Value> = r
        .headers
        .iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(k).into_owned(),
                v.as_ref()
                    .map_or(Value::Null, |v| json!(String::from_utf8_lossy(v))),
            )
        })
        .collect();
    o.insert("headers".into(), Value::Object(headers));
    Value::Object(o)
}

impl Sink for JsonLinesSink {
    fn reconcile(&mut self, topic: &str, partition: i32, offset: i64) -> std::io::Result<()> {
        let name = Self::file_name(topic, partition);
        // Close (flushing) this partition's files first.
        let mine: Vec<PathBuf> = self
            .open
            .keys()
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy() == name))
            .filter(|p| p.starts_with(self.dir.join(topic)))
            .cloned()
            .collect();
        for p in mine {
            if let Some(mut o) = self.open.remove(&p) {
                o.out.flush()?;
            }
        }
        let topic_dir = self.dir.join(topic);
        let dates = match std::fs::read_dir(&topic_dir) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for date in dates.flatten() {
            let path = date.path().join(&name);
            if path.is_file() {
                truncate_from(&path, offset)?;
            }
        }
        Ok(())
    }

    fn write(&mut self, topic: &str, record: &ConsumedRecord) -> std::io::Result<()> {
        let path = self.path(topic, record);
        if !self.open.contains_key(&path) {
            if let Some(parent) = path.parent() {
                if !parent.exists() {
                    std::fs::create_dir_all(parent)?;
                    self.new_dirs.push(parent.to_owned());
                    if let Some(up) = parent.parent() {
                        self.new_dirs.push(up.to_owned());
                    }
                    self.new_dirs.push(self.dir.clone());
                }
            }
            let file = OpenOptions::new().create(true).append(true).open(&path)?;
            self.open.insert(
                path.clone(),
                Open {
                    out: std::io::BufWriter::with_capacity(256 * 1024, file),
                    dirty: false,
                },
            );
        }
        let o = self.open.get_mut(&path).expect("invariant: inserted above");
        let mut line =
            serde_json::to_vec(&to_json(topic, record)).map_err(std::io::Error::other)?;
        line.push(b'\n');
        o.out.write_all(&line)?;
        o.dirty = true;
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        for o in self.open.values_mut() {
            if o.dirty {
                o.out.flush()?;
                o.out.get_ref().sync_data()?;
                o.dirty = false;
            }
        }
        // A new file's name is durable once its directory is.
        let mut dirs = std::mem::take(&mut self.new_dirs);
        dirs.sort();
        dirs.dedup();
        for d in dirs {
            File::open(&d)?.sync_all()?;
        }
        // Keep the number of open files bounded.
        if self.open.len() > 256 {
            self.open.clear();
        }
        Ok(())
    }
}

/// Cuts `path` at its first line whose offset is at least `offset`, or that is torn or not a
/// record (a crash mid-write), and fsyncs it.
fn truncate_from(path: &Path, offset: i64) -> std::io::Result<()> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut reader = BufReader::new(file);
    let mut pos: u64 = 0;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        let complete = line.last() == Some(&b'\n');
        let record_offset = serde_json::from_slice::<Value>(&line)
            .ok()
            .and_then(|v| v.get("offset").and_then(Value::as_i64));
        match record_offset {
            Some(o) if complete && o < offset => pos += n as u64,
            _ => break,
        }
    }
    if pos < len {
        tracing::info!(path = %path.display(), from = pos, len, offset, "removing records written after the committed offset");
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(pos)?;
        f.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use rafka_protocol::record_batch::TimestampType;

    fn rec(partition: i32, offset: i64, value: &[u8]) -> ConsumedRecord {
        ConsumedRecord {
            partition,
            offset,
            timestamp: 1_700_000_000_000,
            timestamp_type: TimestampType::CreateTime,
            key: None,
            value: Some(Bytes::copy_from_slice(value)),
            headers: vec![(Bytes::from_static(b"h"), Some(Bytes::from_static(b"v")))],
        }
    }

    fn offsets(path: &Path) -> Vec<i64> {
        std::fs::read_to_string(path)
            .expect("read")
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).expect("json")["offset"]
                    .as_i64()
                    .expect("offset")
            })
            .collect()
    }

    #[test]
    fn write_flush_reconcile() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sink = JsonLinesSink::new(dir.path()).expect("sink");
        for o in 0..10 {
            sink.write("t", &rec(0, o, b"x")).expect("write");
        }
        sink.write("t", &rec(1, 0, b"\xff\x00")).expect("write");
        sink.flush().expect("flush");
        let path = dir.path().join("t/2023-11-14/t-0.jsonl");
        assert_eq!(offsets(&path), (0..10).collect::<Vec<_>>());
        // A torn line after a crash, then a reconcile to offset 7.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"{\"offset\":10,"))
            .expect("append");
        sink.reconcile("t", 0, 7).expect("reconcile");
        assert_eq!(offsets(&path), (0..7).collect::<Vec<_>>());
        sink.write("t", &rec(0, 7, b"y")).expect("write");
        sink.flush().expect("flush");
        assert_eq!(offsets(&path), (0..8).collect::<Vec<_>>());
        // The other partition is untouched; binary values are base64.
        let other =
            std::fs::read_to_string(dir.path().join("t/2023-11-14/t-1.jsonl")).expect("read");
        let v: Value = serde_json::from_str(other.trim()).expect("json");
        assert_eq!(v["value_base64"], "/wA=");
        assert_eq!(v["headers"]["h"], "v");
    }
}
