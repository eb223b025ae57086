#!/usr/bin/env bash
# The web console in a real browser: headless Debian Chromium driven by Playwright
# (playwright-core, tests/browser/console.mjs) against a rafka node whose cluster this script
# makes with kcat — two topics (auto-created with 3 partitions), records with a key and headers, a consumer
# group that reads a topic to its end before 35 more records arrive. Each page must render them (topic names, partition counts,
# the group's lag, the produced message); a screenshot of each page is written to
# target/console-screenshots/ (or $CONSOLE_SCREENSHOTS).
#
# usage: tests/smoke/console.sh [path/to/rafka]
# Installs what is missing: Debian's chromium, and playwright-core (npm install in tests/browser).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=common.bash
source "$ROOT/tests/smoke/common.bash"

BIN=${1:-}
if [[ -z "$BIN" ]]; then
  if [[ -x "$ROOT/target/release/rafka" ]]; then BIN=$ROOT/target/release/rafka; else BIN=$ROOT/target/debug/rafka; fi
fi
command -v kcat >/dev/null || fail "kcat is not installed"
if [[ ! -x /usr/bin/chromium ]]; then
  apt-get update && apt-get install -y chromium
fi
command -v node >/dev/null || { apt-get update && apt-get install -y nodejs npm; }
if [[ ! -d "$ROOT/tests/browser/node_modules/playwright-core" ]]; then
  (cd "$ROOT/tests/browser" && npm install --no-audit --no-fund)
fi
SHOTS=${CONSOLE_SCREENSHOTS:-$ROOT/target/console-screenshots}

rafka_extra_props() {
  echo "num.partitions=3"
  echo "http.console.sample.interval.ms=500"
}
rafka_start "$BIN"
HTTP="http://127.0.0.1:$HPORT"
kc() { timeout 60 kcat -b "$BROKER" -X broker.address.family=v4 "$@"; }
api() { curl -fsS --max-time 10 "$HTTP$1"; }
jq_py() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# --- the cluster: orders and payments (auto-created, 3 partitions), a keyed record with headers
for p in 0 1 2; do
  seq 1 20 | sed "s/^/order $p-/" | kc -P -t orders -p "$p"
done
kc -P -t payments -p 0 -K: -H "trace=abc-123" -H "source=smoke" <<< "invoice-7:paid 42 EUR"
check "produced 60 records to orders and one keyed record with headers to payments"

# --- a group that reads all 60 records and commits them; then 35 more arrive: lag 35 -------
kc -G smoke-group -X auto.offset.reset=earliest -X enable.auto.commit=true -c 60 -q -f '%o\n' orders > "$WORK/group.out"
[[ $(wc -l < "$WORK/group.out") -eq 60 ]] || fail "the group read $(wc -l < "$WORK/group.out") records, not 60"
for p in 0 1 2; do
  n=12; [[ $p == 2 ]] && n=11
  seq 1 "$n" | sed "s/^/late order $p-/" | kc -P -t orders -p "$p"
done
LAG=
for _ in $(seq 1 100); do
  LAG=$(api /api/groups/smoke-group | jq_py 'd["lag"]' 2>/dev/null || true)
  [[ "$LAG" == 35 ]] && break
  sleep 0.1
done
[[ "$LAG" == 35 ]] || fail "the group's lag is $LAG, not 35: $(api /api/groups/smoke-group)"
check "the console API reports the group's lag: 35"

# --- the browser ---------------------------------------------------------------------------
EXPECT=$(cat <<EOF
{"topics": {"orders": 3, "payments": 3}, "group": "smoke-group", "lag": 35,
 "message": {"topic": "payments", "partition": 0, "offset": 0, "key": "invoice-7", "value": "paid 42 EUR"}}
EOF
)
rm -rf "$SHOTS"
node "$ROOT/tests/browser/console.mjs" "$HTTP" "$SHOTS" "$EXPECT" | tee "$WORK/browser.out"
grep -q ' 0 failed$' "$WORK/browser.out" || fail "browser checks failed"
for page in overview topics topic groups group messages throughput; do
  [[ -s "$SHOTS/$page.png" ]] || fail "no screenshot of $page"
done
check "every page rendered in Chromium; screenshots in $SHOTS"
