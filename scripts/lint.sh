#!/usr/bin/env bash
# Every static check: ruff, the layout's walls (scripts/check_layout.py), mypy (the packages, then
# the handlers: they are all called app.py), cfn-lint, `sam validate --lint`, and `sam build` when
# Python 3.13 is there (then checks that the built layer ships a consistent AWS SDK and that every
# built handler imports from it). Each step prints the seconds so far.
set -euo pipefail
cd "$(dirname "$0")/.."
export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}

# The Lambda runtime is python3.13: `sam build` without Docker needs that interpreter on PATH.
# (pyenv's shim for a version that is not selected does not run: look for the real binary first)
py313=$(ls "$(pyenv root 2>/dev/null || echo /nonexistent)"/versions/3.13*/bin/python3.13 2>/dev/null | head -1 || true)
if [[ -z "$py313" ]] && python3.13 --version >/dev/null 2>&1; then py313=$(command -v python3.13); fi
# `sam build` mostly downloads the layer's dependencies: it runs while the checks below do
# (and is stopped if one of them fails).
build_pid=
stop_build() { if [[ -n "$build_pid" ]]; then kill "$build_pid" 2>/dev/null || true; fi; }
trap stop_build EXIT
if [[ -n "$py313" ]]; then
    echo "lint: sam build (python3.13, arm64) started (${SECONDS} s)"
    mkdir -p .aws-sam
    PATH="$(dirname "$py313"):$PATH" .venv-sam/bin/sam build --build-dir .aws-sam/build >.aws-sam/build.log 2>&1 &
    build_pid=$!
fi

echo "lint: ruff (${SECONDS} s)"
.venv/bin/ruff check .
.venv/bin/ruff format --check . >/dev/null
echo "lint: layout walls (${SECONDS} s)"
.venv/bin/python scripts/check_layout.py
echo "lint: mypy (${SECONDS} s)"
.venv/bin/mypy .
# The handlers in one run: explicit_package_bases names each functions.<step>.app, so the
# files called app.py do not clash.
.venv/bin/mypy --strict functions/*/app.py
echo "lint: cfn-lint (${SECONDS} s)"; .venv/bin/cfn-lint template.yaml
echo "lint: sam validate --lint (${SECONDS} s)"; .venv-sam/bin/sam validate --lint >/dev/null
if [[ -n "$build_pid" ]]; then
    status=0
    wait "$build_pid" || status=$?
    build_pid=
    if ((status)); then cat .aws-sam/build.log; echo "lint: sam build failed"; exit 1; fi
    echo "lint: built into .aws-sam/build (${SECONDS} s)"
    # What the layer really ships: botocore only with the boto3 and s3transfer made for it.
    .venv/bin/python - .aws-sam/build/SharedLayer/python <<'CHECK'
import sys
from importlib import metadata
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

shipped = {canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions(path=[sys.argv[1]])}
sdk = ("boto3", "botocore", "s3transfer")
if "botocore" in shipped:
    missing = [name for name in sdk if name not in shipped]
    if missing:
        sys.exit(f"lint: the built layer ships botocore without {missing}")
    for name in sdk:
        for need in map(Requirement, shipped[name].requires or []):
            other = shipped.get(canonicalize_name(need.name))
            if need.marker is None and other and not need.specifier.contains(other.version, prereleases=True):
                sys.exit(f"lint: the built layer's {name} {shipped[name].version} needs {need}, ships {other.version}")
    print("lint: the built layer ships " + ", ".join(f"{n} {shipped[n].version}" for n in sdk))
CHECK
    # What the handlers really import: our package from the built layer, every script it reads.
    .venv/bin/python scripts/check_built_handlers.py .aws-sam/build
else
    echo "lint: sam build skipped: no python3.13 on this machine (see README, Build)"
fi
