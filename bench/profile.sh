#!/usr/bin/env bash
# bench/profile.sh [sqlite|postgres] [seconds]
# Profiles Ponte under the SSO code flow load of ssobench (8 browsers): a
# build with -tags pprof, a CPU profile and an allocation profile of the
# seconds of load, then the syscalls of the same load (strace -c -f, when
# strace is installed). Output in $BENCH_DIR/profile: cpu.pprof, allocs.pprof
# (go tool pprof -top ...), strace.txt.
. "$(dirname "$0")/lib.sh"
backend=${1:-sqlite} secs=${2:-15}
build
out=$BENCH_DIR/profile
mkdir -p "$out"
(cd "$root" && go build -tags pprof -o "$BENCH_DIR/bin/ponte-pprof" ./cmd/ponte)
PONTE_PPROF_ADDR=127.0.0.1:18490 BIN=$BENCH_DIR/bin/ponte-pprof start_ponte ponte 18400 "$backend"
conditions
# Warm up, then profile while the load runs.
"$BENCH_DIR/bin/ssobench" -mode sso -c 8 -d 3s $ponte_FLAGS >/dev/null
curl -fs "http://127.0.0.1:18490/debug/pprof/allocs" -o "$out/allocs0.pprof"
curl -fs "http://127.0.0.1:18490/debug/pprof/profile?seconds=$secs" -o "$out/cpu.pprof" &
curlpid=$!
"$BENCH_DIR/bin/ssobench" -mode sso -c 8 -d "$((secs + 1))s" $ponte_FLAGS | grep -E '^ponte '
wait "$curlpid"
curl -fs "http://127.0.0.1:18490/debug/pprof/allocs" -o "$out/allocs.pprof"
echo "# go tool pprof -top $out/cpu.pprof; go tool pprof -sample_index=alloc_space -diff_base $out/allocs0.pprof -top $out/allocs.pprof"
if command -v strace >/dev/null; then
	strace -c -f -p "$ponte_PID" -o "$out/strace.txt" &
	stracepid=$!
	sleep 1
	"$BENCH_DIR/bin/ssobench" -mode sso -c 8 -d "${secs}s" $ponte_FLAGS | grep -E '^ponte ' | sed 's/^/(under strace) /'
	kill -INT "$stracepid"
	wait "$stracepid" || true
	head -25 "$out/strace.txt"
fi
