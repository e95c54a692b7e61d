"""DeleteCacheSubnetGroup, refused while a cache cluster uses the group (moto 5.2.5 has no deletion).

What AWS does (ElastiCache API reference, DeleteCacheSubnetGroup):
https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_DeleteCacheSubnetGroup.html
"You cannot delete a default cache subnet group or one that is associated with any clusters."
Errors: ``CacheSubnetGroupInUse`` ("The requested cache subnet group is currently in use.") and
``CacheSubnetGroupNotFoundFault``.

Filled here: the action, and the refusal while any cache cluster (a replication group's node, even
one being deleted) names the group.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import EmptyResult
from moto.elasticache.exceptions import CacheSubnetGroupNotFound, ElastiCacheException
from moto.elasticache.models import ElastiCacheBackend
from moto.elasticache.responses import ElastiCacheResponse

from redis_migration_ops.local_engine.elasticache.timing import ElastiCacheOperations
from redis_migration_ops.local_engine.moto_patch import MotoPatch


class CacheSubnetGroupInUse(ElastiCacheException):
    code = "CacheSubnetGroupInUse"


class ElastiCacheSubnetGroupDeletion(MotoPatch):
    """Gap and fill: see the module docstring."""

    def __init__(self, operations: ElastiCacheOperations) -> None:
        super().__init__()
        self._operations = operations

    def install(self) -> None:
        operations = self._operations

        def delete_cache_subnet_group(response: ElastiCacheResponse) -> Any:
            backend: ElastiCacheBackend = response.elasticache_backend
            name = str(response._get_param("CacheSubnetGroupName"))
            with operations.lock:
                operations.tick()
                if name not in backend.cache_subnet_groups:
                    raise CacheSubnetGroupNotFound(name)
                users = sorted(
                    cluster.cache_cluster_id
                    for cluster in backend.cache_clusters.values()
                    if cluster.cache_subnet_group_name == name
                )
                if users:
                    raise CacheSubnetGroupInUse(
                        f"Cache subnet group {name} is currently in use by cache cluster(s) "
                        f"{', '.join(users)}."
                    )
                group = backend.cache_subnet_groups.pop(name)
                backend.tagging_service.delete_all_tags_for_resource(group.arn)
            return EmptyResult()

        self._add(ElastiCacheResponse, "delete_cache_subnet_group", delete_cache_subnet_group)
