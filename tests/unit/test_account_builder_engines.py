"""build_account in an engine of its own: unreadable environments, foreign routes, another region.

(One engine at a time per process: these cannot share test_account_builder.py's module engine.)
"""

from __future__ import annotations

import re
from pathlib import Path

import boto3
import pytest
import yaml

from redis_migration_ops.account.describe import describe_account
from redis_migration_ops.account.description import parse_account
from redis_migration_ops.local_engine.engine import LocalEngine
from redis_migration_ops.rehearsal.local_account import (
    UNREADABLE_PLACEHOLDER_KEY,
    AccountBuildError,
    build_account,
)
from redis_migration_ops.rehearsal.migration import REPO_ROOT
from tests.unit.account_examples import KMS_ARN, rich_account, rich_document


def test_an_unreadable_environment_is_rebuilt_encrypted_and_a_foreign_route_is_reported() -> None:
    # Given a function describe-account could not decrypt, and a route through a transit gateway
    document = rich_document()
    document["functions"][3] = {
        "name": "encrypted",
        "kmsKeyArn": KMS_ARN,
        "environmentError": {"errorCode": "AccessDeniedException", "message": "Lambda was unable to decrypt"},
    }
    document["vpc"]["routeTables"][1]["routes"].append(
        {"destination": "172.16.0.0/12", "target": "other", "targetId": "tgw-0abc"}
    )
    with LocalEngine(REPO_ROOT) as engine:
        # When the account is built
        account = build_account(engine, parse_account(document))
        configuration = engine.client("lambda").get_function_configuration(FunctionName="encrypted")
    # Then the function's variables are under its (local) key, with nothing invented but a marker
    assert configuration["KMSKeyArn"] == account.kms_keys[KMS_ARN]
    assert configuration["Environment"]["Variables"] == {UNREADABLE_PLACEHOLDER_KEY: "AccessDeniedException"}
    assert account.unreadable_functions == ["encrypted"]
    assert "encrypted" not in account.client_functions  # nobody can tell: the preflight must refuse it
    # And the route the rehearsal cannot build is said, not silently dropped
    assert account.not_reproduced == ["route table private: route to 172.16.0.0/12 via tgw-0abc"]


def test_the_documented_example_builds_in_its_own_region() -> None:
    text = (Path(REPO_ROOT) / "docs" / "operating.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", text.split("## 10. Rehearse your own account", 1)[1], re.S)
    assert block is not None
    description = parse_account(yaml.safe_load(block[1]))
    with LocalEngine(REPO_ROOT, region="eu-west-1") as engine:
        account = build_account(engine, description)
        alias = engine.client("lambda").get_alias(FunctionName="dialer", Name="live")
        endpoints = engine.client("ec2").describe_vpc_endpoints()["VpcEndpoints"]
    assert account.region == "eu-west-1"
    # Versions 41 and 42 are published as the function's 1st and 2nd; the alias follows the mapping
    assert account.versions["dialer"] == {"41": "1", "42": "2"}
    assert alias["FunctionVersion"] == "2"
    assert alias["RoutingConfig"]["AdditionalVersionWeights"] == {"1": 0.1}
    assert sorted(e["ServiceName"] for e in endpoints) == [
        "com.amazonaws.eu-west-1.ec2",
        "com.amazonaws.eu-west-1.monitoring",
        "com.amazonaws.eu-west-1.secretsmanager",
    ]
    assert account.client_functions == ["dialer"]


def test_a_description_for_another_region_is_refused() -> None:
    with (
        LocalEngine(REPO_ROOT, region="eu-west-1") as engine,
        pytest.raises(ValueError, match="region: the description is for us-east-1"),
    ):
        build_account(engine, rich_account())


def test_what_aws_refuses_is_one_line_naming_the_call() -> None:
    # Given a subnet in an availability zone the region does not have (the model cannot know)
    document = rich_document()
    document["vpc"]["subnets"][0]["availabilityZone"] = "us-east-1z"
    with LocalEngine(REPO_ROOT) as engine, pytest.raises(AccountBuildError) as refused:
        build_account(engine, parse_account(document))
    assert str(refused.value).startswith("the account cannot be built: CreateSubnet: InvalidParameterValue: ")
    assert isinstance(refused.value, ValueError)  # the CLI's exit 2


def test_a_sharded_replication_group_is_built_and_described_with_its_nodes() -> None:
    # Given a cluster-mode replication group of 2 shards of 2 nodes
    document = rich_document()
    document["elasticache"].update(clusterMode="enabled", shardCount=2, nodeCount=4)
    with LocalEngine(REPO_ROOT) as engine:
        # When it is built, then described
        build_account(engine, parse_account(document))
        group = engine.client("elasticache").describe_replication_groups()["ReplicationGroups"][0]
        described, _ = describe_account(boto3.Session(region_name="us-east-1"))
    # Then AWS's view and the description agree on the shards and nodes (what the bill counts)
    assert (len(group["NodeGroups"]), len(group["MemberClusters"])) == (2, 4)
    cache = described.elasticache
    assert (cache.cluster_mode, cache.shard_count, cache.node_count) == ("enabled", 2, 4)
