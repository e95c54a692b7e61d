"""Fixtures for the host tier: a sandbox host (namespaces + copy-on-write root) per module.

Each fixture stops what it started. Tests skip with the reason when the machine cannot run a
sandbox (not root, util-linux tools missing) or has no redis-server package to install from.
"""

from __future__ import annotations

import secrets
import shutil
import string
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from redis_migration.host.install import (
    InstallParameters,
    InstallResult,
    build_install_commands,
    parse_install_result,
    password_sha256,
)

from redis_migration_ops.local_engine.sandbox_host import CommandResult, SandboxHost

PRIVATE_IP = "10.0.1.23"  # exists only inside the sandbox's network namespace
INSTALL_TIMEOUT_S = 120.0

RunInstall = Callable[..., tuple[CommandResult, InstallResult | None]]


def sandbox_skip_reason() -> str | None:
    missing = SandboxHost.missing_requirements()
    if missing:
        return "host tests need " + ", ".join(missing)
    if shutil.which("redis-server") is None or not Path("/usr/bin/redis-server").exists():
        return "host tests need the redis-server package on the machine (apt-get install -y redis-server)"
    return None


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHost]:
    reason = sandbox_skip_reason()
    if reason:
        pytest.skip(reason)
    host = SandboxHost(tmp_path_factory.mktemp("sandbox"), PRIVATE_IP)
    host.start()
    try:
        yield host
    finally:
        host.stop()


@pytest.fixture(scope="module")
def password() -> str:
    # The guide's format: 32 alphanumeric characters.
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(32))


@pytest.fixture(scope="module")
def install_params(password: str) -> InstallParameters:
    return InstallParameters(
        bind_addresses=[PRIVATE_IP, "127.0.0.1"], password_sha256=password_sha256(password)
    )


@pytest.fixture(scope="module")
def outputs() -> list[str]:
    """Every command and output of the module, for the no-plaintext-password check."""
    return []


@pytest.fixture(scope="module")
def run_install(sandbox: SandboxHost, outputs: list[str]) -> RunInstall:
    def run(
        params: InstallParameters, *, env: dict[str, str] | None = None
    ) -> tuple[CommandResult, InstallResult | None]:
        # The environment is exported by an extra command, as an operator would in the SSM document.
        exports = [f"export {name}={value}" for name, value in (env or {}).items()]
        commands = [*exports, *build_install_commands(params)]
        result = sandbox.run_command(commands, INSTALL_TIMEOUT_S)
        outputs.extend([*commands, result.stdout, result.stderr])
        return result, parse_install_result(result.stdout)

    return run
