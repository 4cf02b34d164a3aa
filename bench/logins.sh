#!/usr/bin/env bash
# bench/logins.sh [sqlite|postgres] [rounds] [duration] [browsers]
# Whole PIN logins (ssobench -mode login: a fresh browser each time,
# authorize, chooser, PIN form with the argon2id check, code, token,
# userinfo), Ponte alone: its CPU per login and, on PostgreSQL, the
# database's. The per-login costs of the sizing in BENCHMARKS.md.
. "$(dirname "$0")/lib.sh"
backend=${1:-postgres} rounds=${2:-3} d=${3:-6s} c=${4:-4}
build
start_ponte ponte 18400 "$backend"
conditions
echo "# PIN logins, $backend, $c browsers"
ARGS="-mode login -c $c" compare ssobench "$rounds" "$d" ponte
