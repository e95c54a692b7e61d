"""Where a rehearsal's writer connects: what its function's variables name, in every form a client writes it.

Pure: the configuration is given as variables (a writer reads them from Lambda before each write).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from redis_migration_ops.rehearsal.client_writes import ClientConfiguration, WriterSettings

ENDPOINT = "master.campaign.abc123.use1.cache.amazonaws.com"
READER = "replica.campaign.abc123.use1.cache.amazonaws.com"
IP = "10.42.1.4"
TOKEN_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:campaign-elasticache-auth-AbCdEf"
PASSWORD_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:campaign-redis-password-XyZ"


def configuration(*, tls: bool = True) -> ClientConfiguration:
    account: Any = SimpleNamespace(
        elasticache_endpoint=ENDPOINT,
        replication_group_id=None,
        private_ip=IP,
        description=SimpleNamespace(elasticache=SimpleNamespace(port=6379, transit_encryption=tls)),
    )
    return ClientConfiguration(engine=None, account=account, elasticache_names=[ENDPOINT, READER])  # type: ignore[arg-type]


def test_redis_host_and_port_any_case_and_a_trailing_dot() -> None:
    target = configuration().target_of(
        {
            "REDIS_HOST": "MASTER.Campaign.abc123.use1.cache.amazonaws.com.",
            "REDIS_PORT": "6379",
            "X": TOKEN_ARN,
        }
    )
    assert target is not None
    assert (target.kind, target.address, target.db, target.tls) == (
        "elasticache",
        f"{ENDPOINT}:6379",
        0,
        True,
    )
    assert target.secret_arn == TOKEN_ARN


def test_a_url_gives_its_port_database_and_tls() -> None:
    target = configuration(tls=False).target_of({"REDIS_URL": f"rediss://app@{READER}:6380/3"})
    assert target is not None
    assert (target.address, target.port, target.db, target.tls) == (f"{READER}:6380", 6380, 3, True)
    # A redis:// URL still gets TLS when the cache requires it
    plain = configuration(tls=True).target_of({"REDIS_URL": f"redis://{ENDPOINT}:6379/0"})
    assert plain is not None
    assert plain.tls is True


def test_host_port_and_a_bare_host_in_another_variable() -> None:
    pair = configuration().target_of({"CACHE_ENDPOINT": f"{ENDPOINT}:6379"})
    bare = configuration().target_of({"CACHE_HOST": ENDPOINT})
    assert pair is not None
    assert bare is not None
    assert pair.address == bare.address == f"{ENDPOINT}:6379"


def test_redis_host_comes_first_then_a_url_then_host_port() -> None:
    variables = {
        "A_URL": f"redis://{READER}:6379/2",
        "CACHE_ENDPOINT": f"{READER}:6379",
        "REDIS_HOST": IP,
        "REDIS_PORT": "6380",
        "REDIS_PASSWORD_SECRET_ARN": PASSWORD_ARN,
    }
    target = configuration().target_of(variables)
    assert target is not None
    assert (target.kind, target.address, target.tls, target.secret_arn) == (
        "self-hosted",
        f"{IP}:6380",
        False,
        PASSWORD_ARN,
    )
    del variables["REDIS_HOST"]
    url = configuration().target_of(variables)
    assert url is not None
    assert (url.address, url.db) == (f"{READER}:6379", 2)


def test_a_name_only_embedded_in_a_longer_value_is_not_reachable() -> None:
    assert configuration().target_of({"SEEDS": f"[{ENDPOINT}:6379, other:6379]"}) is None
    assert configuration().target_of({"LOG_LEVEL": "INFO"}) is None


def test_the_rate_is_bounded() -> None:
    with pytest.raises(ValueError, match="--client-writes 51"):
        WriterSettings(rate=51)
