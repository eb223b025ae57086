//! Connection quotas: Kafka's `ConnectionQuotas` — how many connections the broker, each listener
//! and each client IP address may hold open at once.
//!
//! Three limits, with Kafka's semantics:
//! - `max.connections` (broker-wide, over every client listener) and
//!   `listener.name.<name>.max.connections` (one listener): when either is reached the acceptor
//!   *waits* for a connection to close — new clients queue in the kernel's accept backlog, nobody
//!   is refused. As in Kafka, the inter-broker listener is exempt from the broker-wide limit when
//!   there is more than one listener, so that clients cannot lock replication out.
//! - `max.connections.per.ip` and `max.connections.per.ip.overrides` (`host:count` entries, a
//!   host being an IP address or a name resolved at start): a connection from an address that
//!   already has its maximum is accepted and **closed at once**, and counted in
//!   [`ConnectionQuotas::rejected`] (Kafka's acceptor does the same and throws
//!   `TooManyConnectionsException`).
//!
//! Kafka's acceptor, when the broker-wide limit is exceeded through the protected listener,
//! also closes the least recently used client connection; rafka does not (the protected listener
//! simply does not wait), so the broker-wide count may exceed `max.connections` by the
//! inter-broker connections.
//!
//! Used by every listener of a node: the broker's client listeners (`broker::network`) and the
//! controller and learner listeners ([`crate::server`]), each with its own counts.
//!
//! Does not own: the sockets. The accept loop asks for a [`ConnectionSlot`] before `accept`, turns
//! it into a [`ConnectionPermit`] with the peer's address, and the connection's task holds the
//! permit; dropping either gives the counts back, however the task ends.
//!
//! Thread-safety: one mutex over all counts (`Counts`), held only for a few integer updates and
//! never across an `.await`; acceptors waiting for a slot are woken by a `Notify` whenever a
//! slot or permit is dropped.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// The limits, resolved from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// `max.connections`: client connections over every listener.
    pub max_connections: usize,
    /// `listener.name.<name>.max.connections`, for the listeners that set one.
    pub max_connections_per_listener: BTreeMap<String, usize>,
    /// `max.connections.per.ip`.
    pub max_connections_per_ip: usize,
    /// `max.connections.per.ip.overrides`, resolved to addresses.
    pub max_connections_per_ip_overrides: HashMap<IpAddr, usize>,
    /// The listener exempt from `max.connections` (the inter-broker listener when the broker
    /// has more than one listener, as Kafka's `protectedListener`).
    pub protected_listener: Option<String>,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: i32::MAX as usize,
            max_connections_per_listener: BTreeMap::new(),
            max_connections_per_ip: i32::MAX as usize,
            max_connections_per_ip_overrides: HashMap::new(),
            protected_listener: None,
        }
    }
}

/// Why `max.connections.per.ip.overrides` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverridesError {
    #[error("max.connections.per.ip.overrides: entry {entry:?} is not host:count")]
    Format { entry: String },
    #[error("max.connections.per.ip.overrides: {entry:?}: the count must be a number >= 0")]
    Count { entry: String },
    #[error("max.connections.per.ip.overrides: host {host:?} does not resolve: {reason}")]
    Resolve { host: String, reason: String },
}

/// Splits `max.connections.per.ip.overrides` (`host:count,host:count`, as Kafka's
/// `getMap`: entries separated by commas, the count after the last colon so that an IPv6 address
/// may contain colons) into `(host, count)` pairs. Empty entries are skipped.
pub fn parse_overrides(value: &str) -> Result<Vec<(String, usize)>, OverridesError> {
    let mut out = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (host, count) = entry
            .rsplit_once(':')
            .ok_or_else(|| OverridesError::Format {
                entry: entry.to_owned(),
            })?;
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(OverridesError::Format {
                entry: entry.to_owned(),
            });
        }
        let count = count
            .trim()
            .parse::<i32>()
            .ok()
            .and_then(|c| usize::try_from(c).ok())
            .ok_or_else(|| OverridesError::Count {
                entry: entry.to_owned(),
            })?;
        out.push((host.to_owned(), count));
    }
    Ok(out)
}

/// Resolves override hosts to addresses. A name counts for every address it resolves to (Kafka
/// takes the first only; a `localhost` override should cover both 127.0.0.1 and ::1). When two
/// entries name the same address the later one wins, as in Kafka's map.
pub fn resolve_overrides(
    entries: &[(String, usize)],
) -> Result<HashMap<IpAddr, usize>, OverridesError> {
    let mut out = HashMap::new();
    for (host, count) in entries {
        if let Ok(ip) = host.parse::<IpAddr>() {
            out.insert(ip.to_canonical(), *count);
            continue;
        }
        let addrs = (host.as_str(), 0)
            .to_socket_addrs()
            .map_err(|e| OverridesError::Resolve {
                host: host.clone(),
                reason: e.to_string(),
            })?;
        let mut any = false;
        for a in addrs {
            out.insert(a.ip().to_canonical(), *count);
            any = true;
        }
        if !any {
            return Err(OverridesError::Resolve {
                host: host.clone(),
                reason: "no address".into(),
            });
        }
    }
    Ok(out)
}

/// A connection over its address's limit (Kafka's `TooManyConnectionsException`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("too many connections from {ip} (maximum = {max})")]
pub struct TooManyConnections {
    pub ip: IpAddr,
    pub max: usize,
}

/// The counts, under one lock.
#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_listener: HashMap<String, usize>,
    per_ip: HashMap<IpAddr, usize>,
}

/// The broker's connection bookkeeping, shared by all its client listeners.
#[derive(Debug)]
pub struct ConnectionQuotas {
    limits: ConnectionLimits,
    /// Lock order: this is the only lock of the type; nothing else is taken while it is held.
    counts: Mutex<Counts>,
    /// Woken whenever a slot is given back.
    released: Notify,
    rejected: AtomicU64,
}

impl ConnectionQuotas {
    pub fn new(limits: ConnectionLimits) -> Arc<ConnectionQuotas> {
        Arc::new(ConnectionQuotas {
            limits,
            counts: Mutex::new(Counts::default()),
            released: Notify::new(),
            rejected: AtomicU64::new(0),
        })
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        // The counts are plain integers updated without panicking code in between: a poisoned
        // lock still holds consistent counts.
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until `listener` may take one more connection (its own limit and, unless it is the
    /// protected listener, the broker-wide one), and takes it. Cancel-safe.
    pub async fn slot(self: &Arc<Self>, listener: &str) -> ConnectionSlot {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            // Registered before the check, so a release between the check and the await wakes us.
            released.as_mut().enable();
            if let Some(slot) = self.try_slot(listener) {
                return slot;
            }
            released.await;
        }
    }

    /// Takes a slot on `listener` if one is free now.
    pub fn try_slot(self: &Arc<Self>, listener: &str) -> Option<ConnectionSlot> {
        let mut c = self.counts();
        let on_listener = c.per_listener.get(listener).copied().unwrap_or(0);
        let listener_max = self
            .limits
            .max_connections_per_listener
            .get(listener)
            .copied()
            .unwrap_or(usize::MAX);
        if on_listener >= listener_max {
            return None;
        }
        let protected = self.limits.protected_listener.as_deref() == Some(listener);
        if !protected && c.total >= self.limits.max_connections {
            return None;
        }
        c.total += 1;
        *c.per_listener.entry(listener.to_owned()).or_insert(0) += 1;
        Some(ConnectionSlot {
            quotas: self.clone(),
            listener: listener.to_owned(),
            admitted: false,
        })
    }

    /// The per-IP limit of `ip`.
    pub fn max_for(&self, ip: IpAddr) -> usize {
        self.limits
            .max_connections_per_ip_overrides
            .get(&ip.to_canonical())
            .copied()
            .unwrap_or(self.limits.max_connections_per_ip)
    }

    /// Connections open from `ip` now.
    pub fn count(&self, ip: IpAddr) -> usize {
        self.counts()
            .per_ip
            .get(&ip.to_canonical())
            .copied()
            .unwrap_or(0)
    }

    /// Connections open now, over every listener.
    pub fn total(&self) -> usize {
        self.counts().total
    }

    /// Connections open now on each listener that has had one, by name.
    pub fn per_listener(&self) -> Vec<(String, usize)> {
        let mut v: Vec<(String, usize)> = self
            .counts()
            .per_listener
            .iter()
            .map(|(l, n)| (l.clone(), *n))
            .collect();
        v.sort();
        v
    }

    /// Connections closed at once for being over their address's limit, since the start.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    fn release(&self, listener: &str, ip: Option<IpAddr>) {
        {
            let mut c = self.counts();
            c.total = c.total.saturating_sub(1);
            if let Some(n) = c.per_listener.get_mut(listener) {
                *n = n.saturating_sub(1);
            }
            if let Some(ip) = ip {
                if let Some(n) = c.per_ip.get_mut(&ip) {
                    *n -= 1;
                    if *n == 0 {
                        c.per_ip.remove(&ip);
                    }
                }
            }
        }
        self.released.notify_waiters();
    }
}

/// A place for one connection on a listener, taken before `accept`.
#[derive(Debug)]
pub struct ConnectionSlot {
    quotas: Arc<ConnectionQuotas>,
    listener: String,
    /// Set when the counts passed to a [`ConnectionPermit`].
    admitted: bool,
}

impl ConnectionSlot {
    /// Gives the slot to a connection from `ip`, or refuses it when `ip` already has its maximum
    /// (the slot is then given back and the refusal counted).
    pub fn admit(mut self, ip: IpAddr) -> Result<ConnectionPermit, TooManyConnections> {
        let ip = ip.to_canonical();
        let max = self.quotas.max_for(ip);
        let admitted = {
            let mut c = self.quotas.counts();
            let n = c.per_ip.entry(ip).or_insert(0);
            if *n >= max {
                if *n == 0 {
                    c.per_ip.remove(&ip);
                }
                false
            } else {
                *n += 1;
                true
            }
        };
        if !admitted {
            self.quotas.rejected.fetch_add(1, Ordering::Relaxed);
            // Dropping `self` gives the listener and broker-wide counts back.
            return Err(TooManyConnections { ip, max });
        }
        let permit = ConnectionPermit {
            quotas: self.quotas.clone(),
            listener: self.listener.clone(),
            ip,
        };
        // The counts now belong to the permit.
        self.admitted = true;
        Ok(permit)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if !self.admitted {
            self.quotas.release(&self.listener, None);
        }
    }
}

/// One open connection in the counts; dropping it closes its place.
#[derive(Debug)]
pub struct ConnectionPermit {
    quotas: Arc<ConnectionQuotas>,
    listener: String,
    ip: IpAddr,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.quotas.release(&self.listener, Some(self.ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn overrides_parse_kafka_format() {
        assert_eq!(parse_overrides("").expect("empty"), vec![]);
        assert_eq!(
            parse_overrides("127.0.0.2:5, localhost:3,[::1]:7,fe80::1:2").expect("parses"),
            vec![
                ("127.0.0.2".to_owned(), 5),
                ("localhost".to_owned(), 3),
                ("::1".to_owned(), 7),
                ("fe80::1".to_owned(), 2),
            ]
        );
        assert!(matches!(
            parse_overrides("127.0.0.1"),
            Err(OverridesError::Format { .. })
        ));
        assert!(matches!(
            parse_overrides(":4"),
            Err(OverridesError::Format { .. })
        ));
        assert!(matches!(
            parse_overrides("127.0.0.1:-1"),
            Err(OverridesError::Count { .. })
        ));
        assert!(matches!(
            parse_overrides("127.0.0.1:many"),
            Err(OverridesError::Count { .. })
        ));
    }

    #[test]
    fn overrides_resolve_names_and_addresses() {
        let r = resolve_overrides(&[("localhost".into(), 3), ("127.0.0.2".into(), 5)])
            .expect("resolves");
        assert_eq!(r.get(&ip("127.0.0.1")), Some(&3));
        assert_eq!(r.get(&ip("127.0.0.2")), Some(&5));
        assert!(matches!(
            resolve_overrides(&[("no-such-host.invalid".into(), 1)]),
            Err(OverridesError::Resolve { .. })
        ));
    }

    #[test]
    fn per_ip_limit_refuses_and_counts_and_gives_back() {
        let q = ConnectionQuotas::new(ConnectionLimits {
            max_connections_per_ip: 2,
            max_connections_per_ip_overrides: [(ip("127.0.0.2"), 3)].into(),
            ..Default::default()
        });
        let a1 = q.try_slot("L").expect("slot").admit(ip("127.0.0.1"));
        let a2 = q.try_slot("L").expect("slot").admit(ip("127.0.0.1"));
        let a3 = q.try_slot("L").expect("slot").admit(ip("127.0.0.1"));
        assert!(a1.is_ok() && a2.is_ok());
        assert_eq!(
            a3.expect_err("third from 127.0.0.1"),
            TooManyConnections {
                ip: ip("127.0.0.1"),
                max: 2
            }
        );
        assert_eq!(q.rejected(), 1);
        // The refused one holds nothing.
        assert_eq!(q.total(), 2);
        assert_eq!(q.count(ip("127.0.0.1")), 2);
        // The override: three from 127.0.0.2.
        let b: Vec<_> = (0..3)
            .map(|_| q.try_slot("L").expect("slot").admit(ip("127.0.0.2")))
            .collect();
        assert!(b.iter().all(Result::is_ok));
        assert!(q
            .try_slot("L")
            .expect("slot")
            .admit(ip("127.0.0.2"))
            .is_err());
        assert_eq!(q.rejected(), 2);
        // A closed connection makes room for its address again.
        drop(a1);
        assert_eq!(q.count(ip("127.0.0.1")), 1);
        assert!(q
            .try_slot("L")
            .expect("slot")
            .admit(ip("127.0.0.1"))
            .is_ok());
        drop(b);
        assert_eq!(q.count(ip("127.0.0.2")), 0);
        // IPv4-mapped IPv6 peers count as their IPv4 address.
        let _m = q
            .try_slot("L")
            .expect("slot")
            .admit(ip("::ffff:127.0.0.2"))
            .expect("admitted");
        assert_eq!(q.count(ip("127.0.0.2")), 1);
    }

    #[test]
    fn zero_per_ip_refuses_everyone_but_the_overrides() {
        let q = ConnectionQuotas::new(ConnectionLimits {
            max_connections_per_ip: 0,
            max_connections_per_ip_overrides: [(ip("127.0.0.1"), 1)].into(),
            ..Default::default()
        });
        assert!(q
            .try_slot("L")
            .expect("slot")
            .admit(ip("127.0.0.3"))
            .is_err());
        assert!(q
            .try_slot("L")
            .expect("slot")
            .admit(ip("127.0.0.1"))
            .is_ok());
        assert_eq!(q.count(ip("127.0.0.3")), 0);
    }

    #[test]
    fn broker_and_listener_limits_hold_slots_back_except_on_the_protected_listener() {
        let q = ConnectionQuotas::new(ConnectionLimits {
            max_connections: 2,
            max_connections_per_listener: [("SMALL".to_owned(), 1)].into(),
            protected_listener: Some("REPLICATION".into()),
            ..Default::default()
        });
        let s1 = q.try_slot("SMALL").expect("first on SMALL");
        assert!(q.try_slot("SMALL").is_none(), "SMALL holds one");
        let c1 = q.try_slot("CLIENT").expect("second overall");
        assert!(q.try_slot("CLIENT").is_none(), "broker-wide limit");
        // The inter-broker listener is not held back by the broker-wide limit.
        let r = q.try_slot("REPLICATION").expect("protected");
        assert_eq!(q.total(), 3);
        drop(s1);
        assert!(
            q.try_slot("CLIENT").is_none(),
            "still 2 besides the protected"
        );
        drop(r);
        let _c2 = q.try_slot("CLIENT").expect("room again");
        drop(c1);
    }

    #[tokio::test]
    async fn a_waiting_acceptor_wakes_when_a_connection_closes() {
        let q = ConnectionQuotas::new(ConnectionLimits {
            max_connections: 1,
            ..Default::default()
        });
        let held = q
            .try_slot("L")
            .expect("slot")
            .admit(ip("127.0.0.1"))
            .expect("admitted");
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move { q.slot("L").await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "no slot while the first is open");
        drop(held);
        let slot = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("task");
        assert_eq!(q.total(), 1);
        drop(slot);
        assert_eq!(q.total(), 0);
    }
}
