#!/usr/bin/env bash
# Stop the single-node SLURM cluster of scripts/slurm/start.sh: exactly the daemons whose pid files
# it wrote (slurmd, slurmctld, munged), then remove the /etc/slurm/slurm.conf link if it points to
# its config. The state directory (logs) stays for inspection; pass --purge to delete it.
# Idempotent: nothing running is fine.
set -euo pipefail

STATE=${ICRDESIGN_SLURM_DIR:-${TMPDIR:-/tmp}/icrdesign-slurm}
DEFAULT_CONF=/etc/slurm/slurm.conf

# Only a live process whose executable is the expected daemon: a stale pid file from before a
# reboot may name an unrelated process now.
stop_daemon() {
  local name=$1 pidfile=$STATE/$1.pid pid
  [ -s "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]; then
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$pidfile"
}

stop_daemon slurmd
stop_daemon slurmctld
stop_daemon munged

if [ -L "$DEFAULT_CONF" ] && [ "$(readlink "$DEFAULT_CONF")" = "$STATE/slurm.conf" ]; then
  rm -f "$DEFAULT_CONF"
fi
if [ "${1:-}" = "--purge" ]; then
  rm -rf "$STATE"
fi
echo "slurm/stop: stopped ($STATE)"
