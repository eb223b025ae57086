//! ListOffsets through librdkafka: by timestamp (`offsets_for_times`: the first *record* whose
//! timestamp is at or after the target, even inside a batch; the end when there is none),
//! earliest and latest (`fetch_watermarks`: log start and high watermark), and max timestamp
//! (-3) with a raw request. DeleteRecords moves the earliest offset.

mod common;

use common::{admin, admin_options, create_topic, runtime, Cluster, SyncProducer};
use rafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use rafka_protocol::messages::{ListOffsetsRequest, RequestKind, ResponseKind};
use rdkafka::consumer::Consumer;
use rdkafka::producer::BaseRecord;
use rdkafka::{Offset, TopicPartitionList};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

/// Record i (0..200) has timestamp BASE + 10·i, except record 150, which has the maximum.
const BASE: i64 = 1_700_000_000_000;
const MAX_TS: i64 = BASE + 1_000_000;

fn ts(i: i64) -> i64 {
    if i == 150 {
        MAX_TS
    } else {
        BASE + 10 * i
    }
}

fn offset_for_time(c: &rdkafka::consumer::BaseConsumer, partition: i32, target: i64) -> Offset {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("timed", partition, Offset::Offset(target))
        .expect("tpl");
    let r = c.offsets_for_times(tpl, T).expect("offsets_for_times");
    let e = r
        .find_partition("timed", partition)
        .expect("partition in the answer");
    e.error().expect("no error for the partition");
    e.offset()
}

/// Raw ListOffsets v7 for one partition: (error, timestamp, offset).
fn raw_list_offsets(node: &common::Node, partition: i32, target: i64) -> (i16, i64, i64) {
    let req = ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: "timed".into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: partition,
                timestamp: target,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    match common::raw_request(node.addr(), 7, RequestKind::ListOffsets(req), T)
        .expect("ListOffsets")
    {
        ResponseKind::ListOffsets(r) => {
            let p = &r.topics[0].partitions[0];
            (p.error_code, p.timestamp, p.offset)
        }
        other => panic!("not ListOffsets: {other:?}"),
    }
}

#[test]
fn list_offsets_by_time_earliest_latest_and_max() {
    let cluster = Cluster::single();
    let n = &cluster.nodes[0];
    let admin = admin(&n.bootstrap());
    create_topic(&admin, n, "timed", 2, &[]);

    // Records 0..100 in as few batches as linger allows (several records per batch), then
    // 100..200 one batch each.
    let p = common::producer(&n.bootstrap(), &[("acks", "all"), ("linger.ms", "200")]);
    for i in 0..100i64 {
        let v = format!("r{i}");
        p.send(
            BaseRecord::<(), str>::to("timed")
                .partition(0)
                .payload(v.as_str())
                .timestamp(ts(i)),
        )
        .map_err(|(e, _)| e)
        .expect("send");
    }
    common::flush(&p, T);
    let sp = SyncProducer::new(&n.bootstrap(), &[]);
    for i in 100..200i64 {
        let v = format!("r{i}");
        let got = sp.send_record(
            BaseRecord::<(), str>::to("timed")
                .partition(0)
                .payload(v.as_str())
                .timestamp(ts(i)),
        );
        assert_eq!(got, Ok((0, i)), "record {i}");
    }
    // The first 100 really share batches (otherwise "record, not batch" is not being tested).
    let seg = &common::segment_files(&n.log_dir(), "timed", 0)[0];
    let batches = common::batches(&std::fs::read(seg).expect("segment")).len();
    assert!(
        batches < 150,
        "{batches} batches for 200 records: records 0..100 were not batched"
    );

    let c = common::consumer(&n.bootstrap(), &[]);
    assert_eq!(
        c.fetch_watermarks("timed", 0, T).expect("watermarks"),
        (0, 200)
    );
    assert_eq!(
        c.fetch_watermarks("timed", 1, T).expect("watermarks"),
        (0, 0)
    );

    // By time: exact hits, between records, inside the first batch, before all, after all.
    for (target, want) in [
        (BASE, Offset::Offset(0)),
        (BASE - 60_000, Offset::Offset(0)),
        (ts(37), Offset::Offset(37)),
        (ts(37) - 5, Offset::Offset(37)),
        (ts(99) + 1, Offset::Offset(100)),
        (ts(120), Offset::Offset(120)),
        // 150 carries the maximum, so it is the first at or after anything in (ts(149), MAX_TS].
        (ts(149) + 1, Offset::Offset(150)),
        (ts(199), Offset::Offset(150)),
        (MAX_TS, Offset::Offset(150)),
        (MAX_TS + 1, Offset::End),
    ] {
        assert_eq!(
            offset_for_time(&c, 0, target),
            want,
            "first offset at or after {target}"
        );
    }
    assert_eq!(
        offset_for_time(&c, 1, BASE),
        Offset::End,
        "an empty partition"
    );

    // The same with raw requests, with the timestamps found; and -3 (max timestamp, KIP-734).
    assert_eq!(raw_list_offsets(n, 0, ts(37) - 5), (0, ts(37), 37));
    assert_eq!(raw_list_offsets(n, 0, MAX_TS + 1), (0, -1, -1));
    assert_eq!(raw_list_offsets(n, 0, -2), (0, -1, 0), "earliest");
    assert_eq!(raw_list_offsets(n, 0, -1), (0, -1, 200), "latest");
    assert_eq!(
        raw_list_offsets(n, 0, -3),
        (0, MAX_TS, 150),
        "max timestamp"
    );
    assert_eq!(
        raw_list_offsets(n, 7, -1).0,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION for partition 7"
    );
}

#[test]
fn delete_records_moves_the_earliest_offset() {
    let cluster = Cluster::single();
    let n = &cluster.nodes[0];
    let admin = admin(&n.bootstrap());
    create_topic(&admin, n, "timed", 1, &[]);
    let sp = SyncProducer::new(&n.bootstrap(), &[]);
    for i in 0..20i64 {
        assert_eq!(sp.send("timed", 0, format!("r{i}").as_bytes()), Ok(i));
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("timed", 0, Offset::Offset(12))
        .expect("tpl");
    let r = runtime()
        .block_on(admin.delete_records(&tpl, &admin_options()))
        .unwrap_or_else(|e| panic!("DeleteRecords: {e}"));
    let e = r
        .find_partition("timed", 0)
        .expect("partition in the answer");
    e.error().unwrap_or_else(|err| panic!("DeleteRecords for the partition: {err} (a transport failure means the broker closed the connection: is the DeleteRecords handler in place?)"));
    let c = common::consumer(&n.bootstrap(), &[]);
    assert_eq!(
        c.fetch_watermarks("timed", 0, T).expect("watermarks"),
        (12, 20)
    );
    // Reading from the beginning starts at the new log start.
    let mut pc = common::partition_consumer(&n.bootstrap(), &[]);
    pc.start("timed", 0, common::ffi::BEGINNING);
    let m = pc
        .poll(T)
        .unwrap_or_else(|| panic!("nothing read from the beginning within {T:?}"))
        .expect("message");
    assert_eq!((m.offset, m.payload.as_deref()), (12, Some(&b"r12"[..])));
}
