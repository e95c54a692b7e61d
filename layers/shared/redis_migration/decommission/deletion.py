"""The deletions, in ElastiCache's dependency order, each idempotent ("not found" counts as done).

The replication group goes first (it holds the others); its subnet group, custom parameter group
and security groups answer "in use" until its nodes are gone, which the state machine retries with
backoff (:class:`CacheResourceInUse`). The AUTH token's secret is scheduled for deletion with a
30-day recovery window, never deleted at once.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

from redis_migration.aws import AwsClients, aws_errors_as_transient, error_code
from redis_migration.decommission.errors import (
    CacheResourceInUse,
    FinalSnapshotMissing,
    ReplicationGroupNotDeleted,
    SecurityGroupStillReferenced,
)
from redis_migration.decommission.inventory import (
    PARAMETER_GROUP_GONE,
    REPLICATION_GROUP_GONE,
    SECURITY_GROUP_GONE,
    SUBNET_GROUP_GONE,
    describe_replication_group,
    permission_of,
    secret_facts,
    security_group_facts,
)
from redis_migration.decommission.models import (
    PARAMETER_GROUP_KEY,
    REPLICATION_GROUP_KEY,
    SECRET_KEY,
    SECURITY_GROUP_KEY,
    SUBNET_GROUP_KEY,
    DeletionInput,
    DeletionReport,
    ReplicationGroupDeletion,
    ResourceDeletion,
)
from redis_migration.decommission.snapshot import BUSY_STATES, describe_snapshot

# Secrets Manager's longest recovery window: the most time to notice a mistake.
RECOVERY_WINDOW_DAYS = 30


def delete_replication_group(given: DeletionInput, aws: AwsClients) -> ReplicationGroupDeletion:
    """Delete the group once its final snapshot is available; a group being deleted or gone is fine."""
    group_id = given.inventory.replication_group.replication_group_id
    with aws_errors_as_transient():
        group = describe_replication_group(group_id, aws)
        if group is None:
            return ReplicationGroupDeletion(
                replication_group_id=group_id, status="deleted", deleted=True, done=[REPLICATION_GROUP_KEY]
            )
        status = str(group.get("Status"))
        if status == "deleting":
            return ReplicationGroupDeletion(replication_group_id=group_id, status=status, deleted=False)
        snapshot = describe_snapshot(given.snapshot_name, aws)
        if snapshot is None or snapshot.get("SnapshotStatus") != "available":
            raise FinalSnapshotMissing(
                f"final snapshot {given.snapshot_name} is "
                f"{'missing' if snapshot is None else snapshot.get('SnapshotStatus')}: replication group "
                f"{group_id} is not deleted without it"
            )
        if status in BUSY_STATES:
            raise CacheResourceInUse(f"replication group {group_id} is {status}; the deletion waits")
        if status != "available":
            raise ReplicationGroupNotDeleted(
                f"replication group {group_id} is {status}; it cannot be deleted"
            )
        try:
            deleted = aws.elasticache.delete_replication_group(
                ReplicationGroupId=group_id, RetainPrimaryCluster=False
            )["ReplicationGroup"]
        except Exception as error:
            code = error_code(error)
            if code in REPLICATION_GROUP_GONE:
                return ReplicationGroupDeletion(
                    replication_group_id=group_id,
                    status="deleted",
                    deleted=True,
                    done=[REPLICATION_GROUP_KEY],
                )
            if code in {"InvalidReplicationGroupState", "InvalidReplicationGroupStateFault"}:
                raise CacheResourceInUse(f"replication group {group_id}: {error}") from None
            raise
    return ReplicationGroupDeletion(
        replication_group_id=group_id, status=str(deleted.get("Status", "deleting")), deleted=False
    )


def check_replication_group_deleted(given: DeletionInput, aws: AwsClients) -> ReplicationGroupDeletion:
    """Gone (``deleted``) or still ``deleting``; any other state means someone changed it meanwhile."""
    group_id = given.inventory.replication_group.replication_group_id
    with aws_errors_as_transient():
        group = describe_replication_group(group_id, aws)
    if group is None:
        return ReplicationGroupDeletion(
            replication_group_id=group_id, status="deleted", deleted=True, done=[REPLICATION_GROUP_KEY]
        )
    status = str(group.get("Status"))
    if status != "deleting":
        raise ReplicationGroupNotDeleted(
            f"replication group {group_id} is {status} after its deletion was requested (another deletion "
            "failed, or someone changed it)"
        )
    return ReplicationGroupDeletion(replication_group_id=group_id, status=status, deleted=False)


def _delete_named_group(
    resource: str,
    delete: Callable[[], object],
    gone_codes: Collection[str],
    in_use_codes: Collection[str],
    done_key: str,
) -> DeletionReport:
    """Delete one group: "not found" counts as done (a re-run), "in use" is CacheResourceInUse
    (retried by the ASL, then named)."""
    with aws_errors_as_transient():
        try:
            delete()
        except Exception as error:
            code = error_code(error)
            if code in gone_codes:
                return DeletionReport(
                    items=[ResourceDeletion(resource=resource, outcome="absent")], done=[done_key]
                )
            if code in in_use_codes:
                raise CacheResourceInUse(f"{resource}: {error}") from None
            raise
    return DeletionReport(items=[ResourceDeletion(resource=resource, outcome="deleted")], done=[done_key])


def delete_cache_subnet_group(given: DeletionInput, aws: AwsClients) -> DeletionReport:
    subnet_group = given.inventory.subnet_group
    if subnet_group is None:
        return DeletionReport(items=[ResourceDeletion(resource="cache subnet group", outcome="skipped")])
    return _delete_named_group(
        f"cache subnet group {subnet_group.name}",
        lambda: aws.elasticache.delete_cache_subnet_group(CacheSubnetGroupName=subnet_group.name),
        SUBNET_GROUP_GONE,
        {"CacheSubnetGroupInUse", "CacheSubnetGroupInUseFault"},
        SUBNET_GROUP_KEY,
    )


def delete_cache_parameter_group(given: DeletionInput, aws: AwsClients) -> DeletionReport:
    parameter_group = given.inventory.parameter_group
    if parameter_group is None:
        return DeletionReport(items=[ResourceDeletion(resource="cache parameter group", outcome="skipped")])
    return _delete_named_group(
        f"cache parameter group {parameter_group.name}",
        lambda: aws.elasticache.delete_cache_parameter_group(CacheParameterGroupName=parameter_group.name),
        PARAMETER_GROUP_GONE,
        {"InvalidCacheParameterGroupState", "InvalidCacheParameterGroupStateFault"},
        PARAMETER_GROUP_KEY,
    )


def delete_security_groups(given: DeletionInput, aws: AwsClients) -> DeletionReport:
    """Revoke the approved rules of other groups that name each group, then delete the group."""
    items: list[ResourceDeletion] = []
    if not given.inventory.security_groups:
        return DeletionReport(items=[ResourceDeletion(resource="security groups", outcome="skipped")])
    with aws_errors_as_transient():
        for recorded in given.inventory.security_groups:
            resource = f"security group {recorded.group_id} ({recorded.name})"
            current = security_group_facts([recorded.group_id], aws)
            if not current:
                items.append(ResourceDeletion(resource=resource, outcome="absent"))
                continue
            approved = {(r.group_id, r.rule.model_dump_json()) for r in recorded.referencing_rules}
            unapproved = []
            for referencing in current[0].referencing_rules:
                if (referencing.group_id, referencing.rule.model_dump_json()) not in approved:
                    unapproved.append(referencing.describe())
                    continue
                permissions: Any = [permission_of(referencing.rule)]
                try:
                    if referencing.rule.direction == "ingress":
                        aws.ec2.revoke_security_group_ingress(
                            GroupId=referencing.group_id, IpPermissions=permissions
                        )
                    else:
                        aws.ec2.revoke_security_group_egress(
                            GroupId=referencing.group_id, IpPermissions=permissions
                        )
                except Exception as error:
                    if error_code(error) not in {*SECURITY_GROUP_GONE, "InvalidPermission.NotFound"}:
                        raise
            if unapproved:
                raise SecurityGroupStillReferenced(
                    f"{resource} is named by rules added after the approval; remove them or re-run: "
                    + "; ".join(unapproved)
                )
            try:
                aws.ec2.delete_security_group(GroupId=recorded.group_id)
            except Exception as error:
                code = error_code(error)
                if code in SECURITY_GROUP_GONE:
                    items.append(ResourceDeletion(resource=resource, outcome="absent"))
                    continue
                if code in {"DependencyViolation", "InvalidGroup.InUse"}:
                    # The deleted nodes' network interfaces are released a little after the group.
                    raise CacheResourceInUse(f"{resource}: {error}") from None
                raise
            items.append(ResourceDeletion(resource=resource, outcome="deleted"))
    done = [f"{SECURITY_GROUP_KEY}{group.group_id}" for group in given.inventory.security_groups]
    # Every approved rule is gone with its group: revoked by this attempt or an earlier one (retries).
    revoked = [
        rule.describe() for group in given.inventory.security_groups for rule in group.referencing_rules
    ]
    return DeletionReport(items=items, revoked_rules=revoked, done=done)


def schedule_auth_token_secret_deletion(given: DeletionInput, aws: AwsClients) -> DeletionReport:
    """DeleteSecret with a 30-day recovery window (never ForceDeleteWithoutRecovery)."""
    arn = given.inventory.auth_token_secret_arn
    if arn is None:
        return DeletionReport(items=[ResourceDeletion(resource="AUTH token secret", outcome="skipped")])
    resource = f"secret {arn}"
    with aws_errors_as_transient():
        described = secret_facts(arn, aws)
        if described is None:
            return DeletionReport(
                items=[ResourceDeletion(resource=resource, outcome="absent")], done=[SECRET_KEY]
            )
        if described.get("DeletedDate"):
            return DeletionReport(
                done=[SECRET_KEY],
                items=[
                    ResourceDeletion(
                        resource=resource,
                        outcome="scheduled",
                        detail=f"already, since {described['DeletedDate']}",
                    )
                ],
            )
        answer = aws.secretsmanager.delete_secret(SecretId=arn, RecoveryWindowInDays=RECOVERY_WINDOW_DAYS)
    when = answer.get("DeletionDate")
    detail = f"deleted on {when:%Y-%m-%d} unless restored" if isinstance(when, datetime) else ""
    return DeletionReport(
        items=[ResourceDeletion(resource=resource, outcome="scheduled", detail=detail)], done=[SECRET_KEY]
    )
