"""What Step Functions records about this stack's executions: the lock and the succeeded migrations.

Both read Step Functions itself (ListExecutions, DescribeExecution), never a record passed in an
input: the lock refuses a second migration of the stack whatever its input says, and a rollback or
decommission reads what a migration did from its recorded output.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from redis_migration.aws import AwsClients
from redis_migration.errors import MigrationAlreadyRunning, RollbackRefused
from redis_migration.models import MigrationRecord


def refuse_concurrent_migration(state_machine_arn: str, execution_arn: str, aws: AwsClients) -> None:
    """Only one execution of this stack may be past preflight: the earliest started one.

    Whatever their input says, every execution of this state machine works on the same instance
    and may touch the same functions (ValidateInput pins project, environment and instance to
    the stack's). Dry runs change nothing and are ignored both ways. Two executions that start
    together both see each other; the later one (by start time, then by name) is refused, so
    exactly one goes on.
    """
    ours = aws.stepfunctions.describe_execution(executionArn=execution_arn)
    ours_key = _start_key(ours["startDate"], ours["name"])
    paginator = aws.stepfunctions.get_paginator("list_executions")
    for page in paginator.paginate(stateMachineArn=state_machine_arn, statusFilter="RUNNING"):
        for execution in page["executions"]:
            if execution["executionArn"] == execution_arn:
                continue
            if _start_key(execution["startDate"], execution["name"]) > ours_key:
                continue
            other = aws.stepfunctions.describe_execution(executionArn=execution["executionArn"])
            if _is_dry_run(other.get("input")):
                continue
            raise MigrationAlreadyRunning(
                f"execution {execution['name']} of this stack is still running (started "
                f"{execution['startDate']:%Y-%m-%d %H:%M:%S} UTC); one migration at a time: wait for "
                "it to end or stop it first"
            )


def _start_key(started: datetime, name: str) -> tuple[float, str]:
    return (started.timestamp(), name)


def _is_dry_run(execution_input: str | None) -> bool:
    try:
        document: Any = json.loads(execution_input or "{}")
    except json.JSONDecodeError:
        return False
    return isinstance(document, dict) and document.get("dryRun") is True


def migration_records(state_machine_arn: str, aws: AwsClients) -> list[tuple[str, Any, MigrationRecord]]:
    """Every succeeded migration of this state machine, with its record (from Step Functions)."""
    found = []
    paginator = aws.stepfunctions.get_paginator("list_executions")
    for page in paginator.paginate(stateMachineArn=state_machine_arn, statusFilter="SUCCEEDED"):
        for execution in page["executions"]:
            described = aws.stepfunctions.describe_execution(executionArn=execution["executionArn"])
            record = migration_record(described.get("output"))
            if record is not None:
                found.append((described["name"], described["startDate"], record))
    return found


def migration_record(output: str | None) -> MigrationRecord | None:
    """The record of a succeeded migration's output, or None for any other succeeded execution."""
    try:
        document = json.loads(output or "null")
    except json.JSONDecodeError:
        return None
    if not isinstance(document, dict) or document.get("outcome") != "migrated":
        return None
    try:
        return MigrationRecord.model_validate(document)
    except ValueError as error:
        raise RollbackRefused(f"a migration's recorded output does not read as a record: {error}") from None
