//! Kafka's `ClusterControlManager`: broker registration (BrokerRegistration, API 62) and the
//! cluster id. The broker epoch check the other broker APIs make is [`super::broker_epoch`]'s
//! (re-exported here with [`random_uuid`]), so that the managers that call it need not call
//! this one.
//!
//! As in Kafka the broker epoch is the metadata offset its `RegisterBrokerRecord` is committed
//! at (the caller passes its next write offset), so "caught up with its registration" is "its
//! metadata offset has reached its epoch". A new incarnation gets a new epoch and starts fenced;
//! the same incarnation registering again keeps its epoch and state (an amendment).
//!
//! One strengthening over Kafka (which does it only with ELR): when a new incarnation replaces
//! a registration the image still shows unfenced, the old incarnation's leaderships and ISR
//! places are given up first, exactly as if it had been fenced — so no partition keeps a leader
//! that restarted.

use super::api_error::ApiError;
pub use super::broker_epoch::check_broker_epoch;
use super::controller_config::ControllerConfig;
use super::controller_result::ControllerResult;
use super::heartbeats::BrokerHeartbeatManager;
pub use super::random_uuid::random_uuid;
use super::replication::brokers_removed_changes;
use crate::image::MetadataImage;
use rafka_protocol::messages::{
    register_broker_record as rbr, BrokerRegistrationRequest, BrokerRegistrationResponse,
    ClusterIdRecord, MetadataRecord, RegisterBrokerRecord,
};
use rafka_protocol::ErrorCode;
use std::time::Instant;

/// The `ClusterIdRecord` for a cluster whose image has no id yet: `configured` (`cluster.id`)
/// or a new random one (22 characters of base64, Kafka's form). `None` if the image has one.
pub fn cluster_id_record(
    image: &MetadataImage,
    configured: Option<&str>,
    new_id: &mut dyn FnMut() -> u128,
) -> Option<MetadataRecord> {
    if image.cluster_id().is_some() {
        return None;
    }
    let cluster_id = configured.map_or_else(|| random_uuid(new_id).to_string(), str::to_string);
    Some(MetadataRecord::ClusterId(ClusterIdRecord {
        cluster_id,
        ..Default::default()
    }))
}

fn failure(e: ApiError) -> ControllerResult<BrokerRegistrationResponse> {
    ControllerResult::without_records(BrokerRegistrationResponse {
        error_code: e.code.code(),
        broker_epoch: -1,
        ..Default::default()
    })
}

/// BrokerRegistration (Kafka's `ClusterControlManager.registerBroker`).
pub fn register_broker(
    image: &MetadataImage,
    config: &ControllerConfig,
    heartbeats: &mut BrokerHeartbeatManager,
    request: &BrokerRegistrationRequest,
    next_write_offset: i64,
    now: Instant,
) -> ControllerResult<BrokerRegistrationResponse> {
    let expected = image.cluster_id().or(config.cluster_id.as_deref());
    // An empty id is a new broker-only node that has not seen the log yet (it follows it as a
    // learner only once registered): it adopts the cluster's id. Any other id must match.
    let adopts = request.cluster_id.is_empty() && image.cluster_id().is_some();
    if !adopts && expected != Some(request.cluster_id.as_str()) {
        return failure(ApiError::new(
            ErrorCode::InconsistentClusterId,
            format!(
                "expected cluster id {expected:?}, but got cluster id {}",
                request.cluster_id
            ),
        ));
    }
    let broker_id = request.broker_id;
    if broker_id < 0 {
        return failure(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("invalid broker id {broker_id}"),
        ));
    }
    let existing = image.broker(broker_id);
    if let Some(old) = existing {
        heartbeats.observe_contacts(image);
        if heartbeats.has_valid_session(broker_id, now)
            && old.incarnation_id != request.incarnation_id
        {
            return failure(ApiError::new(
                ErrorCode::DuplicateBrokerRegistration,
                "another broker is registered with that broker id",
            ));
        }
    }
    if request.is_migrating_zk_broker {
        return failure(ApiError::new(
            ErrorCode::BrokerIdNotRegistered,
            "controller does not support registering ZK brokers",
        ));
    }
    let mut records = Vec::new();
    let mut record = RegisterBrokerRecord {
        broker_id,
        is_migrating_zk_broker: false,
        incarnation_id: request.incarnation_id,
        end_points: request
            .listeners
            .iter()
            .map(|l| rbr::BrokerEndpoint {
                name: l.name.clone(),
                host: l.host.clone(),
                port: l.port,
                security_protocol: l.security_protocol,
                ..Default::default()
            })
            .collect(),
        features: request
            .features
            .iter()
            .map(|f| rbr::BrokerFeature {
                name: f.name.clone(),
                min_supported_version: f.min_supported_version,
                max_supported_version: f.max_supported_version,
                ..Default::default()
            })
            .collect(),
        rack: request.rack.clone(),
        log_dirs: request.log_dirs.clone(),
        ..Default::default()
    };
    let new_incarnation = existing.is_none_or(|old| old.incarnation_id != request.incarnation_id);
    match existing {
        Some(old) if !new_incarnation => {
            record.broker_epoch = old.epoch;
            record.fenced = old.fenced;
            record.in_controlled_shutdown = old.in_controlled_shutdown;
        }
        _ => {
            // Epochs only grow, even if the caller's offsets were to lag.
            record.broker_epoch = existing.map_or(next_write_offset, |old| {
                next_write_offset.max(old.epoch + 1)
            });
            record.fenced = true;
            record.in_controlled_shutdown = false;
            if existing.is_some_and(|old| !old.fenced) {
                records.extend(brokers_removed_changes(image, config, &[broker_id]));
            }
        }
    }
    let (epoch, fenced) = (record.broker_epoch, record.fenced);
    records.push(MetadataRecord::RegisterBroker(record));
    if new_incarnation {
        heartbeats.remove(broker_id);
    }
    heartbeats.register(broker_id, fenced, now);
    tracing::info!(
        node_id = broker_id,
        epoch,
        new_incarnation,
        "broker registration"
    );
    ControllerResult::new(
        records,
        BrokerRegistrationResponse {
            broker_epoch: epoch,
            ..Default::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use rafka_protocol::messages::broker_registration_request::Listener;
    use rafka_protocol::Uuid;

    fn request(id: i32, incarnation: u128, cluster: &str) -> BrokerRegistrationRequest {
        BrokerRegistrationRequest {
            broker_id: id,
            cluster_id: cluster.into(),
            incarnation_id: Uuid::from_u128(incarnation),
            listeners: vec![Listener {
                name: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: 9092,
                ..Default::default()
            }],
            rack: Some("r1".into()),
            ..Default::default()
        }
    }

    #[test]
    fn registration_cases() {
        // Brokers 1..=3 are registered (incarnation 1000+id, epoch 100+id, unfenced); broker 3's
        // session has expired. (case, request, fenced after, error, epoch)
        let cases: Vec<(&str, BrokerRegistrationRequest, bool, ErrorCode, i64)> = vec![
            (
                "new broker",
                request(4, 7, CLUSTER),
                true,
                ErrorCode::None,
                500,
            ),
            (
                "wrong cluster id",
                request(4, 7, "other"),
                false,
                ErrorCode::InconsistentClusterId,
                -1,
            ),
            (
                "a new broker without a cluster id adopts the cluster's",
                request(4, 7, ""),
                true,
                ErrorCode::None,
                500,
            ),
            (
                "negative id",
                request(-1, 7, CLUSTER),
                false,
                ErrorCode::InvalidRequest,
                -1,
            ),
            (
                "live session, other incarnation",
                request(1, 7, CLUSTER),
                false,
                ErrorCode::DuplicateBrokerRegistration,
                -1,
            ),
            (
                "same incarnation amends, keeps epoch",
                request(1, 1001, CLUSTER),
                false,
                ErrorCode::None,
                101,
            ),
            (
                "expired session, new incarnation",
                request(3, 7, CLUSTER),
                true,
                ErrorCode::None,
                500,
            ),
            (
                "zk migration refused",
                BrokerRegistrationRequest {
                    is_migrating_zk_broker: true,
                    ..request(5, 7, CLUSTER)
                },
                false,
                ErrorCode::BrokerIdNotRegistered,
                -1,
            ),
        ];
        for (name, req, fenced, code, epoch) in cases {
            let mut k = Kit::three_brokers();
            k.controller
                .heartbeats_mut()
                .register(3, false, k.now - k.config.session_timeout * 2);
            let result = k.controller.register_broker(&k.image, &req, 500, k.now);
            assert_eq!(result.response.error_code, code.code(), "{name}");
            assert_eq!(result.response.broker_epoch, epoch, "{name}");
            if code != ErrorCode::None {
                assert!(result.records.is_empty(), "{name}: a failure wrote records");
                continue;
            }
            k.apply(&result.records);
            let b = k.image.broker(req.broker_id).expect("registered");
            assert_eq!(b.fenced, fenced, "{name}: fenced");
            assert_eq!(
                (b.epoch, b.incarnation_id),
                (epoch, req.incarnation_id),
                "{name}"
            );
        }
    }

    #[test]
    fn a_new_incarnation_of_a_live_leader_gives_up_its_partitions() {
        let mut k = Kit::three_brokers();
        k.create_topic("t", 1, 3);
        let leader = k.partition("t", 0).leader;
        k.controller
            .heartbeats_mut()
            .register(leader, false, k.now - k.config.session_timeout * 2);
        let result =
            k.controller
                .register_broker(&k.image, &request(leader, 99, CLUSTER), 700, k.now);
        assert_eq!(result.response.error_code, 0);
        k.apply(&result.records);
        let p = k.partition("t", 0);
        assert_ne!(p.leader, leader);
        assert!(!p.isr.contains(&leader));
        assert!(k
            .image
            .broker(leader)
            .is_some_and(|b| b.fenced && b.epoch == 700));
    }

    #[test]
    fn cluster_id_is_written_once() {
        let mut bits = || 0x0123_4567_89ab_cdef_0123_4567_89ab_cdefu128;
        let empty = MetadataImage::new();
        match cluster_id_record(&empty, None, &mut bits) {
            Some(MetadataRecord::ClusterId(r)) => assert_eq!(r.cluster_id.len(), 22),
            other => panic!("{other:?}"),
        }
        match cluster_id_record(&empty, Some("configured"), &mut bits) {
            Some(MetadataRecord::ClusterId(r)) => assert_eq!(r.cluster_id, "configured"),
            other => panic!("{other:?}"),
        }
        assert!(cluster_id_record(&Kit::three_brokers().image, None, &mut bits).is_none());
    }
}
