"""Fixtures for the data tier: real redis-servers on loopback (the ElastiCache stand-in, a target).

Each fixture stops the server it started. Tests skip with the reason when the machine has no
redis-server.
"""

from __future__ import annotations

import json
import secrets
import shutil
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from redis_migration.data.copy import CopyProgress, copy_data
from redis_migration.data.link import Credentials, RedisEndpoint, RedisLink

from redis_migration_ops.local_engine.ec2.network_guard import AddressMap, NetworkGuard
from redis_migration_ops.local_engine.elasticache.endpoint import ElastiCacheEndpoint
from redis_migration_ops.rehearsal.local_redis import local_redis_server

ENDPOINT = "campaign-redis.abc123.0001.use1.cache.amazonaws.com"


def _token() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(32))


@pytest.fixture(scope="session", autouse=True)
def _needs_redis_server() -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("the data tier needs redis-server (apt-get install -y redis-server)")


@pytest.fixture
def auth_token() -> str:
    return _token()


@pytest.fixture
def elasticache(tmp_path: Path, auth_token: str) -> Iterator[ElastiCacheEndpoint]:
    """The ElastiCache stand-in (TLS, AUTH token, restricted commands renamed away), empty."""
    with ElastiCacheEndpoint(tmp_path / "elasticache", [ENDPOINT], auth_token=auth_token) as stand_in:
        yield stand_in


@pytest.fixture
def target_password() -> str:
    return _token()


@pytest.fixture
def target(tmp_path: Path, target_password: str) -> Iterator[redis.Redis]:
    """A self-hosted-like Redis (ACL hash of the password, AOF, 256mb allkeys-lru), empty."""
    workdir = tmp_path / "target"
    workdir.mkdir()
    with local_redis_server(workdir, target_password, maxmemory="256mb") as port:
        client = redis.Redis(host="127.0.0.1", port=port, password=target_password, socket_timeout=30)
        yield client
        client.close()


@dataclass(frozen=True)
class Side:
    """One side of a copy as product code sees it: its endpoint, credentials, and an admin client."""

    endpoint: RedisEndpoint
    credentials: Credentials
    admin_kwargs: dict[str, Any]

    @property
    def admin(self) -> Any:
        """A client reaching the server directly (database 0)."""
        return redis.Redis(**self.admin_kwargs)

    def link(self) -> RedisLink:
        return RedisLink(self.endpoint, self.credentials).connect()


@pytest.fixture
def guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[AddressMap]:
    """What the local engine does for product code: loopback only, names mapped (NetworkGuard)."""
    routes = AddressMap()
    network = NetworkGuard(routes)
    network.install()
    try:
        yield routes
    finally:
        network.uninstall()


@pytest.fixture
def source(
    elasticache: ElastiCacheEndpoint, auth_token: str, guard: AddressMap, monkeypatch: pytest.MonkeyPatch
) -> Side:
    """The stand-in as the copy reaches it in AWS: its endpoint name, TLS checked with the default
    trust store (to which the local CA is added, as the engine does), the AUTH token."""
    guard.add(ENDPOINT, 6379, ("127.0.0.1", elasticache.loopback_port))
    assert elasticache.tls_files is not None
    monkeypatch.setenv("SSL_CERT_FILE", str(elasticache.tls_files.trust_bundle))
    return Side(
        RedisEndpoint(host=ENDPOINT, port=6379, tls=True),
        Credentials(username=None, password=auth_token),
        elasticache.connection_kwargs(socket_timeout=60),
    )


@pytest.fixture
def target_side(target: redis.Redis, target_password: str) -> Side:
    """The self-hosted Redis as the copy reaches it (plaintext, password)."""
    port = int(target.connection_pool.connection_kwargs["port"])
    return Side(
        RedisEndpoint(host="127.0.0.1", port=port),
        Credentials(username=None, password=target_password),
        {
            "host": "127.0.0.1",
            "port": port,
            "password": target_password,
            "socket_timeout": 60,
            "driver_info": None,
        },
    )


def copy_until_done(
    source: Side, target: Side, progress: CopyProgress | None = None, **kwargs: Any
) -> CopyProgress:
    """Invoke the copy until it is done, passing the progress through JSON as the ASL does."""
    for _ in range(10_000):
        progress = copy_data(
            source.endpoint,
            source.credentials,
            target.endpoint,
            target.credentials,
            progress=progress,
            **kwargs,
        )
        if progress.done:
            return progress
        progress = CopyProgress.model_validate(json.loads(json.dumps(progress.to_json_dict())))
    raise AssertionError("the copy did not finish in 10,000 invocations")
