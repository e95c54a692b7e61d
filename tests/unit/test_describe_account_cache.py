"""describe_account records the cache settings the workflow's preflight reads (issue 17, point 14):
engine and version, TransitEncryptionMode, UserGroupIds, DataTiering, Global Datastore membership.

(Its own file: the engine of test_describe_account's module fixture must not run alongside.)
"""

from __future__ import annotations

import boto3
import pytest

from redis_migration_ops.account.describe import describe_account
from redis_migration_ops.account.description import dump_account, parse_account
from redis_migration_ops.local_engine.engine import LocalEngine
from redis_migration_ops.rehearsal.local_account import build_account
from redis_migration_ops.rehearsal.migration import REPO_ROOT
from tests.unit.account_examples import rich_account
from tests.unit.test_describe_account import member_cluster_settings


@pytest.mark.parametrize("role", ["primary", "secondary"])
def test_the_cache_settings_the_preflight_reads_are_described(role: str) -> None:
    # Given a Valkey 8.0 cache with TLS preferred, RBAC user groups, data tiering, in a Global Datastore
    expected = rich_account().model_copy(deep=True)
    document = dump_account(expected)
    document["elasticache"].update(
        engine="valkey",
        engineVersion="8.0",
        nodeType="cache.r6gd.xlarge",
        transitEncryptionMode="preferred",
        userGroups=["campaign-users"],
        dataTiering=True,
        globalDatastore={"id": "ldgnf-campaign", "role": role},
    )
    with LocalEngine(REPO_ROOT) as engine:
        account = build_account(engine, parse_account(document))
        session = boto3.Session(region_name="us-east-1")
        session.events.register(
            "after-call.elasticache.DescribeCacheClusters",
            member_cluster_settings(account.security_groups["cache"]),
        )
        # When it is described
        description, _summary = describe_account(session)
    # Then every setting the workflow's preflight reads is in the file (the Global Datastore's
    # name as the local ElastiCache made it: it picks the prefix)
    cache = description.elasticache
    assert (cache.engine, cache.engine_version) == ("valkey", "8.0")
    assert cache.transit_encryption_mode == "preferred"
    assert cache.user_groups == ["campaign-users"]
    assert cache.data_tiering
    assert cache.global_datastore is not None
    assert cache.global_datastore.role == role
    assert cache.global_datastore.id.endswith("-campaign")
