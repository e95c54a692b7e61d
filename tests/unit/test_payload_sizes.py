"""At 2,000 functions no state payload comes near Step Functions' 256 KiB (the goal: under half).

The plan lives in S3; what travels are summaries whose size does not grow with the functions:
at most MAX_BATCHES batch items, a sample of names, counts. This builds the payloads the workflow
passes at that size (with 64-character names, the longest Lambda allows) from the real models and
the real batching, and measures them as the engine does (UTF-8 bytes of the JSON).
"""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws
from redis_migration.aws import AwsClients
from redis_migration.models import (
    BatchOutcome,
    FunctionFailure,
    FunctionPlan,
    IngressPlan,
    InstanceFacts,
    MigrationPlan,
    MigrationRequest,
    RecordLocation,
    RestoreBatchOutcome,
)
from redis_migration.records import MAX_BATCHES, write_batches
from redis_migration.steps.cut_over_function import CAUSE_CHARACTERS

HALF_THE_LIMIT = 128 * 1024
FUNCTIONS = 2000


def long_name(number: int) -> str:
    return f"campaign-system-production-dialer-worker-shard-{number:04d}".ljust(64, "x")


@pytest.fixture
def batches(aws_env: None) -> list:  # type: ignore[type-arg]
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="records")
        aws = AwsClients(factory=boto3.client)
        location = RecordLocation(bucket="records", prefix="machine/execution/")
        before = {
            "REDIS_HOST": "campaign-redis.abc123.ng.0001.use1.cache.amazonaws.com",
            "REDIS_PORT": "6379",
            "REDIS_PASSWORD_SECRET_ARN": None,
            "REDIS_AUTH_TOKEN_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:auth-AbCdEf",
        }
        functions = [
            FunctionPlan(
                function_name=long_name(n), before=before, security_group_ids=["sg-0123456789abcdef0"]
            )
            for n in range(FUNCTIONS)
        ]
        return write_batches(location, functions, aws)


def size(document: object) -> int:
    return len(json.dumps(document, separators=(",", ":")).encode("utf-8"))


def test_2000_functions_make_at_most_100_map_iterations(batches: list) -> None:  # type: ignore[type-arg]
    assert len(batches) == MAX_BATCHES
    assert sum(batch.count for batch in batches) == FUNCTIONS


def test_the_plan_summary_and_the_maps_outputs_stay_under_half_the_limit(batches: list) -> None:  # type: ignore[type-arg]
    request = MigrationRequest(
        project_name="campaign-system",
        environment="production",
        instance_id="i-0123456789abcdef0",
        elasticache_endpoint="campaign-redis.abc123.ng.0001.use1.cache.amazonaws.com",
        functions=None,
        remove_keys=["REDIS_AUTH_TOKEN_SECRET_ARN"],
        redis_port=6379,
        release="v2.14.0",
        dry_run=False,
        require_approval=False,
        maxmemory="512mb",
        maxmemory_policy="allkeys-lru",
        bind_all_interfaces=False,
    )
    plan = MigrationPlan(
        request=request,
        instance=InstanceFacts(
            instance_id="i-0123456789abcdef0",
            private_ip="10.42.1.23",
            vpc_id="vpc-0123456789abcdef0",
            vpc_cidr="10.42.0.0/16",
            security_group_id="sg-0123456789abcdef0",
            platform="Linux/UNIX",
        ),
        secret_name="campaign-system-redis-password-production",
        ingress=IngressPlan(
            group_id="sg-0123456789abcdef0",
            port=6379,
            source_group_ids=[f"sg-{n:017x}" for n in range(60)],
            rule_description="Redis clients; added by redis-migration production-v2-14-0-20261126T090000Z",
        ),
        target={"REDIS_HOST": "10.42.1.23", "REDIS_PORT": "6379", "REDIS_PASSWORD_SECRET_ARN": None},
        secret_arn=None,
        function_count=FUNCTIONS,
        function_sample=[long_name(n) for n in range(10)],
        record=RecordLocation(bucket="records", prefix="machine/execution/"),
        plan_sha256="0" * 64,
        batches=batches,
    )
    failure = FunctionFailure(
        function_name=long_name(0), error="FunctionChangedConcurrently", cause="x" * 500
    )
    cutover = [
        BatchOutcome(
            index=batch.index,
            changed=batch.count - 5,
            unchanged=0,
            failed=5,
            failures=[failure.model_copy(update={"cause": "x" * CAUSE_CHARACTERS})],
            results_key=f"machine/execution/results/cutover-{batch.index:04d}.json",
            results_sha256="0" * 64,
        ).to_json_dict()
        for batch in batches
    ]
    restores = [
        RestoreBatchOutcome(
            index=batch.index,
            restored=batch.count,
            unchanged=0,
            changed_by_others=0,
            not_restored=[],
            results_key=f"machine/execution/results/restore-{batch.index:04d}.json",
            results_sha256="0" * 64,
        ).to_json_dict()
        for batch in batches
    ]

    # Then every one of them is under half of Step Functions' 256 KiB, even with every batch failing
    assert size(plan.to_json_dict()) < HALF_THE_LIMIT
    assert size(cutover) < HALF_THE_LIMIT, size(cutover)
    assert size(restores) < HALF_THE_LIMIT
    assert size({"plan": plan.to_json_dict(), "cutover": {"batches": cutover}}) < HALF_THE_LIMIT
