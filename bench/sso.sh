#!/usr/bin/env bash
# bench/sso.sh [sqlite|postgres] [rounds] [duration] [before-rev]
# The single-sign-on code flow (authorize -> token -> userinfo, 8 browsers
# with a live session), Ponte against oidc-provider, interleaved. With a git
# revision, Ponte as of that revision runs too, as "before".
. "$(dirname "$0")/lib.sh"
backend=${1:-sqlite} rounds=${2:-5} d=${3:-8s} rev=${4:-}
build
start_peer
start_ponte ponte 18400 "$backend"
names=(ponte peer)
if [ -n "$rev" ]; then
	build_rev "$rev"
	BIN=$BENCH_DIR/bin/ponte-$rev start_ponte before 18420 "$backend"
	names=(before ponte peer)
fi
conditions
echo "# sso, $backend, Ponte ID tokens $PONTE_ALG, oidc-provider in memory RS256"
ARGS="-mode sso -c 8" compare ssobench "$rounds" "$d" "${names[@]}"
