#!/usr/bin/env bash
# kcat against a real rafka: metadata (-L), keys (-K), NULLs (-Z), headers (-H), every codec
# (-z), explicit offsets (-o N, -o -N, -o beginning/end, -c, -o s@timestamp) and offsets by
# time (-Q), a consumer group (-G) resuming from its commit, each checked for exact content with
# diff.
#
# usage: tests/smoke/kcat.sh [path/to/rafka]
#   default binary: target/release/rafka if built, else target/debug/rafka.
# Starts the broker on free 127.0.0.1 ports in a temp dir and stops it at exit; exits non-zero
# on the first failed check.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=common.bash
source "$ROOT/tests/smoke/common.bash"

BIN=${1:-}
if [[ -z "$BIN" ]]; then
  if [[ -x "$ROOT/target/release/rafka" ]]; then BIN=$ROOT/target/release/rafka; else BIN=$ROOT/target/debug/rafka; fi
fi
command -v kcat >/dev/null || fail "kcat is not installed"
kcat -V 2>&1 | grep -m1 Version || true

rafka_start "$BIN"
kc() { timeout 60 kcat -b "$BROKER" -X broker.address.family=v4 "$@"; }
# consume TOPIC ARGS...: partition 0, exit at the end, one line per message.
consume() { local t=$1; shift; kc -C -t "$t" -p 0 -e -q "$@"; }

# --- metadata -----------------------------------------------------------------------------
kc -L > "$WORK/L.txt"
grep -q '^ 1 brokers:' "$WORK/L.txt" || fail "kcat -L: not one broker: $(cat "$WORK/L.txt")"
grep -q "broker 1 at 127.0.0.1:$PORT (controller)" "$WORK/L.txt" \
  || fail "kcat -L: broker 1 at 127.0.0.1:$PORT (controller) not listed: $(cat "$WORK/L.txt")"
check "kcat -L lists broker 1 at 127.0.0.1:$PORT as the controller"

# --- keys and NULLs (topics are auto-created by the producer's Metadata request) ----------
printf 'alpha:1\nbeta:two words\n:empty key\ngamma:\ndelta:x:y\n' > "$WORK/keyed.in"
kc -P -t keyed -p 0 -K: -Z < "$WORK/keyed.in"
consume keyed -o beginning -Z -f '%o|%K|%k|%S|%s\n' > "$WORK/keyed.out"
cat > "$WORK/keyed.want" <<'EOF'
0|5|alpha|1|1
1|4|beta|9|two words
2|-1|NULL|9|empty key
3|5|gamma|-1|NULL
4|5|delta|3|x:y
EOF
expect_same "keys: -K: with -Z (empty key and empty value as NULL), keys and lengths exact" "$WORK/keyed.want" "$WORK/keyed.out"

# --- headers ------------------------------------------------------------------------------
printf 'first\nsecond\n' | kc -P -t headed -p 0 -H trace=abc-123 -H empty= -H dup=1 -H dup=2
consume headed -o beginning -f '%o %h %s\n' > "$WORK/headed.out"
cat > "$WORK/headed.want" <<'EOF'
0 trace=abc-123,empty=,dup=1,dup=2 first
1 trace=abc-123,empty=,dup=1,dup=2 second
EOF
expect_same "headers: -H (order, empty value, repeated name) on every message" "$WORK/headed.want" "$WORK/headed.out"

# --- every codec --------------------------------------------------------------------------
# codec name and the compression bits (attributes & 7) its batches must carry on disk
for pair in none:0 gzip:1 snappy:2 lz4:3 zstd:4; do
  z=${pair%%:*}
  bits=${pair##*:}
  for i in $(seq 1 3000); do echo "$z line $i: the quick brown fox jumps over the lazy dog $((i * 7919 % 10007))"; done > "$WORK/$z.in"
  kc -P -t "codec-$z" -p 0 -z "$z" -X linger.ms=50 < "$WORK/$z.in"
  consume "codec-$z" -o beginning -X check.crcs=true -f '%s\n' > "$WORK/$z.out"
  expect_same "codec $z: 3000 messages read back intact" "$WORK/$z.in" "$WORK/$z.out"
  # On disk, batch by batch (baseOffset 8, length 4, ..., attributes at byte 21, record count
  # at 57): each batch carries the producer's codec or none (librdkafka sends a batch
  # uncompressed when compressing would not shrink it, e.g. a lone small message), and almost
  # every record sits in a batch compressed with $z.
  seg=$(ls "$WORK/data/codec-$z-0/"*.log | head -n1)
  nbatches=0 in_codec=0 pos=0
  size=$(stat -c %s "$seg")
  while (( pos + 61 <= size )); do
    len=$(od -An -tu4 --endian=big -j $((pos + 8)) -N4 "$seg" | tr -d ' ')
    (( len > 0 )) || break
    attr=$(od -An -tu1 -j $((pos + 22)) -N1 "$seg" | tr -d ' ')
    count=$(od -An -tu4 --endian=big -j $((pos + 57)) -N4 "$seg" | tr -d ' ')
    codec=$((attr & 7))
    (( codec == bits || codec == 0 )) || fail "codec $z: batch at byte $pos stored with codec bits $codec, sent with $bits"
    (( codec == bits )) && in_codec=$((in_codec + count))
    nbatches=$((nbatches + 1))
    pos=$((pos + 12 + len))
  done
  (( in_codec * 10 >= 3000 * 9 )) || fail "codec $z: only $in_codec of 3000 records in $z batches"
  check "codec $z: $nbatches batches stored as sent, $in_codec of 3000 records in batches with codec bits $bits; $(stat -c %s "$seg") bytes on disk for $(stat -c %s "$WORK/$z.in") bytes of input"
done

# --- explicit offsets ---------------------------------------------------------------------
for i in $(seq 0 9); do echo "m$i"; done > "$WORK/offsets.in"
kc -P -t offsets -p 0 < "$WORK/offsets.in"

consume offsets -o 5 -f '%o %s\n' > "$WORK/o5.out"
printf '5 m5\n6 m6\n7 m7\n8 m8\n9 m9\n' > "$WORK/o5.want"
expect_same "-o 5: offsets 5..9" "$WORK/o5.want" "$WORK/o5.out"

consume offsets -o -2 -f '%o %s\n' > "$WORK/o-2.out"
printf '8 m8\n9 m9\n' > "$WORK/o-2.want"
expect_same "-o -2: the last two" "$WORK/o-2.want" "$WORK/o-2.out"

consume offsets -o beginning -c 3 -f '%o %s\n' > "$WORK/c3.out"
printf '0 m0\n1 m1\n2 m2\n' > "$WORK/c3.want"
expect_same "-o beginning -c 3: the first three" "$WORK/c3.want" "$WORK/c3.out"

consume offsets -o 9 -f '%o %s\n' > "$WORK/o9.out"
printf '9 m9\n' > "$WORK/o9.want"
expect_same "-o 9: the last one" "$WORK/o9.want" "$WORK/o9.out"

consume offsets -o end -f '%o %s\n' > "$WORK/oend.out"
: > "$WORK/empty.want"
expect_same "-o end: nothing" "$WORK/empty.want" "$WORK/oend.out"

consume offsets -o 10 -f '%o %s\n' > "$WORK/o10.out"
expect_same "-o 10 (the log end): nothing" "$WORK/empty.want" "$WORK/o10.out"

# By time: m10..m12 are produced after $ts.
sleep 1.1
ts=$(( $(date +%s%N) / 1000000 ))
sleep 0.1
printf 'm10\nm11\nm12\n' | kc -P -t offsets -p 0
consume offsets -o "s@$ts" -f '%o %s\n' > "$WORK/ots.out"
printf '10 m10\n11 m11\n12 m12\n' > "$WORK/ots.want"
expect_same "-o s@<ms>: from the first message at or after the timestamp" "$WORK/ots.want" "$WORK/ots.out"

kc -Q -t "offsets:0:$ts" > "$WORK/q.out"
grep -Eq 'offset 10$' "$WORK/q.out" || fail "-Q offsets:0:$ts: $(cat "$WORK/q.out")"
check "-Q: offset 10 for the timestamp"
kc -Q -t "offsets:0:$(( $(date +%s%N) / 1000000 + 3600000 ))" > "$WORK/q2.out"
grep -Eq 'offset -1$' "$WORK/q2.out" || fail "-Q an hour ahead: $(cat "$WORK/q2.out")"
check "-Q: offset -1 for a timestamp after every message"

# --- a consumer group (-G): join, consume, commit; a second run resumes after the commit ----
printf 'g0\ng1\ng2\n' | kc -P -t grouped -p 0
# -G balances the subscription in a group and commits (auto-commit) as it goes; -e exits at the
# end of the partitions, committing the final offsets on the way out.
kc -G smoke-group -X auto.offset.reset=earliest -e -q -f '%p %o %s\n' grouped > "$WORK/g1.out"
printf '0 0 g0\n0 1 g1\n0 2 g2\n' > "$WORK/g1.want"
expect_same "-G: a group member reads the partition from the beginning" "$WORK/g1.want" "$WORK/g1.out"
printf 'g3\n' | kc -P -t grouped -p 0
kc -G smoke-group -X auto.offset.reset=earliest -e -q -f '%p %o %s\n' grouped > "$WORK/g2.out"
printf '0 3 g3\n' > "$WORK/g2.want"
expect_same "-G: the group resumes from its committed offset" "$WORK/g2.want" "$WORK/g2.out"

echo "kcat smoke: all $CHECKS checks passed"
