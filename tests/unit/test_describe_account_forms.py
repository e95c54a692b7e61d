"""describe_account finds who uses the cache as the workflow does: any variable, any form, any endpoint.

Its own file: the local engine patches moto process-wide, so one engine at a time (test_describe_account
keeps one open for its whole module).
"""

from __future__ import annotations

import boto3

from redis_migration_ops.account.describe import describe_account
from redis_migration_ops.local_engine.engine import LocalEngine
from redis_migration_ops.rehearsal.local_account import build_account
from redis_migration_ops.rehearsal.migration import REPO_ROOT
from tests.unit.account_examples import FORMS, FORMS_PRIMARY, forms_account


def test_every_function_naming_the_cache_in_any_form_is_a_client() -> None:
    with LocalEngine(REPO_ROOT) as engine:
        # Given functions naming the cache by URL, host:port, its reader, a node, upper case, a
        # trailing dot (the group answers its reader and nodes under the names the account gives)
        build_account(engine, forms_account())
        # When the account is described without naming the endpoint
        description, summary = describe_account(boto3.Session(region_name="us-east-1"))
    # Then its ElastiCache is the group's primary endpoint, and every one of them is a client
    assert description.elasticache.endpoint == FORMS_PRIMARY
    assert summary.clients == ["campaign-worker-001", *FORMS]
    assert description.redis_clients() == summary.clients
