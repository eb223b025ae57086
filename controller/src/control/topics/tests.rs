//! CreateTopics, DeleteTopics and CreatePartitions cases.

use super::super::heartbeats::fence_brokers;
use super::super::testkit::*;
use super::super::ActiveController;
use super::*;
use rafka_protocol::messages::{
    create_partitions_request as cpq, create_topics_request::CreatableReplicaAssignment,
    delete_topics_request as dtq,
};

fn topic(name: &str, partitions: i32, rf: i16) -> ctq::CreatableTopic {
    ctq::CreatableTopic {
        name: name.into(),
        num_partitions: partitions,
        replication_factor: rf,
        ..Default::default()
    }
}

fn assigned(name: &str, lists: &[&[i32]]) -> ctq::CreatableTopic {
    ctq::CreatableTopic {
        name: name.into(),
        num_partitions: -1,
        replication_factor: -1,
        assignments: lists
            .iter()
            .enumerate()
            .map(|(i, b)| CreatableReplicaAssignment {
                partition_index: i as i32,
                broker_ids: b.to_vec(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn with_config(mut t: ctq::CreatableTopic, key: &str, value: Option<&str>) -> ctq::CreatableTopic {
    t.configs.push(ctq::CreatableTopicConfig {
        name: key.into(),
        value: value.map(str::to_string),
        ..Default::default()
    });
    t
}

#[test]
fn validate_topic_name_cases() {
    let long = "x".repeat(249);
    let too_long = "x".repeat(250);
    let cases: &[(&str, bool)] = &[
        ("ok", true),
        ("a.b_c-D9", true),
        (&long, true),
        ("", false),
        (".", false),
        ("..", false),
        ("...", true),
        (&too_long, false),
        ("has space", false),
        ("slash/", false),
        ("ünicode", false),
    ];
    for (name, ok) in cases {
        let r = validate_topic_name(name);
        assert_eq!(r.is_ok(), *ok, "{name:?}");
        if let Err(e) = r {
            assert_eq!(e.code, ErrorCode::InvalidTopicException);
        }
    }
}

#[test]
fn create_topics_cases() {
    // Brokers 1–3 active, broker 4 fenced; topics "exists" and "a_b" exist.
    let setup = || {
        let mut k =
            Kit::with_brokers(&[(1, Some("r1")), (2, Some("r2")), (3, Some("r3")), (4, None)]);
        let records = fence_brokers(&k.image, &k.config, &[4]);
        k.apply(&records);
        k.controller.heartbeats_mut().register(4, true, k.now);
        k.create_topic("exists", 1, 1);
        k.create_topic("a_b", 1, 1);
        k
    };
    // (case, topic, error, partitions, replication factor)
    let cases: Vec<(&str, ctq::CreatableTopic, ErrorCode, i32, i16)> = vec![
        (
            "defaults: num.partitions, default.replication.factor",
            topic("d", -1, -1),
            ErrorCode::None,
            1,
            1,
        ),
        ("explicit", topic("e", 6, 3), ErrorCode::None, 6, 3),
        (
            "invalid name",
            topic("bad name", 1, 1),
            ErrorCode::InvalidTopicException,
            -1,
            -1,
        ),
        (
            "empty name",
            topic("", 1, 1),
            ErrorCode::InvalidTopicException,
            -1,
            -1,
        ),
        (
            "dot",
            topic(".", 1, 1),
            ErrorCode::InvalidTopicException,
            -1,
            -1,
        ),
        (
            "exists",
            topic("exists", 1, 1),
            ErrorCode::TopicAlreadyExists,
            -1,
            -1,
        ),
        (
            "collides with a_b",
            topic("a.b", 1, 1),
            ErrorCode::InvalidTopicException,
            -1,
            -1,
        ),
        (
            "rf beyond the unfenced brokers",
            topic("f", 1, 4),
            ErrorCode::InvalidReplicationFactor,
            -1,
            -1,
        ),
        (
            "rf 0",
            topic("f", 1, 0),
            ErrorCode::InvalidReplicationFactor,
            -1,
            -1,
        ),
        (
            "rf -2",
            topic("f", 1, -2),
            ErrorCode::InvalidReplicationFactor,
            -1,
            -1,
        ),
        (
            "0 partitions",
            topic("f", 0, 1),
            ErrorCode::InvalidPartitions,
            -1,
            -1,
        ),
        (
            "-5 partitions",
            topic("f", -5, 1),
            ErrorCode::InvalidPartitions,
            -1,
            -1,
        ),
        (
            "too many partitions",
            topic("f", 20_000, 1),
            ErrorCode::PolicyViolation,
            -1,
            -1,
        ),
        (
            "assignment",
            assigned("g", &[&[1, 2], &[2, 3]]),
            ErrorCode::None,
            2,
            2,
        ),
        (
            "assignment with a fenced replica",
            assigned("g", &[&[4, 1]]),
            ErrorCode::None,
            1,
            2,
        ),
        (
            "assignment and rf",
            ctq::CreatableTopic {
                replication_factor: 2,
                ..assigned("g", &[&[1]])
            },
            ErrorCode::InvalidRequest,
            -1,
            -1,
        ),
        (
            "assignment and count",
            ctq::CreatableTopic {
                num_partitions: 1,
                ..assigned("g", &[&[1]])
            },
            ErrorCode::InvalidRequest,
            -1,
            -1,
        ),
        (
            "empty assignment",
            assigned("g", &[&[]]),
            ErrorCode::InvalidReplicaAssignment,
            -1,
            -1,
        ),
        (
            "broker twice",
            assigned("g", &[&[1, 1]]),
            ErrorCode::InvalidReplicaAssignment,
            -1,
            -1,
        ),
        (
            "unknown broker",
            assigned("g", &[&[1, 9]]),
            ErrorCode::InvalidReplicaAssignment,
            -1,
            -1,
        ),
        (
            "uneven factors",
            assigned("g", &[&[1, 2], &[1]]),
            ErrorCode::InvalidReplicaAssignment,
            -1,
            -1,
        ),
        (
            "all fenced",
            assigned("g", &[&[4]]),
            ErrorCode::InvalidReplicaAssignment,
            -1,
            -1,
        ),
        (
            "not consecutive",
            ctq::CreatableTopic {
                assignments: vec![CreatableReplicaAssignment {
                    partition_index: 1,
                    broker_ids: vec![1],
                    ..Default::default()
                }],
                ..assigned("g", &[])
            },
            ErrorCode::InvalidReplicaAssignment,
            -1,
            -1,
        ),
        (
            "config",
            with_config(topic("h", 1, 1), "retention.ms", Some("1000")),
            ErrorCode::None,
            1,
            1,
        ),
        (
            "config not a number",
            with_config(topic("h", 1, 1), "retention.ms", Some("soon")),
            ErrorCode::InvalidConfig,
            -1,
            -1,
        ),
        (
            "unknown config",
            with_config(topic("h", 1, 1), "no.such.key", Some("1")),
            ErrorCode::InvalidConfig,
            -1,
            -1,
        ),
        (
            "null config",
            with_config(topic("h", 1, 1), "retention.ms", None),
            ErrorCode::InvalidConfig,
            -1,
            -1,
        ),
    ];
    for (name, t, code, partitions, rf) in cases {
        for validate_only in [false, true] {
            let mut k = setup();
            let before = k.image.clone();
            let req = CreateTopicsRequest {
                topics: vec![t.clone()],
                validate_only,
                ..Default::default()
            };
            let result = create_topics(
                &k.image,
                &k.config,
                &mut StripedReplicaPlacer::new(1),
                &req,
                &mut id_source(&mut 0),
            );
            let r = &result.response.topics[0];
            assert_eq!(r.error_code, code.code(), "{name}: {:?}", r.error_message);
            assert_eq!(
                (r.num_partitions, r.replication_factor),
                (partitions, rf),
                "{name}"
            );
            if code != ErrorCode::None || validate_only {
                assert!(result.records.is_empty(), "{name}: records");
                continue;
            }
            assert!(r.error_message.is_none() && !r.topic_id.is_zero(), "{name}");
            let id = r.topic_id;
            k.commit(result);
            assert_eq!(k.image.topics().len(), before.topics().len() + 1);
            let created = k.image.topic(&id).expect("created");
            assert_eq!(created.partitions.len() as i32, partitions, "{name}");
            for p in created.partitions.values() {
                assert_eq!(p.replicas.len() as i16, rf, "{name}");
                assert_eq!(p.leader, p.isr[0], "{name}");
                assert!(
                    p.isr.iter().all(|b| *b != 4),
                    "{name}: fenced broker in the ISR"
                );
            }
            if name == "config" {
                assert_eq!(
                    k.image
                        .config(&crate::image::ConfigResource::topic("h"), "retention.ms"),
                    Some("1000")
                );
            }
        }
    }
}

#[test]
fn one_request_several_topics() {
    let mut k = Kit::three_brokers();
    let req = CreateTopicsRequest {
        topics: vec![
            topic("good", 2, 2),
            topic("bad!", 1, 1),
            topic("dup", 1, 1),
            topic("dup", 1, 1),
            topic("x.y", 1, 1),
            topic("x_y", 1, 1),
        ],
        ..Default::default()
    };
    let response = k.create_topics(&req);
    let codes: Vec<i16> = response.topics.iter().map(|t| t.error_code).collect();
    assert_eq!(codes, vec![0, 17, 42, 42, 0, 17]);
    assert!(k.image.topic_by_name("good").is_some() && k.image.topic_by_name("x.y").is_some());
    assert_eq!(k.image.topics().len(), 2);
}

#[test]
fn delete_topics_cases() {
    let setup = || {
        let mut k = Kit::three_brokers();
        k.create_topic("a", 1, 1);
        k.create_topic("b", 1, 1);
        k
    };
    let by_id = |id: Uuid| dtq::DeleteTopicState {
        name: None,
        topic_id: id,
        ..Default::default()
    };
    let by_name = |n: &str| dtq::DeleteTopicState {
        name: Some(n.into()),
        topic_id: Uuid::ZERO,
        ..Default::default()
    };
    // (case, request from the kit, errors per entry, topics left)
    type Build = Box<dyn Fn(&Kit) -> DeleteTopicsRequest>;
    let cases: Vec<(&str, Build, Vec<ErrorCode>, usize)> = vec![
        (
            "by name (v1-5)",
            Box::new(|_| DeleteTopicsRequest {
                topic_names: vec!["a".into()],
                ..Default::default()
            }),
            vec![ErrorCode::None],
            1,
        ),
        (
            "by name (v6)",
            Box::new(move |_| DeleteTopicsRequest {
                topics: vec![by_name("a")],
                ..Default::default()
            }),
            vec![ErrorCode::None],
            1,
        ),
        (
            "by id",
            Box::new(move |k| DeleteTopicsRequest {
                topics: vec![by_id(k.topic_id("b"))],
                ..Default::default()
            }),
            vec![ErrorCode::None],
            1,
        ),
        (
            "unknown name",
            Box::new(|_| DeleteTopicsRequest {
                topic_names: vec!["z".into()],
                ..Default::default()
            }),
            vec![ErrorCode::UnknownTopicOrPartition],
            2,
        ),
        (
            "unknown id",
            Box::new(move |_| DeleteTopicsRequest {
                topics: vec![by_id(Uuid::from_u128(3))],
                ..Default::default()
            }),
            vec![ErrorCode::UnknownTopicId],
            2,
        ),
        (
            "neither",
            Box::new(move |_| DeleteTopicsRequest {
                topics: vec![by_id(Uuid::ZERO)],
                ..Default::default()
            }),
            vec![ErrorCode::InvalidRequest],
            2,
        ),
        (
            "both name and id",
            Box::new(|k| DeleteTopicsRequest {
                topics: vec![dtq::DeleteTopicState {
                    name: Some("a".into()),
                    topic_id: k.topic_id("a"),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            vec![ErrorCode::InvalidRequest],
            2,
        ),
        (
            "duplicate name",
            Box::new(|_| DeleteTopicsRequest {
                topic_names: vec!["a".into(), "a".into()],
                ..Default::default()
            }),
            vec![ErrorCode::InvalidRequest, ErrorCode::InvalidRequest],
            2,
        ),
        (
            "name and id of one topic",
            Box::new(move |k| DeleteTopicsRequest {
                topic_names: vec!["a".into()],
                topics: vec![by_id(k.topic_id("a"))],
                ..Default::default()
            }),
            vec![ErrorCode::InvalidRequest, ErrorCode::InvalidRequest],
            2,
        ),
        (
            "two topics, one unknown",
            Box::new(|_| DeleteTopicsRequest {
                topic_names: vec!["a".into(), "q".into(), "b".into()],
                ..Default::default()
            }),
            vec![
                ErrorCode::None,
                ErrorCode::UnknownTopicOrPartition,
                ErrorCode::None,
            ],
            0,
        ),
    ];
    for (name, build, codes, left) in cases {
        let mut k = setup();
        let req = build(&k);
        let result = delete_topics(&k.image, &req);
        let got: Vec<i16> = result
            .response
            .responses
            .iter()
            .map(|r| r.error_code)
            .collect();
        assert_eq!(
            got,
            codes.iter().map(|c| c.code()).collect::<Vec<_>>(),
            "{name}"
        );
        assert_eq!(
            result.records.len(),
            codes.iter().filter(|c| **c == ErrorCode::None).count(),
            "{name}"
        );
        for r in result
            .response
            .responses
            .iter()
            .filter(|r| r.error_code == 0)
        {
            assert!(r.name.is_some() && !r.topic_id.is_zero(), "{name}: {r:?}");
        }
        k.commit(result);
        assert_eq!(k.image.topics().len(), left, "{name}");
    }
}

#[test]
fn create_partitions_cases() {
    let cp =
        |name: &str, count: i32, assignments: Option<Vec<Vec<i32>>>| cpq::CreatePartitionsTopic {
            name: name.into(),
            count,
            assignments: assignments.map(|a| {
                a.into_iter()
                    .map(|b| cpq::CreatePartitionsAssignment {
                        broker_ids: b,
                        ..Default::default()
                    })
                    .collect()
            }),
            ..Default::default()
        };
    // "t" has 2 partitions of 2 replicas. (case, topic, error, partitions after)
    let cases = vec![
        ("grow", cp("t", 5, None), ErrorCode::None, 5),
        (
            "grow with assignments",
            cp("t", 3, Some(vec![vec![3, 1]])),
            ErrorCode::None,
            3,
        ),
        (
            "same count",
            cp("t", 2, None),
            ErrorCode::InvalidPartitions,
            2,
        ),
        ("shrink", cp("t", 1, None), ErrorCode::InvalidPartitions, 2),
        (
            "unknown topic",
            cp("u", 3, None),
            ErrorCode::UnknownTopicOrPartition,
            2,
        ),
        (
            "too few assignments",
            cp("t", 4, Some(vec![vec![1, 2]])),
            ErrorCode::InvalidReplicaAssignment,
            2,
        ),
        (
            "wrong factor",
            cp("t", 3, Some(vec![vec![1]])),
            ErrorCode::InvalidReplicaAssignment,
            2,
        ),
        (
            "unknown broker",
            cp("t", 3, Some(vec![vec![1, 8]])),
            ErrorCode::InvalidReplicaAssignment,
            2,
        ),
        (
            "too many",
            cp("t", 50_000, None),
            ErrorCode::PolicyViolation,
            2,
        ),
    ];
    for (name, t, code, after) in cases {
        for validate_only in [false, true] {
            let mut k = Kit::three_brokers();
            k.create_topic("t", 2, 2);
            let req = CreatePartitionsRequest {
                topics: vec![t.clone()],
                validate_only,
                ..Default::default()
            };
            let result = create_partitions(&k.image, &mut StripedReplicaPlacer::new(3), &req);
            assert_eq!(result.response.results[0].error_code, code.code(), "{name}");
            assert_eq!(
                result.records.is_empty(),
                code != ErrorCode::None || validate_only,
                "{name}"
            );
            k.commit(result);
            let want = if validate_only { 2 } else { after };
            assert_eq!(
                k.image.topic_by_name("t").map(|t| t.partitions.len()),
                Some(want),
                "{name}"
            );
        }
    }
    let mut k = Kit::three_brokers();
    k.create_topic("t", 1, 1);
    let req = CreatePartitionsRequest {
        topics: vec![cp("t", 2, None), cp("t", 3, None)],
        ..Default::default()
    };
    let result = create_partitions(&k.image, &mut StripedReplicaPlacer::new(3), &req);
    assert!(result
        .response
        .results
        .iter()
        .all(|r| r.error_code == ErrorCode::InvalidRequest.code()));
    assert!(result.records.is_empty());
}

#[test]
fn reserved_and_internal_topics() {
    let mut k = Kit::three_brokers();
    // Nobody creates the metadata log, validate_only or not.
    for validate_only in [false, true] {
        let req = CreateTopicsRequest {
            topics: vec![topic(internal::CLUSTER_METADATA_TOPIC_NAME, 1, 1)],
            validate_only,
            ..Default::default()
        };
        let result = create_topics(
            &k.image,
            &k.config,
            &mut StripedReplicaPlacer::new(7),
            &req,
            &mut || 7,
        );
        let t = &result.response.topics[0];
        assert_eq!(t.error_code, ErrorCode::InvalidRequest.code());
        assert_eq!(
            t.error_message.as_deref(),
            Some("Creation of internal topic __cluster_metadata is prohibited.")
        );
        assert!(result.records.is_empty());
    }
    // The group coordinator creates __consumer_offsets through the controller.
    let offsets = k.create_topic(internal::GROUP_METADATA_TOPIC_NAME, 3, 1);
    // Nobody deletes it, by name or by id.
    for req in [
        DeleteTopicsRequest {
            topic_names: vec![internal::GROUP_METADATA_TOPIC_NAME.into()],
            ..Default::default()
        },
        DeleteTopicsRequest {
            topics: vec![dtq::DeleteTopicState {
                name: None,
                topic_id: offsets,
                ..Default::default()
            }],
            ..Default::default()
        },
    ] {
        let result = delete_topics(&k.image, &req);
        assert_eq!(
            result.response.responses[0].error_code,
            ErrorCode::InvalidTopicException.code()
        );
        assert!(result.records.is_empty());
    }
    // Nor deletes the metadata log, which is no topic, by name or by its reserved id.
    let result = delete_topics(
        &k.image,
        &DeleteTopicsRequest {
            topics: vec![
                dtq::DeleteTopicState {
                    name: Some(internal::CLUSTER_METADATA_TOPIC_NAME.into()),
                    topic_id: Uuid::ZERO,
                    ..Default::default()
                },
                dtq::DeleteTopicState {
                    name: None,
                    topic_id: internal::CLUSTER_METADATA_TOPIC_ID,
                    ..Default::default()
                },
            ],
            ..Default::default()
        },
    );
    let codes: Vec<i16> = result
        .response
        .responses
        .iter()
        .map(|r| r.error_code)
        .collect();
    assert_eq!(codes, vec![ErrorCode::InvalidRequest.code(); 2]);
    // Nor grows the metadata log.
    let result = create_partitions(
        &k.image,
        &mut StripedReplicaPlacer::new(7),
        &CreatePartitionsRequest {
            topics: vec![cpq::CreatePartitionsTopic {
                name: internal::CLUSTER_METADATA_TOPIC_NAME.into(),
                count: 2,
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    assert_eq!(
        result.response.results[0].error_code,
        ErrorCode::InvalidRequest.code()
    );
    assert!(result.records.is_empty());
    assert!(k.image.topic(&offsets).is_some());
}

/// `delete.topic.enable=false`: every entry of every version is refused with the request's
/// one error, nothing is written, and the topics stay; with it true the same request deletes.
#[test]
fn deletion_disabled_refuses_every_entry_and_writes_nothing() {
    let mut k = Kit::three_brokers();
    let a = k.create_topic("a", 1, 1);
    k.create_topic("b", 1, 1);
    let off = ActiveController::new(
        ControllerConfig {
            delete_topic_enable: false,
            ..k.config.clone()
        },
        &k.image,
        k.now,
        1,
    );
    let by_names = DeleteTopicsRequest {
        topic_names: vec!["a".into(), "missing".into()],
        ..Default::default()
    };
    let by_id = DeleteTopicsRequest {
        topics: vec![
            dtq::DeleteTopicState {
                name: None,
                topic_id: a,
                ..Default::default()
            },
            dtq::DeleteTopicState {
                name: Some("b".into()),
                topic_id: Uuid::ZERO,
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    for (version, req, code) in [
        (1, &by_names, ErrorCode::InvalidRequest),
        (2, &by_names, ErrorCode::InvalidRequest),
        (3, &by_names, ErrorCode::TopicDeletionDisabled),
        (5, &by_names, ErrorCode::TopicDeletionDisabled),
        (6, &by_id, ErrorCode::TopicDeletionDisabled),
    ] {
        let result = off.delete_topics(&k.image, req, version);
        assert!(result.records.is_empty(), "v{version}: nothing written");
        let got: Vec<(Option<String>, Uuid, i16)> = result
            .response
            .responses
            .iter()
            .map(|r| (r.name.clone(), r.topic_id, r.error_code))
            .collect();
        let want: Vec<(Option<String>, Uuid, i16)> = req
            .topic_names
            .iter()
            .map(|n| (Some(n.clone()), Uuid::ZERO, code.code()))
            .chain(
                req.topics
                    .iter()
                    .map(|t| (t.name.clone(), t.topic_id, code.code())),
            )
            .collect();
        assert_eq!(got, want, "v{version}");
    }
    assert!(k.image.topic_by_name("a").is_some() && k.image.topic_by_name("b").is_some());
    // The same request with deletion enabled (the kit's controller, the default) deletes.
    let result = k.controller.delete_topics(&k.image, &by_id, 6);
    assert_eq!(result.records.len(), 2);
    k.commit(result);
    assert!(k.image.topic_by_name("a").is_none() && k.image.topic_by_name("b").is_none());
}
