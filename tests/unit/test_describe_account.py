"""describe_account: an account built in moto, described with read-only calls, matches its description.

Where moto 5.2.5 answers less than AWS, the session used for describing is given AWS's answer
through a botocore ``after-call`` hook (named, with the AWS rule it models); nothing else is faked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from redis_migration_ops.account.describe import DescribeSummary, describe_account
from redis_migration_ops.account.description import (
    REDACTED,
    AccountDescription,
    dump_account,
    load_account,
    parse_account,
    save_account,
)
from redis_migration_ops.local_engine.engine import LocalEngine
from redis_migration_ops.operations import OperatorError
from redis_migration_ops.rehearsal.local_account import LocalAccount, build_account
from redis_migration_ops.rehearsal.migration import REPO_ROOT
from tests.unit.account_examples import ENDPOINT, KMS_ARN, PLAIN_SECRETS, rich_account

READ_ONLY_PREFIXES = ("List", "Describe", "Get")


@dataclass
class Described:
    account: LocalAccount
    description: AccountDescription
    summary: DescribeSummary
    operations: list[str] = field(default_factory=list)


def _cannot_decrypt(local_key: str) -> Any:
    """AWS: a caller without kms:Decrypt on a function's customer key gets ``Environment.Error`` and
    no ``Variables`` (https://docs.aws.amazon.com/lambda/latest/api/API_EnvironmentResponse.html).
    moto 5.2.5 always returns the variables."""

    def amend(parsed: dict[str, Any], **_: Any) -> None:
        for config in parsed.get("Functions", []) + parsed.get("Versions", []):
            if config.get("KMSKeyArn") == local_key:
                config["Environment"] = {
                    "Error": {"ErrorCode": "AccessDeniedException", "Message": "Lambda was unable to decrypt"}
                }

    return amend


def member_cluster_settings(security_group: str) -> Any:
    """AWS: DescribeCacheClusters reports a node's SecurityGroups and CacheParameterGroup
    (https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_CacheCluster.html);
    moto 5.2.5 stores them but leaves them out of its answer."""

    def amend(parsed: dict[str, Any], **_: Any) -> None:
        for cluster in parsed.get("CacheClusters", []):
            cluster["SecurityGroups"] = [{"SecurityGroupId": security_group, "Status": "active"}]
            cluster["CacheParameterGroup"] = {"CacheParameterGroupName": "default.redis7"}

    return amend


@pytest.fixture(scope="module")
def described() -> Iterator[Described]:
    with LocalEngine(REPO_ROOT) as engine:
        # Given the rich account built in moto, with the member cluster AWS creates with a
        # replication group (the local engine creates it: elasticache_member_clusters)
        account = build_account(engine, rich_account())
        session = boto3.Session(region_name="us-east-1")
        operations: list[str] = []
        session.events.register("before-call", lambda model, **_: operations.append(model.name))
        amend = _cannot_decrypt(account.kms_keys[KMS_ARN])
        session.events.register("after-call.lambda.ListFunctions", amend)
        session.events.register("after-call.lambda.ListVersionsByFunction", amend)
        session.events.register(
            "after-call.elasticache.DescribeCacheClusters",
            member_cluster_settings(account.security_groups["cache"]),
        )
        # When it is described
        description, summary = describe_account(session)
        yield Described(account, description, summary, operations)


def _comparable(description: AccountDescription, back: dict[str, str]) -> dict[str, Any]:
    """The description without what only records the real account (ids, ARNs, the AMI's name, notes),
    with local ARNs mapped back to the described ones, lists of named things by name."""
    text = json.dumps(dump_account(description))
    for local, original in back.items():
        text = text.replace(local, original)
    document: dict[str, Any] = json.loads(text)

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: strip(v)
                for k, v in node.items()
                if k not in {"id", "arn", "targetId", "osName", "notes", "uuid"}
            }
        if isinstance(node, list):
            items = [strip(v) for v in node]
            return (
                sorted(items, key=json.dumps)
                if all(isinstance(i, dict) and "name" in i for i in items)
                else items
            )
        return node

    return dict(strip(document))


def test_the_description_is_what_was_built(described: Described) -> None:
    # Then, apart from what only records the real account, it is the description the account was built from,
    # with the secret values redacted and the environment it could not decrypt recorded as such
    expected = rich_account().model_copy(deep=True)
    document = dump_account(expected)
    plain = next(f for f in document["functions"] if f["name"] == "worker-plain")
    plain["environment"].update(
        DB_PASSWORD=REDACTED,
        stripeApiKey=REDACTED,
        CACHE_URL=f"rediss://:{REDACTED}@{ENDPOINT}:6379/0",
    )
    encrypted = next(f for f in document["functions"] if f["name"] == "encrypted")
    del encrypted["environment"]
    encrypted["environmentError"] = {
        "errorCode": "AccessDeniedException",
        "message": "Lambda was unable to decrypt",
    }
    del document["stack"]  # how to deploy the stack is the operator's choice, not the account's
    back = {local: original for original, local in described.account.arn_rewrites.items()}
    assert _comparable(described.description, back) == _comparable(parse_account(document), back)


def test_secret_values_never_reach_the_file(described: Described, tmp_path: Path) -> None:
    path = tmp_path / "account.yaml"
    save_account(described.description, path)
    text = path.read_text()
    for value in PLAIN_SECRETS:
        assert value not in text
    assert sorted(described.summary.redacted) == [
        "worker-plain:CACHE_URL",
        "worker-plain:DB_PASSWORD",
        "worker-plain:stripeApiKey",
    ]
    # The secret's value was never asked for (only described), and the file reads back as it was written
    assert "GetSecretValue" not in described.operations
    assert load_account(path) == described.description


def test_only_read_only_calls_are_made(described: Described) -> None:
    assert described.operations, "the hook saw no call"
    assert sorted({op for op in described.operations if not op.startswith(READ_ONLY_PREFIXES)}) == []
    assert {
        "ListFunctions",
        "ListVersionsByFunction",
        "ListAliases",
        "ListTags",
        "GetFunctionConcurrency",
    } <= set(described.operations)
    assert {
        "DescribeRouteTables",
        "DescribeNatGateways",
        "DescribeVpcEndpoints",
        "DescribeReplicationGroups",
        "DescribeInstanceInformation",
    } <= set(described.operations)


def test_reserved_cache_nodes_are_described(described: Described) -> None:
    # (the local engine answers DescribeReservedCacheNodes with the account's: elasticache/reserved_nodes.py)
    (reserved,) = described.description.reserved_cache_nodes
    assert (reserved.id, reserved.node_type, reserved.count, reserved.years) == (
        "ri-campaign-cache",
        "cache.t4g.medium",
        1,
        3,
    )


def test_the_instances_os_is_what_ssm_reports(described: Described) -> None:
    # SSM's managed-node inventory (the local engine answers with the account's recorded OS):
    # a rehearsal of the described account answers the same, so its preflight decides as AWS would
    platform = described.description.instance.platform
    assert platform is not None
    assert (platform.type, platform.name, platform.version) == ("Linux", "Amazon Linux", "2023")


def test_what_it_found_is_summarised(described: Described) -> None:
    summary = described.summary
    assert summary.functions == 5
    # the function it could not read is not counted as a client: nobody can tell
    assert summary.clients == ["worker-plain", "worker-aliased", "worker-old-version"]
    assert summary.unreadable == ["encrypted"]
    # the local engine gives the group the endpoint the account recorded (elasticache_member_clusters):
    # it is found by its endpoint, as in AWS, with no note about matching it by id
    assert not any("by its id" in note for note in summary.notes)


def test_an_unknown_instance_is_a_usage_error(described: Described) -> None:
    with pytest.raises(OperatorError) as raised:
        describe_account(boto3.Session(region_name="us-east-1"), instance_id="i-0123456789abcdef0")
    assert raised.value.exit_code == 2
    assert "--instance-id i-0123456789abcdef0: no such instance in us-east-1" in str(raised.value)
