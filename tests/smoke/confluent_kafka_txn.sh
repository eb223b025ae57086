#!/usr/bin/env bash
# confluent-kafka (Python; the librdkafka its wheel bundles) transactions against rafka: a
# committed transaction is read by a read_committed consumer and an aborted one is not (a
# read_uncommitted consumer reads both); offsets sent with send_offsets_to_transaction become
# the group's committed offsets only when their transaction commits; a second producer with the
# same transactional.id fences the first (its next commit fails fatally with PRODUCER_FENCED or
# INVALID_PRODUCER_EPOCH, and its open transaction is never visible).
#
#   bash tests/smoke/confluent_kafka_txn.sh [path/to/rafka]   (default target/debug/rafka)
#
# Needs python3 with confluent-kafka (.ci/run installs it).
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/smoke/common.bash

python3 -c 'import confluent_kafka' 2>/dev/null || fail "confluent-kafka is not installed (pip install confluent-kafka)"
rafka_extra_props() { rafka_txn_props; }
RAFKA_BIN=${1:-target/debug/rafka}
rafka_start "$RAFKA_BIN"

cat > "$WORK/txn.py" <<'PY'
import sys, time
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

broker, command = sys.argv[1], sys.argv[2]
TOPIC, INPUT, GROUP, TXN_ID = "ck-txn", "ck-txn-in", "ck-txn-group", "ck-txn-producer"

def group_consumer():
    return Consumer({"bootstrap.servers": broker, "group.id": GROUP,
                     "enable.auto.commit": False})

def committed():
    """The group's committed offset of the input partition (-1: none)."""
    c = group_consumer()
    o = c.committed([TopicPartition(INPUT, 0)], timeout=10)[0].offset
    c.close()
    return o if o >= 0 else -1

def producer():
    p = Producer({"bootstrap.servers": broker, "transactional.id": TXN_ID,
                  "transaction.timeout.ms": 30000})
    p.init_transactions(30)
    return p

def send(p, *values):
    for v in values:
        p.produce(TOPIC, v.encode(), partition=0)

if command == "create":
    admin = AdminClient({"bootstrap.servers": broker})
    for f in admin.create_topics([NewTopic(TOPIC, 1, 1), NewTopic(INPUT, 1, 1)]).values():
        f.result(30)
elif command == "transactions":
    meta = group_consumer()
    p = producer()
    p.begin_transaction()
    send(p, "c1", "c2")
    p.commit_transaction(30)
    p.begin_transaction()
    send(p, "a1", "a2")
    p.send_offsets_to_transaction([TopicPartition(INPUT, 0, 3)], meta.consumer_group_metadata(), 30)
    p.flush(30)
    p.abort_transaction(30)
    print("after abort", committed())
    p.begin_transaction()
    send(p, "c3")
    p.send_offsets_to_transaction([TopicPartition(INPUT, 0, 7)], meta.consumer_group_metadata(), 30)
    p.commit_transaction(30)
    # The markers follow EndTxn's answer: wait (bounded) for the offset to land.
    deadline = time.time() + 30
    while committed() != 7 and time.time() < deadline:
        time.sleep(0.2)
    print("after commit", committed())
    meta.close()
elif command == "fence":
    zombie = producer()
    zombie.begin_transaction()
    send(zombie, "z1")
    zombie.flush(30)
    producer()  # the same transactional.id again: bumps the epoch, aborts the zombie's txn
    try:
        zombie.commit_transaction(30)
        print("zombie committed")
    except KafkaException as e:
        err = e.args[0]
        print("zombie fenced" if err.fatal() else "zombie refused, not fatal: %s" % err)
elif command == "read":
    c = Consumer({"bootstrap.servers": broker, "group.id": "ck-reader-" + sys.argv[3],
                  "isolation.level": sys.argv[3], "enable.auto.commit": False,
                  "enable.partition.eof": True})
    c.assign([TopicPartition(TOPIC, 0, 0)])
    got, deadline = [], time.time() + 30
    while time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                break
            raise KafkaException(m.error())
        got.append(m.value().decode())
    c.close()
    print(" ".join(got))
else:
    sys.exit("unknown command " + command)
PY

py() { timeout 120 python3 "$WORK/txn.py" "$BROKER" "$@"; }

py create
expect_output "confluent-kafka: send_offsets_to_transaction commits with the transaction only" 'after abort -1\nafter commit 7' py transactions
expect_output "confluent-kafka: a new producer with the same transactional.id fences the old one" 'zombie fenced' py fence
expect_output "confluent-kafka: read_committed reads committed transactions only" 'c1 c2 c3' py read read_committed
expect_output "confluent-kafka: read_uncommitted reads aborted records too" 'c1 c2 a1 a2 c3 z1' py read read_uncommitted
