#!/usr/bin/env bash
# run-local.sh — the README's first command: the whole tickfan system on this
# machine, so a newcomer sees quotes over HTTP a minute after cloning.
#
# It installs missing Debian packages and builds (scripts/setup.sh), then starts,
# all on 127.0.0.1 and on free ports (never 4222, which Debian's own
# nats-server may hold):
#   nats-server  ->  tickfan-apiserver (synthetic market)  ->  N front boxes,
#   each one tickfan-apiclient writing its own store + tickfan-http reading it.
# It waits until every HTTP frontend answers /readyz, prints the URLs and three
# curl commands, and runs until Ctrl-C or SIGTERM, which stop everything it
# started, by PID, newest first (HTTP, writers, apiserver, NATS).
#
# Usage:
#   scripts/run-local.sh                    # one front box, HTTP on 8080 if free
#   scripts/run-local.sh --boxes 3          # fan-out: three apiclient+HTTP pairs
#   scripts/run-local.sh --symbols 2000 --rate 5000 --http-port 9000
#   scripts/run-local.sh --duration 30      # stop on its own after 30 s
#   scripts/run-local.sh --no-build         # skip scripts/setup.sh (already built)
# Environment: BUILD_DIR (default build) — where setup.sh builds and where the
# binaries are taken from; CMAKE_ARGS is passed through to setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"  # Debian puts nats-server in /usr/sbin

BOXES=1 SYMBOLS=1000 RATE=2000 HTTP_PORT="" WORKERS=2 DURATION=0 BUILD=1 KEEP=0 RUN_DIR=""
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
while (($#)); do
  # Every option but the flags takes a value: say so rather than "unbound variable".
  case "$1" in
    --boxes|--symbols|--rate|--http-port|--workers|--duration|--run-dir)
      (($# >= 2)) || { echo "run-local: $1 needs a value (see --help)" >&2; exit 2; } ;;
  esac
  case "$1" in
    --boxes) BOXES=$2; shift 2 ;;
    --symbols) SYMBOLS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;            # synthetic ticks per second, all symbols together
    --http-port) HTTP_PORT=$2; shift 2 ;;  # box i listens on PORT+i-1
    --workers) WORKERS=$2; shift 2 ;;      # HTTP worker processes per box
    --duration) DURATION=$2; shift 2 ;;    # seconds; 0 = until Ctrl-C
    --run-dir) RUN_DIR=$2; shift 2 ;;      # logs, stores, pids (default: a fresh temp dir, removed at exit)
    --keep) KEEP=1; shift ;;               # keep the run dir (logs, stores) after stopping
    --no-build) BUILD=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run-local: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
whole() { [[ "$2" =~ ^[0-9]+$ ]] || { echo "run-local: $1 must be a whole number, not '$2'" >&2; exit 2; }; }
whole --boxes "$BOXES"; whole --symbols "$SYMBOLS"; whole --workers "$WORKERS"; whole --duration "$DURATION"
[[ "$RATE" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "run-local: --rate must be a number of ticks/s, not '$RATE'" >&2; exit 2; }
[[ -z "$HTTP_PORT" ]] || whole --http-port "$HTTP_PORT"
[[ "$BOXES" -ge 1 && "$BOXES" -le 16 ]] || { echo "run-local: --boxes must be 1..16" >&2; exit 2; }

BUILD_DIR=${BUILD_DIR:-build}
if ((BUILD)); then BUILD_DIR=$BUILD_DIR scripts/setup.sh; fi
APISERVER=$BUILD_DIR/apiserver/tickfan-apiserver
APICLIENT=$BUILD_DIR/apiclient/writer/tickfan-apiclient
HTTP=$BUILD_DIR/apiclient/http/tickfan-http
for b in "$APISERVER" "$APICLIENT" "$HTTP"; do
  [[ -x "$b" ]] || { echo "run-local: $b is missing: build first (scripts/setup.sh, or drop --no-build)" >&2; exit 1; }
done
for t in nats-server curl python3; do
  command -v "$t" >/dev/null || { echo "run-local: '$t' not found: run scripts/setup.sh as root" >&2; exit 1; }
done

# A run dir we create is removed at exit (unless --keep); one given with
# --run-dir belongs to the caller and is left in place.
if [[ -z "$RUN_DIR" ]]; then RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tickfan-local.XXXXXX"); else mkdir -p "$RUN_DIR"; KEEP=1; fi
RUN_DIR=$(cd "$RUN_DIR" && pwd)

# --- process bookkeeping: every PID we start, stopped newest first ---------
PIDS=() NAMES=()
start() {  # start NAME LOG CMD... : runs CMD in the background, records its PID
  local name=$1 log=$2; shift 2
  # Its own session: a terminal's Ctrl-C reaches only this script, which
  # then stops everything in order (the daemons take SIGINT even when a
  # shell marks it ignored, since they block it and sigwait for it).
  # setsid execs in place here (a background child is no group leader), so
  # $! is the daemon's own PID.
  setsid "$@" >"$log" 2>&1 </dev/null &
  PIDS+=($!) NAMES+=("$name")
  echo "$! $name" >>"$RUN_DIR/pids"
}
alive() {  # running and not a zombie; builtins only (polled every second)
  local stat
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}
stop_one() {  # SIGTERM, up to 5 s to exit, then SIGKILL; always reaped
  local pid=$1 name=$2
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
  if alive "$pid"; then
    echo "run-local: $name (pid $pid) ignored SIGTERM for 5 s, killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
STOPPING=0
cleanup() {
  ((STOPPING)) && return
  STOPPING=1
  trap '' INT TERM
  [[ -n "${SLEEP_PID:-}" ]] && { kill "$SLEEP_PID" 2>/dev/null || true; wait "$SLEEP_PID" 2>/dev/null || true; }
  if ((${#PIDS[@]})); then echo "run-local: stopping ${#PIDS[@]} processes"; fi
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_one "${PIDS[$i]}" "${NAMES[$i]}"; done
  if ((KEEP)); then echo "run-local: logs and stores kept in $RUN_DIR"; else rm -rf "$RUN_DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
  echo "run-local: $*" >&2
  for f in "$RUN_DIR"/*.log; do [[ -s "$f" ]] && { echo "--- tail of $f" >&2; tail -n 5 "$f" >&2; }; done
  KEEP=1
  exit 1
}

free_port() {  # a free loopback port (bound, then released: a tiny race, fine locally)
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port_free() {
  python3 -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}
free_port_range() {  # first of $1 consecutive free loopback ports
  local base k
  for _ in $(seq 20); do
    base=$(free_port)
    for ((k = 1; k < $1; k++)); do port_free $((base + k)) || continue 2; done
    echo "$base"
    return
  done
  die "no $1 consecutive free ports for the per-worker metrics listeners"
}

# --- NATS: the server picks a free port and writes it to a ports file -------
start nats "$RUN_DIR/nats.log" nats-server -a 127.0.0.1 -p -1 --ports_file_dir "$RUN_DIR"
NATS_PID=${PIDS[-1]}
for _ in $(seq 100); do
  [[ -s "$RUN_DIR/nats-server_$NATS_PID.ports" ]] && break
  alive "$NATS_PID" || die "nats-server exited at start"
  sleep 0.1
done
NATS_URL=$(grep -o 'nats://[0-9.]*:[0-9]*' "$RUN_DIR/nats-server_$NATS_PID.ports" | head -n1) ||
  die "nats-server wrote no port within 10 s"

# --- apiserver on the synthetic market ---------------------------------------
APISERVER_METRICS=$(free_port)
start apiserver "$RUN_DIR/apiserver.log" "$APISERVER" --nats "$NATS_URL" \
  --source "synthetic:?symbols=$SYMBOLS&rate=$RATE" --metrics-port "$APISERVER_METRICS"

# --- front boxes: apiclient (writer) + tickfan-http (readers) per box --------
if [[ -z "$HTTP_PORT" ]]; then
  HTTP_PORT=8080
  for ((b = 0; b < BOXES; b++)); do port_free $((HTTP_PORT + b)) || { HTTP_PORT=""; break; }; done
fi
HTTP_PORTS=() WRITER_METRICS=() WORKER_BASES=()
for ((b = 1; b <= BOXES; b++)); do
  box=$RUN_DIR/box$b
  mkdir -p "$box"
  if [[ -n "$HTTP_PORT" ]]; then port=$((HTTP_PORT + b - 1)); else port=$(free_port); fi
  port_free "$port" || die "HTTP port $port is taken (pick another with --http-port)"
  metrics=$(free_port)
  # Worker i also listens alone on worker_base+i: each worker's own /metrics.
  worker_base=$(free_port_range "$WORKERS")
  HTTP_PORTS+=("$port") WRITER_METRICS+=("$metrics") WORKER_BASES+=("$worker_base")
  start "apiclient$b" "$box/apiclient.log" "$APICLIENT" --store "$box/tickfan.store" \
    --capacity $((SYMBOLS * 2 > 1024 ? SYMBOLS * 2 : 1024)) --nats "$NATS_URL" \
    --nats-name "tickfan-apiclient-box$b" --metrics-port "$metrics"
  start "http$b" "$box/http.log" "$HTTP" --store "$box/tickfan.store" --port "$port" --workers "$WORKERS" \
    --worker-port-base "$worker_base"
done

# --- wait until every frontend serves fresh data ------------------------------
for ((b = 1; b <= BOXES; b++)); do
  url="http://127.0.0.1:${HTTP_PORTS[$((b - 1))]}/readyz"
  for i in $(seq 300); do
    curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && break
    for ((k = 0; k < ${#PIDS[@]}; k++)); do
      alive "${PIDS[$k]}" || die "${NAMES[$k]} exited during start-up (logs in $RUN_DIR)"
    done
    ((i < 300)) || die "box $b not ready after 30 s: $url"
    sleep 0.1
  done
done

first=${HTTP_PORTS[0]}
cat <<EOF

tickfan is running ($BOXES front box(es), $SYMBOLS synthetic symbols at $RATE ticks/s; run dir $RUN_DIR)
  NATS                 $NATS_URL
  apiserver metrics    http://127.0.0.1:$APISERVER_METRICS/metrics
EOF
for ((b = 1; b <= BOXES; b++)); do
  printf '  box %-2d HTTP          http://127.0.0.1:%s/   (writer metrics http://127.0.0.1:%s/metrics, store %s)\n' \
    "$b" "${HTTP_PORTS[$((b - 1))]}" "${WRITER_METRICS[$((b - 1))]}" "$RUN_DIR/box$b/tickfan.store"
  wb=${WORKER_BASES[$((b - 1))]}
  printf '         per worker    http://127.0.0.1:%s/metrics ... http://127.0.0.1:%s/metrics (worker i on %s+i)\n' \
    "$wb" $((wb + WORKERS - 1)) "$wb"
done
cat <<EOF

Try:
  curl -s 'http://127.0.0.1:$first/v1/quotes/sh600000'
  curl -s 'http://127.0.0.1:$first/v1/quotes?symbols=sh600000,sz000001'
  curl -s 'http://127.0.0.1:$first/v1/rank?by=change_pct&limit=5'
Inspect a store:  scripts/store.sh stat $RUN_DIR/box1/tickfan.store   (also get/dump/verify/tail)

Ctrl-C stops everything.
EOF

# --- run until a signal, --duration, or a daemon dying ------------------------
started=$SECONDS
while :; do
  for ((k = 0; k < ${#PIDS[@]}; k++)); do
    alive "${PIDS[$k]}" || die "${NAMES[$k]} (pid ${PIDS[$k]}) exited unexpectedly (logs in $RUN_DIR)"
  done
  if ((DURATION > 0 && SECONDS - started >= DURATION)); then echo "run-local: --duration $DURATION reached"; exit 0; fi
  # Sleep in a waited-for child so a signal interrupts the wait at once.
  sleep 1 & SLEEP_PID=$!
  wait "$SLEEP_PID" || true
  SLEEP_PID=""
done
