//! IncrementalAlterConfigs, AlterConfigs and config lookup cases.

use super::super::controller_config::ControllerConfig;
use super::super::testkit::*;
use super::*;
use rafka_protocol::messages::{
    alter_configs_request as acq, incremental_alter_configs_request as iacq,
};

fn op(name: &str, operation: i8, value: Option<&str>) -> iacq::AlterableConfig {
    iacq::AlterableConfig {
        name: name.into(),
        config_operation: operation,
        value: value.map(str::to_string),
        ..Default::default()
    }
}

fn resource(t: i8, name: &str, configs: Vec<iacq::AlterableConfig>) -> iacq::AlterConfigsResource {
    iacq::AlterConfigsResource {
        resource_type: t,
        resource_name: name.into(),
        configs,
        ..Default::default()
    }
}

/// Topic "t" with cleanup.policy=delete and retention.ms=1000; broker default k=v.
fn kit() -> Kit {
    let mut k = Kit::three_brokers();
    k.create_topic("t", 1, 1);
    k.apply(&[
        config_record(ConfigResource::TOPIC, "t", "cleanup.policy", Some("delete")),
        config_record(ConfigResource::TOPIC, "t", "retention.ms", Some("1000")),
        config_record(ConfigResource::BROKER, "", "k", Some("v")),
    ]);
    k
}

const T: i8 = ConfigResource::TOPIC;
const B: i8 = ConfigResource::BROKER;
const G: i8 = ConfigResource::GROUP;

#[test]
fn incremental_alter_configs_cases() {
    // (case, resource, error, records, expected (resource type, name, key, value) after)
    type Case = (
        &'static str,
        iacq::AlterConfigsResource,
        ErrorCode,
        usize,
        Option<(i8, &'static str, &'static str, Option<&'static str>)>,
    );
    let cases: Vec<Case> = vec![
        (
            "a group config, for a group that need not exist",
            resource(
                G,
                "g",
                vec![op("consumer.session.timeout.ms", SET, Some("50000"))],
            ),
            ErrorCode::None,
            1,
            Some((G, "g", "consumer.session.timeout.ms", Some("50000"))),
        ),
        (
            "a group session timeout under group.consumer.min.session.timeout.ms",
            resource(
                G,
                "g",
                vec![op("consumer.session.timeout.ms", SET, Some("44999"))],
            ),
            ErrorCode::InvalidConfig,
            0,
            None,
        ),
        (
            "a group heartbeat interval over group.consumer.max.heartbeat.interval.ms",
            resource(
                G,
                "g",
                vec![op("consumer.heartbeat.interval.ms", SET, Some("15001"))],
            ),
            ErrorCode::InvalidConfig,
            0,
            None,
        ),
        (
            "an unknown group config",
            resource(G, "g", vec![op("session.timeout.ms", SET, Some("50000"))]),
            ErrorCode::InvalidConfig,
            0,
            None,
        ),
        (
            "APPEND to a group config",
            resource(
                G,
                "g",
                vec![op("consumer.session.timeout.ms", APPEND, Some("1"))],
            ),
            ErrorCode::InvalidConfig,
            0,
            None,
        ),
        (
            "the default group",
            resource(
                G,
                "",
                vec![op("consumer.session.timeout.ms", SET, Some("50000"))],
            ),
            ErrorCode::InvalidRequest,
            0,
            None,
        ),
        (
            "DELETE of a group config it does not have",
            resource(
                G,
                "g",
                vec![op("consumer.session.timeout.ms", DELETE, None)],
            ),
            ErrorCode::None,
            0,
            None,
        ),
        (
            "segment.bytes under Kafka 4.0's 1 MiB floor",
            resource(T, "t", vec![op("segment.bytes", SET, Some("100"))]),
            ErrorCode::InvalidConfig,
            0,
            None,
        ),
        (
            "segment.index.bytes that holds no index entry",
            resource(T, "t", vec![op("segment.index.bytes", SET, Some("4"))]),
            ErrorCode::InvalidConfig,
            0,
            None,
        ),
        (
            "min.compaction.lag.ms above max.compaction.lag.ms",
            resource(
                T,
                "t",
                vec![
                    op("min.compaction.lag.ms", SET, Some("10")),
                    op("max.compaction.lag.ms", SET, Some("5")),
                ],
            ),
            ErrorCode::InvalidConfig,
            0,
            None,
        ),
        (
            "set topic",
            resource(T, "t", vec![op("retention.ms", SET, Some("5"))]),
            ErrorCode::None,
            1,
            Some((T, "t", "retention.ms", Some("5"))),
        ),
        (
            "set topic to the same value: no record",
            resource(T, "t", vec![op("retention.ms", SET, Some("1000"))]),
            ErrorCode::None,
            0,
            None,
        ),
        (
            "delete topic key",
            resource(T, "t", vec![op("retention.ms", DELETE, None)]),
            ErrorCode::None,
            1,
            Some((T, "t", "retention.ms", None)),
        ),
        (
            "append to a list",
            resource(T, "t", vec![op("cleanup.policy", APPEND, Some("compact"))]),
            ErrorCode::None,
            1,
            Some((T, "t", "cleanup.policy", Some("delete,compact"))),
        ),
        (
            "append what is there",
            resource(T, "t", vec![op("cleanup.policy", APPEND, Some("delete"))]),
            ErrorCode::None,
            0,
            None,
        ),
        (
            "subtract from a list",
            resource(T, "t", vec![op("cleanup.policy", SUBTRACT, Some("delete"))]),
            ErrorCode::None,
            1,
            Some((T, "t", "cleanup.policy", Some(""))),
        ),
        (
            "append to a number",
            resource(T, "t", vec![op("retention.ms", APPEND, Some("1"))]),
            ErrorCode::InvalidConfig,
            0,
            None,
        ),
        (
            "append a bad item",
            resource(T, "t", vec![op("cleanup.policy", APPEND, Some("shred"))]),
            ErrorCode::InvalidConfig,
            0,
            None,
        ),
        (
            "not a number",
            resource(T, "t", vec![op("retention.ms", SET, Some("1h"))]),
            ErrorCode::InvalidConfig,
            0,
            None,
        ),
        (
            "below the minimum",
            resource(T, "t", vec![op("retention.ms", SET, Some("-5"))]),
            ErrorCode::InvalidConfig,
            0,
            None,
        ),
        (
            "int overflow",
            resource(T, "t", vec![op("segment.bytes", SET, Some("4294967296"))]),
            ErrorCode::InvalidConfig,
            0,
            None,
        ),
        (
            "bad boolean",
            resource(T, "t", vec![op("preallocate", SET, Some("yes"))]),
            ErrorCode::InvalidConfig,
            0,
            None,
        ),
        (
            "ratio",
            resource(
                T,
                "t",
                vec![op("min.cleanable.dirty.ratio", SET, Some("1.5"))],
            ),
            ErrorCode::InvalidConfig,
            0,
            None,
        ),
        (
            "enum",
            resource(T, "t", vec![op("compression.type", SET, Some("brotli"))]),
            ErrorCode::InvalidConfig,
            0,
            None,
        ),
        (
            "unknown topic key",
            resource(T, "t", vec![op("no.such", SET, Some("1"))]),
            ErrorCode::InvalidConfig,
            0,
            None,
        ),
        (
            "unknown topic",
            resource(T, "nope", vec![op("retention.ms", SET, Some("5"))]),
            ErrorCode::UnknownTopicOrPartition,
            0,
            None,
        ),
        (
            "invalid topic name",
            resource(T, "bad name", vec![op("retention.ms", SET, Some("5"))]),
            ErrorCode::InvalidTopicException,
            0,
            None,
        ),
        (
            "default topic resource",
            resource(T, "", vec![op("retention.ms", SET, Some("5"))]),
            ErrorCode::InvalidRequest,
            0,
            None,
        ),
        (
            "null value for SET",
            resource(T, "t", vec![op("retention.ms", SET, None)]),
            ErrorCode::InvalidRequest,
            0,
            None,
        ),
        (
            "duplicate key",
            resource(
                T,
                "t",
                vec![
                    op("retention.ms", SET, Some("5")),
                    op("retention.ms", DELETE, None),
                ],
            ),
            ErrorCode::InvalidRequest,
            0,
            None,
        ),
        (
            "unknown operation",
            resource(T, "t", vec![op("retention.ms", 9, Some("5"))]),
            ErrorCode::InvalidRequest,
            0,
            None,
        ),
        (
            "one bad key fails the resource",
            resource(
                T,
                "t",
                vec![
                    op("retention.ms", SET, Some("5")),
                    op("preallocate", SET, Some("x")),
                ],
            ),
            ErrorCode::InvalidConfig,
            0,
            None,
        ),
        (
            "cluster default",
            resource(B, "", vec![op("num.partitions", SET, Some("3"))]),
            ErrorCode::None,
            1,
            Some((B, "", "num.partitions", Some("3"))),
        ),
        (
            "broker: same value still recorded",
            resource(B, "", vec![op("k", SET, Some("v"))]),
            ErrorCode::None,
            1,
            Some((B, "", "k", Some("v"))),
        ),
        (
            "one broker, any key",
            resource(B, "2", vec![op("some.plugin.key", SET, Some("x"))]),
            ErrorCode::None,
            1,
            Some((B, "2", "some.plugin.key", Some("x"))),
        ),
        (
            "broker typed key",
            resource(
                B,
                "2",
                vec![op("unclean.leader.election.enable", SET, Some("maybe"))],
            ),
            ErrorCode::InvalidConfig,
            0,
            None,
        ),
        (
            "broker name not a number",
            resource(B, "two", vec![op("k", SET, Some("x"))]),
            ErrorCode::InvalidRequest,
            0,
            None,
        ),
        (
            "negative broker",
            resource(B, "-1", vec![op("k", SET, Some("x"))]),
            ErrorCode::InvalidRequest,
            0,
            None,
        ),
        (
            "broker logger",
            resource(
                ConfigResource::BROKER_LOGGER,
                "1",
                vec![op("k", SET, Some("x"))],
            ),
            ErrorCode::InvalidRequest,
            0,
            None,
        ),
    ];
    for (name, res, code, n, after) in cases {
        for validate_only in [false, true] {
            let mut k = kit();
            let req = IncrementalAlterConfigsRequest {
                resources: vec![res.clone()],
                validate_only,
                ..Default::default()
            };
            let result = incremental_alter_configs(&k.image, &Default::default(), &req);
            let r = &result.response.responses[0];
            assert_eq!(
                (r.error_code, r.resource_type, r.resource_name.as_str()),
                (code.code(), res.resource_type, res.resource_name.as_str()),
                "{name}: {:?}",
                r.error_message
            );
            assert_eq!(
                result.records.len(),
                if validate_only { 0 } else { n },
                "{name}"
            );
            k.commit(result);
            if let (Some((t, rn, key, value)), false) = (after, validate_only) {
                let resource = ConfigResource {
                    resource_type: t,
                    name: rn.into(),
                };
                assert_eq!(k.image.config(&resource, key), value, "{name}");
            }
        }
    }
}

#[test]
fn a_resource_named_twice_fails_both_times() {
    let k = kit();
    let r = resource(T, "t", vec![op("retention.ms", SET, Some("5"))]);
    let req = IncrementalAlterConfigsRequest {
        resources: vec![r.clone(), r],
        ..Default::default()
    };
    let result = incremental_alter_configs(&k.image, &Default::default(), &req);
    assert!(result.records.is_empty());
    assert!(result
        .response
        .responses
        .iter()
        .all(|r| r.error_code == ErrorCode::InvalidRequest.code()));
}

#[test]
fn legacy_alter_configs_replaces_the_set() {
    let legacy = |t: i8, name: &str, configs: &[(&str, Option<&str>)]| AlterConfigsRequest {
        resources: vec![acq::AlterConfigsResource {
            resource_type: t,
            resource_name: name.into(),
            configs: configs
                .iter()
                .map(|(k, v)| acq::AlterableConfig {
                    name: k.to_string(),
                    value: v.map(str::to_string),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    // (case, request, error, topic "t" configs after)
    type Case = (
        &'static str,
        AlterConfigsRequest,
        ErrorCode,
        Vec<(&'static str, &'static str)>,
    );
    let cases: Vec<Case> = vec![
        (
            "replace",
            legacy(T, "t", &[("retention.ms", Some("7"))]),
            ErrorCode::None,
            vec![("retention.ms", "7")],
        ),
        (
            "keep one, drop one",
            legacy(T, "t", &[("retention.ms", Some("1000"))]),
            ErrorCode::None,
            vec![("retention.ms", "1000")],
        ),
        (
            "empty set clears",
            legacy(T, "t", &[]),
            ErrorCode::None,
            vec![],
        ),
        (
            "null value",
            legacy(T, "t", &[("retention.ms", None)]),
            ErrorCode::InvalidRequest,
            vec![("cleanup.policy", "delete"), ("retention.ms", "1000")],
        ),
        (
            "bad value",
            legacy(T, "t", &[("retention.ms", Some("x"))]),
            ErrorCode::InvalidConfig,
            vec![("cleanup.policy", "delete"), ("retention.ms", "1000")],
        ),
        (
            "unknown topic",
            legacy(T, "u", &[]),
            ErrorCode::UnknownTopicOrPartition,
            vec![("cleanup.policy", "delete"), ("retention.ms", "1000")],
        ),
    ];
    for (name, req, code, after) in cases {
        let mut k = kit();
        let result = alter_configs(&k.image, &Default::default(), &req);
        assert_eq!(
            result.response.responses[0].error_code,
            code.code(),
            "{name}"
        );
        k.commit(result);
        let got: Vec<(&str, &str)> = k
            .image
            .configs()
            .get(&ConfigResource::topic("t"))
            .map(|m| m.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect())
            .unwrap_or_default();
        assert_eq!(got, after, "{name}");
    }
}

#[test]
fn unclean_election_lookup_order() {
    // (case, topic value, cluster default, static, → enabled)
    let cases = [
        ("static only", None, None, true, true),
        ("nothing set", None, None, false, false),
        (
            "cluster default wins over static",
            None,
            Some("true"),
            false,
            true,
        ),
        (
            "topic wins over cluster default",
            Some("false"),
            Some("true"),
            true,
            false,
        ),
        ("topic true", Some("TRUE"), None, false, true),
        ("not a boolean is false", Some("yes"), None, true, false),
    ];
    for (name, topic, cluster, static_value, want) in cases {
        let mut k = kit();
        if let Some(v) = topic {
            k.apply(&[config_record(
                T,
                "t",
                UNCLEAN_LEADER_ELECTION_ENABLE,
                Some(v),
            )]);
        }
        if let Some(v) = cluster {
            k.apply(&[config_record(
                B,
                "",
                UNCLEAN_LEADER_ELECTION_ENABLE,
                Some(v),
            )]);
        }
        let config = ControllerConfig {
            unclean_leader_election_enable: static_value,
            ..ControllerConfig::default()
        };
        assert_eq!(
            unclean_leader_election_enabled(&k.image, config.unclean_leader_election_enable, "t"),
            want,
            "{name}"
        );
    }
}

#[test]
fn append_and_subtract_start_from_the_value_in_force() {
    let run = |k: &mut Kit, t: i8, name: &str, key: &str, operation: i8, value: &str| {
        let req = IncrementalAlterConfigsRequest {
            resources: vec![resource(t, name, vec![op(key, operation, Some(value))])],
            ..Default::default()
        };
        let result = incremental_alter_configs(&k.image, &Default::default(), &req);
        assert_eq!(result.response.responses[0].error_code, 0, "{key} {value}");
        k.commit(result);
        let resource = ConfigResource {
            resource_type: t,
            name: name.into(),
        };
        k.image.config(&resource, key).map(str::to_string)
    };
    // A topic without an override: APPEND starts from the default `delete` (Kafka's result).
    let mut k = kit();
    k.create_topic("plain", 1, 1);
    assert_eq!(
        run(&mut k, T, "plain", "cleanup.policy", APPEND, "compact").as_deref(),
        Some("delete,compact")
    );
    // The broker resource: APPEND then SUBTRACT gives back the default, never an empty list.
    for name in ["", "1"] {
        let mut k = kit();
        assert_eq!(
            run(&mut k, B, name, "log.cleanup.policy", APPEND, "compact").as_deref(),
            Some("delete,compact"),
            "broker {name:?}"
        );
        assert_eq!(
            run(&mut k, B, name, "log.cleanup.policy", SUBTRACT, "compact").as_deref(),
            Some("delete"),
            "broker {name:?}"
        );
    }
    // A cluster-wide value is the one in force for a broker and for a topic without overrides.
    let mut k = kit();
    k.create_topic("plain", 1, 1);
    k.apply(&[config_record(B, "", "log.cleanup.policy", Some("compact"))]);
    assert_eq!(
        run(&mut k, B, "1", "log.cleanup.policy", APPEND, "delete").as_deref(),
        Some("compact,delete")
    );
    assert_eq!(
        run(&mut k, T, "plain", "cleanup.policy", SUBTRACT, "delete").as_deref(),
        Some("compact")
    );
    // Kafka accepts an empty list when everything is subtracted.
    assert_eq!(
        run(&mut k, T, "plain", "cleanup.policy", SUBTRACT, "compact").as_deref(),
        Some("")
    );
}

/// A group's resulting set is checked against the controller's bounds, with the keys it
/// does not set at their defaults; the legacy API replaces the set.
#[test]
fn group_configs_follow_the_controllers_bounds() {
    let mut k = kit();
    let wide = group_defs::GroupConfigBounds {
        consumer_session_timeout_ms: (1000, 100_000),
        consumer_heartbeat_interval_ms: (100, 100_000),
        ..Default::default()
    };
    let set = |pairs: &[(&str, &str)]| IncrementalAlterConfigsRequest {
        resources: vec![resource(
            G,
            "g",
            pairs.iter().map(|(n, v)| op(n, SET, Some(v))).collect(),
        )],
        ..Default::default()
    };
    let code =
        |r: &ControllerResult<IncrementalAlterConfigsResponse>| r.response.responses[0].error_code;
    let narrow = incremental_alter_configs(
        &k.image,
        &Default::default(),
        &set(&[("consumer.session.timeout.ms", "2000")]),
    );
    assert_eq!(code(&narrow), ErrorCode::InvalidConfig.code());
    // Within the bounds, but not above the heartbeat interval's default (5 s).
    let alone = incremental_alter_configs(
        &k.image,
        &wide,
        &set(&[("consumer.session.timeout.ms", "2000")]),
    );
    let msg = alone.response.responses[0]
        .error_message
        .clone()
        .unwrap_or_default();
    assert_eq!(code(&alone), ErrorCode::InvalidConfig.code(), "{msg}");
    assert!(
        msg.contains("must be greater than consumer.heartbeat.interval.ms"),
        "{msg}"
    );
    let ok = incremental_alter_configs(
        &k.image,
        &wide,
        &set(&[
            ("consumer.session.timeout.ms", "2000"),
            ("consumer.heartbeat.interval.ms", "500"),
        ]),
    );
    assert_eq!(code(&ok), 0);
    k.commit(ok);
    // Now at 2000: a heartbeat interval of 2000 is not below it.
    let equal = incremental_alter_configs(
        &k.image,
        &wide,
        &set(&[("consumer.heartbeat.interval.ms", "2000")]),
    );
    assert_eq!(code(&equal), ErrorCode::InvalidConfig.code());
    // The legacy API replaces the set: the heartbeat override goes.
    let legacy = AlterConfigsRequest {
        resources: vec![acq::AlterConfigsResource {
            resource_type: G,
            resource_name: "g".into(),
            configs: vec![acq::AlterableConfig {
                name: "consumer.session.timeout.ms".into(),
                value: Some("6000".into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let replaced = alter_configs(&k.image, &wide, &legacy);
    assert_eq!(replaced.response.responses[0].error_code, 0);
    k.commit(replaced);
    let g = ConfigResource::group("g");
    assert_eq!(
        k.image.config(&g, "consumer.session.timeout.ms"),
        Some("6000")
    );
    assert_eq!(k.image.config(&g, "consumer.heartbeat.interval.ms"), None);
}
