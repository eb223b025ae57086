//! The generated message types: `messages::ProduceRequest`, `messages::produce_request::*`, ...
//! — every request and response body and the headers, written at build time from
//! `protocol/schema/` by `protocol/build/`.

include!(concat!(env!("OUT_DIR"), "/messages.rs"));
