#!/usr/bin/env bash
# chaosbank setup: makes sure a Docker engine answers and the host tools chaosbank
# needs are present. Idempotent: each step is skipped when its result is already there.
#
#   bash docker/setup.sh                 # engine + host packages (Maven, a JDK for it)
#   bash docker/setup.sh --brokers       # also resolve the Apache brokers' jars (Maven)
#   bash docker/setup.sh --rust-brokers  # also build the Rust brokers (tansu, rocketmq-rust;
#                                        # ~35 min on 2 cores, cached) for --kafka tansu
#                                        # and --rocketmq rust
#   bash docker/setup.sh --tests         # --brokers, plus what the test suite needs (chromium, docker-registry)
#   bash docker/setup.sh --debezium-matrix  # --brokers, plus the older Debezium line's jars
#                                        # (docker/connect-3.2, for --debezium 3.2)
#
# Environment:
#   CHAOSBANK_CACHE  where jars and broker binaries are cached (default ~/.cache/chaosbank)
#   DOCKER_HOST      an engine to use instead of /var/run/docker.sock
set -euo pipefail

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

CACHE="${CHAOSBANK_CACHE:-$HOME/.cache/chaosbank}"
want_brokers=0
want_rust=0
want_tests=0
want_matrix=0
for arg in "$@"; do
  case "$arg" in
    --brokers) want_brokers=1 ;;
    --rust-brokers) want_rust=1 ;;
    --tests) want_brokers=1; want_tests=1 ;;
    --debezium-matrix) want_brokers=1; want_matrix=1 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) die "unknown flag '$arg' (try --help)" ;;
  esac
done

is_root() { [ "$(id -u)" = 0 ]; }
is_debian() { [ -r /etc/debian_version ]; }
apt_updated=0
apt_install() {
  is_root && is_debian || die "missing packages: $*; install them (Debian/Ubuntu: apt-get install $*)"
  if [ "$apt_updated" = 0 ]; then apt-get update -q >/dev/null; apt_updated=1; fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

engine_answers() { timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# 1. Host packages: docker client/engine, debootstrap for the base image, iptables and
#    nsenter for the nemesis, cmake + libcurl for rdkafka's bundled librdkafka.
need=()
command -v docker >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v iptables >/dev/null || need+=(iptables)
command -v nsenter >/dev/null || need+=(util-linux)
command -v cmake >/dev/null || need+=(cmake)
command -v pkg-config >/dev/null || need+=(pkg-config)
# Maven resolves the Apache brokers' jars on the host (the images carry Debian's JRE).
command -v mvn >/dev/null || need+=(maven)
[ -e /usr/include/curl/curl.h ] || [ -e /usr/include/x86_64-linux-gnu/curl/curl.h ] \
  || [ -e "/usr/include/$(uname -m)-linux-gnu/curl/curl.h" ] || need+=(libcurl4-openssl-dev)
[ -e /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
# The report test renders report.html in headless Chromium.
if [ "$want_tests" = 1 ] && ! command -v chromium >/dev/null && [ -z "${CHROMIUM:-}" ]; then
  need+=(chromium)
fi
# The registry test pulls official-named images from Debian's docker-registry (run by the
# test on 127.0.0.1, not as a service).
if [ "$want_tests" = 1 ] && [ ! -x /usr/bin/docker-registry ]; then
  need+=(docker-registry)
fi
[ ${#need[@]} = 0 ] || apt_install "${need[@]}"

# 2. Docker engine: use the one that answers, else start one (root only).
if engine_answers; then
  log "docker engine answers: $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')"
elif [ -n "${DOCKER_HOST:-}" ]; then
  die "DOCKER_HOST=$DOCKER_HOST does not answer; start that engine or unset DOCKER_HOST"
else
  is_root || die "no Docker engine answers on /var/run/docker.sock; start one (e.g. 'sudo systemctl start docker') or set DOCKER_HOST"
  command -v dockerd >/dev/null || apt_install docker.io
  # A dockerd killed with its session leaves a pid file that stops the next one.
  for pidfile in /var/run/docker.pid /run/docker/containerd/containerd.pid; do
    if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null; then
      log "removing stale $pidfile"; rm -f "$pidfile"
    fi
  done
  log "starting dockerd (log: /var/log/chaosbank-dockerd.log)"
  nohup dockerd >/var/log/chaosbank-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do engine_answers && break; sleep 1; done
  engine_answers || { tail -20 /var/log/chaosbank-dockerd.log >&2; die "dockerd did not answer within 60 s (see /var/log/chaosbank-dockerd.log)"; }
  log "docker engine started: $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')"
fi

# 3. The Apache brokers' jars, resolved with Maven from docker/<image>/pom.xml into the
#    cache the harness reads ($CHAOSBANK_CACHE/jars/<image>-<pom hash>/).
if [ "$want_brokers" = 1 ]; then
  images=(kafka rocketmq connect)
  # The older Debezium line only when asked: CI's setup does not resolve it.
  [ "$want_matrix" = 1 ] && images+=(connect-3.2)
  for image in "${images[@]}"; do
    pom="$(dirname "$0")/$image/pom.xml"
    hash=$(sha256sum "$pom" | cut -c1-12)
    dir="$CACHE/jars/$image-$hash"
    if [ -f "$dir/.complete" ]; then log "$image jars cached in $dir"; continue; fi
    log "resolving the $image jars with Maven into $dir"
    rm -rf "$dir.partial"; mkdir -p "$dir.partial"
    start=$SECONDS
    mvn -B -q -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$dir.partial" >&2 || die "Maven could not resolve $pom"
    sha256sum "$pom" | cut -d' ' -f1 | tr -d '\n' >"$dir.partial/.complete"
    rm -rf "$dir"; mv "$dir.partial" "$dir"
    log "$image jars resolved in $((SECONDS - start)) s ($(du -sh "$dir" | cut -f1))"
  done
fi

# 4. The Rust broker binaries, built with the host's toolchain and cached by version.
if [ "$want_rust" = 1 ]; then
  bash "$(dirname "$0")/build-brokers.sh"
fi

# 5. Disk: the RocketMQ broker will not start with less than 10 % of the disk available
# to non-root users (statvfs f_bavail / f_blocks); say so now rather than as a failed run.
root_dir=$(docker info --format '{{.DockerRootDir}}' 2>/dev/null || echo /var/lib/docker)
if read -r blocks avail < <(stat -f -c '%b %a' "$root_dir" 2>/dev/null) && [ "${blocks:-0}" -gt 0 ]; then
  used=$(( 100 - avail * 100 / blocks ))
  if [ "$used" -ge 85 ]; then
    log "WARNING: the disk under $root_dir is ${used}% used (counting what non-root may take); the RocketMQ broker refuses to start past 90% — free some space (e.g. old cargo target/ folders)"
  fi
fi
