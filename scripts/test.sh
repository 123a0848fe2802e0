#!/usr/bin/env bash
# test.sh — the README's test command: sets up (installs what is missing,
# builds) and runs the whole default test suite with CTest.
#   scripts/test.sh                  # default build
#   SANITIZE=address scripts/test.sh # ASan+UBSan build in build-address
#   SANITIZE=thread  scripts/test.sh # TSan build in build-thread
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -n "${SANITIZE:-}" ]]; then
  export BUILD_DIR=${BUILD_DIR:-build-$SANITIZE}
  export CMAKE_ARGS="${CMAKE_ARGS:-} -DTICKFAN_SANITIZE=$SANITIZE"
fi
export BUILD_DIR=${BUILD_DIR:-build}
scripts/setup.sh
cd "$BUILD_DIR"
ctest --output-on-failure -j2 --timeout 300 "$@"
