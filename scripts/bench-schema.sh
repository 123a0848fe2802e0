#!/usr/bin/env bash
# bench-schema.sh — encode / verify+decode of a 1000-quote batch: the wire's
# struct Quote against the same quote as a FlatBuffers table (docs/schema.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --build "${BUILD_DIR:-build}" --target schema_bench >/dev/null
"${BUILD_DIR:-build}/tests/bench/schema_bench"
