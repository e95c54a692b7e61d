"""Taking over a stopped Redis (its data only in dump.rdb), and refusing one we cannot read.

One scenario on one sandbox, in order:

1. Debian's own Redis held 300 keys and was stopped (SIGTERM saved dump.rdb);
2. the install starts it on its own config first, so the RDB is loaded and written to an AOF,
   then restarts it on ours: the 300 keys (same digest) survive;
3. the revert stops it again, as it was, with Debian's config back; started by hand on that
   config, it still holds the same 300 keys;
4. a running Redis that requires a password we do not have is refused before any change.
"""

from __future__ import annotations

import pytest
import redis
from redis_migration.data.digest import digest_redis
from redis_migration.host.install import InstallParameters
from redis_migration.host.revert import build_revert_commands, parse_revert_result
from redis_migration.host.state import compare_host, restarted
from redis_migration.models import HostState

from redis_migration_ops.local_engine.sandbox_host import SandboxHost
from redis_migration_ops.rehearsal.sandbox_redis import read_host_state, start_existing_redis
from tests.host.conftest import RunInstall

pytestmark = pytest.mark.host

KEYS = 300


def debian_client(sandbox: SandboxHost, password: str | None = None) -> redis.Redis:
    host, port = sandbox.loopback_address(6379)
    return redis.Redis(host=host, port=port, password=password, socket_timeout=5)


@pytest.fixture(scope="module")
def stopped(sandbox: SandboxHost) -> tuple[HostState, str]:
    start_existing_redis(sandbox, KEYS)
    digest = digest_redis(debian_client(sandbox)).digest
    result = sandbox.run_command(["systemctl stop redis-server"], 60)
    assert result.exit_code == 0, result.stderr
    return read_host_state(sandbox), digest


def test_a_stopped_redis_is_loaded_from_its_rdb_then_taken_over(
    sandbox: SandboxHost,
    stopped: tuple[HostState, str],
    run_install: RunInstall,
    install_params: InstallParameters,
    password: str,
) -> None:
    # Given Debian's Redis stopped, its 300 keys only in dump.rdb
    before, digest = stopped
    assert (before.service.active, before.files.rdb, before.files.aof, before.redis) == (
        "inactive", True, False, None,
    )  # fmt: skip

    # When the install runs
    result, parsed = run_install(install_params.model_copy(update={"run_id": "stopped-1"}))

    # Then it loaded the RDB on the old config first and kept every key through the restart
    assert parsed is not None, result.stdout
    assert parsed.ok, parsed.message
    assert (parsed.takeover, parsed.keys_before, parsed.keys_after) == ("rdb-loaded", KEYS, KEYS)
    assert digest_redis(debian_client(sandbox, password)).digest == digest


def test_reverting_stops_it_again_with_its_config_and_its_data(
    sandbox: SandboxHost, stopped: tuple[HostState, str]
) -> None:
    before, digest = stopped
    # When the run is reverted
    result = sandbox.run_command(build_revert_commands("stopped-1"), 300)
    reverted = parse_revert_result(result.stdout)

    # Then Redis is stopped again with Debian's config, exactly as before
    assert reverted is not None, result.stdout + result.stderr
    assert (reverted.ok, reverted.changed) == (True, True), reverted.message
    assert reverted.service_action == "stopped"
    after = read_host_state(sandbox)
    assert compare_host(before, after) == []
    # And started by hand on that config (appendonly no, so from dump.rdb), it has the same data
    started = sandbox.run_command(["systemctl start redis-server"], 60)
    assert started.exit_code == 0, started.stderr
    assert digest_redis(debian_client(sandbox)).digest == digest


def test_a_redis_with_a_password_we_lack_is_refused_before_any_change(
    sandbox: SandboxHost, run_install: RunInstall, install_params: InstallParameters
) -> None:
    # Given Debian's Redis running and requiring a password the workflow does not have
    client = debian_client(sandbox)
    client.config_set("requirepass", "someone-elses-password")
    try:
        before = read_host_state(sandbox)
        assert before.redis is not None
        assert before.redis.access == "locked"

        # When the install runs
        result, parsed = run_install(install_params.model_copy(update={"run_id": "locked-1"}))

        # Then it is refused, and nothing changed (no record, same config, same process)
        assert parsed is not None, result.stdout
        assert (parsed.ok, parsed.changed, parsed.error) == (False, False, "ExistingRedisLocked")
        assert not sandbox.host_path("/var/lib/redis-migration/runs/locked-1").exists()
        after = read_host_state(sandbox)
        assert compare_host(before, after) == []
        assert not restarted(before, after)
    finally:
        locked = debian_client(sandbox, "someone-elses-password")
        locked.config_set("requirepass", "")


def test_a_retried_install_keeps_the_first_record_and_only_the_newest_20_stay(
    sandbox: SandboxHost, run_install: RunInstall, install_params: InstallParameters
) -> None:
    # Given 25 records of older runs
    runs = "/var/lib/redis-migration/runs"
    old = [f"{runs}/old-{i:02d}" for i in range(1, 26)]
    created = sandbox.run_command(
        [f"mkdir -p {path} && touch -d '{40 - i} days ago' {path}" for i, path in enumerate(old)], 30
    )
    assert created.exit_code == 0, created.stderr

    # When an install runs with a new run id, then is retried with the same id
    params = install_params.model_copy(update={"run_id": "retried-1"})
    first_result, first = run_install(params)
    assert first is not None, first_result.stdout
    assert (first.ok, first.recorded) == (True, True), first.message
    record = sandbox.host_path(f"{runs}/retried-1/state").read_bytes()
    second_result, second = run_install(params)

    # Then the retry keeps the first record (the host before the run, not before the retry)
    assert second is not None, second_result.stdout
    assert (second.ok, second.recorded, second.changed) == (True, False, False), second.message
    assert sandbox.host_path(f"{runs}/retried-1/state").read_bytes() == record
    # And only the newest 20 records stay: this one, the scenario's, and the newest old ones
    kept = sorted(path.name for path in sandbox.host_path(runs).iterdir())
    assert len(kept) == 20
    assert {"retried-1", "stopped-1"} <= set(kept)
    assert "old-01" not in kept
