//! Until rafka has a transaction coordinator (#15), a transactional producer fails fast with a
//! clear error: FindCoordinator for a transactional id answers TRANSACTIONAL_ID_AUTHORIZATION_FAILED
//! with a message, which librdkafka treats as fatal — `init_transactions()` returns at once
//! instead of retrying COORDINATOR_NOT_AVAILABLE until its timeout.

mod common;

use common::{raw_request, Cluster};
use rafka_protocol::messages::{FindCoordinatorRequest, RequestKind, ResponseKind};
use rafka_protocol::ErrorCode;
use rdkafka::producer::{BaseProducer, Producer};
use std::time::{Duration, Instant};

#[test]
fn init_transactions_fails_fast_with_a_clear_error() {
    let cluster = Cluster::single();
    let n = &cluster.nodes[0];

    // The raw answer, v3 (single key) and v4 (batched keys).
    let req = FindCoordinatorRequest {
        key: "txn-1".into(),
        key_type: 1,
        ..Default::default()
    };
    let ResponseKind::FindCoordinator(r) = raw_request(
        n.addr(),
        3,
        RequestKind::FindCoordinator(req),
        Duration::from_secs(5),
    )
    .expect("FindCoordinator v3") else {
        panic!("not FindCoordinator")
    };
    assert_eq!(
        r.error_code,
        ErrorCode::TransactionalIdAuthorizationFailed.code()
    );
    assert!(
        r.error_message
            .as_deref()
            .is_some_and(|m| m.contains("transactions")),
        "{:?}",
        r.error_message
    );
    let req = FindCoordinatorRequest {
        key_type: 1,
        coordinator_keys: vec!["txn-1".into(), "txn-2".into()],
        ..Default::default()
    };
    let ResponseKind::FindCoordinator(r) = raw_request(
        n.addr(),
        4,
        RequestKind::FindCoordinator(req),
        Duration::from_secs(5),
    )
    .expect("FindCoordinator v4") else {
        panic!("not FindCoordinator")
    };
    let codes: Vec<i16> = r.coordinators.iter().map(|c| c.error_code).collect();
    let refused = ErrorCode::TransactionalIdAuthorizationFailed.code();
    assert_eq!(codes, [refused, refused]);

    // librdkafka: init_transactions() with a 30 s timeout returns an error within seconds.
    let producer: BaseProducer = common::client_config(
        &n.bootstrap(),
        &[
            ("transactional.id", "txn-1"),
            ("transaction.timeout.ms", "60000"),
        ],
    )
    .create()
    .expect("transactional producer");
    let started = Instant::now();
    let result = producer.init_transactions(Duration::from_secs(30));
    let took = started.elapsed();
    let err = result.expect_err("init_transactions must fail: rafka has no transactions");
    assert!(
        took < Duration::from_secs(5),
        "init_transactions took {took:?} to fail: {err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("Transactional Id authorization failed")
            || text.contains("TRANSACTIONAL_ID_AUTHORIZATION_FAILED"),
        "{text}"
    );
    assert!(text.contains("does not support transactions"), "{text}");
}
