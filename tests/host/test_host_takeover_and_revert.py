"""An existing Redis taken over without loss, then re-runs undone exactly: one scenario, in order.

The sandbox starts like a box that already runs Debian's own Redis (package defaults: appendonly
no, no password) holding 300 keys saved in dump.rdb. Then, as a sequence of runs would:

1. run-1 installs: the 300 keys survive (same data digest) although our config turns AOF on;
2. clients write 500 keys with the password;
3. run-2 changes maxmemory, run-3 the port; each is reverted: same config digest, same port,
   same keys as after run-1; a second revert changes nothing;
4. run-4 asks for a port another process holds: refused before any change, Redis untouched;
5. run-1 is reverted: Debian's config and service back, every key (300 + 500) kept;
6. neither the password nor the host's admin credential appears in any command, output, record.

The host's state is read both by the inspect script and independently from the sandbox
(:func:`read_host_state`), and the two must agree.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis_migration.host.install import InstallParameters, InstallResult
from redis_migration.host.revert import RevertResult, build_revert_commands, parse_revert_result
from redis_migration.host.state import build_inspect_commands, compare_host, parse_inspect_result, restarted
from redis_migration.models import HostState

from redis_migration_ops.local_engine.sandbox_host import SandboxHost
from redis_migration_ops.rehearsal.sandbox_redis import (
    ADMIN_SECRET_FILE,
    read_host_state,
    start_existing_redis,
    write_client_keys,
)
from tests.host.conftest import RunInstall

pytestmark = pytest.mark.host

EXISTING_KEYS = 300
CLIENT_KEYS = 500
RUNS_DIR = "/var/lib/redis-migration/runs"
OTHER_PORT = 6390


@pytest.fixture(scope="module")
def existing(sandbox: SandboxHost) -> HostState:
    """The host before any run: Debian's own Redis running with 300 keys in its RDB."""
    assert start_existing_redis(sandbox, EXISTING_KEYS) == EXISTING_KEYS
    return read_host_state(sandbox)


@pytest.fixture(scope="module")
def params(install_params: InstallParameters) -> InstallParameters:
    return install_params.model_copy(update={"run_id": "run-1"})


@dataclass(frozen=True)
class Run1:
    result: InstallResult
    taken_over: HostState  # right after the install
    state: HostState  # after the clients wrote their keys


@pytest.fixture(scope="module")
def run1(
    sandbox: SandboxHost,
    existing: HostState,
    run_install: RunInstall,
    params: InstallParameters,
    password: str,
) -> Run1:
    result, parsed = run_install(params)
    assert parsed is not None, result.stdout + result.stderr
    assert parsed.ok, parsed.message
    taken_over = read_host_state(sandbox)
    write_client_keys(sandbox, password, CLIENT_KEYS)
    return Run1(parsed, taken_over, read_host_state(sandbox))


@pytest.fixture(scope="module")
def outputs_of_reverts() -> list[str]:
    return []


def revert(sandbox: SandboxHost, run_id: str, outputs: list[str]) -> RevertResult:
    commands = build_revert_commands(run_id)
    result = sandbox.run_command(commands, 300)
    outputs.extend([*commands, result.stdout, result.stderr])
    parsed = parse_revert_result(result.stdout)
    assert parsed is not None, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("REDIS_REVERT_RESULT {")
    return parsed


def inspect(sandbox: SandboxHost, port: int, outputs: list[str]) -> HostState:
    commands = build_inspect_commands(port)
    result = sandbox.run_command(commands, 120)
    outputs.extend([*commands, result.stdout, result.stderr])
    parsed = parse_inspect_result(result.stdout)
    assert parsed is not None, result.stdout + result.stderr
    assert parsed.ok, parsed.message
    assert parsed.state is not None
    return parsed.state


def test_existing_redis_is_taken_over_with_every_key(
    sandbox: SandboxHost, existing: HostState, run1: Run1
) -> None:
    # Given Debian's Redis (appendonly no) holding 300 keys in dump.rdb
    assert existing.redis is not None
    assert (existing.redis.appendonly, existing.redis.dbsize) == (False, EXISTING_KEYS)
    assert existing.files.rdb
    assert not existing.files.aof
    assert existing.redis.digest is not None

    # Then run-1 took it over by turning its AOF on while it ran, recorded the host first,
    assert run1.result.takeover == "aof-switched-on"
    assert run1.result.recorded
    assert sandbox.host_path(f"{RUNS_DIR}/run-1/state").exists()
    # and after the restart on our config (AOF on, auth required) the data is the same data
    assert (run1.result.keys_before, run1.result.keys_after) == (EXISTING_KEYS, EXISTING_KEYS)
    after = run1.taken_over
    assert after.redis is not None
    assert (after.config.ours, after.redis.appendonly, after.redis.access) == (True, True, "admin")
    assert after.redis.digest == existing.redis.digest
    assert restarted(existing, after)


def test_inspect_script_and_independent_reading_agree(
    sandbox: SandboxHost, run1: Run1, outputs_of_reverts: list[str]
) -> None:
    # When the host is read by the inspect script (as the admin user) and from the sandbox
    independent = run1.state
    scripted = inspect(sandbox, 6379, outputs_of_reverts)

    # Then they agree on every compared fact (the data digest included), and the script used
    # the admin credential
    assert compare_host(independent, scripted) == []
    assert scripted.redis is not None
    assert independent.redis is not None
    assert (scripted.redis.access, scripted.redis.auth_required) == ("admin", True)
    assert scripted.redis.digest == independent.redis.digest
    assert scripted.redis.dbsize == EXISTING_KEYS + CLIENT_KEYS
    assert scripted.port is not None
    assert scripted.port.status == "service"


@pytest.mark.parametrize(
    ("run_id", "change"),
    [("run-2", {"maxmemory": "256mb"}), ("run-3", {"port": 6380})],
)
def test_a_rerun_that_changes_the_config_is_reverted_exactly(
    sandbox: SandboxHost,
    run_install: RunInstall,
    params: InstallParameters,
    run1: Run1,
    outputs_of_reverts: list[str],
    run_id: str,
    change: dict[str, object],
) -> None:
    before = run1.state
    new_port = change.get("port", 6379)
    assert isinstance(new_port, int)
    # Given a re-run that changed the config and restarted Redis
    result, parsed = run_install(params.model_copy(update={"run_id": run_id, **change}))
    assert parsed is not None, result.stdout
    assert (parsed.ok, parsed.changed, parsed.recorded) == (True, True, True), parsed.message
    assert parsed.keys_after == EXISTING_KEYS + CLIENT_KEYS
    changed = read_host_state(sandbox, port=new_port)
    assert compare_host(before, changed) != []

    # When that run is reverted
    reverted = revert(sandbox, run_id, outputs_of_reverts)

    # Then the host is exactly as after run-1: config digest, port, service, keys and data
    assert (reverted.ok, reverted.changed, reverted.config_restored) == (True, True, True), reverted.message
    assert reverted.service_action == "restarted"
    assert reverted.keys_after == reverted.keys_before == EXISTING_KEYS + CLIENT_KEYS
    after = read_host_state(sandbox)
    assert compare_host(before, after) == []
    assert restarted(before, after)  # reported, not a difference
    # And the script's own view of the result agrees with the independent one
    assert reverted.after is not None
    assert compare_host(after, reverted.after) == []

    # When it is reverted again
    again = revert(sandbox, run_id, outputs_of_reverts)

    # Then nothing changes, Redis is not restarted
    assert (again.ok, again.changed, again.service_action) == (True, False, "none"), again.message
    assert not restarted(after, read_host_state(sandbox))


def test_a_port_held_by_another_process_is_refused_before_any_change(
    sandbox: SandboxHost,
    run_install: RunInstall,
    params: InstallParameters,
    run1: Run1,
    outputs_of_reverts: list[str],
) -> None:
    # Given another process on the host listening on the port a re-run asks for (it ends when
    # its stdin closes)
    other = subprocess.Popen(
        ["nsenter", "-t", str(sandbox.init_pid), "--mount", "--net", "--pid", "--root", "--wd",
         "python3", "-c",
         f"import socket, sys; s = socket.socket(); s.bind(('127.0.0.1', {OTHER_PORT})); s.listen(); "
         "print('up', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert other.stdout is not None
        assert other.stdout.readline().strip() == "up"
        before = read_host_state(sandbox, port=OTHER_PORT)
        assert before.port is not None
        assert before.port.status == "other"

        # When the install asks for that port
        result, parsed = run_install(params.model_copy(update={"run_id": "run-4", "port": OTHER_PORT}))

        # Then it is refused, naming the process, and nothing changed: no record, same
        # config, same Redis process, same data
        assert parsed is not None, result.stdout
        assert (parsed.ok, parsed.changed, parsed.error) == (False, False, "PortInUse")
        assert f"port {OTHER_PORT} is in use by python3" in parsed.message
        assert not sandbox.host_path(f"{RUNS_DIR}/run-4").exists()
        after = read_host_state(sandbox, port=OTHER_PORT)
        assert compare_host(before, after) == []
        assert not restarted(before, after)
        # And reverting that run finds nothing to do
        nothing = revert(sandbox, "run-4", outputs_of_reverts)
        assert (nothing.ok, nothing.recorded, nothing.changed) == (True, False, False)
    finally:
        assert other.stdin is not None
        other.stdin.close()
        other.wait(timeout=10)


def test_reverting_the_takeover_gives_back_debians_redis_with_every_key(
    sandbox: SandboxHost,
    existing: HostState,
    run1: Run1,
    outputs_of_reverts: list[str],
) -> None:
    # When run-1 (the takeover) is reverted
    reverted = revert(sandbox, "run-1", outputs_of_reverts)

    # Then Debian's config, service and port are back, on its RDB (appendonly no), and every
    # key (the 300 it had and the 500 written since) is kept
    assert (reverted.ok, reverted.changed, reverted.config_restored) == (True, True, True), reverted.message
    after = read_host_state(sandbox)
    assert after.redis is not None
    assert after.config.sha256 == existing.config.sha256
    assert not after.config.ours
    assert after.service.listen_ports == existing.service.listen_ports
    assert (after.service.active, after.service.enabled) == (
        existing.service.active,
        existing.service.enabled,
    )
    assert (after.redis.appendonly, after.redis.access) == (False, "none")
    assert after.redis.dbsize == EXISTING_KEYS + CLIENT_KEYS
    # And the kernel settings files the install added are gone again (moved aside, not read)
    for added in ("/etc/sysctl.d/60-redis-migration.conf", "/etc/tmpfiles.d/redis-migration-thp.conf"):
        assert not sandbox.host_path(added).exists()
        assert sandbox.host_path(f"{added}.reverted-run-1").exists()
    old_digest = existing.redis.digest if existing.redis else None
    assert compare_host(existing, after) == [
        f"data digest: {old_digest} before, {after.redis.digest} after",
        f"dbsize: {EXISTING_KEYS} before, {EXISTING_KEYS + CLIENT_KEYS} after",
    ]


def secret_texts(sandbox: SandboxHost, outputs: list[str]) -> dict[str, str]:
    texts = {f"output {i}": text for i, text in enumerate(outputs)}
    for root in ("/var/lib/amazon/ssm", RUNS_DIR, "/var/log/redis"):
        for directory, _, files in os.walk(sandbox.host_path(root)):
            for name in files:
                texts[os.path.join(directory, name)] = Path(directory, name).read_text(errors="replace")
    return texts


@pytest.fixture(scope="module")
def admin_secret(sandbox: SandboxHost, run1: Run1) -> str:
    return sandbox.host_path(ADMIN_SECRET_FILE).read_text()


def test_admin_credential_is_root_only_and_only_its_hash_is_in_the_config(
    sandbox: SandboxHost, admin_secret: str
) -> None:
    path = sandbox.host_path(ADMIN_SECRET_FILE)
    stat = path.stat()
    assert (stat.st_uid, stat.st_gid, stat.st_mode & 0o777) == (0, 0, 0o600)
    assert len(admin_secret) >= 32
    # The config of run-1 (kept as .previous by the later re-runs) holds only the hash
    config = sandbox.host_path(f"{RUNS_DIR}/run-2/config").read_text()
    assert admin_secret not in config
    assert (
        f"user redis-migration-admin on #{hashlib.sha256(admin_secret.encode()).hexdigest()} %R~*" in config
    )


def test_no_password_or_admin_credential_anywhere(
    sandbox: SandboxHost,
    password: str,
    admin_secret: str,
    outputs: list[str],
    outputs_of_reverts: list[str],
) -> None:
    # Given every command and output of this module (install, inspect, revert), the SSM
    # agent's script files, the run records and Redis's logs
    texts = secret_texts(sandbox, [*outputs, *outputs_of_reverts])
    assert any("REDIS_REVERT_RESULT" in text for text in texts.values())
    assert any("REDIS_HOST_STATE" in text for text in texts.values())

    # Then neither secret appears in any of them
    assert [name for name, text in texts.items() if password in text] == []
    assert [name for name, text in texts.items() if admin_secret in text] == []


def test_a_maxmemory_below_the_data_held_is_refused_by_the_script_itself(
    sandbox: SandboxHost, run_install: RunInstall, params: InstallParameters, run1: Run1
) -> None:
    # Given the running Redis holding the scenario's keys
    before = read_host_state(sandbox)
    assert before.redis is not None
    assert before.redis.dbsize

    # When an install asks for 1kb (the reproduction), even without the preflight
    result, parsed = run_install(params.model_copy(update={"run_id": "tiny-1", "maxmemory": "1kb"}))

    # Then it is refused before any change and the keys are all there
    assert parsed is not None, result.stdout
    assert (parsed.ok, parsed.changed, parsed.error) == (False, False, "MaxmemoryTooLow")
    after = read_host_state(sandbox)
    assert compare_host(before, after) == []
    assert not restarted(before, after)
