#!/usr/bin/env bash
# setup.sh — installs the Debian 12 packages tickfan needs (only when some are
# missing: a machine that has them all never touches apt), then configures and
# builds into ./build. Run as root on a fresh machine; idempotent.
#
#   scripts/setup.sh                 # Release-with-debug-info build in ./build
#   BUILD_DIR=build-asan CMAKE_ARGS=-DTICKFAN_SANITIZE=address scripts/setup.sh
#   EXTRA_PACKAGES="clang" SKIP_BUILD=1 scripts/setup.sh   # packages only
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  cmake g++ make pkg-config git ca-certificates
  libnats-dev nats-server              # transport
  libflatbuffers-dev flatbuffers-compiler
  libuv1-dev node-llhttp libdeflate-dev # HTTP frontend
  libcli11-dev doctest-dev
  python3 curl procps                   # test helpers and the examples
)
if [[ -n "${EXTRA_PACKAGES:-}" ]]; then read -r -a extra <<<"$EXTRA_PACKAGES"; PACKAGES+=("${extra[@]}"); fi

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing missing packages: ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: need root to install packages (run as root or install them yourself)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

[[ "${SKIP_BUILD:-0}" == 1 ]] && exit 0
BUILD_DIR=${BUILD_DIR:-build}
read -r -a cmake_args <<<"${CMAKE_ARGS:-}"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} "${cmake_args[@]}" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
