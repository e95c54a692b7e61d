"""Durability of the installed configuration (AOF, appendfsync everysec) across a kill -9.

Writes are acknowledged one by one while the server is killed with SIGKILL; after a restart every
acknowledged write must be back. With ``appendfsync everysec`` Redis write()s the AOF buffer
before it replies, so a process crash (unlike a kernel crash or power loss, where up to about a
second of writes may be lost) loses no acknowledged write: the expected figure is zero.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis_migration.host.install import InstallParameters
from redis_migration.watch.probe import ExpectedRedisConfig, probe_redis

from redis_migration_ops.local_engine.sandbox_host import SandboxHost
from redis_migration_ops.rehearsal.local_redis import write_until_failure
from tests.host.conftest import RunInstall

pytestmark = pytest.mark.host

WRITE_WINDOW_S = 3.0
KILL_AFTER_S = 1.5


def test_acknowledged_writes_survive_kill_9(
    sandbox: SandboxHost, run_install: RunInstall, install_params: InstallParameters, password: str
) -> None:
    # Given Redis installed by the script
    _, parsed = run_install(install_params)
    assert parsed is not None
    assert parsed.ok, parsed.message
    host, port = sandbox.loopback_address(6379)
    client = redis.Redis(
        host=host, port=port, password=password, socket_timeout=2, retry=Retry(NoBackoff(), 0)
    )
    pid_before = sandbox.service_main_pid()
    assert pid_before is not None

    # When a writer is acknowledged write after write and the server is killed with SIGKILL
    acked: list[int] = []
    writer = threading.Thread(
        target=write_until_failure,
        args=(client, acked, time.monotonic() + WRITE_WINDOW_S, "durability"),
        daemon=True,
    )
    writer.start()
    time.sleep(KILL_AFTER_S)
    os.kill(pid_before, signal.SIGKILL)
    writer.join(timeout=WRITE_WINDOW_S + 5)
    assert not writer.is_alive()
    assert len(acked) > 100, "too few writes to measure anything"

    # And the service is started again
    restart = sandbox.run_command(["systemctl start redis-server"], 60)
    assert restart.exit_code == 0, restart.stderr
    assert sandbox.service_main_pid() not in (None, pid_before)

    # Then every acknowledged write is back
    client = redis.Redis(host=host, port=port, password=password, socket_timeout=5)
    recovered = 0
    for start in range(0, len(acked), 1000):
        keys = [f"durability:{i}" for i in acked[start : start + 1000]]
        recovered += sum(value is not None for value in client.mget(keys))
    lost = len(acked) - recovered
    print(f"durability: {len(acked)} writes acknowledged, {recovered} recovered, {lost} lost after kill -9")
    assert lost == 0
    # And the server passes the probe again
    report = probe_redis(host, port, password, ExpectedRedisConfig())
    assert report.ok, report.failure_message()
