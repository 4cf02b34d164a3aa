#!/usr/bin/env bash
# bench/ceiling.sh [rounds] [duration]
# How far the disk holds Ponte back: the SSO code flow of ssobench (as
# bench/sso.sh) against Ponte on SQLite on disk, the same Ponte with its SQLite
# files on tmpfs (/dev/shm: every fsync free, so NOT durable; a ceiling, never a
# configuration), and oidc-provider in memory, interleaved in one run.
. "$(dirname "$0")/lib.sh"
rounds=${1:-5} d=${2:-5s}
build
start_peer
start_ponte ponte 18400 sqlite
start_ponte tmpfs 18430 tmpfs
conditions
echo "# sso ceiling: Ponte on disk, Ponte on tmpfs (no fsync cost), oidc-provider in memory"
backend=sqlite ARGS="-mode sso -c 8" compare ssobench "$rounds" "$d" ponte tmpfs peer
