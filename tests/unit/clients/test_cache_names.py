"""Every name of the stack's ElastiCache, read from ElastiCache before anything changes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from redis_migration.aws import AwsClients
from redis_migration.clients.cache_names import read_cache_names

from redis_migration_ops.local_engine import LocalEngine
from tests.unit.local_engine.conftest import FIXTURES

DOMAIN = "campaign-redis.abc123.use1.cache.amazonaws.com"
PRIMARY = f"master.{DOMAIN}"
READER = f"replica.{DOMAIN}"
NODES = [f"campaign-redis-001.{DOMAIN}", f"campaign-redis-002.{DOMAIN}"]


@pytest.fixture
def aws() -> Iterator[AwsClients]:
    """A two-node replication group named as ElastiCache names a group with in-transit encryption,
    and another group beside it."""
    with LocalEngine(FIXTURES) as engine:
        client: Any = engine.client("elasticache")
        for group in ("campaign-redis", "analytics"):
            client.create_replication_group(
                ReplicationGroupId=group,
                ReplicationGroupDescription=group,
                Engine="redis",
                CacheNodeType="cache.t4g.small",
                NumCacheClusters=2,
            )
        engine.name_elasticache_endpoint("campaign-redis", PRIMARY, READER, NODES)
        yield AwsClients(factory=engine.client)


def test_the_stacks_group_gives_its_primary_reader_and_every_node(aws: AwsClients) -> None:
    lookup = read_cache_names(f"{PRIMARY}:6379", "campaign-redis", aws)

    assert lookup.names.hosts == {PRIMARY, READER, *NODES}
    assert (lookup.names.port, lookup.replication_group_id) == (6379, "campaign-redis")
    assert (lookup.warnings, lookup.problems) == ([], [])


def test_without_the_groups_id_the_group_serving_the_endpoint_is_found(aws: AwsClients) -> None:
    # Given the reader endpoint, spelled as a client might
    lookup = read_cache_names(READER.upper() + ".", "", aws)

    assert lookup.names.hosts == {PRIMARY, READER, *NODES}
    assert lookup.replication_group_id == "campaign-redis"


def test_no_group_behind_the_endpoint_leaves_the_endpoint_alone_and_says_so(aws: AwsClients) -> None:
    lookup = read_cache_names("cache.elsewhere.use1.cache.amazonaws.com:6380", "", aws)

    assert lookup.names.hosts == {"cache.elsewhere.use1.cache.amazonaws.com"}
    assert lookup.names.port == 6380
    assert "no replication group serves cache.elsewhere" in lookup.warnings[0]
    assert lookup.problems == []


def test_a_group_that_does_not_exist_falls_back_with_a_warning(aws: AwsClients) -> None:
    lookup = read_cache_names(PRIMARY, "gone-redis", aws)

    assert lookup.names.hosts == {PRIMARY}
    assert "replication group gone-redis (ElastiCacheReplicationGroupId) does not exist" in lookup.warnings[0]


def test_a_stack_naming_another_group_than_the_endpoints_is_refused(aws: AwsClients) -> None:
    lookup = read_cache_names(PRIMARY, "analytics", aws)

    assert lookup.problems
    assert lookup.problems[0].startswith(
        f"ElastiCacheReplicationGroupId: replication group analytics does not serve {PRIMARY}"
    )
