"""After the cutover: does every function this stack migrated still point to the self-hosted Redis?

A function deployed by CloudFormation or Terraform gets its template's values back on its next
deploy (and a release is what triggers the migration), so a switched function can silently go
back to ElastiCache days later; after the decommission it would fail outright. The scheduled
check (CheckMigratedFunctions) reads which functions were migrated from the stack's own records,
as a rollback does (this state machine's succeeded executions, and the plans they pinned by
digest in S3), and reads each of them now: ``$LATEST`` and every alias the cutover moved must hold
the values the run wrote. It publishes ``FunctionsReverted`` (an alarm fires at 1) and names each
function in its log.

It runs outside the VPC: its calls (Step Functions, S3, Lambda) would otherwise need three more
interface endpoints in every private subnet, for a check that does not talk to Redis.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict

from redis_migration.aws import AwsClients, error_code
from redis_migration.clients.aliases import alias_cutover_problems
from redis_migration.clients.environment import function_variables
from redis_migration.errors import FunctionEnvironmentUnreadable
from redis_migration.models import (
    ENVIRONMENT_DIMENSION,
    AliasPlan,
    ManagedValues,
    MigrationRecord,
    StackSettings,
)
from redis_migration.records import read_plan

REVERTED_METRIC = "FunctionsReverted"
CHECKED_METRIC = "MigratedFunctionsChecked"
# Functions named in the log line (every one is counted in the metric).
NAMED_IN_LOG = 50

# An ended execution never changes: its parsed output is kept while the container is warm (by ARN
# and start date: an execution name can be reused once the old execution has expired).
_outputs: dict[tuple[str, str], tuple[Any, str | None, Any]] = {}
_outputs_lock = threading.Lock()


@dataclass
class MigratedFunction:
    """What a function must hold: the values its latest migration wrote, on $LATEST and its aliases."""

    target: ManagedValues
    aliases: dict[str, AliasPlan] = field(default_factory=dict)


class DriftReport(BaseModel):
    """What the check returns and logs (function names and variable names; no secret)."""

    model_config = ConfigDict(frozen=True)

    environment: str
    checked: int
    reverted: list[str]
    # Functions a migration switched that no longer exist (not counted as reverted).
    gone: list[str]


def _ended_outputs(state_machine_arn: str, aws: AwsClients) -> list[tuple[Any, str | None, Any]]:
    """(start date, outcome, output) of every succeeded execution of the state machine."""
    found = []
    paginator = aws.stepfunctions.get_paginator("list_executions")
    for page in paginator.paginate(stateMachineArn=state_machine_arn, statusFilter="SUCCEEDED"):
        for execution in page["executions"]:
            arn = execution["executionArn"]
            key = (arn, str(execution["startDate"]))
            with _outputs_lock:
                cached = _outputs.get(key)
            if cached is None:
                described = aws.stepfunctions.describe_execution(executionArn=arn)
                try:
                    output = json.loads(described.get("output") or "null")
                except json.JSONDecodeError:
                    output = None
                outcome = output.get("outcome") if isinstance(output, dict) else None
                cached = (described["startDate"], outcome, output)
                with _outputs_lock:
                    _outputs[key] = cached
            found.append(cached)
    return sorted(found, key=lambda item: item[0])


def migrated_functions(state_machine_arn: str, aws: AwsClients) -> dict[str, MigratedFunction]:
    """Every function switched by a succeeded migration since the stack's last rollback.

    A rollback (``rolledBack``) undoes every migration of the stack, so it starts the count afresh;
    a later migration's values replace an earlier one's; aliases accumulate (a re-run plans none).
    """
    expected: dict[str, MigratedFunction] = {}
    for _, outcome, output in _ended_outputs(state_machine_arn, aws):
        if outcome == "rolledBack":
            expected.clear()
        elif outcome == "migrated":
            record = MigrationRecord.model_validate(output)
            plan = read_plan(record.plan.record, record.plan.plan_sha256, aws)
            for function in plan.functions:
                previous = expected.get(function.function_name)
                aliases = dict(previous.aliases) if previous else {}
                aliases.update({alias.name: alias for alias in function.aliases})
                # Each function's own values (its variables naming the cache, in their form); a
                # later run's value of a variable replaces an earlier one's.
                target = dict(previous.target) if previous else {}
                target.update(function.values_after(record.target))
                expected[function.function_name] = MigratedFunction(target, aliases)
    return expected


def reverted_lines(name: str, expected: MigratedFunction, aws: AwsClients) -> list[str] | None:
    """Where ``name`` no longer holds its migrated values (empty: it does); None: it no longer exists."""
    try:
        config = aws.lambda_.get_function_configuration(FunctionName=name)
    except Exception as error:
        if error_code(error) == "ResourceNotFoundException":
            return None
        raise
    try:
        variables = function_variables(config)
    except FunctionEnvironmentUnreadable as error:
        return [str(error)]
    lines = [
        f"{name}: {key} is {variables.get(key)!r}, not the migrated value"
        for key, value in expected.target.items()
        if variables.get(key) != value
    ]
    return lines + alias_cutover_problems(
        name, list(expected.aliases.values()), expected.target, function_variables, aws
    )


def check_migrated_functions(settings: StackSettings, aws: AwsClients, sink: Metrics) -> DriftReport:
    """Read every migrated function now; add FunctionsReverted and MigratedFunctionsChecked to ``sink``."""
    expected = migrated_functions(settings.state_machine_arn, aws)
    reverted: list[str] = []
    gone: list[str] = []
    for name in sorted(expected):
        lines = reverted_lines(name, expected[name], aws)
        if lines is None:
            gone.append(name)
        elif lines:
            reverted.append("; ".join(lines))
    sink.add_dimension(name=ENVIRONMENT_DIMENSION, value=settings.environment)
    sink.add_metric(name=REVERTED_METRIC, unit=MetricUnit.Count, value=len(reverted))
    sink.add_metric(name=CHECKED_METRIC, unit=MetricUnit.Count, value=len(expected) - len(gone))
    return DriftReport(
        environment=settings.environment, checked=len(expected) - len(gone), reverted=reverted, gone=gone
    )
