"""CheckElastiCacheClients against moto: the plan read from the records bucket, every function's VPC
attachment and environment from ListFunctions, the verdict before any change and after the bake."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from redis_migration.aws import AwsClients
from redis_migration.clients.connected import ClientListOutput, ElastiCacheClient
from redis_migration.errors import PreconditionFailed
from redis_migration.models import FunctionPlan, InstanceFacts, PlanDocument, RecordLocation
from redis_migration.records import plan_key, put_record, write_batches
from redis_migration.steps.check_elasticache_clients import ElastiCacheClientsInput, check_elasticache_clients

from tests.unit.watch.test_bake import request

ENDPOINT = "campaign-redis.abc123.0001.use1.cache.amazonaws.com"


@dataclass
class World:
    aws: AwsClients
    record: RecordLocation
    digest: str
    subnet: str
    group: str


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("app.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


@pytest.fixture
def world(aws_env: None) -> Iterator[World]:
    with mock_aws():
        aws = AwsClients(factory=lambda service: boto3.client(service, region_name="us-east-1"))
        vpc = aws.ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
        subnet = aws.ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24")["Subnet"]["SubnetId"]
        group = aws.ec2.create_security_group(GroupName="clients", Description="c", VpcId=vpc)["GroupId"]
        role = boto3.client("iam", region_name="us-east-1").create_role(
            RoleName="fn",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        # Two workers name the cache (one as a URL); a reporter shares their interface
        for name, variables in (
            ("campaign-worker-001", {"REDIS_HOST": ENDPOINT}),
            ("campaign-worker-002", {"REDIS_URL": f"rediss://{ENDPOINT.upper()}:6379/0"}),
            ("campaign-reporter", {"BUCKET": "reports"}),
        ):
            aws.lambda_.create_function(
                FunctionName=name,
                Runtime="python3.13",
                Role=role,
                Handler="app.handler",
                Code={"ZipFile": _zip()},
                Environment={"Variables": variables},
                VpcConfig={"SubnetIds": [subnet], "SecurityGroupIds": [group]},
            )
        aws.s3.create_bucket(Bucket="records")
        record = RecordLocation(bucket="records", prefix="machine/run-1/")
        plans = [FunctionPlan(function_name="campaign-worker-001", before={"REDIS_HOST": ENDPOINT})]
        document = PlanDocument(
            execution_arn="arn:aws:states:us-east-1:123456789012:execution:machine:run-1",
            kind="migration",
            request=request(functions=["campaign-worker-001"]),
            instance=InstanceFacts(
                instance_id="i-0123456789abcdef0",
                private_ip="10.42.1.23",
                vpc_id=vpc,
                vpc_cidr="10.42.0.0/16",
                security_group_id=group,
                platform="Linux/UNIX",
            ),
            target={"REDIS_HOST": "10.42.1.23"},
            functions=plans,
            batches=write_batches(record, plans, aws),
        )
        digest = put_record(record, plan_key(record), document.to_json_dict(), aws)
        yield World(aws, record, digest, subnet, group)


def listing(world: World, idle: int = 1) -> ClientListOutput:
    client = ElastiCacheClient(
        node=ENDPOINT,
        ip="10.42.1.250",
        connections=2,
        last_commands=["set"],
        min_idle_seconds=idle,
        max_idle_seconds=idle,
        origin="Lambda interface eni-1",
        kind="lambda",
        subnet_id=world.subnet,
        security_group_ids=[world.group],
    )
    return ClientListOutput(clients=[client], lines=[], left_out=5, elasticache_connections=4)


def given(world: World, **fields: Any) -> ElastiCacheClientsInput:
    return ElastiCacheClientsInput.model_validate(
        {
            "phase": "before",
            "record": world.record.to_json_dict(),
            "planSha256": world.digest,
            "dataMode": "consistent",
            "listing": listing(world, fields.pop("idle", 1)).to_json_dict(),
            **fields,
        }
    )


def test_a_function_left_out_that_names_the_cache_in_a_url_refuses_consistent_mode(world: World) -> None:
    # Given the workers' shared interface connected, and worker-002 (a rediss:// URL in upper case)
    # left out of the plan
    with pytest.raises(PreconditionFailed) as refused:
        check_elasticache_clients(given(world), world.aws)
    # Then the refusal names it and the ways on
    assert "campaign-worker-002 name(s) this ElastiCache but the run does not switch it" in str(refused.value)
    # And in warm mode it is a warning, and the run goes on
    warm = check_elasticache_clients(given(world, dataMode="warm"), world.aws)
    assert len(warm.warnings) == 1
    assert "its writes stay on ElastiCache" in warm.warnings[0]
    assert warm.elasticache_connections == 4
    # And clients beyond what a listing names (its payload is bounded) are refused unseen
    bounded = given(world)
    bounded = bounded.model_copy(
        update={"listing": bounded.listing.model_copy(update={"clients": [], "more_clients": 150})}
    )
    with pytest.raises(PreconditionFailed, match="150 ElastiCache client"):
        check_elasticache_clients(bounded, world.aws)


def test_after_the_bake_a_switched_interface_in_use_is_named_unless_within_the_functions_timeout(
    world: World,
) -> None:
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)

    def after(cut_over_seconds_ago: int, idle: int) -> Any:
        return check_elasticache_clients(
            given(
                world,
                phase="after",
                dataMode="warm",
                idle=idle,
                cutOverAt=(now - timedelta(seconds=cut_over_seconds_ago)).isoformat(),
                maxFunctionTimeout=60,
            ),
            world.aws,
            now=now,
        )

    # worker-002 is in this plan too, for this check: a switched interface
    world_plan = json.loads(
        world.aws.s3.get_object(Bucket="records", Key=plan_key(world.record))["Body"].read()
    )
    world_plan["functions"].append({"functionName": "campaign-worker-002", "before": {}})
    world.digest = put_record(world.record, plan_key(world.record), world_plan, world.aws)
    # Sent a command 5 s ago, 15 minutes after the cutover: still used
    busy = after(900, 5)
    assert busy.judged
    assert len(busy.still_used) == 1
    assert "still sends commands 840 s after the cutover" in busy.still_used[0]
    # Idle for an hour: an old execution environment's socket
    quiet = after(900, 3600)
    assert quiet.still_used == []
    assert len(quiet.old_environments) == 1
    # Within the functions' timeout after the cutover: not judged (an invocation may still run)
    early = after(30, 5)
    assert not early.judged
    assert early.still_used == []
    assert early.note is not None
    assert "within the functions' longest timeout (60 s)" in early.note
