#!/usr/bin/env bash
# install-systemd.sh — installs tickfan on this machine as systemd services:
# binaries into /usr/local/bin, unit files into /etc/systemd/system, example
# configs into /etc/tickfan (never overwriting an existing config), the
# service users, and the docs. It does not start anything: edit the configs,
# then `systemctl enable --now ...` (docs/operations.md).
#
# Usage (as root, after scripts/setup.sh built ./build):
#   scripts/install-systemd.sh --role front       # apiclient + HTTP frontend (a front box)
#   scripts/install-systemd.sh --role apiserver   # the ingest box
#   scripts/install-systemd.sh --role all         # both (a single-box install)
#   DESTDIR=/tmp/stage scripts/install-systemd.sh --role all   # stage only, no users
# Environment: BUILD_DIR (default build).
set -euo pipefail
cd "$(dirname "$0")/.."

ROLE=""
while (($#)); do
  case "$1" in
    --role) ROLE=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-systemd: unknown option '$1'" >&2; exit 2 ;;
  esac
done
[[ "$ROLE" =~ ^(front|apiserver|all)$ ]] || { echo "install-systemd: --role front|apiserver|all is required" >&2; exit 2; }
BUILD_DIR=${BUILD_DIR:-build}
DESTDIR=${DESTDIR:-}
if [[ -z "$DESTDIR" && $(id -u) -ne 0 ]]; then echo "install-systemd: run as root (or set DESTDIR to stage)" >&2; exit 1; fi

units=() bins=(shm/tickfan-store tools/tickfan-record tools/tickfan-replay) configs=()
if [[ $ROLE == apiserver || $ROLE == all ]]; then
  units+=(tickfan-apiserver.service) bins+=(apiserver/tickfan-apiserver) configs+=(apiserver.toml)
fi
if [[ $ROLE == front || $ROLE == all ]]; then
  units+=(tickfan-apiclient.service tickfan-http.service)
  bins+=(apiclient/writer/tickfan-apiclient apiclient/http/tickfan-http)
  configs+=(apiclient.toml http.toml)
fi

for b in "${bins[@]}"; do
  [[ -x "$BUILD_DIR/$b" ]] || { echo "install-systemd: $BUILD_DIR/$b is missing: run scripts/setup.sh first" >&2; exit 1; }
done

install -d "$DESTDIR/usr/local/bin" "$DESTDIR/etc/systemd/system" "$DESTDIR/etc/tickfan" \
  "$DESTDIR/usr/local/share/doc/tickfan"
for b in "${bins[@]}"; do install -m 0755 "$BUILD_DIR/$b" "$DESTDIR/usr/local/bin/"; done
for u in "${units[@]}"; do install -m 0644 "scripts/systemd/$u" "$DESTDIR/etc/systemd/system/"; done
for c in "${configs[@]}"; do
  if [[ -e "$DESTDIR/etc/tickfan/$c" ]]; then
    echo "install-systemd: keeping existing /etc/tickfan/$c (new example: /etc/tickfan/$c.example)"
    install -m 0640 "scripts/config/$c" "$DESTDIR/etc/tickfan/$c.example"
  else
    install -m 0640 "scripts/config/$c" "$DESTDIR/etc/tickfan/"
  fi
done
install -m 0644 docs/*.md "$DESTDIR/usr/local/share/doc/tickfan/"

if [[ -z "$DESTDIR" ]]; then
  # Writer user owns the store; the HTTP user reads it through group tickfan.
  if [[ $ROLE != apiserver ]]; then
    getent group tickfan >/dev/null || groupadd --system tickfan
    id tickfan >/dev/null 2>&1 || useradd --system --gid tickfan --home-dir /nonexistent --shell /usr/sbin/nologin tickfan
    getent group tickfan-http >/dev/null || groupadd --system tickfan-http
    id tickfan-http >/dev/null 2>&1 ||
      useradd --system --gid tickfan-http --groups tickfan --home-dir /nonexistent --shell /usr/sbin/nologin tickfan-http
    chgrp tickfan /etc/tickfan/apiclient.toml /etc/tickfan/http.toml
  fi
  # The configs may hold NATS credentials: root and the services' groups only.
  chmod 0750 /etc/tickfan
  systemctl daemon-reload
fi
echo "install-systemd: installed ${units[*]}; edit /etc/tickfan/*.toml, then: systemctl enable --now ${units[*]}"
