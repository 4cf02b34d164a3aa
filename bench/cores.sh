#!/usr/bin/env bash
# bench/cores.sh [sqlite|postgres] [rounds] [duration]
# How Ponte's SSO code flow scales from one core to two: the same build with
# GOMAXPROCS=1 and GOMAXPROCS=2, interleaved (the load generator and, on
# PostgreSQL, the database share the same two cores).
. "$(dirname "$0")/lib.sh"
backend=${1:-sqlite} rounds=${2:-5} d=${3:-8s}
build
GOMAXPROCS=1 start_ponte ponte1 18400 "$backend"
GOMAXPROCS=2 start_ponte ponte2 18410 "$backend"
conditions
echo "# sso, $backend, GOMAXPROCS 1 and 2"
ARGS="-mode sso -c 8" compare ssobench "$rounds" "$d" ponte1 ponte2
