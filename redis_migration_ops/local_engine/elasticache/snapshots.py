"""Manual snapshots take time, and CopySnapshot exports one to S3 (moto 5.2.5: instant, and no copy).

What AWS does (ElastiCache API reference, CreateSnapshot, CopySnapshot, DeleteSnapshot; user guide,
"Exporting a backup"):
https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_CreateSnapshot.html
https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_CopySnapshot.html
https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/backups-exporting.html

- CreateSnapshot needs an ``available`` group; the snapshot is ``creating`` for minutes while the
  group is ``snapshotting``, then ``available``;
- DeleteSnapshot refuses a snapshot that is ``creating`` or ``exporting`` (``InvalidSnapshotState``);
- CopySnapshot of an ``available`` snapshot: without ``TargetBucket`` a new snapshot; with it, an
  export of ``<TargetSnapshotName>-<shard>.rdb`` files to the bucket, which must exist, be in the
  snapshot's region, grant ElastiCache's canonical user READ, WRITE and READ_ACP (or, in the
  regions opened after March 2019, allow ``<region>.elasticache-snapshot.amazonaws.com`` by bucket
  policy), and not hold the file already. A bucket with ACLs disabled (the default for new buckets,
  ``s3/object_ownership.py``) grants nothing by ACL: only its bucket policy counts. Each refusal is
  ``InvalidParameterValue`` with the message the API reference lists ("The S3 bucket %s is outside
  of the region.", "ElastiCache has not been granted READ permissions %s on the S3 Bucket.", ...).

Wrong in moto, filled here: snapshots are ``available`` at once, a busy group is snapshotted, no
snapshot is ever busy, CopySnapshot does not exist. The exported file is a valid RDB file (the
header, ``redis-ver``, EOF, no checksum) of the format the group's engine version writes; it holds
no keys (the rehearsal's data lives in the ElastiCache stand-in, not in moto).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from moto.core.responses import ActionResult
from moto.elasticache.exceptions import (
    ElastiCacheException,
    InvalidParameterValueException,
    SnapshotAlreadyExists,
    SnapshotNotFound,
)
from moto.elasticache.models import ElastiCacheBackend, Snapshot
from moto.elasticache.responses import ElastiCacheResponse
from moto.s3.models import s3_backends

from redis_migration_ops.local_engine.elasticache.deletion import InvalidReplicationGroupState
from redis_migration_ops.local_engine.elasticache.timing import ElastiCacheOperations
from redis_migration_ops.local_engine.moto_patch import MotoPatch
from redis_migration_ops.local_engine.s3.object_ownership import acls_disabled

ELASTICACHE_CANONICAL_ID = "540804c33a284a299d2547575ce1010f2312ef3da9b3a053c8bc45bf233e4353"
EXPORT_PERMISSIONS = ("READ", "WRITE", "READ_ACP")


class InvalidSnapshotState(ElastiCacheException):
    code = "InvalidSnapshotState"


def rdb_version(engine_version: str | None) -> int:
    """The RDB format a Redis (or Valkey) version writes: 7.0 -> 10, 7.2 and later -> 11, 6.x -> 9."""
    parts = [int(part) for part in (engine_version or "7.1").split(".")[:2] if part.isdigit()]
    major, minor = [*parts, 0, 0][:2]
    if major >= 8 or (major == 7 and minor >= 2):
        return 11
    if major == 7:
        return 10
    return 9


def rdb_file(engine_version: str | None) -> bytes:
    """An empty, valid RDB file: ``REDIS<version>``, an aux field, EOF, a zero (disabled) checksum."""

    def string(value: bytes) -> bytes:
        return bytes([len(value)]) + value

    version = (engine_version or "7.1.0").encode()
    return (
        f"REDIS{rdb_version(engine_version):04d}".encode()
        + b"\xfa"
        + string(b"redis-ver")
        + string(version)
        + b"\xff"
        + b"\x00" * 8
    )


def _grants_elasticache(bucket: Any, region: str) -> list[str]:
    """The export permissions the bucket does NOT give ElastiCache (empty: it may export there)."""
    granted: set[str] = set()
    # A bucket with ACLs disabled (s3/object_ownership.py) grants nothing through them.
    grants = [] if acls_disabled(bucket) else getattr(bucket.acl, "grants", None) or []
    for grant in grants:
        for grantee in grant.grantees:
            if getattr(grantee, "id", None) == ELASTICACHE_CANONICAL_ID:
                for permission in grant.permissions:
                    granted |= set(EXPORT_PERMISSIONS) if permission == "FULL_CONTROL" else {permission}
    missing = [permission for permission in EXPORT_PERMISSIONS if permission not in granted]
    if missing and bucket.policy:
        service = f"{region}.elasticache-snapshot.amazonaws.com"
        for statement in json.loads(bucket.policy).get("Statement") or []:
            services = (statement.get("Principal") or {}).get("Service")
            actions = statement.get("Action")
            actions = actions if isinstance(actions, list) else [actions]
            listed = services if isinstance(services, list) else [services]
            if statement.get("Effect") == "Allow" and service in listed and "s3:PutObject" in actions:
                return []
    return missing


class ElastiCacheSnapshots(MotoPatch):
    """Gap and fill: see the module docstring."""

    def __init__(self, operations: ElastiCacheOperations) -> None:
        super().__init__()
        self._operations = operations

    def install(self) -> None:
        operations = self._operations
        original_create = ElastiCacheBackend.create_snapshot
        original_describe = ElastiCacheBackend.describe_snapshots
        original_delete = ElastiCacheBackend.delete_snapshot

        def create_snapshot(backend: ElastiCacheBackend, *args: Any, **kwargs: Any) -> Snapshot:
            with operations.lock:
                operations.tick()
                group_id = kwargs.get("replication_group_id")
                group = backend.replication_groups.get(group_id) if group_id else None
                if group is not None and group.status != "available":
                    raise InvalidReplicationGroupState(
                        f"Replication group {group_id} is {group.status}; a snapshot needs it available."
                    )
                snapshot = original_create(backend, *args, **kwargs)
                snapshot.snapshot_status = "creating"
                if group is not None:
                    group.status = "snapshotting"

                def done() -> None:
                    snapshot.snapshot_status = "available"
                    if group is not None and group.status == "snapshotting":
                        group.status = "available"

                operations.start(
                    f"snapshot/{snapshot.snapshot_name}", operations.timings.snapshot_seconds, done
                )
                return snapshot

        def describe_snapshots(backend: ElastiCacheBackend, *args: Any, **kwargs: Any) -> Any:
            operations.tick()
            return original_describe(backend, *args, **kwargs)

        def delete_snapshot(backend: ElastiCacheBackend, snapshot_name: str) -> Snapshot:
            with operations.lock:
                operations.tick()
                snapshot = backend.snapshots.get(snapshot_name)
                if snapshot is not None and snapshot.snapshot_status in {"creating", "exporting"}:
                    raise InvalidSnapshotState(f"Snapshot {snapshot_name} is {snapshot.snapshot_status}.")
                return original_delete(backend, snapshot_name)

        def copy_snapshot(response: ElastiCacheResponse) -> ActionResult:
            backend = response.elasticache_backend
            source_name = str(response._get_param("SourceSnapshotName"))
            target_name = str(response._get_param("TargetSnapshotName"))
            bucket_name = response._get_param("TargetBucket")
            with operations.lock:
                operations.tick()
                source = backend.snapshots.get(source_name)
                if source is None:
                    raise SnapshotNotFound(source_name)
                if source.snapshot_status != "available":
                    raise InvalidSnapshotState(f"Snapshot {source_name} is {source.snapshot_status}.")
                if not bucket_name:
                    if target_name in backend.snapshots:
                        raise SnapshotAlreadyExists(target_name)
                    target = copy.copy(source)
                    target.snapshot_name = target_name
                    target.arn = source.arn.rsplit(":", 1)[0] + f":{target_name}"
                    target.snapshot_status = "creating"
                    backend.snapshots[target_name] = target

                    def copied() -> None:
                        target.snapshot_status = "available"

                    operations.start(f"snapshot/{target_name}", operations.timings.snapshot_seconds, copied)
                    return ActionResult({"Snapshot": target})
                s3 = s3_backends[backend.account_id][backend.partition]
                bucket = s3.buckets.get(bucket_name)
                if bucket is None:
                    raise InvalidParameterValueException(f"The S3 bucket {bucket_name} does not exist.")
                if bucket.region_name != backend.region_name:
                    raise InvalidParameterValueException(
                        f"The S3 bucket {bucket_name} is outside of the region."
                    )
                missing = _grants_elasticache(bucket, backend.region_name)
                if missing:
                    raise InvalidParameterValueException(
                        f"ElastiCache has not been granted {missing[0]} permissions {bucket_name} on the "
                        "S3 Bucket."
                    )
                shards = max(1, int(source.num_node_groups or 1))
                keys = [f"{target_name}-{shard:04d}.rdb" for shard in range(1, shards + 1)]
                for key in keys:
                    if key in bucket.keys:
                        raise InvalidParameterValueException(
                            f"The S3 bucket {bucket_name} already contains an object with key {key}."
                        )
                source.snapshot_status = "exporting"
                body = rdb_file(source.engine_version)

                def exported() -> None:
                    for key in keys:
                        s3.put_object(bucket_name, key, body)
                    if source.snapshot_status == "exporting":
                        source.snapshot_status = "available"

                operations.start(
                    f"export/{bucket_name}/{target_name}", operations.timings.export_seconds, exported
                )
                return ActionResult({"Snapshot": source})

        self._replace(ElastiCacheBackend, "create_snapshot", create_snapshot)
        self._replace(ElastiCacheBackend, "describe_snapshots", describe_snapshots)
        self._replace(ElastiCacheBackend, "delete_snapshot", delete_snapshot)
        self._add(ElastiCacheResponse, "copy_snapshot", copy_snapshot)
