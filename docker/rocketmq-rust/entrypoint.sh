#!/bin/bash
# `namesrv`: runs the name server on $NAMESRV_PORT.
# `broker`:  renders $ROCKETMQ_HOME/conf/broker.toml from the environment, then runs the
#            broker on $BROKER_PORT, advertising $BROKER_IP:$BROKER_PORT to $NAMESRV_ADDR.
# Anything else is exec'd as given.
set -euo pipefail
: "${ROCKETMQ_HOME:=/opt/rocketmq}"
export ROCKETMQ_HOME
mode="${1:-broker}"
case "$mode" in
  namesrv)
    shift
    : "${NAMESRV_PORT:=9876}"
    mkdir -p /var/lib/rocketmq/namesrv
    echo "entrypoint: name server on 0.0.0.0:$NAMESRV_PORT"
    # The name server reads NAMESRV_* from the environment too; the flags win.
    exec rocketmq-namesrv-rust --listenPort "$NAMESRV_PORT" --bindAddress 0.0.0.0 \
      --rocketmqHome "$ROCKETMQ_HOME" --kvConfigPath /var/lib/rocketmq/namesrv/kvConfig.json "$@"
    ;;
  broker)
    shift
    : "${BROKER_PORT:=10911}"
    : "${BROKER_IP:=127.0.0.1}"
    : "${NAMESRV_ADDR:=127.0.0.1:9876}"
    : "${BROKER_NAME:=broker-a}"
    : "${BROKER_CLUSTER:=DefaultCluster}"
    # Transactions: check undecided half messages every TX_CHECK_INTERVAL_MS, at most
    # TX_CHECK_MAX times (interval x max >= 40 s so a producer that re-registers only
    # every 30 s after a broker restart is still asked), once they are older than
    # TX_TIMEOUT_MS. The interval must be >= 3 x TX_OP_BATCH_INTERVAL_MS.
    : "${TX_TIMEOUT_MS:=3000}"
    : "${TX_CHECK_INTERVAL_MS:=5000}"
    : "${TX_CHECK_MAX:=40}"
    : "${TX_OP_BATCH_INTERVAL_MS:=1000}"
    : "${FLUSH_DISK_TYPE:=ASYNC_FLUSH}"
    if [ $((TX_CHECK_INTERVAL_MS)) -lt $((3 * TX_OP_BATCH_INTERVAL_MS)) ] ||
       [ $((TX_CHECK_INTERVAL_MS * TX_CHECK_MAX)) -lt 40000 ]; then
      echo "entrypoint: need TX_CHECK_INTERVAL_MS >= 3*TX_OP_BATCH_INTERVAL_MS and TX_CHECK_INTERVAL_MS*TX_CHECK_MAX >= 40000" >&2
      exit 1
    fi
    # The broker's remoting client wants an IP: resolve a host name (e.g. the name
    # server's container name on a Docker network) once, here.
    host="${NAMESRV_ADDR%:*}"; port="${NAMESRV_ADDR##*:}"
    if ! [[ "$host" =~ ^[0-9.]+$ ]]; then
      ip=$(getent ahostsv4 "$host" | awk 'NR==1 {print $1}')
      [ -n "$ip" ] || { echo "entrypoint: cannot resolve name server host '$host'" >&2; exit 1; }
      NAMESRV_ADDR="$ip:$port"
    fi
    export NAMESRV_ADDR
    # The broker also binds BROKER_PORT-2 (fast listener) and an HA port inside the
    # container; keep the HA port next to BROKER_PORT so no fixed port can collide.
    ha_port=$((BROKER_PORT < 65535 ? BROKER_PORT + 1 : BROKER_PORT - 1))
    store=/var/lib/rocketmq/store
    mkdir -p "$store" "$ROCKETMQ_HOME/conf"
    conf="$ROCKETMQ_HOME/conf/broker.toml"
    cat >"$conf" <<TOML
# Rendered by entrypoint.sh at $(date -u +%FT%TZ); edits are lost on restart.
[broker]
brokerIp1 = "$BROKER_IP"
listenPort = $BROKER_PORT
namesrvAddr = "$NAMESRV_ADDR"
storePathRootDir = "$store"
autoCreateTopicEnable = true
transactionTimeout = $TX_TIMEOUT_MS
transactionCheckInterval = $TX_CHECK_INTERVAL_MS
transactionCheckMax = $TX_CHECK_MAX
transactionOpBatchInterval = $TX_OP_BATCH_INTERVAL_MS
# A client killed without closing its connection keeps its queues until it has been
# silent this long (default 120 s); chaosbank's clients heartbeat every 10 s.
channelExpiredTimeout = 30000

[broker.brokerIdentity]
brokerName = "$BROKER_NAME"
brokerClusterName = "$BROKER_CLUSTER"
brokerId = 0

[store]
storePathRootDir = "$store"
flushDiskType = "$FLUSH_DISK_TYPE"
haListenPort = $ha_port
# Small mapped files: the defaults map about 1.5 GB per broker.
mappedFileSizeCommitLog = 16777216
mappedFileSizeConsumeQueue = 600000
# must be a multiple of 20480 (80-byte timer records and 4 KiB pages)
mappedFileSizeTimerLog = 4096000
maxHashSlotNum = 50000
maxIndexNum = 200000
TOML
    echo "entrypoint: broker $BROKER_NAME on 0.0.0.0:$BROKER_PORT advertising $BROKER_IP:$BROKER_PORT, name server $NAMESRV_ADDR, store $store"
    exec rocketmq-broker-rust -c "$conf" -n "$NAMESRV_ADDR" "$@"
    ;;
  *)
    exec "$@"
    ;;
esac
