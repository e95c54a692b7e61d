"""EnsurePasswordSecret and the security-group rule, against moto's Secrets Manager and EC2."""

from __future__ import annotations

import json
import string
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws
from redis_migration.aws import AwsClients
from redis_migration.errors import PreconditionFailed
from redis_migration.models import IngressPlan, RevokeIngressInput, SecretInput
from redis_migration.steps.ensure_password_secret import ensure_password_secret
from redis_migration.steps.redis_ingress import (
    allow_redis_ingress,
    allowed_source_groups,
    revoke_redis_ingress,
)

SECRET = SecretInput(
    secret_name="campaign-system-redis-password-dev", project_name="campaign-system", environment="dev"
)


@pytest.fixture
def aws(aws_env: None) -> Iterator[AwsClients]:
    with mock_aws():
        yield AwsClients(region_name="us-east-1")


def test_the_secret_is_created_once_with_a_32_character_alphanumeric_password(aws: AwsClients) -> None:
    first = ensure_password_secret(SECRET, aws)
    second = ensure_password_secret(SECRET, aws)

    assert first.created is True
    assert second.created is False
    assert second.secret_arn == first.secret_arn
    password = json.loads(aws.secretsmanager.get_secret_value(SecretId=first.secret_arn)["SecretString"])[
        "password"
    ]
    assert len(password) == 32
    assert set(password) <= set(string.ascii_letters + string.digits)
    assert password not in json.dumps(first.to_json_dict())


def test_a_secret_scheduled_for_deletion_is_refused_not_reused(aws: AwsClients) -> None:
    arn = ensure_password_secret(SECRET, aws).secret_arn
    aws.secretsmanager.delete_secret(SecretId=arn, RecoveryWindowInDays=7)

    with pytest.raises(PreconditionFailed, match="scheduled for deletion"):
        ensure_password_secret(SECRET, aws)


@pytest.fixture
def groups(aws: AwsClients) -> dict[str, str]:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    return {
        name: ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
        for name in ("redis-host", "clients-a", "clients-b", "probe")
    }


def plan(groups: dict[str, str], description: str = "added by redis-migration run-1") -> IngressPlan:
    return IngressPlan(
        group_id=groups["redis-host"],
        port=6379,
        source_group_ids=sorted([groups["clients-a"], groups["clients-b"], groups["probe"]]),
        rule_description=description,
    )


def test_ingress_is_opened_to_the_client_groups_only_and_never_to_a_cidr(
    aws: AwsClients, groups: dict[str, str]
) -> None:
    added = allow_redis_ingress(plan(groups), aws)

    assert sorted(added.added_source_group_ids) == sorted(plan(groups).source_group_ids)
    permissions = aws.ec2.describe_security_groups(GroupIds=[groups["redis-host"]])["SecurityGroups"][0][
        "IpPermissions"
    ]
    assert all(not p.get("IpRanges") and not p.get("Ipv6Ranges") for p in permissions)
    assert set(allowed_source_groups(groups["redis-host"], 6379, aws)) == set(plan(groups).source_group_ids)


def test_a_second_run_adds_nothing_and_its_compensation_removes_nothing(
    aws: AwsClients, groups: dict[str, str]
) -> None:
    allow_redis_ingress(plan(groups), aws)

    again = allow_redis_ingress(plan(groups, "added by redis-migration run-2"), aws)
    revoked = revoke_redis_ingress(
        RevokeIngressInput(
            group_id=again.group_id,
            port=6379,
            added_source_group_ids=again.added_source_group_ids,
            rule_descriptions=["added by redis-migration run-2"],
        ),
        aws,
    )

    assert again.added_source_group_ids == []
    assert revoked.revoked_source_group_ids == []
    assert len(allowed_source_groups(groups["redis-host"], 6379, aws)) == 3


def test_revoke_removes_only_what_the_run_added_and_is_idempotent(
    aws: AwsClients, groups: dict[str, str]
) -> None:
    # Given a rule that existed before the run
    aws.ec2.authorize_security_group_ingress(
        GroupId=groups["redis-host"],
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 6379,
                "ToPort": 6379,
                "UserIdGroupPairs": [{"GroupId": groups["probe"]}],
            }
        ],
    )
    added = allow_redis_ingress(plan(groups), aws)
    assert groups["probe"] not in added.added_source_group_ids

    # When the compensation runs twice
    undo = RevokeIngressInput(
        group_id=groups["redis-host"], port=6379, added_source_group_ids=added.added_source_group_ids
    )
    first = revoke_redis_ingress(undo, aws)
    second = revoke_redis_ingress(undo, aws)

    # Then only the run's rules are gone, and the second run had nothing to do
    assert sorted(first.revoked_source_group_ids) == sorted([groups["clients-a"], groups["clients-b"]])
    assert second.revoked_source_group_ids == []
    assert set(allowed_source_groups(groups["redis-host"], 6379, aws)) == {groups["probe"]}


def test_rules_of_the_run_are_found_by_description_even_when_their_record_was_lost(
    aws: AwsClients, groups: dict[str, str]
) -> None:
    allow_redis_ingress(plan(groups), aws)

    revoked = revoke_redis_ingress(
        RevokeIngressInput(
            group_id=groups["redis-host"],
            port=6379,
            added_source_group_ids=[],
            rule_descriptions=["added by redis-migration run-1"],
        ),
        aws,
    )

    assert len(revoked.revoked_source_group_ids) == 3
    assert allowed_source_groups(groups["redis-host"], 6379, aws) == {}
