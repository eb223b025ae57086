#!/usr/bin/env bash
# kafka-python's transactional producer against rafka (a second client beside librdkafka): a
# committed transaction is read by a read_committed consumer, an aborted one is not (a
# read_uncommitted consumer reads both), and offsets sent with send_offsets_to_transaction
# become the group's committed offsets only when their transaction commits (not when it aborts).
# Then `rafka transactions list` / `describe` show the transactional id.
#
#   bash tests/smoke/kafka_python_txn.sh [path/to/rafka]   (default target/debug/rafka)
#
# Needs python3 with kafka-python >= 2.1 (the transactional producer; .ci/run installs it).
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/smoke/common.bash

python3 -c 'import kafka' 2>/dev/null || fail "kafka-python is not installed (pip install kafka-python)"
python3 -c 'from kafka import KafkaProducer; KafkaProducer.init_transactions' 2>/dev/null \
  || fail "kafka-python has no transactional producer (>= 2.1 needed)"
rafka_extra_props() { rafka_txn_props; }
RAFKA_BIN=${1:-target/debug/rafka}
rafka_start "$RAFKA_BIN"

cat > "$WORK/txn.py" <<'PY'
import sys, time
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata

broker, command = sys.argv[1], sys.argv[2]
TOPIC, INPUT, GROUP = "py-txn", "py-txn-in", "py-txn-group"

def committed():
    """The group's committed offset of the input partition (-1: none)."""
    c = KafkaConsumer(bootstrap_servers=broker, group_id=GROUP, enable_auto_commit=False)
    o = c.committed(TopicPartition(INPUT, 0))
    c.close()
    return -1 if o is None else o

if command == "create":
    admin = KafkaAdminClient(bootstrap_servers=broker)
    admin.create_topics([NewTopic(TOPIC, 1, 1), NewTopic(INPUT, 1, 1)])
    admin.close()
elif command == "transactions":
    p = KafkaProducer(bootstrap_servers=broker, transactional_id="py-txn-producer",
                      transaction_timeout_ms=30000)
    p.init_transactions()
    p.begin_transaction()
    p.send(TOPIC, b"c1", partition=0)
    p.send(TOPIC, b"c2", partition=0)
    p.commit_transaction()
    p.begin_transaction()
    p.send(TOPIC, b"a1", partition=0)
    p.send(TOPIC, b"a2", partition=0)
    p.send_offsets_to_transaction({TopicPartition(INPUT, 0): OffsetAndMetadata(3, "", -1)}, GROUP)
    # Written before the abort (an abort drops records not yet sent).
    p.flush()
    p.abort_transaction()
    print("after abort", committed())
    p.begin_transaction()
    p.send(TOPIC, b"c3", partition=0)
    p.send_offsets_to_transaction({TopicPartition(INPUT, 0): OffsetAndMetadata(7, "", -1)}, GROUP)
    p.commit_transaction()
    # The markers follow EndTxn's answer: wait (bounded) for the offset to land.
    deadline = time.time() + 30
    while committed() != 7 and time.time() < deadline:
        time.sleep(0.2)
    print("after commit", committed())
    p.close()
elif command == "read":
    c = KafkaConsumer(bootstrap_servers=broker, isolation_level=sys.argv[3],
                      enable_auto_commit=False, auto_offset_reset="earliest")
    tp = TopicPartition(TOPIC, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    got, deadline, quiet = [], time.time() + 30, 0
    while time.time() < deadline and quiet < 3:
        batch = c.poll(timeout_ms=500)
        quiet = 0 if batch else quiet + 1
        for records in batch.values():
            got.extend(r.value.decode() for r in records)
    c.close()
    print(" ".join(got))
else:
    sys.exit("unknown command " + command)
PY

py() { timeout 120 python3 "$WORK/txn.py" "$BROKER" "$@"; }

py create
expect_output "kafka-python: send_offsets_to_transaction commits with the transaction only" 'after abort -1\nafter commit 7' py transactions
expect_output "kafka-python: read_committed reads committed transactions only" 'c1 c2 c3' py read read_committed
expect_output "kafka-python: read_uncommitted reads aborted records too" 'c1 c2 a1 a2 c3' py read read_uncommitted

# rafka's own tool lists and describes the transactional id kafka-python used.
"$RAFKA_BIN" transactions list -b "$BROKER" --output json > "$WORK/list.json"
grep -q '"py-txn-producer"' "$WORK/list.json" && grep -q '"CompleteCommit"' "$WORK/list.json" \
  || fail "rafka transactions list: $(cat "$WORK/list.json")"
check "rafka transactions list shows the producer's id, CompleteCommit"
"$RAFKA_BIN" transactions describe -b "$BROKER" --transactional-id py-txn-producer > "$WORK/describe.out"
grep -q "CompleteCommit" "$WORK/describe.out" || fail "rafka transactions describe: $(cat "$WORK/describe.out")"
check "rafka transactions describe"
