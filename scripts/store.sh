#!/usr/bin/env bash
# store.sh — the store inspector (tickfan-store, built from shm/inspect.cpp)
# reachable from scripts/, so operators need not know where the build put it.
# Read-only: safe next to a live writer.
#
# Usage:
#   scripts/store.sh stat   STORE            capacity, use, writer liveness, last commit
#   scripts/store.sh get    STORE SYMBOL     one record as JSON
#   scripts/store.sh dump   STORE            every record, one JSON line each
#   scripts/store.sh verify STORE            checksums + index; exit 1 on a bad record
#   scripts/store.sh tail   STORE SYMBOL     print the record each time it changes (Ctrl-C stops)
# STORE may be left out when TICKFAN_STORE names it, e.g.
#   TICKFAN_STORE=/dev/shm/tickfan.store scripts/store.sh tail sh600000
# The binary is looked up as $BUILD_DIR/shm/tickfan-store (BUILD_DIR defaults to
# build), then on PATH (an installed tickfan).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${BUILD_DIR:-build}"
[[ "$bin" = /* ]] || bin="$root/$bin"
bin="$bin/shm/tickfan-store"
if [[ ! -x "$bin" ]]; then
  bin=$(command -v tickfan-store) || {
    echo "store.sh: tickfan-store not built ($bin missing) and not on PATH: run scripts/setup.sh" >&2
    exit 1
  }
fi
if (($# == 0)) || [[ "$1" == -h || "$1" == --help ]]; then
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
  exit 0
fi
cmd=$1
shift
# Insert $TICKFAN_STORE as the path when the caller gave none.
if [[ -n "${TICKFAN_STORE:-}" ]] && { (($# == 0)) || [[ ! -e "$1" ]]; }; then
  set -- "$TICKFAN_STORE" "$@"
fi
exec "$bin" "$cmd" "$@"
