"""ListRedisClients: who is connected to a Redis (ElastiCache, before and after the cutover), what
each client is, and which ones the migration does not switch (:mod:`redis_migration.redis_clients`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from redis_migration.aws import AwsClients, aws_errors_as_transient
from redis_migration.models import Model, PlanDocument, RecordLocation
from redis_migration.records import get_record, plan_key
from redis_migration.redis_clients import ClientListing, FunctionNetwork, list_clients
from redis_migration.redis_link import RedisEndpoint, RedisLink
from redis_migration.steps.data_steps import read_credentials

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

MAX_GROUPS_IN_OUTPUT = 100
MAX_LINES_IN_OUTPUT = 50


class PlanReference(Model):
    record: RecordLocation
    plan_sha256: str


class ListClientsInput(Model):
    endpoint: RedisEndpoint
    # The functions the run switches: listed, or read from the run's plan in S3.
    switched_functions: list[str] | None = None
    plan: PlanReference | None = None
    # The instance that will run Redis: a client on it is named as such.
    instance_id: str | None = None


def function_networks(lambda_: LambdaClient) -> dict[str, FunctionNetwork]:
    """Every function attached to a VPC: its subnets and security groups (ListFunctions, paginated)."""
    networks = {}
    for page in lambda_.get_paginator("list_functions").paginate():
        for function in page.get("Functions", []):
            vpc = function.get("VpcConfig") or {}
            if vpc.get("SubnetIds"):
                networks[function["FunctionName"]] = FunctionNetwork(
                    subnet_ids=list(vpc.get("SubnetIds", [])),
                    security_group_ids=list(vpc.get("SecurityGroupIds", [])),
                )
    return networks


def list_redis_clients_step(given: ListClientsInput, aws: AwsClients) -> ClientListing:
    """The endpoint's clients, identified; the output keeps the first groups and lines (counts whole)."""
    switched = list(given.switched_functions or [])
    if given.plan is not None:
        document = get_record(given.plan.record, plan_key(given.plan.record), given.plan.plan_sha256, aws)
        switched += [f.function_name for f in PlanDocument.model_validate(document).functions]
    with aws_errors_as_transient():
        networks = function_networks(aws.lambda_)
    with RedisLink(given.endpoint, read_credentials(given.endpoint, aws)) as link, aws_errors_as_transient():
        listing = list_clients(link, aws.ec2, networks, switched, instance_id=given.instance_id)
    lines = listing.not_switched
    if len(lines) > MAX_LINES_IN_OUTPUT:
        lines = [*lines[:MAX_LINES_IN_OUTPUT], f"... and {len(lines) - MAX_LINES_IN_OUTPUT} more"]
    return listing.model_copy(
        update={"clients": listing.clients[:MAX_GROUPS_IN_OUTPUT], "not_switched": lines}
    )
