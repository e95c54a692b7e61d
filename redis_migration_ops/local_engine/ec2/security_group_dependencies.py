"""DeleteSecurityGroup refuses a group something still depends on (moto 5.2.5 deletes it regardless).

What AWS does (EC2 API reference, DeleteSecurityGroup; VPC user guide, "Delete a security group"):
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteSecurityGroup.html
https://docs.aws.amazon.com/vpc/latest/userguide/deleting-security-groups.html

"If you attempt to delete a security group that is associated with an instance or network
interface, is referenced by another security group in the same VPC, or has a VPC association, the
operation fails with ``DependencyViolation``" ("resource sg-... has a dependent object"). A VPC's
default group cannot be deleted (``CannotDelete``).

Filled here: the refusal when another group's ingress or egress rule names the group, when a
network interface (an instance's included) uses it, when an ElastiCache node (a cache cluster of
moto's, ``elasticache_member_clusters``) uses it, and for the ``interface_release_seconds`` after
such nodes are deleted (their interfaces go a little later: ``elasticache_timing``).
"""

from __future__ import annotations

from typing import Any

from moto.ec2.exceptions import DependencyViolationError, EC2ClientError
from moto.ec2.models.security_groups import SecurityGroupBackend
from moto.elasticache.models import elasticache_backends

from redis_migration_ops.local_engine.elasticache.timing import ElastiCacheOperations
from redis_migration_ops.local_engine.moto_patch import MotoPatch


class CannotDelete(EC2ClientError):
    def __init__(self, group_id: str) -> None:
        super().__init__(
            "CannotDelete", f'the specified group: "{group_id}" name: "default" cannot be deleted'
        )


def dependents(backend: Any, group_id: str, operations: ElastiCacheOperations) -> list[str]:
    """What still depends on the security group (empty: it may be deleted)."""
    found: list[str] = []
    for groups in backend.groups.values():
        for other in groups.values():
            if other.id == group_id:
                continue
            for rule in [*other.ingress_rules, *other.egress_rules]:
                if (rule.source_group or {}).get("GroupId") == group_id:
                    found.append(f"a rule of {other.id}")
    for interface in backend.enis.values():
        if any(group.id == group_id for group in interface.group_set):
            found.append(interface.id)
    caches = elasticache_backends[backend.account_id][backend.region_name]
    operations.tick()
    for cluster in list(caches.cache_clusters.values()):
        if group_id in (cluster.security_group_ids or []):
            found.append(f"ElastiCache node {cluster.cache_cluster_id}")
    if operations.held(group_id):
        found.append("a network interface of a deleted ElastiCache node (released shortly)")
    return found


class SecurityGroupDependencies(MotoPatch):
    """Gap and fill: see the module docstring."""

    def __init__(self, operations: ElastiCacheOperations) -> None:
        super().__init__()
        self._operations = operations

    def install(self) -> None:
        operations = self._operations
        original = SecurityGroupBackend.delete_security_group

        def delete_security_group(backend: Any, name: str | None = None, group_id: str | None = None) -> Any:
            group = backend.get_security_group_from_id(group_id) if group_id else None
            if group is None and name:
                group = backend.get_security_group_from_name(name)
            if group is not None:
                if group.name == "default":
                    raise CannotDelete(group.id)
                if dependents(backend, group.id, operations):
                    raise DependencyViolationError(f"resource {group.id} has a dependent object")
            return original(backend, name=name, group_id=group_id)

        self._replace(SecurityGroupBackend, "delete_security_group", delete_security_group)
