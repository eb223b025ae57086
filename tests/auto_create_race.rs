//! Auto-creation races: many clients asking for the same new topic at once each trigger a
//! creation, and all but one are answered TOPIC_ALREADY_EXISTS by the controller. That race is
//! handled — every client gets the topic — and is not news: nothing about it is logged at INFO
//! (librdkafka's suite produced 79 pairs of such lines in one run).

mod common;

use common::{raw_request, Cluster};
use rafka_protocol::messages::metadata_request::MetadataRequestTopic;
use rafka_protocol::messages::{MetadataRequest, RequestKind, ResponseKind};
use std::time::Duration;

const TOPICS: usize = 10;
const CLIENTS: usize = 8;

#[test]
fn racing_auto_creations_are_answered_and_not_logged_at_info() {
    let cluster = Cluster::start(1, &[("auto.create.topics.enable", "true")]);
    let n = &cluster.nodes[0];
    let addr = n.addr();
    std::thread::scope(|s| {
        for c in 0..CLIENTS {
            s.spawn(move || {
                for t in 0..TOPICS {
                    let req = MetadataRequest {
                        topics: Some(vec![MetadataRequestTopic {
                            name: Some(format!("raced-{t}")),
                            ..Default::default()
                        }]),
                        allow_auto_topic_creation: true,
                        ..Default::default()
                    };
                    let r = raw_request(
                        addr,
                        12,
                        RequestKind::Metadata(req),
                        Duration::from_secs(20),
                    )
                    .unwrap_or_else(|e| panic!("client {c} topic {t}: {e}"));
                    let ResponseKind::Metadata(m) = r else {
                        panic!("not Metadata")
                    };
                    // Created by this request or another: known, or being created.
                    let code = m.topics[0].error_code;
                    assert!(
                        code == 0 || code == 5, // LEADER_NOT_AVAILABLE while it is created
                        "client {c} topic {t}: error {code}"
                    );
                }
            });
        }
    });
    let md = common::metadata(addr, None, Duration::from_secs(5)).expect("metadata");
    let names: Vec<String> = md.topics.into_iter().filter_map(|t| t.name).collect();
    for t in 0..TOPICS {
        assert!(
            names.contains(&format!("raced-{t}")),
            "raced-{t} in {names:?}"
        );
    }
    let log = std::fs::read_to_string(n.log_file()).expect("rafka.log");
    let noisy: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" INFO ") || l.contains(" WARN "))
        .filter(|l| {
            l.contains("TOPIC_ALREADY_EXISTS") || l.contains("error=36") || l.contains("refused")
        })
        .collect();
    assert!(
        noisy.is_empty(),
        "the handled race logged at INFO:\n{}",
        noisy.join("\n")
    );
}
