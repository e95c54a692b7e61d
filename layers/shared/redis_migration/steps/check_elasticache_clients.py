"""CheckElastiCacheClientsBefore / After: ElastiCache's clients (every node's CLIENT LIST, listed in
the VPC by ListElastiCacheClients) compared with the plan, outside the VPC.

``before`` (read-only, before any change): every client is switched, frozen (a host service), or,
in ``consistent`` mode, the run refuses naming it and the ways on (``PreconditionFailed``, so the
workflow ends PreconditionsNotMet with nothing changed); in ``warm`` and ``none`` modes such clients
are warnings in the plan and the report. ``after`` (after the last wave's bake): a switched
function's interface that sent a command within the bake still uses ElastiCache; one idle since
before is an old execution environment's socket. See :mod:`redis_migration.clients.writers`.

The plan's functions come from the records bucket (pinned by the digest Step Functions recorded);
every function's VPC attachment and environment from ListFunctions (the candidates of a Lambda
interface are all the account's functions with its subnet and security groups); the cache's names
from DescribeReplicationGroups.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import Field

from redis_migration.aws import AwsClients, aws_errors_as_transient
from redis_migration.clients.connected import ClientListOutput, FunctionNetwork, replication_group_of
from redis_migration.clients.endpoints import CacheNames, endpoint_addresses, uses_cache
from redis_migration.clients.writers import judge_clients, refusal, still_used
from redis_migration.errors import PreconditionFailed
from redis_migration.models import Model, PlanDocument, RecordLocation
from redis_migration.records import get_record, plan_key


class ElastiCacheClientsInput(Model):
    phase: Literal["before", "after"]
    record: RecordLocation
    plan_sha256: str
    # The mode CheckData decided: only consistent refuses.
    data_mode: Literal["none", "warm", "consistent"] = "none"
    listing: ClientListOutput
    # after: when the last wave's functions were switched (None: no bake ran, nothing is judged),
    # and the longest timeout among them (an invocation that began before may run that long).
    cut_over_at: datetime | None = None
    max_function_timeout: Annotated[int, Field(ge=0)] = 0
    # before: the functions whose configuration names this ElastiCache and that the run leaves out
    # of `functions` (CheckPreconditions found them; the first few by name, and how many). In
    # consistent mode they are refused here with the connected writers, in one list.
    left_out: list[str] = []
    left_out_count: Annotated[int, Field(ge=0)] = 0


class ElastiCacheClientsOutput(Model):
    phase: Literal["before", "after"]
    clients: int
    # Every client with what the run does about it.
    lines: list[str]
    # The clients the run neither switches nor freezes (warm and none modes): their writes stay on
    # ElastiCache.
    warnings: list[str]
    # after: switched functions still using ElastiCache, and old execution environments' sockets.
    still_used: list[str] = []
    old_environments: list[str] = []
    # after: whether the connections were judged (not when no bake ran, or it was shorter than
    # the functions' timeout), and why not.
    judged: bool = False
    note: str | None = None
    elasticache_connections: int = 0


def account_functions(aws: AwsClients, names: CacheNames) -> tuple[dict[str, FunctionNetwork], set[str]]:
    """Every function's VPC attachment, and the functions whose environment names the cache."""
    networks: dict[str, FunctionNetwork] = {}
    users: set[str] = set()
    for page in aws.lambda_.get_paginator("list_functions").paginate():
        for function in page.get("Functions", []):
            name = str(function["FunctionName"])
            vpc = function.get("VpcConfig") or {}
            if vpc.get("SubnetIds"):
                networks[name] = FunctionNetwork(
                    subnet_ids=list(vpc.get("SubnetIds") or []),
                    security_group_ids=list(vpc.get("SecurityGroupIds") or []),
                )
            if uses_cache((function.get("Environment") or {}).get("Variables") or {}, names):
                users.add(name)
    return networks, users


def check_elasticache_clients(
    given: ElastiCacheClientsInput, aws: AwsClients, stack_name: str = "", *, now: datetime | None = None
) -> ElastiCacheClientsOutput:
    """Compare the listing with the plan (see the module doc); refuse in consistent mode."""
    with aws_errors_as_transient():
        plan = PlanDocument.model_validate(
            get_record(given.record, plan_key(given.record), given.plan_sha256, aws)
        )
        endpoint = plan.request.elasticache_endpoint
        group = replication_group_of(endpoint, aws)
        names = CacheNames.of([endpoint, *(endpoint_addresses(group) if group else [])])
        networks, users = account_functions(aws, names)
    verdicts = judge_clients(
        given.listing.clients,
        networks,
        users,
        {function.function_name for function in plan.functions},
        f"{stack_name}-" if stack_name else "",
        plan.instance.instance_id,
        plan.request.host_services,
    )
    not_switched = [verdict.line() for verdict in verdicts if verdict.decision == "not-switched"]
    if given.listing.more_clients:
        not_switched.append(
            f"{given.listing.more_clients} more client(s), not named (the listing is bounded)"
        )
    if given.phase == "before" and given.data_mode == "consistent" and (not_switched or given.left_out_count):
        raise PreconditionFailed(
            refusal(
                verdicts,
                given.listing.more_clients,
                left_out=given.left_out,
                left_out_count=given.left_out_count,
            )
        )
    used: list[str] = []
    idle: list[str] = []
    note = None
    if given.phase == "after" and given.cut_over_at is not None:
        elapsed = ((now or datetime.now(UTC)) - given.cut_over_at).total_seconds()
        window = int(elapsed) - given.max_function_timeout
        if window > 0:
            used, idle = still_used(verdicts, window)
        else:
            note = (
                f"not judged: {int(elapsed)} s since the cutover, within the functions' longest timeout "
                f"({given.max_function_timeout} s): an invocation that began before it may still run"
            )
    return ElastiCacheClientsOutput(
        phase=given.phase,
        clients=len(given.listing.clients) + given.listing.more_clients,
        lines=[verdict.line() for verdict in verdicts],
        warnings=[f"{line}; its writes stay on ElastiCache" for line in not_switched],
        still_used=used,
        old_environments=idle,
        judged=given.phase == "after" and given.cut_over_at is not None and note is None,
        note=note,
        elasticache_connections=given.listing.elasticache_connections,
    )
