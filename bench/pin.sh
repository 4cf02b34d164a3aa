#!/usr/bin/env bash
# bench/pin.sh [benchtime]
# PIN logins (authorize, chooser, PIN form, argon2id check with the
# production parameters, resume, code; fresh browsers, 64 citizens) against
# the rate at which the same cores hash and do nothing else, measured in the
# same run: BenchmarkPINLogin on SQLite (and PostgreSQL when
# PONTE_TEST_POSTGRES_DSN is set). The figure is %hash-only.
. "$(dirname "$0")/lib.sh"
conditions
echo "# PIN logins against hash-only, benchtime ${1:-2000x}"
cd "$root" && go test -run '^$' -bench '^BenchmarkPINLogin$' -benchtime "${1:-2000x}" ./adapters/pin | grep -E '^Benchmark'
