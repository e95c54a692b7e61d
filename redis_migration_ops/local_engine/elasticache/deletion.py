"""Deleting a replication group takes time, and refuses a group that is busy (moto: ``deleting`` forever).

What AWS does (ElastiCache API reference, DeleteReplicationGroup; user guide, "Deleting a replication
group"): https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_DeleteReplicationGroup.html
https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/Replication.DeletingRepGroup.html

- the group must be ``available``: one that is ``snapshotting``, ``modifying``, ``creating`` or
  already ``deleting`` is refused with ``InvalidReplicationGroupState``;
- the group and all its nodes (member clusters) turn ``deleting``, then disappear after minutes to
  tens of minutes (boto3's ``replication_group_deleted`` waiter polls 15 s x 40); then
  DescribeReplicationGroups answers ``ReplicationGroupNotFoundFault``;
- ``FinalSnapshotIdentifier`` keeps a manual snapshot of the group, taken before the nodes go.

Wrong in moto 5.2.5, filled here: the group stays ``deleting`` forever with its member clusters;
any state is deleted; ``FinalSnapshotIdentifier`` is ignored. The duration is
``ElastiCacheTimings.deletion_seconds`` of the workflow's clock (``elasticache_timing``); when it
ends, the nodes' security groups stay held by their network interfaces for
``interface_release_seconds`` more (``ec2_security_group_dependencies``).
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.elasticache.exceptions import ElastiCacheException, ReplicationGroupNotFound
from moto.elasticache.models import ElastiCacheBackend
from moto.elasticache.responses import ElastiCacheResponse

from redis_migration_ops.local_engine.elasticache.timing import ElastiCacheOperations
from redis_migration_ops.local_engine.moto_patch import MotoPatch


class InvalidReplicationGroupState(ElastiCacheException):
    code = "InvalidReplicationGroupState"


def deletion_key(backend: ElastiCacheBackend, group_id: str) -> str:
    return f"{backend.account_id}/{backend.region_name}/replicationgroup/{group_id}"


class ElastiCacheReplicationGroupDeletion(MotoPatch):
    """Gap and fill: see the module docstring."""

    def __init__(self, operations: ElastiCacheOperations) -> None:
        super().__init__()
        self._operations = operations

    def install(self) -> None:
        operations = self._operations
        original_describe = ElastiCacheBackend.describe_replication_groups

        def describe_replication_groups(backend: ElastiCacheBackend, *args: Any, **kwargs: Any) -> Any:
            operations.tick()
            return original_describe(backend, *args, **kwargs)

        def delete_replication_group(
            backend: ElastiCacheBackend,
            replication_group_id: str,
            retain_primary_cluster: bool | None,
            final_snapshot_identifier: str | None = None,
        ) -> Any:
            with operations.lock:
                operations.tick()
                group = backend.replication_groups.get(replication_group_id)
                if group is None:
                    raise ReplicationGroupNotFound(replication_group_id)
                if group.status != "available":
                    raise InvalidReplicationGroupState(
                        f"Replication group {replication_group_id} must be in available state to be deleted; "
                        f"it is {group.status}."
                    )
                delay = operations.timings.deletion_seconds
                if final_snapshot_identifier:
                    backend.create_snapshot(
                        snapshot_name=final_snapshot_identifier,
                        replication_group_id=replication_group_id,
                        cache_cluster_id=None,
                        kms_key_id=None,
                        tags=None,
                    )
                    delay += operations.timings.snapshot_seconds
                group.status = "deleting"
                members = list(group.member_clusters)
                for member in members:
                    if member in backend.cache_clusters:
                        backend.cache_clusters[member].cache_cluster_status = "deleting"
                security_groups = list(group.security_group_ids or [])

                def gone() -> None:
                    backend.replication_groups.pop(replication_group_id, None)
                    for member in members:
                        backend.cache_clusters.pop(member, None)
                    operations.hold_security_groups(security_groups)

                operations.start(deletion_key(backend, replication_group_id), delay, gone)
                return group

        def delete_replication_group_response(response: ElastiCacheResponse) -> Any:
            backend: Any = response.elasticache_backend
            group = backend.delete_replication_group(
                replication_group_id=response._get_param("ReplicationGroupId"),
                retain_primary_cluster=response._get_bool_param("RetainPrimaryCluster"),
                final_snapshot_identifier=response._get_param("FinalSnapshotIdentifier"),
            )
            return ActionResult({"ReplicationGroup": group})

        self._replace(ElastiCacheBackend, "describe_replication_groups", describe_replication_groups)
        self._replace(ElastiCacheBackend, "delete_replication_group", delete_replication_group)
        self._replace(ElastiCacheResponse, "delete_replication_group", delete_replication_group_response)
