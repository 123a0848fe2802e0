#!/usr/bin/env bash
# bench-apiclient.sh — the apiclient writer benchmark in one run: ingest-to-store
# latency (p50/p99/p99.9) at 10 000 and 100 000 ticks/s beside a plain NATS
# publish->receive round of the same payloads, maximum throughput into the
# store, and time to full sync of a new apiclient at 5 000 and 100 000 symbols.
# Starts its own nats-server on a free loopback port; prints a Markdown report
# (docs/BENCHMARKS.md keeps a copy of the latest figures).
#   scripts/bench-apiclient.sh [seconds-per-round]     (default 5)
# Uses BUILD_DIR (default build-apiclient) so it never disturbs build/.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-apiclient}
if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${CMAKE_ARGS:-} >/dev/null
fi
cmake --build "$BUILD_DIR" -j2 --target tickfan-apiclient bench-apiclient >/dev/null
exec "$BUILD_DIR/tests/apiclient/writer/bench-apiclient" "${1:-5}"
