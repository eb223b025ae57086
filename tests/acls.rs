//! ACLs against the real binary with Kafka's StandardAuthorizer semantics: an ACL matrix on one
//! broker (a principal allowed to write and read one topic prefix and to read one group:
//! produce, fetch, group join, commit and admin calls each allowed or refused with Kafka's
//! error code; Metadata lists only what it may describe), and an ACL change taking effect on
//! every broker of a three-node cluster without a restart.
//!
//! Bootstrapping, honestly: the broker first runs with `allow.everyone.if.no.acl.found=true`
//! (no ACL on the cluster, so CreateAcls is allowed), the ACLs are created through CreateAcls,
//! then the broker is restarted with `allow.everyone.if.no.acl.found=false` — the ACLs live in
//! the metadata log and survive the restart, as an operator would bootstrap with a super user.
//!
//! Every PLAINTEXT client is `User:ANONYMOUS` until SASL lands; clients are built through
//! [`Principal`], so switching the matrix to two SASL PLAIN principals changes only that type.

mod common;

use common::{Cluster, Deadline};
use rafka_protocol::messages::*;
use rdkafka::admin::AdminClient;
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);
const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

// Kafka's codes (ResourceType, PatternType, AclOperation, AclPermissionType, error codes).
const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const CLUSTER: i8 = 4;
const ANY: i8 = 1;
const MATCH: i8 = 2;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const READ: i8 = 3;
const WRITE: i8 = 4;
const CREATE: i8 = 5;
const DELETE: i8 = 6;
const DESCRIBE: i8 = 8;
const ALTER: i8 = 7;
const DENY: i8 = 2;
const ALLOW: i8 = 3;
const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const GROUP_AUTHORIZATION_FAILED: i16 = 30;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
const INVALID_REQUEST: i16 = 42;
const TOPIC_DELETION_DISABLED: i16 = 73;

/// Who a client connects as, and the client settings that make it so. Today: PLAINTEXT, so
/// `User:ANONYMOUS`. With SASL this gains `sasl_plain(user, password)` (security.protocol,
/// sasl.mechanism, sasl.username, sasl.password) and the raw-protocol checks a SASL handshake.
struct Principal {
    /// The principal as ACLs name it.
    name: &'static str,
    client: Vec<(&'static str, &'static str)>,
}

impl Principal {
    fn anonymous() -> Principal {
        Principal {
            name: "User:ANONYMOUS",
            client: Vec::new(),
        }
    }

    fn config(&self, bootstrap: &str, extra: &[(&str, &str)]) -> ClientConfig {
        let mut c = common::client_config(bootstrap, &[]);
        for (k, v) in self.client.iter().chain(extra) {
            c.set(*k, *v);
        }
        c
    }

    /// A raw request as this principal (PLAINTEXT today).
    fn raw(&self, addr: SocketAddr, version: i16, body: RequestKind) -> ResponseKind {
        assert!(self.client.is_empty(), "raw requests speak PLAINTEXT only");
        common::raw_request(addr, version, body, T).expect("raw request")
    }
}

fn acl(
    resource_type: i8,
    name: &str,
    pattern: i8,
    principal: &str,
    operation: i8,
    permission: i8,
) -> create_acls_request::AclCreation {
    create_acls_request::AclCreation {
        resource_type,
        resource_name: name.to_owned(),
        resource_pattern_type: pattern,
        principal: principal.to_owned(),
        host: "*".to_owned(),
        operation,
        permission_type: permission,
        ..Default::default()
    }
}

fn create_acls(
    p: &Principal,
    addr: SocketAddr,
    acls: Vec<create_acls_request::AclCreation>,
) -> Vec<i16> {
    let req = CreateAclsRequest {
        creations: acls,
        ..Default::default()
    };
    match p.raw(addr, 3, RequestKind::CreateAcls(req)) {
        ResponseKind::CreateAcls(r) => r.results.iter().map(|r| r.error_code).collect(),
        other => panic!("not a CreateAcls response: {other:?}"),
    }
}

fn describe_all_acls(p: &Principal, addr: SocketAddr) -> DescribeAclsResponse {
    let req = DescribeAclsRequest {
        resource_type_filter: ANY,
        resource_name_filter: None,
        pattern_type_filter: ANY,
        principal_filter: None,
        host_filter: None,
        operation: ANY,
        permission_type: ANY,
        ..Default::default()
    };
    match p.raw(addr, 3, RequestKind::DescribeAcls(req)) {
        ResponseKind::DescribeAcls(r) => r,
        other => panic!("not a DescribeAcls response: {other:?}"),
    }
}

/// Metadata v12 for `topics` (all when `None`): (name, error code) per topic.
fn metadata(p: &Principal, addr: SocketAddr, topics: Option<&[&str]>) -> Vec<(String, i16)> {
    let req = MetadataRequest {
        topics: topics.map(|ts| {
            ts.iter()
                .map(|t| metadata_request::MetadataRequestTopic {
                    name: Some((*t).to_owned()),
                    ..Default::default()
                })
                .collect()
        }),
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    match p.raw(addr, 12, RequestKind::Metadata(req)) {
        ResponseKind::Metadata(m) => {
            let mut out: Vec<(String, i16)> = m
                .topics
                .into_iter()
                .map(|t| (t.name.unwrap_or_default(), t.error_code))
                .collect();
            out.sort();
            out
        }
        other => panic!("not a Metadata response: {other:?}"),
    }
}

/// Metadata v10 of one topic asking for the authorized-operations bit sets: (topic's, cluster's).
fn authorized_operations(p: &Principal, addr: SocketAddr, topic: &str) -> (i32, i32) {
    let req = MetadataRequest {
        topics: Some(vec![metadata_request::MetadataRequestTopic {
            name: Some(topic.to_owned()),
            ..Default::default()
        }]),
        include_cluster_authorized_operations: true,
        include_topic_authorized_operations: true,
        ..Default::default()
    };
    match p.raw(addr, 10, RequestKind::Metadata(req)) {
        ResponseKind::Metadata(m) => (
            m.topics[0].topic_authorized_operations,
            m.cluster_authorized_operations,
        ),
        other => panic!("not a Metadata response: {other:?}"),
    }
}

/// Kafka's bit set of operation codes.
fn bits(ops: &[i8]) -> i32 {
    ops.iter().fold(0, |acc, op| acc | (1 << op))
}

/// DescribeGroups (with the operations bit sets): (group, error, authorized operations).
fn describe_groups(p: &Principal, addr: SocketAddr, groups: &[&str]) -> Vec<(String, i16, i32)> {
    let req = DescribeGroupsRequest {
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        include_authorized_operations: true,
        ..Default::default()
    };
    match p.raw(addr, 5, RequestKind::DescribeGroups(req)) {
        ResponseKind::DescribeGroups(r) => r
            .groups
            .into_iter()
            .map(|g| (g.group_id, g.error_code, g.authorized_operations))
            .collect(),
        other => panic!("not a DescribeGroups response: {other:?}"),
    }
}

fn list_groups(p: &Principal, addr: SocketAddr) -> Vec<String> {
    match p.raw(
        addr,
        4,
        RequestKind::ListGroups(ListGroupsRequest::default()),
    ) {
        ResponseKind::ListGroups(r) => r.groups.into_iter().map(|g| g.group_id).collect(),
        other => panic!("not a ListGroups response: {other:?}"),
    }
}

fn fetch_error(p: &Principal, addr: SocketAddr, topic: &str) -> i16 {
    let req = FetchRequest {
        max_wait_ms: 0,
        min_bytes: 0,
        topics: vec![fetch_request::FetchTopic {
            topic: topic.to_owned(),
            partitions: vec![fetch_request::FetchPartition {
                partition: 0,
                fetch_offset: 0,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    match p.raw(addr, 12, RequestKind::Fetch(req)) {
        ResponseKind::Fetch(r) => r.responses[0].partitions[0].error_code,
        other => panic!("not a Fetch response: {other:?}"),
    }
}

fn list_offsets_error(p: &Principal, addr: SocketAddr, topic: &str) -> i16 {
    let req = ListOffsetsRequest {
        replica_id: -1,
        topics: vec![list_offsets_request::ListOffsetsTopic {
            name: topic.to_owned(),
            partitions: vec![list_offsets_request::ListOffsetsPartition {
                partition_index: 0,
                timestamp: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    match p.raw(addr, 7, RequestKind::ListOffsets(req)) {
        ResponseKind::ListOffsets(r) => r.topics[0].partitions[0].error_code,
        other => panic!("not a ListOffsets response: {other:?}"),
    }
}

/// A simple (generation −1) OffsetCommit of offset 0 on partition 0 of `topic`.
fn commit_error(p: &Principal, addr: SocketAddr, group: &str, topic: &str) -> i16 {
    let req = OffsetCommitRequest {
        group_id: group.to_owned(),
        topics: vec![offset_commit_request::OffsetCommitRequestTopic {
            name: topic.to_owned(),
            partitions: vec![offset_commit_request::OffsetCommitRequestPartition {
                partition_index: 0,
                committed_offset: 0,
                committed_metadata: Some(String::new()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    match p.raw(addr, 9, RequestKind::OffsetCommit(req)) {
        ResponseKind::OffsetCommit(r) => r.topics[0].partitions[0].error_code,
        other => panic!("not an OffsetCommit response: {other:?}"),
    }
}

fn find_coordinator_error(p: &Principal, addr: SocketAddr, group: &str) -> i16 {
    let req = FindCoordinatorRequest {
        key_type: 0,
        coordinator_keys: vec![group.to_owned()],
        ..Default::default()
    };
    match p.raw(addr, 4, RequestKind::FindCoordinator(req)) {
        ResponseKind::FindCoordinator(r) => r.coordinators[0].error_code,
        other => panic!("not a FindCoordinator response: {other:?}"),
    }
}

/// DescribeConfigs of one resource (config resource type 2 = topic, 4 = broker).
fn describe_configs_error(p: &Principal, addr: SocketAddr, resource_type: i8, name: &str) -> i16 {
    let req = DescribeConfigsRequest {
        resources: vec![describe_configs_request::DescribeConfigsResource {
            resource_type,
            resource_name: name.to_owned(),
            configuration_keys: None,
            ..Default::default()
        }],
        ..Default::default()
    };
    match p.raw(addr, 4, RequestKind::DescribeConfigs(req)) {
        ResponseKind::DescribeConfigs(r) => r.results[0].error_code,
        other => panic!("not a DescribeConfigs response: {other:?}"),
    }
}

fn alter_configs_error(
    p: &Principal,
    addr: SocketAddr,
    resource_type: i8,
    name: &str,
    key: &str,
) -> i16 {
    let req = IncrementalAlterConfigsRequest {
        resources: vec![incremental_alter_configs_request::AlterConfigsResource {
            resource_type,
            resource_name: name.to_owned(),
            configs: vec![incremental_alter_configs_request::AlterableConfig {
                name: key.to_owned(),
                config_operation: 0,
                value: Some("60000".to_owned()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    match p.raw(addr, 1, RequestKind::IncrementalAlterConfigs(req)) {
        ResponseKind::IncrementalAlterConfigs(r) => r.responses[0].error_code,
        other => panic!("not an IncrementalAlterConfigs response: {other:?}"),
    }
}

fn init_producer_id_error(p: &Principal, addr: SocketAddr) -> i16 {
    let req = InitProducerIdRequest {
        transactional_id: None,
        transaction_timeout_ms: 60000,
        ..Default::default()
    };
    match p.raw(addr, 4, RequestKind::InitProducerId(req)) {
        ResponseKind::InitProducerId(r) => r.error_code,
        other => panic!("not an InitProducerId response: {other:?}"),
    }
}

fn describe_cluster_error(p: &Principal, addr: SocketAddr) -> i16 {
    let req = DescribeClusterRequest {
        include_cluster_authorized_operations: true,
        ..Default::default()
    };
    match p.raw(addr, 1, RequestKind::DescribeCluster(req)) {
        ResponseKind::DescribeCluster(r) => r.error_code,
        other => panic!("not a DescribeCluster response: {other:?}"),
    }
}

fn delete_acls_errors(
    p: &Principal,
    addr: SocketAddr,
    filter: delete_acls_request::DeleteAclsFilter,
) -> (i16, usize) {
    let req = DeleteAclsRequest {
        filters: vec![filter],
        ..Default::default()
    };
    match p.raw(addr, 3, RequestKind::DeleteAcls(req)) {
        ResponseKind::DeleteAcls(r) => (
            r.filter_results[0].error_code,
            r.filter_results[0].matching_acls.len(),
        ),
        other => panic!("not a DeleteAcls response: {other:?}"),
    }
}

/// Sets `allow.everyone.if.no.acl.found` in the node's file, then restarts it.
fn restart_with_allow_everyone(cluster: &mut Cluster, value: bool) {
    let node = &mut cluster.nodes[0];
    node.terminate();
    let file = node.dir.join("server.properties");
    let props = std::fs::read_to_string(&file).expect("read server.properties");
    let props = props.replace(
        &format!("allow.everyone.if.no.acl.found={}", !value),
        &format!("allow.everyone.if.no.acl.found={value}"),
    );
    assert!(props.contains(&format!("allow.everyone.if.no.acl.found={value}")));
    std::fs::write(&file, props).expect("write server.properties");
    node.start();
    cluster.wait_ready(T);
}

/// Produces one record and waits for its delivery report.
fn send(producer: &FutureProducer, topic: &str, payload: &str) -> Result<(), KafkaError> {
    common::runtime()
        .block_on(
            producer.send(
                FutureRecord::<(), str>::to(topic)
                    .partition(0)
                    .payload(payload),
                T,
            ),
        )
        .map(|_| ())
        .map_err(|(e, _)| e)
}

#[test]
fn acl_matrix_for_a_principal_allowed_one_prefix_and_one_group() {
    let mut cluster = Cluster::start(
        1,
        &[
            ("authorizer.class.name", STANDARD_AUTHORIZER),
            ("allow.everyone.if.no.acl.found", "true"),
            ("offsets.topic.replication.factor", "1"),
            ("group.initial.rebalance.delay.ms", "0"),
        ],
    );
    let addr = cluster.nodes[0].addr();
    let bootstrap = cluster.bootstrap();
    let me = Principal::anonymous();
    // Setup while everyone is allowed: two topics and the ACLs.
    let admin = common::admin(&bootstrap);
    common::create_topic(&admin, &cluster.nodes[0], "app-orders", 1, &[]);
    common::create_topic(&admin, &cluster.nodes[0], "secret", 1, &[]);
    let codes = create_acls(
        &me,
        addr,
        vec![
            acl(TOPIC, "app-", PREFIXED, me.name, WRITE, ALLOW),
            acl(TOPIC, "app-", PREFIXED, me.name, READ, ALLOW),
            acl(TOPIC, "app-", PREFIXED, me.name, CREATE, ALLOW),
            acl(GROUP, "app-group", LITERAL, me.name, READ, ALLOW),
            // Refused as Kafka refuses them: MATCH is a filter type, the cluster has one name,
            // a principal is Type:name.
            acl(TOPIC, "x", MATCH, me.name, READ, ALLOW),
            acl(CLUSTER, "not-kafka-cluster", LITERAL, me.name, ALTER, ALLOW),
            acl(TOPIC, "x", LITERAL, "ANONYMOUS", READ, ALLOW),
        ],
    );
    assert_eq!(
        codes,
        [
            0,
            0,
            0,
            0,
            INVALID_REQUEST,
            INVALID_REQUEST,
            INVALID_REQUEST
        ]
    );
    let described = describe_all_acls(&me, addr);
    assert_eq!(described.error_code, 0);
    let mut seen: Vec<(i8, String, i8, usize)> = described
        .resources
        .iter()
        .map(|r| {
            (
                r.resource_type,
                r.resource_name.clone(),
                r.pattern_type,
                r.acls.len(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (TOPIC, "app-".to_owned(), PREFIXED, 3),
            (GROUP, "app-group".to_owned(), LITERAL, 1)
        ]
    );

    // A group the principal will not be allowed to see (offsets committed while everyone may).
    let deadline = Deadline::after(T);
    while find_coordinator_error(&me, addr, "early-group") != 0
        || commit_error(&me, addr, "early-group", "app-orders") != 0
    {
        deadline.check(|| "no commit for early-group".to_owned());
        std::thread::sleep(Duration::from_millis(50));
    }

    // From now on nothing is allowed without an ACL (the ACLs survive the restart).
    restart_with_allow_everyone(&mut cluster, false);
    let bootstrap = cluster.bootstrap();

    // Metadata: only what the principal may describe.
    assert_eq!(
        metadata(&me, addr, None),
        [("app-orders".to_owned(), 0)],
        "a listing hides secret and __consumer_offsets"
    );
    assert_eq!(
        metadata(&me, addr, Some(&["secret", "no-such-topic", "app-orders"])),
        [
            ("app-orders".to_owned(), 0),
            ("no-such-topic".to_owned(), TOPIC_AUTHORIZATION_FAILED),
            ("secret".to_owned(), TOPIC_AUTHORIZATION_FAILED),
        ]
    );

    // The bit sets: READ, WRITE, CREATE and the DESCRIBE they imply; nothing on the cluster.
    assert_eq!(
        authorized_operations(&me, addr, "app-orders"),
        (bits(&[READ, WRITE, CREATE, DESCRIBE]), 0)
    );

    // Produce: the prefix yes (idempotent: InitProducerId allowed by WRITE on a topic), the
    // rest no.
    let producer: FutureProducer = me
        .config(
            &bootstrap,
            &[
                ("enable.idempotence", "true"),
                ("message.timeout.ms", "20000"),
            ],
        )
        .create()
        .expect("producer");
    send(&producer, "app-orders", "hello").expect("produce to app-orders");
    assert_eq!(init_producer_id_error(&me, addr), 0);
    let denied: FutureProducer = me
        .config(&bootstrap, &[("message.timeout.ms", "10000")])
        .create()
        .expect("producer");
    match send(&denied, "secret", "nope") {
        Err(KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed)) => {}
        other => panic!("produce to secret: {other:?}"),
    }
    drop(denied);

    // Fetch and ListOffsets: READ / DESCRIBE per topic.
    assert_eq!(fetch_error(&me, addr, "app-orders"), 0);
    assert_eq!(fetch_error(&me, addr, "secret"), TOPIC_AUTHORIZATION_FAILED);
    assert_eq!(list_offsets_error(&me, addr, "app-orders"), 0);
    assert_eq!(
        list_offsets_error(&me, addr, "secret"),
        TOPIC_AUTHORIZATION_FAILED
    );

    // A group member of app-group consumes and commits.
    let consumer: BaseConsumer = me
        .config(
            &bootstrap,
            &[
                ("group.id", "app-group"),
                ("enable.auto.commit", "false"),
                ("auto.offset.reset", "earliest"),
            ],
        )
        .create()
        .expect("consumer");
    consumer.subscribe(&["app-orders"]).expect("subscribe");
    let deadline = Deadline::after(T);
    let got = loop {
        deadline.check(|| "no message for the app-group member".to_owned());
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => break m.payload().map(<[u8]>::to_vec),
            Some(Err(e)) => panic!("app-group member: {e}"),
            None => {}
        }
    };
    assert_eq!(got.as_deref(), Some(&b"hello"[..]));
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit as app-group");
    drop(consumer);

    // Another group: refused at FindCoordinator (and everywhere else).
    assert_eq!(find_coordinator_error(&me, addr, "app-group"), 0);
    assert_eq!(
        find_coordinator_error(&me, addr, "other-group"),
        GROUP_AUTHORIZATION_FAILED
    );
    let outsider: BaseConsumer = me
        .config(
            &bootstrap,
            &[
                ("group.id", "other-group"),
                ("auto.offset.reset", "earliest"),
            ],
        )
        .create()
        .expect("consumer");
    outsider.subscribe(&["app-orders"]).expect("subscribe");
    let deadline = Deadline::after(T);
    loop {
        deadline.check(|| "other-group was never refused".to_owned());
        match outsider.poll(Duration::from_millis(100)) {
            Some(Err(KafkaError::MessageConsumption(
                RDKafkaErrorCode::GroupAuthorizationFailed,
            )))
            | Some(Err(KafkaError::Global(RDKafkaErrorCode::GroupAuthorizationFailed))) => break,
            Some(Ok(m)) => panic!("other-group consumed offset {}", m.offset()),
            _ => {}
        }
    }
    drop(outsider);
    // Groups: app-group readable (READ implies DESCRIBE), the rest refused or hidden.
    assert_eq!(
        describe_groups(&me, addr, &["app-group", "other-group"]),
        [
            ("app-group".to_owned(), 0, bits(&[READ, DESCRIBE])),
            (
                "other-group".to_owned(),
                GROUP_AUTHORIZATION_FAILED,
                i32::MIN
            ),
        ]
    );
    assert_eq!(commit_error(&me, addr, "app-group", "app-orders"), 0);
    assert_eq!(
        commit_error(&me, addr, "app-group", "secret"),
        TOPIC_AUTHORIZATION_FAILED
    );
    assert_eq!(
        commit_error(&me, addr, "other-group", "app-orders"),
        GROUP_AUTHORIZATION_FAILED
    );

    // Admin calls.
    let admin: AdminClient<DefaultClientContext> =
        me.config(&bootstrap, &[]).create().expect("admin client");
    let rt = common::runtime();
    let created = rt
        .block_on(admin.create_topics(
            [
                &NewTopic::new("app-new", 1, TopicReplication::Fixed(1)),
                &NewTopic::new("plain-new", 1, TopicReplication::Fixed(1)),
            ],
            &common::admin_options(),
        ))
        .expect("CreateTopics");
    assert_eq!(
        created,
        vec![
            Ok("app-new".to_owned()),
            Err((
                "plain-new".to_owned(),
                RDKafkaErrorCode::TopicAuthorizationFailed
            ))
        ]
    );
    // Created without DESCRIBE_CONFIGS: its configs are withheld, with the reason (v5+).
    let req = CreateTopicsRequest {
        topics: vec![create_topics_request::CreatableTopic {
            name: "app-raw".to_owned(),
            num_partitions: 1,
            replication_factor: 1,
            ..Default::default()
        }],
        timeout_ms: 20000,
        ..Default::default()
    };
    match me.raw(addr, 7, RequestKind::CreateTopics(req)) {
        ResponseKind::CreateTopics(r) => {
            let t = &r.topics[0];
            assert_eq!(
                (t.error_code, t.topic_config_error_code),
                (0, TOPIC_AUTHORIZATION_FAILED)
            );
            assert_eq!(t.configs.as_deref().map(<[_]>::len), Some(0));
        }
        other => panic!("not a CreateTopics response: {other:?}"),
    }
    let deleted = rt
        .block_on(admin.delete_topics(&["app-orders"], &common::admin_options()))
        .expect("DeleteTopics");
    assert_eq!(
        deleted,
        vec![Err((
            "app-orders".to_owned(),
            RDKafkaErrorCode::TopicAuthorizationFailed
        ))]
    );
    assert_eq!(
        describe_configs_error(&me, addr, 2, "app-orders"),
        TOPIC_AUTHORIZATION_FAILED
    );
    assert_eq!(
        describe_configs_error(&me, addr, 4, "1"),
        CLUSTER_AUTHORIZATION_FAILED
    );
    assert_eq!(
        alter_configs_error(&me, addr, 2, "app-orders", "retention.ms"),
        TOPIC_AUTHORIZATION_FAILED
    );
    assert_eq!(
        alter_configs_error(&me, addr, 4, "", "log.retention.ms"),
        CLUSTER_AUTHORIZATION_FAILED
    );
    // A group's configs (KIP-848): DESCRIBE_CONFIGS / ALTER_CONFIGS on the group; READ is not
    // enough.
    assert_eq!(
        describe_configs_error(&me, addr, 32, "app-group"),
        GROUP_AUTHORIZATION_FAILED
    );
    assert_eq!(
        alter_configs_error(&me, addr, 32, "app-group", "consumer.session.timeout.ms"),
        GROUP_AUTHORIZATION_FAILED
    );
    // A consumer-protocol member may join its group (READ) but not subscribe to a topic it
    // cannot describe.
    let heartbeat = |topic: &str| -> i16 {
        let req = rafka_protocol::messages::ConsumerGroupHeartbeatRequest {
            group_id: "app-group".into(),
            member_id: "m1".into(),
            member_epoch: 0,
            rebalance_timeout_ms: 30_000,
            subscribed_topic_names: Some(vec![topic.into()]),
            topic_partitions: Some(vec![]),
            ..Default::default()
        };
        match me.raw(addr, 1, RequestKind::ConsumerGroupHeartbeat(req)) {
            ResponseKind::ConsumerGroupHeartbeat(r) => r.error_code,
            other => panic!("not a ConsumerGroupHeartbeat response: {other:?}"),
        }
    };
    assert_eq!(heartbeat("secret"), TOPIC_AUTHORIZATION_FAILED);
    let allowed = heartbeat("app-orders");
    assert!(
        ![TOPIC_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED].contains(&allowed),
        "{allowed}"
    );
    assert_eq!(
        describe_cluster_error(&me, addr),
        CLUSTER_AUTHORIZATION_FAILED
    );
    assert_eq!(
        describe_all_acls(&me, addr).error_code,
        CLUSTER_AUTHORIZATION_FAILED
    );
    assert_eq!(
        create_acls(
            &me,
            addr,
            vec![acl(TOPIC, "secret", LITERAL, me.name, READ, ALLOW)]
        ),
        [CLUSTER_AUTHORIZATION_FAILED]
    );
    assert_eq!(
        delete_acls_errors(&me, addr, any_filter()),
        (CLUSTER_AUTHORIZATION_FAILED, 0)
    );
    // No CLUSTER DESCRIBE: ListGroups shows only the groups it may describe (not early-group).
    assert_eq!(list_groups(&me, addr), ["app-group"]);
    // Nothing the refused calls asked for happened.
    assert_eq!(
        metadata(&me, addr, Some(&["app-orders", "app-new"])),
        [("app-new".to_owned(), 0), ("app-orders".to_owned(), 0)]
    );
}

fn any_filter() -> delete_acls_request::DeleteAclsFilter {
    delete_acls_request::DeleteAclsFilter {
        resource_type_filter: ANY,
        resource_name_filter: None,
        pattern_type_filter: ANY,
        principal_filter: None,
        host_filter: None,
        operation: ANY,
        permission_type: ANY,
        ..Default::default()
    }
}

/// Polls `check` on every broker until it holds on all of them; the time that took.
fn until_every_broker(
    cluster: &Cluster,
    what: &str,
    check: &dyn Fn(SocketAddr) -> bool,
) -> Duration {
    let start = Instant::now();
    let deadline = Deadline::after(Duration::from_secs(10));
    for node in &cluster.nodes {
        while !check(node.addr()) {
            deadline.check(|| format!("{what}: not on node {}", node.node_id));
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    start.elapsed()
}

#[test]
fn an_acl_change_reaches_every_broker_without_a_restart() {
    let cluster = Cluster::start(
        3,
        &[
            ("authorizer.class.name", STANDARD_AUTHORIZER),
            ("allow.everyone.if.no.acl.found", "true"),
        ],
    );
    let me = Principal::anonymous();
    common::create_replicated_topic(&cluster.bootstrap(), "shared", 1, 3);
    let visible =
        |addr: SocketAddr| metadata(&me, addr, Some(&["shared"])) == [("shared".to_owned(), 0)];
    until_every_broker(&cluster, "shared visible", &visible);

    // Deny DESCRIBE on the topic, through broker 1: brokers 2 and 3 apply it from the
    // metadata log, without a restart.
    let codes = create_acls(
        &me,
        cluster.nodes[0].addr(),
        vec![acl(TOPIC, "shared", LITERAL, "User:*", DESCRIBE, DENY)],
    );
    assert_eq!(codes, [0]);
    let refused = |addr: SocketAddr| {
        metadata(&me, addr, Some(&["shared"]))
            == [("shared".to_owned(), TOPIC_AUTHORIZATION_FAILED)]
    };
    let took = until_every_broker(&cluster, "DENY applied", &refused);
    eprintln!("the DENY reached every broker within {took:?}");
    // The topic now has an ACL and none allows: fetching is refused too, on every broker.
    for node in &cluster.nodes {
        assert_eq!(
            fetch_error(&me, node.addr(), "shared"),
            TOPIC_AUTHORIZATION_FAILED
        );
    }
    // The ACL is listed by every broker (DescribeAcls answers from the broker's image).
    for node in &cluster.nodes {
        let d = describe_all_acls(&me, node.addr());
        assert_eq!(d.error_code, 0);
        assert_eq!(d.resources.len(), 1, "node {}", node.node_id);
    }

    // Deleting it through broker 3 opens the topic again everywhere.
    let (code, matched) = delete_acls_errors(
        &me,
        cluster.nodes[2].addr(),
        delete_acls_request::DeleteAclsFilter {
            resource_type_filter: TOPIC,
            resource_name_filter: Some("shared".to_owned()),
            pattern_type_filter: MATCH,
            ..any_filter()
        },
    );
    assert_eq!((code, matched), (0, 1));
    let took = until_every_broker(&cluster, "DENY removed", &visible);
    eprintln!("the removal reached every broker within {took:?}");
}

#[test]
fn without_an_authorizer_everything_is_allowed_and_acl_calls_are_security_disabled() {
    // One replica of `__consumer_offsets`, so that the group below has a coordinator.
    let cluster = Cluster::start(1, &[("offsets.topic.replication.factor", "1")]);
    let me = Principal::anonymous();
    let addr = cluster.nodes[0].addr();
    assert_eq!(
        create_acls(
            &me,
            addr,
            vec![acl(TOPIC, "t", LITERAL, me.name, READ, ALLOW)]
        ),
        [54]
    );
    assert_eq!(describe_all_acls(&me, addr).error_code, 54);
    assert_eq!(delete_acls_errors(&me, addr, any_filter()).0, 54);
    assert_eq!(describe_cluster_error(&me, addr), 0);
    assert_eq!(describe_configs_error(&me, addr, 4, "1"), 0);
    // With no authorizer: every operation the resource type supports (Kafka's sets, which
    // librdkafka's test 0081 checks): TOPIC READ WRITE CREATE DELETE ALTER DESCRIBE
    // DESCRIBE_CONFIGS ALTER_CONFIGS; CLUSTER CREATE ALTER DESCRIBE CLUSTER_ACTION
    // DESCRIBE_CONFIGS ALTER_CONFIGS IDEMPOTENT_WRITE.
    common::create_topic(
        &common::admin(&cluster.bootstrap()),
        &cluster.nodes[0],
        "t",
        1,
        &[],
    );
    assert_eq!(
        authorized_operations(&me, addr, "t"),
        (
            bits(&[3, 4, 5, 6, 7, 8, 10, 11]),
            bits(&[5, 7, 8, 9, 10, 11, 12])
        )
    );
    // GROUP: READ DELETE DESCRIBE DESCRIBE_CONFIGS ALTER_CONFIGS, Kafka 4's set since KIP-848's
    // group configs (librdkafka's 0081 against 4.0 checks all five). Asked until the group
    // coordinator has loaded its partition (FindCoordinator creates `__consumer_offsets`).
    let deadline = Instant::now() + Duration::from_secs(30);
    let group = loop {
        find_coordinator_error(&me, addr, "g");
        let described = describe_groups(&me, addr, &["g"]);
        if described[0].1 == 0 || Instant::now() > deadline {
            break described;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(group, [("g".to_owned(), 0, bits(&[3, 6, 8, 10, 11]))]);
}

/// With `delete.topic.enable=false` a principal refused DELETE on a topic is told that deletion
/// is disabled, not that it is unauthorized: Kafka's controller checks the switch before
/// anything else. Nothing is deleted either way.
#[test]
fn deletion_disabled_is_answered_before_authorization() {
    let cluster = Cluster::start(
        1,
        &[
            ("authorizer.class.name", STANDARD_AUTHORIZER),
            ("allow.everyone.if.no.acl.found", "true"),
            ("delete.topic.enable", "false"),
        ],
    );
    let addr = cluster.nodes[0].addr();
    let me = Principal::anonymous();
    common::create_topic(
        &common::admin(&cluster.bootstrap()),
        &cluster.nodes[0],
        "guarded",
        1,
        &[],
    );
    assert_eq!(
        create_acls(
            &me,
            addr,
            vec![
                acl(TOPIC, "guarded", LITERAL, me.name, DELETE, DENY),
                acl(TOPIC, "guarded", LITERAL, me.name, DESCRIBE, DENY),
            ]
        ),
        [0, 0]
    );
    // The denials are in force once Metadata refuses the topic.
    let deadline = Deadline::after(T);
    while metadata(&me, addr, Some(&["guarded"]))
        != [("guarded".to_owned(), TOPIC_AUTHORIZATION_FAILED)]
    {
        deadline.check(|| "the DENY ACLs never took effect".to_owned());
        std::thread::sleep(Duration::from_millis(50));
    }
    for (version, code) in [(2, INVALID_REQUEST), (6, TOPIC_DELETION_DISABLED)] {
        // By name: the names list before v6, a topic state from v6.
        let mut req = DeleteTopicsRequest {
            timeout_ms: 5_000,
            ..Default::default()
        };
        if version < 6 {
            req.topic_names.push("guarded".to_owned());
        } else {
            req.topics.push(delete_topics_request::DeleteTopicState {
                name: Some("guarded".to_owned()),
                ..Default::default()
            });
        }
        match me.raw(addr, version, RequestKind::DeleteTopics(req)) {
            ResponseKind::DeleteTopics(r) => {
                let got: Vec<(Option<String>, i16)> = r
                    .responses
                    .iter()
                    .map(|t| (t.name.clone(), t.error_code))
                    .collect();
                assert_eq!(got, [(Some("guarded".to_owned()), code)], "v{version}");
            }
            other => panic!("not a DeleteTopics response: {other:?}"),
        }
    }
    assert!(cluster.nodes[0].log_dir().join("guarded-0").exists());
}
