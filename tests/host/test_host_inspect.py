"""The read-only inspect script on the real Debian 12 of the machine (copy-on-write sandbox):
its facts are right, it changes nothing, and the preflight rules judge what it reports.

One scenario on one sandbox, in order: a host where the package is installed but nothing runs,
then Debian's own Redis running with 300 keys, then a port held by another process.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis_migration.data.digest import digest_redis
from redis_migration.host.budget import assess_budget
from redis_migration.host.rules import assess_host
from redis_migration.host.state import build_inspect_commands, parse_inspect_result
from redis_migration.models import HostState

from redis_migration_ops.local_engine.sandbox_host import SandboxHost
from redis_migration_ops.rehearsal.sandbox_redis import read_host_state, start_existing_redis

pytestmark = pytest.mark.host

MARKER = "/run/before-inspect.marker"
HELD_PORT = 6391


def inspect(sandbox: SandboxHost, port: int = 6379, digest_max_keys: int = 100_000) -> HostState:
    result = sandbox.run_command(build_inspect_commands(port, digest_max_keys=digest_max_keys), 120)
    assert result.exit_code == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1].startswith("REDIS_HOST_STATE {")
    assert len(result.stdout) < 2500  # the console's budget; the API keeps 24,000
    parsed = parse_inspect_result(result.stdout)
    assert parsed is not None
    assert parsed.ok, parsed.message
    assert parsed.state is not None
    return parsed.state


def changed_files(sandbox: SandboxHost) -> list[str]:
    result = sandbox.run_command(
        [f"find /etc /var -newer {MARKER} -not -path '/var/lib/amazon/*' -not -path /var/lib/amazon"], 30
    )
    return sorted(result.stdout.split())


@pytest.fixture(scope="module")
def idle(sandbox: SandboxHost) -> HostState:
    sandbox.run_command([f"touch {MARKER}"], 10)
    time.sleep(0.02)
    return inspect(sandbox)


@pytest.fixture(scope="module")
def running(sandbox: SandboxHost, idle: HostState) -> HostState:
    start_existing_redis(sandbox, 300)
    sandbox.run_command([f"touch {MARKER}"], 10)
    time.sleep(0.02)
    return inspect(sandbox)


def test_facts_of_a_host_where_nothing_runs(sandbox: SandboxHost, idle: HostState) -> None:
    config = sandbox.host_path("/etc/redis/redis.conf").read_bytes()
    assert (idle.os.id, idle.os.version, idle.os.platform, idle.os.problem) == (
        "debian",
        "12",
        "debian",
        None,
    )
    assert (idle.package.name, idle.package.installed) == ("redis-server", True)
    assert (idle.server.binary, idle.server.version) == ("/usr/bin/redis-server", "7.0.15")
    assert idle.config.path == "/etc/redis/redis.conf"
    assert idle.config.sha256 == hashlib.sha256(config).hexdigest()
    assert (idle.config.ours, idle.config.data_dir) == (False, "/var/lib/redis")
    assert (idle.service.name, idle.service.active, idle.service.main_pid) == (
        "redis-server",
        "inactive",
        None,
    )
    assert idle.service.listen_ports == []
    assert idle.port is not None
    assert (idle.port.number, idle.port.status) == (6379, "free")
    meminfo = Path("/proc/meminfo").read_text().split()
    assert idle.mem_total_bytes == int(meminfo[meminfo.index("MemTotal:") + 1]) * 1024
    assert idle.admin_secret is False
    assert idle.redis is None
    # And inspecting changed nothing
    assert changed_files(sandbox) == []


def test_facts_of_debians_redis_holding_300_keys(sandbox: SandboxHost, running: HostState) -> None:
    state = running
    assert state.service.active == "active"
    assert state.service.main_pid is not None
    assert sandbox.host_pid(state.service.main_pid) == sandbox.service_main_pid()
    assert state.service.listen_ports == [6379]
    assert state.port is not None
    assert (state.port.status, state.port.pid) == ("service", state.service.main_pid)
    assert state.files.rdb is True
    assert state.files.aof is False
    redis_facts = state.redis
    assert redis_facts is not None
    assert (redis_facts.access, redis_facts.auth_required, redis_facts.appendonly) == ("none", False, False)
    assert (redis_facts.dbsize, redis_facts.expires, redis_facts.keys_by_db) == (300, 60, {"0": 300})
    assert (redis_facts.maxmemory, redis_facts.maxmemory_policy, redis_facts.version) == (
        0, "noeviction", "7.0.15",
    )  # fmt: skip
    assert redis_facts.used_memory is not None
    assert redis_facts.used_memory > 0
    host, port = sandbox.loopback_address(6379)
    assert redis_facts.digest == digest_redis(redis.Redis(host=host, port=port)).digest
    # And inspecting a running Redis changed nothing either
    assert changed_files(sandbox) == []


def test_the_independent_reading_agrees(sandbox: SandboxHost, running: HostState) -> None:
    independent = read_host_state(sandbox)
    assert independent.model_dump(include={"config", "files", "service", "port"}) == running.model_dump(
        include={"config", "files", "service", "port"}
    )
    assert independent.redis is not None
    assert running.redis is not None
    assert independent.redis.model_dump(exclude={"used_memory"}) == running.redis.model_dump(
        exclude={"used_memory"}
    )


@pytest.fixture
def held_port(sandbox: SandboxHost) -> Iterator[None]:
    holder = subprocess.Popen(
        ["nsenter", "-t", str(sandbox.init_pid), "--mount", "--net", "--pid", "--root", "--wd",
         "python3", "-c",
         f"import socket, sys; s = socket.socket(); s.bind(('127.0.0.1', {HELD_PORT})); s.listen(); "
         "print('up', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "up"
    try:
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)


def test_a_port_held_by_another_process_is_named(
    sandbox: SandboxHost, running: HostState, held_port: None
) -> None:
    state = inspect(sandbox, HELD_PORT)
    assert state.port is not None
    assert (state.port.number, state.port.status, state.port.process) == (HELD_PORT, "other", "python3")
    assert state.port.pid is not None
    assert state.port.pid != state.service.main_pid

    # And the preflight rules refuse it, naming the field, the port and the process
    assessment = assess_host(state, HELD_PORT, "512mb", "allkeys-lru")
    assert f"redisPort: {HELD_PORT} is in use by python3 (pid {state.port.pid})" in " ".join(
        assessment.problems
    )


def test_the_rules_on_the_real_host(running: HostState) -> None:
    # A sane request takes Debian's Redis over, with a warning that says how
    fine = assess_host(running, 6379, "512mb", "allkeys-lru")
    assert fine.problems == []
    assert any("holds 300 keys" in warning and "switched on" in warning for warning in fine.warnings)
    # 1kb is below the floor and below the data already held
    tiny = assess_host(running, 6379, "1kb", "allkeys-lru")
    assert len(tiny.problems) == 2
    assert tiny.problems[0].startswith("maxmemory: 1kb is below the floor of 64.0 MiB")
    assert tiny.problems[1].startswith("maxmemory: 1kb is below the 300 keys' ")
    # More than the instance can hold (beside its fork and what runs there) is refused, naming it:
    # the inspect read the instance's figures, so the budget judges it (host/budget.py)
    assert running.mem_total_bytes is not None
    assert running.machine is not None
    assert running.machine.mem_total_bytes == running.mem_total_bytes
    huge = f"{running.mem_total_bytes // 1024**2}mb"
    assert assess_host(running, 6379, huge, "allkeys-lru").problems == []
    assert assess_budget(running, huge).problems[0].startswith(f"maxmemory: {huge} does not fit")


def test_a_digest_limit_gives_a_reason(sandbox: SandboxHost, running: HostState) -> None:
    state = inspect(sandbox, digest_max_keys=100)
    assert state.redis is not None
    assert state.redis.digest is None
    assert state.redis.digest_reason == "300 keys, more than the 100 digested on the host"


def test_bad_arguments_are_refused_without_echo(sandbox: SandboxHost) -> None:
    command = build_inspect_commands(6379)[0].replace("--digest-max-keys 100000", "--secret s3cr3tValue")
    result = sandbox.run_command([command], 60)
    assert result.exit_code != 0
    assert '"error":"BadArgument"' in result.stdout.splitlines()[-1]
    assert "s3cr3tValue" not in result.stdout + result.stderr
