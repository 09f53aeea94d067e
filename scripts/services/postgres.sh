#!/usr/bin/env bash
# Local PostgreSQL cluster (loopback) for tests and CI, from Debian's postgresql binaries.
#
#   scripts/services/postgres.sh install   # apt-get install postgresql if the binaries are missing
#   scripts/services/postgres.sh start     # initdb once, start, create role + database, wait
#   scripts/services/postgres.sh stop      # pg_ctl stop -m fast
#   scripts/services/postgres.sh status    # exit 0 when up
#
# Environment (all optional):
#   FACESTREAM_PG_PORT      TCP port on 127.0.0.1           (55432)
#   FACESTREAM_VAR          state dir, cluster in $VAR/postgres (var)
#   FACESTREAM_PG_DATA      cluster directory, overrides the above
#   FACESTREAM_PG_BIN       PostgreSQL bin dir              (newest /usr/lib/postgresql/*/bin)
#
# Where the cluster lives: ${FACESTREAM_VAR:-var}/postgres under the repository root.
# PostgreSQL refuses to run as root, so when this script runs as root the cluster is
# owned by and run as the `postgres` OS user (runuser). That user must be able to
# traverse every directory above the data dir; when it cannot (e.g. a checkout under a
# 0700 home directory) the cluster goes to /tmp/facestream-pg-<port> instead and the
# script says so. Run as a normal user, the cluster is simply owned by that user.
#
# It is a throwaway test cluster: trust authentication on 127.0.0.1 only (no other
# host, no ::1), fsync off, Unix socket in a private directory under /tmp. The role
# and database `facestream` (password `facestream`) are created idempotently:
#   postgresql+asyncpg://facestream:facestream@127.0.0.1:55432/facestream
set -euo pipefail
SERVICE_NAME=postgres
# shellcheck source=scripts/services/_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

PG_PORT="${FACESTREAM_PG_PORT:-55432}"
PG_USER=facestream
PG_PASSWORD=facestream
PG_DB=facestream
START_TIMEOUT="${FACESTREAM_PG_START_TIMEOUT:-60}"
SOCK_DIR="/tmp/facestream-pg-sock-$PG_PORT"
FALLBACK_REASON=""

find_bin() {
  if [[ -n "${FACESTREAM_PG_BIN:-}" ]]; then
    echo "$FACESTREAM_PG_BIN"; return 0
  fi
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
  [[ -n "$d" && -x "$d/pg_ctl" ]] && echo "$d"
}

# Run a command as the cluster owner.
if [[ $EUID -eq 0 ]]; then
  OWNER=postgres
  # cd /: the caller's working directory may be closed to the postgres user.
  as_owner() { (cd / && runuser -u postgres -- "$@"); }
else
  OWNER="$(id -un)"
  as_owner() { "$@"; }
fi

ensure_os_user() {
  [[ $EUID -eq 0 ]] || return 0
  id postgres >/dev/null 2>&1 && return 0
  log "creating the postgres OS user"
  useradd --system --home-dir /var/lib/postgresql --shell /bin/bash --user-group postgres
}

choose_data_dir() {
  if [[ -n "${FACESTREAM_PG_DATA:-}" ]]; then
    DATA_DIR="$FACESTREAM_PG_DATA"; return 0
  fi
  DATA_DIR="$VAR_DIR/postgres"
  local fallback="/tmp/facestream-pg-$PG_PORT"
  if [[ -d "$fallback" && ! -d "$DATA_DIR" ]]; then
    DATA_DIR="$fallback"; return 0
  fi
  if [[ $EUID -eq 0 ]] && id postgres >/dev/null 2>&1; then
    mkdir -p "$VAR_DIR"
    if ! runuser -u postgres -- test -x "$VAR_DIR"; then
      DATA_DIR="$fallback"
      FALLBACK_REASON="the postgres user cannot traverse to $VAR_DIR"
    fi
  fi
}

cmd_install() {
  if [[ -n "$(find_bin)" ]]; then
    log "binaries found in $(find_bin)"
  else
    log "PostgreSQL binaries missing: apt-get install postgresql"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql
    [[ -n "$(find_bin)" ]] || die "postgresql installed but no /usr/lib/postgresql/*/bin/pg_ctl"
  fi
  ensure_os_user
}

is_up() {
  [[ -n "${BIN:-}" ]] || return 1
  [[ -f "$DATA_DIR/postmaster.pid" ]] || return 1
  as_owner "$BIN/pg_ctl" status -D "$DATA_DIR" >/dev/null 2>&1 || return 1
  "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2
}

init_cluster() {
  if [[ -f "$DATA_DIR/PG_VERSION" ]]; then
    return 0
  fi
  log "initdb in $DATA_DIR (owner $OWNER)"
  mkdir -p "$DATA_DIR"
  chown "$OWNER:" "$DATA_DIR"
  chmod 0700 "$DATA_DIR"
  as_owner "$BIN/initdb" -D "$DATA_DIR" -U postgres -E UTF8 --no-locale \
    --auth-local=trust --auth-host=reject >/dev/null \
    || die "initdb failed"
  # Trust on 127.0.0.1 only; the Unix socket is private (0700 directory).
  cat >"$DATA_DIR/pg_hba.conf" <<HBA
# facestream test cluster: written by scripts/services/postgres.sh
local   all   all                 trust
host    all   all   127.0.0.1/32  trust
HBA
  echo "include_if_exists = 'facestream.conf'" >>"$DATA_DIR/postgresql.conf"
  chown "$OWNER:" "$DATA_DIR/pg_hba.conf"
}

write_runtime_conf() {
  cat >"$DATA_DIR/facestream.conf" <<CONF
# written by scripts/services/postgres.sh on every start
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$SOCK_DIR'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
log_min_messages = warning
CONF
  chown "$OWNER:" "$DATA_DIR/facestream.conf"
}

psql_admin() {
  as_owner "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK_DIR" -p "$PG_PORT" -U postgres -d postgres "$@"
}

ensure_role_and_db() {
  psql_admin >/dev/null <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
  END IF;
END
\$\$;
SELECT 'CREATE DATABASE $PG_DB OWNER $PG_USER'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_DB') \gexec
SQL
}

cmd_status() {
  BIN="$(find_bin || true)"
  choose_data_dir
  if is_up; then
    echo "postgres: running (data $DATA_DIR, 127.0.0.1:$PG_PORT)"
    return 0
  fi
  echo "postgres: not running (data $DATA_DIR, port $PG_PORT)"
  return 1
}

cmd_start() {
  local t0; t0="$(now_ms)"
  BIN="$(find_bin || true)"
  [[ -n "$BIN" ]] || cmd_install
  BIN="$(find_bin)"
  ensure_os_user
  choose_data_dir
  if is_up; then
    ensure_role_and_db
    log "already running (data $DATA_DIR, 127.0.0.1:$PG_PORT)"
    return 0
  fi
  if port_open 127.0.0.1 "$PG_PORT"; then
    die "port 127.0.0.1:$PG_PORT is taken by another process"
  fi
  if [[ -n "$FALLBACK_REASON" ]]; then log "$FALLBACK_REASON; cluster in $DATA_DIR instead"; fi
  init_cluster
  write_runtime_conf
  mkdir -p "$SOCK_DIR"
  chown "$OWNER:" "$SOCK_DIR"
  chmod 0700 "$SOCK_DIR"
  local logfile="$DATA_DIR/server.log"
  log "starting on 127.0.0.1:$PG_PORT (data $DATA_DIR, log $logfile)"
  # setsid: the server must outlive the caller and ignore its terminal's Ctrl-C.
  if ! as_owner setsid "$BIN/pg_ctl" start -D "$DATA_DIR" -l "$logfile" -w -t "$START_TIMEOUT" -s; then
    tail -n 40 "$logfile" >&2 || true
    die "pg_ctl start failed"
  fi
  local deadline=$((SECONDS + START_TIMEOUT))
  until "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2; do
    ((SECONDS < deadline)) || { tail -n 40 "$logfile" >&2 || true; die "not ready after ${START_TIMEOUT}s"; }
    sleep 0.2
  done
  ensure_role_and_db
  log "up in $(( $(now_ms) - t0 )) ms (postgresql+asyncpg://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB)"
}

cmd_stop() {
  BIN="$(find_bin || true)"
  choose_data_dir
  if [[ -z "$BIN" || ! -f "$DATA_DIR/postmaster.pid" ]] \
      || ! as_owner "$BIN/pg_ctl" status -D "$DATA_DIR" >/dev/null 2>&1; then
    log "not running"
    return 0
  fi
  log "stopping (data $DATA_DIR)"
  as_owner "$BIN/pg_ctl" stop -D "$DATA_DIR" -m fast -w -t 60 -s || die "pg_ctl stop failed"
  log "stopped"
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  restart) cmd_stop; cmd_start ;;
  *) echo "usage: $0 {install|start|stop|status|restart}" >&2; exit 2 ;;
esac
