# Shared by the bench/*.sh scripts (sourced, not run): build the tools, start
# Ponte and the peer, stop what was started. See BENCHMARKS.md.
#
# Environment:
#   PONTE_PG     PostgreSQL server URL without a database (postgres://postgres@127.0.0.1:5432)
#   BENCH_DIR    working folder (/tmp/ponte-bench): binaries, databases, logs
#   SSOBENCH     ssobench source (../shared/tools/ssobench from the repository)
#   PEER         oidc-provider peer folder (../shared/peers/oidc-provider)
#   PONTE_ALG    ID token algorithm of the bench client (ES256, Ponte's default; RS256 as the peer)
#   PONTE_REPO   the git repository build_rev reads revisions from (this one)

set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/ponte-bench}
PONTE_PG=${PONTE_PG:-postgres://postgres@127.0.0.1:5432}
SSOBENCH=${SSOBENCH:-$root/../shared/tools/ssobench}
PEER=${PEER:-$root/../shared/peers/oidc-provider}
PONTE_ALG=${PONTE_ALG:-ES256}
PEER_PORT=18410
PEER_SECRET=bench-secret-000000000000000000000
CF=RSSMRA80A01H501U
mkdir -p "$BENCH_DIR/bin"
started=()

cleanup() {
	for p in "${started[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# build: ponte, ssobench and opbench into $BENCH_DIR/bin.
build() {
	(cd "$root" && go build -o "$BENCH_DIR/bin/ponte" ./cmd/ponte && go build -o "$BENCH_DIR/bin/opbench" ./bench/opbench &&
		go build -o "$BENCH_DIR/bin/seed" ./bench/seed)
	(cd "$SSOBENCH" && go build -o "$BENCH_DIR/bin/ssobench" .)
}

# build_rev REV: Ponte as of a git revision, into $BENCH_DIR/bin/ponte-REV.
build_rev() {
	local src=$BENCH_DIR/src-$1
	rm -rf "$src" && mkdir -p "$src"
	git -C "${PONTE_REPO:-$root}" archive "$1" | tar -x -C "$src"
	(cd "$src" && go build -o "$BENCH_DIR/bin/ponte-$1" ./cmd/ponte)
}

# start_ponte NAME PORT sqlite|tmpfs|postgres (BIN: another ponte binary): `ponte demo` on a fresh database,
# with the client "bench" (redirect http://127.0.0.1:18499/cb). Sets
# <NAME>_PID, <NAME>_FLAGS (ssobench/opbench flags for it). Extra environment
# (GOMAXPROCS ...) passes through. The demo logs as in production (JSON, info).
start_ponte() {
	local name=$1 port=$2 backend=$3 dir=$BENCH_DIR/$1
	rm -rf "$dir" && mkdir -p "$dir"
	local db=ponte.db
	if [ "$backend" = tmpfs ]; then
		# SQLite in memory-backed files: its fsyncs cost nothing, so the
		# disk's latency is out of the flow (NOT durable: a measurement only).
		db=/dev/shm/ponte-bench-$name/ponte.db
		rm -rf "${db%/*}"
	fi
	if [ "$backend" = postgres ]; then
		local dbname="ponte_bench_$name"
		psql "$PONTE_PG/postgres" -qc "DROP DATABASE IF EXISTS $dbname" -qc "CREATE DATABASE $dbname" >/dev/null
		db="$PONTE_PG/$dbname?sslmode=disable"
	fi
	# PONTE_PIN_FREE_*: the workers' first logins, eight at once for one
	# citizen, would otherwise be throttled as a burst of guesses (only the
	# logins before the measurement are PIN logins).
	local env=(PONTE_DEV=true PONTE_DB="$db" PONTE_ADDR=127.0.0.1:$port PONTE_ISSUER=http://127.0.0.1:$port
		PONTE_CNS_ENABLED=false PONTE_PIN_FREE_ACCOUNT_FAILURES=50 PONTE_PIN_FREE_IP_FAILURES=200)
	local bin=${BIN:-$BENCH_DIR/bin/ponte} cmd=demo
	if [ "$backend" = postgres ]; then
		# ponte demo runs on SQLite only: on PostgreSQL, ponte serve with the
		# citizen seeded by bench/seed.
		cmd=serve
		local p
		p=$(head -c 64 /dev/urandom | tr -dc 'a-km-z2-9' | head -c 8)
		(cd "$dir" && env "${env[@]}" "$bin" migrate >/dev/null 2>&1)
		(cd "$dir" && env "${env[@]}" "$BENCH_DIR/bin/seed" -cf "$CF" -pin "$p")
		echo "  $CF  PIN $p" >"$dir/demo.out"
	fi
	(cd "$dir" && exec env "${env[@]}" "$bin" "$cmd" >>demo.out 2>demo.log) &
	local pid=$!
	started+=("$pid")
	for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/.well-known/openid-configuration" >/dev/null && break; sleep 0.2; done
	local secret pin
	(cd "$dir" && env "${env[@]}" "$bin" client create --id bench --name bench --alg "$PONTE_ALG" \
		--redirect-uri http://127.0.0.1:18499/cb >/dev/null 2>&1)
	secret=$(cd "$dir" && env "${env[@]}" "$bin" client rotate-secret --id bench 2>/dev/null | sed -n 's/.*"client_secret": "\(.*\)".*/\1/p')
	pin=$(sed -n "s/.*$CF  PIN \([a-z0-9]*\).*/\1/p" "$dir/demo.out")
	[ -n "$secret" ] && [ -n "$pin" ] || { echo "start_ponte $name: no client secret or PIN (see $dir)" >&2; exit 1; }
	printf -v "${name}_PID" %s "$pid"
	printf -v "${name}_FLAGS" %s "-name $name -pid $pid -issuer http://127.0.0.1:$port -client bench -secret $secret -redirect http://127.0.0.1:18499/cb -login ponte -cf $CF -pin $pin"
}

# start_peer: oidc-provider (in memory, RS256) on $PEER_PORT. Sets peer_PID, peer_FLAGS.
start_peer() {
	PORT=$PEER_PORT "$PEER/start.sh" >"$BENCH_DIR/peer.log" 2>&1 &
	peer_PID=$! # start.sh execs node
	started+=("$peer_PID")
	for _ in $(seq 300); do curl -fs "http://127.0.0.1:$PEER_PORT/.well-known/openid-configuration" >/dev/null && break; sleep 0.2; done
	peer_FLAGS="-name peer -pid $peer_PID -issuer http://127.0.0.1:$PEER_PORT -client bench -secret $PEER_SECRET -redirect http://127.0.0.1:9/cb -login oidc-provider"
}

# pg_cpu: the CPU time of every postgres process, in clock ticks (1/100 s).
pg_cpu() {
	local t=0 f
	for f in $(pgrep -x postgres); do
		t=$((t + $(awk '{ print $14 + $15 }' "/proc/$f/stat" 2>/dev/null || echo 0)))
	done
	echo "$t"
}

# conditions: what the machine is doing, printed before every figure.
conditions() {
	echo "# $(date -u +%FT%TZ) $(nproc) cores, $(uptime | sed 's/.*load average/load average/'), go $(go env GOVERSION), node $(node --version 2>/dev/null)"
	if pgrep -f gremlins >/dev/null; then echo "# WARNING: a mutation run (gremlins) is using the CPU"; fi
}

# compare TOOL ROUNDS DURATION NAME... : runs TOOL (ssobench or opbench, with
# the arguments in $ARGS) once per NAME per round, the order rotated every
# round so that the machine's drift falls on each alike, then prints every
# run and the medians. NAME_FLAGS names each target (start_ponte, start_peer).
compare() {
	local tool=$1 rounds=$2 d=$3
	shift 3
	local names=("$@") out=$BENCH_DIR/compare.out n=$#
	: >"$out"
	for ((r = 0; r < rounds; r++)); do
		for ((i = 0; i < n; i++)); do
			local name=${names[$(((i + r) % n))]} flags
			flags=${name}_FLAGS
			local pg0 line
			pg0=$(pg_cpu)
			line=$("$BENCH_DIR/bin/$tool" $ARGS -d "$d" ${!flags} | grep -E "^$name ")
			if [ "${backend:-}" = postgres ] && [ "$name" != peer ]; then
				# PostgreSQL's own CPU (every postgres process) per operation.
				line="$line  postgres $(awk -v c=$(($(pg_cpu) - pg0)) -v l="$line" 'BEGIN { match(l, /ok=[0-9]+/); ok=substr(l, RSTART+3, RLENGTH-3); printf "%.3f", c*10/ok }') cpu-ms/op"
			fi
			echo "round $((r + 1))  $line" | tee -a "$out"
			sleep 0.5
		done
	done
	echo "medians over $rounds rounds of $d:"
	awk '{
		name=$3; for (i=1;i<=NF;i++) {
			if ($(i+1) ~ /\/s$/ && $i ~ /^[0-9.]+$/) { r[name]=r[name] " " $i; unit[name]=$(i+1) }
			if ($i ~ /^p50=/) { v=$i; sub(/p50=/,"",v); sub(/ms/,"",v); p50[name]=p50[name] " " v }
			if ($i ~ /^p99=/) { v=$i; sub(/p99=/,"",v); sub(/ms/,"",v); p99[name]=p99[name] " " v }
			if ($i == "ms/op") cpu[name]=cpu[name] " " $(i-1)
			if ($i == "postgres" && $(i+2) == "cpu-ms/op") pg[name]=pg[name] " " $(i+1)
			if ($i ~ /^errors=/) { v=$i; sub(/errors=/,"",v); errs[name]+=v }
		}
		if (!(name in seen)) { seen[name]=1; order[++k]=name }
	}
	function med(s,   a, m, i, j, t) { m=split(s, a, " "); for (i=1;i<=m;i++) for (j=i+1;j<=m;j++) if (a[j]+0 < a[i]+0) { t=a[i]; a[i]=a[j]; a[j]=t }
		if (m == 0) return "-"; if (m % 2) return a[(m+1)/2]; return (a[m/2]+a[m/2+1])/2 }
	END { for (i=1;i<=k;i++) { n=order[i]
		printf "  %-10s %9.1f %s  p50=%sms  p99=%sms  server %s cpu-ms/op", n, med(r[n]), unit[n], med(p50[n]), med(p99[n]), med(cpu[n])
		if (pg[n] != "") printf "  postgres %s cpu-ms/op", med(pg[n])
		printf "  errors=%d\n", errs[n] } }' "$out"
}
