//! Request header plus body, for every API key and version: the fuzzer picks both through the
//! frame's first four bytes. A frame that decodes must re-encode, and the re-encoding must decode
//! to the same request (bytes may differ where the input was not canonical, e.g. a varint with
//! redundant continuation bytes). Decoding must stay within the memory bound the crate states:
//! `DECODE_MEMORY_PER_BYTE` times the frame, plus `DECODE_MEMORY_BASE` for the body and as much
//! again for the header.
#![no_main]

#[path = "common/peak_alloc.rs"]
mod peak_alloc;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rafka_protocol::{RequestFrame, DECODE_MEMORY_BASE, DECODE_MEMORY_PER_BYTE};

#[global_allocator]
static ALLOC: peak_alloc::PeakAlloc = peak_alloc::PeakAlloc;

fuzz_target!(|data: &[u8]| {
    let frame = Bytes::copy_from_slice(data);
    let base = peak_alloc::reset();
    let decoded = RequestFrame::decode(&frame);
    let peak = peak_alloc::peak_since(base);
    let bound = DECODE_MEMORY_PER_BYTE * data.len() + 2 * DECODE_MEMORY_BASE;
    assert!(
        peak <= bound,
        "decoding {} bytes took {peak} bytes of heap, above {bound}",
        data.len()
    );
    if let Ok(req) = decoded {
        let again = req.encode().expect("a decoded request re-encodes").freeze();
        let back = RequestFrame::decode(&again.slice(4..)).expect("our encoding decodes");
        assert_eq!(back, req, "re-encoding changed the request");
    }
});
