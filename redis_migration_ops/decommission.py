"""Operating a decommission: its input, the end it came to, and what it left, read from the account.

The CLI (``redis-migration decommission``), the exit-code check of a run that ended uncaught and
the audit report use these; nothing here changes anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from redis_migration.aws import AwsClients
from redis_migration.decommission.leftovers import check_decommission_leftovers
from redis_migration.decommission.models import DecommissionInput, Inventory, LeftoversInput

from redis_migration_ops.audit.history import not_a_succeeded_migration, parse_json

DECOMMISSION_FAIL_STATES = frozenset({"DecommissionRefused", "DecommissionFailed", "DecommissionIncomplete"})
DECOMMISSION_INCOMPLETE = "DecommissionIncomplete"
PRECONDITIONS_STATE = "CheckDecommissionPreconditions"
APPROVAL_STATE = "WaitForDecommissionApproval"


class DecommissionInputError(ValueError):
    """The operator asked for something a decommission cannot be started with."""


def decommission_input(
    described: Mapping[str, Any],
    *,
    soak_hours: int | None = None,
    export_bucket: str | None = None,
    managed_by_tags: list[str] | None = None,
    require_approval: bool = True,
) -> dict[str, Any]:
    """``{"decommissionOf": <ARN>, ...}`` for a migration that succeeded; a clear refusal otherwise.

    The workflow reads the migration itself (CheckDecommissionPreconditions); this only spares the
    operator a run that would be refused, and checks the input with the workflow's own model.
    """
    refusal = not_a_succeeded_migration(
        described,
        why_succeeded="only a migration that succeeded leaves an ElastiCache to retire",
        outcome_tail="); name the migration whose ElastiCache to retire",
    )
    if refusal:
        raise DecommissionInputError(refusal)
    raw: dict[str, Any] = {
        "decommissionOf": str(described["executionArn"]),
        "requireApproval": require_approval,
    }
    if soak_hours is not None:
        raw["soakHours"] = soak_hours
    if export_bucket:
        raw["exportBucket"] = export_bucket
    if managed_by_tags:
        raw["managedByTags"] = list(managed_by_tags)
    try:
        DecommissionInput.model_validate(raw)
    except ValueError as error:
        raise DecommissionInputError(f"invalid input: {error}") from None
    return raw


def is_decommission(history: list[dict[str, Any]]) -> bool:
    """Whether the execution is a decommission (it entered CheckDecommissionPreconditions)."""
    return any(
        (event.get("stateEnteredEventDetails") or {}).get("name") == PRECONDITIONS_STATE for event in history
    )


def decommission_plan(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The plan CheckDecommissionPreconditions answered, from the history."""
    for event in history:
        details = event.get("taskSucceededEventDetails")
        if not details or details.get("resourceType") != "lambda":
            continue
        output = parse_json(details.get("output"))
        payload = output.get("Payload") if isinstance(output, dict) else None
        if isinstance(payload, dict) and "inventory" in payload and "snapshotName" in payload:
            return payload
    return None


def decommission_differences(session: boto3.Session, history: list[dict[str, Any]]) -> list[str]:
    """For a decommission that ended uncaught: what of its inventory is gone now (empty: nothing).

    A run that stopped before its plan existed changed nothing.
    """
    plan = decommission_plan(history)
    if plan is None:
        return []
    inventory = Inventory.model_validate(plan["inventory"])
    left = check_decommission_leftovers(
        LeftoversInput(inventory=inventory, snapshot_name=str(plan["snapshotName"])),
        AwsClients(factory=session.client),
    )
    if left.replication_group_intact:
        return []  # nothing is deleted before the replication group
    group = inventory.replication_group.replication_group_id
    return [
        f"replication group {group} is {left.replication_group_status}",
        *(f"left: {line}" for line in left.left),
    ]
