//! Codec benches (`cargo bench --bench codec`).
//!
//! - `decode_produce/{1KiB,1MiB,16MiB}`: decoding a whole ProduceRequest frame (header and body)
//!   whose one partition carries that many bytes of records. Record data is sliced from the
//!   frame, never copied, so the time must not grow with the record size.
//! - `encode_fetch_response_header/100_partitions`: encoding a FetchResponse for 100 partitions
//!   whose records are `sendfile` slots: only the headers are produced, as chunks.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use rafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use rafka_protocol::messages::{
    FetchResponse, ProduceRequest, RequestHeader, RequestKind, ResponseKind,
};
use rafka_protocol::{Records, RequestFrame, ResponseFrame};
use std::hint::black_box;

fn produce_frame(record_bytes: usize) -> Bytes {
    let req = RequestFrame {
        header: RequestHeader {
            request_api_key: 0,
            request_api_version: 9,
            correlation_id: 42,
            client_id: Some("bench".into()),
            ..Default::default()
        },
        body: RequestKind::Produce(ProduceRequest {
            acks: -1,
            timeout_ms: 30_000,
            topic_data: vec![TopicProduceData {
                name: "bench-topic".into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(Records::Bytes(Bytes::from(vec![0x5a; record_bytes]))),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
    };
    req.encode().expect("encodes").freeze().slice(4..)
}

fn decode_produce(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode_produce");
    for (name, size) in [("1KiB", 1 << 10), ("1MiB", 1 << 20), ("16MiB", 16 << 20)] {
        let frame = produce_frame(size);
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::from_parameter(name), &frame, |b, frame| {
            b.iter(|| black_box(RequestFrame::decode(black_box(frame)).expect("decodes")))
        });
    }
    g.finish();
}

fn fetch_response(partitions: i32) -> ResponseFrame {
    ResponseFrame {
        correlation_id: 7,
        api_version: 12,
        body: ResponseKind::Fetch(FetchResponse {
            responses: vec![FetchableTopicResponse {
                topic: "bench-topic".into(),
                partitions: (0..partitions)
                    .map(|p| PartitionData {
                        partition_index: p,
                        high_watermark: 1_000_000,
                        last_stable_offset: 1_000_000,
                        log_start_offset: 0,
                        records: Some(Records::Slot {
                            handle: p as u64,
                            len: 1 << 20,
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }),
    }
}

fn encode_fetch_response_header(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode_fetch_response_header");
    let resp = fetch_response(100);
    g.throughput(Throughput::Elements(1));
    g.bench_function("100_partitions", |b| {
        b.iter(|| black_box(black_box(&resp).encode_chunks().expect("encodes")))
    });
    g.finish();
}

criterion_group!(benches, decode_produce, encode_fetch_response_header);
criterion_main!(benches);
