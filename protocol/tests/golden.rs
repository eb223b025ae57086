//! Golden frames from real clients (`tests/data/client-requests`, see its README): every request
//! whose (API, version) we implement decodes and re-encodes to the same bytes; the others are
//! refused with the error the broker needs to answer them.

use bytes::Bytes;
use rafka_protocol::frame::FrameError;
use rafka_protocol::messages::RequestKind;
use rafka_protocol::{ApiKey, RequestFrame};

fn frames() -> Vec<(String, Bytes)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/client-requests");
    let mut out: Vec<(String, Bytes)> = std::fs::read_dir(dir)
        .expect("golden frames")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .map(|p| {
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, Bytes::from(std::fs::read(&p).expect("read frame")))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn client_frames_decode_and_reencode_byte_for_byte() {
    let all = frames();
    assert!(
        all.len() >= 60,
        "expected the captured frames, found {}",
        all.len()
    );
    let (mut decoded, mut refused) = (0, 0);
    for (name, file) in &all {
        let size = i32::from_be_bytes(file[..4].try_into().expect("4 bytes"));
        assert_eq!(size as usize, file.len() - 4, "{name}: size prefix");
        let frame = file.slice(4..);
        let key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let implemented = ApiKey::from_key(key)
            .and_then(RequestKind::versions)
            .is_some_and(|r| r.contains(version));
        match RequestFrame::decode(&frame) {
            Ok(req) => {
                assert!(implemented, "{name}: decoded an unimplemented version");
                assert_eq!(req.header.request_api_key, key);
                assert_eq!(req.body.api_key().key(), key);
                let again = req.encode().expect("re-encodes");
                assert_eq!(&again[..], &file[..], "{name}: re-encoded bytes differ");
                decoded += 1;
            }
            Err(FrameError::UnsupportedVersion { header }) => {
                assert!(!implemented, "{name}: refused an implemented version");
                assert_eq!(header.request_api_version, version);
                refused += 1;
            }
            Err(FrameError::UnknownApi { key: k, header }) => {
                assert!(!implemented, "{name}");
                assert_eq!(k, key);
                assert!(
                    header.is_some(),
                    "{name}: the header should still be readable"
                );
                refused += 1;
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
    println!("{decoded} client frames decoded and re-encoded byte for byte, {refused} refused as unimplemented");
    // 63 frames: all but API 71 (not served), OffsetFetch v9 and FindCoordinator v6 (above our ranges).
    assert_eq!((decoded, refused), (59, 4));
}

#[test]
fn produce_records_are_a_slice_of_the_frame() {
    let (name, file) = frames()
        .into_iter()
        .find(|(n, _)| n.starts_with("librdkafka2.16-0-v10"))
        .expect("a librdkafka produce frame");
    let frame = file.slice(4..);
    let req = RequestFrame::decode(&frame).expect("decodes");
    let RequestKind::Produce(p) = req.body else {
        panic!("{name}: not a produce request")
    };
    let records = p.topic_data[0].partition_data[0]
        .records
        .as_ref()
        .and_then(|r| r.as_bytes())
        .expect("records");
    let start = frame.as_ptr() as usize;
    let at = records.as_ptr() as usize;
    assert!(
        at > start && at + records.len() <= start + frame.len(),
        "records were copied"
    );
}

#[test]
fn every_corruption_of_a_frame_is_an_error_or_a_value_never_a_panic() {
    for (_, file) in frames() {
        let frame = file.slice(4..);
        for i in 0..frame.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut b = frame.to_vec();
                b[i] ^= flip;
                let _ = RequestFrame::decode(&Bytes::from(b));
            }
        }
    }
}

/// librdkafka 2.16 sends three bytes after the body of a Metadata v12 request for all topics;
/// Kafka's parser ignores trailing bytes, and so do we (a strict decode still refuses them).
#[test]
fn trailing_bytes_after_a_request_body_are_ignored_as_kafka_does() {
    let hex = "0003000c00000003000772646b61666b610000000000010000";
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    let frame = Bytes::from(bytes);
    let req = RequestFrame::decode(&frame).expect("decodes, ignoring the trailing bytes");
    let RequestKind::Metadata(m) = req.body else {
        panic!("not metadata")
    };
    assert_eq!(m.topics, None, "all topics");
    assert_eq!(req.header.client_id.as_deref(), Some("rdkafka"));
    let body = &frame[18..];
    assert!(RequestKind::decode(ApiKey::Metadata, 12, &frame, body).is_err());
    assert!(RequestKind::decode_with(ApiKey::Metadata, 12, &frame, body, true).is_ok());
}
