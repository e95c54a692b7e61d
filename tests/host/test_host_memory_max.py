"""Redis pushed to its MemoryMax on the shared instance: the kernel's OOM killer acts inside Redis's
cgroup, and the co-tenant (the stand-in for Asterisk) lives on, waking every 20 ms throughout.

How Redis gets there: ``maxmemory`` bounds the dataset, not the process, so the push is the one the
budget counts as the fork's worst case. Redis holds 60 MiB, starts a BGSAVE slowed down by
``rdb-key-save-delay`` (a testing knob of Redis itself: microseconds per key), and every key is
rewritten while the child saves: each page the parent writes is copied (copy-on-write), until the
unit's cgroup reaches its MemoryMax. The limit here is tighter than the budget's (100 MiB for a
64mb maxmemory) so the push is certain in seconds; the mechanism is the same at any size.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis_migration.host.install import InstallParameters
from redis_migration.models import RedisLimits

from redis_migration_ops.local_engine.sandbox_host import SandboxHost
from redis_migration_ops.rehearsal.cotenant import (
    cotenant_pid,
    install_cotenant,
    lateness_offset,
    summarize,
    wait_for_samples,
)
from tests.host.conftest import RunInstall

pytestmark = pytest.mark.host

MIB = 1024**2
LIMITS = RedisLimits(
    memory_high=96 * MIB, memory_max=100 * MIB, cpu_weight=50, io_weight=50, oom_score_adjust=1000
)
KEYS = 6000
VALUE = 10 * 1024  # 6000 x 10 KiB: about 60 MiB, under the 64mb maxmemory
PUSH_DEADLINE_S = 90.0


def oom_kills(memory_cgroup: Path) -> int:
    """The OOM kills inside a v1 memory cgroup (memory.oom_control, ``oom_kill N``)."""
    for line in (memory_cgroup / "memory.oom_control").read_text().splitlines():
        name, _, value = line.partition(" ")
        if name == "oom_kill":
            return int(value)
    raise AssertionError("no oom_kill counter in memory.oom_control")


def test_redis_pushed_to_its_memory_max_is_killed_inside_its_cgroup_and_the_co_tenant_lives_on(
    sandbox: SandboxHost, run_install: RunInstall, install_params: InstallParameters, password: str
) -> None:
    if "memory" not in sandbox.cgroup_controllers:
        pytest.skip(f"the sandbox has no cgroup v1 memory controller here ({sandbox.cgroup_controllers})")
    # Given the co-tenant running, and Redis installed with its limits and the guide's smallest maxmemory
    co_tenant = install_cotenant(sandbox, hold_mb=32)
    _, installed = run_install(
        install_params.model_copy(update={"run_id": "push-1", "maxmemory": "64mb", "limits": LIMITS})
    )
    assert installed is not None
    assert installed.ok, installed.message
    redis_memory = sandbox.cgroup_path("memory", "/system.slice/redis-server.service")
    cotenant_memory = sandbox.cgroup_path("memory", "/system.slice/asterisk.service")
    assert redis_memory is not None
    assert cotenant_memory is not None
    host, port = sandbox.loopback_address(6379)
    client = redis.Redis(
        host=host, port=port, password=password, socket_timeout=30, retry=Retry(NoBackoff(), 0)
    )
    pipe = client.pipeline(transaction=False)
    for i in range(KEYS):
        pipe.set(f"call:{i}", bytes([i % 251]) * VALUE)
        if len(pipe) >= 200:
            pipe.execute()
    pipe.execute()
    assert oom_kills(redis_memory) == 0
    offset = lateness_offset(sandbox)

    # When a slowed-down save runs while every key is rewritten (copy-on-write on every page)
    client.config_set("rdb-key-save-delay", 1000)
    client.bgsave()
    deadline = time.monotonic() + PUSH_DEADLINE_S
    round_ = 0
    while oom_kills(redis_memory) == 0 and time.monotonic() < deadline:
        round_ += 1
        try:
            pipe = client.pipeline(transaction=False)
            for i in range(KEYS):
                pipe.set(f"call:{i}", bytes([(i + round_) % 251]) * VALUE)
                if len(pipe) >= 200:
                    pipe.execute()
            pipe.execute()
            if client.info("persistence")["rdb_bgsave_in_progress"] == 0:
                client.bgsave()
        except redis.RedisError:
            time.sleep(0.2)  # the parent was the one killed: its connection is gone

    # Then the kernel's OOM killer acted inside Redis's cgroup, at its MemoryMax
    assert oom_kills(redis_memory) >= 1
    assert int((redis_memory / "memory.failcnt").read_text()) > 0
    assert int((redis_memory / "memory.max_usage_in_bytes").read_text()) >= LIMITS.memory_max - 4 * MIB
    # And the co-tenant lives on: the same process, never in an OOM of its own, still waking
    assert cotenant_pid(sandbox) == co_tenant
    assert oom_kills(cotenant_memory) == 0
    machine_pid = sandbox.service_main_pid("asterisk")
    assert machine_pid is not None
    assert Path(f"/proc/{machine_pid}").exists()
    during = wait_for_samples(sandbox, offset, 1)
    after = lateness_offset(sandbox)
    later = wait_for_samples(sandbox, after, 50)  # a second's worth of wake-ups after the kill
    assert len(later) >= 50
    print(f"co-tenant during the push: {summarize(during)}; after: {summarize(later)}")
