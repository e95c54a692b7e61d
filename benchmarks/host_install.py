"""Host install benchmark: first install and no-change re-run times in the sandbox host, probe
latency, and acknowledged writes lost to a kill -9 of the server.

Run as root: ``.venv/bin/python benchmarks/host_install.py [--pings N] [--write-seconds S]``.
Every connection goes to 127.0.0.1 (the sandbox's loopback forwarder).
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import string
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis_migration.host.install import (
    InstallParameters,
    build_install_commands,
    parse_install_result,
    password_sha256,
)
from redis_migration.watch.probe import ExpectedRedisConfig, probe_redis

from redis_migration_ops.local_engine.sandbox_host import SandboxHost
from redis_migration_ops.rehearsal.local_redis import write_until_failure

PRIVATE_IP = "10.0.1.23"


def timed_install(sandbox: SandboxHost, params: InstallParameters) -> tuple[float, bool]:
    started = time.perf_counter()
    result = sandbox.run_command(build_install_commands(params), 300)
    elapsed = time.perf_counter() - started
    parsed = parse_install_result(result.stdout)
    if parsed is None or not parsed.ok:
        sys.exit(f"install failed: {result.stdout[-800:]}{result.stderr[-400:]}")
    return elapsed, parsed.changed


def kill9_loss(sandbox: SandboxHost, password: str, write_seconds: float) -> tuple[int, int]:
    """Acked SETs while the server is SIGKILLed mid-stream; returns (acknowledged, recovered)."""
    host, port = sandbox.loopback_address(6379)
    client = redis.Redis(
        host=host, port=port, password=password, socket_timeout=2, retry=Retry(NoBackoff(), 0)
    )
    acked: list[int] = []
    stop_by = time.monotonic() + write_seconds

    thread = threading.Thread(target=write_until_failure, args=(client, acked, stop_by, "bench"), daemon=True)
    thread.start()
    time.sleep(write_seconds / 2)
    pid = sandbox.service_main_pid()
    if pid is None:
        sys.exit("redis-server is not running in the sandbox")
    os.kill(pid, signal.SIGKILL)
    thread.join(timeout=write_seconds + 5)
    if sandbox.run_command(["systemctl start redis-server"], 60).exit_code != 0:
        sys.exit("redis-server did not start again after kill -9")
    client = redis.Redis(host=host, port=port, password=password, socket_timeout=5)
    recovered = 0
    for start in range(0, len(acked), 1000):
        keys = [f"bench:{i}" for i in acked[start : start + 1000]]
        recovered += sum(value is not None for value in client.mget(keys))
    return len(acked), recovered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pings", type=int, default=1000)
    parser.add_argument("--write-seconds", type=float, default=3.0)
    args = parser.parse_args()
    missing = SandboxHost.missing_requirements()
    if missing:
        sys.exit("cannot run a sandbox here, missing: " + ", ".join(missing))

    password = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    params = InstallParameters(
        bind_addresses=[PRIVATE_IP, "127.0.0.1"], password_sha256=password_sha256(password)
    )
    with tempfile.TemporaryDirectory(prefix="host-install-bench-") as workdir:
        started = time.perf_counter()
        with SandboxHost(Path(workdir), PRIVATE_IP) as sandbox:
            print(f"sandbox start:        {time.perf_counter() - started:7.3f} s")
            first, changed = timed_install(sandbox, params)
            print(f"first install:        {first:7.3f} s (changed={changed})")
            rerun, changed = timed_install(sandbox, params)
            print(f"no-change re-run:     {rerun:7.3f} s (changed={changed})")
            host, port = sandbox.loopback_address(6379)
            report = probe_redis(host, port, password, ExpectedRedisConfig(), pings=args.pings)
            print(
                f"probe latency:        p50 {report.latency_ms_p50} ms, p99 {report.latency_ms_p99} ms "
                f"over {report.pings} PINGs (through the loopback forwarder)"
            )
            acked, recovered = kill9_loss(sandbox, password, args.write_seconds)
            print(
                f"kill -9 durability:   {acked} writes acknowledged, {recovered} recovered, "
                f"{acked - recovered} lost"
            )


if __name__ == "__main__":
    main()
