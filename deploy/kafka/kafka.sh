#!/usr/bin/env bash
# Single-node Apache Kafka 4.1 broker (KRaft combined mode) on loopback, for tests.
#
#   deploy/kafka/kafka.sh fetch              download the jars from Maven Central into .cache/lib
#   deploy/kafka/kafka.sh start              format fresh storage, start the broker, print 127.0.0.1:PORT
#   deploy/kafka/kafka.sh stop               stop the broker and delete .run/ (no-op when not running)
#   deploy/kafka/kafka.sh restart [SECONDS]  stop the broker, keep it down SECONDS (default 5), start it again on
#                                            the same storage (topics, records and offsets survive)
#   deploy/kafka/kafka.sh test -- CMD ...    start, run CMD with KAFKA_BROKERS (and the security settings) set,
#                                            always stop; exit with CMD's status
#   deploy/kafka/kafka.sh env                print the client settings of the running broker as shell exports
#
# Security (KAFKA_SECURITY, default sasl_ssl): the client listener is SASL_SSL — a CA and a broker certificate
# made for this run (openssl), SCRAM-SHA-512 users created by `kafka-storage format --add-scram` (admin, the
# only super user, and one user per service), StandardAuthorizer with no ACL (deny by default). `test` and `env`
# give the admin's settings (KAFKA_TLS, KAFKA_TLS_CA_FILE, KAFKA_SASL_*), plus KAFKA_SECRETS_DIR (a password
# file per user) and KAFKA_UNTRUSTED_CA_FILE (a CA that signed nothing the broker shows). KAFKA_SECURITY=plaintext
# starts the former plaintext, unauthenticated broker.
#
# Environment: KAFKA_PORT (broker port; default: a free one), KAFKA_CONTROLLER_PORT (default: a free one),
# KAFKA_SECURITY (sasl_ssl or plaintext), KAFKA_RUN_DIR (default deploy/kafka/.run: another value lets a
# second broker run from the same checkout), KAFKA_START_TIMEOUT (seconds, default 90), KAFKA_HEAP_OPTS
# (default "-Xmx512m -Xms256m"), JAVA (default java).
# Everything lives in deploy/kafka/.cache (jars) and deploy/kafka/.run (config, data, logs, pid); both are
# git-ignored. Nothing is installed outside the repository except Maven's ~/.m2 cache.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
POM="$HERE/pom.xml"
CACHE="$HERE/.cache"
LIB="$CACHE/lib"
STAMP="$CACHE/lib.stamp"
RUN="${KAFKA_RUN_DIR:-$HERE/.run}"
SECURITY="${KAFKA_SECURITY:-sasl_ssl}"
# The SCRAM users: admin (super user: topic creation, ACLs, the test suite) and one per service.
USERS=(admin collector cleaner trainer predictor signalcontrol)
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

# make_tls: a CA, a broker certificate for 127.0.0.1/localhost signed by it, and a second CA that signed nothing
# the broker shows (for the untrusted-certificate tests). PEM throughout: Kafka reads PEM key stores.
make_tls() {
  local tls="$RUN/tls"
  mkdir -p "$tls"
  (
    cd "$tls"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=greenwave-test-ca" 2>/dev/null
    openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem -days 2 -subj "/CN=greenwave-untrusted-ca" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout broker.key -out broker.csr -subj "/CN=localhost" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >broker.ext
    openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out broker.pem -days 2 -extfile broker.ext 2>/dev/null
    cat broker.key broker.pem >broker-keystore.pem
    chmod 600 ./*.key broker-keystore.pem
  ) || fail_start "openssl could not make the test certificates"
}

# make_users: a random password file per SCRAM user.
make_users() {
  mkdir -p "$RUN/secrets"
  chmod 700 "$RUN/secrets"
  local u
  for u in "${USERS[@]}"; do
    (umask 077; head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$RUN/secrets/$u.password")
  done
}

# scram_args: the --add-scram arguments of kafka-storage format, one per user.
scram_args() {
  local u
  for u in "${USERS[@]}"; do
    printf -- '--add-scram\nSCRAM-SHA-512=[name=%s,password=%s]\n' "$u" "$(cat "$RUN/secrets/$u.password")"
  done
}

# client_env: the admin's client settings, as `test` exports them and `env` prints them.
client_env() {
  echo "export KAFKA_BROKERS=$(cat "$RUN/brokers")"
  if [[ "$SECURITY" == sasl_ssl ]]; then
    cat <<ENV
export KAFKA_TLS=true
export KAFKA_TLS_CA_FILE=$RUN/tls/ca.pem
export KAFKA_SASL_MECHANISM=SCRAM-SHA-512
export KAFKA_SASL_USERNAME=admin
export KAFKA_SASL_PASSWORD_FILE=$RUN/secrets/admin.password
export KAFKA_SECRETS_DIR=$RUN/secrets
export KAFKA_UNTRUSTED_CA_FILE=$RUN/tls/other-ca.pem
ENV
  fi
}

listener_config() {
  local port="$1" cport="$2"
  if [[ "$SECURITY" == plaintext ]]; then
    cat <<PROPS
listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${cport}
advertised.listeners=PLAINTEXT://127.0.0.1:${port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
PROPS
    return
  fi
  # The controller listener stays plaintext on loopback: the broker reaches its own controller there as
  # ANONYMOUS, which therefore is a super user; it serves controller requests only, never a client's.
  cat <<PROPS
listeners=SASL_SSL://127.0.0.1:${port},CONTROLLER://127.0.0.1:${cport}
advertised.listeners=SASL_SSL://127.0.0.1:${port}
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
inter.broker.listener.name=SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(cat "$RUN/secrets/admin.password")";
ssl.keystore.type=PEM
ssl.keystore.location=${RUN}/tls/broker-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=${RUN}/tls/ca.pem
ssl.client.auth=none
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin;User:ANONYMOUS
allow.everyone.if.no.acl.found=false
PROPS
}

write_config() {
  local port="$1" cport="$2"
  cat >"$RUN/server.properties" <<PROPS
# Written by deploy/kafka/kafka.sh; single-node KRaft (combined broker+controller) for tests.
process.roles=broker,controller
node.id=1
$(listener_config "$port" "$cport")
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

  [[ "$SECURITY" == sasl_ssl || "$SECURITY" == plaintext ]] || die "KAFKA_SECURITY=$SECURITY: want sasl_ssl or plaintext"
  rm -rf "$RUN"
  mkdir -p "$RUN/logs" "$RUN/data" "$RUN/metadata"
  chmod 700 "$RUN"
  local scram=()
  if [[ "$SECURITY" == sasl_ssl ]]; then
    command -v openssl >/dev/null || die "openssl not found (needed for the test certificates)"
    make_tls
    make_users
    mapfile -t scram < <(scram_args)
  fi
  write_config "$port" "$cport"

  local cluster_id
  cluster_id="$(java_cmd kafka.tools.StorageTool random-uuid 2>>"$RUN/logs/format.log" | tail -n1)" \
    || fail_start "StorageTool random-uuid failed"
  java_cmd kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$RUN/server.properties" "${scram[@]}" \
    >>"$RUN/logs/format.log" 2>&1 || fail_start "StorageTool format failed"

  echo "127.0.0.1:$port" >"$RUN/brokers"
  launch
  log "started kafka.Kafka (pid $(cat "$PIDFILE")) on 127.0.0.1:$port, controller 127.0.0.1:$cport, cluster $cluster_id"
  echo "127.0.0.1:$port"
}

# launch: start the broker on the formatted storage and configuration in $RUN and wait until it serves.
launch() {
  # Background without job control: bash makes it ignore SIGINT, so Ctrl-C in the caller
  # reaches the broker only through stop (the test trap). $! is the java pid itself.
  # shellcheck disable=SC2086
  "$JAVA" $HEAP_OPTS -XX:+UseSerialGC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$RUN/log4j2.properties" -Dkafka.logs.dir="$RUN/logs" \
    -cp "$LIB/*" kafka.Kafka "$RUN/server.properties" </dev/null >>"$RUN/logs/stdout.log" 2>&1 &
  echo $! >"$PIDFILE"
  # Readiness: a Kafka metadata request must succeed (kafka-go, as admin), not just an open port.
  local brokers
  brokers="$(cat "$RUN/brokers")"
  if ! (cd "$ROOT" && eval "$(client_env)" && go run ./pkg/kafkatest/kafkawait -q -pid "$(cat "$PIDFILE")" -brokers "$brokers" -timeout "${START_TIMEOUT}s") ; then
    fail_start "broker did not become ready (limit ${START_TIMEOUT}s)"
  fi
  is_running || fail_start "broker process exited"
}

# cmd_restart [SECONDS]: stop the running broker (SIGTERM, a clean shutdown), keep it down SECONDS (default 5),
# and start it again on the same storage, port and users: its topics, records and committed offsets survive, as
# after a broker restart in production.
cmd_restart() {
  local down="${1:-5}"
  is_running || die "no broker running (start one with \`kafka.sh start\`)"
  cmd_stop_keep_logs
  log "broker stopped; starting it again in ${down}s on the same data"
  sleep "$down"
  launch
  log "broker restarted (pid $(cat "$PIDFILE")) on $(cat "$RUN/brokers")"
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
  local status=0
  cmd_start >/dev/null
  eval "$(client_env)"
  "$@" || status=$?
  if [[ "$status" -ne 0 && -f "$RUN/logs/server.log" ]]; then
    # The broker's own account of a failure (e.g. an UNKNOWN_SERVER_ERROR answer) is gone once .run/ is deleted.
    log "---- errors and warnings in $RUN/logs/server.log (last 40) ----"
    grep -E " (ERROR|WARN|FATAL) |^Caused by:|Exception" "$RUN/logs/server.log" | tail -n 40 >&2 || true
  fi
  exit "$status"
}

cmd_env() {
  is_running || die "no broker running (start one with \`kafka.sh start\`)"
  client_env
}

usage() {
  sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

case "${1:-}" in
  fetch) shift; cmd_fetch ;;
  start) shift; cmd_start ;;
  stop)  shift; cmd_stop ;;
  restart) shift; cmd_restart "$@" ;;
  test)  shift; cmd_test "$@" ;;
  env)   shift; cmd_env ;;
  *) usage ;;
esac
