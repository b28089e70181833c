#!/bin/bash
# Starts tansu on $KAFKA_PORT (listening on all interfaces and advertising
# $KAFKA_ADVERTISED_HOST:$KAFKA_PORT) with its sqlite database in /var/lib/tansu.
set -euo pipefail
if [ "${1:-broker}" != broker ]; then exec "$@"; fi
shift || true
: "${KAFKA_PORT:=9092}"
: "${KAFKA_ADVERTISED_HOST:=127.0.0.1}"
: "${KAFKA_CLUSTER_ID:=chaosbank}"
mkdir -p /var/lib/tansu
# tansu resolves sqlite URLs against its working directory.
cd /
# tansu also reads these names from the environment; the flags below must win.
unset LISTENER_URL ADVERTISED_LISTENER_URL STORAGE_ENGINE CLUSTER_ID
echo "entrypoint: tansu on 0.0.0.0:$KAFKA_PORT advertising $KAFKA_ADVERTISED_HOST:$KAFKA_PORT, storage /var/lib/tansu/tansu.db"
exec tansu broker \
  --cluster-id "$KAFKA_CLUSTER_ID" \
  --listener-url "tcp://0.0.0.0:$KAFKA_PORT" \
  --advertised-listener-url "tcp://$KAFKA_ADVERTISED_HOST:$KAFKA_PORT" \
  --storage-engine "sqlite:///var/lib/tansu/tansu.db" \
  "$@"
