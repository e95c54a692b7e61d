"""Refusals happen before anything on the host changes: unsupported OS, a server too old, bad
arguments. Each case runs the real script in a fresh sandbox and then lists every file the run
changed under /etc and /var (there must be none) and checks no server was started.
"""

from __future__ import annotations

import shlex
import time

import pytest
from redis_migration.host.install import InstallParameters, build_install_commands, install_script

from redis_migration_ops.local_engine.sandbox_host import SandboxHost
from tests.host.conftest import RunInstall

pytestmark = pytest.mark.host

MARKER = "/run/before-install.marker"

FAKE_OS_RELEASES = {
    "alpine": 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.0\n',
    "al2023": 'NAME="Amazon Linux"\nVERSION="2023"\nID="amzn"\nID_LIKE="fedora"\nVERSION_ID="2023"\n',
    "rhel8": 'NAME="Red Hat Enterprise Linux"\nID="rhel"\nID_LIKE="fedora"\nVERSION_ID="8.10"\n',
}

# A stand-in for an old redis-server, visible only to the script's version check.
FAKE_OLD_SERVER = "#!/bin/sh\necho 'Redis server v=6.2.14 sha=00000000:0 malloc=jemalloc-5.1.0 bits=64'\n"


@pytest.fixture
def fresh(sandbox: SandboxHost) -> SandboxHost:
    # mtime granularity: the marker must be strictly older than anything the run might write.
    sandbox.run_command([f"touch {MARKER}"], 10)
    time.sleep(0.02)
    return sandbox


def changed_files(sandbox: SandboxHost) -> list[str]:
    # The SSM agent's own script files are the only expected writes.
    result = sandbox.run_command(
        [f"find /etc /var -newer {MARKER} -not -path '/var/lib/amazon/*' -not -path /var/lib/amazon"], 30
    )
    return sorted(result.stdout.split())


def assert_nothing_changed(sandbox: SandboxHost) -> None:
    assert changed_files(sandbox) == []
    assert sandbox.service_main_pid() is None
    config = sandbox.host_path("/etc/redis/redis.conf").read_bytes()
    assert b"user default on #" not in config


@pytest.mark.parametrize(
    ("os_release", "al2023_server", "expected_error"),
    [
        ("alpine", "valkey", "UnsupportedOs"),
        ("rhel8", "valkey", "UnsupportedOs"),
        ("al2023", "refuse", "ServerTooOld"),
    ],
)
def test_unsupported_platform_is_refused_before_any_change(
    fresh: SandboxHost,
    run_install: RunInstall,
    install_params: InstallParameters,
    os_release: str,
    al2023_server: str,
    expected_error: str,
) -> None:
    # Given an os-release the script does not (or, by policy, will not) serve
    fresh.host_path("/tmp/os-release").write_text(FAKE_OS_RELEASES[os_release])

    # When the install runs
    result, parsed = run_install(
        install_params.model_copy(update={"al2023_server": al2023_server}),
        env={"OS_RELEASE_FILE": "/tmp/os-release"},
    )

    # Then it fails with the named error and nothing changed
    assert result.exit_code != 0
    assert parsed is not None, result.stdout
    assert (parsed.ok, parsed.changed, parsed.error) == (False, False, expected_error)
    assert_nothing_changed(fresh)


def test_old_server_binary_is_refused_before_any_change(
    fresh: SandboxHost, run_install: RunInstall, install_params: InstallParameters
) -> None:
    # Given the real Debian path, but a redis-server whose version is 6.2
    fake = fresh.host_path("/tmp/redis-server-6.2")
    fake.write_text(FAKE_OLD_SERVER)
    fake.chmod(0o755)

    # When the install runs
    result, parsed = run_install(install_params, env={"REDIS_SERVER_BIN": "/tmp/redis-server-6.2"})

    # Then it is refused as too old and nothing changed
    assert result.exit_code != 0
    assert parsed is not None, result.stdout
    assert (parsed.ok, parsed.error, parsed.version) == (False, "ServerTooOld", "6.2.14")
    assert_nothing_changed(fresh)


def test_min_version_above_the_distro_server_is_refused(
    fresh: SandboxHost, run_install: RunInstall, install_params: InstallParameters
) -> None:
    # Given the machine's real redis-server 7.0.15 and a demand for 7.2
    result, parsed = run_install(install_params.model_copy(update={"min_version": "7.2"}))

    # Then it is refused before any change
    assert parsed is not None, result.stdout
    assert (parsed.ok, parsed.error, parsed.version) == (False, "ServerTooOld", "7.0.15")
    assert_nothing_changed(fresh)


def test_password_given_instead_of_its_hash_is_refused_and_not_echoed(fresh: SandboxHost) -> None:
    # Given a caller who passes the password itself where the hash belongs
    password = "NotAHashButThePassword0123456789"
    arguments = shlex.join(["--bind", "127.0.0.1", "--password-sha256", password])
    command = f"bash -s -- {arguments} <<'INSTALL_REDIS_SCRIPT'\n{install_script()}\nINSTALL_REDIS_SCRIPT"

    # When the script runs
    result = fresh.run_command([command], 60)

    # Then it refuses with BadArgument, never repeating the value
    assert result.exit_code != 0
    assert '"error":"BadArgument"' in result.stdout.splitlines()[-1]
    assert password not in result.stdout + result.stderr
    assert_nothing_changed(fresh)


def test_commands_are_a_single_heredoc_for_sh(install_params: InstallParameters) -> None:
    # The SSM document runs commands with /bin/sh: one element, bash fed by a quoted here-doc.
    commands = build_install_commands(install_params)
    assert len(commands) == 1
    first_line, *_, last_line = commands[0].splitlines()
    assert first_line.startswith("bash -s -- --port 6379 --bind '10.0.1.23 127.0.0.1' --password-sha256 ")
    assert first_line.endswith("<<'INSTALL_REDIS_SCRIPT'")
    assert last_line == "INSTALL_REDIS_SCRIPT"
