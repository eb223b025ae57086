//! Kafka's `BrokerHeartbeatManager` and the heartbeat half of `ReplicationControlManager`:
//! broker sessions (in memory, on the active controller only), BrokerHeartbeat (API 63), and
//! fencing brokers whose session expired.
//!
//! A broker's state is Kafka's `BrokerControlState`, moved by heartbeats:
//! - FENCED → UNFENCED once its metadata offset has reached its registration (its epoch);
//! - UNFENCED → CONTROLLED_SHUTDOWN on `want_shut_down` while it leads partitions: it leaves
//!   every ISR and its leaderships move (the last ISR member stays, leaderless);
//! - CONTROLLED_SHUTDOWN → SHUTDOWN_NOW when it leads nothing and every active broker has
//!   caught up with the offset of those changes; SHUTDOWN_NOW fences it;
//! - `want_fence` (or a fenced broker's `want_shut_down`) → fenced at once.
//!
//! A broker that has most likely died — its heartbeat connection closed (a process's death
//! closes its sockets), or it was the previous active controller's node when this one took over
//! — loses its leaderships and ISR places at once ([`broker_likely_dead`]: the records of a
//! controlled shutdown, without its registration flag), but is fenced only when its session
//! expires. Fencing takes a broker out of the Metadata broker list, and librdkafka tears down
//! the thread of a broker missing from that list: a partition it was moving from the dead
//! broker to the new leader then lands on its internal broker until its next 1 s topic scan
//! (`rd_kafka_metadata_decommission_unavailable_brokers`, then `rd_kafka_broker_fail` →
//! `rd_kafka_toppar_undelegate`). With the leader moved first and the dead broker still listed —
//! as Kafka lists a dead broker until its session times out — the client moves the partition
//! straight to the new leader. A live broker whose connection dropped heartbeats again at once
//! and rejoins the ISR as any follower does, by catching up; a pause closes nothing and is
//! caught by the session timeout alone.
//!
//! Sessions are state of this process, not of the image: a new active controller starts every
//! registered broker with a fresh session ([`BrokerHeartbeatManager::activate`]). The manager's
//! view of fencing moves when records are generated, ahead of the image, so a broker is never
//! fenced twice for one expiry.

use super::broker_epoch::check_broker_epoch;
use super::controller_config::ControllerConfig;
use super::controller_result::ControllerResult;
use super::heartbeat_tracker::BrokerHeartbeatTracker;
use super::replication::{broker_unfenced_changes, brokers_removed_changes, has_leaderships};
use crate::image::MetadataImage;
use rafka_protocol::messages::{
    BrokerHeartbeatRequest, BrokerHeartbeatResponse, BrokerRegistrationChangeRecord, MetadataRecord,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Kafka's `BrokerControlState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerControlState {
    Fenced,
    Unfenced,
    ControlledShutdown,
    ShutdownNow,
}

impl BrokerControlState {
    pub fn fenced(self) -> bool {
        matches!(
            self,
            BrokerControlState::Fenced | BrokerControlState::ShutdownNow
        )
    }

    pub fn should_shut_down(self) -> bool {
        self == BrokerControlState::ShutdownNow
    }
}

#[derive(Debug, Clone)]
struct BrokerSession {
    last_contact: Instant,
    /// The metadata offset its last heartbeat reported (−1 before any).
    metadata_offset: i64,
    fenced: bool,
    /// Set while in controlled shutdown: the offset every active broker must reach first.
    controlled_shutdown_offset: Option<i64>,
}

impl BrokerSession {
    fn expires(&self, session_timeout: Duration) -> Instant {
        self.last_contact + session_timeout
    }
}

/// Broker sessions: last contact, reported metadata offset, fencing and controlled shutdown.
#[derive(Debug, Clone)]
pub struct BrokerHeartbeatManager {
    session_timeout: Duration,
    sessions: BTreeMap<i32, BrokerSession>,
    /// Heartbeats as they arrived, ahead of the event queue (see [`Self::observe_contacts`]).
    tracker: Arc<BrokerHeartbeatTracker>,
}

impl BrokerHeartbeatManager {
    pub fn new(session_timeout: Duration) -> Self {
        BrokerHeartbeatManager {
            session_timeout,
            sessions: BTreeMap::new(),
            tracker: Arc::default(),
        }
    }

    /// Judges sessions also by the heartbeats `tracker` saw arrive (the controller's request
    /// path records them there before they queue): every broker with a session is tracked.
    pub fn use_tracker(&mut self, tracker: Arc<BrokerHeartbeatTracker>) {
        for id in self.sessions.keys() {
            tracker.track(*id);
        }
        self.tracker = tracker;
    }

    /// Moves each session's last contact up to the last heartbeat that *arrived* for the
    /// broker's registered epoch in `image`, though it may still wait in the event queue —
    /// Kafka's `BrokerHeartbeatTracker`: a controller busy with a long write must not fence a
    /// broker whose heartbeats are on time. Called where sessions are judged: before fencing
    /// expired ones and before a registration asks whether the id's session is live.
    pub fn observe_contacts(&mut self, image: &MetadataImage) {
        for (id, s) in self.sessions.iter_mut() {
            let Some(contact) = self.tracker.contact(*id) else {
                continue;
            };
            let registered = image.broker(*id).map(|b| b.epoch);
            if registered == Some(contact.broker_epoch) && contact.at > s.last_contact {
                s.last_contact = contact.at;
            }
        }
    }

    /// A manager for a new active controller: every broker of `image` gets a session from
    /// `now`, fenced as the image says.
    pub fn activate(image: &MetadataImage, session_timeout: Duration, now: Instant) -> Self {
        let mut m = Self::new(session_timeout);
        for b in image.brokers().values() {
            m.register(b.id, b.fenced, now);
        }
        m
    }

    /// Starts (or refreshes) a broker's session.
    pub fn register(&mut self, broker_id: i32, fenced: bool, now: Instant) {
        let metadata_offset = self
            .sessions
            .get(&broker_id)
            .map_or(-1, |s| s.metadata_offset);
        self.touch(broker_id, fenced, metadata_offset, now);
        self.tracker.track(broker_id);
    }

    pub fn remove(&mut self, broker_id: i32) {
        self.sessions.remove(&broker_id);
        self.tracker.untrack(broker_id);
    }

    fn touch(&mut self, broker_id: i32, fenced: bool, metadata_offset: i64, now: Instant) {
        let s = self.sessions.entry(broker_id).or_insert(BrokerSession {
            last_contact: now,
            metadata_offset,
            fenced,
            controlled_shutdown_offset: None,
        });
        s.last_contact = now;
        s.metadata_offset = metadata_offset;
        s.fenced = fenced;
        if fenced {
            // A fenced broker leaves controlled shutdown; its next heartbeat shuts it down.
            s.controlled_shutdown_offset = None;
        }
    }

    /// Unfenced and heard from within the session timeout.
    pub fn has_valid_session(&self, broker_id: i32, now: Instant) -> bool {
        self.sessions
            .get(&broker_id)
            .is_some_and(|s| !s.fenced && s.expires(self.session_timeout) >= now)
    }

    /// The broker's state as this manager sees it (None: no session).
    pub fn state(&self, broker_id: i32) -> Option<BrokerControlState> {
        self.sessions.get(&broker_id).map(|s| {
            if s.controlled_shutdown_offset.is_some() {
                BrokerControlState::ControlledShutdown
            } else if s.fenced {
                BrokerControlState::Fenced
            } else {
                BrokerControlState::Unfenced
            }
        })
    }

    /// The lowest metadata offset reported by an unfenced broker that is not shutting down
    /// (`i64::MAX` if none).
    pub fn lowest_active_offset(&self) -> i64 {
        self.sessions
            .values()
            .filter(|s| !s.fenced && s.controlled_shutdown_offset.is_none())
            .map(|s| s.metadata_offset)
            .min()
            .unwrap_or(i64::MAX)
    }

    /// Sets the offset a shutting-down broker waits for (Kafka's
    /// `maybeUpdateControlledShutdownOffset`): the glue may call it with the offset its records
    /// were actually committed at.
    pub fn set_controlled_shutdown_offset(&mut self, broker_id: i32, offset: i64) {
        if let Some(s) = self.sessions.get_mut(&broker_id) {
            if !s.fenced {
                s.controlled_shutdown_offset = Some(offset);
            }
        }
    }

    /// Brokers the manager holds unfenced whose session has expired at `now`, the longest
    /// silent first.
    pub fn expired(&self, now: Instant) -> Vec<i32> {
        let mut expired: Vec<(Instant, i32)> = self
            .sessions
            .iter()
            .filter(|(_, s)| !s.fenced && s.expires(self.session_timeout) < now)
            .map(|(id, s)| (s.last_contact, *id))
            .collect();
        expired.sort_unstable();
        expired.into_iter().map(|(_, id)| id).collect()
    }

    /// When the next session expires, if any broker is unfenced: when to call
    /// [`fence_expired`] next.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.sessions
            .values()
            .filter(|s| !s.fenced)
            .map(|s| s.expires(self.session_timeout))
            .min()
    }

    fn fence(&mut self, broker_id: i32) {
        if let Some(s) = self.sessions.get_mut(&broker_id) {
            s.fenced = true;
            s.controlled_shutdown_offset = None;
        }
    }
}

fn registration_change(
    broker_id: i32,
    epoch: i64,
    fenced: i8,
    in_controlled_shutdown: i8,
) -> MetadataRecord {
    MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
        broker_id,
        broker_epoch: epoch,
        fenced,
        in_controlled_shutdown,
        ..Default::default()
    })
}

/// The records that fence `brokers` (as if one at a time, in this order): their ISR places and
/// leaderships first, then one `BrokerRegistrationChangeRecord` each (for those the image shows
/// unfenced).
pub fn fence_brokers(
    image: &MetadataImage,
    config: &ControllerConfig,
    brokers: &[i32],
) -> Vec<MetadataRecord> {
    let mut records = brokers_removed_changes(image, config, brokers);
    for id in brokers {
        if let Some(b) = image.broker(*id).filter(|b| !b.fenced) {
            records.push(registration_change(b.id, b.epoch, 1, 0));
        }
    }
    records
}

/// BrokerHeartbeat (Kafka's `ReplicationControlManager.processBrokerHeartbeat`).
/// `next_write_offset` is where the generated records will be committed.
pub fn process_heartbeat(
    image: &MetadataImage,
    config: &ControllerConfig,
    heartbeats: &mut BrokerHeartbeatManager,
    request: &BrokerHeartbeatRequest,
    next_write_offset: i64,
    now: Instant,
) -> ControllerResult<BrokerHeartbeatResponse> {
    let broker_id = request.broker_id;
    let registration = match check_broker_epoch(image, broker_id, request.broker_epoch) {
        Ok(r) => r,
        Err(e) => {
            return ControllerResult::without_records(BrokerHeartbeatResponse {
                error_code: e.code.code(),
                is_fenced: true,
                ..Default::default()
            })
        }
    };
    let current = match heartbeats.state(broker_id) {
        Some(s) => s,
        None => {
            heartbeats.register(broker_id, registration.fenced, now);
            if registration.fenced {
                BrokerControlState::Fenced
            } else {
                BrokerControlState::Unfenced
            }
        }
    };
    let registration_offset = registration.epoch;
    let caught_up = request.current_metadata_offset >= registration_offset;
    use BrokerControlState::*;
    let next = match current {
        Fenced if request.want_shut_down => ShutdownNow,
        Fenced if !request.want_fence && caught_up => Unfenced,
        Fenced => Fenced,
        Unfenced if request.want_fence && request.want_shut_down => ShutdownNow,
        Unfenced if request.want_fence => Fenced,
        Unfenced if request.want_shut_down && has_leaderships(image, broker_id) => {
            ControlledShutdown
        }
        Unfenced if request.want_shut_down => ShutdownNow,
        Unfenced => Unfenced,
        ControlledShutdown if has_leaderships(image, broker_id) => ControlledShutdown,
        ControlledShutdown => {
            let offset = heartbeats
                .sessions
                .get(&broker_id)
                .and_then(|s| s.controlled_shutdown_offset);
            if offset.is_some_and(|o| o <= heartbeats.lowest_active_offset()) {
                ShutdownNow
            } else {
                ControlledShutdown
            }
        }
        ShutdownNow => ShutdownNow,
    };
    let mut records = Vec::new();
    if current != next {
        match next {
            Fenced | ShutdownNow => records = fence_brokers(image, config, &[broker_id]),
            Unfenced => {
                records.push(registration_change(broker_id, registration.epoch, -1, 0));
                records.extend(broker_unfenced_changes(image, config, broker_id));
            }
            ControlledShutdown => {
                if !registration.in_controlled_shutdown {
                    records.push(registration_change(broker_id, registration.epoch, 0, 1));
                }
                records.extend(brokers_removed_changes(image, config, &[broker_id]));
            }
        }
        tracing::info!(node_id = broker_id, from = ?current, to = ?next, "broker state change");
    }
    heartbeats.touch(
        broker_id,
        next.fenced(),
        request.current_metadata_offset,
        now,
    );
    if next == ControlledShutdown && current != ControlledShutdown {
        heartbeats.set_controlled_shutdown_offset(broker_id, next_write_offset);
    }
    ControllerResult::new(
        records,
        BrokerHeartbeatResponse {
            error_code: 0,
            is_caught_up: caught_up,
            is_fenced: next.fenced(),
            should_shut_down: next.should_shut_down(),
            ..Default::default()
        },
    )
}

/// A broker that has most likely died (see the module doc): if it is unfenced and not shutting
/// down, the records that move its leaderships to other ISR members and take it out of every ISR
/// (the last member stays), and `true`. Its session is left alone: it is fenced when that
/// expires, unless it heartbeats again.
pub fn broker_likely_dead(
    image: &MetadataImage,
    config: &ControllerConfig,
    heartbeats: &BrokerHeartbeatManager,
    broker_id: i32,
) -> ControllerResult<bool> {
    if heartbeats.state(broker_id) != Some(BrokerControlState::Unfenced) {
        return ControllerResult::without_records(false);
    }
    ControllerResult::new(brokers_removed_changes(image, config, &[broker_id]), true)
}

/// Fences every broker whose session expired at `now`, longest silent first (Kafka fences one
/// per check; these records are the same as fencing them one after another). The response
/// lists them in that order.
pub fn fence_expired(
    image: &MetadataImage,
    config: &ControllerConfig,
    heartbeats: &mut BrokerHeartbeatManager,
    now: Instant,
) -> ControllerResult<Vec<i32>> {
    heartbeats.observe_contacts(image);
    let mut fenced = Vec::new();
    for id in heartbeats.expired(now) {
        if image.broker(id).is_some() {
            let silent = heartbeats
                .sessions
                .get(&id)
                .map(|s| now.saturating_duration_since(s.last_contact));
            let arrived = heartbeats.tracker.contact(id).map(|c| {
                (
                    c.broker_epoch,
                    now.saturating_duration_since(c.at).as_millis() as u64,
                )
            });
            heartbeats.fence(id);
            fenced.push(id);
            tracing::warn!(
                node_id = id,
                silent_ms = silent.map_or(0, |d| d.as_millis() as u64),
                last_arrival = ?arrived,
                "broker session expired; fencing it"
            );
        } else {
            heartbeats.remove(id);
        }
    }
    let records = fence_brokers(image, config, &fenced);
    ControllerResult::new(records, fenced)
}

#[cfg(test)]
mod tests;
