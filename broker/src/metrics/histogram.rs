//! A latency histogram recorded with atomics only: Prometheus' classic buckets over Kafka's unit
//! (milliseconds), for the request path where a lock per observation would cost more than the
//! work measured.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in microseconds (+Inf follows): 0.1 ms to 30 s, as Kafka's
/// request times spread from sub-millisecond local appends to long-polling fetches.
pub const BOUNDS_US: [u64; 17] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000,
];

/// Observations of a duration. Thread-safety: every field is an atomic; an observation is two
/// relaxed adds, and a scrape that races one may see it in a bucket and not yet in the sum.
#[derive(Debug)]
pub struct Histogram {
    /// Non-cumulative counts per bucket; the last is +Inf.
    buckets: [AtomicU64; BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub const fn new() -> Histogram {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BOUNDS_US.len() + 1],
            sum_us: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = BOUNDS_US.partition_point(|&b| b < us);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The observations so far: (sum in ms, count, each bucket's own count with its upper
    /// bound in ms). Not cumulative: prometheus-client's encoders accumulate them.
    pub fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut count = 0;
        let mut buckets = Vec::with_capacity(BOUNDS_US.len() + 1);
        for (i, b) in self.buckets.iter().enumerate() {
            let n = b.load(Ordering::Relaxed);
            count += n;
            let le = BOUNDS_US
                .get(i)
                .map_or(f64::INFINITY, |&us| us as f64 / 1000.0);
            buckets.push((le, n));
        }
        let sum_ms = self.sum_us.load(Ordering::Relaxed) as f64 / 1000.0;
        (sum_ms, count, buckets)
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_count_their_own_observations_with_inf_last() {
        let h = Histogram::new();
        h.observe(Duration::from_micros(50)); // <= 0.1 ms
        h.observe(Duration::from_micros(100)); // <= 0.1 ms (bounds are inclusive)
        h.observe(Duration::from_millis(3)); // <= 5 ms
        h.observe(Duration::from_secs(60)); // +Inf
        let (sum, count, buckets) = h.snapshot();
        assert_eq!(count, 4);
        assert!((sum - (0.05 + 0.1 + 3.0 + 60_000.0)).abs() < 1e-9);
        assert_eq!(buckets[0], (0.1, 2));
        assert_eq!(buckets[5], (5.0, 1));
        assert_eq!(buckets[16], (30_000.0, 0));
        assert_eq!(buckets[17].1, 1);
        assert_eq!(buckets.iter().map(|b| b.1).sum::<u64>(), 4);
        assert!(buckets[17].0.is_infinite());
    }
}
