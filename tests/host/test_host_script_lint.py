"""The install script is shellcheck clean (bash dialect; it is always run by bash)."""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources

import pytest

pytestmark = pytest.mark.host


def test_install_script_is_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed")
    script = resources.files("redis_migration").joinpath("host/install_redis.sh")
    with resources.as_file(script) as path:
        result = subprocess.run(
            [shellcheck, "--shell=bash", "--severity=style", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stdout
