//! Metadata records in Kafka's record framing, as the controller quorum's log and snapshots hold
//! them: an unsigned varint frame version (0), the record type, the record version, then the
//! record itself (every metadata record schema is flexible). The record types are declared in
//! `schema/metadata_records.schema` like every other message.

use crate::decode_error::{DecodeError, DecodeErrorKind};
use crate::encode_error::EncodeError;
use crate::messages::MetadataRecord;
use crate::primitives::WireError;
use crate::primitives::{put, size, unsigned_varint, Counter};
use bytes::{Bytes, BytesMut};

const FRAME_VERSION: u32 = 0;

impl MetadataRecord {
    /// Encodes the record with its frame (frame version, type, version).
    pub fn encode(&self) -> Result<Bytes, EncodeError> {
        let (t, v) = (self.record_type() as u32, self.version() as u32);
        let mut b = BytesMut::with_capacity(
            size::unsigned_varint(FRAME_VERSION)
                + size::unsigned_varint(t)
                + size::unsigned_varint(v)
                + self.body_size(),
        );
        put::unsigned_varint(&mut b, FRAME_VERSION);
        put::unsigned_varint(&mut b, t);
        put::unsigned_varint(&mut b, v);
        self.encode_body(&mut b)?;
        Ok(b.freeze())
    }

    /// Decodes a framed record (all of `buf`).
    pub fn decode(buf: &Bytes) -> Result<MetadataRecord, DecodeError> {
        let err = |field: &'static str, error: WireError| DecodeError {
            message: "MetadataRecord",
            version: -1,
            field,
            error: DecodeErrorKind::Wire(error),
        };
        let fail = |field, e: nom::Err<WireError>| match e {
            nom::Err::Error(w) | nom::Err::Failure(w) => err(field, w),
            nom::Err::Incomplete(_) => err(
                field,
                WireError::Truncated {
                    needed: 1,
                    remaining: 0,
                },
            ),
        };
        let (i, frame) = unsigned_varint(buf).map_err(|e| fail("frame_version", e))?;
        if frame != FRAME_VERSION {
            return Err(err(
                "frame_version",
                WireError::InvalidLength(i64::from(frame)),
            ));
        }
        let (i, t) = unsigned_varint(i).map_err(|e| fail("record_type", e))?;
        let (i, v) = unsigned_varint(i).map_err(|e| fail("record_version", e))?;
        let t = i16::try_from(t)
            .map_err(|_| err("record_type", WireError::InvalidLength(i64::from(t))))?;
        let v = i16::try_from(v)
            .map_err(|_| err("record_version", WireError::InvalidLength(i64::from(v))))?;
        let r = MetadataRecord::decode_body(t, v, buf, i)?;
        // The record is written back at the latest version (`version()`): a record from an older
        // version must be one that version can say, or the log would change its meaning when it
        // is replicated or stored again (an unknown tag of the old version is a field of the new).
        if let Err(EncodeError::TagCollision { tag, .. }) = r.encode_body(&mut Counter::default()) {
            return Err(DecodeError {
                message: "MetadataRecord",
                version: v,
                field: "_tagged_fields",
                error: DecodeErrorKind::Wire(WireError::TagCollision(tag)),
            });
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;

    #[test]
    fn every_record_type_round_trips_with_its_frame() {
        for seed in 0..200 {
            for r in MetadataRecord::random_all(&mut Rng::new(seed)) {
                let b = r.encode().expect("encodes");
                assert_eq!(MetadataRecord::decode(&b).expect("decodes"), r);
                for cut in 0..b.len() {
                    assert!(MetadataRecord::decode(&b.slice(..cut)).is_err());
                }
            }
        }
    }

    /// Found by the decode_raft fuzz target: a BrokerRegistrationChangeRecord v0 carrying an
    /// unknown tag 1 came back from re-encoding (at v2, where tag 1 is InControlledShutdown) with
    /// in_controlled_shutdown = 1.
    #[test]
    fn an_old_record_whose_unknown_tag_is_a_newer_field_is_refused() {
        // frame 0, type 17, version 0, broker id 0, epoch 1, one tagged field: tag 1, 1 byte.
        let mut b = vec![0u8, 17, 0, 0, 0, 0, 0];
        b.extend_from_slice(&1i64.to_be_bytes());
        b.extend_from_slice(&[1, 1, 1, 1]);
        let err = MetadataRecord::decode(&Bytes::from(b.clone())).expect_err("refused");
        assert_eq!(err.error, DecodeErrorKind::Wire(WireError::TagCollision(1)));
        // The same tag is fine where the latest version does not know it either.
        let tag_at = b.len() - 3;
        b[tag_at] = 9;
        assert!(MetadataRecord::decode(&Bytes::from(b)).is_ok());
    }

    #[test]
    fn an_unknown_tag_the_version_knows_is_not_encoded() {
        let r = crate::messages::BrokerRegistrationChangeRecord {
            unknown_tagged_fields: vec![crate::primitives::RawTaggedField {
                tag: 1,
                data: Bytes::from_static(b"\x01"),
            }],
            ..Default::default()
        };
        assert!(matches!(
            MetadataRecord::BrokerRegistrationChange(r).encode(),
            Err(EncodeError::TagCollision { tag: 1, .. })
        ));
    }

    #[test]
    fn frame_matches_kafkas_layout() {
        let r = MetadataRecord::Topic(crate::messages::TopicRecord {
            name: "t".into(),
            topic_id: crate::primitives::Uuid::from_u128(1),
            ..Default::default()
        });
        let b = r.encode().expect("encodes");
        // frame version 0, type 2 (TopicRecord), version 0, compact string "t", uuid, no tags.
        let mut expected = vec![0u8, 2, 0, 2, b't'];
        expected.extend_from_slice(&1u128.to_be_bytes());
        expected.push(0);
        assert_eq!(&b[..], &expected[..]);
    }
}
