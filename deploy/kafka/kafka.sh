#!/usr/bin/env bash
# Single-node Apache Kafka 4.1 broker (KRaft combined mode) on loopback, for tests.
#
#   deploy/kafka/kafka.sh fetch              download the jars from Maven Central into .cache/lib
#   deploy/kafka/kafka.sh start              format fresh storage, start the broker, print 127.0.0.1:PORT
#   deploy/kafka/kafka.sh stop               stop the broker and delete .run/ (no-op when not running)
#   deploy/kafka/kafka.sh test -- CMD ...    start, run CMD with KAFKA_BROKERS set, always stop; exit with CMD's status
#
# Environment: KAFKA_PORT (broker port; default: a free one), KAFKA_CONTROLLER_PORT (default: a free one),
# KAFKA_START_TIMEOUT (seconds, default 90), KAFKA_HEAP_OPTS (default "-Xmx512m -Xms256m"), JAVA (default java).
# Everything lives in deploy/kafka/.cache (jars) and deploy/kafka/.run (config, data, logs, pid); both are
# git-ignored. Nothing is installed outside the repository except Maven's ~/.m2 cache.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
POM="$HERE/pom.xml"
CACHE="$HERE/.cache"
LIB="$CACHE/lib"
STAMP="$CACHE/lib.stamp"
RUN="$HERE/.run"
PIDFILE="$RUN/kafka.pid"
JAVA="${JAVA:-java}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

pom_sum() { sha256sum "$POM" | cut -d' ' -f1; }

cmd_fetch() {
  if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$(pom_sum)" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (needed once to fetch the Kafka jars)"
  log "fetching Kafka jars from Maven Central into $LIB ..."
  rm -rf "$LIB" "$STAMP"
  mkdir -p "$CACHE"
  if ! mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
      -DoutputDirectory="$LIB" -DincludeScope=runtime >"$CACHE/fetch.log" 2>&1; then
    cat "$CACHE/fetch.log" >&2
    die "mvn dependency:copy-dependencies failed (see above)"
  fi
  ls "$LIB"/kafka_2.13-*.jar >/dev/null 2>&1 || die "fetch finished but $LIB has no kafka_2.13 jar"
  pom_sum >"$STAMP"
}

# is_running: the pid file names a live kafka.Kafka process (not a recycled pid).
is_running() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  kill -0 "$pid" 2>/dev/null && grep -qa "kafka\.Kafka" "/proc/$pid/cmdline" 2>/dev/null
}

# port_free PORT: nothing listens on 127.0.0.1:PORT.
port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# free_port [EXCLUDE]: a random unused loopback port below the usual ephemeral range
# (so it does not collide with outgoing connections' source ports).
free_port() {
  local p i
  for i in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000))
    [[ "$p" == "${1:-}" ]] && continue
    if port_free "$p"; then echo "$p"; return 0; fi
  done
  die "no free loopback port found"
}

write_config() {
  local port="$1" cport="$2"
  cat >"$RUN/server.properties" <<PROPS
# Written by deploy/kafka/kafka.sh; single-node KRaft (combined broker+controller) for tests.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${cport}
advertised.listeners=PLAINTEXT://127.0.0.1:${port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=127.0.0.1:${cport}
log.dirs=${RUN}/data
metadata.log.dir=${RUN}/metadata
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
log.retention.hours=1
log.segment.bytes=16777216
PROPS

  # log4j2: everything to .run/logs/server.log, nothing to stdout.
  cat >"$RUN/log4j2.properties" <<PROPS
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${RUN}/logs/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = INFO
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.request.additivity = false
PROPS
}

java_cmd() {
  # shellcheck disable=SC2086
  "$JAVA" $HEAP_OPTS -XX:+UseSerialGC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$RUN/log4j2.properties" -Dkafka.logs.dir="$RUN/logs" \
    -cp "$LIB/*" "$@"
}

fail_start() {
  log "$1"
  if [[ -s "$RUN/logs/format.log" ]]; then
    log "---- tail of $RUN/logs/format.log ----"
    tail -n 20 "$RUN/logs/format.log" >&2 || true
  fi
  if [[ -f "$RUN/logs/server.log" ]]; then
    log "---- errors in $RUN/logs/server.log ----"
    grep -E " (ERROR|FATAL) |^Caused by:" "$RUN/logs/server.log" | tail -n 20 >&2 || true
    log "---- tail of $RUN/logs/server.log ----"
    tail -n 25 "$RUN/logs/server.log" >&2 || true
  fi
  if [[ -s "$RUN/logs/stdout.log" ]]; then
    log "---- tail of $RUN/logs/stdout.log ----"
    tail -n 30 "$RUN/logs/stdout.log" >&2 || true
  fi
  cmd_stop_keep_logs
  exit 1
}

cmd_start() {
  if is_running; then
    [[ -f "$RUN/brokers" ]] || die "a broker is running (pid $(cat "$PIDFILE")) but $RUN/brokers is missing; run stop"
    log "already running (pid $(cat "$PIDFILE"))"
    cat "$RUN/brokers"
    return 0
  fi
  cmd_fetch
  command -v "$JAVA" >/dev/null || die "java not found"
  command -v go >/dev/null || die "go not found (needed for the readiness check)"

  local port cport
  if [[ -n "${KAFKA_PORT:-}" ]]; then
    port="$KAFKA_PORT"
    port_free "$port" || die "KAFKA_PORT=$port is already in use"
  else
    port="$(free_port)"
  fi
  cport="${KAFKA_CONTROLLER_PORT:-$(free_port "$port")}"

  rm -rf "$RUN"
  mkdir -p "$RUN/logs" "$RUN/data" "$RUN/metadata"
  write_config "$port" "$cport"

  local cluster_id
  cluster_id="$(java_cmd kafka.tools.StorageTool random-uuid 2>>"$RUN/logs/format.log" | tail -n1)" \
    || fail_start "StorageTool random-uuid failed"
  java_cmd kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$RUN/server.properties" \
    >>"$RUN/logs/format.log" 2>&1 || fail_start "StorageTool format failed"

  # Background without job control: bash makes it ignore SIGINT, so Ctrl-C in the caller
  # reaches the broker only through stop (the test trap). $! is the java pid itself.
  # shellcheck disable=SC2086
  "$JAVA" $HEAP_OPTS -XX:+UseSerialGC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$RUN/log4j2.properties" -Dkafka.logs.dir="$RUN/logs" \
    -cp "$LIB/*" kafka.Kafka "$RUN/server.properties" </dev/null >>"$RUN/logs/stdout.log" 2>&1 &
  echo $! >"$PIDFILE"
  log "started kafka.Kafka (pid $(cat "$PIDFILE")) on 127.0.0.1:$port, controller 127.0.0.1:$cport, cluster $cluster_id"

  # Readiness: a Kafka metadata request must succeed (kafka-go), not just an open port.
  if ! (cd "$ROOT" && go run ./pkg/kafkatest/kafkawait -q -pid "$(cat "$PIDFILE")" -brokers "127.0.0.1:$port" -timeout "${START_TIMEOUT}s") ; then
    fail_start "broker did not become ready (limit ${START_TIMEOUT}s)"
  fi
  is_running || fail_start "broker process exited"
  echo "127.0.0.1:$port" >"$RUN/brokers"
  echo "127.0.0.1:$port"
}

# Stop the broker if running; keep $RUN (used on failed start so logs can be read).
cmd_stop_keep_logs() {
  [[ -f "$PIDFILE" ]] || return 0
  local pid i
  pid="$(cat "$PIDFILE")"
  if is_running; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 150); do          # up to 15 s for a clean shutdown
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "broker pid $pid ignored TERM for 15s; sending KILL"
      kill -KILL "$pid" 2>/dev/null || true
      for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  fi
  rm -f "$PIDFILE"
}

cmd_stop() {
  cmd_stop_keep_logs
  rm -rf "$RUN"
}

cmd_test() {
  [[ "${1:-}" == "--" ]] && shift
  [[ $# -gt 0 ]] || die "usage: kafka.sh test -- CMD [ARGS...]"
  # test owns the broker it stops: never adopt (and then kill) one started elsewhere.
  is_running && die "a broker is already running (pid $(cat "$PIDFILE"), $(cat "$RUN/brokers" 2>/dev/null)); run \`kafka.sh stop\` first"
  trap 'cmd_stop' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  local addr status=0
  addr="$(cmd_start)"
  export KAFKA_BROKERS="$addr"
  "$@" || status=$?
  if [[ "$status" -ne 0 && -f "$RUN/logs/server.log" ]]; then
    # The broker's own account of a failure (e.g. an UNKNOWN_SERVER_ERROR answer) is gone once .run/ is deleted.
    log "---- errors and warnings in $RUN/logs/server.log (last 40) ----"
    grep -E " (ERROR|WARN|FATAL) |^Caused by:|Exception" "$RUN/logs/server.log" | tail -n 40 >&2 || true
  fi
  exit "$status"
}

usage() {
  sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

case "${1:-}" in
  fetch) shift; cmd_fetch ;;
  start) shift; cmd_start ;;
  stop)  shift; cmd_stop ;;
  test)  shift; cmd_test "$@" ;;
  *) usage ;;
esac
