#!/usr/bin/env bash
# Set up a fresh machine for the rehearsal and the tests. Idempotent: a second run is quick.
#   - a virtual environment in .venv with the project (CLI, local engine, test tools)
#   - redis-server and shellcheck from Debian's packages when missing and we are root
#   - with --sam: the SAM CLI in its own environment (.venv-sam), for `sam validate` / `sam build`
set -euo pipefail
cd "$(dirname "$0")/.."

want_sam=false
[[ "${1:-}" == "--sam" ]] && want_sam=true
python=${PYTHON:-python3}

if [[ ! -x .venv/bin/python ]]; then
    echo "setup: creating .venv with $($python --version)"
    "$python" -m venv .venv
fi
# Reinstall only when the dependencies changed.
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [[ ! -e "$stamp" ]]; then
    echo "setup: installing the project and its tools into .venv"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[ops,dev]'
    rm -f .venv/.installed-* && touch "$stamp"
fi

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v shellcheck >/dev/null || missing+=(shellcheck)
if ((${#missing[@]})); then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "setup: installing ${missing[*]} from Debian's packages"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        # Debian starts nothing here (no systemd); the rehearsal runs its own Redis in a sandbox.
    else
        echo "setup: warning: ${missing[*]} missing and not root: the rehearsal and the host tests will be skipped" >&2
    fi
fi

if $want_sam; then
    if [[ ! -x .venv-sam/bin/sam ]]; then
        echo "setup: installing the SAM CLI into .venv-sam"
        "$python" -m venv .venv-sam
        .venv-sam/bin/python -m pip install --quiet --disable-pip-version-check aws-sam-cli==1.170.0
    fi
fi
