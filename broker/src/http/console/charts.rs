//! The console's charts: the sampler that feeds the [`History`] every
//! `http.console.sample.interval.ms`, and `GET /api/throughput`, which serves it.

use super::api::{ok, ApiError, Params};
use super::history::MAX_GROUPS;
use super::state::{Console, ConsoleState};
use crate::group_coordinator::lag::total_lag;
use crate::now_ms;
use axum::extract::{Query, State};
use axum::response::Response;
use rafka_storage::log_manager::lock_log;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Weak};

/// Takes one sample of everything (on a blocking thread).
fn sample(console: &Console) {
    let Ok(apis) = console.apis() else { return };
    let now = now_ms();
    // Lag: the first MAX_GROUPS groups coordinated here.
    let groups: Vec<(String, Option<i64>)> = super::groups::coordinated_groups(console)
        .map(|g| g.into_keys().take(MAX_GROUPS).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|g| {
            let lag = apis.groups.lag(&g).ok().and_then(|l| total_lag(&l));
            (g, lag)
        })
        .collect();
    // Throughput: each led topic's log end offsets and sizes.
    let mut counters: HashMap<String, (i64, u64)> = HashMap::new();
    for p in apis.replica_manager.partitions() {
        if !p.is_leader() {
            continue;
        }
        let (end, size) = {
            let log = lock_log(&p.log);
            (log.log_end_offset(), log.size())
        };
        let c = counters.entry(p.tp.topic.clone()).or_default();
        c.0 += end;
        c.1 += size;
    }
    console.history.record(now, groups, counters);
}

/// Starts the sampler: one sample per interval on a blocking thread, until the console is
/// dropped.
pub fn start_sampler(console: &Arc<Console>) {
    let weak: Weak<Console> = Arc::downgrade(console);
    let interval = console.config.sample_interval;
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(console) = weak.upgrade() else {
                return;
            };
            let _ = tokio::task::spawn_blocking(move || sample(&console)).await;
        }
    });
}

/// `GET /api/throughput[?topic=NAME]`: the node's total and the busiest topics' series (or the
/// one asked for), each `[[unix ms, bytes/s, messages/s], ...]`.
pub async fn throughput(
    State(console): ConsoleState,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let params = Params::new(raw, &["topic"])?;
    let (total, topics) = console.history.throughput(params.str("topic"));
    Ok(ok(json!({
        "interval_ms": console.config.sample_interval.as_millis() as u64,
        "total": total,
        "topics": topics,
    })))
}
