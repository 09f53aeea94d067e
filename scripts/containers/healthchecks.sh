#!/usr/bin/env bash
# Run the healthchecks of running podman containers every few seconds, where no systemd runs
# them (podman schedules them with systemd timers). Started and stopped by compose.sh.
set -uo pipefail
INTERVAL="${FACESTREAM_HEALTHCHECK_INTERVAL_S:-3}"
while :; do
  # A container with a healthcheck shows "(starting)", "(healthy)" or "(unhealthy)" in Status.
  # All at once: a slow check (a JVM on a busy host) must not hold up the others.
  while read -r id status; do
    [[ "$status" == *"healthy)"* || "$status" == *"(starting)"* ]] || continue
    timeout 30 podman healthcheck run "$id" >/dev/null 2>&1 &
  done < <(podman ps --format '{{.ID}} {{.Status}}' 2>/dev/null)
  wait
  sleep "$INTERVAL"
done
