"""Global Datastore membership, as DescribeReplicationGroups answers it (moto 5.2.5 has no Global Datastore).

What AWS does (ElastiCache API reference):

- CreateGlobalReplicationGroup makes an existing replication group the *primary* of a new Global
  Datastore, named ``<prefix>-<GlobalReplicationGroupIdSuffix>`` (ElastiCache adds the prefix);
  a group created with ``GlobalReplicationGroupId`` joins one as a *secondary* (read-only).
  https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_CreateGlobalReplicationGroup.html
- DescribeReplicationGroups answers ``GlobalReplicationGroupInfo``: ``GlobalReplicationGroupId``
  and ``GlobalReplicationGroupMemberRole``, "The role of the replication group in a Global
  datastore. Can be primary or secondary."
  https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_GlobalReplicationGroupInfo.html

Gap: moto has no CreateGlobalReplicationGroup, and marks every group created with a
``GlobalReplicationGroupId`` ``SECONDARY``.

Fill: CreateGlobalReplicationGroup marks its primary group ``primary`` (the prefix is derived from
the account and Region here; AWS's is its own per Region); a group created into a Global Datastore
is ``secondary``. Nothing else of a Global Datastore (replication across Regions, failover) exists.
"""

from __future__ import annotations

import hashlib
import string
from typing import Any

from moto.core.responses import ActionResult
from moto.elasticache.exceptions import ReplicationGroupNotFound
from moto.elasticache.models import ElastiCacheBackend
from moto.elasticache.responses import ElastiCacheResponse

from redis_migration_ops.local_engine.moto_patch import MotoPatch


def global_datastore_prefix(account_id: str, region: str) -> str:
    """Five letters standing for the prefix ElastiCache puts before a Global Datastore's suffix."""
    digest = hashlib.sha256(f"{account_id}/{region}".encode()).digest()
    return "".join(string.ascii_lowercase[byte % 26] for byte in digest[:5])


class ElastiCacheGlobalDatastore(MotoPatch):
    """Gap and fill: see the module docstring."""

    def install(self) -> None:
        original_create = ElastiCacheBackend.create_replication_group

        def create_replication_group(backend: ElastiCacheBackend, *args: Any, **kwargs: Any) -> Any:
            group = original_create(backend, *args, **kwargs)
            if getattr(group, "global_replication_group_id", ""):
                group.global_replication_group_member_role = "secondary"
            return group

        def create_global_replication_group(response: ElastiCacheResponse) -> Any:
            backend: ElastiCacheBackend = response.elasticache_backend
            suffix = str(response._get_param("GlobalReplicationGroupIdSuffix"))
            primary_id = str(response._get_param("PrimaryReplicationGroupId"))
            group = backend.replication_groups.get(primary_id)
            if group is None:
                raise ReplicationGroupNotFound(primary_id)
            prefix = global_datastore_prefix(backend.account_id, backend.region_name)
            global_id = f"{prefix}-{suffix}"
            group.global_replication_group_id = global_id
            group.global_replication_group_member_role = "primary"
            return ActionResult(
                {
                    "GlobalReplicationGroup": {
                        "GlobalReplicationGroupId": global_id,
                        "GlobalReplicationGroupDescription": str(
                            response._get_param("GlobalReplicationGroupDescription") or ""
                        ),
                        "Status": "creating",
                        "Engine": group.engine,
                        "Members": [
                            {
                                "ReplicationGroupId": primary_id,
                                "ReplicationGroupRegion": backend.region_name,
                                "Role": "primary",
                                "Status": "associating",
                            }
                        ],
                    }
                }
            )

        self._replace(ElastiCacheBackend, "create_replication_group", create_replication_group)
        self._add(ElastiCacheResponse, "create_global_replication_group", create_global_replication_group)
