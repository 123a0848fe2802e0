#!/usr/bin/env bash
# killed_leaves_no_store.sh — a fuzz target killed in the middle of a run
# leaves no file in /dev/shm. libFuzzer ends a run on a crash, a timeout or
# -rss_limit_mb with _Exit (no destructors, no atexit), and SIGKILL runs
# nothing at all, so no file may keep its name while the target runs past
# the moment it was opened (fuzz_store.h).
#   killed_leaves_no_store.sh FUZZ_BINARY SEED_INPUT NAME [MODE]
# MODE says where the target is killed:
#   mapped   (default) between two inputs, after checking it has its store
#            mapped (http, batch, ticks: one store for the whole run).
#   between  between two inputs, with nothing checked first (store,
#            recording: nothing of theirs stays open from one input to the
#            next).
#   midway   in the middle of SEED_INPUT, where its file is open by the code
#            under test: the target kills itself there when
#            TICKFAN_FUZZ_KILL_MIDWAY is set (store, recording).
# Between inputs: the replay driver (replay_main.cpp) runs SEED_INPUT, then
# opens the next input, a FIFO; that open blocks until this script opens the
# FIFO for writing, so once ours returns the target is between two inputs.
# Afterwards no /dev/shm/tickfan-fuzz-NAME-<pid> may exist, nor any name
# starting with it and '.' or '-'.
set -euo pipefail
bin=$1 seed=$2 name=$3 mode=${4:-mapped}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
base=/dev/shm/tickfan-fuzz-$name
pid=
fail() {
  echo "killed_leaves_no_store: $*" >&2
  cat "$dir/out" >&2
  if [[ -n $pid ]]; then rm -f -- "$base-$pid" "$base-$pid".* "$base-$pid"-*; fi
  exit 1
}

status=0
case $mode in
  mapped | between)
    mkfifo "$dir/next"
    "$bin" "$seed" "$dir/next" >"$dir/out" 2>&1 &
    pid=$!
    # timeout: a target that died before opening the FIFO would block the
    # open for ever. The writing end stays open until the kill, so the
    # target never sees an end of file and cannot finish (and clean up) on
    # its own.
    timeout 30 bash -c 'exec 3>"$1"
      if [[ $4 == mapped ]]; then
        grep -q "tickfan-fuzz-$3-$2" "/proc/$2/maps" || { echo "the store is not mapped"; exit 3; }
      fi
      kill -KILL "$2"' _ "$dir/next" "$pid" "$name" "$mode" || status=$?
    wait "$pid" 2>/dev/null || true
    if ((status != 0)); then
      kill -KILL "$pid" 2>/dev/null || true
      fail "fuzz_$name did not reach its second input (status $status)"
    fi
    ;;
  midway)
    # No timeout wrapper (the pid must be the target's): the target either
    # kills itself at the hook or finishes the seed and exits.
    TICKFAN_FUZZ_KILL_MIDWAY=1 "$bin" "$seed" >"$dir/out" 2>&1 &
    pid=$!
    wait "$pid" || status=$?
    ((status == 128 + 9)) || fail "fuzz_$name did not kill itself midway (exit status $status)"
    ;;
  *)
    echo "killed_leaves_no_store: unknown mode '$mode'" >&2
    exit 2
    ;;
esac

shopt -s nullglob
left=("$base-$pid".* "$base-$pid"-*)
if [[ -e $base-$pid ]]; then left+=("$base-$pid"); fi
if ((${#left[@]})); then fail "${left[*]} left behind by fuzz_$name killed $mode"; fi
echo "killed_leaves_no_store: fuzz_$name killed $mode, nothing left in /dev/shm"
