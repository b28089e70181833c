#!/bin/bash
# `broker`: renders /var/lib/kafka/server.properties from the environment, formats the
# storage on first start (KRaft, cluster id $KAFKA_CLUSTER_ID), then runs Apache Kafka as
# one combined broker + controller on $KAFKA_PORT (listening on all interfaces and
# advertising $KAFKA_ADVERTISED_HOST:$KAFKA_PORT). The controller listens on
# 127.0.0.1:$KAFKA_PORT+1 inside the container only. With $KAFKA_PROCESS_ROLES set, it is
# configured as the official apache/kafka image is instead (see below). Anything else is
# exec'd as given.
set -euo pipefail
if [ "${1:-broker}" != broker ]; then exec "$@"; fi
shift || true
java_opts_common=(-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError
  -Djava.awt.headless=true -Dlog4j2.configurationFile=/opt/kafka/log4j2.properties)
if [ -n "${KAFKA_PROCESS_ROLES:-}" ]; then
  # The official apache/kafka image's configuration: every KAFKA_X_Y variable is the
  # property x.y (`__` stands for `_`, `___` for `-`), the storage is formatted with
  # $CLUSTER_ID, the data lives in $KAFKA_LOG_DIRS. This image then runs as that one does.
  : "${KAFKA_LOG_DIRS:=/var/lib/kafka/data}"
  : "${CLUSTER_ID:=Y2hhb3NiYW5rLWthZmthMQ}"
  conf=/var/lib/kafka/server.properties
  mkdir -p /var/lib/kafka "$KAFKA_LOG_DIRS"
  echo "# Rendered from the KAFKA_* environment at $(date -u +%FT%TZ)" >"$conf"
  while IFS='=' read -r name value; do
    case "$name" in
      KAFKA_HEAP_OPTS | KAFKA_OPTS | KAFKA_JVM_PERFORMANCE_OPTS | KAFKA_LOG4J_OPTS | KAFKA_GC_LOG_OPTS) continue ;;
      KAFKA_*) ;;
      *) continue ;;
    esac
    key=${name#KAFKA_}
    key=$(printf '%s' "$key" | sed -e 's/___/-/g' -e 's/__/@/g' -e 's/_/./g' -e 's/@/_/g' | tr 'A-Z' 'a-z')
    printf '%s=%s\n' "$key" "$value" >>"$conf"
  done < <(env)
  cp=/opt/kafka/lib/*
  if [ ! -f "$KAFKA_LOG_DIRS/meta.properties" ]; then
    echo "entrypoint: formatting storage in $KAFKA_LOG_DIRS (cluster $CLUSTER_ID)"
    java -Xmx256m -Dlog4j2.configurationFile=/opt/kafka/log4j2.properties -cp "$cp" \
      kafka.tools.StorageTool format --ignore-formatted -t "$CLUSTER_ID" -c "$conf"
  fi
  echo "entrypoint: Apache Kafka configured the official image's way (KAFKA_* → $conf)"
  exec java -server ${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} "${java_opts_common[@]}" \
    -cp "$cp" kafka.Kafka "$conf" "$@"
fi
: "${KAFKA_PORT:=9092}"
: "${KAFKA_ADVERTISED_HOST:=127.0.0.1}"
: "${KAFKA_CLUSTER_ID:=Y2hhb3NiYW5rLWthZmthMQ}"
: "${KAFKA_HEAP_OPTS:=-Xms256m -Xmx512m}"
: "${KAFKA_PARTITIONS:=1}"
# log.flush.interval.messages: 1 fsyncs every append before the acknowledgement;
# unset (the default), Kafka acknowledges from the page cache and relies on replication.
: "${KAFKA_FLUSH_MESSAGES:=}"
controller_port=$((KAFKA_PORT < 65535 ? KAFKA_PORT + 1 : KAFKA_PORT - 1))
data=/var/lib/kafka
conf=$data/server.properties
mkdir -p "$data/log"
cat >"$conf" <<PROPS
# Rendered by entrypoint.sh at $(date -u +%FT%TZ); edits are lost on restart.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://0.0.0.0:$KAFKA_PORT,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://$KAFKA_ADVERTISED_HOST:$KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$data/log
num.partitions=$KAFKA_PARTITIONS
auto.create.topics.enable=true
# One node: every internal topic has one replica, and a write needs only that one.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
default.replication.factor=1
group.initial.rebalance.delay.ms=0
# A killed client's group membership and transactions expire quickly.
group.consumer.session.timeout.ms=10000
group.consumer.min.session.timeout.ms=6000
transaction.abort.timed.out.transaction.cleanup.interval.ms=5000
PROPS
if [ -n "$KAFKA_FLUSH_MESSAGES" ]; then
  echo "log.flush.interval.messages=$KAFKA_FLUSH_MESSAGES" >>"$conf"
fi
java_opts=(-server $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20
  -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
  -Dlog4j2.configurationFile=/opt/kafka/log4j2.properties)
cp=/opt/kafka/lib/*
if [ ! -f "$data/log/meta.properties" ]; then
  echo "entrypoint: formatting storage in $data/log (cluster $KAFKA_CLUSTER_ID)"
  java -Xmx256m -Dlog4j2.configurationFile=/opt/kafka/log4j2.properties -cp "$cp" \
    kafka.tools.StorageTool format --ignore-formatted -t "$KAFKA_CLUSTER_ID" -c "$conf"
fi
echo "entrypoint: Apache Kafka on 0.0.0.0:$KAFKA_PORT advertising $KAFKA_ADVERTISED_HOST:$KAFKA_PORT, controller 127.0.0.1:$controller_port, data $data/log"
exec java "${java_opts[@]}" -cp "$cp" kafka.Kafka "$conf" "$@"
