#!/usr/bin/env bash
# bench/ops.sh refresh|introspect|discovery|jwks [sqlite|postgres] [rounds] [duration]
# One operation, Ponte against oidc-provider, interleaved: the refresh grant
# and introspection with opbench (each worker's tokens from a login first),
# discovery and the JWKS with ssobench's plain GETs.
. "$(dirname "$0")/lib.sh"
op=${1:?refresh, introspect, discovery or jwks} backend=${2:-sqlite} rounds=${3:-5} d=${4:-8s}
build
start_peer
start_ponte ponte 18400 "$backend"
conditions
echo "# $op, $backend, Ponte ID tokens $PONTE_ALG, oidc-provider in memory RS256"
case $op in
refresh | introspect) ARGS="-mode $op -c 8" compare opbench "$rounds" "$d" ponte peer ;;
discovery | jwks) ARGS="-mode get -url $op -c 8" compare ssobench "$rounds" "$d" ponte peer ;;
*) echo "unknown operation $op" >&2; exit 2 ;;
esac
