//! Tables of cases for record application, the delta and the snapshot round trip.

use super::delta::{LocalChangeKind, LocalPartitionChange, MetadataDelta};
use super::*;
use rafka_protocol::messages::{
    register_broker_record as rbr, BrokerRegistrationChangeRecord, FenceBrokerRecord, NoOpRecord,
    PartitionChangeRecord, PartitionRecord, RegisterBrokerRecord, RemoveTopicRecord,
    UnfenceBrokerRecord, UnregisterBrokerRecord,
};

fn tid(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn register(id: i32, epoch: i64, rack: Option<&str>) -> MetadataRecord {
    MetadataRecord::RegisterBroker(RegisterBrokerRecord {
        broker_id: id,
        broker_epoch: epoch,
        incarnation_id: Uuid::from_u128(1000 + id as u128),
        end_points: vec![rbr::BrokerEndpoint {
            name: "PLAINTEXT".into(),
            host: "127.0.0.1".into(),
            port: 9092 + id as u16,
            ..Default::default()
        }],
        rack: rack.map(str::to_string),
        fenced: false,
        ..Default::default()
    })
}

fn topic(name: &str, id: u128) -> MetadataRecord {
    MetadataRecord::Topic(TopicRecord {
        name: name.into(),
        topic_id: tid(id),
        ..Default::default()
    })
}

fn partition(topic_id: u128, p: i32, replicas: &[i32], isr: &[i32], leader: i32) -> MetadataRecord {
    MetadataRecord::Partition(PartitionRecord {
        partition_id: p,
        topic_id: tid(topic_id),
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
        leader,
        leader_epoch: 0,
        partition_epoch: 0,
        ..Default::default()
    })
}

fn change(topic_id: u128, p: i32, f: impl FnOnce(&mut PartitionChangeRecord)) -> MetadataRecord {
    let mut r = PartitionChangeRecord {
        topic_id: tid(topic_id),
        partition_id: p,
        ..Default::default()
    };
    f(&mut r);
    MetadataRecord::PartitionChange(r)
}

fn config(t: i8, name: &str, key: &str, value: Option<&str>) -> MetadataRecord {
    MetadataRecord::Config(ConfigRecord {
        resource_type: t,
        resource_name: name.into(),
        name: key.into(),
        value: value.map(str::to_string),
        ..Default::default()
    })
}

/// Three brokers, topic "t" (id 1) with two partitions led by 1 and 2.
fn base() -> MetadataImage {
    let mut image = MetadataImage::new();
    image
        .apply_batch(&[
            MetadataRecord::ClusterId(ClusterIdRecord {
                cluster_id: "c1".into(),
                ..Default::default()
            }),
            register(1, 10, Some("a")),
            register(2, 11, Some("b")),
            register(3, 12, None),
            topic("t", 1),
            partition(1, 0, &[1, 2, 3], &[1, 2, 3], 1),
            partition(1, 1, &[2, 3, 1], &[2, 3, 1], 2),
            config(ConfigResource::TOPIC, "t", "retention.ms", Some("1000")),
        ])
        .expect("base image");
    image
}

fn reg(replicas: &[i32], isr: &[i32], leader: i32, le: i32, pe: i32) -> PartitionRegistration {
    PartitionRegistration {
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
        removing_replicas: vec![],
        adding_replicas: vec![],
        leader,
        leader_recovery_state: LeaderRecoveryState::Recovered,
        leader_epoch: le,
        partition_epoch: pe,
    }
}

#[test]
fn partition_change_merges_as_kafka() {
    type Edit = fn(&mut PartitionChangeRecord);
    // (case, change, expected registration) from replicas [1,2,3], isr [1,2,3], leader 1, epochs 5/7.
    let cases: &[(&str, Edit, PartitionRegistration)] = &[
        (
            "nothing set: only the partition epoch",
            |_| {},
            reg(&[1, 2, 3], &[1, 2, 3], 1, 5, 8),
        ),
        (
            "isr shrink keeps the leader epoch",
            |r| r.isr = Some(vec![1, 2]),
            reg(&[1, 2, 3], &[1, 2], 1, 5, 8),
        ),
        (
            "new leader bumps both",
            |r| r.leader = 2,
            reg(&[1, 2, 3], &[1, 2, 3], 2, 6, 8),
        ),
        (
            "same leader named bumps the leader epoch",
            |r| r.leader = 1,
            reg(&[1, 2, 3], &[1, 2, 3], 1, 6, 8),
        ),
        (
            "no leader (-1) bumps the leader epoch",
            |r| r.leader = -1,
            reg(&[1, 2, 3], &[1, 2, 3], -1, 6, 8),
        ),
        (
            "replicas replaced",
            |r| r.replicas = Some(vec![1, 2]),
            reg(&[1, 2], &[1, 2, 3], 1, 5, 8),
        ),
        (
            "unclean: leader and isr together",
            |r| {
                r.leader = 3;
                r.isr = Some(vec![3]);
                r.leader_recovery_state = 1;
            },
            PartitionRegistration {
                leader_recovery_state: LeaderRecoveryState::Recovering,
                ..reg(&[1, 2, 3], &[3], 3, 6, 8)
            },
        ),
    ];
    let old = reg(&[1, 2, 3], &[1, 2, 3], 1, 5, 7);
    for (name, edit, want) in cases {
        let mut r = PartitionChangeRecord::default();
        edit(&mut r);
        assert_eq!(old.merge(&r).as_ref(), Ok(want), "{name}");
    }
    let bad = PartitionChangeRecord {
        leader_recovery_state: 7,
        ..Default::default()
    };
    assert!(old.merge(&bad).is_err());
}

#[test]
fn invalid_records_change_nothing() {
    let cases: Vec<(&str, MetadataRecord)> = vec![
        (
            "fence unknown broker",
            MetadataRecord::FenceBroker(FenceBrokerRecord {
                id: 9,
                epoch: 1,
                ..Default::default()
            }),
        ),
        (
            "fence stale epoch",
            MetadataRecord::FenceBroker(FenceBrokerRecord {
                id: 1,
                epoch: 9,
                ..Default::default()
            }),
        ),
        (
            "unfence stale epoch",
            MetadataRecord::UnfenceBroker(UnfenceBrokerRecord {
                id: 2,
                epoch: 1,
                ..Default::default()
            }),
        ),
        (
            "unregister stale epoch",
            MetadataRecord::UnregisterBroker(UnregisterBrokerRecord {
                broker_id: 1,
                broker_epoch: 3,
                ..Default::default()
            }),
        ),
        (
            "registration change bad fencing value",
            MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
                broker_id: 1,
                broker_epoch: 10,
                fenced: 2,
                ..Default::default()
            }),
        ),
        (
            "registration change cannot leave controlled shutdown",
            MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
                broker_id: 1,
                broker_epoch: 10,
                in_controlled_shutdown: -1,
                ..Default::default()
            }),
        ),
        ("topic name taken", topic("t", 99)),
        ("topic id taken", topic("u", 1)),
        ("partition of unknown topic", partition(7, 0, &[1], &[1], 1)),
        ("negative partition id", partition(1, -1, &[1], &[1], 1)),
        (
            "change of unknown partition",
            change(1, 5, |r| r.leader = 2),
        ),
        ("change of unknown topic", change(8, 0, |r| r.leader = 2)),
        (
            "remove unknown topic",
            MetadataRecord::RemoveTopic(RemoveTopicRecord {
                topic_id: tid(8),
                ..Default::default()
            }),
        ),
        (
            "producer ids going back",
            MetadataRecord::ProducerIds(ProducerIdsRecord {
                next_producer_id: 0,
                ..Default::default()
            }),
        ),
        (
            "cluster id changed",
            MetadataRecord::ClusterId(ClusterIdRecord {
                cluster_id: "c2".into(),
                ..Default::default()
            }),
        ),
    ];
    for (name, record) in cases {
        let mut image = base();
        assert!(image.apply(&record).is_err(), "{name}: applied");
        assert_eq!(image, base(), "{name}: image changed");
        // The same record at the end of a batch rolls the whole batch back.
        let batch = vec![
            register(4, 20, None),
            change(1, 0, |r| r.isr = Some(vec![1, 2])),
            record,
        ];
        match image.apply_batch(&batch) {
            Err(ImageError::InBatch { index: 2, .. }) => {}
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(image, base(), "{name}: batch not rolled back");
    }
}

#[test]
fn a_failed_batch_rolls_back_topic_removal_and_configs() {
    let mut image = base();
    let batch = vec![
        MetadataRecord::RemoveTopic(RemoveTopicRecord {
            topic_id: tid(1),
            ..Default::default()
        }),
        topic("t", 2),
        config(ConfigResource::BROKER, "", "x", Some("y")),
        MetadataRecord::ClusterId(ClusterIdRecord {
            cluster_id: "other".into(),
            ..Default::default()
        }),
    ];
    assert!(image.apply_batch(&batch).is_err());
    assert_eq!(image, base());
}

#[test]
fn broker_state_changes() {
    let mut image = base();
    let brc = |fenced: i8, shutdown: i8| {
        MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
            broker_id: 2,
            broker_epoch: 11,
            fenced,
            in_controlled_shutdown: shutdown,
            ..Default::default()
        })
    };
    image.apply(&brc(1, 0)).expect("fence");
    assert!(image
        .broker(2)
        .is_some_and(|b| b.fenced && !image.is_active(2)));
    image.apply(&brc(-1, 0)).expect("unfence");
    assert!(image.is_active(2));
    image.apply(&brc(0, 1)).expect("controlled shutdown");
    assert!(image
        .broker(2)
        .is_some_and(|b| !b.fenced && b.in_controlled_shutdown));
    assert!(!image.is_active(2));
    image
        .apply(&register(2, 30, None))
        .expect("new incarnation");
    assert!(image
        .broker(2)
        .is_some_and(|b| b.epoch == 30 && !b.in_controlled_shutdown));
}

#[test]
fn remove_topic_drops_its_configs_and_name() {
    let mut image = base();
    image
        .apply(&MetadataRecord::RemoveTopic(RemoveTopicRecord {
            topic_id: tid(1),
            ..Default::default()
        }))
        .expect("remove");
    assert!(image.topic_by_name("t").is_none());
    assert!(image.configs().is_empty());
    image.apply(&topic("t", 2)).expect("the name is free again");
}

#[test]
fn offsets_never_go_backwards() {
    let mut image = base();
    image
        .apply_batch_at(5, &[MetadataRecord::NoOp(NoOpRecord::default())])
        .expect("5");
    assert_eq!(image.offset(), 5);
    assert!(matches!(
        image.apply_batch_at(5, &[]),
        Err(ImageError::OffsetNotIncreasing { .. })
    ));
    assert!(image.apply_batch_at(4, &[]).is_err());
    assert!(image.advance_offset(3).is_err());
    image.advance_offset(9).expect("9");
    assert_eq!(image.offset(), 9);
}

#[test]
fn snapshot_round_trip() {
    let mut image = base();
    image
        .apply_batch(&[
            MetadataRecord::FeatureLevel(FeatureLevelRecord {
                name: "metadata.version".into(),
                feature_level: 21,
                ..Default::default()
            }),
            change(1, 0, |r| {
                r.leader = 2;
                r.isr = Some(vec![2, 3]);
            }),
            change(1, 1, |r| {
                r.leader = 3;
                r.isr = Some(vec![3]);
                r.leader_recovery_state = 1;
            }),
            MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
                broker_id: 1,
                broker_epoch: 10,
                fenced: 1,
                in_controlled_shutdown: 1,
                ..Default::default()
            }),
            topic("u", 2),
            partition(2, 0, &[3], &[3], 3),
            config(ConfigResource::BROKER, "", "log.retention.ms", Some("5")),
            config(
                ConfigResource::BROKER,
                "2",
                "unclean.leader.election.enable",
                Some("true"),
            ),
            MetadataRecord::ProducerIds(ProducerIdsRecord {
                broker_id: 1,
                broker_epoch: 10,
                next_producer_id: 3000,
                ..Default::default()
            }),
        ])
        .expect("changes");
    image.advance_offset(42).expect("offset");
    let records = image.to_records();
    let loaded = MetadataImage::load(&records, 42).expect("load");
    assert_eq!(loaded, image);
    // Encoded and decoded too: a snapshot is bytes.
    for r in &records {
        let buf = r.encode().expect("encode");
        let back = MetadataRecord::decode(&buf).expect("decode");
        assert_eq!(&back, r);
    }
    assert_eq!(
        MetadataImage::load(&MetadataImage::new().to_records(), -1),
        Ok(MetadataImage::new())
    );
}

#[test]
fn delta_reports_what_changed() {
    let mut image = base();
    let delta = image
        .apply_batch(&[
            change(1, 0, |r| r.isr = Some(vec![1, 2])),
            topic("u", 2),
            partition(2, 0, &[3], &[3], 3),
            MetadataRecord::RemoveTopic(RemoveTopicRecord {
                topic_id: tid(1),
                ..Default::default()
            }),
            config(ConfigResource::BROKER, "1", "k", Some("v")),
        ])
        .expect("batch");
    assert_eq!(delta.record_count(), 5);
    assert_eq!(delta.created_topics(&image), vec![tid(2)]);
    assert_eq!(
        delta.removed_topics(&image),
        vec![(tid(1), "t".to_string())]
    );
    assert_eq!(delta.changed_partitions().count(), 3);
    assert!(delta
        .changed_configs()
        .contains(&ConfigResource::broker("1")));
    assert!(delta
        .changed_configs()
        .contains(&ConfigResource::topic("t")));
    assert!(delta.changed_brokers().is_empty() && !delta.producer_ids_changed());
    let noop = image
        .apply_batch(&[MetadataRecord::NoOp(NoOpRecord::default())])
        .expect("noop");
    assert!(noop.is_empty());
}

#[test]
fn local_changes_tell_a_broker_what_to_do() {
    use LocalChangeKind::*;
    let lc = |t: &str, id: u128, p: i32, kind| LocalPartitionChange {
        topic: t.into(),
        topic_id: tid(id),
        partition: p,
        kind,
    };
    // (case, batch, broker, expected changes)
    let cases: Vec<(&str, Vec<MetadataRecord>, i32, Vec<LocalPartitionChange>)> = vec![
        (
            "new topic: leader and followers",
            vec![
                topic("u", 2),
                partition(2, 0, &[3, 1], &[3, 1], 3),
                partition(2, 1, &[1, 3], &[1, 3], 1),
            ],
            1,
            vec![
                lc(
                    "u",
                    2,
                    0,
                    BecameFollower {
                        leader: 3,
                        leader_epoch: 0,
                    },
                ),
                lc("u", 2, 1, BecameLeader { leader_epoch: 0 }),
            ],
        ),
        (
            "not a replica: nothing",
            vec![topic("u", 2), partition(2, 0, &[3], &[3], 3)],
            1,
            vec![],
        ),
        (
            "leader moves to me",
            vec![change(1, 0, |r| {
                r.leader = 2;
                r.isr = Some(vec![2, 3]);
            })],
            2,
            vec![lc("t", 1, 0, BecameLeader { leader_epoch: 1 })],
        ),
        (
            "leader moves away from me",
            vec![change(1, 0, |r| {
                r.leader = 2;
                r.isr = Some(vec![2, 3]);
            })],
            1,
            vec![lc(
                "t",
                1,
                0,
                BecameFollower {
                    leader: 2,
                    leader_epoch: 1,
                },
            )],
        ),
        (
            "leaderless",
            vec![change(1, 1, |r| r.leader = -1)],
            3,
            vec![lc(
                "t",
                1,
                1,
                BecameFollower {
                    leader: -1,
                    leader_epoch: 1,
                },
            )],
        ),
        (
            "isr change: the leader hears of it at the same epoch",
            vec![change(1, 0, |r| r.isr = Some(vec![1, 2]))],
            1,
            vec![lc("t", 1, 0, BecameLeader { leader_epoch: 0 })],
        ),
        (
            "replica moved away",
            vec![change(1, 0, |r| {
                r.replicas = Some(vec![1, 2]);
                r.isr = Some(vec![1, 2]);
            })],
            3,
            vec![lc("t", 1, 0, Removed)],
        ),
        (
            "topic deleted and recreated: removals first",
            vec![
                MetadataRecord::RemoveTopic(RemoveTopicRecord {
                    topic_id: tid(1),
                    ..Default::default()
                }),
                topic("t", 3),
                partition(3, 0, &[3], &[3], 3),
            ],
            3,
            vec![
                lc("t", 1, 0, Removed),
                lc("t", 1, 1, Removed),
                lc("t", 3, 0, BecameLeader { leader_epoch: 0 }),
            ],
        ),
        (
            "created and deleted in one batch: nothing",
            vec![
                topic("u", 2),
                partition(2, 0, &[1], &[1], 1),
                MetadataRecord::RemoveTopic(RemoveTopicRecord {
                    topic_id: tid(2),
                    ..Default::default()
                }),
            ],
            1,
            vec![],
        ),
    ];
    for (name, batch, broker, want) in cases {
        let old = base();
        let mut new = base();
        let delta = new.apply_batch(&batch).expect(name);
        assert_eq!(delta.local_changes(broker, &old, &new), want, "{name}");
        assert_eq!(
            delta.local_changes_since(broker, &new),
            want,
            "{name} (from the delta)"
        );
        // The same, found by comparing the two images (a broker that skipped intermediate
        // images); the delta's other facts agree too.
        let between = MetadataDelta::between(&old, &new);
        assert_eq!(
            between.local_changes(broker, &old, &new),
            want,
            "{name} (between images)"
        );
        assert_eq!(between.changed_brokers(), delta.changed_brokers(), "{name}");
        assert_eq!(between.changed_configs(), delta.changed_configs(), "{name}");
    }
}

fn scram(name: &str, mechanism: i8, iterations: i32) -> MetadataRecord {
    MetadataRecord::UserScramCredential(rafka_protocol::messages::UserScramCredentialRecord {
        name: name.into(),
        mechanism,
        salt: vec![1, 2, 3].into(),
        stored_key: vec![4; 32].into(),
        server_key: vec![5; 32].into(),
        iterations,
        ..Default::default()
    })
}

fn acl(id: u128, name: &str, pattern: i8, op: i8) -> MetadataRecord {
    MetadataRecord::AccessControlEntry(rafka_protocol::messages::AccessControlEntryRecord {
        id: tid(id),
        resource_type: 2,
        resource_name: name.to_owned(),
        pattern_type: pattern,
        principal: "User:alice".to_owned(),
        host: "*".to_owned(),
        operation: op,
        permission_type: 3,
        ..Default::default()
    })
}

fn remove_scram(name: &str, mechanism: i8) -> MetadataRecord {
    MetadataRecord::RemoveUserScramCredential(
        rafka_protocol::messages::RemoveUserScramCredentialRecord {
            name: name.into(),
            mechanism,
            ..Default::default()
        },
    )
}

fn remove_acl(id: u128) -> MetadataRecord {
    MetadataRecord::RemoveAccessControlEntry(
        rafka_protocol::messages::RemoveAccessControlEntryRecord {
            id: tid(id),
            ..Default::default()
        },
    )
}

#[test]
fn scram_credentials_replay_snapshot_and_roll_back() {
    use rafka_security::sasl::scram::ScramMechanism::{Sha256, Sha512};
    let mut image = base();
    let delta = image
        .apply_batch(&[scram("alice", 1, 4096), scram("alice", 2, 8192)])
        .expect("applies");
    assert!(delta.changed_scram_users().contains("alice"));
    assert_eq!(
        image
            .scram_credential("alice", Sha512)
            .map(|c| c.iterations),
        Some(8192)
    );
    // An update replaces; a snapshot rebuilds the same credentials.
    image.apply(&scram("alice", 1, 5000)).expect("updates");
    let again = MetadataImage::load(&image.to_records(), image.offset()).expect("loads");
    assert_eq!(again.scram_credentials(), image.scram_credentials());
    // A removal of a credential that does not exist, or an unknown mechanism, fails the batch
    // and rolls back what came before it in the batch.
    assert!(image
        .apply_batch(&[remove_scram("alice", 1), remove_scram("bob", 1)])
        .is_err());
    assert!(image.scram_credential("alice", Sha256).is_some());
    assert!(image.apply(&scram("carol", 9, 4096)).is_err());
    image.apply(&remove_scram("alice", 1)).expect("removes");
    assert!(image.scram_credential("alice", Sha256).is_none());
    let old = image.clone();
    image.apply(&remove_scram("alice", 2)).expect("removes");
    assert!(MetadataDelta::between(&old, &image)
        .changed_scram_users()
        .contains("alice"));
}

#[test]
fn acls_are_added_removed_rolled_back_and_snapshotted() {
    let mut image = base();
    let before = image.clone();
    let delta = image
        .apply_batch(&[acl(1, "a-", 4, 3), acl(2, "t", 3, 4)])
        .expect("applies");
    assert!(delta.acls_changed());
    assert_eq!(image.acls().len(), 2);
    assert!(
        MetadataDelta::between(&before, &image).acls_changed(),
        "between sees the ACL change"
    );
    // A reused id, an unknown id, an invalid binding: refused, and a failed batch rolls back.
    for bad in [
        vec![remove_acl(2), acl(1, "x", 3, 3)],
        vec![remove_acl(1), remove_acl(9)],
        vec![remove_acl(1), acl(3, "x", 2, 3)],
        vec![remove_acl(1), acl(3, "x", 3, 1)],
        vec![remove_acl(1), acl(3, "", 3, 3)],
    ] {
        let snapshot = image.clone();
        assert!(image.apply_batch(&bad).is_err(), "{bad:?}");
        assert_eq!(image, snapshot, "{bad:?} rolled back");
    }
    let loaded = MetadataImage::load(&image.to_records(), image.offset()).expect("loads");
    assert_eq!(loaded, image);
    image.apply(&remove_acl(1)).expect("removes");
    assert_eq!(image.acls().len(), 1);
    assert!(image.acls().get(1).is_none());
    assert!(!MetadataDelta::between(&image, &image.clone()).acls_changed());
}
