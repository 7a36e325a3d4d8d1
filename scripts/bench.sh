#!/usr/bin/env bash
# make bench: the Go benchmarks of the live path, then a short gym-floor run of
# cmd/loadgen against the bare relay and against repcue (same machine, same
# workload), a CPU profile of `repcue serve` under it, and an authenticated GET
# of the exercise library under vegeta (full speed, then half that rate). Writes docs/benchmarks.md
# (the generated part; the hand-measured figures stay in docs/benchmarks-notes.md).
#
# Then, when NATS answers on BENCH_NATS_URL, the same gym floor on two nodes of a
# cluster (athletes' sockets on one, coaches' on the other) and the takeover of a
# set whose owner node is killed with SIGKILL (`loadgen takeover`).
#
# Settings: BENCH_SETS (default 1000), BENCH_DURATION (default 60s),
# BENCH_DB (default repcue_bench, created on the PostgreSQL `repcue devdb` finds),
# BENCH_HTTP_DURATION (default 15s, each of the two GET runs),
# BENCH_NATS_URL (default nats://127.0.0.1:4222; empty: no two-node steps),
# BENCH_TAKEOVER_RUNS (default 5, about 7 s each; 0: none).
# Loopback only; everything it starts it stops.
set -euo pipefail
cd "$(dirname "$0")/.."
SETS=${BENCH_SETS:-1000}
DURATION=${BENCH_DURATION:-60s}
DB=${BENCH_DB:-repcue_bench}
OUT=docs/benchmarks.md
WORK=$(mktemp -d)
trap 'kill $SERVER $NODES 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
SERVER=
NODES=
NATS_URL=${BENCH_NATS_URL-nats://127.0.0.1:4222}
TAKEOVER_RUNS=${BENCH_TAKEOVER_RUNS:-5}

go build -o "$WORK/repcue" ./cmd/repcue
go build -o "$WORK/loadgen" ./cmd/loadgen

echo "== Go benchmarks" >&2
go test -run='^$' -bench='Fanout|DecodeRepPhase|JoinedWrite' -benchmem -count=1 ./internal/live/ ./internal/strictjson/ | tee "$WORK/gobench.txt" >&2

base=$("$WORK/repcue" devdb)
admin=${base%/*}/postgres?sslmode=disable
psql "$admin" -qtAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 || psql "$admin" -qc "CREATE DATABASE $DB"
export DATABASE_URL=${base%/*}/$DB?sslmode=disable
openssl genpkey -algorithm ed25519 -out "$WORK/jwt.pem" 2>/dev/null
export REPCUE_JWT_KEY_FILE=$WORK/jwt.pem REPCUE_ADDR=127.0.0.1:18181 REPCUE_PPROF_ADDR=127.0.0.1:16161 REPCUE_ACCESS_TTL=1h REPCUE_LOG_LEVEL=warn
"$WORK/repcue" migrate >/dev/null

echo "== relay, $SETS sets for $DURATION" >&2
"$WORK/loadgen" -relay -relay-addr 127.0.0.1:18182 -sets "$SETS" -duration "$DURATION" -json > "$WORK/relay.json"

echo "== repcue, $SETS sets for $DURATION" >&2
"$WORK/repcue" serve > "$WORK/serve.log" 2>&1 &
SERVER=$!
sleep 1
half=$(( $(echo "$DURATION" | sed 's/s$//;s/m$/*60/' | bc) / 2 ))
( sleep $(( half / 2 + 10 )); curl -s -o "$WORK/cpu.pprof" "http://127.0.0.1:16161/debug/pprof/profile?seconds=$half" ) &
"$WORK/loadgen" -addr 127.0.0.1:18181 -repcue "$WORK/repcue" -sets "$SETS" -duration "$DURATION" -json > "$WORK/repcue.json"
wait %2 2>/dev/null || true

# GET /v1/exercises/hip-thrust, authenticated, under vegeta (a Go load tool, run
# with `go run`): as fast as 50 workers go, then at half the rate reached (the
# p99 the speed issue asks for). BENCH_HTTP_DURATION each (default 15s).
echo "== GET /v1/exercises/hip-thrust" >&2
HTTP_DURATION=${BENCH_HTTP_DURATION:-15s}
VEGETA="go run github.com/tsenart/vegeta/v12@v12.13.0"
"$WORK/repcue" seed --load 1 --out "$WORK/one.json" >/dev/null
tok=$(python3 -c "import json;print(json.load(open('$WORK/one.json'))['athletes'][0]['token'])")
printf 'GET http://127.0.0.1:18181/v1/exercises/hip-thrust\nAuthorization: Bearer %s\n' "$tok" > "$WORK/targets.txt"
$VEGETA -version >/dev/null 2>&1 # build it before the clock runs
HTTP_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
$VEGETA attack -targets="$WORK/targets.txt" -rate=0 -max-workers=50 -duration="$HTTP_DURATION" > "$WORK/full.bin"
$VEGETA report -type=json "$WORK/full.bin" > "$WORK/full.json"
half=$(python3 -c "import json;print(max(1, int(json.load(open('$WORK/full.json'))['throughput'] / 2)))")
HTTP_LOAD_HALF=$(cut -d' ' -f1-3 /proc/loadavg)
$VEGETA attack -targets="$WORK/targets.txt" -rate="$half" -duration="$HTTP_DURATION" > "$WORK/half.bin"
HTTP=$($VEGETA report "$WORK/full.bin" | sed 's/^/    /')
HTTP_HALF=$($VEGETA report "$WORK/half.bin" | sed 's/^/    /')
kill $SERVER; wait $SERVER 2>/dev/null || true; SERVER=

# Two nodes of a cluster over NATS: the athletes' sockets on one, the coaches'
# on the other, so every broadcast frame a coach sees crosses NATS.
CLUSTER=
if [ -n "$NATS_URL" ]; then
	hostport=${NATS_URL#nats://}
	if (exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}") 2>/dev/null; then CLUSTER=1; else echo "== no NATS at $NATS_URL: no two-node steps" >&2; fi
fi
if [ -n "$CLUSTER" ]; then
	echo "== repcue on two nodes, $SETS sets for $DURATION" >&2
	for port in 18183 18184; do
		env -u REPCUE_PPROF_ADDR REPCUE_NATS_URL="$NATS_URL" REPCUE_ADDR=127.0.0.1:$port "$WORK/repcue" serve > "$WORK/node-$port.log" 2>&1 &
		NODES="$NODES $!"
	done
	for port in 18183 18184; do
		for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null && break; sleep 0.2; done
	done
	"$WORK/loadgen" -addr 127.0.0.1:18183 -coach-addr 127.0.0.1:18184 -repcue "$WORK/repcue" -sets "$SETS" -duration "$DURATION" -json > "$WORK/two.json"
	kill $NODES; wait $NODES 2>/dev/null || true; NODES=
	if [ "$TAKEOVER_RUNS" -gt 0 ]; then
		echo "== takeover after SIGKILL, $TAKEOVER_RUNS runs" >&2
		"$WORK/loadgen" takeover -runs "$TAKEOVER_RUNS" -repcue "$WORK/repcue" -addr 127.0.0.1:18185 -addr2 127.0.0.1:18186 -nats "$NATS_URL" -json > "$WORK/takeover.json" || true
	fi
fi

row() { # name file
	python3 - "$1" "$2" <<'PY'
import json, sys
name, path = sys.argv[1], sys.argv[2]
r = json.load(open(path))
def q(k):
    v = r["latency_ms"].get(k)
    return "—" if not v or not v.get("n") else "%.1f / %.1f / %.1f / %.0f" % (v["p50"], v["p99"], v["p99.9"], v["max"])
print("| %s | %d (%d) | %s | %s | %s | %s | %.0f / %.0f | %.2f | %.0f | %d / %d | %s | %s |" % (
    name, r["sets"], r["sockets"], q("lockout_to_coach"), q("cue_to_athlete"), q("hold_done_lateness"), q("ack"),
    r["frames_in_per_s"], r["frames_out_per_s"], r["server_cpu_cores"], r["server_rss_max_mib"],
    r["gaps"], r["duplicates"], ("%d/%d" % (r["acked_stored_once"], r["acked_events"])) if r["storage_checked"] else "—",
    r["load_average_before_after"][0]))
PY
}

{
	echo "# Benchmarks"
	echo
	echo "Generated by \`make bench\` on $(date -u '+%Y-%m-%d %H:%M UTC') at $(git describe --always --dirty)."
	echo "Hand-measured figures (1,000–10,000 sets, profiles before and after): [benchmarks-notes.md](benchmarks-notes.md)."
	echo
	echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/Mem:/{print $2}') GiB;"
	echo "load average when the runs began: $(python3 -c "import json;print(json.load(open('$WORK/relay.json'))['load_average_before_after'][0])") (other work shares this machine)."
	echo
	echo "## Gym floor: $SETS sets for $DURATION"
	echo
	echo "\`loadgen -sets $SETS -duration $DURATION\` (athletes at the tempo up 0.7 s, top, down after 1.2 s with a 1.0 s hold, bottom after 0.9 s, next rep 0.6 s later;"
	echo "one coach socket per 10 sets, a cue about every 7.5 s per set), first against the bare relay (\`loadgen -relay\`), then against repcue."
	echo "Latencies in ms as p50 / p99 / p99.9 / max. The relay has no timer: no hold.done, no hold.tick (fewer frames out)."
	echo
	echo "| target | sets (sockets) | lockout → coach | cue → athlete | hold.done lateness | ack | frames/s in / out | server CPU (cores) | RSS MiB | gaps / dups | acked stored once | load avg |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
	row relay "$WORK/relay.json"
	row repcue "$WORK/repcue.json"
	if [ -s "$WORK/two.json" ]; then
		row "repcue, 2 nodes" "$WORK/two.json"
		echo
		echo "Two nodes: athletes' sockets on one node, coaches' on the other (\`loadgen -addr A -coach-addr B\`), over NATS at $NATS_URL;"
		echo "server CPU and RSS are both nodes' summed: $(python3 -c "import json;print(', '.join('%s %s %.2f cores %.0f MiB' % (n['addr'], n['role'], n['cpu_cores'], n['rss_max_mib']) for n in json.load(open('$WORK/two.json'))['nodes']))")."
	fi
	if [ -s "$WORK/takeover.json" ]; then
		echo
		echo "## Takeover after SIGKILL of a set's owner node ($TAKEOVER_RUNS runs)"
		echo
		echo "\`loadgen takeover -runs $TAKEOVER_RUNS\`: an athlete at \`top\` on one node, its owner node killed with SIGKILL, the athlete"
		echo "subscribing again through the other node every 50 ms until a snapshot of a new epoch, then a phase acknowledged (lease: 4 s, a heartbeat every second)."
		echo
		python3 - "$WORK/takeover.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s = r.get("summary_ms") or {}
def q(k):
    v = s.get(k) or {}
    return "—" if not v.get("n") else "%.0f / %.0f / %.0f" % (v["min"], v["p50"], v["max"])
print("| runs completed | lease left at the kill | kill → snapshot | kill → first ack | load avg |")
print("|---|---|---|---|---|")
print("| %d of %d | %s | %s | %s | %s |" % (r["completed"], len(r["runs"]), q("lease_left"), q("kill_to_snapshot"), q("kill_to_first_ack"), r["load_average_before_after"][0]))
print()
print("ms as min / p50 / max.%s" % ("" if r["ok"] else " Problems: " + "; ".join(x.get("problem", "") for x in r["runs"] if x.get("problem"))))
PY
	fi
	echo
	echo "## CPU profile of repcue serve under that load (top 25, cumulative)"
	echo
	echo '```'
	go tool pprof -top -cum -nodecount=25 "$WORK/repcue" "$WORK/cpu.pprof" 2>/dev/null | sed -n '4,40p' || echo "(no profile)"
	echo '```'
	echo
	echo "## Go benchmarks"
	echo
	echo '```'
	grep -E '^(Benchmark|goos|goarch|cpu|pkg)' "$WORK/gobench.txt"
	echo '```'
	echo
	echo "## GET /v1/exercises/hip-thrust (authenticated), vegeta, $HTTP_DURATION each"
	echo
	echo "First \`vegeta attack -rate=0 -max-workers=50\` (as fast as 50 workers go; load average $HTTP_LOAD),"
	echo "then \`-rate=$half\` (half the throughput reached; load average $HTTP_LOAD_HALF). Target: ≥ 10,000 req/s, p99 < 20 ms at half."
	echo
	echo '```'
	echo "$HTTP"
	echo
	echo "$HTTP_HALF"
	echo '```'
} > "$OUT"
echo "wrote $OUT" >&2
