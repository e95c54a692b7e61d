"""Every host script is shellcheck clean, as sent: the shared helpers, then the script (bash)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from redis_migration.host.scripts import host_script

pytestmark = pytest.mark.host

SCRIPTS = [
    "host/install_redis.sh",
    "host/backup_redis.sh",
    "host/restore_redis.sh",
    "host/inspect_redis.sh",
    "host/revert_redis_host.sh",
    "host/host_services.sh",
    "host/read_host_health.sh",
]


@pytest.mark.parametrize("resource", SCRIPTS)
def test_the_script_as_sent_is_shellcheck_clean(resource: str) -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed")
    result = subprocess.run(
        [shellcheck, "--shell=bash", "--severity=style", "-"],
        input=host_script(resource),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_shellcheck_would_catch_a_mistake() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed")
    broken = host_script(SCRIPTS[0]) + "\nrm -rf $UNQUOTED_DIR/*\n"
    result = subprocess.run(
        [shellcheck, "--shell=bash", "--severity=style", "-"], input=broken, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
