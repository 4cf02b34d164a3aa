#!/usr/bin/env bash
# Load and failure tests of Ponte (make loadtest; never in CI). Everything on
# 127.0.0.1, with a PRIVATE PostgreSQL cluster and a PRIVATE redis-server (the
# machine's shared ones on 5432/6379 are never touched), two `ponte serve`
# nodes behind `loadtest lb` (also the CNS card host, as nginx in
# deploy/cluster), SPID's test identity provider as its own process
# (`loadtest idp`), and `loadtest run` offering logins at a fixed rate, the
# METHODS taken in turn by the arrivals (mixed, as on a real click day).
# Scenarios (SCENARIOS to pick): clickday, kill-node, restart-pg, stop-redis.
# Each prints one JSON line (per method: held logins/s, errors by kind,
# p50/p99, exchanges recovered by a retry, mix-ups) into $OUT
# (loadtest/results.jsonl).
#
#   RATE=1000 DURATION=20s CITIZENS=500 METHODS=pin,spid,cns bash loadtest/run.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
RATE=${RATE:-1000}
DURATION=${DURATION:-20s}
CITIZENS=${CITIZENS:-500}
METHODS=${METHODS:-pin,spid,cns}
FAULT_AT=${FAULT_AT:-8}
SCENARIOS=${SCENARIOS:-clickday kill-node restart-pg stop-redis}
WORK=${WORK:-/tmp/ponte-loadtest}
OUT=${OUT:-$root/loadtest/results.jsonl}
PG_PORT=${PG_PORT:-55432}
REDIS_PORT=${REDIS_PORT:-56379}
# PORT_BASE: the balancer listens on it, the nodes on the next two ports,
# the card host (TLS) on the third, the test identity provider on the fourth.
PORT_BASE=${PORT_BASE:-18600}
CARD_PORT=${CARD_PORT:-$((PORT_BASE + 3))}
IDP_PORT=${IDP_PORT:-$((PORT_BASE + 4))}
LB=127.0.0.1:$PORT_BASE
NODES=(127.0.0.1:$((PORT_BASE + 1)) 127.0.0.1:$((PORT_BASE + 2)))
IDP=127.0.0.1:$IDP_PORT
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
pids=()

cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	[ -f "$WORK/pg/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -m immediate stop >/dev/null 2>&1 || true
	wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# as_pg runs a PostgreSQL tool as the postgres user when we are root (initdb refuses root).
as_pg() { if [ "$(id -u)" = 0 ]; then setpriv --reuid=postgres --regid=postgres --clear-groups -- "$@"; else "$@"; fi; }

rm -rf "$WORK" && mkdir -p "$WORK/bin"
(cd "$root" && go build -o "$WORK/bin/ponte" ./cmd/ponte && go build -o "$WORK/bin/loadtest" ./loadtest)
# PONTE_BIN: the nodes run another ponte binary (an earlier revision, to
# compare), with this revision's load tool.
[ -n "${PONTE_BIN:-}" ] && cp "$PONTE_BIN" "$WORK/bin/ponte"

echo "== private PostgreSQL on $PG_PORT"
mkdir -p "$WORK/pg" && [ "$(id -u)" = 0 ] && chown postgres:postgres "$WORK/pg" "$WORK"
as_pg "$PGBIN/initdb" -D "$WORK/pg" -U postgres --auth=trust -E UTF8 >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -w \
	-o "-p $PG_PORT -k $WORK -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on -c shared_buffers=128MB" start >/dev/null
psql "postgres://postgres@127.0.0.1:$PG_PORT/postgres" -qc "CREATE DATABASE ponte" >/dev/null

echo "== private redis-server on $REDIS_PORT"
start_redis() {
	redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --loglevel warning >"$WORK/redis.log" 2>&1 &
	REDIS_PID=$!
	pids+=("$REDIS_PID")
}
start_redis

export PONTE_DB="postgres://postgres@127.0.0.1:$PG_PORT/ponte?sslmode=disable"
export PONTE_MASTER_KEY=$(head -c 32 /dev/urandom | base64)
export PONTE_ISSUER="http://$LB"
export PONTE_TRUSTED_PROXIES=127.0.0.1
export PONTE_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export PONTE_LOG_LEVEL=warn
# Every login comes from 127.0.0.1: the per-IP limits would be one citizen's.
export PONTE_MAX_CHALLENGES_PER_IP=1000000 PONTE_PIN_FREE_IP_FAILURES=1000000 PONTE_PIN_LIMIT_PER_IP=1000000 PONTE_PIN_LIMIT_PER_CITIZEN=1000000
# SPID: the SP certificate and the test identity provider's metadata, the same on both nodes.
"$WORK/bin/loadtest" pki -dir "$WORK/pki" -issuer "http://$LB"
export PONTE_SPID_ENABLED=true PONTE_SPID_CERT_FILE=$WORK/pki/sp.pem PONTE_SPID_KEY_FILE=$WORK/pki/sp.key \
	PONTE_SPID_IDP_METADATA_FILES=$WORK/idp-metadata.xml
# CNS behind the card host, as deploy/cluster: the balancer terminates TLS,
# asks for the card and forwards it in X-SSL-Client-Cert from 127.0.0.1; the
# nodes check it again (chain, policy, the CA's CRL file).
export PONTE_CNS_ENABLED=true PONTE_CNS_CARD_URL=https://127.0.0.1:$CARD_PORT PONTE_CNS_CA_FILE=$WORK/pki/cns-ca.pem \
	PONTE_CNS_CRL_DIR=$WORK/pki/crl PONTE_CNS_OCSP=false PONTE_CNS_CRL_FETCH=false \
	PONTE_CLIENT_CERT_PROXIES=127.0.0.1 PONTE_CLIENT_CERT_HEADER=nginx
"$WORK/bin/ponte" migrate >/dev/null
client=$("$WORK/bin/ponte" client create --name load --redirect-uri http://127.0.0.1:9/cb --scopes "openid profile fiscal_number")
CLIENT_ID=$(sed -n 's/.*"client_id": *"\([^"]*\)".*/\1/p' <<<"$client")
CLIENT_SECRET=$(sed -n 's/.*"client_secret": *"\([^"]*\)".*/\1/p' <<<"$client")
echo "== seeding $CITIZENS citizens (argon2id as in production)"
"$WORK/bin/loadtest" seed -n "$CITIZENS"

# The identity provider writes its metadata (the nodes read it at start),
# then waits for the nodes' SP metadata.
echo "== SPID test identity provider on $IDP"
"$WORK/bin/loadtest" idp -listen "$IDP" -citizens "$CITIZENS" -metadata-out "$WORK/idp-metadata.xml" \
	-sp-metadata "http://$LB/login/spid/metadata" -ready "$WORK/idp.ready" 2>>"$WORK/idp.log" &
pids+=($!)
for _ in $(seq 50); do [ -s "$WORK/idp-metadata.xml" ] && break; sleep 0.1; done

declare -A NODE_PID
start_node() { # index
	PONTE_ADDR=${NODES[$1]} "$WORK/bin/ponte" serve >>"$WORK/node$1.log" 2>&1 &
	NODE_PID[$1]=$!
	pids+=("${NODE_PID[$1]}")
	for _ in $(seq 100); do
		PONTE_ADDR=${NODES[$1]} "$WORK/bin/ponte" healthcheck >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "node $1 did not start"; tail "$WORK/node$1.log"; exit 1
}
start_node 0
start_node 1
"$WORK/bin/loadtest" lb -listen "$LB" -backends "$(IFS=,; echo "${NODES[*]}")" \
	-card-listen "127.0.0.1:$CARD_PORT" -card-cert "$WORK/pki/card-host.pem" -card-key "$WORK/pki/card-host.key" &
pids+=($!)
for _ in $(seq 100); do [ -f "$WORK/idp.ready" ] && break; sleep 0.1; done
[ -f "$WORK/idp.ready" ] || { echo "the test identity provider did not get the SP metadata"; cat "$WORK/idp.log"; exit 1; }

run() { # label
	"$WORK/bin/loadtest" run -issuer "http://$LB" -client "$CLIENT_ID" -secret "$CLIENT_SECRET" \
		-rate "$RATE" -d "$DURATION" -citizens "$CITIZENS" -methods "$METHODS" -pki "$WORK/pki" -idp "http://$IDP" \
		-strangers "${STRANGERS:-0}" -label "$1" | tee -a "$OUT"
}

for s in $SCENARIOS; do
	echo "== $s: $RATE logins/s offered for $DURATION ($METHODS in turn)"
	case $s in
	clickday) run clickday ;;
	kill-node)
		(sleep "$FAULT_AT"; kill -9 "${NODE_PID[1]}"; echo "-- kill -9 node 1 at ${FAULT_AT}s") &
		run kill-node
		wait "${NODE_PID[1]}" 2>/dev/null || true
		start_node 1 ;;
	restart-pg)
		(sleep "$FAULT_AT"; as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -m fast -w restart -o "-p $PG_PORT -k $WORK -c listen_addresses=127.0.0.1 -c max_connections=200" >/dev/null; echo "-- PostgreSQL restarted at ${FAULT_AT}s") &
		run restart-pg ;;
	stop-redis)
		(sleep "$FAULT_AT"; kill -9 "$REDIS_PID"; echo "-- redis-server killed at ${FAULT_AT}s") &
		run stop-redis
		grep -h "Redis unavailable" "$WORK"/node*.log | head -2 || true
		start_redis ;;
	*) echo "unknown scenario $s"; exit 2 ;;
	esac
	wait_jobs=$(jobs -p | wc -l) || true
	grep -h '"level":"ERROR"' "$WORK"/node*.log | tail -3 || true
done
