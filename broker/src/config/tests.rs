//! Tests of the configuration: Kafka-style files, validation messages, precedence and
//! DescribeConfigs listings.

use std::collections::BTreeMap;
use std::path::Path;

use super::*;

/// A KRaft combined-mode file in the shape of Kafka's own `config/kraft/server.properties`
/// (written for this test: section banners, commented-out keys, wildcard listeners with
/// explicit advertised listeners, a protocol map listing SSL and SASL names, thread counts).
const KRAFT_COMBINED: &str = r#"
############################# Server Basics #############################

# This node is both a broker and a controller
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:9093

############################# Socket Server Settings #############################

#   FORMAT:
#     listeners = listener_name://host_name:port
listeners=PLAINTEXT://:9092,CONTROLLER://:9093
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600

############################# Log Basics #############################

log.dirs=/tmp/rafka-test-combined-logs
num.partitions=1
num.recovery.threads.per.data.dir=1

############################# Internal Topic Settings  #############################
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

############################# Log Flush Policy #############################
#log.flush.interval.messages=10000
#log.flush.interval.ms=1000

############################# Log Retention Policy #############################
log.retention.hours=168
#log.retention.bytes=1073741824
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
"#;

/// A Kafka 3.x ZooKeeper-mode file (`config/server.properties` shape): no process.roles.
const ZOOKEEPER_MODE: &str = "broker.id=0\n\
    num.network.threads=3\n\
    log.dirs=/tmp/kafka-logs\n\
    zookeeper.connect=localhost:2181\n\
    zookeeper.connection.timeout.ms=18000\n\
    group.initial.rebalance.delay.ms=0\n";

fn props(text: &str) -> BTreeMap<String, String> {
    let mut w = Vec::new();
    parse_properties(text, "test.properties", &mut w).expect("valid properties")
}

fn with(base: &str, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut p = props(base);
    for (k, v) in extra {
        p.insert(k.to_string(), v.to_string());
    }
    p
}

fn single(extra: &[(&str, &str)]) -> Result<KafkaConfig, ConfigError> {
    let mut p = single_node_props();
    for (k, v) in extra {
        p.insert(k.to_string(), v.to_string());
    }
    KafkaConfig::from_props(p)
}

fn ok(p: BTreeMap<String, String>) -> KafkaConfig {
    match KafkaConfig::from_props(p) {
        Ok(c) => c,
        Err(e) => panic!("expected a valid configuration, got: {e}"),
    }
}

fn err(p: BTreeMap<String, String>) -> ConfigError {
    match KafkaConfig::from_props(p) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn find<'a>(list: &'a [DescribedConfig], name: &str) -> &'a DescribedConfig {
    list.iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("{name} is listed"))
}

#[test]
fn config_parses_a_kraft_combined_file() {
    let c = ok(props(KRAFT_COMBINED));
    assert!(c.warnings().is_empty(), "no warnings: {:?}", c.warnings());
    assert_eq!(c.node_id(), 1);
    assert!(c.process_roles().is_combined());
    assert_eq!(
        c.quorum_voters(),
        &[Voter {
            id: 1,
            host: "localhost".into(),
            port: 9093
        }]
    );
    assert_eq!(c.listeners().len(), 2);
    assert_eq!(c.broker_listeners()[0].socket_addr_string(), "0.0.0.0:9092");
    assert_eq!(c.controller_listeners()[0].port, 9093);
    assert_eq!(c.advertised_listeners().len(), 1);
    assert_eq!(
        c.advertised_listeners()[0].to_string(),
        "PLAINTEXT://localhost:9092"
    );
    assert_eq!(
        c.advertised_controller_listeners()[0].to_string(),
        "CONTROLLER://localhost:9093"
    );
    assert_eq!(c.controller_listener_names(), &["CONTROLLER".to_string()]);
    assert_eq!(c.inter_broker_listener_name(), "PLAINTEXT");
    assert_eq!(
        c.log_dirs(),
        &[PathBuf::from("/tmp/rafka-test-combined-logs")]
    );
    assert_eq!(
        c.metadata_log_dir(),
        Path::new("/tmp/rafka-test-combined-logs")
    );
    assert_eq!(c.socket_request_max_bytes(), 104_857_600);
    assert_eq!(c.offsets_topic_replication_factor(), 1);
    assert_eq!(c.transaction_state_log_min_isr(), 1);
    assert_eq!(c.log_retention_ms(), 168 * 3_600_000);
    assert_eq!(c.broker_session_timeout_ms(), 1500);
    assert_eq!(c.broker_heartbeat_interval_ms(), 250);
    assert_eq!(c.message_max_bytes(), 1_048_588);
    let lc = c.log_config();
    assert_eq!(lc, rafka_storage::LogConfig::default());
}

#[test]
fn config_parses_broker_only_and_controller_only_files() {
    let broker = ok(props(
        "process.roles=broker\nnode.id=2\ncontroller.quorum.bootstrap.servers=localhost:9093\n\
         listeners=PLAINTEXT://localhost:9092\nadvertised.listeners=PLAINTEXT://localhost:9092\n\
         controller.listener.names=CONTROLLER\n\
         listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n\
         log.dirs=/tmp/rafka-b1,/tmp/rafka-b2\n",
    ));
    assert!(broker.is_broker() && !broker.is_controller());
    assert_eq!(
        broker.quorum_bootstrap_servers()[0].to_string(),
        "localhost:9093"
    );
    assert_eq!(broker.log_dirs().len(), 2);
    assert_eq!(broker.metadata_log_dir(), Path::new("/tmp/rafka-b1"));
    assert!(broker.controller_listeners().is_empty());

    let controller = ok(props(
        "process.roles=controller\nnode.id=1\ncontroller.quorum.voters=1@localhost:9093\n\
         listeners=CONTROLLER://:9093\ncontroller.listener.names=CONTROLLER\n\
         log.dirs=/tmp/rafka-c\nmetadata.log.dir=/tmp/rafka-meta\n",
    ));
    assert!(controller.is_controller() && !controller.is_broker());
    assert_eq!(controller.metadata_log_dir(), Path::new("/tmp/rafka-meta"));
    // The controller listener got PLAINTEXT although the map does not name it (Kafka's
    // KRaft default), and its empty host is advertised as this machine's name.
    assert_eq!(
        controller.listener_security_protocol_map()["CONTROLLER"],
        SecurityProtocol::Plaintext
    );
    assert_eq!(
        controller.advertised_controller_listeners()[0].host,
        local_hostname()
    );
}

#[test]
fn config_refuses_zookeeper_mode_with_one_line() {
    let e = err(props(ZOOKEEPER_MODE));
    assert_eq!(e.key(), Some("process.roles"));
    let line = e.to_string();
    assert!(!line.contains('\n'));
    assert!(line.contains("process.roles"), "{line}");
}

/// Kafka's own example, when the environment points at it (e.g. a Kafka checkout's
/// `config/kraft/server.properties`); skipped otherwise.
#[test]
fn config_parses_kafka_example_from_env() {
    let Ok(path) = std::env::var("RAFKA_KAFKA_EXAMPLE_PROPERTIES") else {
        return;
    };
    let c = KafkaConfig::load(Some(Path::new(&path)), &[]).expect("Kafka's example is accepted");
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
}

#[test]
fn config_default_single_node() {
    let c = KafkaConfig::default_single_node();
    assert!(c.process_roles().is_combined());
    assert_eq!(c.node_id(), 1);
    assert_eq!(
        c.broker_listeners()[0].to_string(),
        "PLAINTEXT://localhost:9092"
    );
    assert_eq!(
        c.controller_listeners()[0].to_string(),
        "CONTROLLER://localhost:9093"
    );
    assert_eq!(
        c.advertised_listeners()[0].to_string(),
        "PLAINTEXT://localhost:9092"
    );
    assert_eq!(c.quorum_voters()[0].to_string(), "1@localhost:9093");
    assert_eq!(c.log_dirs(), &[PathBuf::from("./rafka-data")]);
    assert_eq!(c.metadata_log_dir(), Path::new("./rafka-data"));
    assert_eq!(c.offsets_topic_replication_factor(), 1);
    assert_eq!(c.transaction_state_log_replication_factor(), 1);
    assert_eq!(c.transaction_state_log_min_isr(), 1);
    assert_eq!(c.min_insync_replicas(), 1);
    assert_eq!(c.cluster_id(), None);
    assert!(c.warnings().is_empty());
    // Everything else is Kafka's default.
    assert_eq!(c.num_partitions(), 1);
    assert!(c.auto_create_topics_enable());
    assert_eq!(c.connections_max_idle_ms(), 600_000);
    assert_eq!(c.offsets_topic_num_partitions(), 50);
    assert_eq!(c.group_initial_rebalance_delay_ms(), 3000);
    assert_eq!(c.replica_lag_time_max_ms(), 30_000);
}

#[test]
fn config_every_typed_key_rejects_garbage_naming_key_and_value() {
    for def in BROKER_CONFIGS {
        let bad = match def.ty {
            ConfigType::Int
            | ConfigType::Long
            | ConfigType::Short
            | ConfigType::Double
            | ConfigType::Boolean => "not-a-value",
            _ => continue,
        };
        let e = single(&[(def.name, bad)]).expect_err(def.name);
        assert_eq!(e.key(), Some(def.name), "{e}");
        let line = e.to_string();
        assert!(line.contains(def.name) && line.contains(bad), "{line}");
        assert!(!line.contains('\n'));
        assert!(
            line.contains(&format!("of type {}", def.ty.kafka_name()))
                || def.ty == ConfigType::Boolean,
            "{line}"
        );
    }
}

#[test]
fn config_every_range_is_checked_naming_the_key() {
    let mut checked = 0;
    for def in BROKER_CONFIGS {
        let bad = match def.validator {
            Validator::AtLeast(min) if min > i64::from(i32::MIN) => (min - 1).to_string(),
            Validator::Between(lo, _) => (lo - 1).to_string(),
            Validator::BetweenF(_, hi) => (hi + 1.0).to_string(),
            Validator::OneOf(_) | Validator::ListOf(_) => "no-such-choice".to_string(),
            _ => continue,
        };
        let e = single(&[(def.name, &bad)]).expect_err(def.name);
        assert_eq!(e.key(), Some(def.name), "{e}");
        assert!(e.to_string().contains(&bad), "{e}");
        checked += 1;
    }
    assert!(checked > 50, "{checked}");
    let e = single(&[("num.partitions", "0")]).expect_err("0 partitions");
    assert_eq!(
        e.to_string(),
        "Invalid value 0 for configuration num.partitions: Value must be at least 1"
    );
    let e = single(&[
        ("int.overflow", "1"),
        ("socket.request.max.bytes", "4294967296"),
    ])
    .expect_err("overflow");
    assert_eq!(e.key(), Some("socket.request.max.bytes"));
}

#[test]
fn config_cross_key_errors_name_the_key() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("node.id", "-1")], "node.id"),
        (&[("node.id", "2")], "controller.quorum.voters"),
        (&[("broker.id", "5")], "node.id"),
        (&[("process.roles", "")], "process.roles"),
        (&[("process.roles", "broker,broker")], "process.roles"),
        (&[("process.roles", "zookeeper")], "process.roles"),
        (
            &[("controller.quorum.voters", "")],
            "controller.quorum.voters",
        ),
        (
            &[("controller.quorum.voters", "1@localhost")],
            "controller.quorum.voters",
        ),
        (&[("process.roles", "broker")], "controller.quorum.voters"),
        (&[("listeners", "")], "listeners"),
        (
            &[("listeners", "PLAINTEXT://localhost:9092")],
            "controller.listener.names",
        ),
        (
            &[(
                "listeners",
                "PLAINTEXT://localhost:9092,CONTROLLER://localhost:9092",
            )],
            "listeners",
        ),
        (
            &[(
                "listeners",
                "PLAINTEXT://localhost:9092,EXTERNAL://localhost:9093",
            )],
            "listeners",
        ),
        (
            &[("listener.security.protocol.map", "PLAINTEXT:TLS")],
            "listener.security.protocol.map",
        ),
        (
            &[("controller.listener.names", "")],
            "controller.listener.names",
        ),
        (
            &[("advertised.listeners", "PLAINTEXT://0.0.0.0:9092")],
            "advertised.listeners",
        ),
        (
            &[
                ("advertised.listeners", "OTHER://localhost:9092"),
                (
                    "listener.security.protocol.map",
                    "OTHER:PLAINTEXT,PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                ),
            ],
            "inter.broker.listener.name",
        ),
        (
            &[("inter.broker.listener.name", "NOPE")],
            "inter.broker.listener.name",
        ),
        (
            &[("security.inter.broker.protocol", "PLAINTEXT")],
            "inter.broker.listener.name",
        ),
        (&[("log.dirs", "")], "log.dirs"),
        (&[("log.dirs", "/a,,/b")], "log.dirs"),
        (&[("log.dirs", "/a,/a")], "log.dirs"),
        (&[("log.retention.ms", "0")], "log.retention.ms"),
        (&[("log.roll.ms", "0")], "log.roll.ms"),
        (
            &[("replica.fetch.wait.max.ms", "40000")],
            "replica.socket.timeout.ms",
        ),
        (
            &[
                ("replica.fetch.wait.max.ms", "29000"),
                ("replica.lag.time.max.ms", "1000"),
            ],
            "replica.fetch.wait.max.ms",
        ),
        (
            &[("log.cleaner.dedupe.buffer.size", "1048576")],
            "log.cleaner.dedupe.buffer.size",
        ),
        (&[("cluster.id", "not-a-cluster-id")], "cluster.id"),
        (
            &[(
                "authorizer.class.name",
                "kafka.security.authorizer.AclAuthorizer",
            )],
            "authorizer.class.name",
        ),
        (
            &[("remote.log.storage.system.enable", "true")],
            "remote.log.storage.system.enable",
        ),
    ];
    for (extra, key) in cases {
        let e = single(extra).expect_err(key);
        assert_eq!(e.key(), Some(*key), "{extra:?}: {e}");
        let line = e.to_string();
        assert!(line.contains(key), "{line}");
        assert!(!line.contains('\n'), "{line}");
    }
    // A valid cluster id is accepted.
    let c = single(&[("cluster.id", "MkU3OEVBNTcwNTJENDM2Qk")]).expect("valid id");
    assert_eq!(c.cluster_id().as_deref(), Some("MkU3OEVBNTcwNTJENDM2Qk"));
    // A value with a newline is escaped: the error stays on one line.
    let e = single(&[("num.partitions", "1\n2")]).expect_err("newline");
    assert!(!e.to_string().contains('\n'));
}

#[test]
fn config_ssl_listeners_and_keys_are_accepted() {
    let c = single(&[
        (
            "listeners",
            "SSL://localhost:9092,CONTROLLER://localhost:9093",
        ),
        ("listener.security.protocol.map", "SSL:SSL,CONTROLLER:SSL"),
        ("advertised.listeners", "SSL://localhost:9092"),
        ("inter.broker.listener.name", "SSL"),
        ("ssl.keystore.type", "PEM"),
        ("ssl.client.auth", "required"),
        ("listener.name.ssl.ssl.client.auth", "requested"),
    ])
    .expect("SSL listeners are served");
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    assert_eq!(
        c.listener_value("SSL", "ssl.client.auth").as_deref(),
        Some("requested")
    );
    assert_eq!(
        c.listener_value("CONTROLLER", "ssl.client.auth").as_deref(),
        Some("required")
    );
    assert_eq!(
        c.listener_value("SSL", "ssl.keystore.type").as_deref(),
        Some("PEM")
    );
    assert_eq!(
        c.listener_value("SSL", "ssl.truststore.type").as_deref(),
        Some("JKS")
    );
    // A per-listener value is checked as the key itself.
    let e = single(&[("listener.name.ssl.ssl.client.auth", "maybe")]).expect_err("bad value");
    assert_eq!(e.key(), Some("listener.name.ssl.ssl.client.auth"), "{e}");
    assert!(single(&[("ssl.client.auth", "maybe")]).is_err());
    // SASL_SSL (and SASL_PLAINTEXT) listeners are served too, on any role.
    single(&[
        (
            "listeners",
            "SASL_SSL://localhost:9092,CONTROLLER://localhost:9093",
        ),
        (
            "listener.security.protocol.map",
            "SASL_SSL:SASL_SSL,CONTROLLER:SASL_PLAINTEXT",
        ),
        ("advertised.listeners", "SASL_SSL://localhost:9092"),
        ("inter.broker.listener.name", "SASL_SSL"),
    ])
    .expect("SASL listeners are served");
}

#[test]
fn config_retention_precedence_ms_over_minutes_over_hours() {
    let c = single(&[]).expect("valid");
    assert_eq!(c.log_retention_ms(), 604_800_000);
    let c = single(&[("log.retention.hours", "1")]).expect("valid");
    assert_eq!(c.log_retention_ms(), 3_600_000);
    let c = single(&[("log.retention.hours", "1"), ("log.retention.minutes", "2")]).expect("valid");
    assert_eq!(c.log_retention_ms(), 120_000);
    let c = single(&[
        ("log.retention.hours", "1"),
        ("log.retention.minutes", "2"),
        ("log.retention.ms", "1234"),
    ])
    .expect("valid");
    assert_eq!(c.log_retention_ms(), 1234);
    assert_eq!(c.log_config().retention_ms, 1234);
    let c = single(&[("log.retention.hours", "-1")]).expect("valid");
    assert_eq!(c.log_retention_ms(), -1);
    let c = single(&[("log.retention.ms", "-5")]).expect("valid");
    assert_eq!(c.log_config().retention_ms, -1);

    // Roll: log.roll.ms over log.roll.hours; flush: interval over scheduler interval.
    let c = single(&[("log.roll.hours", "2")]).expect("valid");
    assert_eq!(c.log_config().segment_ms, 7_200_000);
    let c = single(&[("log.roll.hours", "2"), ("log.roll.ms", "5000")]).expect("valid");
    assert_eq!(c.log_config().segment_ms, 5000);
    let c = single(&[("log.flush.scheduler.interval.ms", "7000")]).expect("valid");
    assert_eq!(c.log_config().flush_ms, 7000);
    let c = single(&[
        ("log.flush.scheduler.interval.ms", "7000"),
        ("log.flush.interval.ms", "10"),
    ])
    .expect("valid");
    assert_eq!(c.log_flush_interval_ms(), 10);
}

#[test]
fn config_log_config_maps_every_broker_default() {
    let c = single(&[
        ("log.segment.bytes", "1048576"),
        ("log.index.size.max.bytes", "65536"),
        ("log.index.interval.bytes", "1024"),
        ("message.max.bytes", "2000000"),
        ("log.retention.bytes", "99999"),
        ("log.flush.interval.messages", "100"),
        ("log.message.timestamp.type", "LogAppendTime"),
        ("log.segment.delete.delay.ms", "5"),
    ])
    .expect("valid");
    let lc = c.log_config();
    assert_eq!(lc.segment_bytes, 1_048_576);
    assert_eq!(lc.segment_index_bytes, 65_536);
    assert_eq!(lc.index_interval_bytes, 1024);
    assert_eq!(lc.max_message_bytes, 2_000_000);
    assert_eq!(lc.retention_bytes, 99_999);
    assert_eq!(lc.flush_messages, 100);
    assert!(lc.log_append_time);
    assert_eq!(lc.file_delete_delay_ms, 5);
}

#[test]
fn config_topic_override_beats_broker_default() {
    let mut c = single(&[
        ("log.retention.hours", "10"),
        ("log.segment.bytes", "1048576"),
    ])
    .expect("valid");
    let overrides = map(&[
        ("retention.ms", "1000"),
        ("max.message.bytes", "500"),
        ("message.timestamp.type", "LogAppendTime"),
        ("cleanup.policy", "compact, delete"),
    ]);
    let lc = c.topic_log_config(&overrides);
    assert_eq!(lc.retention_ms, 1000);
    assert_eq!(lc.max_message_bytes, 500);
    assert!(lc.log_append_time);
    assert_eq!(
        lc.segment_bytes, 1_048_576,
        "no override: the broker default"
    );
    assert_eq!(
        c.topic_value("cleanup.policy", &overrides).as_deref(),
        Some("compact,delete")
    );
    assert_eq!(
        c.topic_value("retention.ms", &BTreeMap::new()).as_deref(),
        Some("36000000")
    );
    assert_eq!(c.topic_value("no.such.config", &BTreeMap::new()), None);

    // Dynamic: per-broker beats cluster default beats static, and topic overrides beat all.
    let warnings = c.set_dynamic(DynamicBrokerConfigs {
        per_broker: map(&[("log.segment.bytes", "3000000")]),
        cluster_default: map(&[
            ("log.segment.bytes", "2000000"),
            ("log.retention.ms", "5000"),
        ]),
    });
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.log_config().segment_bytes, 3_000_000);
    assert_eq!(c.log_config().retention_ms, 5000);
    assert_eq!(c.topic_log_config(&overrides).retention_ms, 1000);
    let warnings = c.set_dynamic(DynamicBrokerConfigs {
        per_broker: BTreeMap::new(),
        cluster_default: map(&[("log.segment.bytes", "2000000")]),
    });
    assert!(warnings.is_empty());
    assert_eq!(c.log_config().segment_bytes, 2_000_000);
    assert_eq!(c.log_config().retention_ms, 36_000_000);

    // A dynamic value that is read-only or invalid is dropped with a warning.
    let warnings = c.set_dynamic(DynamicBrokerConfigs {
        per_broker: map(&[("log.retention.hours", "1"), ("log.segment.bytes", "x")]),
        cluster_default: BTreeMap::new(),
    });
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert_eq!(c.log_config().segment_bytes, 1_048_576);
}

#[test]
fn config_overrides_beat_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("server.properties");
    std::fs::write(&path, format!("{KRAFT_COMBINED}\nnum.partitions=3\n")).expect("write");
    let c = KafkaConfig::load(Some(&path), &[]).expect("valid");
    assert_eq!(c.num_partitions(), 3);
    let c = KafkaConfig::load_args(
        Some(&path),
        &[
            "num.partitions=5".to_string(),
            "log.dirs=/tmp/x=y".to_string(),
        ],
    )
    .expect("valid");
    assert_eq!(c.num_partitions(), 5);
    assert_eq!(c.log_dirs(), &[PathBuf::from("/tmp/x=y")]);
    let d = c.describe_broker(&BTreeMap::new());
    assert_eq!(
        find(&d, "num.partitions").source,
        ConfigSource::StaticBrokerConfig
    );
    // Overrides without a file start from the single-node defaults.
    let c = KafkaConfig::load_args(None, &["num.partitions=7".to_string()]).expect("valid");
    assert_eq!(c.num_partitions(), 7);
    assert!(c.process_roles().is_combined());
    // A bad override argument and an unreadable file are one-line errors.
    let e = KafkaConfig::load_args(None, &["num.partitions".to_string()]).expect_err("no =");
    assert!(e.to_string().contains("--override num.partitions"), "{e}");
    let e =
        KafkaConfig::load(Some(&dir.path().join("missing.properties")), &[]).expect_err("missing");
    assert!(e.to_string().contains("missing.properties"), "{e}");
    let e =
        KafkaConfig::load_args(Some(&path), &["num.partitions=abc".to_string()]).expect_err("bad");
    assert_eq!(
        e.to_string(),
        "Invalid value abc for configuration num.partitions: Not a number of type INT"
    );
}

#[test]
fn config_unknown_keys_warn_and_do_not_fail() {
    let c = KafkaConfig::from_props(with(
        KRAFT_COMBINED,
        &[
            ("no.such.setting", "1"),
            ("ssl.no.such.key", "x"),
            ("zookeeper.connect", "localhost:2181"),
            ("retention.ms", "1000"),
        ],
    ))
    .expect("unknown keys are not fatal");
    let w = c.warnings().join("\n");
    for key in [
        "no.such.setting",
        "ssl.no.such.key",
        "zookeeper.connect",
        "retention.ms",
    ] {
        assert!(w.contains(key), "{key} warned about: {w}");
    }
    assert!(w.contains("Securing a cluster"));
    assert!(w.contains("KRaft"));
    // Duplicate keys in a file are warned about too; the last one wins.
    let mut warnings = Vec::new();
    let p = parse_properties("a=1\nb=2\na=3\n", "f", &mut warnings).expect("parses");
    assert_eq!(p["a"], "3");
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].contains("f:3") && warnings[0].contains("line 1"),
        "{warnings:?}"
    );
}

#[test]
fn config_describe_broker_lists_every_config_with_sources() {
    let mut c = KafkaConfig::from_props(with(
        KRAFT_COMBINED,
        &[("log.retention.ms", "1000"), ("some.unknown", "secret")],
    ))
    .expect("valid");
    c.set_dynamic(DynamicBrokerConfigs {
        per_broker: BTreeMap::new(),
        cluster_default: map(&[("log.segment.bytes", "2000000")]),
    });
    let d = c.describe_broker(&map(&[("message.max.bytes", "3000000")]));
    assert_eq!(d.len(), BROKER_CONFIGS.len() + 1);
    for def in BROKER_CONFIGS {
        let e = find(&d, def.name);
        assert_eq!(e.config_type, def.ty);
        assert_eq!(e.read_only, def.read_only());
        assert!(e.documentation.as_deref().is_some_and(|s| !s.is_empty()));
    }
    // Unset, with a default.
    let e = find(&d, "num.io.threads");
    assert_eq!(e.source, ConfigSource::StaticBrokerConfig);
    let e = find(&d, "auto.create.topics.enable");
    assert_eq!(e.source, ConfigSource::DefaultConfig);
    assert_eq!(e.value.as_deref(), Some("true"));
    assert_eq!(e.synonyms.len(), 1);
    assert!(e.read_only);
    assert!(e
        .documentation
        .as_deref()
        .is_some_and(|s| s.contains("metadata")));
    // Unset, without a default: Kafka's null.
    let e = find(&d, "log.roll.ms");
    assert_eq!(
        (e.value.as_deref(), e.source),
        (None, ConfigSource::DefaultConfig)
    );
    assert!(!e.read_only);
    // From the file, with the hours synonyms after it.
    let e = find(&d, "log.retention.ms");
    assert_eq!(e.value.as_deref(), Some("1000"));
    assert_eq!(e.source, ConfigSource::StaticBrokerConfig);
    let syn: Vec<(&str, ConfigSource)> = e
        .synonyms
        .iter()
        .map(|s| (s.name.as_str(), s.source))
        .collect();
    assert_eq!(
        syn,
        vec![
            ("log.retention.ms", ConfigSource::StaticBrokerConfig),
            ("log.retention.hours", ConfigSource::StaticBrokerConfig),
            ("log.retention.hours", ConfigSource::DefaultConfig),
        ]
    );
    let e = find(&d, "log.retention.hours");
    assert_eq!(e.value.as_deref(), Some("168"));
    assert_eq!(e.synonyms[0].name, "log.retention.hours");
    // Dynamic default and per-broker.
    let e = find(&d, "log.segment.bytes");
    assert_eq!(e.value.as_deref(), Some("2000000"));
    assert_eq!(e.source, ConfigSource::DynamicDefaultBrokerConfig);
    assert_eq!(e.synonyms.len(), 3);
    let e = find(&d, "message.max.bytes");
    assert_eq!(e.value.as_deref(), Some("3000000"));
    assert_eq!(e.source, ConfigSource::DynamicBrokerConfig);
    // Unknown keys from the file: listed, typeless and hidden like Kafka does.
    let e = find(&d, "some.unknown");
    assert_eq!(e.config_type, ConfigType::Unknown);
    assert!(e.is_sensitive && e.value.is_none());
    // The cluster-default resource lists only what is set there.
    let defaults = c.describe_broker_defaults();
    assert_eq!(defaults.len(), 1);
    assert_eq!(defaults[0].name, "log.segment.bytes");
    assert_eq!(defaults[0].source, ConfigSource::DynamicDefaultBrokerConfig);
    assert_eq!(defaults[0].synonyms.len(), 1);
}

#[test]
fn config_describe_topic_resolves_every_config_with_its_chain() {
    let c = KafkaConfig::from_props(with(
        KRAFT_COMBINED,
        &[
            ("log.retention.minutes", "30"),
            ("min.insync.replicas", "1"),
        ],
    ))
    .expect("valid");
    let overrides = map(&[("segment.bytes", "1048576"), ("cleanup.policy", "compact")]);
    let d = c.describe_topic(&overrides);
    assert_eq!(d.len(), TOPIC_CONFIGS.len());
    for tk in TOPIC_CONFIGS {
        let e = find(&d, tk.key.name);
        assert!(!e.read_only);
        assert!(e.value.is_some(), "{} has a value", tk.key.name);
        assert_eq!(e.config_type, tk.key.ty);
    }
    let e = find(&d, "segment.bytes");
    assert_eq!(e.value.as_deref(), Some("1048576"));
    assert_eq!(e.source, ConfigSource::DynamicTopicConfig);
    let chain: Vec<(&str, Option<&str>, ConfigSource)> = e
        .synonyms
        .iter()
        .map(|s| (s.name.as_str(), s.value.as_deref(), s.source))
        .collect();
    assert_eq!(
        chain,
        vec![
            (
                "segment.bytes",
                Some("1048576"),
                ConfigSource::DynamicTopicConfig
            ),
            (
                "log.segment.bytes",
                Some("1073741824"),
                ConfigSource::StaticBrokerConfig
            ),
            (
                "log.segment.bytes",
                Some("1073741824"),
                ConfigSource::DefaultConfig
            ),
        ]
    );
    let e = find(&d, "retention.ms");
    assert_eq!(e.value.as_deref(), Some("1800000"));
    assert_eq!(e.source, ConfigSource::StaticBrokerConfig);
    let names: Vec<(&str, ConfigSource)> = e
        .synonyms
        .iter()
        .map(|s| (s.name.as_str(), s.source))
        .collect();
    assert_eq!(
        names,
        vec![
            ("log.retention.minutes", ConfigSource::StaticBrokerConfig),
            ("log.retention.hours", ConfigSource::StaticBrokerConfig),
            ("log.retention.hours", ConfigSource::DefaultConfig),
        ]
    );
    let e = find(&d, "segment.ms");
    assert_eq!(e.value.as_deref(), Some("604800000"));
    assert_eq!(e.source, ConfigSource::DefaultConfig);
    assert_eq!(e.synonyms[0].name, "log.roll.hours");
    let e = find(&d, "max.message.bytes");
    assert_eq!(e.value.as_deref(), Some("1048588"));
    assert_eq!(e.synonyms[0].name, "message.max.bytes");
    let e = find(&d, "cleanup.policy");
    assert_eq!(e.value.as_deref(), Some("compact"));
    // Configs with no broker synonym: the topic default.
    let e = find(&d, "remote.storage.enable");
    assert_eq!(
        (e.value.as_deref(), e.source),
        (Some("false"), ConfigSource::DefaultConfig)
    );
    assert!(e.synonyms.is_empty());
    let e = find(&d, "min.cleanable.dirty.ratio");
    assert_eq!(e.value.as_deref(), Some("0.5"));
    let e = find(&d, "flush.ms");
    assert_eq!(e.value.as_deref(), Some(i64::MAX.to_string().as_str()));
    assert_eq!(e.synonyms[0].name, "log.flush.scheduler.interval.ms");
}

#[test]
fn config_every_topic_synonym_is_a_broker_config() {
    for tk in TOPIC_CONFIGS {
        for (syn, _) in tk.synonyms {
            let def = broker_config(syn).unwrap_or_else(|| panic!("{syn} is defined"));
            // The first synonym is what Kafka makes dynamically updatable.
            if *syn == tk.synonyms[0].0 && tk.key.name != "message.format.version" {
                assert_eq!(def.scope, DynamicScope::ClusterWide, "{syn}");
            }
        }
        // The topic default is what the broker default resolves to.
        let c = KafkaConfig::default_single_node();
        if !tk.synonyms.is_empty() && tk.key.name != "min.insync.replicas" {
            let via_broker = c.topic_value(tk.key.name, &BTreeMap::new());
            let own = tk
                .key
                .default
                .and_then(|d| tk.key.parse(d).ok())
                .map(|v| v.to_string());
            assert_eq!(via_broker, own, "{}", tk.key.name);
        }
    }
    let names: Vec<&str> = TOPIC_CONFIGS.iter().map(|t| t.key.name).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(names, sorted, "sorted, no duplicates");
    let mut broker: Vec<&str> = BROKER_CONFIGS.iter().map(|k| k.name).collect();
    broker.sort_unstable();
    let n = broker.len();
    broker.dedup();
    assert_eq!(n, broker.len(), "no duplicate broker keys");
    // Every default parses and passes its own validator.
    for def in BROKER_CONFIGS
        .iter()
        .chain(TOPIC_CONFIGS.iter().map(|t| &t.key))
    {
        if let Some(d) = def.default {
            assert!(def.parse(d).is_ok(), "{} default {d}", def.name);
        }
    }
}

#[test]
fn config_topic_validation() {
    assert!(validate_topic_config("retention.ms", "1000").is_ok());
    assert!(validate_topic_config("retention.ms", "-1").is_ok());
    assert_eq!(
        validate_topic_config("retention.msx", "1").expect_err("an error"),
        "Unknown topic config name: retention.msx"
    );
    let e = validate_topic_config("retention.ms", "-2").expect_err("an error");
    assert!(e.contains("retention.ms") && e.contains("-2"), "{e}");
    assert!(validate_topic_config("cleanup.policy", "compact,delete").is_ok());
    assert!(validate_topic_config("cleanup.policy", "compact,forever").is_err());
    assert!(validate_topic_config("message.timestamp.type", "logappendtime").is_err());
    assert!(validate_topic_config("min.cleanable.dirty.ratio", "1.5").is_err());
    assert!(validate_topic_config("remote.storage.enable", "true").is_err());
    assert!(validate_topic_config("compression.gzip.level", "0").is_err());
    assert!(validate_topic_config("compression.gzip.level", "-1").is_ok());
    assert!(validate_topic_config("leader.replication.throttled.replicas", "0:1,1:2").is_ok());
    assert!(validate_topic_config("leader.replication.throttled.replicas", "x").is_err());
    assert!(validate_topic_configs(&map(&[
        ("min.compaction.lag.ms", "10"),
        ("max.compaction.lag.ms", "5")
    ]))
    .expect_err("an error")
    .contains("min.compaction.lag.ms"));
    assert!(validate_topic_configs(&map(&[("min.compaction.lag.ms", "10")])).is_ok());
}

#[test]
fn config_dynamic_broker_validation() {
    assert!(validate_dynamic_broker_config("log.retention.ms", Some("1000"), false).is_ok());
    assert!(validate_dynamic_broker_config("log.retention.ms", None, true).is_ok());
    assert!(
        validate_dynamic_broker_config("log.retention.ms", Some("0"), true)
            .expect_err("an error")
            .contains("log.retention.ms")
    );
    assert!(
        validate_dynamic_broker_config("log.retention.hours", Some("1"), true)
            .expect_err("an error")
            .contains("Cannot update these configs dynamically")
    );
    assert!(validate_dynamic_broker_config("nope", Some("1"), true).is_err());
    assert!(validate_dynamic_broker_config("message.max.bytes", Some("-1"), true).is_err());
    assert!(validate_dynamic_broker_config("min.insync.replicas", Some("2"), false).is_ok());
}

#[test]
fn config_log_dir_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a");
    let meta = dir.path().join("meta");
    let c = single(&[
        ("log.dirs", a.to_str().expect("utf8")),
        ("metadata.log.dir", meta.to_str().expect("utf8")),
    ])
    .expect("valid");
    c.check_log_dirs().expect("creatable and writable");
    assert!(a.is_dir() && meta.is_dir());
    // A file where a directory should be: one line naming the key and the directory.
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").expect("write");
    let c = single(&[("log.dirs", file.to_str().expect("utf8"))]).expect("valid");
    let e = c.check_log_dirs().expect_err("not a directory");
    assert_eq!(e.key(), Some("log.dirs"));
    assert!(e.to_string().contains(file.to_str().expect("utf8")), "{e}");
}

#[test]
fn config_wire_codes_are_kafkas() {
    assert_eq!(ConfigSource::DynamicTopicConfig.code(), 1);
    assert_eq!(ConfigSource::DynamicBrokerConfig.code(), 2);
    assert_eq!(ConfigSource::DynamicDefaultBrokerConfig.code(), 3);
    assert_eq!(ConfigSource::StaticBrokerConfig.code(), 4);
    assert_eq!(ConfigSource::DefaultConfig.code(), 5);
    assert_eq!(ConfigSource::DynamicBrokerLoggerConfig.code(), 6);
    assert_eq!(ConfigType::Boolean.code(), 1);
    assert_eq!(ConfigType::String.code(), 2);
    assert_eq!(ConfigType::Int.code(), 3);
    assert_eq!(ConfigType::Short.code(), 4);
    assert_eq!(ConfigType::Long.code(), 5);
    assert_eq!(ConfigType::Double.code(), 6);
    assert_eq!(ConfigType::List.code(), 7);
    assert_eq!(ConfigType::Class.code(), 8);
    assert_eq!(ConfigType::Password.code(), 9);
}

#[test]
fn config_advertised_empty_host_is_the_hostname() {
    let c = single(&[
        ("listeners", "PLAINTEXT://:9092,CONTROLLER://localhost:9093"),
        ("advertised.listeners", "PLAINTEXT://:19092"),
    ])
    .expect("valid");
    assert_eq!(c.advertised_listeners()[0].host, local_hostname());
    assert_eq!(c.advertised_listeners()[0].port, 19092);
    let mut p = single_node_props();
    p.remove("advertised.listeners");
    p.insert(
        "listeners".into(),
        "PLAINTEXT://:0,CONTROLLER://127.0.0.1:0".into(),
    );
    let c = KafkaConfig::from_props(p).expect("port 0 listeners are allowed");
    assert_eq!(c.advertised_listeners()[0].host, local_hostname());
    assert_eq!(c.advertised_controller_listeners()[0].host, "127.0.0.1");
}

#[test]
fn authorizer_keys() {
    let none = single(&[]).expect("default");
    assert!(none.authorizer().is_none(), "no authorizer by default");
    let on = single(&[
        (
            "authorizer.class.name",
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        ),
        ("super.users", "User:admin; User:ops;"),
        ("allow.everyone.if.no.acl.found", "true"),
    ])
    .expect("StandardAuthorizer is accepted");
    let a = on.authorizer().expect("authorizer on");
    assert!(a.allow_everyone_if_no_acl_found());
    assert_eq!(
        a.super_users().iter().cloned().collect::<Vec<_>>(),
        ["User:admin", "User:ops"]
    );
    let default_everyone = single(&[(
        "authorizer.class.name",
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    )])
    .expect("accepted");
    assert!(!default_everyone
        .authorizer()
        .expect("on")
        .allow_everyone_if_no_acl_found());
    let e = single(&[("authorizer.class.name", "com.example.MyAuthorizer")])
        .expect_err("other classes are refused");
    assert!(e.to_string().contains("StandardAuthorizer"), "{e}");
}

/// The workspace's non-test Rust code: test files and inline test modules (by convention the
/// last thing in a file) left out, comments stripped, and without the broker key table itself,
/// the typed accessors' declarations or the client crate (whose keys share names with the
/// broker's).
fn code_outside_the_table() -> String {
    code_under(&[
        "src",
        "broker/src",
        "controller/src",
        "storage/src",
        "security/src",
        "protocol/src",
    ])
}

/// [`code_outside_the_table`] for the sources under `dirs` (relative to the workspace root).
fn code_under(dirs: &[&str]) -> String {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let mut files = Vec::new();
    for dir in dirs {
        walk(&root.join(dir), &mut files);
    }
    assert!(
        files.len() >= dirs.len(),
        "the sources were found: {dirs:?}"
    );
    // The key tables (a topic key's broker synonyms are judged by the topic key, below), and
    // the files that only tests compile.
    let not_code = [
        "broker_defs.rs",
        "topic_defs.rs",
        "tests.rs",
        "testkit.rs",
        "invariants.rs",
    ];
    let mut code = String::new();
    for f in files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if not_code.contains(&name) || name.ends_with("_tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("a source file");
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.trim() == "#[cfg(test)]" {
                // An inline test module (after any further attributes) ends the file's code.
                let next = lines[i + 1..]
                    .iter()
                    .map(|l| l.trim())
                    .find(|l| !l.starts_with("#["));
                if next.is_some_and(|l| l.starts_with("mod ") && l.ends_with('{')) {
                    break;
                }
            }
            // Comments are not reads: cut at `//` (not the `://` of a URL).
            let code_part = match line
                .match_indices("//")
                .find(|(at, _)| !line[..*at].ends_with(':'))
            {
                Some((at, _)) => &line[..at],
                None => line,
            };
            // `name: type = "key";` declares an accessor; it reads nothing by itself (a
            // `const NAME: &str = "key";` is a read: its name is used).
            let t = code_part.trim();
            let declaration = t.ends_with("\";")
                && t.contains(" = \"")
                && t.split_once(": ").is_some_and(|(name, _)| {
                    !name.is_empty()
                        && name
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                });
            if !declaration {
                code.push_str(code_part);
                code.push('\n');
            }
        }
    }
    code
}

/// The typed accessors `name: type = "key";` of `config.rs`, by key.
fn accessors() -> BTreeMap<String, String> {
    let config_rs = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/config.rs");
    let text = std::fs::read_to_string(config_rs).expect("config.rs");
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let (name, rest) = l.split_once(": ")?;
            let key = rest.split_once(" = \"")?.1.strip_suffix("\";")?;
            (!name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .then(|| (key.to_owned(), name.to_owned()))
        })
        .collect()
}

/// Every key the broker table documents is read somewhere in the code (by name, through its
/// typed accessor, or — a broker default of a topic config — through that topic config's
/// name) or carries a note that starts "accepted" — saying it is accepted and ignored. A key that claims an effect and has none misleads the operator:
/// `delete.topic.enable=false` deleted topics, `replica.fetch.min.bytes` and
/// `producer.id.expiration.ms` changed nothing, until this test. The topic configs likewise.
#[test]
fn every_documented_key_is_read_or_noted_as_ignored() {
    let code = code_outside_the_table();
    let accessors = accessors();
    let topic_key_of: BTreeMap<&str, &str> =
        rafka_controller::control::config::topic_defs::TOPIC_CONFIGS
            .iter()
            .flat_map(|t| {
                t.synonyms
                    .iter()
                    .map(move |(broker, _)| (*broker, t.key.name))
            })
            .collect();
    let quoted = |name: &str| code.contains(&format!("\"{name}\""));
    let unread: Vec<&str> = crate::config::broker_defs::BROKER_CONFIGS
        .iter()
        .filter(|k| !k.note.is_some_and(|n| n.starts_with("accepted")))
        .filter(|k| {
            let by_name = quoted(k.name);
            let by_accessor = accessors
                .get(k.name)
                .is_some_and(|a| code.contains(&format!(".{a}(")));
            let by_topic_key = topic_key_of.get(k.name).is_some_and(|t| quoted(t));
            !by_name && !by_accessor && !by_topic_key
        })
        .map(|k| k.name)
        .collect();
    assert!(
        unread.is_empty(),
        "documented, neither read nor noted as ignored: {unread:?}"
    );
    // And every topic config.
    let unread: Vec<&str> = rafka_controller::control::config::topic_defs::TOPIC_CONFIGS
        .iter()
        .filter(|t| !t.key.note.is_some_and(|n| n.starts_with("accepted")))
        .filter(|t| !quoted(t.key.name))
        .map(|t| t.key.name)
        .collect();
    assert!(
        unread.is_empty(),
        "topic configs documented, neither read nor noted as ignored: {unread:?}"
    );
    // And every group config: only the group coordinator can give one an effect, and it names
    // them through their constants (`consumer.session.timeout.ms`: CONSUMER_SESSION_TIMEOUT_MS).
    let coordinator = code_under(&["broker/src/group_coordinator"]);
    let unread: Vec<&str> = crate::config::GROUP_CONFIGS
        .iter()
        .filter(|g| !g.key.note.is_some_and(|n| n.starts_with("accepted")))
        .filter(|g| {
            let constant = g.key.name.to_uppercase().replace('.', "_");
            !coordinator.contains(&constant)
                && !coordinator.contains(&format!("\"{}\"", g.key.name))
        })
        .map(|g| g.key.name)
        .collect();
    assert!(
        unread.is_empty(),
        "group configs documented, neither read by the group coordinator nor noted as ignored: {unread:?}"
    );
}
