//! Kafka's `BrokerHeartbeatTracker`: when each registered broker last sent a heartbeat, taken
//! as the request *arrives* at the controller — before it waits its turn in the controller's
//! event queue.
//!
//! The controller handles one event at a time ([`crate::quorum_controller`]); a heartbeat
//! queued behind a slow write (a CreateTopics of thousands of partitions, an image of 100,000
//! partitions applied) is handled late, and judging sessions by when heartbeats are *handled*
//! fences live brokers only because the controller was busy. As Kafka's controller does, the
//! request path records the contact at once, and the session check
//! ([`super::heartbeats::BrokerHeartbeatManager::observe_contacts`]) takes the later of that
//! and the last handled heartbeat.
//!
//! Bounded by what the active controller put in: only brokers the
//! [`BrokerHeartbeatManager`](super::heartbeats::BrokerHeartbeatManager) holds a session for
//! are tracked, so a request naming any other id records nothing. A contact counts only for the
//! broker epoch it carried: the session check compares it with the registration in the image,
//! so a heartbeat of a previous incarnation keeps no successor's session alive.
//!
//! Thread-safety: one `std::sync::Mutex`, a leaf lock held for a map operation only, never
//! across `.await` and never while taking another lock.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

/// The last heartbeat a tracked broker sent: the epoch it carried and when it arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contact {
    pub broker_epoch: i64,
    pub at: Instant,
}

/// See the module doc.
#[derive(Debug, Default)]
pub struct BrokerHeartbeatTracker {
    /// Tracked broker ids → their last contact (None until one arrives).
    contacts: Mutex<HashMap<i32, Option<Contact>>>,
}

impl BrokerHeartbeatTracker {
    fn lock(&self) -> MutexGuard<'_, HashMap<i32, Option<Contact>>> {
        // A panic while holding this lock leaves a plain map: keep using it.
        self.contacts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts tracking `broker_id` (it holds a session now); a tracked one keeps its contact.
    pub fn track(&self, broker_id: i32) {
        self.lock().entry(broker_id).or_insert(None);
    }

    /// Stops tracking `broker_id` (its session was removed).
    pub fn untrack(&self, broker_id: i32) {
        self.lock().remove(&broker_id);
    }

    /// A heartbeat from `broker_id` with `broker_epoch` arrived at `now`. Ignored unless the
    /// broker is tracked; never moves a contact back in time.
    pub fn heard_from(&self, broker_id: i32, broker_epoch: i64, now: Instant) {
        if let Some(slot) = self.lock().get_mut(&broker_id) {
            if slot.is_none_or(|c| c.at <= now) {
                *slot = Some(Contact {
                    broker_epoch,
                    at: now,
                });
            }
        }
    }

    /// The last contact of `broker_id`, if tracked and heard from.
    pub fn contact(&self, broker_id: i32) -> Option<Contact> {
        self.lock().get(&broker_id).copied().flatten()
    }

    /// How many brokers are tracked.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_tracked_brokers_are_recorded() {
        let t = BrokerHeartbeatTracker::default();
        let now = Instant::now();
        t.heard_from(7, 3, now);
        assert_eq!(t.contact(7), None);
        assert_eq!(t.len(), 0, "an untracked id must not grow the map");
        t.track(7);
        assert_eq!(t.contact(7), None);
        t.heard_from(7, 3, now);
        assert_eq!(
            t.contact(7),
            Some(Contact {
                broker_epoch: 3,
                at: now
            })
        );
        t.untrack(7);
        assert_eq!(t.contact(7), None);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn a_contact_never_moves_back_and_tracking_again_keeps_it() {
        let t = BrokerHeartbeatTracker::default();
        let now = Instant::now();
        let later = now + Duration::from_millis(10);
        t.track(1);
        t.heard_from(1, 5, later);
        t.heard_from(1, 5, now);
        assert_eq!(t.contact(1).map(|c| c.at), Some(later));
        t.track(1);
        assert_eq!(t.contact(1).map(|c| c.at), Some(later));
        t.heard_from(1, 6, later + Duration::from_millis(1));
        assert_eq!(t.contact(1).map(|c| c.broker_epoch), Some(6));
    }
}
