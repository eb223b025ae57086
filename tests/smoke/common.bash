# Shared by the smoke scripts (sourced, not run): start one rafka node on free 127.0.0.1 ports
# in a temp dir, stop it at exit, report checks.
#
#   rafka_start BIN [PREFIX...]   PREFIX: a command the broker runs under (e.g. strace ...)
#   check NAME                   print "ok NAME"; pair with `expect_same` / `fail`
#
# Sets WORK (temp dir), PORT, CPORT, BROKER (127.0.0.1:PORT), RAFKA_PID. With RAFKA_SASL=1 set
# before rafka_start, the node also has a SASL_PLAINTEXT listener (PLAIN, SCRAM-SHA-256/512;
# PLAIN user admin/admin-secret) at SASL_BROKER (127.0.0.1:SPORT).

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rafka-smoke.XXXXXX")
RAFKA_PID=
CHECKS=0

# A port nobody listens on now (bash's /dev/tcp; the broker's bind is the final word, and a
# lost race shows as a failed start, which rafka_start retries on fresh ports). Below Linux's
# ephemeral range (32768 and up by default), where outgoing connections take their ports.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
}

stop_rafka() {
  if [[ -n "$RAFKA_PID" ]] && kill -0 "$RAFKA_PID" 2>/dev/null; then
    kill -TERM "$(rafka_real_pid)" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$RAFKA_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$RAFKA_PID" 2>/dev/null || true
    wait "$RAFKA_PID" 2>/dev/null || true
  fi
  RAFKA_PID=
}

on_exit() {
  local rc=$?
  stop_rafka
  if [[ $rc -ne 0 ]]; then
    echo "FAILED (exit $rc) after $CHECKS checks; broker log tail:" >&2
    tail -n 30 "$WORK/rafka.log" 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' >&2 || true
    echo "work dir kept: $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit $rc
}
trap on_exit EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

check() {
  CHECKS=$((CHECKS + 1))
  echo "ok $CHECKS - $*"
}

# expect_same NAME EXPECTED_FILE ACTUAL_FILE
expect_same() {
  if ! diff -u "$2" "$3" > "$WORK/diff.txt"; then
    head -n 40 "$WORK/diff.txt" >&2
    fail "$1: content differs (expected $2, got $3)"
  fi
  check "$1"
}

# expect_output NAME EXPECTED_TEXT COMMAND...: COMMAND's standard output is EXPECTED_TEXT
# (printf-style escapes, e.g. \n).
expect_output() {
  local name=$1 want=$2
  shift 2
  "$@" > "$WORK/out.txt"
  printf "$want\n" > "$WORK/want.txt"
  expect_same "$name" "$WORK/want.txt" "$WORK/out.txt"
}

# The server properties of a one-node broker for the transaction smoke tests (pass them on
# from the script's rafka_extra_props).
rafka_txn_props() {
  echo "transaction.state.log.replication.factor=1"
  echo "transaction.state.log.min.isr=1"
  echo "transaction.state.log.num.partitions=5"
  echo "offsets.topic.replication.factor=1"
  echo "group.initial.rebalance.delay.ms=0"
}

# rafka_start BIN [PREFIX...]
rafka_start() {
  local bin=$1
  shift
  [[ -x "$bin" ]] || fail "no rafka binary at $bin (build it first, or pass its path)"
  bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin") # it starts in $WORK
  PORT=$(free_port)
  CPORT=$(free_port)
  [[ "$PORT" != "$CPORT" ]] || CPORT=$(free_port)
  BROKER="127.0.0.1:$PORT"
  HPORT=$(free_port)
  local sasl_listener="" sasl_advertised="" sasl_map=""
  if [[ "${RAFKA_SASL:-}" == 1 ]]; then
    SPORT=$(free_port)
    SASL_BROKER="127.0.0.1:$SPORT"
    sasl_listener=",SASL_PLAINTEXT://127.0.0.1:$SPORT"
    sasl_advertised=",SASL_PLAINTEXT://127.0.0.1:$SPORT"
    sasl_map=",SASL_PLAINTEXT:SASL_PLAINTEXT"
  fi
  cat > "$WORK/server.properties" <<EOF
node.id=1
process.roles=broker,controller
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT$sasl_listener
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT$sasl_advertised
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT$sasl_map
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret";
controller.listener.names=CONTROLLER
http.listeners=http://127.0.0.1:$HPORT
controller.quorum.voters=1@127.0.0.1:$CPORT
log.dirs=$WORK/data
num.partitions=1
# For groups on one node: one replica of __consumer_offsets (Kafka's single-node example), and
# no 3 s wait before a group's first rebalance (Kafka's ZooKeeper-era example config).
offsets.topic.replication.factor=1
group.initial.rebalance.delay.ms=0
EOF
  # A script may add (or override: the last value wins) properties by defining
  # rafka_extra_props, which sees PORT and CPORT.
  if declare -F rafka_extra_props >/dev/null; then
    rafka_extra_props >> "$WORK/server.properties"
  fi
  (cd "$WORK" && exec "$@" "$bin" "$WORK/server.properties" >"$WORK/rafka.log" 2>&1) &
  RAFKA_PID=$!
  local i
  for i in $(seq 1 300); do
    if ! kill -0 "$RAFKA_PID" 2>/dev/null; then
      # A port taken between free_port and the bind: start again on fresh ports (3 times).
      if grep -q "Address already in use" "$WORK/rafka.log" && (( ${RAFKA_START_TRIES:-0} < 3 )); then
        RAFKA_START_TRIES=$(( ${RAFKA_START_TRIES:-0} + 1 ))
        echo "rafka: a port was taken ($(tail -1 "$WORK/rafka.log")); again on fresh ports"
        rm -rf "$WORK/data"
        rafka_start "$bin" "$@"
        return
      fi
      fail "rafka exited during startup"
    fi
    if timeout 5 kcat -b "$BROKER" -L -m 2 2>/dev/null | grep -q "broker 1 at 127.0.0.1:$PORT"; then
      echo "rafka ($bin) serving on $BROKER, data in $WORK/data"
      return
    fi
    sleep 0.1
  done
  fail "rafka did not answer Metadata within 30 s"
}

# The pid of the rafka process itself: $RAFKA_PID, or its child when it runs under a PREFIX
# such as strace.
rafka_real_pid() {
  local pid=$RAFKA_PID kid
  while [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" != rafka ]]; do
    kid=$(cat /proc/"$pid"/task/*/children 2>/dev/null | tr ' ' '\n' | grep -m1 . || true)
    [[ -n "$kid" ]] || break
    pid=$kid
  done
  echo "$pid"
}
