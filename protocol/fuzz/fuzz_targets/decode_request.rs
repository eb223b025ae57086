//! Request header plus body, for every API key and version: the fuzzer picks both through the
//! frame's first four bytes. A frame that decodes must re-encode, and the re-encoding must decode
//! to the same request (bytes may differ where the input was not canonical, e.g. an overlong
//! varint).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rafka_protocol::RequestFrame;

fuzz_target!(|data: &[u8]| {
    let frame = Bytes::copy_from_slice(data);
    if let Ok(req) = RequestFrame::decode(&frame) {
        let again = req.encode().expect("a decoded request re-encodes").freeze();
        let back = RequestFrame::decode(&again.slice(4..)).expect("our encoding decodes");
        assert_eq!(back, req, "re-encoding changed the request");
    }
});
