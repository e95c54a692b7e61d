"""The real install script on the machine's real Debian 12 (copy-on-write sandbox), then the real
probe against the redis-server it started, reached through the sandbox's loopback forwarder.

The module is one scenario on one sandbox, in order: first install, checks of what it configured,
a no-change re-run, then a changed parameter.
"""

from __future__ import annotations

import hashlib
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis_migration.data.digest import digest_redis
from redis_migration.host.install import InstallParameters, InstallResult, install_script
from redis_migration.host.state import build_inspect_commands, parse_host_state
from redis_migration.watch.probe import ExpectedRedisConfig, memory_bytes, probe_redis

from redis_migration_ops.local_engine.sandbox_host import CommandResult, SandboxHost
from tests.host.conftest import PRIVATE_IP, RunInstall

pytestmark = pytest.mark.host

CONFIG_FILE = "/etc/redis/redis.conf"


@pytest.fixture(scope="module")
def first_install(
    run_install: RunInstall, install_params: InstallParameters
) -> tuple[CommandResult, InstallResult]:
    result, parsed = run_install(install_params)
    assert parsed is not None, result.stdout + result.stderr
    return result, parsed


@pytest.fixture
def client(sandbox: SandboxHost, password: str, first_install: Any) -> redis.Redis:
    host, port = sandbox.loopback_address(6379)
    return redis.Redis(host=host, port=port, password=password, decode_responses=True, socket_timeout=2)


def config_get(client: redis.Redis, name: str) -> str:
    value = client.config_get(name)
    return str(value[name])


def test_first_install_succeeds_and_reports_a_change(
    sandbox: SandboxHost, first_install: tuple[CommandResult, InstallResult]
) -> None:
    # Given a Debian 12 host with the redis-server package but no configuration of ours
    result, parsed = first_install

    # Then the run succeeded, changed the host, and its result line is the last line
    assert result.exit_code == 0, result.stdout
    assert parsed.ok, parsed.message
    assert parsed.changed
    assert parsed.server == "redis-server"
    assert parsed.version == "7.0.15"
    assert parsed.service == "active"
    assert parsed.error is None
    assert result.stdout.strip().splitlines()[-1].startswith("REDIS_INSTALL_RESULT {")
    assert len(result.stdout) + len(result.stderr) < 2500
    # And the reported checksum is the file's
    config = sandbox.host_path(CONFIG_FILE).read_bytes()
    assert parsed.config_sha256 == hashlib.sha256(config).hexdigest()


def test_every_configured_value_is_live_in_the_server(client: redis.Redis) -> None:
    # When the running server is asked for its configuration
    # Then every value the script wrote is in effect
    assert config_get(client, "port") == "6379"
    assert config_get(client, "bind") == f"{PRIVATE_IP} 127.0.0.1"
    assert config_get(client, "protected-mode") == "yes"
    assert config_get(client, "maxmemory") == str(512 * 1024 * 1024)
    assert config_get(client, "maxmemory-policy") == "allkeys-lru"
    assert config_get(client, "save") == "300 1"
    assert config_get(client, "appendonly") == "yes"
    assert config_get(client, "appendfsync") == "everysec"
    assert config_get(client, "dir") == "/var/lib/redis"
    assert config_get(client, "logfile") == "/var/log/redis/redis.log"
    assert config_get(client, "pidfile") == "/run/redis/redis-server.pid"
    assert config_get(client, "daemonize") == "no"
    assert config_get(client, "supervised") == "systemd"
    persistence = client.info("persistence")
    assert persistence["aof_enabled"] == 1
    assert client.info("server")["redis_version"] == "7.0.15"


def test_password_works_only_through_auth(
    sandbox: SandboxHost, client: redis.Redis, password: str, install_params: InstallParameters
) -> None:
    host, port = sandbox.loopback_address(6379)
    # No retries: redis-py counts AuthenticationError as a ConnectionError and would retry it.
    no_retry = Retry(NoBackoff(), 0)
    anonymous = redis.Redis(
        host=host, port=port, protocol=2, driver_info=None, socket_timeout=2, retry=no_retry
    )
    wrong = redis.Redis(host=host, port=port, password=password[::-1], socket_timeout=2, retry=no_retry)

    # Then without the password nothing is answered, with a wrong one neither
    with pytest.raises(redis.AuthenticationError, match="Authentication required"):
        anonymous.ping()
    with pytest.raises(redis.AuthenticationError):
        wrong.ping()
    # And with AUTH it works, while requirepass stays empty (the ACL holds only the hash)
    assert client.ping() is True
    assert config_get(client, "requirepass") == ""
    default_user = client.acl_getuser("default")
    assert default_user is not None
    assert default_user["passwords"] == [install_params.password_sha256]


def test_the_host_reads_every_key_even_one_named_empty(sandbox: SandboxHost, client: redis.Redis) -> None:
    # Given our Redis holding a key named "" (legal in Redis, and met in real data) among others
    client.set("", "the empty name")
    client.hset("profile", mapping={"name": "ana"})
    try:
        # When the host inspects it with its admin user (the digest reads every key)
        result = sandbox.run_command(build_inspect_commands(6379), 120)
        state = parse_host_state(result.stdout)

        # Then it read them all: the digest is Python's, key for key
        assert state is not None, result.stdout + result.stderr
        assert state.redis is not None
        assert state.redis.access == "admin"
        assert state.redis.digest_reason is None, result.stdout
        python = digest_redis(client)
        assert (state.redis.digest, state.redis.digest_keys) == (python.digest, python.keys)
    finally:
        client.delete("", "profile")


def test_files_owners_modes_and_kernel_settings(sandbox: SandboxHost) -> None:
    config = sandbox.host_path(CONFIG_FILE).stat()
    redis_uid = int(sandbox.run_command(["id -u redis"], 10).stdout)

    # Then the config is redis:redis 0640, the data and log directories are redis's
    assert (config.st_uid, config.st_gid != 0, stat.S_IMODE(config.st_mode)) == (redis_uid, True, 0o640)
    for directory in ("/var/lib/redis", "/var/log/redis"):
        assert sandbox.host_path(directory).stat().st_uid == redis_uid
    # And the kernel settings are persisted for boot
    sysctl = sandbox.host_path("/etc/sysctl.d/60-redis-migration.conf").read_text()
    assert "vm.overcommit_memory = 1" in sysctl
    assert "net.core.somaxconn = " in sysctl
    assert (
        "transparent_hugepage/enabled - - - - never"
        in sandbox.host_path("/etc/tmpfiles.d/redis-migration-thp.conf").read_text()
    )
    # And the service is enabled for boot
    assert sandbox.run_command(["systemctl is-enabled redis-server"], 10).stdout.strip() == "enabled"
    # And the machine itself was not touched
    assert not Path("/etc/sysctl.d/60-redis-migration.conf").exists()


def test_probe_passes_against_the_installed_server(
    sandbox: SandboxHost, password: str, first_install: Any
) -> None:
    host, port = sandbox.loopback_address(6379)

    report = probe_redis(host, port, password, ExpectedRedisConfig(), pings=100)

    assert report.ok, report.failure_message()
    assert [check.name for check in report.checks] == [
        "auth_required", "ping", "set_get_del", "version", "appendonly", "maxmemory",
        "persistence_status", "latency",
    ]  # fmt: skip
    assert report.version == "7.0.15"
    assert report.pings == 100
    assert report.latency_ms_p50 is not None
    assert report.latency_ms_p99 is not None
    assert 0 < report.latency_ms_p50 <= report.latency_ms_p99


def test_second_run_changes_nothing_and_keeps_the_same_process(
    sandbox: SandboxHost,
    run_install: RunInstall,
    install_params: InstallParameters,
    first_install: tuple[CommandResult, InstallResult],
) -> None:
    pid_before = sandbox.service_main_pid()
    assert pid_before is not None

    # When the same install runs again
    result, parsed = run_install(install_params)

    # Then it reports no change and Redis was not restarted
    assert parsed is not None, result.stdout
    assert (parsed.ok, parsed.changed) == (True, False), parsed.message
    assert parsed.config_sha256 == first_install[1].config_sha256
    assert sandbox.service_main_pid() == pid_before


def test_changed_maxmemory_restarts_and_keeps_the_previous_config(
    sandbox: SandboxHost, run_install: RunInstall, install_params: InstallParameters, password: str
) -> None:
    pid_before = sandbox.service_main_pid()
    config_before = sandbox.host_path(CONFIG_FILE).read_text()

    # When maxmemory changes
    result, parsed = run_install(install_params.model_copy(update={"maxmemory": "256mb"}))

    # Then the server was restarted with it and the replaced config was kept
    assert parsed is not None, result.stdout
    assert (parsed.ok, parsed.changed) == (True, True), parsed.message
    pid_after = sandbox.service_main_pid()
    assert pid_after is not None
    assert pid_after != pid_before
    assert sandbox.host_path(CONFIG_FILE + ".previous").read_text() == config_before
    host, port = sandbox.loopback_address(6379)
    report = probe_redis(host, port, password, ExpectedRedisConfig(maxmemory_bytes=memory_bytes("256mb")))
    assert report.ok, report.failure_message()


def test_two_installs_at_once_take_turns_and_restart_redis_once(
    sandbox: SandboxHost, run_install: RunInstall, install_params: InstallParameters
) -> None:
    # Given a retried InstallRedis step sent the same new configuration twice, at once
    params = install_params.model_copy(update={"maxmemory": "384mb"})
    pid_before = sandbox.service_main_pid()
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda _: run_install(params), range(2)))

    # Then both succeed, exactly one of them changed anything, and Redis was restarted once
    parsed = [result for _, result in runs]
    assert all(result is not None and result.ok for result in parsed), [r.stdout for r, _ in runs]
    assert sorted(result.changed for result in parsed if result is not None) == [False, True]
    assert sandbox.service_main_pid() not in (None, pid_before)
    assert "maxmemory 384mb" in sandbox.host_path(CONFIG_FILE).read_text()


def test_no_plaintext_password_anywhere(sandbox: SandboxHost, password: str, outputs: list[str]) -> None:
    # Given every command sent and every output received in this module, and the host's files
    assert outputs, "the scenario above ran no command"
    texts = {"script": install_script(), **{f"output {i}": text for i, text in enumerate(outputs)}}
    for inside in (
        CONFIG_FILE,
        CONFIG_FILE + ".previous",
        "/var/log/redis/redis.log",
        "/var/lib/redis-migration/server",
    ):
        path = sandbox.host_path(inside)
        if path.exists():
            texts[inside] = path.read_text(errors="replace")
    ssm_dir = sandbox.host_path("/var/lib/amazon/ssm")
    for root, _, files in os.walk(ssm_dir):
        for name in files:
            texts[os.path.join(root, name)] = Path(root, name).read_text(errors="replace")
    assert any("user default on #" in text for text in texts.values())
    # (the host-local admin credential the install generated, read from its root-only file)
    admin_secret = sandbox.host_path("/var/lib/redis-migration/admin-password").read_text()
    assert len(admin_secret) >= 32

    # Then neither the password nor the admin credential appears in any of them
    leaks = [name for name, text in texts.items() if password in text]
    assert leaks == []
    assert [name for name, text in texts.items() if admin_secret in text] == []
