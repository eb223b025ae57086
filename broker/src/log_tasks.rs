//! The storage's periodic tasks, each on its own period, as Kafka's `LogManager.startup` and
//! `ReplicaManager` schedule them:
//!
//! | task | Kafka's name | period |
//! |---|---|---|
//! | retention, `.deleted` removal, idle producers forgotten | `kafka-log-retention`, `PeriodicProducerExpirationCheck` | `log.retention.check.interval.ms` |
//! | flush of rolled segments | (`flush-log`, right after each roll) | [`ROLL_FLUSH_INTERVAL`] |
//! | `replication-offset-checkpoint` | `highwatermark-checkpoint` | `replica.high.watermark.checkpoint.interval.ms` |
//! | `recovery-point-offset-checkpoint` | `kafka-recovery-point-checkpoint` | `log.flush.offset.checkpoint.interval.ms` |
//! | `log-start-offset-checkpoint` | `kafka-log-start-offset-checkpoint` | `log.flush.start.offset.checkpoint.interval.ms` |
//!
//! Every task runs once at start. A period of 0 or less runs it only then, as Kafka's
//! scheduler does with such a period. A task that overran its period runs again one period
//! after it finished (no burst of missed runs). The tasks run one at a time, on a blocking
//! thread each.

use rafka_storage::log_manager::{CheckpointKind, LogManager};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How often the segments rolled since the last pass are flushed (and the recovery points they
/// reach advanced in memory). Kafka flushes a rolled segment right after its roll; rafka
/// batches the rolls of a few seconds into one pass, as it always has.
pub const ROLL_FLUSH_INTERVAL: Duration = Duration::from_secs(5);

/// One periodic task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTask {
    Retention,
    FlushRolledSegments,
    Checkpoint(CheckpointKind),
}

/// The periods, from `server.properties` (in ms; 0 or less: once, at start).
#[derive(Debug, Clone, Copy)]
pub struct LogTaskPeriods {
    pub retention_check_ms: i64,
    pub high_watermark_checkpoint_ms: i64,
    pub recovery_point_checkpoint_ms: i64,
    pub log_start_offset_checkpoint_ms: i64,
}

impl LogTaskPeriods {
    fn tasks(&self) -> Vec<(LogTask, Option<Duration>)> {
        let period = |ms: i64| {
            u64::try_from(ms)
                .ok()
                .filter(|&ms| ms > 0)
                .map(Duration::from_millis)
        };
        vec![
            (LogTask::Retention, period(self.retention_check_ms)),
            (LogTask::FlushRolledSegments, Some(ROLL_FLUSH_INTERVAL)),
            (
                LogTask::Checkpoint(CheckpointKind::HighWatermarks),
                period(self.high_watermark_checkpoint_ms),
            ),
            (
                LogTask::Checkpoint(CheckpointKind::RecoveryPoints),
                period(self.recovery_point_checkpoint_ms),
            ),
            (
                LogTask::Checkpoint(CheckpointKind::LogStartOffsets),
                period(self.log_start_offset_checkpoint_ms),
            ),
        ]
    }
}

/// Runs the tasks until `shutdown`.
pub async fn run(
    log_manager: Arc<LogManager>,
    periods: LogTaskPeriods,
    mut shutdown: watch::Receiver<bool>,
) {
    // (task, period, when it is next due)
    let start = Instant::now();
    let mut due: Vec<(LogTask, Option<Duration>, Instant)> = periods
        .tasks()
        .into_iter()
        .map(|(task, period)| (task, period, start))
        .collect();
    loop {
        let Some(next) = due.iter().map(|d| d.2).min() else {
            return;
        };
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = shutdown.changed() => return,
        }
        let now = Instant::now();
        let ready: Vec<LogTask> = due.iter().filter(|d| d.2 <= now).map(|d| d.0).collect();
        for task in ready {
            let lm = log_manager.clone();
            let _ = tokio::task::spawn_blocking(move || run_task(&lm, task, crate::now_ms())).await;
            let finished = Instant::now();
            due.retain_mut(|d| {
                if d.0 != task {
                    return true;
                }
                match d.1 {
                    Some(period) => {
                        d.2 = finished + period;
                        true
                    }
                    None => false,
                }
            });
        }
    }
}

fn run_task(lm: &LogManager, task: LogTask, now_ms: i64) {
    let result = match task {
        LogTask::Retention => lm.cleanup_logs(now_ms).map(|_| ()),
        LogTask::FlushRolledSegments => lm.flush_rolled_segments().map(|_| ()),
        LogTask::Checkpoint(kind) => lm.checkpoint_only(&[kind]),
    };
    if let Err(e) = result {
        tracing::error!(error = %e, task = ?task, "storage task failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_of_zero_or_less_run_once() {
        let p = LogTaskPeriods {
            retention_check_ms: 300_000,
            high_watermark_checkpoint_ms: 5_000,
            recovery_point_checkpoint_ms: 0,
            log_start_offset_checkpoint_ms: -1,
        };
        let tasks = p.tasks();
        let period = |t: LogTask| tasks.iter().find(|x| x.0 == t).map(|x| x.1);
        assert_eq!(
            period(LogTask::Retention),
            Some(Some(Duration::from_secs(300)))
        );
        assert_eq!(
            period(LogTask::Checkpoint(CheckpointKind::HighWatermarks)),
            Some(Some(Duration::from_secs(5)))
        );
        assert_eq!(
            period(LogTask::Checkpoint(CheckpointKind::RecoveryPoints)),
            Some(None)
        );
        assert_eq!(
            period(LogTask::Checkpoint(CheckpointKind::LogStartOffsets)),
            Some(None)
        );
        assert_eq!(
            period(LogTask::FlushRolledSegments),
            Some(Some(ROLL_FLUSH_INTERVAL))
        );
    }
}
