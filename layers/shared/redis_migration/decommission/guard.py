"""After a decommission, a rollback has nowhere to go: it is refused until ElastiCache is restored.

A rollback points the functions back at the ElastiCache endpoint the migration moved away from. Once
a decommission deleted the replication group, that endpoint answers nothing; the way back is a
restore from the final snapshot (docs/decommission.md), after which the same group id gives the
same endpoint and the rollback works again.
"""

from __future__ import annotations

from redis_migration.aws import AwsClients
from redis_migration.decommission.inventory import describe_replication_group


def elasticache_gone(replication_group_id: str, aws: AwsClients) -> str | None:
    """Why a rollback cannot go back to the group (None: it exists; or the stack names none)."""
    if not replication_group_id:
        return None
    group = describe_replication_group(replication_group_id, aws)
    if group is not None and group.get("Status") != "deleting":
        return None
    state = "does not exist" if group is None else "is being deleted"
    return (
        f"replication group {replication_group_id} {state} (decommissioned): a rollback would point the "
        "functions at an endpoint that answers nothing; restore it from its final snapshot first "
        "(docs/decommission.md, or the decommission's restoreCommands), then roll back"
    )
