#!/usr/bin/env bash
# How many connections a broker opens to the controller for the requests it forwards.
#
#   bash benches/inter_node_connections.sh path/to/rafka N
#
# Starts a controller-only node and a broker-only node on loopback (free ports, a temporary
# directory, both killed on exit), makes N topic creations and N deletions through the broker
# with `rafka topics` (each forwarded to the controller), and prints the kernel's sockets whose
# remote end is the controller listener (/proc/net/tcp: ESTABLISHED, and TIME_WAIT — each
# connection the broker closed stays there for 60 s) before and after. Run it against two builds
# to compare them; the time printed is dominated by starting the tool 2N times.
set -u
BIN=$1; N=$2
D=$(mktemp -d /tmp/rafka-inter-node.XXXX)
pick() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
CP=$(pick); BP=$(pick); H1=$(pick); H2=$(pick)
cat > $D/c.properties <<P
node.id=1
process.roles=controller
listeners=CONTROLLER://127.0.0.1:$CP
listener.security.protocol.map=CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.voters=1@127.0.0.1:$CP
http.listeners=http://127.0.0.1:$H1
log.dirs=$D/c
P
cat > $D/b.properties <<P
node.id=2
process.roles=broker
listeners=PLAINTEXT://127.0.0.1:$BP
advertised.listeners=PLAINTEXT://127.0.0.1:$BP
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.voters=1@127.0.0.1:$CP
http.listeners=http://127.0.0.1:$H2
log.dirs=$D/b
P
(cd $D && exec $BIN $D/c.properties > c.log 2>&1) & C=$!
(cd $D && exec $BIN $D/b.properties > b.log 2>&1) & B=$!
trap 'kill $C $B 2>/dev/null; wait 2>/dev/null; rm -rf $D' EXIT
count() { python3 - $CP <<'PY'
import sys
port=int(sys.argv[1]); e=t=0
for l in open('/proc/net/tcp').read().splitlines()[1:]:
    f=l.split()
    if int(f[2].split(':')[1],16)!=port: continue
    if f[3]=='01': e+=1
    elif f[3]=='06': t+=1
print(f"established={e} time_wait={t}")
PY
}
for i in $(seq 1 100); do timeout 5 $BIN topics list -b 127.0.0.1:$BP >/dev/null 2>&1 && break; sleep 0.2; done
sleep 1
echo "before: $(count)"
start=$(date +%s.%N)
for i in $(seq 1 $N); do timeout 10 $BIN topics create -b 127.0.0.1:$BP -t m$i --partitions 1 --replication-factor 1 >/dev/null || echo "create m$i failed"; done
for i in $(seq 1 $N); do timeout 10 $BIN topics delete -b 127.0.0.1:$BP -t m$i >/dev/null || echo "delete m$i failed"; done
end=$(date +%s.%N)
echo "after $((2*N)) forwarded requests: $(count)  ($(python3 -c "print(round($end-$start,2))") s)"
