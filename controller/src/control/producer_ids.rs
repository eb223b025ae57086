//! Kafka's `ProducerIdControlManager`: AllocateProducerIds (API 67) hands a broker the next
//! block of [`PRODUCER_ID_BLOCK_SIZE`] producer ids; a `ProducerIdsRecord` moves the image's
//! next id past it, so no id is handed out twice, across controller failovers too.

use super::broker_epoch::check_broker_epoch;
use super::controller_result::ControllerResult;
use crate::image::MetadataImage;
use rafka_protocol::messages::{
    AllocateProducerIdsRequest, AllocateProducerIdsResponse, MetadataRecord, ProducerIdsRecord,
};
use rafka_protocol::ErrorCode;

/// Kafka's `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`.
pub const PRODUCER_ID_BLOCK_SIZE: i32 = 1000;

/// AllocateProducerIds (Kafka's `generateNextProducerId`).
pub fn allocate_producer_ids(
    image: &MetadataImage,
    request: &AllocateProducerIdsRequest,
) -> ControllerResult<AllocateProducerIdsResponse> {
    let fail = |code: ErrorCode| {
        ControllerResult::without_records(AllocateProducerIdsResponse {
            error_code: code.code(),
            ..Default::default()
        })
    };
    if let Err(e) = check_broker_epoch(image, request.broker_id, request.broker_epoch) {
        return fail(e.code);
    }
    let start = image.next_producer_id();
    let Some(next) = start.checked_add(i64::from(PRODUCER_ID_BLOCK_SIZE)) else {
        // Kafka: "Exhausted all producerIds as the next block's end producerId has exceeded
        // the int64 type limit".
        return fail(ErrorCode::UnknownServerError);
    };
    let record = MetadataRecord::ProducerIds(ProducerIdsRecord {
        broker_id: request.broker_id,
        broker_epoch: request.broker_epoch,
        next_producer_id: next,
        ..Default::default()
    });
    ControllerResult::new(
        vec![record],
        AllocateProducerIdsResponse {
            producer_id_start: start,
            producer_id_len: PRODUCER_ID_BLOCK_SIZE,
            ..Default::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[test]
    fn blocks_of_a_thousand_and_epoch_checks() {
        let mut k = Kit::three_brokers();
        // (case, broker, epoch, error, start)
        let cases = [
            ("first block", 1, 101, ErrorCode::None, 0),
            ("second block, other broker", 2, 102, ErrorCode::None, 1000),
            ("stale epoch", 1, 100, ErrorCode::StaleBrokerEpoch, -1),
            ("unknown broker", 9, 1, ErrorCode::StaleBrokerEpoch, -1),
            ("third block", 3, 103, ErrorCode::None, 2000),
        ];
        for (name, broker_id, broker_epoch, code, start) in cases {
            let req = AllocateProducerIdsRequest {
                broker_id,
                broker_epoch,
                ..Default::default()
            };
            let result = allocate_producer_ids(&k.image, &req);
            assert_eq!(result.response.error_code, code.code(), "{name}");
            if code == ErrorCode::None {
                assert_eq!(
                    (
                        result.response.producer_id_start,
                        result.response.producer_id_len
                    ),
                    (start, 1000),
                    "{name}"
                );
                assert_eq!(result.records.len(), 1, "{name}");
            } else {
                assert!(result.records.is_empty(), "{name}");
            }
            k.apply(&result.records);
        }
        assert_eq!(k.image.next_producer_id(), 3000);
    }

    #[test]
    fn exhausted_ids_fail_cleanly() {
        let mut k = Kit::three_brokers();
        k.apply(&[MetadataRecord::ProducerIds(ProducerIdsRecord {
            next_producer_id: i64::MAX - 10,
            ..Default::default()
        })]);
        let req = AllocateProducerIdsRequest {
            broker_id: 1,
            broker_epoch: 101,
            ..Default::default()
        };
        let result = allocate_producer_ids(&k.image, &req);
        assert_eq!(
            result.response.error_code,
            ErrorCode::UnknownServerError.code()
        );
        assert!(result.records.is_empty());
    }
}
