#!/usr/bin/env bash
# Set up a fresh machine for the rehearsal and the tests. Idempotent: every step is skipped when
# what it makes is already there, so a second run takes about a second.
#   - .venv: the project (CLI, local engine, test tools), installed with uv (from PyPI, pinned in
#     pyproject.toml): it downloads and installs in parallel, several times faster than pip
#   - redis-server and shellcheck from Debian's packages when missing and we are root
#   - with --sam: the SAM CLI in its own environment (.venv-sam), for `sam validate` / `sam build`,
#     installed at the same time as the project
set -euo pipefail
cd "$(dirname "$0")/.."

want_sam=false
[[ "${1:-}" == "--sam" ]] && want_sam=true
python=${PYTHON:-python3}
uv_version=0.13.8         # keep in step with pyproject.toml's dev extra
sam_version=1.170.0
uv=.venv/bin/uv

# uv, in the project's own environment: the one thing pip installs.
if [[ ! -x .venv/bin/python ]]; then
    echo "setup: creating .venv with $($python --version)"
    "$python" -m venv .venv
fi
if [[ ! -x $uv ]] || [[ "$($uv --version)" != "uv $uv_version"* ]]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$uv_version"
fi

pids=() names=()
run_in_background() {  # name, command...: start it, remember it for `wait_all`
    local name=$1; shift
    ( "$@" ) & pids+=($!) names+=("$name")
}
wait_all() {  # wait for every background step; fail naming each one that failed
    local failed=()
    for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed+=("${names[$i]}"); done
    pids=() names=()
    if ((${#failed[@]})); then echo "setup: failed: ${failed[*]}" >&2; return 1; fi
}

# The project: reinstalled only when pyproject.toml changed (the stamp names its hash). uv keeps
# a stamp-less .venv consistent by itself: an interrupted install is redone on the next run.
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
install_project() {
    $uv pip install --quiet --python .venv/bin/python -e '.[ops,dev]'
    rm -f .venv/.installed-* && touch "$stamp"
}
if [[ ! -e "$stamp" ]]; then
    echo "setup: installing the project and its tools into .venv"
    run_in_background "the project (.venv)" install_project
fi

# The SAM CLI: its own environment, since its pins clash with the project's.
sam_stamp=.venv-sam/.installed-aws-sam-cli-$sam_version
install_sam() {
    [[ -x .venv-sam/bin/python ]] || "$python" -m venv --without-pip .venv-sam
    $uv pip install --quiet --python .venv-sam/bin/python "aws-sam-cli==$sam_version"
    touch "$sam_stamp"
}
if $want_sam && [[ ! -e "$sam_stamp" ]]; then
    echo "setup: installing the SAM CLI $sam_version into .venv-sam"
    run_in_background "the SAM CLI (.venv-sam)" install_sam
fi

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v shellcheck >/dev/null || missing+=(shellcheck)
if ((${#missing[@]})); then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "setup: installing ${missing[*]} from Debian's packages"
        install_debian_packages() {
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        }
        # Debian starts nothing here (no systemd); the rehearsal runs its own Redis in a sandbox.
        run_in_background "Debian packages (${missing[*]})" install_debian_packages
    else
        echo "setup: warning: ${missing[*]} missing and not root: the rehearsal and the host tests will be skipped" >&2
    fi
fi

wait_all
((SECONDS < 2)) || echo "setup: ready in ${SECONDS} s"
