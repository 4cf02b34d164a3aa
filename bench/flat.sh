#!/usr/bin/env bash
# bench/flat.sh [sqlite|postgres] [minutes]
# Is throughput flat over time? Ponte and oidc-provider take turns of 10 s
# for the given minutes each (2 by default) on one database that keeps every
# code and token issued; one line per turn.
. "$(dirname "$0")/lib.sh"
backend=${1:-sqlite} minutes=${2:-2}
build
start_peer
start_ponte ponte 18400 "$backend"
conditions
echo "# sso, $backend, $minutes minutes each in turns of 10 s"
ARGS="-mode sso -c 8 -warmup 0s" compare ssobench $((minutes * 6)) 10s ponte peer
