#!/usr/bin/env bash
# How long the console's pages take against a node with 10,000 partitions.
#
#   bash benches/console_pages.sh [path/to/rafka]     (default target/release/rafka, else debug)
#
# Starts one node (tests/smoke/common.bash) with num.partitions=100, auto-creates 100 topics by
# producing one record to each with kcat (100 x 100 = 10,000 partitions, override with
# TOPICS=N), has a group read one topic, then requests every page's resources — the page, its
# script and style, and the JSON each page asks for — ROUNDS times (default 20) with curl, and
# prints the median and worst time per page (a page = the sum of its requests, made one after
# another as a cold browser would without parallelism: an upper bound).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../tests/smoke/common.bash
source "$ROOT/tests/smoke/common.bash"
BIN=${1:-}
if [[ -z "$BIN" ]]; then
  if [[ -x "$ROOT/target/release/rafka" ]]; then BIN=$ROOT/target/release/rafka; else BIN=$ROOT/target/debug/rafka; fi
fi
TOPICS=${TOPICS:-100}
ROUNDS=${ROUNDS:-20}
rafka_extra_props() { echo "num.partitions=100"; }
rafka_start "$BIN"
HTTP="http://127.0.0.1:$HPORT"
kc() { timeout 120 kcat -b "$BROKER" -X broker.address.family=v4 "$@"; }

started=$SECONDS
for i in $(seq 0 $((TOPICS - 1))); do
  echo "record $i" | kc -P -t "bench-$i" -p 0
done
kc -G bench-group -X auto.offset.reset=earliest -c 1 -q -f '%o\n' bench-0 > /dev/null
PARTS=$(curl -fsS "$HTTP/api/cluster" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitions"])')
echo "made $TOPICS topics, $PARTS partitions in all (with __consumer_offsets), in $((SECONDS - started)) s"

# page name, then its requests.
pages=(
  "overview|/ /assets/app.js /assets/app.css /api/cluster"
  "topics|/api/cluster /api/topics?limit=100&offset=0&q="
  "topic|/api/topics/bench-7?limit=200&offset=0 /api/throughput?topic=bench-7"
  "groups|/api/groups?limit=200"
  "group|/api/groups/bench-group"
  "messages|/api/topics/bench-7/partitions/0/messages?limit=50"
  "throughput|/api/throughput"
)
printf '%-11s %10s %10s   (ms, %d rounds, %s)\n' page median worst "$ROUNDS" "$(basename "$BIN")"
for entry in "${pages[@]}"; do
  name=${entry%%|*}
  urls=${entry#*|}
  times=()
  for _ in $(seq 1 "$ROUNDS"); do
    total=0
    for u in $urls; do
      t=$(curl -fsS -o /dev/null -w '%{time_total}' "$HTTP$u")
      total=$(python3 -c "print($total + $t)")
    done
    times+=("$total")
  done
  printf '%s\n' "${times[@]}" | python3 -c '
import sys
name = sys.argv[1]
t = sorted(float(x) * 1000 for x in sys.stdin.read().split())
print(f"{name:<11} {t[len(t)//2]:10.1f} {t[-1]:10.1f}")' "$name"
done
