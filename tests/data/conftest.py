"""Fixtures for the data tier: real redis-servers on loopback (the ElastiCache stand-in, a target).

Each fixture stops the server it started. Tests skip with the reason when the machine has no
redis-server.
"""

from __future__ import annotations

import secrets
import shutil
import string
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from redis_migration_ops.local_engine.elasticache_endpoint import ElastiCacheEndpoint
from redis_migration_ops.local_redis import local_redis_server

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
