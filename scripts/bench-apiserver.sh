#!/usr/bin/env bash
# bench-apiserver.sh — apiserver throughput side by side with a plain NATS
# publisher sending the same bytes, in one run, against one private
# nats-server on a free loopback port (never 4222).
#
#   scripts/bench-apiserver.sh [COUNT] [ROUNDS]
#     COUNT   quotes per run (default 3000000)
#     ROUNDS  alternating plain/apiserver rounds (default 3); medians reported
#   env: BUILD_DIR (default build), MAX_BATCH (default 64), SEND_ASAP (1|0, default 1),
#        APISERVER_ARGS (extra flags for tickfan-apiserver),
#        LATENCY_RATES (default "2000 20000 200000": paced runs of 5 s each
#        reporting per-tick latency from apiserver receipt to subscriber; "" = skip)
#
# Each round: a subscriber (tickfan-bench-apiserver sub) that verifies every
# batch subscribes to tickfan.q.>, then either
#   plain:     tickfan-bench-apiserver plain — pre-encoded batches of MAX_BATCH
#              synthetic quotes published in a loop (no per-tick work at all);
#   apiserver: tickfan-apiserver with synthetic:?rate=0&count=COUNT — the full
#              path: simulate, validate, arbitrate, batch, encode, publish.
# The rate is what the subscriber received (first to last message), so both
# numbers mean "ticks/s delivered end to end with every tick received".
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-3000000}
ROUNDS=${2:-3}
BUILD_DIR=${BUILD_DIR:-build}
MAX_BATCH=${MAX_BATCH:-64}
SEND_ASAP=${SEND_ASAP:-1}
APISERVER_ARGS=${APISERVER_ARGS:-}
LATENCY_RATES=${LATENCY_RATES-2000 20000 200000}
API="$BUILD_DIR/apiserver/tickfan-apiserver"
BENCH="$BUILD_DIR/apiserver/tickfan-bench-apiserver"
if [[ ! -x $API || ! -x $BENCH ]]; then
  cmake -S . -B "$BUILD_DIR" >/dev/null
  cmake --build "$BUILD_DIR" -j2 --target tickfan-apiserver tickfan-bench-apiserver
fi
ASAP_FLAG=--send-asap
[[ $SEND_ASAP == 0 ]] && ASAP_FLAG=--no-send-asap

WORK=$(mktemp -d /tmp/tickfan-bench-apiserver.XXXXXX)
NATS_PID=
cleanup() {
  [[ -n $NATS_PID ]] && kill -INT "$NATS_PID" 2>/dev/null && wait "$NATS_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

nats-server -a 127.0.0.1 -p -1 --ports_file_dir "$WORK" -l "$WORK/nats.log" &
NATS_PID=$!
for _ in $(seq 100); do
  ls "$WORK"/*.ports >/dev/null 2>&1 && break
  sleep 0.05
done
PORT=$(grep -o '127.0.0.1:[0-9]*' "$WORK"/*.ports | head -1 | cut -d: -f2)
URL="nats://127.0.0.1:$PORT"

cpu_of() {  # user+system seconds of a pid so far
  awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"
}

run_round() {  # $1 = plain|apiserver ; prints quotes_per_s and CPU seconds
  local kind=$1 ready="$WORK/ready.$RANDOM" out="$WORK/sub.out"
  "$BENCH" sub --nats "$URL" --expect "$COUNT" --idle-ms 3000 --ready-file "$ready" >"$out" &
  local sub=$!
  while [[ ! -f $ready ]]; do sleep 0.02; done
  local nats_cpu0
  nats_cpu0=$(cpu_of "$NATS_PID")
  local t0=$SECONDS
  if [[ $kind == plain ]]; then
    /usr/bin/time -f "%U %S" -o "$WORK/time" "$BENCH" plain --nats "$URL" --count "$COUNT" --batch "$MAX_BATCH" $ASAP_FLAG >"$WORK/pub.out"
  else
    # shellcheck disable=SC2086
    /usr/bin/time -f "%U %S" -o "$WORK/time" "$API" --nats "$URL" --metrics-port 0 --log-level warn \
      --source "synthetic:?rate=0&count=$COUNT" --max-batch "$MAX_BATCH" $ASAP_FLAG --exit-when-done $APISERVER_ARGS \
      2>"$WORK/api.err" >"$WORK/pub.out"
  fi
  wait "$sub" || true
  local nats_cpu1
  nats_cpu1=$(cpu_of "$NATS_PID")
  local rate complete pub_cpu
  rate=$(grep -o 'quotes_per_s=[0-9]*' "$out" | cut -d= -f2)
  complete=$(grep -o 'complete=[01]' "$out" | cut -d= -f2)
  pub_cpu=$(awk '{printf "%.2f", $1 + $2}' "$WORK/time")
  echo "$kind rate=$rate complete=$complete publisher_cpu_s=$pub_cpu nats_server_cpu_s=$(echo "$nats_cpu1 - $nats_cpu0" | bc) $(cat "$out" | tr '\n' ' ')" >&2
  echo "$rate $complete"
}

# Latency at paced rates first (a nats-server fresh from millions of
# throughput ticks showed long tails): receipt at the apiserver
# (receive_ts_ns, stamped when the tick is made/read) to receipt by the
# subscriber, both on this machine.
for rate in $LATENCY_RATES; do
  n=$((rate * 5))
  ready="$WORK/ready.lat.$rate"
  "$BENCH" sub --nats "$URL" --expect "$n" --idle-ms 10000 --latency --ready-file "$ready" >"$WORK/lat.out" &
  sub=$!
  while [[ ! -f $ready ]]; do sleep 0.02; done
  # shellcheck disable=SC2086
  "$API" --nats "$URL" --metrics-port 0 --source "synthetic:?rate=$rate&count=$n" \
    --max-batch "$MAX_BATCH" $ASAP_FLAG --exit-when-done $APISERVER_ARGS 2>"$WORK/api.lat.err"
  wait "$sub" || true
  echo "latency rate=$rate $(grep latency_us "$WORK/lat.out") $(grep -o 'complete=[01]' "$WORK/lat.out")"
  echo "  apiserver: $(grep -o 'stopped.*' "$WORK/api.lat.err")" >&2
done

echo "# bench-apiserver: COUNT=$COUNT ROUNDS=$ROUNDS MAX_BATCH=$MAX_BATCH SEND_ASAP=$SEND_ASAP nats=$URL host=$(hostname) cores=$(nproc)" >&2
plain_rates=() api_rates=() incomplete=0
for r in $(seq "$ROUNDS"); do
  read -r rate ok < <(run_round plain)
  plain_rates+=("$rate"); [[ $ok == 1 ]] || incomplete=1
  read -r rate ok < <(run_round apiserver)
  api_rates+=("$rate"); [[ $ok == 1 ]] || incomplete=1
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
P=$(median "${plain_rates[@]}")
A=$(median "${api_rates[@]}")
echo "plain_nats_ticks_per_s=$P apiserver_ticks_per_s=$A ratio=$(echo "scale=2; $A / $P" | bc) all_received=$((1 - incomplete))"
echo "rounds: plain=[${plain_rates[*]}] apiserver=[${api_rates[*]}]"
if grep -qi "slow consumer" "$WORK/nats.log"; then
  echo "WARNING: nats-server reported slow consumers: $(grep -ci 'slow consumer' "$WORK/nats.log")" >&2
fi
