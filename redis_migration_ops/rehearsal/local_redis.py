"""A throwaway redis-server on 127.0.0.1 for tests and benchmarks that do not need the sandbox.

Configured like the install (auth by the password's SHA-256 in the ACL) so the code under test
sees what it sees on the instance. Also the bounded write loop the durability figures use.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from redis_migration.host.install import password_sha256


def free_port() -> int:
    """A TCP port nothing listens on at this moment, on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def local_redis_server(
    workdir: Path, password: str, *, maxmemory: str = "64mb", start_deadline_s: float = 10.0
) -> Iterator[int]:
    """Start redis-server on a free loopback port, wait (bounded) until it answers, yield the port."""
    port = free_port()
    config = workdir / "redis.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\nprotected-mode yes\ndir {workdir}\n"
        f"user default on #{password_sha256(password)} ~* &* +@all\n"
        f"maxmemory {maxmemory}\nmaxmemory-policy allkeys-lru\nappendonly yes\nsave 300 1\n"
        f"logfile {workdir / 'redis.log'}\n"
    )
    server = subprocess.Popen(
        ["redis-server", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        client = redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=1)
        deadline = time.monotonic() + start_deadline_s
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def write_until_failure(client: redis.Redis, acked: list[int], stop_by: float, prefix: str) -> None:
    """SET ``<prefix>:<i>`` one at a time, recording each acknowledged i, until an error or ``stop_by``."""
    i = 0
    while time.monotonic() < stop_by:
        try:
            client.set(f"{prefix}:{i}", i)
        except redis.ConnectionError:
            return
        acked.append(i)
        i += 1
