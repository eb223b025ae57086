//! Hostile record batches (issue #12), sent as raw Produce frames to the real binary: each gets
//! Kafka's error code (and `record_errors` where Produce has them), the log end offset does not
//! move, the broker keeps serving, a consumer (librdkafka, CRCs checked) still reads every
//! partition whole — good data produced before and after is all there — decompression bombs do
//! not raise the broker's memory high-water mark, and the broker restarts cleanly.

mod common;

use bytes::Bytes;
use common::ffi::BEGINNING;
use common::{admin, create_topic, raw_request, Cluster, Deadline, READY_TIMEOUT};
use rafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use rafka_protocol::messages::produce_response::PartitionProduceResponse;
use rafka_protocol::messages::{ProduceRequest, RequestKind, ResponseKind};
use rafka_protocol::record::Record;
use rafka_protocol::record_batch::RecordBatchBuilder;
use rafka_protocol::record_batch::{
    crc32c, Compression, ATTRIBUTES_OFFSET, CONTROL_FLAG_MASK, CRC_OFFSET, CRC_START,
    LAST_OFFSET_DELTA_OFFSET, LENGTH_OFFSET, LOG_OVERHEAD, MAX_TIMESTAMP_OFFSET,
    PRODUCER_ID_OFFSET, RECORDS_COUNT_OFFSET, RECORDS_OFFSET, TRANSACTIONAL_FLAG_MASK,
};
use rafka_protocol::{ErrorCode, Records};
use rafka_storage::compression::compress;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const T: Duration = Duration::from_secs(20);
const TOPIC: &str = "hostile";
const COMPACTED: &str = "hostile-compacted";
/// Good messages produced through librdkafka before and after the hostile batches.
const GOOD: usize = 200;
/// How much the broker's peak resident memory (VmHWM) may grow while it refuses the bombs: less
/// than any one of them decompressed (128 MiB and 1 GiB), and less than the 64 MiB
/// decompression cap too, so a broker that inflated a bomb up to the cap would fail.
const BOMB_HWM_GROWTH_MAX_KIB: u64 = 48 << 10;
/// The broker's peak resident memory over the whole test (about 24 MiB when written).
const HWM_MAX_KIB: u64 = 128 << 10;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn record(offset_delta: i32, timestamp_delta: i64, key: Option<&[u8]>, value: &[u8]) -> Record {
    Record {
        attributes: 0,
        timestamp_delta,
        offset_delta,
        key: key.map(Bytes::copy_from_slice),
        value: Some(Bytes::copy_from_slice(value)),
        headers: Vec::new(),
    }
}

fn region(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        r.write_to(&mut out).expect("record encodes");
    }
    out
}

/// A v2 batch (timestamps now) around `payload` (already compressed for `codec`), claiming
/// `count` records, `attributes` or'ed in; lengths and CRC consistent, so only what is inside
/// can be wrong.
fn frame_raw(payload: &[u8], count: i32, codec: Compression, attributes: i16) -> Bytes {
    let mut header = RecordBatchBuilder::new(0);
    header
        .append(now_ms(), Some(b"k"), None, &[])
        .expect("header record");
    let mut out = header.build()[..RECORDS_OFFSET].to_vec();
    out.extend_from_slice(payload);
    let attrs = i16::from(codec.id()) | attributes;
    out[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attrs.to_be_bytes());
    out[LAST_OFFSET_DELTA_OFFSET..LAST_OFFSET_DELTA_OFFSET + 4]
        .copy_from_slice(&count.wrapping_sub(1).to_be_bytes());
    out[RECORDS_COUNT_OFFSET..RECORDS_COUNT_OFFSET + 4].copy_from_slice(&count.to_be_bytes());
    finish(out)
}

/// Sets batchLength and the CRC.
fn finish(mut out: Vec<u8>) -> Bytes {
    let length = i32::try_from(out.len() - LOG_OVERHEAD).expect("batch length");
    out[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c(&[&out[CRC_START..]]);
    out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(out)
}

fn frame(records: &[u8], count: i32, codec: Compression, attributes: i16) -> Bytes {
    let payload = compress(codec, records).expect("compress");
    frame_raw(&payload, count, codec, attributes)
}

/// `n` keyed records named `{tag}-{i}`.
fn good_batch(tag: &str, n: usize, codec: Compression) -> Bytes {
    let records: Vec<_> = (0..n)
        .map(|i| {
            let v = format!("{tag}-{i}");
            record(i as i32, 0, Some(v.as_bytes()), v.as_bytes())
        })
        .collect();
    frame(&region(&records), n as i32, codec, 0)
}

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// One record whose value is `total` zero bytes, compressed by concatenating members (gzip
/// members, lz4 and zstd frames follow one another in one stream): a bomb of `total` bytes
/// from a few hundred KiB.
fn bomb(codec: Compression, total: usize) -> Bytes {
    const MIB: usize = 1 << 20;
    let zeros = vec![0u8; MIB];
    let member = compress(codec, &zeros).expect("compress");
    // The record up to its value: length, attributes, timestamp delta, offset delta, key "k",
    // value length; the value's bytes are the zeros that follow.
    let value_len = total as i64;
    let mut head = Vec::new();
    let mut body = vec![0u8, 0, 0, 2, b'k'];
    varlong(&mut body, value_len);
    varlong(&mut head, body.len() as i64 + value_len + 1);
    head.extend_from_slice(&body);
    let mut payload = compress(codec, &head).expect("compress");
    for _ in 0..total / MIB {
        payload.extend_from_slice(&member);
    }
    payload.extend_from_slice(&compress(codec, &[0]).expect("compress")); // header count 0
    frame_raw(&payload, 1, codec, 0)
}

fn varlong(out: &mut Vec<u8>, v: i64) {
    let mut u = ((v << 1) ^ (v >> 63)) as u64;
    while u >= 0x80 {
        out.push((u as u8 & 0x7f) | 0x80);
        u >>= 7;
    }
    out.push(u as u8);
}

/// Produce v9 (flexible, with record_errors) or `version`, acks=1, one partition.
fn produce(addr: SocketAddr, version: i16, topic: &str, batch: Bytes) -> PartitionProduceResponse {
    let req = ProduceRequest {
        acks: 1,
        timeout_ms: 10_000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(Records::Bytes(batch)),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    match raw_request(addr, version, RequestKind::Produce(req), T) {
        Ok(ResponseKind::Produce(r)) => r.responses[0].partition_responses[0].clone(),
        other => panic!("not a Produce response: {other:?}"),
    }
}

/// The broker's VmHWM (peak resident set), in KiB.
fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// Keeps a partition's expected contents and checks the log end offset after each refusal.
struct Partition {
    addr: SocketAddr,
    topic: &'static str,
    /// Every value the partition should hold, in offset order.
    values: Vec<String>,
    raw_good: usize,
}

impl Partition {
    /// A good batch of 1 record: it must land exactly at the log end offset we expect, which
    /// proves the refusals before it moved nothing.
    fn append_good(&mut self) {
        let tag = format!("{}-raw-{}", self.topic, self.raw_good);
        self.raw_good += 1;
        let codec = CODECS[self.raw_good % CODECS.len()];
        let r = produce(self.addr, 9, self.topic, good_batch(&tag, 1, codec));
        assert_eq!(r.error_code, 0, "good {codec} batch: {:?}", r.error_message);
        assert_eq!(
            r.base_offset,
            self.values.len() as i64,
            "the log end offset moved"
        );
        self.values.push(format!("{tag}-0"));
    }

    /// Sends `batch`, expects `code`, then checks the log end offset with a good batch.
    fn refuse(&mut self, what: &str, batch: Bytes, code: ErrorCode) -> PartitionProduceResponse {
        let r = produce(self.addr, 9, self.topic, batch);
        assert_eq!(
            r.error_code,
            code.code(),
            "{what}: expected {code:?}, got {} ({:?})",
            r.error_code,
            r.error_message
        );
        assert_eq!(r.base_offset, -1, "{what}");
        assert!(r.error_message.is_some(), "{what}: no error message");
        self.append_good();
        r
    }
}

fn produce_good(bootstrap: &str, topic: &str, tag: &str, values: &mut Vec<String>) {
    let p = common::producer(bootstrap, &[("acks", "all"), ("compression.type", "lz4")]);
    for i in 0..GOOD {
        let v = format!("{tag}-{i}");
        p.send(
            rdkafka::producer::BaseRecord::to(topic)
                .partition(0)
                .key(v.as_str())
                .payload(v.as_str()),
        )
        .map_err(|(e, _)| e)
        .expect("enqueue");
        values.push(v);
    }
    common::flush(&p, T);
}

/// Reads the whole partition with librdkafka and compares it with `values`.
fn consume_all(bootstrap: &str, topic: &str, values: &[String]) {
    let mut c = common::partition_consumer(bootstrap, &[]);
    c.start(topic, 0, BEGINNING);
    let deadline = Deadline::after(Duration::from_secs(30));
    let mut read = Vec::new();
    while read.len() < values.len() {
        deadline.check(|| format!("{topic}: read {} of {}", read.len(), values.len()));
        let Some(m) = c.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.unwrap_or_else(|e| panic!("{topic}: consume: {e}"));
        assert_eq!(m.offset, read.len() as i64, "{topic}: offsets are dense");
        read.push(String::from_utf8(m.payload.unwrap_or_default()).expect("utf-8"));
    }
    assert_eq!(read, values, "{topic}: contents");
}

#[test]
fn hostile_batches_are_refused_and_the_partition_stays_readable() {
    let _one = common::one_cluster_at_a_time();
    let mut cluster = Cluster::single();
    let n = &cluster.nodes[0];
    let (addr, bootstrap) = (n.addr(), n.bootstrap());
    let admin = admin(&bootstrap);
    create_topic(&admin, n, TOPIC, 1, &[]);
    create_topic(&admin, n, COMPACTED, 1, &[("cleanup.policy", "compact")]);

    let mut p = Partition {
        addr,
        topic: TOPIC,
        values: Vec::new(),
        raw_good: 0,
    };
    produce_good(&bootstrap, TOPIC, "before", &mut p.values);
    p.append_good();

    // The 62-byte batch: one record, claiming 2^31-1 (lastOffsetDelta consistent).
    let one = region(&[record(0, 0, Some(b"k"), b"v")]);
    for codec in CODECS {
        p.refuse(
            "2^31-1 records",
            frame(&one, i32::MAX, codec, 0),
            ErrorCode::CorruptMessage,
        );
    }
    // Offset deltas out of order; a key length beyond its record; trailing bytes.
    let swapped = region(&[
        record(1, 0, Some(b"a"), b"v"),
        record(0, 0, Some(b"b"), b"v"),
    ]);
    let mut long_key = one.clone();
    long_key[4] = 0x7e; // key length 63, in a record of 8 bytes
    let trailing = [&one[..], &[0, 0, 0]].concat();
    for codec in CODECS {
        p.refuse(
            "swapped offset deltas",
            frame(&swapped, 2, codec, 0),
            ErrorCode::CorruptMessage,
        );
        p.refuse(
            "key beyond its record",
            frame(&long_key, 1, codec, 0),
            ErrorCode::CorruptMessage,
        );
        p.refuse(
            "trailing bytes",
            frame(&trailing, 1, codec, 0),
            ErrorCode::CorruptMessage,
        );
    }
    // Payloads that are not what their codec says, or cut short.
    for codec in CODECS.into_iter().skip(1) {
        let good = compress(codec, &one).expect("compress");
        p.refuse(
            "garbage payload",
            frame_raw(b"not compressed at all, not at all", 1, codec, 0),
            ErrorCode::CorruptMessage,
        );
        p.refuse(
            "truncated payload",
            frame_raw(&good[..good.len() - 2], 1, codec, 0),
            ErrorCode::CorruptMessage,
        );
    }
    // Control and transactional batches from a client.
    p.refuse(
        "control batch",
        frame(&one, 1, Compression::None, CONTROL_FLAG_MASK),
        ErrorCode::InvalidRecord,
    );
    let mut txn = frame(&one, 1, Compression::None, TRANSACTIONAL_FLAG_MASK).to_vec();
    txn[PRODUCER_ID_OFFSET..PRODUCER_ID_OFFSET + 8].copy_from_slice(&7i64.to_be_bytes());
    txn[PRODUCER_ID_OFFSET + 8..PRODUCER_ID_OFFSET + 10].copy_from_slice(&0i16.to_be_bytes());
    txn[PRODUCER_ID_OFFSET + 10..PRODUCER_ID_OFFSET + 14].copy_from_slice(&0i32.to_be_bytes());
    // Outside any transaction (no transactional id: KIP-890's check refuses it).
    p.refuse(
        "transactional batch",
        finish(txn),
        ErrorCode::InvalidTxnState,
    );
    // A timestamp of 2^62 in the second record: INVALID_TIMESTAMP naming it.
    let future = region(&[
        record(0, 0, Some(b"a"), b"v"),
        record(1, (1 << 62) - now_ms(), Some(b"b"), b"v"),
    ]);
    for codec in CODECS {
        let r = p.refuse(
            "timestamp 2^62",
            frame(&future, 2, codec, 0),
            ErrorCode::InvalidTimestamp,
        );
        let indexes: Vec<_> = r.record_errors.iter().map(|e| e.batch_index).collect();
        assert_eq!(indexes, [1], "{codec}");
    }
    // Before v8 there is no record_errors field to answer with.
    let r = produce(addr, 7, TOPIC, frame(&future, 2, Compression::None, 0));
    assert_eq!(r.error_code, ErrorCode::InvalidTimestamp.code());
    assert!(r.record_errors.is_empty() && r.error_message.is_none());
    p.append_good();
    // Honest records under a batch header claiming maxTimestamp 2^62 (which would keep its
    // segment past time-based retention forever): INVALID_TIMESTAMP too.
    for codec in CODECS {
        let mut claim = good_batch("claim", 2, codec).to_vec();
        claim[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8]
            .copy_from_slice(&(1i64 << 62).to_be_bytes());
        p.refuse(
            "maxTimestamp 2^62",
            finish(claim),
            ErrorCode::InvalidTimestamp,
        );
    }

    // Decompression bombs: 128 MiB (gzip, lz4) and 1 GiB (zstd) of zeros in one record, each
    // well under max.message.bytes compressed. (Snappy cannot inflate a 1 MiB batch past the
    // 64 MiB cap: its best ratio is about 21.)
    let pid = n.pid().expect("broker pid");
    let hwm_before = vm_hwm_kib(pid);
    for (codec, total) in [
        (Compression::Gzip, 128 << 20),
        (Compression::Lz4, 128 << 20),
        (Compression::Zstd, 1 << 30),
    ] {
        let b = bomb(codec, total);
        assert!(b.len() < 1 << 20, "{codec} bomb of {} bytes", b.len());
        p.refuse(&format!("{codec} bomb"), b, ErrorCode::MessageTooLarge);
    }
    let hwm_after = vm_hwm_kib(pid);
    eprintln!("broker VmHWM: {hwm_before} KiB before the bombs, {hwm_after} KiB after");
    assert!(
        hwm_after - hwm_before < BOMB_HWM_GROWTH_MAX_KIB && hwm_after < HWM_MAX_KIB,
        "VmHWM {hwm_before} KiB before the bombs, {hwm_after} KiB after"
    );

    // Compacted topic: a record without a key.
    let mut c = Partition {
        addr,
        topic: COMPACTED,
        values: Vec::new(),
        raw_good: 0,
    };
    produce_good(&bootstrap, COMPACTED, "before", &mut c.values);
    let keyless = region(&[
        record(0, 0, Some(b"a"), b"v"),
        record(1, 0, None, b"v"),
        record(2, 0, None, b"v"),
    ]);
    for codec in CODECS {
        let r = c.refuse(
            "null keys",
            frame(&keyless, 3, codec, 0),
            ErrorCode::InvalidRecord,
        );
        let indexes: Vec<_> = r.record_errors.iter().map(|e| e.batch_index).collect();
        assert_eq!(indexes, [1, 2], "{codec}");
    }

    // Good data after; everything is there, in order, for a real consumer.
    produce_good(&bootstrap, TOPIC, "after", &mut p.values);
    produce_good(&bootstrap, COMPACTED, "after", &mut c.values);
    consume_all(&bootstrap, TOPIC, &p.values);
    consume_all(&bootstrap, COMPACTED, &c.values);

    // A clean restart keeps it all.
    let status = cluster.nodes[0].terminate();
    assert!(status.success(), "exit after SIGTERM: {status:?}");
    cluster.nodes[0].start();
    cluster.wait_ready(READY_TIMEOUT);
    let bootstrap = cluster.nodes[0].bootstrap();
    common::wait_for_topic(&cluster.nodes[0], TOPIC, 1, T);
    consume_all(&bootstrap, TOPIC, &p.values);
    consume_all(&bootstrap, COMPACTED, &c.values);
    let pid = cluster.nodes[0].pid().expect("pid");
    assert!(vm_hwm_kib(pid) < HWM_MAX_KIB);
}
