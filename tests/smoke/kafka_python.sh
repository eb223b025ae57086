#!/usr/bin/env bash
# kafka-python's group consumer against rafka: a KafkaConsumer with a group_id joins, reads what
# a KafkaProducer wrote to a two-partition topic, commits; a second consumer of the group resumes
# from the commit and reads only what came after. Each read is checked for exact content. Then
# SASL_PLAINTEXT with SCRAM: users created with the admin client's AlterUserScramCredentials
# over the PLAINTEXT listener, a SCRAM-SHA-256 producer and a SCRAM-SHA-512 consumer, and a
# wrong password refused.
#
#   bash tests/smoke/kafka_python.sh [path/to/rafka]   (default target/debug/rafka)
#
# Needs python3 with kafka-python (`pip install kafka-python`; .ci/run installs it).
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/smoke/common.bash

python3 -c 'import kafka' 2>/dev/null || fail "kafka-python is not installed (pip install kafka-python)"
RAFKA_SASL=1 rafka_start "${1:-target/debug/rafka}"

cat > "$WORK/client.py" <<'PY'
import sys, time
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

broker, command = sys.argv[1], sys.argv[2]
TOPIC, GROUP = "py-grouped", "py-group"

if command == "create":
    admin = KafkaAdminClient(bootstrap_servers=broker)
    admin.create_topics([NewTopic(TOPIC, num_partitions=2, replication_factor=1)])
    admin.close()
elif command == "produce":
    first, last = int(sys.argv[3]), int(sys.argv[4])
    p = KafkaProducer(bootstrap_servers=broker, acks="all")
    for i in range(first, last):
        p.send(TOPIC, value=b"m%d" % i, partition=i % 2).get(timeout=30)
    p.flush()
    p.close()
elif command == "consume":
    want = int(sys.argv[3])
    c = KafkaConsumer(TOPIC, bootstrap_servers=broker, group_id=GROUP,
                      auto_offset_reset="earliest", enable_auto_commit=False,
                      session_timeout_ms=6000, heartbeat_interval_ms=500)
    got, deadline = [], time.time() + 60
    while len(got) < want and time.time() < deadline:
        for records in c.poll(timeout_ms=500).values():
            got.extend(records)
    # Anything beyond `want` would be a record read twice: poll once more to see it.
    for records in c.poll(timeout_ms=1000).values():
        got.extend(records)
    c.commit()
    c.close()
    for r in sorted(got, key=lambda r: (r.partition, r.offset)):
        print(r.partition, r.offset, r.value.decode())
else:
    sys.exit("unknown command " + command)
PY

py() { timeout 120 python3 "$WORK/client.py" "$BROKER" "$@"; }

py create
py produce 0 10
py consume 10 > "$WORK/c1.out"
for i in $(seq 0 2 8); do echo "0 $((i / 2)) m$i"; done > "$WORK/c1.want"
for i in $(seq 1 2 9); do echo "1 $((i / 2)) m$i"; done >> "$WORK/c1.want"
expect_same "kafka-python: a group member reads both partitions from the beginning" "$WORK/c1.want" "$WORK/c1.out"

py produce 10 14
py consume 4 > "$WORK/c2.out"
printf '0 5 m10\n0 6 m12\n1 5 m11\n1 6 m13\n' > "$WORK/c2.want"
expect_same "kafka-python: the group resumes from its committed offsets" "$WORK/c2.want" "$WORK/c2.out"

# The group as the broker describes it after its members left: Empty, a consumer group.
timeout 30 python3 - "$BROKER" > "$WORK/g.out" <<'PY'
import sys
from kafka import KafkaAdminClient
admin = KafkaAdminClient(bootstrap_servers=sys.argv[1])
if hasattr(admin, "describe_groups"):  # kafka-python 3: dicts
    for name, g in admin.describe_groups(["py-group"]).items():
        print(name, g["group_state"], g["protocol_type"], len(g["members"]))
else:  # kafka-python 2: named tuples
    for g in admin.describe_consumer_groups(["py-group"]):
        print(g.group, g.state, g.protocol_type, len(g.members))
admin.close()
PY
echo "py-group Empty consumer 0" > "$WORK/g.want"
expect_same "kafka-python: DescribeGroups shows the group Empty after its members left" "$WORK/g.want" "$WORK/g.out"
# SASL_PLAINTEXT with SCRAM.
timeout 120 python3 - "$BROKER" "$SASL_BROKER" > "$WORK/scram.out" <<'PY'
import sys
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic, UserScramCredentialUpsertion

plain, sasl = sys.argv[1], sys.argv[2]
admin = KafkaAdminClient(bootstrap_servers=plain)
admin.alter_user_scram_credentials([
    UserScramCredentialUpsertion("py-user", "SCRAM-SHA-256", "py-256", iterations=4096),
    UserScramCredentialUpsertion("py-user", "SCRAM-SHA-512", "py-512", iterations=8192),
])
admin.create_topics([NewTopic("py-scram", num_partitions=1, replication_factor=1)])
for user, creds in sorted(admin.describe_user_scram_credentials().items()):
    print(user, sorted((int(c["mechanism"]), c["iterations"]) for c in creds["credential_infos"]))
admin.close()

def sasl_args(mechanism, password):
    return dict(bootstrap_servers=sasl, security_protocol="SASL_PLAINTEXT",
                sasl_mechanism=mechanism, sasl_plain_username="py-user",
                sasl_plain_password=password)

p = KafkaProducer(acks="all", **sasl_args("SCRAM-SHA-256", "py-256"))
for i in range(3):
    p.send("py-scram", value=b"s%d" % i).get(timeout=30)
p.close()
c = KafkaConsumer(enable_auto_commit=False, consumer_timeout_ms=10000,
                  **sasl_args("SCRAM-SHA-512", "py-512"))
tp = TopicPartition("py-scram", 0)
c.assign([tp])
c.seek_to_beginning(tp)
got = []
for m in c:
    got.append(m.value.decode())
    if len(got) == 3:
        break
c.close()
print(" ".join(got))
try:
    bad = KafkaProducer(request_timeout_ms=5000, max_block_ms=5000,
                        **sasl_args("SCRAM-SHA-512", "wrong"))
    bad.send("py-scram", value=b"no").get(timeout=10)
    print("wrong password accepted")
except Exception as e:
    print("wrong password refused")
PY
printf '%s\n' "py-user [(1, 4096), (2, 8192)]" "s0 s1 s2" "wrong password refused" > "$WORK/scram.want"
expect_same "kafka-python: SCRAM users created with AlterUserScramCredentials produce and consume over SASL_PLAINTEXT" "$WORK/scram.want" "$WORK/scram.out"
echo "kafka_python.sh: $CHECKS checks passed"
