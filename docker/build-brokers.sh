#!/usr/bin/env bash
# Builds the broker binaries from the cargo registry with the host's toolchain and caches
# them under $CHAOSBANK_CACHE/tools/<crate>-<version>/bin. The images copy them in.
# A cached build is reused; a fresh one takes 15-20 minutes per broker on 2 cores.
set -euo pipefail
log() { printf '[brokers] %s\n' "$*" >&2; }
CACHE="${CHAOSBANK_CACHE:-$HOME/.cache/chaosbank}"
TANSU_VERSION=0.6.0
ROCKETMQ_VERSION=1.0.0
mkdir -p "$CACHE/tools" "$CACHE/cargo-target"

install_one() { # root crate version features binary
  local root="$1" crate="$2" version="$3" features="$4" bin="$5"
  if [ -x "$root/bin/$bin" ]; then log "$bin $version cached at $root/bin"; return; fi
  log "building $crate $version (this takes a while; progress in $CACHE/$crate.log)"
  local start=$SECONDS
  CARGO_TARGET_DIR="$CACHE/cargo-target" nice cargo install --locked --quiet \
    --root "$root" ${features:+--features "$features"} --version "$version" "$crate" \
    >"$CACHE/$crate.log" 2>&1 || { tail -30 "$CACHE/$crate.log" >&2; log "failed: $crate"; return 1; }
  log "built $bin in $((SECONDS - start)) s"
}

install_one "$CACHE/tools/tansu-$TANSU_VERSION" tansu "$TANSU_VERSION" "dynostore,libsql,postgres" tansu
install_one "$CACHE/tools/rocketmq-$ROCKETMQ_VERSION" rocketmq-namesrv "$ROCKETMQ_VERSION" "" rocketmq-namesrv-rust
install_one "$CACHE/tools/rocketmq-$ROCKETMQ_VERSION" rocketmq-broker "$ROCKETMQ_VERSION" "" rocketmq-broker-rust
