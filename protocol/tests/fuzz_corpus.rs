//! The committed fuzz corpora (`protocol/fuzz/corpus/`), replayed on the stable toolchain by
//! `cargo test`: every input the fuzzers kept — the client frames they were seeded with and the
//! regression inputs of past findings — still decodes without a panic, and whatever decodes
//! re-encodes to the same message. The fuzzers themselves (nightly, libFuzzer) check more,
//! memory included; this keeps what they found fixed between fuzzing runs.

use bytes::Bytes;
use rafka_protocol::messages::ResponseKind;
use rafka_protocol::{ApiKey, RequestFrame};
use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, bytes)
        })
        .collect();
    inputs.sort();
    assert!(inputs.len() > 100, "{target}: the corpus is there");
    inputs
}

#[test]
fn the_request_corpus_decodes_and_round_trips() {
    let mut decoded = 0;
    for (path, data) in corpus("decode_request") {
        let frame = Bytes::from(data);
        if let Ok(req) = RequestFrame::decode(&frame) {
            decoded += 1;
            let again = req.encode().expect("a decoded request re-encodes").freeze();
            let back = RequestFrame::decode(&again.slice(4..)).expect("our encoding decodes");
            assert_eq!(
                back,
                req,
                "{}: re-encoding changed the request",
                path.display()
            );
        }
    }
    assert!(decoded > 0, "some of the corpus is valid requests");
}

#[test]
fn the_response_corpus_decodes_and_round_trips() {
    for (path, data) in corpus("decode_response") {
        if data.len() < 4 {
            continue;
        }
        let Some(api) = ApiKey::from_key(i16::from_be_bytes([data[0], data[1]]) % 70) else {
            continue;
        };
        let version = i16::from_be_bytes([data[2], data[3]]) % 20;
        let frame = Bytes::copy_from_slice(&data[4..]);
        if let Ok(resp) = ResponseKind::decode(api, version, &frame, &frame) {
            let mut out = Vec::new();
            resp.encode(&mut out, version)
                .expect("a decoded response re-encodes");
            let out = Bytes::from(out);
            let back =
                ResponseKind::decode(api, version, &out, &out).expect("our encoding decodes");
            assert_eq!(
                back,
                resp,
                "{}: re-encoding changed the response",
                path.display()
            );
        }
    }
}
