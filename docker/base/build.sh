#!/usr/bin/env bash
# Builds the base image with no registry: a minimal Debian bookworm from the mirror in
# the host's apt sources (debootstrap --variant=minbase), imported with `docker import`.
#   bash docker/base/build.sh TAG
set -euo pipefail
tag="${1:?usage: build.sh TAG}"
suite=bookworm
mirror="${CHAOSBANK_DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
  mirror=$( (grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' || true;
             grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}') \
           | grep -v security | head -n1 || true)
fi
[ -n "$mirror" ] || { echo "no Debian mirror found in the host's apt sources; set CHAOSBANK_DEBIAN_MIRROR" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "debootstrap is missing: run docker/setup.sh" >&2; exit 1; }
root=$(mktemp -d /tmp/chaosbank-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "debootstrap $suite from $mirror" >&2
debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"
# Keep images small and apt quiet inside builds.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' > "$root/etc/apt/apt.conf.d/90chaosbank"
printf 'deb %s %s main\ndeb %s %s-updates main\n' "$mirror" "$suite" "$mirror" "$suite" > "$root/etc/apt/sources.list"
tar -C "$root" -c . | docker import \
  --change 'ENV DEBIAN_FRONTEND=noninteractive' \
  --change 'CMD ["/bin/bash"]' - "$tag" >/dev/null
echo "$tag"
