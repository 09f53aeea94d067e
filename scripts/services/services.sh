#!/usr/bin/env bash
# Bring the local test services (Kafka, PostgreSQL) up or down together.
#
#   scripts/services/services.sh install      # jars + PostgreSQL binaries, starts nothing
#   scripts/services/services.sh up           # start what is not running; record what it started
#   scripts/services/services.sh down         # stop only what `up` recorded as started by it
#   scripts/services/services.sh down --all   # stop both, whoever started them
#   scripts/services/services.sh status       # exit 0 when both are up
#   scripts/services/services.sh env          # print the endpoints as shell exports
#
# The record of what `up` started is kept in $FACESTREAM_SERVICES_STATE
# (default ${FACESTREAM_VAR:-var}/services.started), so a CI run that found a broker
# already running leaves it running on the way out.
set -euo pipefail
SERVICE_NAME=services
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/services/_common.sh
source "$HERE/_common.sh"

STATE_FILE="${FACESTREAM_SERVICES_STATE:-$VAR_DIR/services.started}"
SERVICES=(postgres kafka)

cmd_up() {
  mkdir -p "$(dirname "$STATE_FILE")"
  touch "$STATE_FILE"
  local svc t0
  for svc in "${SERVICES[@]}"; do
    if "$HERE/$svc.sh" status >/dev/null 2>&1; then
      log "$svc already running; leaving it to whoever started it"
      continue
    fi
    t0="$(now_ms)"
    "$HERE/$svc.sh" start
    grep -qx "$svc" "$STATE_FILE" || echo "$svc" >>"$STATE_FILE"
    log "$svc started in $(( $(now_ms) - t0 )) ms"
  done
  cmd_env
}

cmd_down() {
  local svc rc=0
  if [[ "${1:-}" == "--all" ]]; then
    for svc in kafka postgres; do "$HERE/$svc.sh" stop || rc=1; done
    rm -f "$STATE_FILE"
    return $rc
  fi
  if [[ ! -s "$STATE_FILE" ]]; then
    log "nothing recorded as started by 'up' ($STATE_FILE); nothing to stop"
    return 0
  fi
  # Stop in reverse order of start.
  for svc in $(tac "$STATE_FILE"); do
    "$HERE/$svc.sh" stop || rc=1
  done
  rm -f "$STATE_FILE"
  return $rc
}

cmd_status() {
  local svc rc=0
  for svc in "${SERVICES[@]}"; do "$HERE/$svc.sh" status || rc=1; done
  return $rc
}

cmd_env() {
  echo "export FACESTREAM_KAFKA_BOOTSTRAP=127.0.0.1:${FACESTREAM_KAFKA_PORT:-19092}"
  echo "export FACESTREAM_DATABASE_URL=postgresql+asyncpg://facestream:facestream@127.0.0.1:${FACESTREAM_PG_PORT:-55432}/facestream"
}

cmd_install() {
  "$HERE/postgres.sh" install
  "$HERE/kafka.sh" install
}

case "${1:-}" in
  install) cmd_install ;;
  up) cmd_up ;;
  down) shift; cmd_down "$@" ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: $0 {install|up|down [--all]|status|env}" >&2; exit 2 ;;
esac
