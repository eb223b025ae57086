//! [`InterNodeStats`]: counters of one inter-node client's connections (Kafka's selector
//! metrics).

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one client's connections (Kafka's selector metrics).
#[derive(Debug, Default)]
pub struct InterNodeStats {
    /// Connections opened.
    pub connection_creation_total: AtomicU64,
    /// Connection attempts that failed (refused, unreachable, TLS or SASL refused, timed out).
    pub connection_creation_failed_total: AtomicU64,
    /// Connections closed by this side (after an error, a timeout, or on purpose).
    pub connection_close_total: AtomicU64,
    /// Requests answered.
    pub request_total: AtomicU64,
}

impl InterNodeStats {
    /// Connections open now: opened less closed.
    pub fn connection_count(&self) -> u64 {
        self.connection_creation_total
            .load(Ordering::Relaxed)
            .saturating_sub(self.connection_close_total.load(Ordering::Relaxed))
    }
}
