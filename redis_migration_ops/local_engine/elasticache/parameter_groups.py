"""Cache parameter groups (moto 5.2.5 has none): create, describe, modify, list parameters, delete.

What AWS does (ElastiCache API reference, CreateCacheParameterGroup, DescribeCacheParameterGroups,
ModifyCacheParameterGroup, DescribeCacheParameters, DeleteCacheParameterGroup):
https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_DeleteCacheParameterGroup.html
https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_DescribeCacheParameters.html

- a custom group belongs to a family (``redis7``, ``valkey8`` ...); ``default.<family>`` groups are
  AWS's and cannot be modified or deleted;
- "You cannot delete a cache parameter group if it is associated with any cache clusters":
  ``InvalidCacheParameterGroupState``; a missing group is ``CacheParameterGroupNotFound``;
- DescribeCacheParameters with ``Source=user`` lists the parameters set by the user;
- ListTagsForResource and AddTagsToResource accept the group's ARN
  (``arn:aws:elasticache:<region>:<account>:parametergroup:<name>``).

Filled here: all of it, for the parameters the user sets (the engine defaults of a family are not
listed: the rehearsal needs only what a restore must set again).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from moto.core.responses import ActionResult
from moto.elasticache.exceptions import ElastiCacheException, InvalidParameterValueException
from moto.elasticache.models import ElastiCacheBackend
from moto.elasticache.responses import ElastiCacheResponse

from redis_migration_ops.local_engine.elasticache.timing import ElastiCacheOperations
from redis_migration_ops.local_engine.moto_patch import MotoPatch


class CacheParameterGroupNotFound(ElastiCacheException):
    code = "CacheParameterGroupNotFound"


class CacheParameterGroupAlreadyExists(ElastiCacheException):
    code = "CacheParameterGroupAlreadyExists"


class InvalidCacheParameterGroupState(ElastiCacheException):
    code = "InvalidCacheParameterGroupState"


@dataclass
class ParameterGroup:
    name: str
    family: str
    description: str
    arn: str
    parameters: dict[str, str] = field(default_factory=dict)

    def shape(self) -> dict[str, Any]:
        return {
            "CacheParameterGroupName": self.name,
            "CacheParameterGroupFamily": self.family,
            "Description": self.description,
            "IsGlobal": False,
            "ARN": self.arn,
        }


def _arn(backend: ElastiCacheBackend, name: str) -> str:
    where = f"{backend.partition}:elasticache:{backend.region_name}:{backend.account_id}"
    return f"arn:{where}:parametergroup:{name}"


def _default(backend: ElastiCacheBackend, name: str) -> ParameterGroup | None:
    if not name.startswith("default."):
        return None
    family = name.removeprefix("default.").removesuffix(".cluster.on")
    return ParameterGroup(name, family, f"Default parameter group for {family}", _arn(backend, name))


class ElastiCacheParameterGroups(MotoPatch):
    """Gap and fill: see the module docstring."""

    def __init__(self, operations: ElastiCacheOperations) -> None:
        super().__init__()
        self._operations = operations
        self._groups: dict[tuple[str, str], dict[str, ParameterGroup]] = {}
        self._lock = threading.Lock()

    def groups(self, backend: ElastiCacheBackend) -> dict[str, ParameterGroup]:
        with self._lock:
            return self._groups.setdefault((backend.account_id, backend.region_name), {})

    def install(self) -> None:
        operations = self._operations
        groups = self.groups

        def find(backend: ElastiCacheBackend, name: str) -> ParameterGroup:
            found = groups(backend).get(name) or _default(backend, name)
            if found is None:
                raise CacheParameterGroupNotFound(f"CacheParameterGroup {name} not found.")
            return found

        def create(response: ElastiCacheResponse) -> ActionResult:
            backend = response.elasticache_backend
            name = str(response._get_param("CacheParameterGroupName"))
            if name in groups(backend) or name.startswith("default."):
                raise CacheParameterGroupAlreadyExists(f"Parameter group {name} already exists.")
            group = ParameterGroup(
                name,
                str(response._get_param("CacheParameterGroupFamily")),
                str(response._get_param("Description") or ""),
                _arn(backend, name),
            )
            groups(backend)[name] = group
            backend.tagging_service.tag_resource(group.arn, response._get_param("Tags", []))
            return ActionResult({"CacheParameterGroup": group.shape()})

        def describe(response: ElastiCacheResponse) -> ActionResult:
            backend = response.elasticache_backend
            name = response._get_param("CacheParameterGroupName")
            found = [find(backend, str(name))] if name else list(groups(backend).values())
            return ActionResult({"CacheParameterGroups": [group.shape() for group in found]})

        def modify(response: ElastiCacheResponse) -> ActionResult:
            backend = response.elasticache_backend
            name = str(response._get_param("CacheParameterGroupName"))
            group = find(backend, name)
            if name.startswith("default."):
                raise InvalidParameterValueException(f"Cannot modify the default parameter group {name}.")
            for item in response._get_param("ParameterNameValues", []):
                group.parameters[str(item["ParameterName"])] = str(item["ParameterValue"])
            return ActionResult({"CacheParameterGroupName": name})

        def describe_parameters(response: ElastiCacheResponse) -> ActionResult:
            backend = response.elasticache_backend
            group = find(backend, str(response._get_param("CacheParameterGroupName")))
            source = response._get_param("Source")
            parameters = (
                [
                    {"ParameterName": key, "ParameterValue": value, "Source": "user", "IsModifiable": True}
                    for key, value in sorted(group.parameters.items())
                ]
                if source in (None, "user")
                else []
            )
            return ActionResult({"Parameters": parameters, "CacheNodeTypeSpecificParameters": []})

        def delete(response: ElastiCacheResponse) -> ActionResult:
            backend = response.elasticache_backend
            name = str(response._get_param("CacheParameterGroupName"))
            with operations.lock:
                operations.tick()
                if name.startswith("default."):
                    raise InvalidParameterValueException(f"Cannot delete the default parameter group {name}.")
                find(backend, name)
                users = sorted(
                    cluster.cache_cluster_id
                    for cluster in backend.cache_clusters.values()
                    if cluster.cache_parameter_group_name == name
                )
                if users:
                    raise InvalidCacheParameterGroupState(
                        "One or more cache clusters are still members of this parameter group "
                        f"{name}, so the group cannot be deleted: {', '.join(users)}."
                    )
                group = groups(backend).pop(name)
                backend.tagging_service.delete_all_tags_for_resource(group.arn)
            return ActionResult(None)

        original_list_tags = ElastiCacheBackend.list_tags_for_resource

        def list_tags_for_resource(backend: ElastiCacheBackend, arn: str) -> Any:
            if ":parametergroup:" in arn:
                name = arn.rsplit(":", 1)[-1]
                find(backend, name)
                return backend.tagging_service.list_tags_for_resource(arn)
            return original_list_tags(backend, arn)

        self._add(ElastiCacheResponse, "create_cache_parameter_group", create)
        self._add(ElastiCacheResponse, "describe_cache_parameter_groups", describe)
        self._add(ElastiCacheResponse, "modify_cache_parameter_group", modify)
        self._add(ElastiCacheResponse, "describe_cache_parameters", describe_parameters)
        self._add(ElastiCacheResponse, "delete_cache_parameter_group", delete)
        self._replace(ElastiCacheBackend, "list_tags_for_resource", list_tags_for_resource)
