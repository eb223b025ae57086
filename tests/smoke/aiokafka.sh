#!/usr/bin/env bash
# aiokafka (asyncio; its own protocol code, not librdkafka's) against rafka: the admin client
# creates a two-partition topic and describes it; an idempotent producer sends gzip batches with
# keys and headers; a consumer group reads every message once, commits, and a second member
# resumes from the commit; a transactional producer commits one transaction and aborts another,
# and read_committed and read_uncommitted consumers see what each should; SASL PLAIN on a
# SASL_PLAINTEXT listener (a wrong password refused); DeleteTopics.
#
#   bash tests/smoke/aiokafka.sh [path/to/rafka]   (default target/debug/rafka)
#
# Needs python3 with aiokafka (`pip install aiokafka`; .ci/run installs it).
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/smoke/common.bash

python3 -c 'import aiokafka' 2>/dev/null || fail "aiokafka is not installed (pip install aiokafka)"
rafka_extra_props() { rafka_txn_props; }
RAFKA_SASL=1 rafka_start "${1:-target/debug/rafka}"

cat > "$WORK/client.py" <<'PY'
import asyncio, sys
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

BROKER, SASL_BROKER = sys.argv[1], sys.argv[2]
TOPIC, TXN, GROUP = "aio-orders", "aio-txn", "aio-group"


def check(cond, name, detail=None):
    if not cond:
        sys.exit(f"FAIL {name}: {detail!r}")
    print(f"ok {name}", flush=True)


async def consume(topic, group, want, **kw):
    """A fresh member of `group` reads until `want` messages came (or 60 s), then polls once
    more for any extra (a message read twice), commits and leaves."""
    kw.setdefault("bootstrap_servers", BROKER)
    c = AIOKafkaConsumer(topic, group_id=group,
                         auto_offset_reset="earliest", enable_auto_commit=False,
                         session_timeout_ms=10000, heartbeat_interval_ms=500, **kw)
    await c.start()
    got = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while len(got) < want and loop.time() < deadline:
            for records in (await c.getmany(timeout_ms=500)).values():
                got.extend(records)
        for records in (await c.getmany(timeout_ms=1000)).values():
            got.extend(records)
        if group is not None:
            await c.commit()
    finally:
        await c.stop()
    return got


async def main():
    admin = AIOKafkaAdminClient(bootstrap_servers=BROKER)
    await admin.start()
    await admin.create_topics([NewTopic(TOPIC, num_partitions=2, replication_factor=1),
                               NewTopic(TXN, num_partitions=1, replication_factor=1)])
    topics = await admin.list_topics()
    check(TOPIC in topics and TXN in topics, "create_topics and list_topics", topics)
    described = await admin.describe_topics([TOPIC])
    parts = sorted(p["partition"] for p in described[0]["partitions"])
    check(parts == [0, 1], "describe_topics: two partitions", described)

    p = AIOKafkaProducer(bootstrap_servers=BROKER, enable_idempotence=True, acks="all",
                         compression_type="gzip", linger_ms=5)
    await p.start()
    try:
        futures = [await p.send(TOPIC, key=b"k%d" % i, value=b"v%d" % i, partition=i % 2,
                                headers=[("n", b"%d" % i), ("src", b"aiokafka")])
                   for i in range(40)]
        metas = [await f for f in futures]
    finally:
        await p.stop()
    offsets = sorted((m.partition, m.offset) for m in metas)
    check(offsets == sorted([(0, i) for i in range(20)] + [(1, i) for i in range(20)]),
          "an idempotent gzip producer: 40 messages acknowledged at offsets 0..19 of each partition",
          offsets)

    got = await consume(TOPIC, GROUP, 40)
    check(len(got) == 40 and len({r.key for r in got}) == 40, "the group reads 40 distinct messages once",
          len(got))
    check(all(r.value == b"v" + r.key[1:] and r.partition == int(r.key[1:]) % 2
              and dict(r.headers) == {"n": r.key[1:], "src": b"aiokafka"} for r in got),
          "every message arrives with its value, partition and headers")
    for part in (0, 1):
        offs = [r.offset for r in got if r.partition == part]
        check(offs == list(range(20)), f"partition {part} is read in offset order", offs)

    groups = await admin.list_consumer_groups()
    check(any(g[0] == GROUP for g in groups), "list_consumer_groups lists the group", groups)
    committed = await admin.list_consumer_group_offsets(GROUP)
    c = sorted((tp.partition, om.offset) for tp, om in committed.items())
    check(c == [(0, 20), (1, 20)], "the committed offsets are the log ends", c)

    p = AIOKafkaProducer(bootstrap_servers=BROKER)
    await p.start()
    try:
        await p.send_and_wait(TOPIC, key=b"late", value=b"after-commit", partition=1)
    finally:
        await p.stop()
    resumed = await consume(TOPIC, GROUP, 1)
    check([(r.partition, r.offset, r.value) for r in resumed] == [(1, 20, b"after-commit")],
          "a new member resumes from the committed offsets", resumed)

    tx = AIOKafkaProducer(bootstrap_servers=BROKER, transactional_id="aio-tx")
    await tx.start()
    try:
        async with tx.transaction():
            await tx.send(TXN, b"committed-1")
            await tx.send(TXN, b"committed-2")
        await tx.begin_transaction()
        await tx.send(TXN, b"aborted")
        await tx.abort_transaction()
        async with tx.transaction():
            await tx.send(TXN, b"committed-3")
    finally:
        await tx.stop()
    check(True, "transactions commit and abort")
    rc = await consume(TXN, None, 3, isolation_level="read_committed")
    check([r.value for r in rc] == [b"committed-1", b"committed-2", b"committed-3"],
          "a read_committed consumer reads only committed messages", [r.value for r in rc])
    ru = await consume(TXN, None, 4, isolation_level="read_uncommitted")
    check([r.value for r in ru] == [b"committed-1", b"committed-2", b"aborted", b"committed-3"],
          "a read_uncommitted consumer also reads the aborted message", [r.value for r in ru])

    # SASL PLAIN on the SASL_PLAINTEXT listener (user admin/admin-secret).
    def plain(password):
        return dict(bootstrap_servers=SASL_BROKER, security_protocol="SASL_PLAINTEXT",
                    sasl_mechanism="PLAIN", sasl_plain_username="admin",
                    sasl_plain_password=password)
    p = AIOKafkaProducer(acks="all", **plain("admin-secret"))
    await p.start()
    try:
        for i in range(3):
            await p.send_and_wait("aio-sasl", b"s%d" % i)
    finally:
        await p.stop()
    sread = await consume("aio-sasl", "aio-sasl-group", 3, **plain("admin-secret"))
    check([r.value for r in sread] == [b"s0", b"s1", b"s2"],
          "SASL PLAIN: a producer and a group consumer over SASL_PLAINTEXT", [r.value for r in sread])
    bad = AIOKafkaProducer(request_timeout_ms=5000, **plain("wrong"))
    try:
        await bad.start()
        refused = None
    except Exception as e:  # aiokafka raises its connection error for a failed handshake
        refused = e
    finally:
        await bad.stop()
    check(refused is not None, "SASL PLAIN: a wrong password is refused", refused)

    await admin.delete_topics([TXN])
    topics = await admin.list_topics()
    check(TXN not in topics and TOPIC in topics, "delete_topics deletes one topic", topics)
    await admin.close()
    print("aiokafka: all checks passed")


asyncio.run(main())
PY

timeout 300 python3 "$WORK/client.py" "$BROKER" "$SASL_BROKER" | tee "$WORK/aiokafka.out"
n=$(grep -c '^ok ' "$WORK/aiokafka.out")
(( n >= 16 )) || fail "aiokafka: only $n checks ran"
grep -q '^aiokafka: all checks passed$' "$WORK/aiokafka.out" || fail "aiokafka: did not finish"
check "aiokafka: $n checks against rafka"
