#!/usr/bin/env bash
# bench/all.sh [rounds] [duration]
# Every figure of BENCHMARKS.md, one after the other, into
# $BENCH_DIR/results.txt (about 14 minutes with the defaults): the SSO code
# flow on SQLite (beside Ponte as of $BEFORE, the revision before issue 12's
# group commit) and on PostgreSQL, PIN logins against the hash-only rate,
# refresh, introspection, discovery, JWKS, whole PIN logins on PostgreSQL
# (the sizing's costs), the load generator's own CPU, GOMAXPROCS 1 and 2, and
# the 2-minute flat run.
here=$(dirname "$0")
rounds=${1:-4} d=${2:-5s}
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
PONTE_TEST_POSTGRES_DSN= run "$here/pin.sh" "${PIN_BENCHTIME:-1000x}"
for op in refresh introspect; do run "$here/ops.sh" $op sqlite 3 "$d"; done
for op in discovery jwks; do run "$here/ops.sh" $op sqlite 3 5s; done
run "$here/logins.sh" postgres 3 "$d"
run "$here/client.sh" sqlite "$d"
run "$here/cores.sh" sqlite "$rounds" "$d"
run "$here/flat.sh" sqlite "${FLAT_MINUTES:-2}"
