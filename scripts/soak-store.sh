#!/usr/bin/env bash
# soak-store.sh — the store's torture and crash tests stretched to minutes:
# one writer at full speed, two validating reader processes, then 25 random
# SIGKILLs spread over the same time: 20 minutes at the default 600 s, about
# 2 x 10^9 validated reads per phase on a 2-core box (docs/store.md).
#   scripts/soak-store.sh [SECONDS=600]        (SANITIZE=thread for a TSan soak)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build${SANITIZE:+-$SANITIZE}}
CMAKE_ARGS="${CMAKE_ARGS:-}${SANITIZE:+ -DTICKFAN_SANITIZE=$SANITIZE}" BUILD_DIR=$BUILD_DIR scripts/setup.sh
TICKFAN_SOAK_SECONDS=${1:-600} "$BUILD_DIR/tests/shm/test_shm_torture"
