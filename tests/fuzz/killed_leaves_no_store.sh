#!/usr/bin/env bash
# killed_leaves_no_store.sh — a fuzz target killed in the middle of a run
# leaves no store file in /dev/shm. libFuzzer ends a run on a crash, a
# timeout or -rss_limit_mb with _Exit (no destructors, no atexit), and
# SIGKILL runs nothing at all, so the file must be gone while the target is
# still running (http_fuzz.cpp's Env unlinks it once the store is mapped).
#   killed_leaves_no_store.sh FUZZ_BINARY SEED_INPUT NAME
# The replay driver (replay_main.cpp) runs SEED_INPUT, which builds the
# target's store, then opens the next input, a FIFO: that open blocks until
# this script opens the FIFO for writing, so once ours returns the target is
# between two inputs with its store mapped. It is checked to have the store
# mapped, killed with SIGKILL there, and /dev/shm/tickfan-fuzz-NAME-<pid>
# must not exist.
set -euo pipefail
bin=$1 seed=$2 name=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkfifo "$dir/next"
"$bin" "$seed" "$dir/next" >"$dir/out" 2>&1 &
pid=$!
file=/dev/shm/tickfan-fuzz-$name-$pid
# timeout: a target that died before opening the FIFO would block the open
# for ever. The writing end stays open until the kill, so the target never
# sees an end of file and cannot finish (and clean up) on its own.
status=0
timeout 30 bash -c 'exec 3>"$1"
  grep -q "tickfan-fuzz-$3-$2" "/proc/$2/maps" || { echo "the store is not mapped"; exit 3; }
  kill -KILL "$2"' _ "$dir/next" "$pid" "$name" || status=$?
wait "$pid" 2>/dev/null || true
if ((status != 0)); then
  echo "killed_leaves_no_store: the target did not reach its second input (status $status)" >&2
  cat "$dir/out" >&2
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$file"
  exit 1
fi
if [[ -e $file ]]; then
  echo "killed_leaves_no_store: $file left behind by a killed fuzz_$name" >&2
  rm -f "$file"
  exit 1
fi
echo "killed_leaves_no_store: fuzz_$name killed mid-run, $file gone"
