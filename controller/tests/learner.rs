//! A broker that is not a voter follows the metadata log as a Raft learner and gets every change
//! that concerns it as a delta it can act on — the way the broker crate consumes the quorum.
//!
//! Three voters in-process over real TCP on 127.0.0.1; the "broker" is a learner node (id 4)
//! with its own listener, which registers like a broker (its listener is where the active
//! controller pushes the log) and heartbeats with the offset of its *own* image — so it is
//! unfenced only because the log reached it. A recorder keeps the image it last acted on and,
//! on each new one, records `MetadataDelta::between(old, new).local_changes(4, …)`. The test
//! then drives: a topic placed on it (it leads), its session expiring (leaderless: a follower of
//! no one, the last ISR member), heartbeats again (leader again, epoch bumped), the active
//! controller stopped (a new one; the learner keeps following it) and one more topic.

mod common;

use common::*;
use rafka_controller::image::delta::{LocalChangeKind, LocalPartitionChange, MetadataDelta};
use rafka_controller::image::NO_LEADER;
use rafka_controller::node::ControllerNode;
use rafka_protocol::messages::broker_registration_request::Listener;
use rafka_protocol::messages::{BrokerRegistrationRequest, RequestKind, ResponseKind};
use rafka_protocol::Uuid;
use rafka_storage::DiskFs;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

const BROKER: i32 = 4;
const SESSION: Duration = Duration::from_millis(800);
const HEARTBEAT_EVERY: Duration = Duration::from_millis(100);
const WAIT: Duration = Duration::from_secs(15);

type Recorded = Arc<Mutex<Vec<LocalPartitionChange>>>;

/// Waits until the recorded changes hold one for `topic`-`partition` matching `want`.
async fn wait_change(
    recorded: &Recorded,
    topic: &str,
    partition: i32,
    what: &str,
    want: impl Fn(&LocalChangeKind) -> bool,
) -> LocalChangeKind {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let found = recorded
            .lock()
            .expect("lock")
            .iter()
            .rev()
            .find(|c| c.topic == topic && c.partition == partition && want(&c.kind))
            .map(|c| c.kind.clone());
        if let Some(k) = found {
            return k;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: no such change for {topic}-{partition} within {WAIT:?}; recorded: {:?}",
            recorded.lock().expect("lock")
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_learner_broker_follows_the_log_and_gets_its_changes_as_deltas() {
    bounded(Duration::from_secs(90), "learner", async {
        let mut c = Cluster::start_with(
            3,
            Options {
                session_timeout: SESSION,
                ..Options::default()
            },
        )
        .await;
        let cluster_id = c.cluster_id(WAIT).await;

        // The learner: not in the voters, so it never initializes or campaigns.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = c.config(1);
        cfg.node_id = BROKER as u64;
        cfg.metadata_dir = dir.path().to_path_buf();
        let learner = ControllerNode::start(cfg, Arc::new(DiskFs), Some(listener))
            .await
            .expect("start the learner");
        assert!(!learner.raft().is_initialized().await.expect("raft"));

        // The recorder: the image last acted on, and the changes for broker 4 in each new one.
        let recorded: Recorded = Arc::default();
        let offset = Arc::new(AtomicI64::new(-1));
        let recorder = {
            let mut images = learner.subscribe();
            let (recorded, offset) = (recorded.clone(), offset.clone());
            tokio::spawn(async move {
                let mut acted_on = images.borrow_and_update().clone();
                while images.changed().await.is_ok() {
                    let new = images.borrow_and_update().clone();
                    let delta = MetadataDelta::between(&acted_on, &new);
                    let changes = delta.local_changes(BROKER, &acted_on, &new);
                    recorded.lock().expect("lock").extend(changes);
                    offset.store(new.offset(), Ordering::Relaxed);
                    acted_on = new;
                }
            })
        };

        // Registration at the learner's own listener: the active controller adds it as a
        // learner and the log starts reaching it.
        let mut client = c.client();
        let reg = RequestKind::BrokerRegistration(BrokerRegistrationRequest {
            broker_id: BROKER,
            cluster_id: cluster_id.clone(),
            incarnation_id: Uuid::from_u128(44),
            listeners: vec![Listener {
                name: rafka_controller::server::LEARNER_LISTENER_NAME.into(),
                host: addr.ip().to_string(),
                port: addr.port(),
                ..Default::default()
            }],
            ..Default::default()
        });
        let epoch = match client.call(REGISTRATION_V, reg, WAIT).await {
            ResponseKind::BrokerRegistration(r) => {
                assert_eq!(r.error_code, 0, "{r:?}");
                r.broker_epoch
            }
            other => panic!("{other:?}"),
        };
        // Heartbeats report the learner's own applied offset: unfenced only once it caught up.
        let hb = Heartbeats::start(
            c.voters.clone(),
            BROKER,
            epoch,
            offset.clone(),
            HEARTBEAT_EVERY,
        );
        wait_until(
            WAIT,
            "the learner's image shows it registered and unfenced",
            || {
                learner
                    .image()
                    .broker(BROKER)
                    .is_some_and(|b| !b.fenced && b.epoch == epoch)
            },
        )
        .await;
        assert_eq!(learner.image().cluster_id(), Some(cluster_id.as_str()));
        assert!(learner.quorum_info().learners.contains(&(BROKER as u64)));

        // A topic placed on it (the only broker): "you lead t-0 and t-1".
        let r = as_create_topics(
            client
                .call(CREATE_TOPICS_V, create_topic("t", 2, 1), WAIT)
                .await,
        );
        assert_eq!(r.topics[0].error_code, 0, "{r:?}");
        let mut epochs = Vec::new();
        for p in 0..2 {
            match wait_change(&recorded, "t", p, "lead", |k| {
                matches!(k, LocalChangeKind::BecameLeader { .. })
            })
            .await
            {
                LocalChangeKind::BecameLeader { leader_epoch } => epochs.push(leader_epoch),
                other => unreachable!("{other:?}"),
            }
        }

        // Its session expires: fenced, the last ISR member, leaderless — "you follow no one".
        hb.set_alive(false);
        for (p, e) in epochs.iter().enumerate() {
            let e = *e;
            wait_change(&recorded, "t", p as i32, "leaderless", |k| {
                matches!(k, LocalChangeKind::BecameFollower { leader, leader_epoch }
                    if *leader == NO_LEADER && *leader_epoch > e)
            })
            .await;
        }
        // It heartbeats again: leader again, at a newer epoch.
        hb.set_alive(true);
        for (p, e) in epochs.iter().enumerate() {
            let e = *e;
            wait_change(&recorded, "t", p as i32, "leader again", |k| {
                matches!(k, LocalChangeKind::BecameLeader { leader_epoch } if *leader_epoch > e + 1)
            })
            .await;
        }

        // The active controller goes away; a new one keeps the log flowing to the learner.
        let old_leader = c.leader(WAIT).await;
        c.stop(old_leader).await;
        let new_leader = c.leader(WAIT).await;
        assert_ne!(new_leader, old_leader);
        let r = as_create_topics(
            client
                .call(CREATE_TOPICS_V, create_topic("u", 1, 1), WAIT)
                .await,
        );
        assert_eq!(r.topics[0].error_code, 0, "{r:?}");
        wait_change(
            &recorded,
            "u",
            0,
            "lead u-0 under the new controller",
            |k| matches!(k, LocalChangeKind::BecameLeader { .. }),
        )
        .await;
        // And its image is the quorum's image.
        let want = c.leader_image().await;
        wait_until(WAIT, "the learner's image equals the leader's", || {
            *learner.image() == *want
        })
        .await;
        println!(
            "learner recorded {} local changes; followed leaders {old_leader} then {new_leader}",
            recorded.lock().expect("lock").len()
        );

        hb.stop().await;
        recorder.abort();
        learner.shutdown().await;
        c.shutdown().await;
    })
    .await;
}
