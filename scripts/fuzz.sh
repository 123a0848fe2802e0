#!/usr/bin/env bash
# fuzz.sh — coverage-guided fuzzing of every tests/fuzz target (clang's
# libFuzzer with ASan+UBSan), each for SECONDS, starting from the committed
# seed corpus. Not part of the default suite, which only replays the corpus.
#   scripts/fuzz.sh [SECONDS_PER_TARGET=300] [TARGET...]   (targets: batch ticks store recording http sync)
# Works in $FUZZ_DIR (default /tmp/tickfan-fuzz): a growing corpus per target
# and, when a property fails or a sanitizer fires, the input as
# <target>-crash-<hash>. Once the bug is fixed, copy that file into
# tests/fuzz/corpus/<target>/ so every CI run replays it.
# Several runs may go on at once (other FUZZ_DIRs): each target removes the
# names of its own files in /dev/shm as soon as it has them open, so a run
# that crashes, times out or is killed leaves nothing there (fuzz_store.h;
# CTest *_killed_* checks it). This script removes nothing there by
# wildcard; it only reports a file a target's process left, and removes
# that one.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-300}
shift || true
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=(batch ticks store recording http sync)
BUILD_DIR=${BUILD_DIR:-build-fuzz}
FUZZ_DIR=${FUZZ_DIR:-/tmp/tickfan-fuzz}

EXTRA_PACKAGES="clang libclang-rt-14-dev" SKIP_BUILD=1 scripts/setup.sh
if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTICKFAN_FUZZ=ON -DTICKFAN_SANITIZE=address >/dev/null
fi
mkdir -p "$FUZZ_DIR"
status=0
for t in "${TARGETS[@]}"; do
  if [[ ! -d "tests/fuzz/corpus/$t" ]]; then
    echo "fuzz: no target '$t' (tests/fuzz/corpus/$t is missing)" >&2
    exit 2
  fi
  cmake --build "$BUILD_DIR" -j"$(nproc)" --target "fuzz_$t" >/dev/null
  mkdir -p "$FUZZ_DIR/$t"
  cp -n "tests/fuzz/corpus/$t"/* "$FUZZ_DIR/$t/"
  log="$FUZZ_DIR/$t.log"
  echo "fuzz: $t for ${SECONDS_PER_TARGET}s (log: $log)"
  # -rss_limit_mb: a leak or a runaway allocation is a finding too; -max_len:
  # room for requests up to the HTTP header limits (8 KiB) and a few batches.
  # The target runs in the foreground as this subshell (exec), whose pid
  # names its files in /dev/shm (tickfan-fuzz-<target>-<pid>...).
  if (echo "$BASHPID" >"$FUZZ_DIR/$t.pid" && exec "$BUILD_DIR/tests/fuzz/fuzz_$t" "$FUZZ_DIR/$t" \
      -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -timeout=10 -max_len="${MAX_LEN:-16384}" \
      -print_final_stats=1 -artifact_prefix="$FUZZ_DIR/$t-") >"$log" 2>&1; then
    grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 | sed "s/^/fuzz: $t: /"
  else
    status=1
    echo "fuzz: $t FAILED — see $log and $FUZZ_DIR/$t-*" >&2
    grep -E 'fuzz property failed|ERROR: |SUMMARY' "$log" | head -5 >&2
  fi
  pid=$(<"$FUZZ_DIR/$t.pid")
  for f in "/dev/shm/tickfan-fuzz-$t-$pid" "/dev/shm/tickfan-fuzz-$t-$pid".* "/dev/shm/tickfan-fuzz-$t-$pid"-*; do
    if [[ -e $f ]]; then
      status=1
      echo "fuzz: $t left $f behind (a bug in tests/fuzz: its name should be gone); removed" >&2
      rm -f -- "$f"
    fi
  done
done
exit $status
