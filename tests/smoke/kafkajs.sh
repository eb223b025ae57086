#!/usr/bin/env bash
# kafkajs (a pure-JavaScript client with its own protocol code, tests/kafkajs/smoke.mjs) against
# rafka: admin calls (CreateTopics, Metadata, DescribeCluster, DescribeConfigs, AlterConfigs,
# CreatePartitions, DeleteRecords, group offsets, DeleteTopics), an idempotent gzip producer with
# keys and headers, a consumer group that reads every message once and commits, a member that
# resumes from the commit, two members splitting a topic's partitions and one taking them all
# when the other leaves, transactions read back read_committed and read_uncommitted, and SASL
# PLAIN on a SASL_PLAINTEXT listener (a wrong password refused).
#
#   bash tests/smoke/kafkajs.sh [path/to/rafka]   (default target/debug/rafka)
#
# Needs node and npm; installs kafkajs (tests/kafkajs, npm install) when missing.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
source tests/smoke/common.bash

command -v node >/dev/null || { apt-get update && apt-get install -y nodejs npm; }
if [[ ! -d tests/kafkajs/node_modules/kafkajs ]]; then
  (cd tests/kafkajs && npm install --no-audit --no-fund)
fi
rafka_extra_props() { rafka_txn_props; }
RAFKA_SASL=1 rafka_start "${1:-target/debug/rafka}"

KAFKAJS_NO_PARTITIONER_WARNING=1 timeout 300 node tests/kafkajs/smoke.mjs "$BROKER" "$SASL_BROKER" | tee "$WORK/kafkajs.out"
n=$(grep -c '^ok ' "$WORK/kafkajs.out")
(( n >= 30 )) || fail "kafkajs: only $n checks ran"
grep -q '^kafkajs: all checks passed$' "$WORK/kafkajs.out" || fail "kafkajs: did not finish"
check "kafkajs: $n checks against rafka"
