#!/usr/bin/env bash
# Every static check: ruff, mypy (the packages, and each handler on its own: they are all
# called app.py), cfn-lint, `sam validate --lint`, and `sam build` when Python 3.13 is there.
set -euo pipefail
cd "$(dirname "$0")/.."
export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}

echo "lint: ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check . >/dev/null
echo "lint: mypy"
.venv/bin/mypy .
for handler in functions/*/app.py; do
    .venv/bin/mypy --strict --no-error-summary "$handler" || { echo "mypy failed on $handler"; exit 1; }
done
echo "lint: cfn-lint"; .venv/bin/cfn-lint template.yaml
echo "lint: sam validate --lint"; .venv-sam/bin/sam validate --lint >/dev/null
# The Lambda runtime is python3.13: `sam build` without Docker needs that interpreter on PATH.
# (pyenv's shim for a version that is not selected does not run: look for the real binary first)
py313=$(ls "$(pyenv root 2>/dev/null || echo /nonexistent)"/versions/3.13*/bin/python3.13 2>/dev/null | head -1 || true)
if [[ -z "$py313" ]] && python3.13 --version >/dev/null 2>&1; then py313=$(command -v python3.13); fi
if [[ -n "$py313" ]]; then
    echo "lint: sam build (python3.13, arm64)"
    mkdir -p .aws-sam
    PATH="$(dirname "$py313"):$PATH" .venv-sam/bin/sam build --build-dir .aws-sam/build >.aws-sam/build.log 2>&1 || { cat .aws-sam/build.log; exit 1; }
    echo "lint: built into .aws-sam/build"
else
    echo "lint: sam build skipped: no python3.13 on this machine (see README, Build)"
fi
