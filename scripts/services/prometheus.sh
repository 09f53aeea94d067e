#!/usr/bin/env bash
# A real Prometheus (Debian's package) scraping the local stack, with facestream's alert rules.
#
#   scripts/services/prometheus.sh install   # apt-get install prometheus when missing
#   scripts/services/prometheus.sh check     # promtool: the alert rules and the rendered config
#   scripts/services/prometheus.sh start     # render the config, check it, start, wait until ready
#   scripts/services/prometheus.sh stop
#   scripts/services/prometheus.sh status
#
# What it scrapes: every local stack on this machine. `facestream stack run` (make run / make
# up) writes var/prometheus/targets-<api port>.json, one target per process (the API's /metrics
# and each worker's, replica's, projector's and eraser's own port); this Prometheus reads them
# all (file_sd). Rules: deploy/prometheus/alerts.yml, the same file the compose profile loads.
#
# Environment (all optional):
#   FACESTREAM_PROMETHEUS_PORT   listen port on 127.0.0.1                  (19090)
#   FACESTREAM_VAR               state dir; data and config in $VAR/prometheus-<port> (var)
#   FACESTREAM_PROMETHEUS_TARGETS  file_sd glob (var/prometheus/targets-*.json under the repo)
set -euo pipefail
SERVICE_NAME=prometheus
# shellcheck source=scripts/services/_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

PORT="${FACESTREAM_PROMETHEUS_PORT:-19090}"
STATE="$VAR_DIR/prometheus-$PORT"
CONFIG="$STATE/prometheus.yml"
PIDFILE="$STATE/prometheus.pid"
LOGFILE="$STATE/prometheus.log"
RULES="$REPO_ROOT/deploy/prometheus/alerts.yml"
TARGETS="${FACESTREAM_PROMETHEUS_TARGETS:-$REPO_ROOT/var/prometheus/targets-*.json}"

cmd_install() {
  command -v prometheus >/dev/null && command -v promtool >/dev/null && return 0
  log "installing Debian's prometheus"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus
}

render() {
  mkdir -p "$STATE"
  cat >"$CONFIG.tmp" <<YML
# written by scripts/services/prometheus.sh on every start
global:
  scrape_interval: 5s
  evaluation_interval: 5s
rule_files:
  - $RULES
scrape_configs:
  # job and service labels come from the target files (facestream-api, -workers, -replicas).
  - job_name: facestream-local
    file_sd_configs:
      - files: ["$TARGETS"]
        refresh_interval: 5s
YML
  mv "$CONFIG.tmp" "$CONFIG"
}

cmd_check() {
  cmd_install
  render
  promtool check rules "$RULES" >&2
  promtool check config "$CONFIG" >&2
}

is_up() { pid_alive "$PIDFILE" prometheus && port_open 127.0.0.1 "$PORT"; }

cmd_start() {
  if is_up; then log "already running on 127.0.0.1:$PORT"; return 0; fi
  port_open 127.0.0.1 "$PORT" && die "port 127.0.0.1:$PORT is taken by another process"
  cmd_check
  setsid nohup prometheus --config.file="$CONFIG" --storage.tsdb.path="$STATE/data" \
    --web.listen-address="127.0.0.1:$PORT" --storage.tsdb.retention.time=1d \
    </dev/null >"$LOGFILE" 2>&1 &
  echo $! >"$PIDFILE"
  local deadline=$((SECONDS + 60))
  until grep -q "Server is ready to receive web requests" "$LOGFILE" 2>/dev/null && port_open 127.0.0.1 "$PORT"; do
    pid_alive "$PIDFILE" || { tail -n 30 "$LOGFILE" >&2; die "prometheus exited"; }
    ((SECONDS < deadline)) || { tail -n 30 "$LOGFILE" >&2; die "not ready after 60s"; }
    sleep 0.3
  done
  log "up on http://127.0.0.1:$PORT (rules $RULES; targets $TARGETS)"
}

cmd_stop() {
  pid_alive "$PIDFILE" prometheus || { rm -f "$PIDFILE"; log "not running"; return 0; }
  local pid; pid="$(<"$PIDFILE")"
  kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  rm -f "$PIDFILE"
  log "stopped"
}

cmd_status() {
  if is_up; then echo "prometheus: running on 127.0.0.1:$PORT"; return 0; fi
  echo "prometheus: not running"; return 1
}

case "${1:-}" in
  install) cmd_install ;;
  check) cmd_check ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 {install|check|start|stop|status}" >&2; exit 2 ;;
esac
