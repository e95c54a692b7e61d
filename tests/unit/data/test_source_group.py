"""The ElastiCache source's settings as DescribeReplicationGroups answers them (the local engine's
ElastiCache: member clusters with their version, Global Datastore roles), and what each forbids."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from redis_migration.aws import AwsClients
from redis_migration.data.source_group import read_source_group, source_group_problems, source_tls
from redis_migration.models import ElastiCacheSourceFacts

from redis_migration_ops.local_engine import LocalEngine
from tests.unit.local_engine.conftest import FIXTURES


@pytest.fixture
def engine() -> Iterator[LocalEngine]:
    with LocalEngine(FIXTURES) as running:
        yield running


def _group(engine: LocalEngine, group_id: str, **arguments: Any) -> dict[str, Any]:
    client = engine.client("elasticache")
    client.create_replication_group(ReplicationGroupId=group_id, ReplicationGroupDescription="d", **arguments)
    return dict(client.describe_replication_groups(ReplicationGroupId=group_id)["ReplicationGroups"][0])


def _primary(group: dict[str, Any]) -> str:
    return str(group["NodeGroups"][0]["PrimaryEndpoint"]["Address"])


def _problems(group: ElastiCacheSourceFacts, **overrides: Any) -> list[str]:
    arguments: dict[str, Any] = {
        "data_read": True,
        "secret_known": True,
        "requested_tls": None,
        "token_secret_parameter": "cache-token",
    }
    return source_group_problems(group, **(arguments | overrides))


def test_the_group_behind_each_endpoint_with_its_engine_and_version(engine: LocalEngine) -> None:
    # Given a Valkey 8.0 group with two nodes, TLS required and a token
    described = _group(
        engine,
        "cache",
        Engine="valkey",
        EngineVersion="8.0",
        NumCacheClusters=2,
        TransitEncryptionEnabled=True,
        TransitEncryptionMode="required",
        AuthToken="t" * 32,
    )
    aws = AwsClients(factory=engine.client)
    # When it is read by its primary endpoint (any case, a port, a trailing dot)
    facts = read_source_group(_primary(described).upper() + ".:6379", aws)
    # Then its settings are the API's, the version read from a member cluster
    assert facts is not None
    assert (facts.replication_group_id, facts.endpoint_kind) == ("cache", "primary")
    assert (facts.engine, facts.engine_version) == ("valkey", "8.0")
    assert facts.transit_encryption
    assert facts.transit_encryption_mode == "required"
    assert facts.auth_token_enabled
    assert _problems(facts) == []
    assert source_tls(facts, None, secret_known=True) is True
    # And by a replica's node endpoint it is found as such (moto reports no reader endpoint)
    node = str(described["NodeGroups"][0]["NodeGroupMembers"][1]["ReadEndpoint"]["Address"])
    facts_by_node = read_source_group(node, aws)
    assert facts_by_node is not None
    assert facts_by_node.endpoint_kind == "node"
    # And an endpoint of no group is none
    assert read_source_group("other.abc.0001.use1.cache.amazonaws.com", aws) is None


def test_cluster_mode_is_refused_even_without_data(engine: LocalEngine) -> None:
    described = _group(engine, "sharded", ClusterMode="enabled", NumNodeGroups=2, ReplicasPerNodeGroup=1)
    facts = read_source_group(
        str(described["ConfigurationEndpoint"]["Address"]), AwsClients(factory=engine.client)
    )
    assert facts is not None
    assert facts.endpoint_kind == "configuration"
    problems = _problems(facts, data_read=False)
    assert len(problems) == 1
    assert "ClusterMode enabled" in problems[0]


def test_global_datastore_members_are_refused_with_their_role(engine: LocalEngine) -> None:
    aws = AwsClients(factory=engine.client)
    primary = _group(engine, "home")
    made = engine.client("elasticache").create_global_replication_group(
        GlobalReplicationGroupIdSuffix="campaign", PrimaryReplicationGroupId="home"
    )["GlobalReplicationGroup"]["GlobalReplicationGroupId"]
    secondary = _group(engine, "away", GlobalReplicationGroupId=made)
    for described, role, reason in (
        (primary, "primary", "other Regions"),
        (secondary, "secondary", "read-only"),
    ):
        facts = read_source_group(_primary(described), aws)
        assert facts is not None
        assert (facts.global_datastore, facts.global_datastore_role) == (made, role)
        (problem,) = _problems(facts, data_read=False)
        assert f"the {role} of Global Datastore {made}" in problem
        assert reason in problem


def test_data_tiering_and_rbac_user_groups_are_refused(engine: LocalEngine) -> None:
    aws = AwsClients(factory=engine.client)
    tiered = read_source_group(
        _primary(_group(engine, "tiered", CacheNodeType="cache.r6gd.xlarge", DataTieringEnabled=True)), aws
    )
    assert tiered is not None
    assert tiered.data_tiering
    assert ["DataTiering enabled" in problem for problem in _problems(tiered)] == [True]
    users = read_source_group(_primary(_group(engine, "users", UserGroupIds=["campaign-users"])), aws)
    assert users is not None
    assert ["UserGroupIds campaign-users" in problem for problem in _problems(users)] == [True]


def test_a_token_with_no_known_secret_names_the_field_to_set() -> None:
    group = ElastiCacheSourceFacts(
        replication_group_id="cache", auth_token_enabled=True, transit_encryption=True
    )
    (problem,) = _problems(group, secret_known=False)
    assert problem.startswith("sourceSecretArn:")
    assert "AuthTokenEnabled" in problem
    assert "ElastiCacheAuthTokenSecretName" in problem
    # Not when the data is not read (dataCopy none)
    assert _problems(group, secret_known=False, data_read=False) == []


def test_tls_follows_in_transit_encryption_and_a_contrary_choice_is_named() -> None:
    required = ElastiCacheSourceFacts(replication_group_id="cache", transit_encryption=True)
    preferred = required.model_copy(update={"transit_encryption_mode": "preferred"})
    plain = ElastiCacheSourceFacts(replication_group_id="cache")
    # TLS when the group has it, whatever the token; sourceTls wins when given
    assert source_tls(required, None, secret_known=False) is True
    assert source_tls(plain, None, secret_known=False) is False
    assert source_tls(preferred, False, secret_known=False) is False
    # sourceTls false against a group that requires TLS, or true against one without, is refused
    assert ["sourceTls: false" in problem for problem in _problems(required, requested_tls=False)] == [True]
    assert _problems(preferred, requested_tls=False) == []
    assert ["sourceTls: true" in problem for problem in _problems(plain, requested_tls=True)] == [True]
