//! What the console's charts draw: samples taken on the server every
//! `http.console.sample.interval.ms` (default 5 s), kept in ring buffers of [`MAX_SAMPLES`]
//! (10 minutes at the default) — each group's total lag (at most [`MAX_GROUPS`] groups), and
//! each topic's bytes and messages in per second (at most [`MAX_TOPICS`] topics with a
//! history, the busiest; plus the node's total). The sampler that takes them and the endpoint that
//! serves them are `charts.rs`'s.
//!
//! Throughput is measured on the partitions this node leads: messages in is the growth of the
//! log end offset, bytes in the growth of the log's size (a retention deletion between two
//! samples hides that interval's bytes rather than counting negative ones).

use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

/// Samples kept per series.
pub const MAX_SAMPLES: usize = 120;
/// Groups whose lag is sampled.
pub const MAX_GROUPS: usize = 100;
/// Topics with a throughput history.
pub const MAX_TOPICS: usize = 200;
/// Topics a throughput answer carries when none is asked for.
const TOP_TOPICS: usize = 20;

/// One throughput sample: (unix ms, bytes/s, messages/s).
type Rate = (i64, f64, f64);

/// The sampled series. Lock: taken by the sampler once per interval to store a sample, and by
/// handlers to copy a series out; never held across anything else.
pub struct History {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    lag: HashMap<String, VecDeque<(i64, i64)>>,
    /// Every led topic's counters at the last sample (16 bytes a topic), to take differences.
    last: HashMap<String, (i64, u64)>,
    last_at: Option<Instant>,
    topics: HashMap<String, VecDeque<Rate>>,
    total: VecDeque<Rate>,
}

fn push<T>(q: &mut VecDeque<T>, v: T) {
    if q.len() == MAX_SAMPLES {
        q.pop_front();
    }
    q.push_back(v);
}

impl History {
    pub fn new() -> History {
        History {
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A group's lag samples: `[[unix ms, lag], ...]`, oldest first.
    pub fn lag_history(&self, group: &str) -> Vec<(i64, i64)> {
        self.lock()
            .lag
            .get(group)
            .map(|q| q.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Stores one sample taken at `now` (unix ms): each group's total lag (`None`: unknown) and
    /// each led topic's (log end offset, size) summed over its partitions.
    pub fn record(
        &self,
        now: i64,
        groups: Vec<(String, Option<i64>)>,
        counters: HashMap<String, (i64, u64)>,
    ) {
        let at = Instant::now();
        let mut inner = self.lock();
        inner.lag.retain(|g, _| groups.iter().any(|(x, _)| x == g));
        for (g, lag) in groups {
            if let Some(lag) = lag {
                push(inner.lag.entry(g).or_default(), (now, lag));
            }
        }
        let elapsed = inner.last_at.map(|t| at.duration_since(t).as_secs_f64());
        inner.last_at = Some(at);
        let previous = std::mem::replace(&mut inner.last, counters);
        let Some(secs) = elapsed.filter(|s| *s > 0.0) else {
            return;
        };
        let mut rates: Vec<(String, f64, f64)> = Vec::new();
        let (mut all_bytes, mut all_msgs) = (0.0, 0.0);
        for (topic, (end, size)) in &inner.last {
            let (bytes, msgs) = match previous.get(topic) {
                Some((e0, s0)) => (
                    size.saturating_sub(*s0) as f64 / secs,
                    (end - e0).max(0) as f64 / secs,
                ),
                None => (0.0, 0.0),
            };
            all_bytes += bytes;
            all_msgs += msgs;
            rates.push((topic.clone(), bytes, msgs));
        }
        push(&mut inner.total, (now, all_bytes, all_msgs));
        let current: std::collections::HashSet<&String> = inner.last.keys().collect();
        let gone: Vec<String> = inner
            .topics
            .keys()
            .filter(|t| !current.contains(t))
            .cloned()
            .collect();
        for t in gone {
            inner.topics.remove(&t);
        }
        for (topic, bytes, msgs) in rates {
            if let Some(q) = inner.topics.get_mut(&topic) {
                push(q, (now, bytes, msgs));
            } else if bytes > 0.0 || msgs > 0.0 {
                if inner.topics.len() >= MAX_TOPICS {
                    // Make room by dropping the quietest series.
                    let quietest = inner
                        .topics
                        .iter()
                        .map(|(t, q)| (t.clone(), q.iter().map(|r| r.1).sum::<f64>()))
                        .min_by(|a, b| a.1.total_cmp(&b.1));
                    match quietest {
                        Some((t, sum)) if sum < bytes * MAX_SAMPLES as f64 => {
                            inner.topics.remove(&t);
                        }
                        _ => continue,
                    }
                }
                let mut q = VecDeque::with_capacity(MAX_SAMPLES);
                q.push_back((now, bytes, msgs));
                inner.topics.insert(topic, q);
            }
        }
    }
}

impl Default for History {
    fn default() -> Self {
        History::new()
    }
}

impl History {
    /// The node's total and the busiest topics' series (or the one asked for), each
    /// `[[unix ms, bytes/s, messages/s], ...]`.
    pub fn throughput(&self, topic: Option<&str>) -> (Value, Vec<Value>) {
        let inner = self.lock();
        let mut topics: Vec<(&String, &VecDeque<Rate>)> = match topic {
            Some(t) => inner.topics.get_key_value(t).into_iter().collect(),
            None => inner.topics.iter().collect(),
        };
        let recent = |q: &VecDeque<Rate>| q.iter().rev().take(12).map(|r| r.1).sum::<f64>();
        topics.sort_by(|a, b| recent(b.1).total_cmp(&recent(a.1)).then(a.0.cmp(b.0)));
        let topics: Vec<Value> = topics
            .into_iter()
            .take(TOP_TOPICS)
            .map(|(t, q)| json!({"topic": t, "samples": series(q)}))
            .collect();
        (Value::Array(series(&inner.total)), topics)
    }
}

fn series(q: &VecDeque<Rate>) -> Vec<Value> {
    q.iter()
        .map(|(t, b, m)| json!([t, (b * 10.0).round() / 10.0, (m * 10.0).round() / 10.0]))
        .collect()
}
