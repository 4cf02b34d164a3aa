#!/usr/bin/env bash
# bench/all.sh [rounds] [duration]
# Every figure of BENCHMARKS.md, one after the other, into
# $BENCH_DIR/results.txt (about 15 minutes with the defaults): the SSO code
# flow on SQLite (with Ponte as of $BEFORE, the revision before the work of
# issue 12) and on PostgreSQL, PIN logins, refresh, introspection, discovery,
# JWKS, GOMAXPROCS 1 and 2, and the 2-minute flat run.
here=$(dirname "$0")
rounds=${1:-5} d=${2:-6s}
BEFORE=${BEFORE:-ccbec94}
out=${BENCH_DIR:-/tmp/ponte-bench}/results.txt
mkdir -p "$(dirname "$out")"
: >"$out"
run() {
	echo "## $*" | tee -a "$out"
	bash "$@" 2>&1 | grep -E "^(#|medians|  [a-z0-9]+ |Benchmark|round)" | tee -a "$out"
}
run "$here/sso.sh" sqlite "$rounds" "$d" "$BEFORE"
run "$here/sso.sh" postgres "$rounds" "$d"
PONTE_TEST_POSTGRES_DSN= run "$here/pin.sh" 2000x
for op in refresh introspect; do run "$here/ops.sh" $op sqlite 3 "$d"; done
for op in discovery jwks; do run "$here/ops.sh" $op sqlite 3 5s; done
run "$here/cores.sh" sqlite "$rounds" "$d"
run "$here/flat.sh" sqlite 2
