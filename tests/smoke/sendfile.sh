#!/usr/bin/env bash
# Zero-copy fetch, shown with strace: the broker runs under `strace -f -e trace=sendfile`,
# kcat produces ~20 MiB and consumes it back (content checked), and the bytes the broker's
# sendfile(2) calls carried must add up to at least the record bytes in the log (every
# batch the consumer read went from the segment file to the socket without a copy).
#
# usage: tests/smoke/sendfile.sh [path/to/rafka]
#   default binary: target/release/rafka if built, else target/debug/rafka.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=common.bash
source "$ROOT/tests/smoke/common.bash"

BIN=${1:-}
if [[ -z "$BIN" ]]; then
  if [[ -x "$ROOT/target/release/rafka" ]]; then BIN=$ROOT/target/release/rafka; else BIN=$ROOT/target/debug/rafka; fi
fi
command -v kcat >/dev/null || fail "kcat is not installed"
command -v strace >/dev/null || fail "strace is not installed"

TRACE=$WORK/strace.log
# --seccomp-bpf: only the traced calls stop the process (the broker runs at full speed
# otherwise); older strace lacks it.
SECCOMP=
strace --seccomp-bpf -f -e trace=sendfile -o /dev/null true 2>/dev/null && SECCOMP=--seccomp-bpf
rafka_start "$BIN" strace $SECCOMP -f -qq -e trace=sendfile,sendfile64 -o "$TRACE"
kc() { timeout 120 kcat -b "$BROKER" -X broker.address.family=v4 "$@"; }

# ~20 MiB of 1 KiB lines, incompressible-ish and all different.
head -c 15728640 /dev/urandom | base64 -w 1023 > "$WORK/big.in"
in_bytes=$(stat -c %s "$WORK/big.in")
in_msgs=$(wc -l < "$WORK/big.in")
kc -P -t big -p 0 -X linger.ms=20 < "$WORK/big.in"
check "produced $in_msgs messages, $in_bytes bytes"

before=$(wc -l < "$TRACE")
kc -C -t big -p 0 -o beginning -e -q -f '%s\n' > "$WORK/big.out"
expect_same "consumed all $in_msgs messages intact" "$WORK/big.in" "$WORK/big.out"

# The record bytes in the log: the size of the partition's segment files (batch headers
# included), which is what fetches serve.
log_bytes=$(cat "$WORK/data/big-0/"*.log | wc -c)
sleep 0.5 # let strace write out the last lines
# Lines look like  "PID sendfile(FD, FD, [OFF] => [OFF'], COUNT) = BYTES", possibly split in
# "<unfinished ...>" and "<... sendfile resumed>..." halves; the result is on the last half.
read -r calls sent < <(tail -n +"$((before + 1))" "$TRACE" \
  | awk '/sendfile/ && match($0, /= [0-9]+$/) { n++; s += substr($0, RSTART + 2) } END { print n + 0, s + 0 }')
echo "sendfile during the consume: $calls calls, $sent bytes; record bytes in the log: $log_bytes; consumed payload: $in_bytes"
(( calls > 0 )) || fail "no sendfile call while a consumer fetched $log_bytes bytes"
(( sent >= log_bytes )) || fail "sendfile carried $sent bytes, less than the $log_bytes record bytes fetched"
check "sendfile carried $sent bytes in $calls calls (>= $log_bytes bytes of record batches, $(( sent * 100 / log_bytes ))%)"

echo "sendfile smoke: all $CHECKS checks passed"
