//! Kafka's `RequestMetrics` (`kafka.network:type=RequestMetrics,name=…TimeMs,request=<API>`):
//! where each request's time goes, per API, measured where rafka really spends it.
//!
//! A request's life on a connection task (`network::connection`):
//! - **request queue**: from its last byte read until the handler starts — the wait for room in
//!   the request memory pool (`queued.max.request.bytes`), rafka's counterpart of Kafka's request
//!   channel queue;
//! - **local**: the handler's own work (decode is before it; validation, the append, the read);
//! - **remote**: the part of the handler's time spent parked in a purgatory — an acks=all produce
//!   waiting for the high watermark, a fetch waiting for `min_bytes`, an offset commit waiting for
//!   replication — recorded by [`remote`] around those waits;
//! - **response send**: writing the response (`writev`, `sendfile`);
//! - **total**: all of the above.
//!
//! Recording is lock-free: a fixed array of [`Histogram`]s indexed by API key.

use super::histogram::Histogram;
use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// API keys below this are recorded (Kafka's public keys are below 100).
pub const MAX_API_KEY: usize = 100;

/// One API's histograms.
#[derive(Debug, Default)]
pub struct ApiTimes {
    pub total: Histogram,
    pub request_queue: Histogram,
    pub local: Histogram,
    pub remote: Histogram,
    pub response_send: Histogram,
}

/// Every API's times.
#[derive(Debug)]
pub struct RequestMetrics {
    apis: Vec<ApiTimes>,
}

impl Default for RequestMetrics {
    fn default() -> Self {
        RequestMetrics {
            apis: (0..MAX_API_KEY).map(|_| ApiTimes::default()).collect(),
        }
    }
}

/// The instants of one request, taken by the connection task.
#[derive(Debug, Clone, Copy)]
pub struct RequestTimes {
    pub received: Instant,
    pub dequeued: Instant,
    pub handled: Instant,
    pub sent: Instant,
    /// Time the handler spent in purgatories.
    pub remote: Duration,
}

impl RequestMetrics {
    pub fn record(&self, api_key: i16, t: &RequestTimes) {
        let Some(api) = usize::try_from(api_key).ok().and_then(|k| self.apis.get(k)) else {
            return;
        };
        let handler = t.handled.saturating_duration_since(t.dequeued);
        api.request_queue
            .observe(t.dequeued.saturating_duration_since(t.received));
        api.remote.observe(t.remote.min(handler));
        api.local.observe(handler.saturating_sub(t.remote));
        api.response_send
            .observe(t.sent.saturating_duration_since(t.handled));
        api.total
            .observe(t.sent.saturating_duration_since(t.received));
    }

    /// The APIs that served at least one request, with their key.
    pub fn served(&self) -> impl Iterator<Item = (i16, &ApiTimes)> {
        self.apis
            .iter()
            .enumerate()
            .filter(|(_, a)| a.total.count() > 0)
            .map(|(k, a)| (k as i16, a))
    }
}

tokio::task_local! {
    /// The purgatory time of the request the current connection task is handling.
    static REMOTE: Cell<Duration>;
}

/// Runs a request handler's future, returning its output and the time it spent in [`remote`].
pub async fn with_remote_time<F: Future>(f: F) -> (F::Output, Duration) {
    REMOTE
        .scope(Cell::new(Duration::ZERO), async {
            let out = f.await;
            (out, REMOTE.with(Cell::get))
        })
        .await
}

/// Which purgatory a wait is in (Kafka's `DelayedOperationPurgatory` `delayedOperation` tag).
#[derive(Debug, Clone, Copy)]
pub enum Purgatory {
    Produce,
    Fetch,
}

/// Requests waiting in each purgatory now, process-wide (one node per process).
pub static PURGATORY_PRODUCE: AtomicI64 = AtomicI64::new(0);
pub static PURGATORY_FETCH: AtomicI64 = AtomicI64::new(0);

fn purgatory_gauge(p: Purgatory) -> &'static AtomicI64 {
    match p {
        Purgatory::Produce => &PURGATORY_PRODUCE,
        Purgatory::Fetch => &PURGATORY_FETCH,
    }
}

/// Counts a waiter out of its purgatory however its wait ends (cancelled futures included).
struct Waiting(&'static AtomicI64);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Awaits `f` as a wait in `purgatory`: counted in its size meanwhile, and its time added to the
/// current request's remote time.
pub async fn remote<F: Future>(purgatory: Purgatory, f: F) -> F::Output {
    let gauge = purgatory_gauge(purgatory);
    gauge.fetch_add(1, Ordering::Relaxed);
    let _waiting = Waiting(gauge);
    let start = Instant::now();
    let out = f.await;
    let _ = REMOTE.try_with(|r| r.set(r.get() + start.elapsed()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn remote_time_is_what_the_handler_spent_waiting() {
        let ((), remote) = with_remote_time(async {
            remote(
                Purgatory::Fetch,
                tokio::time::sleep(Duration::from_millis(20)),
            )
            .await;
        })
        .await;
        assert!(remote >= Duration::from_millis(20), "{remote:?}");
        assert_eq!(PURGATORY_FETCH.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn request_times_split_into_kafkas_parts() {
        let m = RequestMetrics::default();
        let t0 = Instant::now();
        let t = RequestTimes {
            received: t0,
            dequeued: t0 + Duration::from_millis(1),
            handled: t0 + Duration::from_millis(11),
            sent: t0 + Duration::from_millis(12),
            remote: Duration::from_millis(4),
        };
        m.record(0, &t);
        m.record(-1, &t); // out of range: ignored
        let (_, api) = m.served().next().expect("produce recorded");
        assert_eq!(api.total.snapshot().0, 12.0);
        assert_eq!(api.local.snapshot().0, 6.0);
        assert_eq!(api.remote.snapshot().0, 4.0);
        assert_eq!(api.request_queue.snapshot().0, 1.0);
        assert_eq!(api.response_send.snapshot().0, 1.0);
        assert_eq!(m.served().count(), 1);
    }
}
