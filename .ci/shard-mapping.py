#!/usr/bin/env python3
"""Checks that each engine's job index becomes chaosbank's shard K/N for K = 1..N, by
running each pipeline's own shard command with stand-ins for chaosbank, dockerd, docker
and docker/setup.sh (nothing is started): the Kubernetes Indexed Job's pod command for
JOB_COMPLETION_INDEX = 0..N-1, GitLab's soak script for CI_NODE_INDEX = 1..N, and the
GitHub workflow's matrix step for N. Exits non-zero naming the first mismatch."""
import json
import os
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fail(msg):
    print(f"shard-mapping: {msg}", file=sys.stderr)
    sys.exit(1)


def stand_ins(tmp):
    """A bin/ of stand-ins and a docker/setup.sh stub; chaosbank writes its args to a file."""
    bin_dir = os.path.join(tmp, "fakebin")
    os.makedirs(bin_dir)
    os.makedirs(os.path.join(tmp, "docker"))
    os.makedirs(os.path.join(tmp, "bin"))
    for name in ("dockerd", "docker"):
        with open(os.path.join(bin_dir, name), "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
    chaosbank = '#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > "$CHAOSBANK_ARGS"\n'
    for path in (os.path.join(bin_dir, "chaosbank"), os.path.join(tmp, "bin", "chaosbank")):
        with open(path, "w") as f:
            f.write(chaosbank)
    with open(os.path.join(tmp, "docker", "setup.sh"), "w") as f:
        f.write("exit 0\n")
    for d in (bin_dir, os.path.join(tmp, "bin")):
        for name in os.listdir(d):
            os.chmod(os.path.join(d, name), 0o755)
    return bin_dir


def run(script, env, tmp, bin_dir):
    """Runs a pipeline's shell script with the stand-ins; chaosbank's args."""
    out = os.path.join(tmp, "args")
    if os.path.exists(out):
        os.remove(out)
    full = dict(os.environ, **env, PATH=bin_dir + ":" + os.environ["PATH"], CHAOSBANK_ARGS=out)
    subprocess.run(["sh", "-c", script], cwd=tmp, env=full, check=True, timeout=60)
    with open(out) as f:
        return f.read().splitlines()


def flag(args, name):
    if name not in args:
        fail(f"no {name} in chaosbank's args {args}")
    return args[args.index(name) + 1]


def kubernetes(tmp, bin_dir):
    with open(os.path.join(ROOT, "k8s", "soak-job.yaml")) as f:
        job = yaml.safe_load(f)
    spec = job["spec"]
    if spec.get("completionMode") != "Indexed":
        fail("k8s/soak-job.yaml: completionMode is not Indexed")
    pod = spec["template"]["spec"]
    (c,) = pod["containers"]
    if not c.get("securityContext", {}).get("privileged"):
        fail("k8s/soak-job.yaml: the shard container is not privileged (it runs its own dockerd)")
    env = {e["name"]: e["value"] for e in c["env"]}
    n = int(env["SHARDS"])
    if spec["completions"] != n or spec["parallelism"] != n:
        fail(f"k8s/soak-job.yaml: completions {spec['completions']}, parallelism "
             f"{spec['parallelism']} and SHARDS {n} differ")
    script = c["args"][0]
    seen = []
    for index in range(n):
        args = run(script, dict(env, JOB_COMPLETION_INDEX=str(index)), tmp, bin_dir)
        shard = flag(args, "--shard")
        if shard != f"{index + 1}/{n}":
            fail(f"k8s: JOB_COMPLETION_INDEX={index} ran --shard {shard}, not {index + 1}/{n}")
        seen.append(flag(args, "--out"))
    if len(set(seen)) != n:
        fail(f"k8s: the shards do not write to {n} different folders: {seen}")
    print(f"k8s: JOB_COMPLETION_INDEX 0..{n - 1} -> --shard 1/{n}..{n}/{n}, each its own --out")


def gitlab(tmp, bin_dir):
    with open(os.path.join(ROOT, ".gitlab-ci.yml")) as f:
        pipeline = yaml.safe_load(f)
    soak = pipeline["soak"]
    n = soak["parallel"]
    if soak.get("artifacts", {}).get("when") != "always":
        fail(".gitlab-ci.yml: the soak jobs' artifacts are not kept on failure (when: always)")
    if pipeline["merge"].get("when") != "always":
        fail(".gitlab-ci.yml: the merge job does not run when a shard failed (when: always)")
    script = "\n".join(soak["script"])
    env = {k: str(v) for k, v in pipeline["variables"].items()}
    for index in range(1, n + 1):
        args = run(script, dict(env, CI_NODE_INDEX=str(index), CI_NODE_TOTAL=str(n)), tmp, bin_dir)
        if flag(args, "--shard") != f"{index}/{n}":
            fail(f"gitlab: CI_NODE_INDEX={index} ran --shard {flag(args, '--shard')}")
    print(f"gitlab: CI_NODE_INDEX 1..{n} -> --shard 1/{n}..{n}/{n}")


def github(tmp, bin_dir):
    with open(os.path.join(ROOT, ".github", "workflows", "nightly-chaos.yml")) as f:
        wf = yaml.safe_load(f)
    jobs = wf["jobs"]
    (step,) = [s for s in jobs["build"]["steps"] if s.get("id") == "matrix"]
    soak = jobs["soak"]
    if soak["strategy"].get("fail-fast") is not False:
        fail("nightly-chaos.yml: the shard matrix is not fail-fast: false")
    if "fromJSON(needs.build.outputs.shards)" not in str(soak["strategy"]["matrix"]["shard"]):
        fail("nightly-chaos.yml: the matrix does not come from the build job's shard list")
    uploads = [s for s in soak["steps"] if "upload-artifact" in s.get("uses", "")]
    if not uploads or "always()" not in str(uploads[0].get("if")):
        fail("nightly-chaos.yml: the shard's store is not uploaded on failure (if: always())")
    if "always()" not in str(jobs["merge"].get("if")):
        fail("nightly-chaos.yml: the merge job does not run when a shard failed")
    runs = [s["run"] for s in soak["steps"] if "--shard" in s.get("run", "")]
    if len(runs) != 1 or '--shard "${{ matrix.shard }}/$SHARDS"' not in runs[0]:
        fail("nightly-chaos.yml: the soak step does not pass --shard MATRIX/SHARDS")
    for n in (1, 3, 8):
        out = os.path.join(tmp, "github_output")
        subprocess.run(["bash", "-c", step["run"]], env=dict(os.environ, SHARDS=str(n), GITHUB_OUTPUT=out),
                       check=True, timeout=60)
        with open(out) as f:
            line = f.read().strip()
        os.remove(out)
        if line != "shards=" + json.dumps(list(range(1, n + 1))).replace(" ", ""):
            fail(f"nightly-chaos.yml: the matrix for SHARDS={n} is {line!r}")
    print("github: the matrix for SHARDS=N is [1..N], each shard --shard K/N")


with tempfile.TemporaryDirectory(prefix="chaosbank-shard-mapping-") as tmp:
    bin_dir = stand_ins(tmp)
    kubernetes(tmp, bin_dir)
    gitlab(tmp, bin_dir)
    github(tmp, bin_dir)
