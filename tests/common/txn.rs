//! Raw-frame helpers shared by the transaction tests: coordinator lookup, OffsetFetch and
//! DescribeTransactions.

use super::raw_request;
use rafka_protocol::messages::{FindCoordinatorRequest, RequestKind, ResponseKind};
use rafka_protocol::ErrorCode;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);

/// FindCoordinator for `key` (`key_type` 0: group, 1: transactional id) until it answers one.
pub fn find_coordinator(addr: SocketAddr, key: &str, key_type: i8) {
    let find = FindCoordinatorRequest {
        key: key.into(),
        key_type,
        ..Default::default()
    };
    let deadline = Instant::now() + T;
    loop {
        let Ok(ResponseKind::FindCoordinator(r)) =
            raw_request(addr, 3, RequestKind::FindCoordinator(find.clone()), T)
        else {
            panic!("FindCoordinator")
        };
        if r.error_code == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "no coordinator for {key}: {r:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// OffsetFetch v7 of partition 0 of `topic` for `group`: (offset, error), retried while the
/// group's coordinator is missing or loading.
pub fn offset_fetch(
    addr: SocketAddr,
    group: &str,
    topic: &str,
    require_stable: bool,
) -> (i64, i16) {
    use rafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
    let req = rafka_protocol::messages::OffsetFetchRequest {
        group_id: group.into(),
        topics: Some(vec![OffsetFetchRequestTopic {
            name: topic.into(),
            partition_indexes: vec![0],
            ..Default::default()
        }]),
        require_stable,
        ..Default::default()
    };
    let deadline = Instant::now() + T;
    loop {
        let Ok(ResponseKind::OffsetFetch(r)) =
            raw_request(addr, 7, RequestKind::OffsetFetch(req.clone()), T)
        else {
            panic!("OffsetFetch")
        };
        let retriable = [
            ErrorCode::CoordinatorNotAvailable.code(),
            ErrorCode::CoordinatorLoadInProgress.code(),
            ErrorCode::NotCoordinator.code(),
        ];
        if retriable.contains(&r.error_code) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        assert_eq!(r.error_code, 0, "OffsetFetch {group}");
        let p = &r.topics[0].partitions[0];
        return (p.committed_offset, p.error_code);
    }
}

/// Polls `offset_fetch` until it answers `want` (within `T`).
pub fn wait_offset(addr: SocketAddr, group: &str, topic: &str, stable: bool, want: (i64, i16)) {
    let deadline = Instant::now() + T;
    loop {
        let got = offset_fetch(addr, group, topic, stable);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{group} {topic} (require_stable {stable}): {got:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// DescribeTransactions v0 for `ids`: the coordinator's answer for each.
pub fn describe_transactions(
    addr: SocketAddr,
    ids: &[&str],
) -> Vec<rafka_protocol::messages::describe_transactions_response::TransactionState> {
    let req = rafka_protocol::messages::DescribeTransactionsRequest {
        transactional_ids: ids.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let Ok(ResponseKind::DescribeTransactions(r)) =
        raw_request(addr, 0, RequestKind::DescribeTransactions(req), T)
    else {
        panic!("DescribeTransactions")
    };
    r.transaction_states
}

/// Waits until `id`'s transaction is in `state` (e.g. `CompleteAbort`: its markers written).
pub fn wait_transaction_state(addr: SocketAddr, id: &str, state: &str) {
    let deadline = Instant::now() + T;
    loop {
        let got = describe_transactions(addr, &[id]).remove(0);
        if got.transaction_state == state {
            return;
        }
        assert!(Instant::now() < deadline, "{id}: {got:?}, want {state}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
