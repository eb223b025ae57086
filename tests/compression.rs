//! Compression is the client's: for gzip, snappy, lz4 and zstd, a librdkafka producer's batches
//! are stored as sent (the codec bits of each batch's attributes on disk are the producer's,
//! and the log is smaller than the raw records) and a consumer reads every record back intact
//! (CRCs checked).

mod common;

use common::ffi::BEGINNING;
use common::{admin, create_topic, Cluster, Deadline};
use rdkafka::producer::BaseRecord;
use std::time::Duration;

const N: usize = 5_000;

fn key(i: usize) -> String {
    format!("key-{i:06}")
}

/// Compressible, but not constant: each record names its index.
fn payload(codec: &str, i: usize) -> String {
    format!(
        "{codec} record {i:06}: {}",
        "the quick brown fox jumps over the lazy dog ".repeat(8)
    )
}

#[test]
fn every_codec_round_trips_and_is_stored_as_sent() {
    let cluster = Cluster::single();
    let n = &cluster.nodes[0];
    let admin = admin(&n.bootstrap());
    for (codec, bits) in [("gzip", 1i16), ("snappy", 2), ("lz4", 3), ("zstd", 4)] {
        let topic = format!("codec-{codec}");
        create_topic(&admin, n, &topic, 1, &[]);
        let p = common::producer(
            &n.bootstrap(),
            &[
                ("acks", "all"),
                ("linger.ms", "20"),
                ("compression.type", codec),
            ],
        );
        let mut raw = 0usize;
        for i in 0..N {
            let (k, v) = (key(i), payload(codec, i));
            raw += k.len() + v.len();
            loop {
                match p.send(
                    BaseRecord::to(&topic)
                        .partition(0)
                        .key(k.as_str())
                        .payload(v.as_str()),
                ) {
                    Ok(()) => break,
                    Err((e, _))
                        if e.rdkafka_error_code()
                            == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) =>
                    {
                        p.poll(Duration::from_millis(10));
                    }
                    Err((e, _)) => panic!("{codec}: send {i}: {e}"),
                }
            }
        }
        common::flush(&p, Duration::from_secs(60));

        // On disk: every batch carries the producer's codec, and the log is compressed.
        let files = common::segment_files(&n.log_dir(), &topic, 0);
        assert!(!files.is_empty(), "{codec}: no segment for {topic}");
        // librdkafka sends a batch uncompressed when compressing would not shrink it (a lone
        // small record), so: each batch has the producer's codec or none, and almost every
        // record is in a compressed one.
        let mut stored = 0usize;
        let mut in_codec = 0usize;
        for f in &files {
            let bytes = std::fs::read(f).expect("segment");
            let batches = common::batches(&bytes);
            assert!(
                !batches.is_empty(),
                "{codec}: no batches in {}",
                f.display()
            );
            for b in &batches {
                let c = b.attributes & 7;
                assert!(
                    c == bits || c == 0,
                    "{codec}: a batch stored with codec bits {c}"
                );
                if c == bits {
                    in_codec += b.records as usize;
                }
            }
            stored += bytes.len();
        }
        assert!(
            in_codec * 10 >= N * 9,
            "{codec}: only {in_codec} of {N} records in {codec} batches"
        );
        assert!(
            stored * 3 < raw,
            "{codec}: {stored} bytes on disk for {raw} bytes of keys and values"
        );

        // Read back: every record, in order, intact.
        let mut c = common::partition_consumer(&n.bootstrap(), &[]);
        c.start(&topic, 0, BEGINNING);
        let deadline = Deadline::after(Duration::from_secs(60));
        let mut next = 0usize;
        while next < N {
            deadline.check(|| format!("{codec}: read {next} of {N}"));
            let Some(m) = c.poll(Duration::from_millis(200)) else {
                continue;
            };
            let m = m.unwrap_or_else(|e| panic!("{codec}: consume: {e}"));
            assert_eq!(m.offset, next as i64, "{codec}: offset");
            assert_eq!(
                m.key.as_deref(),
                Some(key(next).as_bytes()),
                "{codec}: key at {next}"
            );
            assert_eq!(
                m.payload.as_deref(),
                Some(payload(codec, next).as_bytes()),
                "{codec}: value at {next}"
            );
            next += 1;
        }
        println!(
            "{codec}: {N} records, {raw} raw bytes stored in {stored} bytes, read back intact"
        );
    }
}
