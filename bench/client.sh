#!/usr/bin/env bash
# bench/client.sh [sqlite|postgres] [duration]
# The load generator's own CPU per SSO flow (ssobench, user + system, from
# /proc), against Ponte and against oidc-provider: on a 2-core machine the
# server gets what the client leaves, so flows/s <= 2 cores / (server CPU +
# client CPU per flow).
. "$(dirname "$0")/lib.sh"
backend=${1:-sqlite} d=${2:-6s}
build
start_peer
start_ponte ponte 18400 "$backend"
conditions
for name in ponte peer; do
	flags=${name}_FLAGS
	"$BENCH_DIR/bin/ssobench" -mode sso -c 8 -d "$d" ${!flags} >"$BENCH_DIR/client.out" &
	pid=$!
	t=0
	while kill -0 "$pid" 2>/dev/null; do
		t=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo "$t")
		sleep 0.2
	done
	wait "$pid"
	line=$(grep -E "^$name " "$BENCH_DIR/client.out")
	echo "$line" | awk -v c="$t" -v n="$name" '{ match($0, /ok=[0-9]+/); ok=substr($0, RSTART+3, RLENGTH-3); printf "  %-10s %s flows, load generator %.3f cpu-ms/flow, %s\n", n, ok, c*10/ok, $0 }'
done
