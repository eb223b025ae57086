//! Data-driven cases for the decision: each case is a set of ACLs, the authorizer's settings
//! and checks with their expected result, written as text.

use super::*;
use crate::KafkaPrincipal;

/// Parses `TYPE PATTERN name principal host OPERATION PERMISSION`.
fn binding(line: &str) -> AclBinding {
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f.len(), 7, "acl line {line:?}");
    AclBinding::new(
        ResourcePattern::new(
            ResourceType::parse(f[0]).expect("type"),
            f[2],
            PatternType::parse(f[1]).expect("pattern type"),
        ),
        AccessControlEntry {
            principal: f[3].to_owned(),
            host: f[4].to_owned(),
            operation: AclOperation::parse(f[5]).expect("operation"),
            permission_type: AclPermissionType::parse(f[6]).expect("permission"),
        },
    )
}

/// Runs a script: `acl …` adds an ACL, `super …` and `everyone true|false` configure,
/// `check principal host OPERATION TYPE name ALLOWED|DENIED` asserts.
fn run(script: &str) {
    let mut index = AclIndex::new();
    let mut super_users = String::new();
    let mut everyone = false;
    let mut next_id = 1u128;
    for (n, line) in script.lines().map(str::trim).enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
        match cmd {
            "acl" => {
                let b = binding(rest);
                b.validate().expect("valid acl");
                index.insert(next_id, b);
                next_id += 1;
            }
            "super" => super_users = rest.to_owned(),
            "everyone" => everyone = rest == "true",
            "check" => {
                let f: Vec<&str> = rest.split_whitespace().collect();
                assert_eq!(f.len(), 6, "line {n}: {line}");
                let auth = StandardAuthorizer::new(&super_users, everyone);
                let principal = KafkaPrincipal::parse(f[0]).expect("principal");
                let got = auth.authorize(
                    &index,
                    &principal,
                    f[1],
                    AclOperation::parse(f[2]).expect("operation"),
                    ResourceType::parse(f[3]).expect("type"),
                    f[4],
                );
                let want = match f[5] {
                    "ALLOWED" => AuthorizationResult::Allowed,
                    "DENIED" => AuthorizationResult::Denied,
                    other => panic!("line {n}: expected ALLOWED or DENIED, got {other}"),
                };
                assert_eq!(got, want, "line {n}: {line}");
            }
            other => panic!("line {n}: unknown command {other}"),
        }
    }
}

#[test]
fn no_acls_follows_allow_everyone_if_no_acl_found() {
    run("
        check User:alice 10.0.0.1 READ TOPIC t DENIED
        everyone true
        check User:alice 10.0.0.1 READ TOPIC t ALLOWED
        # an ACL on the resource for someone else: no longer 'no acl found'
        acl TOPIC LITERAL t User:bob * READ ALLOW
        check User:alice 10.0.0.1 READ TOPIC t DENIED
        check User:bob 10.0.0.1 READ TOPIC t ALLOWED
        # other resources still have none
        check User:alice 10.0.0.1 READ TOPIC u ALLOWED
    ");
}

#[test]
fn literal_prefixed_and_wildcard_resources() {
    run("
        acl TOPIC LITERAL orders User:alice * WRITE ALLOW
        acl TOPIC PREFIXED app- User:alice * READ ALLOW
        acl GROUP LITERAL * User:alice * READ ALLOW
        check User:alice 1.1.1.1 WRITE TOPIC orders ALLOWED
        check User:alice 1.1.1.1 WRITE TOPIC orders2 DENIED
        check User:alice 1.1.1.1 WRITE TOPIC order DENIED
        check User:alice 1.1.1.1 READ TOPIC app- ALLOWED
        check User:alice 1.1.1.1 READ TOPIC app-x ALLOWED
        check User:alice 1.1.1.1 READ TOPIC ap DENIED
        check User:alice 1.1.1.1 READ TOPIC xapp-x DENIED
        check User:alice 1.1.1.1 READ GROUP anything ALLOWED
        check User:alice 1.1.1.1 READ GROUP * ALLOWED
        # the type must match
        check User:alice 1.1.1.1 READ GROUP orders ALLOWED
        check User:alice 1.1.1.1 READ TRANSACTIONAL_ID app-x DENIED
    ");
}

#[test]
fn deny_wins_and_denies_only_its_operation() {
    run("
        acl TOPIC PREFIXED a User:alice * ALL ALLOW
        acl TOPIC LITERAL abc User:alice * WRITE DENY
        check User:alice 1.1.1.1 READ TOPIC abc ALLOWED
        check User:alice 1.1.1.1 WRITE TOPIC abc DENIED
        check User:alice 1.1.1.1 WRITE TOPIC abd ALLOWED
        # DENY WRITE does not deny DESCRIBE (which WRITE would imply for ALLOW)
        check User:alice 1.1.1.1 DESCRIBE TOPIC abc ALLOWED
        # DENY ALL denies everything, for everyone through User:*
        acl TOPIC LITERAL * User:* 9.9.9.9 ALL DENY
        check User:alice 9.9.9.9 READ TOPIC abd DENIED
        check User:alice 9.9.9.8 READ TOPIC abd ALLOWED
    ");
}

#[test]
fn implications() {
    run("
        acl TOPIC LITERAL r User:a * READ ALLOW
        acl TOPIC LITERAL w User:a * WRITE ALLOW
        acl TOPIC LITERAL d User:a * DELETE ALLOW
        acl TOPIC LITERAL al User:a * ALTER ALLOW
        acl TOPIC LITERAL c User:a * CREATE ALLOW
        acl TOPIC LITERAL ac User:a * ALTER_CONFIGS ALLOW
        acl TOPIC LITERAL dc User:a * DESCRIBE_CONFIGS ALLOW
        acl CLUSTER LITERAL kafka-cluster User:a * ALL ALLOW
        check User:a h DESCRIBE TOPIC r ALLOWED
        check User:a h DESCRIBE TOPIC w ALLOWED
        check User:a h DESCRIBE TOPIC d ALLOWED
        check User:a h DESCRIBE TOPIC al ALLOWED
        check User:a h DESCRIBE TOPIC c DENIED
        check User:a h DESCRIBE_CONFIGS TOPIC ac ALLOWED
        check User:a h ALTER_CONFIGS TOPIC dc DENIED
        check User:a h DESCRIBE TOPIC dc DENIED
        check User:a h WRITE TOPIC r DENIED
        check User:a h READ TOPIC w DENIED
        check User:a h CLUSTER_ACTION CLUSTER kafka-cluster ALLOWED
        check User:a h IDEMPOTENT_WRITE CLUSTER kafka-cluster ALLOWED
    ");
}

#[test]
fn principals_hosts_and_super_users() {
    run("
        acl TOPIC LITERAL t User:* 10.0.0.1 READ ALLOW
        acl TOPIC LITERAL t User:bob * WRITE ALLOW
        check User:anyone 10.0.0.1 READ TOPIC t ALLOWED
        check User:anyone 10.0.0.2 READ TOPIC t DENIED
        check User:bob 10.0.0.2 WRITE TOPIC t ALLOWED
        check User:bobby 10.0.0.2 WRITE TOPIC t DENIED
        # User:* is about the User type only
        check Group:x 10.0.0.1 READ TOPIC t DENIED
        super User:admin; User:ops
        check User:admin 1.2.3.4 ALTER CLUSTER kafka-cluster ALLOWED
        check User:ops 1.2.3.4 DELETE TOPIC t ALLOWED
        check User:op 1.2.3.4 DELETE TOPIC t DENIED
    ");
}

#[test]
fn index_removes_and_finds() {
    let mut index = AclIndex::new();
    let a = binding("TOPIC PREFIXED ab User:x * READ ALLOW");
    let b = binding("TOPIC PREFIXED ab User:y * READ ALLOW");
    index.insert(1, a.clone());
    index.insert(2, b.clone());
    assert_eq!(index.find(&b), Some(2));
    assert_eq!(index.applicable(ResourceType::Topic, "abc").count(), 2);
    assert_eq!(index.remove(1), Some(a.clone()));
    assert_eq!(index.find(&a), None);
    assert_eq!(index.applicable(ResourceType::Topic, "abc").count(), 1);
    index.remove(2);
    assert!(index.is_empty());
    assert_eq!(index.patterns().count(), 0, "empty maps are dropped");
    // A multi-byte name: prefixes cut on character boundaries.
    index.insert(3, binding("TOPIC PREFIXED é User:x * READ ALLOW"));
    assert_eq!(index.applicable(ResourceType::Topic, "éé").count(), 1);
}

fn filter(t: &str, name: &str, p: &str) -> ResourcePatternFilter {
    ResourcePatternFilter {
        resource_type: ResourceType::parse(t).expect("type"),
        name: (name != "null").then(|| name.to_owned()),
        pattern_type: PatternType::parse(p).expect("pattern"),
    }
}

#[test]
fn pattern_filters() {
    let lit = ResourcePattern::new(ResourceType::Topic, "foo", PatternType::Literal);
    let star = ResourcePattern::new(ResourceType::Topic, "*", PatternType::Literal);
    let pre = ResourcePattern::new(ResourceType::Topic, "fo", PatternType::Prefixed);
    // (filter, [lit, star, pre])
    let cases = [
        (filter("ANY", "null", "ANY"), [true, true, true]),
        (filter("TOPIC", "foo", "ANY"), [true, false, false]),
        (filter("TOPIC", "foo", "MATCH"), [true, true, true]),
        (filter("TOPIC", "foo", "LITERAL"), [true, false, false]),
        (filter("TOPIC", "fo", "PREFIXED"), [false, false, true]),
        (filter("TOPIC", "null", "PREFIXED"), [false, false, true]),
        (filter("GROUP", "null", "ANY"), [false, false, false]),
        (filter("TOPIC", "bar", "MATCH"), [false, true, false]),
        (filter("TOPIC", "*", "LITERAL"), [false, true, false]),
    ];
    for (f, want) in cases {
        let got = [f.matches(&lit), f.matches(&star), f.matches(&pre)];
        assert_eq!(got, want, "{f:?}");
    }
}

#[test]
fn validation_refuses_what_kafka_refuses() {
    let ok = binding("TOPIC LITERAL t User:a * READ ALLOW");
    assert!(ok.validate().is_ok());
    let bad = [
        ("ANY LITERAL t User:a * READ ALLOW", "type"),
        ("TOPIC MATCH t User:a * READ ALLOW", "pattern"),
        ("TOPIC ANY t User:a * READ ALLOW", "pattern"),
        ("TOPIC LITERAL t User:a * ANY ALLOW", "operation"),
        ("TOPIC LITERAL t User:a * READ ANY", "permission"),
        ("CLUSTER LITERAL other User:a * ALTER ALLOW", "cluster name"),
        ("TOPIC LITERAL t alice * READ ALLOW", "principal"),
    ];
    for (line, why) in bad {
        assert!(binding(line).validate().is_err(), "{why}: {line}");
    }
    let mut unknown = ok.clone();
    unknown.pattern.resource_type = ResourceType::from_code(42);
    assert_eq!(unknown.pattern.resource_type, ResourceType::Unknown);
    assert!(unknown.validate().is_err());
    let mut empty = ok;
    empty.pattern.name.clear();
    assert_eq!(empty.validate(), Err(AclError::EmptyResourceName));
}

#[test]
fn codes_are_kafkas() {
    assert_eq!(ResourceType::Topic.code(), 2);
    assert_eq!(ResourceType::DelegationToken.code(), 6);
    assert_eq!(PatternType::Prefixed.code(), 4);
    assert_eq!(AclOperation::DescribeTokens.code(), 14);
    assert_eq!(AclOperation::IdempotentWrite.code(), 12);
    assert_eq!(AclPermissionType::Allow.code(), 3);
    for op in AclOperation::ALL_VALUES {
        assert_eq!(AclOperation::from_code(op.code()), *op);
        assert_eq!(AclOperation::parse(op.name()), Some(*op));
    }
    assert_eq!(AclOperation::from_code(-1), AclOperation::Unknown);
}

#[test]
fn authorized_operations_bit_sets() {
    // Kafka's sets with no ACL restriction (librdkafka's test 0081 checks these).
    let auth = StandardAuthorizer::new("User:root", false);
    let index = AclIndex::new();
    let root = KafkaPrincipal::user("root");
    let topic = auth.authorized_operations(&index, &root, "h", ResourceType::Topic, "t");
    // READ WRITE CREATE DELETE ALTER DESCRIBE DESCRIBE_CONFIGS ALTER_CONFIGS
    assert_eq!(
        topic,
        (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11)
    );
    let group = auth.authorized_operations(&index, &root, "h", ResourceType::Group, "g");
    // READ DELETE DESCRIBE DESCRIBE_CONFIGS ALTER_CONFIGS (Kafka 4; 0081 with 4.0 checks all five)
    assert_eq!(
        group,
        (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11)
    );
    let cluster =
        auth.authorized_operations(&index, &root, "h", ResourceType::Cluster, CLUSTER_NAME);
    assert_eq!(
        cluster,
        (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12)
    );
    // A reader of one topic: READ and the DESCRIBE it implies.
    let mut index = AclIndex::new();
    index.insert(1, binding("TOPIC LITERAL t User:a * READ ALLOW"));
    let a = KafkaPrincipal::user("a");
    assert_eq!(
        auth.authorized_operations(&index, &a, "h", ResourceType::Topic, "t"),
        (1 << 3) | (1 << 8)
    );
    assert_eq!(
        auth.authorized_operations(&index, &a, "h", ResourceType::Topic, "u"),
        0
    );
}

#[test]
fn authorize_by_resource_type_as_kip_679() {
    let auth = StandardAuthorizer::new("User:root", false);
    let a = KafkaPrincipal::user("a");
    let by_type = |index: &AclIndex| {
        auth.authorize_by_resource_type(index, &a, "h", AclOperation::Write, ResourceType::Topic)
    };
    let mut index = AclIndex::new();
    assert_eq!(by_type(&index), AuthorizationResult::Denied);
    index.insert(1, binding("TOPIC PREFIXED app- User:a * WRITE ALLOW"));
    assert_eq!(by_type(&index), AuthorizationResult::Allowed);
    // A DENY on a shorter prefix covers the allowed prefix.
    index.insert(2, binding("TOPIC PREFIXED app User:a * WRITE DENY"));
    assert_eq!(by_type(&index), AuthorizationResult::Denied);
    // An ALLOW elsewhere that no DENY covers.
    index.insert(3, binding("TOPIC LITERAL other User:* * ALL ALLOW"));
    assert_eq!(by_type(&index), AuthorizationResult::Allowed);
    // DENY on every topic.
    index.insert(4, binding("TOPIC LITERAL * User:a * WRITE DENY"));
    assert_eq!(by_type(&index), AuthorizationResult::Denied);
    // READ does not grant WRITE; a super user is allowed.
    let mut readers = AclIndex::new();
    readers.insert(1, binding("TOPIC LITERAL t User:a * READ ALLOW"));
    assert_eq!(by_type(&readers), AuthorizationResult::Denied);
    let root = KafkaPrincipal::user("root");
    assert_eq!(
        auth.authorize_by_resource_type(
            &readers,
            &root,
            "h",
            AclOperation::Write,
            ResourceType::Topic
        ),
        AuthorizationResult::Allowed
    );
}
