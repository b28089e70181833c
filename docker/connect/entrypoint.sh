#!/bin/bash
# `worker`: renders /var/lib/connect/worker.properties from the environment and runs one
# Kafka Connect worker in distributed mode (org.apache.kafka.connect.cli.ConnectDistributed)
# against $CONNECT_BOOTSTRAP, its REST API on 0.0.0.0:$CONNECT_REST_PORT. Its state (the
# connectors' configs, source offsets, statuses) lives in Kafka's internal topics, so a
# killed worker resumes where its last offset flush left it. Anything else is exec'd.
set -euo pipefail
if [ "${1:-worker}" != worker ]; then exec "$@"; fi
shift || true
: "${CONNECT_BOOTSTRAP:=127.0.0.1:9092}"
: "${CONNECT_REST_PORT:=8083}"
: "${CONNECT_GROUP:=chaosbank-connect}"
: "${CONNECT_OFFSET_FLUSH_MS:=5000}"
: "${CONNECT_HEAP_OPTS:=-Xms128m -Xmx512m}"
conf=/var/lib/connect/worker.properties
mkdir -p /var/lib/connect
cat >"$conf" <<PROPS
# Rendered by entrypoint.sh at $(date -u +%FT%TZ); edits are lost on restart.
bootstrap.servers=$CONNECT_BOOTSTRAP
group.id=$CONNECT_GROUP
listeners=http://0.0.0.0:$CONNECT_REST_PORT
rest.advertised.host.name=127.0.0.1
rest.advertised.port=$CONNECT_REST_PORT
# The internal topics: one replica each (one broker), compacted, created by the worker.
config.storage.topic=$CONNECT_GROUP-configs
offset.storage.topic=$CONNECT_GROUP-offsets
status.storage.topic=$CONNECT_GROUP-status
config.storage.replication.factor=1
offset.storage.replication.factor=1
offset.storage.partitions=1
status.storage.replication.factor=1
status.storage.partitions=1
# Source offsets (for Debezium: the WAL position it has published up to, which it also
# confirms to the replication slot) are flushed every $CONNECT_OFFSET_FLUSH_MS ms; a
# worker killed between flushes publishes again what it sent since the last one.
offset.flush.interval.ms=$CONNECT_OFFSET_FLUSH_MS
# A killed worker's tasks are handed to the next worker to join at once, instead of
# after the default 5 min wait for the lost worker to come back.
scheduled.rebalance.max.delay.ms=0
session.timeout.ms=10000
heartbeat.interval.ms=3000
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.storage.StringConverter
plugin.discovery=only_scan
PROPS
# Plugin folders a service brings (mounted by chaosbank), beside the classpath's Debezium.
if [ -n "${CONNECT_PLUGIN_PATH:-}" ]; then echo "plugin.path=$CONNECT_PLUGIN_PATH" >>"$conf"; fi
echo "entrypoint: Kafka Connect worker (group $CONNECT_GROUP) on $CONNECT_BOOTSTRAP, REST 0.0.0.0:$CONNECT_REST_PORT, offset flush every ${CONNECT_OFFSET_FLUSH_MS} ms"
exec java -server $CONNECT_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
  -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
  -Dlog4j2.configurationFile=/opt/connect/log4j2.properties \
  -cp '/opt/connect/lib/*' org.apache.kafka.connect.cli.ConnectDistributed "$conf" "$@"
