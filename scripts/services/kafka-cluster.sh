#!/usr/bin/env bash
# A three-node Apache Kafka cluster (KRaft, every node broker + controller) on loopback, for
# the cluster fault tests: topics replicated three times, min.insync.replicas=2.
#
#   scripts/services/kafka-cluster.sh start          # format once, start the three nodes, wait
#   scripts/services/kafka-cluster.sh stop           # stop every node (SIGTERM, then SIGKILL)
#   scripts/services/kafka-cluster.sh status         # exit 0 when all three serve
#   scripts/services/kafka-cluster.sh kill N         # kill -9 node N (1-3): a crash, no goodbye
#   scripts/services/kafka-cluster.sh start-node N   # start node N again (after a kill or stop)
#   scripts/services/kafka-cluster.sh leader         # id of the active controller (quorum leader)
#   scripts/services/kafka-cluster.sh env            # FACESTREAM_KAFKA_BOOTSTRAP for the cluster
#
# Environment (all optional):
#   FACESTREAM_KAFKA_CLUSTER_PORT   first broker port; nodes use PORT, PORT+1, PORT+2 (29092)
#                                   and controllers PORT+100.. (29192..)
#   FACESTREAM_VAR                  state dir; nodes in $VAR/kafka-cluster-PORT/node-N (var)
# Each node is a scripts/services/kafka.sh broker with the cluster template
# (scripts/kafka/cluster.properties.template); this script only sets their ports and ids.
set -euo pipefail
SERVICE_NAME=kafka-cluster
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/services/_common.sh
source "$HERE/_common.sh"

BASE_PORT="${FACESTREAM_KAFKA_CLUSTER_PORT:-29092}"
CLUSTER_DIR="$VAR_DIR/kafka-cluster-$BASE_PORT"
NODES=(1 2 3)

broker_port() { echo $((BASE_PORT + $1 - 1)); }
controller_port() { echo $((BASE_PORT + 100 + $1 - 1)); }

voters() {
  local n out=()
  for n in "${NODES[@]}"; do out+=("$n@127.0.0.1:$(controller_port "$n")"); done
  (IFS=,; echo "${out[*]}")
}

cluster_id() {
  local file="$CLUSTER_DIR/cluster.id"
  if [[ ! -s "$file" ]]; then
    mkdir -p "$CLUSTER_DIR"
    "$HERE/kafka.sh" install >&2
    java -cp "$REPO_ROOT/.cache/kafka/libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1 >"$file"
  fi
  cat "$file"
}

# node N ACTION: scripts/services/kafka.sh ACTION for node N.
node() {
  local n="$1" action="$2"
  [[ " ${NODES[*]} " == *" $n "* ]] || die "no node '$n' (1-3)"
  FACESTREAM_KAFKA_NODE_ID="$n" \
  FACESTREAM_KAFKA_PORT="$(broker_port "$n")" \
  FACESTREAM_KAFKA_CONTROLLER_PORT="$(controller_port "$n")" \
  FACESTREAM_KAFKA_VOTERS="$(voters)" \
  FACESTREAM_KAFKA_CLUSTER_ID="$(cluster_id)" \
  FACESTREAM_KAFKA_DIR="$CLUSTER_DIR/node-$n" \
  FACESTREAM_KAFKA_TEMPLATE="$REPO_ROOT/scripts/kafka/cluster.properties.template" \
  FACESTREAM_KAFKA_HEAP_OPTS="${FACESTREAM_KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}" \
  FACESTREAM_KAFKA_START_TIMEOUT="${FACESTREAM_KAFKA_START_TIMEOUT:-120}" \
    "$HERE/kafka.sh" "$action"
}

cmd_start() {
  "$HERE/kafka.sh" install
  cluster_id >/dev/null
  # All at once: a node's broker waits for a quorum leader, and that needs two voters up.
  local n pids=() rc=0
  for n in "${NODES[@]}"; do node "$n" start & pids+=($!); done
  for n in "${pids[@]}"; do wait "$n" || rc=1; done
  ((rc == 0)) || die "a node failed to start (logs in $CLUSTER_DIR/node-*/kafka.log)"
  log "up: bootstrap $(bootstrap)"
}

cmd_stop() {
  local n rc=0
  for n in "${NODES[@]}"; do node "$n" stop || rc=1; done
  return $rc
}

cmd_status() {
  local n rc=0
  for n in "${NODES[@]}"; do node "$n" status || rc=1; done
  return $rc
}

cmd_kill() {
  local n="$1" pidfile="$CLUSTER_DIR/node-$1/kafka.pid"
  pid_alive "$pidfile" kafka.Kafka || die "node $n is not running"
  kill -KILL "$(<"$pidfile")"
  while pid_alive "$pidfile"; do sleep 0.1; done
  log "node $n killed (SIGKILL)"
}

# The quorum leader as the nodes recorded it: the highest epoch among their quorum-state files.
cmd_leader() {
  local files=("$CLUSTER_DIR"/node-*/data/__cluster_metadata-0/quorum-state)
  [[ -e "${files[0]}" ]] || die "no quorum-state yet"
  python3 - "${files[@]}" <<'PY'
import json, sys
states = [json.load(open(p)) for p in sys.argv[1:]]
best = max(states, key=lambda s: (s.get("leaderEpoch", -1), s.get("leaderId", -1) >= 0))
if best.get("leaderId", -1) < 0:
    sys.exit("no leader elected")
print(best["leaderId"])
PY
}

bootstrap() {
  local n out=()
  for n in "${NODES[@]}"; do out+=("127.0.0.1:$(broker_port "$n")"); done
  (IFS=,; echo "${out[*]}")
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  kill) cmd_kill "${2:?node}" ;;
  start-node) node "${2:?node}" start ;;
  stop-node) node "${2:?node}" stop ;;
  leader) cmd_leader ;;
  env) echo "export FACESTREAM_KAFKA_BOOTSTRAP=$(bootstrap)" ;;
  *) echo "usage: $0 {start|stop|status|kill N|start-node N|stop-node N|leader|env}" >&2; exit 2 ;;
esac
