#!/usr/bin/env bash
# run-local.sh — the README's first command: the whole system on this machine.
# Not yet: the daemons are being built (issues 4-7).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "run-local: not yet — apiserver, apiclient and the HTTP frontend are not built yet." >&2
exit 1
