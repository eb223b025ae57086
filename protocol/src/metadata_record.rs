//! Metadata records in Kafka's record framing, as the controller quorum's log and snapshots hold
//! them: an unsigned varint frame version (0), the record type, the record version, then the
//! record itself (every metadata record schema is flexible). The record types are declared in
//! `schema/metadata_records.schema` like every other message.

use crate::messages::MetadataRecord;
use crate::primitives::{put, size, unsigned_varint};
use crate::{DecodeError, DecodeErrorKind, EncodeError, WireError};
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
        MetadataRecord::decode_body(t, v, buf, i)
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

    #[test]
    fn frame_matches_kafkas_layout() {
        let r = MetadataRecord::Topic(crate::messages::TopicRecord {
            name: "t".into(),
            topic_id: crate::Uuid::from_u128(1),
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
