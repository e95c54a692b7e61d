"""The final snapshot: taken before anything is deleted, optionally exported to S3, discarded only
by the compensation of a run that failed before the replication group's deletion.

CreateFinalSnapshot tags the snapshot with the execution that made it; DiscardFinalSnapshot
deletes a snapshot only when that tag names its own execution and the replication group is still
there: a snapshot that is the only way back is never deleted.
"""

from __future__ import annotations

import re
from typing import Any

from redis_migration.aws import AwsClients, aws_errors_as_transient, error_code
from redis_migration.decommission.errors import (
    CacheResourceInUse,
    FinalSnapshotMissing,
    SnapshotExportFailed,
)
from redis_migration.decommission.inventory import (
    SNAPSHOT_GONE,
    describe_replication_group,
    elasticache_tags,
)
from redis_migration.decommission.models import (
    DiscardInput,
    DiscardOutput,
    ExportInput,
    ExportStatus,
    SnapshotInput,
    SnapshotStatus,
)

SNAPSHOT_TAG = "redis-migration:decommission"
# An RDB file starts with "REDIS" and a four-digit format version ("REDIS0011" for Redis 7.2).
RDB_MAGIC = re.compile(rb"^REDIS(\d{4})")
# Replication group states in which ElastiCache refuses a snapshot or a deletion for a while.
BUSY_STATES = frozenset({"snapshotting", "modifying", "creating"})


def describe_snapshot(name: str, aws: AwsClients) -> dict[str, Any] | None:
    """The manual snapshot ``name``, or None when it does not exist."""
    try:
        found = aws.elasticache.describe_snapshots(SnapshotName=name).get("Snapshots") or []
    except Exception as error:
        if error_code(error) in SNAPSHOT_GONE:
            return None
        raise
    return dict(found[0]) if found else None


def _made_by(snapshot: dict[str, Any], execution_arn: str, aws: AwsClients) -> bool:
    arn = snapshot.get("ARN")
    if not arn:
        return False
    return elasticache_tags(str(arn), aws).get(SNAPSHOT_TAG) == execution_arn.rsplit(":", 1)[-1]


def create_final_snapshot(given: SnapshotInput, aws: AwsClients) -> SnapshotStatus:
    """Take the manual snapshot (once: an existing one is answered as it is)."""
    with aws_errors_as_transient():
        existing = describe_snapshot(given.snapshot_name, aws)
        if existing is not None:
            return SnapshotStatus(
                snapshot_name=given.snapshot_name,
                status=str(existing.get("SnapshotStatus", "unknown")),
                created=_made_by(existing, given.execution_arn, aws),
            )
        group = describe_replication_group(given.replication_group_id, aws)
        if group is None or group.get("Status") == "deleting":
            raise FinalSnapshotMissing(
                f"replication group {given.replication_group_id} is gone or being deleted and its final "
                f"snapshot {given.snapshot_name} does not exist: no snapshot can be taken any more"
            )
        if group.get("Status") in BUSY_STATES:
            raise CacheResourceInUse(
                f"replication group {given.replication_group_id} is {group.get('Status')}; the snapshot waits"
            )
        try:
            created = aws.elasticache.create_snapshot(
                ReplicationGroupId=given.replication_group_id,
                SnapshotName=given.snapshot_name,
                Tags=[{"Key": SNAPSHOT_TAG, "Value": given.execution_arn.rsplit(":", 1)[-1]}],
            )["Snapshot"]
        except Exception as error:
            code = error_code(error)
            if code in {"SnapshotAlreadyExistsFault", "SnapshotAlreadyExists"}:
                return create_final_snapshot(given, aws)
            if code in {"InvalidReplicationGroupState", "InvalidReplicationGroupStateFault"}:
                raise CacheResourceInUse(f"replication group {given.replication_group_id}: {error}") from None
            raise
    return SnapshotStatus(
        snapshot_name=given.snapshot_name,
        status=str(created.get("SnapshotStatus", "creating")),
        created=True,
    )


def check_final_snapshot(given: SnapshotInput, aws: AwsClients) -> SnapshotStatus:
    """The snapshot's status now (``missing`` if it vanished)."""
    with aws_errors_as_transient():
        snapshot = describe_snapshot(given.snapshot_name, aws)
        if snapshot is None:
            return SnapshotStatus(snapshot_name=given.snapshot_name, status="missing")
        return SnapshotStatus(
            snapshot_name=given.snapshot_name,
            status=str(snapshot.get("SnapshotStatus", "unknown")),
            created=_made_by(snapshot, given.execution_arn, aws),
        )


def _exported_objects(bucket: str, name: str, aws: AwsClients) -> list[str]:
    listed = aws.s3.list_objects_v2(Bucket=bucket, Prefix=f"{name}-").get("Contents") or []
    return sorted(str(item["Key"]) for item in listed if str(item["Key"]).endswith(".rdb"))


def export_final_snapshot(given: ExportInput, aws: AwsClients) -> ExportStatus:
    """CopySnapshot to the bucket (ElastiCache writes ``<name>-<shard>.rdb``); once."""
    bucket, name = given.export.bucket, given.export.name
    with aws_errors_as_transient():
        if _exported_objects(bucket, name, aws):
            return ExportStatus(bucket=bucket, finished=False, started=False)
        try:
            aws.elasticache.copy_snapshot(
                SourceSnapshotName=given.snapshot_name, TargetSnapshotName=name, TargetBucket=bucket
            )
        except Exception as error:
            if "already contains an object" in str(error):
                return ExportStatus(bucket=bucket, finished=False, started=False)
            if error_code(error) in {"InvalidSnapshotState", "InvalidSnapshotStateFault"}:
                raise CacheResourceInUse(f"snapshot {given.snapshot_name}: {error}") from None
            raise
    return ExportStatus(bucket=bucket, finished=False, started=True)


def check_exported_snapshot(given: ExportInput, aws: AwsClients) -> ExportStatus:
    """Finished when the source snapshot is no longer exporting and every file reads as RDB."""
    bucket, name = given.export.bucket, given.export.name
    with aws_errors_as_transient():
        snapshot = describe_snapshot(given.snapshot_name, aws)
        if snapshot is not None and snapshot.get("SnapshotStatus") == "exporting":
            return ExportStatus(bucket=bucket, finished=False)
        objects = _exported_objects(bucket, name, aws)
        if not objects:
            raise SnapshotExportFailed(
                f"no exported file s3://{bucket}/{name}-*.rdb after the export of {given.snapshot_name} ended"
            )
        versions = []
        for key in objects:
            head = aws.s3.get_object(Bucket=bucket, Key=key, Range="bytes=0-8")["Body"].read()
            match = RDB_MAGIC.match(head)
            if match is None:
                raise SnapshotExportFailed(
                    f"s3://{bucket}/{key} does not start with the RDB header (REDIS + version): {head[:9]!r}"
                )
            versions.append(int(match[1]))
    return ExportStatus(bucket=bucket, finished=True, objects=objects, rdb_versions=versions)


def discard_final_snapshot(given: DiscardInput, aws: AwsClients) -> DiscardOutput:
    """Compensation: delete what this run made, only while the replication group is intact."""
    discarded: list[str] = []
    kept: list[str] = []
    group_id = given.inventory.replication_group.replication_group_id
    with aws_errors_as_transient():
        group = describe_replication_group(group_id, aws)
        if group is None or group.get("Status") == "deleting":
            return DiscardOutput(
                discarded=[],
                kept=[
                    f"final snapshot {given.snapshot_name}: kept, replication group {group_id} is "
                    f"{'gone' if group is None else 'being deleted'} and the snapshot is the way back"
                ],
            )
        snapshot = describe_snapshot(given.snapshot_name, aws)
        if snapshot is not None:
            if _made_by(snapshot, given.execution_arn, aws):
                try:
                    aws.elasticache.delete_snapshot(SnapshotName=given.snapshot_name)
                except Exception as error:
                    if error_code(error) in {"InvalidSnapshotState", "InvalidSnapshotStateFault"}:
                        raise CacheResourceInUse(f"snapshot {given.snapshot_name}: {error}") from None
                    if error_code(error) not in SNAPSHOT_GONE:
                        raise
                discarded.append(f"final snapshot {given.snapshot_name}")
                if given.export is not None:
                    for key in _exported_objects(given.export.bucket, given.export.name, aws):
                        aws.s3.delete_object(Bucket=given.export.bucket, Key=key)
                        discarded.append(f"s3://{given.export.bucket}/{key}")
            else:
                kept.append(f"final snapshot {given.snapshot_name}: kept, an earlier run made it")
    return DiscardOutput(discarded=discarded, kept=kept)
