"""The one definition of "uses this ElastiCache": every endpoint, every spelling, every form."""

from __future__ import annotations

import pytest
from redis_migration.clients.endpoints import (
    CacheNames,
    endpoint_addresses,
    reference_in,
    references_to,
    rewritten,
    uses_cache,
)

GROUP = {
    "ReplicationGroupId": "campaign-redis",
    "NodeGroups": [
        {
            "PrimaryEndpoint": {
                "Address": "master.campaign-redis.abc123.use1.cache.amazonaws.com",
                "Port": 6379,
            },
            "ReaderEndpoint": {
                "Address": "replica.campaign-redis.abc123.use1.cache.amazonaws.com",
                "Port": 6379,
            },
            "NodeGroupMembers": [
                {
                    "ReadEndpoint": {
                        "Address": "campaign-redis-001.campaign-redis.abc123.use1.cache.amazonaws.com"
                    }
                },
                {
                    "ReadEndpoint": {
                        "Address": "campaign-redis-002.campaign-redis.abc123.use1.cache.amazonaws.com"
                    }
                },
            ],
        }
    ],
}
PRIMARY = "master.campaign-redis.abc123.use1.cache.amazonaws.com"
NAMES = CacheNames.of(endpoint_addresses(GROUP))


def test_every_endpoint_of_the_group_is_a_name_of_the_cache() -> None:
    assert endpoint_addresses(GROUP) == [
        PRIMARY,
        "replica.campaign-redis.abc123.use1.cache.amazonaws.com",
        "campaign-redis-001.campaign-redis.abc123.use1.cache.amazonaws.com",
        "campaign-redis-002.campaign-redis.abc123.use1.cache.amazonaws.com",
    ]
    configured = CacheNames.of([f"{PRIMARY}:6379"])
    assert configured.hosts == {PRIMARY}


@pytest.mark.parametrize(
    ("value", "form", "port"),
    [
        (PRIMARY, "host", None),
        (PRIMARY.upper(), "host", None),
        (PRIMARY + ".", "host", None),
        ("replica.campaign-redis.abc123.use1.cache.amazonaws.com", "host", None),
        ("campaign-redis-002.campaign-redis.abc123.use1.cache.amazonaws.com", "host", None),
        (f"{PRIMARY}:6379", "host:port", 6379),
        (f"{PRIMARY.upper()}.:6380", "host:port", 6380),
        (f"redis://{PRIMARY}:6379/0", "url", 6379),
        (f"rediss://{PRIMARY}:6379", "url", 6379),
        (f"REDISS://app-user@{PRIMARY.upper()}:6379/2?ssl_cert_reqs=required", "url", 6379),
        (f"redis://{PRIMARY}", "url", None),
        (f"{PRIMARY}:6379,replica.campaign-redis.abc123.use1.cache.amazonaws.com:6379", "embedded", None),
        (f'{{"host": "{PRIMARY}"}}', "embedded", None),
        # Not a Redis URL: still a use (embedded, refused by the plan), never missed.
        (f"http://{PRIMARY}:6379", "embedded", None),
    ],
)
def test_each_spelling_names_the_cache_in_its_form(value: str, form: str, port: int | None) -> None:
    reference = reference_in("VAR", value, NAMES)

    assert reference is not None
    assert (reference.form, reference.port) == (form, port)
    assert uses_cache({"VAR": value}, NAMES)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "10.0.1.5",
        "redis://10.0.1.5:6379/0",
        "other.campaign-redis.abc123.use1.cache.amazonaws.com",
        "xmaster.campaign-redis.abc123.use1.cache.amazonaws.com",
        f"{PRIMARY}.example.org",
        f"{PRIMARY}-old",
    ],
)
def test_other_values_do_not_name_it(value: str) -> None:
    assert reference_in("VAR", value, NAMES) is None


def test_a_url_records_its_user_password_and_database() -> None:
    reference = reference_in("REDIS_URL", f"rediss://app:s3cret@{PRIMARY}:6379/3", NAMES)

    assert reference is not None
    assert (reference.username, reference.has_password, reference.path, reference.tls) == (
        "app",
        True,
        "/3",
        True,
    )
    with pytest.raises(ValueError, match="password"):
        rewritten(f"rediss://app:s3cret@{PRIMARY}:6379/3", reference, "10.0.1.5", 6379, tls=False)


def test_references_name_every_variable_in_order() -> None:
    variables = {
        "REDIS_HOST": PRIMARY,
        "REDIS_URL": f"redis://{PRIMARY}:6379/0",
        "CACHE_ENDPOINT": f"{PRIMARY}:6379",
        "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
    }

    found = references_to(variables, NAMES)

    assert [r.describe() for r in found] == [
        "CACHE_ENDPOINT (host:port)",
        "REDIS_HOST (host)",
        "REDIS_URL (url)",
    ]


@pytest.mark.parametrize(
    ("value", "tls", "expected"),
    [
        (PRIMARY + ".", False, "10.0.1.5"),
        (f"{PRIMARY}:6379", False, "10.0.1.5:6380"),
        (f"redis://{PRIMARY}:6379/0", False, "redis://10.0.1.5:6380/0"),
        (f"rediss://{PRIMARY}:6379/0", False, "redis://10.0.1.5:6380/0"),
        (f"rediss://{PRIMARY}:6379/0", True, "rediss://10.0.1.5:6380/0"),
        (
            f"redis://app-user@{PRIMARY.upper()}/2?health_check_interval=10",
            False,
            "redis://app-user@10.0.1.5:6380/2?health_check_interval=10",
        ),
    ],
)
def test_a_rewrite_keeps_the_form(value: str, tls: bool, expected: str) -> None:
    reference = reference_in("VAR", value, NAMES)
    assert reference is not None

    assert rewritten(value, reference, "10.0.1.5", 6380, tls=tls) == expected


def test_an_embedded_name_is_not_rewritten() -> None:
    value = f"{PRIMARY}:6379,replica.campaign-redis.abc123.use1.cache.amazonaws.com:6379"
    reference = reference_in("SEEDS", value, NAMES)
    assert reference is not None

    with pytest.raises(ValueError, match="embedded"):
        rewritten(value, reference, "10.0.1.5", 6379, tls=False)
