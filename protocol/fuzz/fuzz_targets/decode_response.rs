//! Response bodies (what our followers and tools read), for every API key and version: the first
//! two bytes pick the API, the next two the version.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rafka_protocol::messages::ResponseKind;
use rafka_protocol::ApiKey;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let Some(api) = ApiKey::from_key(i16::from_be_bytes([data[0], data[1]]) % 70) else {
        return;
    };
    let version = i16::from_be_bytes([data[2], data[3]]) % 20;
    let frame = Bytes::copy_from_slice(&data[4..]);
    if let Ok(resp) = ResponseKind::decode(api, version, &frame, &frame) {
        let mut out = Vec::new();
        resp.encode(&mut out, version).expect("a decoded response re-encodes");
        let out = Bytes::from(out);
        let back = ResponseKind::decode(api, version, &out, &out).expect("our encoding decodes");
        assert_eq!(back, resp, "re-encoding changed the response");
    }
});
