#!/usr/bin/env bash
# Lints the nightly pipelines' files (README, "Nightly at scale") and checks that each
# engine's job index maps to chaosbank's shards 1..N. Installs its tools when missing,
# pinned, into ~/go/bin and pip's user site (idempotent; a warm machine installs nothing
# and the whole script takes a few seconds):
#   actionlint 1.7.7 (Go module; a cold `go install` took 25 s here), check-jsonschema
#   (its bundled GitHub-workflow and GitLab-CI schemas), kubernetes-validate (bundled
#   Kubernetes schemas). Nothing here talks to a cluster or a CI service.
set -euo pipefail
cd "$(dirname "$0")/.."
ACTIONLINT=1.7.7
CHECK_JSONSCHEMA=0.39.0
KUBERNETES_VALIDATE=1.37.0
export PATH="$HOME/go/bin:$HOME/.local/bin:$PATH"
log() { printf '[lint-pipelines] %s\n' "$*" >&2; }

# Versions are read into variables first (a `grep -q` closing a pipe early would fail
# it under pipefail).
have() { "$@" 2>/dev/null | head -n 1 || true; }
if [ "$(have actionlint -version)" != "v$ACTIONLINT" ]; then
  command -v go >/dev/null || { log "Go is needed to install actionlint (https://go.dev/dl/)"; exit 1; }
  log "go install actionlint v$ACTIONLINT"
  go install "github.com/rhysd/actionlint/cmd/actionlint@v$ACTIONLINT"
fi
pip_want=()
# One Python start for both versions (each tool's own --version takes a second).
versions=$(python3 -c 'import importlib.metadata as m
for p in ("check-jsonschema", "kubernetes-validate"):
    try: print(p, m.version(p))
    except m.PackageNotFoundError: print(p, "-")' 2>/dev/null || true)
grep -qx "check-jsonschema $CHECK_JSONSCHEMA" <<<"$versions" && command -v check-jsonschema >/dev/null \
  || pip_want+=("check-jsonschema==$CHECK_JSONSCHEMA")
grep -qx "kubernetes-validate $KUBERNETES_VALIDATE" <<<"$versions" && command -v kubernetes-validate >/dev/null \
  || pip_want+=("kubernetes-validate==$KUBERNETES_VALIDATE")
if [ "${#pip_want[@]}" -gt 0 ]; then
  log "pip install ${pip_want[*]}"
  python3 -m pip install -q --disable-pip-version-check "${pip_want[@]}"
fi

log "GitHub workflow: actionlint, then its JSON schema"
actionlint .github/workflows/nightly-chaos.yml
check-jsonschema -q --builtin-schema vendor.github-workflows .github/workflows/nightly-chaos.yml
log "GitLab pipeline: its JSON schema"
check-jsonschema -q --builtin-schema vendor.gitlab-ci .gitlab-ci.yml
log "Kubernetes manifests: kubernetes-validate (bundled schemas)"
kubernetes-validate --quiet --strict k8s/soak-job.yaml k8s/merge-job.yaml k8s/results-pvc.yaml

log "each engine's index maps to shards 1..N"
python3 .ci/shard-mapping.py
log "ok"
