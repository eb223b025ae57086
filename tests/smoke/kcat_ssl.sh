#!/usr/bin/env bash
# kcat over TLS against a real rafka: an SSL listener with mTLS (ssl.client.auth=required), its
# key an encrypted PKCS#8 PEM (ssl.key.password), certificates made here with the openssl CLI
# (valid for two days: nothing is checked in). Produce and consume through the SSL listener,
# checked with diff; a client without a certificate and a plaintext client are refused. Then
# SASL over the same TLS (a SASL_SSL listener): SCRAM-SHA-512 (the user created with
# kafka-python's AlterUserScramCredentials over the PLAINTEXT listener, as kcat cannot), PLAIN
# and unsecured OAUTHBEARER, a wrong password refused.
#
# usage: tests/smoke/kcat_ssl.sh [path/to/rafka]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=common.bash
source "$ROOT/tests/smoke/common.bash"

BIN=${1:-}
if [[ -z "$BIN" ]]; then
  if [[ -x "$ROOT/target/release/rafka" ]]; then BIN=$ROOT/target/release/rafka; else BIN=$ROOT/target/debug/rafka; fi
fi
command -v kcat >/dev/null || fail "kcat is not installed"
command -v openssl >/dev/null || fail "openssl is not installed"
python3 -c 'import kafka' 2>/dev/null || fail "kafka-python is not installed (pip install kafka-python)"

# --- certificates: a CA, the broker (localhost, 127.0.0.1), a client ------------------------
C=$WORK/certs
mkdir -p "$C"
ossl() { openssl "$@" 2>>"$C/openssl.log" || fail "openssl $1 failed: $(tail -n 5 "$C/openssl.log")"; }
ossl req -x509 -newkey rsa:2048 -nodes -keyout "$C/ca.key" -out "$C/ca.pem" -days 2 -subj "/O=rafka smoke/CN=smoke CA"
leaf() { # leaf NAME CN [SAN]
  ossl req -newkey rsa:2048 -nodes -keyout "$C/$1.key" -out "$C/$1.csr" -subj "/O=rafka smoke/CN=$2"
  # v3 extensions (a certificate without any would be X.509 v1, which WebPKI refuses).
  printf 'basicConstraints=CA:FALSE\n' > "$C/$1.ext"
  if [[ -n "${3:-}" ]]; then printf 'subjectAltName=%s\n' "$3" >> "$C/$1.ext"; fi
  ossl x509 -req -in "$C/$1.csr" -CA "$C/ca.pem" -CAkey "$C/ca.key" -CAcreateserial \
    -out "$C/$1.pem" -days 2 -extfile "$C/$1.ext"
}
leaf server localhost "DNS:localhost,IP:127.0.0.1"
leaf client smoke-client
# The broker's keystore: its key as encrypted PKCS#8 (PBES2, AES-256-CBC), then its certificate.
ossl pkcs8 -topk8 -v2 aes-256-cbc -in "$C/server.key" -out "$C/server.enc.key" -passout pass:smoke-secret
cat "$C/server.enc.key" "$C/server.pem" > "$C/server-keystore.pem"

SPORT=$(free_port)
SSPORT=$(free_port)
rafka_extra_props() {
  cat <<EOP
listeners=PLAINTEXT://127.0.0.1:$PORT,SSL://127.0.0.1:$SPORT,SASL_SSL://127.0.0.1:$SSPORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT,SSL://127.0.0.1:$SPORT,SASL_SSL://127.0.0.1:$SSPORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$C/server-keystore.pem
listener.name.sasl_ssl.ssl.key.password=smoke-secret
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN,OAUTHBEARER
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_kc-plain="plain-secret";
inter.broker.listener.name=PLAINTEXT
listener.name.ssl.ssl.keystore.type=PEM
listener.name.ssl.ssl.keystore.location=$C/server-keystore.pem
listener.name.ssl.ssl.key.password=smoke-secret
listener.name.ssl.ssl.truststore.type=PEM
listener.name.ssl.ssl.truststore.location=$C/ca.pem
listener.name.ssl.ssl.client.auth=required
EOP
}
rafka_start "$BIN"

ks() {
  timeout 60 kcat -b "127.0.0.1:$SPORT" -X broker.address.family=v4 -X security.protocol=SSL \
    -X ssl.ca.location="$C/ca.pem" "$@"
}
mtls() { ks -X ssl.certificate.location="$C/client.pem" -X ssl.key.location="$C/client.key" "$@"; }

mtls -L > "$WORK/L.txt" || fail "kcat -L over mTLS: $(cat "$WORK/L.txt")"
grep -q "broker 1 at 127.0.0.1:$SPORT" "$WORK/L.txt" || fail "kcat -L over SSL: $(cat "$WORK/L.txt")"
check "kcat -L over mTLS lists broker 1 at its SSL address"

for i in $(seq 1 2000); do echo "tls line $i: $(printf '%0*d' $((i % 200)) 0)"; done > "$WORK/tls.in"
mtls -P -t tls-smoke -p 0 -X linger.ms=20 < "$WORK/tls.in"
mtls -C -t tls-smoke -p 0 -o beginning -e -q -X check.crcs=true -f '%s\n' > "$WORK/tls.out"
expect_same "2000 messages produced and consumed over mTLS" "$WORK/tls.in" "$WORK/tls.out"

if ks -L -m 5 > "$WORK/nocert.txt" 2>&1; then
  fail "a client without a certificate was served: $(cat "$WORK/nocert.txt")"
fi
check "a client without a certificate is refused (ssl.client.auth=required)"

if timeout 10 kcat -b "127.0.0.1:$SPORT" -X broker.address.family=v4 -L -m 5 > "$WORK/plain.txt" 2>&1; then
  fail "a plaintext client was served on the SSL listener: $(cat "$WORK/plain.txt")"
fi
check "a plaintext client on the SSL listener is refused"

# --- SASL_SSL ----------------------------------------------------------------------------
timeout 60 python3 - "$BROKER" > "$WORK/scram-user.out" <<'PY' || fail "AlterUserScramCredentials: $(cat "$WORK/scram-user.out")"
import sys
from kafka import KafkaAdminClient
from kafka.admin import UserScramCredentialUpsertion
admin = KafkaAdminClient(bootstrap_servers=sys.argv[1])
admin.alter_user_scram_credentials(
    [UserScramCredentialUpsertion("kc-scram", "SCRAM-SHA-512", "scram-secret", iterations=4096)])
admin.close()
PY
sasl() { # sasl MECHANISM [kcat args...]
  local m=$1; shift
  timeout 60 kcat -b "127.0.0.1:$SSPORT" -X broker.address.family=v4 -X security.protocol=SASL_SSL \
    -X ssl.ca.location="$C/ca.pem" -X sasl.mechanisms="$m" "$@"
}
scram() { sasl SCRAM-SHA-512 -X sasl.username=kc-scram -X sasl.password=scram-secret "$@"; }

# A new user reaches the listener within a metadata round: retry -L briefly.
for _ in $(seq 1 50); do
  scram -L -m 5 > "$WORK/scram-L.txt" 2>&1 && break
  sleep 0.2
done
grep -q "broker 1 at 127.0.0.1:$SSPORT" "$WORK/scram-L.txt" || fail "kcat -L over SASL_SSL SCRAM-SHA-512: $(cat "$WORK/scram-L.txt")"
check "kcat -L over SASL_SSL with SCRAM-SHA-512 lists broker 1 at its SASL_SSL address"

for i in $(seq 1 500); do echo "scram line $i"; done > "$WORK/scram.in"
scram -P -t sasl-ssl-smoke -p 0 -X linger.ms=20 < "$WORK/scram.in"
scram -C -t sasl-ssl-smoke -p 0 -o beginning -e -q -f '%s\n' > "$WORK/scram.out"
expect_same "500 messages produced and consumed over SASL_SSL with SCRAM-SHA-512" "$WORK/scram.in" "$WORK/scram.out"

sasl PLAIN -X sasl.username=kc-plain -X sasl.password=plain-secret \
  -C -t sasl-ssl-smoke -p 0 -o beginning -e -q -f '%s\n' > "$WORK/plain.out"
expect_same "the same messages consumed over SASL_SSL with PLAIN" "$WORK/scram.in" "$WORK/plain.out"

sasl OAUTHBEARER -X enable.sasl.oauthbearer.unsecure.jwt=true -X sasl.oauthbearer.config=principal=kc-bearer \
  -C -t sasl-ssl-smoke -p 0 -o beginning -e -q -f '%s\n' > "$WORK/bearer.out"
expect_same "the same messages consumed over SASL_SSL with an unsecured OAUTHBEARER token" "$WORK/scram.in" "$WORK/bearer.out"
sed 's/\x1b\[[0-9;]*m//g' "$WORK/rafka.log" | grep -q "principal=User:kc-bearer" \
  || fail "no OAUTHBEARER principal User:kc-bearer in the broker's log"
check "the OAUTHBEARER connection's principal is User:kc-bearer"

if sasl SCRAM-SHA-512 -X sasl.username=kc-scram -X sasl.password=wrong -L -m 5 > "$WORK/wrong.txt" 2>&1; then
  fail "a wrong SCRAM password was served: $(cat "$WORK/wrong.txt")"
fi
check "a wrong SCRAM-SHA-512 password is refused"

echo "kcat SSL smoke: all $CHECKS checks passed"
