#!/usr/bin/env bash
# Runs the nightly GitLab pipeline (.gitlab-ci.yml) for real, offline, on this machine:
# gitlab-ci-local (npm, pinned, installed into ~/.cache/chaosbank/npm when missing) with
# its shell executor on this machine's Docker engine — the `build` job, the eight
# `soak` shards of a small soak, and the `merge` job — in a throwaway clone of HEAD (the
# jobs' artifacts land in their working folder), then checks the merge: exit status, one
# row per run, every shard present. Not part of .ci/run: it costs a release build (warm
# when CARGO_TARGET_DIR names a built target) and a few Docker runs.
#
#   bash .ci/gitlab-offline.sh                      # dual-write, seeds 1..4, 10 s runs
#   SYSTEMS=dual-write,outbox SEEDS=1..8 bash .ci/gitlab-offline.sh
#
# Needs Node 20 (gitlab-ci-local 4.60.0; later versions need Node 22), git, rsync
# (installed with apt-get when missing), Docker (bash docker/setup.sh), and cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
GCL_VERSION=4.60.0
SYSTEMS=${SYSTEMS:-dual-write}
SEEDS=${SEEDS:-1..4}
TIME_LIMIT=${TIME_LIMIT:-10s}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
prefix=$HOME/.cache/chaosbank/npm
gcl=$prefix/bin/gitlab-ci-local
log() { printf '[gitlab-offline] %s\n' "$*" >&2; }

if [ "$("$gcl" --version 2>/dev/null || true)" != "$GCL_VERSION" ]; then
  log "npm install gitlab-ci-local@$GCL_VERSION into $prefix"
  npm install -g --silent --prefix "$prefix" "gitlab-ci-local@$GCL_VERSION"
fi

# gitlab-ci-local copies the project with rsync.
if ! command -v rsync >/dev/null; then
  log "apt-get install rsync"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsync >/dev/null
fi

# A fixed folder, so that the build job's crates keep their paths and a second run
# finds them built in CARGO_TARGET_DIR; removed when the script ends.
work=/tmp/chaosbank-gitlab-offline
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
git clone -q "$PWD" "$work/project"
cd "$work/project"
# gitlab-ci-local derives the project's path from the remote; nothing is fetched.
git remote set-url origin https://gitlab.com/chaosbank/chaosbank.git

log "pipeline: systems $SYSTEMS, seeds $SEEDS, $TIME_LIMIT a run, target $CARGO_TARGET_DIR"
start=$SECONDS
status=0
"$gcl" --timestamps --concurrency 1 \
  --variable CI_PIPELINE_SOURCE=schedule \
  --variable "SYSTEMS=$SYSTEMS" --variable "SEEDS=$SEEDS" --variable "TIME_LIMIT=$TIME_LIMIT" \
  --variable "CARGO_TARGET_DIR=$CARGO_TARGET_DIR" || status=$?
log "pipeline ended with status $status in $((SECONDS - start)) s"

# The merge job writes merged/ whatever the verdicts; check what it says.
summary=merged/summary.txt
[ -f "$summary" ] || { log "no $summary: the merge job did not run"; exit 1; }
cat "$summary"
python3 - "$SYSTEMS" "$SEEDS" <<'PY'
import json, sys
systems = sys.argv[1].split(",")
seeds = []
for part in sys.argv[2].split(","):
    a, _, b = part.partition("..")
    seeds += range(int(a), int(b or a) + 1)
m = json.load(open("merged/merged.json"))
rows = [(r["name"], r["seed"]) for r in m["rows"]]
want = [(s, n) for s in systems for n in seeds]
assert rows == want, f"merged rows {rows} != the soak's runs {want}"
assert not m.get("missing_shards") and not m.get("missing_runs"), "shards or runs missing"
assert m["shards"] == 8, f"{m['shards']} shards, the pipeline runs 8"
print(f"[gitlab-offline] merged {len(rows)} runs from 8 shards: "
      + ", ".join(f"{r['name']} {r['seed']} {r['outcome']['valid']}" for r in m["rows"]))
PY
# The pipeline fails when a run is convicted (merge exits 1), as it would on GitLab.
log "merge verdict: $( [ "$status" = 0 ] && echo 'all valid' || echo 'convictions or failures (pipeline status '$status')')"
