//! Property tests: for every (API, version) we implement, requests and responses with random
//! contents encode to exactly `size_at` bytes, decode back to the same value, and re-encode to
//! the same bytes. Unknown tagged fields are among the random contents and must survive.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rafka_protocol::messages::{RequestKind, ResponseKind};
use rafka_protocol::testing::Rng;
use rafka_protocol::ApiKey;

fn served() -> Vec<(ApiKey, i16)> {
    let mut out = Vec::new();
    for &api in ApiKey::ALL {
        if let Some(r) = RequestKind::versions(api) {
            assert_eq!(
                ResponseKind::versions(api),
                Some(r),
                "{api}: request and response ranges differ"
            );
            for v in r.min..=r.max {
                out.push((api, v));
            }
        }
    }
    out
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn requests_round_trip() {
    for (api, v) in served() {
        runner()
            .run(&any::<u64>(), |seed| {
                let m = RequestKind::random(api, v, &mut Rng::new(seed)).expect("served");
                let mut buf = BytesMut::new();
                m.encode(&mut buf, v)
                    .expect("a random value of this version encodes");
                prop_assert_eq!(buf.len(), m.size_at(v), "{} v{}: size_at", api, v);
                let frozen: Bytes = buf.freeze();
                let back = RequestKind::decode(api, v, &frozen, &frozen).expect("decodes");
                prop_assert_eq!(&back, &m, "{} v{}", api, v);
                let mut again = BytesMut::new();
                back.encode(&mut again, v).expect("re-encodes");
                prop_assert_eq!(&again[..], &frozen[..]);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{api} v{v} request: {e}"));
    }
}

#[test]
fn responses_round_trip() {
    for (api, v) in served() {
        runner()
            .run(&any::<u64>(), |seed| {
                let m = ResponseKind::random(api, v, &mut Rng::new(seed)).expect("served");
                let mut buf = BytesMut::new();
                m.encode(&mut buf, v)
                    .expect("a random value of this version encodes");
                prop_assert_eq!(buf.len(), m.size_at(v), "{} v{}: size_at", api, v);
                let frozen: Bytes = buf.freeze();
                let back = ResponseKind::decode(api, v, &frozen, &frozen).expect("decodes");
                prop_assert_eq!(&back, &m, "{} v{}", api, v);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{api} v{v} response: {e}"));
    }
}

/// Every strict prefix of a valid encoding is refused (never a panic, never a partial value),
/// and so is any byte appended to it.
#[test]
fn truncated_and_padded_bodies_are_refused() {
    for (api, v) in served() {
        let mut rng = Rng::new(api.key() as u64 * 1000 + v as u64);
        let m = RequestKind::random(api, v, &mut rng).expect("served");
        let mut buf = BytesMut::new();
        m.encode(&mut buf, v).expect("encodes");
        let full = buf.freeze();
        for cut in 0..full.len() {
            let part = full.slice(..cut);
            assert!(
                RequestKind::decode(api, v, &part, &part).is_err(),
                "{api} v{v}: {cut} of {} bytes decoded",
                full.len()
            );
        }
        let mut padded = BytesMut::from(&full[..]);
        padded.extend_from_slice(&[0]);
        let padded = padded.freeze();
        assert!(RequestKind::decode(api, v, &padded, &padded).is_err());
    }
}

/// Random bytes never panic the decoder, for any API and version.
#[test]
fn random_bytes_never_panic() {
    let pairs = served();
    let mut runner = TestRunner::new(Config {
        cases: 20_000,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(
            &(
                0..pairs.len(),
                proptest::collection::vec(any::<u8>(), 0..64),
            ),
            |(i, bytes)| {
                let (api, v) = pairs[i];
                let b = Bytes::from(bytes);
                let _ = RequestKind::decode(api, v, &b, &b);
                let _ = ResponseKind::decode(api, v, &b, &b);
                Ok(())
            },
        )
        .expect("no panic");
}
