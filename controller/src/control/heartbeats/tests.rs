//! Heartbeat state machine, controlled shutdown and session expiry cases.

use super::super::testkit::*;
use super::*;
use crate::control::heartbeat_tracker::BrokerHeartbeatTracker;
use rafka_protocol::messages::BrokerRegistrationRequest;
use rafka_protocol::{ErrorCode, Uuid};

/// Broker 1 leads "t"-0 on [1, 2, 3]; `state` is where broker 1 starts.
fn kit_with_broker1(state: BrokerControlState) -> Kit {
    let mut k = Kit::three_brokers();
    k.create_topic_on("t", &[&[1, 2, 3]]);
    match state {
        BrokerControlState::Fenced => {
            let records = fence_brokers(&k.image, &k.config, &[1]);
            k.apply(&records);
            k.controller.heartbeats_mut().register(1, true, k.now);
        }
        BrokerControlState::ControlledShutdown => {
            let r = k.heartbeat(1, |r| r.want_shut_down = true);
            assert!(!r.is_fenced && !r.should_shut_down);
        }
        _ => {}
    }
    assert_eq!(k.controller.heartbeats().state(1), Some(state));
    k
}

#[test]
fn heartbeat_state_machine() {
    use BrokerControlState::*;
    // (case, start, want_fence, want_shut_down, caught up, → state, fenced, shut down)
    let cases = [
        (
            "fenced, caught up: unfenced",
            Fenced,
            false,
            false,
            true,
            Unfenced,
            false,
            false,
        ),
        (
            "fenced, behind: stays fenced",
            Fenced,
            false,
            false,
            false,
            Fenced,
            true,
            false,
        ),
        (
            "fenced, wants fence: stays",
            Fenced,
            true,
            false,
            true,
            Fenced,
            true,
            false,
        ),
        (
            "fenced, wants shutdown: now",
            Fenced,
            false,
            true,
            true,
            Fenced,
            true,
            true,
        ),
        (
            "unfenced: stays",
            Unfenced,
            false,
            false,
            true,
            Unfenced,
            false,
            false,
        ),
        (
            "unfenced, wants fence",
            Unfenced,
            true,
            false,
            true,
            Fenced,
            true,
            false,
        ),
        (
            "unfenced, wants fence and shutdown",
            Unfenced,
            true,
            true,
            true,
            Fenced,
            true,
            true,
        ),
        (
            "unfenced leader wants shutdown: controlled",
            Unfenced,
            false,
            true,
            true,
            ControlledShutdown,
            false,
            false,
        ),
        (
            "controlled, others not caught up: waits",
            ControlledShutdown,
            false,
            true,
            true,
            ControlledShutdown,
            false,
            false,
        ),
    ];
    for (name, start, fence, shut, caught_up, next, fenced, shut_down) in cases {
        let mut k = kit_with_broker1(start);
        let offset = if caught_up {
            k.image.offset()
        } else {
            k.epoch(1) - 1
        };
        let r = k.heartbeat(1, |r| {
            r.want_fence = fence;
            r.want_shut_down = shut;
            r.current_metadata_offset = offset;
        });
        assert_eq!(
            (r.error_code, r.is_fenced, r.should_shut_down),
            (0, fenced, shut_down),
            "{name}"
        );
        assert_eq!(r.is_caught_up, caught_up, "{name}");
        assert_eq!(k.controller.heartbeats().state(1), Some(next), "{name}");
        assert_eq!(
            k.image.broker(1).map(|b| b.fenced),
            Some(fenced),
            "{name}: image"
        );
        if fenced || next == ControlledShutdown {
            assert_ne!(k.partition("t", 0).leader, 1, "{name}: still leads");
        }
    }
}

#[test]
fn stale_or_unknown_broker_epoch_changes_nothing() {
    let mut k = kit_with_broker1(BrokerControlState::Unfenced);
    for (broker, epoch) in [(1, 5), (9, 109)] {
        let req = BrokerHeartbeatRequest {
            broker_id: broker,
            broker_epoch: epoch,
            want_fence: true,
            ..Default::default()
        };
        let result = k.controller.broker_heartbeat(&k.image, &req, 999, k.now);
        assert_eq!(
            result.response.error_code,
            ErrorCode::StaleBrokerEpoch.code()
        );
        assert!(result.records.is_empty());
    }
    assert_eq!(
        k.controller.heartbeats().state(1),
        Some(BrokerControlState::Unfenced)
    );
}

#[test]
fn controlled_shutdown_waits_for_leaders_to_move_and_brokers_to_catch_up() {
    let mut k = kit_with_broker1(BrokerControlState::ControlledShutdown);
    let p = k.partition("t", 0);
    assert_eq!(
        (p.leader, p.isr.clone()),
        (2, vec![2, 3]),
        "leadership moved inside the ISR"
    );
    assert!(k
        .image
        .broker(1)
        .is_some_and(|b| b.in_controlled_shutdown && !b.fenced));
    // Brokers 2 and 3 have reported nothing yet: broker 1 must wait.
    let r = k.heartbeat(1, |r| r.want_shut_down = true);
    assert!(!r.should_shut_down);
    k.heartbeat(2, |_| {});
    k.heartbeat(3, |_| {});
    let r = k.heartbeat(1, |r| r.want_shut_down = true);
    assert!(r.should_shut_down && r.is_fenced);
    assert!(k.image.broker(1).is_some_and(|b| b.fenced));
}

#[test]
fn a_broker_without_leaderships_shuts_down_at_once() {
    let mut k = Kit::three_brokers();
    k.create_topic_on("t", &[&[2, 1]]);
    let r = k.heartbeat(1, |r| r.want_shut_down = true);
    assert!(r.should_shut_down && r.is_fenced);
    assert_eq!(k.partition("t", 0).isr, vec![2]);
}

#[test]
fn a_heartbeat_that_arrived_keeps_the_session_while_it_waits_in_the_queue() {
    // Kafka's BrokerHeartbeatTracker: the request path records the arrival; the event loop may
    // handle the heartbeat only after the session check has run.
    let mut k = kit_with_broker1(BrokerControlState::Unfenced);
    let tracker = std::sync::Arc::new(BrokerHeartbeatTracker::default());
    k.controller.heartbeats_mut().use_tracker(tracker.clone());
    let timeout = k.config.session_timeout;
    k.advance(timeout / 2);
    // Broker 1's heartbeat arrives (its current epoch); broker 3's carries an old epoch, as a
    // dead incarnation's would; broker 9 holds no session.
    tracker.heard_from(1, k.epoch(1), k.now);
    tracker.heard_from(3, k.epoch(3) - 1, k.now);
    tracker.heard_from(9, 0, k.now);
    assert_eq!(
        tracker.len(),
        3,
        "brokers 1, 2 and 3 only: 9 is not tracked"
    );
    k.heartbeat(2, |_| {});
    k.advance(timeout / 2 + Duration::from_millis(1));
    assert_eq!(
        k.fence_expired(),
        vec![3],
        "1 was heard from (though not yet handled); 3's contact was for another epoch"
    );
    k.heartbeat(2, |_| {});
    k.advance(timeout / 2);
    assert_eq!(
        k.fence_expired(),
        vec![1],
        "its session runs from the arrival"
    );
    // A removed session is no longer tracked.
    k.controller.heartbeats_mut().remove(1);
    assert_eq!(tracker.contact(1), None);
}

#[test]
fn sessions_expire_after_the_timeout_not_at_it() {
    let mut k = kit_with_broker1(BrokerControlState::Unfenced);
    let timeout = k.config.session_timeout;
    k.advance(timeout);
    assert!(
        k.fence_expired().is_empty(),
        "expires after the timeout, not at it"
    );
    k.heartbeat(2, |_| {});
    k.advance(Duration::from_millis(1));
    assert_eq!(k.fence_expired(), vec![1, 3]);
    assert!(k.fence_expired().is_empty(), "fenced once");
    assert_eq!(k.controller.heartbeats().expired(k.now), Vec::<i32>::new());
    let p = k.partition("t", 0);
    assert_eq!((p.leader, p.isr.clone(), p.leader_epoch), (2, vec![2], 1));
}

#[test]
fn a_likely_dead_broker_loses_its_leaderships_at_once_and_is_fenced_when_its_session_expires() {
    let mut k = kit_with_broker1(BrokerControlState::Unfenced);
    assert_eq!(k.partition("t", 0).leader, 1);
    // Broker 1's heartbeat connection closed: leadership and ISR place go now…
    let result = k.controller.broker_likely_dead(&k.image, 1);
    assert!(result.response);
    assert!(k.commit(result));
    let p = k.partition("t", 0);
    assert_eq!(
        (p.leader, p.isr.clone(), p.leader_epoch),
        (2, vec![2, 3], 1)
    );
    // …but it stays registered and unfenced (listed in Metadata) until its session expires.
    assert!(k.image.broker(1).is_some_and(|b| !b.fenced));
    assert_eq!(
        k.controller.heartbeats().state(1),
        Some(BrokerControlState::Unfenced)
    );
    // A second close changes nothing more.
    let again = k.controller.broker_likely_dead(&k.image, 1);
    assert!(again.records.is_empty());
    k.advance(k.config.session_timeout / 2);
    k.heartbeat(2, |_| {});
    k.heartbeat(3, |_| {});
    assert!(
        k.fence_expired().is_empty(),
        "not before its session expires"
    );
    k.advance(k.config.session_timeout / 2 + Duration::from_millis(1));
    assert_eq!(k.fence_expired(), vec![1]);
    assert!(k.image.broker(1).is_some_and(|b| b.fenced));
    assert_eq!(k.partition("t", 0).leader, 2);
    // Fenced, shutting down or unknown brokers are left alone.
    let fenced = k.controller.broker_likely_dead(&k.image, 1);
    assert!(!fenced.response && fenced.records.is_empty());
    assert!(!k.controller.broker_likely_dead(&k.image, 9).response);
    let k = kit_with_broker1(BrokerControlState::ControlledShutdown);
    assert!(!k.controller.broker_likely_dead(&k.image, 1).response);
    // A live broker whose connection dropped heartbeats again: it keeps its session.
    let mut k = kit_with_broker1(BrokerControlState::Unfenced);
    let result = k.controller.broker_likely_dead(&k.image, 1);
    k.commit(result);
    k.advance(k.config.session_timeout / 2);
    k.heartbeat(1, |_| {});
    k.heartbeat(2, |_| {});
    k.heartbeat(3, |_| {});
    k.advance(k.config.session_timeout / 2 + Duration::from_millis(1));
    assert!(k.fence_expired().is_empty());
}

/// The scenario at the level of records: registration → heartbeat → expiry →
/// fencing → leaders moved inside the ISR; with the whole ISR gone the partition is
/// leaderless, and comes back with its old leader.
#[test]
fn fencing_moves_leaders_inside_the_isr_and_the_last_member_restores_it() {
    let mut k = Kit::with_brokers(&[]);
    let mut epochs = Vec::new();
    for id in 1..=3 {
        let req = BrokerRegistrationRequest {
            broker_id: id,
            cluster_id: CLUSTER.into(),
            incarnation_id: Uuid::from_u128(77 + id as u128),
            ..Default::default()
        };
        let next = k.image.offset() + 1;
        let result = k.controller.register_broker(&k.image, &req, next, k.now);
        let r = k.commit(result);
        assert_eq!((r.error_code, r.broker_epoch), (0, next));
        epochs.push(next);
    }
    // Behind their registration: fenced; caught up: unfenced.
    let r = k.heartbeat(3, |r| r.current_metadata_offset = epochs[2] - 1);
    assert!(r.is_fenced && !r.is_caught_up);
    for id in 1..=3 {
        assert!(!k.heartbeat(id, |_| {}).is_fenced);
    }
    k.create_topic_on("t", &[&[1, 2, 3]]);
    // Time in ninths of the session (written for Kafka's 9 s: one unit is a second there).
    let unit = k.config.session_timeout / 9;
    // Broker 1 (the leader) goes silent: broker 2 takes over at the next epoch.
    k.advance(unit * 5);
    k.heartbeat(2, |_| {});
    k.heartbeat(3, |_| {});
    k.advance(unit * 5);
    assert_eq!(k.fence_expired(), vec![1]);
    let p = k.partition("t", 0);
    assert_eq!(
        (p.leader, p.leader_epoch, p.isr.clone()),
        (2, 1, vec![2, 3])
    );
    // Then 3, then 2: the ISR shrinks to its last member, which stays, leaderless.
    k.heartbeat(2, |_| {});
    k.advance(unit * 5);
    k.heartbeat(2, |_| {});
    k.advance(unit * 5);
    assert_eq!(k.fence_expired(), vec![3]);
    k.advance(unit * 10);
    assert_eq!(k.fence_expired(), vec![2]);
    let p = k.partition("t", 0);
    assert_eq!((p.leader, p.leader_epoch, p.isr.clone()), (-1, 2, vec![2]));
    // Broker 3 returns: not in the ISR, so no unclean election.
    assert!(!k.heartbeat(3, |_| {}).is_fenced);
    assert_eq!(k.partition("t", 0).leader, -1);
    // Broker 2, the last in-sync replica, returns (a new incarnation): it leads again.
    let req = BrokerRegistrationRequest {
        broker_id: 2,
        cluster_id: CLUSTER.into(),
        incarnation_id: Uuid::from_u128(500),
        ..Default::default()
    };
    let next = k.image.offset() + 1;
    let result = k.controller.register_broker(&k.image, &req, next, k.now);
    assert_eq!(k.commit(result).broker_epoch, next);
    assert!(!k.heartbeat(2, |_| {}).is_fenced);
    let p = k.partition("t", 0);
    assert_eq!((p.leader, p.leader_epoch, p.isr.clone()), (2, 3, vec![2]));
}

#[test]
fn unclean_election_takes_a_live_outsider_only_when_enabled() {
    for (unclean, leader, isr) in [(false, -1, vec![1]), (true, 2, vec![2])] {
        let mut k = kit_with_broker1(BrokerControlState::Unfenced);
        // Shrink the ISR to the leader alone, then lose it.
        let shrink = vec![MetadataRecord::PartitionChange(
            rafka_protocol::messages::PartitionChangeRecord {
                topic_id: k.topic_id("t"),
                partition_id: 0,
                isr: Some(vec![1]),
                ..Default::default()
            },
        )];
        k.apply(&shrink);
        if unclean {
            k.apply(&[config_record(
                crate::image::ConfigResource::TOPIC,
                "t",
                "unclean.leader.election.enable",
                Some("true"),
            )]);
        }
        k.heartbeat(1, |r| r.want_fence = true);
        let p = k.partition("t", 0);
        assert_eq!(
            (p.leader, p.isr.clone()),
            (leader, isr),
            "unclean {unclean}"
        );
        assert_eq!(
            p.leader_recovery_state == crate::image::LeaderRecoveryState::Recovering,
            unclean
        );
    }
}
