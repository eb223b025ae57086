//! Response bodies (what our followers and tools read), for every API key and version: the first
//! two bytes pick the API, the next two the version. A body that decodes must re-encode and decode
//! to the same response, and decoding must stay within the crate's memory bound.
#![no_main]

#[path = "common/peak_alloc.rs"]
mod peak_alloc;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rafka_protocol::messages::ResponseKind;
use rafka_protocol::{ApiKey, DECODE_MEMORY_BASE, DECODE_MEMORY_PER_BYTE};

#[global_allocator]
static ALLOC: peak_alloc::PeakAlloc = peak_alloc::PeakAlloc;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let Some(api) = ApiKey::from_key(i16::from_be_bytes([data[0], data[1]]) % 70) else {
        return;
    };
    let version = i16::from_be_bytes([data[2], data[3]]) % 20;
    let frame = Bytes::copy_from_slice(&data[4..]);
    let base = peak_alloc::reset();
    let decoded = ResponseKind::decode(api, version, &frame, &frame);
    let peak = peak_alloc::peak_since(base);
    let bound = DECODE_MEMORY_PER_BYTE * frame.len() + DECODE_MEMORY_BASE;
    assert!(
        peak <= bound,
        "decoding {} bytes took {peak} bytes of heap, above {bound}",
        frame.len()
    );
    if let Ok(resp) = decoded {
        let mut out = Vec::new();
        resp.encode(&mut out, version).expect("a decoded response re-encodes");
        let out = Bytes::from(out);
        let back = ResponseKind::decode(api, version, &out, &out).expect("our encoding decodes");
        assert_eq!(back, resp, "re-encoding changed the response");
    }
});
