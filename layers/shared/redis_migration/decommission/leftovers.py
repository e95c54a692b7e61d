"""CheckDecommissionLeftovers: the inventory read again, after the deletions or after a failure.

The run's outcome rests on this, not on what the steps reported: empty ``left`` is a complete
decommission; a replication group still ``available`` after a failure means nothing was deleted
(the compensation then discards this run's snapshot); anything else is DecommissionIncomplete,
naming exactly what is left (a re-run finishes it).
"""

from __future__ import annotations

from redis_migration.aws import AwsClients, aws_errors_as_transient
from redis_migration.decommission.inventory import (
    describe_replication_group,
    parameter_group_exists,
    secret_facts,
    security_group_facts,
    subnet_group_exists,
)
from redis_migration.decommission.models import Leftovers, LeftoversInput
from redis_migration.decommission.snapshot import describe_snapshot


def check_decommission_leftovers(given: LeftoversInput, aws: AwsClients) -> Leftovers:
    """What of the inventory still exists, by name; and whether the replication group is untouched."""
    inventory = given.inventory
    group_id = inventory.replication_group.replication_group_id
    left: list[str] = []
    with aws_errors_as_transient():
        group = describe_replication_group(group_id, aws)
        status = "deleted" if group is None else str(group.get("Status"))
        if group is not None:
            left.append(f"replication group {group_id} ({status})")
        if inventory.subnet_group and subnet_group_exists(inventory.subnet_group.name, aws):
            left.append(f"cache subnet group {inventory.subnet_group.name}")
        if inventory.parameter_group and parameter_group_exists(inventory.parameter_group.name, aws):
            left.append(f"cache parameter group {inventory.parameter_group.name}")
        remaining = {
            g.group_id: g for g in security_group_facts([g.group_id for g in inventory.security_groups], aws)
        }
        for recorded in inventory.security_groups:
            if recorded.group_id in remaining:
                left.append(f"security group {recorded.group_id} ({recorded.name})")
                left += [
                    f"rule of {rule.describe()}" for rule in remaining[recorded.group_id].referencing_rules
                ]
        scheduled = None
        if inventory.auth_token_secret_arn:
            described = secret_facts(inventory.auth_token_secret_arn, aws)
            scheduled = described is None or bool(described.get("DeletedDate"))
            if not scheduled:
                left.append(f"secret {inventory.auth_token_secret_arn} (not scheduled for deletion)")
        snapshot = describe_snapshot(given.snapshot_name, aws)
        snapshot_status = "missing" if snapshot is None else str(snapshot.get("SnapshotStatus"))
    return Leftovers(
        left=left,
        replication_group_status=status,
        replication_group_intact=group is not None and status != "deleting",
        snapshot_status=snapshot_status,
        secret_scheduled_for_deletion=scheduled,
    )
