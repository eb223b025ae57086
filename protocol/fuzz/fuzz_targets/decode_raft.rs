//! The controller listener's own RPCs (openraft's vote, append-entries and install-snapshot, and
//! rafka's pre-vote, in Kafka framing): the first byte picks the RPC, the rest is its body behind a fixed request
//! header, decoded as the listener decodes a frame (`RequestFrame::decode`) and then converted to
//! openraft's types with `rafka_controller::convert`, as the listener does before handing them to
//! Raft.
//!
//! Invariants: a frame that decodes re-encodes and decodes to the same request; decoding stays
//! within the protocol crate's memory bound; a wire value that converts converts back to a wire
//! value that converts to the same openraft value; and converting takes no more memory than a
//! stated multiple of the frame (the entries' metadata records are decoded again from their
//! payloads there).
#![no_main]

#[path = "common/peak_alloc.rs"]
mod peak_alloc;

use bytes::{BufMut, Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use rafka_controller::convert::{
    entry_from_wire, entry_to_wire, LogIdWire, MembershipWire, VoteWire,
};
use rafka_protocol::messages::RequestKind;
use rafka_protocol::{RequestFrame, DECODE_MEMORY_BASE, DECODE_MEMORY_PER_BYTE};

#[global_allocator]
static ALLOC: peak_alloc::PeakAlloc = peak_alloc::PeakAlloc;

/// What converting may take beyond decoding, per byte of frame: metadata records decoded from an
/// entry's payload are bounded by the same per-byte budget, and openraft's values are smaller
/// than their wire structs.
const CONVERT_MEMORY_PER_BYTE: usize = 2 * DECODE_MEMORY_PER_BYTE;

fn vote<W: VoteWire>(w: &W) {
    if let Ok(v) = w.to_vote() {
        let back = W::from_vote(&v).to_vote().expect("a converted vote converts back");
        assert_eq!(back, v, "vote changed through its wire form");
    }
}

fn log_id<W: LogIdWire>(w: &W) {
    if let Ok(l) = w.to_log_id() {
        let back = W::from_log_id(l.as_ref())
            .to_log_id()
            .expect("a converted log id converts back");
        assert_eq!(back, l, "log id changed through its wire form");
    }
}

fn membership<W: MembershipWire>(w: &W) {
    if let Ok(m) = w.to_membership() {
        let back = W::from_membership(&m)
            .to_membership()
            .expect("a converted membership converts back");
        assert_eq!(back, m, "membership changed through its wire form");
    }
}

fn convert(body: &RequestKind) {
    match body {
        RequestKind::RaftVote(r) => {
            vote(&r.vote);
            log_id(&r.last_log_id);
        }
        RequestKind::RaftAppendEntries(r) => {
            vote(&r.vote);
            log_id(&r.prev_log_id);
            log_id(&r.leader_commit);
            for w in &r.entries {
                if let Some(m) = &w.membership {
                    membership(m);
                }
                if let Ok(e) = entry_from_wire(w) {
                    let again = entry_to_wire(&e).expect("a converted entry converts back");
                    let back = entry_from_wire(&again).expect("our entry converts");
                    assert_eq!(back, e, "entry changed through its wire form");
                }
            }
        }
        RequestKind::RaftPreVote(r) => {
            vote(&r.vote);
            log_id(&r.last_log_id);
        }
        RequestKind::RaftInstallSnapshot(r) => {
            vote(&r.vote);
            log_id(&r.last_log_id);
            log_id(&r.last_membership_log_id);
            membership(&r.last_membership);
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let key = 30000 + i16::from(pick % 4);
    let mut frame = BytesMut::with_capacity(11 + body.len());
    frame.put_i16(key);
    frame.put_i16(0); // version
    frame.put_i32(1); // correlation id
    frame.put_i16(-1); // client id: null
    frame.put_u8(0); // header tagged fields
    frame.put_slice(body);
    let frame: Bytes = frame.freeze();

    let base = peak_alloc::reset();
    let decoded = RequestFrame::decode(&frame);
    let peak = peak_alloc::peak_since(base);
    let bound = DECODE_MEMORY_PER_BYTE * frame.len() + 2 * DECODE_MEMORY_BASE;
    assert!(
        peak <= bound,
        "decoding {} bytes took {peak} bytes of heap, above {bound}",
        frame.len()
    );
    let Ok(req) = decoded else {
        return;
    };
    let again = req.encode().expect("a decoded request re-encodes").freeze();
    let back = RequestFrame::decode(&again.slice(4..)).expect("our encoding decodes");
    assert_eq!(back, req, "re-encoding changed the request");

    let base = peak_alloc::reset();
    convert(&req.body);
    let peak = peak_alloc::peak_since(base);
    let bound = CONVERT_MEMORY_PER_BYTE * frame.len() + DECODE_MEMORY_BASE;
    assert!(
        peak <= bound,
        "converting {} bytes took {peak} bytes of heap, above {bound}",
        frame.len()
    );
});
