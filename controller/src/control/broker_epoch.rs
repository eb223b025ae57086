//! Kafka's `ClusterControlManager.checkBrokerEpoch`: the check every broker API but
//! registration makes (heartbeats, AlterPartition, AssignReplicasToDirs,
//! AllocateProducerIds) that the request comes from the broker's registered incarnation.
//!
//! It only reads the image; registration itself is [`super::cluster`]'s.

use super::api_error::ApiError;
use crate::image::{BrokerRegistration, MetadataImage};
use rafka_protocol::ErrorCode;

/// The registration of `broker_id` if it has `epoch`; STALE_BROKER_EPOCH otherwise (also for
/// a broker that is not registered), as Kafka's `checkBrokerEpoch`.
pub fn check_broker_epoch(
    image: &MetadataImage,
    broker_id: i32,
    epoch: i64,
) -> Result<&BrokerRegistration, ApiError> {
    let registration = image.broker(broker_id).ok_or_else(|| {
        ApiError::new(
            ErrorCode::StaleBrokerEpoch,
            format!("no broker registration found for broker id {broker_id}"),
        )
    })?;
    if registration.epoch != epoch {
        return Err(ApiError::new(
            ErrorCode::StaleBrokerEpoch,
            format!(
                "expected broker epoch {}, but got broker epoch {epoch}",
                registration.epoch
            ),
        ));
    }
    Ok(registration)
}
