#!/usr/bin/env bash
# make cluster: the topology of deploy/compose.yaml from local processes, no Docker.
#   PostgreSQL   found or started as `make run` does (repcue devdb)
#   NATS         a private nats-server on a free port (the machine's, else built
#                from github.com/nats-io/nats-server into .devdb/bin once)
#   repcue       CLUSTER_NODES (2) nodes of `repcue serve` on 127.0.0.1:8081, :8082, …
#                sharing the database, NATS and the development keys of .devdb/
#   HAProxy      round-robin in front of them on 127.0.0.1:8080 (installed with
#                apt-get when missing and run as root)
# Ctrl-C (or any failure) stops everything this script started, nodes first with
# SIGTERM. The database is left running, as `make run` leaves it.
# Settings: CLUSTER_NODES (2), CLUSTER_PORT (8080: the balancer; nodes on the
# following ports), CLUSTER_DIR (.devdb/cluster: logs and configs), and any
# REPCUE_* setting, passed to every node.
set -euo pipefail
cd "$(dirname "$0")/.."

NODES=${CLUSTER_NODES:-2}
LB_PORT=${CLUSTER_PORT:-8080}
DIR=${CLUSTER_DIR:-.devdb/cluster}
BIN=bin/repcue
NATS_VERSION=v2.15.2

say() { printf 'cluster: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

case "$NODES" in '' | *[!0-9]*) die "CLUSTER_NODES must be a number (got '$NODES')" ;; esac
[ "$NODES" -ge 1 ] || die "CLUSTER_NODES must be at least 1"
[ -x "$BIN" ] || die "$BIN is missing: run it with 'make cluster'"
command -v curl >/dev/null || die "curl is needed (apt-get install curl)"
mkdir -p "$DIR/logs"
DIR=$(cd "$DIR" && pwd)

# --- what was started, stopped on any exit: the nodes first (SIGTERM: they hand
# their live sets over, which needs NATS), then the balancer, then NATS ---------
NATS_PID="" LB_PID="" NODE_PIDS=()
stop_pids() { # stop_pids SECONDS PID...: SIGTERM, then SIGKILL after SECONDS
	local secs=$1 pid alive i
	shift
	for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
	for ((i = 0; i < secs * 10; i++)); do
		alive=0
		for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
		[ "$alive" = 0 ] && break
		sleep 0.1
	done
	for pid in "$@"; do
		kill -0 "$pid" 2>/dev/null && { say "pid $pid did not stop in $secs s: killing it"; kill -KILL "$pid" 2>/dev/null || true; }
		wait "$pid" 2>/dev/null || true
	done
}
cleanup() {
	trap - EXIT INT TERM
	local live=() pid
	for pid in "${NODE_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && live+=("$pid"); done
	[ ${#live[@]} -gt 0 ] && { say "stopping the nodes (pids ${live[*]})"; stop_pids 40 "${live[@]}"; }
	[ -n "$LB_PID" ] && { say "stopping haproxy"; stop_pids 10 "$LB_PID"; }
	[ -n "$NATS_PID" ] && { say "stopping NATS"; stop_pids 10 "$NATS_PID"; }
	return 0
}
trap cleanup EXIT
trap 'exit 0' INT   # Ctrl-C is how a cluster is stopped
trap 'exit 143' TERM

# start LOGFILE COMMAND...: in the background, in its own session so that Ctrl-C
# reaches this script only and the stopping order above holds; its pid in STARTED.
start() {
	local log=$1
	shift
	setsid "$@" >"$log" 2>&1 </dev/null &
	STARTED=$!
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() { # the first port from $1 on that nothing listens on
	local p=$1
	while port_busy "$p"; do p=$((p + 1)); done
	echo "$p"
}

wait_ready() { # wait_ready NAME PID URL SECONDS LOG
	local name=$1 pid=$2 url=$3 secs=$4 log=$5 i
	for ((i = 0; i < secs * 5; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			say "$name exited before it was ready; the end of $log:"
			tail -n 20 "$log" >&2
			exit 1
		fi
		curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
		sleep 0.2
	done
	say "$name is not ready at $url after $secs s; the end of $log:"
	tail -n 20 "$log" >&2
	exit 1
}

for ((n = 0; n <= NODES; n++)); do
	p=$((LB_PORT + n))
	port_busy "$p" && die "port $p is in use (is 'make run' or another cluster running?): stop it, or set CLUSTER_PORT"
done

# --- HAProxy ------------------------------------------------------------------
HAPROXY=$(command -v haproxy || true)
[ -z "$HAPROXY" ] && [ -x /usr/sbin/haproxy ] && HAPROXY=/usr/sbin/haproxy
if [ -z "$HAPROXY" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		say "installing haproxy (apt-get install haproxy)"
		apt-get install -y --no-install-recommends haproxy >"$DIR/logs/apt.log" 2>&1 ||
			{ apt-get update >>"$DIR/logs/apt.log" 2>&1 && apt-get install -y --no-install-recommends haproxy >>"$DIR/logs/apt.log" 2>&1; } ||
			die "apt-get could not install haproxy; see $DIR/logs/apt.log"
		HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
	else
		die "haproxy is needed for the balancer: install it (sudo apt-get install haproxy, or your system's package)"
	fi
fi

# --- PostgreSQL and the keys, as make run finds them ---------------------------
DATABASE_URL=$("$BIN" devdb) || die "no database (see above)"
REPCUE_JWT_KEY_FILE=${REPCUE_JWT_KEY_FILE:-$("$BIN" devkey)} || die "no signing key"
if [ -z "${REPCUE_VAPID_PRIVATE_KEY_FILE:-}" ]; then
	REPCUE_VAPID_PRIVATE_KEY_FILE=$("$BIN" devkey vapid) || die "no Web Push key"
	REPCUE_VAPID_SUBJECT=${REPCUE_VAPID_SUBJECT:-mailto:push@repcue.invalid}
fi
export DATABASE_URL REPCUE_JWT_KEY_FILE REPCUE_VAPID_PRIVATE_KEY_FILE REPCUE_VAPID_SUBJECT
export REPCUE_ALLOWED_ORIGINS=${REPCUE_ALLOWED_ORIGINS-http://localhost:3000,http://127.0.0.1:3000}
export REPCUE_DEV=${REPCUE_DEV:-true}
export REPCUE_PUBLIC_URL=${REPCUE_PUBLIC_URL:-http://localhost:$LB_PORT}
# HAProxy on loopback adds X-Forwarded-For; the nodes believe it from there only.
export REPCUE_TRUSTED_PROXIES=${REPCUE_TRUSTED_PROXIES-127.0.0.1}

"$BIN" migrate >"$DIR/logs/migrate.log" 2>&1 || { tail -n 20 "$DIR/logs/migrate.log" >&2; die "migrate failed"; }
"$BIN" seed >"$DIR/logs/seed.log" 2>&1 || { tail -n 20 "$DIR/logs/seed.log" >&2; die "seed failed"; }

# --- NATS ---------------------------------------------------------------------
NATS=$(command -v nats-server || true)
[ -z "$NATS" ] && [ -x /usr/sbin/nats-server ] && NATS=/usr/sbin/nats-server
if [ -z "$NATS" ]; then
	NATS=$PWD/.devdb/bin/nats-server
	if [ ! -x "$NATS" ] || [ "$("$NATS" --version 2>/dev/null)" != "nats-server: $NATS_VERSION" ]; then
		say "building nats-server $NATS_VERSION into .devdb/bin (once; about a minute)"
		GOBIN=$PWD/.devdb/bin go install "github.com/nats-io/nats-server/v2@$NATS_VERSION" >"$DIR/logs/nats-build.log" 2>&1 ||
			{ tail -n 20 "$DIR/logs/nats-build.log" >&2; die "could not build nats-server"; }
	fi
fi
NATS_PORT=$(free_port 14222)
NATS_MON=$(free_port $((NATS_PORT + 1)))
start "$DIR/logs/nats.log" "$NATS" -a 127.0.0.1 -p "$NATS_PORT" -m "$NATS_MON"
NATS_PID=$STARTED
wait_ready nats "$NATS_PID" "http://127.0.0.1:$NATS_MON/healthz" 20 "$DIR/logs/nats.log"
export REPCUE_NATS_URL=nats://127.0.0.1:$NATS_PORT

# --- the nodes ----------------------------------------------------------------
servers=""
for ((n = 1; n <= NODES; n++)); do
	port=$((LB_PORT + n))
	REPCUE_ADDR=127.0.0.1:$port start "$DIR/logs/repcue-$n.log" "$BIN" serve
	NODE_PIDS+=("$STARTED")
	servers+="    server repcue-$n 127.0.0.1:$port"$'\n'
done
for ((n = 1; n <= NODES; n++)); do
	wait_ready "repcue-$n" "${NODE_PIDS[n - 1]}" "http://127.0.0.1:$((LB_PORT + n))/readyz" 60 "$DIR/logs/repcue-$n.log"
done

# --- the balancer: deploy/haproxy.cfg's settings, for local addresses ----------
cat >"$DIR/haproxy.cfg" <<EOF
# Written by deploy/local-cluster.sh; the settings are those of deploy/haproxy.cfg.
global
    log stdout format raw local0 info
    maxconn 8000
defaults
    mode http
    log global
    option httplog
    option dontlognull
    option forwardfor
    timeout connect 5s
    timeout http-request 10s
    timeout http-keep-alive 10s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    timeout client-fin 10s
    timeout server-fin 10s
frontend repcue
    bind 127.0.0.1:$LB_PORT
    default_backend repcue_nodes
backend repcue_nodes
    balance roundrobin
    option httpchk
    http-check send meth GET uri /readyz
    http-check expect status 200
    retries 2
    option redispatch
    default-server check inter 2s fall 2 rise 2
$servers
EOF
"$HAPROXY" -c -q -f "$DIR/haproxy.cfg" >"$DIR/logs/haproxy.log" 2>&1 || { cat "$DIR/logs/haproxy.log" >&2; die "haproxy refused $DIR/haproxy.cfg"; }
start "$DIR/logs/haproxy.log" "$HAPROXY" -db -f "$DIR/haproxy.cfg"
LB_PID=$STARTED
wait_ready haproxy "$LB_PID" "http://127.0.0.1:$LB_PORT/readyz" 20 "$DIR/logs/haproxy.log"

{
	echo
	echo "repcue cluster of $NODES nodes is ready:"
	echo "  balancer   http://localhost:$LB_PORT   (web clients: http://localhost:$LB_PORT/app/, live: ws://localhost:$LB_PORT/v1/live)"
	for ((n = 1; n <= NODES; n++)); do
		echo "  repcue-$n   http://127.0.0.1:$((LB_PORT + n))   pid ${NODE_PIDS[n - 1]}   log $DIR/logs/repcue-$n.log"
	done
	echo "  NATS       $REPCUE_NATS_URL   (monitoring http://127.0.0.1:$NATS_MON)"
	echo "  database   $(printf '%s' "$DATABASE_URL" | sed -E 's#(://[^:/@]*:)[^@]*@#\1****@#')"
	echo "  logs       $DIR/logs/"
	echo
	sed -n '/^demo accounts/,$p' "$DIR/logs/seed.log"
	echo
	echo "Stop a node as a deployment would (it hands its live sets over): kill -TERM ${NODE_PIDS[0]}"
	echo "Ctrl-C stops the whole cluster."
} >&2

# Wait. A node that ends is reported and the others go on (that is how a
# hand-over is tried); NATS or the balancer ending, or the last node, ends it all.
set +e
while :; do
	wait -n -p gone
	status=$?
	[ -z "${gone:-}" ] && continue
	case "$gone" in
	"$NATS_PID") say "NATS exited ($status); see $DIR/logs/nats.log"; exit 1 ;;
	"$LB_PID") say "haproxy exited ($status); see $DIR/logs/haproxy.log"; exit 1 ;;
	esac
	left=0
	for ((n = 1; n <= NODES; n++)); do
		pid=${NODE_PIDS[n - 1]}
		[ "$pid" = "$gone" ] && say "repcue-$n (pid $pid) exited with status $status; see $DIR/logs/repcue-$n.log"
		kill -0 "$pid" 2>/dev/null && left=$((left + 1))
	done
	[ "$left" = 0 ] && { say "no node is left"; exit 1; }
	say "$left node(s) still serving behind http://localhost:$LB_PORT"
done
