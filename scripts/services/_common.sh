# Shared helpers for scripts/services/*.sh. Sourced, not executed.
# shellcheck shell=bash

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# FACESTREAM_VAR holds runtime state (data dirs, logs, pid files); relative paths
# are taken from the repository root, whatever the caller's working directory.
VAR_DIR="${FACESTREAM_VAR:-var}"
case "$VAR_DIR" in
  /*) ;;
  *) VAR_DIR="$REPO_ROOT/$VAR_DIR" ;;
esac

log() { printf '[%s] %s\n' "$SERVICE_NAME" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$SERVICE_NAME" "$*" >&2; exit 1; }

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# pid_alive PIDFILE [CMDLINE_PATTERN]: true when the pid in the file runs (and its
# command line contains the pattern, to survive pid reuse).
pid_alive() {
  local pidfile="$1" pattern="${2:-}" pid
  [[ -s "$pidfile" ]] || return 1
  pid="$(<"$pidfile")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -n "$pattern" ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern" || return 1
  fi
}

now_ms() { date +%s%3N; }

# as_root CMD...: run a command as root (directly, or through sudo).
as_root() {
  if [[ $EUID -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root to run: $*"
  fi
}
