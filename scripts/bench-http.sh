#!/usr/bin/env bash
# bench-http.sh — tickfan-http against nginx (Debian nginx-light) and h2o
# serving the very same response bytes as static files from tmpfs (sendfile
# on), in one run, same client, same machine, same number of workers:
#   (a) one quote        GET /v1/quotes/sh600000        vs /quote.json
#   (b) a 500-symbol list GET /v1/quotes?symbols=...     vs /list.json
# each with wrk (keep-alive) and with the original method, ab -n 20000 -c C
# (C = 19990 by default: the open-files hard limit here is 20 000).
# Prints a markdown table (req/s, p50/p99, failures, worker RSS, ratios) for
# docs/BENCHMARKS.md.
#
#   scripts/bench-http.sh                 # defaults below
#   WORKERS=2 DURATION=10 AB_C=19990 SYMBOLS=5000 scripts/bench-http.sh
#   SKIP_AB=1 scripts/bench-http.sh       # wrk only
#   TF_EXTRA="--cpu-affinity off" scripts/bench-http.sh   # extra tickfan flags (A/B)
#   TCP_CC=reno scripts/bench-http.sh     # every server and client in a private
#                                         # network namespace whose default TCP
#                                         # congestion control is reno
#
# TCP_CC exists because the host default here is bbr without the fq qdisc:
# every connection (tickfan's, nginx's, h2o's and wrk's alike) is then paced
# by a kernel timer per burst, which on this VM dominates big responses. The
# namespace changes that for all of them at once and nothing outside it
# (net.ipv4.tcp_congestion_control is per network namespace; only the
# congestion controls in net.ipv4.tcp_allowed_congestion_control can be set).
#
# While ab runs with big responses, net.ipv4.tcp_mem is raised (20 000
# sockets x 164 KB overflow the default and loopback drops packets) and
# restored on exit. Runs as root (sysctl, ulimit).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORKERS=${WORKERS:-2}
DURATION=${DURATION:-10}
WRK_C=${WRK_C:-64}
AB_N=${AB_N:-20000}
AB_C=${AB_C:-19990}
SYMBOLS=${SYMBOLS:-5000}
LIST_N=${LIST_N:-500}
RATE=${RATE:-1000}   # store updates/s during the run (10 commits/s)
BUILD_DIR=${BUILD_DIR:-build-bench}
P_TF=${P_TF:-18481} P_NGX=${P_NGX:-18482} P_H2O=${P_H2O:-18483}

# The peers and clients (only the missing ones; scripts/setup.sh covers the
# build dependencies but also builds everything, which this script avoids).
missing=()
for p in nginx-light h2o wrk apache2-utils curl python3; do
  [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "bench-http: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if [[ -n "${TCP_CC:-}" && -z "${BENCH_HTTP_NETNS:-}" ]]; then
  exec unshare -n -- env BENCH_HTTP_NETNS=1 "$0" "$@"
fi
if [[ -n "${BENCH_HTTP_NETNS:-}" ]]; then
  ip link set lo up
  sysctl -q -w net.ipv4.tcp_congestion_control="$TCP_CC"
fi
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j2 --target tickfan-http tickfan-http-fill >/dev/null

WORK=$(mktemp -d /dev/shm/tickfan-bench.XXXXXX)
PIDS=()
OLD_TCP_MEM=$(sysctl -n net.ipv4.tcp_mem 2>/dev/null || true)  # not visible in a TCP_CC namespace
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.3
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  [[ -z "$OLD_TCP_MEM" ]] || sysctl -q -w net.ipv4.tcp_mem="$OLD_TCP_MEM" || true
  rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"

# --- the store and tickfan ---------------------------------------------------
"$BUILD_DIR/apiclient/http/tickfan-http-fill" --store "$WORK/store" --symbols "$SYMBOLS" --rate "$RATE" \
  2>"$WORK/fill.log" &
FILL_PID=$!
PIDS+=($FILL_PID)
sleep 0.5
TF_CMD=("$BUILD_DIR/apiclient/http/tickfan-http" --store "$WORK/store" --port "$P_TF" --workers "$WORKERS"
  --max-connections 20000 --header-timeout-ms 60000 --log-level warn ${TF_EXTRA:-})
"${TF_CMD[@]}" 2>"$WORK/tf.log" &
TF_PID=$!
PIDS+=($TF_PID)

LIST=$(python3 -c "
n=$LIST_N
print(','.join(('sh%06d'%(600000+i//2)) if i%2==0 else ('sz%06d'%(i//2+1)) for i in range(n)))")
Q_PATH=/v1/quotes/sh600000
L_PATH="/v1/quotes?symbols=$LIST"
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$P_TF/healthz" >/dev/null && break; sleep 0.1; done

# --- the same bytes as static files ------------------------------------------
mkdir -p "$WORK/www" "$WORK/nginx" "$WORK/h2o"
curl -sf "http://127.0.0.1:$P_TF$Q_PATH" -o "$WORK/www/quote.json"
curl -sf "http://127.0.0.1:$P_TF$L_PATH" -o "$WORK/www/list.json"
chmod -R a+rX "$WORK"
Q_BYTES=$(stat -c %s "$WORK/www/quote.json")
L_BYTES=$(stat -c %s "$WORK/www/list.json")

cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes $WORKERS;
# tickfan pins one worker per CPU by default (--cpu-affinity auto): nginx gets
# its own equivalent (h2o 2.2 has none).
worker_cpu_affinity auto;
worker_rlimit_nofile 40000;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 20000; multi_accept on; }
http {
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  client_header_timeout 60s;
  default_type application/json;
  server { listen 127.0.0.1:$P_NGX reuseport backlog=4096; root $WORK/www; }
}
EOF
nginx -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
PIDS+=($!)

cat >"$WORK/h2o/h2o.conf" <<EOF
num-threads: $WORKERS
max-connections: 40000
http1-request-timeout: 60
error-log: $WORK/h2o/error.log
listen:
  host: 127.0.0.1
  port: $P_H2O
hosts:
  default:
    paths:
      /:
        file.dir: $WORK/www
EOF
h2o -c "$WORK/h2o/h2o.conf" >/dev/null 2>&1 &
H2O_PID=$!
PIDS+=($H2O_PID)
sleep 1
for port in $P_NGX $P_H2O; do
  curl -sf "http://127.0.0.1:$port/quote.json" -o /dev/null || { echo "server on $port did not start" >&2; exit 1; }
done

# --- measuring ----------------------------------------------------------------
# RSS (kB) of the serving processes: tickfan and nginx workers (children of
# their masters), h2o's single multi-threaded process.
rss_of() {
  case $1 in
    tickfan) ps -o rss= --ppid "$TF_PID" | sort -n | tail -1 ;;
    nginx) ps -o rss= --ppid "$(cat "$WORK/nginx/nginx.pid")" | sort -n | tail -1 ;;
    h2o) ps -o rss= -p "$H2O_PID" ;;
  esac
}
url_of() {  # server kind
  case "$1:$2" in
    tickfan:quote) echo "http://127.0.0.1:$P_TF$Q_PATH" ;;
    tickfan:list) echo "http://127.0.0.1:$P_TF$L_PATH" ;;
    nginx:*) echo "http://127.0.0.1:$P_NGX/$2.json" ;;
    h2o:*) echo "http://127.0.0.1:$P_H2O/$2.json" ;;
  esac
}
# wrk's latency lines are like "50%  312.00us": convert to ms.
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; printf "%.2f", v}'; }

declare -A RPS
RESULTS=$WORK/results.md
{
  echo "| kind | client | server | req/s | p50 ms | p99 ms | failed | worker RSS MB |"
  echo "|---|---|---|---:|---:|---:|---:|---:|"
} >"$RESULTS"
run_wrk() {
  local kind=$1 srv=$2 out
  out=$(wrk -t2 -c"$WRK_C" -d"${DURATION}s" --latency "$(url_of "$srv" "$kind")")
  local rps p50 p99 errs non2xx
  rps=$(awk '/^Requests\/sec/ {printf "%d", $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out" | to_ms)
  p99=$(awk '$1=="99%" {print $2}' <<<"$out" | to_ms)
  errs=$(awk '/Socket errors/ {gsub(",",""); print $4+$6+$8+$10}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  RPS[$kind:wrk:$srv]=$rps
  echo "| $kind | wrk -t2 -c$WRK_C | $srv | $rps | $p50 | $p99 | $((${errs:-0} + ${non2xx:-0})) | $(awk '{printf "%.1f", $1/1024}' <<<"$(rss_of "$srv")") |" >>"$RESULTS"
}
run_ab() {
  local kind=$1 srv=$2 out
  out=$(ab -q -r -s 60 -n "$AB_N" -c "$AB_C" "$(url_of "$srv" "$kind")" 2>&1 || true)
  local rps p50 p99 failed non2xx
  rps=$(awk '/^Requests per second/ {printf "%d", $4}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  failed=$(awk '/^Failed requests/ {print $3}' <<<"$out")
  # ab counts a response whose length differs from the first as failed
  # ("Length:"); with static data that never happens, so keep it visible.
  local length_failed
  length_failed=$(awk '/^   \(Connect/ {gsub(/[(),]/,""); for (i=1;i<=NF;i++) if ($i=="Length:") print $(i+1)}' <<<"$out")
  [[ -n "$length_failed" && "$length_failed" != 0 ]] && echo "$srv $kind: ab length failures: $length_failed" >&2
  non2xx=$(awk '/^Non-2xx responses/ {print $3}' <<<"$out")
  local complete
  complete=$(awk '/^Complete requests/ {print $3}' <<<"$out")
  RPS[$kind:ab:$srv]=${rps:-0}
  echo "| $kind | ab -n $AB_N -c $AB_C | $srv | ${rps:-0} | ${p50:-?} | ${p99:-?} | $((${failed:-0} + ${non2xx:-0} + AB_N - ${complete:-0})) | $(awk '{printf "%.1f", $1/1024}' <<<"$(rss_of "$srv")") |" >>"$RESULTS"
}

for kind in quote list; do
  for srv in tickfan nginx h2o; do
    wrk -t2 -c"$WRK_C" -d1s "$(url_of "$srv" "$kind")" >/dev/null  # warm-up
    run_wrk "$kind" "$srv"
  done
done
if [[ -z "${SKIP_AB:-}" ]]; then
  # ab compares every response's length with the first one's, like the
  # original team's test against unchanging data: freeze the store (the
  # writer restarts without updates) so tickfan's bodies are as static as
  # the peers' files.
  kill "$FILL_PID"; wait "$FILL_PID" 2>/dev/null || true
  "$BUILD_DIR/apiclient/http/tickfan-http-fill" --store "$WORK/store" --symbols "$SYMBOLS" --rate 0 2>>"$WORK/fill.log" &
  PIDS+=($!)
  sleep 0.5
  # ~4x the default pressure thresholds, in pages.
  if [[ -n "$OLD_TCP_MEM" ]]; then
    sysctl -q -w net.ipv4.tcp_mem="$((4 * $(awk '{print $1}' <<<"$OLD_TCP_MEM"))) $((4 * $(awk '{print $2}' <<<"$OLD_TCP_MEM"))) $((4 * $(awk '{print $3}' <<<"$OLD_TCP_MEM")))"
  else
    echo "bench-http: net.ipv4.tcp_mem not raised (not visible in this network namespace)" >&2
  fi
  for kind in quote list; do
    for srv in tickfan nginx h2o; do
      run_ab "$kind" "$srv"
      sleep 2  # let TIME_WAIT/closing sockets settle between runs
    done
  done
fi

ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo "# bench-http $(date -u +%FT%TZ) — $(nproc) cores, $WORKERS workers each, quote $Q_BYTES B, list $L_BYTES B ($LIST_N symbols), store updates ${RATE}/s"
echo
echo "tickfan: ${TF_CMD[*]}; TCP congestion control: $(sysctl -n net.ipv4.tcp_congestion_control)"
echo
cat "$RESULTS"
echo
for c in wrk ab; do
  [[ $c == ab && -n "${SKIP_AB:-}" ]] && continue
  for kind in quote list; do
    t=${RPS[$kind:$c:tickfan]:-0}
    echo "- $kind / $c: tickfan/nginx = $(ratio "$t" "${RPS[$kind:$c:nginx]:-0}"), tickfan/h2o = $(ratio "$t" "${RPS[$kind:$c:h2o]:-0}")"
  done
done
