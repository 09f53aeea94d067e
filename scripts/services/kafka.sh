#!/usr/bin/env bash
# Local single-node Apache Kafka broker (KRaft, loopback) for tests and CI.
#
#   scripts/services/kafka.sh install   # fetch the jars into .cache/kafka/libs (once)
#   scripts/services/kafka.sh start     # format storage once, start, wait until up
#   scripts/services/kafka.sh stop      # SIGTERM, then SIGKILL after a timeout
#   scripts/services/kafka.sh status    # exit 0 when up
#
# Environment (all optional):
#   FACESTREAM_KAFKA_PORT             broker listener port        (19092)
#   FACESTREAM_KAFKA_CONTROLLER_PORT  KRaft controller port       (19093)
#   FACESTREAM_VAR                    state dir, data in $VAR/kafka (var)
#   FACESTREAM_KAFKA_LIBS             jar cache                   (.cache/kafka/libs)
#   FACESTREAM_KAFKA_HEAP_OPTS        JVM heap                    (-Xms256m -Xmx1g)
#   FACESTREAM_KAFKA_START_TIMEOUT    seconds to wait for startup (90)
#   FACESTREAM_KAFKA_STOP_TIMEOUT     seconds before SIGKILL      (30)
# Cluster mode (set by scripts/services/kafka-cluster.sh, one call per node):
#   FACESTREAM_KAFKA_NODE_ID          node.id                     (1)
#   FACESTREAM_KAFKA_VOTERS           static controller quorum, id@host:port,... (unset: single node)
#   FACESTREAM_KAFKA_DIR              this node's state dir       ($VAR/kafka)
#   FACESTREAM_KAFKA_CLUSTER_ID       cluster id shared by the nodes (generated once when unset)
#   FACESTREAM_KAFKA_TEMPLATE         server.properties template  (scripts/kafka/server.properties.template)
#
# The jars come from Maven Central via scripts/kafka/pom.xml (kafka_2.13 plus a log4j2
# binding) and are kept between runs; ~/.m2 caches them as well. Changing the POM
# invalidates the cache (its sha256 is stored next to the jars).
set -euo pipefail
SERVICE_NAME=kafka
# shellcheck source=scripts/services/_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

KAFKA_PORT="${FACESTREAM_KAFKA_PORT:-19092}"
CONTROLLER_PORT="${FACESTREAM_KAFKA_CONTROLLER_PORT:-19093}"
LIBS_DIR="${FACESTREAM_KAFKA_LIBS:-$REPO_ROOT/.cache/kafka/libs}"
HEAP_OPTS="${FACESTREAM_KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
START_TIMEOUT="${FACESTREAM_KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${FACESTREAM_KAFKA_STOP_TIMEOUT:-30}"

POM="$REPO_ROOT/scripts/kafka/pom.xml"
TEMPLATE="${FACESTREAM_KAFKA_TEMPLATE:-$REPO_ROOT/scripts/kafka/server.properties.template}"
LOG4J_CONF="$REPO_ROOT/scripts/kafka/log4j2.properties"
NODE_ID="${FACESTREAM_KAFKA_NODE_ID:-1}"
VOTERS="${FACESTREAM_KAFKA_VOTERS:-}"
KAFKA_DIR="${FACESTREAM_KAFKA_DIR:-$VAR_DIR/kafka}"
DATA_DIR="$KAFKA_DIR/data"
CONFIG="$KAFKA_DIR/server.properties"
PIDFILE="$KAFKA_DIR/kafka.pid"
LOGFILE="$KAFKA_DIR/kafka.log"
CLUSTER_ID_FILE="$KAFKA_DIR/cluster.id"
MAIN_CLASS=kafka.Kafka

pom_hash() { sha256sum "$POM" | cut -d' ' -f1; }

libs_ready() {
  [[ -f "$LIBS_DIR/.pom.sha256" ]] && [[ "$(<"$LIBS_DIR/.pom.sha256")" == "$(pom_hash)" ]]
}

cmd_install() {
  if libs_ready; then
    log "jars cached in $LIBS_DIR ($(find "$LIBS_DIR" -name '*.jar' | wc -l) jars)"
    return 0
  fi
  command -v java >/dev/null || die "java not found (install a JDK/JRE 17+, e.g. apt-get install openjdk-17-jre-headless)"
  command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
  local tmp="$LIBS_DIR.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$(dirname "$LIBS_DIR")"
  log "resolving Kafka jars with Maven into $LIBS_DIR"
  local mvn_log="$tmp.mvn.log"
  if ! mvn -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
      -DoutputDirectory="$tmp" -DincludeScope=runtime >"$mvn_log" 2>&1; then
    tail -n 40 "$mvn_log" >&2
    rm -rf "$tmp" "$mvn_log"
    die "mvn dependency:copy-dependencies failed"
  fi
  rm -f "$mvn_log"
  ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || { rm -rf "$tmp"; die "kafka_2.13 jar missing after copy-dependencies"; }
  pom_hash >"$tmp/.pom.sha256"
  rm -rf "$LIBS_DIR"
  mv "$tmp" "$LIBS_DIR"
  log "installed $(find "$LIBS_DIR" -name '*.jar' | wc -l) jars"
}

java_cp() { printf '%s/*' "$LIBS_DIR"; }

render_config() {
  mkdir -p "$DATA_DIR"
  sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
      -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" \
      -e "s|@DATA_DIR@|$DATA_DIR|g" \
      -e "s|@NODE_ID@|$NODE_ID|g" \
      -e "s|@VOTERS@|$VOTERS|g" \
      "$TEMPLATE" >"$CONFIG.tmp"
  mv "$CONFIG.tmp" "$CONFIG"
}

format_storage() {
  if [[ -f "$DATA_DIR/meta.properties" ]]; then
    return 0
  fi
  local cluster_id
  if [[ -n "${FACESTREAM_KAFKA_CLUSTER_ID:-}" ]]; then
    cluster_id="$FACESTREAM_KAFKA_CLUSTER_ID"
  elif [[ -s "$CLUSTER_ID_FILE" ]]; then
    cluster_id="$(<"$CLUSTER_ID_FILE")"
  else
    cluster_id="$(java -cp "$(java_cp)" -Dlog4j2.configurationFile="$LOG4J_CONF" \
      kafka.tools.StorageTool random-uuid | tail -n1)"
    [[ "$cluster_id" =~ ^[A-Za-z0-9_-]{22}$ ]] || die "StorageTool random-uuid returned '$cluster_id'"
    printf '%s\n' "$cluster_id" >"$CLUSTER_ID_FILE"
  fi
  log "formatting storage in $DATA_DIR (cluster id $cluster_id, node $NODE_ID)"
  # One node: a standalone quorum. Cluster mode: the static voters of the config.
  local quorum=(--standalone)
  [[ -n "$VOTERS" ]] && quorum=()
  java -cp "$(java_cp)" -Dlog4j2.configurationFile="$LOG4J_CONF" \
    kafka.tools.StorageTool format "${quorum[@]}" -t "$cluster_id" -c "$CONFIG" >&2 \
    || die "StorageTool format failed"
}

is_up() {
  pid_alive "$PIDFILE" "$MAIN_CLASS" && port_open 127.0.0.1 "$KAFKA_PORT"
}

cmd_status() {
  if is_up; then
    echo "kafka: running (pid $(<"$PIDFILE"), bootstrap 127.0.0.1:$KAFKA_PORT)"
    return 0
  fi
  if pid_alive "$PIDFILE" "$MAIN_CLASS"; then
    echo "kafka: process $(<"$PIDFILE") alive but 127.0.0.1:$KAFKA_PORT not accepting connections"
  else
    echo "kafka: not running"
  fi
  return 1
}

cmd_start() {
  if is_up; then
    log "already running (pid $(<"$PIDFILE"), bootstrap 127.0.0.1:$KAFKA_PORT)"
    return 0
  fi
  if pid_alive "$PIDFILE" "$MAIN_CLASS"; then
    die "process $(<"$PIDFILE") is alive but not serving on $KAFKA_PORT; run '$0 stop' first"
  fi
  for port in "$KAFKA_PORT" "$CONTROLLER_PORT"; do
    port_open 127.0.0.1 "$port" && die "port 127.0.0.1:$port is taken by another process"
  done
  local t0; t0="$(now_ms)"
  libs_ready || cmd_install
  mkdir -p "$KAFKA_DIR"
  render_config
  format_storage

  [[ -f "$LOGFILE" ]] && mv -f "$LOGFILE" "$LOGFILE.1"
  log "starting broker on 127.0.0.1:$KAFKA_PORT (controller $CONTROLLER_PORT), log $LOGFILE"
  # setsid: the broker must outlive the shell or pytest session that started it
  # and must not receive that terminal's Ctrl-C.
  # shellcheck disable=SC2086
  setsid nohup java $HEAP_OPTS -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
    -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$LOG4J_CONF" \
    -cp "$(java_cp)" "$MAIN_CLASS" "$CONFIG" \
    </dev/null >"$LOGFILE" 2>&1 &
  echo $! >"$PIDFILE"

  local deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    if grep -q "Kafka Server started" "$LOGFILE" 2>/dev/null && port_open 127.0.0.1 "$KAFKA_PORT"; then
      break
    fi
    if ! pid_alive "$PIDFILE"; then
      log "broker exited during startup; last lines of $LOGFILE:"
      tail -n 60 "$LOGFILE" >&2 || true
      rm -f "$PIDFILE"
      die "Kafka failed to start"
    fi
    if ((SECONDS >= deadline)); then
      log "no 'Kafka Server started' after ${START_TIMEOUT}s; last lines of $LOGFILE:"
      tail -n 60 "$LOGFILE" >&2 || true
      cmd_stop || true
      die "Kafka did not start within ${START_TIMEOUT}s"
    fi
    sleep 0.2
  done
  log "up in $(( $(now_ms) - t0 )) ms (pid $(<"$PIDFILE"), bootstrap 127.0.0.1:$KAFKA_PORT)"
}

cmd_stop() {
  if ! pid_alive "$PIDFILE" "$MAIN_CLASS"; then
    rm -f "$PIDFILE"
    log "not running"
    return 0
  fi
  local pid; pid="$(<"$PIDFILE")"
  log "stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      log "still alive after ${STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  rm -f "$PIDFILE"
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
