#!/bin/bash
# `namesrv`: runs Apache RocketMQ's name server on $NAMESRV_PORT.
# `broker`:  renders $ROCKETMQ_HOME/conf/broker.conf from the environment, then runs the
#            broker on $BROKER_PORT, advertising $BROKER_IP:$BROKER_PORT to $NAMESRV_ADDR.
# `broker-conf CONF [ADDR]`: runs the broker from a broker.conf of the caller's (what
#            the official image's `sh mqbroker -c CONF` does; bin/mqbroker calls it).
# Anything else is exec'd as given (so `sh mqnamesrv` and `sh mqbroker …` run the
# scripts in the working directory, /opt/rocketmq/bin, as in the official image).
set -euo pipefail
: "${ROCKETMQ_HOME:=/opt/rocketmq}"
export ROCKETMQ_HOME
# The JVM flags of RocketMQ's own runserver.sh / runbroker.sh for Java 9+, and the
# opens its direct-buffer code needs on 17. Logs go to stdout (conf/logback.xml).
java_common=(-server -XX:+UseG1GC -XX:G1HeapRegionSize=16m -XX:+ExitOnOutOfMemoryError
  -XX:-OmitStackTraceInFastThrow -Djava.awt.headless=true
  --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens=java.base/java.lang=ALL-UNNAMED --add-exports=java.base/sun.nio.ch=ALL-UNNAMED
  -Drmq.logback.configurationFile="$ROCKETMQ_HOME/conf/logback.xml"
  -Duser.home=/var/lib/rocketmq -Drocketmq.client.logUseSlf4j=true)
cp="$ROCKETMQ_HOME/lib/*"
mode="${1:-broker}"
case "$mode" in
  namesrv)
    shift
    : "${NAMESRV_PORT:=9876}"
    : "${NAMESRV_HEAP_OPTS:=-Xms128m -Xmx256m}"
    mkdir -p /var/lib/rocketmq/namesrv
    conf="$ROCKETMQ_HOME/conf/namesrv.conf"
    cat >"$conf" <<PROPS
listenPort=$NAMESRV_PORT
kvConfigPath=/var/lib/rocketmq/namesrv/kvConfig.json
PROPS
    echo "entrypoint: Apache RocketMQ name server on 0.0.0.0:$NAMESRV_PORT"
    # shellcheck disable=SC2086
    exec java "${java_common[@]}" ${JAVA_OPT_EXT:-$NAMESRV_HEAP_OPTS} -cp "$cp" \
      org.apache.rocketmq.namesrv.NamesrvStartup -c "$conf" "$@"
    ;;
  broker)
    shift
    : "${BROKER_PORT:=10911}"
    : "${BROKER_IP:=127.0.0.1}"
    : "${NAMESRV_ADDR:=127.0.0.1:9876}"
    : "${BROKER_NAME:=broker-a}"
    : "${BROKER_CLUSTER:=DefaultCluster}"
    : "${BROKER_HEAP_OPTS:=-Xms256m -Xmx512m -XX:MaxDirectMemorySize=256m}"
    # Transactions: check undecided half messages every TX_CHECK_INTERVAL_MS, at most
    # TX_CHECK_MAX times, once they are older than TX_TIMEOUT_MS (see CONTRACT.md).
    : "${TX_TIMEOUT_MS:=3000}"
    : "${TX_CHECK_INTERVAL_MS:=5000}"
    : "${TX_CHECK_MAX:=40}"
    : "${TX_OP_BATCH_INTERVAL_MS:=1000}"
    : "${FLUSH_DISK_TYPE:=ASYNC_FLUSH}"
    if [ $((TX_CHECK_INTERVAL_MS * TX_CHECK_MAX)) -lt 40000 ]; then
      echo "entrypoint: need TX_CHECK_INTERVAL_MS*TX_CHECK_MAX >= 40000" >&2
      exit 1
    fi
    ha_port=$((BROKER_PORT < 65535 ? BROKER_PORT + 1 : BROKER_PORT - 1))
    store=/var/lib/rocketmq/store
    mkdir -p "$store/commitlog" "$ROCKETMQ_HOME/conf"
    conf="$ROCKETMQ_HOME/conf/broker.conf"
    cat >"$conf" <<PROPS
# Rendered by entrypoint.sh at $(date -u +%FT%TZ); edits are lost on restart.
brokerClusterName=$BROKER_CLUSTER
brokerName=$BROKER_NAME
brokerId=0
brokerRole=ASYNC_MASTER
brokerIP1=$BROKER_IP
listenPort=$BROKER_PORT
haListenPort=$ha_port
namesrvAddr=$NAMESRV_ADDR
storePathRootDir=$store
storePathCommitLog=$store/commitlog
autoCreateTopicEnable=true
flushDiskType=$FLUSH_DISK_TYPE
transactionTimeOut=$TX_TIMEOUT_MS
transactionCheckInterval=$TX_CHECK_INTERVAL_MS
transactionCheckMax=$TX_CHECK_MAX
transactionOpBatchInterval=$TX_OP_BATCH_INTERVAL_MS
# A client killed without closing its connection keeps its queues until it has been
# silent this long (default 120 s); chaosbank's clients heartbeat every 10 s.
channelExpiredTimeout=30000
# A restarted name server knows no routes until the broker registers again: every 10 s
# (the least the broker takes; default 30 s).
registerNameServerPeriod=10000
# Small mapped files: the defaults map 1 GB of commit log and more per broker.
mappedFileSizeCommitLog=16777216
mappedFileSizeConsumeQueue=600000
timerWheelEnable=false
maxHashSlotNum=50000
maxIndexNum=200000
# Keep writing until the disk is nearly full (the defaults stop at 75-90 %).
diskMaxUsedSpaceRatio=95
PROPS
    echo "entrypoint: Apache RocketMQ broker $BROKER_NAME on 0.0.0.0:$BROKER_PORT advertising $BROKER_IP:$BROKER_PORT, name server $NAMESRV_ADDR, store $store"
    # shellcheck disable=SC2086
    exec java "${java_common[@]}" $BROKER_HEAP_OPTS -cp "$cp" \
      org.apache.rocketmq.broker.BrokerStartup -c "$conf" -n "$NAMESRV_ADDR" "$@"
    ;;
  broker-conf)
    # The official image's way (`sh mqbroker -n ADDR -c CONF`, see bin/mqbroker): the
    # broker.conf is the caller's.
    conf="$2"
    addr="${3:-${NAMESRV_ADDR:-127.0.0.1:9876}}"
    mkdir -p /var/lib/rocketmq/store
    echo "entrypoint: Apache RocketMQ broker from $conf, name server $addr (official image's configuration)"
    # shellcheck disable=SC2086
    exec java "${java_common[@]}" ${JAVA_OPT_EXT:-$BROKER_HEAP_OPTS} -cp "$cp" \
      org.apache.rocketmq.broker.BrokerStartup -c "$conf" -n "$addr"
    ;;
  *)
    exec "$@"
    ;;
esac
