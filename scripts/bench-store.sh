#!/usr/bin/env bash
# bench-store.sh — the shm store against LMDB (liblmdb-dev) and a bare seqlock
# array, side by side in one run (tests/bench/store_bench.cpp explains the work),
# then one read by symbol and one update split into their pieces
# (store_bench --parts).
# Prints a markdown table and the ratios; paste them into docs/BENCHMARKS.md.
#   scripts/bench-store.sh [SECONDS_PER_CELL=2] [DIR=/dev/shm]
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRA_PACKAGES="liblmdb-dev" scripts/setup.sh
cmake --build "${BUILD_DIR:-build}" --target store_bench >/dev/null
echo "# $(date -u +%FT%TZ) $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
"${BUILD_DIR:-build}/tests/bench/store_bench" "${1:-2}" "${2:-/dev/shm}"
echo
echo "Where a read by symbol's and an update's time go (one process each, alone; store_bench --parts):"
echo
"${BUILD_DIR:-build}/tests/bench/store_bench" --parts 1 "${2:-/dev/shm}"
